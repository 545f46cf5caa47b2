//! The Llama-family stack against transformers/PEFT on tiny random weights (golden files from
//! `tools/golden/llama.py`): logits of a left-padded batch, greedy and beam-search tokens,
//! LoRA adapters (safetensors and PyTorch `.bin`, plain and rsLoRA), Mistral's grouped KV
//! heads and sliding window, Llama 3 rope scaling, GGUF files (F32 and Q8_0), and every logit
//! processor on fixed scores.

use art_llm::generate::{self, GenOutput, GenRequest, GenerationConfig, LeftPadded, logits};
use art_llm::{CausalLm, LlmTokenizer, LoadOptions, LoraAdapter};
use candle_core::Tensor;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama")
}

fn golden() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("golden.json")).unwrap()).unwrap()
}

fn prompts(g: &Value) -> Vec<Vec<u32>> {
    serde_json::from_value(g["prompts"].clone()).unwrap()
}

fn load_variant(name: &str) -> CausalLm {
    let (base, adapter) = match name.split_once('+') {
        Some((b, a)) => (b, Some(a)),
        None => (name, None),
    };
    let adapter = adapter.map(|a| LoraAdapter::load(&fixtures().join(a)).unwrap());
    CausalLm::load_folder(
        &fixtures().join(base),
        &LoadOptions::default(),
        adapter.as_ref(),
    )
    .unwrap()
}

/// Logits at every real position of each prompt, run as one left-padded batch with the
/// positions `generate` uses.
fn batch_logits(lm: &CausalLm, prompts: &[Vec<u32>]) -> Vec<Vec<Vec<f32>>> {
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let LeftPadded {
        ids,
        pads,
        positions: pos,
        len: t,
    } = LeftPadded::new(&refs);
    let ids = Tensor::from_vec(ids, (prompts.len(), t), lm.device()).unwrap();
    let mut cache = lm.new_cache();
    let out: Vec<Vec<Vec<f32>>> = lm
        .forward(&ids, &pos, &pads, &mut cache, false)
        .unwrap()
        .to_vec3()
        .unwrap();
    out.into_iter()
        .zip(prompts)
        .map(|(rows, p)| rows[t - p.len()..].to_vec())
        .collect()
}

fn max_diff(got: &[Vec<Vec<f32>>], want: &Value) -> f32 {
    let want: Vec<Vec<Vec<f32>>> = serde_json::from_value(want.clone()).unwrap();
    assert_eq!(got.len(), want.len());
    let mut m = 0f32;
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.len(), w.len(), "positions");
        for (a, b) in g.iter().zip(w) {
            assert_eq!(a.len(), b.len(), "vocab");
            for (x, y) in a.iter().zip(b) {
                m = m.max((x - y).abs());
            }
        }
    }
    m
}

fn run_gen(lm: &CausalLm, prompts: &[Vec<u32>], cfg: &GenerationConfig) -> Vec<GenOutput> {
    let reqs: Vec<GenRequest<'_>> = prompts.iter().map(|p| GenRequest::text(p, 0)).collect();
    generate::generate(lm, &reqs, cfg, None).unwrap()
}

fn greedy_cfg() -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: 12,
        eos_token_ids: vec![2],
        ..Default::default()
    }
}

fn beam_cfg() -> GenerationConfig {
    GenerationConfig {
        num_beams: 5,
        ..greedy_cfg()
    }
}

const VARIANTS: [&str; 5] = [
    "llama",
    "llama+lora",
    "llama+lora_rs_bin",
    "mistral",
    "llama3",
];

#[test]
fn logits_of_a_left_padded_batch_match_transformers() {
    let g = golden();
    let p = prompts(&g);
    for v in VARIANTS {
        let lm = load_variant(v);
        let d = max_diff(&batch_logits(&lm, &p), &g["variants"][v]["logits"]);
        assert!(d <= 1e-4, "{v}: max abs diff {d}");
    }
}

#[test]
fn greedy_tokens_match_transformers_batched_and_alone() {
    let g = golden();
    let p = prompts(&g);
    for v in VARIANTS {
        let lm = load_variant(v);
        let want: Vec<Vec<u32>> =
            serde_json::from_value(g["variants"][v]["greedy"].clone()).unwrap();
        let got: Vec<Vec<u32>> = run_gen(&lm, &p, &greedy_cfg())
            .into_iter()
            .map(|o| o.tokens)
            .collect();
        assert_eq!(got, want, "{v} batched");
        for (i, prompt) in p.iter().enumerate() {
            let alone = run_gen(&lm, std::slice::from_ref(prompt), &greedy_cfg());
            assert_eq!(alone[0].tokens, want[i], "{v} prompt {i} alone");
        }
    }
}

