//! The classifier core shared by the text classifiers ([`crate::text`]) and the ViT image
//! classifiers ([`crate::vit`]), as transformers' classification pipelines compute them:
//! weights (`model.safetensors`, sharded, else `pytorch_model.bin`), the attention and
//! activations both encoders use, labels and the probability function from `config.json`,
//! the judge's settings, its unsafe labels and score, and [`ClassifierJudge`] over the
//! [`Classifier`] trait.
//!
//! The judge: score = the summed probabilities of the unsafe labels (for a multi-label model,
//! the largest of them), label `Unsafe` when score >= threshold (or, with
//! `rule = "argmax"`, when the top label is an unsafe one).

use crate::ModelError;
use art_config::local::Dtype;
use art_core::{JudgeScore, Label, ModelIdentity, RoleError};
use art_nn::invalid;
use art_nn::tensors::Checkpoint;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, Linear};
use serde_json::Value;
use std::path::Path;

/// A model folder's JSON file, named in errors.
pub(crate) fn read_json(dir: &Path, name: &str) -> Result<Value, ModelError> {
    serde_json::from_slice(&art_hub::read(dir, name)?).map_err(|e| invalid(dir.join(name), e))
}

/// The files of a hub repository a classifier judge needs: what [`art_hub::model_files`]
/// picks (JSON configs, `tokenizer.json`, safetensors), the tokenizer vocabularies
/// (`vocab.json`, `merges.txt`, `vocab.txt`) and, when the repository has no safetensors
/// weights, `pytorch_model.bin`.
pub fn classifier_files(names: &[String]) -> Vec<String> {
    let mut picked = art_hub::model_files(names);
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
            art_nn::dtype_of(self.dtype),
            art_nn::device_of(&self.device)?,
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

/// How a classifier judge labels an item (the config's `rule`).
pub use art_config::judges::ClassifierRule;

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

impl<C: Classifier> ClassifierJudge<C> {
    /// Loads the judge `settings` describe (downloading a hub id that is not cached).
    pub fn load(settings: &ClassifierSettings) -> Result<Self, ModelError> {
        let (dtype, device) = settings.check()?;
        let dir = art_hub::fetch(&settings.model, classifier_files)?;
        let classifier = C::load(&dir, dtype, &device)?;
        let revision = art_hub::snapshot_revision(&dir);
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
        art_nn::finite("the classifier's label probabilities", &probs)?;
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
