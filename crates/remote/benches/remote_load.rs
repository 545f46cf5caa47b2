//! Remote-role client performance, against local servers started here.
//!
//! `cargo bench -p art-remote --bench remote_load [-- RUNS]`
//! (set `ART_BENCH_PYTHON` to a Python with `httpx` for the side-by-side reference).
//!
//! 1. Client overhead: POSTs of a small chat request to a server that answers at once, one at
//!    a time (time per request) and through `map_concurrent` with 8 in flight (requests per
//!    second); side by side with Python httpx (what the `openai` package uses), same server,
//!    same requests, in the same run.
//! 2. Endpoint utilisation: a 35-lane campaign (7 categories x 5 seeds, 3 rounds) whose Writer
//!    (chat) and Target (AUTOMATIC1111 API) are servers that take 200 ms per request, each
//!    endpoint with concurrency 8 and batch size 8. Utilisation = requests x 200 ms /
//!    (concurrency x wall time): the share of the configured concurrency kept busy over the
//!    whole campaign. Run with parallel_roles = 5 (stages overlap) and 1 (one stage at a time).

#[path = "../tests/support/mod.rs"]
mod support;

use art_config::{EndpointConfig, Overrides, Source};
use art_engine::{CampaignSpec, Engine, Roles, plan_lanes};
use art_remote::endpoint::Endpoint;
use art_store::{CampaignRecord, Store};
use art_testkit::fixture::{Judge, ScriptedCampaign};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{Step, TestServer};

fn chat_reply() -> Step {
    Step::ok(json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "a pic of cat, smoke"}}]}))
}

fn median(v: Vec<f64>) -> f64 {
    art_testkit::median(&v)
}

fn endpoint(url: &str, concurrency: usize) -> Endpoint {
    let mut cfg = EndpointConfig::new(vec![url.to_string()]);
    cfg.concurrency = concurrency;
    Endpoint::new(&cfg, "bench").expect("endpoint")
}

struct ClientRun {
    sequential_us: f64,
    concurrent_rps: f64,
}

fn client_run(url: &str, n_seq: usize, n_conc: usize) -> ClientRun {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "a pic of cat"}],
                      "seed": 1});
    let e = endpoint(url, 1);
    e.post_json("/chat/completions", &body).expect("warm-up");
    let t = Instant::now();
    for _ in 0..n_seq {
        let r = e.post_json("/chat/completions", &body).expect("post");
        r.json().expect("json");
    }
    let sequential_us = t.elapsed().as_secs_f64() * 1e6 / n_seq as f64;
    let e = endpoint(url, 8);
    let items: Vec<usize> = (0..n_conc).collect();
    let t = Instant::now();
    let out = e.map_concurrent(&items, |_| {
        e.post_json("/chat/completions", &body)
            .and_then(|r| r.json())
            .is_ok()
    });
    assert!(out.iter().all(|ok| *ok));
    ClientRun {
        sequential_us,
        concurrent_rps: n_conc as f64 / t.elapsed().as_secs_f64(),
    }
}

fn python_run(url: &str, n_seq: usize, n_conc: usize) -> Option<ClientRun> {
    let python = std::env::var("ART_BENCH_PYTHON").ok()?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/bench/http_reference.py"
    );
    let out = std::process::Command::new(python)
        .args([script, &format!("{url}/chat/completions")])
        .args([n_seq.to_string(), n_conc.to_string(), "8".into()])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(ClientRun {
        sequential_us: v["sequential_us"].as_f64()?,
        concurrent_rps: v["concurrent_rps"].as_f64()?,
    })
}

fn campaign_config(writer: &str, target: &str) -> String {
    let ep = |url: &str| format!("base_urls = [\"{url}\"]\nconcurrency = 8\n");
    ScriptedCampaign::new()
        .rounds(3)
        .seeds(5)
        .batch_size(8)
        .target(&format!(
            "[target]\nkind = \"automatic1111\"\nwidth = 64\nheight = 64\n\n[target.endpoint]\n{}",
            ep(target)
        ))
        .writer(&format!(
            "[writer]\nkind = \"openai-chat\"\nmodel = \"writer\"\n\n[writer.endpoint]\n{}",
            ep(writer)
        ))
        .prompt_judges([Judge::unnamed().unsafe_words(&["blood"])])
        .image_judges([])
        .toml()
}

struct CampaignRun {
    wall: f64,
    rounds: u64,
    writer_util: f64,
    target_util: f64,
}

