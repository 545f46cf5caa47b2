//! One remote endpoint: the HTTP layer every remote backend calls.
//!
//! An [`Endpoint`] is built from an [`art_config::EndpointConfig`] and turns `post_json` / `get`
//! into a [`Reply`] or a [`CallError`] (both in `reply.rs`), taking care of everything a
//! backend should not: the pool of base URLs and their health (`pool.rs`), the concurrency cap
//! and requests-per-minute limit (`limits.rs`), retries with backoff and `Retry-After`
//! (`retry.rs`), and the transport itself (`transport.rs`, the only code touching `ureq`).
//! This file holds the request loop that ties them together, and `map_concurrent`.
//!
//! Secrets: the API key is read once, in [`Endpoint::new`], and is sent only in the
//! `Authorization` header. It is kept in a type whose `Debug` prints nothing of it, and every
//! error message the endpoint builds is scrubbed of it (a server may echo the header back).

mod limits;
mod pool;
mod reply;
mod retry;
mod transport;

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use art_config::EndpointConfig;

use limits::{RateLimiter, Semaphore, lock};
use pool::Pool;
use reply::snippet;
use transport::{Failure, Method, Outcome};

pub use reply::{CallError, EndpointStats, Reply};
pub use retry::RETRY_AFTER_CAP;
pub use transport::MAX_BODY_BYTES;

/// The API key; its `Debug` never shows it.
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A served model reached over HTTP: a pool of base URLs with shared limits and a retry
/// policy. `Send + Sync`; share it by reference across threads.
pub struct Endpoint {
    role: String,
    api_key_env: Option<String>,
    key: Option<Secret>,
    agent: ureq::Agent,
    pool: Pool,
    slots: Semaphore,
    concurrency: usize,
    rate: Option<RateLimiter>,
    requests_per_minute: Option<u32>,
    max_retries: u32,
    backoff_initial_ms: u64,
    backoff_max_ms: u64,
    timeout: Duration,
    connect_timeout: Duration,
    stats: Mutex<EndpointStats>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("role", &self.role)
            .field("base_urls", &self.pool.urls())
            .field("api_key_env", &self.api_key_env)
            .field("key", &self.key)
            .field("concurrency", &self.concurrency)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("max_retries", &self.max_retries)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Validates `cfg` and reads the API key from the variable named by `cfg.api_key_env`
    /// now (a missing or empty variable is a [`CallError::Config`] naming the variable, never
    /// a value). `role` labels the endpoint in messages (`"writer"`).
    pub fn new(cfg: &EndpointConfig, role: &str) -> Result<Self, CallError> {
        let key = match &cfg.api_key_env {
            None => None,
            Some(var) => {
                let value = std::env::var(var).map_err(|e| {
                    let why = match e {
                        std::env::VarError::NotPresent => "is not set",
                        std::env::VarError::NotUnicode(_) => "is not valid Unicode",
                    };
                    CallError::Config(format!(
                        "{role} endpoint: environment variable {var} (api_key_env) {why}"
                    ))
                })?;
                let source = format!("environment variable {var} (api_key_env)");
                Some(check_key(&value, role, &source)?)
            }
        };
        Self::build(cfg, role, key)
    }

    /// Like [`Endpoint::new`], with the API key given instead of read from the environment
    /// (`cfg.api_key_env` is ignored). For callers that obtain the key elsewhere, and for
    /// tests (setting environment variables needs `unsafe` in Rust 2024).
    pub fn with_api_key(
        cfg: &EndpointConfig,
        role: &str,
        api_key: Option<&str>,
    ) -> Result<Self, CallError> {
        let key = api_key
            .map(|k| check_key(k, role, "the given API key"))
            .transpose()?;
        Self::build(cfg, role, key)
    }

