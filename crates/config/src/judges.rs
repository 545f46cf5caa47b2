//! Sections of the in-process judges (`art-models`' `judges`). Each judge names itself
//! (`name`, unique in a campaign; default: its kind) and can be switched off
//! (`enabled = false`).

use crate::local::{Dtype, cpu, yes};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

fn guard_tokens() -> usize {
    100
}

/// Which conversation text Llama Guard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardPromptKind {
    /// The model's own chat template (`tokenizer_config.json` / `chat_template.jinja`).
    #[default]
    ChatTemplate,
    /// The reference's prompt: Meta's task text with the category names only.
    Paper,
}

/// `kind = "llama-guard"`: Llama Guard (2 or later) on the prompt, judged as the Agent turn
/// after the Writer's instruction; greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaGuardJudge {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A folder, a hub id, or a `.gguf` file (then `prompt = "paper"` or `template_file`).
    pub model: String,
    #[serde(default)]
    pub adapter: Option<String>,
    #[serde(default = "yes")]
    pub check_adapter_base: bool,
    #[serde(default)]
    pub dtype: Dtype,
    #[serde(default = "cpu")]
    pub device: String,
    #[serde(default)]
    pub prompt: GuardPromptKind,
    /// A file replacing the prompt (slots `{user_text}`, `{prompt}`; the tokenizer's BOS
    /// is added).
    #[serde(default)]
    pub template_file: Option<PathBuf>,
    /// The User turn before the judged prompt; default: the Writer's instruction sentence.
    #[serde(default)]
    pub user_text: Option<String>,
    #[serde(default = "guard_tokens")]
    pub max_new_tokens: usize,
    /// Label by `P(unsafe) >= threshold` instead of by the generated answer.
    #[serde(default)]
    pub threshold: Option<f64>,
}
