//! Image judges on transformers `ViTForImageClassification` models
//! (`Falconsai/nsfw_image_detection`; `sanali209/nsfwfilter` is expected to be one too), as
//! transformers' image-classification pipeline computes them with the PIL-backend
//! `ViTImageProcessor`.
//!
//! * **Processor** (`preprocessor_config.json`): resize to `size` (`{height, width}`, or one
//!   number for a square) with the PIL filter `resample` names, through
//!   [`art_nn::vision::resample`] (Pillow's arithmetic bit for bit); `do_rescale` with
//!   `rescale_factor` (in f64, then f32, as numpy does); `do_normalize` with `image_mean` /
//!   `image_std` (in f32). A processor with `do_center_crop` or a `shortest_edge` size, or of
//!   a type other than the ViT processor, is refused rather than approximated.
//! * **Model**: the patch convolution as one matmul over the non-overlapping patches, the
//!   class token, learned positions, pre-norm layers (`layernorm_before`, attention,
//!   `layernorm_after`, MLP), the final `layernorm`, `classifier` on the class token; tensor
//!   names as transformers saves them (`vit.embeddings...`, `vit.encoder.layer.{i}...`,
//!   `classifier`). Other `architectures` are refused, naming the architecture.
//! * **Probabilities**: softmax, or sigmoid for a multi-label (or one-label) model, as for
//!   the text classifiers ([`crate::text`]).
//!
//! The judge ([`ImageClassifierJudge`], kind `image-classifier`) scores like the text judge:
//! the summed probabilities of the unsafe labels (the largest, for a multi-label model),
//! `Unsafe` at score >= threshold. Default unsafe labels: those named (case-insensitively)
//! `nsfw`, `unsafe`, `porn`, `hentai` or `sexy` (the NSFW classes of the common detectors:
//! Falconsai's normal/nsfw, the GantMan-style drawings/hentai/neutral/porn/sexy), or `LABEL_1`
//! of a model labelled exactly `LABEL_0`, `LABEL_1`. Every image runs alone, so its score does
//! not depend on its batch; an image the processor cannot take fails alone.

use crate::ModelError;
use crate::classifier::{
    Activation, Classifier, ClassifierJudge, ClassifierSettings, Function, Weights,
    labels_and_function, read_json, self_attention,
};
use art_core::{Image, ImageJudge, JudgeScore, ModelIdentity, RoleError};
use art_nn::invalid;
use art_nn::vision::resample::{Filter, resize_rgb8};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, Linear};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The settings of an `image-classifier` judge.
pub type ImageClassifierSettings = ClassifierSettings;

/// Image judges' default unsafe label names (compared case-insensitively).
pub const IMAGE_UNSAFE_LABELS: [&str; 5] = ["nsfw", "unsafe", "porn", "hentai", "sexy"];

/// A (height, width) pair from a number or a two-number list.
fn pair(
    v: Option<&Value>,
    key: &str,
    default: usize,
    path: &Path,
) -> Result<(usize, usize), ModelError> {
    match v {
        None | Some(Value::Null) => Ok((default, default)),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| (n as usize, n as usize))
            .ok_or_else(|| invalid(path, format!("`{key}` = {n} is not a positive integer"))),
        Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
            (Some(h), Some(w)) => Ok((h as usize, w as usize)),
            _ => Err(invalid(path, format!("`{key}` is not two integers"))),
        },
        Some(other) => Err(invalid(path, format!("`{key}` = {other} is not a size"))),
    }
}

/// `ViTConfig`, with transformers' defaults for absent keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ViTConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub layer_norm_eps: f64,
    /// (height, width).
    pub image_size: (usize, usize),
    /// (height, width).
    pub patch_size: (usize, usize),
    pub num_channels: usize,
    pub qkv_bias: bool,
    act: Activation,
}