    fn build(cfg: &EndpointConfig, role: &str, key: Option<String>) -> Result<Self, CallError> {
        let bad = |msg: String| CallError::Config(format!("{role} endpoint: {msg}"));
        cfg.validate().map_err(bad)?;
        let secs = |v: f64, field: &str| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| bad(format!("endpoint.{field} must be a finite number >= 0")))
        };
        let timeout = secs(cfg.timeout_s, "timeout_s")?;
        let connect_timeout = secs(cfg.connect_timeout_s, "connect_timeout_s")?;
        let cooldown = secs(cfg.unhealthy_cooldown_s, "unhealthy_cooldown_s")?;
        Ok(Self {
            role: role.to_string(),
            api_key_env: cfg.api_key_env.clone(),
            key: key.map(Secret),
            agent: transport::agent(timeout, connect_timeout),
            pool: Pool::new(&cfg.base_urls, cooldown),
            slots: Semaphore::new(cfg.concurrency),
            concurrency: cfg.concurrency,
            rate: cfg.requests_per_minute.map(RateLimiter::new),
            requests_per_minute: cfg.requests_per_minute,
            max_retries: cfg.max_retries,
            backoff_initial_ms: cfg.backoff_initial_ms,
            backoff_max_ms: cfg.backoff_max_ms,
            timeout,
            connect_timeout,
            stats: Mutex::new(EndpointStats::default()),
        })
    }

    /// POSTs `body` as JSON to base URL + `path` (`path` starts with '/'). Any 2xx and any
    /// status that is not retried (4xx other than 408 and 429) is returned as a [`Reply`];
    /// 408, 429, 5xx, timeouts, connection errors and cut bodies are retried.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<Reply, CallError> {
        let bytes = serde_json::to_vec(body).map_err(|e| CallError::BadBody {
            url: path.to_string(),
            detail: format!("request body cannot be serialized: {e}"),
        })?;
        self.call(Method::Post, path, Some(&bytes))
    }

    /// GETs base URL + `path`, with the same rules as [`Endpoint::post_json`].
    pub fn get(&self, path: &str) -> Result<Reply, CallError> {
        self.call(Method::Get, path, None)
    }

    /// Runs `f` over `items` on up to `concurrency` scoped threads and returns the results in
    /// item order. The endpoint's concurrency cap is what bounds the calls in flight, so it
    /// holds across concurrent `map_concurrent` calls too. A panic in `f` is re-raised here
    /// after the other workers finish.
    pub fn map_concurrent<T: Sync, R: Send>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> R + Sync,
    ) -> Vec<R> {
        let workers = self.concurrency.min(items.len());
        if workers <= 1 {
            return items.iter().map(f).collect();
        }
        let next = AtomicUsize::new(0);
        let mut slots: Vec<Option<R>> = items.iter().map(|_| None).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(item) = items.get(i) else { break };
                            done.push((i, f(item)));
                        }
                        done
                    })
                })
                .collect();
            let mut panic = None;
            for h in handles {
                match h.join() {
                    Ok(done) => done.into_iter().for_each(|(i, r)| slots[i] = Some(r)),
                    Err(p) => panic = panic.or(Some(p)),
                }
            }
            if let Some(p) = panic {
                std::panic::resume_unwind(p);
            }
        });
        slots
            .into_iter()
            .map(|r| r.expect("every item was mapped"))
            .collect()
    }

    /// Counters since the endpoint was built.
    pub fn stats(&self) -> EndpointStats {
        let mut s = lock(&self.stats).clone();
        s.max_in_flight = self.slots.max_in_flight();
        s
    }

    /// The pool's base URLs (trailing slashes removed).
    pub fn base_urls(&self) -> &[String] {
        self.pool.urls()
    }

    /// The request loop: pick a URL, wait for the rate limit, hold a slot for the attempt,
    /// then return, retry after a backoff, or give up.
    fn call(&self, method: Method, path: &str, body: Option<&[u8]>) -> Result<Reply, CallError> {
        let sep = if path.starts_with('/') { "" } else { "/" };
        let authorization = self.key.as_ref().map(|k| format!("Bearer {}", k.0));
        let attempts_allowed = self.max_retries.saturating_add(1);
        let mut avoid = None;
        let mut url = String::new();
        let mut last = String::new();
        for attempt in 1..=attempts_allowed {
            if let Some(rate) = &self.rate {
                rate.acquire();
            }
            let idx = self.pool.pick(avoid);
            url = format!("{}{sep}{path}", self.pool.urls()[idx]);
            let outcome = {
                let _slot = self.slots.acquire();
                let started = Instant::now();
                let outcome =
                    transport::send(&self.agent, method, &url, authorization.as_deref(), body);
                let mut s = lock(&self.stats);
                s.requests += 1;
                s.busy += started.elapsed();
                outcome
            };
            let mut server_wait = None;
            match outcome {
                Outcome::Reply { status, body, .. } if !retry::is_retryable_status(status) => {
                    self.pool.mark_up(idx);
                    return Ok(Reply {
                        status,
                        body: self.scrub_body(body),
                        url,
                        attempts: attempt,
                    });
                }
                Outcome::Reply {
                    status,
                    body,
                    retry_after,
                } => {
                    if status >= 500 {
                        self.pool.mark_down(idx);
                    }
                    server_wait = retry_after;
                    last = format!("HTTP {status}: {}", snippet(&body));
                }
                Outcome::Failed { kind, detail } => {
                    last = match kind {
                        Failure::Timeout => format!(
                            "timed out (timeout_s = {} s, connect_timeout_s = {} s): {detail}",
                            self.timeout.as_secs_f64(),
                            self.connect_timeout.as_secs_f64()
                        ),
                        Failure::Connect => format!("no reply: {detail}"),
                        Failure::Cut => format!("reply body cut short: {detail}"),
                        Failure::Fatal => detail,
                    };
                    if matches!(kind, Failure::Timeout | Failure::Connect) {
                        self.pool.mark_down(idx);
                    }
                    if kind == Failure::Fatal {
                        return Err(self.exhausted(method, url, attempt, &last));
                    }
                }
            }
            if attempt < attempts_allowed {
                lock(&self.stats).retries += 1;
                avoid = Some(idx);
                let wait = retry::backoff(
                    attempt - 1,
                    self.backoff_initial_ms,
                    self.backoff_max_ms,
                    server_wait,
                );
                std::thread::sleep(wait);
            }
        }
        Err(self.exhausted(method, url, attempts_allowed, &last))
    }

    /// Counts a failed call and builds its error, scrubbed of the key.
    fn exhausted(&self, method: Method, url: String, attempts: u32, last: &str) -> CallError {
        lock(&self.stats).failures += 1;
        CallError::Exhausted {
            method: method.as_str().to_string(),
            url: self.scrub(&url),
            attempts,
            last: self.scrub(last),
        }
    }

    /// A reply body with every occurrence of the API key replaced: a server that echoes the
    /// Authorization header in an error (or any) body must not carry the key into stored
    /// errors, prompts or logs.
    fn scrub_body(&self, body: Vec<u8>) -> Vec<u8> {
        let Some(k) = self.key.as_ref().filter(|k| !k.0.is_empty()) else {
            return body;
        };
        let key = k.0.as_bytes();
        if !body.windows(key.len()).any(|w| w == key) {
            return body;
        }
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            if body[i..].starts_with(key) {
                out.extend_from_slice(b"<redacted>");
                i += key.len();
            } else {
                out.push(body[i]);
                i += 1;
            }
        }
        out
    }

    /// `text` with every occurrence of the API key replaced.
    fn scrub(&self, text: &str) -> String {
        match &self.key {
            Some(k) if !k.0.is_empty() => text.replace(&k.0, "<redacted>"),
            _ => text.to_string(),
        }
    }
}

/// Checks that a key can go in a header; the message names `source`, never the value.
fn check_key(value: &str, role: &str, source: &str) -> Result<String, CallError> {
    let key = value.trim();
    if key.is_empty() {
        return Err(CallError::Config(format!(
            "{role} endpoint: {source} is empty"
        )));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CallError::Config(format!(
            "{role} endpoint: {source} contains characters not allowed in an \
             HTTP header (only visible ASCII, no spaces)"
        )));
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Endpoint>();
    }
}
