//! Prompt judges on transformers sequence classifiers, as transformers' text-classification
//! pipeline computes them: `RobertaForSequenceClassification`
//! (`SkolkovoInstitute/roberta_toxicity_classifier`,
//! `AdamCodd/distilroberta-nsfw-prompt-stable-diffusion`),
//! `DistilBertForSequenceClassification` (`martin-ha/toxic-comment-model`) and
//! `BertForSequenceClassification`.
//!
//! * **Encoder**: `art`'s own post-norm BERT encoder on candle tensors, one module for the three
//!   families (they differ only in tensor names, token types and positions): RoBERTa counts
//!   positions from `pad_token_id + 1` over the non-padding tokens, BERT from 0 with token type
//!   0, DistilBERT from 0 without token types. Heads: RoBERTa's `classifier.dense` + tanh +
//!   `classifier.out_proj` on `<s>`; DistilBERT's `pre_classifier` + ReLU + `classifier` on the
//!   first token; BERT's pooler (dense + tanh on `[CLS]`) + `classifier`.
//! * **Probabilities**: softmax over the labels, or a sigmoid per label when `problem_type` is
//!   `multi_label_classification` or there is one label (the pipeline's rule); `regression`
//!   models are refused. Labels come from `config.json` `id2label`.
//! * **Tokenizer**: `tokenizer.json` when the folder has one, used as the file says (as
//!   `tokenizers` and transformers 4 use it; transformers 5 keeps the file's vocabulary, merges
//!   and post-processor but rebuilds the normalizer and pre-tokenizer from
//!   `tokenizer_config.json`, the same tokens whenever the two files agree, as files written
//!   by transformers do); else RoBERTa's byte-level BPE from `vocab.json` + `merges.txt`, or
//!   BERT's WordPiece from `vocab.txt` (`do_lower_case`, `strip_accents`,
//!   `tokenize_chinese_chars` from `tokenizer_config.json`), built as transformers 5's
//!   `RobertaTokenizer` / `BertTokenizer` build them. Special tokens come from
//!   `tokenizer_config.json` (its `added_tokens_decoder`) and `special_tokens_map.json`
//!   (whose flags, like RoBERTa's `<mask>` `lstrip`, are kept).
//! * **Truncation**: like `truncation=True`, to `min(model_max_length of
//!   tokenizer_config.json, the positions the model has)` tokens, special tokens included; the
//!   positions are `max_position_embeddings`, less `pad_token_id + 1` for RoBERTa (514 - 2 =
//!   512 for the real models). A model without `model_max_length` is truncated to its
//!   positions (transformers would not truncate it and then fail on a long prompt).
//! * **Batches**: every prompt runs alone (no padding), so a prompt's score never depends on
//!   the others in its batch (candle's CPU matmuls round differently for different row
//!   counts); a prompt that fails fails alone.
//! * **Weights**: `model.safetensors` (or a sharded index), else `pytorch_model.bin` (older
//!   hub repositories often have only that); legacy `LayerNorm.gamma/beta` names are read as
//!   `weight/bias`.
//!
//! The judge ([`TextClassifierJudge`], kind `text-classifier`): score = the summed
//! probabilities of the unsafe labels (for a multi-label model, the largest of them), label
//! `Unsafe` when score >= threshold. The unsafe labels are set by `unsafe_labels`, or by
//! default the labels named (case-insensitively) `toxic`, `nsfw`, `unsafe`, `offensive`, `hate`,
//! or `LABEL_1` of a model whose labels are exactly `LABEL_0`, `LABEL_1`.
//!
//! The pieces shared with the image classifiers of [`super::vit`] (weights, attention,
//! settings, labels, scores, and the judge itself: [`ClassifierJudge`] over the
//! [`Classifier`] trait) live here too.

use crate::tensors::Checkpoint;
use crate::{ModelError, weights};
use art_config::local::Dtype;
use art_core::{JudgeScore, Label, ModelIdentity, PromptJudge, RoleError};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationParams};

// ---------------------------------------------------------------------------------------------
// Shared with the image classifiers.

pub(crate) fn invalid(path: impl Into<PathBuf>, detail: impl ToString) -> ModelError {
    ModelError::Invalid {
        path: path.into(),
        detail: detail.to_string(),
    }
}

/// A model folder's JSON file, named in errors.
pub(crate) fn read_json(dir: &Path, name: &str) -> Result<Value, ModelError> {
    serde_json::from_slice(&weights::read(dir, name)?).map_err(|e| invalid(dir.join(name), e))
}

/// The files of a hub repository a classifier judge needs: what [`crate::hub::model_files`]
/// picks (JSON configs, `tokenizer.json`, safetensors), the tokenizer vocabularies
/// (`vocab.json`, `merges.txt`, `vocab.txt`) and, when the repository has no safetensors
/// weights, `pytorch_model.bin`.
pub fn classifier_files(names: &[String]) -> Vec<String> {
    let mut picked = crate::hub::model_files(names);
    let has = |f: &str| names.iter().any(|n| n == f);
    let safetensors = has("model.safetensors") || has("model.safetensors.index.json");
    for f in ["vocab.json", "merges.txt", "vocab.txt"] {
        if has(f) {
            picked.push(f.to_string());
        }
    }
    if !safetensors && has("pytorch_model.bin") {
        picked.push("pytorch_model.bin".to_string());
    }
    picked.sort();
    picked.dedup();
    picked
}

