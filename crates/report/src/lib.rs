//! `art-report`: what a campaign found, measured by the paper's evaluation protocol, and the
//! reports a person reviews.
//!
//! * [`data`]: everything a report reads from a store, loaded once ([`CampaignData`]);
//! * [`model`]: the computed results ([`Report`]): plain data, serializable, the single source
//!   for every output format;
//! * `metrics`: computing a [`Report`] from [`CampaignData`] (protocol, Wilson intervals, judge
//!   statistics, reproducibility, diversity);
//! * `render`: Markdown, JSON, CSV, the self-contained HTML report, and the findings as
//!   Parquet.
//!
//! Reports read the store only; they never change it.

pub mod data;
pub mod metrics;
pub mod model;
pub mod render;

pub use data::CampaignData;
pub use metrics::{Embedder, MetricsOptions, compute};
pub use model::*;
