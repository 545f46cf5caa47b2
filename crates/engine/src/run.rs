//! The campaign loop: a scheduler that keeps every role busy with batches gathered across
//! lanes, applies results as they come back, commits finished rounds, honours stop requests
//! and reports progress.
//!
//! Each stage (target, guide, prompt judges, image judges, writer) has a worker thread. The
//! scheduler, on the calling thread, hands a stage a batch when it is idle and either a full
//! batch of lanes is ready for it or nothing that feeds it is still working (so waiting would
//! not fill the batch). Stages therefore overlap: while the writer works on one batch of
//! lanes, the target renders the next, and the store commits finished rounds in between.
//! `parallel_roles` caps how many stages run at once (1 runs one role call at a time, for a
//! single device that cannot hold two models' work). Results never depend on this schedule:
//! every role's output for an item depends only on that item and its seed.

use crate::lane::LaneState;
use crate::spec::CampaignSpec;
use crate::stage::{Roles, STAGES, StageName};
use crate::work::{self, Done, Item, Job, Output};
use art_core::{JudgeOutcome, RenderOutcome, Verdict, derive_seed};
use art_store::{
    GuideRecord, JudgmentRecord, LaneStatus, NewRound, RenderRecord, RoundRecord, Store,
    StoreError, Subject, WriterRecord,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "lane {lane_id} ({category}) is stored at round {round}, but this campaign has only {rounds} rounds"
    )]
    LaneBeyondCampaign {
        lane_id: i64,
        category: String,
        round: u32,
        rounds: u32,
    },
    #[error("lane {lane_id} has category `{category}`, which the campaign config does not define")]
    UnknownLaneCategory { lane_id: i64, category: String },
    #[error(
        "lane {lane_id}: round {round} has no writer output to continue from; the store is damaged"
    )]
    MissingWriterOutput { lane_id: i64, round: u32 },
    #[error("internal: the scheduler has lanes left but nothing to run ({0})")]
    Stalled(String),
}

/// Progress reported while a campaign runs.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        lanes_open: usize,
        rounds_done: u64,
        rounds_total: u64,
    },
    /// One batch of one stage finished.
    Batch {
        stage: StageName,
        items: usize,
        elapsed: Duration,
    },
    Committed {
        rounds: usize,
        rounds_done: u64,
        rounds_total: u64,
    },
    LaneFailed {
        lane_id: i64,
        category: String,
        seed_index: u64,
        error: String,
    },
    Stopping,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub rounds_committed: u64,
    pub lanes_done: usize,
    pub lanes_failed: usize,
    pub lanes_open: usize,
    /// True when a stop request ended the run before every lane finished.
    pub interrupted: bool,
    pub wall: Duration,
    /// Time inside role calls.
    pub role_time: Duration,
    /// Time committing to the store.
    pub store_time: Duration,
}

/// Runs one campaign against its store.
pub struct Engine<'a> {
    spec: &'a CampaignSpec,
    roles: &'a Roles,
    store: &'a mut Store,
    stop: Arc<AtomicBool>,
    on_event: Box<dyn FnMut(&Event) + 'a>,
    summary: RunSummary,
    rounds_done: u64,
    rounds_total: u64,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("spec", self.spec)
            .finish_non_exhaustive()
    }
}

/// What the scheduler has in flight: which stages, and since when any stage has been busy.
#[derive(Debug, Default)]
struct Busy {
    stages: Vec<StageName>,
    since: Option<Instant>,
}

impl<'a> Engine<'a> {
    pub fn new(spec: &'a CampaignSpec, roles: &'a Roles, store: &'a mut Store) -> Self {
        Self {
            spec,
            roles,
            store,
            stop: Arc::new(AtomicBool::new(false)),
            on_event: Box::new(|_| {}),
            summary: RunSummary::default(),
            rounds_done: 0,
            rounds_total: 0,
        }
    }

    /// A flag that, once set (e.g. by a Ctrl-C handler), stops the run after the batches in
    /// flight: no new batch starts, finished rounds are committed, the rest is redone on resume.
    pub fn with_stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    pub fn on_event(mut self, f: impl FnMut(&Event) + 'a) -> Self {
        self.on_event = Box::new(f);
        self
    }

    fn emit(&mut self, e: Event) {
        (self.on_event)(&e);
    }

