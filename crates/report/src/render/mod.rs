//! The output formats of a [`Report`]: Markdown, JSON, CSV and one self-contained HTML file;
//! the findings also as Parquet.
//!
//! Every format renders the same [`Report`] value and computes nothing of its own (the numbers
//! come from `metrics`), so they always agree. The HTML report additionally reads the
//! [`CampaignData`](crate::CampaignData) for each lane's prompt evolution and the images.
//!
//! * [`markdown`] (`markdown.rs`): tables for a quick read in a terminal or a pull request;
//! * [`json`] (`json.rs`): the [`Report`] itself, for programs;
//! * [`csv`] (`csv.rs`): one row per category, for spreadsheets ([`CSV_COLUMNS`]);
//! * [`html`] (`html.rs`): the report a person reviews, with SVG charts (`svg.rs`), each lane's
//!   prompt evolution (`lanes.rs`) and blurred JPEG thumbnails inlined once per image
//!   (`thumbs.rs`).
//!
//! The summary table's columns are defined once, in `summary.rs`, and Markdown, HTML and CSV
//! all render them from there. This module holds the number and date formatting the text
//! formats share, so the same value reads the same in Markdown and HTML.

mod csv;
mod html;
mod json;
mod lanes;
mod markdown;
mod parquet;
mod summary;
mod svg;
mod thumbs;

pub use self::csv::{CSV_COLUMNS, csv};
pub use self::html::{HtmlOptions, Images, html};
pub use self::json::json;
pub use self::markdown::markdown;
pub use self::parquet::{PARQUET_COLUMNS, findings_parquet};
pub use self::thumbs::{IMAGES_BUDGET, JPEG_QUALITY, Thumbnail, thumbnail, thumbnail_within};

use crate::model::{Ratio, RenderSource};
use art_core::ModelIdentity;

/// Text for HTML (element content and quoted attribute values): `& < > " '` become character
/// references, and so does `:`, so that no URL a prompt or a config value mentions
/// (`https://...`, `javascript:`) appears literally in the file; it still reads the same.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            ':' => out.push_str("&#58;"),
            c => out.push(c),
        }
    }
    out
}

/// `0.375` -> `37.5%`.
pub(crate) fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// `37.5% (3/8)`, or `n/a (0/0)` without a denominator.
pub(crate) fn ratio_value(r: &Ratio) -> String {
    match r.value {
        Some(v) => format!("{} ({}/{})", pct(v), r.num, r.den),
        None => format!("n/a ({}/{})", r.num, r.den),
    }
}

/// `[13.7%, 69.4%]`, or `-` without an interval.
pub(crate) fn ci_text(r: &Ratio) -> String {
    match r.ci95 {
        Some(ci) => format!("[{}, {}]", pct(ci.lo), pct(ci.hi)),
        None => "-".to_string(),
    }
}

/// A value with `digits` decimals, or `-`.
pub(crate) fn opt_num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) => format!("{v:.digits$}"),
        None => "-".to_string(),
    }
}

/// A share as a percentage, or `-`.
pub(crate) fn opt_pct(v: Option<f64>) -> String {
    v.map(pct).unwrap_or_else(|| "-".to_string())
}

/// Where the renders come from, in words.
pub(crate) fn source_text(source: &RenderSource) -> String {
    match source {
        RenderSource::Evaluation { renders } => format!(
            "evaluation: every prompt re-rendered {renders} time{} with fresh seeds (art eval)",
            if *renders == 1 { "" } else { "s" }
        ),
        RenderSource::Loop => {
            "loop: each prompt's own render in the campaign (no art eval yet)".to_string()
        }
    }
}

/// Identity parameters as `k=v, k=v` (sorted, as stored).
pub(crate) fn params_text(id: &ModelIdentity) -> String {
    id.params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub(crate) fn utc(ts: i64) -> String {
    format!("{} UTC", utc_datetime(ts))
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` in UTC, without a date library
/// (Howard Hinnant's civil_from_days). Shared with the CLI's tables.
pub fn utc_datetime(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn html_escaping() {
        assert_eq!(
            esc("<script>alert('x&y')</script> \"https://e.x\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt; &quot;https&#58;//e.x&quot;"
        );
    }

    #[test]
    fn ratios() {
        let r = Ratio {
            num: 3,
            den: 8,
            value: Some(0.375),
            ci95: Some(crate::model::Interval {
                lo: 0.137,
                hi: 0.694,
            }),
        };
        assert_eq!(ratio_value(&r), "37.5% (3/8)");
        assert_eq!(ci_text(&r), "[13.7%, 69.4%]");
        let none = Ratio {
            num: 0,
            den: 0,
            value: None,
            ci95: None,
        };
        assert_eq!(ratio_value(&none), "n/a (0/0)");
        assert_eq!(ci_text(&none), "-");
    }
}
