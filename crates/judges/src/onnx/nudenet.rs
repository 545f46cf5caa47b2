//! NudeNet 3 (PyPI `nudenet==3.4.2`): a YOLOv8n detector of 18 body-part classes at 320 px,
//! with the package's pre- and postprocessing (`nudenet/nudenet.py`) repeated exactly.
//!
//! Preprocessing (`_read_image`): the image (BGR, as `cv2.imread` gives it) is padded with
//! black on the right and bottom to a square of its longer side; `cv2.dnn.blobFromImage` then
//! resizes it to 320x320 with OpenCV's fixed-point bilinear ([`cv`](super::cv)), multiplies
//! by `1/255` in f32 and writes NCHW planes. The package's `cvtColor(COLOR_RGBA2BGR)` on a
//! 3-channel image swaps R and B and `swapRB=True` swaps them back, so the planes are B, G, R.
//!
//! Postprocessing (`_postprocess`): the output `[1, 22, 2100]` is 2100 anchors of
//! `cx, cy, w, h` (input pixels) and 18 class scores; an anchor whose best score is >= 0.2
//! becomes a candidate of its best class (the first on ties), its box turned into top-left
//! corner form, scaled by `side / 320` and clipped to the image, all in f32 as numpy does;
//! then `cv2.dnn.NMSBoxes(boxes, scores, 0.25, 0.45)` across classes (scores > 0.25, a
//! stable sort by score, IoU of `Rect2d`s in f64 compared as `1 - (float)(1 - IoU) <= 0.45`).
//! Boxes are reported as the package does: `int()` of x, y, w, h.

use super::cv::{self, Padded};
use super::runtime::{Output, Runtime};
use super::{ModelFile, settings_error};
use crate::ModelError;
use art_core::{Image, ImageJudge, JudgeScore, Label, ModelIdentity, RoleError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The classes in the model's output order (`nudenet.nudenet.__labels`).
pub const CLASSES: [&str; 18] = [
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
];

/// The default unsafe classes: the exposed sexual body parts (not feet, belly, armpits or a
/// male chest, and nothing covered).
pub const DEFAULT_UNSAFE: [&str; 5] = [
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_EXPOSED",
    "BUTTOCKS_EXPOSED",
];

/// The model's input side.
pub const SIDE: usize = 320;
/// An anchor is a candidate when its best class score is at least this (`_postprocess`).
pub const CANDIDATE_SCORE: f32 = 0.2;
/// `NMSBoxes` keeps scores above this...
pub const NMS_SCORE: f32 = 0.25;
/// ...and drops a box whose IoU with a kept one is above this.
pub const NMS_IOU: f32 = 0.45;
/// The default per-class threshold of the judge.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// `kind = "nudenet"`'s settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NudeNetSettings {
    /// The judge's name in the store and reports (default `nudenet`).
    pub name: String,
    /// The ONNX file (`320n.onnx`); unset: `320n.onnx` of PyPI `nudenet==3.4.2`, fetched into
    /// the cache at first use.
    pub model: Option<PathBuf>,
    /// `tract` (default) or `ort`.
    pub runtime: Runtime,
    /// The classes that make an image unsafe (default [`DEFAULT_UNSAFE`]).
    pub unsafe_classes: Vec<String>,
    /// A detection of an unsafe class at or above this score makes the image unsafe (default
    /// 0.5). Detections exist only above 0.25 (the package's NMS threshold), so lower values
    /// act as 0.25.
    pub threshold: f64,
    /// Per-class thresholds that replace `threshold` for their class (classes must be unsafe
    /// classes).
    pub class_thresholds: BTreeMap<String, f64>,
}

impl Default for NudeNetSettings {
    fn default() -> Self {
        Self {
            name: "nudenet".into(),
            model: None,
            runtime: Runtime::Tract,
            unsafe_classes: DEFAULT_UNSAFE.iter().map(|s| s.to_string()).collect(),
            threshold: DEFAULT_THRESHOLD,
            class_thresholds: BTreeMap::new(),
        }
    }
}

impl NudeNetSettings {
    /// The threshold of each unsafe class, by class index; errors name the bad setting.
    pub fn validate(&self) -> Result<Vec<(usize, f64)>, ModelError> {
        let err = |key: &str, d: String| settings_error("nudenet", key, d);
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        let unit = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !unit(self.threshold) {
            return Err(err(
                "threshold",
                format!("{} is not a score in 0..=1", self.threshold),
            ));
        }
        if self.unsafe_classes.is_empty() {
            return Err(err(
                "unsafe_classes",
                "is empty: the judge could never say unsafe".into(),
            ));
        }
        let mut out = Vec::new();
        for c in &self.unsafe_classes {
            let id = class_id(c).ok_or_else(|| {
                err(
                    "unsafe_classes",
                    format!(
                        "unknown class {c:?}; NudeNet's classes: {}",
                        CLASSES.join(", ")
                    ),
                )
            })?;
            if out.iter().all(|&(i, _)| i != id) {
                out.push((id, self.threshold));
            }
        }
        for (c, &t) in &self.class_thresholds {
            let key = format!("class_thresholds.{c}");
            let id = class_id(c).ok_or_else(|| {
                err(
                    &key,
                    format!("unknown class; NudeNet's classes: {}", CLASSES.join(", ")),
                )
            })?;
            if !unit(t) {
                return Err(err(&key, format!("{t} is not a score in 0..=1")));
            }
            let slot = out.iter_mut().find(|(i, _)| *i == id).ok_or_else(|| {
                err(
                    &key,
                    "is not one of unsafe_classes, so its threshold would never be used".into(),
                )
            })?;
            slot.1 = t;
        }
        if !super::runtime::is_built(self.runtime) {
            return Err(err("runtime", super::runtime::NOT_BUILT.into()));
        }
        Ok(out)
    }
}