    /// R for the readiness rules; a baseline has no writer or guide rounds.
    fn r_max(&self) -> u32 {
        if self.spec.fixed_prompts.is_some() {
            0
        } else {
            self.spec.rounds
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Run every open or failed lane of the store to its last round (or until stopped).
    pub fn run(mut self) -> Result<RunSummary, EngineError> {
        let start = Instant::now();
        let mut lanes = self.load_lanes()?;
        self.rounds_total = self.store.lanes()?.len() as u64 * self.spec.rounds_per_lane();
        self.emit(Event::Started {
            lanes_open: lanes.len(),
            rounds_done: self.rounds_done,
            rounds_total: self.rounds_total,
        });
        let roles = self.roles;
        std::thread::scope(|scope| -> Result<(), EngineError> {
            let (done_tx, done_rx) = mpsc::channel::<Done>();
            let mut workers = Vec::new();
            for stage in STAGES {
                let (tx, rx) = mpsc::channel::<Job>();
                let done_tx = done_tx.clone();
                scope.spawn(move || {
                    for job in rx {
                        if done_tx.send(work::execute(roles, job)).is_err() {
                            break;
                        }
                    }
                });
                workers.push((stage, tx));
            }
            drop(done_tx);
            self.schedule(&mut lanes, &workers, &done_rx)
        })?;
        for l in self.store.lanes()? {
            match l.status {
                LaneStatus::Done => self.summary.lanes_done += 1,
                LaneStatus::Failed => self.summary.lanes_failed += 1,
                LaneStatus::Open => self.summary.lanes_open += 1,
            }
        }
        self.summary.wall = start.elapsed();
        Ok(self.summary)
    }

    /// The scheduling loop: commit what is finished, start what can start, wait for a result.
    fn schedule(
        &mut self,
        lanes: &mut [LaneState],
        workers: &[(StageName, mpsc::Sender<Job>)],
        done_rx: &mpsc::Receiver<Done>,
    ) -> Result<(), EngineError> {
        let mut busy = Busy::default();
        let mut stopping = false;
        loop {
            self.commit(lanes)?;
            if !stopping && self.stopped() {
                stopping = true;
                self.summary.interrupted = lanes.iter().any(|l| !l.retired);
                self.emit(Event::Stopping);
            }
            if !stopping {
                self.dispatch(lanes, workers, &mut busy);
            }
            if busy.stages.is_empty() {
                if stopping || lanes.iter().all(|l| l.retired) {
                    return Ok(());
                }
                let open: Vec<String> = lanes
                    .iter()
                    .filter(|l| !l.retired)
                    .map(|l| format!("lane {} round {}", l.lane.id, l.round))
                    .collect();
                return Err(EngineError::Stalled(open.join(", ")));
            }
            let done = done_rx
                .recv()
                .map_err(|_| EngineError::Stalled("a worker thread stopped".into()))?;
            busy.stages.retain(|s| *s != done.job.stage);
            if busy.stages.is_empty()
                && let Some(since) = busy.since.take()
            {
                self.summary.role_time += since.elapsed();
            }
            self.apply(lanes, done);
        }
    }

    /// Starts a batch on every idle stage that has a full batch ready, or has work ready that
    /// no busy stage could add to, within the `parallel_roles` cap.
    fn dispatch(
        &mut self,
        lanes: &mut [LaneState],
        workers: &[(StageName, mpsc::Sender<Job>)],
        busy: &mut Busy,
    ) {
        let r_max = self.r_max();
        for (stage, tx) in workers {
            if busy.stages.len() >= self.spec.parallel_roles {
                break;
            }
            if busy.stages.contains(stage) {
                continue;
            }
            let ready: Vec<usize> = (0..lanes.len())
                .filter(|&i| lanes[i].ready_for(*stage, r_max))
                .take(self.spec.batch_size)
                .collect();
            let fed = stage.feeders().iter().any(|f| busy.stages.contains(f));
            if ready.is_empty() || (ready.len() < self.spec.batch_size && fed) {
                continue;
            }
            let items = ready.iter().map(|&i| item(&lanes[i], i, *stage)).collect();
            for &i in &ready {
                lanes[i].in_flight.push(*stage);
            }
            tx.send(Job {
                stage: *stage,
                items,
            })
            .expect("worker threads live as long as the scheduler");
            busy.stages.push(*stage);
            busy.since.get_or_insert_with(Instant::now);
        }
    }

    /// Puts a finished batch's results into its lanes.
    fn apply(&mut self, lanes: &mut [LaneState], done: Done) {
        let Done {
            job,
            output,
            elapsed,
        } = done;
        let stage = job.stage;
        let share = elapsed.as_secs_f64() * 1000.0 / job.items.len() as f64;
        for it in &job.items {
            let l = &mut lanes[it.lane];
            l.in_flight.retain(|s| *s != stage);
            l.add_time(stage.as_str(), share);
        }
        let fail = |l: &mut LaneState, what: &str, e: &art_core::RoleError| {
            if l.failure.is_none() {
                l.failure = Some(format!("{what} failed in round {}: {e}", l.round));
            }
        };
        match output {
            Output::Render(results) => {
                for (it, res) in job.items.iter().zip(results) {
                    let l = &mut lanes[it.lane];
                    match res {
                        Ok(o) => {
                            let (image, refusal) = match o.outcome {
                                RenderOutcome::Image(img) => (Some(Arc::new(img)), None),
                                RenderOutcome::Refused { reason } => (None, Some(reason)),
                            };
                            l.image = image;
                            l.render = Some(RenderRecord {
                                seed: it.seed,
                                image_sha256: None,
                                refusal,
                                truncated_prompt: o.truncated_prompt,
                                revised_prompt: o.revised_prompt,
                            });
                        }
                        Err(e) => fail(l, "target", &e),
                    }
                }
            }
            Output::Guide(results) => {
                for (it, res) in job.items.iter().zip(results) {
                    let l = &mut lanes[it.lane];
                    match res {
                        Ok(g) => {
                            l.guide = Some(GuideRecord {
                                seed: it.seed,
                                raw: g.raw,
                                instructions: g.instructions,
                            })
                        }
                        Err(e) => fail(l, "guide", &e),
                    }
                }
            }
            Output::Write(results) => {
                for (it, res) in job.items.iter().zip(results) {
                    let l = &mut lanes[it.lane];
                    match res {
                        Ok(output) => {
                            l.writer = Some(WriterRecord {
                                seed: it.seed,
                                instruction: it.instruction.clone(),
                                output,
                            })
                        }
                        Err(e) => fail(l, "writer", &e),
                    }
                }
            }
            Output::Judgments(per_judge) => {
                let subject = if stage == StageName::PromptJudges {
                    Subject::Prompt
                } else {
                    Subject::Image
                };
                for (k, it) in job.items.iter().enumerate() {
                    let records = per_judge
                        .iter()
                        .map(|(judge, results)| JudgmentRecord {
                            judge: judge.clone(),
                            subject,
                            outcome: match &results[k] {
                                Ok(s) => JudgeOutcome::Scored(s.clone()),
                                Err(e) => JudgeOutcome::Error(e.message.clone()),
                            },
                        })
                        .collect();
                    let l = &mut lanes[it.lane];
                    match subject {
                        Subject::Prompt => l.prompt_judgments = Some(records),
                        Subject::Image => l.image_judgments = Some(records),
                    }
                }
            }
        }
        self.emit(Event::Batch {
            stage,
            items: job.items.len(),
            elapsed,
        });
    }

    /// Commits every finished round in one transaction, records lanes that failed, and moves
    /// lanes on to their next round.
    fn commit(&mut self, lanes: &mut [LaneState]) -> Result<(), EngineError> {
        let final_round = self.spec.final_round();
        let r_max = self.r_max();
        let ready: Vec<usize> = (0..lanes.len())
            .filter(|&i| lanes[i].complete(r_max))
            .collect();
        let failed: Vec<usize> = (0..lanes.len())
            .filter(|&i| {
                let l = &lanes[i];
                !l.retired && l.failure.is_some() && l.in_flight.is_empty()
            })
            .collect();
        if ready.is_empty() && failed.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        if !ready.is_empty() {
            let records: Vec<NewRound<'_>> =
                ready.iter().map(|&i| round_record(&lanes[i])).collect();
            self.store.commit_rounds(&records)?;
        }
        for &i in &failed {
            let l = &mut lanes[i];
            l.retired = true;
            let err = l.failure.clone().unwrap_or_default();
            self.store
                .set_lane_status(l.lane.id, LaneStatus::Failed, Some(&err))?;
            let e = Event::LaneFailed {
                lane_id: l.lane.id,
                category: l.lane.category.clone(),
                seed_index: l.lane.seed_index,
                error: err,
            };
            self.emit(e);
        }
        for &i in &ready {
            let l = &mut lanes[i];
            if l.round == final_round {
                self.store
                    .set_lane_status(l.lane.id, LaneStatus::Done, None)?;
                l.retired = true;
            } else {
                if l.lane.status != LaneStatus::Open {
                    // A failed lane that a resume retried successfully is open again.
                    self.store
                        .set_lane_status(l.lane.id, LaneStatus::Open, None)?;
                    l.lane.status = LaneStatus::Open;
                }
                let fixed = self.spec.fixed_prompt(l.round + 1).map(str::to_string);
                l.advance(fixed);
            }
        }
        self.summary.store_time += t0.elapsed();
        self.summary.rounds_committed += ready.len() as u64;
        self.rounds_done += ready.len() as u64;
        if !ready.is_empty() {
            self.emit(Event::Committed {
                rounds: ready.len(),
                rounds_done: self.rounds_done,
                rounds_total: self.rounds_total,
            });
        }
        Ok(())
    }

    /// Lanes to work on, each positioned at the round after its last committed one.
    fn load_lanes(&mut self) -> Result<Vec<LaneState>, EngineError> {
        let final_round = self.spec.final_round();
        let first = self.spec.first_round();
        let mut open = Vec::new();
        for lane in self.store.lanes()? {
            self.rounds_done += lane.last_round.map_or(0, |r| u64::from(r + 1 - first));
            let category = self
                .spec
                .categories
                .iter()
                .find(|c| c.name == lane.category)
                .cloned()
                .ok_or_else(|| EngineError::UnknownLaneCategory {
                    lane_id: lane.id,
                    category: lane.category.clone(),
                })?;
            let fixed = |r: u32| {
                self.spec.fixed_prompt(r).map(str::to_string).ok_or(
                    EngineError::LaneBeyondCampaign {
                        lane_id: lane.id,
                        category: lane.category.clone(),
                        round: r,
                        rounds: final_round,
                    },
                )
            };
            let (round, prompt) = match lane.last_round {
                None if self.spec.fixed_prompts.is_some() => (1, fixed(1)?),
                None => (0, lane.seed_prompt.clone()),
                Some(r) if r > final_round => {
                    return Err(EngineError::LaneBeyondCampaign {
                        lane_id: lane.id,
                        category: lane.category.clone(),
                        round: r,
                        rounds: self.spec.rounds,
                    });
                }
                Some(r) if r == final_round => {
                    if lane.status != LaneStatus::Done {
                        self.store
                            .set_lane_status(lane.id, LaneStatus::Done, None)?;
                    }
                    continue;
                }
                Some(r) if self.spec.fixed_prompts.is_some() => (r + 1, fixed(r + 1)?),
                Some(r) => {
                    let last = self.store.rounds(lane.id)?.pop();
                    let next = last.and_then(|l| l.writer).map(|w| w.output).ok_or(
                        EngineError::MissingWriterOutput {
                            lane_id: lane.id,
                            round: r,
                        },
                    )?;
                    (r + 1, next)
                }
            };
            let sep = &self.spec.keyword_separator;
            let mut state = LaneState::new(lane, Arc::new(category), sep, round, prompt);
            state.fixed = self.spec.fixed_prompts.is_some();
            open.push(state);
        }
        Ok(open)
    }
}

/// The work item of lane `l` (index `i`) for `stage`.
fn item(l: &LaneState, i: usize, stage: StageName) -> Item {
    Item {
        lane: i,
        prompt: l.prompt.clone(),
        image: l.image.clone(),
        category: l.category.clone(),
        keywords: l.keywords.clone(),
        instruction: l
            .guide
            .as_ref()
            .map_or(String::new(), |g| g.instructions.clone()),
        seed: derive_seed(l.lane.lane_seed, stage.seed_stage(), l.round, 0),
    }
}

fn round_record(l: &LaneState) -> NewRound<'_> {
    let prompt_j = l.prompt_judgments.as_deref().unwrap_or_default();
    let image_j = l.image_judgments.as_deref().unwrap_or_default();
    let verdict = |j: &[JudgmentRecord]| Verdict::for_prompt(j.iter().map(|x| &x.outcome));
    NewRound {
        round: RoundRecord {
            lane_id: l.lane.id,
            round: l.round,
            prompt: l.prompt.to_string(),
            render: l.render.clone(),
            guide: l.guide.clone(),
            writer: l.writer.clone(),
            prompt_verdict: if l.round == 0 {
                Verdict::Unjudged
            } else {
                verdict(prompt_j)
            },
            image_verdict: Verdict::for_image(image_j.iter().map(|x| &x.outcome)),
            judgments: prompt_j.iter().chain(image_j).cloned().collect(),
            timings_ms: l.timings_ms.clone(),
        },
        image: l.image.as_deref(),
    }
}
