//! diffusers' `EulerDiscreteScheduler` (Karras et al.'s Euler method on the sigma schedule;
//! SDXL's and sd-turbo's default) and `EulerAncestralDiscreteScheduler` (the same with fresh
//! noise each step; sdxl-turbo's default). Sigmas are interpolated at the chosen timesteps
//! (`interpolation_type` linear) and end at zero.

use super::base::{Prediction, Scheduler, SchedulerConfig};
use art_config::local::TimestepSpacing;
use candle_core::{Result, Tensor};

/// Timesteps and sigmas of both Euler schedulers.
#[derive(Debug, Clone)]
struct Sigmas {
    timesteps: Vec<f64>,
    /// One per timestep, then 0.
    sigmas: Vec<f64>,
    init_noise_sigma: f64,
    prediction: Prediction,
}

impl Sigmas {
    fn new(c: &SchedulerConfig, steps: usize) -> Self {
        // Timesteps as f32, like diffusers.
        let timesteps: Vec<f32> = c
            .spaced_timesteps(steps)
            .iter()
            .map(|&t| t as f32)
            .collect();
        // ((1 - a) / a) ** 0.5 in f32, as the torch expression computes it.
        let full: Vec<f32> = c
            .alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt())
            .collect();
        // np.interp(timesteps, arange(len), full) in f64, then stored as f32.
        let interp = |x: f64| -> f64 {
            if x <= 0.0 {
                return f64::from(full[0]);
            }
            let last = full.len() - 1;
            if x >= last as f64 {
                return f64::from(full[last]);
            }
            let i = x.floor() as usize;
            let frac = x - i as f64;
            let (a, b) = (f64::from(full[i]), f64::from(full[i + 1]));
            a + (b - a) * frac
        };
        let mut sigmas: Vec<f64> = timesteps
            .iter()
            .map(|&t| f64::from(interp(f64::from(t)) as f32))
            .collect();
        sigmas.push(0.0);
        let max = sigmas.iter().cloned().fold(0.0, f64::max) as f32;
        let init_noise_sigma = f64::from(match c.spacing {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max,
            TimestepSpacing::Leading => (max * max + 1.0).sqrt(),
        });
        Self {
            timesteps: timesteps.iter().map(|&t| f64::from(t)).collect(),
            sigmas,
            init_noise_sigma,
            prediction: c.prediction,
        }
    }

    fn scale(&self, sample: &Tensor, i: usize) -> Result<Tensor> {
        let s = self.sigmas[i] as f32;
        let d = (s * s + 1.0).sqrt();
        sample.affine(1.0 / f64::from(d), 0.0)
    }

    fn pred_original(&self, model_output: &Tensor, i: usize, sample: &Tensor) -> Result<Tensor> {
        let s = self.sigmas[i];
        match self.prediction {
            Prediction::Epsilon => sample - model_output.affine(s, 0.0)?,
            Prediction::VPrediction => {
                let c_out = -s / (s * s + 1.0).sqrt();
                model_output.affine(c_out, 0.0)? + sample.affine(1.0 / (s * s + 1.0), 0.0)?
            }
            Prediction::Sample => Ok(model_output.clone()),
        }
    }
}

/// `EulerDiscreteScheduler` with `s_churn` 0 (the pipelines' default, deterministic), or
/// with `ancestral` `EulerAncestralDiscreteScheduler` (eta 1, `s_noise` 1): the step goes down
/// to `sigma_down` and adds fresh noise of `sigma_up`.
#[derive(Debug)]
pub struct Euler {
    s: Sigmas,
    ancestral: bool,
}

impl Euler {
    pub fn new(c: &SchedulerConfig, steps: usize, ancestral: bool) -> Self {
        Self {
            s: Sigmas::new(c, steps),
            ancestral,
        }
    }
}

impl Scheduler for Euler {
    fn timesteps(&self) -> &[f64] {
        &self.s.timesteps
    }
    fn init_noise_sigma(&self) -> f64 {
        self.s.init_noise_sigma
    }
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> Result<Tensor> {
        self.s.scale(sample, i)
    }
    fn sigmas(&self) -> Option<&[f64]> {
        Some(&self.s.sigmas)
    }
    fn needs_noise(&self) -> bool {
        self.ancestral
    }
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let s = &self.s;
        let x0 = s.pred_original(model_output, i, sample)?;
        let (from, to) = (s.sigmas[i], s.sigmas[i + 1]);
        // The deterministic step goes to `to`; the ancestral one to `down`, plus noise.
        let (down, up) = if self.ancestral {
            let up = (to * to * (from * from - to * to) / (from * from)).sqrt();
            ((to * to - up * up).sqrt(), up)
        } else {
            (to, 0.0)
        };
        // sample + (sample - x0) / sigma * dt
        let prev = (sample + ((sample - x0)? / from)?.affine(down - from, 0.0)?)?;
        if !self.ancestral {
            return Ok(prev);
        }
        let noise = noise.ok_or_else(|| {
            candle_core::Error::Msg("Euler ancestral step called without noise".into())
        })?;
        prev + noise.affine(up, 0.0)?
    }
}
