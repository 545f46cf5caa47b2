//! diffusers' noise schedulers, step for step: PNDM (with and without its Runge-Kutta warm-up),
//! Euler discrete, Euler ancestral and DDIM (eta 0). Each is built from the pipeline's
//! `scheduler/scheduler_config.json` the way diffusers' `from_config` does: keys present in the
//! file win, absent keys take the chosen class's defaults, so overriding the scheduler keeps
//! the model's betas. A scheduler value `art` does not implement is refused, naming the key.
//!
//! Scalars (betas, cumulative alphas, sigmas) are computed in f32 the way torch does them
//! (cumulative products accumulated in f64, as torch's CPU kernel does); the per-step
//! coefficients are applied to f32 latents.

mod base;
mod ddim;
mod euler;
mod pndm;

pub use base::{Prediction, Scheduler, SchedulerConfig};
pub use ddim::Ddim;
pub use euler::Euler;
pub use pndm::Pndm;

use crate::ModelError;
use art_config::local::SchedulerKind;

impl SchedulerConfig {
    /// A fresh scheduler (its state is one render's) set to `steps` inference steps.
    pub fn build(&self, steps: usize) -> std::result::Result<Box<dyn Scheduler>, ModelError> {
        if steps == 0 || steps > self.num_train_timesteps {
            return Err(ModelError::Compute(format!(
                "{steps} steps: the scheduler takes 1 to {} steps",
                self.num_train_timesteps
            )));
        }
        Ok(match self.kind {
            SchedulerKind::Pndm => Box::new(Pndm::new(self, steps)?),
            SchedulerKind::EulerDiscrete => Box::new(Euler::new(self, steps, false)),
            SchedulerKind::EulerAncestralDiscrete => Box::new(Euler::new(self, steps, true)),
            SchedulerKind::Ddim => Box::new(Ddim::new(self, steps)),
        })
    }
}
