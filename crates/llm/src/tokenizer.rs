//! The tokenizer of a causal LM: `tokenizer.json` of a Hugging Face folder, or the vocabulary
//! a GGUF file carries. Encoding adds the special tokens the tokenizer's post-processor
//! defines (Llama's `<s>`), as transformers' `tokenizer(text)` does; decoding skips them.

use crate::ModelError;
use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use std::path::Path;
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

pub struct LlmTokenizer {
    inner: Tokenizer,
}

impl std::fmt::Debug for LlmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .finish()
    }
}

impl LlmTokenizer {
    pub fn from_folder(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(ModelError::Missing {
                path,
                what: "file".into(),
            });
        }
        let inner = Tokenizer::from_file(&path).map_err(|e| ModelError::Invalid {
            path: path.clone(),
            detail: format!("not a readable tokenizer.json: {e}"),
        })?;
        Ok(Self { inner })
    }

    /// The byte-level BPE vocabulary of a GGUF file. candle's builder gives plain `gpt2`
    /// vocabularies a prefix space, which llama.cpp (and the models' own tokenizer.json)
    /// only add when `tokenizer.ggml.add_space_prefix` says so; SmolLM's pre-tokenizer also
    /// splits digits one by one.
    pub fn from_gguf(ct: &gguf_file::Content, path: &Path) -> Result<Self, ModelError> {
        let mut inner = Tokenizer::from_gguf(ct).map_err(|e| ModelError::Invalid {
            path: path.to_path_buf(),
            detail: format!("the GGUF tokenizer cannot be built: {e}"),
        })?;
        let md = |k: &str| ct.metadata.get(k);
        let pre = md("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("gpt2", |s| s.as_str());
        let prefix = md("tokenizer.ggml.add_space_prefix")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        let byte_level = PreTokenizerWrapper::ByteLevel(ByteLevel::new(prefix, true, true));
        match pre {
            "qwen2" | "llama3" | "smaug-bpe" | "lfm2" => {}
            "smollm" => {
                inner.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
                    PreTokenizerWrapper::Digits(Digits::new(true)),
                    byte_level,
                ]))));
            }
            _ => {
                inner.with_pre_tokenizer(Some(byte_level));
            }
        }
        Ok(Self { inner })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.inner
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Compute(format!("tokenizing failed: {e}")))
    }

    /// `text` without the special tokens the tokenizer adds (a rendered chat template
    /// carries its own, and transformers tokenizes it so).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Compute(format!("tokenizing failed: {e}")))
    }

    /// Text of `ids` without special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| ModelError::Compute(format!("decoding failed: {e}")))
    }

    /// The token the tokenizer puts before every text (BOS), if it adds one.
    pub fn bos_id(&self) -> Option<u32> {
        let e = self.inner.encode("", true).ok()?;
        e.get_ids().first().copied()
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
