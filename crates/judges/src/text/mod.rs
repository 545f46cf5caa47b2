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
use candle_nn::Linear;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationParams};

mod encoder;
mod tokenizer;

pub use encoder::{TextArchitecture, TextEncoder};

use crate::classifier::*;
use art_nn::invalid;
use encoder::EncoderConfig;
use tokenizer::{load_tokenizer, tokenizer_settings};

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
    encoder: TextEncoder,
    head: Head,
    tokenizer: Tokenizer,
    max_len: usize,
    labels: Vec<String>,
    function: Function,
    dtype: DType,
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
        let encoder = TextEncoder::load(&w, arch, c, device)?;
        let p = encoder.prefix.clone();
        let d = encoder.cfg.hidden;
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
            encoder,
            head,
            tokenizer,
            max_len,
            labels,
            function,
            dtype,
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
        let x = self.encoder.hidden(ids)?;
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
