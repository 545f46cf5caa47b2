//! The post-norm BERT-family encoder (BERT, RoBERTa, DistilBERT): embeddings and layers up to
//! the last hidden states, as transformers computes them for one unpadded sequence. The text
//! classifiers put their heads on it; the reports' sentence embedder (all-MiniLM-L6-v2, a
//! `BertModel`) pools it.

use crate::ModelError;
use crate::classifier::{Activation, Weights, self_attention};
use art_nn::invalid;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear};
use serde_json::Value;
use std::path::Path;

use super::tokenizer::Vocabulary;

/// The model families of the encoder (and of [`super::TextClassifier`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextArchitecture {
    Bert,
    Roberta,
    DistilBert,
}

impl TextArchitecture {
    pub(super) const SUPPORTED: &'static str = "RobertaForSequenceClassification, \
        DistilBertForSequenceClassification, BertForSequenceClassification";

    pub(super) fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "BertForSequenceClassification" => TextArchitecture::Bert,
            "RobertaForSequenceClassification" => TextArchitecture::Roberta,
            "DistilBertForSequenceClassification" => TextArchitecture::DistilBert,
            _ => return None,
        })
    }

    /// The vocabulary files a folder without `tokenizer.json` has.
    pub(super) fn vocabulary(self) -> Vocabulary {
        match self {
            TextArchitecture::Roberta => Vocabulary::ByteLevelBpe,
            TextArchitecture::Bert | TextArchitecture::DistilBert => Vocabulary::WordPiece,
        }
    }

    /// transformers' `base_model_prefix`.
    pub(super) fn prefix(self) -> &'static str {
        match self {
            TextArchitecture::Bert => "bert",
            TextArchitecture::Roberta => "roberta",
            TextArchitecture::DistilBert => "distilbert",
        }
    }
}

/// The encoder sizes of a `config.json` (BERT/RoBERTa keys, or DistilBERT's).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EncoderConfig {
    pub(super) vocab: usize,
    pub(super) hidden: usize,
    pub(super) layers: usize,
    pub(super) heads: usize,
    pub(super) inner: usize,
    pub(super) act: Activation,
    pub(super) positions: usize,
    pub(super) type_vocab: usize,
    pub(super) eps: f64,
    pub(super) pad: u32,
}

fn usize_key(cfg: &Value, key: &str, default: usize, path: &Path) -> Result<usize, ModelError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| invalid(path, format!("`{key}` = {v} is not a non-negative integer"))),
    }
}

impl EncoderConfig {
    pub(super) fn parse(
        cfg: &Value,
        arch: TextArchitecture,
        path: &Path,
    ) -> Result<Self, ModelError> {
        let u = |k: &str, d: usize| usize_key(cfg, k, d, path);
        let c = match arch {
            TextArchitecture::DistilBert => {
                let act = cfg
                    .get("activation")
                    .and_then(Value::as_str)
                    .unwrap_or("gelu");
                EncoderConfig {
                    vocab: u("vocab_size", 30522)?,
                    hidden: u("dim", 768)?,
                    layers: u("n_layers", 6)?,
                    heads: u("n_heads", 12)?,
                    inner: u("hidden_dim", 3072)?,
                    act: Activation::parse(act, "activation", path)?,
                    positions: u("max_position_embeddings", 512)?,
                    type_vocab: 0,
                    eps: 1e-12,
                    pad: u("pad_token_id", 0)? as u32,
                }
            }
            TextArchitecture::Bert | TextArchitecture::Roberta => {
                let roberta = arch == TextArchitecture::Roberta;
                let act = cfg
                    .get("hidden_act")
                    .and_then(Value::as_str)
                    .unwrap_or("gelu");
                if let Some(p) = cfg.get("position_embedding_type").and_then(Value::as_str)
                    && p != "absolute"
                {
                    return Err(invalid(
                        path,
                        format!(
                            "`position_embedding_type` = {p:?} is not supported (absolute only)"
                        ),
                    ));
                }
                EncoderConfig {
                    vocab: u("vocab_size", if roberta { 50265 } else { 30522 })?,
                    hidden: u("hidden_size", 768)?,
                    layers: u("num_hidden_layers", 12)?,
                    heads: u("num_attention_heads", 12)?,
                    inner: u("intermediate_size", 3072)?,
                    act: Activation::parse(act, "hidden_act", path)?,
                    positions: u("max_position_embeddings", 512)?,
                    type_vocab: u("type_vocab_size", 2)?,
                    eps: cfg
                        .get("layer_norm_eps")
                        .and_then(Value::as_f64)
                        .unwrap_or(1e-12),
                    pad: u("pad_token_id", if roberta { 1 } else { 0 })? as u32,
                }
            }
        };
        if c.heads == 0 || !c.hidden.is_multiple_of(c.heads) {
            return Err(invalid(
                path,
                format!(
                    "the hidden size {} is not divisible by the {} attention heads",
                    c.hidden, c.heads
                ),
            ));
        }
        Ok(c)
    }
}

/// One post-norm encoder layer: `ln1(x + attn(x))`, then `ln2(h + down(act(up(h))))`.
struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln1: LayerNorm,
    up: Linear,
    down: Linear,
    ln2: LayerNorm,
}

