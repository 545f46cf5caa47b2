//! The JSON configs of a diffusers pipeline folder, with diffusers' defaults for absent keys.
//! Values `art` does not implement are refused here, naming the file, key and value, rather
//! than silently rendering something else.

use crate::ModelError;
use art_nn::invalid;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// One value for every block, or a list with one per block (diffusers accepts both).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    pub fn get(&self, i: usize) -> usize {
        match self {
            Self::One(v) => *v,
            Self::Each(v) => v[i],
        }
    }
    fn len_ok(&self, n: usize) -> bool {
        match self {
            Self::One(_) => true,
            Self::Each(v) => v.len() == n,
        }
    }
}

fn d_true() -> bool {
    true
}
fn d_4() -> usize {
    4
}
fn d_32() -> usize {
    32
}
fn d_eps() -> f64 {
    1e-5
}
fn d_one() -> PerBlock {
    PerBlock::One(1)
}
fn d_2() -> PerBlock {
    PerBlock::One(2)
}
fn d_8() -> PerBlock {
    PerBlock::One(8)
}
fn d_1280() -> PerBlock {
    PerBlock::One(1280)
}
fn d_1f() -> f64 {
    1.0
}

/// `unet/config.json` (`UNet2DConditionModel`).
#[derive(Debug, Clone, Deserialize)]
pub struct UNetConfig {
    #[serde(default = "d_4")]
    pub in_channels: usize,
    #[serde(default = "d_4")]
    pub out_channels: usize,
    #[serde(default)]
    pub sample_size: Option<usize>,
    #[serde(default)]
    pub center_input_sample: bool,
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    pub down_block_types: Vec<String>,
    #[serde(default)]
    pub mid_block_type: Option<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    #[serde(default = "d_2")]
    pub layers_per_block: PerBlock,
    #[serde(default = "d_1f")]
    pub downsample_padding: f64,
    #[serde(default = "d_1f")]
    pub mid_block_scale_factor: f64,
    #[serde(default = "d_32")]
    pub norm_num_groups: usize,
    #[serde(default = "d_eps")]
    pub norm_eps: f64,
    #[serde(default = "d_1280")]
    pub cross_attention_dim: PerBlock,
    #[serde(default = "d_one")]
    pub transformer_layers_per_block: PerBlock,
    #[serde(default)]
    pub reverse_transformer_layers_per_block: Option<Vec<usize>>,
    /// The number of heads, despite its name (diffusers' legacy meaning, used when
    /// `num_attention_heads` is absent).
    #[serde(default = "d_8")]
    pub attention_head_dim: PerBlock,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    #[serde(default)]
    pub upcast_attention: bool,
    // Keys whose non-default values `art` refuses.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default)]
    pub encoder_hid_dim_type: Option<String>,
    #[serde(default)]
    pub time_embedding_type: Option<String>,
    #[serde(default)]
    pub resnet_time_scale_shift: Option<String>,
    #[serde(default)]
    pub only_cross_attention: Option<serde_json::Value>,
    #[serde(default)]
    pub dual_cross_attention: bool,
    #[serde(default)]
    pub act_fn: Option<String>,
    #[serde(default)]
    pub conv_in_kernel: Option<usize>,
    #[serde(default)]
    pub conv_out_kernel: Option<usize>,
    #[serde(default)]
    pub time_cond_proj_dim: Option<usize>,
    #[serde(default)]
    pub attention_type: Option<String>,
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
}

impl UNetConfig {
    /// Heads per down block (diffusers: `num_attention_heads or attention_head_dim`).
    pub fn heads(&self, i: usize) -> usize {
        self.num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .get(i)
    }

