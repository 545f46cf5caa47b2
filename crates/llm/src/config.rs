//! The architecture hyper-parameters of a Llama-family causal LM, read from a Hugging Face
//! `config.json` (`model_type` llama or mistral) or from GGUF metadata (`llama.*` keys).

use crate::ModelError;
use art_nn::invalid;
use candle_core::quantized::gguf_file;
use serde::Deserialize;
use std::path::Path;

/// How rotary position frequencies are scaled (`rope_scaling` of `config.json`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Positions divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    /// Mistral's sliding attention window; `None` = full causal attention.
    pub sliding_window: Option<usize>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
    /// `llama` or `mistral` (GGUF models report `llama`).
    pub model_type: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

#[derive(Deserialize)]
struct RawRopeScaling {
    #[serde(alias = "type")]
    rope_type: Option<String>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<f64>,
    /// transformers 5 writes `rope_parameters` (theta included) instead of `rope_theta` and
    /// `rope_scaling`.
    rope_theta: Option<f64>,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    rope_scaling: Option<RawRopeScaling>,
    rope_parameters: Option<RawRopeScaling>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    sliding_window: Option<usize>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<OneOrMany>,
    pad_token_id: Option<u32>,
    hidden_act: Option<String>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}

impl LlmConfig {
    /// Parses a `config.json`; `path` names the file in errors.
    pub fn from_hf_json(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|e| invalid(path, e.to_string()))?;
        let model_type = raw.model_type.unwrap_or_else(|| "llama".into());
        if !matches!(model_type.as_str(), "llama" | "mistral") {
            return Err(invalid(
                path,
                format!(
                    "model_type `{model_type}` is not a Llama-family model (expected llama or mistral)"
                ),
            ));
        }
        if let Some(act) = &raw.hidden_act
            && act != "silu"
        {
            return Err(invalid(
                path,
                format!("hidden_act `{act}` is not supported (expected silu)"),
            ));
        }
        if raw.num_attention_heads == 0 || !raw.hidden_size.is_multiple_of(raw.num_attention_heads)
        {
            return Err(invalid(
                path,
                "hidden_size must be a multiple of num_attention_heads",
            ));
        }
        let kv = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        if kv == 0 || !raw.num_attention_heads.is_multiple_of(kv) {
            return Err(invalid(
                path,
                "num_attention_heads must be a multiple of num_key_value_heads",
            ));
        }
        let mut rope_theta = raw.rope_theta;
        let rope = match raw.rope_parameters {
            Some(p) => {
                rope_theta = p.rope_theta.unwrap_or(rope_theta);
                Some(p)
            }
            None => raw.rope_scaling,
        };
        let rope_scaling = match rope {
            None => None,
            Some(r) => rope_scaling(r).map_err(|d| invalid(path, d))?,
        };
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads: kv,
            head_dim: raw
                .head_dim
                .unwrap_or(raw.hidden_size / raw.num_attention_heads),
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings: raw.max_position_embeddings,
            tie_word_embeddings: raw.tie_word_embeddings,
            attention_bias: raw.attention_bias,
            mlp_bias: raw.mlp_bias,
            sliding_window: if model_type == "mistral" {
                raw.sliding_window
            } else {
                None
            },
            bos_token_id: raw.bos_token_id,
            eos_token_ids: match raw.eos_token_id {
                None => vec![],
                Some(OneOrMany::One(e)) => vec![e],
                Some(OneOrMany::Many(v)) => v,
            },
            pad_token_id: raw.pad_token_id,
            model_type,
        })
    }

    /// Reads the `llama.*` metadata of a GGUF file.
    pub fn from_gguf(ct: &gguf_file::Content, path: &Path) -> Result<Self, ModelError> {
        let arch = md_str(ct, "general.architecture").unwrap_or("llama");
        if arch != "llama" {
            return Err(invalid(
                path,
                format!("GGUF architecture `{arch}` is not supported (expected llama)"),
            ));
        }
        let u = |key: &str| -> Result<usize, ModelError> {
            ct.metadata
                .get(key)
                .and_then(|v| {
                    v.to_u32()
                        .ok()
                        .map(|x| x as usize)
                        .or(v.to_u64().ok().map(|x| x as usize))
                })
                .ok_or_else(|| {
                    invalid(
                        path,
                        format!("GGUF metadata `{key}` missing or not an integer"),
                    )
                })
        };
        let f = |key: &str| ct.metadata.get(key).and_then(|v| v.to_f32().ok());
        let heads = u("llama.attention.head_count")?;
        let hidden = u("llama.embedding_length")?;
        let vocab = match u("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => ct
                .metadata
                .get("tokenizer.ggml.tokens")
                .and_then(|t| t.to_vec().ok())
                .map(|t| t.len())
                .ok_or_else(|| invalid(path, "GGUF metadata has no vocabulary size"))?,
        };
        let tok = |key: &str| ct.metadata.get(key).and_then(|v| v.to_u32().ok());
        Ok(Self {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: u("llama.feed_forward_length")?,
            num_hidden_layers: u("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: u("llama.attention.head_count_kv").unwrap_or(heads),
            head_dim: u("llama.rope.dimension_count")
                .map(|d| d.max(hidden / heads))
                .unwrap_or(hidden / heads),
            rms_norm_eps: f("llama.attention.layer_norm_rms_epsilon").unwrap_or(1e-5) as f64,
            rope_theta: f("llama.rope.freq_base").unwrap_or(10_000.0) as f64,
            rope_scaling: None,
            max_position_embeddings: u("llama.context_length").unwrap_or(2048),
            tie_word_embeddings: !ct.tensor_infos.contains_key("output.weight"),
            attention_bias: false,
            mlp_bias: false,
            sliding_window: None,
            bos_token_id: tok("tokenizer.ggml.bos_token_id"),
            eos_token_ids: tok("tokenizer.ggml.eos_token_id").into_iter().collect(),
            pad_token_id: tok("tokenizer.ggml.padding_token_id"),
            model_type: "llama".into(),
        })
    }
}

