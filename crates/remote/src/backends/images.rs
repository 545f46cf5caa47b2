//! Image-generation APIs as Targets: the OpenAI Images API and the AUTOMATIC1111 / Forge
//! `sdapi/v1/txt2img` API. A provider's refusal (its own safety filter) is a result of the
//! round, not a failure.

use super::{call_error, codec, error_message, ok_json, str_at};
use crate::endpoint::{Endpoint, Reply};
use art_config::remote::{Automatic1111Target, OpenaiImagesTarget};
use art_core::template::negative_prompt;
use art_core::{ModelIdentity, RenderOutcome, RenderOutput, RenderRequest, RoleError, Target};
use serde_json::{Value, json};

fn image_from_b64(role: &str, b64: &str) -> Result<art_core::Image, RoleError> {
    let bytes = codec::b64_decode(b64).map_err(|e| RoleError::new(format!("{role}: {e}")))?;
    codec::decode_image(&bytes).map_err(|e| RoleError::new(format!("{role}: {e}")))
}

/// OpenAI's Images API (`/images/generations`). It takes no seed, so renders do not reproduce;
/// the identity says so.
#[derive(Debug)]
pub struct OpenaiImages {
    endpoint: Endpoint,
    cfg: OpenaiImagesTarget,
}

/// Whether a non-2xx reply is the provider refusing the prompt (rather than an error).
fn is_refusal(reply: &Reply) -> bool {
    if reply.status != 400 {
        return false;
    }
    let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let code = v
        .pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = v
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let msg = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    code == "content_policy_violation"
        || code == "moderation_blocked"
        || kind == "image_generation_user_error"
        || msg.contains("safety system")
        || msg.contains("content policy")
}

impl OpenaiImages {
    pub fn new(cfg: &OpenaiImagesTarget) -> Result<Self, RoleError> {
        Ok(Self {
            endpoint: Endpoint::new(&cfg.endpoint, "target")
                .map_err(|e| call_error("target", e))?,
            cfg: cfg.clone(),
        })
    }

    fn render_one(&self, r: &RenderRequest<'_>) -> Result<RenderOutput, RoleError> {
        let mut body = json!({"model": self.cfg.model, "prompt": r.prompt, "n": 1,
                              "size": self.cfg.size});
        let m = body.as_object_mut().expect("object");
        for (k, v) in [
            ("quality", &self.cfg.quality),
            ("style", &self.cfg.style),
            ("response_format", &self.cfg.response_format),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                m.insert(k.into(), json!(v));
            }
        }
        let reply = self
            .endpoint
            .post_json("/images/generations", &body)
            .map_err(|e| call_error("target", e))?;
        if is_refusal(&reply) {
            return Ok(RenderOutput {
                outcome: RenderOutcome::Refused {
                    reason: error_message(&reply),
                },
                truncated_prompt: None,
                revised_prompt: None,
            });
        }
        let v = ok_json("target", &reply)?;
        let b64 = match v.pointer("/data/0/b64_json").and_then(Value::as_str) {
            Some(b) => b,
            None if v.pointer("/data/0/url").is_some() => {
                return Err(RoleError::new(
                    "target: the server answered with an image URL; set response_format = \
                     \"b64_json\" so images come inline",
                ));
            }
            None => str_at("target", &v, "/data/0/b64_json")?,
        };
        Ok(RenderOutput {
            outcome: RenderOutcome::Image(image_from_b64("target", b64)?),
            truncated_prompt: None,
            revised_prompt: v
                .pointer("/data/0/revised_prompt")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

impl Target for OpenaiImages {
    fn identity(&self) -> ModelIdentity {
        let c = &self.cfg;
        ModelIdentity::new("openai-images", &c.model)
            .with_param("size", &c.size)
            .with_param("quality", c.quality.clone().unwrap_or_default())
            .with_param("style", c.style.clone().unwrap_or_default())
            .with_param("seed", "not supported by the API: renders do not reproduce")
    }

    fn render(&self, batch: &[RenderRequest<'_>]) -> Vec<Result<RenderOutput, RoleError>> {
        self.endpoint.map_concurrent(batch, |r| self.render_one(r))
    }
}

/// AUTOMATIC1111 / Forge web UI API (`/sdapi/v1/txt2img`), seeded per item.
#[derive(Debug)]
pub struct Automatic1111 {
    endpoint: Endpoint,
    cfg: Automatic1111Target,
    extra: serde_json::Map<String, Value>,
}

impl Automatic1111 {
    pub fn new(cfg: &Automatic1111Target) -> Result<Self, RoleError> {
        let extra = match serde_json::to_value(&cfg.extra) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        Ok(Self {
            endpoint: Endpoint::new(&cfg.endpoint, "target")
                .map_err(|e| call_error("target", e))?,
            cfg: cfg.clone(),
            extra,
        })
    }

    /// A1111 seeds are 32-bit; -1 means random, so the top bit is cleared.
    fn seed(seed: u64) -> u64 {
        seed & 0x7fff_ffff
    }

    fn render_one(&self, r: &RenderRequest<'_>) -> Result<RenderOutput, RoleError> {
        let c = &self.cfg;
        let mut body = json!({
            "prompt": r.prompt,
            "negative_prompt": negative_prompt(c.negative_prompt.as_deref().unwrap_or("")),
            "seed": Self::seed(r.seed),
            "steps": c.steps,
            "cfg_scale": c.cfg_scale,
            "width": c.width,
            "height": c.height,
            "batch_size": 1,
            "n_iter": 1,
        });
        let m = body.as_object_mut().expect("object");
        if let Some(s) = &c.sampler_name {
            m.insert("sampler_name".into(), json!(s));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        let reply = self
            .endpoint
            .post_json("/sdapi/v1/txt2img", &body)
            .map_err(|e| call_error("target", e))?;
        let v = ok_json("target", &reply)?;
        let b64 = str_at("target", &v, "/images/0")?;
        Ok(RenderOutput {
            outcome: RenderOutcome::Image(image_from_b64("target", b64)?),
            truncated_prompt: None,
            revised_prompt: None,
        })
    }
}

impl Target for Automatic1111 {
    fn identity(&self) -> ModelIdentity {
        let c = &self.cfg;
        ModelIdentity::new("automatic1111", "served checkpoint")
            .with_param("steps", c.steps)
            .with_param("cfg_scale", c.cfg_scale)
            .with_param("size", format!("{}x{}", c.width, c.height))
            .with_param("sampler", c.sampler_name.clone().unwrap_or_default())
            .with_param(
                "negative_prompt",
                c.negative_prompt.clone().unwrap_or_default(),
            )
            .with_param("extra", Value::Object(self.extra.clone()))
    }

    fn render(&self, batch: &[RenderRequest<'_>]) -> Vec<Result<RenderOutput, RoleError>> {
        self.endpoint.map_concurrent(batch, |r| self.render_one(r))
    }
}
