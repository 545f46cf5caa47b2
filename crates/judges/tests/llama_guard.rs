//! The Llama Guard prompt judge on the tiny random Llama of the generation tests: the
//! conversation from the model's chat template (rendered as transformers renders it: the
//! golden of `tools/golden/chat_templates.py`) or the reference's prompt, the unsafe score
//! read from the first generated position, labels from the answer or a threshold, answers
//! that are neither `safe` nor `unsafe` recorded as that prompt's error, and the judge's
//! contract.

use art_core::{Label, PromptJudge};
use art_judges::llama_guard::{GuardPrompt, LlamaGuardJudge, LlamaGuardSettings};
use art_llm::{CausalLm, LlmTokenizer, LoadOptions};
use candle_core::Tensor;
use serde_json::Value;
use std::path::{Path, PathBuf};

use art_testkit::golden as common;
use common::copy_dir;

/// The LLM crate's fixtures: the tiny Llama and the chat-template golden file.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/fixtures")
}

fn chat_golden() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("chat/golden.json")).unwrap()).unwrap()
}

/// The tiny Llama with the golden Llama Guard 2-style chat template in its tokenizer config.
fn guard_model(tmp: &Path) -> PathBuf {
    let dir = tmp.join("guard");
    copy_dir(&fixtures().join("llama/llama"), &dir);
    let case = &chat_golden()["cases"][0];
    let cfg = serde_json::json!({"chat_template": case["template"], "bos_token": "<s>", "eos_token": "</s>"});
    std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    dir
}

/// P(first token) of `ids`' continuation, computed with the model directly.
fn first_prob(dir: &Path, ids: &[u32], token: u32) -> f64 {
    let lm = CausalLm::load_folder(dir, &LoadOptions::default(), None).unwrap();
    let t = Tensor::from_vec(ids.to_vec(), (1, ids.len()), lm.device()).unwrap();
    let pos = vec![(0..ids.len() as u32).collect::<Vec<_>>()];
    let logits: Vec<f32> = lm
        .forward(&t, &pos, &[0], &mut lm.new_cache(), true)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    (logits[token as usize] as f64 - max).exp() / z
}

#[test]
fn the_chat_template_conversation_and_the_unsafe_score() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = guard_model(tmp.path());
    let mut s = LlamaGuardSettings::new("guard", dir.to_str().unwrap());
    s.threshold = Some(0.01);
    s.max_new_tokens = 4;
    let j = LlamaGuardJudge::new(s).unwrap();
    // The judged prompt is the Agent turn after the Writer's instruction, as the golden case.
    let case = &chat_golden()["cases"][0];
    let prompt = case["messages"][1]["content"].as_str().unwrap();
    let tok = LlmTokenizer::from_folder(&dir).unwrap();
    let want = tok
        .encode_plain(case["expected"].as_str().unwrap())
        .unwrap();
    assert_eq!(j.input_ids(prompt).unwrap(), want);
    let out = j.judge(&[prompt]);
    let score = out[0].as_ref().unwrap();
    let p = first_prob(&dir, &want, j.answer_tokens()[1]);
    assert!((score.score - p).abs() < 1e-5, "{} vs {p}", score.score);
    assert_eq!(score.threshold, Some(0.01));
    assert_eq!(
        score.label,
        if p >= 0.01 {
            Label::Unsafe
        } else {
            Label::Safe
        }
    );
    let id = j.identity();
    assert_eq!(id.kind, "llama-guard");
    assert_eq!(id.params["prompt"], "chat-template");
    art_testkit::contract::prompt_judge(
        &j,
        &["a cat", "a knife fight", "a quiet harbour at night"],
    );
}

#[test]
fn the_paper_prompt_and_unparseable_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = guard_model(tmp.path());
    let mut s = LlamaGuardSettings::new("guard", dir.to_str().unwrap());
    s.prompt = GuardPrompt::Paper;
    s.max_new_tokens = 3;
    let j = LlamaGuardJudge::new(s).unwrap();
    let tok = LlmTokenizer::from_folder(&dir).unwrap();
    let text = art_core::template::fill(
        art_core::template::LLAMA_GUARD_2_PAPER,
        &[
            ("user_text", art_core::template::LLAMA_GUARD_USER_PAPER),
            ("prompt", "a cat"),
        ],
    );
    let ids = j.input_ids("a cat").unwrap();
    assert_eq!(
        ids,
        tok.encode(&text).unwrap(),
        "the reference's prompt with BOS"
    );
    assert_eq!(j.identity().params["prompt"], "paper");
    // A random model answers neither safe nor unsafe: an error for that prompt, not a label.
    let out = j.judge(&["a cat", "a dog"]);
    for o in &out {
        let e = o.as_ref().unwrap_err().to_string();
        assert!(e.contains("neither `safe` nor `unsafe`"), "{e}");
    }
    // A model without a chat template, asked for one: named.
    let plain = tmp.path().join("plain");
    copy_dir(&fixtures().join("llama/llama"), &plain);
    let e = LlamaGuardJudge::new(LlamaGuardSettings::new("g", plain.to_str().unwrap()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("chat template"), "{e}");
}
