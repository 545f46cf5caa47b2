//! The Target role in-process: a Stable Diffusion pipeline renders a batch of prompts in one
//! denoising loop (classifier-free guidance doubles the UNet batch), each image from the seed
//! the engine gave it, and reports prompts the text encoder had to cut.

use crate::ModelError;
use crate::pipeline::{LoadOptions, RenderSettings, StableDiffusion};
use crate::unet::{DEFAULT_SLICE_BUDGET, Slicing};
use art_config::local::{AttentionSlice, SliceWord, StableDiffusionTarget as Config};
use art_core::template::{self as tpl};
use art_core::{
    Image, ModelIdentity, RenderOutcome, RenderOutput, RenderRequest, RoleError, Target, fail_batch,
};
use art_nn::{device_of, dtype_of};

/// `kind = "stable-diffusion"`.
#[derive(Debug)]
pub struct StableDiffusionTarget {
    pipe: StableDiffusion,
    settings: RenderSettings,
    identity: ModelIdentity,
}

impl StableDiffusionTarget {
    pub fn new(c: &Config) -> Result<Self, ModelError> {
        if c.dtype == art_config::local::Dtype::Bf16 && c.device == "cpu" {
            return Err(ModelError::Compute(
                "dtype `bf16` is not available on the cpu (candle's CPU matrix products take \
                 f32 and f16): use `f32` (the default) or `f16`"
                    .into(),
            ));
        }
        let dir = art_hub::fetch(&c.model, art_hub::pipeline_files)?;
        let opts = LoadOptions {
            dtype: dtype_of(c.dtype),
            device: device_of(&c.device)?,
            scheduler: c.scheduler,
            spacing: c.timestep_spacing,
            slicing: match c.attention_slice {
                AttentionSlice::Word(SliceWord::Auto) => Slicing::Budget(DEFAULT_SLICE_BUDGET),
                AttentionSlice::Word(SliceWord::Off) => Slicing::Off,
                AttentionSlice::Rows(n) => Slicing::Rows(n.max(1)),
            },
            micro_batch: (c.unet_batch > 0).then_some(c.unet_batch),
        };
        let pipe = StableDiffusion::load(&dir, &opts)?;
        let native = pipe.native_size.unwrap_or(512);
        let negative = c
            .negative_prompt
            .as_deref()
            .map(|n| tpl::negative_prompt(n).to_string())
            .filter(|n| !n.is_empty());
        let settings = RenderSettings {
            width: c.width.map_or(native, |w| w as usize),
            height: c.height.map_or(native, |h| h as usize),
            steps: c.steps as usize,
            guidance_scale: c.guidance_scale,
            negative_prompt: negative,
        };
        pipe.check(&settings)?;
        let sc = pipe.scheduler();
        let mut identity = ModelIdentity::new("stable-diffusion", &c.model)
            .with_param("dtype", format!("{:?}", opts.dtype).to_lowercase())
            .with_param("device", &c.device)
            .with_param("width", settings.width)
            .with_param("height", settings.height)
            .with_param("steps", settings.steps)
            .with_param("guidance_scale", settings.guidance_scale)
            .with_param("scheduler", format!("{:?}", sc.kind).to_lowercase())
            .with_param(
                "timestep_spacing",
                format!("{:?}", sc.spacing).to_lowercase(),
            )
            .with_param("prediction", format!("{:?}", sc.prediction).to_lowercase())
            .with_param(
                "negative_prompt",
                settings
                    .negative_prompt
                    .as_deref()
                    .map_or("none".to_string(), tpl::fingerprint),
            )
            .with_param("noise", "art-splitmix64-box-muller")
            .with_param("unet_batch", c.unet_batch);
        identity.revision = art_hub::snapshot_revision(&dir);
        Ok(Self {
            pipe,
            settings,
            identity,
        })
    }
}

impl Target for StableDiffusionTarget {
    fn identity(&self) -> ModelIdentity {
        self.identity.clone()
    }

    fn render(&self, batch: &[RenderRequest<'_>]) -> Vec<Result<RenderOutput, RoleError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let prompts: Vec<&str> = batch.iter().map(|r| r.prompt).collect();
        let seeds: Vec<u64> = batch.iter().map(|r| r.seed).collect();
        let rendered = match self.pipe.render(&prompts, &seeds, &self.settings) {
            Ok(r) => r,
            Err(e) => {
                return fail_batch(
                    batch.len(),
                    &RoleError::new(format!("rendering failed: {e}")),
                );
            }
        };
        rendered
            .into_iter()
            .map(|r| {
                let image = Image::new(r.width as u32, r.height as u32, r.rgb)
                    .map_err(|e| RoleError::new(format!("rendered image: {e}")))?;
                Ok(RenderOutput {
                    outcome: RenderOutcome::Image(image),
                    truncated_prompt: r.truncated,
                    revised_prompt: None,
                })
            })
            .collect()
    }
}
