//! Sentence embeddings in the sentence-transformers layout of all-MiniLM-L6-v2: a BERT encoder
//! (`config.json`, `model.safetensors`, `tokenizer.json`), mean pooling over the tokens the
//! attention mask keeps (`1_Pooling/config.json`), and L2 normalisation when `modules.json`
//! lists a `Normalize` module. Inputs longer than `max_seq_length`
//! (`sentence_bert_config.json`, 256 for MiniLM) are truncated, as sentence-transformers does.
//!
//! The encoder is `art-judges`' BERT ([`TextEncoder`], the text classifiers' encoder, golden-
//! tested against transformers), and each text runs alone, unpadded: an embedding never
//! depends on the other texts (sentence-transformers pads a batch and masks it; the numbers
//! agree to float rounding).

use crate::ModelError;
use art_judges::text::TextEncoder;
use art_nn::invalid;
use candle_core::DType;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

pub struct SentenceEmbedder {
    model: TextEncoder,
    tokenizer: Tokenizer,
    normalize: bool,
    name: String,
    dim: usize,
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .field("normalize", &self.normalize)
            .finish_non_exhaustive()
    }
}

/// The files of a sentence-transformers repository the embedder reads: the configs, the
/// tokenizer, `model.safetensors` and the pooling config (not the ONNX / OpenVINO exports or
/// the PyTorch `.bin` such repositories also carry).
pub fn embedder_files(names: &[String]) -> Vec<String> {
    let mut picked = art_hub::model_files(names);
    for f in ["vocab.txt", "1_Pooling/config.json"] {
        if names.iter().any(|n| n == f) {
            picked.push(f.to_string());
        }
    }
    picked.sort();
    picked.dedup();
    picked
}

fn json(dir: &Path, name: &str) -> Result<serde_json::Value, ModelError> {
    serde_json::from_slice(&art_hub::read(dir, name)?).map_err(|e| invalid(dir.join(name), e))
}

impl SentenceEmbedder {
    /// Loads a sentence-transformers folder on the CPU.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let model = TextEncoder::load_bert(dir)?;
        let pooling = json(dir, "1_Pooling/config.json")?;
        if pooling.get("pooling_mode_mean_tokens") != Some(&serde_json::Value::Bool(true)) {
            return Err(invalid(
                dir.join("1_Pooling/config.json"),
                "only mean pooling (pooling_mode_mean_tokens) is supported",
            ));
        }
        let normalize = json(dir, "modules.json")?.as_array().is_some_and(|m| {
            m.iter().any(|x| {
                x.get("type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.ends_with(".Normalize"))
            })
        });
        let max_len = match json(dir, "sentence_bert_config.json") {
            Ok(v) => v
                .get("max_seq_length")
                .and_then(|m| m.as_u64())
                .unwrap_or(512) as usize,
            Err(ModelError::Missing { .. }) => 512,
            Err(e) => return Err(e),
        };
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| {
            if tok_path.is_file() {
                invalid(tok_path.clone(), e)
            } else {
                ModelError::Missing {
                    path: tok_path.clone(),
                    what: "file".into(),
                }
            }
        })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| invalid(tok_path.clone(), e))?;
        tokenizer.with_padding(None);
        let name = dir.file_name().map_or("sentence embedder".into(), |n| {
            n.to_string_lossy().into_owned()
        });
        Ok(Self {
            tokenizer,
            normalize,
            name,
            dim: model.hidden_size(),
            model,
        })
    }

    /// Loads the model `spec` names: a folder, a hub id in the local hub cache, or a hub id
    /// downloaded into it ([`embedder_files`] only; `HF_HUB_OFFLINE=1` forbids that).
    pub fn resolve_and_load(spec: &str) -> Result<Self, ModelError> {
        let mut e = Self::load(&art_hub::fetch(spec, embedder_files)?)?;
        e.name = spec.to_string();
        Ok(e)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// One embedding per text, in order, each computed alone.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        texts.iter().map(|t| self.embed_one(t)).collect()
    }

    fn embed_one(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ModelError::Compute(format!("tokenizer: {e}")))?;
        let ids = enc.get_ids();
        if ids.is_empty() || ids.len() > self.model.max_positions() {
            return Err(ModelError::Compute(format!(
                "{} tokens: the model takes 1 to {}",
                ids.len(),
                self.model.max_positions()
            )));
        }
        // Mean over the tokens (all real: no padding), then sentence-transformers' Normalize
        // (torch.nn.functional.normalize: x / max(||x||, 1e-12)).
        let hidden = self.model.hidden(ids)?.to_dtype(DType::F32)?;
        let mut pooled = hidden.mean(1)?;
        if self.normalize {
            let norm = pooled
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            pooled = pooled.broadcast_div(&norm)?;
        }
        Ok(pooled.squeeze(0)?.to_vec1::<f32>()?)
    }
}
