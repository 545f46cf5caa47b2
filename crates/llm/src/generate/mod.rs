//! Text generation with Hugging Face transformers' semantics (checked against transformers
//! 5.x by the golden tests): greedy, multinomial sampling, beam search and beam-sample, the
//! logit processors in transformers' order, minimum and maximum new tokens, EOS and stop
//! strings. A batch of independent requests (lanes) runs as one left-padded batch with
//! attention masks, positions from the mask and a KV cache; requests that finish leave the
//! batch, so the rest run smaller. Each request samples from its own generator seeded by its
//! own seed, so its output does not depend on the other requests.
//!
//! This is the stack shared by the Writer, the Guide's language model and Llama Guard.

mod beam;
pub mod logits;
mod search;

use crate::ModelError;
use crate::{CausalLm, KvCache};
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

/// The probabilities of `tokens` under the softmax of raw `logits`.
pub(crate) fn probs_of(logits: &[f32], tokens: &[u32]) -> Vec<f32> {
    if tokens.is_empty() {
        return vec![];
    }
    let p = logits::softmax(logits);
    tokens
        .iter()
        .map(|&t| p.get(t as usize).copied().unwrap_or(0.0))
        .collect()
}

/// Tells whether generated tokens end in a stop string (greedy and sampling only).
pub trait StopCheck {
    fn hit(&self, generated: &[u32]) -> bool;
}

