//! The batch a generation works on: prompts as one left-padded batch ([`LeftPadded`]), the
//! rows still generating with their KV cache (`Rows`), and the draws and probabilities both
//! search strategies take from a row's logits.

use super::config::GenRequest;
use super::logits;
use crate::ModelError;
use crate::{CausalLm, KvCache};
use candle_core::Tensor;

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
        let logits = finite_rows(logits.to_vec2::<f32>()?, "the prompt")?;
        Ok((rows, logits))
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
        finite_rows(logits.to_vec2::<f32>()?, "a generated token")
    }
}

/// The model's logits, refused when any is non-finite: a NaN row would make greedy search,
/// sampling and beam scores pick tokens by accident, and the writer's, the guide's or Llama
/// Guard's answer would read as a real one.
fn finite_rows(rows: Vec<Vec<f32>>, after: &str) -> Result<Vec<Vec<f32>>, ModelError> {
    for (r, row) in rows.iter().enumerate() {
        art_nn::finite(&format!("the logits after {after} (batch row {r})"), row)?;
    }
    Ok(rows)
}