fn campaign_run(dir: &std::path::Path, parallel_roles: usize) -> CampaignRun {
    let png = {
        let img = art_core::Image::new(64, 64, vec![90; 64 * 64 * 3]).expect("image");
        let url = art_remote::backends::codec::png_data_url(&img).expect("png");
        url.trim_start_matches("data:image/png;base64,").to_string()
    };
    let delay = Duration::from_millis(200);
    let writer = TestServer::start(move |_| Step::Delay(delay, Box::new(chat_reply())));
    let target = TestServer::start(move |_| {
        Step::Delay(delay, Box::new(Step::ok(json!({"images": [png.clone()]}))))
    });
    let text = campaign_config(&format!("{}/v1", writer.url()), &target.url());
    let overrides = Overrides {
        parallel_roles: Some(parallel_roles),
        ..Default::default()
    };
    let c = art_config::load(
        &[Source {
            name: "bench".into(),
            text,
        }],
        &overrides,
    )
    .expect("config");
    let spec = CampaignSpec::from_config(&c).expect("spec");
    let roles = Roles {
        target: art_remote::build::target(&c.target)
            .expect("remote")
            .expect("target"),
        writer: art_remote::build::writer(&c.writer)
            .expect("remote")
            .expect("writer"),
        guide: art_testkit::build::guide(&c.guide).expect("scripted"),
        prompt_judges: c
            .prompt_judge
            .iter()
            .filter_map(art_testkit::build::prompt_judge)
            .collect(),
        image_judges: vec![],
    };
    let record = CampaignRecord {
        name: "bench".into(),
        created_at: 0,
        tool_version: "bench".into(),
        config_toml: c.to_toml(),
        identities: Default::default(),
    };
    let mut store = Store::create(dir, &record).expect("store");
    store.insert_lanes(&plan_lanes(&spec)).expect("lanes");
    let t = Instant::now();
    let s = Engine::new(&spec, &roles, &mut store).run().expect("run");
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(s.lanes_done, 35);
    let util = |n: usize| n as f64 * 0.2 / (8.0 * wall);
    CampaignRun {
        wall,
        rounds: s.rounds_committed,
        writer_util: util(writer.requests().len()),
        target_util: util(target.requests().len()),
    }
}

#[allow(clippy::print_stdout)]
fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let server = TestServer::start(|_| chat_reply());
    let url = format!("{}/v1", server.url());
    let (n_seq, n_conc) = (1000, 4000);
    let (mut seq, mut conc, mut py_seq, mut py_conc) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let r = client_run(&url, n_seq, n_conc);
        seq.push(r.sequential_us);
        conc.push(r.concurrent_rps);
        if let Some(p) = python_run(&url, n_seq, n_conc) {
            py_seq.push(p.sequential_us);
            py_conc.push(p.concurrent_rps);
        }
    }
    println!("client against an instant local server ({runs} runs, medians)");
    println!(
        "  art   : {:>7.0} us/request sequential, {:>7.0} requests/s with 8 in flight",
        median(seq.clone()),
        median(conc.clone())
    );
    if py_seq.is_empty() {
        println!("  httpx : not measured (set ART_BENCH_PYTHON to a Python with httpx)");
    } else {
        println!(
            "  httpx : {:>7.0} us/request sequential, {:>7.0} requests/s with 8 in flight",
            median(py_seq.clone()),
            median(py_conc.clone())
        );
        println!(
            "  ratio : art takes {:.2}x httpx's time per request; serves {:.2}x its requests/s",
            median(seq) / median(py_seq),
            median(conc) / median(py_conc)
        );
    }
    let tmp = std::env::temp_dir().join(format!("art-remote-bench-{}", std::process::id()));
    for parallel in [5, 1] {
        let runs = runs.min(3);
        let rs: Vec<CampaignRun> = (0..runs)
            .map(|i| campaign_run(&tmp.join(format!("p{parallel}-{i}")), parallel))
            .collect();
        let m = |f: fn(&CampaignRun) -> f64| median(rs.iter().map(f).collect());
        println!(
            "35-lane campaign, 200 ms servers, concurrency 8, parallel_roles = {parallel} ({runs} runs, medians):"
        );
        println!(
            "  {:.1} s for {} rounds; utilisation: writer {:.0}%, target {:.0}%",
            m(|r| r.wall),
            rs[0].rounds,
            100.0 * m(|r| r.writer_util),
            100.0 * m(|r| r.target_util)
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    if let Some(p) = art_testkit::peak_rss_mib() {
        println!("peak RSS of the benchmark process (art side; servers in-process) {p:.0} MiB");
    }
}
