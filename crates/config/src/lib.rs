//! `art-config`: the typed configuration of a campaign.
//!
//! A campaign's settings come from up to three layers, later ones winning: a compiled-in preset
//! (`--preset paper`), the user's TOML file (`--config`), and command-line overrides. Each layer
//! is parsed strictly on its own, so an error points at the line of the file that holds it. The
//! resolved [`Config`] serializes back to TOML: that text is what the store keeps and what
//! `resume` parses again.

mod campaign;
pub mod endpoint;
pub mod judges;
mod load;
pub mod local;
pub mod remote;
pub mod roles;

pub use campaign::*;
pub use endpoint::EndpointConfig;
pub use load::{ConfigError, Overrides, Source, load, load_judges};
pub use roles::{
    Availability, GuideConfig, ImageJudgeConfig, JudgeSection, PromptJudgeConfig, RoleKind,
    ScriptedJudge, ScriptedTarget, ScriptedText, TargetConfig, WriterConfig,
};
