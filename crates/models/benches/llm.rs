//! Generation speed: art's Llama stack vs transformers (PyTorch CPU) on the same random
//! weights in a ~100M-parameter Llama shape (134M with the untied 32k embedding and head),
//! the same 16 prompts (40-60 tokens), side by side in one run. Every run generates exactly
//! N tokens per request (`min_new_tokens = N`), so both sides do the same work.
//!
//! ```sh
//! python tools/bench/llm_reference.py make /tmp/llm100m      # once: weights + prompts.json
//! ART_LLM_BENCH_DIR=/tmp/llm100m ART_BENCH_PYTHON=/path/to/python-with-transformers \
//!   cargo bench -p art-models --bench llm -- --batch 16 --mode beam-sample --new-tokens 16 --repeats 3
//! ```
//! `--mode greedy` or `beam-sample` (the paper's Writer settings: 5 beams, temperature 3.5,
//! top-k 50, repetition penalty 1.5). Without `ART_BENCH_PYTHON` only art is measured. Run one
//! configuration per invocation: the peak memory is the process's.
//!
//! The quantized CPU path: `--gguf FILE` loads a GGUF model instead (e.g. SmolLM2-135M-Instruct
//! Q4_1, which tools/test.sh fetches) and compares batch-1 greedy decoding of the first prompt
//! with llama.cpp through llama-cpp-python (`ART_BENCH_LLAMA_CPP_PYTHON`, the venv of
//! tools/test.sh; `tools/bench/gguf_reference.py`).

use art_llm::generate::{GenRequest, GenerationConfig, generate};
use art_llm::{CausalLm, LoadOptions};
use std::path::Path;
use std::time::Instant;

mod support;
use support::{arg, median};

fn config(mode: &str, n: usize) -> GenerationConfig {
    let base = GenerationConfig {
        max_new_tokens: n,
        min_new_tokens: n,
        eos_token_ids: vec![2],
        ..Default::default()
    };
    match mode {
        "greedy" => base,
        "beam-sample" => GenerationConfig {
            num_beams: 5,
            do_sample: true,
            temperature: 3.5,
            top_k: 50,
            repetition_penalty: 1.5,
            ..base
        },
        other => panic!("--mode greedy|beam-sample, not {other}"),
    }
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = arg(&args, "--batch", "1").parse().expect("--batch");
    let mode = arg(&args, "--mode", "greedy");
    let n: usize = arg(&args, "--new-tokens", "32")
        .parse()
        .expect("--new-tokens");
    let repeats: usize = arg(&args, "--repeats", "3").parse().expect("--repeats");
    let dir = std::env::var("ART_LLM_BENCH_DIR")
        .expect("set ART_LLM_BENCH_DIR (made by tools/bench/llm_reference.py make DIR)");
    let dir = Path::new(&dir);
    let prompts: Vec<Vec<u32>> =
        serde_json::from_slice(&std::fs::read(dir.join("prompts.json")).expect("prompts.json"))
            .expect("prompts");
    let gguf = args
        .iter()
        .position(|a| a == "--gguf")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let t = Instant::now();
    let lm = match &gguf {
        Some(f) => {
            CausalLm::load_gguf(Path::new(f), &LoadOptions::default(), None)
                .expect("load GGUF")
                .0
        }
        None => CausalLm::load_folder(dir, &LoadOptions::default(), None).expect("load"),
    };
    let load_s = t.elapsed().as_secs_f64();
    let rss_load = art_testkit::peak_rss_mib().unwrap_or(f64::NAN);
    let cfg = config(&mode, n);
    let reqs: Vec<GenRequest<'_>> = prompts[..batch]
        .iter()
        .enumerate()
        .map(|(i, p)| GenRequest::text(p, i as u64))
        .collect();
    generate(&lm, &reqs, &config(&mode, 4), None).expect("warm-up");
    let mut times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let out = generate(&lm, &reqs, &cfg, None).expect("generate");
        times.push(t.elapsed().as_secs_f64());
        assert!(
            out.iter().all(|o| o.tokens.len() == n),
            "exactly {n} tokens each"
        );
    }
    let art = median(times.clone());
    println!(
        "art (candle CPU {}): batch {batch} {mode} {n} new tokens: median {art:.3} s {times:.3?} \
         = {:.1} tokens/s; load {load_s:.1} s; peak RSS {:.0} MiB (after load {rss_load:.0})",
        if gguf.is_some() { "GGUF" } else { "f32" },
        (batch * n) as f64 / art,
        art_testkit::peak_rss_mib().unwrap_or(f64::NAN)
    );
    if let Some(f) = &gguf {
        assert!(
            batch == 1 && mode == "greedy",
            "--gguf compares batch-1 greedy only"
        );
        return gguf_reference(f, dir, n, repeats, art);
    }
    let Ok(python) = std::env::var("ART_BENCH_PYTHON") else {
        println!("transformers: not measured (set ART_BENCH_PYTHON)");
        return;
    };
    let v = support::reference(
        &python,
        "llm_reference.py",
        &[
            "bench",
            dir.to_str().expect("utf-8 path"),
            "--batch",
            &batch.to_string(),
            "--mode",
            &mode,
            "--new-tokens",
            &n.to_string(),
            "--repeats",
            &repeats.to_string(),
        ],
    );
    let reference = v["median_s"].as_f64().expect("median_s");
    let ref_times: Vec<f64> = v["times_s"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    println!(
        "transformers {} (torch {}, {} threads, {}): median {reference:.3} s {ref_times:.3?} = {:.1} tokens/s; \
         peak RSS {:.0} MiB (torch import alone {:.0})",
        v["transformers"].as_str().unwrap_or("?"),
        v["torch"].as_str().unwrap_or("?"),
        v["threads"],
        v["attn_implementation"].as_str().unwrap_or("?"),
        (batch * n) as f64 / reference,
        v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
        v["rss_import_mb"].as_f64().unwrap_or(f64::NAN),
    );
    println!(
        "ratio: art takes {:.2}x transformers' time",
        art / reference
    );
}

#[allow(clippy::print_stdout)]
fn gguf_reference(gguf: &str, dir: &Path, n: usize, repeats: usize, art: f64) {
    let Ok(python) = std::env::var("ART_BENCH_LLAMA_CPP_PYTHON") else {
        println!("llama.cpp: not measured (set ART_BENCH_LLAMA_CPP_PYTHON)");
        return;
    };
    let prompts = dir.join("prompts.json");
    let v = support::reference(
        &python,
        "gguf_reference.py",
        &[
            gguf,
            "--prompts",
            prompts.to_str().expect("utf-8 path"),
            "--new-tokens",
            &n.to_string(),
            "--repeats",
            &repeats.to_string(),
        ],
    );
    let reference = v["median_s"].as_f64().expect("median_s");
    println!(
        "llama.cpp (llama-cpp-python {}, {} threads): median {reference:.3} s = {:.1} tokens/s; peak RSS {:.0} MiB",
        v["llama_cpp_python"].as_str().unwrap_or("?"),
        v["threads"],
        n as f64 / reference,
        v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
    );
    println!("ratio: art takes {:.2}x llama.cpp's time", art / reference);
}
