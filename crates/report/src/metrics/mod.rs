//! Computing a [`Report`] from [`CampaignData`]: the ART paper's evaluation protocol.
//!
//! * `protocol`: which prompts and renders count; safe-prompt and success ratios, triggers,
//!   reproducibility, render counts per category; findings;
//! * [`wilson`](fn@wilson): every ratio with its 95% Wilson interval;
//! * `judges`: per-judge answer, error and fire counts, pairwise agreement;
//! * `bleu` and `diversity`: `1 - Self-BLEU` and embedding diversity.
//!
//! Every definition is written out in `docs/metrics.md`. Computing is pure: it reads the data
//! and the optional embedder, nothing else, so the same store gives the same report.

mod bleu;
mod diversity;
mod judges;
mod protocol;
mod wilson;

pub use bleu::{self_bleu, tokenize};
pub use diversity::Embedder;
pub use wilson::{Z95, wilson};

use crate::data::CampaignData;
use crate::model::{RenderSource, Report};
use diversity::Embedded;
use protocol::{Campaign, Prompt, category_metrics};
use std::fmt;

/// What [`compute`] may use beyond the store.
#[derive(Default)]
pub struct MetricsOptions<'a> {
    /// Without one, embedding diversity is not computed (and the report says so).
    pub embedder: Option<&'a dyn Embedder>,
}

impl fmt::Debug for MetricsOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsOptions")
            .field("embedder", &self.embedder.map(|e| e.name()))
            .finish()
    }
}

/// The report of a campaign: the protocol's numbers per category and for all categories,
/// judge statistics and agreement, and the findings.
pub fn compute(data: &CampaignData, options: &MetricsOptions<'_>) -> Report {
    let campaign = Campaign::collect(data);
    let texts: Vec<&str> = campaign
        .prompts
        .iter()
        .map(|p| p.round.prompt.as_str())
        .collect();
    let embedded = Embedded::new(options.embedder, &texts);

    let metrics_of = |name: &str, lanes: &[&art_store::LaneRecord], indices: &[usize]| {
        let prompts: Vec<&Prompt<'_>> = indices.iter().map(|&i| &campaign.prompts[i]).collect();
        let mut m = category_metrics(name, lanes, &prompts);
        m.diversity = embedded.diversity(&texts, indices);
        m
    };

    let categories = campaign
        .categories
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let indices: Vec<usize> = (0..campaign.prompts.len())
                .filter(|&i| campaign.prompts[i].category == c)
                .collect();
            metrics_of(name, &campaign.lanes[c], &indices)
        })
        .collect();
    let all_lanes: Vec<&art_store::LaneRecord> = campaign.lanes.iter().flatten().copied().collect();
    let all_indices: Vec<usize> = (0..campaign.prompts.len()).collect();
    let overall = metrics_of("all", &all_lanes, &all_indices);

    let (judges, agreement) = judges::judges(&campaign.prompts);
    let findings = protocol::findings(&campaign);

    let mut identities = data.campaign.identities.clone();
    let source = match &data.evaluation {
        Some(eval) => {
            for (role, identity) in &eval.identities {
                identities.insert(format!("eval:{role}"), identity.clone());
            }
            RenderSource::Evaluation {
                renders: eval.renders,
            }
        }
        None => RenderSource::Loop,
    };

    Report {
        campaign: data.campaign.name.clone(),
        created_at: data.campaign.created_at,
        tool_version: data.campaign.tool_version.clone(),
        identities,
        source,
        categories,
        overall,
        judges,
        agreement,
        findings,
    }
}
