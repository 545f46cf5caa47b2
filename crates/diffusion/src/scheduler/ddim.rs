//! diffusers' `DDIMScheduler` with eta 0 (deterministic DDIM, the pipelines' default).

use super::base::{Alphas, Prediction, Scheduler, SchedulerConfig};
use candle_core::{Result, Tensor};

#[derive(Debug)]
pub struct Ddim {
    alphas: Alphas,
    prediction: Prediction,
    clip_sample: Option<f64>,
    ratio: i64,
    timesteps: Vec<f64>,
}

impl Ddim {
    pub fn new(c: &SchedulerConfig, steps: usize) -> Self {
        Self {
            alphas: Alphas::new(c),
            prediction: c.prediction,
            clip_sample: c.clip_sample,
            ratio: (c.num_train_timesteps / steps) as i64,
            timesteps: c.int_timesteps(steps).iter().map(|&t| t as f64).collect(),
        }
    }
}

impl Scheduler for Ddim {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        _noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let t = self.timesteps[i] as i64;
        let prev_t = t - self.ratio;
        let (a_t, a_prev) = (self.alphas.at(t), self.alphas.at(prev_t));
        let b_t = 1.0 - a_t;
        let (x0, eps) = match self.prediction {
            Prediction::Epsilon => (
                (sample - model_output.affine(b_t.sqrt(), 0.0)?)?.affine(1.0 / a_t.sqrt(), 0.0)?,
                model_output.clone(),
            ),
            Prediction::Sample => (
                model_output.clone(),
                (sample - model_output.affine(a_t.sqrt(), 0.0)?)?.affine(1.0 / b_t.sqrt(), 0.0)?,
            ),
            Prediction::VPrediction => (
                (sample.affine(a_t.sqrt(), 0.0)? - model_output.affine(b_t.sqrt(), 0.0)?)?,
                (model_output.affine(a_t.sqrt(), 0.0)? + sample.affine(b_t.sqrt(), 0.0)?)?,
            ),
        };
        let x0 = match self.clip_sample {
            Some(r) => x0.clamp(-r, r)?,
            None => x0,
        };
        x0.affine(a_prev.sqrt(), 0.0)? + eps.affine((1.0 - a_prev).sqrt(), 0.0)?
    }
}