#[test]
fn beam_search_matches_transformers_tokens_and_scores() {
    let g = golden();
    let p = prompts(&g);
    for v in VARIANTS {
        let lm = load_variant(v);
        let want: Vec<Vec<u32>> = serde_json::from_value(g["variants"][v]["beam"].clone()).unwrap();
        let scores: Vec<f32> =
            serde_json::from_value(g["variants"][v]["beam_scores"].clone()).unwrap();
        let out = run_gen(&lm, &p, &beam_cfg());
        for (i, o) in out.iter().enumerate() {
            assert_eq!(o.tokens, want[i], "{v} prompt {i}");
            let s = o.score.unwrap();
            assert!(
                (s - scores[i]).abs() < 1e-4,
                "{v} prompt {i}: score {s} vs {}",
                scores[i]
            );
        }
        let alone = run_gen(&lm, &p[..1], &beam_cfg());
        assert_eq!(alone[0].tokens, want[0], "{v} alone");
    }
}

#[test]
fn gguf_files_load_to_the_same_model() {
    let g = golden();
    let p = prompts(&g);
    let want = &g["variants"]["llama"]["logits"];
    let (lm, ct) = CausalLm::load_gguf(
        &fixtures().join("llama.gguf"),
        &LoadOptions::default(),
        None,
    )
    .unwrap();
    let d = max_diff(&batch_logits(&lm, &p), want);
    assert!(
        d <= 1e-4,
        "F32 GGUF (permuted Q/K, interleaved rope): max abs diff {d}"
    );
    let greedy: Vec<Vec<u32>> =
        serde_json::from_value(g["variants"]["llama"]["greedy"].clone()).unwrap();
    let got: Vec<Vec<u32>> = run_gen(&lm, &p, &greedy_cfg())
        .into_iter()
        .map(|o| o.tokens)
        .collect();
    assert_eq!(got, greedy);

    // The tokenizer the GGUF carries encodes like tokenizer.json.
    let tok_gguf = LlmTokenizer::from_gguf(&ct, &fixtures().join("llama.gguf")).unwrap();
    let tok_json = LlmTokenizer::from_folder(&fixtures().join("llama")).unwrap();
    let texts: Vec<String> = serde_json::from_value(g["texts"].clone()).unwrap();
    for (text, prompt) in texts.iter().zip(&p) {
        let a = tok_json.encode(text).unwrap();
        assert_eq!(
            &a[..prompt.len()],
            &prompt[..],
            "tokenizer.json vs transformers"
        );
        assert_eq!(
            tok_gguf.encode(text).unwrap(),
            a,
            "GGUF tokenizer vs tokenizer.json"
        );
        assert_eq!(tok_json.decode(&a).unwrap(), *text);
    }

    let (q8, _) = CausalLm::load_gguf(
        &fixtures().join("llama-q8_0.gguf"),
        &LoadOptions::default(),
        None,
    )
    .unwrap();
    // Q8_0 rounds the weights and (in candle's kernels) the activations to 8 bits: the logits
    // (up to ~4.7 here) move by a few percent at most.
    let d = max_diff(&batch_logits(&q8, &p), want);
    assert!(d < 0.25, "Q8_0 GGUF stays close to f32: max abs diff {d}");
    assert!(d > 1e-4, "Q8_0 really is quantized");
}

#[test]
fn lora_on_a_gguf_base_matches_the_safetensors_merge() {
    let g = golden();
    let p = prompts(&g);
    let ad = LoraAdapter::load(&fixtures().join("lora")).unwrap();
    let (lm, _) = CausalLm::load_gguf(
        &fixtures().join("llama.gguf"),
        &LoadOptions::default(),
        Some(&ad),
    )
    .unwrap();
    let d = max_diff(
        &batch_logits(&lm, &p),
        &g["variants"]["llama+lora"]["logits"],
    );
    assert!(d <= 1e-4, "max abs diff {d}");
}

