//! Builds role implementations from their config sections.
//!
//! Every role is checked before anything is written, and every role that cannot run in this
//! binary is named in one error. The testkit's scripted roles are built only when `art` is
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
    }
}

/// Which roles a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A campaign: every role.
    Campaign,
    /// An evaluation: the target and the image judges.
    Evaluation,
    /// A baseline (fixed prompts): the target and all judges.
    Baseline,
}

/// Checks that every enabled role the command needs can run here, naming all that cannot.
pub fn check(config: &Config, needs: Needs) -> Result<(), Failure> {
    let mut missing = Vec::new();
    missing.extend(unavailable("[target]", &config.target));
    if needs == Needs::Campaign {
        missing.extend(unavailable("[writer]", &config.writer));
        missing.extend(unavailable("[guide]", &config.guide));
    }
    let prompt_judges: &[_] = if needs == Needs::Evaluation {
        &[]
    } else {
        &config.prompt_judge
    };
    missing.extend(unavailable_judges(prompt_judges, &config.image_judge));
    report_missing("this campaign", missing)
}

/// The enabled judges of these lists that cannot run here.
fn unavailable_judges(
    prompt: &[art_config::PromptJudgeConfig],
    image: &[art_config::ImageJudgeConfig],
) -> Vec<String> {
    let mut missing = Vec::new();
    for j in prompt.iter().filter(|j| j.enabled()) {
        missing.extend(unavailable(&format!("[[prompt_judge]] `{}`", j.name()), j));
    }
    for j in image.iter().filter(|j| j.enabled()) {
        missing.extend(unavailable(&format!("[[image_judge]] `{}`", j.name()), j));
    }
    missing
}

fn report_missing(what: &str, missing: Vec<String>) -> Result<(), Failure> {
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::usage(anyhow::anyhow!(
            "{what} cannot run: {} role(s) are not available in this build of art:\n  - {}",
            missing.len(),
            missing.join("\n  - ")
        )))
    }
}

/// Builds the roles of a config: every role is checked first, then built from the first
/// backend that knows its kind. A role that cannot be built (an API key's variable unset, a
/// workflow file missing) is a usage error, reported before anything is written.
pub fn build(config: &Config) -> Result<Roles, Failure> {
    let baseline = config.campaign.baseline.is_some();
    check(
        config,
        if baseline {
            Needs::Baseline
        } else {
            Needs::Campaign
        },
    )?;
    let (writer, guide): (Box<dyn art_core::Writer>, Box<dyn art_core::Guide>) = if baseline {
        (Box::new(NotUsed), Box::new(NotUsed))
    } else {
        (
            one(
                "[writer]",
                art_remote::build::writer(&config.writer)
                    .or_else(|| art_models::build::writer(&config.writer)),
                || fixtures::writer(&config.writer),
            )?,
            one(
                "[guide]",
                art_remote::build::guide(&config.guide)
                    .or_else(|| art_models::build::guide(&config.guide)),
                || fixtures::guide(&config.guide),
            )?,
        )
    };
    Ok(Roles {
        target: target(config)?,
        writer,
        guide,
        prompt_judges: prompt_judges(&config.prompt_judge)?,
        image_judges: image_judges(&config.image_judge)?,
    })
}

/// The writer and guide of a baseline, which has none: the engine never calls them there, and
/// if it ever did, every item would fail with this explanation rather than produce text.
#[derive(Debug)]
struct NotUsed;

impl NotUsed {
    fn identity() -> art_core::ModelIdentity {
        art_core::ModelIdentity::new("none", "baseline: fixed prompts, no writer or guide")
    }
    fn error() -> art_core::RoleError {
        art_core::RoleError::new("a baseline has no writer or guide")
    }
}

