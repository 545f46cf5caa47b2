//! The text side of Stable Diffusion: CLIP's BPE tokenizer as the pipelines call it (77
//! tokens, truncated, padded with the tokenizer's pad token) and the CLIP text transformer
//! (`CLIPTextModel`, and `CLIPTextModelWithProjection` for SDXL's second encoder), with the
//! hidden states the pipelines take: the last (after the final norm) for SD 1/2, the
//! penultimate layer's for SDXL, and the pooled, projected end-of-text state for SDXL's
//! added conditioning.

use crate::ModelError;
use crate::config::ClipTextConfig;
use art_nn::clip::EncoderLayer;
use art_nn::invalid;
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde_json::{Value, json};
use std::path::Path;
use tokenizers::Tokenizer;

/// CLIP's tokenizer with the pipelines' settings.
pub struct ClipTokenizer {
    inner: Tokenizer,
    max_len: usize,
    bos: u32,
    eos: u32,
    pad: u32,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("pad", &self.pad)
            .finish()
    }
}

/// A prompt as the text encoder sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// `max_len` ids: start, content, end, padding.
    pub ids: Vec<u32>,
    /// When the prompt had more content tokens than fit: the text of the ones kept.
    pub truncated: Option<String>,
}

fn token_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl ClipTokenizer {
    /// From a `tokenizer/` folder: `tokenizer.json` when present, else `vocab.json` +
    /// `merges.txt` (what the hub's SD checkpoints ship) built into the tokenizer transformers
    /// converts them to. `special_tokens_map.json` / `tokenizer_config.json` give the pad
    /// token (SD 2.x and SDXL's second tokenizer pad with `!`).
    pub fn from_folder(dir: &Path) -> std::result::Result<Self, ModelError> {
        let mut settings = serde_json::Map::new();
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            if let Ok(b) = std::fs::read(dir.join(name))
                && let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&b)
            {
                settings.extend(m);
            }
        }
        let json_path = dir.join("tokenizer.json");
        let inner = if json_path.is_file() {
            Tokenizer::from_file(&json_path)
                .map_err(|e| invalid(&json_path, format!("not a readable tokenizer.json: {e}")))?
        } else {
            let vocab_path = dir.join("vocab.json");
            let vocab: Value = serde_json::from_slice(&art_hub::read(dir, "vocab.json")?)
                .map_err(|e| invalid(&vocab_path, e.to_string()))?;
            let merges_path = dir.join("merges.txt");
            let merges = String::from_utf8(art_hub::read(dir, "merges.txt")?)
                .map_err(|e| invalid(&merges_path, e.to_string()))?;
            let merges: Vec<&str> = merges
                .lines()
                .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
                .collect();
            let id = |name: &str| -> std::result::Result<u64, ModelError> {
                vocab
                    .get(name)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| invalid(&vocab_path, format!("no `{name}` token")))
            };
            let (bos, eos) = (id("<|startoftext|>")?, id("<|endoftext|>")?);
            // Special tokens match whole before BPE (SDXL's second tokenizer pads with `!`,
            // so `!!` is two `!` tokens there): the config's `added_tokens_decoder`, else the
            // named special tokens.
            let mut added: Vec<Value> = Vec::new();
            if let Some(Value::Object(dec)) = settings.get("added_tokens_decoder") {
                for (k, v) in dec {
                    if let (Ok(i), Some(content)) = (k.parse::<u64>(), v.get("content")) {
                        let flag =
                            |f: &str, d: bool| v.get(f).and_then(Value::as_bool).unwrap_or(d);
                        added.push(json!({"id": i, "content": content, "single_word": flag("single_word", false),
                            "lstrip": flag("lstrip", false), "rstrip": flag("rstrip", false),
                            "normalized": flag("normalized", false), "special": flag("special", true)}));
                    }
                }
            }
            for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
                let Some(name) = settings.get(key).and_then(token_name) else {
                    continue;
                };
                if added.iter().any(|a| a["content"] == name.as_str()) {
                    continue;
                }
                if let Some(i) = vocab.get(&name).and_then(Value::as_u64) {
                    added.push(
                        json!({"id": i, "content": name, "single_word": false, "lstrip": false,
                        "rstrip": false, "normalized": false, "special": true}),
                    );
                }
            }
            for (i, name) in [(bos, "<|startoftext|>"), (eos, "<|endoftext|>")] {
                if !added.iter().any(|a| a["content"] == name) {
                    added.push(
                        json!({"id": i, "content": name, "single_word": false, "lstrip": false,
                        "rstrip": false, "normalized": true, "special": true}),
                    );
                }
            }
            added.sort_by_key(|a| a["id"].as_u64());
            let spec = json!({
                "version": "1.0",
                "truncation": null,
                "padding": null,
                "added_tokens": added,
                "normalizer": {"type": "Sequence", "normalizers": [
                    {"type": "NFC"},
                    {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
                    {"type": "Lowercase"}
                ]},
                "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex":
                        "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
                     "behavior": "Removed", "invert": true},
                    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                     "use_regex": false}
                ]},
                "post_processor": {"type": "RobertaProcessing",
                    "sep": ["<|endoftext|>", eos], "cls": ["<|startoftext|>", bos],
                    "trim_offsets": false, "add_prefix_space": false},
                "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
                "model": {"type": "BPE", "dropout": null, "unk_token": "<|endoftext|>",
                    "continuing_subword_prefix": "", "end_of_word_suffix": "</w>",
                    "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                    "vocab": vocab, "merges": merges}
            });
            spec.to_string().parse::<Tokenizer>().map_err(|e| {
                invalid(&vocab_path, format!("cannot build the CLIP tokenizer: {e}"))
            })?
        };
        let tok_id = |key: &str, default: &str| -> std::result::Result<u32, ModelError> {
            let name = settings
                .get(key)
                .and_then(token_name)
                .unwrap_or_else(|| default.to_string());
            inner
                .token_to_id(&name)
                .ok_or_else(|| invalid(dir, format!("the tokenizer has no {key} `{name}`")))
        };
        let max_len = settings
            .get("model_max_length")
            .and_then(Value::as_u64)
            .filter(|&n| (3..=4096).contains(&n))
            .unwrap_or(77) as usize;
        Ok(Self {
            bos: tok_id("bos_token", "<|startoftext|>")?,
            eos: tok_id("eos_token", "<|endoftext|>")?,
            pad: tok_id("pad_token", "<|endoftext|>")?,
            inner,
            max_len,
        })
    }

    /// `tokenizer(text, padding="max_length", max_length=77, truncation=True)`.
    pub fn encode(&self, text: &str) -> std::result::Result<Tokens, ModelError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Compute(format!("tokenizing the prompt: {e}")))?;
        let content = enc.get_ids();
        let room = self.max_len - 2;
        let kept = &content[..content.len().min(room)];
        let truncated = (content.len() > room)
            .then(|| self.decode(kept))
            .transpose()?;
        let mut ids = Vec::with_capacity(self.max_len);
        ids.push(self.bos);
        ids.extend_from_slice(kept);
        ids.push(self.eos);
        ids.resize(self.max_len, self.pad);
        Ok(Tokens { ids, truncated })
    }

    /// Text of content tokens, as `CLIPTokenizer.decode(..., skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[u32]) -> std::result::Result<String, ModelError> {
        let text = self
            .inner
            .decode(ids, true)
            .map_err(|e| ModelError::Compute(format!("decoding tokens: {e}")))?;
        Ok(text.replace("</w>", " ").trim().to_string())
    }
}

