//! The tokenizers of the text classifiers, built as transformers 5 builds them: the folder's
//! `tokenizer.json` as it says, else RoBERTa's byte-level BPE from `vocab.json` +
//! `merges.txt`, or BERT's WordPiece from `vocab.txt`, with the special tokens of
//! `tokenizer_config.json` and `special_tokens_map.json`.

use crate::ModelError;
use crate::classifier::read_json;
use art_nn::invalid;
use serde_json::{Map, Value, json};
use std::path::Path;
use tokenizers::Tokenizer;

/// `tokenizer_config.json` with `special_tokens_map.json` over it (both optional).
pub(super) fn tokenizer_settings(dir: &Path) -> Result<Map<String, Value>, ModelError> {
    let mut settings = Map::new();
    for name in ["tokenizer_config.json", "special_tokens_map.json"] {
        if !dir.join(name).is_file() {
            continue;
        }
        match read_json(dir, name)? {
            Value::Object(m) => settings.extend(m),
            _ => return Err(invalid(dir.join(name), "not a JSON object")),
        }
    }
    Ok(settings)
}

/// A special token of the settings: its text and, for an object, its flags.
fn special_token(settings: &Map<String, Value>, key: &str, default: &str) -> (String, Value) {
    let flags = |v: &Value, f: &str| v.get(f).and_then(Value::as_bool).unwrap_or(false);
    match settings.get(key) {
        Some(Value::String(s)) => (s.clone(), json!({})),
        Some(v @ Value::Object(_)) => match v.get("content").and_then(Value::as_str) {
            Some(c) => (
                c.to_string(),
                json!({"lstrip": flags(v, "lstrip"), "rstrip": flags(v, "rstrip"),
                       "single_word": flags(v, "single_word"),
                       "normalized": flags(v, "normalized")}),
            ),
            None => (default.to_string(), json!({})),
        },
        _ => (default.to_string(), json!({})),
    }
}

/// The name tokenizer_config.json gives the special token `key` (else `default`) and its id
/// by `lookup`; `vocab_path` is named when the vocabulary lacks it.
fn special_id(
    settings: &Map<String, Value>,
    key: &str,
    default: &str,
    lookup: &dyn Fn(&str) -> Option<u64>,
    vocab_path: &Path,
) -> Result<(String, u64), ModelError> {
    let (name, _) = special_token(settings, key, default);
    match lookup(&name) {
        Some(i) => Ok((name, i)),
        None => Err(invalid(
            vocab_path,
            format!("no {key} `{name}` in the vocabulary"),
        )),
    }
}

/// The added (special) tokens: `added_tokens_decoder` of tokenizer_config.json, then the
/// named special tokens found in the vocabulary.
fn added_tokens(
    settings: &Map<String, Value>,
    named: &[(&str, &str)],
    vocab_id: &dyn Fn(&str) -> Option<u64>,
) -> Vec<Value> {
    let mut added: Vec<Value> = Vec::new();
    if let Some(Value::Object(dec)) = settings.get("added_tokens_decoder") {
        for (k, v) in dec {
            if let (Ok(i), Some(content)) = (k.parse::<u64>(), v.get("content")) {
                let flag = |f: &str, d: bool| v.get(f).and_then(Value::as_bool).unwrap_or(d);
                added.push(json!({"id": i, "content": content,
                    "single_word": flag("single_word", false), "lstrip": flag("lstrip", false),
                    "rstrip": flag("rstrip", false), "normalized": flag("normalized", false),
                    "special": flag("special", true)}));
            }
        }
    }
    for (key, default) in named {
        let (name, flags) = special_token(settings, key, default);
        if added.iter().any(|a| a["content"] == name.as_str()) {
            continue;
        }
        if let Some(i) = vocab_id(&name) {
            let flag = |f: &str| flags.get(f).and_then(Value::as_bool).unwrap_or(false);
            added.push(
                json!({"id": i, "content": name, "single_word": flag("single_word"),
                "lstrip": flag("lstrip"), "rstrip": flag("rstrip"),
                "normalized": flag("normalized"), "special": true}),
            );
        }
    }
    added.sort_by_key(|a| a["id"].as_u64());
    added
}

/// Which vocabulary files a folder without `tokenizer.json` is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vocabulary {
    /// RoBERTa's byte-level BPE: `vocab.json` + `merges.txt`.
    ByteLevelBpe,
    /// BERT's (and DistilBERT's) WordPiece: `vocab.txt`.
    WordPiece,
}

