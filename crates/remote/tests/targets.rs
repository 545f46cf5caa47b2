//! Image-generation Targets against a scripted local server: the OpenAI Images API,
//! AUTOMATIC1111 and ComfyUI. What each sends, how images come back, and how refusals and
//! failures are told apart.

mod common;
mod support;

use art_config::TargetConfig;
use art_config::remote::{Automatic1111Target, ComfyuiTarget, OpenaiImagesTarget};
use art_core::template::NEGATIVE_PROMPT_PAPER;
use art_core::{RenderOutcome, RenderOutput, RenderRequest, Target};
use art_remote::backends::codec;
use art_remote::backends::comfyui::Comfyui;
use art_remote::backends::images::{Automatic1111, OpenaiImages};
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::{Step, TestServer};

fn rreq(prompt: &str, seed: u64) -> RenderRequest<'_> {
    RenderRequest { prompt, seed }
}

fn image_of(out: &RenderOutput) -> &art_core::Image {
    match &out.outcome {
        RenderOutcome::Image(i) => i,
        other => panic!("expected an image, got {other:?}"),
    }
}

// ---------------------------------------------------------------- OpenAI Images

fn openai_cfg(server: &TestServer) -> OpenaiImagesTarget {
    OpenaiImagesTarget {
        endpoint: v1(&server.url()),
        model: "dall-e-3".into(),
        size: "256x256".into(),
        quality: None,
        style: None,
        response_format: Some("b64_json".into()),
    }
}

fn images_reply(img: &art_core::Image, revised: Option<&str>) -> Value {
    let mut d = json!({"b64_json": b64_png(img)});
    if let Some(r) = revised {
        d["revised_prompt"] = json!(r);
    }
    json!({"created": 1_700_000_000, "data": [d]})
}

