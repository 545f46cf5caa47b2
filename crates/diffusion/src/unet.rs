//! diffusers' `UNet2DConditionModel` for SD 1.x, 2.x and SDXL: ResNet blocks with the time
//! embedding, `Transformer2DModel`s (self-attention, cross-attention on the text states, GEGLU
//! feed-forward; conv or linear projections), and SDXL's added conditioning (`text_time`: the
//! pooled text embedding and the size/crop ids). Built from `unet/config.json` with diffusers'
//! channel arithmetic; weights keep diffusers' names.
//!
//! Attention runs in slices of (image x head) rows so the attention matrix of one slice, not
//! of the whole batch, is what sits in memory (SD 1.5 at 512 px: 4096 x 4096 per head). Each
//! slice holds whole images, so an image's arithmetic does not depend on what else is in the
//! batch.

use crate::config::UNetConfig;
use crate::conv::Conv;
use crate::norm::GroupNorm;
use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

/// How many bytes one slice's attention scores may take; `Rows(n)` fixes the rows per slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slicing {
    Off,
    Budget(usize),
    Rows(usize),
}

/// 256 MiB of f32 scores per slice by default.
pub const DEFAULT_SLICE_BUDGET: usize = 256 << 20;

/// `TimestepEmbedding`: linear, SiLU, linear.
#[derive(Debug)]
struct TimeMlp {
    l1: Linear,
    l2: Linear,
}

impl TimeMlp {
    fn new(vb: VarBuilder, cin: usize, dim: usize) -> Result<Self> {
        Ok(Self {
            l1: candle_nn::linear(cin, dim, vb.pp("linear_1"))?,
            l2: candle_nn::linear(dim, dim, vb.pp("linear_2"))?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.l2
            .forward(&candle_nn::ops::silu(&self.l1.forward(x)?)?)
    }
}

/// diffusers' `get_timestep_embedding` (max period 10000, scale 1), in f32.
pub fn timestep_embedding(
    t: &[f64],
    dim: usize,
    flip_sin_to_cos: bool,
    shift: f64,
    dev: &candle_core::Device,
) -> Result<Tensor> {
    let half = dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| {
            let e = -(10000f32.ln()) * i as f32;
            (e / (half as f32 - shift as f32)).exp()
        })
        .collect();
    let mut out = Vec::with_capacity(t.len() * dim);
    for &t in t {
        let args: Vec<f32> = freqs.iter().map(|f| t as f32 * f).collect();
        let (sin, cos): (Vec<f32>, Vec<f32>) = args.iter().map(|a| (a.sin(), a.cos())).unzip();
        if flip_sin_to_cos {
            out.extend(cos);
            out.extend(sin);
        } else {
            out.extend(sin);
            out.extend(cos);
        }
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    Tensor::from_vec(out, (t.len(), dim), dev)
}

#[derive(Debug)]
struct Resnet {
    norm1: GroupNorm,
    conv1: Conv,
    time: Linear,
    norm2: GroupNorm,
    conv2: Conv,
    shortcut: Option<Conv>,
    scale: f64,
}

impl Resnet {
    fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        temb: usize,
        groups: usize,
        eps: f64,
        scale: f64,
    ) -> Result<Self> {
        Ok(Self {
            norm1: GroupNorm::new(vb.pp("norm1"), groups, cin, eps)?,
            conv1: Conv::new(vb.pp("conv1"), cin, cout, 3, 1, 1)?,
            time: candle_nn::linear(temb, cout, vb.pp("time_emb_proj"))?,
            norm2: GroupNorm::new(vb.pp("norm2"), groups, cout, eps)?,
            conv2: Conv::new(vb.pp("conv2"), cout, cout, 3, 1, 1)?,
            shortcut: (cin != cout)
                .then(|| Conv::new(vb.pp("conv_shortcut"), cin, cout, 1, 1, 0))
                .transpose()?,
            scale,
        })
    }

    fn forward(&self, x: &Tensor, temb: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward_silu(x)?)?;
        let t = self
            .time
            .forward(&candle_nn::ops::silu(temb)?)?
            .unsqueeze(2)?
            .unsqueeze(3)?;
        let h = h.broadcast_add(&t)?;
        let h = self.conv2.forward(&self.norm2.forward_silu(&h)?)?;
        let x = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        let out = (x + h)?;
        if self.scale == 1.0 {
            Ok(out)
        } else {
            out / self.scale
        }
    }
}