    pub fn check(&self, path: &Path) -> Result<(), ModelError> {
        let bad = |key: &str, v: &dyn std::fmt::Debug, want: &str| {
            Err(invalid(
                path,
                format!("`{key}` = {v:?} is not supported (art implements {want})"),
            ))
        };
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(invalid(
                path,
                "`block_out_channels`, `down_block_types` and `up_block_types` must have the \
                 same non-zero length",
            ));
        }
        for (key, v) in [
            ("layers_per_block", &self.layers_per_block),
            ("cross_attention_dim", &self.cross_attention_dim),
            (
                "transformer_layers_per_block",
                &self.transformer_layers_per_block,
            ),
            ("attention_head_dim", &self.attention_head_dim),
        ] {
            if !v.len_ok(n) {
                return Err(invalid(
                    path,
                    format!("`{key}` needs one value per block ({n})"),
                ));
            }
        }
        if let Some(h) = &self.num_attention_heads
            && !h.len_ok(n)
        {
            return Err(invalid(
                path,
                format!("`num_attention_heads` needs {n} values"),
            ));
        }
        if let Some(r) = &self.reverse_transformer_layers_per_block
            && r.len() != n
        {
            return Err(invalid(
                path,
                format!("`reverse_transformer_layers_per_block` needs {n} values"),
            ));
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
                return bad(
                    "down_block_types",
                    t,
                    "CrossAttnDownBlock2D and DownBlock2D",
                );
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                return bad("up_block_types", t, "CrossAttnUpBlock2D and UpBlock2D");
            }
        }
        if let Some(m) = &self.mid_block_type
            && m != "UNetMidBlock2DCrossAttn"
        {
            return bad("mid_block_type", m, "UNetMidBlock2DCrossAttn");
        }
        match self.addition_embed_type.as_deref() {
            None => {}
            Some("text_time")
                if self.addition_time_embed_dim.is_none()
                    || self.projection_class_embeddings_input_dim.is_none() =>
            {
                return Err(invalid(
                    path,
                    "`addition_embed_type` \"text_time\" needs `addition_time_embed_dim` and \
                     `projection_class_embeddings_input_dim`",
                ));
            }
            Some("text_time") => {}
            Some(o) => return bad("addition_embed_type", &o, "none and \"text_time\""),
        }
        if let Some(c) = &self.class_embed_type {
            return bad("class_embed_type", c, "none");
        }
        if let Some(n) = self.num_class_embeds {
            return bad(
                "num_class_embeds",
                &n,
                "none (class-conditioned UNets are not supported)",
            );
        }
        if let Some(c) = &self.encoder_hid_dim_type {
            return bad("encoder_hid_dim_type", c, "none");
        }
        if let Some(t) = self
            .time_embedding_type
            .as_deref()
            .filter(|t| *t != "positional")
        {
            return bad("time_embedding_type", &t, "\"positional\"");
        }
        if let Some(t) = self
            .resnet_time_scale_shift
            .as_deref()
            .filter(|t| *t != "default")
        {
            return bad("resnet_time_scale_shift", &t, "\"default\"");
        }
        if let Some(a) = self.act_fn.as_deref().filter(|a| *a != "silu") {
            return bad("act_fn", &a, "\"silu\"");
        }
        if let Some(k) = self.conv_in_kernel.filter(|k| *k != 3) {
            return bad("conv_in_kernel", &k, "3");
        }
        if let Some(k) = self.conv_out_kernel.filter(|k| *k != 3) {
            return bad("conv_out_kernel", &k, "3");
        }
        if let Some(d) = self.time_cond_proj_dim {
            return bad(
                "time_cond_proj_dim",
                &d,
                "none (LCM-distilled UNets are not supported)",
            );
        }
        if let Some(a) = self.attention_type.as_deref().filter(|a| *a != "default") {
            return bad("attention_type", &a, "\"default\"");
        }
        match &self.only_cross_attention {
            None | Some(serde_json::Value::Bool(false)) => {}
            Some(serde_json::Value::Array(a)) if a.iter().all(|x| x == false) => {}
            Some(v) => return bad("only_cross_attention", v, "false"),
        }
        if self.dual_cross_attention {
            return bad("dual_cross_attention", &true, "false");
        }
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c % self.norm_num_groups != 0 || c % self.heads(i) != 0 {
                return Err(invalid(
                    path,
                    format!(
                        "block {i}: {c} channels are not divisible by `norm_num_groups` \
                         {} and the block's {} heads",
                        self.norm_num_groups,
                        self.heads(i)
                    ),
                ));
            }
        }
        if self.downsample_padding != 1.0 && self.downsample_padding != 0.0 {
            return bad("downsample_padding", &self.downsample_padding, "0 and 1");
        }
        Ok(())
    }
}

