//! Lanes: planning them from a spec, and the in-memory state of a lane's current round.

use crate::CampaignSpec;
use art_core::{Category, Image, seed::lane_seed};
use art_store::{GuideRecord, JudgmentRecord, LaneRecord, NewLane, RenderRecord, WriterRecord};
use std::collections::BTreeMap;

/// One lane per (category, seed number), categories in config order, then seeds in order.
pub fn plan_lanes(spec: &CampaignSpec) -> Vec<NewLane> {
    spec.categories
        .iter()
        .flat_map(|c| {
            spec.seeds.iter().map(move |&s| NewLane {
                category: c.name.clone(),
                seed_index: s,
                lane_seed: lane_seed(spec.seed, &c.name, s),
                seed_prompt: spec.seed_prompt.clone(),
            })
        })
        .collect()
}

/// A lane while the engine works on one of its rounds.
#[derive(Debug)]
pub(crate) struct LaneState {
    pub lane: LaneRecord,
    pub category: Category,
    pub keywords: String,
    /// The round being worked on.
    pub round: u32,
    /// This round's prompt (round 0: the seed prompt).
    pub prompt: String,
    // What the current round has produced so far.
    pub render: Option<RenderRecord>,
    pub image: Option<Image>,
    pub guide: Option<GuideRecord>,
    pub writer: Option<WriterRecord>,
    pub judgments: Vec<JudgmentRecord>,
    pub timings_ms: BTreeMap<String, f64>,
    /// Set when a role failed for this lane in this round.
    pub failure: Option<String>,
}

impl LaneState {
    pub fn new(
        lane: LaneRecord,
        category: Category,
        separator: &str,
        round: u32,
        prompt: String,
    ) -> Self {
        let keywords = category.keywords_joined(separator);
        Self {
            lane,
            category,
            keywords,
            round,
            prompt,
            render: None,
            image: None,
            guide: None,
            writer: None,
            judgments: Vec::new(),
            timings_ms: BTreeMap::new(),
            failure: None,
        }
    }

    /// Start the next round with the prompt this round's writer produced.
    pub fn advance(&mut self) {
        let next = self
            .writer
            .take()
            .map(|w| w.output)
            .expect("advance only after the writer stage");
        self.round += 1;
        self.prompt = next;
        self.render = None;
        self.image = None;
        self.guide = None;
        self.judgments.clear();
        self.timings_ms.clear();
    }

    pub fn add_time(&mut self, stage: &str, ms: f64) {
        *self.timings_ms.entry(stage.to_string()).or_default() += ms;
    }
}
