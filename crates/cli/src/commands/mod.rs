//! One module per subcommand group.

mod eval;
mod export;
mod inspect;
mod judge;
mod report;
mod run;

use crate::Failure;
use crate::args::{Cli, Command};
use anyhow::anyhow;
use art_config::Source;
use std::path::Path;

/// The config layers of `--preset` and `-c`, the file over the preset.
fn config_layers(preset: Option<&str>, config: Option<&Path>) -> Result<Vec<Source>, Failure> {
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

pub fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Resume(a) => run::resume(a),
        Command::Eval(a) => eval::eval(a),
        Command::List(a) => inspect::list(a),
        Command::Show(a) => inspect::show(a),
        Command::Report(a) => report::report(a),
        Command::Compare(a) => report::compare(a),
        Command::Export(a) => export::export(a),
        Command::Judge(a) => judge::judge(a),
    }
}
