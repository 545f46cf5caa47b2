//! The CSV report: one row per category, then one row `all`, for spreadsheets and scripts.
//!
//! The header is [`CSV_COLUMNS`]; its names and order are part of the interface (scripts read
//! columns by name) and only ever grow at the end. Quoting follows RFC 4180: a field holding a
//! comma, a double quote, CR or LF is quoted and its quotes doubled; lines end with CRLF.
//! Numbers are written in full precision (Rust's shortest round-trip form), shares as
//! fractions in 0..=1, and a missing value (no denominator, nothing to average) as an empty
//! field.

use super::summary::{self, COLUMNS, CSV_NAMES, Value};
use crate::model::Report;

/// The CSV header, in order: the CSV names of the summary's columns (`summary.rs`). Each row is
/// one category (`category` = its name) or all of them (`category` = `all`, the last row):
///
/// | column | meaning |
/// | --- | --- |
/// | `category` | category name, or `all` |
/// | `source` | where renders come from: `evaluation` or `loop` |
/// | `renders_per_prompt` | K of the evaluation (1 for `loop`) |
/// | `lanes` | lanes of the category |
/// | `seeds` | their seed numbers, separated by spaces |
/// | `prompts` | judged prompts (rounds 1..=R+1) |
/// | `safe_prompts` | prompts every prompt judge called safe |
/// | `safe_prompt_ratio`, `_ci_lo`, `_ci_hi` | safe prompts / prompts with its 95% Wilson interval |
/// | `incomplete_prompts` | prompts whose verdict is incomplete (a judge errored) |
/// | `successful_prompts` | safe prompts with at least one unsafe render |
/// | `success_over_safe`, `_ci_lo`, `_ci_hi` | successful / safe prompts (the paper's success ratio) |
/// | `success_over_all`, `_ci_lo`, `_ci_hi` | successful / all prompts |
/// | `mean_triggers` | mean (render x image judge) unsafe pairs over successful prompts |
/// | `reproducibility` | mean share of unsafe renders over successful prompts |
/// | `renders` | renders of the category's prompts |
/// | `incomplete_renders` | renders whose image verdict is incomplete |
/// | `refused_renders` | renders the provider refused |
/// | `diversity_self_bleu` | 1 - average Self-BLEU of the prompts |
/// | `diversity_embedding` | 1 - mean pairwise cosine similarity of prompt embeddings |
/// | `embedder` | the embedding model, or why there was none |
pub const CSV_COLUMNS: &[&str] = &CSV_NAMES;

/// The report as CSV: the header, one row per category in report order, then `all`.
pub fn csv(report: &Report) -> String {
    let mut out = String::new();
    push_row(&mut out, CSV_COLUMNS.iter().map(|c| c.to_string()));
    for (m, _) in summary::rows(report) {
        let mut fields = Vec::with_capacity(CSV_COLUMNS.len());
        for c in COLUMNS {
            match (c.value)(report, m) {
                Value::Text(t) => fields.push(t),
                Value::Count(n) => fields.push(n.to_string()),
                Value::Ratio(r) => fields.extend([
                    num(r.value),
                    num(r.ci95.map(|c| c.lo)),
                    num(r.ci95.map(|c| c.hi)),
                ]),
                Value::Mean { value, .. } | Value::Share(value) => fields.push(num(value)),
            }
        }
        debug_assert_eq!(fields.len(), CSV_COLUMNS.len());
        push_row(&mut out, fields);
    }
    out
}

fn num(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn push_row(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(&f));
    }
    out.push_str("\r\n");
}

/// RFC 4180 field: quoted when it holds `,`, `"`, CR or LF (and then with `"` doubled).
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote(""), "");
    }
}
