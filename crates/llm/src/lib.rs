//! `art-llm`: the language models of `art` on candle, and the two roles they play.
//!
//! * The Llama family (Llama 2, Llama 3, Mistral): [`LlmConfig`] (incl. transformers 5's
//!   `rope_parameters`), the decoder [`CausalLm`] with its row-selectable [`KvCache`], loading
//!   from Hugging Face folders (safetensors, single or sharded) or GGUF files, PEFT LoRA
//!   merged as weights are read ([`LoraAdapter`]), and [`LlmTokenizer`] (`tokenizer.json` or
//!   GGUF);
//! * [`generate`]: transformers-exact logit processors, greedy, sampling, beam search and
//!   beam-sample over a left-padded batch of requests;
//! * [`chat`]: a model's Jinja chat template rendered as transformers renders it;
//! * [`TextGenerator`]: model + tokenizer + generation settings, what the Writer and Llama
//!   Guard run (the Guide shares its settings helpers);
//! * [`writer`]: the Writer role (`kind = "llama"`);
//! * [`llava`] and [`guide`]: LLaVA-NeXT (both checkpoint layouts, LoRA) and the Guide role
//!   (`kind = "llava-next"`).

mod config;
mod load;
mod lora;
mod model;
mod tokenizer;

pub mod chat;
pub mod generate;
pub mod guide;
pub mod llava;
pub mod text_generator;
pub mod writer;

pub use art_nn::ModelError;
pub use config::{LlmConfig, RopeScaling};
pub use load::LoadOptions;
pub use lora::LoraAdapter;
pub use model::{CausalLm, KvCache};
pub use text_generator::TextGenerator;
pub use tokenizer::LlmTokenizer;
