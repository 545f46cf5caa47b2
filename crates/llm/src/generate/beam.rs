//! Beam search and beam-sample as transformers 5.x's vectorized `_beam_search` computes them:
//! per step, log-softmax, the processors (and, when sampling, the warpers) on each beam's
//! log-probabilities, plus the beam's running score; the best (or, sampling, drawn without
//! replacement) `K = max(2, 1 + #eos) * num_beams` continuations over all beams; finished
//! hypotheses scored `sum_logprobs / generated_len ^ length_penalty` (only among the top
//! `num_beams`); the best non-finished `num_beams` continue; and transformers'
//! early-stopping rules. A request leaves the batch as soon as it cannot change any more,
//! which gives the same result as running it to the end.

use super::config::{EarlyStopping, Finish, GenOutput, GenRequest, GenerationConfig};
use super::logits::{Processors, log_softmax, softmax};
use super::rows::{Rows, draw, probs_of};
use crate::CausalLm;
use crate::ModelError;
use art_core::SeedStream;

const NEG: f32 = -1.0e9;

struct Hyp {
    tokens: Vec<u32>,
    score: f32,
}

struct Item {
    /// Running beam scores, best first (the beam tokens live in the batch rows).
    scores: Vec<f32>,
    finished: Vec<Hyp>,
    improvable: bool,
    rng: SeedStream,
    prompt_len: usize,
    out: Option<GenOutput>,
}

/// The `k` best (value, index) pairs, best first; among equal values the lower index first.
fn top_k(values: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (i, &v) in values.iter().enumerate() {
        if best.len() == k && v <= best[k - 1].0 {
            continue;
        }
        let pos = best.partition_point(|&(b, _)| b >= v);
        best.insert(pos, (v, i));
        best.truncate(k);
    }
    best
}

/// `k` indices drawn without replacement with probabilities `softmax(values)`, returned with
/// their values sorted best first (torch.multinomial, then sort).
fn sample_k(values: &[f32], k: usize, rng: &mut SeedStream) -> Vec<(f32, usize)> {
    let mut w: Vec<f64> = softmax(values).into_iter().map(f64::from).collect();
    let mut picked = Vec::with_capacity(k);
    for _ in 0..k {
        let Some(i) = draw(&w, rng) else { break };
        w[i] = 0.0;
        picked.push((values[i], i));
    }
    picked.sort_by(|a, b| b.0.total_cmp(&a.0));
    picked
}

