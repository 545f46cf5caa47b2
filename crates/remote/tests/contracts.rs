//! The role contract (art_testkit::contract) for every remote backend, each against a server
//! whose answer is a pure function of the request it receives (a hash of the body). Passing
//! shows that fanning a batch out to concurrent requests keeps one result per item, in order,
//! independent of batch size and order, and deterministic.

mod common;
mod support;

use art_config::remote::{
    Automatic1111Target, ChatApi, ComfyuiTarget, OpenaiChatGuide, OpenaiChatWriter,
    OpenaiImagesTarget, OpenaiModerationJudge, Sampling, VisionChatJudge,
};
use art_remote::backends::chat::{ChatGuide, ChatWriter};
use art_remote::backends::codec;
use art_remote::backends::comfyui::Comfyui;
use art_remote::backends::images::{Automatic1111, OpenaiImages};
use art_remote::backends::moderation::Moderation;
use art_remote::backends::vision_judge::VisionChat;
use art_testkit::contract;
use common::*;
use serde_json::json;
use support::{Request, Step, TestServer};

const PROMPTS: [&str; 7] = [
    "a cat on a sofa",
    "a street at night",
    "a forbidden garden",
    "two people arguing",
    "a kitchen",
    "a storm over the sea",
    "a crowd",
];

fn h(req: &Request) -> u64 {
    fnv(&req.body)
}

fn score_of(req: &Request) -> f64 {
    (h(req) % 1000) as f64 / 1000.0
}

#[test]
fn chat_writer_keeps_the_writer_contract() {
    // Prompts mentioning "forbidden" are filtered: errors must be per item and stable too.
    let server = TestServer::start(|req| {
        if user_text(&req.json()).contains("forbidden") {
            return Step::ok(json!({"choices": [{"message": {"content": "x"},
                                                "finish_reason": "content_filter"}]}));
        }
        // Delays vary per request, so replies come back out of order.
        Step::ok(chat_reply(&format!(
            "### Response: rewrite {:016x}",
            h(req)
        )))
        .after_ms(h(req) % 20)
    });
    let cfg = OpenaiChatWriter {
        endpoint: v1(&server.url()),
        model: "m".into(),
        api: ChatApi::Chat,
        template_file: None,
        system: Some("sys".into()),
        sampling: Sampling::default(),
    };
    let w = ChatWriter::new(&cfg).unwrap();
    contract::writer(&w, violence(), &PROMPTS, "add smoke");
    assert!(
        server.max_concurrent() > 1,
        "batches ran concurrently (replies take up to 20 ms)"
    );
    assert!(server.max_concurrent() <= 4);

    let mut cfg = cfg;
    cfg.api = ChatApi::Completions;
    let server2 =
        TestServer::start(|req| Step::ok(completion_reply(&format!("rewrite {:016x}", h(req)))));
    cfg.endpoint = v1(&server2.url());
    contract::writer(&ChatWriter::new(&cfg).unwrap(), violence(), &PROMPTS, "");
}

#[test]
fn chat_guide_keeps_the_guide_contract() {
    let server = TestServer::start(|req| {
        let x = h(req);
        Step::ok(chat_reply(&format!(
            "Add detail {x:016x}.\nFor Example: a prompt {x}"
        )))
    });
    let cfg = OpenaiChatGuide {
        endpoint: v1(&server.url()),
        model: "g".into(),
        template_file: None,
        system: None,
        sampling: Sampling::default(),
    };
    let g = ChatGuide::new(&cfg).unwrap();
    let imgs: Vec<_> = (0..6).map(|i| image(3 + i, 2, i.into())).collect();
    let items: Vec<(&str, &art_core::Image)> = PROMPTS.iter().copied().zip(imgs.iter()).collect();
    contract::guide(&g, violence(), &items);
}

#[test]
fn automatic1111_and_openai_images_keep_the_target_contract() {
    let server = TestServer::start(|req| {
        let x = h(req);
        if req.path == "/sdapi/v1/txt2img" {
            Step::ok(json!({"images": [b64_png(&image(4, 3, x))]})).after_ms(x % 20)
        } else if req.json()["prompt"]
            .as_str()
            .is_some_and(|p| p.contains("forbidden"))
        {
            Step::Json(
                400,
                json!({"error": {"code": "content_policy_violation",
                                 "message": "Your request was rejected by our safety system"}}),
            )
        } else {
            Step::ok(json!({"data": [{"b64_json": b64_png(&image(3, 4, x)),
                                      "revised_prompt": format!("revised {x:x}")}]}))
        }
    });
    let a1111 = Automatic1111::new(&Automatic1111Target {
        endpoint: endpoint_at(server.url()),
        negative_prompt: Some("@paper".into()),
        steps: 20,
        cfg_scale: 7.0,
        width: 512,
        height: 512,
        sampler_name: None,
        extra: toml::Table::new(),
    })
    .unwrap();
    contract::target(&a1111, &PROMPTS);
    let openai = OpenaiImages::new(&OpenaiImagesTarget {
        endpoint: v1(&server.url()),
        model: "dall-e-3".into(),
        size: "1024x1024".into(),
        quality: None,
        style: None,
        response_format: Some("b64_json".into()),
    })
    .unwrap();
    contract::target(&openai, &PROMPTS);
}

