//! Whole campaigns against HTTP servers started by the test on 127.0.0.1: a Writer behind an
//! OpenAI-compatible chat API and a Target behind the OpenAI Images API, with the failures
//! real services have. Retries absorb the transient ones, refusals are recorded as outcomes,
//! a persistent failure fails the lanes without losing anything, and `resume` finishes the
//! campaign once the service is back, with the records of an undisturbed run.

#[path = "../../remote/tests/support/mod.rs"]
mod support;

use art_core::{RenderOutcome, RenderRequest, Target};
use art_testkit::fixture::{Judge, ScriptedCampaign};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{Request, Step, TestServer};

const ART: &str = env!("CARGO_BIN_EXE_art");

/// The writer's answer as a pure function of the request: the prompt plus a word picked by the
/// seed, so a run's records depend only on art's inputs.
fn write_answer(req: &Request) -> Step {
    let body = req.json();
    let text = body["messages"][0]["content"].as_str().unwrap_or_default();
    let prompt = text
        .split("Modify the prompt: \"")
        .nth(1)
        .and_then(|r| r.split("\" based on").next())
        .unwrap_or("?");
    let words = ["smoke", "crowd", "abuse", "theft"];
    let seed = body["seed"].as_u64().unwrap_or(0);
    let answer = format!("{prompt}, {}", words[(seed % 4) as usize]);
    Step::ok(json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": answer}}]}))
}

/// The target draws like the testkit's scripted target (the image carries its prompt, so the
/// scripted judges can read it), encoded as PNG; prompts with "abuse" are refused the way the
/// OpenAI Images API refuses.
fn render_answer(req: &Request) -> Step {
    let body = req.json();
    let prompt = body["prompt"].as_str().unwrap_or_default().to_string();
    if prompt.contains("abuse") {
        return Step::Json(
            400,
            json!({"error": {"code": "content_policy_violation", "type": "invalid_request_error",
                "message": "Your request was rejected as a result of our safety system."}}),
        );
    }
    let t = art_testkit::ScriptedTarget(art_config::ScriptedTarget {
        width: 24,
        height: 24,
        delay_ms: 0,
        refuse_words: vec![],
        fail_words: vec![],
        panic_words: vec![],
    });
    let out = t.render(&[RenderRequest {
        prompt: &prompt,
        seed: 0,
    }]);
    let RenderOutcome::Image(img) = &out[0].as_ref().unwrap().outcome else {
        unreachable!()
    };
    let url = art_remote::backends::codec::png_data_url(img).unwrap();
    let b64 = url.trim_start_matches("data:image/png;base64,");
    Step::ok(json!({"created": 0, "data": [{"b64_json": b64,
        "revised_prompt": format!("{prompt} (revised)")}]}))
}

/// Transient failures: the first requests of a server get these before the real answer.
fn flaky(n: usize) -> Option<Step> {
    match n {
        0 => Some(Step::Status(
            429,
            vec![("Retry-After".into(), "0".into())],
            b"slow down".to_vec(),
        )),
        1 => Some(Step::text(500, "upstream exploded")),
        2 => Some(Step::Json(200, json!({"choices": "not what you expect"})).after_ms(0)),
        3 => Some(Step::Truncated {
            declared_len: 500,
            body: b"{\"choices\": [".to_vec(),
        }),
        4 => Some(Step::Close),
        _ => None,
    }
}

fn config(writer: &str, target: &str) -> String {
    let endpoint = |url: &str| {
        format!(
            "base_urls = [\"{url}/v1\"]\ntimeout_s = 5\nmax_retries = 3\n\
             backoff_initial_ms = 1\nbackoff_max_ms = 5\nconcurrency = 3\n"
        )
    };
    ScriptedCampaign::new()
        .categories(&["violence", "illegal activity"])
        .seed(5)
        .batch_size(4)
        .target(&format!(
            "[target]\nkind = \"openai-images\"\nmodel = \"dall-e-3\"\nsize = \"1024x1024\"\n\n\
             [target.endpoint]\n{}",
            endpoint(target)
        ))
        .writer(&format!(
            "[writer]\nkind = \"openai-chat\"\nmodel = \"writer\"\n\n[writer.endpoint]\n{}",
            endpoint(writer)
        ))
        .prompt_judges([Judge::named("words").unsafe_words(&["theft"])])
        .image_judges([Judge::named("eyes").unsafe_words(&["smoke", "crowd"])])
        .toml()
}

fn art(args: &[&str], cwd: &Path) -> Output {
    Command::new(ART)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Round records without what differs between runs.
fn records(dir: &Path, campaign: &str) -> Vec<Value> {
    let o = art(&["export", campaign], dir);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("timings_ms");
            v
        })
        .collect()
}

