//! The endpoint layer against real sockets on 127.0.0.1: retries, timeouts, cut bodies, pools,
//! limits, API keys and their secrecy. Backoffs are a few milliseconds so the file stays fast.

mod support;

use std::time::{Duration, Instant};

use art_config::EndpointConfig;
use art_remote::endpoint::{CallError, Endpoint};
use serde_json::json;
use support::{Step, TestServer, closed_port_url};

/// A config for `urls` with test-sized waits: backoff 5..20 ms, 3 retries.
fn cfg(urls: Vec<String>) -> EndpointConfig {
    let mut c = EndpointConfig::new(urls);
    c.backoff_initial_ms = 5;
    c.backoff_max_ms = 20;
    c.max_retries = 3;
    c.timeout_s = 5.0;
    c.connect_timeout_s = 2.0;
    c
}

fn endpoint(c: &EndpointConfig) -> Endpoint {
    Endpoint::with_api_key(c, "writer", None).expect("valid config")
}

fn exhausted(e: CallError) -> (u32, String) {
    match e {
        CallError::Exhausted { attempts, .. } => (attempts, e.to_string()),
        other => panic!("expected Exhausted, got {other:?}"),
    }
}

#[test]
fn retry_after_is_honoured_then_success() {
    let server = TestServer::scripted(
        vec![(
            "/v1/chat",
            vec![
                Step::Status(
                    429,
                    vec![("Retry-After".into(), "1".into())],
                    b"slow down".to_vec(),
                ),
                Step::ok(json!({"ok": true})),
            ],
        )],
        Step::text(404, "no route"),
    );
    let ep = endpoint(&cfg(vec![server.url()]));
    let t0 = Instant::now();
    let reply = ep.post_json("/v1/chat", &json!({"q": 1})).unwrap();
    let waited = t0.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.attempts, 2);
    assert_eq!(reply.url, format!("{}/v1/chat", server.url()));
    assert_eq!(reply.json().unwrap(), json!({"ok": true}));
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.json(), json!({"q": 1}));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.header("user-agent").unwrap().starts_with("art/"));
        assert_eq!(r.header("authorization"), None, "no key configured");
    }
    let s = ep.stats();
    assert_eq!((s.requests, s.retries, s.failures), (2, 1, 0));
}

#[test]
fn server_errors_are_retried_until_success() {
    let server = TestServer::scripted(
        vec![(
            "/x",
            vec![Step::text(500, "oops"), Step::text(500, "oops again")],
        )],
        Step::ok(json!("fine")),
    );
    let ep = endpoint(&cfg(vec![server.url()]));
    let reply = ep.post_json("/x", &json!({})).unwrap();
    assert_eq!((reply.status, reply.attempts), (200, 3));
    assert_eq!(server.requests().len(), 3);

    // 408 and 429 without Retry-After are retried too.
    let server = TestServer::scripted(
        vec![("/y", vec![Step::text(408, "slow"), Step::text(429, "busy")])],
        Step::ok(json!(1)),
    );
    let ep = endpoint(&cfg(vec![server.url()]));
    assert_eq!(ep.get("/y").unwrap().attempts, 3);
}

#[test]
fn persistent_503_exhausts_the_retries() {
    let server = TestServer::start(|_| Step::text(503, "overloaded, try later"));
    let mut c = cfg(vec![format!("{}/v1/", server.url())]);
    c.max_retries = 4;
    let ep = endpoint(&c);
    let err = ep.post_json("/chat/completions", &json!({})).unwrap_err();
    let (attempts, msg) = exhausted(err);
    assert_eq!(attempts, 5);
    assert_eq!(
        msg,
        format!(
            "POST {}/v1/chat/completions failed after 5 attempts: HTTP 503: overloaded, try later",
            server.url()
        )
    );
    assert_eq!(server.requests().len(), 5);
    let s = ep.stats();
    assert_eq!((s.requests, s.retries, s.failures), (5, 4, 1));
}

