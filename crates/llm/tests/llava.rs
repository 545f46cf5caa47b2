//! LLaVA-NeXT vs transformers 5.24's `LlavaNextForConditionalGeneration` on a tiny random
//! model (golden files from `tools/golden/llava.py`): the PIL-backend processor's pixel
//! values, image features after anyres + unpadding (wide, tall, square and tiny images, the
//! original LLaVA's grid reading too), the prompt ids as LLaVA's `tokenizer_image_token`
//! makes them, full logits, greedy tokens of a left-padded batch, beam search, both
//! checkpoint layouts (and the hub's tensor names), an original-layout LoRA with its
//! `non_lora_trainables.bin`, loading errors, and the Guide role's contract.

use art_core::{Category, Image};
use art_llm::generate::{GenRequest, GenerationConfig, generate};
use art_llm::llava::{self, LlavaNext, Piece};
use art_llm::{LlmTokenizer, LoadOptions};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use art_testkit::golden as common;
use common::{copy_dir, max_abs, read_png};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llava")
}

fn golden() -> &'static (Value, HashMap<String, Tensor>) {
    static G: OnceLock<(Value, HashMap<String, Tensor>)> = OnceLock::new();
    G.get_or_init(|| {
        let j = serde_json::from_slice(&std::fs::read(fixtures().join("golden.json")).unwrap())
            .unwrap();
        let t = candle_core::safetensors::load(fixtures().join("golden.safetensors"), &Device::Cpu)
            .unwrap();
        (j, t)
    })
}

fn json() -> &'static Value {
    &golden().0
}

fn tensor(name: &str) -> &'static Tensor {
    golden()
        .1
        .get(name)
        .unwrap_or_else(|| panic!("golden tensor {name}"))
}

fn load(dir: &Path, adapter: Option<&Path>) -> LlavaNext {
    llava::load(
        dir.to_str().unwrap(),
        adapter.map(|a| a.to_str().unwrap()),
        false,
        &LoadOptions::default(),
    )
    .unwrap()
    .model
}

fn hf() -> &'static LlavaNext {
    static M: OnceLock<LlavaNext> = OnceLock::new();
    M.get_or_init(|| load(&fixtures().join("hf"), None))
}

fn orig() -> &'static LlavaNext {
    static M: OnceLock<LlavaNext> = OnceLock::new();
    M.get_or_init(|| load(&fixtures().join("orig"), None))
}

fn tokenizer() -> LlmTokenizer {
    LlmTokenizer::from_folder(&fixtures().join("hf")).unwrap()
}

