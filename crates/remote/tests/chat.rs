//! The Writer and Guide over OpenAI-compatible chat and completion APIs, against a scripted
//! local server: what they send, what they make of the answers, and how failures become
//! per-item errors.

mod common;
mod support;

use art_config::remote::{ChatApi, OpenaiChatGuide, OpenaiChatWriter, Sampling};
use art_config::{GuideConfig, WriterConfig};
use art_core::template::{self as tpl, GUIDE_SYSTEM, GUIDE_USER, WRITER_ALPACA};
use art_core::{Guide, GuideRequest, WriteRequest, Writer};
use art_remote::backends::chat::{ChatGuide, ChatWriter};
use common::*;
use serde_json::{Value, json};
use support::{Step, TestServer};

fn writer_cfg(server: &TestServer) -> OpenaiChatWriter {
    OpenaiChatWriter {
        endpoint: v1(&server.url()),
        model: "writer-model".into(),
        api: ChatApi::Chat,
        template_file: None,
        system: None,
        sampling: Sampling {
            send_seed: true,
            ..Sampling::default()
        },
    }
}

fn guide_cfg(server: &TestServer) -> OpenaiChatGuide {
    OpenaiChatGuide {
        endpoint: v1(&server.url()),
        model: "guide-model".into(),
        template_file: None,
        system: None,
        sampling: Sampling {
            send_seed: true,
            ..Sampling::default()
        },
    }
}

const KW: &str = "violence,abuse";

fn wreq<'a>(prompt: &'a str, instruction: &'a str, seed: u64) -> WriteRequest<'a> {
    WriteRequest {
        prompt,
        category: violence(),
        keywords: KW,
        instruction,
        seed,
    }
}

/// A server answering every chat request with "### Response: rewritten <prompt>", the prompt
/// read back from the filled template (so answers depend on the request).
fn echo_writer_server(delay_ms: u64) -> TestServer {
    TestServer::start(move |req| {
        let text = user_text(&req.json());
        let prompt = between(&text, "Modify the prompt: \"", "\" based on")
            .expect("the template names the prompt")
            .to_string();
        Step::ok(chat_reply(&format!("### Response: rewritten {prompt}\n"))).after_ms(delay_ms)
    })
}

// ---------------------------------------------------------------- writer: requests

#[test]
fn writer_sends_the_filled_template_with_system_and_sampling() {
    let server = TestServer::start(|_| {
        Step::ok(chat_reply(
            "### Instruction: ... ### Response:  a cat in a burning street \n",
        ))
    });
    let mut cfg = writer_cfg(&server);
    cfg.system = Some("You rewrite prompts.".into());
    cfg.sampling = Sampling {
        temperature: Some(0.7),
        top_p: Some(0.9),
        max_tokens: Some(77),
        n: Some(1),
        stop: vec!["\n\n".into(), "###".into()],
        send_seed: true,
        extra: toml::toml! { top_k = 50
        repetition_penalty = 1.5 },
    };
    let w = ChatWriter::new(&cfg).unwrap();
    let seed = 0xdead_beef_8000_0005_u64;
    let r = wreq("a cat on a street", "add fire and a crowd", seed);
    let out = w.write(std::slice::from_ref(&r));
    assert_eq!(out, vec![Ok("a cat in a burning street".to_string())]);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    let body = reqs[0].json();
    assert_eq!(body["model"], "writer-model");
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        msgs[0],
        json!({"role": "system", "content": "You rewrite prompts."})
    );
    assert_eq!(msgs[1]["role"], "user");
    let content = msgs[1]["content"].as_str().unwrap();
    assert_eq!(content, tpl::writer_text(WRITER_ALPACA, &r));
    assert!(content.contains("Modify the prompt: \"a cat on a street\""));
    assert!(content.contains("\"violence\""), "category: {content}");
    assert!(
        content.contains("\"violence,abuse\""),
        "keywords: {content}"
    );
    assert!(content.contains("Expert: \"add fire and a crowd\""));
    assert!(content.ends_with("### Response:"));
    assert_eq!(body["temperature"], json!(0.7));
    assert_eq!(body["top_p"], json!(0.9));
    assert_eq!(body["max_tokens"], json!(77));
    assert_eq!(body["n"], json!(1));
    assert_eq!(body["stop"], json!(["\n\n", "###"]));
    assert_eq!(body["seed"], json!(5), "seed & 0x7fffffff");
    assert_eq!(body["seed"].as_u64(), Some(seed & 0x7fff_ffff));
    assert_eq!(body["top_k"], json!(50), "extra fields are passed through");
    assert_eq!(body["repetition_penalty"], json!(1.5));
}

