//! Test inputs that live outside the repository (the published judge files under
//! `../shared`, a network the test needs), and the one rule for a test that cannot find them:
//! it **fails**, naming what is missing and where it looked, unless the run opted out of that
//! input by name with the documented variable `ART_TEST_SKIP` (a comma-separated list of
//! input names, e.g. `ART_TEST_SKIP=judge-heads`). A skip is printed and, when
//! `ART_TEST_SKIP_LOG` names a file (tools/test.sh sets it), appended to it as one line, so
//! the test script's summary counts every skip. A test that passed without checking anything
//! is what this module exists to rule out.

use std::io::Write;
use std::path::PathBuf;

/// The variable that lists the inputs a run may skip.
pub const SKIP_VAR: &str = "ART_TEST_SKIP";
/// The file every skip is appended to, one line each.
pub const SKIP_LOG_VAR: &str = "ART_TEST_SKIP_LOG";

/// Whether `input` is named in `ART_TEST_SKIP`.
pub fn skip_allowed(input: &str) -> bool {
    std::env::var(SKIP_VAR).is_ok_and(|v| v.split(',').any(|s| s.trim() == input))
}

/// The outcome for a test whose `input` is missing: `Ok(())` (skip, recorded) when the run
/// allowed skipping it, else `Err` with the message the test panics with.
pub fn missing(test: &str, input: &str, why: &str) -> Result<(), String> {
    if !skip_allowed(input) {
        return Err(format!(
            "{test}: {why}. This test does not pass without its input; provide it, or skip \
             it on purpose with {SKIP_VAR}={input} (tools/test.sh counts the skips)"
        ));
    }
    let line = format!("{test}: skipped ({SKIP_VAR} names {input}): {why}");
    eprintln!("SKIPPED {line}");
    if let Some(log) = std::env::var_os(SKIP_LOG_VAR) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            return Err(format!(
                "{test}: cannot record the skip in {}: {e}",
                PathBuf::from(log).display()
            ));
        }
    }
    Ok(())
}

/// `dir` when it is a directory; otherwise the [`missing`] rule: panics, or returns `None`
/// for a recorded skip. `set_by` names the variable that points elsewhere.
pub fn require_dir(test: &str, input: &str, dir: PathBuf, set_by: &str) -> Option<PathBuf> {
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!(
        "needs the folder {} (input `{input}`; {set_by} names another place)",
        dir.display()
    );
    match missing(test, input, &why) {
        Ok(()) => None,
        Err(message) => panic!("{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = "no-such-input-xyz";

    /// Run alone by the test below with and without the skip variables set: without them a
    /// missing input is an error; with them it is a recorded skip.
    #[test]
    fn missing_input_outcome() {
        let named = skip_allowed(INPUT);
        let r = missing("t", INPUT, "needs X");
        if named {
            assert_eq!(r, Ok(()));
        } else {
            let e = r.unwrap_err();
            assert!(e.contains("needs X") && e.contains("ART_TEST_SKIP=no-such-input-xyz"));
            let dir = std::panic::catch_unwind(|| {
                require_dir("t", INPUT, PathBuf::from("/nonexistent/art"), "VAR")
            });
            assert!(dir.is_err(), "a missing folder must fail the test");
        }
        assert_eq!(
            require_dir("t", INPUT, PathBuf::from("."), "VAR"),
            Some(PathBuf::from("."))
        );
    }

    #[test]
    fn a_missing_input_fails_unless_skipped_by_name_and_the_skip_is_logged() {
        let tmp = std::env::temp_dir().join(format!("art-skip-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let log = tmp.to_str().unwrap();
        crate::rerun_test_with_env(
            "inputs::tests::missing_input_outcome",
            &[],
            &[SKIP_VAR, SKIP_LOG_VAR],
        );
        assert!(!tmp.exists(), "no skip, no log line");
        crate::rerun_test_with_env(
            "inputs::tests::missing_input_outcome",
            &[(SKIP_VAR, &format!("other, {INPUT}")), (SKIP_LOG_VAR, log)],
            &[],
        );
        let lines = std::fs::read_to_string(&tmp).unwrap();
        let _ = std::fs::remove_file(&tmp);
        assert_eq!(lines.lines().count(), 1, "{lines}");
        assert!(
            lines.contains("t: skipped") && lines.contains(INPUT),
            "{lines}"
        );
    }
}