/// A model folder's weights: `model.safetensors` (single or sharded), else
/// `pytorch_model.bin`, in the model's dtype on its device. Every error names the file and the
/// tensor.
pub(crate) struct Weights {
    checkpoint: Checkpoint,
    dtype: DType,
    device: Device,
}

impl Weights {
    pub(crate) fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Self, ModelError> {
        let mut checkpoint = Checkpoint::open_folder(dir)?;
        if let Checkpoint::Map { tensors, .. } = &mut checkpoint {
            // Checkpoints of old transformers versions name layer norms gamma/beta.
            *tensors = std::mem::take(tensors)
                .into_iter()
                .map(|(k, t)| {
                    let k = if let Some(s) = k.strip_suffix(".gamma") {
                        format!("{s}.weight")
                    } else if let Some(s) = k.strip_suffix(".beta") {
                        format!("{s}.bias")
                    } else {
                        k
                    };
                    (k, t)
                })
                .collect();
        }
        Ok(Self {
            checkpoint,
            dtype,
            device: device.clone(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.checkpoint.path()
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.checkpoint.contains(name)
    }

    pub(crate) fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.checkpoint.shape(name)
    }

    /// The tensor `name`, which must have `shape`, in the model's dtype on its device.
    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let Some(found) = self.shape_of(name) else {
            return Err(ModelError::Missing {
                path: self.path().to_path_buf(),
                what: format!("tensor `{name}`"),
            });
        };
        if found != shape {
            return Err(invalid(
                self.path(),
                format!("tensor `{name}` has shape {found:?}, the model's config needs {shape:?}"),
            ));
        }
        self.checkpoint.load(name, self.dtype, &self.device)
    }

    pub(crate) fn linear(
        &self,
        prefix: &str,
        inputs: usize,
        outputs: usize,
        bias: bool,
    ) -> Result<Linear, ModelError> {
        let w = self.get(&format!("{prefix}.weight"), &[outputs, inputs])?;
        let b = if bias {
            Some(self.get(&format!("{prefix}.bias"), &[outputs])?)
        } else {
            None
        };
        Ok(Linear::new(w, b))
    }

    pub(crate) fn layer_norm(
        &self,
        prefix: &str,
        dim: usize,
        eps: f64,
    ) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm::new(
            self.get(&format!("{prefix}.weight"), &[dim])?,
            self.get(&format!("{prefix}.bias"), &[dim])?,
            eps,
        ))
    }
}

/// transformers' `ACT2FN` entries the classifiers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `gelu`: the exact (erf) GELU.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    Relu,
    Silu,
    QuickGelu,
}

impl Activation {
    pub(crate) fn parse(name: &str, key: &str, path: &Path) -> Result<Self, ModelError> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            "quick_gelu" => Activation::QuickGelu,
            other => {
                return Err(invalid(
                    path,
                    format!(
                        "`{key}` = {other:?} is not supported (gelu, gelu_new, \
                         gelu_pytorch_tanh, gelu_fast, relu, silu, swish, quick_gelu)"
                    ),
                ));
            }
        })
    }

    pub(crate) fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Gelu => x.gelu_erf(),
            Activation::GeluTanh => x.gelu(),
            Activation::Relu => x.relu(),
            Activation::Silu => x.silu(),
            Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
        }
    }
}

/// Multi-head self-attention without a mask (every token is real): `x` [batch, len, d] ->
/// the heads' outputs concatenated, [batch, len, d], before the output projection.
pub(crate) fn self_attention(
    x: &Tensor,
    q: &Linear,
    k: &Linear,
    v: &Linear,
    heads: usize,
) -> candle_core::Result<Tensor> {
    let (b, n, _) = x.dims3()?;
    let split = |t: Tensor| -> candle_core::Result<Tensor> {
        let d = t.dim(2)?;
        t.reshape((b, n, heads, d / heads))?
            .transpose(1, 2)?
            .contiguous()
    };
    let q = split(q.forward(x)?)?;
    let k = split(k.forward(x)?)?;
    let v = split(v.forward(x)?)?;
    let hd = q.dim(3)?;
    let w = (q.matmul(&k.t()?)? * (hd as f64).powf(-0.5))?;
    let w = candle_nn::ops::softmax_last_dim(&w)?;
    w.matmul(&v)?.transpose(1, 2)?.reshape((b, n, heads * hd))
}

/// How logits become probabilities (transformers' classification pipelines' default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Softmax,
    Sigmoid,
}

impl Function {
    pub(crate) fn apply(self, logits: &[f32]) -> Vec<f32> {
        match self {
            Function::Softmax => {
                let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f64> = logits.iter().map(|&x| f64::from(x - m).exp()).collect();
                let s: f64 = e.iter().sum();
                e.iter().map(|x| (x / s) as f32).collect()
            }
            Function::Sigmoid => logits
                .iter()
                .map(|&x| (1.0 / (1.0 + (-f64::from(x)).exp())) as f32)
                .collect(),
        }
    }
}