#[test]
fn the_same_request_gives_the_same_sample_in_any_batch() {
    let g = golden();
    let p = prompts(&g);
    let lm = load_variant("llama");
    for cfg in [
        GenerationConfig {
            do_sample: true,
            temperature: 1.5,
            top_k: 20,
            repetition_penalty: 1.3,
            ..greedy_cfg()
        },
        GenerationConfig {
            do_sample: true,
            num_beams: 5,
            temperature: 3.0,
            top_k: 50,
            ..greedy_cfg()
        },
    ] {
        let reqs: Vec<GenRequest<'_>> = p
            .iter()
            .enumerate()
            .map(|(i, p)| GenRequest::text(p, 100 + i as u64))
            .collect();
        let all = generate::generate(&lm, &reqs, &cfg, None).unwrap();
        for (i, r) in reqs.iter().enumerate() {
            let alone = generate::generate(&lm, std::slice::from_ref(r), &cfg, None).unwrap();
            assert_eq!(
                alone[0].tokens, all[i].tokens,
                "request {i}, beams {}",
                cfg.num_beams
            );
        }
        let other_seed = GenRequest::text(&p[0], 999);
        let runs: Vec<Vec<u32>> = (0..3)
            .map(|_| {
                generate::generate(&lm, &[other_seed], &cfg, None).unwrap()[0]
                    .tokens
                    .clone()
            })
            .collect();
        assert!(runs.windows(2).all(|w| w[0] == w[1]), "seeded runs repeat");
    }
}

/// An adapter folder with the fixture's config and one LoRA pair on `module`, whose update
/// has shape [out, in]; returns the error of merging it into the tiny Llama.
fn merge_error(dir: &Path, module: &str, out: usize, inp: usize) -> String {
    std::fs::create_dir(dir).unwrap();
    std::fs::copy(
        fixtures().join("lora/adapter_config.json"),
        dir.join("adapter_config.json"),
    )
    .unwrap();
    let z = |s: (usize, usize)| {
        Tensor::zeros(s, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap()
    };
    let mut map = std::collections::HashMap::new();
    map.insert(
        format!("base_model.model.{module}.lora_A.weight"),
        z((4, inp)),
    );
    map.insert(
        format!("base_model.model.{module}.lora_B.weight"),
        z((out, 4)),
    );
    candle_core::safetensors::save(&map, dir.join("adapter_model.safetensors")).unwrap();
    let ad = LoraAdapter::load(dir).unwrap();
    CausalLm::load_folder(
        &fixtures().join("llama"),
        &LoadOptions::default(),
        Some(&ad),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn adapter_mismatches_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join("lora");
    // An adapter for another model size: lora_B rows do not fit the base.
    let e = merge_error(
        &tmp.path().join("wrong-shape"),
        "model.layers.0.self_attn.q_proj",
        64,
        32,
    );
    assert!(e.contains("q_proj") && e.contains("[64, 32]"), "{e}");
    // An adapter module the base model does not have.
    let e = merge_error(
        &tmp.path().join("unknown"),
        "model.layers.9.self_attn.q_proj",
        32,
        32,
    );
    assert!(
        e.contains("layers.9") && e.contains("match no module"),
        "{e}"
    );

    // Base model names.
    let ad = LoraAdapter::load(&src).unwrap();
    assert!(ad.check_base("some/tiny-llama").is_ok());
    assert!(ad.check_base("meta-llama/Llama-2-7b-hf").is_err());

    // DoRA is refused, not silently merged as LoRA.
    let dora = tmp.path().join("dora");
    std::fs::create_dir(&dora).unwrap();
    let cfg = std::fs::read_to_string(src.join("adapter_config.json"))
        .unwrap()
        .replace("\"use_dora\": false", "\"use_dora\": true");
    std::fs::write(dora.join("adapter_config.json"), cfg).unwrap();
    let e = LoraAdapter::load(&dora).unwrap_err().to_string();
    assert!(e.contains("DoRA"), "{e}");
}

#[test]
fn missing_and_corrupt_weights_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixtures().join("llama").join(f), dir.join(f)).unwrap();
    }
    let e = CausalLm::load_folder(&dir, &LoadOptions::default(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("not found"),
        "{e}"
    );
    let bytes = std::fs::read(fixtures().join("llama/model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = CausalLm::load_folder(&dir, &LoadOptions::default(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
    std::fs::write(dir.join("bad.gguf"), b"GGUF but not really").unwrap();
    let e = CausalLm::load_gguf(&dir.join("bad.gguf"), &LoadOptions::default(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.gguf"), "{e}");
}

fn row_values(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().map_or(f32::NEG_INFINITY, |f| f as f32))
                .collect()
        })
        .collect()
}

#[test]
fn logit_processors_match_transformers_step_by_step() {
    let p: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("processors.json")).unwrap())
            .unwrap();
    for case in p["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut scores = row_values(&case["scores"]);
        let ids: Vec<Vec<u32>> = serde_json::from_value(case["input_ids"].clone()).unwrap();
        for step in case["steps"].as_array().unwrap() {
            let sname = step["name"].as_str().unwrap();
            let par = &step["params"];
            let f = |k: &str| par[k].as_f64().unwrap() as f32;
            let u = |k: &str| par[k].as_u64().unwrap_or(1) as usize;
            for (row, toks) in scores.iter_mut().zip(&ids) {
                match sname {
                    "repetition_penalty" => logits::repetition_penalty(row, toks, f("penalty")),
                    "min_new_tokens" => logits::min_new_tokens(
                        row,
                        toks.len() - u("prompt_length_to_skip"),
                        u("min_new_tokens"),
                        &[par["eos_token_id"].as_u64().unwrap() as u32],
                    ),
                    "temperature" => logits::temperature(row, f("temperature")),
                    "top_k" => logits::top_k(row, u("top_k"), u("min_tokens_to_keep")),
                    "top_p" => logits::top_p(row, f("top_p"), u("min_tokens_to_keep")),
                    other => panic!("unknown step {other}"),
                }
            }
            let want = row_values(&step["scores"]);
            for (r, (a, b)) in scores.iter().zip(&want).enumerate() {
                for (j, (x, y)) in a.iter().zip(b).enumerate() {
                    let same = (x.is_infinite() && y.is_infinite())
                        || (x - y).abs() <= 1e-5 * y.abs().max(1.0);
                    assert!(same, "{name}/{sname} row {r} token {j}: {x} vs {y}");
                }
            }
        }
    }
}

