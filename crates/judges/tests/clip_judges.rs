//! The CLIP image judges (Q16, the multi-headed safety classifier, the Stable Diffusion safety
//! checker) and their image processors vs open_clip 3.3 / torchvision 0.29, transformers 5.24
//! and diffusers 0.42.1 on tiny random models (golden files from
//! `tools/golden/clip_judges.py`): pixel values of both processors (three resize/crop
//! settings, the crop offsets where they differ, padding), image embeddings of the
//! transformers- and open_clip-named checkpoints (safetensors and `.bin`), ART's embedding file
//! formats (numpy pickles of protocols 2-5, Fortran order, float32; torch files of a Parameter
//! and a tensor), the judges' probabilities, scores and labels, the safety checker's rounding
//! and special-care adjustment (also with the transformers-4 tensor names, and from a
//! `pytorch_model.bin`), the role contract, errors that name the file; the real ART files
//! from `../shared/data/art-judge-heads` (required: a run without them fails unless
//! `ART_TEST_SKIP=judge-heads`);
//! and the download of ART's files from a local server (checked, cached).

use art_core::{Image, ImageJudge, Label};
use art_judges::clip::{
    BackboneLayout, ClipBackbone, HeadFile, HeadFiles, MhscHead, MhscHeadNet, MultiHeaded,
    MultiHeadedSettings, Q16, Q16Embeddings, Q16Settings, SdSafetyChecker, SdSafetyCheckerSettings,
    read_embeddings, read_numpy_pickle, read_torch_tensor,
};
use art_nn::LoadOptions;
use art_nn::vision::preprocess::{
    ClipImageProcessor, ImagePreprocessor, ResizeTo, TorchvisionTransform,
};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use art_testkit::golden as common;
use common::{Golden, copy_dir, max_abs, max_diff, read_png};

const NAMES: [&str; 5] = ["landscape", "wide", "tall", "square", "tiny"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_judges")
}

fn golden() -> &'static Golden {
    static G: OnceLock<Golden> = OnceLock::new();
    G.get_or_init(|| Golden::read(&fixtures()))
}

fn json() -> &'static Value {
    &golden().json
}

fn tensor(name: &str) -> &'static Tensor {
    golden().tensor(name)
}

fn images() -> &'static Vec<Image> {
    static I: OnceLock<Vec<Image>> = OnceLock::new();
    I.get_or_init(|| {
        NAMES
            .iter()
            .map(|n| read_png(&fixtures().join(format!("images/{n}.png"))))
            .collect()
    })
}

fn pixels_tensor(data: &[f32], h: usize, w: usize) -> Tensor {
    Tensor::from_vec(data.to_vec(), (3, h, w), &Device::Cpu).unwrap()
}