#[test]
fn client_errors_are_returned_as_replies_without_retry() {
    let server = TestServer::start(|req| {
        let status: u16 = req.path.trim_start_matches("/s/").parse().unwrap_or(418);
        if status == 400 {
            Step::Json(
                400,
                json!({"error": {"code": "content_policy_violation", "message": "refused"}}),
            )
        } else {
            Step::text(status, "nope")
        }
    });
    let ep = endpoint(&cfg(vec![server.url()]));
    let refusal = ep.post_json("/s/400", &json!({"prompt": "x"})).unwrap();
    assert_eq!((refusal.status, refusal.attempts), (400, 1));
    assert!(!refusal.is_success());
    assert_eq!(
        refusal.json().unwrap()["error"]["code"],
        "content_policy_violation"
    );
    for status in [401u16, 403, 404, 409, 413, 422] {
        let r = ep.get(&format!("/s/{status}")).unwrap();
        assert_eq!(
            (r.status, r.attempts, r.body.as_slice()),
            (status, 1, &b"nope"[..])
        );
    }
    assert_eq!(server.requests().len(), 7, "nothing was retried");
    assert_eq!(ep.stats().retries, 0);
}

#[test]
fn slow_replies_time_out_and_are_retried() {
    let server = TestServer::start(|_| Step::ok(json!("late")).after_ms(1500));
    let mut c = cfg(vec![server.url()]);
    c.timeout_s = 0.3;
    c.max_retries = 1;
    let ep = endpoint(&c);
    let t0 = Instant::now();
    let (attempts, msg) = exhausted(ep.get("/slow").unwrap_err());
    assert_eq!(attempts, 2);
    assert!(
        msg.contains("timed out") && msg.contains("timeout_s = 0.3"),
        "{msg}"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(1400),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn cut_bodies_and_dropped_connections_are_retried() {
    let server = TestServer::scripted(
        vec![
            (
                "/cut",
                vec![Step::Truncated {
                    declared_len: 1000,
                    body: b"{\"partial\":".to_vec(),
                }],
            ),
            ("/drop", vec![Step::Close]),
        ],
        Step::ok(json!({"whole": true})),
    );
    let ep = endpoint(&cfg(vec![server.url()]));
    let r = ep.get("/cut").unwrap();
    assert_eq!((r.attempts, r.json().unwrap()), (2, json!({"whole": true})));
    let r = ep.post_json("/drop", &json!([1, 2])).unwrap();
    assert_eq!((r.attempts, r.json().unwrap()), (2, json!({"whole": true})));
    assert_eq!(server.requests().len(), 4);

    // Cut every time: the message says so.
    let server = TestServer::start(|_| Step::Truncated {
        declared_len: 50,
        body: b"{}".to_vec(),
    });
    let mut c = cfg(vec![server.url()]);
    c.max_retries = 1;
    let (attempts, msg) = exhausted(endpoint(&c).get("/cut").unwrap_err());
    assert_eq!(attempts, 2);
    assert!(msg.contains("cut short"), "{msg}");
}

#[test]
fn malformed_json_is_a_bad_body_for_the_caller() {
    let server = TestServer::start(|_| Step::Status(200, vec![], b"{\"choices\": [ oops".to_vec()));
    let ep = endpoint(&cfg(vec![server.url()]));
    let reply = ep.post_json("/v1/chat", &json!({})).unwrap();
    assert_eq!(
        reply.attempts, 1,
        "a bad body is not retried by the endpoint"
    );
    match reply.json().unwrap_err() {
        CallError::BadBody { url, detail } => {
            assert_eq!(url, format!("{}/v1/chat", server.url()));
            assert!(detail.contains("{\"choices\": [ oops"), "{detail}");
        }
        other => panic!("expected BadBody, got {other:?}"),
    }
}

#[test]
fn pool_routes_around_a_failing_url_during_its_cooldown() {
    let bad = TestServer::start(|_| Step::text(500, "broken"));
    let good = TestServer::start(|_| Step::ok(json!("ok")));
    let ep = endpoint(&cfg(vec![bad.url(), good.url()]));
    assert_eq!(ep.base_urls(), [bad.url(), good.url()]);
    for _ in 0..10 {
        let r = ep.get("/m").unwrap();
        assert!(r.url.starts_with(&good.url()));
    }
    assert_eq!(bad.requests().len(), 1, "tried once, then skipped");
    assert_eq!(good.requests().len(), 10);

    // A closed port (connection refused) is skipped the same way.
    let closed = closed_port_url();
    let ep = endpoint(&cfg(vec![closed, good.url()]));
    for _ in 0..10 {
        ep.get("/m").unwrap();
    }
    assert_eq!(good.requests().len(), 20);
    assert_eq!(ep.stats().requests, 11);
}

#[test]
fn pool_tries_a_url_again_after_its_cooldown_and_retries_elsewhere() {
    let bad = TestServer::start(|_| Step::text(502, "gateway"));
    let good = TestServer::start(|_| Step::ok(json!("ok")));
    let mut c = cfg(vec![bad.url(), good.url()]);
    c.unhealthy_cooldown_s = 0.2;
    let ep = endpoint(&c);
    ep.get("/a").unwrap();
    ep.get("/a").unwrap();
    assert_eq!(bad.requests().len(), 1);
    std::thread::sleep(Duration::from_millis(300));
    ep.get("/a").unwrap();
    ep.get("/a").unwrap();
    assert_eq!(
        bad.requests().len(),
        2,
        "back in rotation after the cooldown"
    );

    // A 429 does not mark the URL down, but its retry still goes to the other URL.
    let busy = TestServer::start(|_| Step::text(429, "busy"));
    let ep = endpoint(&cfg(vec![busy.url(), good.url()]));
    let r = ep.get("/b").unwrap();
    assert_eq!(r.attempts, 2);
    assert!(r.url.starts_with(&good.url()));
}

#[test]
fn concurrency_cap_holds_across_all_callers_and_order_is_kept() {
    let server = TestServer::start(|req| Step::ok(req.json()).after_ms(100));
    let mut c = cfg(vec![server.url()]);
    c.concurrency = 3;
    let ep = endpoint(&c);
    let items: Vec<u32> = (0..20).collect();
    let t0 = Instant::now();
    let out = ep.map_concurrent(&items, |i| {
        ep.post_json("/echo", &json!({"i": i}))
            .unwrap()
            .json()
            .unwrap()["i"]
            .as_u64()
            .unwrap()
    });
    assert_eq!(out, (0..20).collect::<Vec<u64>>());
    assert!(
        t0.elapsed() >= Duration::from_millis(650),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(server.max_concurrent(), 3);

    // Two map_concurrent calls at once still share the cap of 3.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| ep.map_concurrent(&items[..6], |i| ep.post_json("/echo", &json!({"i": i}))));
        }
    });
    assert_eq!(server.max_concurrent(), 3);
    let stats = ep.stats();
    assert_eq!((stats.requests, stats.max_in_flight), (32, 3));
    assert!(
        stats.busy >= Duration::from_millis(3200),
        "{:?}",
        stats.busy
    );
}

