//! `art-models`: the one door from configuration to `art`'s in-process models.
//!
//! * [`build`]: config sections to role objects (Writer, Target, Guide, prompt and image
//!   judges), loaded before a campaign writes anything; CLIP towers shared per backbone, dtype
//!   and device;
//! * [`embed`]: the sentence embedder of the reports' diversity metric (all-MiniLM-L6-v2).
//!
//! The models themselves live in their own crates: `art-hub` (finding and downloading files),
//! `art-nn` (the shared toolkit), `art-llm` (Llama family, generation, the Writer, LLaVA-NeXT
//! and the Guide), `art-diffusion` (Stable Diffusion and the Target), `art-judges` (every
//! judge). Every architecture is checked against its PyTorch reference on tiny random weights
//! (`tools/golden/`), and on real weights where a package registry ships them.

pub mod build;
pub mod embed;

pub use art_nn::ModelError;
pub use embed::SentenceEmbedder;
