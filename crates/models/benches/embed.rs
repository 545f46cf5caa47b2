//! Sentence embeddings per second: art's embedder vs sentence-transformers (PyTorch CPU) on
//! the same model folder, the same 255 prompts (a category's worth: 5 seeds x 51 prompts),
//! batch 32, in one run.
//!
//! `ART_MINILM_DIR=DIR [ART_BENCH_PYTHON=python-with-sentence-transformers] \
//!  cargo bench -p art-models --bench embed [-- RUNS]`

use art_models::SentenceEmbedder;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Prompts shaped like a campaign's: a seed prompt that grows by a phrase per round.
fn prompts() -> Vec<String> {
    let words = [
        "watercolor",
        "in the rain",
        "a crowd",
        "smoke",
        "at night",
        "cinematic lighting",
        "a broken window",
        "graffiti",
        "police lights",
        "an empty street",
        "oil painting",
    ];
    (0..5)
        .flat_map(|seed| {
            (0..51).map(move |round| {
                let mut p = String::from("a pic of cat");
                for k in 0..(round % 17) {
                    p.push_str(", ");
                    p.push_str(words[(seed * 7 + k * 3 + round) % words.len()]);
                }
                p
            })
        })
        .collect()
}

#[allow(clippy::print_stdout)]
fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = std::env::var("ART_MINILM_DIR").expect("set ART_MINILM_DIR to the model folder");
    let e = SentenceEmbedder::load(std::path::Path::new(&dir)).expect("load");
    let prompts = prompts();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    e.embed(&refs[..32]).expect("warm-up");
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            e.embed(&refs).expect("embed");
            t.elapsed().as_secs_f64()
        })
        .collect();
    let art = art_testkit::median(&times);
    println!(
        "art (candle, CPU): {art:.3} s for {} prompts = {:.0} prompts/s; peak RSS {:.0} MiB",
        refs.len(),
        refs.len() as f64 / art,
        art_testkit::peak_rss_mib().unwrap_or(f64::NAN)
    );
    let Ok(python) = std::env::var("ART_BENCH_PYTHON") else {
        println!("sentence-transformers: not measured (set ART_BENCH_PYTHON)");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/bench/embed_reference.py"
    );
    let mut child = Command::new(python)
        .args([script, &dir, &runs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&prompts).expect("json").as_bytes())
        .expect("write prompts");
    let out = child.wait_with_output().expect("python output");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    let reference = v["median_s"].as_f64().expect("median_s");
    println!(
        "sentence-transformers (PyTorch CPU, {} threads): {reference:.3} s = {:.0} prompts/s; peak RSS {:.0} MiB",
        v["threads"],
        refs.len() as f64 / reference,
        v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "ratio: art takes {:.2}x the reference's time",
        art / reference
    );
}