fn image(name: &str) -> Image {
    read_png(&fixtures().join(format!("images/{name}.png")))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The prompt of a golden request with `img`'s features, as the Guide builds it.
fn prompt(model: &LlavaNext, text: &str, img: &Image) -> llava::Prompt {
    let pieces = llava::tokenize_with_image(&tokenizer(), text).unwrap();
    let f = model.image_features(img).unwrap();
    model
        .prompt(&pieces, &f, model.cfg.image_token_id.unwrap_or(0))
        .unwrap()
}

/// Full logits of one prompt: [len, vocab].
fn logits(model: &LlavaNext, p: &llava::Prompt) -> Tensor {
    let n = p.ids.len();
    let mut cache = model.lm.new_cache();
    let positions = vec![(0..n as u32).collect::<Vec<_>>()];
    model
        .lm
        .forward_embeds(
            &p.embeds.unsqueeze(0).unwrap(),
            &positions,
            &[0],
            &mut cache,
            false,
        )
        .unwrap()
        .squeeze(0)
        .unwrap()
}

#[test]
fn the_processor_gives_transformers_pixel_values() {
    for name in ["wide", "tall", "square", "tiny"] {
        let (tiles, px) = hf().pixel_values(&image(name)).unwrap();
        let meta = &json()["images"][name];
        assert_eq!(
            [tiles.grid.0, tiles.grid.1],
            [
                meta["grid_shape"][0].as_u64().unwrap() as usize,
                meta["grid_shape"][1].as_u64().unwrap() as usize
            ],
            "{name}: grid"
        );
        let d = max_abs(&px, tensor(&format!("images/{name}/pixel_values")));
        assert!(d <= 1e-6, "{name}: pixel values differ by {d}");
    }
    // The original LLaVA reads the pinpoints as [width, height]: a tie picks the other grid.
    let (tiles, px) = orig().pixel_values(&image("tiny")).unwrap();
    assert_eq!(tiles.grid, (2, 1));
    assert!(max_abs(&px, tensor("images/tiny/orig_pixel_values")) <= 1e-6);
}

#[test]
fn image_features_after_anyres_and_unpadding_match() {
    let m = hf();
    let (_, px) = m.pixel_values(&image("wide")).unwrap();
    let sel = m
        .vision
        .hidden_state(&px.narrow(0, 0, 1).unwrap(), -2)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let sel = sel.narrow(0, 1, sel.dim(0).unwrap() - 1).unwrap();
    let d = max_abs(&sel, tensor("wide/vision_selected_tile0"));
    assert!(d <= 1e-5, "vision layer -2: {d}");
    let d = max_abs(&m.tile_features(&px).unwrap(), tensor("wide/projector_out"));
    assert!(d <= 1e-5, "projector: {d}");
    for name in ["wide", "tall", "square", "tiny"] {
        let f = m.image_features(&image(name)).unwrap();
        let want = tensor(&format!("images/{name}/features"));
        assert_eq!(
            f.dim(0).unwrap() as u64,
            json()["images"][name]["n_tokens"].as_u64().unwrap(),
            "{name}: image tokens"
        );
        let d = max_abs(&f, want);
        assert!(d <= 1e-4, "{name}: features differ by {d}");
    }
    let f = orig().image_features(&image("tiny")).unwrap();
    let d = max_abs(&f, tensor("images/tiny/orig_features"));
    assert!(d <= 1e-4, "tiny, original grid: {d}");
}

#[test]
fn prompt_ids_follow_tokenizer_image_token() {
    let s = &json()["single"];
    let pieces = llava::tokenize_with_image(&tokenizer(), s["text"].as_str().unwrap()).unwrap();
    let mut flat: Vec<i64> = Vec::new();
    for p in &pieces {
        match p {
            Piece::Text(t) => flat.extend(t.iter().map(|&x| x as i64)),
            Piece::Image => flat.push(-200),
        }
    }
    let want: Vec<i64> = s["orig_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(flat, want);
    let p = prompt(hf(), s["text"].as_str().unwrap(), &image("wide"));
    assert_eq!(p.ids, ids(&s["input_ids"]));
}

#[test]
fn logits_of_a_prompt_with_an_image_match() {
    let s = &json()["single"];
    let p = prompt(hf(), s["text"].as_str().unwrap(), &image("wide"));
    let d = max_abs(&logits(hf(), &p), tensor("single/logits"));
    assert!(d <= 1e-4, "logits differ by {d}");
}

fn greedy(n: usize) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: n,
        eos_token_ids: vec![2],
        ..Default::default()
    }
}