fn vec1(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn local_heads(dir: &Path) -> HeadFiles {
    HeadFiles {
        local_dir: Some(dir.to_path_buf()),
        ..HeadFiles::default()
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn hf_backbone() -> Arc<ClipBackbone> {
    static B: OnceLock<Arc<ClipBackbone>> = OnceLock::new();
    B.get_or_init(|| {
        Arc::new(
            ClipBackbone::load(&path_str(&fixtures().join("hf")), &LoadOptions::default()).unwrap(),
        )
    })
    .clone()
}

fn openclip_backbone() -> Arc<ClipBackbone> {
    static B: OnceLock<Arc<ClipBackbone>> = OnceLock::new();
    B.get_or_init(|| {
        Arc::new(
            ClipBackbone::load(
                &path_str(&fixtures().join("openclip")),
                &LoadOptions::default(),
            )
            .unwrap(),
        )
    })
    .clone()
}

fn tv28() -> TorchvisionTransform {
    TorchvisionTransform::clip(28)
}

#[test]
fn both_processors_give_their_references_pixel_values() {
    let mut worst = (0.0f32, 0.0f32);
    for (name, img) in NAMES.iter().zip(images()) {
        for v in json()["processors"]["variants"].as_array().unwrap() {
            let (resize, crop) = (
                v[0].as_u64().unwrap() as usize,
                v[1].as_u64().unwrap() as usize,
            );
            let tv = TorchvisionTransform {
                resize,
                crop: (crop, crop),
                ..TorchvisionTransform::clip(resize)
            }
            .preprocess(img)
            .unwrap();
            let hf = ClipImageProcessor {
                size: ResizeTo::ShortestEdge(resize),
                crop_size: (crop, crop),
                ..ClipImageProcessor::clip(resize)
            }
            .preprocess(img)
            .unwrap();
            assert_eq!(
                (tv.height, tv.width, hf.height, hf.width),
                (crop, crop, crop, crop)
            );
            let dt = max_abs(
                &pixels_tensor(&tv.data, crop, crop),
                tensor(&format!("pixels/{name}/torchvision/{resize}_{crop}")),
            );
            let dh = max_abs(
                &pixels_tensor(&hf.data, crop, crop),
                tensor(&format!("pixels/{name}/transformers/{resize}_{crop}")),
            );
            assert!(
                dt <= 1e-6,
                "{name} {resize}/{crop}: torchvision pixels differ by {dt}"
            );
            assert!(
                dh <= 1e-6,
                "{name} {resize}/{crop}: transformers pixels differ by {dh}"
            );
            worst = (worst.0.max(dt), worst.1.max(dh));
            // Where the references differ, so do we, in the same places.
            let ref_diff = json()["processors"][name][format!("{resize}_{crop}")]
                ["torchvision_vs_transformers_max_abs_diff"]
                .as_f64()
                .unwrap();
            assert_eq!(
                ref_diff > 0.0,
                tv.data != hf.data,
                "{name} {resize}/{crop}: the pipelines differ where the references differ"
            );
        }
    }
    eprintln!(
        "pixel max abs diff: torchvision {}, transformers {}",
        worst.0, worst.1
    );
    // The crop rounding shows on `wide` (d = 3) and `landscape` (d = 7) at 28/28.
    let d = |n: &str| {
        json()["processors"][n]["28_28"]["torchvision_vs_transformers_max_abs_diff"]
            .as_f64()
            .unwrap()
    };
    assert!(d("wide") > 0.0 && d("landscape") > 0.0 && d("tall") == 0.0);
}

#[test]
fn the_checkers_preprocessor_config_is_read() {
    let p = fixtures().join("sd-checker/preprocessor_config.json");
    let proc = ClipImageProcessor::from_json(&std::fs::read(&p).unwrap(), &p).unwrap();
    assert_eq!(proc, ClipImageProcessor::clip(28));
}

#[test]
fn every_checkpoint_layout_gives_encode_image() {
    let dir = fixtures();
    let opts = LoadOptions::default();
    let loaded = [
        ("hf", hf_backbone(), BackboneLayout::Transformers),
        ("openclip", openclip_backbone(), BackboneLayout::OpenClip),
        (
            "openclip-bin",
            Arc::new(ClipBackbone::load(&path_str(&dir.join("openclip-bin")), &opts).unwrap()),
            BackboneLayout::OpenClip,
        ),
        (
            "open_clip_model.safetensors",
            Arc::new(
                ClipBackbone::load(
                    &path_str(&dir.join("openclip/open_clip_model.safetensors")),
                    &opts,
                )
                .unwrap(),
            ),
            BackboneLayout::OpenClip,
        ),
    ];
    let mut worst = 0.0f32;
    for (what, b, layout) in &loaded {
        assert_eq!(b.layout(), *layout, "{what}");
        assert_eq!((b.embed_dim(), b.image_size()), (16, 28), "{what}");
        assert_eq!(b.config().hidden_act, "quick_gelu", "{what}");
        assert_eq!(b.config().num_attention_heads, 2, "{what}");
        for (name, img) in NAMES.iter().zip(images()) {
            let px = tv28().preprocess(img).unwrap();
            let e = b.embed(&px).unwrap();
            let want = vec1(tensor(&format!("embeds/{name}/openclip")));
            let d = max_diff(&e, &want);
            assert!(d <= 1e-5, "{what} {name}: embedding differs by {d}");
            worst = worst.max(d);
        }
    }
    eprintln!("embedding max abs diff vs open_clip encode_image: {worst}");
}

#[test]
fn a_bare_open_clip_file_is_taken_for_the_openai_vit() {
    // Without open_clip_config.json the OpenAI ViT's 64-wide heads are assumed, which the tiny
    // model's 32-wide tower cannot have: the error says so.
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("open_clip_model.safetensors");
    std::fs::copy(fixtures().join("openclip/open_clip_model.safetensors"), &f).unwrap();
    let e = ClipBackbone::load(&path_str(&f), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("head width 64") && e.contains("open_clip_model.safetensors"),
        "{e}"
    );
}

#[test]
fn arts_embedding_formats_are_read_without_python() {
    let q = fixtures().join("q16");
    let p_values = vec1(tensor("q16/p_values"));
    for f in [
        "prompts_p2.p",
        "prompts_p3.p",
        "prompts_p4.p",
        "prompts_p5.p",
        "prompts_f32.p",
        "prompts_fortran.p",
    ] {
        let t = read_embeddings(&q.join(f)).unwrap();
        assert_eq!(t.dims(), &[2, 16], "{f}");
        assert_eq!(vec1(&t), p_values, "{f}");
    }
    let t = read_numpy_pickle(&q.join("prompts_p3.p")).unwrap();
    assert_eq!(t.dtype(), DType::F32);
    let pt = read_torch_tensor(&q.join("prompts.pt")).unwrap();
    assert_eq!((pt.dtype(), pt.dims()), (DType::F32, &[2usize, 16][..]));
    assert_eq!(vec1(&pt), vec1(tensor("q16/pt_values")));
    let t = read_embeddings(&q.join("prompts_tensor.pt")).unwrap();
    assert_eq!(vec1(&t), vec1(tensor("q16/pt_tensor_values")));
}

fn q16_settings(embeddings: Q16Embeddings) -> Q16Settings {
    Q16Settings {
        embeddings,
        files: local_heads(&fixtures().join("heads")),
        ..Q16Settings::default()
    }
}

#[test]
fn q16_matches_the_reference() {
    let mut worst = 0.0f32;
    for (which, emb) in [
        ("p", Q16Embeddings::Original),
        ("pt", Q16Embeddings::Finetuned),
    ] {
        let j = Q16::with_backbone(&q16_settings(emb), hf_backbone()).unwrap();
        let want = tensor(&format!("q16/{which}/probs"))
            .to_vec2::<f32>()
            .unwrap();
        let want_cos = tensor(&format!("q16/{which}/cos"))
            .to_vec2::<f32>()
            .unwrap();
        let labels = json()["q16"][which]["labels"].as_array().unwrap();
        let judged = j.judge(&images().iter().collect::<Vec<_>>());
        for (i, img) in images().iter().enumerate() {
            let s = j.scores(img).unwrap();
            let d = max_diff(&s.probs, &want[i]);
            assert!(
                d <= 1e-4,
                "q16 {which} {}: probabilities differ by {d}",
                NAMES[i]
            );
            assert!(
                max_diff(&s.cos, &want_cos[i]) <= 1e-6,
                "{which} {}: cos",
                NAMES[i]
            );
            worst = worst.max(d);
            let score = judged[i].as_ref().unwrap();
            let unsafe_ = labels[i].as_u64().unwrap() == 1;
            assert_eq!(
                score.label == Label::Unsafe,
                unsafe_,
                "q16 {which} {}",
                NAMES[i]
            );
            assert_eq!(score.score, s.probs[1] as f64);
            assert_eq!(score.threshold, None);
        }
    }
    eprintln!("q16 probability max abs diff: {worst}");
    // A file of one's own, and a threshold.
    let mut s = q16_settings(Q16Embeddings::File(fixtures().join("q16/prompts_p5.p")));
    s.threshold = Some(0.9);
    let j = Q16::with_backbone(&s, hf_backbone()).unwrap();
    let out = j.judge(&images().iter().collect::<Vec<_>>());
    let p = json()["q16"]["p"]["p_inappropriate"].as_array().unwrap();
    for (o, p) in out.iter().zip(p) {
        let o = o.as_ref().unwrap();
        assert_eq!(o.threshold, Some(0.9));
        assert_eq!(o.label == Label::Unsafe, p.as_f64().unwrap() > 0.9);
    }
    let id = j.identity();
    assert_eq!(id.kind, "q16");
    assert_eq!(id.params["threshold"], "0.9");
}

fn mhsc_settings() -> MultiHeadedSettings {
    MultiHeadedSettings {
        files: local_heads(&fixtures().join("heads")),
        ..MultiHeadedSettings::default()
    }
}

#[test]
fn the_multi_headed_classifier_matches_the_reference() {
    let m = &json()["mhsc"];
    let mut worst = 0.0f32;
    for backbone in [openclip_backbone(), hf_backbone()] {
        let j = MultiHeaded::with_backbone(&mhsc_settings(), backbone).unwrap();
        let out = j.judge(&images().iter().collect::<Vec<_>>());
        for (i, img) in images().iter().enumerate() {
            let s = j.scores(img).unwrap();
            for h in MhscHead::ALL {
                let want = tensor(&format!("mhsc/{}", h.name()))
                    .to_vec1::<f32>()
                    .unwrap()[i];
                let d = (s.get(h).unwrap() - want).abs();
                assert!(
                    d <= 1e-4,
                    "{} {}: head probability differs by {d}",
                    h.name(),
                    NAMES[i]
                );
                worst = worst.max(d);
            }
            let o = out[i].as_ref().unwrap();
            assert_eq!(
                o.label == Label::Unsafe,
                m["unsafe"][i].as_bool().unwrap(),
                "{}",
                NAMES[i]
            );
            assert!((o.score - m["score"][i].as_f64().unwrap()).abs() <= 1e-4);
            assert_eq!(o.threshold, Some(0.5));
        }
    }
    eprintln!("mhsc probability max abs diff: {worst}");
    // Only some heads counted.
    let s = MultiHeadedSettings {
        heads: vec![MhscHead::Sexual, MhscHead::Violent],
        ..mhsc_settings()
    };
    let j = MultiHeaded::with_backbone(&s, openclip_backbone()).unwrap();
    let out = j.judge(&images().iter().collect::<Vec<_>>());
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            o.as_ref().unwrap().label == Label::Unsafe,
            m["unsafe_sexual_violent_only"][i].as_bool().unwrap()
        );
    }
    assert_eq!(j.identity().params["heads"], "sexual|violent");
}

fn checker_settings(dir: &Path) -> SdSafetyCheckerSettings {
    SdSafetyCheckerSettings {
        model: path_str(dir),
        ..SdSafetyCheckerSettings::default()
    }
}

fn check_safety_checker(j: &SdSafetyChecker) {
    let g = &json()["sd_checker"];
    let px = ClipImageProcessor::clip(28);
    let want_px = tensor("sd_checker/pixels");
    let cos = tensor("sd_checker/cos").to_vec2::<f32>().unwrap();
    let scos = tensor("sd_checker/special_cos").to_vec2::<f32>().unwrap();
    let out = j.judge(&images().iter().collect::<Vec<_>>());
    for (i, img) in images().iter().enumerate() {
        let p = px.preprocess(img).unwrap();
        let want = vec1(&want_px.get(i).unwrap());
        assert!(max_diff(&p.data, &want) <= 1e-6, "{}: pixels", NAMES[i]);
        let s = j.scores(img).unwrap();
        assert!(
            max_diff(&s.concept_cos, &cos[i]) <= 1e-5,
            "{}: cos",
            NAMES[i]
        );
        assert!(
            max_diff(&s.special_cos, &scos[i]) <= 1e-5,
            "{}: special cos",
            NAMES[i]
        );
        let f32s = |v: &Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        assert_eq!(
            s.special,
            f32s(&g["special"][i]),
            "{}: special scores",
            NAMES[i]
        );
        assert_eq!(
            s.concepts,
            f32s(&g["concepts"][i]),
            "{}: concept scores",
            NAMES[i]
        );
        assert_eq!(s.adjustment, g["adjustment"][i].as_f64().unwrap() as f32);
        let bad: Vec<usize> = g["bad_concepts"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(s.bad_concepts, bad, "{}", NAMES[i]);
        let o = out[i].as_ref().unwrap();
        assert_eq!(
            o.label == Label::Unsafe,
            g["has_nsfw"][i].as_bool().unwrap(),
            "{}",
            NAMES[i]
        );
        assert_eq!(o.score, g["score"][i].as_f64().unwrap());
        assert_eq!(o.threshold, Some(0.0));
    }
}

#[test]
fn the_safety_checker_matches_diffusers() {
    let j = SdSafetyChecker::load(&checker_settings(&fixtures().join("sd-checker"))).unwrap();
    assert_eq!(j.backbone().config().num_hidden_layers, 3);
    check_safety_checker(&j);
    let s = j.scores(&images()[3]).unwrap();
    // +0.0003 rounds to 0.0 and does not fire; image 0 fires concept 1 only through the
    // special-care adjustment.
    assert_eq!(s.concepts[2], 0.0);
    let s0 = j.scores(&images()[0]).unwrap();
    assert!(s0.adjustment == 0.01 && s0.concepts[1] > 0.0 && s0.concepts[1] - 0.01 < 0.0);
    assert_eq!(j.identity().kind, "sd-safety-checker");
}

#[test]
fn the_safety_checker_reads_transformers_4_names() {
    // CompVis/stable-diffusion-safety-checker was saved by transformers 4: the tower sits under
    // `vision_model.vision_model.`; transformers 5 writes `vision_model.`.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("sd-checker"), tmp.path());
    let f = tmp.path().join("model.safetensors");
    let t = candle_core::safetensors::load(&f, &Device::Cpu).unwrap();
    let renamed: HashMap<String, Tensor> = t
        .into_iter()
        .map(|(k, v)| match k.strip_prefix("vision_model.") {
            Some(rest) => (format!("vision_model.vision_model.{rest}"), v),
            None => (k, v),
        })
        .collect();
    candle_core::safetensors::save(&renamed, &f).unwrap();
    let j = SdSafetyChecker::load(&checker_settings(tmp.path())).unwrap();
    check_safety_checker(&j);
}

#[test]
fn the_safety_checker_reads_a_pytorch_bin() {
    // pytorch_model.bin with transformers 4's names, as the hub repository ships it.
    let j = SdSafetyChecker::load(&checker_settings(&fixtures().join("sd-checker-bin"))).unwrap();
    check_safety_checker(&j);
}

#[test]
fn the_judges_keep_the_role_contract() {
    let imgs: Vec<&Image> = images().iter().chain(images().iter().take(2)).collect();
    let q = Q16::with_backbone(&q16_settings(Q16Embeddings::Original), hf_backbone()).unwrap();
    art_testkit::contract::image_judge(&q, &imgs);
    let m = MultiHeaded::with_backbone(&mhsc_settings(), openclip_backbone()).unwrap();
    art_testkit::contract::image_judge(&m, &imgs);
    let c = SdSafetyChecker::load(&checker_settings(&fixtures().join("sd-checker"))).unwrap();
    art_testkit::contract::image_judge(&c, &imgs);
    assert_eq!(
        (q.name(), m.name(), c.name()),
        ("q16", "multi-headed", "sd-safety-checker")
    );
    assert_eq!(m.identity().kind, "multi-headed");
}

/// The judgements of `j` on every image.
fn judged_all(j: &dyn ImageJudge) -> Vec<art_core::JudgeScore> {
    j.judge(&images().iter().collect::<Vec<_>>())
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn judges_sharing_a_tower_run_it_once_per_image_with_the_same_scores() {
    let load = || {
        Arc::new(
            ClipBackbone::load(&path_str(&fixtures().join("hf")), &LoadOptions::default()).unwrap(),
        )
    };
    let shared = load();
    let q = Q16::with_backbone(&q16_settings(Q16Embeddings::Original), shared.clone()).unwrap();
    let f = Q16::with_backbone(&q16_settings(Q16Embeddings::Finetuned), shared.clone()).unwrap();
    let m = MultiHeaded::with_backbone(&mhsc_settings(), shared.clone()).unwrap();
    let together = [judged_all(&q), judged_all(&f), judged_all(&m)];
    assert_eq!(
        shared.passes(),
        NAMES.len() as u64,
        "one pass per (distinct) image for the three judges"
    );
    // Each judge on a tower of its own gives the same numbers, bit for bit.
    let alone = [
        judged_all(&Q16::with_backbone(&q16_settings(Q16Embeddings::Original), load()).unwrap()),
        judged_all(&Q16::with_backbone(&q16_settings(Q16Embeddings::Finetuned), load()).unwrap()),
        judged_all(&MultiHeaded::with_backbone(&mhsc_settings(), load()).unwrap()),
    ];
    assert_eq!(together, alone);
    // Through another preprocessing, the images whose pixels differ take a pass of their own
    // (transformers' processor gives the same pixels as torchvision's for some of them).
    let other = ImagePreprocessor::Transformers(ClipImageProcessor::clip(28));
    let t = Q16Settings {
        preprocess: Some(other.clone()),
        ..q16_settings(Q16Embeddings::Original)
    };
    let t = Q16::with_backbone(&t, shared.clone()).unwrap();
    judged_all(&t);
    let bits = |p: &ImagePreprocessor, im: &Image| -> Vec<u32> {
        let px = p.preprocess(im).unwrap();
        px.data.iter().map(|v| v.to_bits()).collect()
    };
    let tv = ImagePreprocessor::Torchvision(tv28());
    let mut distinct: Vec<Vec<u32>> = images()
        .iter()
        .flat_map(|im| [bits(&tv, im), bits(&other, im)])
        .collect();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > NAMES.len(), "some pixels differ");
    assert_eq!(shared.passes(), distinct.len() as u64);
    shared.forget_recent();
    judged_all(&q);
    assert_eq!(
        shared.passes(),
        (distinct.len() + NAMES.len()) as u64,
        "forgotten: passes again"
    );
}

#[test]
fn q16_and_mhsc_can_sit_behind_transformers_processor_too() {
    let s = Q16Settings {
        preprocess: Some(ImagePreprocessor::Transformers(ClipImageProcessor::clip(
            28,
        ))),
        ..q16_settings(Q16Embeddings::Original)
    };
    let j = Q16::with_backbone(&s, hf_backbone()).unwrap();
    assert!(j.identity().params["preprocess"].starts_with("transformers-clip"));
    // A processor that does not give the tower's size is refused.
    let s = Q16Settings {
        preprocess: Some(ImagePreprocessor::Torchvision(TorchvisionTransform::clip(
            224,
        ))),
        ..q16_settings(Q16Embeddings::Original)
    };
    let e = Q16::with_backbone(&s, hf_backbone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("28x28"), "{e}");
}

#[test]
fn bad_inputs_are_named() {
    let fx = fixtures();
    // Embeddings of the wrong width.
    let s = q16_settings(Q16Embeddings::File(fx.join("q16/bad_width.p")));
    let e = Q16::with_backbone(&s, hf_backbone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad_width.p") && e.contains("8 wide") && e.contains("16"),
        "{e}"
    );
    // A head of the wrong width.
    let s = MultiHeadedSettings {
        files: local_heads(&fx.join("mhsc-bad")),
        heads: vec![MhscHead::Sexual],
        ..MultiHeadedSettings::default()
    };
    let e = MultiHeaded::with_backbone(&s, hf_backbone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("sexual.pt") && e.contains("8-wide"), "{e}");
    // Missing files.
    let tmp = tempfile::tempdir().unwrap();
    let s = MultiHeadedSettings {
        files: local_heads(tmp.path()),
        ..MultiHeadedSettings::default()
    };
    let e = MultiHeaded::with_backbone(&s, hf_backbone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("multi-headed/sexual.pt") && e.contains("not found"),
        "{e}"
    );
    let s = Q16Settings {
        files: local_heads(tmp.path()),
        ..Q16Settings::default()
    };
    let e = Q16::with_backbone(&s, hf_backbone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ViT-L-14/prompts.p") && e.contains("ViT-L-14__prompts.p"),
        "{e}"
    );
    let e = ClipBackbone::load(
        &path_str(&tmp.path().join("nothing")),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("nothing") && e.contains("not found"), "{e}");
    let e = SdSafetyChecker::load(&checker_settings(&fx.join("hf")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("concept_embeds"), "{e}");
    // Files that are not what they should be.
    std::fs::write(tmp.path().join("x.p"), b"<html>not found</html>").unwrap();
    let e = read_embeddings(&tmp.path().join("x.p"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("x.p") && e.contains("neither"), "{e}");
    let e = read_torch_tensor(&fx.join("heads/multi-headed/sexual.pt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds 9 tensors"), "{e}");
    let e = MhscHeadNet::load(&fx.join("heads/finetuned_q16/prompts.pt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("prompts.pt") && e.contains("0.weight"), "{e}");
    let mut truncated = std::fs::read(fx.join("q16/prompts_p4.p")).unwrap();
    truncated.truncate(100);
    std::fs::write(tmp.path().join("t.p"), truncated).unwrap();
    let e = read_embeddings(&tmp.path().join("t.p"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.p") && e.contains("ends early"), "{e}");
}

/// ART's published judge files (`../shared/data/art-judge-heads`, or `ART_JUDGE_HEADS_DIR`):
/// a test that needs them fails without them unless the run skips `judge-heads` by name
/// (`art_testkit::inputs`).
fn shared_heads(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("ART_JUDGE_HEADS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/art-judge-heads")
        });
    art_testkit::inputs::require_dir(test, "judge-heads", dir, "ART_JUDGE_HEADS_DIR")
}

#[test]
fn arts_real_files_read_as_python_reads_them() {
    let Some(dir) = shared_heads("arts_real_files_read_as_python_reads_them") else {
        return;
    };
    let real: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("real_heads.json")).unwrap())
            .unwrap();
    let files = local_heads(&dir);
    for f in HeadFile::ALL {
        let p = files.resolve(f).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len() as u64, f.size(), "{}", f.path());
        assert_eq!(art_hub::sha256_hex(&bytes), f.sha256(), "{}", f.path());
        assert_eq!(real["files"][f.flat_name()]["sha256"], f.sha256());
    }
    for (f, key) in [
        (HeadFile::Q16Prompts, "ViT-L-14__prompts.p"),
        (HeadFile::Q16Finetuned, "finetuned_q16__prompts.pt"),
    ] {
        let t = read_embeddings(&files.resolve(f).unwrap()).unwrap();
        let r = &real[key];
        assert_eq!(t.dims(), &[2, 768], "{key}");
        let v = vec1(&t);
        let first: Vec<f32> = r["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(&v[..8], &first[..], "{key}");
        let sum: f64 = v.iter().map(|&x| x as f64).sum();
        let sq: f64 = v.iter().map(|&x| (x as f64) * (x as f64)).sum();
        assert!(
            (sum - r["sum"].as_f64().unwrap()).abs() < 1e-6,
            "{key}: sum {sum}"
        );
        assert!(
            (sq - r["sum_sq"].as_f64().unwrap()).abs() < 1e-6,
            "{key}: sum of squares {sq}"
        );
    }
    let inputs = read_embeddings(&files.resolve(HeadFile::Q16Prompts).unwrap())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for h in MhscHead::ALL {
        let net = MhscHeadNet::load(&files.resolve(HeadFile::Mhsc(h)).unwrap()).unwrap();
        assert_eq!(net.in_dim(), 768);
        let want = &real[HeadFile::Mhsc(h).flat_name()]["outputs"];
        for (k, x) in inputs.iter().enumerate() {
            let p = net.probability(x);
            let w = want[k].as_f64().unwrap() as f32;
            assert!((p - w).abs() <= 1e-5, "{}: {p} vs {w}", h.name());
        }
    }
}

/// A server answering each path from `files` (anything else: 404), for `n` connections.
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = match files.get(&path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/clip_prefix")
}

#[test]
fn arts_files_are_downloaded_checked_and_cached() {
    const TEST: &str = "arts_files_are_downloaded_checked_and_cached";
    if art_hub::offline() {
        // HF_HUB_OFFLINE forbids the download this test checks: the refusal is checked here,
        // the download in a child run without the variable.
        let cache = tempfile::tempdir().unwrap();
        let hf = HeadFiles {
            local_dir: None,
            cache_dir: Some(cache.path().to_path_buf()),
            base_url: "http://127.0.0.1:9/clip_prefix".into(),
        };
        let e = hf.resolve(HeadFile::Q16Prompts).unwrap_err().to_string();
        assert!(e.contains("HF_HUB_OFFLINE"), "{e}");
        art_testkit::rerun_test_with_env(TEST, &[], &["HF_HUB_OFFLINE"]);
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    // A file that is not ART's is refused and nothing is cached.
    let mut files = HashMap::new();
    files.insert(
        "/clip_prefix/ViT-L-14/prompts.p".to_string(),
        b"<html>oops</html>".to_vec(),
    );
    let shared = shared_heads(TEST);
    if let Some(dir) = &shared {
        for f in HeadFile::ALL {
            if f != HeadFile::Q16Prompts {
                files.insert(
                    format!("/clip_prefix/{}", f.path()),
                    std::fs::read(dir.join(f.flat_name())).unwrap(),
                );
            }
        }
    }
    let base = serve(files);
    let hf = HeadFiles {
        local_dir: None,
        cache_dir: Some(cache.path().to_path_buf()),
        base_url: base.clone(),
    };
    let e = hf.resolve(HeadFile::Q16Prompts).unwrap_err().to_string();
    assert!(
        e.contains("ViT-L-14/prompts.p") && e.contains("3231"),
        "{e}"
    );
    let cached = cache
        .path()
        .join("6e1ce44e618e894afbb22abd43b7160f04b18344/ViT-L-14/prompts.p");
    assert!(!cached.exists());
    if shared.is_none() {
        let e = hf.resolve(HeadFile::Q16Finetuned).unwrap_err().to_string();
        assert!(e.contains("HTTP 404"), "{e}");
        return;
    }
    // ART's own files are fetched, checked and kept; later calls need no server.
    for f in HeadFile::ALL
        .into_iter()
        .filter(|f| *f != HeadFile::Q16Prompts)
    {
        let p = hf.resolve(f).unwrap();
        assert!(
            p.starts_with(cache.path()) && p.ends_with(f.path()),
            "{}",
            p.display()
        );
        assert_eq!(art_hub::sha256_hex(&std::fs::read(&p).unwrap()), f.sha256());
    }
    let offline = HeadFiles {
        base_url: "http://127.0.0.1:9/clip_prefix".into(),
        ..hf.clone()
    };
    let p = offline
        .resolve(HeadFile::Mhsc(MhscHead::Political))
        .unwrap();
    assert!(p.is_file());
    // A damaged cached file is fetched again.
    std::fs::write(&p, b"damaged").unwrap();
    assert_eq!(
        art_hub::sha256_hex(
            &std::fs::read(hf.resolve(HeadFile::Mhsc(MhscHead::Political)).unwrap()).unwrap()
        ),
        HeadFile::Mhsc(MhscHead::Political).sha256()
    );
    let e = offline
        .resolve(HeadFile::Q16Prompts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot download"), "{e}");
}
