//! Building a [`LlavaNext`] from a checkpoint folder (or hub id) in either layout, with an
//! optional LoRA adapter. An original-layout LoRA (LLaVA's `train_mem.py --lora_enable`)
//! is a PEFT adapter for the language model plus `non_lora_trainables.bin`, a PyTorch pickle
//! of the other trained weights (the projector, the image newline, ...): those replace the
//! checkpoint's tensors first and the LoRA is merged on top, the order of LLaVA's
//! `load_pretrained_model`.

use super::config::{Layout, LlavaConfig};
use super::model::LlavaNext;
use crate::ModelError;
use crate::{CausalLm, LoadOptions, LoraAdapter};
use art_nn::clip::ClipVisionModel;
use art_nn::invalid;
use art_nn::tensors::{OverlaidIndex, Overlay, SafetensorsIndex, read_pytorch};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where each part's tensors sit in a checkpoint.
struct Names {
    /// Prefix replacing `model.` of the Hugging Face Llama names.
    lm: &'static str,
    lm_head: &'static str,
    /// Candidate prefixes of the CLIP tower, the first holding it wins (transformers 5
    /// saves the tower without the hub files' `vision_model.`).
    vision: &'static [&'static str],
    proj1: &'static str,
    proj2: &'static str,
    newline: &'static str,
}

const ORIGINAL: Names = Names {
    lm: "model.",
    lm_head: "lm_head.weight",
    vision: &["model.vision_tower.vision_tower.vision_model"],
    proj1: "model.mm_projector.0",
    proj2: "model.mm_projector.2",
    newline: "model.image_newline",
};

/// The llava-hf files on the hub (transformers 4.x names; transformers 5 saves these too).
const HF4: Names = Names {
    lm: "language_model.model.",
    lm_head: "language_model.lm_head.weight",
    vision: &["vision_tower.vision_model", "vision_tower"],
    proj1: "multi_modal_projector.linear_1",
    proj2: "multi_modal_projector.linear_2",
    newline: "image_newline",
};

/// transformers 5's module names (what a state dict of its model in memory uses).
const HF5: Names = Names {
    lm: "model.language_model.",
    lm_head: "lm_head.weight",
    vision: &["model.vision_tower.vision_model", "model.vision_tower"],
    proj1: "model.multi_modal_projector.linear_1",
    proj2: "model.multi_modal_projector.linear_2",
    newline: "model.image_newline",
};

/// The original layout's `mm_vision_tower`: a folder inside or beside the model folder, a
/// folder path, or a hub id (only its config and processor files are fetched unless the checkpoint lacks the
/// tower's weights).
fn tower_dir(model_dir: &Path, tower: &str, with_weights: bool) -> Result<PathBuf, ModelError> {
    let p = PathBuf::from(tower);
    if p.is_relative() {
        let inside = model_dir.join(tower);
        let sibling = model_dir.parent().map(|d| d.join(tower));
        if let Some(d) = [Some(inside), sibling]
            .into_iter()
            .flatten()
            .find(|d| d.is_dir())
        {
            return Ok(d);
        }
    }
    if p.is_dir() {
        return Ok(p);
    }
    Ok(art_hub::fetch(tower, |names| {
        names
            .iter()
            .filter(|n| {
                matches!(n.as_str(), "config.json" | "preprocessor_config.json")
                    || (with_weights && n.ends_with(".safetensors") && !n.contains('/'))
                    || (with_weights && n.as_str() == "model.safetensors.index.json")
            })
            .cloned()
            .collect()
    })?)
}

/// The trained non-LoRA weights of an original-layout LoRA, keyed by checkpoint name
/// (LLaVA strips `base_model.` and then one `model.` when names start `model.model.`).
fn non_lora(path: &Path) -> Result<Overlay, ModelError> {
    let raw = read_pytorch(path)?;
    let strip_base: Vec<(String, candle_core::Tensor)> = raw
        .into_iter()
        .map(|(k, t)| {
            (
                k.strip_prefix("base_model.")
                    .map(str::to_string)
                    .unwrap_or(k),
                t,
            )
        })
        .collect();
    let double = strip_base
        .iter()
        .any(|(k, _)| k.starts_with("model.model."));
    let map: HashMap<String, candle_core::Tensor> = strip_base
        .into_iter()
        .map(|(k, t)| {
            let k = match (double, k.strip_prefix("model.")) {
                (true, Some(rest)) => rest.to_string(),
                _ => k,
            };
            (k, t)
        })
        .collect();
    Ok(Overlay::new(map, path.to_path_buf()))
}

/// A loaded LLaVA-NeXT with where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub model: LlavaNext,
    pub dir: PathBuf,
    /// The adapter folder, when one was merged.
    pub adapter_dir: Option<PathBuf>,
}

