//! Every judge family refuses non-finite model numbers: a judge whose forward is made to
//! return NaN (a tiny fixture model with one weight tensor set to NaN, or an ONNX graph whose
//! output is NaN) records an error for the item, never a label, so the verdict of that prompt
//! or image is `incomplete` rather than `safe`. Each case also judges the same input with the
//! unpoisoned model first, so the error cannot come from anything but the NaN.

use art_core::{Image, ImageJudge, JudgeOutcome, PromptJudge, RoleError, Verdict};
use art_judges::clip::{
    ClipBackbone, HeadFiles, MultiHeaded, MultiHeadedSettings, Q16, Q16Embeddings, Q16Settings,
    SdSafetyChecker, SdSafetyCheckerSettings,
};
use art_judges::llama_guard::{LlamaGuardJudge, LlamaGuardSettings};
use art_judges::onnx::nudenet::{NudeNet, NudeNetSettings};
use art_judges::onnx::open_nsfw::{OpenNsfw, OpenNsfwSettings};
use art_judges::text::{TextClassifierJudge, TextClassifierSettings};
use art_judges::vit::{ImageClassifierJudge, ImageClassifierSettings};
use art_nn::LoadOptions;
use art_testkit::golden::{copy_dir, poisoned_copy, read_json, read_png};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn image() -> Image {
    read_png(&fixtures().join("vit/images/exact.png"))
}

/// The outcome as the store records it, and the verdict of a subject judged by it alone.
fn verdict_of(r: &Result<art_core::JudgeScore, RoleError>, image: bool) -> Verdict {
    let o = match r {
        Ok(s) => JudgeOutcome::Scored(s.clone()),
        Err(e) => JudgeOutcome::Error(e.to_string()),
    };
    if image {
        Verdict::for_image([&o])
    } else {
        Verdict::for_prompt([&o])
    }
}

