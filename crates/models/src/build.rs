//! Config sections to in-process role objects; `None` for kinds that are not built here.
//! Loading happens here, before a campaign writes anything, so a missing or corrupt weight
//! file is a configuration error naming the file.

use art_config::{GuideConfig, TargetConfig, WriterConfig};
use art_core::{Guide, RoleError, Target, Writer};

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