/// The labels (`id2label`, in id order; `LABEL_i` for `num_labels` when absent) and the
/// function of a classifier's `config.json`.
pub(crate) fn labels_and_function(
    cfg: &Value,
    path: &Path,
) -> Result<(Vec<String>, Function), ModelError> {
    let labels: Vec<String> = match cfg.get("id2label") {
        Some(Value::Object(m)) if !m.is_empty() => {
            let mut v: Vec<(usize, String)> = Vec::with_capacity(m.len());
            for (k, name) in m {
                let i = k.parse::<usize>().map_err(|_| {
                    invalid(path, format!("`id2label` key {k:?} is not a label id"))
                })?;
                let name = name
                    .as_str()
                    .ok_or_else(|| invalid(path, format!("`id2label` {k:?} is not a string")))?;
                v.push((i, name.to_string()));
            }
            v.sort();
            if v.iter().enumerate().any(|(i, (id, _))| *id != i) {
                return Err(invalid(path, "`id2label` ids are not 0, 1, 2, ..."));
            }
            v.into_iter().map(|(_, n)| n).collect()
        }
        _ => {
            let n = cfg.get("num_labels").and_then(Value::as_u64).unwrap_or(2) as usize;
            (0..n).map(|i| format!("LABEL_{i}")).collect()
        }
    };
    let function = match cfg.get("problem_type").and_then(Value::as_str) {
        Some("regression") => {
            return Err(invalid(
                path,
                "`problem_type` = \"regression\": a regression model gives no probabilities \
                 to judge with",
            ));
        }
        Some("multi_label_classification") => Function::Sigmoid,
        _ if labels.len() == 1 => Function::Sigmoid,
        _ => Function::Softmax,
    };
    Ok((labels, function))
}

/// The architecture `config.json` names (its first `architectures` entry).
pub(crate) fn architecture(cfg: &Value, path: &Path) -> Result<String, ModelError> {
    cfg.get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| invalid(path, "no `architectures` entry: which model class is it?"))
}

/// A classifier judge's settings (`kind = "text-classifier"` and `kind = "image-classifier"`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierSettings {
    /// The judge's name in the store and reports.
    pub name: String,
    /// A model folder or a hub id.
    pub model: String,
    /// The labels that mean unsafe (matched case-insensitively against `id2label`); `None`
    /// for the judge's defaults.
    pub unsafe_labels: Option<Vec<String>>,
    /// Unsafe when the score is at least this (0..=1); 0.5 by default. Unused by
    /// [`ClassifierRule::Argmax`].
    pub threshold: f64,
    /// How the label follows from the probabilities.
    pub rule: ClassifierRule,
    pub dtype: Dtype,
    /// `cpu`.
    pub device: String,
}

/// The settings of a `text-classifier` judge.
pub type TextClassifierSettings = ClassifierSettings;

impl ClassifierSettings {
    /// The defaults: the judge's own unsafe labels, threshold 0.5, `auto` (f32) on the CPU.
    pub fn new(name: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            model: model.into(),
            unsafe_labels: None,
            threshold: 0.5,
            rule: ClassifierRule::Threshold,
            dtype: Dtype::Auto,
            device: "cpu".into(),
        }
    }

    /// The name and threshold checked, the dtype and device resolved.
    pub(crate) fn check(&self) -> Result<(DType, Device), ModelError> {
        if self.name.trim().is_empty() {
            return Err(invalid(&self.model, "the judge needs a `name`"));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(invalid(
                &self.model,
                format!(
                    "`threshold` = {} is not a probability between 0 and 1",
                    self.threshold
                ),
            ));
        }
        Ok((
            crate::writer::dtype_of(self.dtype),
            crate::writer::device_of(&self.device)?,
        ))
    }
}

/// Text judges' default unsafe label names (compared case-insensitively).
pub const TEXT_UNSAFE_LABELS: [&str; 5] = ["toxic", "nsfw", "unsafe", "offensive", "hate"];

