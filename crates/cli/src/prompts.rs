//! Reading prompt lists (baselines): plain text, CSV with a `prompt` column (I2P-style),
//! JSON Lines with a `"prompt"` field, or a JSON array of strings or of objects with `"prompt"`.
//! Errors name the file and the line or record.

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
    let prompts =
        match ext.as_str() {
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
                        x.as_str().map(str::to_string).or_else(|| prompt_field(x)).ok_or_else(|| {
                        anyhow!("{name}: item {i}: expected a string or an object with \"prompt\"")
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

fn prompt_field(v: &serde_json::Value) -> Option<String> {
    v.get("prompt")?.as_str().map(str::to_string)
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
