//! `art-engine`: runs an ART campaign against a store.
//!
//! A campaign is categories x seeds = lanes. Every lane runs the loop of the method: round 0 is
//! the Writer's initial rewrite of the seed prompt (with an empty instruction), rounds 1..=R
//! render, guide, judge and write, and round R+1 renders and judges the last prompt. The engine
//! gathers the requests of every lane that is ready for a role into batches of at most
//! `batch_size`, and runs the stages concurrently (see [`Engine`]'s scheduler), so every role
//! is kept busy.
//!
//! Guarantees, each covered by tests:
//! * every random choice comes from a seed derived from (campaign seed, lane, round, item), so a
//!   re-run, a resumed run and a run at another batch size store the same records;
//! * every finished round is committed in one transaction as soon as its stage completes, so a
//!   killed process loses at most the round each lane was working on, and `run` on an existing
//!   store (resume) continues each lane from its last committed round;
//! * a stop request (Ctrl-C) is honoured after the batches in flight: completed rounds are
//!   committed, the rest is redone on resume;
//! * a role failing for an item fails that lane (stored with the error; resume retries it), never
//!   the other lanes; a judge failing is recorded as that judge's error.
//!
//! Modules, each depending only on those listed before it (so no two import each other):
//! * `spec`: [`CampaignSpec`], what the engine knows of a campaign;
//! * `stage`: the stages of a round ([`StageName`]) and the roles they call ([`Roles`]);
//! * `lane`: planning lanes ([`plan_lanes`]) and a lane's state while a round is worked on;
//! * `work`: one batch of one stage, run on a worker thread;
//! * `run`: the scheduler ([`Engine`]);
//! * `eval`: the evaluation's re-renders ([`Evaluator`]), on its own.

mod eval;
mod lane;
mod run;
mod spec;
mod stage;
mod work;

pub use eval::{EvalEvent, EvalSummary, Evaluator};
pub use lane::plan_lanes;
pub use run::{Engine, EngineError, Event, RunSummary};
pub use spec::CampaignSpec;
pub use stage::{Roles, StageName};
