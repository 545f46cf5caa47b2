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
//! The pieces shared with the image classifiers of [`crate::vit`] (weights, attention,
//! settings, labels, scores, and the judge itself: [`ClassifierJudge`] over the
//! [`Classifier`] trait) live here too.

use crate::ModelError;
use art_core::{JudgeScore, ModelIdentity, PromptJudge, RoleError};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationParams};

mod tokenizer;

use crate::classifier::*;
use art_nn::invalid;
use tokenizer::{Vocabulary, load_tokenizer, tokenizer_settings};

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

    /// The vocabulary files a folder without `tokenizer.json` has.
    fn vocabulary(self) -> Vocabulary {
        match self {
            TextArchitecture::Roberta => Vocabulary::ByteLevelBpe,
            TextArchitecture::Bert | TextArchitecture::DistilBert => Vocabulary::WordPiece,
        }
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
        let mut tokenizer = load_tokenizer(dir, arch.vocabulary(), &settings)?;
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

/// The settings of a `text-classifier` judge.
pub type TextClassifierSettings = ClassifierSettings;

/// `kind = "text-classifier"`: a prompt judge on a [`TextClassifier`].
pub type TextClassifierJudge = ClassifierJudge<TextClassifier>;

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
