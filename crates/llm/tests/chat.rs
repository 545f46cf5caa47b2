//! Chat templates rendered as transformers' `apply_chat_template(tokenize=False)` renders
//! them (golden file from `tools/golden/chat_templates.py`): Llama Guard 2's task prompt,
//! Llama 3's headers, Mistral's alternation check, jinja2's block whitespace and Python string
//! methods; and templates read from `tokenizer_config.json` or `chat_template.jinja`.

use art_llm::chat::{ChatTemplate, Message};
use serde_json::Value;
use std::path::Path;

fn golden() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat/golden.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn messages(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn templates_render_as_transformers_renders_them() {
    let g = golden();
    for case in g["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let t = ChatTemplate::from_source(
            case["template"].as_str().unwrap(),
            case["bos_token"].as_str().unwrap(),
            case["eos_token"].as_str().unwrap(),
            Path::new(name),
        );
        let got = t.render(
            &messages(&case["messages"]),
            case["add_generation_prompt"].as_bool().unwrap(),
        );
        match (case.get("expected"), got) {
            (Some(want), Ok(got)) => assert_eq!(got, want.as_str().unwrap(), "{name}"),
            (None, Err(e)) => {
                let want = case["error"].as_str().unwrap();
                assert!(e.to_string().contains(want), "{name}: {e}");
            }
            (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn templates_load_from_a_model_folder() {
    let g = golden();
    let case = &g["cases"][2];
    let tmp = tempfile::tempdir().unwrap();
    let cfg = serde_json::json!({
        "chat_template": case["template"],
        "bos_token": {"content": "<s>", "lstrip": false},
        "eos_token": "</s>",
    });
    std::fs::write(tmp.path().join("tokenizer_config.json"), cfg.to_string()).unwrap();
    let t = ChatTemplate::from_folder(tmp.path()).unwrap();
    let got = t.render(&messages(&case["messages"]), true).unwrap();
    assert_eq!(got, case["expected"].as_str().unwrap());
    // transformers 5 writes the template to chat_template.jinja, which wins.
    std::fs::write(tmp.path().join("chat_template.jinja"), "{{ bos_token }}X").unwrap();
    let t = ChatTemplate::from_folder(tmp.path()).unwrap();
    assert_eq!(t.render(&[], false).unwrap(), "<s>X");
    // No template, or one that does not parse: named errors.
    std::fs::remove_file(tmp.path().join("chat_template.jinja")).unwrap();
    std::fs::write(tmp.path().join("tokenizer_config.json"), "{}").unwrap();
    let e = ChatTemplate::from_folder(tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer_config.json") && e.contains("chat template"),
        "{e}"
    );
    std::fs::write(tmp.path().join("chat_template.jinja"), "{% for x in %}").unwrap();
    let e = ChatTemplate::from_folder(tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("chat_template.jinja") && e.contains("does not parse"),
        "{e}"
    );
}