fn d_vae_scale() -> f64 {
    0.18215
}
fn d_3() -> usize {
    3
}
fn d_blocks() -> Vec<usize> {
    vec![64]
}
fn d_1() -> usize {
    1
}

/// `vae/config.json` (`AutoencoderKL`).
#[derive(Debug, Clone, Deserialize)]
pub struct VaeConfig {
    #[serde(default = "d_3")]
    pub in_channels: usize,
    #[serde(default = "d_3")]
    pub out_channels: usize,
    #[serde(default = "d_blocks")]
    pub block_out_channels: Vec<usize>,
    #[serde(default = "d_1")]
    pub layers_per_block: usize,
    #[serde(default = "d_4")]
    pub latent_channels: usize,
    #[serde(default = "d_32")]
    pub norm_num_groups: usize,
    #[serde(default = "d_vae_scale")]
    pub scaling_factor: f64,
    /// SD3/Flux-style VAEs shift latents too; SD 1/2/XL have none.
    #[serde(default)]
    pub shift_factor: Option<f64>,
    #[serde(default = "d_true")]
    pub use_quant_conv: bool,
    #[serde(default = "d_true")]
    pub use_post_quant_conv: bool,
    #[serde(default)]
    pub mid_block_add_attention: Option<bool>,
}

impl VaeConfig {
    /// Pixels per latent cell.
    pub fn scale(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }

    pub fn check(&self, path: &Path) -> Result<(), ModelError> {
        if self.block_out_channels.is_empty() {
            return Err(invalid(path, "`block_out_channels` is empty"));
        }
        if self.in_channels != 3 || self.out_channels != 3 {
            return Err(invalid(
                path,
                "only RGB VAEs (3 channels in and out) are supported",
            ));
        }
        if self.shift_factor.is_some_and(|s| s != 0.0) {
            return Err(invalid(
                path,
                "`shift_factor` is not supported (SD 1/2/XL VAEs have none)",
            ));
        }
        if self.mid_block_add_attention == Some(false) {
            return Err(invalid(
                path,
                "`mid_block_add_attention` = false is not supported",
            ));
        }
        if let Some(c) = self
            .block_out_channels
            .iter()
            .find(|c| *c % self.norm_num_groups != 0)
        {
            return Err(invalid(
                path,
                format!(
                    "{c} channels are not divisible by `norm_num_groups` {}",
                    self.norm_num_groups
                ),
            ));
        }
        Ok(())
    }
}

fn d_77() -> usize {
    77
}
fn d_quick_gelu() -> String {
    "quick_gelu".into()
}
fn d_eos() -> u32 {
    2
}

/// `text_encoder*/config.json` (`CLIPTextModel` / `CLIPTextModelWithProjection`).
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "d_77")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    /// 2 in older configs, which makes transformers pool at the largest token id instead.
    #[serde(default = "d_eos")]
    pub eos_token_id: u32,
    #[serde(default)]
    pub projection_dim: Option<usize>,
}

impl ClipTextConfig {
    pub fn check(&self, path: &Path) -> Result<(), ModelError> {
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return Err(invalid(
                path,
                format!(
                    "`hidden_act` = {:?} is not supported (quick_gelu, gelu)",
                    self.hidden_act
                ),
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(invalid(
                path,
                "`hidden_size` is not divisible by `num_attention_heads`",
            ));
        }
        Ok(())
    }
}

/// `model_index.json`: which pipeline and which components.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelIndex {
    #[serde(rename = "_class_name")]
    pub class_name: String,
    #[serde(default)]
    pub force_zeros_for_empty_prompt: Option<bool>,
}

/// Reads and parses a JSON config, naming the file on any failure.
pub fn read_json<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<T, ModelError> {
    let bytes = art_hub::read(dir, name)?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(dir.join(name), e.to_string()))
}