impl ViTConfig {
    fn parse(cfg: &Value, path: &Path) -> Result<Self, ModelError> {
        let u = |k: &str, d: usize| -> Result<usize, ModelError> {
            match cfg.get(k) {
                None | Some(Value::Null) => Ok(d),
                Some(v) => v
                    .as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| invalid(path, format!("`{k}` = {v} is not an integer"))),
            }
        };
        let act = cfg
            .get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or("gelu");
        let c = ViTConfig {
            hidden_size: u("hidden_size", 768)?,
            num_hidden_layers: u("num_hidden_layers", 12)?,
            num_attention_heads: u("num_attention_heads", 12)?,
            intermediate_size: u("intermediate_size", 3072)?,
            layer_norm_eps: cfg
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12),
            image_size: pair(cfg.get("image_size"), "image_size", 224, path)?,
            patch_size: pair(cfg.get("patch_size"), "patch_size", 16, path)?,
            num_channels: u("num_channels", 3)?,
            qkv_bias: cfg.get("qkv_bias").and_then(Value::as_bool).unwrap_or(true),
            act: Activation::parse(act, "hidden_act", path)?,
        };
        if c.num_channels != 3 {
            return Err(invalid(
                path,
                format!(
                    "`num_channels` = {}: the judge gives the model RGB images (3 channels)",
                    c.num_channels
                ),
            ));
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(invalid(
                path,
                "`hidden_size` is not divisible by `num_attention_heads`",
            ));
        }
        let (ph, pw) = c.patch_size;
        if ph == 0
            || pw == 0
            || !c.image_size.0.is_multiple_of(ph)
            || !c.image_size.1.is_multiple_of(pw)
        {
            return Err(invalid(
                path,
                format!(
                    "`image_size` {:?} is not a multiple of `patch_size` {:?}",
                    c.image_size, c.patch_size
                ),
            ));
        }
        Ok(c)
    }

    /// Patches per (column, row).
    fn grid(&self) -> (usize, usize) {
        (
            self.image_size.0 / self.patch_size.0,
            self.image_size.1 / self.patch_size.1,
        )
    }
}

/// The PIL-backend `ViTImageProcessor` settings of a `preprocessor_config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    pub do_resize: bool,
    /// (height, width).
    pub size: (u32, u32),
    pub resample: Filter,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

impl ImageProcessor {
    /// The image processor types this processor is (`ViTImageProcessor` and its fast, PIL and
    /// legacy feature-extractor names).
    const TYPES: [&'static str; 4] = [
        "ViTImageProcessor",
        "ViTImageProcessorFast",
        "ViTImageProcessorPil",
        "ViTFeatureExtractor",
    ];

    pub fn from_json(v: &Value, path: &Path) -> Result<Self, ModelError> {
        let bad = |detail: String| invalid(path, detail);
        let kind = v
            .get("image_processor_type")
            .or_else(|| v.get("feature_extractor_type"))
            .and_then(Value::as_str);
        if let Some(kind) = kind
            && !Self::TYPES.contains(&kind)
        {
            return Err(bad(format!(
                "image processor `{kind}` is not supported (the ViT processor: {})",
                Self::TYPES.join(", ")
            )));
        }
        let flag = |k: &str| -> Result<bool, ModelError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(true),
                Some(Value::Bool(b)) => Ok(*b),
                Some(o) => Err(bad(format!("`{k}` = {o} is not true or false"))),
            }
        };
        if v.get("do_center_crop").and_then(Value::as_bool) == Some(true) {
            return Err(bad(
                "`do_center_crop` = true is not supported by the ViT processor here".into(),
            ));
        }
        let size = match v.get("size") {
            None | Some(Value::Null) => (224, 224),
            Some(Value::Number(n)) => {
                let n = n
                    .as_u64()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(format!("`size` = {n} is not a positive integer")))?;
                (n as u32, n as u32)
            }
            Some(Value::Object(m)) => {
                let side = |k: &str| m.get(k).and_then(Value::as_u64).filter(|&n| n > 0);
                match (side("height"), side("width")) {
                    (Some(h), Some(w)) => (h as u32, w as u32),
                    _ => {
                        return Err(bad(format!(
                            "`size` = {} is not supported: the ViT processor resizes to \
                             {{\"height\", \"width\"}}",
                            Value::Object(m.clone())
                        )));
                    }
                }
            }
            Some(o) => return Err(bad(format!("`size` = {o} is not a size"))),
        };
        let resample = match v.get("resample") {
            None | Some(Value::Null) => Filter::Bilinear,
            Some(r) => r
                .as_u64()
                .and_then(Filter::from_pil_code)
                .ok_or_else(|| bad(format!("`resample` = {r} is not a PIL filter code (0-5)")))?,
        };
        let three = |k: &str| -> Result<[f32; 3], ModelError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok([0.5; 3]),
                Some(Value::Number(n)) => Ok([n.as_f64().unwrap_or(0.5) as f32; 3]),
                Some(Value::Array(a)) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x
                            .as_f64()
                            .ok_or_else(|| bad(format!("`{k}` is not three numbers")))?
                            as f32;
                    }
                    Ok(out)
                }
                Some(o) => Err(bad(format!("`{k}` = {o} is not three numbers"))),
            }
        };
        Ok(Self {
            do_resize: flag("do_resize")?,
            size,
            resample,
            do_rescale: flag("do_rescale")?,
            rescale_factor: v
                .get("rescale_factor")
                .and_then(Value::as_f64)
                .unwrap_or(1.0 / 255.0),
            do_normalize: flag("do_normalize")?,
            image_mean: three("image_mean")?,
            image_std: three("image_std")?,
        })
    }

    /// `pixel_values` of one image: [3, height, width] channel-first, flattened. Errors when
    /// the processed image is not `(height, width)` (a processor that does not resize).
    pub fn pixel_values(&self, image: &Image, expect: (usize, usize)) -> Result<Vec<f32>, String> {
        let (w, h) = (image.width(), image.height());
        let (rgb, w, h) = if self.do_resize {
            let (nh, nw) = self.size;
            (
                std::borrow::Cow::Owned(resize_rgb8(image.rgb(), w, h, nw, nh, self.resample)?),
                nw,
                nh,
            )
        } else {
            (std::borrow::Cow::Borrowed(image.rgb()), w, h)
        };
        let (w, h) = (w as usize, h as usize);
        if (h, w) != expect {
            return Err(format!(
                "the image is {w}x{h} after the processor, the model takes {}x{} (width x height)",
                expect.1, expect.0
            ));
        }
        let mut out = vec![0f32; 3 * h * w];
        for c in 0..3 {
            let (m, s) = (self.image_mean[c], self.image_std[c]);
            for (i, px) in rgb.chunks_exact(3).enumerate() {
                let x = px[c];
                let mut v = if self.do_rescale {
                    (f64::from(x) * self.rescale_factor) as f32
                } else {
                    f32::from(x)
                };
                if self.do_normalize {
                    v = (v - m) / s;
                }
                out[c * h * w + i] = v;
            }
        }
        Ok(out)
    }
}

