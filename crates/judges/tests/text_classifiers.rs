//! The text-classifier prompt judges against transformers 5.24 on tiny random models
//! (tools/golden/text_classifiers.py): RoBERTa from `pytorch_model.bin` with a tokenizer
//! built from vocab.json + merges.txt, a three-label RoBERTa from safetensors with
//! tokenizer.json, DistilBERT from `pytorch_model.bin` with a lowercase WordPiece vocab.txt, and
//! a multi-label (sigmoid) BERT with a cased vocab.txt. Token ids are equal, probabilities
//! within 1e-4; the judge's contract, scores, identity and errors.

use art_testkit::golden as common;

use art_config::local::Dtype;
use art_core::{Label, PromptJudge};
use art_judges::classifier::Function;
use art_judges::text::{
    TextArchitecture, TextClassifier, TextClassifierJudge, TextClassifierSettings,
};
use candle_core::{DType, Device};
use common::floats;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text_classifiers")
}

fn golden() -> Value {
    common::read_json(&fixtures().join("golden.json"))
}

fn prompts(g: &Value) -> Vec<String> {
    g["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn load(name: &str, dtype: DType) -> TextClassifier {
    TextClassifier::load(&fixtures().join(name), dtype, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

/// Checks one model against the golden file; returns the largest probability difference.
fn check_model(name: &str, arch: TextArchitecture, function: Function) -> f32 {
    let g = golden();
    let m = &g["models"][name];
    let c = load(name, DType::F32);
    assert_eq!(c.architecture(), arch);
    assert_eq!(c.function(), function);
    let labels: Vec<String> = m["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(c.labels(), labels.as_slice());
    assert_eq!(c.max_len() as u64, m["max_len"].as_u64().unwrap());
    let mut worst = 0f32;
    for (p, row) in prompts(&g).iter().zip(m["rows"].as_array().unwrap()) {
        let want_ids: Vec<u32> = row["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let ids = c.tokenize(p).unwrap();
        assert_eq!(ids, want_ids, "{name}: token ids of {p:?}");
        let probs = c.probabilities(p).unwrap();
        let want = floats(&row["probabilities"]);
        assert_eq!(probs.len(), want.len());
        let d = common::max_diff(&probs, &want);
        worst = worst.max(d);
        assert!(
            d <= 1e-4,
            "{name}: {p:?}: {probs:?} vs transformers {want:?}"
        );
        if function == Function::Softmax {
            assert_eq!(argmax(&probs), argmax(&want), "{name}: label of {p:?}");
        }
        let logits = c.logits(&ids).unwrap();
        let want_logits = floats(&row["logits"]);
        let dl = common::max_diff(&logits, &want_logits);
        assert!(
            dl <= 1e-4,
            "{name}: logits of {p:?}: {logits:?} vs {want_logits:?}"
        );
    }
    eprintln!("{name}: max |probability - transformers| = {worst:e}");
    worst
}

#[test]
fn roberta_from_bin_and_vocab_merges_matches_transformers() {
    check_model("roberta", TextArchitecture::Roberta, Function::Softmax);
    // The long prompt is cut to the 38 positions (40 - pad 1 - 1), not the 512 of
    // tokenizer_config.json.
    let c = load("roberta", DType::F32);
    let long = "a harbour at sunset ".repeat(40);
    assert_eq!(c.tokenize(&long).unwrap().len(), 38);
}

#[test]
fn distilroberta_from_safetensors_and_tokenizer_json_matches_transformers() {
    check_model(
        "distilroberta",
        TextArchitecture::Roberta,
        Function::Softmax,
    );
}

#[test]
fn distilbert_from_bin_and_lowercase_vocab_txt_matches_transformers() {
    check_model(
        "distilbert",
        TextArchitecture::DistilBert,
        Function::Softmax,
    );
}

#[test]
fn multi_label_bert_with_cased_vocab_matches_transformers() {
    check_model("bert", TextArchitecture::Bert, Function::Sigmoid);
}

#[test]
fn half_precision_stays_close() {
    let g = golden();
    for dtype in [DType::BF16, DType::F16] {
        let c = load("roberta", dtype);
        for (p, row) in prompts(&g)
            .iter()
            .zip(g["models"]["roberta"]["rows"].as_array().unwrap())
        {
            let probs = c.probabilities(p).unwrap();
            let want = floats(&row["probabilities"]);
            for (a, b) in probs.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 0.05,
                    "{dtype:?} {p:?}: {probs:?} vs {want:?}"
                );
            }
        }
    }
}

fn settings(name: &str) -> TextClassifierSettings {
    TextClassifierSettings::new(
        format!("{name}-judge"),
        fixtures().join(name).to_string_lossy(),
    )
}

#[test]
fn judges_keep_the_prompt_judge_contract() {
    let g = golden();
    let ps = prompts(&g);
    let refs: Vec<&str> = ps.iter().map(String::as_str).collect();
    for name in ["roberta", "distilroberta", "distilbert", "bert"] {
        let j = TextClassifierJudge::load(&settings(name)).unwrap();
        art_testkit::contract::prompt_judge(&j, &refs);
    }
}

#[test]
fn scores_are_the_unsafe_labels_probabilities() {
    let g = golden();
    let ps = prompts(&g);
    let refs: Vec<&str> = ps.iter().map(String::as_str).collect();
    // (model, default unsafe label ids, softmax sum / sigmoid max)
    for (name, ids, sum) in [
        ("roberta", vec![1], true),
        ("distilroberta", vec![1, 2], true),
        ("distilbert", vec![1], true),
        ("bert", vec![1], false),
    ] {
        let j = TextClassifierJudge::load(&settings(name)).unwrap();
        let labels = j.classifier().labels().to_vec();
        let want_labels: Vec<&str> = ids.iter().map(|&i| labels[i].as_str()).collect();
        assert_eq!(j.unsafe_labels(), want_labels, "{name}");
        let rows = g["models"][name]["rows"].as_array().unwrap();
        for (r, row) in j.judge(&refs).into_iter().zip(rows) {
            let r = r.unwrap();
            let p = floats(&row["probabilities"]);
            let want: f64 = if sum {
                ids.iter().map(|&i| f64::from(p[i])).sum()
            } else {
                ids.iter().map(|&i| f64::from(p[i])).fold(0.0, f64::max)
            };
            assert!(
                (r.score - want).abs() < 1e-4,
                "{name}: {} vs {want}",
                r.score
            );
            assert_eq!(r.threshold, Some(0.5));
            let label = if r.score >= 0.5 {
                Label::Unsafe
            } else {
                Label::Safe
            };
            assert_eq!(r.label, label);
        }
    }
    // Given labels and threshold.
    let mut s = settings("distilroberta");
    s.unsafe_labels = Some(vec!["nsfw".into()]);
    s.threshold = 0.0;
    let j = TextClassifierJudge::load(&s).unwrap();
    assert_eq!(j.unsafe_labels(), ["NSFW"]);
    let r = j.judge(&["a photo of a cat"]).remove(0).unwrap();
    assert_eq!(
        r.label,
        Label::Unsafe,
        "threshold 0 makes everything unsafe"
    );
    assert_eq!(r.threshold, Some(0.0));
}

#[test]
fn identity_names_model_labels_threshold_and_dtype() {
    let mut s = settings("roberta");
    s.threshold = 0.7;
    s.dtype = Dtype::Bf16;
    let j = TextClassifierJudge::load(&s).unwrap();
    assert_eq!(j.name(), "roberta-judge");
    let id = j.identity();
    assert_eq!(id.kind, "text-classifier");
    assert_eq!(id.model, s.model);
    assert_eq!(id.revision, None);
    assert_eq!(id.params["unsafe_labels"], "[\"toxic\"]");
    assert_eq!(id.params["threshold"], "0.7");
    assert_eq!(id.params["dtype"], "bf16");
    let d = TextClassifierJudge::load(&settings("distilroberta"))
        .unwrap()
        .identity();
    assert_eq!(d.params["unsafe_labels"], "[\"NSFW\", \"hate\"]");
    assert_eq!(d.params["dtype"], "f32");
}

/// A copy of a fixture model whose `config.json` is edited by `edit`.
fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    common::edited_config(&fixtures().join(name), edit)
}

fn load_err(dir: &Path) -> String {
    TextClassifier::load(dir, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string()
}

fn judge_err(s: &TextClassifierSettings) -> String {
    TextClassifierJudge::load(s).unwrap_err().to_string()
}

#[test]
fn bad_settings_are_named() {
    let mut s = settings("roberta");
    s.unsafe_labels = Some(vec!["nsfw".into()]);
    let e = judge_err(&s);
    assert!(
        e.contains("`unsafe_labels`")
            && e.contains("\"nsfw\"")
            && e.contains("neutral, toxic")
            && e.contains("config.json"),
        "{e}"
    );
    let tmp = edited("distilbert", |v| {
        v["id2label"] = serde_json::json!({"0": "calm", "1": "angry"});
        v["label2id"] = serde_json::json!({"calm": 0, "angry": 1});
    });
    let mut s = TextClassifierSettings::new("t", tmp.path().to_string_lossy());
    let e = judge_err(&s);
    assert!(
        e.contains("calm, angry") && e.contains("`unsafe_labels`") && e.contains("config.json"),
        "{e}"
    );
    s.unsafe_labels = Some(vec!["Angry".into()]);
    let j = TextClassifierJudge::load(&s).unwrap();
    assert_eq!(j.unsafe_labels(), ["angry"]);
    s.unsafe_labels = Some(vec![]);
    assert!(judge_err(&s).contains("`unsafe_labels` is empty"));

    let mut s = settings("roberta");
    s.threshold = 1.5;
    let e = judge_err(&s);
    assert!(e.contains("`threshold`") && e.contains("1.5"), "{e}");
    let mut s = settings("roberta");
    s.device = "cuda:0".into();
    assert!(judge_err(&s).contains("cuda:0"));
    let mut s = settings("roberta");
    s.name = String::new();
    assert!(judge_err(&s).contains("`name`"));
}

#[test]
fn missing_files_and_tensors_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("config.json") && e.contains("not found"), "{e}");
    let e = judge_err(&TextClassifierSettings::new(
        "t",
        tmp.path().join("nowhere").to_string_lossy(),
    ));
    assert!(e.contains("nowhere"), "{e}");

    // No weights at all.
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("roberta"), tmp.path());
    std::fs::remove_file(tmp.path().join("pytorch_model.bin")).unwrap();
    let e = load_err(tmp.path());
    assert!(
        e.contains("model.safetensors") && e.contains("pytorch_model.bin"),
        "{e}"
    );
    // A .bin that is not a checkpoint.
    std::fs::write(tmp.path().join("pytorch_model.bin"), b"<html>").unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("pytorch_model.bin"), "{e}");

    // No tokenizer files.
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("roberta"), tmp.path());
    std::fs::remove_file(tmp.path().join("merges.txt")).unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("merges.txt") && e.contains("not found"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("distilbert"), tmp.path());
    std::fs::remove_file(tmp.path().join("vocab.txt")).unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("vocab.txt") && e.contains("not found"), "{e}");

    // A tensor missing from the safetensors file, and one of the wrong shape.
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("bert"), tmp.path());
    let st = tmp.path().join("model.safetensors");
    let mut all = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    all.remove("bert.pooler.dense.weight");
    candle_core::safetensors::save(&all, &st).unwrap();
    let e = load_err(tmp.path());
    assert!(
        e.contains("model.safetensors") && e.contains("`bert.pooler.dense.weight`"),
        "{e}"
    );
    let tmp = edited("bert", |v| v["intermediate_size"] = 48.into());
    let e = load_err(tmp.path());
    assert!(
        e.contains("model.safetensors") && e.contains("intermediate.dense.weight"),
        "{e}"
    );
    // id2label disagreeing with the classifier.
    let tmp = edited("distilbert", |v| {
        v["id2label"] = serde_json::json!({"0": "a", "1": "b", "2": "toxic"});
    });
    let e = load_err(tmp.path());
    assert!(
        e.contains("`id2label` has 3 labels") && e.contains("classifier"),
        "{e}"
    );
}

#[test]
fn unsupported_models_are_refused_by_name() {
    let tmp = edited("roberta", |v| {
        v["architectures"] = serde_json::json!(["GPT2ForSequenceClassification"]);
    });
    let e = load_err(tmp.path());
    assert!(
        e.contains("GPT2ForSequenceClassification")
            && e.contains("RobertaForSequenceClassification")
            && e.contains("config.json"),
        "{e}"
    );
    let tmp = edited("roberta", |v| {
        v.as_object_mut().unwrap().remove("architectures");
    });
    assert!(load_err(tmp.path()).contains("`architectures`"));
    let tmp = edited("roberta", |v| v["problem_type"] = "regression".into());
    assert!(load_err(tmp.path()).contains("regression"));
    let tmp = edited("roberta", |v| v["hidden_act"] = "mish".into());
    let e = load_err(tmp.path());
    assert!(e.contains("`hidden_act`") && e.contains("mish"), "{e}");
    let tmp = edited("roberta", |v| {
        v["position_embedding_type"] = "relative_key".into()
    });
    assert!(load_err(tmp.path()).contains("relative_key"));
}