/// The index of a class name.
pub fn class_id(name: &str) -> Option<usize> {
    CLASSES.iter().position(|c| *c == name)
}

/// One detection as `NudeDetector.detect` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub class: &'static str,
    pub score: f32,
    /// `[x, y, width, height]` in pixels of the image, truncated like the package's `int()`.
    pub bbox: [i32; 4],
}

/// The letterbox of one image: its size and the side of the padded square.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Letterbox {
    pub width: usize,
    pub height: usize,
}

impl Letterbox {
    pub fn of(img: &Image) -> Self {
        Self {
            width: img.width() as usize,
            height: img.height() as usize,
        }
    }

    pub fn side(&self) -> usize {
        self.width.max(self.height)
    }
}

/// The padded image resized to 320x320 (RGB8, row-major): what the blob is made of.
pub fn resized(img: &Image) -> Vec<u8> {
    let lb = Letterbox::of(img);
    cv::resize_linear(&Padded::square(img.rgb(), lb.width, lb.height), SIDE, SIDE)
}

/// The model's input `[1, 3, 320, 320]` (planes B, G, R, values `v * (1/255)` in f32).
pub fn blob(img: &Image) -> Vec<f32> {
    let px = resized(img);
    let scale = (1.0f64 / 255.0) as f32;
    let n = SIDE * SIDE;
    let mut out = vec![0f32; 3 * n];
    for i in 0..n {
        for (plane, c) in [(0, 2), (1, 1), (2, 0)] {
            out[plane * n + i] = px[3 * i + c] as f32 * scale;
        }
    }
    out
}

/// A candidate box before NMS: `[x, y, w, h]` in image pixels (f32 values, as numpy has
/// them), its best class and score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub rect: [f32; 4],
    pub class: usize,
    pub score: f32,
}

/// `_postprocess` up to NMS: the candidates of a raw output `[1, 4 + classes, anchors]`.
pub fn candidates(out: &Output, lb: &Letterbox) -> Result<Vec<Candidate>, String> {
    let [1, rows, anchors] = out.shape[..] else {
        return Err(format!(
            "NudeNet output has shape {:?}; expected [1, 22, anchors]",
            out.shape
        ));
    };
    if rows != 4 + CLASSES.len() || out.data.len() != rows * anchors {
        return Err(format!(
            "NudeNet output has shape {:?}; expected [1, 22, anchors]",
            out.shape
        ));
    }
    let at = |r: usize, a: usize| out.data[r * anchors + a];
    let (w_img, h_img) = (lb.width as f32, lb.height as f32);
    let side = lb.side() as f32;
    let model = SIDE as f32;
    let mut found = Vec::new();
    for a in 0..anchors {
        let (mut class, mut best) = (0, at(4, a));
        for k in 1..CLASSES.len() {
            let s = at(4 + k, a);
            if s > best {
                class = k;
                best = s;
            }
        }
        if best.is_nan() || best < CANDIDATE_SCORE {
            continue;
        }
        let (cx, cy, w, h) = (at(0, a), at(1, a), at(2, a), at(3, a));
        let x = (cx - w / 2.0) * side / model;
        let y = (cy - h / 2.0) * side / model;
        let w = w * side / model;
        let h = h * side / model;
        // Python's min/max keep the first argument unless the second is strictly better.
        let x = max0(if x <= w_img { x } else { w_img });
        let y = max0(if y <= h_img { y } else { h_img });
        let w = if w <= w_img - x { w } else { w_img - x };
        let h = if h <= h_img - y { h } else { h_img - y };
        found.push(Candidate {
            rect: [x, y, w, h],
            class,
            score: best,
        });
    }
    Ok(found)
}

fn max0(v: f32) -> f32 {
    if v > 0.0 { v } else { 0.0 }
}

/// `cv2.dnn.NMSBoxes(boxes, scores, 0.25, 0.45)`: the kept candidates' indices, best first.
pub fn nms(cands: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cands.len())
        .filter(|&i| cands[i].score > NMS_SCORE)
        .collect();
    order.sort_by(|&a, &b| cands[b].score.total_cmp(&cands[a].score));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        let keep = kept
            .iter()
            .all(|&k| overlap(&cands[i].rect, &cands[k].rect) <= NMS_IOU);
        if keep {
            kept.push(i);
        }
    }
    kept
}

