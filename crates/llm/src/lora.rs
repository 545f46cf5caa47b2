//! PEFT LoRA adapters (`adapter_config.json` + `adapter_model.safetensors` or `.bin`), merged
//! into the base weights at load: `W' = W + s * B @ A` with `s = alpha / r` (or
//! `alpha / sqrt(r)` for rsLoRA), per-module rank and alpha from `rank_pattern` and
//! `alpha_pattern`. Every adapter tensor must land on a module of the base model with the
//! right shape; anything PEFT would compute differently from a plain merge (DoRA, trained
//! biases, `modules_to_save`, embedding adapters) is refused with a message rather than
//! silently dropped.

use crate::ModelError;
use art_nn::invalid;
use art_nn::tensors::{SafetensorsIndex, read_pytorch};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
struct AdapterConfig {
    peft_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    rank_pattern: BTreeMap<String, usize>,
    #[serde(default)]
    alpha_pattern: BTreeMap<String, f64>,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    #[serde(default)]
    lora_bias: bool,
    #[serde(default)]
    layer_replication: Option<serde_json::Value>,
    #[serde(default)]
    trainable_token_indices: Option<serde_json::Value>,
}

/// A loaded adapter: the weight delta of every module it targets, in f32.
#[derive(Debug)]
pub struct LoraAdapter {
    pub path: PathBuf,
    /// `base_model_name_or_path` from the adapter config.
    pub base_model: Option<String>,
    /// Module name (e.g. `model.layers.0.self_attn.q_proj`) -> delta [out, in].
    deltas: HashMap<String, Tensor>,
    /// Whether the config asked for `fan_in_fan_out`; PEFT ignores it for `nn.Linear`
    /// targets (with a warning), and so do we.
    pub fan_in_fan_out_ignored: bool,
}

/// PEFT's pattern keys match a module whose name is the key or ends with `.key`.
fn pattern_value<T: Copy>(patterns: &BTreeMap<String, T>, module: &str) -> Option<T> {
    patterns
        .iter()
        .find(|(k, _)| module == k.as_str() || module.ends_with(&format!(".{k}")))
        .map(|(_, v)| *v)
}

impl LoraAdapter {
    /// Loads the adapter folder `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let cfg_path = dir.join("adapter_config.json");
        let bytes = art_hub::read(dir, "adapter_config.json")?;
        let cfg: AdapterConfig = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&cfg_path, format!("not a PEFT adapter config: {e}")))?;
        if let Some(t) = &cfg.peft_type
            && t != "LORA"
        {
            return Err(invalid(
                &cfg_path,
                format!("peft_type `{t}` is not supported (expected LORA)"),
            ));
        }
        if cfg.use_dora {
            return Err(invalid(
                &cfg_path,
                "DoRA adapters (use_dora) are not supported",
            ));
        }
        let unsupported = [
            ("lora_bias", cfg.lora_bias),
            (
                "layer_replication",
                cfg.layer_replication.as_ref().is_some_and(|v| !v.is_null()),
            ),
            (
                "trainable_token_indices",
                cfg.trainable_token_indices
                    .as_ref()
                    .is_some_and(|v| !v.is_null()),
            ),
        ];
        if let Some((key, _)) = unsupported.iter().find(|(_, on)| *on) {
            return Err(invalid(
                &cfg_path,
                format!("`{key}` adapters are not supported"),
            ));
        }
        if let Some(b) = &cfg.bias
            && b != "none"
        {
            return Err(invalid(
                &cfg_path,
                format!("bias = `{b}` is not supported (expected none)"),
            ));
        }
        for p in cfg.rank_pattern.keys().chain(cfg.alpha_pattern.keys()) {
            if p.contains(['*', '^', '$', '(', '[', '|', '\\', '+', '?']) {
                return Err(invalid(
                    &cfg_path,
                    format!(
                        "regular-expression pattern `{p}` in rank_pattern/alpha_pattern is not supported; use module names"
                    ),
                ));
            }
        }

        let raw = read_adapter_tensors(dir)?;
        let weights_path = raw.0;
        let mut a: HashMap<String, Tensor> = HashMap::new();
        let mut b: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in raw.1 {
            let n = name
                .strip_prefix("base_model.model.")
                .unwrap_or(&name)
                .replace(".default.", ".");
            if let Some(m) = n.strip_suffix(".lora_A.weight") {
                a.insert(m.to_string(), t);
            } else if let Some(m) = n.strip_suffix(".lora_B.weight") {
                b.insert(m.to_string(), t);
            } else if n.contains("lora_embedding") {
                return Err(invalid(
                    &weights_path,
                    format!("`{name}`: LoRA on embeddings is not supported"),
                ));
            } else {
                let why = if cfg.modules_to_save.as_ref().is_some_and(|m| !m.is_empty()) {
                    " (modules_to_save: fully trained modules are not supported)"
                } else {
                    ""
                };
                return Err(invalid(
                    &weights_path,
                    format!("`{name}` is not a LoRA A/B weight{why}"),
                ));
            }
        }
        if a.is_empty() {
            return Err(invalid(&weights_path, "the adapter holds no LoRA weights"));
        }
        let mut deltas = HashMap::new();
        for (module, la) in a {
            let lb = b.remove(&module).ok_or_else(|| {
                invalid(
                    &weights_path,
                    format!("`{module}` has lora_A but no lora_B"),
                )
            })?;
            let r = pattern_value(&cfg.rank_pattern, &module).unwrap_or(cfg.r);
            let alpha = pattern_value(&cfg.alpha_pattern, &module).unwrap_or(cfg.lora_alpha);
            let (ra, _) = la.dims2()?;
            let (_, rb) = lb.dims2()?;
            if ra != r || rb != r {
                return Err(invalid(
                    &weights_path,
                    format!(
                        "`{module}`: lora_A/lora_B have rank {ra}/{rb}, the config says r = {r}"
                    ),
                ));
            }
            let scale = if cfg.use_rslora {
                alpha / (r as f64).sqrt()
            } else {
                alpha / r as f64
            };
            let delta = (lb.to_dtype(DType::F32)?.matmul(&la.to_dtype(DType::F32)?)? * scale)?;
            deltas.insert(module, delta);
        }
        if let Some(module) = b.keys().next() {
            return Err(invalid(
                &weights_path,
                format!("`{module}` has lora_B but no lora_A"),
            ));
        }
        Ok(Self {
            path: dir.to_path_buf(),
            base_model: cfg.base_model_name_or_path.filter(|s| !s.is_empty()),
            deltas,
            fan_in_fan_out_ignored: cfg.fan_in_fan_out,
        })
    }

    /// Refuses an adapter trained for another base model: the last path component of the
    /// adapter's `base_model_name_or_path` must equal that of `model` (hub id or folder),
    /// case-insensitively. Adapters that name no base pass.
    pub fn check_base(&self, model: &str) -> Result<(), ModelError> {
        let Some(base) = &self.base_model else {
            return Ok(());
        };
        let last = |s: &str| {
            s.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(s)
                .to_lowercase()
        };
        if last(base) == last(model) {
            return Ok(());
        }
        Err(invalid(
            self.path.join("adapter_config.json"),
            format!(
                "the adapter was trained on `{base}`, not `{model}` (set check_adapter_base = false to merge it anyway)"
            ),
        ))
    }

    /// Renames the targeted modules (`f` gives the base model's name for an adapter's):
    /// an adapter trained on a wrapper model names the language model's modules under the
    /// wrapper's prefix.
    pub(crate) fn rename_modules(&mut self, f: impl Fn(&str) -> String) {
        self.deltas = std::mem::take(&mut self.deltas)
            .into_iter()
            .map(|(k, v)| (f(&k), v))
            .collect();
    }

    /// Module names the adapter targets.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.deltas.keys().map(String::as_str)
    }

    pub(crate) fn delta(&self, module: &str) -> Option<&Tensor> {
        self.deltas.get(module)
    }
}