/// The indices of the unsafe labels: those `given` names (each must be a label of the model),
/// else the labels whose name is one of `defaults`, or `LABEL_1` of a model labelled exactly
/// `LABEL_0`, `LABEL_1`. `config` names the file the labels come from.
pub(crate) fn unsafe_label_ids(
    labels: &[String],
    given: Option<&[String]>,
    defaults: &[&str],
    config: &Path,
) -> Result<Vec<usize>, ModelError> {
    let list = labels.join(", ");
    let mut ids: Vec<usize> = match given {
        Some([]) => {
            return Err(invalid(
                config,
                format!(
                    "`unsafe_labels` is empty; name at least one of the model's labels ({list})"
                ),
            ));
        }
        Some(given) => given
            .iter()
            .map(|g| {
                labels
                    .iter()
                    .position(|l| l.eq_ignore_ascii_case(g))
                    .ok_or_else(|| {
                        invalid(
                            config,
                            format!(
                                "`unsafe_labels` names {g:?}, which is not a label of the model \
                                 (id2label: {list})"
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        None => {
            let mut ids: Vec<usize> = (0..labels.len())
                .filter(|&i| defaults.iter().any(|d| labels[i].eq_ignore_ascii_case(d)))
                .collect();
            if ids.is_empty() && labels == ["LABEL_0", "LABEL_1"] {
                ids.push(1);
            }
            if ids.is_empty() {
                return Err(invalid(
                    config,
                    format!(
                        "none of the model's labels ({list}) is a default unsafe label ({}); set \
                         `unsafe_labels` to the labels that mean unsafe",
                        defaults.join(", ")
                    ),
                ));
            }
            ids
        }
    };
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The judge's score of one item's probabilities: the sum over the unsafe labels (the
/// largest of them for a multi-label model, whose probabilities do not add up).
pub(crate) fn judge_score(
    probs: &[f32],
    unsafe_ids: &[usize],
    function: Function,
    threshold: f64,
    rule: ClassifierRule,
) -> JudgeScore {
    let each = unsafe_ids.iter().map(|&i| f64::from(probs[i]));
    let score = match function {
        Function::Softmax => each.sum(),
        Function::Sigmoid => each.fold(0.0, f64::max),
    };
    let (unsafe_, threshold) = match rule {
        ClassifierRule::Threshold => (score >= threshold, Some(threshold)),
        ClassifierRule::Argmax => {
            // The first of equal maxima, as torch.argmax and the pipeline's sort pick it.
            let top =
                (0..probs.len()).fold(0, |best, i| if probs[i] > probs[best] { i } else { best });
            (unsafe_ids.contains(&top), None)
        }
    };
    JudgeScore {
        label: if unsafe_ { Label::Unsafe } else { Label::Safe },
        score,
        threshold,
    }
}

/// How a classifier judge labels an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassifierRule {
    /// Unsafe when the score (the unsafe labels' probability) is at least the threshold.
    #[default]
    Threshold,
    /// Unsafe when the most probable label is an unsafe one: the reference's rule (the same
    /// as a 0.5 threshold for two labels; not for three, such as `sanali209/nsfwfilter`'s).
    Argmax,
}

// ---------------------------------------------------------------------------------------------
// The text classifier.

/// The model families of [`TextClassifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextArchitecture {
    Bert,
    Roberta,
    DistilBert,
}

impl TextArchitecture {
    const SUPPORTED: &'static str = "RobertaForSequenceClassification, \
        DistilBertForSequenceClassification, BertForSequenceClassification";

    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "BertForSequenceClassification" => TextArchitecture::Bert,
            "RobertaForSequenceClassification" => TextArchitecture::Roberta,
            "DistilBertForSequenceClassification" => TextArchitecture::DistilBert,
            _ => return None,
        })
    }

    /// transformers' `base_model_prefix`.
    fn prefix(self) -> &'static str {
        match self {
            TextArchitecture::Bert => "bert",
            TextArchitecture::Roberta => "roberta",
            TextArchitecture::DistilBert => "distilbert",
        }
    }
}

/// The encoder sizes of a `config.json` (BERT/RoBERTa keys, or DistilBERT's).
#[derive(Debug, Clone, PartialEq)]
struct EncoderConfig {
    vocab: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
    inner: usize,
    act: Activation,
    positions: usize,
    type_vocab: usize,
    eps: f64,
    pad: u32,
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
    fn parse(cfg: &Value, arch: TextArchitecture, path: &Path) -> Result<Self, ModelError> {
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

/// The classification head on the first token.
enum Head {
    /// `classifier.dense` + tanh + `classifier.out_proj`.
    Roberta { dense: Linear, out: Linear },
    /// `pre_classifier` + ReLU + `classifier`.
    DistilBert { pre: Linear, out: Linear },
    /// The pooler (`pooler.dense` + tanh) + `classifier`.
    Bert { pooler: Linear, out: Linear },
}

impl Head {
    fn forward(&self, first: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Head::Roberta { dense, out } => out.forward(&dense.forward(first)?.tanh()?),
            Head::DistilBert { pre, out } => out.forward(&pre.forward(first)?.relu()?),
            Head::Bert { pooler, out } => out.forward(&pooler.forward(first)?.tanh()?),
        }
    }
}

/// A transformers sequence classifier with its tokenizer.
pub struct TextClassifier {
    arch: TextArchitecture,
    cfg: EncoderConfig,
    word: Embedding,
    position: Embedding,
    /// Token type 0's embedding (BERT, RoBERTa), [hidden].
    token_type: Option<Tensor>,
    embed_ln: LayerNorm,
    layers: Vec<Layer>,
    head: Head,
    tokenizer: Tokenizer,
    max_len: usize,
    labels: Vec<String>,
    function: Function,
    dtype: DType,
    device: Device,
    dir: PathBuf,
}

impl std::fmt::Debug for TextClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextClassifier")
            .field("dir", &self.dir)
            .field("architecture", &self.arch)
            .field("labels", &self.labels)
            .field("function", &self.function)
            .field("max_len", &self.max_len)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}

impl TextClassifier {
    /// Loads a model folder (`config.json`, weights, tokenizer files).
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, ModelError> {
        let cfg_path = dir.join("config.json");
        let cfg = read_json(dir, "config.json")?;
        let class = architecture(&cfg, &cfg_path)?;
        let arch = TextArchitecture::from_class(&class).ok_or_else(|| {
            invalid(
                &cfg_path,
                format!(
                    "architecture `{class}` is not supported by the text-classifier judge \
                     (supported: {})",
                    TextArchitecture::SUPPORTED
                ),
            )
        })?;
        let c = EncoderConfig::parse(&cfg, arch, &cfg_path)?;
        let (labels, function) = labels_and_function(&cfg, &cfg_path)?;
        let settings = tokenizer_settings(dir)?;
        let positions = match arch {
            TextArchitecture::Roberta => c.positions.saturating_sub(c.pad as usize + 1),
            _ => c.positions,
        };
        let max_len = match settings.get("model_max_length").and_then(Value::as_u64) {
            Some(m) if m > 0 => positions.min(m as usize),
            _ => positions,
        };
        if max_len < 2 {
            return Err(invalid(
                &cfg_path,
                format!("the model takes {max_len} tokens, too few for a prompt"),
            ));
        }
        let mut tokenizer = load_tokenizer(dir, arch, &settings)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| invalid(dir, format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);

        let w = Weights::open(dir, dtype, device)?;
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
            .map(|i| Layer::load(&w, &format!("{layer_root}.{i}"), arch, &c))
            .collect::<Result<Vec<_>, _>>()?;
        let n = labels.len();
        let head = match arch {
            TextArchitecture::Roberta => Head::Roberta {
                dense: w.linear("classifier.dense", d, d, true)?,
                out: classifier(&w, "classifier.out_proj", d, n, &cfg_path)?,
            },
            TextArchitecture::DistilBert => Head::DistilBert {
                pre: w.linear("pre_classifier", d, d, true)?,
                out: classifier(&w, "classifier", d, n, &cfg_path)?,
            },
            TextArchitecture::Bert => Head::Bert {
                pooler: w.linear(&format!("{p}pooler.dense"), d, d, true)?,
                out: classifier(&w, "classifier", d, n, &cfg_path)?,
            },
        };
        Ok(Self {
            arch,
            cfg: c,
            word,
            position,
            token_type,
            embed_ln,
            layers,
            head,
            tokenizer,
            max_len,
            labels,
            function,
            dtype,
            device: device.clone(),
            dir: dir.to_path_buf(),
        })
    }

    pub fn architecture(&self) -> TextArchitecture {
        self.arch
    }

    /// The labels in id order (`id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn function(&self) -> Function {
        self.function
    }

    /// Prompts are truncated to this many tokens, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `tokenizer(text, truncation=True, max_length=max_len())["input_ids"]`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ModelError::Compute(format!("tokenizing the prompt: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The logits of one tokenized prompt (no padding), in f32.
    pub fn logits(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let n = ids.len();
        if n == 0 || n > self.max_len {
            return Err(ModelError::Compute(format!(
                "{n} tokens: the model takes 1 to {}",
                self.max_len
            )));
        }
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
        let first = x.narrow(1, 0, 1)?.squeeze(1)?;
        let logits = self.head.forward(&first)?;
        Ok(logits.to_dtype(DType::F32)?.squeeze(0)?.to_vec1::<f32>()?)
    }

    /// The label probabilities of one prompt (softmax, or sigmoid for a multi-label model).
    pub fn probabilities(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        Ok(self.function.apply(&self.logits(&self.tokenize(text)?)?))
    }
}

fn classifier(
    w: &Weights,
    prefix: &str,
    d: usize,
    n: usize,
    cfg_path: &Path,
) -> Result<Linear, ModelError> {
    let name = format!("{prefix}.weight");
    if let Some(s) = w.shape_of(&name)
        && s.len() == 2
        && s[1] == d
        && s[0] != n
    {
        return Err(invalid(
            cfg_path,
            format!(
                "`id2label` has {n} labels, the classifier `{name}` of {} has {}",
                w.path().display(),
                s[0]
            ),
        ));
    }
    w.linear(prefix, d, n, true)
}

// ---------------------------------------------------------------------------------------------
// Tokenizers.

/// `tokenizer_config.json` with `special_tokens_map.json` over it (both optional).
fn tokenizer_settings(dir: &Path) -> Result<Map<String, Value>, ModelError> {
    let mut settings = Map::new();
    for name in ["tokenizer_config.json", "special_tokens_map.json"] {
        if !dir.join(name).is_file() {
            continue;
        }
        match read_json(dir, name)? {
            Value::Object(m) => settings.extend(m),
            _ => return Err(invalid(dir.join(name), "not a JSON object")),
        }
    }
    Ok(settings)
}

/// A special token of the settings: its text and, for an object, its flags.
fn special_token(settings: &Map<String, Value>, key: &str, default: &str) -> (String, Value) {
    let flags = |v: &Value, f: &str| v.get(f).and_then(Value::as_bool).unwrap_or(false);
    match settings.get(key) {
        Some(Value::String(s)) => (s.clone(), json!({})),
        Some(v @ Value::Object(_)) => match v.get("content").and_then(Value::as_str) {
            Some(c) => (
                c.to_string(),
                json!({"lstrip": flags(v, "lstrip"), "rstrip": flags(v, "rstrip"),
                       "single_word": flags(v, "single_word"),
                       "normalized": flags(v, "normalized")}),
            ),
            None => (default.to_string(), json!({})),
        },
        _ => (default.to_string(), json!({})),
    }
}

/// The name tokenizer_config.json gives the special token `key` (else `default`) and its id
/// by `lookup`; `vocab_path` is named when the vocabulary lacks it.
fn special_id(
    settings: &Map<String, Value>,
    key: &str,
    default: &str,
    lookup: &dyn Fn(&str) -> Option<u64>,
    vocab_path: &Path,
) -> Result<(String, u64), ModelError> {
    let (name, _) = special_token(settings, key, default);
    match lookup(&name) {
        Some(i) => Ok((name, i)),
        None => Err(invalid(
            vocab_path,
            format!("no {key} `{name}` in the vocabulary"),
        )),
    }
}

/// The added (special) tokens: `added_tokens_decoder` of tokenizer_config.json, then the
/// named special tokens found in the vocabulary.
fn added_tokens(
    settings: &Map<String, Value>,
    named: &[(&str, &str)],
    vocab_id: &dyn Fn(&str) -> Option<u64>,
) -> Vec<Value> {
    let mut added: Vec<Value> = Vec::new();
    if let Some(Value::Object(dec)) = settings.get("added_tokens_decoder") {
        for (k, v) in dec {
            if let (Ok(i), Some(content)) = (k.parse::<u64>(), v.get("content")) {
                let flag = |f: &str, d: bool| v.get(f).and_then(Value::as_bool).unwrap_or(d);
                added.push(json!({"id": i, "content": content,
                    "single_word": flag("single_word", false), "lstrip": flag("lstrip", false),
                    "rstrip": flag("rstrip", false), "normalized": flag("normalized", false),
                    "special": flag("special", true)}));
            }
        }
    }
    for (key, default) in named {
        let (name, flags) = special_token(settings, key, default);
        if added.iter().any(|a| a["content"] == name.as_str()) {
            continue;
        }
        if let Some(i) = vocab_id(&name) {
            let flag = |f: &str| flags.get(f).and_then(Value::as_bool).unwrap_or(false);
            added.push(
                json!({"id": i, "content": name, "single_word": flag("single_word"),
                "lstrip": flag("lstrip"), "rstrip": flag("rstrip"),
                "normalized": flag("normalized"), "special": true}),
            );
        }
    }
    added.sort_by_key(|a| a["id"].as_u64());
    added
}

fn load_tokenizer(
    dir: &Path,
    arch: TextArchitecture,
    settings: &Map<String, Value>,
) -> Result<Tokenizer, ModelError> {
    let json_path = dir.join("tokenizer.json");
    if json_path.is_file() {
        return Tokenizer::from_file(&json_path)
            .map_err(|e| invalid(&json_path, format!("not a readable tokenizer.json: {e}")));
    }
    let spec = match arch {
        TextArchitecture::Roberta => roberta_spec(dir, settings)?,
        TextArchitecture::Bert | TextArchitecture::DistilBert => wordpiece_spec(dir, settings)?,
    };
    spec.to_string()
        .parse::<Tokenizer>()
        .map_err(|e| invalid(dir, format!("cannot build the tokenizer: {e}")))
}

/// transformers 5's `RobertaTokenizer` from `vocab.json` + `merges.txt`.
fn roberta_spec(dir: &Path, settings: &Map<String, Value>) -> Result<Value, ModelError> {
    let vocab_path = dir.join("vocab.json");
    let vocab = read_json(dir, "vocab.json")?;
    let Some(vocab_map) = vocab.as_object() else {
        return Err(invalid(&vocab_path, "not a JSON object of token ids"));
    };
    let merges_path = dir.join("merges.txt");
    let merges = String::from_utf8(weights::read(dir, "merges.txt")?)
        .map_err(|e| invalid(&merges_path, e))?;
    let merges: Vec<&str> = merges
        .lines()
        .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
        .collect();
    let id = |name: &str| vocab_map.get(name).and_then(Value::as_u64);
    let named = [
        ("bos_token", "<s>"),
        ("eos_token", "</s>"),
        ("unk_token", "<unk>"),
        ("sep_token", "</s>"),
        ("pad_token", "<pad>"),
        ("cls_token", "<s>"),
        ("mask_token", "<mask>"),
    ];
    let added = added_tokens(settings, &named, &id);
    // RoBERTa's special tokens may be added tokens outside vocab.json.
    let vocab_or_added = |name: &str| {
        id(name).or_else(|| {
            added
                .iter()
                .find(|a| a["content"] == name)
                .and_then(|a| a["id"].as_u64())
        })
    };
    let sep = special_id(settings, "sep_token", "</s>", &vocab_or_added, &vocab_path)?;
    let cls = special_id(settings, "cls_token", "<s>", &vocab_or_added, &vocab_path)?;
    let flag = |k: &str, d: bool| settings.get(k).and_then(Value::as_bool).unwrap_or(d);
    let prefix_space = flag("add_prefix_space", false);
    let trim = flag("trim_offsets", true);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": prefix_space,
            "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "RobertaProcessing", "sep": [sep.0, sep.1],
            "cls": [cls.0, cls.1], "trim_offsets": trim, "add_prefix_space": prefix_space},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
            "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}
    }))
}

