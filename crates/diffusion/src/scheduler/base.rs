//! What the schedulers share: the parsed `scheduler_config.json` ([`SchedulerConfig`], with
//! diffusers' defaults and spacings), the prediction type, the cumulative alphas and the
//! [`Scheduler`] trait each scheduler implements.

use crate::ModelError;
use art_config::local::{SchedulerKind, TimestepSpacing};
use art_nn::invalid;
use candle_core::{Result, Tensor};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    Epsilon,
    VPrediction,
    Sample,
}

/// A scheduler config resolved for one scheduler class.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub kind: SchedulerKind,
    pub num_train_timesteps: usize,
    /// `alphas_cumprod` as torch computes it, f32.
    pub alphas_cumprod: Vec<f32>,
    pub prediction: Prediction,
    pub spacing: TimestepSpacing,
    pub steps_offset: usize,
    pub set_alpha_to_one: bool,
    pub skip_prk_steps: bool,
    pub clip_sample: Option<f64>,
}

fn kind_of_class(class: &str) -> Option<SchedulerKind> {
    Some(match class {
        "PNDMScheduler" => SchedulerKind::Pndm,
        "EulerDiscreteScheduler" => SchedulerKind::EulerDiscrete,
        "EulerAncestralDiscreteScheduler" => SchedulerKind::EulerAncestralDiscrete,
        "DDIMScheduler" => SchedulerKind::Ddim,
        _ => return None,
    })
}

/// torch.linspace(start, end, n) in f32 (the two halves computed from each end, as torch does).
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                start + step * i as f32
            } else {
                end - step * (n - 1 - i) as f32
            }
        })
        .collect()
}

fn betas_for_alpha_bar(n: usize) -> Vec<f32> {
    let f = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
            .cos()
            .powi(2)
    };
    (0..n)
        .map(|i| {
            let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            (1.0 - f(t2) / f(t1)).min(0.999) as f32
        })
        .collect()
}

