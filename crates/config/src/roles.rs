//! One serde-tagged section per role (`kind = "..."`).
//!
//! Every kind gets a strict struct (unknown keys are errors). [`Availability`] says whether a
//! kind can run in this build: every kind listed here is built, except the testkit's
//! fixtures. A kind is added here with its implementation.
//!
//! `scripted` kinds are the testkit's deterministic fixtures: they parse everywhere, but only an
//! `art` built with the `testkit` feature can run them. They are not a user-facing mode.

use crate::judges::{
    ClassifierJudge, LlamaGuardJudge, MultiHeadedJudge, NudenetJudge, OpenNsfwJudge, Q16Judge,
    SdSafetyCheckerJudge,
};
use crate::local::{LlamaWriter, LlavaNextGuide, StableDiffusionTarget};
use crate::remote::{
    Automatic1111Target, ComfyuiTarget, OpenaiChatGuide, OpenaiChatWriter, OpenaiImagesTarget,
    OpenaiModerationJudge, VisionChatJudge,
};
use serde::{Deserialize, Serialize};

fn default_image_side() -> u32 {
    64
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedTarget {
    #[serde(default = "default_image_side")]
    pub width: u32,
    #[serde(default = "default_image_side")]
    pub height: u32,
    /// Simulated work per item, to give tests time to interrupt a campaign.
    #[serde(default)]
    pub delay_ms: u64,
    /// Prompts containing one of these are refused like a provider's filter would.
    #[serde(default)]
    pub refuse_words: Vec<String>,
    /// Prompts containing one of these fail with a role error.
    #[serde(default)]
    pub fail_words: Vec<String>,
    /// Prompts containing one of these make the target panic (the engine must survive it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panic_words: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedText {
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub fail_words: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedJudge {
    /// Unique judge name; defaults to the kind.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Items mentioning one of these are labelled unsafe.
    #[serde(default)]
    pub unsafe_words: Vec<String>,
    /// Items mentioning one of these make the judge fail for that item.
    #[serde(default)]
    pub error_words: Vec<String>,
    /// Items mentioning one of these get a NaN score labelled safe: a judge whose arithmetic
    /// broke, which the engine must record as an error, never as a verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nan_words: Vec<String>,
    #[serde(default)]
    pub delay_ms: u64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TargetConfig {
    StableDiffusion(Box<StableDiffusionTarget>),
    OpenaiImages(Box<OpenaiImagesTarget>),
    Automatic1111(Box<Automatic1111Target>),
    Comfyui(Box<ComfyuiTarget>),
    Scripted(ScriptedTarget),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WriterConfig {
    Llama(Box<LlamaWriter>),
    OpenaiChat(Box<OpenaiChatWriter>),
    Scripted(ScriptedText),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GuideConfig {
    LlavaNext(Box<LlavaNextGuide>),
    OpenaiChat(Box<OpenaiChatGuide>),
    Scripted(ScriptedText),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PromptJudgeConfig {
    TextClassifier(Box<ClassifierJudge>),
    LlamaGuard(Box<LlamaGuardJudge>),
    OpenaiModeration(Box<OpenaiModerationJudge>),
    Scripted(ScriptedJudge),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ImageJudgeConfig {
    Q16(Box<Q16Judge>),
    MultiHeaded(Box<MultiHeadedJudge>),
    SdSafetyChecker(Box<SdSafetyCheckerJudge>),
    ImageClassifier(Box<ClassifierJudge>),
    Nudenet(Box<NudenetJudge>),
    OpenNsfw(Box<OpenNsfwJudge>),
    OpenaiModeration(Box<OpenaiModerationJudge>),
    VisionChat(Box<VisionChatJudge>),
    Scripted(ScriptedJudge),
}

/// Whether `art` can build a role of a kind today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Implemented in every build.
    Built,
    /// A test fixture: only in builds with the `testkit` feature.
    TestFixture,
}

/// A role section's kind and whether it can run, plus its judge name and enabled flag where the
/// role is a judge: the engine-facing view of any role config.
pub trait RoleKind {
    fn kind(&self) -> &'static str;
    fn availability(&self) -> Availability;
}

/// Judge sections also carry a unique name and an enabled flag.
pub trait JudgeSection: RoleKind {
    fn name(&self) -> String;
    fn enabled(&self) -> bool;
}

impl RoleKind for TargetConfig {
    fn kind(&self) -> &'static str {
        match self {
            Self::StableDiffusion(_) => "stable-diffusion",
            Self::OpenaiImages(_) => "openai-images",
            Self::Automatic1111(_) => "automatic1111",
            Self::Comfyui(_) => "comfyui",
            Self::Scripted(_) => "scripted",
        }
    }
    fn availability(&self) -> Availability {
        match self {
            Self::StableDiffusion(_)
            | Self::OpenaiImages(_)
            | Self::Automatic1111(_)
            | Self::Comfyui(_) => Availability::Built,
            Self::Scripted(_) => Availability::TestFixture,
        }
    }
}

impl RoleKind for WriterConfig {
    fn kind(&self) -> &'static str {
        match self {
            Self::Llama(_) => "llama",
            Self::OpenaiChat(_) => "openai-chat",
            Self::Scripted(_) => "scripted",
        }
    }
    fn availability(&self) -> Availability {
        match self {
            Self::Llama(_) | Self::OpenaiChat(_) => Availability::Built,
            Self::Scripted(_) => Availability::TestFixture,
        }
    }
}

impl RoleKind for GuideConfig {
    fn kind(&self) -> &'static str {
        match self {
            Self::LlavaNext(_) => "llava-next",
            Self::OpenaiChat(_) => "openai-chat",
            Self::Scripted(_) => "scripted",
        }
    }
    fn availability(&self) -> Availability {
        match self {
            Self::LlavaNext(_) | Self::OpenaiChat(_) => Availability::Built,
            Self::Scripted(_) => Availability::TestFixture,
        }
    }
}

impl RoleKind for PromptJudgeConfig {
    fn kind(&self) -> &'static str {
        match self {
            Self::TextClassifier(_) => "text-classifier",
            Self::LlamaGuard(_) => "llama-guard",
            Self::OpenaiModeration(_) => "openai-moderation",
            Self::Scripted(_) => "scripted",
        }
    }
    fn availability(&self) -> Availability {
        match self {
            Self::TextClassifier(_) | Self::LlamaGuard(_) | Self::OpenaiModeration(_) => {
                Availability::Built
            }
            Self::Scripted(_) => Availability::TestFixture,
        }
    }
}

impl JudgeSection for PromptJudgeConfig {
    fn name(&self) -> String {
        match self {
            Self::TextClassifier(t) => t.name.clone().unwrap_or_else(|| self.kind().to_string()),
            Self::LlamaGuard(g) => g.name.clone().unwrap_or_else(|| self.kind().to_string()),
            Self::OpenaiModeration(m) => m.name.clone().unwrap_or_else(|| self.kind().to_string()),
            Self::Scripted(s) => s.name.clone().unwrap_or_else(|| self.kind().to_string()),
        }
    }
    fn enabled(&self) -> bool {
        match self {
            Self::TextClassifier(t) => t.enabled,
            Self::LlamaGuard(g) => g.enabled,
            Self::OpenaiModeration(m) => m.enabled,
            Self::Scripted(s) => s.enabled,
        }
    }
}

impl RoleKind for ImageJudgeConfig {
    fn kind(&self) -> &'static str {
        match self {
            Self::Q16(_) => "q16",
            Self::MultiHeaded(_) => "multi-headed",
            Self::SdSafetyChecker(_) => "sd-safety-checker",
            Self::ImageClassifier(_) => "image-classifier",
            Self::Nudenet(_) => "nudenet",
            Self::OpenNsfw(_) => "open-nsfw",
            Self::OpenaiModeration(_) => "openai-moderation",
            Self::VisionChat(_) => "vision-chat",
            Self::Scripted(_) => "scripted",
        }
    }
    fn availability(&self) -> Availability {
        match self {
            Self::Scripted(_) => Availability::TestFixture,
            _ => Availability::Built,
        }
    }
}

impl JudgeSection for ImageJudgeConfig {
    fn name(&self) -> String {
        let given = match self {
            Self::Q16(j) => &j.name,
            Self::MultiHeaded(j) => &j.name,
            Self::SdSafetyChecker(j) => &j.name,
            Self::ImageClassifier(j) => &j.name,
            Self::Nudenet(j) => &j.name,
            Self::OpenNsfw(j) => &j.name,
            Self::OpenaiModeration(m) => &m.name,
            Self::VisionChat(v) => &v.name,
            Self::Scripted(s) => &s.name,
        };
        given.clone().unwrap_or_else(|| self.kind().to_string())
    }
    fn enabled(&self) -> bool {
        match self {
            Self::Q16(j) => j.enabled,
            Self::MultiHeaded(j) => j.enabled,
            Self::SdSafetyChecker(j) => j.enabled,
            Self::ImageClassifier(j) => j.enabled,
            Self::Nudenet(j) => j.enabled,
            Self::OpenNsfw(j) => j.enabled,
            Self::OpenaiModeration(m) => m.enabled,
            Self::VisionChat(v) => v.enabled,
            Self::Scripted(s) => s.enabled,
        }
    }
}
