//! One serde-tagged section per role (`kind = "..."`).
//!
//! Every kind the project plans is listed here so that a config naming it parses and the
//! program can say plainly that the kind is not built yet, and which issue brings it. Kinds
//! that are built get a strict struct (unknown keys are errors); planned kinds keep their keys
//! as an open table until their implementation defines them.
//!
//! `scripted` kinds are the testkit's deterministic fixtures: they parse everywhere, but only an
//! `art` built with the `testkit` feature can run them. They are not a user-facing mode.

use crate::judges::LlamaGuardJudge;
use crate::local::{LlamaWriter, LlavaNextGuide, StableDiffusionTarget};
use crate::remote::{
    Automatic1111Target, ComfyuiTarget, OpenaiChatGuide, OpenaiChatWriter, OpenaiImagesTarget,
    OpenaiModerationJudge, VisionChatJudge,
};
use serde::{Deserialize, Serialize};

/// The keys of a kind whose implementation has not landed: kept verbatim so the resolved config
/// still shows them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Planned {
    #[serde(flatten)]
    pub params: toml::Table,
}

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
    TextClassifier(Planned),
    LlamaGuard(Box<LlamaGuardJudge>),
    OpenaiModeration(Box<OpenaiModerationJudge>),
    Scripted(ScriptedJudge),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ImageJudgeConfig {
    Q16(Planned),
    MultiHeaded(Planned),
    SdSafetyChecker(Planned),
    ImageClassifier(Planned),
    Nudenet(Planned),
    OpenNsfw(Planned),
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
    /// Not implemented yet; the text says what brings it.
    Planned(&'static str),
}

const JUDGES: &str = "the paper's judges and real-weight detectors (issue #6)";

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

fn planned_str(p: &Planned, key: &str) -> Option<String> {
    p.params
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn planned_enabled(p: &Planned) -> bool {
    p.params
        .get("enabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
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
            Self::TextClassifier(_) => Availability::Planned(JUDGES),
            Self::LlamaGuard(_) | Self::OpenaiModeration(_) => Availability::Built,
            Self::Scripted(_) => Availability::TestFixture,
        }
    }
}

impl JudgeSection for PromptJudgeConfig {
    fn name(&self) -> String {
        match self {
            Self::TextClassifier(p) => {
                planned_str(p, "name").unwrap_or_else(|| self.kind().to_string())
            }
            Self::LlamaGuard(g) => g.name.clone().unwrap_or_else(|| self.kind().to_string()),
            Self::OpenaiModeration(m) => m.name.clone().unwrap_or_else(|| self.kind().to_string()),
            Self::Scripted(s) => s.name.clone().unwrap_or_else(|| self.kind().to_string()),
        }
    }
    fn enabled(&self) -> bool {
        match self {
            Self::TextClassifier(p) => planned_enabled(p),
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
            Self::OpenaiModeration(_) | Self::VisionChat(_) => Availability::Built,
            Self::Scripted(_) => Availability::TestFixture,
            _ => Availability::Planned(JUDGES),
        }
    }
}

impl ImageJudgeConfig {
    fn planned(&self) -> Option<&Planned> {
        match self {
            Self::Q16(p)
            | Self::MultiHeaded(p)
            | Self::SdSafetyChecker(p)
            | Self::ImageClassifier(p)
            | Self::Nudenet(p)
            | Self::OpenNsfw(p) => Some(p),
            Self::OpenaiModeration(_) | Self::VisionChat(_) | Self::Scripted(_) => None,
        }
    }
}

impl JudgeSection for ImageJudgeConfig {
    fn name(&self) -> String {
        let given = match self {
            Self::Scripted(s) => s.name.clone(),
            Self::OpenaiModeration(m) => m.name.clone(),
            Self::VisionChat(v) => v.name.clone(),
            _ => self.planned().and_then(|p| planned_str(p, "name")),
        };
        given.unwrap_or_else(|| self.kind().to_string())
    }
    fn enabled(&self) -> bool {
        match self {
            Self::Scripted(s) => s.enabled,
            Self::OpenaiModeration(m) => m.enabled,
            Self::VisionChat(v) => v.enabled,
            _ => self.planned().is_none_or(planned_enabled),
        }
    }
}