/// One encoder layer's outputs the pipelines use.
#[derive(Debug)]
pub struct TextStates {
    /// After the final layer norm: `[batch, len, hidden]`.
    pub last: Tensor,
    /// `hidden_states[-2]`: the second-to-last layer's output (no final norm).
    pub penultimate: Tensor,
    /// The final-norm state at the end-of-text token, through `text_projection` when the
    /// model has one: `[batch, dim]`.
    pub pooled: Tensor,
}

/// `CLIPTextModel` (optionally `...WithProjection`).
#[derive(Debug)]
pub struct ClipTextEncoder {
    token: Embedding,
    position: Tensor,
    layers: Vec<EncoderLayer>,
    final_ln: LayerNorm,
    projection: Option<Linear>,
    heads: usize,
    quick_gelu: bool,
    eos_token_id: u32,
}

impl ClipTextEncoder {
    /// Weights under `text_model.` (the hub's files) or without it (transformers 5 saves).
    pub fn new(vb: VarBuilder, c: &ClipTextConfig, with_projection: bool) -> Result<Self> {
        let tm = if vb.contains_tensor("text_model.embeddings.token_embedding.weight") {
            vb.pp("text_model")
        } else {
            vb.clone()
        };
        let d = c.hidden_size;
        let ln = |vb: VarBuilder| candle_nn::layer_norm(d, c.layer_norm_eps, vb);
        let token = candle_nn::embedding(c.vocab_size, d, tm.pp("embeddings.token_embedding"))?;
        let position = tm.get(
            (c.max_position_embeddings, d),
            "embeddings.position_embedding.weight",
        )?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                EncoderLayer::new(
                    tm.pp(format!("encoder.layers.{i}")),
                    d,
                    c.intermediate_size,
                    c.layer_norm_eps,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let final_ln = ln(tm.pp("final_layer_norm"))?;
        let projection = if with_projection {
            let p = c.projection_dim.unwrap_or(d);
            Some(candle_nn::linear_no_bias(d, p, vb.pp("text_projection"))?)
        } else {
            None
        };
        Ok(Self {
            token,
            position,
            layers,
            final_ln,
            projection,
            heads: c.num_attention_heads,
            quick_gelu: c.hidden_act == "quick_gelu",
            eos_token_id: c.eos_token_id,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.position.dim(1).unwrap_or(0)
    }

    /// Runs the encoder on `ids` (`[batch, len]`, u32) and returns the states the pipelines use.
    pub fn forward(&self, ids: &Tensor) -> Result<TextStates> {
        let (b, n) = ids.dims2()?;
        let dev = ids.device();
        let pos = self.position.i(..n)?;
        let mut x = self.token.forward(ids)?.broadcast_add(&pos)?;
        let mask: Vec<f32> = (0..n)
            .flat_map(|i| (0..n).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (n, n), dev)?.to_dtype(x.dtype())?;
        let mut penultimate = x.clone();
        let last_layer = self.layers.len().saturating_sub(1);
        for (i, l) in self.layers.iter().enumerate() {
            if i == last_layer {
                penultimate = x.clone();
            }
            x = l.forward(&x, self.heads, Some(&mask), self.quick_gelu)?;
        }
        let last = self.final_ln.forward(&x)?;
        // transformers pools at the first end-of-text token; configs with the legacy
        // eos_token_id 2 pool at the largest id instead (the end-of-text token in CLIP).
        let rows: Vec<Vec<u32>> = ids.to_vec2()?;
        let at: Vec<u32> = rows
            .iter()
            .map(|r| {
                let pos = if self.eos_token_id == 2 {
                    let max = r.iter().copied().max().unwrap_or(0);
                    r.iter().position(|&t| t == max)
                } else {
                    r.iter().position(|&t| t == self.eos_token_id)
                };
                pos.unwrap_or(0) as u32
            })
            .collect();
        let pooled = (0..b)
            .map(|i| last.i((i, at[i] as usize)))
            .collect::<Result<Vec<_>>>()?;
        let mut pooled = Tensor::stack(&pooled, 0)?;
        if let Some(p) = &self.projection {
            pooled = p.forward(&pooled)?;
        }
        Ok(TextStates {
            last,
            penultimate,
            pooled,
        })
    }
}

/// `[batch, len]` u32 ids on `device`.
pub fn ids_tensor(rows: &[&[u32]], device: &Device) -> Result<Tensor> {
    let n = rows.first().map_or(0, |r| r.len());
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), n), device)
}
