//! Seconds per guide call: art's LLaVA-NeXT vs transformers (PyTorch CPU) on the same random
//! weights in a reduced shape (the real 336 px tiles and grid pinpoints, a 4-layer 256-wide
//! CLIP tower and a 4-layer 512-wide Mistral with the real 32k vocabulary), side by side in
//! one run. A call is what the Guide role does for a batch: every image through the
//! processor and the tower (a 512 px render is 1 + 4 tiles, 2,928 image tokens), the prompt
//! embeddings, and the paper's beam-sample (5 beams, temperature 3, top-k 50) for exactly N
//! new tokens (`min_new_tokens = N`, no EOS), so both sides do the same work.
//!
//! ```sh
//! python tools/bench/llava_reference.py make /tmp/llava-bench     # once
//! ART_LLAVA_BENCH_DIR=/tmp/llava-bench ART_BENCH_PYTHON=/path/to/python-with-transformers \
//!   cargo bench -p art-models --bench llava -- --batch 8 --new-tokens 16 --repeats 3
//! ```
//! Without `ART_BENCH_PYTHON` only art is measured. Run one batch size per invocation: the
//! peak memory is the process's.

use art_llm::generate::{GenRequest, GenerationConfig, generate};
use art_llm::llava::{self, Piece};
use art_nn::LoadOptions;
use std::path::Path;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{arg, median, read_png};

fn pieces(v: &serde_json::Value) -> Vec<Piece> {
    v.as_array()
        .expect("pieces")
        .iter()
        .map(|p| match p {
            serde_json::Value::String(s) if s == "image" => Piece::Image,
            serde_json::Value::Array(ids) => {
                Piece::Text(ids.iter().map(|x| x.as_u64().expect("id") as u32).collect())
            }
            other => panic!("piece {other}"),
        })
        .collect()
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = arg(&args, "--batch", "1").parse().expect("--batch");
    let n: usize = arg(&args, "--new-tokens", "16")
        .parse()
        .expect("--new-tokens");
    let repeats: usize = arg(&args, "--repeats", "3").parse().expect("--repeats");
    let dir = std::env::var("ART_LLAVA_BENCH_DIR")
        .expect("set ART_LLAVA_BENCH_DIR (made by tools/bench/llava_reference.py make DIR)");
    let dir = Path::new(&dir);
    let inputs: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("bench_inputs.json")).expect("bench_inputs.json"),
    )
    .expect("json");
    let image = read_png(&dir.join(inputs["image"].as_str().expect("image")));
    let pieces = pieces(&inputs["pieces"]);

    let t = Instant::now();
    let model = llava::load(
        dir.to_str().expect("utf-8 path"),
        None,
        false,
        &LoadOptions::default(),
    )
    .expect("load")
    .model;
    let load_s = t.elapsed().as_secs_f64();
    let cfg = |n: usize| GenerationConfig {
        max_new_tokens: n,
        min_new_tokens: n,
        num_beams: 5,
        do_sample: true,
        temperature: 3.0,
        top_k: 50,
        eos_token_ids: vec![],
        ..Default::default()
    };
    let placeholder = model.cfg.image_token_id.unwrap_or(0);
    let call = |n: usize| -> (f64, usize) {
        let t = Instant::now();
        let prompts: Vec<_> = (0..batch)
            .map(|_| {
                let f = model.image_features(&image).expect("features");
                model.prompt(&pieces, &f, placeholder).expect("prompt")
            })
            .collect();
        let reqs: Vec<GenRequest<'_>> = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| GenRequest {
                prompt: &p.ids,
                embeds: Some(&p.embeds),
                seed: i as u64,
            })
            .collect();
        let out = generate(&model.lm, &reqs, &cfg(n), None).expect("generate");
        assert!(out.iter().all(|o| o.tokens.len() == n));
        (t.elapsed().as_secs_f64(), prompts[0].ids.len())
    };
    call(2);
    let mut times = Vec::new();
    let mut prompt_len = 0;
    for _ in 0..repeats {
        let (s, len) = call(n);
        times.push(s);
        prompt_len = len;
    }
    let t = Instant::now();
    let (tiles, px) = model.pixel_values(&image).expect("pixels");
    let _ = model.pack(&model.tile_features(&px).expect("tower"), tiles.size);
    let tower_s = t.elapsed().as_secs_f64();
    let art_s = median(times.clone());
    let rss = art_testkit::peak_rss_mib().unwrap_or(f64::NAN);
    println!(
        "art: batch {batch}, {n} new tokens, prompt {prompt_len} tokens: {art_s:.2} s per call (median of {times:?}), one image through processor+tower+pack {tower_s:.3} s, load {load_s:.1} s, peak RSS {rss:.0} MiB"
    );
    if let Ok(python) = std::env::var("ART_BENCH_PYTHON") {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let r = support::reference(
            &python,
            "llava_reference.py",
            &[
                "bench",
                dir.to_str().expect("utf-8"),
                "--batch",
                &batch.to_string(),
                "--new-tokens",
                &n.to_string(),
                "--repeats",
                &repeats.to_string(),
                "--threads",
                &threads.to_string(),
            ],
        );
        println!("reference: {r}");
    }
}
