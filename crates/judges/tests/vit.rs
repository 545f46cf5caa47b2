//! The image-classifier judge (ViTForImageClassification) against transformers 5.24 on a tiny
//! random model (tools/golden/vit.py): the PIL-backend ViTImageProcessor's pixel values of
//! wide, tall, tiny, large and exact-size PNGs (bilinear, and bicubic with ImageNet's mean/std)
//! equal, probabilities within 1e-4; the judge's contract (also with an image that fails
//! alone), scores, identity and errors.

use art_testkit::golden as common;

use art_core::{Image, ImageJudge, Label};
use art_judges::vit::{ImageClassifierJudge, ImageClassifierSettings, ViTClassifier};
use art_nn::vision::resample::Filter;
use candle_core::{DType, Device, Tensor};
use common::floats;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const IMAGES: [&str; 5] = ["wide", "tall", "tiny", "big", "exact"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit")
}

fn golden() -> Value {
    common::read_json(&fixtures().join("golden.json"))
}

fn golden_tensors() -> HashMap<String, Tensor> {
    common::read_tensors(&fixtures().join("golden.safetensors"))
}

fn png(name: &str) -> Image {
    common::read_png(&fixtures().join(format!("images/{name}.png")))
}

fn images() -> Vec<Image> {
    IMAGES.iter().map(|n| png(n)).collect()
}

/// A copy of the fixture model with another preprocessor_config.json (from processors/).
fn with_processor(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("model"), tmp.path());
    std::fs::copy(
        fixtures().join(format!("processors/{name}.json")),
        tmp.path().join("preprocessor_config.json"),
    )
    .unwrap();
    tmp
}

fn check(dir: &Path, processor: &str, filter: Filter) {
    let g = golden();
    let t = golden_tensors();
    let c = ViTClassifier::load(dir, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(c.labels(), ["normal", "nsfw"]);
    assert_eq!(c.processor().resample, filter);
    assert_eq!(c.config().image_size, (32, 32));
    let mut worst = 0f32;
    for (name, im) in IMAGES.iter().zip(images()) {
        let row = &g["processors"][processor]["images"][*name];
        assert_eq!(
            row["size"],
            serde_json::json!([im.width(), im.height()]),
            "{name}"
        );
        let px = c.pixel_values(&im).unwrap();
        let want = t[&format!("pixel_values.{processor}.{name}")]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            px, want,
            "{processor}/{name}: pixel values differ from transformers"
        );
        let logits = c.logits_of_pixels(&px).unwrap();
        let want_logits = floats(&row["logits"]);
        let d = common::max_diff(&logits, &want_logits);
        assert!(
            d <= 1e-4,
            "{processor}/{name}: {logits:?} vs {want_logits:?}"
        );
        let probs = c.probabilities(&im).unwrap();
        let want = floats(&row["probabilities"]);
        assert_eq!(probs.len(), 2);
        for (a, b) in probs.iter().zip(&want) {
            worst = worst.max((a - b).abs());
        }
        assert!(
            probs.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-4),
            "{processor}/{name}: {probs:?} vs transformers {want:?}"
        );
        assert_eq!(
            probs[1] > probs[0],
            want[1] > want[0],
            "{processor}/{name}: label"
        );
    }
    eprintln!("{processor}: max |probability - transformers| = {worst:e}");
}

#[test]
fn vit_matches_transformers_with_bilinear_resize() {
    check(&fixtures().join("model"), "bilinear", Filter::Bilinear);
}

#[test]
fn vit_reads_the_processor_filter_mean_and_std() {
    let tmp = with_processor("bicubic");
    check(tmp.path(), "bicubic", Filter::Bicubic);
}

#[test]
fn half_precision_stays_close() {
    let g = golden();
    let c = ViTClassifier::load(&fixtures().join("model"), DType::BF16, &Device::Cpu).unwrap();
    for (name, im) in IMAGES.iter().zip(images()) {
        let p = c.probabilities(&im).unwrap();
        let want = floats(&g["processors"]["bilinear"]["images"][*name]["probabilities"]);
        for (a, b) in p.iter().zip(&want) {
            assert!((a - b).abs() < 0.05, "{name}: {p:?} vs {want:?}");
        }
    }
}

fn settings(dir: &Path) -> ImageClassifierSettings {
    ImageClassifierSettings::new("falconsai-nsfw", dir.to_string_lossy())
}

