//! 2-D convolutions for the UNet and the VAE. candle 0.11's CPU conv2d gathers its im2col
//! tiles element by element, which made convolutions most of a render's time; here a 3x3,
//! stride-1 convolution is nine shifted block copies of the padded input stacked into columns
//! and one matrix product per band of output rows (bands of ~8 MB of columns: measured
//! fastest on this machine's caches, and small at VAE resolutions). Other shapes (1x1, the
//! stride-2 downsamplers) go to candle.
//!
//! Each image is computed on its own with the same shapes whatever the batch, so an image's
//! result does not depend on the batch it is in.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

/// Bytes the column matrix of one band may take.
const BAND_BYTES: usize = 8 << 20;

#[derive(Debug)]
enum Kind {
    /// 3x3 stride 1 pad 1: weights as `[c_out, 9 * c_in]` in (kh, kw, c_in) order.
    Cols(Tensor),
    Candle(candle_nn::Conv2d),
}

#[derive(Debug)]
pub struct Conv {
    kind: Kind,
    /// `[c_out, 1, 1]`, for the 3x3 path.
    bias: Option<Tensor>,
}

impl Conv {
    pub fn new(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: pad,
            stride,
            ..Default::default()
        };
        let inner = candle_nn::conv2d(c_in, c_out, k, cfg, vb)?;
        if k == 3 && stride == 1 && pad == 1 {
            let cols = inner
                .weight()
                .permute((0, 2, 3, 1))?
                .reshape((c_out, 9 * c_in))?;
            return Ok(Self {
                kind: Kind::Cols(cols.contiguous()?),
                bias: inner.bias().map(|b| b.reshape((c_out, 1, 1))).transpose()?,
            });
        }
        Ok(Self {
            kind: Kind::Candle(inner),
            bias: None,
        })
    }

    fn image(&self, w: &Tensor, x: &Tensor) -> Result<Tensor> {
        let (c, h, wd) = x.dims3()?;
        // Zero-padded, flattened: rows of wd + 2, one extra bottom row so the last shift stays
        // in bounds. Output pixels are computed on the padded width (the two extra columns
        // per row are dropped), which makes every shift (kh, kw) one contiguous run per
        // channel: the copy into the columns is a plain block copy.
        let wp = wd + 2;
        let flat = x
            .pad_with_zeros(2, 1, 1)?
            .pad_with_zeros(1, 1, 2)?
            .reshape((c, (h + 3) * wp))?;
        let band = (BAND_BYTES / (9 * c * wp * x.dtype().size_in_bytes()).max(1)).clamp(1, h);
        let mut outs = Vec::with_capacity(h.div_ceil(band));
        let mut y0 = 0;
        while y0 < h {
            let bh = band.min(h - y0);
            let n = bh * wp;
            let parts = (0..9)
                .map(|s| flat.narrow(1, (y0 + s / 3) * wp + s % 3, n))
                .collect::<Result<Vec<_>>>()?;
            let cols = Tensor::cat(&parts, 0)?;
            outs.push(w.matmul(&cols)?.reshape(((), bh, wp))?);
            y0 += bh;
        }
        let out = if outs.len() == 1 {
            outs.remove(0)
        } else {
            Tensor::cat(&outs, 1)?
        };
        let out = out.narrow(2, 0, wd)?;
        match &self.bias {
            Some(b) => out.broadcast_add(b),
            None => out.contiguous(),
        }
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = match &self.kind {
            Kind::Cols(w) => w,
            Kind::Candle(c) => return c.forward(x),
        };
        let b = x.dim(0)?;
        if b == 1 {
            return self.image(w, &x.get(0)?)?.unsqueeze(0);
        }
        let imgs = (0..b)
            .map(|i| self.image(w, &x.get(i)?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&imgs, 0)
    }
}
