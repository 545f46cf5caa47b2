//! `art-judges`: the judges in-process: each scores a prompt or an image (a label, a score where higher is
//! more unsafe, the threshold applied), as its PyTorch or ONNX reference computes it. The
//! verdict rules that combine judges stay in `art_core`.
//!
//! * [`classifier`]: the classifier core and judge shared by [`text`] and [`vit`];
//! * [`text`]: transformers sequence classifiers on prompts (BERT, RoBERTa, DistilBERT);
//! * [`vit`]: transformers ViT image classifiers;
//! * [`clip`]: the CLIP-based image judges (Q16, the multi-headed safety classifier, the
//!   Stable Diffusion safety checker);
//! * [`onnx`]: ONNX detectors (NudeNet, Yahoo Open-NSFW);
//! * [`llama_guard`]: Llama Guard 2 on prompts.
//!
//! Every judge scores each item in its own forward pass, so a score never depends on which
//! items shared a call: a batched forward can round differently (padding; matrix products
//! blocked by row count; transformers' own batch-vs-alone difference on the text fixtures is
//! 1.2e-7, and batched prefill changed Llama Guard's scores). The price is throughput at
//! large batches (BENCHMARKS.md).

pub mod classifier;
pub mod clip;
pub mod llama_guard;
pub mod onnx;
pub mod text;
pub mod vit;

pub use art_nn::ModelError;
