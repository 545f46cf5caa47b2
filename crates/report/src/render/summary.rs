//! The summary table's columns, defined once for Markdown, HTML and CSV.
//!
//! The summary is one row per category, then `all`. [`COLUMNS`] says, column by column and in
//! order, its header in the Markdown and HTML tables, its header(s) in CSV, and how to get its
//! [`Value`] from the report; the three formats only decide how a value is written
//! ([`Value`]'s variants: Markdown and HTML round for reading, CSV keeps full precision and
//! fractions). So every format shows the same columns in the same order and cannot drift.
//!
//! The order is CSV's, which is an interface (scripts read columns by name; they only ever grow
//! at the end). A few columns are only in CSV, because Markdown and HTML say what they hold
//! another way: `source` and `renders_per_prompt` once, in the report's header ("Renders:
//! ..."); `safe_prompts` and `successful_prompts` as the numerators of the ratio cells
//! (`75.0% (3/4)`); `embedder` once, under the table ([`embedder_note`]). `seeds` is only in
//! CSV, as it always was: the tables count lanes instead.

use crate::model::{CategoryMetrics, Ratio, RenderSource, Report};

/// What one summary cell holds.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// Text as it is (a name); each format escapes it its own way.
    Text(String),
    /// A count.
    Count(u64),
    /// A ratio with its 95% interval: Markdown writes it as two cells (`37.5% (3/8)`, then the
    /// interval under the header `95% CI`), HTML as one with the interval below, CSV as three
    /// fields (value, interval low, interval high).
    Ratio(Ratio),
    /// A mean: `digits` decimals in Markdown and HTML, full precision in CSV.
    Mean { value: Option<f64>, digits: usize },
    /// A share: a percentage in Markdown and HTML, a fraction in 0..=1 in CSV.
    Share(Option<f64>),
}

/// One column of the summary.
#[derive(Debug)]
pub(super) struct Column {
    /// The header in the Markdown and HTML tables; `None` for a column only CSV has.
    pub title: Option<&'static str>,
    /// The CSV header: one name, or three for a [`Value::Ratio`] (value, `_ci_lo`, `_ci_hi`).
    pub csv: &'static [&'static str],
    /// The cell of one row: a category's metrics (or the overall ones) in `report`.
    pub value: fn(&Report, &CategoryMetrics) -> Value,
}

/// The summary's columns, in order. The first one names the row.
pub(super) const COLUMNS: &[Column] = &[
    Column {
        title: Some("category"),
        csv: &["category"],
        value: |_, m| Value::Text(m.category.clone()),
    },
    Column {
        title: None,
        csv: &["source"],
        value: |r, _| {
            let source = match r.source {
                RenderSource::Evaluation { .. } => "evaluation",
                RenderSource::Loop => "loop",
            };
            Value::Text(source.to_string())
        },
    },
    Column {
        title: None,
        csv: &["renders_per_prompt"],
        value: |r, _| match r.source {
            RenderSource::Evaluation { renders } => Value::Count(renders.into()),
            RenderSource::Loop => Value::Count(1),
        },
    },
    Column {
        title: Some("lanes"),
        csv: &["lanes"],
        value: |_, m| Value::Count(m.lanes as u64),
    },
    Column {
        title: None,
        csv: &["seeds"],
        value: |_, m| {
            let seeds: Vec<String> = m.seeds.iter().map(u64::to_string).collect();
            Value::Text(seeds.join(" "))
        },
    },
    Column {
        title: Some("prompts"),
        csv: &["prompts"],
        value: |_, m| Value::Count(m.prompts),
    },
    Column {
        title: None,
        csv: &["safe_prompts"],
        value: |_, m| Value::Count(m.safe_prompts.num),
    },
    Column {
        title: Some("safe prompts"),
        csv: &[
            "safe_prompt_ratio",
            "safe_prompt_ratio_ci_lo",
            "safe_prompt_ratio_ci_hi",
        ],
        value: |_, m| Value::Ratio(m.safe_prompts),
    },
    Column {
        title: Some("incomplete prompts"),
        csv: &["incomplete_prompts"],
        value: |_, m| Value::Count(m.incomplete_prompts),
    },
    Column {
        title: None,
        csv: &["successful_prompts"],
        value: |_, m| Value::Count(m.success_over_safe.num),
    },
    Column {
        title: Some("success / safe prompts"),
        csv: &[
            "success_over_safe",
            "success_over_safe_ci_lo",
            "success_over_safe_ci_hi",
        ],
        value: |_, m| Value::Ratio(m.success_over_safe),
    },
    Column {
        title: Some("success / all prompts"),
        csv: &[
            "success_over_all",
            "success_over_all_ci_lo",
            "success_over_all_ci_hi",
        ],
        value: |_, m| Value::Ratio(m.success_over_all),
    },
    Column {
        title: Some("mean triggers"),
        csv: &["mean_triggers"],
        value: |_, m| Value::Mean {
            value: m.mean_triggers,
            digits: 2,
        },
    },
    Column {
        title: Some("reproducibility"),
        csv: &["reproducibility"],
        value: |_, m| Value::Share(m.reproducibility),
    },
    Column {
        title: Some("renders"),
        csv: &["renders"],
        value: |_, m| Value::Count(m.renders),
    },
    Column {
        title: Some("incomplete renders"),
        csv: &["incomplete_renders"],
        value: |_, m| Value::Count(m.incomplete_renders),
    },
    Column {
        title: Some("refused renders"),
        csv: &["refused_renders"],
        value: |_, m| Value::Count(m.refused_renders),
    },
    Column {
        title: Some("diversity (Self-BLEU)"),
        csv: &["diversity_self_bleu"],
        value: |_, m| Value::Mean {
            value: m.diversity.self_bleu,
            digits: 3,
        },
    },
    Column {
        title: Some("diversity (embedding)"),
        csv: &["diversity_embedding"],
        value: |_, m| Value::Mean {
            value: m.diversity.embedding,
            digits: 3,
        },
    },
    Column {
        title: None,
        csv: &["embedder"],
        value: |_, m| Value::Text(m.diversity.embedder.clone().unwrap_or_default()),
    },
];

/// The rows of the summary: every category in report order, then `all` (the flag says which
/// is `all`).
pub(super) fn rows(report: &Report) -> impl Iterator<Item = (&CategoryMetrics, bool)> {
    let categories = report.categories.iter().map(|m| (m, false));
    categories.chain([(&report.overall, true)])
}

/// The columns of the Markdown and HTML tables, with their headers.
pub(super) fn table_columns() -> impl Iterator<Item = (&'static str, &'static Column)> {
    COLUMNS.iter().filter_map(|c| Some((c.title?, c)))
}

/// The embedding model of the diversity column (or why there was none), which Markdown and
/// HTML show once under the table rather than in a column.
pub(super) fn embedder_note(report: &Report) -> Option<&str> {
    report.overall.diversity.embedder.as_deref()
}

const fn csv_width(columns: &[Column]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < columns.len() {
        n += columns[i].csv.len();
        i += 1;
    }
    n
}

const CSV_WIDTH: usize = csv_width(COLUMNS);

/// Every CSV header name of [`COLUMNS`], in order.
pub(super) const CSV_NAMES: [&str; CSV_WIDTH] = {
    let mut names = [""; CSV_WIDTH];
    let (mut i, mut k) = (0, 0);
    while i < COLUMNS.len() {
        let mut j = 0;
        while j < COLUMNS[i].csv.len() {
            names[k] = COLUMNS[i].csv[j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    names
};