impl SchedulerConfig {
    /// Resolves `scheduler_config.json` (already parsed) for `kind`, or for the file's own
    /// class when `kind` is `None`. `spacing` overrides `timestep_spacing`.
    pub fn from_json(
        map: &Map<String, Value>,
        path: &Path,
        kind: Option<SchedulerKind>,
        spacing: Option<TimestepSpacing>,
    ) -> std::result::Result<Self, ModelError> {
        let class = map.get("_class_name").and_then(Value::as_str).unwrap_or("");
        let kind = match kind {
            Some(k) => k,
            None => kind_of_class(class).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "scheduler `{class}` is not implemented (art has PNDMScheduler, \
                         EulerDiscreteScheduler, EulerAncestralDiscreteScheduler and \
                         DDIMScheduler; set `scheduler` in the target config to use one)"
                    ),
                )
            })?,
        };
        let bad = |key: &str, v: &Value, want: &str| {
            invalid(
                path,
                format!("`{key}` = {v} is not supported (art implements {want})"),
            )
        };
        let num = |key: &str, default: f64| -> std::result::Result<f64, ModelError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_f64().ok_or_else(|| bad(key, v, "a number")),
            }
        };
        let flag = |key: &str, default: bool| -> std::result::Result<bool, ModelError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_bool().ok_or_else(|| bad(key, v, "true or false")),
            }
        };
        let word = |key: &str, default: &str| -> std::result::Result<String, ModelError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(v) => v
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(key, v, "a string")),
            }
        };
        let n = num("num_train_timesteps", 1000.0)? as usize;
        if n < 2 {
            return Err(invalid(path, "`num_train_timesteps` must be at least 2"));
        }
        let (b0, b1) = (num("beta_start", 0.0001)?, num("beta_end", 0.02)?);
        let betas: Vec<f32> = match map.get("trained_betas") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<_>>()
                .filter(|b: &Vec<f32>| b.len() == n)
                .ok_or_else(|| invalid(path, format!("`trained_betas` must be {n} numbers")))?,
            _ => match word("beta_schedule", "linear")?.as_str() {
                "linear" => linspace_f32(b0 as f32, b1 as f32, n),
                "scaled_linear" => linspace_f32(b0.sqrt() as f32, b1.sqrt() as f32, n)
                    .into_iter()
                    .map(|b| b * b)
                    .collect(),
                "squaredcos_cap_v2" => betas_for_alpha_bar(n),
                o => {
                    return Err(bad(
                        "beta_schedule",
                        &Value::from(o),
                        "linear, scaled_linear and squaredcos_cap_v2",
                    ));
                }
            },
        };
        let mut acc = 1.0f64;
        let alphas_cumprod = betas
            .iter()
            .map(|b| {
                acc *= f64::from(1.0 - b);
                acc as f32
            })
            .collect();
        let prediction = match word("prediction_type", "epsilon")?.as_str() {
            "epsilon" => Prediction::Epsilon,
            "v_prediction" => Prediction::VPrediction,
            "sample" => Prediction::Sample,
            o => {
                return Err(bad(
                    "prediction_type",
                    &Value::from(o),
                    "epsilon, v_prediction, sample",
                ));
            }
        };
        let default_spacing = match kind {
            SchedulerKind::Pndm | SchedulerKind::Ddim => "leading",
            _ => "linspace",
        };
        let spacing = match spacing {
            Some(s) => s,
            None => match word("timestep_spacing", default_spacing)?.as_str() {
                "leading" => TimestepSpacing::Leading,
                "trailing" => TimestepSpacing::Trailing,
                "linspace" => TimestepSpacing::Linspace,
                o => {
                    return Err(bad(
                        "timestep_spacing",
                        &Value::from(o),
                        "leading, trailing, linspace",
                    ));
                }
            },
        };
        for key in [
            "thresholding",
            "rescale_betas_zero_snr",
            "use_karras_sigmas",
            "use_exponential_sigmas",
            "use_beta_sigmas",
        ] {
            if flag(key, false)? {
                return Err(bad(key, &Value::Bool(true), "false"));
            }
        }
        if matches!(
            kind,
            SchedulerKind::EulerDiscrete | SchedulerKind::EulerAncestralDiscrete
        ) {
            let interp = word("interpolation_type", "linear")?;
            if interp != "linear" {
                return Err(bad("interpolation_type", &Value::from(interp), "linear"));
            }
            let fin = word("final_sigmas_type", "zero")?;
            if fin != "zero" {
                return Err(bad("final_sigmas_type", &Value::from(fin), "zero"));
            }
            let tt = word("timestep_type", "discrete")?;
            if tt != "discrete" {
                return Err(bad("timestep_type", &Value::from(tt), "discrete"));
            }
        }
        let clip_sample = (kind == SchedulerKind::Ddim && flag("clip_sample", true)?)
            .then(|| num("clip_sample_range", 1.0))
            .transpose()?;
        Ok(Self {
            kind,
            num_train_timesteps: n,
            alphas_cumprod,
            prediction,
            spacing,
            steps_offset: num("steps_offset", 0.0)? as usize,
            set_alpha_to_one: flag("set_alpha_to_one", kind == SchedulerKind::Ddim)?,
            skip_prk_steps: flag("skip_prk_steps", false)?,
            clip_sample,
        })
    }

    /// Reads `scheduler_config.json` from a folder.
    pub fn read(
        dir: &Path,
        kind: Option<SchedulerKind>,
        spacing: Option<TimestepSpacing>,
    ) -> std::result::Result<Self, ModelError> {
        let path: PathBuf = dir.join("scheduler_config.json");
        let map: Map<String, Value> = crate::config::read_json(dir, "scheduler_config.json")?;
        Self::from_json(&map, &path, kind, spacing)
    }

    /// The timesteps of the configured spacing, descending, as diffusers computes them before
    /// the schedulers round (PNDM, DDIM: to integers) or store them (Euler: as f32):
    /// `np.linspace(0, n - 1, steps)`, `arange(steps) * (n // steps) + steps_offset`, or
    /// `round(arange(n, 0, -n / steps)) - 1`.
    pub(crate) fn spaced_timesteps(&self, steps: usize) -> Vec<f64> {
        let n = self.num_train_timesteps;
        match self.spacing {
            TimestepSpacing::Linspace => {
                // numpy's linspace: i * step, with the last value exactly the end.
                let stop = (n - 1) as f64;
                (0..steps)
                    .rev()
                    .map(|i| match steps {
                        1 => 0.0,
                        _ if i == steps - 1 => stop,
                        _ => i as f64 * (stop / (steps - 1) as f64),
                    })
                    .collect()
            }
            TimestepSpacing::Leading => {
                let ratio = n / steps;
                (0..steps)
                    .rev()
                    .map(|i| (i * ratio + self.steps_offset) as f64)
                    .collect()
            }
            TimestepSpacing::Trailing => {
                let ratio = n as f64 / steps as f64;
                (0..)
                    .map(|i| n as f64 - i as f64 * ratio)
                    .take_while(|&v| v > 0.0)
                    .map(|v| v.round_ties_even() - 1.0)
                    .collect()
            }
        }
    }

    /// [`Self::spaced_timesteps`] rounded to integers, as PNDM and DDIM use them.
    pub(crate) fn int_timesteps(&self, steps: usize) -> Vec<i64> {
        self.spaced_timesteps(steps)
            .iter()
            .map(|t| t.round_ties_even() as i64)
            .collect()
    }
}

/// The cumulative alphas of the discrete schedulers (PNDM, DDIM), with diffusers' value for
/// the step before timestep 0 (`final_alpha_cumprod`: 1 with `set_alpha_to_one`, else the
/// first alpha).
#[derive(Debug, Clone)]
pub(crate) struct Alphas {
    cumprod: Vec<f32>,
    before_first: f32,
}

impl Alphas {
    pub(crate) fn new(c: &SchedulerConfig) -> Self {
        Self {
            before_first: if c.set_alpha_to_one {
                1.0
            } else {
                c.alphas_cumprod[0]
            },
            cumprod: c.alphas_cumprod.clone(),
        }
    }

    pub(crate) fn at(&self, t: i64) -> f64 {
        f64::from(if t >= 0 {
            self.cumprod[t as usize]
        } else {
            self.before_first
        })
    }
}

/// One render's scheduler: its timesteps and the update from one model output to the next
/// latents. Step `i` is the `i`-th entry of [`Scheduler::timesteps`].
pub trait Scheduler: Send + std::fmt::Debug {
    /// The timesteps the UNet is called at, in order.
    fn timesteps(&self) -> &[f64];
    /// What the initial unit-variance noise is multiplied by.
    fn init_noise_sigma(&self) -> f64 {
        1.0
    }
    /// The UNet's input at step `i` (Euler-type schedulers divide by sqrt(sigma^2 + 1)).
    fn scale_model_input(&self, sample: &Tensor, _i: usize) -> Result<Tensor> {
        Ok(sample.clone())
    }
    /// The sigmas of sigma-based schedulers (one per timestep, then the final one).
    fn sigmas(&self) -> Option<&[f64]> {
        None
    }
    /// Whether [`Scheduler::step`] needs fresh noise (ancestral sampling).
    fn needs_noise(&self) -> bool {
        false
    }
    /// The latents after step `i`.
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor>;
}