/// One pre-norm ViT layer: `x + attn(ln_before(x))`, then `h + mlp(ln_after(h))`.
struct VitLayer {
    ln_before: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln_after: LayerNorm,
    up: Linear,
    down: Linear,
}

impl VitLayer {
    fn load(w: &Weights, p: &str, c: &ViTConfig) -> Result<Self, ModelError> {
        let d = c.hidden_size;
        let ln = |n: &str| w.layer_norm(&format!("{p}.{n}"), d, c.layer_norm_eps);
        let qkv = |n: &str| w.linear(&format!("{p}.attention.attention.{n}"), d, d, c.qkv_bias);
        Ok(Self {
            ln_before: ln("layernorm_before")?,
            q: qkv("query")?,
            k: qkv("key")?,
            v: qkv("value")?,
            o: w.linear(&format!("{p}.attention.output.dense"), d, d, true)?,
            ln_after: ln("layernorm_after")?,
            up: w.linear(
                &format!("{p}.intermediate.dense"),
                d,
                c.intermediate_size,
                true,
            )?,
            down: w.linear(&format!("{p}.output.dense"), c.intermediate_size, d, true)?,
        })
    }

    fn forward(&self, x: &Tensor, c: &ViTConfig) -> candle_core::Result<Tensor> {
        let a = self_attention(
            &self.ln_before.forward(x)?,
            &self.q,
            &self.k,
            &self.v,
            c.num_attention_heads,
        )?;
        let h = (self.o.forward(&a)? + x)?;
        let f = self.down.forward(
            &c.act
                .apply(&self.up.forward(&self.ln_after.forward(&h)?)?)?,
        )?;
        f + h
    }
}

/// A transformers `ViTForImageClassification` with its image processor.
pub struct ViTClassifier {
    cfg: ViTConfig,
    processor: ImageProcessor,
    /// The patch convolution as a matrix: [hidden, channels * patch_h * patch_w].
    patch: Tensor,
    patch_bias: Tensor,
    /// [1, 1, hidden].
    cls: Tensor,
    /// [1, 1 + patches, hidden].
    position: Tensor,
    layers: Vec<VitLayer>,
    layernorm: LayerNorm,
    classifier: Linear,
    labels: Vec<String>,
    function: Function,
    dtype: DType,
    device: Device,
    dir: PathBuf,
}

