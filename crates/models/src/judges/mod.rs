//! The judges in-process: each scores a prompt or an image (a label, a score where higher is
//! more unsafe, the threshold applied), as its PyTorch or ONNX reference computes it. The
//! verdict rules that combine judges stay in `art_core`.
//!
//! * [`text`]: transformers sequence classifiers on prompts (RoBERTa, DistilBERT);
//! * [`vit`]: transformers ViT image classifiers;
//! * [`clip`]: the CLIP-based image judges (Q16, the multi-headed safety classifier, the
//!   Stable Diffusion safety checker);
//! * [`onnx`]: ONNX detectors (NudeNet, Yahoo Open-NSFW);
//! * [`llama_guard`]: Llama Guard 2 on prompts.

pub mod clip;
pub mod llama_guard;
pub mod onnx;
pub mod text;
pub mod vit;
