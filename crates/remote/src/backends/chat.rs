//! Writer and Guide over OpenAI-compatible chat (and completion) APIs: vLLM, TGI, SGLang,
//! Ollama, llama.cpp's server, hosted APIs. The server applies the model's chat template; the
//! text inside the message comes from the same template data files as the local roles.

use super::{call_error, codec, fingerprint, ok_json, server_seed, str_at, template};
use crate::endpoint::Endpoint;
use art_config::remote::{ChatApi, OpenaiChatGuide, OpenaiChatWriter, Sampling};
use art_core::template::{self as tpl, GUIDE_SYSTEM, GUIDE_USER, WRITER_ALPACA};
use art_core::{Guide, GuideOutput, GuideRequest, ModelIdentity, RoleError, WriteRequest, Writer};
use serde_json::{Value, json};

/// Adds the configured sampling settings (and the item's seed) to a request body.
fn add_sampling(body: &mut Value, s: &Sampling, seed: u64) {
    let m = body.as_object_mut().expect("request bodies are objects");
    if let Some(t) = s.temperature {
        m.insert("temperature".into(), json!(t));
    }
    if let Some(p) = s.top_p {
        m.insert("top_p".into(), json!(p));
    }
    if let Some(n) = s.max_tokens {
        m.insert("max_tokens".into(), json!(n));
    }
    if let Some(n) = s.n {
        m.insert("n".into(), json!(n));
    }
    if !s.stop.is_empty() {
        m.insert("stop".into(), json!(s.stop));
    }
    if s.send_seed {
        m.insert("seed".into(), json!(server_seed(seed)));
    }
    if let Ok(Value::Object(extra)) = serde_json::to_value(&s.extra) {
        m.extend(extra);
    }
}

fn sampling_params(id: ModelIdentity, s: &Sampling) -> ModelIdentity {
    let mut id = id;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "server default".into());
    id = id
        .with_param("temperature", opt(s.temperature.map(|v| v.to_string())))
        .with_param("top_p", opt(s.top_p.map(|v| v.to_string())))
        .with_param("max_tokens", opt(s.max_tokens.map(|v| v.to_string())))
        .with_param("n", opt(s.n.map(|v| v.to_string())))
        .with_param("stop", s.stop.join("|"))
        .with_param("send_seed", s.send_seed)
        .with_param("extra", serde_json::to_value(&s.extra).unwrap_or_default());
    id
}

/// The text of the first choice; a choice the server's filter stopped is an error, not text.
fn first_choice<'a>(role: &str, v: &'a Value, chat: bool) -> Result<&'a str, RoleError> {
    if v.pointer("/choices/0/finish_reason")
        .and_then(Value::as_str)
        == Some("content_filter")
    {
        return Err(RoleError::new(format!(
            "{role}: the server's content filter stopped the answer"
        )));
    }
    let pointer = if chat {
        "/choices/0/message/content"
    } else {
        "/choices/0/text"
    };
    str_at(role, v, pointer)
}

/// The Writer over `/chat/completions` or `/completions`.
#[derive(Debug)]
pub struct ChatWriter {
    endpoint: Endpoint,
    cfg: OpenaiChatWriter,
    template: String,
}

impl ChatWriter {
    pub fn new(cfg: &OpenaiChatWriter) -> Result<Self, RoleError> {
        Ok(Self {
            endpoint: Endpoint::new(&cfg.endpoint, "writer")
                .map_err(|e| call_error("writer", e))?,
            template: template(&cfg.template_file, WRITER_ALPACA)?,
            cfg: cfg.clone(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn write_one(&self, r: &WriteRequest<'_>) -> Result<String, RoleError> {
        let text = tpl::writer_text(&self.template, r);
        let chat = self.cfg.api == ChatApi::Chat;
        let mut body = if chat {
            let mut messages = Vec::new();
            if let Some(s) = &self.cfg.system {
                messages.push(json!({"role": "system", "content": s}));
            }
            messages.push(json!({"role": "user", "content": text}));
            json!({"model": self.cfg.model, "messages": messages})
        } else {
            json!({"model": self.cfg.model, "prompt": text})
        };
        add_sampling(&mut body, &self.cfg.sampling, r.seed);
        let path = if chat {
            "/chat/completions"
        } else {
            "/completions"
        };
        let reply = self
            .endpoint
            .post_json(path, &body)
            .map_err(|e| call_error("writer", e))?;
        let v = ok_json("writer", &reply)?;
        let answer = tpl::writer_answer(first_choice("writer", &v, chat)?);
        if answer.is_empty() {
            return Err(RoleError::new(
                "writer: the server returned an empty prompt",
            ));
        }
        Ok(answer.to_string())
    }
}

impl Writer for ChatWriter {
    fn identity(&self) -> ModelIdentity {
        let id = ModelIdentity::new("openai-chat", &self.cfg.model)
            .with_param("api", format!("{:?}", self.cfg.api).to_lowercase())
            .with_param("template", fingerprint(&self.template))
            .with_param("system", self.cfg.system.clone().unwrap_or_default());
        sampling_params(id, &self.cfg.sampling)
    }

    fn write(&self, batch: &[WriteRequest<'_>]) -> Vec<Result<String, RoleError>> {
        self.endpoint.map_concurrent(batch, |r| self.write_one(r))
    }
}

/// The Guide over `/chat/completions` with the image as a base64 `image_url` part.
#[derive(Debug)]
pub struct ChatGuide {
    endpoint: Endpoint,
    cfg: OpenaiChatGuide,
    template: String,
}

impl ChatGuide {
    pub fn new(cfg: &OpenaiChatGuide) -> Result<Self, RoleError> {
        Ok(Self {
            endpoint: Endpoint::new(&cfg.endpoint, "guide").map_err(|e| call_error("guide", e))?,
            template: template(&cfg.template_file, GUIDE_USER)?,
            cfg: cfg.clone(),
        })
    }

    fn system(&self) -> &str {
        self.cfg.system.as_deref().unwrap_or(GUIDE_SYSTEM)
    }

    fn guide_one(&self, r: &GuideRequest<'_>) -> Result<GuideOutput, RoleError> {
        let text = tpl::guide_text(&self.template, r.prompt, &r.category.name, r.keywords);
        let image = codec::png_data_url(r.image).map_err(RoleError::new)?;
        let mut messages = Vec::new();
        if !self.system().is_empty() {
            messages.push(json!({"role": "system", "content": self.system()}));
        }
        // The image comes first, as `<image>` does in the LLaVA conversation.
        messages.push(json!({"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}},
            {"type": "text", "text": text},
        ]}));
        let mut body = json!({"model": self.cfg.model, "messages": messages});
        add_sampling(&mut body, &self.cfg.sampling, r.seed);
        let reply = self
            .endpoint
            .post_json("/chat/completions", &body)
            .map_err(|e| call_error("guide", e))?;
        let v = ok_json("guide", &reply)?;
        Ok(GuideOutput::from_raw(first_choice("guide", &v, true)?))
    }
}

impl Guide for ChatGuide {
    fn identity(&self) -> ModelIdentity {
        let id = ModelIdentity::new("openai-chat", &self.cfg.model)
            .with_param("template", fingerprint(&self.template))
            .with_param("system", self.system());
        sampling_params(id, &self.cfg.sampling)
    }

    fn guide(&self, batch: &[GuideRequest<'_>]) -> Vec<Result<GuideOutput, RoleError>> {
        self.endpoint.map_concurrent(batch, |r| self.guide_one(r))
    }
}
