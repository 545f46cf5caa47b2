//! Helpers shared by the backend test files: test-sized endpoint configs, images, categories,
//! canned OpenAI-style replies and a stable hash for servers whose answers are pure functions
//! of the request.

#![allow(dead_code)] // each test binary uses a different part of this module

use art_config::EndpointConfig;
use art_core::{Category, Image};
use art_remote::backends::codec;
use serde_json::{Value, json};

/// An endpoint config for `base` with test-sized waits: 2 retries, backoff 5..20 ms, short
/// timeouts, concurrency 4.
pub fn endpoint_at(base: String) -> EndpointConfig {
    let mut c = EndpointConfig::new(vec![base]);
    c.max_retries = 2;
    c.backoff_initial_ms = 5;
    c.backoff_max_ms = 20;
    c.timeout_s = 5.0;
    c.connect_timeout_s = 2.0;
    c.concurrency = 4;
    c
}

/// `endpoint_at(server + "/v1")`, the base URL of OpenAI-style APIs.
pub fn v1(url: &str) -> EndpointConfig {
    endpoint_at(format!("{url}/v1"))
}

/// A small image whose pixels are a function of `tag` (different tags, different images).
pub fn image(w: u32, h: u32, tag: u64) -> Image {
    let mut x = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let rgb = (0..w * h * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    Image::new(w, h, rgb).expect("valid image")
}

/// The base64 PNG of an image, without a data-URL prefix (as `b64_json` carries it).
pub fn b64_png(img: &Image) -> String {
    codec::png_data_url(img)
        .expect("encodes")
        .strip_prefix("data:image/png;base64,")
        .expect("PNG data URL")
        .to_string()
}

/// Decodes a `data:image/png;base64,...` URL back to an image.
pub fn decode_data_url(url: &str) -> Image {
    assert!(url.starts_with("data:image/png;base64,"), "{url:.40}");
    codec::decode_image(&codec::b64_decode(url).expect("base64")).expect("image")
}

/// The built-in `violence` category.
pub fn violence() -> &'static Category {
    art_core::category::builtin()
        .iter()
        .find(|c| c.name == "violence")
        .expect("built-in category")
}

/// A chat/completions reply whose first choice says `text`.
pub fn chat_reply(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
    })
}

/// A completions reply whose first choice says `text`.
pub fn completion_reply(text: &str) -> Value {
    json!({"id": "cmpl-1", "object": "text_completion",
           "choices": [{"index": 0, "text": text, "finish_reason": "length"}]})
}

/// The text between `start` and the next `end` in `s`.
pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// FNV-1a: a stable hash for deterministic test servers.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The text of the user message of a chat request (plain string content, or the text part of
/// a multi-part content).
pub fn user_text(body: &Value) -> String {
    let msgs = body["messages"].as_array().expect("messages");
    let user = msgs
        .iter()
        .find(|m| m["role"] == "user")
        .expect("a user message");
    match &user["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .find(|p| p["type"] == "text")
            .and_then(|p| p["text"].as_str())
            .expect("a text part")
            .to_string(),
        other => panic!("unexpected content {other}"),
    }
}

/// The image URL of the user message's `image_url` part.
pub fn user_image_url(body: &Value) -> String {
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_array())
        .and_then(|parts| parts.iter().find(|p| p["type"] == "image_url"))
        .and_then(|p| p.pointer("/image_url/url"))
        .and_then(Value::as_str)
        .expect("an image_url part")
        .to_string()
}

/// The message of an error result, or a panic naming what came instead.
pub fn err_msg<T: std::fmt::Debug>(r: &Result<T, art_core::RoleError>) -> String {
    match r {
        Err(e) => e.message.clone(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}
