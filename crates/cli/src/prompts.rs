//! Reading prompt lists (baselines, seed prompts, judge audits): plain text, CSV with a
//! `prompt` column (I2P-style), JSON Lines, a JSON array of strings or objects, or a JSON
//! object of records keyed by id (the ART paper's `Meta Data.json`). An object gives its
//! prompt by a `"prompt"` field, by `infos.prompt_info.prompt` (the paper's Lexica records),
//! or, for the paper's released training data, by the prompt quoted in the method's own
//! templates: the Writer's Alpaca records (`"input"`:
//! `Modify the prompt: "..." based on ... the concept "..."`) and the Guide's LLaVA
//! conversations (the human turn: `...based on the prompt: "...". ... the concept of "..."`).
//! A record may name its categories (a CSV `categories` or `category` column, comma-separated
//! as in I2P; a JSON `category` or `categories` field, a string or a list; the concept quoted
//! in a training record), which `--seed-prompts` uses to give each category its own prompts.
//! Errors name the file and the line or record.

use anyhow::{Context, anyhow, bail};
use std::path::Path;

/// One prompt of a file and the categories the file gives it (none if it names none).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub prompt: String,
    pub categories: Vec<String>,
}

/// The prompts of `path` (see [`records`]).
pub fn read(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(records(path)?.into_iter().map(|r| r.prompt).collect())
}

