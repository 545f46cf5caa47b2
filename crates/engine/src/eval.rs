//! The evaluation protocol's re-renders (`art eval`): every stored prompt (rounds >= 1) is
//! rendered K times with fresh seeds derived from (lane, round, k), each render is judged by
//! the image judges, and every batch is committed as it completes.
//!
//! Resumable like a campaign: renders already stored are skipped, so an interrupted or partly
//! failed evaluation continues where it stopped; asking for more renders later adds the missing
//! ones. Rendering and judging overlap: the target renders the next batch while the judges work
//! on the last one and the store commits it.

use art_core::{
    ImageJudge, JudgeOutcome, RenderOutcome, RenderRequest, RoleError, Stage, Target, Verdict,
    derive_seed,
};
use art_store::{EvalRenderRecord, JudgmentRecord, NewEvalRender, Store, StoreError, Subject};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Progress of an evaluation.
#[derive(Debug, Clone)]
pub enum EvalEvent {
    Started {
        done: u64,
        total: u64,
    },
    /// A batch was rendered, judged and committed.
    Committed {
        renders: usize,
        done: u64,
        total: u64,
        render_time: Duration,
        judge_time: Duration,
    },
    /// The target failed for one render; it is not stored and the next `art eval` retries it.
    Failed {
        lane_id: i64,
        round: u32,
        k: u32,
        error: String,
    },
    Stopping,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalSummary {
    pub committed: u64,
    pub failed: u64,
    /// Renders still missing (failed, or not reached because of a stop).
    pub missing: u64,
    pub interrupted: bool,
    pub wall: Duration,
}

/// One render to make.
#[derive(Debug, Clone)]
struct Todo {
    lane_id: i64,
    round: u32,
    k: u32,
    prompt: Arc<str>,
    seed: u64,
}

/// Runs (or continues) the evaluation of a campaign with its target and image judges.
pub struct Evaluator<'a> {
    target: &'a dyn Target,
    image_judges: &'a [Box<dyn ImageJudge>],
    store: &'a mut Store,
    renders: u32,
    batch_size: usize,
    stop: Arc<AtomicBool>,
    on_event: Box<dyn FnMut(&EvalEvent) + 'a>,
}

impl std::fmt::Debug for Evaluator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("renders", &self.renders)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl<'a> Evaluator<'a> {
    /// An evaluator with the campaign's target and image judges.
    pub fn new(
        target: &'a dyn Target,
        image_judges: &'a [Box<dyn ImageJudge>],
        store: &'a mut Store,
        renders: u32,
        batch_size: usize,
    ) -> Self {
        Self {
            target,
            image_judges,
            store,
            renders,
            batch_size: batch_size.max(1),
            stop: Arc::new(AtomicBool::new(false)),
            on_event: Box::new(|_| {}),
        }
    }

    pub fn with_stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    pub fn on_event(mut self, f: impl FnMut(&EvalEvent) + 'a) -> Self {
        self.on_event = Box::new(f);
        self
    }

    /// The renders still to make, in (lane, round, k) order.
    fn todo(&self) -> Result<(Vec<Todo>, u64), StoreError> {
        let seeds: BTreeMap<i64, u64> = self
            .store
            .lanes()?
            .into_iter()
            .map(|l| (l.id, l.lane_seed))
            .collect();
        let have: BTreeSet<(i64, u32, u32)> = self
            .store
            .eval_renders()?
            .into_iter()
            .map(|r| (r.lane_id, r.round, r.k))
            .collect();
        let mut todo = Vec::new();
        let mut total = 0;
        for r in self.store.all_rounds()? {
            if r.round == 0 {
                continue;
            }
            let prompt: Arc<str> = r.prompt.into();
            for k in 0..self.renders {
                total += 1;
                if have.contains(&(r.lane_id, r.round, k)) {
                    continue;
                }
                let lane_seed = seeds.get(&r.lane_id).copied().unwrap_or_default();
                todo.push(Todo {
                    lane_id: r.lane_id,
                    round: r.round,
                    k,
                    prompt: prompt.clone(),
                    seed: derive_seed(lane_seed, Stage::Evaluation, r.round, k),
                });
            }
        }
        Ok((todo, total))
    }

