//! `art-models`: models that run inside `art`, on candle.
//!
//! * [`weights`]: finding a model's files (a local folder, or a Hugging Face hub cache
//!   snapshot), kept apart from building models so every model resolves weights the same way;
//! * [`hub`]: downloading a repository's model files into the hub cache when they are not
//!   there (progress bar, `HF_TOKEN` for gated models, `HF_HUB_OFFLINE`);
//! * [`tensors`]: safetensors files read tensor by tensor (no mmap), PyTorch `.bin` files;
//! * [`llm`]: Llama-family causal LMs (Llama 2/3, Mistral) from safetensors or GGUF, with
//!   PEFT LoRA merged at load;
//! * [`generate`]: generation with transformers' semantics (greedy, sampling, beam search,
//!   beam-sample, logit processors), batched across requests;
//! * [`writer`]: the Writer role on an in-process LLM (and [`writer::TextGenerator`], the
//!   model + tokenizer + settings the Guide and Llama Guard will reuse); [`build`] turns
//!   config sections into roles;
//! * [`embed`]: sentence embeddings (the all-MiniLM-L6-v2 family: BERT + mean pooling + L2
//!   normalisation), the default embedder of the reports' diversity metric.
//!
//! * [`diffusion`] and [`target`]: Stable Diffusion pipelines and the Target role on them;
//! * [`vision`]: image resampling as Pillow does it, CLIP's vision tower;
//! * [`llava`] and [`guide`]: LLaVA-NeXT (both checkpoint layouts, LoRA) and the Guide role.
//!
//! The judges arrive here with their issue. Every architecture is checked against its PyTorch reference
//! on tiny random weights (`tools/golden/`), and on real weights where a package registry ships
//! them.

pub mod build;
pub mod chat;
pub mod diffusion;
pub mod embed;
pub mod generate;
pub mod guide;
pub mod hub;
pub mod judges;
pub mod llava;
pub mod llm;
pub mod target;
pub mod tensors;
pub mod vision;
pub mod weights;
pub mod writer;

pub use embed::SentenceEmbedder;

/// A model that could not be found, read or run; messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {what} not found")]
    Missing {
        path: std::path::PathBuf,
        what: String,
    },
    #[error("{path}: {detail}")]
    Invalid {
        path: std::path::PathBuf,
        detail: String,
    },
    /// A hub id that is neither cached nor downloadable: why, in words.
    #[error("{repo}: {detail}")]
    Hub { repo: String, detail: String },
    #[error("model computation failed: {0}")]
    Compute(String),
}

impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        ModelError::Compute(e.to_string())
    }
}
