//! `art report`, `art compare` and the summary printed at the end of `run` and `eval`: all
//! read stores only and render `art_report::Report`s.

use crate::Failure;
use crate::args::{CompareArgs, EmbedderArgs, ReportArgs, ReportFormat};
use anyhow::anyhow;
use art_report::render::{self, HtmlOptions, Images};
use art_report::{CampaignData, Embedder, MetricsOptions, Ratio, Report, compute};
use art_store::Store;
use std::io::Write;
use std::path::Path;

/// The embedder the reports use, or why there is none (the report then says so).
enum Loaded {
    Model(Box<art_models::SentenceEmbedder>),
    Unavailable(String, String),
}

impl Embedder for Loaded {
    fn name(&self) -> String {
        match self {
            Loaded::Model(m) => m.name().to_string(),
            Loaded::Unavailable(name, _) => name.clone(),
        }
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        match self {
            Loaded::Model(m) => m.embed(texts).map_err(|e| e.to_string()),
            Loaded::Unavailable(_, why) => Err(why.clone()),
        }
    }
}

fn embedder(a: &EmbedderArgs) -> Option<Loaded> {
    if a.no_embedder {
        return None;
    }
    Some(
        match art_models::SentenceEmbedder::resolve_and_load(&a.embedder) {
            Ok(m) => Loaded::Model(Box::new(m)),
            Err(e) => {
                eprintln!(
                    "note: embedding diversity not computed: {e} (pass --embedder DIR, or                  --no-embedder)"
                );
                Loaded::Unavailable(a.embedder.clone(), format!("cannot load it: {e}"))
            }
        },
    )
}

fn load_with(
    dir: &Path,
    embedder: Option<&dyn Embedder>,
) -> Result<(Store, CampaignData, Report), Failure> {
    let store = Store::open_read_only(dir)?;
    let data = CampaignData::load(&store)?;
    let report = compute(&data, &MetricsOptions { embedder });
    Ok((store, data, report))
}

fn load(dir: &Path) -> Result<(Store, CampaignData, Report), Failure> {
    load_with(dir, None)
}

fn write_out(out: Option<&Path>, text: &str) -> Result<(), Failure> {
    match out {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| Failure::usage(anyhow!("cannot write {}: {e}", p.display()))),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::runtime(anyhow::Error::new(e).context("cannot write output"))),
    }
}

pub fn report(a: ReportArgs) -> Result<(), Failure> {
    let e = embedder(&a.embedder);
    let (store, data, report) = load_with(&a.campaign, e.as_ref().map(|e| e as &dyn Embedder))?;
    let text = match a.format {
        ReportFormat::Md => render::markdown(&report),
        ReportFormat::Json => render::json(&report),
        ReportFormat::Csv => render::csv(&report),
        ReportFormat::Html => {
            let options = HtmlOptions {
                images: if a.no_images {
                    Images::None
                } else {
                    Images::Blurred
                },
                thumb_max_side: a.thumb_size,
            };
            let reader = store.image_reader();
            render::html(&report, &data, &|sha| reader.read(sha).ok(), &options)
        }
    };
    let default_html = a.campaign.join("report.html");
    let out = match (&a.out, a.format) {
        (Some(p), _) => Some(p.as_path()),
        (None, ReportFormat::Html) => Some(default_html.as_path()),
        (None, _) => None,
    };
    write_out(out, &text)?;
    if let Some(p) = out {
        eprintln!("report written to {}", p.display());
    }
    Ok(())
}

fn pct(r: &Ratio) -> String {
    match (r.value, r.ci95) {
        (Some(v), Some(ci)) => format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * v,
            100.0 * ci.lo,
            100.0 * ci.hi
        ),
        _ => "-".into(),
    }
}

