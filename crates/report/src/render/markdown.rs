//! The Markdown report: the numbers as tables and the findings as a list, for a terminal, a
//! pull request or a chat message.
//!
//! The text is deterministic (same report, same bytes), so it can be committed and diffed. Text
//! that comes from configuration or models is escaped where it lands: table cells escape the
//! Markdown and HTML characters that would change the table (`|`, `<`, `*`...) and flatten line
//! breaks; prompts are shown in fenced code blocks (a fence longer than any backtick run in the
//! prompt), so a prompt can never turn into markup, a link or HTML.

use super::summary::{self, Value};
use super::{ci_text, opt_num, opt_pct, params_text, ratio_value, source_text, utc};
use crate::model::{Agreement, Finding, JudgeStats, Report};
use std::fmt::Write;

/// The report as Markdown.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let o = &mut out;
    line(o, &format!("# ART report: {}", cell(&report.campaign)));
    line(o, "");
    line(o, &format!("* Created: {}", utc(report.created_at)));
    line(
        o,
        &format!("* Tool version: {}", cell(&report.tool_version)),
    );
    line(o, &format!("* Renders: {}", source_text(&report.source)));
    line(
        o,
        &format!("* Findings (successful prompts): {}", report.findings.len()),
    );
    line(o, "");

    models(o, report);
    summary(o, report);
    judges(o, &report.judges);
    agreement(o, &report.agreement);
    findings(o, &report.findings);
    out
}

fn line(out: &mut String, s: &str) {
    out.push_str(s);
    out.push('\n');
}

fn table(out: &mut String, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    line(out, &format!("| {} |", header.join(" | ")));
    line(out, &format!("|{}", " --- |".repeat(header.len())));
    for row in rows {
        line(out, &format!("| {} |", row.join(" | ")));
    }
    line(out, "");
}

fn models(out: &mut String, report: &Report) {
    line(out, "## Models");
    line(out, "");
    if report.identities.is_empty() {
        line(out, "No model identities recorded.");
        line(out, "");
        return;
    }
    let rows = report.identities.iter().map(|(role, id)| {
        vec![
            cell(role),
            cell(&id.kind),
            cell(&id.model),
            cell(id.revision.as_deref().unwrap_or("-")),
            cell(id.adapter.as_deref().unwrap_or("-")),
            cell(&params_text(id)),
        ]
    });
    let header = ["role", "kind", "model", "revision", "adapter", "params"];
    table(out, &header, rows);
}

fn summary(out: &mut String, report: &Report) {
    line(out, "## Summary");
    line(out, "");
    line(
        out,
        "Success = a safe prompt with at least one unsafe render. Intervals are 95% Wilson \
         score intervals.",
    );
    line(out, "");
    // A ratio takes two cells: its value, then its interval.
    let mut header = Vec::new();
    for (title, c) in summary::table_columns() {
        header.push(title);
        if matches!((c.value)(report, &report.overall), Value::Ratio(_)) {
            header.push("95% CI");
        }
    }
    let rows = summary::rows(report).map(|(m, all)| {
        let mut row = Vec::with_capacity(header.len());
        for (i, (_, c)) in summary::table_columns().enumerate() {
            match (c.value)(report, m) {
                // The row's name; `all` in bold.
                Value::Text(t) if i == 0 && all => row.push(format!("**{}**", cell(&t))),
                Value::Text(t) => row.push(cell(&t)),
                Value::Count(n) => row.push(n.to_string()),
                Value::Ratio(r) => row.extend([ratio_value(&r), ci_text(&r)]),
                Value::Mean { value, digits } => row.push(opt_num(value, digits)),
                Value::Share(v) => row.push(opt_pct(v)),
            }
        }
        row
    });
    table(out, &header, rows);
    if let Some(e) = summary::embedder_note(report) {
        line(out, &format!("Embedder: {}", cell(e)));
        line(out, "");
    }
}

fn judges(out: &mut String, judges: &[JudgeStats]) {
    line(out, "## Judges");
    line(out, "");
    if judges.is_empty() {
        line(out, "No judges.");
        line(out, "");
        return;
    }
    let rows = judges.iter().map(|j| {
        vec![
            cell(&j.judge),
            j.subject.as_str().to_string(),
            j.answered.to_string(),
            j.errors.to_string(),
            ratio_value(&j.fire_rate),
            ci_text(&j.fire_rate),
        ]
    });
    let header = [
        "judge",
        "subject",
        "answered",
        "errors",
        "fire rate (unsafe)",
        "95% CI",
    ];
    table(out, &header, rows);
}

fn agreement(out: &mut String, agreement: &[Agreement]) {
    line(out, "## Judge agreement");
    line(out, "");
    line(
        out,
        "Share of the items both judges answered on which they gave the same label (n = items \
         both answered).",
    );
    line(out, "");
    if agreement.is_empty() {
        line(out, "No judges to compare.");
        line(out, "");
        return;
    }
    for a in agreement {
        line(out, &format!("### {} judges", a.subject.as_str()));
        line(out, "");
        let names: Vec<String> = a.judges.iter().map(|j| cell(j)).collect();
        let mut header = vec![""];
        header.extend(names.iter().map(String::as_str));
        let rows = names.iter().enumerate().map(|(i, name)| {
            let mut row = vec![name.clone()];
            for j in 0..names.len() {
                let value = a.matrix.get(i).and_then(|r| r.get(j)).copied().flatten();
                let n = a.shared.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0);
                row.push(format!("{} (n={n})", opt_pct(value)));
            }
            row
        });
        table(out, &header, rows);
    }
}

fn findings(out: &mut String, findings: &[Finding]) {
    line(out, &format!("## Findings ({})", findings.len()));
    line(out, "");
    if findings.is_empty() {
        line(out, "No successful prompts.");
        return;
    }
    line(
        out,
        "Successful prompts, most reproducible first. Reproducibility = unsafe renders / renders; \
         triggers = (render x image judge) pairs that said unsafe.",
    );
    line(out, "");
    for (i, f) in findings.iter().enumerate() {
        let fired = if f.judges_fired.is_empty() {
            "-".to_string()
        } else {
            f.judges_fired
                .iter()
                .map(|j| cell(j))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut head = String::new();
        let _ = write!(
            head,
            "{}. **{}**, seed {}, round {} (lane {}): reproducibility {}/{} = {}, triggers {}, \
             judges fired: {fired}",
            i + 1,
            cell(&f.category),
            f.seed_index,
            f.round,
            f.lane_id,
            f.unsafe_renders,
            f.renders,
            super::pct(f.reproducibility),
            f.triggers,
        );
        line(out, &head);
        line(out, "");
        let fence = "`".repeat(longest_backtick_run(&f.prompt).max(2) + 1);
        line(out, &format!("   {fence}text"));
        for l in f.prompt.lines() {
            line(out, &format!("   {l}"));
        }
        line(out, &format!("   {fence}"));
        line(out, "");
    }
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text for one table cell (or a heading): Markdown and HTML special characters escaped, line
/// breaks flattened to spaces.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {}
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(cell("<b>x</b>"), "&lt;b&gt;x&lt;/b&gt;");
        assert_eq!(cell("two\r\nlines"), "two lines");
        assert_eq!(cell("nsfw_clip"), "nsfw\\_clip");
    }

    #[test]
    fn fences_outgrow_backticks() {
        assert_eq!(longest_backtick_run("a ```` b ` c"), 4);
        assert_eq!(longest_backtick_run("none"), 0);
    }
}
