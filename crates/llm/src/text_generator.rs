//! [`TextGenerator`]: a causal LM with its tokenizer and generation settings, loaded from a
//! folder, the hub cache or a GGUF file (with an optional LoRA); what the Writer and Llama Guard
//! run. Also the generation settings of a role section and the identity fields they add, which
//! the Guide uses too.

use crate::ModelError;
use crate::generate::{
    EarlyStopping, GenOutput, GenRequest, GenerationConfig, StopCheck, generate,
};
use crate::{CausalLm, LlmTokenizer, LoadOptions, LoraAdapter};
use art_config::local::{EarlyStoppingSetting, GenerationSettings};
use art_core::{ModelIdentity, RoleError};
use candle_core::DType;
use std::path::{Path, PathBuf};

/// A causal LM with its tokenizer and generation settings: what the Writer and Llama Guard
/// run (the Guide runs its language model through the same generation stack).
#[derive(Debug)]
pub struct TextGenerator {
    pub lm: CausalLm,
    pub tokenizer: LlmTokenizer,
    pub generation: GenerationConfig,
    pub stop: Vec<String>,
    /// `safetensors` or `gguf`.
    pub format: &'static str,
    /// The hub snapshot (commit) the weights came from, where known.
    pub revision: Option<String>,
}

/// Stops when the decoded new text contains a stop string.
struct StopStrings<'a> {
    tokenizer: &'a LlmTokenizer,
    stop: &'a [String],
}

impl StopCheck for StopStrings<'_> {
    fn hit(&self, generated: &[u32]) -> bool {
        let text = self.tokenizer.decode(generated).unwrap_or_default();
        self.stop.iter().any(|s| text.contains(s.as_str()))
    }
}

pub(crate) fn eos_from_json(dir: &Path, name: &str) -> Option<Vec<u32>> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(name)).ok()?).ok()?;
    match v.get("eos_token_id")? {
        serde_json::Value::Number(n) => Some(vec![n.as_u64()? as u32]),
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_u64().map(|x| x as u32)).collect(),
        _ => None,
    }
}

impl TextGenerator {
    /// Loads `model` (a folder, a hub id in the local cache, or a `.gguf` file) with an
    /// optional adapter.
    pub fn load(
        model: &str,
        adapter: Option<&str>,
        check_adapter_base: bool,
        opts: &LoadOptions,
        generation: GenerationConfig,
        stop: Vec<String>,
    ) -> Result<Self, ModelError> {
        let adapter = match adapter {
            Some(a) => {
                let ad = LoraAdapter::load(&art_hub::fetch(a, art_hub::model_files)?)?;
                if check_adapter_base {
                    ad.check_base(model)?;
                }
                Some(ad)
            }
            None => None,
        };
        let path = PathBuf::from(model);
        let (lm, tokenizer, eos, format, revision) =
            if path.extension().is_some_and(|e| e == "gguf") {
                let (lm, ct) = CausalLm::load_gguf(&path, opts, adapter.as_ref())?;
                let tok = LlmTokenizer::from_gguf(&ct, &path)?;
                let eos = lm.config().eos_token_ids.clone();
                (lm, tok, eos, "gguf", None)
            } else {
                let dir = art_hub::fetch(model, art_hub::model_files)?;
                let lm = CausalLm::load_folder(&dir, opts, adapter.as_ref())?;
                let tok = LlmTokenizer::from_folder(&dir)?;
                let eos = eos_from_json(&dir, "generation_config.json")
                    .unwrap_or_else(|| lm.config().eos_token_ids.clone());
                (
                    lm,
                    tok,
                    eos,
                    "safetensors",
                    art_hub::snapshot_revision(&dir),
                )
            };
        let mut generation = generation;
        if generation.eos_token_ids.is_empty() {
            generation.eos_token_ids = eos;
        }
        generation
            .validate()
            .map_err(|e| ModelError::Compute(format!("generation settings: {e}")))?;
        if generation.num_beams > 1 && !stop.is_empty() {
            return Err(ModelError::Compute(
                "generation settings: stop strings are not supported with beam search (num_beams > 1)"
                    .into(),
            ));
        }
        Ok(Self {
            lm,
            tokenizer,
            generation,
            stop,
            format,
            revision,
        })
    }

