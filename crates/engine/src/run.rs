//! The campaign loop: stages batched across lanes, commits, stop requests and progress events.

use crate::{CampaignSpec, lane::LaneState};
use art_core::{
    Guide, GuideRequest, ImageJudge, JudgeOutcome, PromptJudge, RenderOutcome, RenderRequest,
    RoleError, Stage, Target, Verdict, WriteRequest, Writer, derive_seed,
};
use art_store::{
    GuideRecord, JudgmentRecord, LaneStatus, NewRound, RenderRecord, RoundRecord, Store,
    StoreError, Subject, WriterRecord,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
}

/// The stages of a round, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageName {
    Writer,
    Target,
    Guide,
    PromptJudges,
    ImageJudges,
    Commit,
}

impl StageName {
    /// Whether a lane's current round (with what it produced so far) needs this stage, in a
    /// campaign of `r_max` rounds: round 0 only writes, round R+1 only renders and judges, and
    /// a refused render has no image to guide or judge.
    fn needed_by(self, l: &LaneState, r_max: u32) -> bool {
        match self {
            StageName::Target | StageName::PromptJudges => l.round >= 1,
            StageName::Guide => l.round <= r_max && l.image.is_some(),
            StageName::ImageJudges => l.image.is_some(),
            StageName::Writer => l.round <= r_max,
            StageName::Commit => false,
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
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("spec", self.spec)
            .finish_non_exhaustive()
    }
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
        }
    }

    /// A flag that, once set (e.g. by a Ctrl-C handler), stops the run after the batch in flight.
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

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Run every open or failed lane of the store to its last round (or until stopped).
    pub fn run(mut self) -> Result<RunSummary, EngineError> {
        let start = Instant::now();
        let (mut lanes, rounds_done) = self.load_lanes()?;
        let rounds_total = self.store.lanes()?.len() as u64 * self.spec.rounds_per_lane();
        let mut done_so_far = rounds_done;
        self.emit(Event::Started {
            lanes_open: lanes.len(),
            rounds_done,
            rounds_total,
        });
        while !lanes.is_empty() {
            if self.stopped() {
                self.summary.interrupted = true;
                self.emit(Event::Stopping);
                break;
            }
            let complete = self.run_round(&mut lanes);
            let committed = self.commit(&mut lanes, complete)?;
            done_so_far += committed as u64;
            self.emit(Event::Committed {
                rounds: committed,
                rounds_done: done_so_far,
                rounds_total,
            });
        }
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

    /// Lanes to work on, each positioned at the round after its last committed one.
    fn load_lanes(&mut self) -> Result<(Vec<LaneState>, u64), EngineError> {
        let final_round = self.spec.rounds + 1;
        let mut open = Vec::new();
        let mut rounds_done = 0;
        for lane in self.store.lanes()? {
            rounds_done += lane.last_round.map_or(0, |r| u64::from(r) + 1);
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
            let (round, prompt) = match lane.last_round {
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
            open.push(LaneState::new(lane, category, sep, round, prompt));
        }
        Ok((open, rounds_done))
    }

    /// Works one round of every lane through the stages. Returns false when a stop request
    /// interrupted the round (partial rounds are then dropped, not committed).
    fn run_round(&mut self, lanes: &mut [LaneState]) -> bool {
        let r_max = self.spec.rounds;
        const ORDER: [StageName; 5] = [
            StageName::Target,
            StageName::Guide,
            StageName::PromptJudges,
            StageName::ImageJudges,
            StageName::Writer,
        ];
        for stage in ORDER {
            let idx: Vec<usize> = (0..lanes.len())
                .filter(|&i| lanes[i].failure.is_none() && stage.needed_by(&lanes[i], r_max))
                .collect();
            for chunk in idx.chunks(self.spec.batch_size) {
                if self.stopped() {
                    return false;
                }
                self.run_batch(stage, lanes, chunk);
            }
        }
        true
    }

    fn run_batch(&mut self, stage: StageName, lanes: &mut [LaneState], chunk: &[usize]) {
        let t0 = Instant::now();
        match stage {
            StageName::Target => self.render(lanes, chunk),
            StageName::Guide => self.guide(lanes, chunk),
            StageName::PromptJudges => self.judge_prompts(lanes, chunk),
            StageName::ImageJudges => self.judge_images(lanes, chunk),
            StageName::Writer => self.write(lanes, chunk),
            StageName::Commit => unreachable!("commit is not a role stage"),
        }
        let elapsed = t0.elapsed();
        self.summary.role_time += elapsed;
        let share = elapsed.as_secs_f64() * 1000.0 / chunk.len() as f64;
        for &i in chunk {
            lanes[i].add_time(stage.as_str(), share);
        }
        self.emit(Event::Batch {
            stage,
            items: chunk.len(),
            elapsed,
        });
    }

    fn render(&self, lanes: &mut [LaneState], chunk: &[usize]) {
        let reqs: Vec<RenderRequest<'_>> = chunk
            .iter()
            .map(|&i| RenderRequest {
                prompt: &lanes[i].prompt,
                seed: derive_seed(lanes[i].lane.lane_seed, Stage::Target, lanes[i].round, 0),
            })
            .collect();
        let seeds: Vec<u64> = reqs.iter().map(|r| r.seed).collect();
        let out = self.roles.target.render(&reqs);
        for ((&i, seed), res) in chunk.iter().zip(seeds).zip(expect_len(out, chunk.len())) {
            let l = &mut lanes[i];
            match res {
                Ok(o) => {
                    let (image, refusal) = match o.outcome {
                        RenderOutcome::Image(img) => (Some(img), None),
                        RenderOutcome::Refused { reason } => (None, Some(reason)),
                    };
                    l.image = image;
                    l.render = Some(RenderRecord {
                        seed,
                        image_sha256: None,
                        refusal,
                        truncated_prompt: o.truncated_prompt,
                        revised_prompt: o.revised_prompt,
                    });
                }
                Err(e) => l.failure = Some(format!("target failed in round {}: {e}", l.round)),
            }
        }
    }

    fn guide(&self, lanes: &mut [LaneState], chunk: &[usize]) {
        let reqs: Vec<GuideRequest<'_>> = chunk
            .iter()
            .map(|&i| {
                let l = &lanes[i];
                GuideRequest {
                    image: l
                        .image
                        .as_ref()
                        .expect("guide stage only for rendered lanes"),
                    prompt: &l.prompt,
                    category: &l.category,
                    keywords: &l.keywords,
                    seed: derive_seed(l.lane.lane_seed, Stage::Guide, l.round, 0),
                }
            })
            .collect();
        let seeds: Vec<u64> = reqs.iter().map(|r| r.seed).collect();
        let out = self.roles.guide.guide(&reqs);
        for ((&i, seed), res) in chunk.iter().zip(seeds).zip(expect_len(out, chunk.len())) {
            let l = &mut lanes[i];
            match res {
                Ok(g) => {
                    l.guide = Some(GuideRecord {
                        seed,
                        raw: g.raw,
                        instructions: g.instructions,
                    })
                }
                Err(e) => l.failure = Some(format!("guide failed in round {}: {e}", l.round)),
            }
        }
    }

    fn judge_prompts(&self, lanes: &mut [LaneState], chunk: &[usize]) {
        for j in &self.roles.prompt_judges {
            let prompts: Vec<&str> = chunk.iter().map(|&i| lanes[i].prompt.as_str()).collect();
            let out = j.judge(&prompts);
            record_judgments(lanes, chunk, j.name(), Subject::Prompt, out);
        }
    }

    fn judge_images(&self, lanes: &mut [LaneState], chunk: &[usize]) {
        for j in &self.roles.image_judges {
            let images: Vec<&art_core::Image> = chunk
                .iter()
                .map(|&i| {
                    lanes[i]
                        .image
                        .as_ref()
                        .expect("image stage only for images")
                })
                .collect();
            let out = j.judge(&images);
            record_judgments(lanes, chunk, j.name(), Subject::Image, out);
        }
    }

    fn write(&self, lanes: &mut [LaneState], chunk: &[usize]) {
        let reqs: Vec<WriteRequest<'_>> = chunk
            .iter()
            .map(|&i| {
                let l = &lanes[i];
                WriteRequest {
                    prompt: &l.prompt,
                    category: &l.category,
                    keywords: &l.keywords,
                    instruction: l.guide.as_ref().map_or("", |g| g.instructions.as_str()),
                    seed: derive_seed(l.lane.lane_seed, Stage::Writer, l.round, 0),
                }
            })
            .collect();
        let meta: Vec<(u64, String)> = reqs
            .iter()
            .map(|r| (r.seed, r.instruction.to_string()))
            .collect();
        let out = self.roles.writer.write(&reqs);
        for ((&i, (seed, instruction)), res) in
            chunk.iter().zip(meta).zip(expect_len(out, chunk.len()))
        {
            let l = &mut lanes[i];
            match res {
                Ok(output) => {
                    l.writer = Some(WriterRecord {
                        seed,
                        instruction,
                        output,
                    })
                }
                Err(e) => l.failure = Some(format!("writer failed in round {}: {e}", l.round)),
            }
        }
    }

    /// Commits every lane whose round is complete (one transaction), records failures, and
    /// moves lanes on. Lanes that finished their last round or failed leave `lanes`.
    fn commit(&mut self, lanes: &mut Vec<LaneState>, complete: bool) -> Result<usize, EngineError> {
        let t0 = Instant::now();
        let final_round = self.spec.rounds + 1;
        let ready: Vec<usize> = if complete {
            (0..lanes.len())
                .filter(|&i| lanes[i].failure.is_none())
                .collect()
        } else {
            Vec::new()
        };
        let records: Vec<NewRound<'_>> = ready
            .iter()
            .map(|&i| {
                let l = &lanes[i];
                let prompt_verdict = verdict(l, Subject::Prompt);
                let image_verdict = verdict(l, Subject::Image);
                NewRound {
                    round: RoundRecord {
                        lane_id: l.lane.id,
                        round: l.round,
                        prompt: l.prompt.clone(),
                        render: l.render.clone(),
                        guide: l.guide.clone(),
                        writer: l.writer.clone(),
                        prompt_verdict,
                        image_verdict,
                        judgments: l.judgments.clone(),
                        timings_ms: l.timings_ms.clone(),
                    },
                    image: l.image.as_ref(),
                }
            })
            .collect();
        self.store.commit_rounds(&records)?;
        drop(records);

        let mut failed = Vec::new();
        for l in lanes.iter() {
            if let Some(err) = &l.failure {
                self.store
                    .set_lane_status(l.lane.id, LaneStatus::Failed, Some(err))?;
                failed.push(Event::LaneFailed {
                    lane_id: l.lane.id,
                    category: l.lane.category.clone(),
                    seed_index: l.lane.seed_index,
                    error: err.clone(),
                });
            }
        }
        for &i in &ready {
            if lanes[i].round == final_round {
                self.store
                    .set_lane_status(lanes[i].lane.id, LaneStatus::Done, None)?;
            } else if lanes[i].lane.status != LaneStatus::Open {
                // A failed lane that a resume retried successfully is open again.
                self.store
                    .set_lane_status(lanes[i].lane.id, LaneStatus::Open, None)?;
                lanes[i].lane.status = LaneStatus::Open;
            }
        }
        self.summary.store_time += t0.elapsed();
        self.summary.rounds_committed += ready.len() as u64;
        for e in failed {
            self.emit(e);
        }
        if complete {
            lanes.retain(|l| l.failure.is_none() && l.round != final_round);
            for l in lanes.iter_mut() {
                l.advance();
            }
        }
        Ok(ready.len())
    }
}

fn verdict(l: &LaneState, subject: Subject) -> Verdict {
    let outcomes = l
        .judgments
        .iter()
        .filter(|j| j.subject == subject)
        .map(|j| &j.outcome);
    match subject {
        Subject::Prompt if l.round == 0 => Verdict::Unjudged,
        Subject::Prompt => Verdict::for_prompt(outcomes),
        Subject::Image => Verdict::for_image(outcomes),
    }
}

fn record_judgments(
    lanes: &mut [LaneState],
    chunk: &[usize],
    judge: &str,
    subject: Subject,
    out: Vec<Result<art_core::JudgeScore, RoleError>>,
) {
    for (&i, res) in chunk.iter().zip(expect_len(out, chunk.len())) {
        lanes[i].judgments.push(JudgmentRecord {
            judge: judge.to_string(),
            subject,
            outcome: match res {
                Ok(s) => JudgeOutcome::Scored(s),
                Err(e) => JudgeOutcome::Error(e.message),
            },
        });
    }
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
