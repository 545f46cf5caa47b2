//! Bar charts as inline SVG, drawn here so the HTML report needs no chart library, no script
//! and no network: horizontal bars (long category and judge names stay readable), 0-100% axis,
//! a whisker for each 95% interval and the exact value written next to the bar.
//!
//! The chart is `role="img"` with a title and a description, and every number it shows is also
//! in a table of the report, so nothing is only visual. Colours come from the page's CSS classes
//! (`.chart .bar`, `.chart .ci`...), so the charts follow the page's palette.

use super::esc;
use crate::model::Interval;
use std::fmt::Write;

/// One bar: a share in 0..=1 (`None`: nothing to show, written as "n/a").
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub ci: Option<Interval>,
    /// Written after the percentage, e.g. `3/8`.
    pub detail: String,
    /// Drawn in the accent colour (the `all` row).
    pub emphasis: bool,
}

const WIDTH: f64 = 760.0;
const LABEL_W: f64 = 210.0;
const PLOT_X: f64 = 220.0;
const PLOT_W: f64 = 400.0;
const ROW_H: f64 = 24.0;
const TOP: f64 = 26.0;
const BAR_H: f64 = 14.0;
const MAX_LABEL_CHARS: usize = 30;

/// An SVG horizontal bar chart. `id` must be unique in the page (it names the title and
/// description elements).
pub(crate) fn bar_chart(id: &str, title: &str, desc: &str, bars: &[Bar]) -> String {
    let height = TOP + ROW_H * bars.len().max(1) as f64 + 8.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(desc)
    );
    // Axis: gridlines and labels every 25%.
    for tick in 0..=4 {
        let x = PLOT_X + PLOT_W * f64::from(tick) / 4.0;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{x}" y1="{}" x2="{x}" y2="{}"/><text class="tick" x="{x}" y="14" text-anchor="middle">{}%</text>"#,
            TOP - 4.0,
            height - 6.0,
            tick * 25
        );
    }
    if bars.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{PLOT_X}" y="{}">nothing to show</text>"#,
            TOP + ROW_H / 2.0 + 4.0
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let mid = y + ROW_H / 2.0;
        let text_y = mid + 4.0;
        let label = shorten(&bar.label);
        let _ = write!(
            s,
            r#"<g class="row"><title>{}</title><text class="label" x="{LABEL_W}" y="{text_y}" text-anchor="end">{}</text>"#,
            esc(&format!("{}: {}", bar.label, value_text(bar))),
            esc(&label)
        );
        if let Some(v) = bar.value {
            let w = PLOT_W * v.clamp(0.0, 1.0);
            let class = if bar.emphasis { "bar all" } else { "bar" };
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{PLOT_X}" y="{}" width="{w:.1}" height="{BAR_H}"/>"#,
                mid - BAR_H / 2.0
            );
        }
        if let Some(ci) = bar.ci {
            let x1 = PLOT_X + PLOT_W * ci.lo.clamp(0.0, 1.0);
            let x2 = PLOT_X + PLOT_W * ci.hi.clamp(0.0, 1.0);
            let (c1, c2) = (mid - 5.0, mid + 5.0);
            let _ = write!(
                s,
                r#"<path class="ci" d="M{x1:.1} {mid}H{x2:.1}M{x1:.1} {c1}V{c2}M{x2:.1} {c1}V{c2}"/>"#
            );
        }
        let _ = write!(
            s,
            r#"<text class="value" x="{}" y="{text_y}">{}</text></g>"#,
            PLOT_X + PLOT_W + 8.0,
            esc(&value_text(bar))
        );
    }
    s.push_str("</svg>");
    s
}

fn value_text(bar: &Bar) -> String {
    let v = bar
        .value
        .map(super::pct)
        .unwrap_or_else(|| "n/a".to_string());
    if bar.detail.is_empty() {
        v
    } else {
        format!("{v} ({})", bar.detail)
    }
}

/// Long labels are cut with an ellipsis (the full label is in the row's tooltip).
fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{cut}\u{2026}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_whiskers_and_values() {
        let bars = [
            Bar {
                label: "violence <b>".into(),
                value: Some(0.5),
                ci: Some(Interval { lo: 0.25, hi: 0.75 }),
                detail: "2/4".into(),
                emphasis: false,
            },
            Bar {
                label: "x".repeat(40),
                value: None,
                ci: None,
                detail: "0/0".into(),
                emphasis: true,
            },
        ];
        let svg = bar_chart("c1", "Success", "per category", &bars);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.contains(r#"width="200.0""#));
        assert!(svg.contains("M320.0 38H520.0"));
        assert!(svg.contains("50.0% (2/4)") && svg.contains("n/a (0/0)"));
        assert!(svg.contains("violence &lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains('\u{2026}'));
    }
}