#[test]
fn requests_per_minute_spreads_a_burst() {
    let server = TestServer::start(|_| Step::ok(json!(1)));
    let mut c = cfg(vec![server.url()]);
    c.requests_per_minute = Some(600); // 10 per second, burst of 10
    c.concurrency = 8;
    let ep = endpoint(&c);
    let items: Vec<u32> = (0..20).collect();
    let t0 = Instant::now();
    let ok = ep.map_concurrent(&items[..10], |_| ep.get("/r").is_ok());
    let burst = t0.elapsed();
    assert!(ok.iter().all(|&b| b));
    assert!(
        burst < Duration::from_millis(500),
        "the burst is not slowed: {burst:?}"
    );
    ep.map_concurrent(&items[10..], |_| ep.get("/r").unwrap());
    let all = t0.elapsed();
    // Ten more at ten per second: about one second.
    assert!(all >= Duration::from_millis(900), "{all:?}");
    assert!(all < Duration::from_millis(3000), "{all:?}");
    assert_eq!(server.requests().len(), 20);
}

#[test]
fn configuration_errors_name_the_problem() {
    let var = format!("ART_TEST_KEY_MISSING_{}", fastrand::u64(..));
    let mut c = cfg(vec!["http://127.0.0.1:9".into()]);
    c.api_key_env = Some(var.clone());
    let msg = match Endpoint::new(&c, "writer").unwrap_err() {
        CallError::Config(m) => m,
        other => panic!("expected Config, got {other:?}"),
    };
    assert!(
        msg.contains(&var) && msg.contains("not set") && msg.contains("writer"),
        "{msg}"
    );

    let mut c = cfg(vec!["http://127.0.0.1:9".into()]);
    c.concurrency = 0;
    let err = Endpoint::new(&c, "guide").unwrap_err();
    assert!(
        matches!(&err, CallError::Config(m) if m.contains("concurrency")),
        "{err}"
    );

    let mut c = cfg(vec!["http://127.0.0.1:9".into()]);
    c.unhealthy_cooldown_s = f64::NAN;
    let err = Endpoint::new(&c, "guide").unwrap_err();
    assert!(
        matches!(&err, CallError::Config(m) if m.contains("unhealthy_cooldown_s")),
        "{err}"
    );
}