impl Layer {
    fn load(
        w: &Weights,
        p: &str,
        arch: TextArchitecture,
        c: &EncoderConfig,
    ) -> Result<Self, ModelError> {
        let d = c.hidden;
        let lin = |name: &str, i: usize, o: usize| w.linear(&format!("{p}.{name}"), i, o, true);
        let ln = |name: &str| w.layer_norm(&format!("{p}.{name}"), d, c.eps);
        // Each family's tensor names of q, k, v, o, ln1, up, down, ln2.
        let [q, k, v, o, ln1, up, down, ln2] = match arch {
            TextArchitecture::DistilBert => [
                "attention.q_lin",
                "attention.k_lin",
                "attention.v_lin",
                "attention.out_lin",
                "sa_layer_norm",
                "ffn.lin1",
                "ffn.lin2",
                "output_layer_norm",
            ],
            TextArchitecture::Bert | TextArchitecture::Roberta => [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            ],
        };
        Ok(Layer {
            q: lin(q, d, d)?,
            k: lin(k, d, d)?,
            v: lin(v, d, d)?,
            o: lin(o, d, d)?,
            ln1: ln(ln1)?,
            up: lin(up, d, c.inner)?,
            down: lin(down, c.inner, d)?,
            ln2: ln(ln2)?,
        })
    }

    fn forward(&self, x: &Tensor, heads: usize, act: Activation) -> candle_core::Result<Tensor> {
        let a = self_attention(x, &self.q, &self.k, &self.v, heads)?;
        let h = self.ln1.forward(&(self.o.forward(&a)? + x)?)?;
        let f = self.down.forward(&act.apply(&self.up.forward(&h)?)?)?;
        self.ln2.forward(&(f + &h)?)
    }
}

/// The encoder: embeddings (word, position, token type 0) and the layers.
pub struct TextEncoder {
    arch: TextArchitecture,
    pub(super) cfg: EncoderConfig,
    /// The tensor-name prefix the checkpoint uses (`bert.`, `roberta.`, or none).
    pub(super) prefix: String,
    word: Embedding,
    position: Embedding,
    /// Token type 0's embedding (BERT, RoBERTa), [hidden].
    token_type: Option<Tensor>,
    embed_ln: LayerNorm,
    layers: Vec<Layer>,
    device: Device,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder")
            .field("architecture", &self.arch)
            .field("config", &self.cfg)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TextEncoder {
    /// The encoder of a checkpoint whose tensors `w` holds, with or without the family's
    /// prefix (a `*ForSequenceClassification` has it, a bare `BertModel` does not).
    pub(super) fn load(
        w: &Weights,
        arch: TextArchitecture,
        c: EncoderConfig,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let root = arch.prefix();
        let p = if w.contains(&format!("{root}.embeddings.word_embeddings.weight")) {
            format!("{root}.")
        } else if w.contains("embeddings.word_embeddings.weight") {
            String::new()
        } else {
            format!("{root}.")
        };
        let d = c.hidden;
        let emb = |name: &str, rows: usize| -> Result<Embedding, ModelError> {
            Ok(Embedding::new(
                w.get(&format!("{p}embeddings.{name}.weight"), &[rows, d])?,
                d,
            ))
        };
        let word = emb("word_embeddings", c.vocab)?;
        let position = emb("position_embeddings", c.positions)?;
        let token_type = if arch == TextArchitecture::DistilBert {
            None
        } else {
            let t = w.get(
                &format!("{p}embeddings.token_type_embeddings.weight"),
                &[c.type_vocab, d],
            )?;
            Some(t.get(0)?)
        };
        let embed_ln = w.layer_norm(&format!("{p}embeddings.LayerNorm"), d, c.eps)?;
        let layer_root = match arch {
            TextArchitecture::DistilBert => format!("{p}transformer.layer"),
            _ => format!("{p}encoder.layer"),
        };
        let layers = (0..c.layers)
            .map(|i| Layer::load(w, &format!("{layer_root}.{i}"), arch, &c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            arch,
            cfg: c,
            prefix: p,
            word,
            position,
            token_type,
            embed_ln,
            layers,
            device: device.clone(),
        })
    }

    /// A BERT encoder folder (`config.json` of a `BertModel`, `model.safetensors` or
    /// `pytorch_model.bin`), in f32 on the CPU: the sentence embedder's model.
    pub fn load_bert(dir: &Path) -> Result<Self, ModelError> {
        let cfg_path = dir.join("config.json");
        let cfg = crate::classifier::read_json(dir, "config.json")?;
        let c = EncoderConfig::parse(&cfg, TextArchitecture::Bert, &cfg_path)?;
        let w = Weights::open(dir, DType::F32, &Device::Cpu)?;
        Self::load(&w, TextArchitecture::Bert, c, &Device::Cpu)
    }

    /// The width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.cfg.hidden
    }

    /// The positions the model has.
    pub fn max_positions(&self) -> usize {
        self.cfg.positions
    }

    /// The last hidden states of one unpadded token sequence, [1, len, hidden].
    pub fn hidden(&self, ids: &[u32]) -> Result<Tensor, ModelError> {
        let n = ids.len();
        let positions: Vec<u32> = match self.arch {
            // create_position_ids_from_input_ids: padding_idx + cumsum of the non-pad mask.
            TextArchitecture::Roberta => {
                let pad = self.cfg.pad;
                let mut count = 0;
                ids.iter()
                    .map(|&t| {
                        if t == pad {
                            pad
                        } else {
                            count += 1;
                            pad + count
                        }
                    })
                    .collect()
            }
            _ => (0..n as u32).collect(),
        };
        let ids_t = Tensor::from_vec(ids.to_vec(), (1, n), &self.device)?;
        let pos_t = Tensor::from_vec(positions, (1, n), &self.device)?;
        let mut x = (self.word.forward(&ids_t)? + self.position.forward(&pos_t)?)?;
        if let Some(t) = &self.token_type {
            x = x.broadcast_add(t)?;
        }
        let mut x = self.embed_ln.forward(&x)?;
        for l in &self.layers {
            x = l.forward(&x, self.cfg.heads, self.cfg.act)?;
        }
        Ok(x)
    }
}
