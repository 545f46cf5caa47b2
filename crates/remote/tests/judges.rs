//! Judges over HTTP against a scripted local server: the OpenAI moderation endpoint (prompts
//! and images) and vision-chat guard models.

mod common;
mod support;

use art_config::remote::{OpenaiModerationJudge, VisionChatJudge};
use art_config::{ImageJudgeConfig, PromptJudgeConfig};
use art_core::{ImageJudge, JudgeScore, Label, PromptJudge};
use art_remote::backends::moderation::Moderation;
use art_remote::backends::vision_judge::VisionChat;
use common::*;
use serde_json::{Value, json};
use support::{Step, TestServer};

const DEFAULT_POLICY: &str = include_str!("../data/vision_judge_policy.txt");

// ---------------------------------------------------------------- moderation

/// A moderation config as a user would write it (defaults from serde), with test-sized waits.
fn moderation_cfg(server: &TestServer) -> OpenaiModerationJudge {
    let mut c: OpenaiModerationJudge = serde_json::from_value(json!({
        "endpoint": {"base_urls": [format!("{}/v1", server.url())]},
    }))
    .unwrap();
    c.endpoint = v1(&server.url());
    c
}

fn moderation_reply(flagged: bool, cats: &[(&str, bool, f64)]) -> Value {
    let categories: serde_json::Map<String, Value> = cats
        .iter()
        .map(|(k, on, _)| (k.to_string(), json!(on)))
        .collect();
    let scores: serde_json::Map<String, Value> = cats
        .iter()
        .map(|(k, _, s)| (k.to_string(), json!(s)))
        .collect();
    json!({"id": "modr-1", "model": "omni-moderation-latest", "results": [{
        "flagged": flagged, "categories": categories, "category_scores": scores,
        "category_applied_input_types": {},
    }]})
}

fn score(label: Label, score: f64, threshold: Option<f64>) -> JudgeScore {
    JudgeScore {
        label,
        score,
        threshold,
    }
}

#[test]
fn moderation_prompt_judge_sends_the_prompt_and_reads_the_flag() {
    let server = TestServer::start(|req| {
        let input = req.json()["input"].as_str().unwrap().to_string();
        if input.contains("knife") {
            Step::ok(moderation_reply(
                true,
                &[
                    ("violence", true, 0.91),
                    ("sexual", false, 0.02),
                    ("hate", false, 0.1),
                ],
            ))
        } else {
            Step::ok(moderation_reply(
                false,
                &[("violence", false, 0.03), ("sexual", false, 0.01)],
            ))
        }
    });
    let cfg = moderation_cfg(&server);
    assert_eq!(cfg.model, "omni-moderation-latest", "the default model");
    let j = Moderation::new("omni".into(), &cfg).unwrap();
    assert_eq!(PromptJudge::name(&j), "omni");
    let out = PromptJudge::judge(&j, &["a man with a knife", "a cat on a sofa"]);
    assert_eq!(
        out,
        vec![
            Ok(score(Label::Unsafe, 0.91, None)),
            Ok(score(Label::Safe, 0.03, None)),
        ]
    );
    let mut bodies: Vec<Value> = server.requests().iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| b["input"].to_string());
    assert_eq!(
        bodies,
        vec![
            json!({"model": "omni-moderation-latest", "input": "a cat on a sofa"}),
            json!({"model": "omni-moderation-latest", "input": "a man with a knife"}),
        ]
    );
    for r in server.requests() {
        assert_eq!(r.path, "/v1/moderations");
        assert_eq!(r.method, "POST");
    }
}

#[test]
fn moderation_counts_only_the_configured_categories() {
    let reply = moderation_reply(
        true,
        &[
            ("sexual", true, 0.8),
            ("violence", false, 0.1),
            ("violence/graphic", false, 0.3),
        ],
    );
    let server = TestServer::start(move |_| Step::ok(reply.clone()));
    let mut cfg = moderation_cfg(&server);
    cfg.categories = vec!["violence".into()];
    let j = Moderation::new("violence-only".into(), &cfg).unwrap();
    assert_eq!(
        PromptJudge::judge(&j, &["x"]),
        vec![Ok(score(Label::Safe, 0.1, None))],
        "flagged for another category: safe, scored on violence alone"
    );
    cfg.categories = vec!["violence".into(), "sexual".into()];
    let j = Moderation::new("both".into(), &cfg).unwrap();
    assert_eq!(
        PromptJudge::judge(&j, &["x"]),
        vec![Ok(score(Label::Unsafe, 0.8, None))]
    );
}

