//! Lanes: planning them from a spec, and the in-memory state of a lane's current round.

use crate::spec::CampaignSpec;
use crate::stage::StageName;
use art_core::{Category, Image, seed::lane_seed};
use art_store::{GuideRecord, JudgmentRecord, LaneRecord, NewLane, RenderRecord, WriterRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One lane per (category, seed number), categories in config order, then seeds in order.
/// With per-lane seed prompts, the lane of seed number `s` starts from prompt `s` of its
/// category's list, and a seed number past the end of that list plans no lane.
pub fn plan_lanes(spec: &CampaignSpec) -> Vec<NewLane> {
    spec.categories
        .iter()
        .flat_map(|c| {
            spec.seeds.iter().filter_map(move |&s| {
                let seed_prompt = match &spec.seed_prompts {
                    Some(sp) => sp.get(&c.name, s)?,
                    None => &spec.seed_prompt,
                };
                Some(NewLane {
                    category: c.name.clone(),
                    seed_index: s,
                    lane_seed: lane_seed(spec.seed, &c.name, s),
                    seed_prompt: seed_prompt.to_string(),
                })
            })
        })
        .collect()
}

/// A lane while the engine works on one of its rounds.
#[derive(Debug)]
pub(crate) struct LaneState {
    pub lane: LaneRecord,
    pub category: Arc<Category>,
    pub keywords: Arc<str>,
    /// The round being worked on.
    pub round: u32,
    /// This round's prompt (round 0: the seed prompt).
    pub prompt: Arc<str>,
    // What the current round has produced so far.
    pub render: Option<RenderRecord>,
    pub image: Option<Arc<Image>>,
    pub guide: Option<GuideRecord>,
    pub writer: Option<WriterRecord>,
    /// Judgments by subject; `None` until that subject's judges have run.
    pub prompt_judgments: Option<Vec<JudgmentRecord>>,
    pub image_judgments: Option<Vec<JudgmentRecord>>,
    pub timings_ms: BTreeMap<String, f64>,
    /// Stages with a batch in flight that includes this lane.
    pub in_flight: Vec<StageName>,
    /// Set when a role failed for this lane in this round.
    pub failure: Option<String>,
    /// Finished (last round committed) or failed (failure recorded): nothing more to do.
    pub retired: bool,
    /// A baseline lane: fixed prompts, no writer or guide.
    pub fixed: bool,
}

impl LaneState {
    pub fn new(
        lane: LaneRecord,
        category: Arc<Category>,
        separator: &str,
        round: u32,
        prompt: String,
    ) -> Self {
        let keywords = category.keywords_joined(separator).into();
        Self {
            lane,
            category,
            keywords,
            round,
            prompt: prompt.into(),
            render: None,
            image: None,
            guide: None,
            writer: None,
            prompt_judgments: None,
            image_judgments: None,
            timings_ms: BTreeMap::new(),
            in_flight: Vec::new(),
            failure: None,
            retired: false,
            fixed: false,
        }
    }

    /// Start the next round with the prompt this round's writer produced (or, in a baseline,
    /// the next fixed prompt).
    pub fn advance(&mut self, fixed: Option<String>) {
        let next = match fixed {
            Some(p) => p,
            None => self
                .writer
                .take()
                .map(|w| w.output)
                .expect("advance only after the writer stage"),
        };
        self.round += 1;
        self.prompt = next.into();
        self.render = None;
        self.image = None;
        self.guide = None;
        self.prompt_judgments = None;
        self.image_judgments = None;
        self.timings_ms.clear();
    }

    pub fn add_time(&mut self, stage: &str, ms: f64) {
        *self.timings_ms.entry(stage.to_string()).or_default() += ms;
    }

    /// Whether this lane's current round needs `stage` now (its inputs are there, it has not
    /// run, and no batch with it is in flight), in a campaign of `r_max` rounds: round 0 only
    /// writes, round R+1 only renders and judges, the guide and image judges need an image, and
    /// the writer needs the guide's answer (or a refused render, which has none).
    pub fn ready_for(&self, stage: StageName, r_max: u32) -> bool {
        if self.retired || self.failure.is_some() || self.in_flight.contains(&stage) {
            return false;
        }
        let rendered = self.render.is_some();
        match stage {
            StageName::Target => self.round >= 1 && !rendered,
            StageName::PromptJudges => self.round >= 1 && self.prompt_judgments.is_none(),
            StageName::Guide => self.round <= r_max && self.image.is_some() && self.guide.is_none(),
            StageName::ImageJudges => self.image.is_some() && self.image_judgments.is_none(),
            StageName::Writer => {
                self.round <= r_max
                    && self.writer.is_none()
                    && (self.round == 0
                        || self.guide.is_some()
                        || (rendered && self.image.is_none()))
            }
            StageName::Commit => false,
        }
    }

    /// Whether every stage this round needs has produced its result.
    pub fn complete(&self, r_max: u32) -> bool {
        if self.retired || self.failure.is_some() || !self.in_flight.is_empty() {
            return false;
        }
        let judged = self.round == 0
            || (self.render.is_some()
                && self.prompt_judgments.is_some()
                && (self.image.is_none() || self.image_judgments.is_some()));
        let guided =
            self.round == 0 || self.round > r_max || self.image.is_none() || self.guide.is_some();
        let written = self.round > r_max || self.writer.is_some();
        judged && guided && written
    }
}
