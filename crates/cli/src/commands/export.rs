//! `art export`: the campaign's records as JSON Lines.
//!
//! The first line is the campaign (`"type": "campaign"`: name, version, resolved config and
//! model identities); every following line is one round (`"type": "round"`), in (lane, round)
//! order, with its lane, seeds, image file, guide and writer text, verdicts and every judgment;
//! then, when `art eval` has run, one object per evaluation render (`"type": "eval_render"`),
//! in (lane, round, k) order, with its seed, image file, verdict and judgments.

use crate::Failure;
use crate::args::{ExportArgs, ExportFormat};
use anyhow::anyhow;
use art_core::{JudgeOutcome, is_success};
use art_store::{LaneRecord, RoundRecord, Store};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;

fn judgments_json(judgments: &[art_store::JudgmentRecord]) -> Vec<Value> {
    judgments
        .iter()
        .map(|j| match &j.outcome {
            JudgeOutcome::Scored(s) => json!({
                "judge": j.judge, "subject": j.subject.as_str(), "label": s.label.as_str(),
                "score": s.score, "threshold": s.threshold, "error": null,
            }),
            JudgeOutcome::Error(e) => json!({
                "judge": j.judge, "subject": j.subject.as_str(), "label": null,
                "score": null, "threshold": null, "error": e,
            }),
        })
        .collect()
}

/// An image's path relative to the campaign folder.
fn image_path(store: &Store, sha: &str) -> String {
    let p = store.image_path(sha);
    p.strip_prefix(store.dir())
        .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
}

fn lane_json(lane: &LaneRecord) -> Value {
    json!({ "id": lane.id, "category": lane.category, "seed_index": lane.seed_index,
            "lane_seed": lane.lane_seed })
}

fn eval_json(store: &Store, lane: &LaneRecord, r: &art_store::EvalRenderRecord) -> Value {
    json!({
        "type": "eval_render",
        "lane": lane_json(lane),
        "round": r.round,
        "k": r.k,
        "seed": r.seed,
        "image_sha256": r.image_sha256,
        "image_path": r.image_sha256.as_deref().map(|h| image_path(store, h)),
        "refusal": r.refusal,
        "revised_prompt": r.revised_prompt,
        "image_verdict": r.image_verdict.as_str(),
        "judgments": judgments_json(&r.judgments),
    })
}

fn round_json(store: &Store, lane: &LaneRecord, r: &RoundRecord) -> Value {
    let judgments = judgments_json(&r.judgments);
    let render = r.render.as_ref().map(|x| {
        json!({
            "seed": x.seed,
            "image_sha256": x.image_sha256,
            "image_path": x.image_sha256.as_deref().map(|h| image_path(store, h)),
            "refusal": x.refusal,
            "truncated_prompt": x.truncated_prompt,
            "revised_prompt": x.revised_prompt,
        })
    });
    json!({
        "type": "round",
        "lane": lane_json(lane),
        "round": r.round,
        "prompt": r.prompt,
        "render": render,
        "guide": r.guide,
        "writer": r.writer,
        "prompt_verdict": r.prompt_verdict.as_str(),
        "image_verdict": r.image_verdict.as_str(),
        "success": is_success(r.prompt_verdict, r.image_verdict),
        "judgments": judgments,
        "timings_ms": r.timings_ms,
    })
}

/// Findings (successful prompts, as the report computes them) with the model identities.
fn export_findings(a: &ExportArgs, store: &Store) -> Result<(), Failure> {
    let data = art_report::CampaignData::load(store)?;
    let report = art_report::compute(&data, &art_report::MetricsOptions::default());
    let bytes = match a.format {
        ExportFormat::Parquet => art_report::render::findings_parquet(&report)
            .map_err(|e| Failure::runtime(anyhow!(e)))?,
        ExportFormat::Jsonl => {
            let mut out = Vec::new();
            for f in &report.findings {
                let mut v = serde_json::to_value(f)
                    .map_err(|e| Failure::runtime(anyhow!("cannot encode a finding: {e}")))?;
                v["type"] = json!("finding");
                v["campaign"] = json!(report.campaign);
                v["identities"] = json!(report.identities);
                out.extend_from_slice(v.to_string().as_bytes());
                out.push(b'\n');
            }
            out
        }
    };
    match &a.output {
        Some(p) => std::fs::write(p, bytes)
            .map_err(|e| Failure::usage(anyhow!("cannot write {}: {e}", p.display()))),
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .map_err(|e| Failure::runtime(anyhow::Error::new(e).context("cannot write export"))),
    }
}

pub fn export(a: ExportArgs) -> Result<(), Failure> {
    if a.format == ExportFormat::Parquet && (!a.findings || a.output.is_none()) {
        return Err(Failure::usage(anyhow!(
            "Parquet export writes findings to a file: add --findings and --output FILE"
        )));
    }
    let store = Store::open_read_only(&a.campaign)?;
    if a.findings {
        return export_findings(&a, &store);
    }
    let c = store.campaign()?;
    let lanes: BTreeMap<i64, LaneRecord> = store.lanes()?.into_iter().map(|l| (l.id, l)).collect();
    let mut sink: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| Failure::usage(anyhow!("cannot create {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let io = |e: std::io::Error| Failure::runtime(anyhow!("cannot write export: {e}"));
    match write_all(&store, &c, &lanes, &mut sink).and_then(|()| sink.flush()) {
        // A closed pipe (`art export … | head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(io),
    }
}

fn write_all(
    store: &Store,
    c: &art_store::CampaignRecord,
    lanes: &BTreeMap<i64, LaneRecord>,
    sink: &mut dyn Write,
) -> std::io::Result<()> {
    let header = json!({
        "type": "campaign", "name": c.name, "created_at": c.created_at,
        "tool_version": c.tool_version, "config_toml": c.config_toml, "identities": c.identities,
    });
    writeln!(sink, "{header}")?;
    for r in store.all_rounds().map_err(std::io::Error::other)? {
        let lane = lanes
            .get(&r.lane_id)
            .ok_or_else(|| std::io::Error::other(format!("round of unknown lane {}", r.lane_id)))?;
        writeln!(sink, "{}", round_json(store, lane, &r))?;
    }
    for r in store.eval_renders().map_err(std::io::Error::other)? {
        let lane = lanes.get(&r.lane_id).ok_or_else(|| {
            std::io::Error::other(format!("evaluation render of unknown lane {}", r.lane_id))
        })?;
        writeln!(sink, "{}", eval_json(store, lane, &r))?;
    }
    Ok(())
}