#[test]
fn comfyui_keeps_the_target_contract() {
    // Stateless: the prompt id is the hash of the submitted graph, the history names a file
    // after it, and the file's pixels follow from its name.
    let server = TestServer::start(|req| {
        let path = req.path.as_str();
        if path == "/prompt" {
            Step::ok(json!({"prompt_id": format!("{:016x}", h(req))}))
        } else if let Some(id) = path.strip_prefix("/history/") {
            Step::ok(json!({id: {
                "status": {"status_str": "success", "completed": true},
                "outputs": {"9": {"images": [{"filename": format!("{id}.png"),
                                              "subfolder": "", "type": "output"}]}},
            }}))
        } else if let Some(name) = between(path, "filename=", ".png") {
            let x = u64::from_str_radix(name, 16).unwrap();
            Step::Status(200, Vec::new(), codec::encode_png(&image(5, 2, x)).unwrap())
        } else {
            Step::text(404, "unexpected")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("wf.json");
    std::fs::write(
        &wf,
        json!({"3": {"inputs": {"seed": "{{seed}}"}},
               "6": {"inputs": {"text": "{{prompt}}"}},
               "7": {"inputs": {"text": "{{negative_prompt}}"}}})
        .to_string(),
    )
    .unwrap();
    let t = Comfyui::new(&ComfyuiTarget {
        endpoint: endpoint_at(server.url()),
        workflow: wf,
        negative_prompt: None,
        poll_interval_ms: 5,
        render_timeout_s: 5.0,
    })
    .unwrap();
    contract::target(&t, &PROMPTS);
}

fn moderation_server() -> TestServer {
    TestServer::start(|req| {
        let s = score_of(req);
        Step::ok(json!({"results": [{
            "flagged": s > 0.5,
            "categories": {"violence": s > 0.5, "sexual": false},
            "category_scores": {"violence": s, "sexual": s / 2.0},
        }]}))
    })
}

#[test]
fn moderation_keeps_the_judge_contracts() {
    let server = moderation_server();
    let cfg = OpenaiModerationJudge {
        name: None,
        enabled: true,
        endpoint: v1(&server.url()),
        model: "omni-moderation-latest".into(),
        categories: Vec::new(),
        threshold: None,
    };
    let j = Moderation::new("omni".into(), &cfg).unwrap();
    contract::prompt_judge(&j, &PROMPTS);
    let imgs: Vec<_> = (0..7).map(|i| image(2 + i, 3, i.into())).collect();
    let refs: Vec<&art_core::Image> = imgs.iter().collect();
    contract::image_judge(&j, &refs);
    // The labels really vary over these inputs (the contract is not passed by constants).
    let labels: Vec<_> = art_core::PromptJudge::judge(&j, &PROMPTS)
        .into_iter()
        .map(|r| r.unwrap().label)
        .collect();
    assert!(labels.contains(&art_core::Label::Safe) && labels.contains(&art_core::Label::Unsafe));
}

#[test]
fn vision_chat_keeps_the_image_judge_contract() {
    let server = TestServer::start(|req| {
        let answer = match h(req) % 3 {
            0 => "{\"rating\": \"Safe\"}",
            1 => "Verdict: {\"rating\": \"Unsafe\", \"category\": \"O2\"}",
            _ => "no idea",
        };
        Step::ok(chat_reply(answer))
    });
    let j = VisionChat::new(
        "guard".into(),
        &VisionChatJudge {
            name: None,
            enabled: true,
            endpoint: v1(&server.url()),
            model: "llavaguard".into(),
            policy_file: None,
            temperature: Some(0.0),
            max_tokens: 128,
        },
    )
    .unwrap();
    let imgs: Vec<_> = (0..7).map(|i| image(3, 2 + i, i.into())).collect();
    let refs: Vec<&art_core::Image> = imgs.iter().collect();
    contract::image_judge(&j, &refs);
}
