//! A model's own chat template (`tokenizer_config.json` `chat_template`, Jinja), rendered as
//! transformers' `apply_chat_template(tokenize=False)` does: the messages, `bos_token` /
//! `eos_token`, `add_generation_prompt`, `raise_exception`, and Python's string methods
//! (`.strip()`, `.title()`...) that Hugging Face templates call. Rendering the shipped
//! template rather than re-typing it keeps a prompt format exact when the model's maintainers
//! change it.

use crate::ModelError;
use art_nn::invalid;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A loaded chat template with the special tokens it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
    /// Where it came from (named in errors).
    path: PathBuf,
}

/// A special token of `tokenizer_config.json`: a string or an `AddedToken` object.
fn token(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    /// The template of a model folder: `chat_template.jinja` (transformers 5 writes it
    /// there), else `tokenizer_config.json`'s `chat_template` (a string, or named templates
    /// of which `default` is taken).
    pub fn from_folder(dir: &Path) -> Result<Self, ModelError> {
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: Value = match std::fs::read(&cfg_path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| invalid(&cfg_path, e.to_string()))?,
            Err(_) => Value::Null,
        };
        let jinja = dir.join("chat_template.jinja");
        let (source, path) = if jinja.is_file() {
            let s = std::fs::read_to_string(&jinja).map_err(|e| invalid(&jinja, e.to_string()))?;
            (s, jinja)
        } else {
            let s = match cfg.get("chat_template") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(named)) => named
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template").and_then(Value::as_str))
                    .map(str::to_string)
                    .ok_or_else(|| invalid(&cfg_path, "`chat_template` has no `default` entry"))?,
                _ => {
                    return Err(ModelError::Missing {
                        path: cfg_path,
                        what: "a chat template (`chat_template` in tokenizer_config.json, or chat_template.jinja)".into(),
                    });
                }
            };
            (s, cfg_path)
        };
        let t = Self {
            source,
            bos_token: token(cfg.get("bos_token")),
            eos_token: token(cfg.get("eos_token")),
            path,
        };
        t.environment()?;
        Ok(t)
    }

    /// A template given as text (`path` names it in errors).
    pub fn from_source(source: &str, bos_token: &str, eos_token: &str, path: &Path) -> Self {
        Self {
            source: source.into(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            path: path.to_path_buf(),
        }
    }

    fn environment(&self) -> Result<minijinja::Environment<'_>, ModelError> {
        let mut env = minijinja::Environment::new();
        // transformers renders with jinja2's `trim_blocks` and `lstrip_blocks`.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template("chat", &self.source)
            .map_err(|e| invalid(&self.path, format!("the chat template does not parse: {e}")))?;
        Ok(env)
    }

    /// The prompt text for `messages`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ModelError> {
        let env = self.environment()?;
        let t = env.get_template("chat").expect("added above");
        t.render(minijinja::context! {
            messages => messages,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            add_generation_prompt => add_generation_prompt,
        })
        .map_err(|e| {
            invalid(
                &self.path,
                format!("rendering the chat template failed: {e}"),
            )
        })
    }
}