/// transformers 5's `BertTokenizer` / `DistilBertTokenizer` from `vocab.txt`.
fn wordpiece_spec(dir: &Path, settings: &Map<String, Value>) -> Result<Value, ModelError> {
    let vocab_path = dir.join("vocab.txt");
    let text =
        String::from_utf8(weights::read(dir, "vocab.txt")?).map_err(|e| invalid(&vocab_path, e))?;
    // load_vocab: one token per line (the newline stripped), the id is the line number.
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut vocab = Map::new();
    for (i, t) in lines.iter().enumerate() {
        vocab.insert((*t).to_string(), json!(i));
    }
    let id = |name: &str| vocab.get(name).and_then(Value::as_u64);
    let named = [
        ("pad_token", "[PAD]"),
        ("unk_token", "[UNK]"),
        ("cls_token", "[CLS]"),
        ("sep_token", "[SEP]"),
        ("mask_token", "[MASK]"),
    ];
    let added = added_tokens(settings, &named, &id);
    let cls = special_id(settings, "cls_token", "[CLS]", &id, &vocab_path)?;
    let sep = special_id(settings, "sep_token", "[SEP]", &id, &vocab_path)?;
    let (unk, _) = special_token(settings, "unk_token", "[UNK]");
    let lowercase = settings
        .get("do_lower_case")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let chinese = settings
        .get("tokenize_chinese_chars")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let strip_accents = settings
        .get("strip_accents")
        .and_then(Value::as_bool)
        .map_or(Value::Null, Value::Bool);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
            "handle_chinese_chars": chinese, "strip_accents": strip_accents,
            "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": cls.0, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": sep.0, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": cls.0, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": sep.0, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": sep.0, "type_id": 1}}],
            "special_tokens": {
                cls.0.clone(): {"id": cls.0, "ids": [cls.1], "tokens": [cls.0]},
                sep.0.clone(): {"id": sep.0, "ids": [sep.1], "tokens": [sep.0]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    }))
}

