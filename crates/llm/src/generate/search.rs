//! Greedy decoding and multinomial sampling (transformers' `_sample`): processors on the raw
//! logits, then argmax, or a draw from the softmax with the request's own generator.

use super::config::{Finish, GenOutput, GenRequest, GenerationConfig, StopCheck};
use super::logits::{Processors, argmax, softmax};
use super::rows::{Rows, draw, probs_of};
use crate::CausalLm;
use crate::ModelError;
use art_core::SeedStream;

pub(super) fn run(
    lm: &CausalLm,
    requests: &[GenRequest<'_>],
    cfg: &GenerationConfig,
    stop: Option<&dyn StopCheck>,
) -> Result<Vec<GenOutput>, ModelError> {
    let procs = Processors::new(cfg);
    let (mut rows, mut logits) = Rows::prefill(lm, requests)?;
    let mut first: Vec<Vec<f32>> = logits
        .iter()
        .map(|l| probs_of(l, &cfg.score_tokens))
        .collect();
    let mut rngs: Vec<SeedStream> = requests.iter().map(|r| SeedStream::new(r.seed)).collect();
    let mut out: Vec<Option<GenOutput>> = vec![None; requests.len()];
    let mut generated: Vec<Vec<u32>> = vec![vec![]; requests.len()];
    // Row i of the batch serves request active[i].
    let mut active: Vec<usize> = (0..requests.len()).collect();
    loop {
        let mut next = Vec::with_capacity(active.len());
        let mut keep = Vec::with_capacity(active.len());
        for (row, &req) in active.iter().enumerate() {
            let scores = &mut logits[row];
            procs.apply(scores, &rows.tokens[row], generated[req].len());
            let tok = if cfg.do_sample {
                let probs: Vec<f64> = softmax(scores).into_iter().map(f64::from).collect();
                draw(&probs, &mut rngs[req]).unwrap_or(0)
            } else {
                argmax(scores)
            } as u32;
            generated[req].push(tok);
            let finish = if cfg.eos_token_ids.contains(&tok) {
                Some(Finish::Eos)
            } else if stop.is_some_and(|s| s.hit(&generated[req])) {
                Some(Finish::Stop)
            } else if generated[req].len() >= cfg.max_new_tokens {
                Some(Finish::Length)
            } else {
                None
            };
            match finish {
                Some(finish) => {
                    out[req] = Some(GenOutput {
                        tokens: std::mem::take(&mut generated[req]),
                        finish,
                        score: None,
                        first_probs: std::mem::take(&mut first[req]),
                    })
                }
                None => {
                    keep.push(row);
                    next.push(tok);
                }
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() {
            rows.select(&keep)?;
            active = keep.iter().map(|&r| active[r]).collect();
        }
        logits = rows.step(&next)?;
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every request finished"))
        .collect())
}
