//! The stage vocabulary shared by the scheduler (`run.rs`), the lanes (`lane.rs`) and the
//! workers (`work.rs`): the stages of a round ([`StageName`]), the order the scheduler considers
//! them in, which stages feed which, the seed stage each draws from, and the role
//! implementations the stages call ([`Roles`]).
//!
//! It sits in a module of its own, below the three that use it, so that none of them has to
//! import another for these names and the modules of the crate depend on each other without a
//! cycle: `run` uses `lane`, `work` and `stage`; `lane` and `work` use only `stage` (and
//! `lane` the campaign's `spec`).

use art_core::{Guide, ImageJudge, PromptJudge, Stage, Target, Writer};

/// The role implementations a campaign runs with.
pub struct Roles {
    pub target: Box<dyn Target>,
    pub writer: Box<dyn Writer>,
    pub guide: Box<dyn Guide>,
    pub prompt_judges: Vec<Box<dyn PromptJudge>>,
    pub image_judges: Vec<Box<dyn ImageJudge>>,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles")
            .field("target", &self.target.identity())
            .field("writer", &self.writer.identity())
            .field("guide", &self.guide.identity())
            .field("prompt_judges", &self.prompt_judges.len())
            .field("image_judges", &self.image_judges.len())
            .finish()
    }
}

/// The stages of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageName {
    Writer,
    Target,
    Guide,
    PromptJudges,
    ImageJudges,
    Commit,
}

/// The role stages, in the order the scheduler considers them.
pub(crate) const STAGES: [StageName; 5] = [
    StageName::Writer,
    StageName::Target,
    StageName::PromptJudges,
    StageName::Guide,
    StageName::ImageJudges,
];

impl StageName {
    /// The stages whose results make lanes ready for this one.
    pub(crate) fn feeders(self) -> &'static [StageName] {
        match self {
            StageName::Target | StageName::PromptJudges => &[StageName::Writer],
            StageName::Guide | StageName::ImageJudges => &[StageName::Target],
            StageName::Writer => &[StageName::Guide, StageName::Target],
            StageName::Commit => &[],
        }
    }

    pub(crate) fn seed_stage(self) -> Stage {
        match self {
            StageName::Target => Stage::Target,
            StageName::Guide => Stage::Guide,
            _ => Stage::Writer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Writer => "writer",
            StageName::Target => "target",
            StageName::Guide => "guide",
            StageName::PromptJudges => "prompt_judges",
            StageName::ImageJudges => "image_judges",
            StageName::Commit => "commit",
        }
    }
}
