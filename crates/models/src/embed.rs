//! Sentence embeddings in the sentence-transformers layout of all-MiniLM-L6-v2: a BERT encoder
//! (`config.json`, `model.safetensors`, `tokenizer.json`), mean pooling over the tokens the
//! attention mask keeps (`1_Pooling/config.json`), and L2 normalisation when `modules.json`
//! lists a `Normalize` module. Inputs longer than `max_seq_length`
//! (`sentence_bert_config.json`, 256 for MiniLM) are truncated, as sentence-transformers does.

use crate::ModelError;
use art_nn::invalid;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::Path;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Texts per forward pass.
const BATCH: usize = 32;

pub struct SentenceEmbedder {
    model: BertModel,
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
        let config: Config = serde_json::from_slice(&art_hub::read(dir, "config.json")?)
            .map_err(|e| invalid(dir.join("config.json"), e))?;
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
        tokenizer.with_padding(Some(PaddingParams::default()));
        let bytes = art_hub::read(dir, "model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
            .map_err(|e| invalid(dir.join("model.safetensors"), e))?;
        let model =
            BertModel::load(vb, &config).map_err(|e| invalid(dir.join("model.safetensors"), e))?;
        let name = dir.file_name().map_or("sentence embedder".into(), |n| {
            n.to_string_lossy().into_owned()
        });
        Ok(Self {
            model,
            tokenizer,
            normalize,
            name,
            dim: config.hidden_size,
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

    /// One embedding per text, in order. Texts are batched by length (longest first, as
    /// sentence-transformers does), so little compute goes to padding; an embedding does not
    /// depend on its batch.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].chars().count()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, v) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Compute(format!("tokenizer: {e}")))?;
        let len = enc.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            enc.iter().flat_map(|e| f(e).iter().copied()).collect()
        };
        let shape = (texts.len(), len);
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), shape, &Device::Cpu)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), shape, &Device::Cpu)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), shape, &Device::Cpu)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the tokens the mask keeps (sentence-transformers clamps the count at 1e-9).
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mut pooled = summed.broadcast_div(&counts)?;
        if self.normalize {
            // torch.nn.functional.normalize: x / max(||x||, 1e-12).
            let norm = pooled
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            pooled = pooled.broadcast_div(&norm)?;
        }
        Ok(pooled.to_vec2::<f32>()?)
    }
}
