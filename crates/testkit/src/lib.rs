//! `art-testkit`: scripted, deterministic implementations of every role, and the contract checks
//! every real implementation must also pass.
//!
//! The scripted roles let the engine, the store and the CLI be tested end to end without any
//! model. They are test fixtures, not a user-facing mode: `art` only runs them when built with
//! its `testkit` feature.
//!
//! How they play together:
//! * the **target** "depicts" its prompt: the image carries the prompt's bytes in its first
//!   pixels (after a magic header), the rest is noise from the prompt's hash and the seed;
//! * the **image judge** reads the depicted prompt back and flags configured words, so image
//!   verdicts are keyed on words just like prompt verdicts;
//! * the **guide** names the category and asks for one of its keywords (chosen by the seed);
//! * the **writer** applies the guide's instruction by appending the requested keyword.
//!
//! [`fixture`] writes the TOML of a campaign with these roles, the one config text the tests
//! and benchmarks of the other crates build theirs from. [`golden`] (feature `golden`) holds
//! the model crates' golden-file helpers.

pub mod contract;
pub mod fixture;
#[cfg(feature = "golden")]
pub mod golden;
pub mod inputs;

/// The process's peak resident memory in MiB (Linux `VmHWM`), for benchmarks to report.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The median of the benchmarks' timings: the middle value, or the mean of the two middle
/// values of an even count (NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs the test `test` of the current test binary again in a child process with `set`
/// added to its environment and `remove` taken out (setting variables in-process needs
/// `unsafe` in Rust 2024, which the workspace forbids). Panics unless the child passed that
/// one test; returns what it printed (stdout, then stderr).
pub fn rerun_test_with_env(test: &str, set: &[(&str, &str)], remove: &[&str]) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", test, "--nocapture"]);
    for (k, v) in set {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child run of {test} failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran {test}:\n{text}");
    text
}

mod scripted;

pub use scripted::{
    ScriptedGuide, ScriptedImageJudge, ScriptedPromptJudge, ScriptedTarget, ScriptedWriter,
    depicted_prompt,
};

/// Builds scripted roles from their config sections; `None` for any other kind.
pub mod build {
    use crate::scripted::*;
    use art_config::{
        GuideConfig, ImageJudgeConfig, JudgeSection, PromptJudgeConfig, TargetConfig, WriterConfig,
    };
    use art_core::{Guide, ImageJudge, PromptJudge, Target, Writer};

    pub fn target(c: &TargetConfig) -> Option<Box<dyn Target>> {
        match c {
            TargetConfig::Scripted(s) => Some(Box::new(ScriptedTarget(s.clone()))),
            _ => None,
        }
    }

    pub fn writer(c: &WriterConfig) -> Option<Box<dyn Writer>> {
        match c {
            WriterConfig::Scripted(s) => Some(Box::new(ScriptedWriter(s.clone()))),
            _ => None,
        }
    }

    pub fn guide(c: &GuideConfig) -> Option<Box<dyn Guide>> {
        match c {
            GuideConfig::Scripted(s) => Some(Box::new(ScriptedGuide(s.clone()))),
            _ => None,
        }
    }

    pub fn prompt_judge(c: &PromptJudgeConfig) -> Option<Box<dyn PromptJudge>> {
        match c {
            PromptJudgeConfig::Scripted(s) => Some(Box::new(ScriptedPromptJudge {
                name: c.name(),
                config: s.clone(),
            })),
            _ => None,
        }
    }

    pub fn image_judge(c: &ImageJudgeConfig) -> Option<Box<dyn ImageJudge>> {
        match c {
            ImageJudgeConfig::Scripted(s) => Some(Box::new(ScriptedImageJudge {
                name: c.name(),
                config: s.clone(),
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        // The 512 px SD benchmark's two art runs: the upper one was taken before.
        assert_eq!(super::median(&[128.0, 111.7]), 119.85);
        assert_eq!(super::median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(super::median(&[]).is_nan());
    }
}
