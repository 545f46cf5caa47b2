//! The Writer role in-process: a Llama-family LLM (with the paper's LoRA or any other) fills
//! the Alpaca template for each request, generates with the configured transformers-style
//! settings (one batch across lanes, each lane seeded by its own seed), and returns the text
//! after `### Response:`, stripped.

use crate::LoadOptions;
use crate::ModelError;
use crate::text_generator::{TextGenerator, generation_of};
use art_config::local::LlamaWriter as LlamaWriterConfig;
use art_core::template::{self as tpl, WRITER_ALPACA};
use art_core::{ModelIdentity, RoleError, WriteRequest, Writer};

/// `kind = "llama"`: the Writer on an in-process LLM.
#[derive(Debug)]
pub struct LlamaWriter {
    generator: TextGenerator,
    template: String,
    identity: ModelIdentity,
}

impl LlamaWriter {
    pub fn new(c: &LlamaWriterConfig) -> Result<Self, ModelError> {
        let template = match &c.template_file {
            None => WRITER_ALPACA.to_string(),
            Some(p) => std::fs::read_to_string(p).map_err(|e| ModelError::Invalid {
                path: p.clone(),
                detail: format!("cannot read the template file: {e}"),
            })?,
        };
        let opts = LoadOptions::from_settings(c.dtype, &c.device)?;
        let generator = TextGenerator::load(
            &c.model,
            c.adapter.as_deref(),
            c.check_adapter_base,
            &opts,
            generation_of(&c.generation()),
            c.stop.clone(),
        )?;
        let identity = generator
            .identity("llama", &c.model, c.adapter.as_deref())
            .with_param("template", tpl::fingerprint(&template));
        Ok(Self {
            generator,
            template,
            identity,
        })
    }

    pub fn generator(&self) -> &TextGenerator {
        &self.generator
    }
}

impl Writer for LlamaWriter {
    fn identity(&self) -> ModelIdentity {
        self.identity.clone()
    }

    fn write(&self, batch: &[WriteRequest<'_>]) -> Vec<Result<String, RoleError>> {
        let items: Vec<(String, u64)> = batch
            .iter()
            .map(|r| (tpl::writer_text(&self.template, r), r.seed))
            .collect();
        self.generator
            .complete(&items)
            .into_iter()
            .map(|r| {
                let text = r?;
                let answer = tpl::writer_answer(&text);
                if answer.is_empty() {
                    Err(RoleError::new("writer: the model produced an empty prompt"))
                } else {
                    Ok(answer.to_string())
                }
            })
            .collect()
    }
}
