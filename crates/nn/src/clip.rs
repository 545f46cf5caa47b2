//! CLIP's transformer encoder layer (shared by the text encoder of `diffusion::clip` and the
//! vision tower here) and `CLIPVisionModel`: patch embedding, class token, learned positions,
//! `pre_layrnorm`, the encoder, `post_layernorm`. Vision-language models (LLaVA) read an
//! inner layer's hidden state; image judges (Q16 and friends) read the pooled, projected
//! class token.

use crate::ModelError;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};
use serde::Deserialize;
use std::path::Path;

/// One pre-norm encoder layer: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug)]
pub struct EncoderLayer {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl EncoderLayer {
    /// The layer's weights under `vb` (`layer_norm1`, `self_attn.{q,k,v,out}_proj`,
    /// `layer_norm2`, `mlp.fc1`, `mlp.fc2`).
    pub fn new(vb: VarBuilder, d: usize, inner: usize, eps: f64) -> Result<Self> {
        let ln = |vb: VarBuilder| candle_nn::layer_norm(d, eps, vb);
        let a = vb.pp("self_attn");
        Ok(Self {
            ln1: ln(vb.pp("layer_norm1"))?,
            q: candle_nn::linear(d, d, a.pp("q_proj"))?,
            k: candle_nn::linear(d, d, a.pp("k_proj"))?,
            v: candle_nn::linear(d, d, a.pp("v_proj"))?,
            out: candle_nn::linear(d, d, a.pp("out_proj"))?,
            ln2: ln(vb.pp("layer_norm2"))?,
            fc1: candle_nn::linear(d, inner, vb.pp("mlp.fc1"))?,
            fc2: candle_nn::linear(inner, d, vb.pp("mlp.fc2"))?,
        })
    }

    fn attention(&self, x: &Tensor, heads: usize, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let hd = d / heads;
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((b, n, heads, hd))?.transpose(1, 2)?.contiguous()
        };
        let q = split(self.q.forward(x)?)?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        let mut w = (q.matmul(&k.t()?)? * (hd as f64).powf(-0.5))?;
        if let Some(m) = mask {
            w = w.broadcast_add(m)?;
        }
        let w = candle_nn::ops::softmax_last_dim(&w)?;
        let o = w.matmul(&v)?.transpose(1, 2)?.reshape((b, n, d))?;
        self.out.forward(&o)
    }

    /// `x`: [batch, len, d]; `mask` is added to the attention scores ([len, len]).
    pub fn forward(
        &self,
        x: &Tensor,
        heads: usize,
        mask: Option<&Tensor>,
        quick_gelu: bool,
    ) -> Result<Tensor> {
        let x = (x + self.attention(&self.ln1.forward(x)?, heads, mask)?)?;
        let h = self.fc1.forward(&self.ln2.forward(&x)?)?;
        let h = if quick_gelu {
            (&h * candle_nn::ops::sigmoid(&(&h * 1.702)?)?)?
        } else {
            h.gelu_erf()?
        };
        x + self.fc2.forward(&h)?
    }
}

fn d_hidden() -> usize {
    768
}
fn d_inter() -> usize {
    3072
}
fn d_layers() -> usize {
    12
}
fn d_heads() -> usize {
    12
}
fn d_image() -> usize {
    224
}
fn d_patch() -> usize {
    32
}
fn d_act() -> String {
    "quick_gelu".into()
}
fn d_eps() -> f64 {
    1e-5
}
fn d_channels() -> usize {
    3
}

/// `CLIPVisionConfig` with transformers' defaults for absent keys (the llava-hf configs
/// write only the values that differ).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipVisionConfig {
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_image")]
    pub image_size: usize,
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_channels")]
    pub num_channels: usize,
}