#[test]
fn writer_leaves_out_unset_sampling_the_seed_when_disabled_and_the_system_message() {
    let server = TestServer::start(|_| Step::ok(chat_reply("a quiet cat")));
    let mut cfg = writer_cfg(&server);
    cfg.sampling.send_seed = false;
    let w = ChatWriter::new(&cfg).unwrap();
    let out = w.write(&[wreq("a cat", "", 42)]);
    assert_eq!(out, vec![Ok("a quiet cat".to_string())]);
    let body = server.requests()[0].json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec!["messages", "model"],
        "only model and messages: {body}"
    );
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "no system message unless configured");
    assert_eq!(msgs[0]["role"], "user");
    assert!(
        msgs[0]["content"]
            .as_str()
            .unwrap()
            .contains("Expert: \"\""),
        "an empty instruction is sent empty, not as `None`"
    );
}

#[test]
fn writer_sends_seeds_by_default_with_or_without_a_sampling_table() {
    let server = TestServer::start(|_| Step::ok(chat_reply("ok")));
    let base = json!({"endpoint": {"base_urls": [format!("{}/v1", server.url())]},
                      "model": "m"});
    let mut with_table = base.clone();
    with_table["sampling"] = json!({"temperature": 1.0});
    // A table that does not mention send_seed, and no table at all (regression: the derived
    // Default once made that `false`).
    for value in [with_table, base] {
        let cfg: OpenaiChatWriter = serde_json::from_value(value).unwrap();
        assert!(cfg.sampling.send_seed, "documented default: true");
        let w = ChatWriter::new(&cfg).unwrap();
        assert!(w.write(&[wreq("a", "", 0x1_0000_0007)])[0].is_ok());
        let last = server.requests().pop().unwrap();
        assert_eq!(last.json()["seed"], json!(7));
    }
}

#[test]
fn writer_uses_the_completions_api_with_the_raw_template() {
    let server = TestServer::start(|req| {
        let path = req.path.clone();
        if path == "/v1/completions" {
            Step::ok(completion_reply("  a dog on fire\n"))
        } else {
            Step::text(404, "wrong path")
        }
    });
    let mut cfg = writer_cfg(&server);
    cfg.api = ChatApi::Completions;
    cfg.system = Some("ignored for completions".into());
    cfg.sampling.max_tokens = Some(64);
    let w = ChatWriter::new(&cfg).unwrap();
    let r = wreq("a dog", "add fire", 3);
    assert_eq!(
        w.write(std::slice::from_ref(&r)),
        vec![Ok("a dog on fire".to_string())]
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/completions");
    let body = reqs[0].json();
    assert_eq!(
        body,
        json!({"model": "writer-model", "prompt": tpl::writer_text(WRITER_ALPACA, &r),
               "max_tokens": 64, "seed": 3})
    );
    assert!(w.identity().params["api"] == "completions");
}

#[test]
fn writer_uses_a_custom_template_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writer.txt");
    std::fs::write(
        &path,
        "REWRITE {prompt} AS {category} WITH {keywords}; HINT {guide_instructions} {unknown}",
    )
    .unwrap();
    let server = TestServer::start(|_| Step::ok(chat_reply("done")));
    let mut cfg = writer_cfg(&server);
    cfg.template_file = Some(path.clone());
    let w = ChatWriter::new(&cfg).unwrap();
    let default_w = ChatWriter::new(&writer_cfg(&server)).unwrap();
    assert_ne!(
        w.identity().params["template"],
        default_w.identity().params["template"],
        "the template is part of the identity"
    );
    assert_eq!(
        w.write(&[wreq("a {prompt} cat", "more blood", 1)]),
        vec![Ok("done".into())]
    );
    let body = server.requests()[0].json();
    assert_eq!(
        user_text(&body),
        "REWRITE a {prompt} cat AS violence WITH violence,abuse; HINT more blood {unknown}"
    );

    cfg.template_file = Some(dir.path().join("missing.txt"));
    let e = ChatWriter::new(&cfg).unwrap_err();
    assert!(
        e.message.contains("missing.txt"),
        "names the path: {}",
        e.message
    );
}

