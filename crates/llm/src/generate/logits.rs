//! Logit processors and warpers with transformers' semantics, in transformers' order:
//! repetition penalty, minimum new tokens, then (sampling only) temperature, top-k, top-p.
//! Each works on one row of f32 scores in place; `-inf` removes a token.
//!
//! The repetition penalty sees a sequence's own tokens (prompt and generated), never the pad
//! tokens of a left-padded batch: transformers 5's `generate` does the same (it skips the
//! pads), while older versions also penalized the pad token.

use super::config::GenerationConfig;

/// `score < 0 ? score * p : score / p` for every token id that occurs in `tokens`.
pub fn repetition_penalty(row: &mut [f32], tokens: &[u32], penalty: f32) {
    let mut seen = vec![false; row.len()];
    for &t in tokens {
        if let Some(s) = seen.get_mut(t as usize) {
            *s = true;
        }
    }
    for (x, s) in row.iter_mut().zip(seen) {
        if s {
            *x = if *x < 0.0 { *x * penalty } else { *x / penalty };
        }
    }
}

/// While fewer than `min` tokens were generated, end-of-sequence tokens are impossible.
pub fn min_new_tokens(row: &mut [f32], generated: usize, min: usize, eos: &[u32]) {
    if generated < min {
        for &e in eos {
            if let Some(x) = row.get_mut(e as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
    }
}

pub fn temperature(row: &mut [f32], t: f32) {
    for x in row.iter_mut() {
        *x /= t;
    }
}

/// Keeps the tokens scoring at least the `max(k, min_keep)`-th best score (ties included).
pub fn top_k(row: &mut [f32], k: usize, min_keep: usize) {
    let k = k.max(min_keep).min(row.len());
    if k == 0 || k == row.len() {
        return;
    }
    let mut sorted = row.to_vec();
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    for x in row.iter_mut() {
        if *x < kth {
            *x = f32::NEG_INFINITY;
        }
    }
}

/// Nucleus filtering: sorted ascending, tokens whose cumulative probability is at most
/// `1 - p` are removed, always keeping the `min_keep` best.
pub fn top_p(row: &mut [f32], p: f32, min_keep: usize) {
    let n = row.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
    let max = row[order[n - 1]];
    let exps: Vec<f32> = order.iter().map(|&i| (row[i] - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let mut cum = 0f32;
    let limit = 1.0 - p;
    let mut remove = vec![false; n];
    for (rank, e) in exps.iter().enumerate() {
        cum += e / sum;
        remove[rank] = cum <= limit;
    }
    for r in remove.iter_mut().skip(n.saturating_sub(min_keep)) {
        *r = false;
    }
    for (rank, &i) in order.iter().enumerate() {
        if remove[rank] {
            row[i] = f32::NEG_INFINITY;
        }
    }
}

/// The processor chain of one generation configuration.
#[derive(Debug, Clone)]
pub struct Processors {
    repetition_penalty: Option<f32>,
    min_new_tokens: usize,
    eos: Vec<u32>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    /// Beam methods keep at least one token besides every EOS token.
    min_keep: usize,
}

impl Processors {
    pub fn new(cfg: &GenerationConfig) -> Self {
        let sample = cfg.do_sample;
        Self {
            repetition_penalty: (cfg.repetition_penalty != 1.0).then_some(cfg.repetition_penalty),
            min_new_tokens: cfg.min_new_tokens,
            eos: cfg.eos_token_ids.clone(),
            temperature: (sample && cfg.temperature != 1.0).then_some(cfg.temperature),
            top_k: (sample && cfg.top_k != 0).then_some(cfg.top_k),
            top_p: (sample && cfg.top_p < 1.0).then_some(cfg.top_p),
            min_keep: if cfg.num_beams > 1 {
                cfg.eos_token_ids.len() + 1
            } else {
                1
            },
        }
    }

    /// Applies the chain to `row`, the scores of a sequence whose tokens (prompt and
    /// generated, no padding) are `tokens`, `generated` of them new.
    pub fn apply(&self, row: &mut [f32], tokens: &[u32], generated: usize) {
        if let Some(p) = self.repetition_penalty {
            repetition_penalty(row, tokens, p);
        }
        if self.min_new_tokens > 0 && !self.eos.is_empty() {
            min_new_tokens(row, generated, self.min_new_tokens, &self.eos);
        }
        if let Some(t) = self.temperature {
            temperature(row, t);
        }
        if let Some(k) = self.top_k {
            top_k(row, k, self.min_keep);
        }
        if let Some(p) = self.top_p {
            top_p(row, p, self.min_keep);
        }
    }
}

/// Softmax of a row in f32 (max-shifted), as torch computes it.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Log-softmax of a row in f32, max-shifted, as `torch.nn.functional.log_softmax`.
pub fn log_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|x| (x - max).exp()).sum();
    let lse = max + sum.ln();
    for x in row.iter_mut() {
        *x -= lse;
    }
}

/// The index of the first maximum (torch.argmax's choice among ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    const NI: f32 = f32::NEG_INFINITY;

    #[test]
    fn penalty_divides_positive_and_multiplies_negative_scores() {
        let mut r = vec![2.0, -2.0, 1.0];
        repetition_penalty(&mut r, &[0, 1, 1], 2.0);
        assert_eq!(r, [1.0, -4.0, 1.0]);
    }

    #[test]
    fn top_k_keeps_ties_and_min_keep() {
        let mut r = vec![1.0, 3.0, 3.0, 2.0];
        top_k(&mut r, 1, 1);
        assert_eq!(r, [NI, 3.0, 3.0, NI]);
        let mut r = vec![1.0, 4.0, 3.0, 2.0];
        top_k(&mut r, 1, 2);
        assert_eq!(r, [NI, 4.0, 3.0, NI]);
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // probabilities ~ [0.64, 0.24, 0.09, 0.03]
        let mut r = vec![3.0, 2.0, 1.0, 0.0];
        top_p(&mut r, 0.8, 1);
        assert_eq!(r, [3.0, 2.0, NI, NI]);
    }

    #[test]
    fn log_softmax_matches_definition() {
        let mut r = vec![1.0f32, 2.0, 3.0];
        log_softmax(&mut r);
        let s: f32 = r.iter().map(|x| x.exp()).sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!((r[2] - r[1] - 1.0).abs() < 1e-6);
        assert_eq!(softmax(&[0.0, 0.0]), [0.5, 0.5]);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 5.0, 5.0]), 1);
    }
}