impl ClipVisionConfig {
    /// Parses a `vision_config` object (or a CLIP vision model's `config.json`, where the
    /// values may sit under `vision_config`); `path` names the file in errors.
    pub fn from_value(v: &serde_json::Value, path: &Path) -> std::result::Result<Self, ModelError> {
        let v = match v.get("vision_config") {
            Some(inner) if inner.is_object() => inner,
            _ => v,
        };
        let c: Self = serde_json::from_value(v.clone()).map_err(|e| ModelError::Invalid {
            path: path.to_path_buf(),
            detail: format!("vision config: {e}"),
        })?;
        c.check(path)?;
        Ok(c)
    }

    fn check(&self, path: &Path) -> std::result::Result<(), ModelError> {
        let bad = |detail: String| ModelError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return Err(bad(format!(
                "vision config: `hidden_act` = {:?} is not supported (quick_gelu, gelu)",
                self.hidden_act
            )));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(bad(
                "vision config: `hidden_size` is not divisible by `num_attention_heads`".into(),
            ));
        }
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return Err(bad(format!(
                "vision config: `image_size` {} is not a multiple of `patch_size` {}",
                self.image_size, self.patch_size
            )));
        }
        Ok(())
    }

    /// Patches per side of one image.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

/// `CLIPVisionModel` (weights under `vision_model.` in the hub's files; callers pass the
/// builder at that prefix).
#[derive(Debug)]
pub struct ClipVisionModel {
    /// The patch convolution as a matrix: [hidden, channels * patch * patch].
    patch: Tensor,
    class: Tensor,
    position: Tensor,
    pre_ln: LayerNorm,
    layers: Vec<EncoderLayer>,
    /// Present when every layer was loaded.
    post_ln: Option<LayerNorm>,
    cfg: ClipVisionConfig,
}

