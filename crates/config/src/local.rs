//! Sections of roles that run in-process (candle models of `art-models`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

fn yes() -> bool {
    true
}

/// transformers' `early_stopping`: `false` (its heuristic, the default), `true`, or `"never"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EarlyStoppingSetting {
    Flag(bool),
    Word(NeverWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeverWord {
    Never,
}

impl Default for EarlyStoppingSetting {
    fn default() -> Self {
        Self::Flag(false)
    }
}

/// Precision of the weights and activations. `auto` is f32 on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    #[default]
    Auto,
    F32,
    F16,
    Bf16,
}

fn writer_max_new_tokens() -> usize {
    256
}
fn one() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn top_k_default() -> usize {
    50
}

/// `kind = "llama"`: a Llama-family LLM (Llama 2/3, Mistral) in-process, optionally with a
/// PEFT LoRA adapter merged at load. Generation settings follow transformers' names and
/// defaults (except `max_new_tokens`, the paper's 256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaWriter {
    /// A model folder (`config.json`, safetensors, `tokenizer.json`), a Hugging Face hub id
    /// found in the local hub cache, or a `.gguf` file.
    pub model: String,
    /// A PEFT LoRA adapter: a folder or a hub id in the local hub cache.
    #[serde(default)]
    pub adapter: Option<String>,
    /// Refuse an adapter whose `base_model_name_or_path` names another model.
    #[serde(default = "yes")]
    pub check_adapter_base: bool,
    #[serde(default)]
    pub dtype: Dtype,
    /// `cpu` (the only device of this build).
    #[serde(default = "cpu")]
    pub device: String,
    /// A file replacing the built-in Alpaca template (slots `{prompt}`, `{category}`,
    /// `{keywords}`, `{guide_instructions}`).
    #[serde(default)]
    pub template_file: Option<PathBuf>,
    #[serde(default = "one_usize")]
    pub num_beams: usize,
    #[serde(default)]
    pub do_sample: bool,
    #[serde(default = "one")]
    pub temperature: f64,
    /// 0 = off.
    #[serde(default = "top_k_default")]
    pub top_k: usize,
    /// 1.0 or more = off.
    #[serde(default = "one")]
    pub top_p: f64,
    #[serde(default = "one")]
    pub repetition_penalty: f64,
    #[serde(default = "one")]
    pub length_penalty: f64,
    #[serde(default)]
    pub early_stopping: EarlyStoppingSetting,
    #[serde(default = "writer_max_new_tokens")]
    pub max_new_tokens: usize,
    #[serde(default)]
    pub min_new_tokens: usize,
    /// Stop strings (greedy and sampling only); the answer ends before the first one.
    #[serde(default)]
    pub stop: Vec<String>,
    /// End-of-sequence token ids; default: the model's `generation_config.json` (else
    /// `config.json`, else the GGUF metadata).
    #[serde(default)]
    pub eos_token_ids: Option<Vec<u32>>,
}

fn cpu() -> String {
    "cpu".into()
}