#[derive(Debug)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn new(vb: VarBuilder, dim: usize, ctx: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            q: candle_nn::linear_no_bias(dim, dim, vb.pp("to_q"))?,
            k: candle_nn::linear_no_bias(ctx, dim, vb.pp("to_k"))?,
            v: candle_nn::linear_no_bias(ctx, dim, vb.pp("to_v"))?,
            out: candle_nn::linear(dim, dim, vb.pp("to_out.0"))?,
            heads,
        })
    }

    fn forward(&self, x: &Tensor, ctx: Option<&Tensor>, slicing: Slicing) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let ctx = ctx.unwrap_or(x);
        let m = ctx.dim(1)?;
        let h = self.heads;
        let hd = d / h;
        let split = |t: Tensor, len: usize| -> Result<Tensor> {
            t.reshape((b, len, h, hd))?
                .transpose(1, 2)?
                .reshape((b * h, len, hd))
        };
        let q = split(self.q.forward(x)?, n)?;
        let k = split(self.k.forward(ctx)?, m)?;
        let v = split(self.v.forward(ctx)?, m)?;
        let scale = (hd as f64).powf(-0.5);
        // Rows per slice: whole images, as many as the budget allows.
        let per_image = h * n * m * 4;
        let images = match slicing {
            Slicing::Off => b,
            Slicing::Budget(bytes) => (bytes / per_image.max(1)).clamp(1, b),
            Slicing::Rows(r) => (r / h).clamp(1, b),
        };
        let heads_per_slice = match slicing {
            Slicing::Budget(bytes) if per_image > bytes => (bytes / (n * m * 4)).clamp(1, h),
            Slicing::Rows(r) if r < h => r.max(1),
            _ => h,
        };
        let rows = if heads_per_slice < h {
            heads_per_slice
        } else {
            images * h
        };
        let total = b * h;
        let mut outs = Vec::with_capacity(total.div_ceil(rows));
        let mut start = 0;
        while start < total {
            // A slice never straddles two images when it holds part of one.
            let len = if rows < h {
                rows.min(h - start % h)
            } else {
                rows.min(total - start)
            };
            let qs = q.narrow(0, start, len)?.contiguous()?;
            let ks = k.narrow(0, start, len)?.contiguous()?;
            let vs = v.narrow(0, start, len)?.contiguous()?;
            let w = (qs.matmul(&ks.t()?)? * scale)?;
            let w = if w.dtype() == DType::F32 {
                candle_nn::ops::softmax_last_dim(&w)?
            } else {
                candle_nn::ops::softmax_last_dim(&w.to_dtype(DType::F32)?)?.to_dtype(w.dtype())?
            };
            outs.push(w.matmul(&vs)?);
            start += len;
        }
        let o = Tensor::cat(&outs, 0)?;
        let o = o
            .reshape((b, h, n, hd))?
            .transpose(1, 2)?
            .reshape((b, n, d))?;
        self.out.forward(&o)
    }
}

#[derive(Debug)]
struct TransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
}

impl TransformerBlock {
    fn new(vb: VarBuilder, dim: usize, ctx: usize, heads: usize) -> Result<Self> {
        let inner = dim * 4;
        Ok(Self {
            norm1: candle_nn::layer_norm(dim, 1e-5, vb.pp("norm1"))?,
            attn1: Attention::new(vb.pp("attn1"), dim, dim, heads)?,
            norm2: candle_nn::layer_norm(dim, 1e-5, vb.pp("norm2"))?,
            attn2: Attention::new(vb.pp("attn2"), dim, ctx, heads)?,
            norm3: candle_nn::layer_norm(dim, 1e-5, vb.pp("norm3"))?,
            ff_in: candle_nn::linear(dim, inner * 2, vb.pp("ff.net.0.proj"))?,
            ff_out: candle_nn::linear(inner, dim, vb.pp("ff.net.2"))?,
        })
    }

    fn forward(&self, x: &Tensor, ctx: &Tensor, s: Slicing) -> Result<Tensor> {
        let x = (self.attn1.forward(&self.norm1.forward(x)?, None, s)? + x)?;
        let x = (self.attn2.forward(&self.norm2.forward(&x)?, Some(ctx), s)? + x)?;
        let h = self.ff_in.forward(&self.norm3.forward(&x)?)?;
        let half = h.dim(D::Minus1)? / 2;
        // GEGLU: value * gelu(gate), exact (erf) gelu as torch's default.
        let g = (h.narrow(D::Minus1, 0, half)? * h.narrow(D::Minus1, half, half)?.gelu_erf()?)?;
        self.ff_out.forward(&g)? + x
    }
}