impl ClipVisionModel {
    /// Loads the embeddings and the first `layers` encoder layers (all of them, and the
    /// final norm, when `layers` is `None`): a model that reads an inner hidden state never
    /// needs the layers above it.
    pub fn new(vb: VarBuilder, cfg: &ClipVisionConfig, layers: Option<usize>) -> Result<Self> {
        let d = cfg.hidden_size;
        let (c, p) = (cfg.num_channels, cfg.patch_size);
        let n = layers.unwrap_or(cfg.num_hidden_layers);
        if n > cfg.num_hidden_layers {
            candle_core::bail!(
                "{n} vision layers asked for, the config has {}",
                cfg.num_hidden_layers
            );
        }
        let e = vb.pp("embeddings");
        let patch = e
            .get((d, c, p, p), "patch_embedding.weight")?
            .reshape((d, c * p * p))?;
        let class = e.get(d, "class_embedding")?;
        let tokens = cfg.grid() * cfg.grid() + 1;
        let position = e.get((tokens, d), "position_embedding.weight")?;
        let pre_ln = candle_nn::layer_norm(d, cfg.layer_norm_eps, vb.pp("pre_layrnorm"))?;
        let layers = (0..n)
            .map(|i| {
                EncoderLayer::new(
                    vb.pp(format!("encoder.layers.{i}")),
                    d,
                    cfg.intermediate_size,
                    cfg.layer_norm_eps,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let post_ln = if n == cfg.num_hidden_layers {
            Some(candle_nn::layer_norm(
                d,
                cfg.layer_norm_eps,
                vb.pp("post_layernorm"),
            )?)
        } else {
            None
        };
        Ok(Self {
            patch,
            class,
            position,
            pre_ln,
            layers,
            post_ln,
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &ClipVisionConfig {
        &self.cfg
    }

    pub fn dtype(&self) -> DType {
        self.patch.dtype()
    }

    /// Patch + class + position embeddings after `pre_layrnorm` (`hidden_states[0]`):
    /// `pixels` [batch, channels, size, size] -> [batch, 1 + grid², hidden].
    fn embed(&self, pixels: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = pixels.dims4()?;
        let (s, p) = (self.cfg.image_size, self.cfg.patch_size);
        if c != self.cfg.num_channels || h != s || w != s {
            candle_core::bail!(
                "pixel values are {:?}, the vision tower takes [batch, {}, {s}, {s}]",
                pixels.dims(),
                self.cfg.num_channels
            );
        }
        let g = s / p;
        let d = self.cfg.hidden_size;
        // A stride-p convolution with a p x p kernel is a matmul over non-overlapping patches.
        let cols = pixels
            .to_dtype(self.dtype())?
            .reshape((b, c, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b * g * g, c * p * p))?;
        let patches = cols.matmul(&self.patch.t()?)?.reshape((b, g * g, d))?;
        let class = self.class.reshape((1, 1, d))?.repeat((b, 1, 1))?;
        let x = Tensor::cat(&[&class, &patches], 1)?.broadcast_add(&self.position)?;
        self.pre_ln.forward(&x)
    }

    /// `hidden_states[layer]` of transformers' `CLIPVisionModel`: 0 is the embeddings after
    /// `pre_layrnorm`, `i` the output of encoder layer `i` (counting from 1). Negative
    /// indices count from the end as in Python (-1 = the last layer's output).
    pub fn hidden_state(&self, pixels: &Tensor, layer: i64) -> Result<Tensor> {
        let total = self.cfg.num_hidden_layers as i64;
        let idx = if layer < 0 { total + 1 + layer } else { layer };
        if idx < 0 || idx > total {
            candle_core::bail!("hidden state {layer} of a {total}-layer vision tower");
        }
        let idx = idx as usize;
        if idx > self.layers.len() {
            candle_core::bail!(
                "hidden state {layer} needs {idx} layers, {} were loaded",
                self.layers.len()
            );
        }
        let quick = self.cfg.hidden_act == "quick_gelu";
        let mut x = self.embed(pixels)?;
        for l in &self.layers[..idx] {
            x = l.forward(&x, self.cfg.num_attention_heads, None, quick)?;
        }
        Ok(x)
    }

    /// `pooler_output`: the class token of the last layer after `post_layernorm`,
    /// [batch, hidden].
    pub fn pooled(&self, pixels: &Tensor) -> Result<Tensor> {
        let Some(post) = &self.post_ln else {
            candle_core::bail!("the vision tower was loaded without its last layers");
        };
        let x = self.hidden_state(pixels, self.cfg.num_hidden_layers as i64)?;
        post.forward(&x.narrow(1, 0, 1)?.squeeze(1)?)
    }
}

/// `CLIPVisionModelWithProjection`, and the image half of `CLIPModel` (`get_image_features`):
/// the vision tower's pooled class token through `visual_projection`, a linear map without
/// bias, giving `image_embeds` [batch, projection_dim]. The `clip` package's and open_clip's
/// `encode_image` compute the same numbers (`ln_post(x[:, 0]) @ proj`, `proj` being the
/// transposed `visual_projection.weight`).
#[derive(Debug)]
pub struct ClipVisionModelWithProjection {
    pub vision: ClipVisionModel,
    /// [projection_dim, hidden].
    projection: Tensor,
}

impl ClipVisionModelWithProjection {
    /// Loads the whole tower from `vision` (the builder at `vision_model`) and the projection
    /// from `projection` (the builder at `visual_projection`) with `projection_dim` outputs.
    pub fn new(
        vision: VarBuilder,
        projection: VarBuilder,
        cfg: &ClipVisionConfig,
        projection_dim: usize,
    ) -> Result<Self> {
        let tower = ClipVisionModel::new(vision, cfg, None)?;
        let projection = projection.get((projection_dim, cfg.hidden_size), "weight")?;
        Ok(Self {
            vision: tower,
            projection,
        })
    }

    pub fn projection_dim(&self) -> usize {
        self.projection.dims()[0]
    }

    /// `image_embeds`: `pixels` [batch, channels, size, size] -> [batch, projection_dim].
    pub fn image_embeds(&self, pixels: &Tensor) -> Result<Tensor> {
        let pooled = self.vision.pooled(pixels)?;
        pooled.matmul(&self.projection.t()?)
    }
}
