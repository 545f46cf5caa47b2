//! How to reach a served model over HTTP: shared by every remote role kind (`[ROLE.endpoint]`).

use serde::{Deserialize, Serialize};

fn d_timeout() -> f64 {
    120.0
}
fn d_connect() -> f64 {
    10.0
}
fn d_retries() -> u32 {
    5
}
fn d_backoff_initial() -> u64 {
    500
}
fn d_backoff_max() -> u64 {
    30_000
}
fn d_concurrency() -> usize {
    8
}
fn d_cooldown() -> f64 {
    30.0
}

/// One logical endpoint: a pool of base URLs serving the same model, with the limits and retry
/// policy every request to it follows. Secrets are never written here: `api_key_env` names the
/// environment variable that holds the key, and only that name is stored with a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URLs serving the same model (e.g. `http://gpu1:8000/v1`); requests are spread over
    /// them and a failing one is skipped for `unhealthy_cooldown_s`.
    pub base_urls: Vec<String>,
    /// Name of the environment variable holding the API key (sent as a Bearer token).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Whole-request timeout, seconds.
    #[serde(default = "d_timeout")]
    pub timeout_s: f64,
    #[serde(default = "d_connect")]
    pub connect_timeout_s: f64,
    /// Retries after the first attempt, on 408/429/5xx, timeouts, connection errors and
    /// truncated bodies.
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// Exponential backoff with full jitter: the n-th retry waits up to
    /// `min(backoff_max_ms, backoff_initial_ms * 2^n)`, and at least what `Retry-After` asks.
    #[serde(default = "d_backoff_initial")]
    pub backoff_initial_ms: u64,
    #[serde(default = "d_backoff_max")]
    pub backoff_max_ms: u64,
    /// Requests in flight at once, over all base URLs.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// Requests started per minute, over all base URLs; unlimited when absent.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// How long a base URL that failed (connection error, timeout, 5xx) is skipped.
    #[serde(default = "d_cooldown")]
    pub unhealthy_cooldown_s: f64,
}

impl EndpointConfig {
    /// A config for `base_urls` with every other setting at its default.
    pub fn new(base_urls: Vec<String>) -> Self {
        Self {
            base_urls,
            api_key_env: None,
            timeout_s: d_timeout(),
            connect_timeout_s: d_connect(),
            max_retries: d_retries(),
            backoff_initial_ms: d_backoff_initial(),
            backoff_max_ms: d_backoff_max(),
            concurrency: d_concurrency(),
            requests_per_minute: None,
            unhealthy_cooldown_s: d_cooldown(),
        }
    }

    /// Checks values a user can get wrong; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.base_urls.is_empty() {
            return Err("endpoint.base_urls must list at least one URL".into());
        }
        for u in &self.base_urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "endpoint.base_urls: `{u}` is not an http:// or https:// URL"
                ));
            }
        }
        if self.concurrency == 0 {
            return Err("endpoint.concurrency must be at least 1".into());
        }
        if self.requests_per_minute == Some(0) {
            return Err(
                "endpoint.requests_per_minute must be at least 1 (omit it for no limit)".into(),
            );
        }
        if !(self.timeout_s > 0.0 && self.connect_timeout_s > 0.0) {
            return Err(
                "endpoint.timeout_s and endpoint.connect_timeout_s must be positive".into(),
            );
        }
        if self.backoff_initial_ms > self.backoff_max_ms {
            return Err(
                "endpoint.backoff_initial_ms must not exceed endpoint.backoff_max_ms".into(),
            );
        }
        Ok(())
    }
}