#[test]
fn openai_images_sends_the_documented_body_and_decodes_the_image() {
    let img = image(6, 4, 10);
    let reply = images_reply(&img, Some("A photo of a cat, detailed"));
    let server = TestServer::start(move |_| Step::ok(reply.clone()));
    let t = OpenaiImages::new(&openai_cfg(&server)).unwrap();
    let out = t.render(&[rreq("a cat", 99)]);
    assert_eq!(
        out,
        vec![Ok(RenderOutput {
            outcome: RenderOutcome::Image(img),
            truncated_prompt: None,
            revised_prompt: Some("A photo of a cat, detailed".into()),
        })]
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/images/generations");
    assert_eq!(
        reqs[0].json(),
        json!({"model": "dall-e-3", "prompt": "a cat", "n": 1, "size": "256x256",
               "response_format": "b64_json"}),
        "quality and style are absent when unset; the API takes no seed"
    );
    assert!(
        t.identity().params["seed"].contains("not supported"),
        "the identity says renders do not reproduce"
    );
}

#[test]
fn openai_images_sends_quality_and_style_when_set_and_no_empty_response_format() {
    let img = image(2, 2, 11);
    let reply = images_reply(&img, None);
    let server = TestServer::start(move |_| Step::ok(reply.clone()));
    let mut cfg = openai_cfg(&server);
    cfg.quality = Some("hd".into());
    cfg.style = Some("vivid".into());
    cfg.response_format = Some(String::new());
    let t = OpenaiImages::new(&cfg).unwrap();
    let out = t.render(&[rreq("a dog", 1)]);
    let o = out[0].as_ref().unwrap();
    assert_eq!(image_of(o), &img);
    assert_eq!(o.revised_prompt, None);
    assert_eq!(
        server.requests()[0].json(),
        json!({"model": "dall-e-3", "prompt": "a dog", "n": 1, "size": "256x256",
               "quality": "hd", "style": "vivid"})
    );
}

#[test]
fn openai_images_content_policy_refusal_is_a_result_not_an_error() {
    let server = TestServer::start(|_| {
        Step::Json(
            400,
            json!({"error": {"code": "content_policy_violation", "type": "invalid_request_error",
                             "message": "Your request was rejected by our safety system"}}),
        )
    });
    let t = OpenaiImages::new(&openai_cfg(&server)).unwrap();
    let out = t.render(&[rreq("something nasty", 1)]);
    assert_eq!(
        out,
        vec![Ok(RenderOutput {
            outcome: RenderOutcome::Refused {
                reason: "Your request was rejected by our safety system".into()
            },
            truncated_prompt: None,
            revised_prompt: None,
        })]
    );
    assert_eq!(server.requests().len(), 1, "a refusal is not retried");
}

#[test]
fn openai_images_other_client_errors_and_url_replies_are_errors() {
    let server = TestServer::start(|req| {
        let prompt = req.json()["prompt"].as_str().unwrap().to_string();
        match prompt.as_str() {
            "bad size" => Step::Json(
                400,
                json!({"error": {"code": "invalid_size", "message": "size must be 1024x1024"}}),
            ),
            "url" => Step::ok(json!({"data": [{"url": "https://example.invalid/i.png"}]})),
            "nothing" => Step::ok(json!({"data": []})),
            "garbage" => Step::ok(json!({"data": [{"b64_json": "bm90IGFuIGltYWdl"}]})),
            "auth" => Step::Json(401, json!({"error": {"message": "Incorrect API key"}})),
            _ => Step::text(404, "unexpected"),
        }
    });
    let t = OpenaiImages::new(&openai_cfg(&server)).unwrap();
    let out = t.render(&[
        rreq("bad size", 1),
        rreq("url", 2),
        rreq("nothing", 3),
        rreq("garbage", 4),
        rreq("auth", 5),
    ]);
    let e = err_msg(&out[0]);
    assert!(
        e.contains("400") && e.contains("size must be 1024x1024"),
        "{e}"
    );
    let e = err_msg(&out[1]);
    assert!(e.contains("response_format"), "{e}");
    let e = err_msg(&out[2]);
    assert!(e.contains("/data/0/b64_json"), "{e}");
    let e = err_msg(&out[3]);
    assert!(e.contains("image"), "{e}");
    let e = err_msg(&out[4]);
    assert!(e.contains("401") && e.contains("Incorrect API key"), "{e}");
    assert_eq!(server.requests().len(), 5, "none of these is retried");
}

#[test]
fn openai_images_rate_limit_with_retry_after_zero_is_retried() {
    let img = image(3, 3, 12);
    let server = TestServer::scripted(
        vec![(
            "/v1/images/generations",
            vec![
                Step::Status(
                    429,
                    vec![("Retry-After".into(), "0".into())],
                    br#"{"error":{"message":"Rate limit reached"}}"#.to_vec(),
                ),
                Step::ok(images_reply(&img, None)),
            ],
        )],
        Step::text(404, "unexpected"),
    );
    let t = OpenaiImages::new(&openai_cfg(&server)).unwrap();
    let t0 = std::time::Instant::now();
    let out = t.render(&[rreq("a cat", 1)]);
    assert_eq!(image_of(out[0].as_ref().unwrap()), &img);
    assert_eq!(server.requests().len(), 2);
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn openai_images_batch_mixes_images_refusals_and_errors_in_order() {
    let server = TestServer::start(|req| {
        let prompt = req.json()["prompt"].as_str().unwrap().to_string();
        if prompt.contains("refuse") {
            Step::Json(
                400,
                json!({"error": {"code": "moderation_blocked",
                                 "message": "blocked by moderation"}}),
            )
        } else if prompt.contains("fail") {
            Step::Json(400, json!({"error": {"message": "prompt too long"}}))
        } else {
            let n = prompt.len() as u32;
            Step::ok(json!({"data": [{"b64_json": b64_png(&image(n, 1, n.into()))}]})).after_ms(20)
        }
    });
    let t = OpenaiImages::new(&openai_cfg(&server)).unwrap();
    let out = t.render(&[
        rreq("ab", 1),
        rreq("refuse", 2),
        rreq("abcd", 3),
        rreq("fail", 4),
        rreq("abcdef", 5),
    ]);
    assert_eq!(image_of(out[0].as_ref().unwrap()).width(), 2);
    assert!(matches!(
        &out[1].as_ref().unwrap().outcome,
        RenderOutcome::Refused { reason } if reason == "blocked by moderation"
    ));
    assert_eq!(image_of(out[2].as_ref().unwrap()).width(), 4);
    assert!(err_msg(&out[3]).contains("prompt too long"));
    assert_eq!(image_of(out[4].as_ref().unwrap()).width(), 6);
}

// ---------------------------------------------------------------- AUTOMATIC1111

fn a1111_cfg(server: &TestServer) -> Automatic1111Target {
    Automatic1111Target {
        endpoint: endpoint_at(server.url()),
        negative_prompt: None,
        steps: 20,
        cfg_scale: 7.0,
        width: 512,
        height: 512,
        sampler_name: None,
        extra: toml::Table::new(),
    }
}

#[test]
fn automatic1111_sends_settings_seed_paper_negative_and_extra() {
    let img = image(5, 3, 20);
    let data_url = codec::png_data_url(&img).unwrap();
    let server = TestServer::start(move |_| {
        Step::ok(json!({"images": [data_url.clone()], "parameters": {}, "info": "{}"}))
    });
    let mut cfg = a1111_cfg(&server);
    cfg.negative_prompt = Some("@paper".into());
    cfg.steps = 12;
    cfg.cfg_scale = 5.5;
    cfg.width = 320;
    cfg.height = 256;
    cfg.sampler_name = Some("Euler a".into());
    cfg.extra = toml::from_str(
        "restore_faces = false\n[override_settings]\nCLIP_stop_at_last_layers = 2\n",
    )
    .unwrap();
    let t = Automatic1111::new(&cfg).unwrap();
    let seed = 0x1234_5678_9abc_def0_u64;
    let out = t.render(&[rreq("a cat", seed)]);
    assert_eq!(
        out,
        vec![Ok(RenderOutput {
            outcome: RenderOutcome::Image(img),
            truncated_prompt: None,
            revised_prompt: None,
        })],
        "images[0] with a data: prefix decodes"
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/sdapi/v1/txt2img");
    assert_eq!(
        reqs[0].json(),
        json!({
            "prompt": "a cat",
            "negative_prompt": NEGATIVE_PROMPT_PAPER,
            "seed": seed & 0x7fff_ffff,
            "steps": 12,
            "cfg_scale": 5.5,
            "width": 320,
            "height": 256,
            "batch_size": 1,
            "n_iter": 1,
            "sampler_name": "Euler a",
            "restore_faces": false,
            "override_settings": {"CLIP_stop_at_last_layers": 2},
        })
    );
}

#[test]
fn automatic1111_defaults_plain_base64_and_literal_negative_prompt() {
    let img = image(4, 4, 21);
    let b64 = b64_png(&img);
    let server = TestServer::start(move |_| Step::ok(json!({"images": [b64.clone()]})));
    let mut cfg = a1111_cfg(&server);
    cfg.negative_prompt = Some("blurry, text".into());
    let t = Automatic1111::new(&cfg).unwrap();
    let out = t.render(&[rreq("a dog", u64::MAX)]);
    assert_eq!(image_of(out[0].as_ref().unwrap()), &img);
    let body = server.requests()[0].json();
    assert_eq!(body["negative_prompt"], "blurry, text");
    assert_eq!(body["seed"], json!(0x7fff_ffff_u64), "never -1 (random)");
    assert_eq!(body["steps"], json!(20));
    assert_eq!(body["cfg_scale"], json!(7.0));
    assert!(body.get("sampler_name").is_none(), "{body}");

    cfg.negative_prompt = None;
    Automatic1111::new(&cfg).unwrap().render(&[rreq("x", 1)]);
    assert_eq!(server.requests()[1].json()["negative_prompt"], "");
}

#[test]
fn automatic1111_bad_answers_are_per_item_errors() {
    let good = b64_png(&image(2, 2, 22));
    let server = TestServer::start(move |req| match req.json()["prompt"].as_str().unwrap() {
        "none" => Step::ok(json!({"images": []})),
        "garbage" => Step::ok(json!({"images": ["@@@ not base64"]})),
        "oom" => Step::Json(422, json!({"detail": "CUDA out of memory"})),
        _ => Step::ok(json!({"images": [good.clone()]})),
    });
    let t = Automatic1111::new(&a1111_cfg(&server)).unwrap();
    let out = t.render(&[
        rreq("none", 1),
        rreq("fine", 2),
        rreq("garbage", 3),
        rreq("oom", 4),
    ]);
    assert!(err_msg(&out[0]).contains("/images/0"), "{:?}", out[0]);
    assert!(out[1].is_ok());
    assert!(err_msg(&out[2]).contains("base64"), "{:?}", out[2]);
    let e = err_msg(&out[3]);
    assert!(e.contains("422") && e.contains("CUDA out of memory"), "{e}");
}

#[test]
fn build_makes_every_remote_target_kind() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(|_| Step::text(404, "unused"));
    let wf = write_workflow(
        dir.path(),
        &json!({"1": {"inputs": {"text": "{{prompt}}"}}}),
    );
    let configs = [
        TargetConfig::OpenaiImages(Box::new(openai_cfg(&server))),
        TargetConfig::Automatic1111(Box::new(a1111_cfg(&server))),
        TargetConfig::Comfyui(Box::new(comfy_cfg(&server, wf))),
    ];
    let kinds: Vec<String> = configs
        .iter()
        .map(|c| {
            art_remote::build::target(c)
                .expect("remote kind")
                .expect("builds")
                .identity()
                .kind
        })
        .collect();
    assert_eq!(kinds, vec!["openai-images", "automatic1111", "comfyui"]);
    let scripted: TargetConfig = serde_json::from_value(json!({"kind": "scripted"})).unwrap();
    assert!(art_remote::build::target(&scripted).is_none());
}

// ---------------------------------------------------------------- ComfyUI

fn write_workflow(dir: &Path, wf: &Value) -> PathBuf {
    let path = dir.join("workflow_api.json");
    std::fs::write(&path, serde_json::to_string_pretty(wf).unwrap()).unwrap();
    path
}

fn comfy_cfg(server: &TestServer, workflow: PathBuf) -> ComfyuiTarget {
    ComfyuiTarget {
        endpoint: endpoint_at(server.url()),
        workflow,
        negative_prompt: Some("@paper".into()),
        poll_interval_ms: 5,
        render_timeout_s: 5.0,
    }
}

fn workflow() -> Value {
    json!({
        "3": {"class_type": "KSampler",
              "inputs": {"seed": "{{seed}}", "steps": 20, "cfg": 7.5, "model": ["4", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}, masterpiece"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{negative_prompt}}"}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "art-{{seed}}"}},
    })
}

fn completed(id: &str, filename: &str) -> Value {
    json!({id: {
        "prompt": [1, id, {}, {}, ["9"]],
        "status": {"status_str": "success", "completed": true, "messages": []},
        "outputs": {"9": {"images": [{"filename": filename, "subfolder": "", "type": "output"}]}},
    }})
}

fn png_step(img: &art_core::Image) -> Step {
    Step::Status(
        200,
        vec![("Content-Type".into(), "image/png".into())],
        codec::encode_png(img).unwrap(),
    )
}

#[test]
fn comfyui_submits_the_substituted_workflow_polls_history_and_fetches_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(8, 6, 30);
    let server = TestServer::scripted(
        vec![
            (
                "/prompt",
                vec![Step::ok(
                    json!({"prompt_id": "abc", "number": 1, "node_errors": {}}),
                )],
            ),
            (
                "/history/abc",
                vec![
                    Step::ok(json!({})),
                    Step::ok(json!({})),
                    Step::ok(completed("abc", "x y.png")),
                ],
            ),
            ("/view", vec![png_step(&img)]),
        ],
        Step::text(404, "unexpected"),
    );
    let t = Comfyui::new(&comfy_cfg(&server, write_workflow(dir.path(), &workflow()))).unwrap();
    let seed = (1u64 << 60) + 12_345;
    let out = t.render(&[rreq("a \"quoted\" cat", seed)]);
    assert_eq!(
        out,
        vec![Ok(RenderOutput {
            outcome: RenderOutcome::Image(img),
            truncated_prompt: None,
            revised_prompt: None,
        })]
    );

    let reqs = server.requests();
    let seen: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("POST", "/prompt"),
            ("GET", "/history/abc"),
            ("GET", "/history/abc"),
            ("GET", "/history/abc"),
            ("GET", "/view?filename=x%20y.png&subfolder=&type=output"),
        ]
    );
    let body = reqs[0].json();
    assert_eq!(body["client_id"], "art");
    let graph = &body["prompt"];
    let want_seed = seed & ((1u64 << 53) - 1);
    assert_eq!(want_seed, 12_345);
    assert_eq!(graph["3"]["inputs"]["seed"], json!(want_seed), "a number");
    assert_eq!(graph["3"]["inputs"]["steps"], json!(20));
    assert_eq!(graph["3"]["inputs"]["model"], json!(["4", 0]));
    assert_eq!(
        graph["6"]["inputs"]["text"],
        json!("a \"quoted\" cat, masterpiece")
    );
    assert_eq!(graph["7"]["inputs"]["text"], json!(NEGATIVE_PROMPT_PAPER));
    assert_eq!(
        graph["9"]["inputs"]["filename_prefix"],
        json!("art-12345"),
        "inside a longer string the seed is text"
    );
}

