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

pub mod contract;
mod scripted;

pub use scripted::{
    ScriptedGuide, ScriptedImageJudge, ScriptedPromptJudge, ScriptedTarget, ScriptedWriter,
    depicted_prompt,
};