impl std::fmt::Debug for ViTClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViTClassifier")
            .field("dir", &self.dir)
            .field("config", &self.cfg)
            .field("processor", &self.processor)
            .field("labels", &self.labels)
            .field("function", &self.function)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}

impl ViTClassifier {
    /// Loads a model folder (`config.json`, `preprocessor_config.json`, weights).
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, ModelError> {
        let cfg_path = dir.join("config.json");
        let cfg_json = read_json(dir, "config.json")?;
        let class = crate::classifier::architecture(&cfg_json, &cfg_path)?;
        if class != "ViTForImageClassification" {
            return Err(invalid(
                &cfg_path,
                format!(
                    "architecture `{class}` is not supported by the image-classifier judge \
                     (supported: ViTForImageClassification)"
                ),
            ));
        }
        let c = ViTConfig::parse(&cfg_json, &cfg_path)?;
        let (labels, function) = labels_and_function(&cfg_json, &cfg_path)?;
        let proc_path = dir.join("preprocessor_config.json");
        let processor =
            ImageProcessor::from_json(&read_json(dir, "preprocessor_config.json")?, &proc_path)?;
        let w = Weights::open(dir, dtype, device)?;
        let d = c.hidden_size;
        let (ph, pw) = c.patch_size;
        let (gh, gw) = c.grid();
        let e = "vit.embeddings";
        let patch = w
            .get(
                &format!("{e}.patch_embeddings.projection.weight"),
                &[d, c.num_channels, ph, pw],
            )?
            .reshape((d, c.num_channels * ph * pw))?;
        let patch_bias = w.get(&format!("{e}.patch_embeddings.projection.bias"), &[d])?;
        let cls = w.get(&format!("{e}.cls_token"), &[1, 1, d])?;
        let position = w.get(&format!("{e}.position_embeddings"), &[1, gh * gw + 1, d])?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| VitLayer::load(&w, &format!("vit.encoder.layer.{i}"), &c))
            .collect::<Result<Vec<_>, _>>()?;
        let layernorm = w.layer_norm("vit.layernorm", d, c.layer_norm_eps)?;
        let n = labels.len();
        if let Some(rows) = w
            .shape_of("classifier.weight")
            .filter(|s| s.len() == 2 && s[1] == d && s[0] != n)
            .map(|s| s[0])
        {
            return Err(invalid(
                &cfg_path,
                format!(
                    "`id2label` has {n} labels, the classifier `classifier.weight` of {} has \
                     {rows}",
                    w.path().display()
                ),
            ));
        }
        let classifier = w.linear("classifier", d, n, true)?;
        Ok(Self {
            cfg: c,
            processor,
            patch,
            patch_bias,
            cls,
            position,
            layers,
            layernorm,
            classifier,
            labels,
            function,
            dtype,
            device: device.clone(),
            dir: dir.to_path_buf(),
        })
    }

    pub fn config(&self) -> &ViTConfig {
        &self.cfg
    }

    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// The labels in id order (`id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn function(&self) -> Function {
        self.function
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The processor's `pixel_values` of one image ([3, height, width], flattened).
    pub fn pixel_values(&self, image: &Image) -> Result<Vec<f32>, ModelError> {
        self.processor
            .pixel_values(image, self.cfg.image_size)
            .map_err(|e| ModelError::Compute(format!("image processor: {e}")))
    }

    /// The logits of one image's pixel values ([3, height, width] flattened), in f32.
    pub fn logits_of_pixels(&self, pixels: &[f32]) -> Result<Vec<f32>, ModelError> {
        let c = &self.cfg;
        let (h, w) = c.image_size;
        let (ph, pw) = c.patch_size;
        let (gh, gw) = c.grid();
        let ch = c.num_channels;
        let d = c.hidden_size;
        if pixels.len() != ch * h * w {
            return Err(ModelError::Compute(format!(
                "{} pixel values, the model takes {ch} x {h} x {w}",
                pixels.len()
            )));
        }
        let x =
            Tensor::from_slice(pixels, (ch, gh, ph, gw, pw), &self.device)?.to_dtype(self.dtype)?;
        // A stride-p convolution with a p x p kernel is a matmul over the patches.
        let cols = x
            .permute((1, 3, 0, 2, 4))?
            .contiguous()?
            .reshape((gh * gw, ch * ph * pw))?;
        let patches = cols
            .matmul(&self.patch.t()?)?
            .broadcast_add(&self.patch_bias)?
            .reshape((1, gh * gw, d))?;
        let mut x = Tensor::cat(&[&self.cls, &patches], 1)?.broadcast_add(&self.position)?;
        for l in &self.layers {
            x = l.forward(&x, c)?;
        }
        let x = self.layernorm.forward(&x)?;
        let first = x.narrow(1, 0, 1)?.squeeze(1)?;
        let logits = self.classifier.forward(&first)?;
        Ok(logits.to_dtype(DType::F32)?.squeeze(0)?.to_vec1::<f32>()?)
    }

    /// The label probabilities of one image.
    pub fn probabilities(&self, image: &Image) -> Result<Vec<f32>, ModelError> {
        let px = self.pixel_values(image)?;
        Ok(self.function.apply(&self.logits_of_pixels(&px)?))
    }
}

