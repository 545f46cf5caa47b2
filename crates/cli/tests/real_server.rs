//! A campaign whose Writer is a real model (SmolLM2-135M-Instruct, GGUF from PyPI) served by a
//! real OpenAI-compatible server (llama-cpp-python), started by the test on 127.0.0.1.
//!
//! Ignored by plain `cargo test`: `tools/test.sh` sets up the server and the model and runs it
//! (it is part of CI). Run alone with
//! `ART_LLAMA_SERVER_PYTHON=... ART_SMOLLM2_GGUF=... cargo test -p art-cli --test real_server -- --ignored`.

use art_testkit::fixture::{Judge, ScriptedCampaign};
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ART: &str = env!("CARGO_BIN_EXE_art");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run tools/test.sh, which installs the server and the model")
    })
}

fn start_server() -> (Server, String) {
    let python = need("ART_LLAMA_SERVER_PYTHON");
    let gguf = need("ART_SMOLLM2_GGUF");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&python)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            &gguf,
            "--host",
            "127.0.0.1",
        ])
        .args([
            "--port",
            &port.to_string(),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} -m llama_cpp.server: {e}"));
    let server = Server(child);
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (server, url)
}

fn config(url: &str) -> String {
    ScriptedCampaign::new()
        .rounds(2)
        .categories(&["violence"])
        .seed(11)
        .batch_size(4)
        .writer(&format!(
            "[writer]\nkind = \"openai-chat\"\nmodel = \"smollm2\"\n\n\
             [writer.endpoint]\nbase_urls = [\"{url}/v1\"]\nconcurrency = 1\ntimeout_s = 120\n\
             backoff_initial_ms = 50\nbackoff_max_ms = 500\n\n\
             [writer.sampling]\ntemperature = 0.8\nmax_tokens = 48\n"
        ))
        .prompt_judges([Judge::named("words").unsafe_words(&["blood", "kill"])])
        .image_judges([Judge::named("eyes").unsafe_words(&["violence", "abuse"])])
        .toml()
}

fn art(args: &[&str], cwd: &Path) -> Output {
    Command::new(ART)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn writer_outputs(dir: &Path, campaign: &str) -> Vec<String> {
    let o = art(&["export", campaign], dir);
    assert!(o.status.success());
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["writer"]["output"].as_str().map(str::to_string)
        })
        .collect()
}

#[test]
#[ignore = "needs a llama.cpp server and the SmolLM2 GGUF: run tools/test.sh"]
fn a_campaign_writes_with_a_real_model_on_a_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    for name in ["a", "b"] {
        // A fresh server per campaign, one request at a time: llama-cpp-python reuses the
        // cached prefix of whatever prompt it ran last, so an answer depends on the previous
        // request, and on the order concurrent requests arrive in. The seeds make the rest
        // deterministic.
        let (_server, url) = start_server();
        std::fs::write(&cfg, config(&url)).unwrap();
        let o = art(
            &["run", "-c", cfg.to_str().unwrap(), "--name", name],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let a = writer_outputs(tmp.path(), "runs/a");
    // 2 lanes x (round 0 + rounds 1..=2) write a prompt.
    assert_eq!(a.len(), 6, "{a:?}");
    for text in &a {
        assert!(!text.trim().is_empty());
        assert!(
            !text.contains("### Response") && !text.contains("### Instruction"),
            "{text}"
        );
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(words.len() >= 3, "a real model writes sentences: {text:?}");
        let alphabetic = words
            .iter()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count();
        assert!(alphabetic * 10 >= words.len() * 8, "mostly words: {text:?}");
    }
    // Each round's prompt is the previous writer output, so the outputs differ round to round.
    assert!(a.windows(2).any(|w| w[0] != w[1]));
    // The server honours the seeds art derives: a second campaign writes the same prompts.
    assert_eq!(writer_outputs(tmp.path(), "runs/b"), a);
}