// ---------------------------------------------------------------- writer: batches

#[test]
fn writer_batch_keeps_order_and_runs_concurrently_within_the_limit() {
    let server = echo_writer_server(120);
    let w = ChatWriter::new(&writer_cfg(&server)).unwrap();
    let prompts: Vec<String> = (0..6).map(|i| format!("prompt number {i}")).collect();
    let reqs: Vec<WriteRequest<'_>> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| wreq(p, "", i as u64))
        .collect();
    let t0 = std::time::Instant::now();
    let out = w.write(&reqs);
    let took = t0.elapsed();
    let want: Vec<Result<String, _>> = prompts
        .iter()
        .map(|p| Ok(format!("rewritten {p}")))
        .collect();
    assert_eq!(out, want);
    assert_eq!(server.requests().len(), 6);
    let peak = server.max_concurrent();
    assert!(peak > 1, "requests ran one at a time (peak {peak})");
    assert!(peak <= 4, "concurrency 4 exceeded (peak {peak})");
    assert!(
        took < std::time::Duration::from_millis(6 * 120),
        "a batch of 6 took {took:?}: not concurrent"
    );
    // Each request carried its own item's seed.
    let mut seeds: Vec<u64> = server
        .requests()
        .iter()
        .map(|r| r.json()["seed"].as_u64().unwrap())
        .collect();
    seeds.sort_unstable();
    assert_eq!(seeds, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(w.endpoint().stats().requests, 6);
}

#[test]
fn writer_content_filter_fails_only_that_item() {
    let server = TestServer::start(|req| {
        let text = user_text(&req.json());
        if text.contains("forbidden") {
            Step::ok(json!({"choices": [{"index": 0,
                "message": {"role": "assistant", "content": "a partial answ"},
                "finish_reason": "content_filter"}]}))
        } else {
            Step::ok(chat_reply("fine prompt"))
        }
    });
    let w = ChatWriter::new(&writer_cfg(&server)).unwrap();
    let out = w.write(&[
        wreq("a cat", "", 1),
        wreq("a forbidden cat", "", 2),
        wreq("a dog", "", 3),
    ]);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], Ok("fine prompt".into()));
    let e = err_msg(&out[1]);
    assert!(e.contains("content filter"), "{e}");
    assert!(e.starts_with("writer:"), "{e}");
    assert_eq!(out[2], Ok("fine prompt".into()));
}

#[test]
fn writer_empty_answer_is_an_error() {
    let server = TestServer::start(|_| Step::ok(chat_reply("### Response:   \n ")));
    let w = ChatWriter::new(&writer_cfg(&server)).unwrap();
    let out = w.write(&[wreq("a cat", "", 1)]);
    assert!(err_msg(&out[0]).contains("empty"), "{out:?}");
}

#[test]
fn writer_http_400_is_an_error_with_the_servers_message_and_is_not_retried() {
    let server = TestServer::start(|_| Step::Json(400, json!({"error": {"message": "bad model"}})));
    let w = ChatWriter::new(&writer_cfg(&server)).unwrap();
    let out = w.write(&[wreq("a cat", "", 1)]);
    let e = err_msg(&out[0]);
    assert!(e.contains("bad model"), "{e}");
    assert!(e.contains("400"), "{e}");
    assert_eq!(server.requests().len(), 1, "400 is not retried");
}