/// The per-category summary table (also printed at the end of `run` and `eval`).
pub fn summary_table(report: &Report) -> String {
    let mut rows: Vec<Vec<String>> = report
        .categories
        .iter()
        .chain(std::iter::once(&report.overall))
        .map(|c| {
            vec![
                c.category.clone(),
                c.prompts.to_string(),
                pct(&c.safe_prompts),
                pct(&c.success_over_safe),
                pct(&c.success_over_all),
                c.incomplete_prompts.to_string(),
                c.incomplete_renders.to_string(),
            ]
        })
        .collect();
    if rows.len() == 2 {
        rows.pop(); // one category: "all" repeats it
    }
    let mut out = Vec::new();
    let source = match report.source {
        art_report::RenderSource::Evaluation { renders } => {
            format!("evaluation, {renders} renders per prompt")
        }
        art_report::RenderSource::Loop => {
            "the loop's own render of each prompt (run `art eval` for the paper's protocol)".into()
        }
    };
    let _ = writeln!(out, "results ({source}; 95% Wilson intervals):");
    let _ = super::inspect::table(
        &mut out,
        &[
            "category",
            "prompts",
            "safe prompts",
            "success / safe",
            "success / all",
            "incomplete prompts",
            "incomplete renders",
        ],
        &rows,
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Prints the summary of a campaign to standard output; a failure to read it is reported but
/// does not change the command's outcome.
pub fn print_summary(dir: &Path) {
    match load(dir) {
        Ok((_, _, report)) => {
            // A closed stdout only loses the summary; the command's outcome stands.
            let _ = std::io::stdout()
                .lock()
                .write_all(summary_table(&report).as_bytes());
        }
        Err(Failure::Usage(e) | Failure::Runtime(e)) => {
            eprintln!("(no summary: {e:#})")
        }
        Err(Failure::Interrupted(_)) => {}
    }
}

pub fn compare(a: CompareArgs) -> Result<(), Failure> {
    if a.campaigns.len() < 2 {
        return Err(Failure::usage(anyhow!(
            "compare needs at least two campaigns"
        )));
    }
    let e = embedder(&a.embedder);
    let reports = a
        .campaigns
        .iter()
        .map(|d| load_with(d, e.as_ref().map(|e| e as &dyn Embedder)).map(|(_, _, r)| r))
        .collect::<Result<Vec<_>, _>>()?;
    let text = match a.format {
        ReportFormat::Json => serde_json::to_string_pretty(&reports)
            .map_err(|e| Failure::runtime(anyhow!("cannot encode reports: {e}")))?,
        ReportFormat::Md | ReportFormat::Csv => compare_table(&reports, a.format),
        ReportFormat::Html => {
            return Err(Failure::usage(anyhow!(
                "compare writes md, json or csv; for HTML, run `art report` on each campaign"
            )));
        }
    };
    write_out(a.out.as_deref(), &text)
}

/// One row per category (in first-seen order, then `all`), one column group per campaign.
fn compare_table(reports: &[Report], format: ReportFormat) -> String {
    let mut cats: Vec<String> = Vec::new();
    for r in reports {
        for c in &r.categories {
            if !cats.contains(&c.category) {
                cats.push(c.category.clone());
            }
        }
    }
    cats.push("all".into());
    let target = |r: &Report| {
        r.identities
            .get("target")
            .map_or("?".to_string(), |t| format!("{} {}", t.kind, t.model))
    };
    let mut header = vec!["category".to_string()];
    for r in reports {
        for what in ["prompts", "safe prompts", "success / safe", "success / all"] {
            header.push(format!("{} ({}): {what}", r.campaign, target(r)));
        }
    }
    let rows: Vec<Vec<String>> = cats
        .iter()
        .map(|cat| {
            let mut row = vec![cat.clone()];
            for r in reports {
                let m = if cat == "all" {
                    Some(&r.overall)
                } else {
                    r.categories.iter().find(|c| &c.category == cat)
                };
                match m {
                    Some(m) => row.extend([
                        m.prompts.to_string(),
                        pct(&m.safe_prompts),
                        pct(&m.success_over_safe),
                        pct(&m.success_over_all),
                    ]),
                    None => row.extend(std::iter::repeat_n("-".to_string(), 4)),
                }
            }
            row
        })
        .collect();
    match format {
        ReportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(&header);
            for r in &rows {
                let _ = w.write_record(r);
            }
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        _ => {
            let esc = |s: &str| s.replace('|', "\\|");
            let mut out = format!(
                "| {} |\n|{}\n",
                header
                    .iter()
                    .map(|h| esc(h))
                    .collect::<Vec<_>>()
                    .join(" | "),
                " --- |".repeat(header.len())
            );
            for r in &rows {
                out.push_str(&format!(
                    "| {} |\n",
                    r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
                ));
            }
            out
        }
    }
}
