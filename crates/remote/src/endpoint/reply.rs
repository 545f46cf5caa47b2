//! What a call gives back: [`Reply`], [`CallError`] and the endpoint's [`EndpointStats`].
//!
//! Plain data types with their messages, apart from the request loop so a backend author can
//! read the whole contract in one file. Error messages quote at most a short, one-line
//! snippet of a body, so a multi-megabyte reply never ends up in a log.

use std::time::Duration;

/// How many characters of a body an error message quotes.
const SNIPPET_CHARS: usize = 200;

/// A complete HTTP reply: any 2xx, or a status that is not retried (most 4xx), so callers
/// can read refusal bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The full URL requested (base URL + path).
    pub url: String,
    /// Attempts it took (1 when the first one answered).
    pub attempts: u32,
}

impl Reply {
    /// The body parsed as JSON; [`CallError::BadBody`] (naming the URL and quoting the start
    /// of the body) when it is not.
    pub fn json(&self) -> Result<serde_json::Value, CallError> {
        serde_json::from_slice(&self.body).map_err(|e| CallError::BadBody {
            url: self.url.clone(),
            detail: format!(
                "HTTP {}: reply is not JSON ({e}): {}",
                self.status,
                snippet(&self.body)
            ),
        })
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a call gave no [`Reply`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Retries exhausted (or a failure retrying cannot fix): the last failure and how many
    /// attempts were made.
    #[error("{method} {url} failed after {attempts} attempt{}: {last}", plural(*attempts))]
    Exhausted {
        method: String,
        url: String,
        attempts: u32,
        last: String,
    },
    /// The reply body is not what the caller expected (malformed JSON ...). Not retried by
    /// the endpoint itself.
    #[error("unexpected reply from {url}: {detail}")]
    BadBody { url: String, detail: String },
    /// Configuration problem found when building the endpoint.
    #[error("{0}")]
    Config(String),
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Counters of one endpoint since it was built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointStats {
    /// Attempts sent (first tries and retries).
    pub requests: u64,
    /// Retries sent.
    pub retries: u64,
    /// Calls that ended in [`CallError::Exhausted`].
    pub failures: u64,
    /// Sum over attempts of the time each was in flight (holding a concurrency slot).
    pub busy: Duration,
    /// The most attempts in flight at once.
    pub max_in_flight: usize,
}

/// The start of a body for an error message: lossy UTF-8, at most [`SNIPPET_CHARS`]
/// characters, control characters escaped.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut out: String = text
        .chars()
        .take(SNIPPET_CHARS)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_is_short_and_one_line() {
        assert_eq!(snippet(b""), "(empty body)");
        assert_eq!(snippet(b"a\nb"), "a\\nb");
        let long = "x".repeat(500);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
    }

    #[test]
    fn messages_read_well() {
        let e = CallError::Exhausted {
            method: "POST".into(),
            url: "http://h/v1/chat/completions".into(),
            attempts: 6,
            last: "HTTP 503: busy".into(),
        };
        assert_eq!(
            e.to_string(),
            "POST http://h/v1/chat/completions failed after 6 attempts: HTTP 503: busy"
        );
        let reply = Reply {
            status: 200,
            body: b"{oops".to_vec(),
            url: "http://h/x".into(),
            attempts: 1,
        };
        let msg = reply.json().unwrap_err().to_string();
        assert!(msg.contains("http://h/x") && msg.contains("{oops"), "{msg}");
        assert!(reply.is_success());
    }
}
