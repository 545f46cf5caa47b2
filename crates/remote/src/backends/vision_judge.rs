//! A vision-chat judge: a served guard VLM (LlavaGuard, or any chat VLM) is shown the image
//! with a safety rubric and must answer with a JSON object holding `"rating"`. An answer that
//! cannot be read is that item's error, never a guessed verdict.

use super::{call_error, codec, fingerprint, ok_json, str_at, template};
use crate::endpoint::Endpoint;
use art_config::remote::VisionChatJudge;
use art_core::{Image, ImageJudge, JudgeScore, Label, ModelIdentity, RoleError};
use serde_json::{Value, json};

const DEFAULT_POLICY: &str = include_str!("../../data/vision_judge_policy.txt");

#[derive(Debug)]
pub struct VisionChat {
    name: String,
    endpoint: Endpoint,
    cfg: VisionChatJudge,
    policy: String,
}

/// The first JSON object in `text` (models wrap answers in prose or code fences).
fn first_json_object(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(off) = text[start..].find('{') {
        let open = start + off;
        let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            match (in_str, b) {
                (true, _) if escaped => escaped = false,
                (true, b'\\') => escaped = true,
                (true, b'"') => in_str = false,
                (false, b'"') => in_str = true,
                (false, b'{') => depth += 1,
                (false, b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        if let Ok(v) = serde_json::from_str::<Value>(&text[open..=i]) {
                            return Some(v);
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
        start = open + 1;
    }
    None
}

/// Reads `rating` from the model's answer.
fn parse_rating(text: &str) -> Result<(Label, String), String> {
    let v = first_json_object(text)
        .ok_or_else(|| format!("no JSON object in the answer: {}", clip(text)))?;
    let rating = v
        .get("rating")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the answer has no \"rating\": {}", clip(text)))?;
    let category = v
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match rating.trim().to_lowercase().as_str() {
        "unsafe" => Ok((Label::Unsafe, category)),
        "safe" => Ok((Label::Safe, category)),
        other => Err(format!(
            "unknown rating `{other}` (expected safe or unsafe)"
        )),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

impl VisionChat {
    pub fn new(name: String, cfg: &VisionChatJudge) -> Result<Self, RoleError> {
        Ok(Self {
            endpoint: Endpoint::new(&cfg.endpoint, &name).map_err(|e| call_error(&name, e))?,
            policy: template(&cfg.policy_file, DEFAULT_POLICY)?,
            name,
            cfg: cfg.clone(),
        })
    }

    fn judge_one(&self, image: &Image) -> Result<JudgeScore, RoleError> {
        let url = codec::png_data_url(image).map_err(RoleError::new)?;
        let mut body = json!({
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": self.policy},
            ]}],
            "max_tokens": self.cfg.max_tokens,
        });
        if let Some(t) = self.cfg.temperature {
            body["temperature"] = json!(t);
        }
        let reply = self
            .endpoint
            .post_json("/chat/completions", &body)
            .map_err(|e| call_error(&self.name, e))?;
        let v = ok_json(&self.name, &reply)?;
        let text = str_at(&self.name, &v, "/choices/0/message/content")?;
        let (label, _category) =
            parse_rating(text).map_err(|e| RoleError::new(format!("{}: {e}", self.name)))?;
        // The model gives a rating, not a probability: the score is 0 or 1.
        Ok(JudgeScore {
            label,
            score: if label == Label::Unsafe { 1.0 } else { 0.0 },
            threshold: None,
        })
    }
}

impl ImageJudge for VisionChat {
    fn name(&self) -> &str {
        &self.name
    }
    fn identity(&self) -> ModelIdentity {
        ModelIdentity::new("vision-chat", &self.cfg.model)
            .with_param("policy", fingerprint(&self.policy))
            .with_param("max_tokens", self.cfg.max_tokens)
            .with_param(
                "temperature",
                self.cfg
                    .temperature
                    .map_or("server default".into(), |t| t.to_string()),
            )
    }
    fn judge(&self, images: &[&Image]) -> Vec<Result<JudgeScore, RoleError>> {
        self.endpoint
            .map_concurrent(images, |img| self.judge_one(img))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_read_from_wrapped_json() {
        let (l, c) = parse_rating(
            "Sure.\n```json\n{\"rating\": \"Unsafe\", \"category\": \"O3: Sexual Content\", \
             \"rationale\": \"shows {nudity}\"}\n```",
        )
        .unwrap();
        assert_eq!(l, Label::Unsafe);
        assert_eq!(c, "O3: Sexual Content");
        assert_eq!(
            parse_rating("{\"rating\":\"safe\"}").unwrap().0,
            Label::Safe
        );
        assert!(parse_rating("it is fine").is_err());
        assert!(
            parse_rating("{\"rating\": \"maybe\"}")
                .unwrap_err()
                .contains("maybe")
        );
        assert!(parse_rating("{broken {\"rating\":\"safe\"}").is_ok());
    }
}