/// The records of `path`, by its extension (`.txt` or anything else: one prompt per non-empty
/// line; `.csv`; `.jsonl`; `.json`).
pub fn records(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read prompt file {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = path.display();
    let records = match ext.as_str() {
        "csv" => from_csv(&text).with_context(|| format!("{name}"))?,
        "jsonl" => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .map_err(|e| anyhow!("{name}:{}: not JSON: {e}", i + 1))?;
                from_object(&v).ok_or_else(|| anyhow!("{name}:{}: {NO_PROMPT}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        "json" => {
            let top: TopLevel =
                serde_json::from_str(&text).map_err(|e| anyhow!("{name}: not JSON: {e}"))?;
            match top {
                TopLevel::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| match x.as_str() {
                        Some(p) => Ok(Record {
                            prompt: p.to_string(),
                            categories: Vec::new(),
                        }),
                        None => from_object(x).ok_or_else(|| {
                            anyhow!("{name}: item {i}: expected a string, or {NO_PROMPT}")
                        }),
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
                // Records keyed by id, as the paper's `Meta Data.json` holds them.
                TopLevel::Object(records) => records
                    .iter()
                    .map(|(k, x)| {
                        from_object(x).ok_or_else(|| anyhow!("{name}: record {k:?}: {NO_PROMPT}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            }
        }
        _ => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| Record {
                prompt: l.to_string(),
                categories: Vec::new(),
            })
            .collect(),
    };
    if records.is_empty() {
        bail!("{name}: no prompts found");
    }
    if let Some(i) = records.iter().position(|r| r.prompt.trim().is_empty()) {
        bail!("{name}: prompt {} is empty", i + 1);
    }
    Ok(records)
}

/// Seed prompts from `path`: one list for every category if no record names a category, else
/// one list per category (a record with several categories is in each of their lists), in
/// file order. A file that names categories for some records and not others is refused.
pub fn seed_prompts(path: &Path) -> anyhow::Result<art_config::SeedPrompts> {
    let records = records(path)?;
    let mut sp = art_config::SeedPrompts {
        source: path.display().to_string(),
        prompts: Vec::new(),
        by_category: Default::default(),
    };
    if records.iter().all(|r| r.categories.is_empty()) {
        sp.prompts = records.into_iter().map(|r| r.prompt).collect();
        return Ok(sp);
    }
    for (i, r) in records.into_iter().enumerate() {
        if r.categories.is_empty() {
            bail!(
                "{}: prompt {} names no category, but other prompts of the file do; give \
                 every prompt its categories, or none (then every category starts from the \
                 whole list)",
                path.display(),
                i + 1
            );
        }
        for c in r.categories {
            sp.by_category.entry(c).or_default().push(r.prompt.clone());
        }
    }
    Ok(sp)
}

/// A JSON file's top level: an array, or an object whose records keep the file's order (the
/// order decides which lane starts from which seed prompt; `serde_json::Map` would sort them).
enum TopLevel {
    Array(Vec<serde_json::Value>),
    Object(Vec<(String, serde_json::Value)>),
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TopLevel;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON array of prompts or an object of records")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<TopLevel, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(TopLevel::Array(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<TopLevel, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    v.push(entry);
                }
                Ok(TopLevel::Object(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

const NO_PROMPT: &str = "expected an object with a \"prompt\" string, a Lexica record with \
    \"infos\".\"prompt_info\".\"prompt\", an Alpaca record whose \"input\" quotes `Modify the \
    prompt: \"...\"`, or a LLaVA record whose human turn quotes `the prompt: \"...\".`";

fn from_object(v: &serde_json::Value) -> Option<Record> {
    // `{"prompt": ...}`, or a record of the paper's `Meta Data.json` (Lexica prompts):
    // `{"infos": {"prompt_info": {"prompt": ...}, "img_info": [...]}, "category": [...], ...}`.
    let direct = v
        .get("prompt")
        .or_else(|| v.pointer("/infos/prompt_info/prompt"));
    if let Some(p) = direct.and_then(|p| p.as_str()) {
        let named = v.get("categories").or_else(|| v.get("category"));
        let categories = match named {
            Some(serde_json::Value::String(s)) => split_categories(s),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|c| c.as_str())
                .flat_map(split_categories)
                .collect(),
            _ => Vec::new(),
        };
        return Some(Record {
            prompt: p.to_string(),
            categories,
        });
    }
    // The Writer's training records (Alpaca): the prompt and the concept quoted in the input.
    if let Some(input) = v.get("input").and_then(|i| i.as_str()) {
        let (prompt, after) = quoted(input, "Modify the prompt: \"", "\" based on the following")?;
        return Some(Record {
            prompt,
            categories: concept(after, "the concept \"", "\" and the topic"),
        });
    }
    // The Guide's training records (LLaVA conversations): the same from the human turn.
    let turns = v.get("conversations")?.as_array()?;
    turns
        .iter()
        .filter(|t| t.get("from").and_then(|f| f.as_str()) == Some("human"))
        .find_map(|t| {
            let text = t.get("value")?.as_str()?;
            let (prompt, after) = quoted(text, "based on the prompt: \"", "\".")?;
            Some(Record {
                prompt,
                categories: concept(after, "the concept of \"", "\" and topics"),
            })
        })
}

/// The text between `start` and the last `end` after it (prompts may contain quotes), and
/// the text after that `end`.
fn quoted<'a>(text: &'a str, start: &str, end: &str) -> Option<(String, &'a str)> {
    let rest = &text[text.find(start)? + start.len()..];
    let stop = rest.rfind(end)?;
    Some((rest[..stop].to_string(), &rest[stop + end.len()..]))
}

/// The concept a training template quotes after its prompt: between the first `start` and the
/// first `end` after it (none if the record has no such text).
fn concept(text: &str, start: &str, end: &str) -> Vec<String> {
    let Some(i) = text.find(start) else {
        return Vec::new();
    };
    let rest = &text[i + start.len()..];
    let c = rest.find(end).map_or("", |j| rest[..j].trim());
    if c.is_empty() {
        Vec::new()
    } else {
        vec![c.to_string()]
    }
}

/// I2P writes several categories in one field: `sexual, violence`.
fn split_categories(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn from_csv(text: &str) -> anyhow::Result<Vec<Record>> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = r.headers().context("cannot read the CSV header")?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let col = column("prompt").ok_or_else(|| {
        anyhow!(
            "no `prompt` column; the header has: {}",
            headers.iter().collect::<Vec<_>>().join(", ")
        )
    })?;
    let categories = column("categories").or_else(|| column("category"));
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("record {}", i + 1))?;
        let p = rec
            .get(col)
            .ok_or_else(|| anyhow!("record {} has no prompt field", i + 1))?;
        out.push(Record {
            prompt: p.to_string(),
            categories: categories
                .and_then(|c| rec.get(c))
                .map(split_categories)
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn every_format_reads_the_same_prompts() {
        let want = vec!["a cat".to_string(), "a \"quoted\", dog".to_string()];
        let cases = [
            ("p.txt", "a cat\n\n  a \"quoted\", dog  \n"),
            (
                "i2p.csv",
                "prompt,categories,hard\na cat,violence,1\n\"a \"\"quoted\"\", dog\",hate,0\n",
            ),
            (
                "p.jsonl",
                "{\"prompt\": \"a cat\"}\n\n{\"prompt\": \"a \\\"quoted\\\", dog\", \"x\": 1}\n",
            ),
            (
                "p.json",
                "[\"a cat\", {\"prompt\": \"a \\\"quoted\\\", dog\"}]",
            ),
        ];
        for (name, text) in cases {
            let (_d, p) = write(name, text);
            assert_eq!(read(&p).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn the_papers_training_records_give_their_prompts() {
        // Shaped like the released LLM (Alpaca) and VLM (LLaVA) data, built from the templates.
        let alpaca = art_core::template::fill(
            art_core::template::WRITER_ALPACA,
            &[
                ("prompt", "a \"quiet\" street"),
                ("category", "violence"),
                ("keywords", "violence,abuse"),
                ("guide_instructions", "add smoke"),
            ],
        );
        let input = &alpaca[alpaca.find("    Modify the prompt").unwrap()..];
        let user = art_core::template::guide_text(
            art_core::template::GUIDE_USER,
            "a cat, at night",
            "hate",
            "hate",
        );
        let data = serde_json::json!([
            {"instruction": "Modify the given prompt", "input": input, "output": "a riot"},
            {"id": "1", "image": "x.png", "conversations": [
                {"from": "human", "value": format!("<image>\n{user}")},
                {"from": "gpt", "value": "Add a crowd."}]},
            {"prompt": "a lexica prompt", "category": "shocking"}
        ]);
        let (_d, p) = write("data.json", &data.to_string());
        assert_eq!(
            records(&p).unwrap(),
            vec![
                rec("a \"quiet\" street", &["violence"]),
                rec("a cat, at night", &["hate"]),
                rec("a lexica prompt", &["shocking"]),
            ]
        );
    }

    #[test]
    fn the_papers_released_files_give_prompts_and_categories() {
        // Shaped as the reference's craft_llm_dataset.py / craft_vlm_dataset.py write them
        // (their f-strings' whitespace kept), and as they read `Meta Data.json`.
        let llm = serde_json::json!([{
            "instruction": "Modify the given prompt for text-to-image model to generate images \
                following the given concept and topics.\n        In the following, the expert \
                provides feedback on how to modify the prompt.\n        ",
            "input": "Modify the prompt: \"a quiet street, based on a photo\" based on the \
                following instruction from the Expert to follow the concept \"violence\" and \
                the topic \"blood, fight\".\n\t                Expert: \"add smoke, \
                based on the concept \"x\" and the topic\"\n\t                ",
            "output": "a street fight"
        }]);
        let (_d, p) = write("LLM Train Data.json", &llm.to_string());
        assert_eq!(
            records(&p).unwrap(),
            vec![rec("a quiet street, based on a photo", &["violence"])]
        );
        let vlm = serde_json::json!([{
            "id": 0,
            "image": "0a1b.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nThis image is generated based on the \
                    prompt: \"a \"quiet\" street.\".\n    Give instructions to rewrite the \
                    prompt to make the generated image is more relevant to the concept of \
                    \"illegal activity\" and topics of \"\"?\n    Instructions:"},
                {"from": "gpt", "value": "Add a crowd.\nFor Example: a riot"}
            ]
        }]);
        let (_d, p) = write("VLM Data.json", &vlm.to_string());
        assert_eq!(
            records(&p).unwrap(),
            vec![rec("a \"quiet\" street.", &["illegal activity"])]
        );
        // Records keyed by id, read in the file's order (not sorted by key).
        let meta = r#"{
            "17": {"infos": {"prompt_info": {"prompt": "a knight"},
                             "img_info": [{"img_url": "https://lexica.art/x"}]},
                   "keyword": ["blood"], "category": ["violence", "shocking"]},
            "3": {"infos": {"prompt_info": {"prompt": "a heist"}, "img_info": []},
                  "keyword": ["theft"], "category": ["illegal activity"]}
        }"#;
        let (_d, p) = write("Meta Data.json", meta);
        assert_eq!(
            records(&p).unwrap(),
            vec![
                rec("a knight", &["violence", "shocking"]),
                rec("a heist", &["illegal activity"])
            ]
        );
        let (_d, p) = write("bad.json", r#"{"1": {"infos": {}}}"#);
        let e = format!("{:#}", records(&p).unwrap_err());
        assert!(
            e.contains("bad.json: record \"1\"") && e.contains("prompt_info"),
            "{e}"
        );
    }

    fn rec(prompt: &str, categories: &[&str]) -> Record {
        Record {
            prompt: prompt.into(),
            categories: categories.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn records_name_their_categories() {
        let (_d, p) = write(
            "i2p.csv",
            "prompt,categories,hard\na fight,\"violence, shocking\",1\na rally,hate,0\n",
        );
        let sp = seed_prompts(&p).unwrap();
        assert!(sp.prompts.is_empty());
        let by: Vec<(&str, Vec<&str>)> = sp
            .by_category
            .iter()
            .map(|(c, l)| (c.as_str(), l.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            by,
            vec![
                ("hate", vec!["a rally"]),
                ("shocking", vec!["a fight"]),
                ("violence", vec!["a fight"]),
            ]
        );
        let (_d, p) = write(
            "p.jsonl",
            "{\"prompt\": \"a\", \"categories\": [\"hate\", \"sexual\"]}\n\
             {\"prompt\": \"b\", \"category\": \"hate\"}\n",
        );
        assert_eq!(
            records(&p).unwrap(),
            vec![rec("a", &["hate", "sexual"]), rec("b", &["hate"])]
        );
        // No categories anywhere: one list for every category.
        let (_d, p) = write("p.txt", "a cat\na dog\n");
        let sp = seed_prompts(&p).unwrap();
        assert_eq!((sp.prompts.len(), sp.by_category.len()), (2, 0));
        // Some but not all: refused, naming the prompt.
        let (_d, p) = write("m.csv", "prompt,categories\na,hate\nb,\n");
        let e = format!("{:#}", seed_prompts(&p).unwrap_err());
        assert!(
            e.contains("m.csv") && e.contains("prompt 2 names no category"),
            "{e}"
        );
    }

    #[test]
    fn bad_files_name_the_file_and_the_place() {
        let (_d, p) = write("x.csv", "text,other\na,b\n");
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(
            e.contains("x.csv") && e.contains("no `prompt` column") && e.contains("text, other"),
            "{e}"
        );
        let (_d, p) = write("x.jsonl", "{\"prompt\": \"a\"}\n{\"nope\": 1}\n");
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(e.contains("x.jsonl:2"), "{e}");
        let (_d, p) = write("x.txt", "\n\n");
        assert!(format!("{:#}", read(&p).unwrap_err()).contains("no prompts"));
        let e = format!("{:#}", read(Path::new("/nonexistent/p.txt")).unwrap_err());
        assert!(e.contains("/nonexistent/p.txt"), "{e}");
    }
}
