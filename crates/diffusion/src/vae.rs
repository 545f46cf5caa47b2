//! The decoder half of diffusers' `AutoencoderKL` (what a render needs: latents to pixels),
//! on [`crate::conv::Conv`]: `post_quant_conv`, the mid block (ResNet, single-head attention,
//! ResNet), the up blocks with nearest-neighbour upsampling, and the output norm and conv.
//! Attention weights load under diffusers' current names (`to_q`...) or the older ones
//! (`query`, `key`, `value`, `proj_attn`) that SD 1.5's own VAE file has. The encoder is not
//! loaded.

use crate::config::VaeConfig;
use crate::conv::Conv;
use crate::norm::GroupNorm;
use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

#[derive(Debug)]
struct Resnet {
    norm1: GroupNorm,
    conv1: Conv,
    norm2: GroupNorm,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl Resnet {
    fn new(vb: VarBuilder, cin: usize, cout: usize, groups: usize) -> Result<Self> {
        Ok(Self {
            norm1: GroupNorm::new(vb.pp("norm1"), groups, cin, 1e-6)?,
            conv1: Conv::new(vb.pp("conv1"), cin, cout, 3, 1, 1)?,
            norm2: GroupNorm::new(vb.pp("norm2"), groups, cout, 1e-6)?,
            conv2: Conv::new(vb.pp("conv2"), cout, cout, 3, 1, 1)?,
            shortcut: (cin != cout)
                .then(|| Conv::new(vb.pp("conv_shortcut"), cin, cout, 1, 1, 0))
                .transpose()?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward_silu(x)?)?;
        let h = self.conv2.forward(&self.norm2.forward_silu(&h)?)?;
        match &self.shortcut {
            Some(s) => s.forward(x)? + h,
            None => x + h,
        }
    }
}

#[derive(Debug)]
struct Attention {
    norm: GroupNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

impl Attention {
    fn new(vb: VarBuilder, c: usize, groups: usize) -> Result<Self> {
        let old = vb.contains_tensor("query.weight");
        let name = |new: &'static str, legacy: &'static str| if old { legacy } else { new };
        Ok(Self {
            norm: GroupNorm::new(vb.pp("group_norm"), groups, c, 1e-6)?,
            q: candle_nn::linear(c, c, vb.pp(name("to_q", "query")))?,
            k: candle_nn::linear(c, c, vb.pp(name("to_k", "key")))?,
            v: candle_nn::linear(c, c, vb.pp(name("to_v", "value")))?,
            out: candle_nn::linear(c, c, vb.pp(name("to_out.0", "proj_attn")))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let t = self
            .norm
            .forward(x)?
            .reshape((b, c, h * w))?
            .transpose(1, 2)?
            .contiguous()?;
        let (q, k, v) = (
            self.q.forward(&t)?,
            self.k.forward(&t)?,
            self.v.forward(&t)?,
        );
        let s = (q.matmul(&k.t()?)? * (c as f64).powf(-0.5))?;
        let o = candle_nn::ops::softmax_last_dim(&s)?.matmul(&v)?;
        let o = self
            .out
            .forward(&o)?
            .transpose(1, 2)?
            .reshape((b, c, h, w))?;
        o + x
    }
}

#[derive(Debug)]
struct UpBlock {
    resnets: Vec<Resnet>,
    up: Option<Conv>,
}

#[derive(Debug)]
pub struct VaeDecoder {
    post_quant: Option<Conv>,
    conv_in: Conv,
    mid: (Resnet, Attention, Resnet),
    up: Vec<UpBlock>,
    norm_out: GroupNorm,
    conv_out: Conv,
}

impl VaeDecoder {
    pub fn new(vb: VarBuilder, c: &VaeConfig) -> Result<Self> {
        let g = c.norm_num_groups;
        let ch = &c.block_out_channels;
        let top = *ch.last().expect("checked non-empty");
        let post_quant = c
            .use_post_quant_conv
            .then(|| {
                Conv::new(
                    vb.pp("post_quant_conv"),
                    c.latent_channels,
                    c.latent_channels,
                    1,
                    1,
                    0,
                )
            })
            .transpose()?;
        let d = vb.pp("decoder");
        let m = d.pp("mid_block");
        let mid = (
            Resnet::new(m.pp("resnets.0"), top, top, g)?,
            Attention::new(m.pp("attentions.0"), top, g)?,
            Resnet::new(m.pp("resnets.1"), top, top, g)?,
        );
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut out_ch = rev[0];
        let mut up = Vec::with_capacity(rev.len());
        for (i, &c_out) in rev.iter().enumerate() {
            let prev = out_ch;
            out_ch = c_out;
            let u = d.pp(format!("up_blocks.{i}"));
            let resnets = (0..=c.layers_per_block)
                .map(|j| {
                    Resnet::new(
                        u.pp(format!("resnets.{j}")),
                        if j == 0 { prev } else { out_ch },
                        out_ch,
                        g,
                    )
                })
                .collect::<Result<_>>()?;
            let upc = (i + 1 < rev.len())
                .then(|| Conv::new(u.pp("upsamplers.0.conv"), out_ch, out_ch, 3, 1, 1))
                .transpose()?;
            up.push(UpBlock { resnets, up: upc });
        }
        Ok(Self {
            post_quant,
            conv_in: Conv::new(d.pp("conv_in"), c.latent_channels, top, 3, 1, 1)?,
            mid,
            up,
            norm_out: GroupNorm::new(d.pp("conv_norm_out"), g, ch[0], 1e-6)?,
            conv_out: Conv::new(d.pp("conv_out"), ch[0], c.out_channels, 3, 1, 1)?,
        })
    }

    /// Latents (already divided by the scaling factor) to pixels in about [-1, 1].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let z = match &self.post_quant {
            Some(p) => p.forward(z)?,
            None => z.clone(),
        };
        let mut x = self.conv_in.forward(&z)?;
        x = self.mid.0.forward(&x)?;
        x = self.mid.1.forward(&x)?;
        x = self.mid.2.forward(&x)?;
        for blk in &self.up {
            for r in &blk.resnets {
                x = r.forward(&x)?;
            }
            if let Some(c) = &blk.up {
                let (h, w) = (x.dim(2)?, x.dim(3)?);
                x = c.forward(&x.upsample_nearest2d(2 * h, 2 * w)?)?;
            }
        }
        let x = self.norm_out.forward_silu(&x)?;
        self.conv_out.forward(&x)
    }
}
