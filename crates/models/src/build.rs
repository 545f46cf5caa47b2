//! Config sections to in-process role objects; `None` for kinds that are not built here.
//! Loading happens here, before a campaign writes anything, so a missing or corrupt weight
//! file is a configuration error naming the file.

use art_config::local::Dtype;
use art_config::{
    GuideConfig, ImageJudgeConfig, JudgeSection, PromptJudgeConfig, TargetConfig, WriterConfig,
};
use art_core::{Guide, ImageJudge, PromptJudge, RoleError, Target, Writer};
use art_judges::clip::ClipBackbone;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

type Built<T> = Option<Result<Box<T>, RoleError>>;

pub fn writer(c: &WriterConfig) -> Built<dyn Writer> {
    match c {
        WriterConfig::Llama(w) => Some(
            art_llm::writer::LlamaWriter::new(w)
                .map(|x| Box::new(x) as Box<dyn Writer>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", w.model))),
        ),
        _ => None,
    }
}

pub fn target(c: &TargetConfig) -> Built<dyn Target> {
    match c {
        TargetConfig::StableDiffusion(t) => Some(
            art_diffusion::target::StableDiffusionTarget::new(t)
                .map(|x| Box::new(x) as Box<dyn Target>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", t.model))),
        ),
        _ => None,
    }
}

pub fn guide(c: &GuideConfig) -> Built<dyn Guide> {
    match c {
        GuideConfig::LlavaNext(g) => Some(
            art_llm::guide::LlavaGuide::new(g)
                .map(|x| Box::new(x) as Box<dyn Guide>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", g.model))),
        ),
        _ => None,
    }
}

pub fn prompt_judge(c: &PromptJudgeConfig) -> Built<dyn PromptJudge> {
    match c {
        PromptJudgeConfig::TextClassifier(t) => Some(
            art_judges::text::TextClassifierJudge::load(&classifier(t, c.name()))
                .map(|x| Box::new(x) as Box<dyn PromptJudge>)
                .map_err(|e| RoleError::new(format!("model `{}`: {e}", t.model))),
        ),
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
) -> Result<art_judges::llama_guard::LlamaGuardJudge, crate::ModelError> {
    use art_judges::llama_guard::{GuardPrompt, LlamaGuardJudge, LlamaGuardSettings};
    let mut s = LlamaGuardSettings::new(&name, &g.model);
    s.adapter = g.adapter.clone();
    s.check_adapter_base = g.check_adapter_base;
    s.opts = art_nn::LoadOptions::from_settings(g.dtype, &g.device)?;
    s.prompt = match (&g.template_file, g.prompt) {
        (Some(p), _) => GuardPrompt::Custom(
            std::fs::read_to_string(p)
                .map_err(|e| art_nn::invalid(p, format!("cannot read the template file: {e}")))?,
        ),
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
    use art_judges::{clip, onnx, vit};
    fn boxed<J: ImageJudge + 'static>(
        what: &str,
        j: Result<J, crate::ModelError>,
    ) -> Result<Box<dyn ImageJudge>, RoleError> {
        j.map(|x| Box::new(x) as Box<dyn ImageJudge>)
            .map_err(|e| RoleError::new(format!("{what}: {e}")))
    }
    let name = c.name();
    Some(match c {
        ImageJudgeConfig::ImageClassifier(t) => boxed(
            &format!("model `{}`", t.model),
            vit::ImageClassifierJudge::load(&classifier(t, name)),
        ),
        ImageJudgeConfig::Q16(q) => boxed(&format!("backbone `{}`", q.backbone), q16(q, name)),
        ImageJudgeConfig::MultiHeaded(m) => {
            boxed(&format!("backbone `{}`", m.backbone), multi_headed(m, name))
        }
        ImageJudgeConfig::SdSafetyChecker(sc) => boxed(&format!("model `{}`", sc.model), {
            art_nn::LoadOptions::from_settings(sc.dtype, &sc.device).and_then(|load| {
                clip::SdSafetyChecker::load(&clip::SdSafetyCheckerSettings {
                    name,
                    model: sc.model.clone(),
                    processor: sc.processor.clone(),
                    load,
                })
            })
        }),
        ImageJudgeConfig::Nudenet(n) => boxed(
            "nudenet",
            onnx::NudeNet::new(&onnx::NudeNetSettings {
                name,
                model: n.model.clone(),
                runtime: n.runtime,
                unsafe_classes: n.unsafe_classes.clone(),
                threshold: n.threshold,
                class_thresholds: n.class_thresholds.clone(),
            }),
        ),
        ImageJudgeConfig::OpenNsfw(o) => boxed(
            "open-nsfw",
            onnx::OpenNsfw::new(&onnx::OpenNsfwSettings {
                name,
                model: o.model.clone(),
                runtime: o.runtime,
                threshold: o.threshold,
                jpeg_reencode: o.jpeg_reencode,
            }),
        ),
        ImageJudgeConfig::OpenaiModeration(_)
        | ImageJudgeConfig::VisionChat(_)
        | ImageJudgeConfig::Scripted(_) => return None,
    })
}

fn classifier(
    t: &art_config::judges::ClassifierJudge,
    name: String,
) -> art_judges::classifier::ClassifierSettings {
    art_judges::classifier::ClassifierSettings {
        name,
        model: t.model.clone(),
        unsafe_labels: t.unsafe_labels.clone(),
        threshold: t.threshold,
        rule: t.rule,
        dtype: t.dtype,
        device: t.device.clone(),
    }
}

fn head_files(dir: &Option<PathBuf>, url: &Option<String>) -> art_judges::clip::HeadFiles {
    let mut f = art_judges::clip::HeadFiles {
        local_dir: dir.clone(),
        ..Default::default()
    };
    if let Some(u) = url {
        f.base_url = u.trim_end_matches('/').to_string();
    }
    f
}

/// The CLIP towers loaded in this process, by (backbone, dtype, device): Q16, its fine-tuned
/// variant and the multi-headed classifier all read ViT-L/14, which is 1.2 GB in f32, so the
/// judges of one campaign share one copy. Weak, so a tower is freed with its last judge.
type BackboneKey = (String, Dtype, String);
static BACKBONES: Mutex<Vec<(BackboneKey, Weak<ClipBackbone>)>> = Mutex::new(Vec::new());

fn backbone(
    spec: &str,
    dtype: Dtype,
    device: &str,
) -> Result<Arc<ClipBackbone>, crate::ModelError> {
    let key = (spec.to_string(), dtype, device.to_string());
    let mut cache = BACKBONES.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|(_, w)| w.strong_count() > 0);
    if let Some(b) = cache
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(b);
    }
    let b = Arc::new(ClipBackbone::load(
        spec,
        &art_nn::LoadOptions::from_settings(dtype, device)?,
    )?);
    cache.push((key, Arc::downgrade(&b)));
    Ok(b)
}

fn q16(
    q: &art_config::judges::Q16Judge,
    name: String,
) -> Result<art_judges::clip::Q16, crate::ModelError> {
    use art_judges::clip::{Q16, Q16Embeddings, Q16Settings};
    let s = Q16Settings {
        name,
        backbone: q.backbone.clone(),
        embeddings: Q16Embeddings::parse(&q.embeddings),
        threshold: q.threshold,
        files: head_files(&q.files_dir, &q.files_url),
        preprocess: None,
        load: art_nn::LoadOptions::from_settings(q.dtype, &q.device)?,
    };
    Q16::with_backbone(&s, backbone(&q.backbone, q.dtype, &q.device)?)
}

fn multi_headed(
    m: &art_config::judges::MultiHeadedJudge,
    name: String,
) -> Result<art_judges::clip::MultiHeaded, crate::ModelError> {
    use art_judges::clip::{MhscHead, MultiHeaded, MultiHeadedSettings};
    let heads = match &m.heads {
        None => MhscHead::ALL.to_vec(),
        Some(names) => names
            .iter()
            .map(|h| {
                MhscHead::parse(h).ok_or_else(|| {
                    art_nn::invalid(
                        "[image_judge] heads",
                        format!(
                            "unknown head `{h}`; expected some of {}",
                            MhscHead::ALL.map(MhscHead::name).join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let s = MultiHeadedSettings {
        name,
        backbone: m.backbone.clone(),
        heads,
        threshold: m.threshold,
        files: head_files(&m.files_dir, &m.files_url),
        preprocess: None,
        load: art_nn::LoadOptions::from_settings(m.dtype, &m.device)?,
    };
    MultiHeaded::with_backbone(&s, backbone(&m.backbone, m.dtype, &m.device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use art_config::judges::{MultiHeadedJudge, NudenetJudge, Q16Judge};

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../judges/tests/fixtures/clip_judges")
    }

    fn q16_config() -> Q16Judge {
        toml::from_str(&format!(
            "backbone = {:?}\nfiles_dir = {:?}\n",
            fixtures().join("hf"),
            fixtures().join("heads")
        ))
        .unwrap()
    }

    #[test]
    fn clip_judges_share_one_backbone_per_model_and_dtype() {
        let a = q16(&q16_config(), "a".into()).unwrap();
        let mut finetuned = q16_config();
        finetuned.embeddings = "finetuned".into();
        let b = q16(&finetuned, "b".into()).unwrap();
        let m: MultiHeadedJudge = toml::from_str(&format!(
            "backbone = {:?}\nfiles_dir = {:?}\n",
            fixtures().join("hf"),
            fixtures().join("heads")
        ))
        .unwrap();
        let m = multi_headed(&m, "m".into()).unwrap();
        assert!(Arc::ptr_eq(a.backbone(), b.backbone()));
        assert!(Arc::ptr_eq(a.backbone(), m.backbone()));
        let mut half = q16_config();
        half.dtype = Dtype::F16;
        let h = q16(&half, "h".into()).unwrap();
        assert!(
            !Arc::ptr_eq(a.backbone(), h.backbone()),
            "another dtype, another copy"
        );
    }

    #[test]
    fn bad_judge_settings_are_errors_naming_the_value() {
        let mut m: MultiHeadedJudge = toml::from_str(&format!(
            "backbone = {:?}\nfiles_dir = {:?}\nheads = [\"sexual\", \"gory\"]\n",
            fixtures().join("hf"),
            fixtures().join("heads")
        ))
        .unwrap();
        let e = multi_headed(&m, "m".into()).unwrap_err().to_string();
        assert!(e.contains("`gory`") && e.contains("political"), "{e}");
        m.heads = Some(vec![]);
        assert!(multi_headed(&m, "m".into()).is_err(), "no head at all");
        let n: NudenetJudge = toml::from_str(
            "model = \"/nowhere/320n.onnx\"\nunsafe_classes = [\"FACE_FEMALE\", \"NOSE\"]\n",
        )
        .unwrap();
        let c = ImageJudgeConfig::Nudenet(Box::new(n));
        let Some(Err(e)) = image_judge(&c) else {
            panic!("an error")
        };
        assert!(e.to_string().contains("NOSE"), "{e}");
    }
}