/// `Transformer2DModel` as the UNet's cross-attention blocks use it.
#[derive(Debug)]
struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: Proj,
    blocks: Vec<TransformerBlock>,
    proj_out: Proj,
}

#[derive(Debug)]
enum Proj {
    Conv(Conv),
    Linear(Linear),
}

impl SpatialTransformer {
    #[allow(clippy::too_many_arguments)]
    fn new(
        vb: VarBuilder,
        ch: usize,
        heads: usize,
        depth: usize,
        ctx: usize,
        groups: usize,
        linear: bool,
    ) -> Result<Self> {
        let proj = |vb: VarBuilder| -> Result<Proj> {
            Ok(if linear {
                Proj::Linear(candle_nn::linear(ch, ch, vb)?)
            } else {
                Proj::Conv(Conv::new(vb, ch, ch, 1, 1, 0)?)
            })
        };
        Ok(Self {
            norm: GroupNorm::new(vb.pp("norm"), groups, ch, 1e-6)?,
            proj_in: proj(vb.pp("proj_in"))?,
            blocks: (0..depth)
                .map(|i| {
                    TransformerBlock::new(vb.pp(format!("transformer_blocks.{i}")), ch, ctx, heads)
                })
                .collect::<Result<_>>()?,
            proj_out: proj(vb.pp("proj_out"))?,
        })
    }

    fn forward(&self, x: &Tensor, ctx: &Tensor, s: Slicing) -> Result<Tensor> {
        let (b, c, hh, ww) = x.dims4()?;
        let h = self.norm.forward(x)?;
        let to_seq =
            |t: Tensor| -> Result<Tensor> { t.permute((0, 2, 3, 1))?.reshape((b, hh * ww, c)) };
        let mut h = match &self.proj_in {
            Proj::Conv(p) => to_seq(p.forward(&h)?)?,
            Proj::Linear(p) => p.forward(&to_seq(h)?)?,
        };
        for blk in &self.blocks {
            h = blk.forward(&h, ctx, s)?;
        }
        let to_img = |t: Tensor| -> Result<Tensor> {
            t.reshape((b, hh, ww, c))?
                .permute((0, 3, 1, 2))?
                .contiguous()
        };
        let h = match &self.proj_out {
            Proj::Conv(p) => p.forward(&to_img(h)?)?,
            Proj::Linear(p) => to_img(p.forward(&h)?)?,
        };
        h + x
    }
}

#[derive(Debug)]
struct DownBlock {
    resnets: Vec<Resnet>,
    attentions: Vec<SpatialTransformer>,
    down: Option<(Conv, bool)>,
}

#[derive(Debug)]
struct UpBlock {
    resnets: Vec<Resnet>,
    attentions: Vec<SpatialTransformer>,
    up: Option<Conv>,
}

#[derive(Debug)]
struct AddedCond {
    time_dim: usize,
    embedding: TimeMlp,
}

/// The conditioning SDXL adds to the time embedding.
#[derive(Debug, Clone)]
pub struct AddedInputs<'a> {
    /// Pooled, projected text embedding: `[batch, dim]`.
    pub text_embeds: &'a Tensor,
    /// `[batch, 6]`: original size, crop top-left, target size.
    pub time_ids: &'a Tensor,
}

#[derive(Debug)]
pub struct UNet {
    conv_in: Conv,
    time: TimeMlp,
    added: Option<AddedCond>,
    down: Vec<DownBlock>,
    mid_res: (Resnet, Resnet),
    mid_attn: SpatialTransformer,
    up: Vec<UpBlock>,
    norm_out: GroupNorm,
    conv_out: Conv,
    cfg: UNetConfig,
    pub slicing: Slicing,
}

