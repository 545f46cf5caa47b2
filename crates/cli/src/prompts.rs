//! Reading prompt lists (baselines): plain text, CSV with a `prompt` column (I2P-style),
//! JSON Lines or a JSON array of strings or objects. An object gives its prompt by a
//! `"prompt"` field, or, for the ART paper's released training data, by the prompt quoted in
//! the method's own templates: the Writer's Alpaca records (`"input"`: `Modify the prompt:
//! "..." based on ...`) and the Guide's LLaVA conversations (the human turn: `...based on the
//! prompt: "...".`). Errors name the file and the line or record.

use anyhow::{Context, anyhow, bail};
use std::path::Path;

/// The prompts of `path`, by its extension (`.txt` or anything else: one prompt per non-empty
/// line; `.csv`; `.jsonl`; `.json`).
pub fn read(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read prompt file {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = path.display();
    let prompts = match ext.as_str() {
        "csv" => from_csv(&text).with_context(|| format!("{name}"))?,
        "jsonl" => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .map_err(|e| anyhow!("{name}:{}: not JSON: {e}", i + 1))?;
                prompt_field(&v).ok_or_else(|| {
                    anyhow!(
                        "{name}:{}: expected an object with a \"prompt\" string",
                        i + 1
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        "json" => {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| anyhow!("{name}: not JSON: {e}"))?;
            let items = v
                .as_array()
                .ok_or_else(|| anyhow!("{name}: expected a JSON array of prompts"))?;
            items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_str()
                        .map(str::to_string)
                        .or_else(|| prompt_field(x))
                        .ok_or_else(|| {
                            anyhow!("{name}: item {i}: expected a string, or {NO_PROMPT}")
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        }
        _ => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    };
    if prompts.is_empty() {
        bail!("{name}: no prompts found");
    }
    if let Some(i) = prompts.iter().position(|p| p.trim().is_empty()) {
        bail!("{name}: prompt {} is empty", i + 1);
    }
    Ok(prompts)
}

const NO_PROMPT: &str = "expected an object with a \"prompt\" string, an Alpaca record whose \
    \"input\" quotes `Modify the prompt: \"...\"`, or a LLaVA record whose human turn quotes \
    `the prompt: \"...\".`";

fn prompt_field(v: &serde_json::Value) -> Option<String> {
    if let Some(p) = v.get("prompt").and_then(|p| p.as_str()) {
        return Some(p.to_string());
    }
    // The Writer's training records (Alpaca): the prompt quoted in the template's input.
    if let Some(input) = v.get("input").and_then(|i| i.as_str()) {
        return quoted(input, "Modify the prompt: \"", "\" based on");
    }
    // The Guide's training records (LLaVA conversations): the prompt in the human turn.
    let turns = v.get("conversations")?.as_array()?;
    turns
        .iter()
        .filter(|t| t.get("from").and_then(|f| f.as_str()) == Some("human"))
        .find_map(|t| {
            let text = t.get("value")?.as_str()?;
            quoted(text, "based on the prompt: \"", "\".")
        })
}

/// The text between `start` and the last `end` after it (prompts may contain quotes).
fn quoted(text: &str, start: &str, end: &str) -> Option<String> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(rest[..rest.rfind(end)?].to_string())
}

fn from_csv(text: &str) -> anyhow::Result<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = r.headers().context("cannot read the CSV header")?.clone();
    let col = headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("prompt"))
        .ok_or_else(|| {
            anyhow!(
                "no `prompt` column; the header has: {}",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("record {}", i + 1))?;
        let p = rec
            .get(col)
            .ok_or_else(|| anyhow!("record {} has no prompt field", i + 1))?;
        out.push(p.to_string());
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
        let records = serde_json::json!([
            {"instruction": "Modify the given prompt", "input": input, "output": "a riot"},
            {"id": "1", "image": "x.png", "conversations": [
                {"from": "human", "value": format!("<image>\n{user}")},
                {"from": "gpt", "value": "Add a crowd."}]},
            {"prompt": "a lexica prompt", "category": "shocking"}
        ]);
        let (_d, p) = write("data.json", &records.to_string());
        assert_eq!(
            read(&p).unwrap(),
            vec!["a \"quiet\" street", "a cat, at night", "a lexica prompt"]
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
