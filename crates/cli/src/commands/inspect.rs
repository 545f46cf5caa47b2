//! `art list` and `art show`: tables read from stores (read-only, safe while a campaign runs).

use crate::args::{ListArgs, ShowArgs};
use crate::{Failure, time};
use anyhow::anyhow;
use art_core::is_success;
use art_store::{LaneRecord, RoundRecord, Store};
use std::collections::BTreeMap;
use std::io::Write;

/// Prints rows as left-aligned columns.
pub(super) fn table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<width$}", width = w[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn io(e: std::io::Error) -> Failure {
    Failure::runtime(anyhow::Error::new(e).context("cannot write output"))
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

pub fn list(a: ListArgs) -> Result<(), Failure> {
    let entries = std::fs::read_dir(&a.out).map_err(|e| {
        Failure::usage(anyhow!(
            "cannot read output folder {}: {e}",
            a.out.display()
        ))
    })?;
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(art_store::DB_FILE).is_file())
        .collect();
    dirs.sort();
    let mut rows = Vec::new();
    for d in dirs {
        let row = match Store::open_read_only(&d).and_then(|s| Ok((s.campaign()?, s.lanes()?))) {
            Ok((c, lanes)) => {
                let done = lanes
                    .iter()
                    .filter(|l| l.status == art_store::LaneStatus::Done)
                    .count();
                let failed = lanes
                    .iter()
                    .filter(|l| l.status == art_store::LaneStatus::Failed)
                    .count();
                let rounds: u64 = lanes
                    .iter()
                    .map(|l| l.last_round.map_or(0, |r| u64::from(r) + 1))
                    .sum();
                vec![
                    d.display().to_string(),
                    time::utc(c.created_at),
                    format!("{done}/{}", lanes.len()),
                    failed.to_string(),
                    rounds.to_string(),
                    c.identities
                        .get("target")
                        .map_or("?".into(), |t| format!("{} {}", t.kind, t.model)),
                ]
            }
            Err(e) => vec![d.display().to_string(), format!("unreadable: {e}")],
        };
        rows.push(row);
    }
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "no campaigns in {}", a.out.display()).map_err(io)?;
        return Ok(());
    }
    for r in &mut rows {
        r.resize(6, String::new());
    }
    table(
        &mut out,
        &[
            "campaign",
            "created (UTC)",
            "lanes done",
            "failed",
            "rounds",
            "target",
        ],
        &rows,
    )
    .map_err(io)
}

/// Judges that called the round's prompt or image unsafe, and those that errored.
fn fired(r: &RoundRecord) -> String {
    let mut parts = Vec::new();
    for j in &r.judgments {
        match &j.outcome {
            art_core::JudgeOutcome::Scored(s) if s.label == art_core::Label::Unsafe => {
                parts.push(format!("{}:{}", j.subject.as_str(), j.judge));
            }
            art_core::JudgeOutcome::Error(_) => {
                parts.push(format!("{}:{}(error)", j.subject.as_str(), j.judge));
            }
            _ => {}
        }
    }
    parts.join(" ")
}

pub fn show(a: ShowArgs) -> Result<(), Failure> {
    let store = Store::open_read_only(&a.campaign)?;
    let c = store.campaign()?;
    let lanes = store.lanes()?;
    let rounds = store.all_rounds()?;
    let mut by_lane: BTreeMap<i64, Vec<&RoundRecord>> = BTreeMap::new();
    for r in &rounds {
        by_lane.entry(r.lane_id).or_default().push(r);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "campaign {} (created {} UTC by art {})",
        c.name,
        time::utc(c.created_at),
        c.tool_version
    )
    .map_err(io)?;
    for (role, id) in &c.identities {
        writeln!(out, "  {role}: {} {}", id.kind, id.model).map_err(io)?;
    }
    writeln!(out).map_err(io)?;
    let lane_row = |l: &LaneRecord| {
        let rs = by_lane.get(&l.id).map_or(&[][..], Vec::as_slice);
        let judged = rs.iter().filter(|r| r.round >= 1).count();
        let safe = rs
            .iter()
            .filter(|r| r.prompt_verdict == art_core::Verdict::Safe)
            .count();
        let wins = rs
            .iter()
            .filter(|r| is_success(r.prompt_verdict, r.image_verdict))
            .count();
        let incomplete = rs
            .iter()
            .filter(|r| {
                r.prompt_verdict == art_core::Verdict::Incomplete
                    || r.image_verdict == art_core::Verdict::Incomplete
            })
            .count();
        vec![
            l.id.to_string(),
            l.category.clone(),
            l.seed_index.to_string(),
            l.status.as_str().to_string(),
            l.last_round.map_or("-".into(), |r| r.to_string()),
            judged.to_string(),
            safe.to_string(),
            wins.to_string(),
            incomplete.to_string(),
            l.error.clone().unwrap_or_default(),
        ]
    };
    let rows: Vec<_> = lanes
        .iter()
        .filter(|l| a.lane.is_none_or(|id| id == l.id))
        .map(lane_row)
        .collect();
    if a.lane.is_some() && rows.is_empty() {
        return Err(Failure::usage(anyhow!(
            "campaign {} has no lane {}",
            a.campaign.display(),
            a.lane.unwrap_or_default()
        )));
    }
    table(
        &mut out,
        &[
            "lane",
            "category",
            "seed",
            "status",
            "last round",
            "judged",
            "safe prompts",
            "successes",
            "incomplete",
            "error",
        ],
        &rows,
    )
    .map_err(io)?;
    if a.lanes_only {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rounds
        .iter()
        .filter(|r| a.lane.is_none_or(|id| id == r.lane_id))
        .map(|r| {
            vec![
                r.lane_id.to_string(),
                r.round.to_string(),
                r.prompt_verdict.as_str().to_string(),
                r.image_verdict.as_str().to_string(),
                if is_success(r.prompt_verdict, r.image_verdict) {
                    "yes"
                } else {
                    ""
                }
                .into(),
                fired(r),
                clip(&r.prompt, 70),
            ]
        })
        .collect();
    writeln!(out).map_err(io)?;
    table(
        &mut out,
        &[
            "lane",
            "round",
            "prompt",
            "image",
            "success",
            "judges fired",
            "prompt text",
        ],
        &rows,
    )
    .map_err(io)
}
