//! Config sections of the remote (HTTP) role kinds. Each has an `[ROLE.endpoint]` table
//! ([`EndpointConfig`]) and the settings of its API.

use crate::endpoint::EndpointConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

fn yes() -> bool {
    true
}

/// Which OpenAI-compatible text API a writer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChatApi {
    /// `/chat/completions`: the server applies the model's chat template to a user message
    /// holding the filled template.
    #[default]
    Chat,
    /// `/completions`: the filled template is sent as raw text (right for models trained on
    /// it, such as the paper's Writer LoRA served by vLLM).
    Completions,
}

/// Sampling settings passed through to OpenAI-compatible servers; unset ones are not sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Choices requested; the first one is used.
    pub n: Option<u32>,
    #[serde(default)]
    pub stop: Vec<String>,
    /// Send each item's derived seed (servers that honour `seed` then reproduce).
    #[serde(default = "yes")]
    pub send_seed: bool,
    /// Server-specific fields merged into the request, e.g. vLLM's `top_k`,
    /// `repetition_penalty`, `min_tokens` or `use_beam_search` (the paper's Writer samples with
    /// top_k 50 and repetition penalty 1.5, which the OpenAI API itself does not offer).
    #[serde(default)]
    pub extra: toml::Table,
}

/// The same defaults whether `[ROLE.sampling]` is absent or empty: seeds are sent.
impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: None,
            top_p: None,
            max_tokens: None,
            n: None,
            stop: Vec::new(),
            send_seed: true,
            extra: toml::Table::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiChatWriter {
    pub endpoint: EndpointConfig,
    /// The served model's name.
    pub model: String,
    #[serde(default)]
    pub api: ChatApi,
    /// A file replacing the built-in Alpaca template (slots `{prompt}`, `{category}`,
    /// `{keywords}`, `{guide_instructions}`).
    #[serde(default)]
    pub template_file: Option<PathBuf>,
    /// A system message (chat API only).
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub sampling: Sampling,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiChatGuide {
    pub endpoint: EndpointConfig,
    pub model: String,
    /// A file replacing the built-in user text (slots `{prompt}`, `{category}`, `{keywords}`).
    #[serde(default)]
    pub template_file: Option<PathBuf>,
    /// The system message; default: the LLaVA conversation's system line of the paper.
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub sampling: Sampling,
}

fn d_size() -> String {
    "1024x1024".into()
}
fn d_b64() -> Option<String> {
    Some("b64_json".into())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiImagesTarget {
    pub endpoint: EndpointConfig,
    pub model: String,
    #[serde(default = "d_size")]
    pub size: String,
    #[serde(default)]
    pub quality: Option<String>,
    #[serde(default)]
    pub style: Option<String>,
    /// Sent as `response_format` (models that always answer in base64 reject it: set "").
    #[serde(default = "d_b64")]
    pub response_format: Option<String>,
}

fn d_steps() -> u32 {
    20
}
fn d_cfg() -> f64 {
    7.0
}
fn d_side() -> u32 {
    512
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Automatic1111Target {
    pub endpoint: EndpointConfig,
    /// Literal text, or `@paper` for the paper's fixed negative prompt.
    #[serde(default)]
    pub negative_prompt: Option<String>,
    #[serde(default = "d_steps")]
    pub steps: u32,
    #[serde(default = "d_cfg")]
    pub cfg_scale: f64,
    #[serde(default = "d_side")]
    pub width: u32,
    #[serde(default = "d_side")]
    pub height: u32,
    #[serde(default)]
    pub sampler_name: Option<String>,
    /// Extra fields merged into the request body (e.g. `override_settings`).
    #[serde(default)]
    pub extra: toml::Table,
}

fn d_poll() -> u64 {
    250
}
fn d_render_timeout() -> f64 {
    600.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComfyuiTarget {
    pub endpoint: EndpointConfig,
    /// A workflow in ComfyUI's API format (JSON). String values `{{prompt}}`,
    /// `{{negative_prompt}}` and `{{seed}}` are substituted (`"{{seed}}"` becomes a number).
    pub workflow: PathBuf,
    /// Literal text, or `@paper` for the paper's fixed negative prompt.
    #[serde(default)]
    pub negative_prompt: Option<String>,
    #[serde(default = "d_poll")]
    pub poll_interval_ms: u64,
    /// Longest wait for one render, seconds.
    #[serde(default = "d_render_timeout")]
    pub render_timeout_s: f64,
}

fn d_moderation_model() -> String {
    "omni-moderation-latest".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiModerationJudge {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub endpoint: EndpointConfig,
    #[serde(default = "d_moderation_model")]
    pub model: String,
    /// Only these moderation categories count (e.g. `["sexual", "violence/graphic"]`); all
    /// when empty.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Unsafe when the highest counted category score reaches this; when absent, the
    /// provider's own `flagged` decides (for the counted categories).
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// The categories OpenAI's moderation models score (`omni-moderation-*`; the older
/// `text-moderation-*` models score all but the two `illicit` ones). A category outside this
/// list would never be in an answer and would score 0 for every item, i.e. always "safe".
pub const MODERATION_CATEGORIES: &[&str] = &[
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

impl OpenaiModerationJudge {
    /// Categories the endpoint scores, each once, and a threshold in 0..=1.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.categories {
            if !MODERATION_CATEGORIES.contains(&c.as_str()) {
                return Err(format!(
                    "categories: `{c}` is not a moderation category (expected one of {})",
                    MODERATION_CATEGORIES.join(", ")
                ));
            }
            if !seen.insert(c) {
                return Err(format!("categories: `{c}` is listed twice"));
            }
        }
        if let Some(t) = self.threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(format!("threshold: {t} is not a score in 0..=1"));
        }
        Ok(())
    }
}

fn d_judge_tokens() -> u32 {
    512
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionChatJudge {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub endpoint: EndpointConfig,
    pub model: String,
    /// A file replacing the built-in safety rubric. The model must answer with a JSON object
    /// holding `"rating": "safe" | "unsafe"` (LlavaGuard's format).
    #[serde(default)]
    pub policy_file: Option<PathBuf>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default = "d_judge_tokens")]
    pub max_tokens: u32,
}