    pub fn run(mut self) -> Result<EvalSummary, StoreError> {
        let start = Instant::now();
        let (todo, total) = self.todo()?;
        let mut done = total - todo.len() as u64;
        (self.on_event)(&EvalEvent::Started { done, total });
        let mut summary = EvalSummary::default();
        let target = self.target;
        let stop = self.stop.clone();
        let batches: Vec<Vec<Todo>> = todo.chunks(self.batch_size).map(<[Todo]>::to_vec).collect();
        type Rendered = (
            Vec<Todo>,
            Vec<Result<art_core::RenderOutput, RoleError>>,
            Duration,
        );
        std::thread::scope(|scope| -> Result<(), StoreError> {
            // One batch rendered ahead while the last one is judged and committed.
            let (tx, rx) = mpsc::sync_channel::<Rendered>(1);
            scope.spawn(move || {
                for batch in batches {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let t0 = Instant::now();
                    let reqs: Vec<RenderRequest<'_>> = batch
                        .iter()
                        .map(|t| RenderRequest {
                            prompt: &t.prompt,
                            seed: t.seed,
                        })
                        .collect();
                    let out = crate::work::guarded(reqs.len(), |r| target.render(&reqs[r]));
                    if tx.send((batch, out, t0.elapsed())).is_err() {
                        break;
                    }
                }
            });
            let mut stopping = false;
            for (batch, out, render_time) in rx {
                if !stopping && self.stop.load(Ordering::SeqCst) {
                    stopping = true;
                    (self.on_event)(&EvalEvent::Stopping);
                }
                let t0 = Instant::now();
                let mut made = Vec::new();
                for (t, res) in batch.into_iter().zip(out) {
                    match res {
                        Ok(o) => made.push((t, o)),
                        Err(e) => {
                            summary.failed += 1;
                            (self.on_event)(&EvalEvent::Failed {
                                lane_id: t.lane_id,
                                round: t.round,
                                k: t.k,
                                error: e.message,
                            });
                        }
                    }
                }
                let images: Vec<&art_core::Image> = made
                    .iter()
                    .filter_map(|(_, o)| match &o.outcome {
                        RenderOutcome::Image(i) => Some(i),
                        RenderOutcome::Refused { .. } => None,
                    })
                    .collect();
                let verdicts: Vec<Vec<JudgmentRecord>> = judge_all(self.image_judges, &images);
                let judge_time = t0.elapsed();
                let mut per_image = verdicts.into_iter();
                let records: Vec<NewEvalRender<'_>> = made
                    .iter()
                    .map(|(t, o)| {
                        let (image, refusal, judgments) = match &o.outcome {
                            RenderOutcome::Image(i) => {
                                (Some(i), None, per_image.next().unwrap_or_default())
                            }
                            RenderOutcome::Refused { reason } => {
                                (None, Some(reason.clone()), Vec::new())
                            }
                        };
                        NewEvalRender {
                            render: EvalRenderRecord {
                                lane_id: t.lane_id,
                                round: t.round,
                                k: t.k,
                                seed: t.seed,
                                image_sha256: None,
                                refusal,
                                revised_prompt: o.revised_prompt.clone(),
                                image_verdict: Verdict::for_image(
                                    judgments.iter().map(|j| &j.outcome),
                                ),
                                judgments,
                            },
                            image,
                        }
                    })
                    .collect();
                self.store.commit_eval_renders(&records)?;
                summary.committed += records.len() as u64;
                done += records.len() as u64;
                (self.on_event)(&EvalEvent::Committed {
                    renders: records.len(),
                    done,
                    total,
                    render_time,
                    judge_time,
                });
            }
            Ok(())
        })?;
        summary.missing = total - done;
        summary.interrupted = self.stop.load(Ordering::SeqCst) && summary.missing > 0;
        summary.wall = start.elapsed();
        Ok(summary)
    }
}

/// Every image judge on every image; per image, the judgments in judge order.
fn judge_all(
    judges: &[Box<dyn ImageJudge>],
    images: &[&art_core::Image],
) -> Vec<Vec<JudgmentRecord>> {
    let mut per_image: Vec<Vec<JudgmentRecord>> = vec![Vec::new(); images.len()];
    if images.is_empty() {
        return per_image;
    }
    for j in judges {
        let out = crate::work::judged(images.len(), |r| j.judge(&images[r]));
        for (slot, res) in per_image.iter_mut().zip(out) {
            slot.push(JudgmentRecord {
                judge: j.name().to_string(),
                subject: Subject::Image,
                outcome: match res {
                    Ok(s) => JudgeOutcome::Scored(s),
                    Err(e) => JudgeOutcome::Error(e.message),
                },
            });
        }
    }
    per_image
}