#[test]
fn comfyui_failed_workflow_is_an_error_with_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::scripted(
        vec![
            ("/prompt", vec![Step::ok(json!({"prompt_id": "p1"}))]),
            (
                "/history/p1",
                vec![Step::ok(json!({"p1": {
                    "status": {"status_str": "error", "completed": false,
                               "messages": [["execution_error",
                                             {"exception_message": "CUDA out of memory"}]]},
                    "outputs": {},
                }}))],
            ),
        ],
        Step::text(404, "unexpected"),
    );
    let t = Comfyui::new(&comfy_cfg(&server, write_workflow(dir.path(), &workflow()))).unwrap();
    let out = t.render(&[rreq("a cat", 1)]);
    let e = err_msg(&out[0]);
    assert!(e.contains("p1") && e.contains("failed"), "{e}");
    assert!(e.contains("CUDA out of memory"), "{e}");
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/view")),
        "no image is fetched for a failed workflow"
    );
}

#[test]
fn comfyui_render_that_never_finishes_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(|req| {
        if req.path == "/prompt" {
            Step::ok(json!({"prompt_id": "slow"}))
        } else {
            Step::ok(json!({}))
        }
    });
    let mut cfg = comfy_cfg(&server, write_workflow(dir.path(), &workflow()));
    cfg.render_timeout_s = 0.2;
    cfg.poll_interval_ms = 20;
    let t = Comfyui::new(&cfg).unwrap();
    let t0 = std::time::Instant::now();
    let out = t.render(&[rreq("a cat", 1)]);
    let took = t0.elapsed();
    let e = err_msg(&out[0]);
    assert!(e.contains("slow") && e.contains("0.2 s"), "{e}");
    assert!(took >= std::time::Duration::from_millis(200), "{took:?}");
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    let polls = server.requests().len() - 1;
    assert!(polls >= 3, "polled {polls} times");
}