#[test]
fn a_moderation_score_that_is_not_a_number_or_is_missing_is_an_error_not_safe() {
    // Python's json module writes NaN as a bare `NaN` (not JSON); providers have sent null.
    let server = TestServer::start(|req| {
        let input = req.json()["input"].as_str().unwrap().to_string();
        match input.as_str() {
            "nan" => Step::text(
                200,
                r#"{"results": [{"flagged": false, "categories": {"violence": false},
                    "category_scores": {"violence": NaN}}]}"#,
            ),
            "null" => Step::ok(json!({"results": [{"flagged": false,
                "categories": {"violence": false}, "category_scores": {"violence": null}}]})),
            "huge" => Step::text(
                200,
                r#"{"results": [{"flagged": false, "categories": {"violence": false},
                    "category_scores": {"violence": 1e999}}]}"#,
            ),
            _ => Step::ok(moderation_reply(false, &[("sexual", false, 0.2)])),
        }
    });
    let mut cfg = moderation_cfg(&server);
    cfg.categories = vec!["violence".into()];
    cfg.endpoint.max_retries = 0;
    let j = Moderation::new("m".into(), &cfg).unwrap();
    let out = PromptJudge::judge(&j, &["nan", "null", "huge", "missing"]);
    for (o, want) in out.iter().zip([
        "",
        "is null, not a finite number",
        "",
        "no score for the category `violence`",
    ]) {
        let e = o.as_ref().expect_err("an error, never a label").to_string();
        assert!(e.starts_with("m:") || e.contains("m"), "{e}");
        assert!(e.contains(want), "{e}");
    }
    // The verdict of a prompt whose only judge failed is incomplete, not safe.
    let outcomes: Vec<art_core::JudgeOutcome> = out
        .into_iter()
        .map(|r| match r {
            Ok(s) => art_core::JudgeOutcome::Scored(s),
            Err(e) => art_core::JudgeOutcome::Error(e.to_string()),
        })
        .collect();
    for o in &outcomes {
        assert_eq!(
            art_core::Verdict::for_prompt([o]),
            art_core::Verdict::Incomplete
        );
    }
}

#[test]
fn moderation_threshold_decides_and_is_reported() {
    let server = TestServer::start(|req| {
        let input = req.json()["input"].as_str().unwrap().to_string();
        match input.as_str() {
            // High score without the provider's flag: unsafe by threshold.
            "high" => Step::ok(moderation_reply(false, &[("violence", false, 0.6)])),
            // Flagged but under the threshold: safe by threshold.
            "low" => Step::ok(moderation_reply(true, &[("violence", true, 0.4)])),
            _ => Step::ok(moderation_reply(false, &[("violence", false, 0.5)])),
        }
    });
    let mut cfg = moderation_cfg(&server);
    cfg.threshold = Some(0.5);
    let j = Moderation::new("thr".into(), &cfg).unwrap();
    assert_eq!(
        PromptJudge::judge(&j, &["high", "low", "equal"]),
        vec![
            Ok(score(Label::Unsafe, 0.6, Some(0.5))),
            Ok(score(Label::Safe, 0.4, Some(0.5))),
            Ok(score(Label::Unsafe, 0.5, Some(0.5))),
        ]
    );
    assert_eq!(PromptJudge::identity(&j).params["threshold"], "0.5");
}

