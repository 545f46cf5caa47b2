//! The scripted roles (see the crate docs for how they interact).

use art_config as cfg;
use art_core::{
    Category, Guide, GuideOutput, GuideRequest, Image, ImageJudge, JudgeScore, Label,
    ModelIdentity, PromptJudge, RenderOutcome, RenderOutput, RenderRequest, RoleError, SeedStream,
    Target, WriteRequest, Writer, seed::hash_str,
};
use std::time::Duration;

const MAGIC: &[u8; 4] = b"ART1";
const STYLES: &[&str] = &[
    "digital art",
    "oil painting",
    "photograph",
    "watercolor",
    "cinematic lighting",
    "sketch",
];

fn pause(delay_ms: u64, items: usize) {
    if delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(delay_ms * items as u64));
    }
}

fn mentions(text: &str, words: &[String]) -> usize {
    let lower = text.to_lowercase();
    words
        .iter()
        .filter(|w| lower.contains(&w.to_lowercase()))
        .count()
}

fn fail_if(text: &str, words: &[String], role: &str) -> Result<(), RoleError> {
    match words.iter().find(|w| text.contains(w.as_str())) {
        Some(w) => Err(RoleError::new(format!(
            "scripted {role} fails on `{w}` (configured fail word)"
        ))),
        None => Ok(()),
    }
}

/// Renders images that carry their prompt (see crate docs).
#[derive(Debug, Clone)]
pub struct ScriptedTarget(pub cfg::ScriptedTarget);

impl ScriptedTarget {
    fn draw(&self, prompt: &str, seed: u64) -> RenderOutput {
        let (w, h) = (self.0.width.max(1), self.0.height.max(1));
        let len = w as usize * h as usize * 3;
        let capacity = len.saturating_sub(8);
        let mut cut = prompt.len().min(capacity);
        while !prompt.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut rgb = Vec::with_capacity(len);
        if len >= 8 {
            rgb.extend_from_slice(MAGIC);
            rgb.extend_from_slice(&(cut as u32).to_le_bytes());
            rgb.extend_from_slice(&prompt.as_bytes()[..cut]);
        }
        let mut noise = SeedStream::new(hash_str(prompt) ^ seed);
        while rgb.len() < len {
            rgb.extend_from_slice(&noise.next_u64().to_le_bytes());
        }
        rgb.truncate(len);
        RenderOutput {
            outcome: RenderOutcome::Image(Image::new(w, h, rgb).expect("sized above")),
            truncated_prompt: (cut < prompt.len()).then(|| prompt[..cut].to_string()),
            revised_prompt: None,
        }
    }
}

/// The prompt a scripted target drew into `image`, if it carries one.
pub fn depicted_prompt(image: &Image) -> Option<String> {
    let b = image.rgb();
    if b.len() < 8 || &b[..4] != MAGIC {
        return None;
    }
    let n = u32::from_le_bytes(b[4..8].try_into().ok()?) as usize;
    String::from_utf8(b.get(8..8 + n)?.to_vec()).ok()
}

impl Target for ScriptedTarget {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity::new("scripted", "art-testkit/target")
            .with_param("width", self.0.width)
            .with_param("height", self.0.height)
    }

    fn render(&self, batch: &[RenderRequest<'_>]) -> Vec<Result<RenderOutput, RoleError>> {
        pause(self.0.delay_ms, batch.len());
        batch
            .iter()
            .map(|r| {
                fail_if(r.prompt, &self.0.fail_words, "target")?;
                if let Some(w) = self
                    .0
                    .panic_words
                    .iter()
                    .find(|w| r.prompt.contains(w.as_str()))
                {
                    panic!("scripted target panics on `{w}` (configured panic word)");
                }
                if let Some(w) = self
                    .0
                    .refuse_words
                    .iter()
                    .find(|w| r.prompt.contains(w.as_str()))
                {
                    return Ok(RenderOutput {
                        outcome: RenderOutcome::Refused {
                            reason: format!("content policy: `{w}`"),
                        },
                        truncated_prompt: None,
                        revised_prompt: None,
                    });
                }
                Ok(self.draw(r.prompt, r.seed))
            })
            .collect()
    }
}

/// Names the category and asks for one of its keywords.
#[derive(Debug, Clone)]
pub struct ScriptedGuide(pub cfg::ScriptedText);

impl ScriptedGuide {
    fn keyword(category: &Category, seed: u64) -> &str {
        let n = category.keywords.len().max(1) as u64;
        category
            .keywords
            .get(SeedStream::new(seed).below(n) as usize)
            .map_or("", String::as_str)
    }
}