/// Generates a continuation for every request. Stop strings (`stop`) are not supported with
/// beam search, as transformers' beam search does not stop individual beams on them.
pub fn generate(
    lm: &CausalLm,
    requests: &[GenRequest<'_>],
    cfg: &GenerationConfig,
    stop: Option<&dyn StopCheck>,
) -> Result<Vec<GenOutput>, ModelError> {
    cfg.validate().map_err(ModelError::Compute)?;
    if requests.is_empty() {
        return Ok(vec![]);
    }
    if let Some(i) = requests.iter().position(|r| r.prompt.is_empty()) {
        return Err(ModelError::Compute(format!(
            "request {i} has an empty prompt"
        )));
    }
    if cfg.num_beams > 1 {
        if stop.is_some() {
            return Err(ModelError::Compute(
                "stop strings are not supported with beam search (num_beams > 1)".into(),
            ));
        }
        beam::run(lm, requests, cfg)
    } else {
        search::run(lm, requests, cfg, stop)
    }
}

/// A uniform number in [0, 1) from a request's generator.
fn uniform(s: &mut art_core::SeedStream) -> f64 {
    (s.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One index drawn with probability proportional to `weights` (torch.multinomial's choice for
/// one sample); `None` when no weight is positive. Rounding that leaves the draw past the end
/// picks the last positive weight.
pub(crate) fn draw(weights: &[f64], rng: &mut art_core::SeedStream) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let mut u = uniform(rng) * total;
    let mut choice = None;
    for (i, &p) in weights.iter().enumerate() {
        if p > 0.0 {
            choice = Some(i);
            if u < p {
                break;
            }
            u -= p;
        }
    }
    choice
}

/// Prompts as one left-padded batch: the ids (pads are 0 and never attended to), the pad
/// count of each row, and the position ids `generate` gives them (`cumsum(mask) - 1`, pads
/// at 1).
#[derive(Debug, Clone)]
pub struct LeftPadded {
    /// [rows * len], row-major.
    pub ids: Vec<u32>,
    pub pads: Vec<usize>,
    pub positions: Vec<Vec<u32>>,
    pub len: usize,
}

impl LeftPadded {
    pub fn new(prompts: &[&[u32]]) -> Self {
        let len = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(prompts.len() * len);
        let mut pads = Vec::with_capacity(prompts.len());
        let mut positions = Vec::with_capacity(prompts.len());
        for p in prompts {
            let pad = len - p.len();
            ids.extend(std::iter::repeat_n(0u32, pad).chain(p.iter().copied()));
            pads.push(pad);
            positions.push(
                (0..len)
                    .map(|j| if j < pad { 1 } else { (j - pad) as u32 })
                    .collect(),
            );
        }
        Self {
            ids,
            pads,
            positions,
            len,
        }
    }
}

/// The requests' input embeddings left-padded with zeros (never attended to): [rows, t, hidden].
fn padded_embeds(
    lm: &CausalLm,
    requests: &[GenRequest<'_>],
    pads: &[usize],
) -> Result<Tensor, ModelError> {
    let hidden = lm.config().hidden_size;
    let mut rows = Vec::with_capacity(requests.len());
    for (i, (r, &pad)) in requests.iter().zip(pads).enumerate() {
        let e = match r.embeds {
            Some(e) => {
                if e.dims() != [r.prompt.len(), hidden] {
                    return Err(ModelError::Compute(format!(
                        "request {i}: embeddings are {:?}, expected [{}, {hidden}]",
                        e.dims(),
                        r.prompt.len()
                    )));
                }
                e.to_dtype(lm.dtype())?
            }
            None => lm.embed_ids(r.prompt)?,
        };
        rows.push(if pad > 0 {
            Tensor::cat(
                &[&Tensor::zeros((pad, hidden), lm.dtype(), lm.device())?, &e],
                0,
            )?
        } else {
            e
        });
    }
    Ok(Tensor::stack(&rows, 0)?)
}

/// The rows of a running batch: their tokens, their leading pad count, the next position id,
/// and the cache.
pub(crate) struct Rows<'m> {
    lm: &'m CausalLm,
    /// Real tokens of each row (prompt + generated).
    pub(crate) tokens: Vec<Vec<u32>>,
    pads: Vec<usize>,
    next_pos: Vec<u32>,
    cache: KvCache,
}

impl<'m> Rows<'m> {
    /// Runs the prompts as one left-padded batch; returns the rows and the last-position
    /// logits of each.
    pub(crate) fn prefill(
        lm: &'m CausalLm,
        requests: &[GenRequest<'_>],
    ) -> Result<(Self, Vec<Vec<f32>>), ModelError> {
        let prompts: Vec<&[u32]> = requests.iter().map(|r| r.prompt).collect();
        let LeftPadded {
            ids,
            pads,
            positions,
            len: t,
        } = LeftPadded::new(&prompts);
        let mut cache = lm.new_cache();
        let logits = if requests.iter().all(|r| r.embeds.is_none()) {
            let ids = Tensor::from_vec(ids, (prompts.len(), t), lm.device())?;
            lm.forward(&ids, &positions, &pads, &mut cache, true)?
        } else {
            let x = padded_embeds(lm, requests, &pads)?;
            lm.forward_embeds(&x, &positions, &pads, &mut cache, true)?
        };
        let rows = Self {
            lm,
            tokens: prompts.iter().map(|p| p.to_vec()).collect(),
            pads,
            next_pos: prompts.iter().map(|p| p.len() as u32).collect(),
            cache,
        };
        Ok((rows, logits.to_vec2::<f32>()?))
    }

    /// Keeps rows `from` (in order, repeats allowed) — beam reordering, or dropping rows.
    pub(crate) fn select(&mut self, from: &[usize]) -> Result<(), ModelError> {
        let idx: Vec<u32> = from.iter().map(|&i| i as u32).collect();
        self.cache.select_rows(&idx)?;
        self.tokens = from.iter().map(|&i| self.tokens[i].clone()).collect();
        self.pads = from.iter().map(|&i| self.pads[i]).collect();
        self.next_pos = from.iter().map(|&i| self.next_pos[i]).collect();
        Ok(())
    }

    /// Appends one token per row and returns the next logits.
    pub(crate) fn step(&mut self, next: &[u32]) -> Result<Vec<Vec<f32>>, ModelError> {
        let n = next.len();
        let ids = Tensor::from_vec(next.to_vec(), (n, 1), self.lm.device())?;
        let positions: Vec<Vec<u32>> = self.next_pos.iter().map(|&p| vec![p]).collect();
        for (i, &tok) in next.iter().enumerate() {
            self.tokens[i].push(tok);
            self.next_pos[i] += 1;
        }
        let logits = self
            .lm
            .forward(&ids, &positions, &self.pads, &mut self.cache, true)?;
        Ok(logits.to_vec2::<f32>()?)
    }
}
