//! Config sections to in-process role objects; `None` for kinds that are not built here.
//! Loading happens here, before a campaign writes anything, so a missing or corrupt weight
//! file is a configuration error naming the file.

use art_config::{
    GuideConfig, ImageJudgeConfig, JudgeSection, PromptJudgeConfig, TargetConfig, WriterConfig,
};
use art_core::{Guide, ImageJudge, PromptJudge, RoleError, Target, Writer};

type Built<T> = Option<Result<Box<T>, RoleError>>;

pub fn writer(c: &WriterConfig) -> Built<dyn Writer> {
    match c {
        WriterConfig::Llama(w) => Some(
            crate::writer::LlamaWriter::new(w)
                .map(|x| Box::new(x) as Box<dyn Writer>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", w.model))),
        ),
        _ => None,
    }
}

pub fn target(c: &TargetConfig) -> Built<dyn Target> {
    match c {
        TargetConfig::StableDiffusion(t) => Some(
            crate::target::StableDiffusionTarget::new(t)
                .map(|x| Box::new(x) as Box<dyn Target>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", t.model))),
        ),
        _ => None,
    }
}

pub fn guide(c: &GuideConfig) -> Built<dyn Guide> {
    match c {
        GuideConfig::LlavaNext(g) => Some(
            crate::guide::LlavaGuide::new(g)
                .map(|x| Box::new(x) as Box<dyn Guide>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", g.model))),
        ),
        _ => None,
    }
}

pub fn prompt_judge(c: &PromptJudgeConfig) -> Built<dyn PromptJudge> {
    match c {
        PromptJudgeConfig::LlamaGuard(g) => Some(
            llama_guard(g, c.name())
                .map(|x| Box::new(x) as Box<dyn PromptJudge>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", g.model))),
        ),
        _ => None,
    }
}

fn llama_guard(
    g: &art_config::judges::LlamaGuardJudge,
    name: String,
) -> Result<crate::judges::llama_guard::LlamaGuardJudge, crate::ModelError> {
    use crate::judges::llama_guard::{GuardPrompt, LlamaGuardJudge, LlamaGuardSettings};
    let mut s = LlamaGuardSettings::new(&name, &g.model);
    s.adapter = g.adapter.clone();
    s.check_adapter_base = g.check_adapter_base;
    s.opts = crate::llm::LoadOptions {
        dtype: crate::writer::dtype_of(g.dtype),
        device: crate::writer::device_of(&g.device)?,
    };
    s.prompt = match (&g.template_file, g.prompt) {
        (Some(p), _) => GuardPrompt::Custom(std::fs::read_to_string(p).map_err(|e| {
            crate::ModelError::Invalid {
                path: p.clone(),
                detail: format!("cannot read the template file: {e}"),
            }
        })?),
        (None, art_config::judges::GuardPromptKind::Paper) => GuardPrompt::Paper,
        (None, art_config::judges::GuardPromptKind::ChatTemplate) => GuardPrompt::ChatTemplate,
    };
    if let Some(u) = &g.user_text {
        s.user_text = u.clone();
    }
    s.max_new_tokens = g.max_new_tokens;
    s.threshold = g.threshold;
    LlamaGuardJudge::new(s)
}

pub fn image_judge(c: &ImageJudgeConfig) -> Built<dyn ImageJudge> {
    // The in-process image judges are built here as their kinds land (issue #6); until then
    // the availability check reports them before anything runs.
    let _ = c;
    None
}
