//! A Stable Diffusion pipeline as diffusers' `StableDiffusionPipeline` and
//! `StableDiffusionXLPipeline` run it: prompts and the negative prompt encoded at 77 tokens,
//! classifier-free guidance as one doubled UNet batch, the scheduler's loop, the VAE decode and
//! diffusers' post-processing (`(x / 2 + 0.5).clamp(0, 1)`, then `round(x * 255)`).
//!
//! Noise is art's, not torch's: each image draws its initial latents (and, for ancestral
//! schedulers, each step's noise) from its own seeded stream, so an image depends only on its
//! prompt and seed and a stored round re-renders bit for bit on the same machine.

use crate::ModelError;
use crate::config::{ClipTextConfig, ModelIndex, UNetConfig, VaeConfig, read_json};
use crate::scheduler::SchedulerConfig;
use crate::text_encoder::{ClipTextEncoder, ClipTokenizer, ids_tensor};
use crate::unet::{AddedInputs, Slicing, UNet};
use crate::vae::VaeDecoder;
use art_config::local::{SchedulerKind, TimestepSpacing};
use art_core::SeedStream;
use art_nn::invalid;
use art_nn::tensors::SafetensorsIndex;
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;

/// SD 1.x/2.x (one text encoder) or SDXL (two, plus added conditioning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Sd,
    Sdxl,
}

/// How to load a pipeline.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
    pub scheduler: Option<SchedulerKind>,
    pub spacing: Option<TimestepSpacing>,
    pub slicing: Slicing,
    /// See [`StableDiffusion::micro_batch`].
    pub micro_batch: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            device: Device::Cpu,
            scheduler: None,
            spacing: None,
            slicing: Slicing::Budget(crate::unet::DEFAULT_SLICE_BUDGET),
            micro_batch: Some(1),
        }
    }
}

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    pub width: usize,
    pub height: usize,
    pub steps: usize,
    /// Above 1.0: classifier-free guidance; otherwise one unguided UNet pass per step.
    pub guidance_scale: f64,
    /// `None` = diffusers' `negative_prompt=None` (an empty prompt; zeros for SDXL models that
    /// force zeros for an empty prompt).
    pub negative_prompt: Option<String>,
}

/// Text conditioning for a batch.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `[batch, 77, dim]`.
    pub embeds: Tensor,
    /// SDXL: `[batch, proj]`.
    pub pooled: Option<Tensor>,
    /// Per prompt: the text kept, when it was truncated (from the first tokenizer).
    pub truncated: Vec<Option<String>>,
}

/// A render's result for one image.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `height * width * 3` RGB bytes.
    pub rgb: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub truncated: Option<String>,
}

/// The weights file of a component folder: `<stem>.safetensors` (or its sharded index);
/// diffusers' fp16 variants are used when only they are there.
fn open_weights(dir: &Path, stem: &str) -> Result<SafetensorsIndex, ModelError> {
    for s in [stem.to_string(), format!("{stem}.fp16")] {
        if dir.join(format!("{s}.safetensors")).is_file()
            || dir.join(format!("{s}.safetensors.index.json")).is_file()
        {
            return SafetensorsIndex::open_folder(dir, &s);
        }
    }
    let bin = dir.join(format!("{stem}.bin"));
    Err(ModelError::Missing {
        path: dir.join(format!("{stem}.safetensors")),
        what: if bin.is_file() {
            "file (only a PyTorch .bin is there: convert it to safetensors)".into()
        } else {
            "file".into()
        },
    })
}

fn var_builder(index: SafetensorsIndex, dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(Box::new(index), dtype, device.clone())
}

fn compute(what: &str, dir: &Path) -> impl Fn(candle_core::Error) -> ModelError {
    let dir = dir.to_path_buf();
    let what = what.to_string();
    move |e| ModelError::Invalid {
        path: dir.clone(),
        detail: format!("{what}: {e}"),
    }
}

