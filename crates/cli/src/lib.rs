//! The `art` command line: argument parsing, building roles from config, progress display and
//! exit codes. The only crate that uses `anyhow`; the libraries below keep typed errors.
//!
//! Exit codes: 0 ok; 1 runtime failure (a role or the store failed, or a lane failed);
//! 2 usage or configuration error (nothing is written); 130 stopped by Ctrl-C (resume
//! continues the campaign).

mod args;
mod commands;
mod factory;
mod progress;
mod prompts;
mod time;

use std::process::ExitCode;

pub use args::Cli;

/// How a command ended, beyond success.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments, config or input: exit 2.
    Usage(anyhow::Error),
    /// Something failed while working: exit 1.
    Runtime(anyhow::Error),
    /// Stopped on request; the message says how to continue: exit 130.
    Interrupted(String),
}

impl Failure {
    pub fn usage(e: impl Into<anyhow::Error>) -> Self {
        Failure::Usage(e.into())
    }
    pub fn runtime(e: impl Into<anyhow::Error>) -> Self {
        Failure::Runtime(e.into())
    }
}

/// Store errors caused by what the user asked for (a locked campaign, an unwritable folder,
/// a store from a newer `art`) are usage errors; the rest are runtime failures.
impl From<art_store::StoreError> for Failure {
    fn from(e: art_store::StoreError) -> Self {
        if e.is_user_error() {
            Failure::Usage(e.into())
        } else {
            Failure::Runtime(e.into())
        }
    }
}

impl From<art_config::ConfigError> for Failure {
    fn from(e: art_config::ConfigError) -> Self {
        Failure::Usage(e.into())
    }
}

pub fn main() -> ExitCode {
    use clap::Parser;
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        // A closed pipe (`art show … | head`) is the reader's choice, not a failure.
        Err(Failure::Runtime(e)) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Interrupted(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(130)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