#[test]
fn writer_server_errors_exhaust_the_retries_and_name_the_attempts() {
    let server = TestServer::start(|_| Step::text(500, "model crashed"));
    let w = ChatWriter::new(&writer_cfg(&server)).unwrap();
    let out = w.write(&[wreq("a cat", "", 1)]);
    let e = err_msg(&out[0]);
    assert!(
        e.contains("3 attempts"),
        "max_retries = 2 means 3 attempts: {e}"
    );
    assert!(e.contains("500"), "{e}");
    assert!(e.contains("/v1/chat/completions"), "{e}");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn writer_malformed_or_unexpected_json_is_an_error() {
    let server = TestServer::scripted(
        vec![(
            "/v1/chat/completions",
            vec![
                Step::Status(
                    200,
                    vec![("Content-Type".into(), "application/json".into())],
                    b"{\"choices\": [".to_vec(),
                ),
                Step::ok(json!({"choices": []})),
                Step::ok(json!({"choices": [{"message": {"content": 42}}]})),
            ],
        )],
        Step::text(404, "unexpected"),
    );
    let mut cfg = writer_cfg(&server);
    cfg.endpoint.concurrency = 1; // the scripted replies go to the items in order
    let w = ChatWriter::new(&cfg).unwrap();
    let out = w.write(&[wreq("a", "", 1), wreq("b", "", 2), wreq("c", "", 3)]);
    let e0 = err_msg(&out[0]);
    assert!(e0.contains("not JSON"), "{e0}");
    let e1 = err_msg(&out[1]);
    assert!(e1.contains("/choices/0/message/content"), "{e1}");
    assert!(out[2].is_err());
    assert_eq!(server.requests().len(), 3, "malformed JSON is not retried");
}

#[test]
fn writer_unreachable_server_fails_every_item() {
    let mut cfg = OpenaiChatWriter {
        endpoint: endpoint_at(support::closed_port_url()),
        model: "m".into(),
        api: ChatApi::Chat,
        template_file: None,
        system: None,
        sampling: Sampling::default(),
    };
    cfg.endpoint.max_retries = 1;
    let w = ChatWriter::new(&cfg).unwrap();
    let out = w.write(&[wreq("a", "", 1), wreq("b", "", 2)]);
    assert_eq!(out.len(), 2);
    for r in &out {
        assert!(err_msg(r).contains("2 attempts"), "{r:?}");
    }
}

#[test]
fn build_makes_chat_writers_and_guides_and_skips_other_kinds() {
    let server = echo_writer_server(0);
    let w = art_remote::build::writer(&WriterConfig::OpenaiChat(Box::new(writer_cfg(&server))))
        .expect("a remote kind")
        .expect("builds");
    assert_eq!(
        w.write(&[wreq("x", "", 1)]),
        vec![Ok("rewritten x".to_string())]
    );
    assert_eq!(w.identity().kind, "openai-chat");
    assert_eq!(w.identity().model, "writer-model");
    assert!(art_remote::build::writer(&WriterConfig::Scripted(Default::default())).is_none());
    let g = art_remote::build::guide(&GuideConfig::OpenaiChat(Box::new(guide_cfg(&server))))
        .expect("a remote kind");
    assert!(g.is_ok());
    assert!(art_remote::build::guide(&GuideConfig::Scripted(Default::default())).is_none());

    let mut bad = writer_cfg(&server);
    bad.endpoint.base_urls = vec!["ftp://nowhere".into()];
    let e = ChatWriter::new(&bad).unwrap_err();
    assert!(e.message.contains("ftp://nowhere"), "{}", e.message);
}

// ---------------------------------------------------------------- guide

fn greq<'a>(image: &'a art_core::Image, prompt: &'a str, seed: u64) -> GuideRequest<'a> {
    GuideRequest {
        image,
        prompt,
        category: violence(),
        keywords: KW,
        seed,
    }
}

#[test]
fn guide_sends_the_image_then_the_text_and_cuts_the_example() {
    let server = TestServer::start(|_| {
        Step::ok(chat_reply(
            "  Add a crowd and smoke.\nFor Example: a crowd in smoke, burning cars",
        ))
    });
    let mut cfg = guide_cfg(&server);
    cfg.sampling.temperature = Some(0.2);
    let g = ChatGuide::new(&cfg).unwrap();
    let img = image(7, 5, 1);
    let out = g.guide(&[greq(&img, "a street", 0xffff_ffff_ffff_ffff)]);
    let o = out[0].as_ref().unwrap();
    assert_eq!(o.instructions, "Add a crowd and smoke.");
    assert!(
        o.raw
            .contains("For Example: a crowd in smoke, burning cars")
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    let body = reqs[0].json();
    assert_eq!(body["model"], "guide-model");
    assert_eq!(body["temperature"], json!(0.2));
    assert_eq!(body["seed"], json!(0x7fff_ffff_u64));
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0], json!({"role": "system", "content": GUIDE_SYSTEM}));
    assert_eq!(msgs[1]["role"], "user");
    let parts = msgs[1]["content"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["type"], "image_url", "the image comes first");
    let url = parts[0]["image_url"]["url"].as_str().unwrap();
    assert_eq!(decode_data_url(url), img, "the exact image is sent");
    assert_eq!(
        parts[1],
        json!({"type": "text",
               "text": tpl::guide_text(GUIDE_USER, "a street", "violence", KW)})
    );
    let text = parts[1]["text"].as_str().unwrap();
    assert!(text.contains("prompt: \"a street\""), "{text}");
    assert!(text.contains("\"violence\"") && text.contains(KW), "{text}");
}