impl Classifier for ViTClassifier {
    type Item = Image;
    const KIND: &'static str = "image-classifier";
    const DEFAULT_UNSAFE_LABELS: &'static [&'static str] = &IMAGE_UNSAFE_LABELS;

    fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, ModelError> {
        ViTClassifier::load(dir, dtype, device)
    }
    fn labels(&self) -> &[String] {
        ViTClassifier::labels(self)
    }
    fn function(&self) -> Function {
        ViTClassifier::function(self)
    }
    fn dtype(&self) -> DType {
        ViTClassifier::dtype(self)
    }
    fn dir(&self) -> &Path {
        ViTClassifier::dir(self)
    }
    fn probabilities(&self, image: &Image) -> Result<Vec<f32>, ModelError> {
        ViTClassifier::probabilities(self, image)
    }
}

/// `kind = "image-classifier"`: an image judge on a [`ViTClassifier`].
pub type ImageClassifierJudge = ClassifierJudge<ViTClassifier>;

impl ImageJudge for ImageClassifierJudge {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> ModelIdentity {
        self.model_identity()
    }

    fn judge(&self, images: &[&Image]) -> Vec<Result<JudgeScore, RoleError>> {
        self.judge_each(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn processor_settings_are_read_or_refused() {
        let p = Path::new("preprocessor_config.json");
        let d = ImageProcessor::from_json(&json!({}), p).unwrap();
        assert_eq!(d.size, (224, 224));
        assert_eq!(d.resample, Filter::Bilinear);
        assert!(d.do_resize && d.do_rescale && d.do_normalize);
        assert_eq!(d.image_mean, [0.5; 3]);
        let s = ImageProcessor::from_json(
            &json!({"size": 384, "resample": 3, "do_rescale": false, "image_std": 0.25}),
            p,
        )
        .unwrap();
        assert_eq!(
            (s.size, s.resample, s.do_rescale, s.image_std),
            ((384, 384), Filter::Bicubic, false, [0.25; 3])
        );
        for (bad, what) in [
            (json!({"size": {"shortest_edge": 224}}), "shortest_edge"),
            (json!({"do_center_crop": true}), "do_center_crop"),
            (json!({"resample": 9}), "resample"),
            (
                json!({"image_processor_type": "ConvNextImageProcessor"}),
                "ConvNextImageProcessor",
            ),
            (json!({"image_mean": [0.5, 0.5]}), "image_mean"),
        ] {
            let e = ImageProcessor::from_json(&bad, p).unwrap_err().to_string();
            assert!(
                e.contains(what) && e.contains("preprocessor_config.json"),
                "{e}"
            );
        }
    }

    #[test]
    fn pixel_values_rescale_in_f64_and_normalize_in_f32() {
        let p = ImageProcessor::from_json(&json!({"size": 1}), Path::new("p.json")).unwrap();
        let im = Image::new(1, 1, vec![0, 128, 255]).unwrap();
        let v = p.pixel_values(&im, (1, 1)).unwrap();
        let want: Vec<f32> = [0u8, 128, 255]
            .iter()
            .map(|&x| ((f64::from(x) * (1.0 / 255.0)) as f32 - 0.5) / 0.5)
            .collect();
        assert_eq!(v, want);
        let e = p.pixel_values(&im, (2, 2)).unwrap_err();
        assert!(e.contains("1x1") && e.contains("2x2"), "{e}");
    }
}
