//! Sections of roles that run in-process (the candle models of `art-llm` and `art-diffusion`,
//! built by `art-models`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub(crate) fn yes() -> bool {
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

pub(crate) fn cpu() -> String {
    "cpu".into()
}

/// Generation settings as transformers names them, shared by the in-process text roles.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationSettings {
    pub num_beams: usize,
    pub do_sample: bool,
    pub temperature: f64,
    pub top_k: usize,
    pub top_p: f64,
    pub repetition_penalty: f64,
    pub length_penalty: f64,
    pub early_stopping: EarlyStoppingSetting,
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    pub eos_token_ids: Option<Vec<u32>>,
}

/// `generation()` for the sections that carry the generation keys at their top level (serde's
/// `flatten` cannot share one struct there: it does not work with `deny_unknown_fields`).
macro_rules! generation_settings {
    ($($section:ty),+) => {$(
        impl $section {
            pub fn generation(&self) -> GenerationSettings {
                GenerationSettings {
                    num_beams: self.num_beams,
                    do_sample: self.do_sample,
                    temperature: self.temperature,
                    top_k: self.top_k,
                    top_p: self.top_p,
                    repetition_penalty: self.repetition_penalty,
                    length_penalty: self.length_penalty,
                    early_stopping: self.early_stopping.clone(),
                    max_new_tokens: self.max_new_tokens,
                    min_new_tokens: self.min_new_tokens,
                    eos_token_ids: self.eos_token_ids.clone(),
                }
            }
        }
    )+};
}

generation_settings!(LlamaWriter, LlavaNextGuide);

fn guide_max_new_tokens() -> usize {
    768
}

/// `kind = "llava-next"`: LLaVA-NeXT (LLaVA-1.6) in-process, in the llava-hf or the original
/// LLaVA checkpoint layout, optionally with a PEFT LoRA (and, for the original layout, the
/// adapter's `non_lora_trainables.bin`). Generation settings follow transformers' names and
/// defaults (except `max_new_tokens`, the paper's 768).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlavaNextGuide {
    /// A model folder or a Hugging Face hub id.
    pub model: String,
    /// A LoRA adapter folder or hub id.
    #[serde(default)]
    pub adapter: Option<String>,
    /// Refuse an adapter whose `base_model_name_or_path` names another model.
    #[serde(default = "yes")]
    pub check_adapter_base: bool,
    /// A folder or hub id whose `tokenizer.json` replaces the model's (the original LLaVA
    /// checkpoints ship only a sentencepiece `tokenizer.model`).
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub dtype: Dtype,
    /// `cpu` (the only device of this build).
    #[serde(default = "cpu")]
    pub device: String,
    /// A file replacing the built-in LLaVA-1.6 Mistral conversation (slot `{user_text}`, the
    /// image at `<image>`).
    #[serde(default)]
    pub conversation_file: Option<PathBuf>,
    /// A file replacing the built-in user text (slots `{prompt}`, `{category}`, `{keywords}`).
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
    #[serde(default = "guide_max_new_tokens")]
    pub max_new_tokens: usize,
    #[serde(default)]
    pub min_new_tokens: usize,
    /// End-of-sequence token ids; default: the model's `generation_config.json` (else
    /// `config.json`).
    #[serde(default)]
    pub eos_token_ids: Option<Vec<u32>>,
}

fn sd_guidance() -> f64 {
    7.5
}
fn sd_steps() -> u32 {
    50
}
fn paper_negative() -> Option<String> {
    Some("@paper".into())
}

/// A diffusers scheduler `art` implements, by its diffusers class name in kebab case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerKind {
    /// `PNDMScheduler` (SD 1.5 / 2.1's default).
    Pndm,
    /// `EulerDiscreteScheduler` (SDXL's and sd-turbo's default).
    EulerDiscrete,
    /// `EulerAncestralDiscreteScheduler` (sdxl-turbo's default).
    EulerAncestralDiscrete,
    /// `DDIMScheduler` (eta 0).
    Ddim,
}

/// diffusers' `timestep_spacing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestepSpacing {
    Leading,
    Trailing,
    Linspace,
}

/// Attention slicing: `"auto"` (slices sized to a memory budget), `"off"`, or the number of
/// (image x head) rows per slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttentionSlice {
    Word(SliceWord),
    Rows(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SliceWord {
    Auto,
    Off,
}

impl Default for AttentionSlice {
    fn default() -> Self {
        Self::Word(SliceWord::Auto)
    }
}

/// `kind = "stable-diffusion"`: a diffusers-layout Stable Diffusion pipeline (SD 1.x, 2.x,
/// SDXL and their Turbo variants) rendered in-process. The scheduler is the model's own
/// (`scheduler/scheduler_config.json`) unless overridden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StableDiffusionTarget {
    /// A diffusers pipeline folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/`,
    /// `tokenizer/`, `scheduler/`), or a Hugging Face hub id (cached, else downloaded).
    pub model: String,
    #[serde(default)]
    pub dtype: Dtype,
    /// `cpu` (the only device of this build).
    #[serde(default = "cpu")]
    pub device: String,
    /// Pixels; default: the model's native size (UNet `sample_size` x the VAE's scale).
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Classifier-free guidance scale; 1.0 or less turns guidance off (one UNet pass).
    #[serde(default = "sd_guidance")]
    pub guidance_scale: f64,
    #[serde(default = "sd_steps")]
    pub steps: u32,
    /// Literal text, `@paper` (the paper's fixed negative prompt, the default), or `""`.
    #[serde(default = "paper_negative")]
    pub negative_prompt: Option<String>,
    /// Replaces the model's scheduler (its config values are kept).
    #[serde(default)]
    pub scheduler: Option<SchedulerKind>,
    /// Replaces the scheduler's `timestep_spacing`.
    #[serde(default)]
    pub timestep_spacing: Option<TimestepSpacing>,
    #[serde(default)]
    pub attention_slice: AttentionSlice,
    /// Images per UNet call. 1 (the default) keeps every image independent of the batch it is
    /// rendered in (the engine's contract: candle's CPU matmuls round differently for
    /// different row counts); 0 runs the whole batch in one call.
    #[serde(default = "one_usize")]
    pub unet_batch: usize,
}