#[derive(Debug)]
pub struct StableDiffusion {
    pub family: Family,
    tokenizers: Vec<ClipTokenizer>,
    encoders: Vec<ClipTextEncoder>,
    pub unet: UNet,
    vae: VaeDecoder,
    vae_scale: usize,
    scaling_factor: f64,
    scheduler: SchedulerConfig,
    force_zeros_for_empty_prompt: bool,
    /// The model's native size (UNet `sample_size` x VAE scale), when its config says.
    pub native_size: Option<usize>,
    dtype: DType,
    device: Device,
    latent_channels: usize,
    /// Images per UNet call (`None`: the whole batch). One image per call (with its
    /// guidance pair) makes an image's pixels independent of the batch it is rendered in:
    /// candle's CPU matmuls round differently for different row counts.
    pub micro_batch: Option<usize>,
}

impl StableDiffusion {
    /// Loads a diffusers pipeline folder.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Self, ModelError> {
        let index: ModelIndex = read_json(dir, "model_index.json")?;
        let family = match index.class_name.as_str() {
            "StableDiffusionPipeline" => Family::Sd,
            "StableDiffusionXLPipeline" => Family::Sdxl,
            other => {
                return Err(invalid(
                    dir.join("model_index.json"),
                    format!(
                        "pipeline `{other}` is not supported (art renders \
                         StableDiffusionPipeline and StableDiffusionXLPipeline)"
                    ),
                ));
            }
        };
        let (dt, dev) = (opts.dtype, &opts.device);
        let names: &[(&str, &str, bool)] = match family {
            Family::Sd => &[("tokenizer", "text_encoder", false)],
            Family::Sdxl => &[
                ("tokenizer", "text_encoder", false),
                ("tokenizer_2", "text_encoder_2", true),
            ],
        };
        let mut tokenizers = Vec::new();
        let mut encoders = Vec::new();
        for &(tok, enc, proj) in names {
            tokenizers.push(ClipTokenizer::from_folder(&dir.join(tok))?);
            let edir = dir.join(enc);
            let cfg: ClipTextConfig = read_json(&edir, "config.json")?;
            cfg.check(&edir.join("config.json"))?;
            let vb = var_builder(open_weights(&edir, "model")?, dt, dev);
            encoders.push(
                ClipTextEncoder::new(vb, &cfg, proj).map_err(compute("text encoder", &edir))?,
            );
        }
        let udir = dir.join("unet");
        let ucfg: UNetConfig = read_json(&udir, "config.json")?;
        ucfg.check(&udir.join("config.json"))?;
        if (family == Family::Sdxl) != (ucfg.addition_embed_type.as_deref() == Some("text_time")) {
            return Err(invalid(
                udir.join("config.json"),
                "an SDXL pipeline needs a UNet with `addition_embed_type` \"text_time\" (and \
                 only SDXL has one)",
            ));
        }
        let mut unet = UNet::new(
            var_builder(open_weights(&udir, "diffusion_pytorch_model")?, dt, dev),
            &ucfg,
        )
        .map_err(compute("UNet", &udir))?;
        unet.slicing = opts.slicing;
        let vdir = dir.join("vae");
        let vcfg: VaeConfig = read_json(&vdir, "config.json")?;
        vcfg.check(&vdir.join("config.json"))?;
        let vae = VaeDecoder::new(
            var_builder(open_weights(&vdir, "diffusion_pytorch_model")?, dt, dev),
            &vcfg,
        )
        .map_err(compute("VAE", &vdir))?;
        if vcfg.latent_channels != ucfg.in_channels {
            return Err(invalid(
                udir.join("config.json"),
                format!(
                    "the UNet takes {} channels, the VAE's latents have {}",
                    ucfg.in_channels, vcfg.latent_channels
                ),
            ));
        }
        let scheduler =
            SchedulerConfig::read(&dir.join("scheduler"), opts.scheduler, opts.spacing)?;
        let width = encoders.iter().map(|e| e.hidden_size()).sum::<usize>();
        let want = ucfg.cross_attention_dim.get(0);
        if width != want {
            return Err(invalid(
                udir.join("config.json"),
                format!("`cross_attention_dim` is {want}, the text encoders give {width}"),
            ));
        }
        Ok(Self {
            family,
            tokenizers,
            encoders,
            native_size: ucfg.sample_size.map(|s| s * vcfg.scale()),
            latent_channels: vcfg.latent_channels,
            unet,
            vae,
            vae_scale: vcfg.scale(),
            scaling_factor: vcfg.scaling_factor,
            scheduler,
            force_zeros_for_empty_prompt: index.force_zeros_for_empty_prompt.unwrap_or(true),
            dtype: dt,
            device: dev.clone(),
            micro_batch: opts.micro_batch,
        })
    }

    pub fn scheduler(&self) -> &SchedulerConfig {
        &self.scheduler
    }

    pub fn vae_scale(&self) -> usize {
        self.vae_scale
    }

    /// `encode_prompt` for a batch of prompts, one prompt at a time (the text encoder is cheap,
    /// and a prompt's embedding then never depends on the batch it came in).
    pub fn encode(&self, prompts: &[&str]) -> Result<Conditioning, ModelError> {
        let mut one = Vec::with_capacity(prompts.len());
        for p in prompts {
            one.push(self.encode_batch(&[p])?);
        }
        let cat =
            |f: &dyn Fn(&Conditioning) -> Option<&Tensor>| -> Result<Option<Tensor>, ModelError> {
                let parts: Vec<&Tensor> = one.iter().filter_map(f).collect();
                Ok(if parts.is_empty() {
                    None
                } else {
                    Some(Tensor::cat(&parts, 0)?)
                })
            };
        Ok(Conditioning {
            embeds: cat(&|c| Some(&c.embeds))?.expect("at least one prompt"),
            pooled: cat(&|c| c.pooled.as_ref())?,
            truncated: one.iter().map(|c| c.truncated[0].clone()).collect(),
        })
    }

    /// `encode_prompt` for a batch in one text-encoder call.
    pub fn encode_batch(&self, prompts: &[&str]) -> Result<Conditioning, ModelError> {
        let mut parts = Vec::new();
        let mut pooled = None;
        let mut truncated = Vec::new();
        for (k, (tok, enc)) in self.tokenizers.iter().zip(&self.encoders).enumerate() {
            let toks = prompts
                .iter()
                .map(|p| tok.encode(p))
                .collect::<Result<Vec<_>, _>>()?;
            if k == 0 {
                truncated = toks.iter().map(|t| t.truncated.clone()).collect();
            }
            let rows: Vec<&[u32]> = toks.iter().map(|t| t.ids.as_slice()).collect();
            let ids = ids_tensor(&rows, &self.device)?;
            let st = enc.forward(&ids)?;
            match self.family {
                Family::Sd => parts.push(st.last),
                Family::Sdxl => {
                    parts.push(st.penultimate);
                    pooled = Some(st.pooled);
                }
            }
        }
        let embeds = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(&parts, 2)?
        };
        Ok(Conditioning {
            embeds,
            pooled,
            truncated,
        })
    }

    /// The unconditional side of classifier-free guidance for `n` images.
    pub fn encode_negative(
        &self,
        negative: Option<&str>,
        n: usize,
    ) -> Result<Conditioning, ModelError> {
        if self.family == Family::Sdxl && negative.is_none() && self.force_zeros_for_empty_prompt {
            let one = self.encode_batch(&[""])?;
            let zeros = |t: &Tensor| -> candle_core::Result<Tensor> {
                let mut d = t.dims().to_vec();
                d[0] = n;
                Tensor::zeros(d, t.dtype(), t.device())
            };
            return Ok(Conditioning {
                embeds: zeros(&one.embeds)?,
                pooled: one.pooled.as_ref().map(zeros).transpose()?,
                truncated: vec![None; n],
            });
        }
        let one = self.encode_batch(&[negative.unwrap_or("")])?;
        let rep = |t: &Tensor| {
            t.repeat(
                vec![n]
                    .into_iter()
                    .chain(std::iter::repeat_n(1, t.rank() - 1))
                    .collect::<Vec<_>>(),
            )
        };
        Ok(Conditioning {
            embeds: rep(&one.embeds)?,
            pooled: one.pooled.as_ref().map(rep).transpose()?,
            truncated: vec![one.truncated[0].clone(); n],
        })
    }

    /// SDXL's `add_time_ids` for `n` images rendered at `height` x `width`.
    pub fn time_ids(&self, n: usize, height: usize, width: usize) -> candle_core::Result<Tensor> {
        let (h, w) = (height as f32, width as f32);
        let row = [h, w, 0.0, 0.0, h, w];
        let v: Vec<f32> = (0..n).flat_map(|_| row).collect();
        Tensor::from_vec(v, (n, 6), &self.device)?.to_dtype(self.dtype)
    }

    /// Unit Gaussian latents `[channels, h, w]` from a stream (Box-Muller on 53-bit uniforms).
    pub fn gaussian(stream: &mut SeedStream, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = ((stream.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (stream.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let r = (-2.0 * u1.ln()).sqrt();
            let a = 2.0 * std::f64::consts::PI * u2;
            out.push((r * a.cos()) as f32);
            out.push((r * a.sin()) as f32);
        }
        out.truncate(n);
        out
    }

    fn noise(
        &self,
        streams: &mut [SeedStream],
        shape: (usize, usize, usize),
    ) -> candle_core::Result<Tensor> {
        let n = shape.0 * shape.1 * shape.2;
        let v: Vec<f32> = streams
            .iter_mut()
            .flat_map(|s| Self::gaussian(s, n))
            .collect();
        Tensor::from_vec(v, (streams.len(), shape.0, shape.1, shape.2), &self.device)?
            .to_dtype(self.dtype)
    }

    /// Whether this model can render with `s`: the size a multiple of the VAE's scale, the
    /// step count one its scheduler takes.
    pub fn check(&self, s: &RenderSettings) -> Result<(), ModelError> {
        let f = self.vae_scale;
        for (what, v) in [("width", s.width), ("height", s.height)] {
            if v == 0 || v % f != 0 {
                return Err(ModelError::Compute(format!(
                    "`{what}` = {v} is not a positive multiple of {f} (the VAE's scale)"
                )));
            }
        }
        self.scheduler.build(s.steps).map(|_| ())
    }

    /// The denoising loop from `latents` (already scaled by the scheduler's initial sigma).
    /// `noise` gives fresh per-image noise for ancestral schedulers.
    pub fn denoise(
        &self,
        cond: &Conditioning,
        uncond: Option<&Conditioning>,
        latents: Tensor,
        s: &RenderSettings,
        noise: &mut dyn FnMut() -> candle_core::Result<Tensor>,
    ) -> Result<Tensor, ModelError> {
        let mut sched = self.scheduler.build(s.steps)?;
        let n = latents.dim(0)?;
        let cfg = uncond.filter(|_| s.guidance_scale > 1.0);
        let (ctx, pooled) = match cfg {
            Some(u) => (
                Tensor::cat(&[&u.embeds, &cond.embeds], 0)?,
                match (&u.pooled, &cond.pooled) {
                    (Some(a), Some(b)) => Some(Tensor::cat(&[a, b], 0)?),
                    _ => None,
                },
            ),
            None => (cond.embeds.clone(), cond.pooled.clone()),
        };
        // One row per UNet row (the guidance pair doubles them), like `ctx`.
        let time_ids = self.time_ids(ctx.dim(0)?, s.height, s.width)?;
        let chunk = self.micro_batch.unwrap_or(n).clamp(1, n.max(1));
        let mut latents = latents;
        let timesteps = sched.timesteps().to_vec();
        for (i, &t) in timesteps.iter().enumerate() {
            let mut eps_parts = Vec::with_capacity(n.div_ceil(chunk));
            let mut start = 0;
            while start < n {
                let len = chunk.min(n - start);
                let lat = latents.narrow(0, start, len)?;
                let rows = |t: &Tensor| -> candle_core::Result<Tensor> {
                    if cfg.is_some() {
                        Tensor::cat(&[t.narrow(0, start, len)?, t.narrow(0, n + start, len)?], 0)
                    } else {
                        t.narrow(0, start, len)
                    }
                };
                let input = if cfg.is_some() {
                    Tensor::cat(&[&lat, &lat], 0)?
                } else {
                    lat
                };
                let input = sched.scale_model_input(&input, i)?;
                let c = rows(&ctx)?;
                let p = pooled.as_ref().map(&rows).transpose()?;
                let ids = rows(&time_ids)?;
                let added = p.as_ref().map(|p| AddedInputs {
                    text_embeds: p,
                    time_ids: &ids,
                });
                let out = self.unet.forward(&input, t, &c, added)?;
                eps_parts.push(if cfg.is_some() {
                    let (u, c) = (out.i(..len)?, out.i(len..)?);
                    (&u + (c - &u)?.affine(s.guidance_scale, 0.0)?)?
                } else {
                    out
                });
                start += len;
            }
            let eps = Tensor::cat(&eps_parts, 0)?;
            let z = if sched.needs_noise() {
                Some(noise()?)
            } else {
                None
            };
            latents = sched.step(&eps, i, &latents, z.as_ref())?;
        }
        Ok(latents)
    }

    /// VAE decode and diffusers' post-processing, to `[batch, 3, h, w]` f32 in [0, 1]; one
    /// image at a time (the decoder's activations at full resolution are the memory peak).
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor, ModelError> {
        let mut outs = Vec::new();
        for i in 0..latents.dim(0)? {
            let z = (latents.i(i..i + 1)? / self.scaling_factor)?;
            let x = self.vae.decode(&z)?;
            outs.push(((x / 2.0)? + 0.5)?.clamp(0.0, 1.0)?.to_dtype(DType::F32)?);
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    /// Renders one image per prompt, each from its own seed.
    pub fn render(
        &self,
        prompts: &[&str],
        seeds: &[u64],
        s: &RenderSettings,
    ) -> Result<Vec<Rendered>, ModelError> {
        assert_eq!(prompts.len(), seeds.len());
        self.check(s)?;
        let n = prompts.len();
        let cond = self.encode(prompts)?;
        let uncond = (s.guidance_scale > 1.0)
            .then(|| {
                self.encode_negative(s.negative_prompt.as_deref().filter(|x| !x.is_empty()), n)
            })
            .transpose()?;
        let shape = (
            self.latent_channels,
            s.height / self.vae_scale,
            s.width / self.vae_scale,
        );
        let mut streams: Vec<SeedStream> = seeds.iter().map(|&s| SeedStream::new(s)).collect();
        let init = self.noise(&mut streams, shape)?;
        let sigma = self.scheduler.build(s.steps)?.init_noise_sigma();
        let latents = init.affine(sigma, 0.0)?;
        let dev_noise = &mut || self.noise(&mut streams, shape);
        let latents = self.denoise(&cond, uncond.as_ref(), latents, s, dev_noise)?;
        let images = self.decode(&latents)?;
        to_rgb(&images, cond.truncated)
    }
}

/// `[batch, 3, h, w]` in [0, 1] to RGB bytes, rounding as diffusers' `numpy_to_pil` does.
pub fn to_rgb(
    images: &Tensor,
    truncated: Vec<Option<String>>,
) -> Result<Vec<Rendered>, ModelError> {
    let (b, _, h, w) = images.dims4()?;
    let mut out = Vec::with_capacity(b);
    for (i, truncated) in (0..b).zip(truncated) {
        let px: Vec<f32> = images.i(i)?.permute((1, 2, 0))?.flatten_all()?.to_vec1()?;
        let rgb = px
            .iter()
            .map(|v| (v * 255.0).round_ties_even() as u8)
            .collect();
        out.push(Rendered {
            rgb,
            width: w,
            height: h,
            truncated,
        });
    }
    Ok(out)
}
