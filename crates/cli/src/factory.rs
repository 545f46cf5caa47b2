//! Builds role implementations from their config sections.
//!
//! Every role is checked before anything is written, and every role that cannot run is named in
//! one error, with what will bring it. The testkit's scripted roles are built only when `art` is
//! compiled with the `testkit` feature.

use crate::Failure;
use art_config::{Availability, Config, JudgeSection, RoleKind};
use art_engine::Roles;

/// Why a role section cannot be built in this binary, or `None` when it can.
fn unavailable(section: &str, role: &dyn RoleKind) -> Option<String> {
    match role.availability() {
        Availability::Built => None,
        Availability::TestFixture if cfg!(feature = "testkit") => None,
        Availability::TestFixture => Some(format!(
            "{section} (kind = \"{}\") is a test fixture of art-testkit; this art was built \
             without the `testkit` feature",
            role.kind()
        )),
        Availability::Planned(what) => Some(format!(
            "{section} (kind = \"{}\") is not available yet: it arrives with {what}",
            role.kind()
        )),
    }
}

/// Checks that every enabled role of `config` can run here.
pub fn check(config: &Config) -> Result<(), Failure> {
    let mut missing = Vec::new();
    missing.extend(unavailable("[target]", &config.target));
    missing.extend(unavailable("[writer]", &config.writer));
    missing.extend(unavailable("[guide]", &config.guide));
    for j in config.prompt_judge.iter().filter(|j| j.enabled()) {
        missing.extend(unavailable(&format!("[[prompt_judge]] `{}`", j.name()), j));
    }
    for j in config.image_judge.iter().filter(|j| j.enabled()) {
        missing.extend(unavailable(&format!("[[image_judge]] `{}`", j.name()), j));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::usage(anyhow::anyhow!(
            "this campaign cannot run: {} role(s) are not available in this build of art:\n  - {}",
            missing.len(),
            missing.join("\n  - ")
        )))
    }
}

/// Builds the roles of a checked config.
pub fn build(config: &Config) -> Result<Roles, Failure> {
    check(config)?;
    build_checked(config)
}

#[cfg(feature = "testkit")]
fn build_checked(config: &Config) -> Result<Roles, Failure> {
    use art_testkit::build;
    // `check` has ruled out every kind that is not built, so only scripted kinds reach here.
    fn some<T>(role: Option<T>) -> Result<T, Failure> {
        role.ok_or_else(|| Failure::runtime(anyhow::anyhow!("internal: unchecked role kind")))
    }
    Ok(Roles {
        target: some(build::target(&config.target))?,
        writer: some(build::writer(&config.writer))?,
        guide: some(build::guide(&config.guide))?,
        prompt_judges: config
            .prompt_judge
            .iter()
            .filter(|j| j.enabled())
            .map(|j| some(build::prompt_judge(j)))
            .collect::<Result<_, _>>()?,
        image_judges: config
            .image_judge
            .iter()
            .filter(|j| j.enabled())
            .map(|j| some(build::image_judge(j)))
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(not(feature = "testkit"))]
fn build_checked(_config: &Config) -> Result<Roles, Failure> {
    // No role kind is built into this binary yet; `check` has already reported which ones are
    // missing, so this is only reached if `check` and this function disagree.
    Err(Failure::runtime(anyhow::anyhow!(
        "internal: no role implementation is compiled into this build"
    )))
}

/// Identities of all roles, keyed as the store expects.
pub fn identities(roles: &Roles) -> std::collections::BTreeMap<String, art_core::ModelIdentity> {
    let mut m = std::collections::BTreeMap::new();
    m.insert("target".to_string(), roles.target.identity());
    m.insert("writer".to_string(), roles.writer.identity());
    m.insert("guide".to_string(), roles.guide.identity());
    for j in &roles.prompt_judges {
        m.insert(format!("prompt_judge:{}", j.name()), j.identity());
    }
    for j in &roles.image_judges {
        m.insert(format!("image_judge:{}", j.name()), j.identity());
    }
    m
}
