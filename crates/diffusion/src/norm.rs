//! Group normalisation (optionally fused with the SiLU that follows it in every ResNet block)
//! as one pass for the statistics and one for the output, per (image, group) in parallel.
//! candle's `GroupNorm` is seven tensor passes (5x PyTorch's time on a 128 x 256 x 256 map);
//! a render runs hundreds of them. Statistics are accumulated in f64 over f32 data, the
//! output is f32; other dtypes and strided inputs take candle's path.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

#[derive(Debug)]
pub struct GroupNorm {
    inner: candle_nn::GroupNorm,
    weight: Vec<f32>,
    bias: Vec<f32>,
    groups: usize,
    eps: f64,
}

/// The op for one call: with or without the SiLU.
struct Op<'a> {
    norm: &'a GroupNorm,
    silu: bool,
}

impl CustomOp1 for Op<'_> {
    fn name(&self) -> &'static str {
        "art-group-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("art-group-norm: f32 only");
        };
        let dims = layout.shape().dims();
        let (b, c) = (dims[0], dims[1]);
        let hw: usize = dims[2..].iter().product();
        let g = self.norm.groups;
        let per = c / g * hw;
        let x = &data[layout.start_offset()..layout.start_offset() + b * c * hw];
        let mut out = vec![0f32; x.len()];
        let (w, bias, eps, silu) = (&self.norm.weight, &self.norm.bias, self.norm.eps, self.silu);
        out.par_chunks_mut(per)
            .zip(x.par_chunks(per))
            .enumerate()
            .for_each(|(i, (o, x))| {
                let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / per as f64;
                let var = x
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / per as f64;
                let rstd = 1.0 / (var + eps).sqrt();
                let ch0 = (i % g) * (c / g);
                for (j, (o, x)) in o.chunks_mut(hw).zip(x.chunks(hw)).enumerate() {
                    let scale = (rstd * f64::from(w[ch0 + j])) as f32;
                    let shift =
                        (f64::from(bias[ch0 + j]) - mean * rstd * f64::from(w[ch0 + j])) as f32;
                    for (o, &v) in o.iter_mut().zip(x) {
                        let y = v * scale + shift;
                        *o = if silu { y / (1.0 + (-y).exp()) } else { y };
                    }
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl GroupNorm {
    pub fn new(vb: VarBuilder, groups: usize, channels: usize, eps: f64) -> Result<Self> {
        let w = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.))?;
        let b = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.))?;
        Ok(Self {
            weight: w.to_dtype(DType::F32)?.to_vec1()?,
            bias: b.to_dtype(DType::F32)?.to_vec1()?,
            inner: candle_nn::GroupNorm::new(w, b, channels, groups, eps)?,
            groups,
            eps,
        })
    }

    fn run(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        if x.dtype() == DType::F32 && x.is_contiguous() && x.device().is_cpu() {
            return x.apply_op1_no_bwd(&Op { norm: self, silu });
        }
        let y = self.inner.forward(x)?;
        if silu {
            candle_nn::ops::silu(&y)
        } else {
            Ok(y)
        }
    }

    /// The norm followed by SiLU.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, true)
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, false)
    }
}
