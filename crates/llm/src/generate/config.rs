//! What a generation is asked and what it answers: [`GenerationConfig`] (transformers'
//! generation settings), [`GenRequest`], [`GenOutput`] and how it finished, [`StopCheck`].

use candle_core::Tensor;

/// transformers' `early_stopping` of beam search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// Stop when the best running beam cannot beat the worst finished one at the current
    /// length (transformers' default, `False`).
    #[default]
    Heuristic,
    /// Stop as soon as `num_beams` hypotheses are finished (`True`).
    Always,
    /// Canonical beam search: stop when no running beam can improve (`"never"`).
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    pub do_sample: bool,
    pub num_beams: usize,
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1.0 or more = off (the reference passes 5.0, i.e. no nucleus filter).
    pub top_p: f32,
    /// 1.0 = off.
    pub repetition_penalty: f32,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub eos_token_ids: Vec<u32>,
    /// Tokens whose probability at the first generated position each output reports
    /// ([`GenOutput::first_probs`]): the softmax of the model's raw logits there, before any
    /// processor (a judge's score, e.g. Llama Guard's "unsafe").
    pub score_tokens: Vec<u32>,
}

impl Default for GenerationConfig {
    /// transformers' defaults: greedy, 20 new tokens.
    fn default() -> Self {
        Self {
            max_new_tokens: 20,
            min_new_tokens: 0,
            do_sample: false,
            num_beams: 1,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            eos_token_ids: vec![],
            score_tokens: vec![],
        }
    }
}

impl GenerationConfig {
    /// The settings no generation can run with, in words naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_new_tokens == 0 {
            return Err("max_new_tokens must be at least 1".into());
        }
        if self.num_beams == 0 {
            return Err("num_beams must be at least 1".into());
        }
        if self.do_sample && !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!(
                "temperature must be a positive number when sampling, got {}",
                self.temperature
            ));
        }
        if self.top_p.is_nan() || self.top_p <= 0.0 {
            return Err(format!("top_p must be positive, got {}", self.top_p));
        }
        if self.repetition_penalty.is_nan() || self.repetition_penalty <= 0.0 {
            return Err(format!(
                "repetition_penalty must be positive, got {}",
                self.repetition_penalty
            ));
        }
        if self.min_new_tokens > self.max_new_tokens {
            return Err(format!(
                "min_new_tokens ({}) exceeds max_new_tokens ({})",
                self.min_new_tokens, self.max_new_tokens
            ));
        }
        Ok(())
    }
}

/// One sequence to continue.
#[derive(Debug, Clone, Copy)]
pub struct GenRequest<'a> {
    /// Prompt token ids (at least one). With `embeds`, the ids the logit processors see as
    /// the prompt (an image's positions hold its placeholder token).
    pub prompt: &'a [u32],
    /// The prompt's input embeddings ([prompt.len(), hidden], the model dtype) when they are
    /// not the embeddings of `prompt`: a vision-language prompt with image features.
    pub embeds: Option<&'a Tensor>,
    /// Seeds this request's sampling.
    pub seed: u64,
}

impl<'a> GenRequest<'a> {
    /// A text prompt.
    pub fn text(prompt: &'a [u32], seed: u64) -> Self {
        Self {
            prompt,
            embeds: None,
            seed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// An EOS token was generated (it ends `tokens`).
    Eos,
    /// `max_new_tokens` were generated.
    Length,
    /// A stop string was generated.
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenOutput {
    /// The new tokens (an EOS that ended the sequence included).
    pub tokens: Vec<u32>,
    pub finish: Finish,
    /// Beam search: the length-penalized score of the returned hypothesis.
    pub score: Option<f32>,
    /// The probabilities of [`GenerationConfig::score_tokens`] at the first position.
    pub first_probs: Vec<f32>,
}

/// Tells whether generated tokens end in a stop string (greedy and sampling only).
pub trait StopCheck {
    fn hit(&self, generated: &[u32]) -> bool;
}