// ---------------------------------------------------------------------------------------------
// The judge.

/// A transformers classifier a [`ClassifierJudge`] can stand on: [`TextClassifier`] on
/// prompts, [`ViTClassifier`](super::vit::ViTClassifier) on images.
pub trait Classifier: Sized {
    /// What one item is: a prompt (`str`) or an [`art_core::Image`].
    type Item: ?Sized;
    /// The judge's `kind` in config and identities.
    const KIND: &'static str;
    /// The label names counted as unsafe when `unsafe_labels` is not set.
    const DEFAULT_UNSAFE_LABELS: &'static [&'static str];

    /// Loads a model folder.
    fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, ModelError>;
    /// The labels in id order (`id2label`).
    fn labels(&self) -> &[String];
    fn function(&self) -> Function;
    fn dtype(&self) -> DType;
    /// The folder the model was loaded from.
    fn dir(&self) -> &Path;
    /// The label probabilities of one item.
    fn probabilities(&self, item: &Self::Item) -> Result<Vec<f32>, ModelError>;
}

impl Classifier for TextClassifier {
    type Item = str;
    const KIND: &'static str = "text-classifier";
    const DEFAULT_UNSAFE_LABELS: &'static [&'static str] = &TEXT_UNSAFE_LABELS;

    fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, ModelError> {
        TextClassifier::load(dir, dtype, device)
    }
    fn labels(&self) -> &[String] {
        TextClassifier::labels(self)
    }
    fn function(&self) -> Function {
        TextClassifier::function(self)
    }
    fn dtype(&self) -> DType {
        TextClassifier::dtype(self)
    }
    fn dir(&self) -> &Path {
        TextClassifier::dir(self)
    }
    fn probabilities(&self, prompt: &str) -> Result<Vec<f32>, ModelError> {
        TextClassifier::probabilities(self, prompt)
    }
}