#[test]
fn guide_system_message_can_be_replaced_or_left_out() {
    let server = TestServer::start(|_| Step::ok(chat_reply("no example here  ")));
    let img = image(4, 4, 2);
    let mut cfg = guide_cfg(&server);
    cfg.system = Some("Be a helpful critic.".into());
    cfg.sampling.send_seed = false;
    let out = ChatGuide::new(&cfg).unwrap().guide(&[greq(&img, "p", 1)]);
    assert_eq!(out[0].as_ref().unwrap().instructions, "no example here");
    assert_eq!(out[0].as_ref().unwrap().raw, "no example here  ");
    cfg.system = Some(String::new());
    ChatGuide::new(&cfg).unwrap().guide(&[greq(&img, "p", 1)]);
    let reqs = server.requests();
    let first = reqs[0].json();
    assert_eq!(
        first["messages"][0],
        json!({"role": "system", "content": "Be a helpful critic."})
    );
    assert!(first.get("seed").is_none());
    let second = reqs[1].json();
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "an empty system message is not sent");
    assert_eq!(msgs[0]["role"], "user");
}

#[test]
fn guide_batch_answers_follow_each_items_image_and_failures_stay_per_item() {
    // The answer names the width of the image the server received; width 9 is filtered.
    let server = TestServer::start(|req| {
        let body = req.json();
        let img = decode_data_url(&user_image_url(&body));
        if img.width() == 9 {
            return Step::ok(json!({"choices": [{"message": {"content": ""},
                                                "finish_reason": "content_filter"}]}));
        }
        Step::ok(chat_reply(&format!(
            "Make it {} wide. For Example: x",
            img.width()
        )))
        .after_ms(30)
    });
    let g = ChatGuide::new(&guide_cfg(&server)).unwrap();
    let imgs: Vec<_> = [3, 4, 9, 5, 6]
        .iter()
        .map(|&w| image(w, 2, w.into()))
        .collect();
    let reqs: Vec<_> = imgs.iter().map(|i| greq(i, "p", 1)).collect();
    let out = g.guide(&reqs);
    assert_eq!(out.len(), 5);
    for (i, w) in [3, 4, 9, 5, 6].iter().enumerate() {
        if *w == 9 {
            assert!(err_msg(&out[i]).contains("content filter"));
        } else {
            assert_eq!(
                out[i].as_ref().unwrap().instructions,
                format!("Make it {w} wide.")
            );
        }
    }
    assert!(server.max_concurrent() <= 4);
}

#[test]
fn guide_custom_template_file_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guide.txt");
    std::fs::write(&path, "Look at {prompt} for {category} ({keywords}).").unwrap();
    let server = TestServer::scripted(
        vec![(
            "/v1/chat/completions",
            vec![
                Step::ok(chat_reply("Do more.")),
                Step::Json(400, json!({"error": {"message": "image too large"}})),
            ],
        )],
        Step::text(404, "unexpected"),
    );
    let mut cfg = guide_cfg(&server);
    cfg.template_file = Some(path);
    cfg.endpoint.concurrency = 1;
    let g = ChatGuide::new(&cfg).unwrap();
    let img = image(3, 3, 3);
    let out = g.guide(&[greq(&img, "a cat", 1), greq(&img, "a dog", 2)]);
    assert_eq!(out[0].as_ref().unwrap().instructions, "Do more.");
    assert!(err_msg(&out[1]).contains("image too large"));
    assert!(err_msg(&out[1]).starts_with("guide:"));
    let body: Value = server.requests()[0].json();
    assert_eq!(
        user_text(&body),
        "Look at a cat for violence (violence,abuse)."
    );
}