fn read_adapter_tensors(dir: &Path) -> Result<(PathBuf, Vec<(String, Tensor)>), ModelError> {
    let st = dir.join("adapter_model.safetensors");
    if st.is_file() {
        let idx = SafetensorsIndex::open_files(std::slice::from_ref(&st))?;
        let mut out = Vec::new();
        let names: Vec<String> = idx.names().map(str::to_string).collect();
        for n in names {
            let t = idx.load(&n, DType::F32, &Device::Cpu)?;
            out.push((n, t));
        }
        return Ok((st, out));
    }
    let bin = dir.join("adapter_model.bin");
    if bin.is_file() {
        return Ok((bin.clone(), read_pytorch(&bin)?));
    }
    Err(ModelError::Missing {
        path: dir.join("adapter_model.safetensors"),
        what: "adapter weights (adapter_model.safetensors or adapter_model.bin)".into(),
    })
}

/// Applies the adapter's deltas to the named base weights as they are built, and reports
/// the adapter modules that matched nothing.
pub(crate) struct Merger<'a> {
    adapter: Option<&'a LoraAdapter>,
    used: std::collections::HashSet<String>,
}

impl<'a> Merger<'a> {
    pub(crate) fn new(adapter: Option<&'a LoraAdapter>) -> Self {
        Self {
            adapter,
            used: Default::default(),
        }
    }

    /// The delta for `module` checked against the base weight's shape.
    pub(crate) fn delta(
        &mut self,
        module: &str,
        base_shape: &[usize],
    ) -> Result<Option<&'a Tensor>, ModelError> {
        let Some(ad) = self.adapter else {
            return Ok(None);
        };
        let Some(d) = ad.delta(module) else {
            return Ok(None);
        };
        if d.dims() != base_shape {
            return Err(invalid(
                &ad.path,
                format!(
                    "`{module}`: the adapter's update is {:?}, the base weight is {base_shape:?} (adapter for another model size?)",
                    d.dims()
                ),
            ));
        }
        self.used.insert(module.to_string());
        Ok(Some(d))
    }

    pub(crate) fn finish(self) -> Result<(), ModelError> {
        let Some(ad) = self.adapter else {
            return Ok(());
        };
        let mut unknown: Vec<&str> = ad.modules().filter(|m| !self.used.contains(*m)).collect();
        unknown.sort();
        if let Some(first) = unknown.first() {
            return Err(invalid(
                &ad.path,
                format!(
                    "{} adapter module(s) match no module of the base model, e.g. `{first}`",
                    unknown.len()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_keys_match_module_suffixes() {
        let mut p = BTreeMap::new();
        p.insert("q_proj".to_string(), 8usize);
        assert_eq!(
            pattern_value(&p, "model.layers.0.self_attn.q_proj"),
            Some(8)
        );
        assert_eq!(pattern_value(&p, "model.layers.0.self_attn.qq_proj"), None);
    }

    #[test]
    fn base_names_compare_by_last_component() {
        let ad = LoraAdapter {
            path: PathBuf::from("a"),
            base_model: Some("/data/models/Llama-2-7b-hf/".into()),
            deltas: HashMap::new(),
            fan_in_fan_out_ignored: false,
        };
        assert!(ad.check_base("meta-llama/Llama-2-7b-hf").is_ok());
        let e = ad
            .check_base("mistralai/Mistral-7B-v0.1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Llama-2-7b-hf") && e.contains("check_adapter_base"),
            "{e}"
        );
    }
}