/// Loads `model` (folder or hub id) with an optional adapter (folder or hub id).
pub fn load(
    model: &str,
    adapter: Option<&str>,
    check_adapter_base: bool,
    opts: &LoadOptions,
) -> Result<Loaded, ModelError> {
    let dir = art_hub::fetch(model, art_hub::model_files)?;
    let cfg_path = dir.join("config.json");
    let idx = SafetensorsIndex::open_folder(&dir, "model")?;
    let mut tower: Option<PathBuf> = None;
    let mut cfg = LlavaConfig::from_json(&art_hub::read(&dir, "config.json")?, &cfg_path, |t| {
        let has_tower = tower_prefix(&idx, ORIGINAL.vision).is_some();
        let td = tower_dir(&dir, t, !has_tower)?;
        let bytes = art_hub::read(&td, "config.json")?;
        let v = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(td.join("config.json"), e.to_string()))?;
        tower = Some(td);
        Ok(v)
    })?;
    let processor_dir = match cfg.layout {
        Layout::Hf => Some(dir.clone()),
        Layout::Original => tower.clone(),
    };
    if let Some(pd) = processor_dir
        && pd.join("preprocessor_config.json").is_file()
    {
        let p = pd.join("preprocessor_config.json");
        cfg.read_processor(&art_hub::read(&pd, "preprocessor_config.json")?, &p)?;
    }
    let names = match cfg.layout {
        Layout::Original => &ORIGINAL,
        Layout::Hf if idx.contains("language_model.model.embed_tokens.weight") => &HF4,
        Layout::Hf => &HF5,
    };

    let (adapter, adapter_dir, overlay) = match adapter {
        None => (None, None, Overlay::default()),
        Some(a) => {
            let adir = art_hub::fetch(a, art_hub::model_files)?;
            let mut ad = LoraAdapter::load(&adir)?;
            if check_adapter_base {
                ad.check_base(model)?;
            }
            if cfg.layout == Layout::Hf {
                // PEFT on the transformers model names the language model under its wrapper.
                ad.rename_modules(|m| {
                    for p in ["language_model.model.", "model.language_model."] {
                        if let Some(rest) = m.strip_prefix(p) {
                            return format!("model.{rest}");
                        }
                    }
                    m.strip_prefix("language_model.").unwrap_or(m).to_string()
                });
            }
            let nl = adir.join("non_lora_trainables.bin");
            let overlay = if nl.is_file() {
                if cfg.layout == Layout::Hf {
                    return Err(invalid(
                        &nl,
                        "non_lora_trainables.bin belongs to the original LLaVA layout (liuhaotian/...), but the model is in the llava-hf layout",
                    ));
                }
                non_lora(&nl)?
            } else {
                Overlay::default()
            };
            (Some(ad), Some(adir), overlay)
        }
    };
    let overlay = Arc::new(overlay);
    let idx = Arc::new(idx);

    let lm_prefix = names.lm;
    let lm_head = names.lm_head;
    let rename = move |hf: &str| -> String {
        if hf == "lm_head.weight" {
            lm_head.to_string()
        } else {
            match hf.strip_prefix("model.") {
                Some(rest) => format!("{lm_prefix}{rest}"),
                None => hf.to_string(),
            }
        }
    };
    let lm = CausalLm::load_mapped(
        cfg.text.clone(),
        &idx,
        &rename,
        (!overlay.is_empty()).then_some(&*overlay),
        opts,
        adapter.as_ref(),
    )?;

    let vb = VarBuilder::from_backend(
        Box::new(OverlaidIndex {
            index: idx.clone(),
            overlay: overlay.clone(),
        }),
        opts.dtype,
        opts.device.clone(),
    );
    let needed = feature_layers(&cfg)?;
    let vision = if let Some(prefix) = tower_prefix(&idx, names.vision) {
        ClipVisionModel::new(vb.pp(prefix), &cfg.vision, Some(needed))
    } else {
        let td = tower.as_ref().ok_or_else(|| {
            invalid(
                idx.path(),
                format!(
                    "no vision tower weights under `{}`",
                    names.vision.join("` or `")
                ),
            )
        })?;
        let tidx = Arc::new(SafetensorsIndex::open_folder(td, "model")?);
        let tvb = VarBuilder::from_backend(
            Box::new(OverlaidIndex {
                index: tidx,
                overlay: overlay.clone(),
            }),
            opts.dtype,
            opts.device.clone(),
        );
        ClipVisionModel::new(tvb.pp("vision_model"), &cfg.vision, Some(needed))
    }
    .map_err(|e| invalid(idx.path(), e.to_string()))?;
    let (dv, dt) = (cfg.vision.hidden_size, cfg.text.hidden_size);
    let part = |r: candle_core::Result<candle_nn::Linear>| {
        r.map_err(|e| invalid(idx.path(), e.to_string()))
    };
    let proj1 = part(candle_nn::linear(dv, dt, vb.pp(names.proj1)))?;
    let proj2 = part(candle_nn::linear(dt, dt, vb.pp(names.proj2)))?;
    let newline = vb
        .get(dt, names.newline)
        .map_err(|e| invalid(idx.path(), e.to_string()))?;
    let unused = overlay.unused();
    if let Some(first) = unused.first() {
        return Err(invalid(
            &overlay.source,
            format!(
                "{} tensor(s) match no weight of the model, e.g. `{first}`",
                unused.len()
            ),
        ));
    }
    Ok(Loaded {
        model: LlavaNext {
            cfg,
            vision,
            proj1,
            proj2,
            newline,
            lm,
        },
        dir,
        adapter_dir,
    })
}

/// The first of `candidates` under which the checkpoint holds a CLIP tower.
fn tower_prefix(idx: &SafetensorsIndex, candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .copied()
        .find(|p| idx.contains(&format!("{p}.embeddings.patch_embedding.weight")))
}

/// Encoder layers the feature layer needs.
fn feature_layers(cfg: &LlavaConfig) -> Result<usize, ModelError> {
    let total = cfg.vision.num_hidden_layers as i64;
    let l = cfg.feature_layer;
    let idx = if l < 0 { total + 1 + l } else { l };
    if !(0..=total).contains(&idx) {
        return Err(ModelError::Compute(format!(
            "vision feature layer {l} is outside a {total}-layer tower"
        )));
    }
    Ok(idx as usize)
}
