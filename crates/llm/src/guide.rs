//! The Guide role in-process: LLaVA-NeXT looks at each rendered image with the paper's
//! conversation (LLaVA-1.6 Mistral, its system line, the image, the user text naming the
//! prompt, category and keywords), generates with the configured transformers-style settings
//! (one batch across lanes, each lane seeded by its own seed), and the answer is cut at the
//! first `For Example:` (the paper's rule, in `art_core`).
//!
//! Prompts are tokenized as the LLaVA repository does (`tokenizer_image_token`), so the
//! released adapter sees the token sequence it was trained on; each image's features come
//! from its own tower pass, so a lane's answer does not depend on the other lanes.

use crate::ModelError;
use crate::generate::{GenOutput, GenRequest, GenerationConfig, generate};
use crate::llava::{self, IMAGE_MARKER, LlavaNext, Prompt};
use crate::text_generator::{eos_from_json, generation_of, with_generation};
use crate::{LlmTokenizer, LoadOptions};
use art_config::local::LlavaNextGuide as Config;
use art_core::template::{self as tpl, GUIDE_LLAVA_MISTRAL, GUIDE_USER};
use art_core::{Guide, GuideOutput, GuideRequest, ModelIdentity, RoleError, fail_batch};
use std::path::Path;

/// `kind = "llava-next"`.
#[derive(Debug)]
pub struct LlavaGuide {
    model: LlavaNext,
    tokenizer: LlmTokenizer,
    generation: GenerationConfig,
    conversation: String,
    user: String,
    /// The id standing for image positions in the ids the logit processors see.
    placeholder: u32,
    identity: ModelIdentity,
}

fn read_template(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| ModelError::Invalid {
        path: path.to_path_buf(),
        detail: format!("cannot read the template file: {e}"),
    })
}

/// The tokenizer of `spec` (a folder or hub id) or of the model folder.
fn tokenizer(model_dir: &Path, spec: Option<&str>) -> Result<LlmTokenizer, ModelError> {
    let dir = match spec {
        Some(s) => art_hub::fetch(s, |names| {
            names
                .iter()
                .filter(|n| {
                    matches!(
                        n.as_str(),
                        "tokenizer.json" | "tokenizer_config.json" | "special_tokens_map.json"
                    )
                })
                .cloned()
                .collect()
        })?,
        None => model_dir.to_path_buf(),
    };
    if !dir.join("tokenizer.json").is_file() {
        return Err(ModelError::Missing {
            path: dir.join("tokenizer.json"),
            what: if spec.is_some() {
                "tokenizer.json".into()
            } else {
                "tokenizer.json (original LLaVA checkpoints ship only the sentencepiece \
                 tokenizer.model: set `tokenizer` in [guide] to a folder or hub id with the same \
                 vocabulary's tokenizer.json, e.g. mistralai/Mistral-7B-Instruct-v0.2 for \
                 llava-v1.6-mistral-7b)"
                    .into()
            },
        });
    }
    LlmTokenizer::from_folder(&dir)
}