#[test]
fn judge_keeps_the_image_judge_contract_and_scores_nsfw() {
    let g = golden();
    let ims = images();
    let refs: Vec<&Image> = ims.iter().collect();
    let j = ImageClassifierJudge::load(&settings(&fixtures().join("model"))).unwrap();
    assert_eq!(j.unsafe_labels(), ["nsfw"]);
    art_testkit::contract::image_judge(&j, &refs);
    for (name, r) in IMAGES.iter().zip(j.judge(&refs)) {
        let r = r.unwrap();
        let want = floats(&g["processors"]["bilinear"]["images"][*name]["probabilities"])[1];
        assert!((r.score - f64::from(want)).abs() < 1e-4, "{name}");
        assert_eq!(r.threshold, Some(0.5));
        assert_eq!(
            r.label,
            if r.score >= 0.5 {
                Label::Unsafe
            } else {
                Label::Safe
            }
        );
    }
    let id = j.identity();
    assert_eq!(id.kind, "image-classifier");
    assert_eq!(id.params["unsafe_labels"], "[\"nsfw\"]");
    assert_eq!(id.params["threshold"], "0.5");
    assert_eq!(id.params["dtype"], "f32");

    // Counting "normal" as unsafe instead, with a threshold of 0.6.
    let mut s = settings(&fixtures().join("model"));
    s.unsafe_labels = Some(vec!["NORMAL".into()]);
    s.threshold = 0.6;
    let j = ImageClassifierJudge::load(&s).unwrap();
    let r = j.judge(&refs[1..2]).remove(0).unwrap();
    let tall = floats(&g["processors"]["bilinear"]["images"]["tall"]["probabilities"]);
    assert!((r.score - f64::from(tall[0])).abs() < 1e-4);
    assert_eq!(r.label, Label::Unsafe, "tall is 0.75 normal");
    assert_eq!(j.identity().params["unsafe_labels"], "[\"normal\"]");
}

#[test]
fn an_image_the_processor_cannot_take_fails_alone() {
    let tmp = with_processor("noresize");
    let j = ImageClassifierJudge::load(&settings(tmp.path())).unwrap();
    let ims = images();
    let refs: Vec<&Image> = ims.iter().collect();
    let out = j.judge(&refs);
    assert_eq!(out.len(), IMAGES.len());
    for (name, r) in IMAGES.iter().zip(&out) {
        match *name {
            "exact" => {
                let g = golden();
                let want =
                    floats(&g["processors"]["bilinear"]["images"]["exact"]["probabilities"])[1];
                assert!((r.as_ref().unwrap().score - f64::from(want)).abs() < 1e-4);
            }
            _ => {
                let e = &r.as_ref().unwrap_err().message;
                assert!(
                    e.contains("32x32") && e.contains("image processor"),
                    "{name}: {e}"
                );
            }
        }
    }
    art_testkit::contract::image_judge(&j, &refs);
}

/// A copy of the fixture model whose `config.json` is edited by `edit`.
fn edited(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    common::edited_config(&fixtures().join("model"), edit)
}

fn load_err(dir: &Path) -> String {
    ViTClassifier::load(dir, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string()
}

#[test]
fn unsupported_models_and_bad_settings_are_named() {
    let tmp =
        edited(|v| v["architectures"] = serde_json::json!(["ConvNextForImageClassification"]));
    let e = load_err(tmp.path());
    assert!(
        e.contains("ConvNextForImageClassification")
            && e.contains("ViTForImageClassification")
            && e.contains("config.json"),
        "{e}"
    );
    let tmp = edited(|v| {
        v["id2label"] = serde_json::json!({"0": "drawing", "1": "photo"});
    });
    let e = ImageClassifierJudge::load(&settings(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("drawing, photo") && e.contains("`unsafe_labels`") && e.contains("config.json"),
        "{e}"
    );
    let mut s = settings(&fixtures().join("model"));
    s.unsafe_labels = Some(vec!["porn".into()]);
    let e = ImageClassifierJudge::load(&s).unwrap_err().to_string();
    assert!(e.contains("\"porn\"") && e.contains("normal, nsfw"), "{e}");
    let tmp = edited(|v| v["image_size"] = 30.into());
    let e = load_err(tmp.path());
    assert!(
        e.contains("`image_size`") && e.contains("`patch_size`"),
        "{e}"
    );
    let tmp = edited(|v| v["hidden_size"] = 24.into());
    let e = load_err(tmp.path());
    assert!(
        e.contains("model.safetensors")
            && e.contains("`vit.embeddings.patch_embeddings.projection.weight`")
            && e.contains("[24, 3, 8, 8]"),
        "{e}"
    );
}

#[test]
fn missing_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("model"), tmp.path());
    std::fs::remove_file(tmp.path().join("preprocessor_config.json")).unwrap();
    let e = load_err(tmp.path());
    assert!(
        e.contains("preprocessor_config.json") && e.contains("not found"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("model"), tmp.path());
    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    let e = load_err(tmp.path());
    assert!(
        e.contains("model.safetensors") && e.contains("pytorch_model.bin"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("config.json") && e.contains("not found"), "{e}");
}

#[test]
fn a_pytorch_bin_checkpoint_loads_the_same_model() {
    check(&fixtures().join("model-bin"), "bilinear", Filter::Bilinear);
}