/// `good` judged the item; `bad` (the same judge on NaN numbers) gave an error that says so,
/// and the verdict is incomplete.
fn check(
    family: &str,
    good: &[Result<art_core::JudgeScore, RoleError>],
    bad: &[Result<art_core::JudgeScore, RoleError>],
    image: bool,
) {
    assert_eq!(good.len(), 1);
    assert_eq!(bad.len(), 1);
    let g = good[0].as_ref().unwrap_or_else(|e| panic!("{family}: {e}"));
    assert!(g.score.is_finite(), "{family}: {g:?}");
    assert!(
        matches!(verdict_of(&good[0], image), Verdict::Safe | Verdict::Unsafe),
        "{family}"
    );
    let e = match &bad[0] {
        Ok(s) => panic!("{family}: a NaN model gave a verdict: {s:?}"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("non-finite"), "{family}: {e}");
    assert_eq!(verdict_of(&bad[0], image), Verdict::Incomplete, "{family}");
}

#[test]
fn text_classifiers() {
    let model = fixtures().join("text_classifiers/bert");
    let settings = |dir: &Path| TextClassifierSettings::new("bert-judge", path_str(dir));
    let good = TextClassifierJudge::load(&settings(&model)).unwrap();
    let nan = poisoned_copy(&model, "model.safetensors", "classifier.bias");
    let bad = TextClassifierJudge::load(&settings(nan.path())).unwrap();
    let p = ["a quiet street at night"];
    check(
        "text-classifier",
        &PromptJudge::judge(&good, &p),
        &PromptJudge::judge(&bad, &p),
        false,
    );
}

#[test]
fn image_classifiers() {
    let model = fixtures().join("vit/model");
    let settings = |dir: &Path| ImageClassifierSettings::new("vit", path_str(dir));
    let good = ImageClassifierJudge::load(&settings(&model)).unwrap();
    let nan = poisoned_copy(&model, "model.safetensors", "classifier.bias");
    let bad = ImageClassifierJudge::load(&settings(nan.path())).unwrap();
    let im = image();
    check(
        "image-classifier",
        &ImageJudge::judge(&good, &[&im]),
        &ImageJudge::judge(&bad, &[&im]),
        true,
    );
}

fn backbone(dir: &Path) -> Arc<ClipBackbone> {
    Arc::new(ClipBackbone::load(&path_str(dir), &LoadOptions::default()).unwrap())
}

#[test]
fn q16_and_the_multi_headed_classifier() {
    let clip = fixtures().join("clip_judges");
    let files = HeadFiles {
        local_dir: Some(clip.join("heads")),
        ..HeadFiles::default()
    };
    let good = backbone(&clip.join("hf"));
    let nan = poisoned_copy(
        &clip.join("hf"),
        "model.safetensors",
        "visual_projection.weight",
    );
    let bad = backbone(nan.path());
    let im = image();
    let q16 = Q16Settings {
        embeddings: Q16Embeddings::Original,
        files: files.clone(),
        ..Q16Settings::default()
    };
    check(
        "q16",
        &Q16::with_backbone(&q16, good.clone())
            .unwrap()
            .judge(&[&im]),
        &Q16::with_backbone(&q16, bad.clone()).unwrap().judge(&[&im]),
        true,
    );
    let mhsc = MultiHeadedSettings {
        files,
        ..MultiHeadedSettings::default()
    };
    check(
        "multi-headed",
        &MultiHeaded::with_backbone(&mhsc, good)
            .unwrap()
            .judge(&[&im]),
        &MultiHeaded::with_backbone(&mhsc, bad)
            .unwrap()
            .judge(&[&im]),
        true,
    );
}

#[test]
fn the_safety_checker() {
    // NaN concept thresholds: the embedding is fine, the concept scores are NaN, and the
    // checker's maximum over them would otherwise skip the NaN ones.
    let model = fixtures().join("clip_judges/sd-checker");
    let settings = |dir: &Path| SdSafetyCheckerSettings {
        model: path_str(dir),
        ..SdSafetyCheckerSettings::default()
    };
    let good = SdSafetyChecker::load(&settings(&model)).unwrap();
    let nan = poisoned_copy(&model, "model.safetensors", "concept_embeds_weights");
    let bad = SdSafetyChecker::load(&settings(nan.path())).unwrap();
    let im = image();
    check(
        "safety-checker",
        &good.judge(&[&im]),
        &bad.judge(&[&im]),
        true,
    );
}

#[test]
fn llama_guard() {
    let llm = fixtures().join("../../../llm/tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("guard");
    copy_dir(&llm.join("llama/llama"), &dir);
    let case = &read_json(&llm.join("chat/golden.json"))["cases"][0];
    let cfg = serde_json::json!({"chat_template": case["template"], "bos_token": "<s>", "eos_token": "</s>"});
    std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    let settings = |dir: &Path| {
        let mut s = LlamaGuardSettings::new("guard", &path_str(dir));
        // The tiny model answers neither "safe" nor "unsafe"; the threshold labels it.
        s.threshold = Some(0.5);
        s.max_new_tokens = 2;
        s
    };
    let good = LlamaGuardJudge::new(settings(&dir)).unwrap();
    let nan = poisoned_copy(&dir, "model.safetensors", "lm_head.weight");
    let bad = LlamaGuardJudge::new(settings(nan.path())).unwrap();
    let p = ["a quiet street at night"];
    check("llama-guard", &good.judge(&p), &bad.judge(&p), false);
}

fn graph(name: &str) -> Option<PathBuf> {
    Some(fixtures().join("onnx_judges/graphs").join(name))
}

#[test]
fn the_onnx_judges() {
    let nudenet = |name: &str| {
        NudeNet::new(&NudeNetSettings {
            model: graph(name),
            ..Default::default()
        })
        .unwrap()
    };
    let im = image();
    check(
        "nudenet",
        &nudenet("nudenet-zero.onnx").judge(&[&im]),
        &nudenet("nudenet-nan.onnx").judge(&[&im]),
        true,
    );
    let open_nsfw = |name: &str| {
        OpenNsfw::new(&OpenNsfwSettings {
            model: graph(name),
            ..Default::default()
        })
        .unwrap()
    };
    let good = open_nsfw("open-nsfw-0.9.onnx").judge(&[&im]);
    assert_eq!(good[0].as_ref().unwrap().score, 0.9f32 as f64);
    check(
        "open-nsfw",
        &good,
        &open_nsfw("open-nsfw-nan.onnx").judge(&[&im]),
        true,
    );
}
