//! A LLaVA-NeXT checkpoint's configuration, from either layout:
//!
//! * **llava-hf** (`model_type = "llava_next"`, transformers' `LlavaNextForConditionalGeneration`):
//!   `text_config`, `vision_config`, `image_grid_pinpoints` as `[height, width]`, the
//!   processor in `preprocessor_config.json`;
//! * **original** (`liuhaotian/llava-v1.6-*`, `model_type = "llava_mistral"` or
//!   `"llava_llama"`): the language model's keys at the top level, `mm_*` keys for the vision
//!   tower (named by `mm_vision_tower`, whose own config gives its shape) and the projector,
//!   `image_grid_pinpoints` as `[width, height]` (LLaVA's `select_best_resolution` reads
//!   them so; the published lists are symmetric, so both readings agree there).
//!
//! Values `art` does not implement are refused with the key named.

use crate::LlmConfig;
use crate::ModelError;
use art_nn::clip::ClipVisionConfig;
use art_nn::invalid;
use serde_json::Value;
use std::path::Path;

/// Which checkpoint layout a folder holds (it decides the tensor names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// transformers' layout (`llava-hf/*`).
    Hf,
    /// The LLaVA repository's layout (`liuhaotian/*`).
    Original,
}

/// Which vision-tower tokens feed the projector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSelect {
    /// Patch tokens only (the class token dropped): `default` / `patch`.
    Patch,
    /// Class and patch tokens: `full` / `cls_patch`.
    Full,
}

/// The image processor's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub rescale: f64,
}