#[test]
fn a_left_padded_batch_generates_transformers_greedy_tokens() {
    let b = &json()["batch"];
    let texts: Vec<&str> = b["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let names = ["tall", "square"];
    let prompts: Vec<llava::Prompt> = texts
        .iter()
        .zip(names)
        .map(|(t, n)| prompt(hf(), t, &image(n)))
        .collect();
    for (i, p) in prompts.iter().enumerate() {
        assert_eq!(p.ids, ids(&b["unpadded_input_ids"][i]), "row {i} ids");
        let last = logits(hf(), p);
        let last = last.get(last.dim(0).unwrap() - 1).unwrap();
        let want = tensor("batch/last_logits").get(i).unwrap();
        let d = max_abs(&last, &want);
        assert!(d <= 1e-4, "row {i}: last logits differ by {d}");
    }
    let reqs: Vec<GenRequest<'_>> = prompts
        .iter()
        .map(|p| GenRequest {
            prompt: &p.ids,
            embeds: Some(&p.embeds),
            seed: 0,
        })
        .collect();
    let out = generate(&hf().lm, &reqs, &greedy(12), None).unwrap();
    for (i, o) in out.iter().enumerate() {
        assert_eq!(o.tokens, ids(&b["greedy_new_tokens"][i]), "row {i}");
        let alone = generate(&hf().lm, &reqs[i..=i], &greedy(12), None).unwrap();
        assert_eq!(alone[0].tokens, o.tokens, "row {i} alone");
    }
}

#[test]
fn beam_search_matches() {
    let bm = &json()["beam"];
    let p = prompt(
        hf(),
        json()["batch"]["texts"][0].as_str().unwrap(),
        &image("tall"),
    );
    assert_eq!(p.ids, ids(&bm["input_ids"]));
    let cfg = GenerationConfig {
        num_beams: 3,
        ..greedy(10)
    };
    let req = GenRequest {
        prompt: &p.ids,
        embeds: Some(&p.embeds),
        seed: 0,
    };
    let out = generate(&hf().lm, &[req], &cfg, None).unwrap();
    assert_eq!(out[0].tokens, ids(&bm["new_tokens"]));
    let want = bm["sequences_scores"].as_f64().unwrap() as f32;
    assert!(
        (out[0].score.unwrap() - want).abs() <= 1e-4,
        "{:?} vs {want}",
        out[0].score
    );
}

#[test]
fn the_original_layout_loads_to_the_same_model() {
    let s = &json()["single"];
    let text = s["text"].as_str().unwrap();
    let (a, b) = (hf(), orig());
    assert_eq!(b.cfg.layout, llava::Layout::Original);
    let fa = a.image_features(&image("wide")).unwrap();
    let fb = b.image_features(&image("wide")).unwrap();
    assert_eq!(max_abs(&fa, &fb), 0.0);
    let pb = prompt(b, text, &image("wide"));
    let d = max_abs(&logits(b, &pb), tensor("single/logits"));
    assert!(d <= 1e-4, "original layout logits: {d}");
}

/// `dir` with its `model.safetensors` tensors renamed by `rename`.
fn renamed_copy(src: &Path, dst: &Path, rename: impl Fn(&str) -> String) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "model.safetensors" {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    let t = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let t: HashMap<String, Tensor> = t.into_iter().map(|(k, v)| (rename(&k), v)).collect();
    candle_core::safetensors::save(&t, dst.join("model.safetensors")).unwrap();
}

#[test]
fn the_hub_and_transformers_5_tensor_names_load() {
    let tmp = tempfile::tempdir().unwrap();
    let want = hf().image_features(&image("square")).unwrap();
    // The llava-hf hub files: the tower under `vision_tower.vision_model.`.
    let hub = tmp.path().join("hub");
    renamed_copy(&fixtures().join("hf"), &hub, |k| {
        match k.strip_prefix("vision_tower.") {
            Some(rest) => format!("vision_tower.vision_model.{rest}"),
            None => k.to_string(),
        }
    });
    // transformers 5's module names.
    let v5 = tmp.path().join("v5");
    renamed_copy(&fixtures().join("hf"), &v5, |k| {
        if let Some(rest) = k.strip_prefix("language_model.model.") {
            format!("model.language_model.{rest}")
        } else if k == "language_model.lm_head.weight" {
            "lm_head.weight".into()
        } else {
            format!("model.{k}")
        }
    });
    for dir in [hub, v5] {
        let m = load(&dir, None);
        let got = m.image_features(&image("square")).unwrap();
        assert_eq!(max_abs(&got, &want), 0.0, "{}", dir.display());
        let p = prompt(
            &m,
            json()["single"]["text"].as_str().unwrap(),
            &image("wide"),
        );
        assert!(max_abs(&logits(&m, &p), tensor("single/logits")) <= 1e-4);
    }
}

#[test]
fn an_original_lora_with_non_lora_trainables_matches_llavas_merge() {
    let m = load(
        &fixtures().join("orig"),
        Some(&fixtures().join("orig-lora")),
    );
    let s = &json()["single"];
    let p = prompt(&m, s["text"].as_str().unwrap(), &image("wide"));
    let d = max_abs(&logits(&m, &p), tensor("lora/logits"));
    assert!(d <= 1e-4, "LoRA logits differ by {d}");
    let req = GenRequest {
        prompt: &p.ids,
        embeds: Some(&p.embeds),
        seed: 0,
    };
    let out = generate(&m.lm, &[req], &greedy(8), None).unwrap();
    assert_eq!(out[0].tokens, ids(&json()["lora"]["greedy_new_tokens"]));
}

fn load_err(dir: &Path, adapter: Option<&Path>) -> String {
    llava::load(
        dir.to_str().unwrap(),
        adapter.map(|a| a.to_str().unwrap()),
        false,
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn bad_checkpoints_and_adapters_are_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // non_lora_trainables.bin with a tensor the model does not have: named, not dropped.
    let lora = tmp.path().join("lora");
    copy_dir(&fixtures().join("orig-lora"), &lora);
    std::fs::copy(
        fixtures().join("non_lora_extra.bin"),
        lora.join("non_lora_trainables.bin"),
    )
    .unwrap();
    let e = load_err(&fixtures().join("orig"), Some(&lora));
    assert!(
        e.contains("non_lora_trainables.bin") && e.contains("model.mm_resampler.weight"),
        "{e}"
    );
    // An adapter folder without its weights.
    std::fs::remove_file(lora.join("adapter_model.safetensors")).unwrap();
    let e = load_err(&fixtures().join("orig"), Some(&lora));
    assert!(e.contains("adapter weights"), "{e}");

    // An llava-hf model with an original-layout adapter's non-LoRA weights.
    let e = load_err(&fixtures().join("hf"), Some(&fixtures().join("orig-lora")));
    assert!(
        e.contains("non_lora_trainables.bin") && e.contains("llava-hf"),
        "{e}"
    );

    // Not a LLaVA config.
    let notllava = tmp.path().join("notllava");
    copy_dir(&fixtures().join("hf"), &notllava);
    std::fs::write(notllava.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    let e = load_err(&notllava, None);
    assert!(
        e.contains("config.json") && e.contains("not a LLaVA-NeXT config"),
        "{e}"
    );

    // An unsupported merge type names its key.
    let flat = tmp.path().join("flat");
    copy_dir(&fixtures().join("orig"), &flat);
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(flat.join("config.json")).unwrap()).unwrap();
    cfg["mm_patch_merge_type"] = Value::from("flat");
    cfg["mm_vision_tower"] = Value::from(fixtures().join("clip-vision").to_str().unwrap());
    std::fs::write(flat.join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(&flat, None);
    assert!(
        e.contains("mm_patch_merge_type") && e.contains("flat"),
        "{e}"
    );

    // A vision tower named but absent.
    cfg["mm_patch_merge_type"] = Value::from("spatial_unpad");
    cfg["mm_vision_tower"] = Value::from(tmp.path().join("nowhere").to_str().unwrap());
    std::fs::write(flat.join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(&flat, None);
    assert!(e.contains("nowhere"), "{e}");
}

#[test]
fn the_guide_role_keeps_its_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let c: art_config::local::LlavaNextGuide = toml::from_str(&format!(
        r#"
        model = "{}"
        adapter = "{}"
        check_adapter_base = false
        num_beams = 2
        do_sample = true
        temperature = 3.0
        max_new_tokens = 6
        "#,
        fixtures().join("orig").display(),
        fixtures().join("orig-lora").display(),
    ))
    .unwrap();
    let g = art_llm::guide::LlavaGuide::new(&c).unwrap();
    let id = art_core::Guide::identity(&g);
    assert_eq!(id.kind, "llava-next");
    assert_eq!(id.params["layout"], "original");
    assert_eq!(id.adapter.as_deref(), c.adapter.as_deref());
    let cat = Category {
        name: "violence".into(),
        keywords: vec!["fight".into(), "knife".into()],
    };
    let (w, t, s) = (image("wide"), image("tall"), image("square"));
    art_testkit::contract::guide(
        &g,
        &cat,
        &[("a cat", &w), ("a harbour at night", &t), ("a dog", &s)],
    );
    // The conversation must hold the image once.
    let bad = tmp.path().join("conv.txt");
    std::fs::write(&bad, "[INST] {user_text} [/INST]").unwrap();
    let c2 = art_config::local::LlavaNextGuide {
        conversation_file: Some(bad.clone()),
        ..c.clone()
    };
    let e = art_llm::guide::LlavaGuide::new(&c2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv.txt") && e.contains("<image>"), "{e}");
}

#[test]
fn an_original_checkpoint_without_tokenizer_json_names_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    copy_dir(&fixtures().join("orig"), &m);
    std::fs::remove_file(m.join("tokenizer.json")).unwrap();
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(m.join("config.json")).unwrap()).unwrap();
    cfg["mm_vision_tower"] = Value::from(fixtures().join("clip-vision").to_str().unwrap());
    std::fs::write(m.join("config.json"), cfg.to_string()).unwrap();
    let c: art_config::local::LlavaNextGuide =
        toml::from_str(&format!("model = \"{}\"", m.display())).unwrap();
    let e = art_llm::guide::LlavaGuide::new(&c).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer.json") && e.contains("`tokenizer`"),
        "{e}"
    );
    let c = art_config::local::LlavaNextGuide {
        tokenizer: Some(fixtures().join("hf").to_str().unwrap().into()),
        ..c
    };
    assert!(art_llm::guide::LlavaGuide::new(&c).is_ok());
}

#[test]
fn half_precision_weights_run_close_to_f32() {
    let s = &json()["single"];
    let want = tensor("single/logits");
    for (dtype, tol) in [(DType::F16, 0.05), (DType::BF16, 0.3)] {
        let m = llava::load(
            fixtures().join("hf").to_str().unwrap(),
            None,
            false,
            &LoadOptions {
                dtype,
                device: Device::Cpu,
            },
        )
        .unwrap()
        .model;
        assert_eq!(m.lm.dtype(), dtype);
        let p = prompt(&m, s["text"].as_str().unwrap(), &image("wide"));
        let d = max_abs(&logits(&m, &p), want);
        assert!(d < tol && d > 0.0, "{dtype:?}: max abs diff {d}");
    }
}
