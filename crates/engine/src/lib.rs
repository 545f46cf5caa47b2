//! `art-engine`: runs an ART campaign against a store.
//!
//! A campaign is categories x seeds = lanes. Every lane runs the loop of the method: round 0 is
//! the Writer's initial rewrite of the seed prompt (with an empty instruction), rounds 1..=R
//! render, guide, judge and write, and round R+1 renders and judges the last prompt. The engine
//! gathers the requests of every lane that is ready for a role into batches of at most
//! `batch_size`, and runs the stages concurrently (see [`Engine`]'s scheduler), so every role
//! is kept busy.
//!
//! Guarantees, each covered by tests:
//! * every random choice comes from a seed derived from (campaign seed, lane, round, item), so a
//!   re-run, a resumed run and a run at another batch size store the same records;
//! * every finished round is committed in one transaction as soon as its stage completes, so a
//!   killed process loses at most the round each lane was working on, and `run` on an existing
//!   store (resume) continues each lane from its last committed round;
//! * a stop request (Ctrl-C) is honoured after the batches in flight: completed rounds are
//!   committed, the rest is redone on resume;
//! * a role failing for an item fails that lane (stored with the error; resume retries it), never
//!   the other lanes; a judge failing is recorded as that judge's error.

mod eval;
mod lane;
mod run;
mod work;

pub use eval::{EvalEvent, EvalSummary, Evaluator};
pub use lane::plan_lanes;
pub use run::{Engine, EngineError, Event, Roles, RunSummary, StageName};

use art_config::Config;
use art_core::{Categories, CategoryError};

/// What the engine needs to know about a campaign, resolved from its config.
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    pub seed: u64,
    pub rounds: u32,
    pub batch_size: usize,
    /// How many role stages may run at once (1..=5).
    pub parallel_roles: usize,
    pub keyword_separator: String,
    pub seed_prompt: String,
    /// Per-lane seed prompts; when set they replace `seed_prompt` (see [`plan_lanes`]).
    pub seed_prompts: Option<std::sync::Arc<art_config::SeedPrompts>>,
    pub seeds: Vec<u64>,
    /// The categories the campaign runs, in config order.
    pub categories: Vec<art_core::Category>,
    /// A baseline's fixed prompts: lanes render and judge them in order as rounds 1..=N,
    /// with no writer and no guide.
    pub fixed_prompts: Option<std::sync::Arc<[String]>>,
}

impl CampaignSpec {
    pub fn from_config(config: &Config) -> Result<Self, CategoryError> {
        let c = &config.campaign;
        let categories = match &c.baseline {
            // A baseline's lanes carry its label; no writer or guide needs keywords.
            Some(b) => vec![art_core::Category {
                name: b.label.clone(),
                keywords: Vec::new(),
            }],
            None => {
                let known = Categories::with_user(&config.category)?;
                c.categories
                    .iter()
                    .map(|n| known.get(n).cloned())
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(Self {
            seed: c.seed,
            rounds: c.rounds,
            batch_size: c.batch_size.max(1),
            parallel_roles: c.parallel_roles.clamp(1, 5),
            keyword_separator: c.keyword_separator.clone(),
            seed_prompt: c.seed_prompt.clone(),
            seed_prompts: c.seed_prompts.clone().map(Into::into),
            seeds: c.seeds.clone(),
            categories,
            fixed_prompts: c.baseline.as_ref().map(|b| b.prompts.clone().into()),
        })
    }

    /// The first round a lane commits: 0 (the writer's first rewrite), or 1 in a baseline.
    pub fn first_round(&self) -> u32 {
        if self.fixed_prompts.is_some() { 1 } else { 0 }
    }

    /// The last round of a lane: R+1, or the number of prompts in a baseline.
    pub fn final_round(&self) -> u32 {
        match &self.fixed_prompts {
            Some(p) => p.len() as u32,
            None => self.rounds + 1,
        }
    }

    /// Rounds every lane commits: round 0, rounds 1..=R and round R+1 (a baseline: one per
    /// prompt).
    pub fn rounds_per_lane(&self) -> u64 {
        u64::from(self.final_round() - self.first_round()) + 1
    }

    /// The prompt of `round` in a baseline.
    pub(crate) fn fixed_prompt(&self, round: u32) -> Option<&str> {
        let p = self.fixed_prompts.as_ref()?;
        p.get(round.checked_sub(1)? as usize).map(String::as_str)
    }
}