impl Default for ProcessorConfig {
    /// CLIP's (`OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`, 1/255).
    fn default() -> Self {
        Self {
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
            rescale: 1.0 / 255.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LlavaConfig {
    pub layout: Layout,
    pub text: LlmConfig,
    pub vision: ClipVisionConfig,
    /// The original layout's `mm_vision_tower` (where its config came from).
    pub vision_tower: Option<String>,
    /// Candidate resolutions as (height, width).
    pub pinpoints: Vec<(usize, usize)>,
    /// `hidden_states` index of the vision tower (-2 for LLaVA-1.6).
    pub feature_layer: i64,
    pub select: FeatureSelect,
    /// The llava-hf image token id (the original layout has none in its vocabulary).
    pub image_token_id: Option<u32>,
    pub processor: ProcessorConfig,
}

/// transformers' `MistralConfig` defaults for the keys a llava-hf `text_config` leaves out.
fn mistral_defaults(text: &mut serde_json::Map<String, Value>) {
    let defaults = [
        ("vocab_size", Value::from(32000)),
        ("hidden_size", Value::from(4096)),
        ("intermediate_size", Value::from(14336)),
        ("num_hidden_layers", Value::from(32)),
        ("num_attention_heads", Value::from(32)),
        ("num_key_value_heads", Value::from(8)),
        ("max_position_embeddings", Value::from(4096 * 32)),
        ("rms_norm_eps", Value::from(1e-6)),
        ("rope_theta", Value::from(10000.0)),
        ("sliding_window", Value::from(4096)),
    ];
    for (k, v) in defaults {
        text.entry(k).or_insert(v);
    }
}

/// transformers' `LlamaConfig` defaults (llava-v1.6-vicuna's language model).
fn llama_defaults(text: &mut serde_json::Map<String, Value>) {
    let defaults = [
        ("vocab_size", Value::from(32000)),
        ("hidden_size", Value::from(4096)),
        ("intermediate_size", Value::from(11008)),
        ("num_hidden_layers", Value::from(32)),
        ("num_attention_heads", Value::from(32)),
        ("rms_norm_eps", Value::from(1e-6)),
    ];
    for (k, v) in defaults {
        text.entry(k).or_insert(v);
    }
}

fn text_config(
    mut text: serde_json::Map<String, Value>,
    path: &Path,
) -> Result<LlmConfig, ModelError> {
    match text.get("model_type").and_then(Value::as_str) {
        Some("mistral") => mistral_defaults(&mut text),
        Some("llama") | None => llama_defaults(&mut text),
        Some(other) => {
            return Err(invalid(
                path,
                format!(
                    "the language model's model_type `{other}` is not supported (llama, mistral)"
                ),
            ));
        }
    }
    let bytes = serde_json::to_vec(&Value::Object(text)).expect("a JSON map serializes");
    LlmConfig::from_hf_json(&bytes, path)
}

fn pinpoints(
    v: &Value,
    key: &str,
    swap: bool,
    path: &Path,
) -> Result<Vec<(usize, usize)>, ModelError> {
    let bad = || {
        invalid(
            path,
            format!("`{key}` must be a list of [a, b] pairs of pixels"),
        )
    };
    let list = v
        .get(key)
        .ok_or_else(|| invalid(path, format!("`{key}` is missing")))?;
    let list = list.as_array().ok_or_else(bad)?;
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let p = p.as_array().ok_or_else(bad)?;
        let (Some(a), Some(b), 2) = (
            p.first().and_then(Value::as_u64),
            p.get(1).and_then(Value::as_u64),
            p.len(),
        ) else {
            return Err(bad());
        };
        if a == 0 || b == 0 {
            return Err(bad());
        }
        out.push(if swap {
            (b as usize, a as usize)
        } else {
            (a as usize, b as usize)
        });
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

fn expect_str(
    v: &Value,
    key: &str,
    allowed: &[&str],
    default: &str,
    path: &Path,
) -> Result<String, ModelError> {
    let s = match v.get(key) {
        None | Some(Value::Null) => default.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(invalid(
                path,
                format!("`{key}` must be a string, got {other}"),
            ));
        }
    };
    if !allowed.contains(&s.as_str()) {
        return Err(invalid(
            path,
            format!(
                "`{key}` = {s:?} is not supported (supported: {})",
                allowed.join(", ")
            ),
        ));
    }
    Ok(s)
}

fn int(v: &Value, key: &str, default: i64, path: &Path) -> Result<i64, ModelError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => x
            .as_i64()
            .ok_or_else(|| invalid(path, format!("`{key}` must be an integer, got {x}"))),
    }
}

impl LlavaConfig {
    /// Reads a `config.json` (`path` names it in errors). The original layout's vision
    /// config comes from `vision_tower_config`, called with `mm_vision_tower`'s value.
    pub fn from_json(
        bytes: &[u8],
        path: &Path,
        vision_tower_config: impl FnOnce(&str) -> Result<Value, ModelError>,
    ) -> Result<Self, ModelError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(path, e.to_string()))?;
        if let Some(text) = v.get("text_config").and_then(Value::as_object) {
            Self::hf(&v, text.clone(), path)
        } else if v.get("mm_vision_tower").is_some() {
            let tower = v
                .get("mm_vision_tower")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(path, "`mm_vision_tower` must be a string"))?
                .to_string();
            let vision = vision_tower_config(&tower)?;
            Self::original(&v, tower, &vision, path)
        } else {
            Err(invalid(
                path,
                "not a LLaVA-NeXT config: expected `text_config` (llava-hf) or `mm_vision_tower` (the original LLaVA layout)",
            ))
        }
    }

    fn hf(
        v: &Value,
        text: serde_json::Map<String, Value>,
        path: &Path,
    ) -> Result<Self, ModelError> {
        match v.get("model_type").and_then(Value::as_str) {
            Some("llava_next") => {}
            other => {
                return Err(invalid(
                    path,
                    format!(
                        "model_type {other:?} is not supported (expected llava_next, LLaVA-NeXT)"
                    ),
                ));
            }
        }
        let text = text_config(text, path)?;
        let vision =
            ClipVisionConfig::from_value(v.get("vision_config").unwrap_or(&Value::Null), path)?;
        expect_str(v, "projector_hidden_act", &["gelu"], "gelu", path)?;
        if v.get("multimodal_projector_bias").and_then(Value::as_bool) == Some(false) {
            return Err(invalid(
                path,
                "`multimodal_projector_bias` = false is not supported",
            ));
        }
        let select = match expect_str(
            v,
            "vision_feature_select_strategy",
            &["default", "full"],
            "default",
            path,
        )?
        .as_str()
        {
            "full" => FeatureSelect::Full,
            _ => FeatureSelect::Patch,
        };
        let feature_layer = match v.get("vision_feature_layer") {
            Some(Value::Array(_)) => {
                return Err(invalid(
                    path,
                    "a list of `vision_feature_layer`s is not supported (one layer)",
                ));
            }
            _ => int(v, "vision_feature_layer", -2, path)?,
        };
        let image_token_id = v
            .get("image_token_id")
            .or_else(|| v.get("image_token_index"))
            .and_then(Value::as_u64)
            .map(|x| x as u32)
            .or(Some(32000));
        Ok(Self {
            layout: Layout::Hf,
            text,
            vision,
            vision_tower: None,
            pinpoints: pinpoints(v, "image_grid_pinpoints", false, path)?,
            feature_layer,
            select,
            image_token_id,
            processor: ProcessorConfig::default(),
        })
    }

    fn original(v: &Value, tower: String, vision: &Value, path: &Path) -> Result<Self, ModelError> {
        let mut text = v
            .as_object()
            .cloned()
            .ok_or_else(|| invalid(path, "config.json is not an object"))?;
        let lm_type = match text.get("model_type").and_then(Value::as_str) {
            Some("llava_mistral") => "mistral",
            Some("llava_llama") | Some("llava") | None => "llama",
            Some(other) => {
                return Err(invalid(
                    path,
                    format!("model_type `{other}` is not supported (llava_mistral, llava_llama)"),
                ));
            }
        };
        text.insert("model_type".into(), Value::from(lm_type));
        let text = text_config(text, path)?;
        let vision = ClipVisionConfig::from_value(vision, path)?;
        expect_str(v, "mm_projector_type", &["mlp2x_gelu"], "linear", path)?;
        expect_str(v, "image_aspect_ratio", &["anyres"], "square", path)?;
        expect_str(v, "mm_patch_merge_type", &["spatial_unpad"], "flat", path)?;
        let select = match expect_str(
            v,
            "mm_vision_select_feature",
            &["patch", "cls_patch"],
            "patch",
            path,
        )?
        .as_str()
        {
            "cls_patch" => FeatureSelect::Full,
            _ => FeatureSelect::Patch,
        };
        for key in ["mm_use_im_start_end", "mm_use_im_patch_token"] {
            if v.get(key).and_then(Value::as_bool) == Some(true) {
                return Err(invalid(path, format!("`{key}` = true is not supported")));
            }
        }
        if let Some(h) = v.get("mm_hidden_size").and_then(Value::as_u64)
            && h as usize != vision.hidden_size
        {
            return Err(invalid(
                path,
                format!(
                    "`mm_hidden_size` {h} differs from the vision tower's hidden_size {}",
                    vision.hidden_size
                ),
            ));
        }
        Ok(Self {
            layout: Layout::Original,
            text,
            vision,
            vision_tower: Some(tower),
            pinpoints: pinpoints(v, "image_grid_pinpoints", true, path)?,
            feature_layer: int(v, "mm_vision_select_layer", -2, path)?,
            select,
            image_token_id: None,
            processor: ProcessorConfig::default(),
        })
    }

    /// Reads `image_mean`, `image_std`, `rescale_factor` from a `preprocessor_config.json`
    /// and checks that its sizes are the vision tower's (the tiles are cut at that size).
    pub fn read_processor(&mut self, bytes: &[u8], path: &Path) -> Result<(), ModelError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(path, e.to_string()))?;
        let three = |key: &str, default: [f32; 3]| -> Result<[f32; 3], ModelError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Array(a)) if a.len() == 3 && a.iter().all(Value::is_number) => {
                    Ok([0, 1, 2].map(|i| a[i].as_f64().unwrap_or(0.0) as f32))
                }
                Some(other) => Err(invalid(
                    path,
                    format!("`{key}` must be three numbers, got {other}"),
                )),
            }
        };
        let d = ProcessorConfig::default();
        self.processor = ProcessorConfig {
            mean: three("image_mean", d.mean)?,
            std: three("image_std", d.std)?,
            rescale: v
                .get("rescale_factor")
                .and_then(Value::as_f64)
                .unwrap_or(d.rescale),
        };
        let s = self.vision.image_size as u64;
        let sizes = [
            v.pointer("/size/shortest_edge"),
            v.pointer("/size/height"),
            v.pointer("/size/width"),
            v.pointer("/crop_size/height"),
            v.pointer("/crop_size/width"),
        ];
        if let Some(bad) = sizes.iter().flatten().find(|x| x.as_u64() != Some(s)) {
            return Err(invalid(
                path,
                format!(
                    "processor size {bad} differs from the vision tower's image_size {s}; only tiles of the tower's size are supported"
                ),
            ));
        }
        if v.get("image_grid_pinpoints").is_some() {
            self.pinpoints = pinpoints(&v, "image_grid_pinpoints", false, path)?;
        }
        Ok(())
    }
}