#[test]
fn moderation_image_judge_sends_the_image_as_an_image_url_part() {
    let server = TestServer::start(|req| {
        let img = decode_data_url(
            req.json()
                .pointer("/input/0/image_url/url")
                .and_then(Value::as_str)
                .unwrap(),
        );
        // Wide images are "unsafe".
        if img.width() > 4 {
            Step::ok(moderation_reply(true, &[("sexual", true, 0.97)]))
        } else {
            Step::ok(moderation_reply(false, &[("sexual", false, 0.05)]))
        }
    });
    let mut cfg = moderation_cfg(&server);
    cfg.model = "omni-moderation-2024-09-26".into();
    let j = Moderation::new("omni-image".into(), &cfg).unwrap();
    let (a, b) = (image(8, 2, 40), image(3, 3, 41));
    let out = ImageJudge::judge(&j, &[&a, &b]);
    assert_eq!(
        out,
        vec![
            Ok(score(Label::Unsafe, 0.97, None)),
            Ok(score(Label::Safe, 0.05, None)),
        ]
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let mut seen = Vec::new();
    for r in &reqs {
        assert_eq!(r.path, "/v1/moderations");
        let body = r.json();
        assert_eq!(body["model"], "omni-moderation-2024-09-26");
        let input = body["input"].as_array().unwrap();
        assert_eq!(input.len(), 1);
        assert_eq!(input[0]["type"], "image_url");
        let url = input[0]["image_url"]["url"].as_str().unwrap();
        assert!(url.starts_with("data:image/png;base64,"));
        seen.push(decode_data_url(url));
    }
    assert!(
        seen.contains(&a) && seen.contains(&b),
        "the exact images are sent"
    );
}

#[test]
fn moderation_missing_results_and_http_errors_are_per_item_errors() {
    let server = TestServer::start(|req| match req.json()["input"].as_str().unwrap() {
        "empty" => Step::ok(json!({"id": "modr", "results": []})),
        "noscores" => Step::ok(json!({"results": [{"flagged": true}]})),
        "denied" => Step::Json(403, json!({"error": {"message": "model not available"}})),
        _ => Step::ok(moderation_reply(false, &[("hate", false, 0.2)])),
    });
    let j = Moderation::new("omni".into(), &moderation_cfg(&server)).unwrap();
    let out = PromptJudge::judge(&j, &["empty", "ok", "noscores", "denied"]);
    let e = err_msg(&out[0]);
    assert!(e.contains("no results") && e.starts_with("omni:"), "{e}");
    assert_eq!(out[1], Ok(score(Label::Safe, 0.2, None)));
    assert!(err_msg(&out[2]).contains("category_scores"), "{:?}", out[2]);
    let e = err_msg(&out[3]);
    assert!(
        e.contains("403") && e.contains("model not available"),
        "{e}"
    );
}

#[test]
fn build_names_moderation_prompt_judges_from_config() {
    let server = TestServer::start(|_| Step::text(404, "unused"));
    let mut cfg = moderation_cfg(&server);
    let j = art_remote::build::prompt_judge(&PromptJudgeConfig::OpenaiModeration(Box::new(
        cfg.clone(),
    )))
    .expect("remote kind")
    .expect("builds");
    assert_eq!(j.name(), "openai-moderation", "defaults to the kind");
    assert_eq!(j.identity().kind, "openai-moderation");
    cfg.name = Some("omni-prompts".into());
    let j = art_remote::build::prompt_judge(&PromptJudgeConfig::OpenaiModeration(Box::new(cfg)))
        .unwrap()
        .unwrap();
    assert_eq!(j.name(), "omni-prompts");
    let scripted: PromptJudgeConfig = serde_json::from_value(json!({"kind": "scripted"})).unwrap();
    assert!(art_remote::build::prompt_judge(&scripted).is_none());
}

#[test]
fn build_names_remote_image_judges_from_config() {
    let server = TestServer::start(|_| Step::text(404, "unused"));
    let mut m = moderation_cfg(&server);
    m.name = Some("omni-images".into());
    let j = art_remote::build::image_judge(&ImageJudgeConfig::OpenaiModeration(Box::new(m)))
        .unwrap()
        .unwrap();
    assert_eq!(j.name(), "omni-images");
    let mut v = vision_cfg(&server);
    v.name = Some("llavaguard".into());
    let j = art_remote::build::image_judge(&ImageJudgeConfig::VisionChat(Box::new(v)))
        .unwrap()
        .unwrap();
    assert_eq!(j.name(), "llavaguard");
}

// ---------------------------------------------------------------- vision chat

fn vision_cfg(server: &TestServer) -> VisionChatJudge {
    let mut c: VisionChatJudge = serde_json::from_value(json!({
        "endpoint": {"base_urls": [format!("{}/v1", server.url())]},
        "model": "llavaguard",
    }))
    .unwrap();
    c.endpoint = v1(&server.url());
    c
}

#[test]
fn vision_judge_sends_image_and_policy_and_reads_the_rating() {
    let server = TestServer::start(|_| {
        Step::ok(chat_reply(
            "Sure: {\"rating\":\"Unsafe\",\"category\":\"O3\",\"rationale\":\"shows {gore}\"}",
        ))
    });
    let cfg = vision_cfg(&server);
    let j = VisionChat::new("guard".into(), &cfg).unwrap();
    assert_eq!(j.name(), "guard");
    let img = image(5, 5, 50);
    assert_eq!(j.judge(&[&img]), vec![Ok(score(Label::Unsafe, 1.0, None))]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    let body = reqs[0].json();
    assert_eq!(body["model"], "llavaguard");
    assert_eq!(body["max_tokens"], json!(512), "the default");
    assert!(body.get("temperature").is_none(), "unset: not sent");
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["role"], "user");
    let parts = msgs[0]["content"].as_array().unwrap();
    assert_eq!(parts[0]["type"], "image_url");
    assert_eq!(
        decode_data_url(parts[0]["image_url"]["url"].as_str().unwrap()),
        img
    );
    assert_eq!(parts[1], json!({"type": "text", "text": DEFAULT_POLICY}));
}

#[test]
fn vision_judge_safe_custom_policy_and_temperature() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.txt");
    std::fs::write(&policy, "Rate it. Answer {\"rating\": ...}").unwrap();
    let server = TestServer::start(|_| {
        Step::ok(chat_reply(
            "```json\n{\"rating\": \"safe\", \"category\": \"NA\"}\n```",
        ))
    });
    let mut cfg = vision_cfg(&server);
    cfg.policy_file = Some(policy);
    cfg.temperature = Some(0.0);
    cfg.max_tokens = 64;
    let j = VisionChat::new("guard".into(), &cfg).unwrap();
    let img = image(2, 2, 51);
    assert_eq!(j.judge(&[&img]), vec![Ok(score(Label::Safe, 0.0, None))]);
    let body = server.requests()[0].json();
    assert_eq!(body["temperature"], json!(0.0));
    assert_eq!(body["max_tokens"], json!(64));
    assert_eq!(
        user_text(&body),
        "Rate it. Answer {\"rating\": ...}",
        "the policy file replaces the rubric"
    );

    cfg.policy_file = Some(dir.path().join("missing-policy.txt"));
    let e = VisionChat::new("guard".into(), &cfg).unwrap_err();
    assert!(e.message.contains("missing-policy.txt"), "{}", e.message);
}