impl LlavaGuide {
    pub fn new(c: &Config) -> Result<Self, ModelError> {
        let conversation = match &c.conversation_file {
            None => GUIDE_LLAVA_MISTRAL.to_string(),
            Some(p) => read_template(p)?,
        };
        let named = |detail: String| ModelError::Invalid {
            path: c
                .conversation_file
                .clone()
                .unwrap_or_else(|| "the built-in conversation".into()),
            detail,
        };
        if conversation.matches(IMAGE_MARKER).count() != 1 {
            return Err(named(format!(
                "the conversation must hold `{IMAGE_MARKER}` exactly once"
            )));
        }
        if !conversation.contains("{user_text}") {
            return Err(named("the conversation has no `{user_text}` slot".into()));
        }
        let user = match &c.template_file {
            None => GUIDE_USER.to_string(),
            Some(p) => read_template(p)?,
        };
        let opts = LoadOptions::from_settings(c.dtype, &c.device)?;
        let loaded = llava::load(&c.model, c.adapter.as_deref(), c.check_adapter_base, &opts)?;
        let tokenizer = tokenizer(&loaded.dir, c.tokenizer.as_deref())?;
        let model = loaded.model;
        let mut generation = generation_of(&c.generation());
        if generation.eos_token_ids.is_empty() {
            generation.eos_token_ids = eos_from_json(&loaded.dir, "generation_config.json")
                .unwrap_or_else(|| model.cfg.text.eos_token_ids.clone());
        }
        generation
            .validate()
            .map_err(|e| ModelError::Compute(format!("generation settings: {e}")))?;
        let placeholder = model
            .cfg
            .image_token_id
            .or_else(|| tokenizer.token_id("<unk>"))
            .unwrap_or(0);
        let layout = match model.cfg.layout {
            llava::Layout::Hf => "llava-hf",
            llava::Layout::Original => "original",
        };
        let mut identity = with_generation(
            ModelIdentity::new("llava-next", &c.model).with_param("layout", layout),
            model.lm.dtype(),
            &generation,
        )
        .with_param("conversation", tpl::fingerprint(&conversation))
        .with_param("template", tpl::fingerprint(&user));
        if let Some(t) = &c.tokenizer {
            identity = identity.with_param("tokenizer", t);
        }
        identity.revision = art_hub::snapshot_revision(&loaded.dir);
        identity.adapter = c.adapter.clone();
        Ok(Self {
            model,
            tokenizer,
            generation,
            conversation,
            user,
            placeholder,
            identity,
        })
    }

    pub fn model(&self) -> &LlavaNext {
        &self.model
    }

    /// The conversation text of one request.
    pub fn text(&self, r: &GuideRequest<'_>) -> String {
        let user = tpl::guide_text(&self.user, r.prompt, &r.category.name, r.keywords);
        tpl::fill(&self.conversation, &[("user_text", &user)])
    }

    fn prompt(&self, r: &GuideRequest<'_>) -> Result<Prompt, ModelError> {
        let pieces = llava::tokenize_with_image(&self.tokenizer, &self.text(r))?;
        let features = self.model.image_features(r.image)?;
        self.model.prompt(&pieces, &features, self.placeholder)
    }

    fn answer(&self, out: &GenOutput) -> Result<GuideOutput, RoleError> {
        let text = self
            .tokenizer
            .decode(&out.tokens)
            .map_err(|e| RoleError::new(e.to_string()))?;
        Ok(GuideOutput::from_raw(text.trim()))
    }
}

impl Guide for LlavaGuide {
    fn identity(&self) -> ModelIdentity {
        self.identity.clone()
    }

    fn guide(&self, batch: &[GuideRequest<'_>]) -> Vec<Result<GuideOutput, RoleError>> {
        let prompts: Vec<Result<Prompt, RoleError>> = batch
            .iter()
            .map(|r| {
                self.prompt(r)
                    .map_err(|e| RoleError::new(format!("guide: {e}")))
            })
            .collect();
        let ok: Vec<usize> = (0..batch.len()).filter(|&i| prompts[i].is_ok()).collect();
        let reqs: Vec<GenRequest<'_>> = ok
            .iter()
            .map(|&i| {
                let p = prompts[i].as_ref().expect("filtered");
                GenRequest {
                    prompt: &p.ids,
                    embeds: Some(&p.embeds),
                    seed: batch[i].seed,
                }
            })
            .collect();
        let outs = match generate(&self.model.lm, &reqs, &self.generation, None) {
            Ok(o) => o,
            Err(e) => return fail_batch(batch.len(), &RoleError::new(format!("guide: {e}"))),
        };
        let mut results: Vec<Result<GuideOutput, RoleError>> = prompts
            .iter()
            .map(|p| match p {
                Ok(_) => Err(RoleError::new("guide: no output")),
                Err(e) => Err(e.clone()),
            })
            .collect();
        for (&i, out) in ok.iter().zip(outs) {
            results[i] = self.answer(&out);
        }
        results
    }
}