impl UNet {
    pub fn new(vb: VarBuilder, cfg: &UNetConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let temb = ch[0] * 4;
        let (groups, eps) = (cfg.norm_num_groups, cfg.norm_eps);
        let linear = cfg.use_linear_projection;
        let time = TimeMlp::new(vb.pp("time_embedding"), ch[0], temb)?;
        let added = match cfg.addition_embed_type.as_deref() {
            Some("text_time") => Some(AddedCond {
                time_dim: cfg.addition_time_embed_dim.unwrap_or(256),
                embedding: TimeMlp::new(
                    vb.pp("add_embedding"),
                    cfg.projection_class_embeddings_input_dim.unwrap_or(0),
                    temb,
                )?,
            }),
            _ => None,
        };
        // The `layers` cross-attention transformers of a block whose heads and context width
        // are those of down block `src`.
        let transformers = |vb: &VarBuilder, layers: usize, ch: usize, src: usize, depth: usize| {
            (0..layers)
                .map(|j| {
                    SpatialTransformer::new(
                        vb.pp(format!("attentions.{j}")),
                        ch,
                        cfg.heads(src),
                        depth,
                        cfg.cross_attention_dim.get(src),
                        groups,
                        linear,
                    )
                })
                .collect::<Result<Vec<_>>>()
        };
        let mut down = Vec::with_capacity(n);
        let mut out_ch = ch[0];
        for (i, &c) in ch.iter().enumerate() {
            let cin = out_ch;
            out_ch = c;
            let vbd = vb.pp(format!("down_blocks.{i}"));
            let layers = cfg.layers_per_block.get(i);
            let cross = cfg.down_block_types[i] == "CrossAttnDownBlock2D";
            let resnets = (0..layers)
                .map(|j| {
                    Resnet::new(
                        vbd.pp(format!("resnets.{j}")),
                        if j == 0 { cin } else { out_ch },
                        out_ch,
                        temb,
                        groups,
                        eps,
                        1.0,
                    )
                })
                .collect::<Result<_>>()?;
            let attentions = if cross {
                transformers(
                    &vbd,
                    layers,
                    out_ch,
                    i,
                    cfg.transformer_layers_per_block.get(i),
                )?
            } else {
                Vec::new()
            };
            let pad = cfg.downsample_padding as usize;
            let down_conv = (i < n - 1)
                .then(|| {
                    Conv::new(vbd.pp("downsamplers.0.conv"), out_ch, out_ch, 3, 2, pad)
                        .map(|c| (c, pad == 0))
                })
                .transpose()?;
            down.push(DownBlock {
                resnets,
                attentions,
                down: down_conv,
            });
        }
        let last = ch[n - 1];
        let mid_heads = cfg.heads(n - 1);
        let mid_depth = cfg.transformer_layers_per_block.get(n - 1);
        let vbm = vb.pp("mid_block");
        let ms = cfg.mid_block_scale_factor;
        let mid_res = (
            Resnet::new(vbm.pp("resnets.0"), last, last, temb, groups, eps, ms)?,
            Resnet::new(vbm.pp("resnets.1"), last, last, temb, groups, eps, ms)?,
        );
        let mid_attn = SpatialTransformer::new(
            vbm.pp("attentions.0"),
            last,
            mid_heads,
            mid_depth,
            cfg.cross_attention_dim.get(n - 1),
            groups,
            linear,
        )?;
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let rev_depth: Vec<usize> = match &cfg.reverse_transformer_layers_per_block {
            Some(r) => r.clone(),
            None => (0..n)
                .rev()
                .map(|i| cfg.transformer_layers_per_block.get(i))
                .collect(),
        };
        let mut up = Vec::with_capacity(n);
        let mut out_ch = rev[0];
        for i in 0..n {
            let prev = out_ch;
            out_ch = rev[i];
            let cin = rev[(i + 1).min(n - 1)];
            let src = n - 1 - i;
            let layers = cfg.layers_per_block.get(src) + 1;
            let cross = cfg.up_block_types[i] == "CrossAttnUpBlock2D";
            let vbu = vb.pp(format!("up_blocks.{i}"));
            let resnets = (0..layers)
                .map(|j| {
                    let skip = if j == layers - 1 { cin } else { out_ch };
                    let rin = if j == 0 { prev } else { out_ch };
                    Resnet::new(
                        vbu.pp(format!("resnets.{j}")),
                        rin + skip,
                        out_ch,
                        temb,
                        groups,
                        eps,
                        1.0,
                    )
                })
                .collect::<Result<_>>()?;
            let attentions = if cross {
                transformers(&vbu, layers, out_ch, src, rev_depth[i])?
            } else {
                Vec::new()
            };
            let up_conv = (i < n - 1)
                .then(|| Conv::new(vbu.pp("upsamplers.0.conv"), out_ch, out_ch, 3, 1, 1))
                .transpose()?;
            up.push(UpBlock {
                resnets,
                attentions,
                up: up_conv,
            });
        }
        Ok(Self {
            conv_in: Conv::new(vb.pp("conv_in"), cfg.in_channels, ch[0], 3, 1, 1)?,
            time,
            added,
            down,
            mid_res,
            mid_attn,
            up,
            norm_out: GroupNorm::new(vb.pp("conv_norm_out"), groups, ch[0], eps)?,
            conv_out: Conv::new(vb.pp("conv_out"), ch[0], cfg.out_channels, 3, 1, 1)?,
            cfg: cfg.clone(),
            slicing: Slicing::Budget(DEFAULT_SLICE_BUDGET),
        })
    }

