//! The JSON report: the [`Report`] value itself, pretty-printed.
//!
//! It is the machine-readable twin of the other formats. Field order is the struct order of
//! `model.rs` (serde keeps it), so two reports of the same data are byte-identical and diff
//! cleanly; a `None` is written as `null`.

use crate::model::Report;

/// The report as pretty-printed JSON, ending with a newline.
pub fn json(report: &Report) -> String {
    let mut out = serde_json::to_string_pretty(report)
        // The model is plain data (strings, numbers, maps with string keys): it always serializes.
        .expect("a Report always serializes to JSON");
    out.push('\n');
    out
}