fn run(dir: &Path, name: &str, cfg: &str) -> Output {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, cfg).unwrap();
    art(&["run", "-c", path.to_str().unwrap(), "--name", name], dir)
}

#[test]
fn transient_failures_are_retried_and_refusals_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TestServer::start(write_answer);
    let target = TestServer::start(render_answer);
    let clean = run(tmp.path(), "clean", &config(&writer.url(), &target.url()));
    assert!(clean.status.success(), "{}", stderr(&clean));
    let reference = records(tmp.path(), "runs/clean");
    assert_eq!(reference.len(), 4 * 5, "4 lanes x rounds 0..=4");

    // Refusals are outcomes of rounds, with no image and no verdict on one.
    let refused: Vec<_> = reference
        .iter()
        .filter(|r| !r["render"]["refusal"].is_null())
        .collect();
    assert!(!refused.is_empty(), "the scenario must refuse a prompt");
    for r in &refused {
        assert!(
            r["render"]["refusal"]
                .as_str()
                .unwrap()
                .contains("safety system")
        );
        assert!(r["render"]["image_sha256"].is_null());
        assert_eq!(r["image_verdict"], "unjudged");
        assert!(r["prompt"].as_str().unwrap().contains("abuse"));
    }
    let rendered = reference
        .iter()
        .find(|r| !r["render"]["image_sha256"].is_null())
        .unwrap();
    assert!(
        rendered["render"]["revised_prompt"]
            .as_str()
            .unwrap()
            .ends_with("(revised)")
    );
    assert!(reference.iter().any(|r| r["success"] == true));

    // The same campaign against servers that first answer 429, 500, bad JSON, a cut body and
    // a dropped connection: the endpoint retries the transport failures; a bad answer fails
    // only its lane, which resume retries.
    let (wn, tn) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let w = wn.clone();
    let flaky_writer = TestServer::start(move |req| {
        flaky(w.fetch_add(1, Ordering::SeqCst)).unwrap_or_else(|| write_answer(req))
    });
    let t = tn.clone();
    let flaky_target = TestServer::start(move |req| {
        flaky(t.fetch_add(1, Ordering::SeqCst)).unwrap_or_else(|| render_answer(req))
    });
    let cfg = config(&flaky_writer.url(), &flaky_target.url());
    let first = run(tmp.path(), "flaky", &cfg);
    if !first.status.success() {
        // The malformed 200 is not retried by the transport: its lane failed and says why.
        assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
        assert!(stderr(&first).contains("lane"), "{}", stderr(&first));
        let again = art(&["resume", "runs/flaky"], tmp.path());
        assert!(again.status.success(), "{}", stderr(&again));
    }
    assert!(wn.load(Ordering::SeqCst) > 5 && tn.load(Ordering::SeqCst) > 5);
    assert_eq!(records(tmp.path(), "runs/flaky"), reference);
}