#[test]
fn vision_judge_unreadable_answers_fail_only_their_item() {
    // The answer depends on the image the server received (its width).
    let server = TestServer::start(|req| {
        let img = decode_data_url(&user_image_url(&req.json()));
        let text = match img.width() {
            1 => "{\"rating\": \"Unsafe\"}".to_string(),
            2 => "I cannot help with that.".to_string(),
            3 => "{\"rating\": \"borderline\"}".to_string(),
            4 => "{\"category\": \"O1\"}".to_string(),
            _ => "{\"rating\": \"Safe\"}".to_string(),
        };
        Step::ok(chat_reply(&text)).after_ms(10)
    });
    let j = VisionChat::new("guard".into(), &vision_cfg(&server)).unwrap();
    let imgs: Vec<_> = (1..=5).map(|w| image(w, 2, w.into())).collect();
    let refs: Vec<&art_core::Image> = imgs.iter().collect();
    let out = j.judge(&refs);
    assert_eq!(out.len(), 5);
    assert_eq!(out[0], Ok(score(Label::Unsafe, 1.0, None)));
    let e = err_msg(&out[1]);
    assert!(
        e.starts_with("guard:") && e.contains("no JSON object"),
        "{e}"
    );
    assert!(err_msg(&out[2]).contains("borderline"), "{:?}", out[2]);
    assert!(err_msg(&out[3]).contains("rating"), "{:?}", out[3]);
    assert_eq!(out[4], Ok(score(Label::Safe, 0.0, None)));
}

#[test]
fn vision_judge_http_failures_are_errors() {
    let server = TestServer::scripted(
        vec![(
            "/v1/chat/completions",
            vec![
                Step::text(503, "loading model"),
                Step::text(503, "loading model"),
                Step::text(503, "loading model"),
                Step::Json(
                    400,
                    json!({"error": {"message": "image_url not supported"}}),
                ),
            ],
        )],
        Step::ok(json!({"choices": []})),
    );
    let mut cfg = vision_cfg(&server);
    cfg.endpoint.concurrency = 1;
    let j = VisionChat::new("guard".into(), &cfg).unwrap();
    let img = image(2, 2, 52);
    let out = j.judge(&[&img, &img, &img]);
    let e = err_msg(&out[0]);
    assert!(
        e.contains("3 attempts") && e.contains("loading model"),
        "{e}"
    );
    assert!(err_msg(&out[1]).contains("image_url not supported"));
    assert!(err_msg(&out[2]).contains("/choices/0/message/content"));
}
