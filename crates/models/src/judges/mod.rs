//! The judges in-process: each scores a prompt or an image (a label, a score where higher is
//! more unsafe, the threshold applied), as its reference computes it. The verdict rules that
//! combine judges stay in `art_core`.
//!
//! * [`llama_guard`]: Llama Guard 2 on prompts.
//!
//! The paper's classifier and CLIP judges and the ONNX detectors arrive with issue #6.

pub mod llama_guard;