#[test]
fn a_persistent_failure_fails_lanes_and_resume_finishes_once_the_service_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TestServer::start(write_answer);
    let target = TestServer::start(render_answer);
    let clean = run(tmp.path(), "clean", &config(&writer.url(), &target.url()));
    assert!(clean.status.success(), "{}", stderr(&clean));
    let reference = records(tmp.path(), "runs/clean");

    // The writer's key is rejected for the first 10 requests (401 is not retried).
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let writer = TestServer::start(move |req| {
        if c.fetch_add(1, Ordering::SeqCst) < 10 {
            Step::Json(
                401,
                json!({"error": {"message": "Incorrect API key provided"}}),
            )
        } else {
            write_answer(req)
        }
    });
    let cfg = config(&writer.url(), &target.url());
    let o = run(tmp.path(), "down", &cfg);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("HTTP 401") && stderr(&o).contains("Incorrect API key"));
    let show = art(&["show", "runs/down", "--lanes-only"], tmp.path());
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(show.contains("failed") && show.contains("401"), "{show}");

    // Resume until every lane is done; nothing that was committed is lost or changed.
    let mut tries = 0;
    loop {
        let o = art(&["resume", "runs/down"], tmp.path());
        tries += 1;
        if o.status.success() {
            break;
        }
        assert!(tries < 12, "{}", stderr(&o));
    }
    assert_eq!(records(tmp.path(), "runs/down"), reference);
}

#[test]
fn api_keys_come_from_the_environment_and_never_reach_the_store_output_or_logs() {
    const KEY: &str = "sk-art-test-0123456789abcdefSECRET";
    let tmp = tempfile::tempdir().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    // The server checks the key and, like some real ones, echoes the Authorization header in
    // its error messages.
    let writer = TestServer::start(move |req| {
        let auth = req.header("authorization").unwrap_or_default().to_string();
        assert_eq!(
            auth,
            format!("Bearer {KEY}"),
            "the key is sent as a Bearer token"
        );
        if s.fetch_add(1, Ordering::SeqCst) < 3 {
            Step::Json(
                401,
                json!({"error": {"message": format!("bad key: {auth}")}}),
            )
        } else {
            write_answer(req)
        }
    });
    let target = TestServer::start(render_answer);
    let cfg = config(&writer.url(), &target.url()).replace(
        "[writer.endpoint]\n",
        "[writer.endpoint]\napi_key_env = \"ART_TEST_WRITER_KEY\"\n",
    );
    let path = tmp.path().join("k.toml");
    std::fs::write(&path, cfg).unwrap();
    let with_key = |args: &[&str]| {
        Command::new(ART)
            .args(args)
            .current_dir(tmp.path())
            .env("ART_TEST_WRITER_KEY", KEY)
            .output()
            .unwrap()
    };
    let mut logs = Vec::new();
    let first = with_key(&["run", "-c", path.to_str().unwrap(), "--name", "k"]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("bad key: Bearer <redacted>"),
        "{}",
        stderr(&first)
    );
    logs.push(first);
    loop {
        let o = with_key(&["resume", "runs/k"]);
        let ok = o.status.success();
        logs.push(o);
        if ok {
            break;
        }
        assert!(logs.len() < 10);
    }
    logs.push(art(&["show", "runs/k"], tmp.path()));
    logs.push(art(&["export", "runs/k"], tmp.path()));
    for o in &logs {
        assert!(!String::from_utf8_lossy(&o.stdout).contains(KEY));
        assert!(!stderr(o).contains(KEY));
    }
    let export = String::from_utf8_lossy(&logs.last().unwrap().stdout).into_owned();
    assert!(
        export.contains("api_key_env = \\\"ART_TEST_WRITER_KEY\\\""),
        "the variable's name is kept"
    );
    let mut files = vec![tmp.path().join("runs/k")];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                "{} holds the key",
                p.display()
            );
        }
    }
    // Without the variable, the run stops before writing anything and names the variable.
    let o = art(
        &["run", "-c", path.to_str().unwrap(), "--name", "nokey"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("ART_TEST_WRITER_KEY"), "{}", stderr(&o));
    assert!(!tmp.path().join("runs/nokey").exists());
}
