//! Findings as a Parquet file, for analysis in pandas, polars, DuckDB or Spark: one row per
//! successful prompt, with the campaign's model identities on every row (a flat table is what
//! those tools join and filter best).
//!
//! Written with the parquet crate's column writers (no Arrow dependency); every column is
//! required, absent values are empty strings, lists are comma-joined, and the full identities
//! are one JSON column.

use crate::Report;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::sync::Arc;

/// Column names, in file order.
pub const PARQUET_COLUMNS: &[&str] = &[
    "campaign",
    "category",
    "lane_id",
    "seed_index",
    "round",
    "prompt",
    "renders",
    "unsafe_renders",
    "reproducibility",
    "triggers",
    "judges_fired",
    "unsafe_images",
    "target_kind",
    "target_model",
    "target_revision",
    "writer_model",
    "writer_adapter",
    "guide_model",
    "identities_json",
];

const SCHEMA: &str = "message finding {
    REQUIRED BYTE_ARRAY campaign (UTF8);
    REQUIRED BYTE_ARRAY category (UTF8);
    REQUIRED INT64 lane_id;
    REQUIRED INT64 seed_index;
    REQUIRED INT64 round;
    REQUIRED BYTE_ARRAY prompt (UTF8);
    REQUIRED INT64 renders;
    REQUIRED INT64 unsafe_renders;
    REQUIRED DOUBLE reproducibility;
    REQUIRED INT64 triggers;
    REQUIRED BYTE_ARRAY judges_fired (UTF8);
    REQUIRED BYTE_ARRAY unsafe_images (UTF8);
    REQUIRED BYTE_ARRAY target_kind (UTF8);
    REQUIRED BYTE_ARRAY target_model (UTF8);
    REQUIRED BYTE_ARRAY target_revision (UTF8);
    REQUIRED BYTE_ARRAY writer_model (UTF8);
    REQUIRED BYTE_ARRAY writer_adapter (UTF8);
    REQUIRED BYTE_ARRAY guide_model (UTF8);
    REQUIRED BYTE_ARRAY identities_json (UTF8);
}";

enum Column {
    Text(Vec<ByteArray>),
    Int(Vec<i64>),
    Float(Vec<f64>),
}

/// The findings of `report` as the bytes of a Parquet file (one row group).
pub fn findings_parquet(report: &Report) -> Result<Vec<u8>, String> {
    let err = |e: parquet::errors::ParquetError| format!("cannot write Parquet: {e}");
    let f = &report.findings;
    let id = |role: &str, pick: fn(&art_core::ModelIdentity) -> String| {
        report.identities.get(role).map(pick).unwrap_or_default()
    };
    let identities = serde_json::to_string(&report.identities)
        .map_err(|e| format!("cannot encode identities: {e}"))?;
    let repeat = |v: String| -> Column { Column::Text(vec![ByteArray::from(v.as_str()); f.len()]) };
    let text = |g: &dyn Fn(&crate::Finding) -> String| -> Column {
        Column::Text(f.iter().map(|x| ByteArray::from(g(x).as_str())).collect())
    };
    let int = |g: &dyn Fn(&crate::Finding) -> i64| Column::Int(f.iter().map(g).collect());
    let columns = vec![
        repeat(report.campaign.clone()),
        text(&|x| x.category.clone()),
        int(&|x| x.lane_id),
        int(&|x| x.seed_index as i64),
        int(&|x| i64::from(x.round)),
        text(&|x| x.prompt.clone()),
        int(&|x| i64::from(x.renders)),
        int(&|x| i64::from(x.unsafe_renders)),
        Column::Float(f.iter().map(|x| x.reproducibility).collect()),
        int(&|x| x.triggers as i64),
        text(&|x| x.judges_fired.join(",")),
        text(&|x| x.unsafe_images.join(",")),
        repeat(id("target", |i| i.kind.clone())),
        repeat(id("target", |i| i.model.clone())),
        repeat(id("target", |i| i.revision.clone().unwrap_or_default())),
        repeat(id("writer", |i| i.model.clone())),
        repeat(id("writer", |i| i.adapter.clone().unwrap_or_default())),
        repeat(id("guide", |i| i.model.clone())),
        repeat(identities),
    ];
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(err)?);
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, props).map_err(err)?;
    let mut group = writer.next_row_group().map_err(err)?;
    let mut values = columns.into_iter();
    while let Some(mut col) = group.next_column().map_err(err)? {
        match values.next() {
            Some(Column::Text(v)) => col.typed::<ByteArrayType>().write_batch(&v, None, None),
            Some(Column::Int(v)) => col.typed::<Int64Type>().write_batch(&v, None, None),
            Some(Column::Float(v)) => col.typed::<DoubleType>().write_batch(&v, None, None),
            None => return Err("internal: more Parquet columns than values".into()),
        }
        .map_err(err)?;
        col.close().map_err(err)?;
    }
    group.close().map_err(err)?;
    writer.into_inner().map_err(err)
}
