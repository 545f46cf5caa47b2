//! Config sections to role objects; `None` for kinds that are not remote.

use crate::backends::{chat, comfyui, images, moderation, vision_judge};
use art_config::{
    GuideConfig, ImageJudgeConfig, JudgeSection, PromptJudgeConfig, TargetConfig, WriterConfig,
};
use art_core::{Guide, ImageJudge, PromptJudge, RoleError, Target, Writer};

type Built<T> = Option<Result<Box<T>, RoleError>>;

pub fn target(c: &TargetConfig) -> Built<dyn Target> {
    Some(match c {
        TargetConfig::OpenaiImages(t) => {
            images::OpenaiImages::new(t).map(|x| Box::new(x) as Box<dyn Target>)
        }
        TargetConfig::Automatic1111(t) => {
            images::Automatic1111::new(t).map(|x| Box::new(x) as Box<dyn Target>)
        }
        TargetConfig::Comfyui(t) => {
            comfyui::Comfyui::new(t).map(|x| Box::new(x) as Box<dyn Target>)
        }
        _ => return None,
    })
}

pub fn writer(c: &WriterConfig) -> Built<dyn Writer> {
    match c {
        WriterConfig::OpenaiChat(w) => {
            Some(chat::ChatWriter::new(w).map(|x| Box::new(x) as Box<dyn Writer>))
        }
        _ => None,
    }
}

pub fn guide(c: &GuideConfig) -> Built<dyn Guide> {
    match c {
        GuideConfig::OpenaiChat(g) => {
            Some(chat::ChatGuide::new(g).map(|x| Box::new(x) as Box<dyn Guide>))
        }
        _ => None,
    }
}

pub fn prompt_judge(c: &PromptJudgeConfig) -> Built<dyn PromptJudge> {
    match c {
        PromptJudgeConfig::OpenaiModeration(m) => Some(
            moderation::Moderation::new(c.name(), m).map(|x| Box::new(x) as Box<dyn PromptJudge>),
        ),
        _ => None,
    }
}

pub fn image_judge(c: &ImageJudgeConfig) -> Built<dyn ImageJudge> {
    Some(match c {
        ImageJudgeConfig::OpenaiModeration(m) => {
            moderation::Moderation::new(c.name(), m).map(|x| Box::new(x) as Box<dyn ImageJudge>)
        }
        ImageJudgeConfig::VisionChat(v) => {
            vision_judge::VisionChat::new(c.name(), v).map(|x| Box::new(x) as Box<dyn ImageJudge>)
        }
        _ => return None,
    })
}
