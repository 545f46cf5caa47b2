//! One batch of one stage, as sent to a worker thread and as it comes back.
//!
//! A job owns (or shares through `Arc`) everything its role needs, so workers run on their own
//! threads while the scheduler goes on updating lanes and committing rounds.

use crate::stage::{Roles, StageName};
use art_core::{
    Category, GuideOutput, GuideRequest, Image, JudgeScore, RenderOutput, RenderRequest, RoleError,
    WriteRequest,
};
use std::any::Any;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One lane's item in a job.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Index of the lane in the scheduler's lane list.
    pub lane: usize,
    pub prompt: Arc<str>,
    pub image: Option<Arc<Image>>,
    pub category: Arc<Category>,
    pub keywords: Arc<str>,
    /// The writer's instruction (the guide's text, or empty).
    pub instruction: String,
    pub seed: u64,
}

#[derive(Debug)]
pub(crate) struct Job {
    pub stage: StageName,
    pub items: Vec<Item>,
}

/// A judge's name and its results for every item of the job, in item order.
pub(crate) type JudgeResults = Vec<(String, Vec<Result<JudgeScore, RoleError>>)>;

#[derive(Debug)]
pub(crate) enum Output {
    Render(Vec<Result<RenderOutput, RoleError>>),
    Guide(Vec<Result<GuideOutput, RoleError>>),
    Write(Vec<Result<String, RoleError>>),
    Judgments(JudgeResults),
}

#[derive(Debug)]
pub(crate) struct Done {
    pub job: Job,
    pub output: Output,
    pub elapsed: Duration,
}

/// A role that breaks the one-result-per-item contract fails every item of that batch rather
/// than silently misaligning results with lanes.
fn expect_len<T>(out: Vec<Result<T, RoleError>>, n: usize) -> Vec<Result<T, RoleError>> {
    if out.len() == n {
        out
    } else {
        let e = RoleError::new(format!(
            "role returned {} results for a batch of {n} (contract violation)",
            out.len()
        ));
        art_core::fail_batch(n, &e)
    }
}

/// A panic inside a role, as the error of the item it hit.
fn panic_error(payload: Box<dyn Any + Send>) -> RoleError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    RoleError::new(format!("the role panicked: {msg}"))
}

/// Calls a role on the items `0..n` of a batch; `call(range)` runs it on that part. A panic
/// never leaves here (a worker that died would leave its stage busy forever): the batch is run
/// again one item at a time, so only the items whose own call panics fail, and the others get
/// what they get alone, which the role contract makes what they get in a batch.
pub(crate) fn guarded<T>(
    n: usize,
    call: impl Fn(Range<usize>) -> Vec<Result<T, RoleError>>,
) -> Vec<Result<T, RoleError>> {
    let once = |r: Range<usize>| {
        let len = r.len();
        catch_unwind(AssertUnwindSafe(|| expect_len(call(r), len)))
    };
    match once(0..n) {
        Ok(out) => out,
        Err(p) if n == 1 => vec![Err(panic_error(p))],
        Err(_) => (0..n)
            .flat_map(|i| once(i..i + 1).unwrap_or_else(|p| vec![Err(panic_error(p))]))
            .collect(),
    }
}

/// A judge's results for a batch: guarded like every role call, and every score checked to be
/// a finite number ([`JudgeScore::finite`]).
pub(crate) fn judged(
    n: usize,
    call: impl Fn(Range<usize>) -> Vec<Result<JudgeScore, RoleError>>,
) -> Vec<Result<JudgeScore, RoleError>> {
    guarded(n, call)
        .into_iter()
        .map(|r| r.and_then(JudgeScore::finite))
        .collect()
}

/// Runs one job against the roles. Called on a worker thread.
pub(crate) fn execute(roles: &Roles, job: Job) -> Done {
    let t0 = Instant::now();
    let n = job.items.len();
    let items = &job.items;
    let output = match job.stage {
        StageName::Target => {
            let reqs: Vec<RenderRequest<'_>> = items
                .iter()
                .map(|i| RenderRequest {
                    prompt: &i.prompt,
                    seed: i.seed,
                })
                .collect();
            Output::Render(guarded(n, |r| roles.target.render(&reqs[r])))
        }
        StageName::Guide => {
            let reqs: Vec<GuideRequest<'_>> = items
                .iter()
                .map(|i| GuideRequest {
                    image: i.image.as_deref().expect("guide jobs carry images"),
                    prompt: &i.prompt,
                    category: &i.category,
                    keywords: &i.keywords,
                    seed: i.seed,
                })
                .collect();
            Output::Guide(guarded(n, |r| roles.guide.guide(&reqs[r])))
        }
        StageName::Writer => {
            let reqs: Vec<WriteRequest<'_>> = items
                .iter()
                .map(|i| WriteRequest {
                    prompt: &i.prompt,
                    category: &i.category,
                    keywords: &i.keywords,
                    instruction: &i.instruction,
                    seed: i.seed,
                })
                .collect();
            Output::Write(guarded(n, |r| roles.writer.write(&reqs[r])))
        }
        StageName::PromptJudges => {
            let prompts: Vec<&str> = items.iter().map(|i| &*i.prompt).collect();
            Output::Judgments(
                roles
                    .prompt_judges
                    .iter()
                    .map(|j| (j.name().to_string(), judged(n, |r| j.judge(&prompts[r]))))
                    .collect(),
            )
        }
        StageName::ImageJudges => {
            let images: Vec<&Image> = items
                .iter()
                .map(|i| i.image.as_deref().expect("image-judge jobs carry images"))
                .collect();
            Output::Judgments(
                roles
                    .image_judges
                    .iter()
                    .map(|j| (j.name().to_string(), judged(n, |r| j.judge(&images[r]))))
                    .collect(),
            )
        }
        StageName::Commit => unreachable!("commit is not a role stage"),
    };
    Done {
        job,
        output,
        elapsed: t0.elapsed(),
    }
}
