//! [`CampaignSpec`]: what the engine needs to know about a campaign, resolved once from its
//! config (categories looked up, limits clamped), so the scheduler, the lanes and the
//! evaluation read plain values and never the config itself. A module of its own so that the
//! modules using it import it from here rather than from the crate root that re-exports them.

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
    /// Per-lane seed prompts; when set they replace `seed_prompt` (see
    /// [`plan_lanes`](crate::plan_lanes)).
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