pub(super) fn load_tokenizer(
    dir: &Path,
    vocabulary: Vocabulary,
    settings: &Map<String, Value>,
) -> Result<Tokenizer, ModelError> {
    let json_path = dir.join("tokenizer.json");
    if json_path.is_file() {
        return Tokenizer::from_file(&json_path)
            .map_err(|e| invalid(&json_path, format!("not a readable tokenizer.json: {e}")));
    }
    let spec = match vocabulary {
        Vocabulary::ByteLevelBpe => roberta_spec(dir, settings)?,
        Vocabulary::WordPiece => wordpiece_spec(dir, settings)?,
    };
    spec.to_string()
        .parse::<Tokenizer>()
        .map_err(|e| invalid(dir, format!("cannot build the tokenizer: {e}")))
}

/// transformers 5's `RobertaTokenizer` from `vocab.json` + `merges.txt`.
fn roberta_spec(dir: &Path, settings: &Map<String, Value>) -> Result<Value, ModelError> {
    let vocab_path = dir.join("vocab.json");
    let vocab = read_json(dir, "vocab.json")?;
    let Some(vocab_map) = vocab.as_object() else {
        return Err(invalid(&vocab_path, "not a JSON object of token ids"));
    };
    let merges_path = dir.join("merges.txt");
    let merges = String::from_utf8(art_hub::read(dir, "merges.txt")?)
        .map_err(|e| invalid(&merges_path, e))?;
    let merges: Vec<&str> = merges
        .lines()
        .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
        .collect();
    let id = |name: &str| vocab_map.get(name).and_then(Value::as_u64);
    let named = [
        ("bos_token", "<s>"),
        ("eos_token", "</s>"),
        ("unk_token", "<unk>"),
        ("sep_token", "</s>"),
        ("pad_token", "<pad>"),
        ("cls_token", "<s>"),
        ("mask_token", "<mask>"),
    ];
    let added = added_tokens(settings, &named, &id);
    // RoBERTa's special tokens may be added tokens outside vocab.json.
    let vocab_or_added = |name: &str| {
        id(name).or_else(|| {
            added
                .iter()
                .find(|a| a["content"] == name)
                .and_then(|a| a["id"].as_u64())
        })
    };
    let sep = special_id(settings, "sep_token", "</s>", &vocab_or_added, &vocab_path)?;
    let cls = special_id(settings, "cls_token", "<s>", &vocab_or_added, &vocab_path)?;
    let flag = |k: &str, d: bool| settings.get(k).and_then(Value::as_bool).unwrap_or(d);
    let prefix_space = flag("add_prefix_space", false);
    let trim = flag("trim_offsets", true);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": prefix_space,
            "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "RobertaProcessing", "sep": [sep.0, sep.1],
            "cls": [cls.0, cls.1], "trim_offsets": trim, "add_prefix_space": prefix_space},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
            "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}
    }))
}

/// transformers 5's `BertTokenizer` / `DistilBertTokenizer` from `vocab.txt`.
fn wordpiece_spec(dir: &Path, settings: &Map<String, Value>) -> Result<Value, ModelError> {
    let vocab_path = dir.join("vocab.txt");
    let text =
        String::from_utf8(art_hub::read(dir, "vocab.txt")?).map_err(|e| invalid(&vocab_path, e))?;
    // load_vocab: one token per line (the newline stripped), the id is the line number.
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut vocab = Map::new();
    for (i, t) in lines.iter().enumerate() {
        vocab.insert((*t).to_string(), json!(i));
    }
    let id = |name: &str| vocab.get(name).and_then(Value::as_u64);
    let named = [
        ("pad_token", "[PAD]"),
        ("unk_token", "[UNK]"),
        ("cls_token", "[CLS]"),
        ("sep_token", "[SEP]"),
        ("mask_token", "[MASK]"),
    ];
    let added = added_tokens(settings, &named, &id);
    let cls = special_id(settings, "cls_token", "[CLS]", &id, &vocab_path)?;
    let sep = special_id(settings, "sep_token", "[SEP]", &id, &vocab_path)?;
    let (unk, _) = special_token(settings, "unk_token", "[UNK]");
    let lowercase = settings
        .get("do_lower_case")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let chinese = settings
        .get("tokenize_chinese_chars")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let strip_accents = settings
        .get("strip_accents")
        .and_then(Value::as_bool)
        .map_or(Value::Null, Value::Bool);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
            "handle_chinese_chars": chinese, "strip_accents": strip_accents,
            "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": cls.0, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": sep.0, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": cls.0, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": sep.0, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": sep.0, "type_id": 1}}],
            "special_tokens": {
                cls.0.clone(): {"id": cls.0, "ids": [cls.1], "tokens": [cls.0]},
                sep.0.clone(): {"id": sep.0, "ids": [sep.1], "tokens": [sep.0]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    }))
}
