//! Llama-family causal language models (Llama 2, Llama 3, Mistral) on candle: configuration,
//! the decoder with its KV cache, loading from Hugging Face folders or GGUF files, PEFT LoRA
//! merging, and the tokenizer. Generation lives in [`crate::generate`].

mod config;
mod load;
mod lora;
mod model;
mod tokenizer;

pub use config::{LlmConfig, RopeScaling};
pub use load::LoadOptions;
pub use lora::LoraAdapter;
pub use model::{CausalLm, KvCache};
pub use tokenizer::LlmTokenizer;