    /// The noise (or v) prediction for `sample` (`[batch, 4, h, w]`) at `timestep`, with the
    /// text states `ctx` (`[batch, len, dim]`).
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: f64,
        ctx: &Tensor,
        added: Option<AddedInputs>,
    ) -> Result<Tensor> {
        let (b, _, hh, ww) = sample.dims4()?;
        let dev = sample.device();
        let dt = sample.dtype();
        let up_factor = 1usize << (self.up.len() - 1);
        let forward_upsample_size = hh % up_factor != 0 || ww % up_factor != 0;
        let cfg = &self.cfg;
        let t = timestep_embedding(
            &vec![timestep; b],
            cfg.block_out_channels[0],
            cfg.flip_sin_to_cos,
            cfg.freq_shift,
            dev,
        )?
        .to_dtype(dt)?;
        let mut emb = self.time.forward(&t)?;
        match (&self.added, added) {
            (Some(a), Some(inp)) => {
                let ids: Vec<f64> = inp
                    .time_ids
                    .to_dtype(DType::F64)?
                    .flatten_all()?
                    .to_vec1()?;
                let te =
                    timestep_embedding(&ids, a.time_dim, cfg.flip_sin_to_cos, cfg.freq_shift, dev)?
                        .to_dtype(dt)?
                        .reshape((b, ()))?;
                let add = Tensor::cat(&[inp.text_embeds.to_dtype(dt)?, te], 1)?;
                emb = (emb + a.embedding.forward(&add)?)?;
            }
            (Some(_), None) => candle_core::bail!(
                "this UNet needs SDXL's added conditioning (pooled text embeds and time ids)"
            ),
            (None, _) => {}
        }
        let x = if cfg.center_input_sample {
            sample.affine(2.0, -1.0)?
        } else {
            sample.clone()
        };
        let mut x = self.conv_in.forward(&x)?;
        let mut res = vec![x.clone()];
        let s = self.slicing;
        for blk in &self.down {
            for (j, r) in blk.resnets.iter().enumerate() {
                x = r.forward(&x, &emb)?;
                if let Some(a) = blk.attentions.get(j) {
                    x = a.forward(&x, ctx, s)?;
                }
                res.push(x.clone());
            }
            if let Some((c, pad0)) = &blk.down {
                let xin = if *pad0 {
                    x.pad_with_zeros(D::Minus1, 0, 1)?
                        .pad_with_zeros(D::Minus2, 0, 1)?
                } else {
                    x.clone()
                };
                x = c.forward(&xin)?;
                res.push(x.clone());
            }
        }
        x = self.mid_res.0.forward(&x, &emb)?;
        x = self.mid_attn.forward(&x, ctx, s)?;
        x = self.mid_res.1.forward(&x, &emb)?;
        let n_up = self.up.len();
        for (i, blk) in self.up.iter().enumerate() {
            let skips = res.split_off(res.len() - blk.resnets.len());
            let size = (i < n_up - 1 && forward_upsample_size)
                .then(|| res.last().map(|t| (t.dim(2), t.dim(3))))
                .flatten();
            for (j, r) in blk.resnets.iter().enumerate() {
                let skip = &skips[skips.len() - 1 - j];
                x = r.forward(&Tensor::cat(&[&x, skip], 1)?, &emb)?;
                if let Some(a) = blk.attentions.get(j) {
                    x = a.forward(&x, ctx, s)?;
                }
            }
            if let Some(c) = &blk.up {
                let (h2, w2) = match size {
                    Some((h, w)) => (h?, w?),
                    None => (x.dim(2)? * 2, x.dim(3)? * 2),
                };
                x = c.forward(&x.upsample_nearest2d(h2, w2)?)?;
            }
        }
        let x = self.norm_out.forward_silu(&x)?;
        self.conv_out.forward(&x)
    }
}
