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
mod config;
pub mod logits;
mod rows;
mod search;

pub use config::{EarlyStopping, Finish, GenOutput, GenRequest, GenerationConfig, StopCheck};
pub use rows::LeftPadded;

use crate::CausalLm;
use crate::ModelError;

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