#[test]
fn a_padded_row_computes_what_it_computes_alone() {
    // Long prompts of different lengths: padding must not change a row's numbers, which
    // quantized models would amplify into different tokens (bit-for-bit on quantized
    // weights, where every kernel is row-independent; within f32 rounding on dense ones).
    let a: Vec<u32> = (0..125).map(|i| (i * 7 % 300 + 3) as u32).collect();
    let b: Vec<u32> = (0..97).map(|i| (i * 11 % 300 + 3) as u32).collect();
    for (path, tol) in [
        ("llama-q8_0.gguf", 0.0f32),
        ("mistral", 1e-5),
        ("llama", 1e-5),
    ] {
        let lm = if path.ends_with(".gguf") {
            CausalLm::load_gguf(&fixtures().join(path), &LoadOptions::default(), None)
                .unwrap()
                .0
        } else {
            load_variant(path)
        };
        let last = |ps: &[Vec<u32>]| -> Vec<Vec<f32>> {
            batch_logits(&lm, ps)
                .into_iter()
                .map(|rows| rows.last().unwrap().clone())
                .collect()
        };
        let both = last(&[a.clone(), b.clone()]);
        for (i, p) in [&a, &b].into_iter().enumerate() {
            let alone = last(std::slice::from_ref(p));
            let d = alone[0]
                .iter()
                .zip(&both[i])
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(d <= tol, "{path} row {i}: {d}");
        }
    }
}

#[test]
fn half_precision_weights_stay_close_to_f32() {
    let g = golden();
    let p = prompts(&g);
    for dtype in [candle_core::DType::F16, candle_core::DType::BF16] {
        let lm = CausalLm::load_folder(
            &fixtures().join("llama"),
            &LoadOptions {
                dtype,
                device: candle_core::Device::Cpu,
            },
            None,
        )
        .unwrap();
        assert_eq!(lm.dtype(), dtype);
        let d = max_diff(&batch_logits(&lm, &p), &g["variants"]["llama"]["logits"]);
        // Logits up to ~4.7: f16 keeps ~3 decimal digits, bf16 ~2.
        let tol = if dtype == candle_core::DType::F16 {
            0.05
        } else {
            0.25
        };
        assert!(d < tol, "{dtype:?}: max abs diff {d}");
        assert!(d > 0.0, "{dtype:?} really computes in half precision");
    }
}