#[test]
fn comfyui_completed_without_images_and_failed_view_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(|req| {
        let path = req.path.as_str();
        if path == "/prompt" {
            let text = req.json()["prompt"]["6"]["inputs"]["text"]
                .as_str()
                .unwrap()
                .to_string();
            let id = if text.starts_with("noimage") {
                "n1"
            } else {
                "v1"
            };
            Step::ok(json!({"prompt_id": id}))
        } else if path == "/history/n1" {
            Step::ok(
                json!({"n1": {"status": {"status_str": "success", "completed": true},
                                   "outputs": {"9": {"text": ["no images here"]}}}}),
            )
        } else if path == "/history/v1" {
            Step::ok(completed("v1", "gone.png"))
        } else {
            Step::text(404, "no such file")
        }
    });
    let t = Comfyui::new(&comfy_cfg(&server, write_workflow(dir.path(), &workflow()))).unwrap();
    let out = t.render(&[rreq("noimage", 1), rreq("view fails", 2)]);
    assert!(
        err_msg(&out[0]).contains("produced no image"),
        "{:?}",
        out[0]
    );
    let e = err_msg(&out[1]);
    assert!(e.contains("404") && e.contains("gone.png"), "{e}");
}

#[test]
fn comfyui_workflow_files_are_checked_when_built() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(|_| Step::text(404, "unused"));

    let no_prompt = write_workflow(dir.path(), &json!({"6": {"inputs": {"text": "a cat"}}}));
    let e = Comfyui::new(&comfy_cfg(&server, no_prompt)).unwrap_err();
    assert!(e.message.contains("{{prompt}}"), "{}", e.message);

    let missing = dir.path().join("nowhere").join("wf.json");
    let e = Comfyui::new(&comfy_cfg(&server, missing.clone())).unwrap_err();
    assert!(
        e.message.contains(&missing.display().to_string()),
        "names the path: {}",
        e.message
    );

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"6\": {\"inputs\": {\"text\": \"{{prompt}}\"").unwrap();
    let e = Comfyui::new(&comfy_cfg(&server, broken.clone())).unwrap_err();
    assert!(e.message.contains("not valid JSON"), "{}", e.message);
    assert!(e.message.contains("broken.json"), "{}", e.message);
    assert!(
        server.requests().is_empty(),
        "nothing is sent for a bad workflow"
    );
}

#[test]
fn comfyui_prompt_text_is_never_expanded_again() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(2, 2, 31);
    let server = TestServer::scripted(
        vec![
            ("/prompt", vec![Step::ok(json!({"prompt_id": "q"}))]),
            ("/history/q", vec![Step::ok(completed("q", "q.png"))]),
            ("/view", vec![png_step(&img)]),
        ],
        Step::text(404, "unexpected"),
    );
    let mut cfg = comfy_cfg(&server, write_workflow(dir.path(), &workflow()));
    cfg.negative_prompt = Some("ugly".into());
    let t = Comfyui::new(&cfg).unwrap();
    let prompt = "a sign reading {{negative_prompt}} and {{seed}}";
    assert!(t.render(&[rreq(prompt, 7)])[0].is_ok());
    let body = server.requests()[0].json();
    assert_eq!(
        body["prompt"]["6"]["inputs"]["text"],
        json!(format!("{prompt}, masterpiece")),
        "the prompt is put in verbatim"
    );
}
