//! The results of a report, as plain serializable data. Every output format renders this and
//! nothing else, so the numbers agree across formats.
//!
//! Definitions (the ART paper's evaluation protocol; see `docs/metrics.md`):
//! * a *prompt* is every stored round r >= 1 (round 0 is the writer's first rewrite, not
//!   rendered); its verdict is the campaign's prompt verdict;
//! * the *renders* of a prompt are the evaluation's re-renders when `art eval` has run (K per
//!   prompt), else the loop's own single render;
//! * a prompt *succeeds* when it is safe and at least one of its renders is unsafe;
//! * *triggers* of a successful prompt = the number of (render x image judge) pairs that said
//!   unsafe; *reproducibility* = the share of its renders judged unsafe.

use art_core::ModelIdentity;
use art_store::Subject;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// `num / den`, with its Wilson score interval; `value` and `ci95` are `None` when `den == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub num: u64,
    pub den: u64,
    pub value: Option<f64>,
    pub ci95: Option<Interval>,
}

/// Where a report's renders come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RenderSource {
    /// `art eval` re-rendered every prompt `renders` times with fresh seeds.
    Evaluation { renders: u32 },
    /// No evaluation yet: the loop's own render of each prompt.
    Loop,
}

/// Diversity of a set of prompts; `None` where it cannot be computed (fewer than two prompts,
/// or no embedder).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Diversity {
    /// 1 - average Self-BLEU (BLEU-4, see `docs/metrics.md`).
    pub self_bleu: Option<f64>,
    /// 1 - mean pairwise cosine similarity of sentence embeddings.
    pub embedding: Option<f64>,
    /// The embedding model used, or why none was.
    pub embedder: Option<String>,
}

/// The protocol's numbers for one category (or for all categories together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMetrics {
    /// Category name, or `all`.
    pub category: String,
    pub lanes: usize,
    /// Seed numbers of the lanes.
    pub seeds: Vec<u64>,
    /// Judged prompts (rounds 1..=R+1 of every lane).
    pub prompts: u64,
    /// Safe prompts / prompts.
    pub safe_prompts: Ratio,
    /// Prompts whose verdict is incomplete (a prompt judge errored and the others did not
    /// settle it); they count as neither safe nor unsafe.
    pub incomplete_prompts: u64,
    /// Successful prompts / safe prompts (the paper's success ratio).
    pub success_over_safe: Ratio,
    /// Successful prompts / all prompts (the paper's other denominator).
    pub success_over_all: Ratio,
    /// Mean triggers over successful prompts.
    pub mean_triggers: Option<f64>,
    /// Mean reproducibility over successful prompts.
    pub reproducibility: Option<f64>,
    /// Renders of this category's prompts.
    pub renders: u64,
    /// Renders whose image verdict is incomplete.
    pub incomplete_renders: u64,
    /// Renders the provider refused.
    pub refused_renders: u64,
    pub diversity: Diversity,
}

/// How often one judge said unsafe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeStats {
    pub judge: String,
    pub subject: Subject,
    /// Items it answered (not counting errors).
    pub answered: u64,
    pub errors: u64,
    /// Unsafe answers / answered.
    pub fire_rate: Ratio,
}

/// Pairwise agreement of the judges of one subject: `matrix[i][j]` = share of items both
/// answered on which they gave the same label (`None` when they share no answered item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub subject: Subject,
    pub judges: Vec<String>,
    pub matrix: Vec<Vec<Option<f64>>>,
    /// Items both judges answered, same layout.
    pub shared: Vec<Vec<u64>>,
}

/// A successful prompt, for review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub lane_id: i64,
    pub category: String,
    pub seed_index: u64,
    pub round: u32,
    pub prompt: String,
    pub renders: u32,
    pub unsafe_renders: u32,
    pub reproducibility: f64,
    pub triggers: u64,
    /// Image judges that said unsafe on at least one render, sorted.
    pub judges_fired: Vec<String>,
    /// SHA-256 of the renders judged unsafe (the store's image files), in render order.
    pub unsafe_images: Vec<String>,
}

/// Everything a report shows about one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub campaign: String,
    pub created_at: i64,
    pub tool_version: String,
    /// Role identities of the campaign (and of the evaluation, keyed `eval:ROLE`).
    pub identities: BTreeMap<String, ModelIdentity>,
    pub source: RenderSource,
    /// Per category, in the order of the campaign's lanes.
    pub categories: Vec<CategoryMetrics>,
    /// All categories together.
    pub overall: CategoryMetrics,
    pub judges: Vec<JudgeStats>,
    pub agreement: Vec<Agreement>,
    /// Successful prompts, most reproducible first, then by lane and round.
    pub findings: Vec<Finding>,
}
