//! The config layers `run` and `judge` read: `--preset`, then the `-c` file over it.

use crate::Failure;
use anyhow::anyhow;
use art_config::Source;
use std::path::Path;

/// The config layers of `--preset` and `-c`, the file over the preset.
pub(super) fn config_layers(
    preset: Option<&str>,
    config: Option<&Path>,
) -> Result<Vec<Source>, Failure> {
    let mut layers = Vec::new();
    if let Some(p) = preset {
        layers.push(Source::preset(p)?);
    }
    if let Some(path) = config {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(anyhow!("cannot read config file {}: {e}", path.display()))
        })?;
        layers.push(Source {
            name: path.display().to_string(),
            text,
        });
    }
    Ok(layers)
}
