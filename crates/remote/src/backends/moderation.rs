//! The OpenAI moderation endpoint (`/moderations`) as a prompt judge and an image judge.

use super::{call_error, codec, ok_json};
use crate::endpoint::Endpoint;
use art_config::remote::OpenaiModerationJudge;
use art_core::{Image, ImageJudge, JudgeScore, Label, ModelIdentity, PromptJudge, RoleError};
use serde_json::{Value, json};

/// One judge object serves both subjects; the name is the config's.
#[derive(Debug)]
pub struct Moderation {
    name: String,
    endpoint: Endpoint,
    cfg: OpenaiModerationJudge,
}

impl Moderation {
    pub fn new(name: String, cfg: &OpenaiModerationJudge) -> Result<Self, RoleError> {
        Ok(Self {
            endpoint: Endpoint::new(&cfg.endpoint, &name).map_err(|e| call_error(&name, e))?,
            name,
            cfg: cfg.clone(),
        })
    }

    fn counted(&self, category: &str) -> bool {
        self.cfg.categories.is_empty() || self.cfg.categories.iter().any(|c| c == category)
    }

    /// Score = the highest counted category score. Label: the threshold when one is set,
    /// else the provider's decision for the counted categories.
    fn score(&self, v: &Value) -> Result<JudgeScore, RoleError> {
        let result = v
            .pointer("/results/0")
            .ok_or_else(|| RoleError::new(format!("{}: the answer has no results", self.name)))?;
        let scores = result
            .get("category_scores")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                RoleError::new(format!("{}: the answer has no category_scores", self.name))
            })?;
        // Every counted score must be a number, and every configured category must be in
        // the answer: one left out, or sent as null, would otherwise count as 0 ("safe").
        let mut score = 0.0f64;
        for (k, v) in scores.iter().filter(|(k, _)| self.counted(k)) {
            let x = v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                RoleError::new(format!(
                    "{}: category_scores.{k} is {v}, not a finite number",
                    self.name
                ))
            })?;
            score = score.max(x);
        }
        if let Some(c) = self
            .cfg
            .categories
            .iter()
            .find(|c| !scores.contains_key(*c))
        {
            return Err(RoleError::new(format!(
                "{}: the answer has no score for the category `{c}` (it scores {})",
                self.name,
                scores.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let unsafe_ = match self.cfg.threshold {
            Some(t) => score >= t,
            None => {
                let flagged = result.get("flagged").and_then(Value::as_bool) == Some(true);
                let cats = result.get("categories").and_then(Value::as_object);
                flagged
                    && (self.cfg.categories.is_empty()
                        || cats.is_some_and(|c| {
                            c.iter()
                                .any(|(k, on)| self.counted(k) && on.as_bool() == Some(true))
                        }))
            }
        };
        Ok(JudgeScore {
            label: if unsafe_ { Label::Unsafe } else { Label::Safe },
            score,
            threshold: self.cfg.threshold,
        })
    }

    fn judge_input(&self, input: Value) -> Result<JudgeScore, RoleError> {
        let body = json!({"model": self.cfg.model, "input": input});
        let reply = self
            .endpoint
            .post_json("/moderations", &body)
            .map_err(|e| call_error(&self.name, e))?;
        self.score(&ok_json(&self.name, &reply)?)
    }

    fn id(&self) -> ModelIdentity {
        ModelIdentity::new("openai-moderation", &self.cfg.model)
            .with_param("categories", self.cfg.categories.join("|"))
            .with_param(
                "threshold",
                self.cfg
                    .threshold
                    .map_or("provider's flag".into(), |t| t.to_string()),
            )
    }
}

impl PromptJudge for Moderation {
    fn name(&self) -> &str {
        &self.name
    }
    fn identity(&self) -> ModelIdentity {
        self.id()
    }
    fn judge(&self, prompts: &[&str]) -> Vec<Result<JudgeScore, RoleError>> {
        self.endpoint
            .map_concurrent(prompts, |p| self.judge_input(json!(p)))
    }
}

impl ImageJudge for Moderation {
    fn name(&self) -> &str {
        &self.name
    }
    fn identity(&self) -> ModelIdentity {
        self.id()
    }
    fn judge(&self, images: &[&Image]) -> Vec<Result<JudgeScore, RoleError>> {
        self.endpoint.map_concurrent(images, |img| {
            let url = codec::png_data_url(img).map_err(RoleError::new)?;
            self.judge_input(json!([{"type": "image_url", "image_url": {"url": url}}]))
        })
    }
}