#[test]
fn the_api_key_is_sent_as_a_bearer_token() {
    let server = TestServer::start(|_| Step::ok(json!({})));
    let ep = Endpoint::with_api_key(&cfg(vec![server.url()]), "target", Some("sk-given")).unwrap();
    ep.get("/k").unwrap();
    ep.post_json("/k", &json!({})).unwrap();
    for r in server.requests() {
        assert_eq!(r.header("authorization"), Some("Bearer sk-given"));
    }
}

/// Marks the child process of [`secrets_never_appear_in_errors_or_debug`].
const CHILD: &str = "ART_REMOTE_SECRET_CHILD";

/// Setting environment variables needs `unsafe` in Rust 2024 (forbidden here), so this test
/// re-runs itself in a child process whose environment holds the key.
#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let Ok(var) = std::env::var(CHILD) else {
        let var = format!("ART_TEST_KEY_{:016x}", fastrand::u64(..));
        let value = format!(
            "sk-art-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let text = art_testkit::rerun_test_with_env(
            "secrets_never_appear_in_errors_or_debug",
            &[
                (CHILD, &var),
                (&var, &value),
                ("ART_TEST_BAD_KEY", "sk bad-secret-with-space"),
            ],
            &[],
        );
        assert!(
            !text.contains(&value),
            "the key leaked into output:\n{text}"
        );
        return;
    };
    let value = std::env::var(&var).unwrap();
    let bad_value = std::env::var("ART_TEST_BAD_KEY").unwrap();
    let mut seen: Vec<String> = Vec::new();
    fn record(seen: &mut Vec<String>, e: &CallError) {
        seen.push(e.to_string());
        seen.push(format!("{e:?}"));
    }

    // The header carries it; a server echoing it back in an error does not leak it.
    let echo = TestServer::start(|req| {
        let auth = req.header("authorization").unwrap_or("none").to_string();
        if req.path == "/not-json" {
            Step::Status(200, vec![], b"not json".to_vec())
        } else {
            Step::text(503, &format!("bad key: {auth}"))
        }
    });
    let slow = TestServer::start(|_| Step::ok(json!(1)).after_ms(1000));
    let mut c = cfg(vec![echo.url()]);
    c.api_key_env = Some(var.clone());
    c.max_retries = 1;
    let ep = Endpoint::new(&c, "writer").unwrap();
    seen.push(format!("{ep:?}"));
    let e = ep.post_json("/v1", &json!({})).unwrap_err();
    assert!(e.to_string().contains("Bearer <redacted>"), "{e}");
    record(&mut seen, &e);
    assert_eq!(
        echo.requests()[0].header("authorization"),
        Some(format!("Bearer {value}").as_str())
    );

    // Timeout, refused connection, a URL ureq rejects, a bad body.
    for (urls, timeout) in [
        (vec![slow.url()], 0.2),
        (vec![closed_port_url()], 5.0),
        (vec!["http://bad host:1".to_string()], 5.0),
    ] {
        let mut c = c.clone();
        c.base_urls = urls;
        c.timeout_s = timeout;
        let ep = Endpoint::new(&c, "writer").unwrap();
        seen.push(format!("{ep:?}"));
        record(&mut seen, &ep.get("/x").unwrap_err());
    }
    let reply = ep.get("/not-json").unwrap();
    seen.push(format!("{reply:?}"));
    record(&mut seen, &reply.json().unwrap_err());

    // Configuration errors with the key set, and a key that cannot go in a header.
    let mut invalid = c.clone();
    invalid.concurrency = 0;
    record(&mut seen, &Endpoint::new(&invalid, "writer").unwrap_err());
    let mut bad_key = c.clone();
    bad_key.api_key_env = Some("ART_TEST_BAD_KEY".into());
    let e = Endpoint::new(&bad_key, "writer").unwrap_err();
    assert!(e.to_string().contains("ART_TEST_BAD_KEY"), "{e}");
    record(&mut seen, &e);

    assert!(seen.len() >= 12);
    for s in &seen {
        assert!(!s.contains(&value), "the key leaked: {s}");
        assert!(
            !s.contains(&bad_value) && !s.contains("bad-secret"),
            "the key leaked: {s}"
        );
    }
}
