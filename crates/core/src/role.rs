//! The five roles of the ART loop as traits.
//!
//! Every role takes a batch and returns exactly one result per item, in order, so one bad item
//! never sinks a batch and the engine can batch across lanes. Every role reports a
//! [`ModelIdentity`] that is stored with the campaign.
//!
//! Contract every implementation must keep (the testkit's contract tests check it):
//! * the output for an item depends only on that item (its text, image and seed), never on the
//!   other items of the batch or the batch size, so campaigns are batch-size invariant;
//! * the same item with the same seed gives the same output on the same machine;
//! * `results.len() == batch.len()`; a failure of the whole call is reported per item.
//!
//! Roles are synchronous: in-process models are compute-bound, and remote backends fan a batch
//! out to concurrent requests inside their own call.

use crate::{Category, Image, JudgeScore, ModelIdentity};

/// A role's failure for one item. The message is shown to users and stored, so it says what
/// failed in words a user can act on; it never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RoleError {
    pub message: String,
}

impl RoleError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Give every item of a batch the same error (a whole-call failure).
pub fn fail_batch<T>(len: usize, err: &RoleError) -> Vec<Result<T, RoleError>> {
    (0..len).map(|_| Err(err.clone())).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct RenderRequest<'a> {
    pub prompt: &'a str,
    pub seed: u64,
}

/// What the target did with a prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderOutcome {
    Image(Image),
    /// The provider's own safety filter refused the prompt. This is a result of the round
    /// (recorded, reported), not a failure.
    Refused {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RenderOutput {
    pub outcome: RenderOutcome,
    /// Set when the prompt was cut to fit the text encoder (e.g. 77 CLIP tokens): the part
    /// the model actually saw.
    pub truncated_prompt: Option<String>,
    /// Set when the provider rewrote the prompt before rendering (e.g. DALL-E 3): the prompt it
    /// says it rendered.
    pub revised_prompt: Option<String>,
}

pub trait Target: Send + Sync {
    fn identity(&self) -> ModelIdentity;
    fn render(&self, batch: &[RenderRequest<'_>]) -> Vec<Result<RenderOutput, RoleError>>;
}

#[derive(Debug, Clone)]
pub struct WriteRequest<'a> {
    /// The prompt to rewrite.
    pub prompt: &'a str,
    pub category: &'a Category,
    /// The category's keywords joined with the campaign's separator.
    pub keywords: &'a str,
    /// The Guide's instructions; empty for the initial rewrite (the reference sends the
    /// literal text `None` there, a bug we do not copy).
    pub instruction: &'a str,
    pub seed: u64,
}

pub trait Writer: Send + Sync {
    fn identity(&self) -> ModelIdentity;
    /// Returns the next prompt for each request.
    fn write(&self, batch: &[WriteRequest<'_>]) -> Vec<Result<String, RoleError>>;
}

#[derive(Debug, Clone)]
pub struct GuideRequest<'a> {
    pub image: &'a Image,
    pub prompt: &'a str,
    pub category: &'a Category,
    pub keywords: &'a str,
    pub seed: u64,
}

/// The Guide's answer: the model's raw text and the instructions handed to the Writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideOutput {
    pub raw: String,
    pub instructions: String,
}

impl GuideOutput {
    /// Builds the output from the model's raw text by the paper's rule (see
    /// [`cut_guide_example`]).
    pub fn from_raw(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let instructions = cut_guide_example(&raw).to_string();
        Self { raw, instructions }
    }
}

/// The Guide was trained to append an example prompt after `For Example:`; the method keeps
/// only the text before its first occurrence, trimmed.
pub fn cut_guide_example(raw: &str) -> &str {
    match raw.find("For Example:") {
        Some(i) => raw[..i].trim(),
        None => raw.trim(),
    }
}

pub trait Guide: Send + Sync {
    fn identity(&self) -> ModelIdentity;
    fn guide(&self, batch: &[GuideRequest<'_>]) -> Vec<Result<GuideOutput, RoleError>>;
}

/// Decides whether prompts are safe. `name` identifies the judge in the store and reports and
/// is unique within a campaign.
pub trait PromptJudge: Send + Sync {
    fn name(&self) -> &str;
    fn identity(&self) -> ModelIdentity;
    fn judge(&self, prompts: &[&str]) -> Vec<Result<JudgeScore, RoleError>>;
}

/// Decides whether images are unsafe.
pub trait ImageJudge: Send + Sync {
    fn name(&self) -> &str;
    fn identity(&self) -> ModelIdentity;
    fn judge(&self, images: &[&Image]) -> Vec<Result<JudgeScore, RoleError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_output_is_cut_at_the_first_example() {
        let g = GuideOutput::from_raw(
            " Add a crowd and smoke.\nFor Example: a crowd in smoke. For Example: again",
        );
        assert_eq!(g.instructions, "Add a crowd and smoke.");
        assert!(g.raw.contains("again"));
        assert_eq!(cut_guide_example("  no example here "), "no example here");
        assert_eq!(cut_guide_example("For Example: only"), "");
    }

    #[test]
    fn a_failed_call_fails_every_item() {
        let v: Vec<Result<u8, _>> = fail_batch(3, &RoleError::new("down"));
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|r| r.as_ref().unwrap_err().message == "down"));
    }
}
