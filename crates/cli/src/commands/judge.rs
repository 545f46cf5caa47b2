//! `art judge`: the config's judges on arbitrary prompts and images, one JSON line per item,
//! so a judge can be audited alone (against human labels, a dataset, another judge).
//!
//! The first line names the judges and their identities; then one line per prompt and per
//! image file: each judge's label, score and threshold, or that judge's error. A file that
//! cannot be read as an image is one line with its error; the other items are judged.

use crate::args::JudgeArgs;
use crate::{Failure, factory};
use anyhow::anyhow;
use art_core::{Image, JudgeScore, RoleError};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn judge(a: JudgeArgs) -> Result<(), Failure> {
    if !a.list && a.prompts.is_none() && a.images.is_none() {
        return Err(Failure::usage(anyhow!(
            "nothing to judge: give --prompts FILE and/or --images DIR"
        )));
    }
    if a.batch_size == 0 {
        return Err(Failure::usage(anyhow!("--batch-size must be at least 1")));
    }
    let layers = super::layers::config_layers(a.preset.as_deref(), a.config.as_deref())?;
    let judges = art_config::load_judges(&layers)?;
    if a.list {
        return list(&judges);
    }
    // Inputs are read before any model is loaded: a bad path fails fast.
    let prompts = match &a.prompts {
        Some(p) => crate::prompts::read(p).map_err(Failure::usage)?,
        None => vec![],
    };
    let files = match &a.images {
        Some(dir) => image_files(dir)?,
        None => vec![],
    };
    let (prompt_judges, image_judges) = factory::build_judges(&judges, &a.judges)?;
    if !prompts.is_empty() && prompt_judges.is_empty() {
        return Err(Failure::usage(anyhow!(
            "--prompts given, but the config has no enabled prompt judge"
        )));
    }
    if !files.is_empty() && image_judges.is_empty() {
        return Err(Failure::usage(anyhow!(
            "--images given, but the config has no enabled image judge"
        )));
    }
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| Failure::usage(anyhow!("cannot create {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let header = json!({
        "type": "judges",
        "prompt_judges": prompt_judges.iter().map(|j| json!({"name": j.name(), "identity": j.identity()})).collect::<Vec<_>>(),
        "image_judges": image_judges.iter().map(|j| json!({"name": j.name(), "identity": j.identity()})).collect::<Vec<_>>(),
    });
    line(&mut out, &header)?;
    // Judgments asked for (one per judge and item; one for an image that cannot be read) and
    // how many of them failed: when all did, nothing was judged and the command fails.
    let (mut judged, mut errors, mut asked) = (0usize, 0usize, 0usize);
    for (c, chunk) in prompts.chunks(a.batch_size).enumerate() {
        let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let per_judge: Vec<Vec<Result<JudgeScore, RoleError>>> =
            prompt_judges.iter().map(|j| j.judge(&texts)).collect();
        for (i, p) in texts.iter().enumerate() {
            let scores = scores_of(prompt_judges.iter().map(|j| j.name()), &per_judge, i);
            errors += count_errors(&scores);
            asked += scores.len();
            line(
                &mut out,
                &json!({"type": "prompt", "index": c * a.batch_size + i, "prompt": p, "judges": scores}),
            )?;
            judged += 1;
        }
    }
    let root = a.images.clone().unwrap_or_default();
    for chunk in files.chunks(a.batch_size) {
        let decoded: Vec<Result<Image, String>> = chunk.iter().map(|f| read_image(f)).collect();
        let ok: Vec<&Image> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        let per_judge: Vec<Vec<Result<JudgeScore, RoleError>>> =
            image_judges.iter().map(|j| j.judge(&ok)).collect();
        let mut k = 0;
        for (f, d) in chunk.iter().zip(&decoded) {
            let name = f.strip_prefix(&root).unwrap_or(f).display().to_string();
            let v = match d {
                Err(e) => {
                    errors += 1;
                    asked += 1;
                    json!({"type": "image", "file": name, "error": e})
                }
                Ok(img) => {
                    let scores = scores_of(image_judges.iter().map(|j| j.name()), &per_judge, k);
                    k += 1;
                    errors += count_errors(&scores);
                    asked += scores.len();
                    json!({"type": "image", "file": name, "width": img.width(), "height": img.height(), "judges": scores})
                }
            };
            line(&mut out, &v)?;
            judged += 1;
        }
    }
    out.flush()
        .map_err(|e| Failure::runtime(anyhow!("writing the output failed: {e}")))?;
    eprintln!("{judged} item(s) judged, {errors} error(s) recorded");
    if asked > 0 && errors == asked {
        return Err(Failure::runtime(anyhow!(
            "every judgment failed ({errors} error(s)); the output has each error"
        )));
    }
    Ok(())
}

/// One line per configured judge, disabled ones included: `role name kind state`.
fn list(judges: &art_config::Judges) -> Result<(), Failure> {
    use art_config::{Availability, JudgeSection, RoleKind};
    fn state(enabled: bool, a: Availability) -> &'static str {
        match (enabled, a) {
            (false, _) => "disabled",
            (true, Availability::Built) => "enabled",
            (true, Availability::TestFixture) => "enabled (testkit fixture)",
        }
    }
    let mut rows = Vec::new();
    for j in &judges.prompt_judge {
        rows.push((
            "prompt",
            j.name(),
            j.kind(),
            state(j.enabled(), j.availability()),
        ));
    }
    for j in &judges.image_judge {
        rows.push((
            "image",
            j.name(),
            j.kind(),
            state(j.enabled(), j.availability()),
        ));
    }
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(4).max(4);
    let mut out = std::io::stdout().lock();
    let mut text = format!("{:<6}  {:<width$}  {:<18}  state\n", "role", "name", "kind");
    for (role, name, kind, state) in rows {
        text.push_str(&format!("{role:<6}  {name:<width$}  {kind:<18}  {state}\n"));
    }
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::runtime(anyhow!("cannot write the list: {e}")))
}

fn line(out: &mut dyn Write, v: &Value) -> Result<(), Failure> {
    writeln!(out, "{v}").map_err(|e| Failure::runtime(anyhow!("writing the output failed: {e}")))
}

/// Item `i`'s result from every judge, by judge name.
fn scores_of<'a>(
    names: impl Iterator<Item = &'a str>,
    per_judge: &[Vec<Result<JudgeScore, RoleError>>],
    i: usize,
) -> serde_json::Map<String, Value> {
    names
        .zip(per_judge)
        .map(|(n, results)| {
            let v = match results
                .get(i)
                .map(|r| r.clone().and_then(JudgeScore::finite))
            {
                Some(Ok(s)) => serde_json::to_value(s).expect("a score serializes"),
                Some(Err(e)) => json!({"error": e.to_string()}),
                None => json!({"error": "the judge returned fewer results than items"}),
            };
            (n.to_string(), v)
        })
        .collect()
}

fn count_errors(scores: &serde_json::Map<String, Value>) -> usize {
    scores.values().filter(|v| v.get("error").is_some()).count()
}

/// Every file under `dir`, sorted (hidden files skipped).
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    if !dir.is_dir() {
        return Err(Failure::usage(anyhow!(
            "--images {}: not a folder",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| Failure::usage(anyhow!("cannot read {}: {e}", d.display())))?;
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_image(path: &Path) -> Result<Image, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    art_remote::backends::codec::decode_image(&bytes)
}
