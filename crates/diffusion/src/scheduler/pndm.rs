//! diffusers' `PNDMScheduler`: pseudo numerical methods (Liu et al. 2022). With
//! `skip_prk_steps` (SD 1.5 and 2.1 ship that) it is the linear multistep PLMS from the first
//! step, repeating the second-to-last timestep once as diffusers does; without it, three
//! Runge-Kutta (PRK) steps of four model calls each warm the history up first.

use super::base::{Alphas, Prediction, Scheduler, SchedulerConfig};
use crate::ModelError;
use candle_core::{Result, Tensor};

const ORDER: usize = 4;

#[derive(Debug)]
pub struct Pndm {
    alphas: Alphas,
    prediction: Prediction,
    /// `num_train_timesteps // steps`.
    ratio: i64,
    prk: Vec<i64>,
    timesteps: Vec<f64>,
    counter: usize,
    ets: Vec<Tensor>,
    cur_model_output: Option<Tensor>,
    cur_sample: Option<Tensor>,
}

impl Pndm {
    pub fn new(c: &SchedulerConfig, steps: usize) -> std::result::Result<Self, ModelError> {
        let n = c.num_train_timesteps;
        let mut asc = c.int_timesteps(steps);
        asc.reverse();
        let ratio = (n / steps) as i64;
        let (prk, plms): (Vec<i64>, Vec<i64>) = if c.skip_prk_steps {
            // concatenate([t[:-1], t[-2:-1], t[-1:]])[::-1]
            let mut v: Vec<i64> = asc[..asc.len() - 1].to_vec();
            if asc.len() >= 2 {
                v.push(asc[asc.len() - 2]);
            }
            v.push(asc[asc.len() - 1]);
            v.reverse();
            (Vec::new(), v)
        } else {
            if asc.len() < ORDER {
                return Err(ModelError::Compute(format!(
                    "PNDM with Runge-Kutta warm-up (skip_prk_steps = false) needs at least \
                     {ORDER} steps, got {steps}"
                )));
            }
            let last = &asc[asc.len() - ORDER..];
            let half = ratio / 2;
            // np.array(last).repeat(2) + np.tile([0, half], ORDER)
            let mut p: Vec<i64> = last.iter().flat_map(|&t| [t, t + half]).collect();
            // (p[:-1].repeat(2)[1:-1])[::-1]
            p.pop();
            let rep: Vec<i64> = p.iter().flat_map(|&t| [t, t]).collect();
            let mut prk = rep[1..rep.len() - 1].to_vec();
            prk.reverse();
            let mut plms = asc[..asc.len() - 3].to_vec();
            plms.reverse();
            (prk, plms)
        };
        let timesteps = prk.iter().chain(&plms).map(|&t| t as f64).collect();
        Ok(Self {
            alphas: Alphas::new(c),
            prediction: c.prediction,
            ratio,
            prk,
            timesteps,
            counter: 0,
            ets: Vec::new(),
            cur_model_output: None,
            cur_sample: None,
        })
    }

    fn prev_sample(&self, sample: &Tensor, t: i64, prev_t: i64, eps: &Tensor) -> Result<Tensor> {
        let a_t = self.alphas.at(t);
        let a_prev = self.alphas.at(prev_t);
        let (b_t, b_prev) = (1.0 - a_t, 1.0 - a_prev);
        let eps = match self.prediction {
            Prediction::Epsilon => eps.clone(),
            Prediction::VPrediction => {
                (eps.affine(a_t.sqrt(), 0.0)? + sample.affine(b_t.sqrt(), 0.0)?)?
            }
            Prediction::Sample => candle_core::bail!(
                "PNDM does not support prediction_type \"sample\" (diffusers does not either)"
            ),
        };
        let sample_coeff = (a_prev / a_t).sqrt();
        let denom = a_t * b_prev.sqrt() + (a_t * b_t * a_prev).sqrt();
        sample.affine(sample_coeff, 0.0)? - eps.affine((a_prev - a_t) / denom, 0.0)?
    }

    fn step_prk(&mut self, model_output: &Tensor, t: i64, sample: &Tensor) -> Result<Tensor> {
        let diff = if self.counter % 2 == 1 {
            0
        } else {
            self.ratio / 2
        };
        let prev_t = t - diff;
        let t = self.prk[self.counter / 4 * 4];
        let mut model_output = model_output.clone();
        match self.counter % 4 {
            0 => {
                self.cur_model_output = Some(model_output.affine(1.0 / 6.0, 0.0)?);
                self.ets.push(model_output.clone());
                self.cur_sample = Some(sample.clone());
            }
            1 | 2 => {
                let add = model_output.affine(1.0 / 3.0, 0.0)?;
                self.cur_model_output = Some(match self.cur_model_output.take() {
                    Some(c) => (c + add)?,
                    None => add,
                });
            }
            _ => {
                let add = model_output.affine(1.0 / 6.0, 0.0)?;
                model_output = match self.cur_model_output.take() {
                    Some(c) => (c + add)?,
                    None => add,
                };
            }
        }
        let cur = self.cur_sample.clone().unwrap_or_else(|| sample.clone());
        let prev = self.prev_sample(&cur, t, prev_t, &model_output)?;
        self.counter += 1;
        Ok(prev)
    }

    fn step_plms(&mut self, model_output: &Tensor, t: i64, sample: &Tensor) -> Result<Tensor> {
        let mut t = t;
        let mut prev_t = t - self.ratio;
        if self.counter != 1 {
            let keep = self.ets.len().saturating_sub(3);
            self.ets.drain(..keep);
            self.ets.push(model_output.clone());
        } else {
            prev_t = t;
            t += self.ratio;
        }
        let mut sample = sample.clone();
        let e = &self.ets;
        let n = e.len();
        let eps = if n == 1 && self.counter == 0 {
            self.cur_sample = Some(sample.clone());
            model_output.clone()
        } else if n == 1 && self.counter == 1 {
            sample = self
                .cur_sample
                .take()
                .ok_or_else(|| candle_core::Error::Msg("PNDM: no stored sample".into()))?;
            ((model_output + &e[n - 1])? / 2.0)?
        } else if n == 2 {
            ((e[n - 1].affine(3.0, 0.0)? - &e[n - 2])? / 2.0)?
        } else if n == 3 {
            ((e[n - 1].affine(23.0, 0.0)? - e[n - 2].affine(16.0, 0.0)?)?
                + e[n - 3].affine(5.0, 0.0)?)?
            .affine(1.0 / 12.0, 0.0)?
        } else {
            (((e[n - 1].affine(55.0, 0.0)? - e[n - 2].affine(59.0, 0.0)?)?
                + e[n - 3].affine(37.0, 0.0)?)?
                - e[n - 4].affine(9.0, 0.0)?)?
            .affine(1.0 / 24.0, 0.0)?
        };
        let prev = self.prev_sample(&sample, t, prev_t, &eps)?;
        self.counter += 1;
        Ok(prev)
    }
}

impl Scheduler for Pndm {
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
        if self.counter < self.prk.len() {
            self.step_prk(model_output, t, sample)
        } else {
            self.step_plms(model_output, t, sample)
        }
    }
}
