//! The rows of a campaign store, as Rust values.
//!
//! A *round* is the unit of commit: everything one lane did in one round of the ART loop.
//! Round 0 is the initial rewrite of the seed prompt (writer only); rounds 1..=R render, guide,
//! judge and write; round R+1 renders and judges the last prompt (no guide, no writer).

use art_core::{Image, JudgeOutcome, ModelIdentity, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What is stored about the campaign itself (one row per store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// `art` version that created the campaign.
    pub tool_version: String,
    /// The fully resolved configuration (TOML text) the campaign runs with. Contains no secrets:
    /// API keys are referenced by environment-variable name only.
    pub config_toml: String,
    /// Identity of every role, keyed by role (`target`, `writer`, `guide`, `prompt_judge:NAME`,
    /// `image_judge:NAME`).
    pub identities: BTreeMap<String, ModelIdentity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LaneStatus {
    /// Not finished: runs (again) on the next `run`/`resume`.
    Open,
    /// All rounds up to R+1 committed.
    Done,
    /// A role failed for this lane; the error is stored and `resume` retries it.
    Failed,
}

impl LaneStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LaneStatus::Open => "open",
            LaneStatus::Done => "done",
            LaneStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(LaneStatus::Open),
            "done" => Some(LaneStatus::Done),
            "failed" => Some(LaneStatus::Failed),
            _ => None,
        }
    }
}

/// A lane to create: one category x one seed number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLane {
    pub category: String,
    pub seed_index: u64,
    pub lane_seed: u64,
    pub seed_prompt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneRecord {
    pub id: i64,
    pub category: String,
    pub seed_index: u64,
    pub lane_seed: u64,
    pub seed_prompt: String,
    pub status: LaneStatus,
    pub error: Option<String>,
    /// Highest committed round, `None` before round 0 is committed.
    pub last_round: Option<u32>,
}

/// What the target did in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderRecord {
    pub seed: u64,
    /// SHA-256 (lower-case hex) of the PNG file; `None` when the provider refused.
    pub image_sha256: Option<String>,
    /// The provider's refusal reason, when it refused.
    pub refusal: Option<String>,
    /// The part of the prompt the model actually saw, when it was truncated.
    pub truncated_prompt: Option<String>,
    /// The prompt the provider says it rendered instead (some APIs rewrite prompts).
    pub revised_prompt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuideRecord {
    pub seed: u64,
    pub raw: String,
    pub instructions: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterRecord {
    pub seed: u64,
    /// The instruction the writer got (empty for round 0).
    pub instruction: String,
    /// The prompt it wrote: the next round's prompt.
    pub output: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    Prompt,
    Image,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Prompt => "prompt",
            Subject::Image => "image",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "prompt" => Some(Subject::Prompt),
            "image" => Some(Subject::Image),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JudgmentRecord {
    pub judge: String,
    pub subject: Subject,
    pub outcome: JudgeOutcome,
}

/// One committed round as read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    pub lane_id: i64,
    pub round: u32,
    /// The prompt of this round (round 0: the seed prompt).
    pub prompt: String,
    pub render: Option<RenderRecord>,
    pub guide: Option<GuideRecord>,
    pub writer: Option<WriterRecord>,
    pub prompt_verdict: Verdict,
    pub image_verdict: Verdict,
    pub judgments: Vec<JudgmentRecord>,
    /// Milliseconds per stage (this item's share of its batch). Not part of the result: two
    /// identical runs differ here only.
    pub timings_ms: BTreeMap<String, f64>,
}

/// A round to commit. Identical to [`RoundRecord`] except that it carries the rendered image
/// itself; the store encodes it as PNG, names the file by its SHA-256 and records the hash in
/// `render.image_sha256` (any value the caller put there is replaced).
#[derive(Debug, Clone)]
pub struct NewRound<'a> {
    pub round: RoundRecord,
    pub image: Option<&'a Image>,
}

/// The evaluation of a campaign: how many renders per prompt, and which target and image
/// judges made them (keyed like [`CampaignRecord::identities`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    pub renders: u32,
    pub started_at: i64,
    pub identities: BTreeMap<String, ModelIdentity>,
}

/// One re-render of a stored round's prompt (the k-th of the evaluation), with its image
/// judgments. Renders the target failed on are not stored; the next `art eval` retries them.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRenderRecord {
    pub lane_id: i64,
    pub round: u32,
    pub k: u32,
    pub seed: u64,
    /// `None` when the provider refused.
    pub image_sha256: Option<String>,
    pub refusal: Option<String>,
    pub revised_prompt: Option<String>,
    pub image_verdict: Verdict,
    /// Image judgments (subject `image`), in judge order.
    pub judgments: Vec<JudgmentRecord>,
}

/// An evaluation render to commit, with its image (the store names the file and fills in
/// `image_sha256`).
#[derive(Debug, Clone)]
pub struct NewEvalRender<'a> {
    pub render: EvalRenderRecord,
    pub image: Option<&'a Image>,
}