fn md_str<'a>(ct: &'a gguf_file::Content, key: &str) -> Option<&'a str> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .map(|s| s.as_str())
}

fn rope_scaling(r: RawRopeScaling) -> Result<Option<RopeScaling>, String> {
    let kind = r.rope_type.as_deref().unwrap_or("default");
    let need = |v: Option<f64>, name: &str| {
        v.ok_or_else(|| format!("rope_scaling of type `{kind}` needs `{name}`"))
    };
    match kind {
        "default" => Ok(None),
        "linear" => Ok(Some(RopeScaling::Linear {
            factor: need(r.factor, "factor")?,
        })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: need(r.factor, "factor")?,
            low_freq_factor: need(r.low_freq_factor, "low_freq_factor")?,
            high_freq_factor: need(r.high_freq_factor, "high_freq_factor")?,
            original_max_position_embeddings: need(
                r.original_max_position_embeddings,
                "original_max_position_embeddings",
            )?,
        })),
        other => Err(format!(
            "rope_scaling type `{other}` is not supported (expected default, linear or llama3)"
        )),
    }
}

/// The inverse rotary frequencies, as transformers computes them (in f64 here, rounded to f32
/// like torch's float32 buffer).
pub(crate) fn inv_freq(cfg: &LlmConfig) -> Vec<f32> {
    let d = cfg.head_dim;
    let base: Vec<f64> = (0..d)
        .step_by(2)
        .map(|i| 1.0 / cfg.rope_theta.powf(i as f64 / d as f64))
        .collect();
    let scaled: Vec<f64> = match &cfg.rope_scaling {
        None => base,
        Some(RopeScaling::Linear { factor }) => base.iter().map(|f| f / factor).collect(),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        }) => {
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    };
    scaled.into_iter().map(|f| f as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<LlmConfig, ModelError> {
        LlmConfig::from_hf_json(json.as_bytes(), Path::new("config.json"))
    }

    const BASE: &str = r#""vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2"#;

    #[test]
    fn reads_llama_and_mistral_configs() {
        let c = parse(&format!(
            r#"{{"model_type": "llama", {BASE}, "eos_token_id": [1, 2]}}"#
        ))
        .unwrap();
        assert_eq!((c.num_key_value_heads, c.head_dim), (2, 4));
        assert_eq!(c.eos_token_ids, vec![1, 2]);
        let m = parse(&format!(
            r#"{{"model_type": "mistral", {BASE}, "num_key_value_heads": 1, "sliding_window": 4096}}"#
        ))
        .unwrap();
        assert_eq!((m.num_key_value_heads, m.sliding_window), (1, Some(4096)));
    }

    #[test]
    fn rejects_what_it_cannot_run() {
        let e = parse(&format!(r#"{{"model_type": "gpt2", {BASE}}}"#)).unwrap_err();
        assert!(e.to_string().contains("gpt2"), "{e}");
        let e = parse(&format!(
            r#"{{"model_type": "llama", {BASE}, "rope_scaling": {{"type": "yarn", "factor": 2.0}}}}"#
        ))
        .unwrap_err();
        assert!(e.to_string().contains("yarn"), "{e}");
        let e = parse(r#"{"model_type": "llama"}"#).unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
        let e = parse(&format!(r#"{{{BASE}, "hidden_act": "gelu"}}"#)).unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
    }

    #[test]
    fn reads_transformers_5_rope_parameters() {
        let c = parse(&format!(
            r#"{{{BASE}, "rope_parameters": {{"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}}}}"#
        ))
        .unwrap();
        assert_eq!(c.rope_theta, 500.0);
        assert_eq!(c.rope_scaling, Some(RopeScaling::Linear { factor: 2.0 }));
        let c = parse(&format!(
            r#"{{{BASE}, "rope_parameters": {{"rope_type": "default", "rope_theta": 7.0}}}}"#
        ))
        .unwrap();
        assert_eq!((c.rope_theta, c.rope_scaling), (7.0, None));
    }

    #[test]
    fn llama3_scaling_keeps_high_and_scales_low_frequencies() {
        let mut c = parse(&format!(r#"{{{BASE}}}"#)).unwrap();
        c.head_dim = 64;
        c.rope_theta = 500_000.0;
        let plain = inv_freq(&c);
        c.rope_scaling = Some(RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        });
        let scaled = inv_freq(&c);
        assert_eq!(plain[0], scaled[0], "highest frequency unchanged");
        assert!(
            (scaled[31] - plain[31] / 8.0).abs() < 1e-12,
            "lowest scaled by factor"
        );
    }
}