#[test]
fn beam_search_settings_match_transformers() {
    // early_stopping (true / "never"), length penalties, beam counts, minimum lengths and the
    // repetition penalty, each against transformers on the same left-padded batch.
    let g = golden();
    let p = prompts(&g);
    let cases = g["beam_variants"]
        .as_array()
        .expect("beam_variants in golden.json");
    assert!(!cases.is_empty());
    for case in cases {
        let v = case["variant"].as_str().unwrap();
        let par = &case["params"];
        let mut cfg = beam_cfg();
        if let Some(n) = par["num_beams"].as_u64() {
            cfg.num_beams = n as usize;
        }
        if let Some(n) = par["max_new_tokens"].as_u64() {
            cfg.max_new_tokens = n as usize;
        }
        if let Some(n) = par["min_new_tokens"].as_u64() {
            cfg.min_new_tokens = n as usize;
        }
        if let Some(x) = par["length_penalty"].as_f64() {
            cfg.length_penalty = x as f32;
        }
        if let Some(x) = par["repetition_penalty"].as_f64() {
            cfg.repetition_penalty = x as f32;
        }
        cfg.early_stopping = match &par["early_stopping"] {
            Value::Bool(true) => generate::EarlyStopping::Always,
            Value::String(s) if s == "never" => generate::EarlyStopping::Never,
            _ => generate::EarlyStopping::Heuristic,
        };
        let lm = load_variant(v);
        let want: Vec<Vec<u32>> = serde_json::from_value(case["tokens"].clone()).unwrap();
        let scores: Vec<f32> = serde_json::from_value(case["scores"].clone()).unwrap();
        let out = run_gen(&lm, &p, &cfg);
        for (i, o) in out.iter().enumerate() {
            assert_eq!(o.tokens, want[i], "{v} {par} prompt {i}");
            // The golden scores carry 6 significant digits.
            let s = o.score.unwrap();
            assert!(
                (s - scores[i]).abs() <= 1e-4f32.max(1e-5 * scores[i].abs()),
                "{v} {par} prompt {i}: score {s} vs {}",
                scores[i]
            );
        }
    }
}

/// A prompt longer than the attention's query block (256) is prefilled in blocks; every
/// position's logits must equal those of feeding the same tokens one at a time (no blocks,
/// the decode path), in a left-padded batch and alone, with Mistral's sliding window.
#[test]
fn long_prompts_prefilled_in_query_blocks_equal_token_by_token_decoding() {
    let lm = load_variant("mistral");
    let vocab = lm.config().vocab_size as u32;
    let mut x = 7u32;
    let long: Vec<u32> = (0..600)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            3 + (x >> 8) % (vocab - 3)
        })
        .collect();
    let short = long[..40].to_vec();
    let blocked = batch_logits(&lm, &[long.clone(), short.clone()]);
    let mut cache = lm.new_cache();
    let mut worst = 0f32;
    for (i, &tok) in long.iter().enumerate() {
        let ids = Tensor::from_vec(vec![tok], (1, 1), lm.device()).unwrap();
        let step: Vec<Vec<f32>> = lm
            .forward(&ids, &[vec![i as u32]], &[0], &mut cache, true)
            .unwrap()
            .to_vec2()
            .unwrap();
        for (a, b) in step[0].iter().zip(&blocked[0][i]) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst <= 1e-4, "blocked prefill vs decoding: {worst}");
    let alone = batch_logits(&lm, std::slice::from_ref(&short));
    assert_eq!(alone[0], blocked[1], "the short row is the same alone");
}

#[test]
fn non_finite_logits_are_an_error_for_every_search() {
    // lm_head all NaN: every logit is NaN. Greedy would take token 0, sampling would draw
    // from garbage and beam scores would never order; each must refuse instead, so the
    // writer, the guide and Llama Guard report an error rather than a made-up answer.
    let nan = art_testkit::golden::poisoned_copy(
        &fixtures().join("llama"),
        "model.safetensors",
        "lm_head.weight",
    );
    let lm = CausalLm::load_folder(nan.path(), &LoadOptions::default(), None).unwrap();
    let g = golden();
    let p = prompts(&g);
    let reqs: Vec<GenRequest<'_>> = p.iter().map(|p| GenRequest::text(p, 7)).collect();
    let sample = GenerationConfig {
        do_sample: true,
        ..greedy_cfg()
    };
    let beam_sample = GenerationConfig {
        do_sample: true,
        ..beam_cfg()
    };
    for (what, cfg) in [
        ("greedy", greedy_cfg()),
        ("sampling", sample),
        ("beam search", beam_cfg()),
        ("beam-sample", beam_sample),
    ] {
        let e = generate::generate(&lm, &reqs, &cfg, None)
            .map(|o| format!("{o:?}"))
            .expect_err(what)
            .to_string();
        assert!(
            e.contains("non-finite") && e.contains("logits"),
            "{what}: {e}"
        );
    }
    // The same requests on the intact model generate.
    assert!(generate::generate(&load_variant("llama"), &reqs, &greedy_cfg(), None).is_ok());
}