pub(super) fn run(
    lm: &CausalLm,
    requests: &[GenRequest<'_>],
    cfg: &GenerationConfig,
) -> Result<Vec<GenOutput>, ModelError> {
    let nb = cfg.num_beams;
    let vocab = lm.config().vocab_size;
    let keep_k = 2.max(1 + cfg.eos_token_ids.len()) * nb;
    let procs = Processors::new(cfg);
    let (mut rows, first) = Rows::prefill(lm, requests)?;
    let first_probs: Vec<Vec<f32>> = first
        .iter()
        .map(|l| probs_of(l, &cfg.score_tokens))
        .collect();
    // Every request's prompt is run once, then its cache is copied to its beams.
    let expand: Vec<usize> = (0..requests.len())
        .flat_map(|i| std::iter::repeat_n(i, nb))
        .collect();
    rows.select(&expand)?;
    let mut logits: Vec<Vec<f32>> = expand.iter().map(|&i| first[i].clone()).collect();
    let mut items: Vec<Item> = requests
        .iter()
        .map(|r| Item {
            scores: std::iter::once(0.0)
                .chain(std::iter::repeat_n(NEG, nb - 1))
                .collect(),
            finished: vec![],
            improvable: true,
            rng: SeedStream::new(r.seed),
            prompt_len: r.prompt.len(),
            out: None,
        })
        .collect();
    let mut active: Vec<usize> = (0..requests.len()).collect();
    let mut generated = 0usize;
    let mut acc = vec![0f32; nb * vocab];
    loop {
        let mut parents = Vec::with_capacity(active.len() * nb);
        let mut next = Vec::with_capacity(active.len() * nb);
        let mut still = Vec::with_capacity(active.len());
        for (slot, &ri) in active.iter().enumerate() {
            let item = &mut items[ri];
            let base = slot * nb;
            for b in 0..nb {
                let row = &mut logits[base + b];
                log_softmax(row);
                procs.apply(row, &rows.tokens[base + b], generated);
                let s = item.scores[b];
                for (a, &x) in acc[b * vocab..(b + 1) * vocab].iter_mut().zip(row.iter()) {
                    *a = x + s;
                }
            }
            let cands = if cfg.do_sample {
                sample_k(&acc, keep_k, &mut item.rng)
            } else {
                top_k(&acc, keep_k)
            };
            let at_max = generated + 1 >= cfg.max_new_tokens;
            let hits: Vec<bool> = cands
                .iter()
                .map(|&(_, idx)| at_max || cfg.eos_token_ids.contains(&((idx % vocab) as u32)))
                .collect();
            let plen = item.prompt_len;
            let tokens_of = |idx: usize| {
                let row = &rows.tokens[base + idx / vocab];
                let mut t = row[plen..].to_vec();
                t.push((idx % vocab) as u32);
                t
            };

            // Finished hypotheses: only the top `nb` candidates count.
            let full = item.finished.len() == nb;
            let closed = !item.improvable || (full && cfg.early_stopping == EarlyStopping::Always);
            if !closed {
                let len_pen = ((generated + 1) as f64).powf(cfg.length_penalty as f64) as f32;
                for (c, &(v, idx)) in cands.iter().enumerate().take(nb) {
                    if hits[c] {
                        item.finished.push(Hyp {
                            tokens: tokens_of(idx),
                            score: v / len_pen,
                        });
                    }
                }
                // Stable: earlier entries win ties, as in transformers' merge.
                item.finished.sort_by(|a, b| b.score.total_cmp(&a.score));
                item.finished.truncate(nb);
            }

            // The beams that continue: the best `nb` candidates, finished ones pushed down.
            let mut cont: Vec<(f32, usize)> = cands
                .iter()
                .zip(&hits)
                .map(|(&(v, idx), &h)| (if h { v + NEG } else { v }, idx))
                .collect();
            cont.sort_by(|a, b| b.0.total_cmp(&a.0));
            cont.truncate(nb);
            item.scores = cont.iter().map(|c| c.0).collect();

            let best_len = if cfg.early_stopping == EarlyStopping::Never && cfg.length_penalty > 0.0
            {
                cfg.max_new_tokens
            } else {
                generated + 1
            };
            let best_possible =
                item.scores[0] / ((best_len as f64).powf(cfg.length_penalty as f64) as f32);
            let worst = if item.finished.len() == nb {
                item.finished
                    .iter()
                    .map(|h| h.score)
                    .fold(f32::INFINITY, f32::min)
            } else {
                NEG
            };
            item.improvable = item.improvable && best_possible > worst;
            let done = !item.improvable
                || (item.finished.len() == nb && cfg.early_stopping == EarlyStopping::Always)
                || hits.iter().all(|&h| h);
            if done {
                let out = match item.finished.first() {
                    Some(h) => GenOutput {
                        tokens: h.tokens.clone(),
                        finish: finish_of(&h.tokens, cfg),
                        score: Some(h.score),
                        first_probs: first_probs[ri].clone(),
                    },
                    None => {
                        let t = tokens_of(cont[0].1);
                        GenOutput {
                            finish: finish_of(&t, cfg),
                            tokens: t,
                            score: Some(cont[0].0),
                            first_probs: first_probs[ri].clone(),
                        }
                    }
                };
                item.out = Some(out);
            } else {
                still.push(ri);
                for &(_, idx) in &cont {
                    parents.push(base + idx / vocab);
                    next.push((idx % vocab) as u32);
                }
            }
        }
        if still.is_empty() {
            break;
        }
        rows.select(&parents)?;
        active = still;
        generated += 1;
        logits = rows.step(&next)?;
    }
    Ok(items
        .into_iter()
        .map(|i| i.out.expect("every request finished"))
        .collect())
}

fn finish_of(tokens: &[u32], cfg: &GenerationConfig) -> Finish {
    match tokens.last() {
        Some(t) if cfg.eos_token_ids.contains(t) => Finish::Eos,
        _ => Finish::Length,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_prefers_lower_indices_on_ties() {
        let v = [1.0, 5.0, 3.0, 5.0, 4.0];
        assert_eq!(top_k(&v, 3), vec![(5.0, 1), (5.0, 3), (4.0, 4)]);
    }

    #[test]
    fn sampling_without_replacement_never_repeats_and_skips_impossible() {
        let v = [0.0, f32::NEG_INFINITY, 0.0, 0.0];
        let mut rng = SeedStream::new(7);
        let got = sample_k(&v, 4, &mut rng);
        let mut idx: Vec<usize> = got.iter().map(|g| g.1).collect();
        idx.sort();
        assert_eq!(idx, [0, 2, 3], "the impossible token is never drawn");
    }
}