    /// Generates for each text (seeded), returning the new text of each, cut before the
    /// first stop string. A text that cannot be tokenized fails alone.
    pub fn complete(&self, items: &[(String, u64)]) -> Vec<Result<String, RoleError>> {
        let encoded: Vec<Result<Vec<u32>, RoleError>> = items
            .iter()
            .map(|(t, _)| {
                self.tokenizer
                    .encode(t)
                    .map_err(|e| RoleError::new(e.to_string()))
            })
            .collect();
        let ok: Vec<usize> = (0..items.len()).filter(|&i| encoded[i].is_ok()).collect();
        let reqs: Vec<GenRequest<'_>> = ok
            .iter()
            .map(|&i| GenRequest::text(encoded[i].as_ref().expect("filtered"), items[i].1))
            .collect();
        let stop = StopStrings {
            tokenizer: &self.tokenizer,
            stop: &self.stop,
        };
        let stop: Option<&dyn StopCheck> = (!self.stop.is_empty()).then_some(&stop);
        let outs = match generate(&self.lm, &reqs, &self.generation, stop) {
            Ok(o) => o,
            Err(e) => return art_core::fail_batch(items.len(), &RoleError::new(e.to_string())),
        };
        let mut results: Vec<Result<String, RoleError>> = encoded
            .into_iter()
            .map(|e| e.map(|_| String::new()))
            .collect();
        for (&i, out) in ok.iter().zip(outs) {
            results[i] = self.text_of(&out);
        }
        results
    }

    fn text_of(&self, out: &GenOutput) -> Result<String, RoleError> {
        let text = self
            .tokenizer
            .decode(&out.tokens)
            .map_err(|e| RoleError::new(e.to_string()))?;
        let cut = self
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
            .unwrap_or(text.len());
        Ok(text[..cut].to_string())
    }

    /// The identity parameters that change outputs.
    pub fn identity(&self, kind: &str, model: &str, adapter: Option<&str>) -> ModelIdentity {
        let id = ModelIdentity::new(kind, model).with_param("format", self.format);
        let mut id = with_generation(id, self.lm.dtype(), &self.generation);
        if !self.stop.is_empty() {
            id = id.with_param("stop", format!("{:?}", self.stop));
        }
        id.revision = self.revision.clone();
        id.adapter = adapter.map(str::to_string);
        id
    }
}

/// `id` with the dtype, device and the generation settings that change outputs.
pub(crate) fn with_generation(
    id: ModelIdentity,
    dtype: DType,
    g: &GenerationConfig,
) -> ModelIdentity {
    let mut id = id
        .with_param("dtype", format!("{dtype:?}").to_lowercase())
        .with_param("device", "cpu")
        .with_param("num_beams", g.num_beams)
        .with_param("do_sample", g.do_sample)
        .with_param("max_new_tokens", g.max_new_tokens)
        .with_param("min_new_tokens", g.min_new_tokens)
        .with_param("repetition_penalty", g.repetition_penalty)
        .with_param("length_penalty", g.length_penalty)
        .with_param(
            "early_stopping",
            format!("{:?}", g.early_stopping).to_lowercase(),
        )
        .with_param("eos_token_ids", format!("{:?}", g.eos_token_ids));
    if g.do_sample {
        id = id
            .with_param("temperature", g.temperature)
            .with_param("top_k", g.top_k)
            .with_param("top_p", g.top_p);
    }
    id
}

/// The generation settings of a config section.
pub(crate) fn generation_of(c: &GenerationSettings) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: c.max_new_tokens,
        min_new_tokens: c.min_new_tokens,
        do_sample: c.do_sample,
        num_beams: c.num_beams,
        temperature: c.temperature as f32,
        top_k: c.top_k,
        top_p: c.top_p as f32,
        repetition_penalty: c.repetition_penalty as f32,
        length_penalty: c.length_penalty as f32,
        early_stopping: match c.early_stopping {
            EarlyStoppingSetting::Flag(false) => EarlyStopping::Heuristic,
            EarlyStoppingSetting::Flag(true) => EarlyStopping::Always,
            EarlyStoppingSetting::Word(_) => EarlyStopping::Never,
        },
        eos_token_ids: c.eos_token_ids.clone().unwrap_or_default(),
        score_tokens: vec![],
    }
}
