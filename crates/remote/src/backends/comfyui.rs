//! ComfyUI as a Target: submit an API-format workflow with the prompt, negative prompt and
//! seed substituted, wait for it to finish, fetch the image.

use super::{call_error, codec, fingerprint, ok_json, str_at};
use crate::endpoint::Endpoint;
use art_config::remote::ComfyuiTarget;
use art_core::template::negative_prompt;
use art_core::{ModelIdentity, RenderOutcome, RenderOutput, RenderRequest, RoleError, Target};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Comfyui {
    endpoint: Endpoint,
    cfg: ComfyuiTarget,
    workflow: Value,
    workflow_text: String,
}

/// Fills `{{prompt}}`, `{{negative_prompt}}` and `{{seed}}` in every string of the workflow in
/// one pass (so placeholder-like text inside the prompt is never expanded); a string that is
/// exactly `{{seed}}` becomes a number, as ComfyUI's samplers expect.
fn substitute(v: &Value, prompt: &str, negative: &str, seed: u64) -> Value {
    match v {
        Value::String(s) if s == "{{seed}}" => json!(seed),
        Value::String(s) => {
            let seed = seed.to_string();
            let slots = [
                ("prompt", prompt),
                ("negative_prompt", negative),
                ("seed", seed.as_str()),
            ];
            Value::String(fill_placeholders(s, &slots))
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, prompt, negative, seed))
                .collect(),
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, prompt, negative, seed)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replaces `{{name}}` for the given slots in one left-to-right pass; other `{{...}}` text is
/// kept, and text put into a slot is not scanned again.
fn fill_placeholders(s: &str, slots: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let slot = after.find("}}").and_then(|j| {
            slots
                .iter()
                .find(|(name, _)| *name == &after[..j])
                .map(|(_, value)| (j, *value))
        });
        match slot {
            Some((j, value)) => {
                out.push_str(value);
                rest = &after[j + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Comfyui {
    pub fn new(cfg: &ComfyuiTarget) -> Result<Self, RoleError> {
        let path = &cfg.workflow;
        let text = std::fs::read_to_string(path).map_err(|e| {
            RoleError::new(format!(
                "cannot read ComfyUI workflow {}: {e}",
                path.display()
            ))
        })?;
        let workflow: Value = serde_json::from_str(&text).map_err(|e| {
            RoleError::new(format!(
                "ComfyUI workflow {} is not valid JSON: {e}",
                path.display()
            ))
        })?;
        if !text.contains("{{prompt}}") {
            return Err(RoleError::new(format!(
                "ComfyUI workflow {} has no `{{{{prompt}}}}` placeholder to put the prompt in",
                path.display()
            )));
        }
        Ok(Self {
            endpoint: Endpoint::new(&cfg.endpoint, "target")
                .map_err(|e| call_error("target", e))?,
            cfg: cfg.clone(),
            workflow,
            workflow_text: text,
        })
    }

    fn render_one(&self, r: &RenderRequest<'_>) -> Result<RenderOutput, RoleError> {
        let negative = negative_prompt(self.cfg.negative_prompt.as_deref().unwrap_or(""));
        // ComfyUI's samplers take seeds up to 2^64-1, but JSON readers differ: keep 53 bits.
        let seed = r.seed & ((1 << 53) - 1);
        let graph = substitute(&self.workflow, r.prompt, negative, seed);
        let reply = self
            .endpoint
            .post_json("/prompt", &json!({"prompt": graph, "client_id": "art"}))
            .map_err(|e| call_error("target", e))?;
        let v = ok_json("target", &reply)?;
        let id = str_at("target", &v, "/prompt_id")?.to_string();
        let deadline = Instant::now() + Duration::from_secs_f64(self.cfg.render_timeout_s);
        let entry = loop {
            let reply = self
                .endpoint
                .get(&format!("/history/{}", enc(&id)))
                .map_err(|e| call_error("target", e))?;
            let h = ok_json("target", &reply)?;
            if let Some(entry) = h.get(&id) {
                let status = entry.pointer("/status/status_str").and_then(Value::as_str);
                if status == Some("error") {
                    let mut msgs = entry
                        .pointer("/status/messages")
                        .map(Value::to_string)
                        .unwrap_or_default();
                    msgs.truncate(500);
                    return Err(RoleError::new(format!(
                        "target: ComfyUI workflow {id} failed: {msgs}"
                    )));
                }
                let done = entry
                    .pointer("/status/completed")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if done && entry.get("outputs").is_some() {
                    break entry.clone();
                }
            }
            if Instant::now() >= deadline {
                return Err(RoleError::new(format!(
                    "target: ComfyUI did not finish workflow {id} within {} s",
                    self.cfg.render_timeout_s
                )));
            }
            std::thread::sleep(Duration::from_millis(self.cfg.poll_interval_ms));
        };
        let image = entry
            .get("outputs")
            .and_then(Value::as_object)
            .and_then(|o| {
                o.values()
                    .filter_map(|n| n.get("images")?.as_array()?.first())
                    .next()
            })
            .ok_or_else(|| {
                RoleError::new(format!("target: ComfyUI workflow {id} produced no image"))
            })?;
        let field = |k: &str| image.get(k).and_then(Value::as_str).unwrap_or("");
        let path = format!(
            "/view?filename={}&subfolder={}&type={}",
            enc(field("filename")),
            enc(field("subfolder")),
            enc(if field("type").is_empty() {
                "output"
            } else {
                field("type")
            })
        );
        let reply = self
            .endpoint
            .get(&path)
            .map_err(|e| call_error("target", e))?;
        if !reply.is_success() {
            return Err(RoleError::new(format!(
                "target: HTTP {} fetching {}",
                reply.status, reply.url
            )));
        }
        let img =
            codec::decode_image(&reply.body).map_err(|e| RoleError::new(format!("target: {e}")))?;
        Ok(RenderOutput {
            outcome: RenderOutcome::Image(img),
            truncated_prompt: None,
            revised_prompt: None,
        })
    }
}

impl Target for Comfyui {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity::new("comfyui", self.cfg.workflow.display().to_string())
            .with_param("workflow", fingerprint(&self.workflow_text))
            .with_param(
                "negative_prompt",
                self.cfg.negative_prompt.clone().unwrap_or_default(),
            )
    }

    fn render(&self, batch: &[RenderRequest<'_>]) -> Vec<Result<RenderOutput, RoleError>> {
        self.endpoint.map_concurrent(batch, |r| self.render_one(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted_everywhere_and_seed_becomes_a_number() {
        let wf = json!({"3": {"inputs": {"seed": "{{seed}}", "text": "{{prompt}}, best",
                        "neg": ["{{negative_prompt}}"], "steps": 20}}});
        let out = substitute(&wf, "a \"cat\"", "ugly", 42);
        assert_eq!(out["3"]["inputs"]["seed"], json!(42));
        assert_eq!(out["3"]["inputs"]["text"], json!("a \"cat\", best"));
        assert_eq!(out["3"]["inputs"]["neg"][0], json!("ugly"));
        assert_eq!(out["3"]["inputs"]["steps"], json!(20));
        assert_eq!(enc("a b/ü"), "a%20b%2F%C3%BC");
    }
}
