//! Role implementations over HTTP, one module per API. Each builds on
//! [`crate::endpoint::Endpoint`] (retries, pools, limits) and maps a batch to concurrent
//! requests with `Endpoint::map_concurrent`.

pub mod chat;
pub mod codec;
pub mod comfyui;
pub mod images;
pub mod moderation;
pub mod vision_judge;

use crate::endpoint::{CallError, Reply};
use art_core::RoleError;
use serde_json::Value;

/// A role error from a failed call; the message names the role and carries the endpoint's
/// explanation (URL, status, attempts), never a secret.
pub(crate) fn call_error(role: &str, e: CallError) -> RoleError {
    RoleError::new(format!("{role}: {e}"))
}

/// The JSON of a successful reply, or a role error describing the failure, including the
/// server's own error message when it sent one.
pub(crate) fn ok_json(role: &str, reply: &Reply) -> Result<Value, RoleError> {
    if !reply.is_success() {
        return Err(RoleError::new(format!(
            "{role}: HTTP {} from {}: {}",
            reply.status,
            reply.url,
            error_message(reply)
        )));
    }
    reply.json().map_err(|e| call_error(role, e))
}

/// The error text of an OpenAI-style error body (`{"error": {"message": ...}}`), or the start
/// of the raw body.
pub(crate) fn error_message(reply: &Reply) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
    let msg = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("detail"))
            .or_else(|| v.get("message"))
            .and_then(|m| {
                m.as_str()
                    .map(str::to_string)
                    .or_else(|| Some(m.to_string()))
            })
    });
    msg.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&reply.body);
        text.chars().take(300).collect()
    })
}

/// Reads a required string at a JSON pointer, or says what was missing.
pub(crate) fn str_at<'a>(role: &str, v: &'a Value, pointer: &str) -> Result<&'a str, RoleError> {
    v.pointer(pointer).and_then(Value::as_str).ok_or_else(|| {
        let mut shown = v.to_string();
        shown.truncate(300);
        RoleError::new(format!(
            "{role}: the server's answer has no `{pointer}` text: {shown}"
        ))
    })
}

/// Seeds go to servers as 31-bit non-negative integers: every server we target accepts
/// those (some parse seeds as 32-bit), and the full 64-bit item seed stays in the store.
pub(crate) fn server_seed(seed: u64) -> u64 {
    seed & 0x7fff_ffff
}

/// Reads a template file, or returns the built-in one.
pub(crate) fn template(
    file: &Option<std::path::PathBuf>,
    builtin: &str,
) -> Result<String, RoleError> {
    match file {
        None => Ok(builtin.to_string()),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| RoleError::new(format!("cannot read template file {}: {e}", p.display()))),
    }
}

pub(crate) use art_core::template::fingerprint;