/// A classifier judge (`kind = "text-classifier"` or `"image-classifier"`): the classifier,
/// its unsafe labels and threshold; one item's score is [`judge_score`] of its probabilities.
#[derive(Debug)]
pub struct ClassifierJudge<C> {
    classifier: C,
    /// Read by the role impls, the image one in [`super::vit`].
    pub(super) name: String,
    model: String,
    unsafe_ids: Vec<usize>,
    threshold: f64,
    rule: ClassifierRule,
    revision: Option<String>,
}

/// `kind = "text-classifier"`: a prompt judge on a [`TextClassifier`].
pub type TextClassifierJudge = ClassifierJudge<TextClassifier>;

impl<C: Classifier> ClassifierJudge<C> {
    /// Loads the judge `settings` describe (downloading a hub id that is not cached).
    pub fn load(settings: &ClassifierSettings) -> Result<Self, ModelError> {
        let (dtype, device) = settings.check()?;
        let dir = weights::fetch(&settings.model, classifier_files)?;
        let classifier = C::load(&dir, dtype, &device)?;
        let revision = weights::snapshot_revision(&dir);
        Self::new(classifier, settings, revision)
    }

    /// The judge on a loaded classifier.
    pub fn new(
        classifier: C,
        settings: &ClassifierSettings,
        revision: Option<String>,
    ) -> Result<Self, ModelError> {
        settings.check()?;
        let unsafe_ids = unsafe_label_ids(
            classifier.labels(),
            settings.unsafe_labels.as_deref(),
            C::DEFAULT_UNSAFE_LABELS,
            &classifier.dir().join("config.json"),
        )?;
        Ok(Self {
            classifier,
            name: settings.name.clone(),
            model: settings.model.clone(),
            unsafe_ids,
            threshold: settings.threshold,
            rule: settings.rule,
            revision,
        })
    }

    pub fn classifier(&self) -> &C {
        &self.classifier
    }

    /// The labels counted as unsafe.
    pub fn unsafe_labels(&self) -> Vec<&str> {
        self.unsafe_ids
            .iter()
            .map(|&i| self.classifier.labels()[i].as_str())
            .collect()
    }

    /// One item's score.
    pub fn score(&self, item: &C::Item) -> Result<JudgeScore, ModelError> {
        let probs = self.classifier.probabilities(item)?;
        Ok(judge_score(
            &probs,
            &self.unsafe_ids,
            self.classifier.function(),
            self.threshold,
            self.rule,
        ))
    }