/// OpenCV's `rectOverlap` of two `Rect2d`: `1 - (float)jaccardDistance`.
fn overlap(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let r = |v: &[f32; 4]| v.map(|x| x as f64);
    let (a, b) = (r(a), r(b));
    let (aa, ab) = (a[2] * a[3], b[2] * b[3]);
    let distance = if aa + ab <= f64::EPSILON {
        0.0
    } else {
        let i = intersection_area(&a, &b);
        1.0 - i / (aa + ab - i)
    };
    1.0 - distance as f32
}

/// `(a & b).area()` of OpenCV's `Rect_<double>`.
fn intersection_area(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let empty = |r: &[f64; 4]| r[2] <= 0.0 || r[3] <= 0.0;
    if empty(a) || empty(b) {
        return 0.0;
    }
    let (x_min, x_max) = if a[0] < b[0] { (a, b) } else { (b, a) };
    let (y_min, y_max) = if a[1] < b[1] { (a, b) } else { (b, a) };
    let (dx, dy) = (x_max[0] - x_min[0], y_max[1] - y_min[1]);
    if dx < 0.0 || dy < 0.0 || dx >= x_min[2] || dy >= y_min[3] {
        return 0.0;
    }
    let w = (x_min[2] - dx).min(x_max[2]);
    let h = (y_min[3] - dy).min(y_max[3]);
    w * h
}

/// The whole of `_postprocess`: the detections of a raw output, best first.
pub fn postprocess(out: &Output, lb: &Letterbox) -> Result<Vec<Detection>, String> {
    let c = candidates(out, lb)?;
    Ok(nms(&c)
        .into_iter()
        .map(|i| Detection {
            class: CLASSES[c[i].class],
            score: c[i].score,
            bbox: c[i].rect.map(|v| v as i32),
        })
        .collect())
}

/// The NudeNet detector and image judge.
#[derive(Debug)]
pub struct NudeNet {
    file: ModelFile,
    settings: NudeNetSettings,
    thresholds: Vec<(usize, f64)>,
    identity: ModelIdentity,
}

impl NudeNet {
    /// Validates the settings, finds (or fetches) the ONNX file and loads it once.
    pub fn new(settings: &NudeNetSettings) -> Result<Self, ModelError> {
        let thresholds = settings.validate()?;
        let file = ModelFile::open(
            settings.model.as_deref(),
            &super::nudenet_wheel(),
            settings.runtime,
            &[1, 3, SIDE, SIDE],
        )?;
        let mut identity = file
            .identity("nudenet", settings.runtime, settings.threshold)
            .with_param("unsafe_classes", settings.unsafe_classes.join(","));
        if !settings.class_thresholds.is_empty() {
            let t: Vec<String> = settings
                .class_thresholds
                .iter()
                .map(|(c, t)| format!("{c}={t}"))
                .collect();
            identity = identity.with_param("class_thresholds", t.join(","));
        }
        Ok(Self {
            file,
            settings: settings.clone(),
            thresholds,
            identity,
        })
    }

    /// The model's raw output `[1, 22, 2100]` for an image.
    pub fn raw(&self, img: &Image) -> Result<Output, String> {
        let mut outs = self.file.model.run(&blob(img))?;
        if outs.is_empty() {
            return Err("the NudeNet graph returned no output".into());
        }
        Ok(outs.swap_remove(0))
    }

    /// Every detection in an image (all classes), best first, as `NudeDetector.detect`.
    pub fn detect(&self, img: &Image) -> Result<Vec<Detection>, String> {
        postprocess(&self.raw(img)?, &Letterbox::of(img))
    }

    /// The verdict on a set of detections: the best unsafe-class score (0 without one), unsafe
    /// when a detection reaches its class's threshold.
    pub fn score(&self, dets: &[Detection]) -> JudgeScore {
        let mut score = 0.0f64;
        let mut unsafe_ = false;
        for d in dets {
            let id = class_id(d.class).unwrap_or(usize::MAX);
            if let Some(&(_, t)) = self.thresholds.iter().find(|(i, _)| *i == id) {
                score = score.max(d.score as f64);
                unsafe_ |= d.score as f64 >= t;
            }
        }
        JudgeScore {
            label: if unsafe_ { Label::Unsafe } else { Label::Safe },
            score,
            threshold: Some(self.settings.threshold),
        }
    }

    pub fn settings(&self) -> &NudeNetSettings {
        &self.settings
    }

    /// The ONNX file in use.
    pub fn model_path(&self) -> &std::path::Path {
        &self.file.path
    }
}

impl ImageJudge for NudeNet {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn identity(&self) -> ModelIdentity {
        self.identity.clone()
    }

    fn judge(&self, images: &[&Image]) -> Vec<Result<JudgeScore, RoleError>> {
        super::judge_each("nudenet", images, |img| {
            self.detect(img).map(|d| self.score(&d))
        })
    }
}