impl art_core::Writer for NotUsed {
    fn identity(&self) -> art_core::ModelIdentity {
        Self::identity()
    }
    fn write(
        &self,
        batch: &[art_core::WriteRequest<'_>],
    ) -> Vec<Result<String, art_core::RoleError>> {
        art_core::fail_batch(batch.len(), &Self::error())
    }
}

impl art_core::Guide for NotUsed {
    fn identity(&self) -> art_core::ModelIdentity {
        Self::identity()
    }
    fn guide(
        &self,
        batch: &[art_core::GuideRequest<'_>],
    ) -> Vec<Result<art_core::GuideOutput, art_core::RoleError>> {
        art_core::fail_batch(batch.len(), &Self::error())
    }
}

/// What `art eval` needs: the target and the image judges.
pub type EvalRoles = (
    Box<dyn art_core::Target>,
    Vec<Box<dyn art_core::ImageJudge>>,
);

/// The target and image judges alone, for `art eval`.
pub fn build_eval(config: &Config) -> Result<EvalRoles, Failure> {
    check(config, Needs::Evaluation)?;
    Ok((target(config)?, image_judges(&config.image_judge)?))
}

fn target(config: &Config) -> Result<Box<dyn art_core::Target>, Failure> {
    one(
        "[target]",
        art_remote::build::target(&config.target)
            .or_else(|| art_models::build::target(&config.target)),
        || fixtures::target(&config.target),
    )
}

fn prompt_judges(
    sections: &[art_config::PromptJudgeConfig],
) -> Result<Vec<Box<dyn art_core::PromptJudge>>, Failure> {
    sections
        .iter()
        .filter(|j| j.enabled())
        .map(|j| {
            one(
                &format!("[[prompt_judge]] `{}`", j.name()),
                art_remote::build::prompt_judge(j).or_else(|| art_models::build::prompt_judge(j)),
                || fixtures::prompt_judge(j),
            )
        })
        .collect()
}

fn image_judges(
    sections: &[art_config::ImageJudgeConfig],
) -> Result<Vec<Box<dyn art_core::ImageJudge>>, Failure> {
    sections
        .iter()
        .filter(|j| j.enabled())
        .map(|j| {
            one(
                &format!("[[image_judge]] `{}`", j.name()),
                art_remote::build::image_judge(j).or_else(|| art_models::build::image_judge(j)),
                || fixtures::image_judge(j),
            )
        })
        .collect()
}

/// The prompt judges and the image judges `art judge` runs.
pub type JudgeRoles = (
    Vec<Box<dyn art_core::PromptJudge>>,
    Vec<Box<dyn art_core::ImageJudge>>,
);

/// The enabled judges of `judges` (only those named in `only`, when it is not empty), each
/// checked for availability first.
pub fn build_judges(judges: &art_config::Judges, only: &[String]) -> Result<JudgeRoles, Failure> {
    let names: Vec<String> = judges
        .prompt_judge
        .iter()
        .map(|j| j.name())
        .chain(judges.image_judge.iter().map(|j| j.name()))
        .collect();
    if let Some(unknown) = only.iter().find(|n| !names.contains(n)) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--judge `{unknown}`: no judge has that name (the config's judges: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    let keep = |n: String| only.is_empty() || only.contains(&n);
    let prompt: Vec<_> = judges
        .prompt_judge
        .iter()
        .filter(|j| keep(j.name()))
        .cloned()
        .collect();
    let image: Vec<_> = judges
        .image_judge
        .iter()
        .filter(|j| keep(j.name()))
        .cloned()
        .collect();
    report_missing("the judges", unavailable_judges(&prompt, &image))?;
    Ok((prompt_judges(&prompt)?, image_judges(&image)?))
}

fn one<T: ?Sized>(
    section: &str,
    remote: Option<Result<Box<T>, art_core::RoleError>>,
    fixture: impl FnOnce() -> Option<Box<T>>,
) -> Result<Box<T>, Failure> {
    match remote {
        Some(Ok(role)) => Ok(role),
        Some(Err(e)) => Err(Failure::usage(anyhow::anyhow!("{section}: {e}"))),
        None => fixture().ok_or_else(|| {
            Failure::runtime(anyhow::anyhow!(
                "internal: {section} passed the availability check but no backend builds it"
            ))
        }),
    }
}

/// The testkit's scripted roles, in builds with the `testkit` feature.
#[cfg(feature = "testkit")]
mod fixtures {
    pub use art_testkit::build::*;
}

/// Without the `testkit` feature no fixture is built (`check` has reported them already).
#[cfg(not(feature = "testkit"))]
mod fixtures {
    use art_config::{
        GuideConfig, ImageJudgeConfig, PromptJudgeConfig, TargetConfig, WriterConfig,
    };
    use art_core::{Guide, ImageJudge, PromptJudge, Target, Writer};
    pub fn target(_: &TargetConfig) -> Option<Box<dyn Target>> {
        None
    }
    pub fn writer(_: &WriterConfig) -> Option<Box<dyn Writer>> {
        None
    }
    pub fn guide(_: &GuideConfig) -> Option<Box<dyn Guide>> {
        None
    }
    pub fn prompt_judge(_: &PromptJudgeConfig) -> Option<Box<dyn PromptJudge>> {
        None
    }
    pub fn image_judge(_: &ImageJudgeConfig) -> Option<Box<dyn ImageJudge>> {
        None
    }
}

/// Identities of the target and image judges, keyed as the store expects.
pub fn eval_identities(
    target: &dyn art_core::Target,
    judges: &[Box<dyn art_core::ImageJudge>],
) -> std::collections::BTreeMap<String, art_core::ModelIdentity> {
    let mut m = std::collections::BTreeMap::new();
    m.insert("target".to_string(), target.identity());
    for j in judges {
        m.insert(format!("image_judge:{}", j.name()), j.identity());
    }
    m
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
