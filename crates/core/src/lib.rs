//! `art-core`: the vocabulary every other `art` crate speaks.
//!
//! It owns the domain types (categories, images, model identities), the five role traits
//! (Target, Writer, Guide, PromptJudge, ImageJudge), the verdict rules of the ART method and the
//! derivation of per-item seeds. It deliberately depends on nothing heavy (no model runtime, no
//! async runtime, no database) so that the engine, the store and the reports build and test
//! without any model code, and so that a new backend only has to implement a trait.

pub mod category;
pub mod identity;
pub mod image;
pub mod role;
pub mod seed;
pub mod template;
pub mod verdict;

pub use category::{Categories, Category, CategoryError};
pub use identity::ModelIdentity;
pub use image::{Image, ImageError};
pub use role::{
    Guide, GuideOutput, GuideRequest, ImageJudge, PromptJudge, RenderOutcome, RenderOutput,
    RenderRequest, RoleError, Target, WriteRequest, Writer, cut_guide_example, fail_batch,
};
pub use seed::{SeedStream, Stage, derive_seed};
pub use verdict::{JudgeOutcome, JudgeScore, Label, Verdict, is_success};