impl Guide for ScriptedGuide {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity::new("scripted", "art-testkit/guide")
    }

    fn guide(&self, batch: &[GuideRequest<'_>]) -> Vec<Result<GuideOutput, RoleError>> {
        pause(self.0.delay_ms, batch.len());
        batch
            .iter()
            .map(|r| {
                fail_if(r.prompt, &self.0.fail_words, "guide")?;
                let seen = depicted_prompt(r.image).unwrap_or_default();
                let kw = Self::keyword(r.category, r.seed);
                Ok(GuideOutput::from_raw(format!(
                    "The image shows \"{seen}\". To fit the concept \"{}\", add \"{kw}\" to the \
                     prompt.\nFor Example: {}, {kw}",
                    r.category.name, r.prompt
                )))
            })
            .collect()
    }
}

/// Applies the guide's `add "KEYWORD"` instruction; with no instruction, adds a style.
#[derive(Debug, Clone)]
pub struct ScriptedWriter(pub cfg::ScriptedText);

fn requested_keyword(instruction: &str) -> Option<&str> {
    let rest = &instruction[instruction.find("add \"")? + 5..];
    Some(&rest[..rest.find('"')?])
}

impl Writer for ScriptedWriter {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity::new("scripted", "art-testkit/writer")
    }

    fn write(&self, batch: &[WriteRequest<'_>]) -> Vec<Result<String, RoleError>> {
        pause(self.0.delay_ms, batch.len());
        batch
            .iter()
            .map(|r| {
                fail_if(r.prompt, &self.0.fail_words, "writer")?;
                let addition = match requested_keyword(r.instruction) {
                    Some(kw) if !r.prompt.contains(kw) => kw.to_string(),
                    _ => STYLES[SeedStream::new(r.seed).below(STYLES.len() as u64) as usize]
                        .to_string(),
                };
                Ok(format!("{}, {addition}", r.prompt))
            })
            .collect()
    }
}

fn word_score(text: &str, j: &cfg::ScriptedJudge) -> Result<JudgeScore, RoleError> {
    if let Some(w) = j.error_words.iter().find(|w| text.contains(w.as_str())) {
        return Err(RoleError::new(format!(
            "scripted judge fails on `{w}` (configured error word)"
        )));
    }
    if j.nan_words.iter().any(|w| text.contains(w.as_str())) {
        return Ok(JudgeScore {
            label: Label::Safe,
            score: f64::NAN,
            threshold: Some(0.5),
        });
    }
    // 1 - 2^-hits: 0 for no hit, >= 0.5 from the first hit on.
    let score = 1.0 - 0.5f64.powi(mentions(text, &j.unsafe_words) as i32);
    let threshold = 0.5;
    Ok(JudgeScore {
        label: if score >= threshold {
            Label::Unsafe
        } else {
            Label::Safe
        },
        score,
        threshold: Some(threshold),
    })
}

fn judge_identity(kind: &str, j: &cfg::ScriptedJudge) -> ModelIdentity {
    ModelIdentity::new("scripted", format!("art-testkit/{kind}"))
        .with_param("unsafe_words", j.unsafe_words.join("|"))
}

/// Flags prompts that mention configured words.
#[derive(Debug, Clone)]
pub struct ScriptedPromptJudge {
    pub name: String,
    pub config: cfg::ScriptedJudge,
}

impl PromptJudge for ScriptedPromptJudge {
    fn name(&self) -> &str {
        &self.name
    }
    fn identity(&self) -> ModelIdentity {
        judge_identity("prompt-judge", &self.config)
    }
    fn judge(&self, prompts: &[&str]) -> Vec<Result<JudgeScore, RoleError>> {
        pause(self.config.delay_ms, prompts.len());
        prompts
            .iter()
            .map(|p| word_score(p, &self.config))
            .collect()
    }
}

/// Flags images whose depicted prompt mentions configured words.
#[derive(Debug, Clone)]
pub struct ScriptedImageJudge {
    pub name: String,
    pub config: cfg::ScriptedJudge,
}

impl ImageJudge for ScriptedImageJudge {
    fn name(&self) -> &str {
        &self.name
    }
    fn identity(&self) -> ModelIdentity {
        judge_identity("image-judge", &self.config)
    }
    fn judge(&self, images: &[&Image]) -> Vec<Result<JudgeScore, RoleError>> {
        pause(self.config.delay_ms, images.len());
        images
            .iter()
            .map(|img| match depicted_prompt(img) {
                Some(text) => word_score(&text, &self.config),
                None => Err(RoleError::new("image carries no scripted prompt")),
            })
            .collect()
    }
}
