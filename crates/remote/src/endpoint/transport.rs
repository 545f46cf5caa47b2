//! One HTTP attempt over `ureq`, and what became of it.
//!
//! This is the only place that touches `ureq`: the agent's configuration (statuses returned
//! as replies, timeouts, user agent, body size limit) and the sorting of its errors into the
//! kinds the retry loop acts on. Keeping the transport behind [`Outcome`] leaves the loop in
//! `mod.rs` about policy only.

use std::time::{Duration, SystemTime};

use super::retry;

/// The largest response body read (base64 images can be tens of MB).
pub const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// The HTTP methods the endpoint sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Why an attempt got no usable reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A timeout (connect or whole request). Retried; marks the URL down.
    Timeout,
    /// No reply: refused, reset, closed before the status line, DNS failure, garbled
    /// headers. Retried; marks the URL down.
    Connect,
    /// The reply's body was cut short (Content-Length mismatch, connection closed mid-body,
    /// broken chunking or compression). Retried; the URL stays up.
    Cut,
    /// Retrying cannot help (bad URL, TLS certificate problem, body over the size limit...).
    Fatal,
}

/// What one attempt produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A complete reply, whatever its status.
    Reply {
        status: u16,
        body: Vec<u8>,
        /// What the server asked us to wait (`retry-after-ms` / `Retry-After`), if anything.
        retry_after: Option<Duration>,
    },
    /// No usable reply; `detail` is ureq's description (no header values in it).
    Failed { kind: Failure, detail: String },
}

/// The agent every attempt of one endpoint uses (it pools connections per host).
pub(crate) fn agent(timeout: Duration, connect_timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(connect_timeout))
        .user_agent(concat!("art/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Sends one request and reads the whole reply.
pub(crate) fn send(
    agent: &ureq::Agent,
    method: Method,
    url: &str,
    authorization: Option<&str>,
    json_body: Option<&[u8]>,
) -> Outcome {
    let sent = match (method, json_body) {
        (Method::Post, body) => {
            let mut req = agent.post(url);
            if let Some(auth) = authorization {
                req = req.header("Authorization", auth);
            }
            req.header("Content-Type", "application/json")
                .send(body.unwrap_or_default())
        }
        (Method::Get, _) => {
            let mut req = agent.get(url);
            if let Some(auth) = authorization {
                req = req.header("Authorization", auth);
            }
            req.call()
        }
    };
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return failed(e, false),
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = retry::server_wait(
        header("retry-after-ms").as_deref(),
        header("retry-after").as_deref(),
        SystemTime::now(),
    );
    match response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()
    {
        Ok(body) => Outcome::Reply {
            status,
            body,
            retry_after,
        },
        Err(e) => failed(e, true),
    }
}

/// Sorts a ureq error; `in_body` says whether it came while reading the reply's body.
fn failed(e: ureq::Error, in_body: bool) -> Outcome {
    let kind = match &e {
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::Io(io) if is_timeout(io.kind()) => Failure::Timeout,
        ureq::Error::BodyExceedsLimit(_) => Failure::Fatal,
        ureq::Error::Io(_)
        | ureq::Error::Protocol(_)
        | ureq::Error::Decompress(..)
        | ureq::Error::BodyStalled
            if in_body =>
        {
            Failure::Cut
        }
        ureq::Error::Io(_)
        | ureq::Error::Protocol(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound => Failure::Connect,
        _ => Failure::Fatal,
    };
    let detail = match &e {
        ureq::Error::BodyExceedsLimit(_) => {
            format!("the reply body is larger than {MAX_BODY_BYTES} bytes")
        }
        _ => e.to_string(),
    };
    Outcome::Failed { kind, detail }
}

fn is_timeout(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}