    /// The role's identity: kind, model, revision, unsafe labels, threshold and dtype.
    pub(crate) fn model_identity(&self) -> ModelIdentity {
        let mut id = ModelIdentity::new(C::KIND, &self.model)
            .with_param("unsafe_labels", format!("{:?}", self.unsafe_labels()))
            .with_param(
                "threshold",
                match self.rule {
                    ClassifierRule::Threshold => self.threshold.to_string(),
                    ClassifierRule::Argmax => "argmax".to_string(),
                },
            )
            .with_param(
                "dtype",
                format!("{:?}", self.classifier.dtype()).to_lowercase(),
            );
        id.revision = self.revision.clone();
        id
    }

    /// The role's `judge`: each item scored alone, so one that fails fails alone.
    pub(crate) fn judge_each(&self, items: &[&C::Item]) -> Vec<Result<JudgeScore, RoleError>> {
        items
            .iter()
            .map(|item| self.score(item).map_err(|e| RoleError::new(e.to_string())))
            .collect()
    }
}

impl PromptJudge for TextClassifierJudge {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> ModelIdentity {
        self.model_identity()
    }

    fn judge(&self, prompts: &[&str]) -> Vec<Result<JudgeScore, RoleError>> {
        self.judge_each(prompts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_argmax_rule_labels_by_the_top_label() {
        // sanali209/nsfwfilter's labels: ero, porn, safe; ero and porn are unsafe.
        let p = [0.3, 0.25, 0.45];
        let t = judge_score(
            &p,
            &[0, 1],
            Function::Softmax,
            0.5,
            ClassifierRule::Threshold,
        );
        assert_eq!((t.label, t.threshold), (Label::Unsafe, Some(0.5)));
        assert!((t.score - 0.55).abs() < 1e-6);
        let a = judge_score(&p, &[0, 1], Function::Softmax, 0.5, ClassifierRule::Argmax);
        assert_eq!(
            (a.label, a.threshold),
            (Label::Safe, None),
            "safe is the top label"
        );
        assert_eq!(a.score, t.score, "the score is the same either way");
        let a = judge_score(
            &[0.4, 0.2, 0.4],
            &[0, 1],
            Function::Softmax,
            0.5,
            ClassifierRule::Argmax,
        );
        assert_eq!(a.label, Label::Unsafe, "the first of equal maxima");
    }

    #[test]
    fn default_unsafe_labels() {
        let p = Path::new("config.json");
        let d = &TEXT_UNSAFE_LABELS;
        assert_eq!(
            unsafe_label_ids(&labels(&["neutral", "toxic"]), None, d, p).unwrap(),
            [1]
        );
        assert_eq!(
            unsafe_label_ids(&labels(&["SFW", "NSFW"]), None, d, p).unwrap(),
            [1]
        );
        assert_eq!(
            unsafe_label_ids(&labels(&["non-toxic", "toxic"]), None, d, p).unwrap(),
            [1]
        );
        assert_eq!(
            unsafe_label_ids(&labels(&["LABEL_0", "LABEL_1"]), None, d, p).unwrap(),
            [1]
        );
        let e = unsafe_label_ids(&labels(&["LABEL_0", "LABEL_1", "LABEL_2"]), None, d, p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LABEL_0, LABEL_1, LABEL_2") && e.contains("`unsafe_labels`"),
            "{e}"
        );
        let given = labels(&["Toxic", "toxic"]);
        assert_eq!(
            unsafe_label_ids(&labels(&["neutral", "toxic"]), Some(&given), d, p).unwrap(),
            [1]
        );
        let given = labels(&["bad"]);
        let e = unsafe_label_ids(&labels(&["neutral", "toxic"]), Some(&given), d, p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"bad\"") && e.contains("neutral, toxic") && e.contains("config.json"),
            "{e}"
        );
        assert!(unsafe_label_ids(&labels(&["a"]), Some(&[]), d, p).is_err());
    }

    #[test]
    fn scores_sum_or_take_the_largest() {
        let s = judge_score(
            &[0.2, 0.3, 0.5],
            &[1, 2],
            Function::Softmax,
            0.5,
            ClassifierRule::Threshold,
        );
        assert!((s.score - 0.8).abs() < 1e-6 && s.label == Label::Unsafe);
        let s = judge_score(
            &[0.2, 0.3, 0.4],
            &[1, 2],
            Function::Sigmoid,
            0.5,
            ClassifierRule::Threshold,
        );
        assert!((s.score - 0.4).abs() < 1e-6 && s.label == Label::Safe);
        assert_eq!(s.threshold, Some(0.5));
        let p = Function::Softmax.apply(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1]);
        assert!((Function::Sigmoid.apply(&[0.0])[0] - 0.5).abs() < 1e-7);
    }

    #[test]
    fn hub_files_add_vocabularies_and_bin_only_weights() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = classifier_files(&names(&[
            "config.json",
            "pytorch_model.bin",
            "tf_model.h5",
            "vocab.json",
            "merges.txt",
            "onnx/model.onnx",
        ]));
        assert_eq!(
            got,
            [
                "config.json",
                "merges.txt",
                "pytorch_model.bin",
                "vocab.json"
            ]
        );
        let got = classifier_files(&names(&[
            "config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "vocab.txt",
        ]));
        assert_eq!(got, ["config.json", "model.safetensors", "vocab.txt"]);
    }
}
