//! Downloading a model repository's files from the Hugging Face hub into the standard hub
//! cache (`models--org--name/{blobs,snapshots/<commit>,refs}`), the layout the Python
//! libraries read too, so a model fetched by `art` is found by transformers and vice versa.
//!
//! The endpoint is `$HF_ENDPOINT` (default `https://huggingface.co`); a token for gated models
//! (Llama 2, Llama Guard) comes from `$HF_TOKEN` (or `$HUGGING_FACE_HUB_TOKEN`) and goes only
//! into the `Authorization` header, never into messages. `$HF_HUB_OFFLINE=1` forbids the
//! network. Files are streamed to `blobs/*.incomplete` with a progress bar on the terminal and
//! renamed when complete (and, for LFS files, whose etag is the SHA-256 of their content, when
//! they hash to it), so an interrupted or corrupt download never leaves its file in a snapshot.

use crate::HubError;
use crate::digest::hex;
use crate::http::agent;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn token() -> Option<String> {
    ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()))
}

/// Whether `$HF_HUB_OFFLINE` forbids the network (for every download, not only the hub's).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
        .trim_end_matches('/')
        .to_string()
}

fn missing(repo: &str, why: impl Into<String>) -> HubError {
    HubError::Hub {
        repo: repo.to_string(),
        detail: why.into(),
    }
}

fn get(
    agent: &ureq::Agent,
    url: &str,
    repo: &str,
) -> Result<ureq::http::Response<ureq::Body>, HubError> {
    let mut req = agent.get(url);
    if let Some(t) = token() {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.call().map_err(|e| {
        missing(
            repo,
            format!(
                "on the Hugging Face hub ({}): cannot reach it: {e}",
                endpoint()
            ),
        )
    })?;
    match resp.status().as_u16() {
        200 => Ok(resp),
        401 | 403 => Err(missing(
            repo,
            format!(
                "on the hub: access refused (HTTP {}); a gated model needs its licence accepted and HF_TOKEN set",
                resp.status().as_u16()
            ),
        )),
        404 => Err(missing(repo, format!("not found on the hub ({url})"))),
        s => Err(missing(repo, format!("on the hub: HTTP {s} for {url}"))),
    }
}

/// Which files of a repository a model needs: its JSON configs and tokenizer at the top
/// level and its safetensors weights (PyTorch `.bin` only for adapters that have nothing
/// else).
pub fn model_files(names: &[String]) -> Vec<String> {
    let has_st_adapter = names.iter().any(|n| n == "adapter_model.safetensors");
    names
        .iter()
        .filter(|n| !n.contains('/'))
        .filter(|n| {
            n.ends_with(".json")
                || n.ends_with(".safetensors")
                || (n.as_str() == "adapter_model.bin" && !has_st_adapter)
                || n.as_str() == "tokenizer.model"
                // An original-layout LLaVA LoRA's projector and other trained non-LoRA weights.
                || n.as_str() == "non_lora_trainables.bin"
        })
        .cloned()
        .collect()
}

/// The files of a diffusers pipeline `art` reads: `model_index.json` and, in the component
/// folders it uses, configs, tokenizer files and the safetensors weights (the full-precision
/// file, or the `fp16` variant when that is all there is). Single-file checkpoints, `.bin`,
/// ONNX/Flax exports and the safety checker are left on the hub.
pub fn pipeline_files(names: &[String]) -> Vec<String> {
    const PARTS: [&str; 7] = [
        "unet",
        "vae",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
        "scheduler",
    ];
    let is_fp16 = |f: &str| f.contains(".fp16.") || f.contains(".fp16-");
    let weights = |f: &str| f.ends_with(".safetensors") || f.ends_with(".safetensors.index.json");
    // Per folder: whether it has full-precision safetensors.
    let full = |dir: &str| {
        names.iter().any(|n| {
            n.split_once('/')
                .is_some_and(|(d, f)| d == dir && f.ends_with(".safetensors") && !is_fp16(f))
        })
    };
    names
        .iter()
        .filter(|n| {
            if n.as_str() == "model_index.json" {
                return true;
            }
            let Some((dir, file)) = n.split_once('/') else {
                return false;
            };
            if !PARTS.contains(&dir) || file.contains('/') {
                return false;
            }
            if weights(file) {
                return is_fp16(file) != full(dir);
            }
            (file.ends_with(".json") || file.ends_with(".txt")) && !is_fp16(file)
        })
        .cloned()
        .collect()
}

/// Downloads the files `pick` chooses of `repo` at `revision` (a branch, tag or commit) into
/// the hub cache `cache`; returns the snapshot folder. Files already in the snapshot are not
/// fetched again.
pub fn download(
    cache: &Path,
    repo: &str,
    revision: &str,
    pick: impl Fn(&[String]) -> Vec<String>,
) -> Result<PathBuf, HubError> {
    if offline() {
        return Err(missing(
            repo,
            "not in the Hugging Face hub cache, and HF_HUB_OFFLINE forbids downloading it",
        ));
    }
    let agent = agent();
    let base = endpoint();
    let mut info = get(
        &agent,
        &format!("{base}/api/models/{repo}/revision/{revision}"),
        repo,
    )?;
    let info: serde_json::Value = serde_json::from_reader(info.body_mut().as_reader())
        .map_err(|e| missing(repo, format!("on the hub: unreadable model info: {e}")))?;
    let sha = info["sha"]
        .as_str()
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| missing(repo, "on the hub: the model info has no commit sha"))?
        .to_string();
    let names: Vec<String> = info["siblings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["rfilename"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let files = pick(&names);
    if files.is_empty() {
        return Err(missing(
            repo,
            "on the hub: the repository has no model files",
        ));
    }
    let root = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = root.join("snapshots").join(&sha);
    let blobs = root.join("blobs");
    let io = |p: &Path, e: std::io::Error| HubError::Invalid {
        path: p.to_path_buf(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(&snapshot).map_err(|e| io(&snapshot, e))?;
    std::fs::create_dir_all(&blobs).map_err(|e| io(&blobs, e))?;
    for name in &files {
        // Files in subfolders (diffusers pipelines) keep their folders; nothing may climb out.
        if !name.split('/').all(is_plain) {
            return Err(missing(
                repo,
                format!("on the hub: refusing the file name `{name}`"),
            ));
        }
        let target = snapshot.join(name);
        if target.exists() {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let url = format!("{base}/{repo}/resolve/{sha}/{name}");
        let mut resp = get(&agent, &url, repo)?;
        let header = |h: &str| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim_start_matches("W/").trim_matches('"').to_string())
        };
        let etag = header("x-linked-etag").or_else(|| header("etag"));
        let total = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let part = blobs.join(format!("{}.incomplete", sanitize(name)));
        let mut out = std::fs::File::create(&part).map_err(|e| io(&part, e))?;
        let bar = progress(name, total);
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        let mut digest = Sha256::new();
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| missing(repo, format!("download of {name} broke off: {e}")))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(|e| io(&part, e))?;
            digest.update(&buf[..n]);
            got += n as u64;
            bar.set_position(got);
        }
        bar.finish_and_clear();
        // An LFS file's etag is the SHA-256 of its content (the hub names blobs by it): a
        // body that does not hash to it is not the file, whatever its length.
        if let Some(want) = etag.as_deref().filter(|e| is_sha256(e)) {
            let have = hex(&digest.finalize());
            if have != want.to_ascii_lowercase() {
                let _ = std::fs::remove_file(&part);
                return Err(missing(
                    repo,
                    format!(
                        "download of {name}: its content has SHA-256 {have}, the hub's etag \
                         says {want}"
                    ),
                ));
            }
        }
        if let Some(t) = total
            && t != got
        {
            return Err(missing(
                repo,
                format!("download of {name} broke off at {got} of {t} bytes"),
            ));
        }
        out.sync_all().map_err(|e| io(&part, e))?;
        let blob = blobs.join(
            etag.filter(|e| is_plain(e))
                .unwrap_or_else(|| format!("{sha}-{}", sanitize(name))),
        );
        std::fs::rename(&part, &blob).map_err(|e| io(&blob, e))?;
        let depth = name.matches('/').count();
        link(&blob, &target, depth).map_err(|e| io(&target, e))?;
    }
    if revision != sha && is_plain(revision) {
        let refs = root.join("refs");
        std::fs::create_dir_all(&refs).map_err(|e| io(&refs, e))?;
        std::fs::write(refs.join(revision), &sha).map_err(|e| io(&refs, e))?;
    }
    Ok(snapshot)
}

/// Whether an etag is a SHA-256 (64 hex digits): the hub's etag of an LFS file.
fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s != ".."
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(unix)]
fn link(blob: &Path, target: &Path, depth: usize) -> std::io::Result<()> {
    let up = "../".repeat(depth + 2);
    let rel = Path::new(&up)
        .join("blobs")
        .join(blob.file_name().expect("blob name"));
    std::os::unix::fs::symlink(rel, target)
}

#[cfg(not(unix))]
fn link(blob: &Path, target: &Path, _depth: usize) -> std::io::Result<()> {
    std::fs::copy(blob, target).map(|_| ())
}

fn progress(name: &str, total: Option<u64>) -> indicatif::ProgressBar {
    let bar = match total {
        Some(t) => indicatif::ProgressBar::new(t),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(format!("downloading {name}"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_fetches_its_components_and_one_precision() {
        let names: Vec<String> = [
            "model_index.json",
            "v1-5-pruned-emaonly.safetensors",
            "README.md",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "unet/diffusion_pytorch_model.bin",
            "vae/config.json",
            "vae/diffusion_pytorch_model.fp16.safetensors",
            "text_encoder/config.json",
            "text_encoder/model.safetensors.index.json",
            "text_encoder/model-00001-of-00002.safetensors",
            "text_encoder/model-00002-of-00002.safetensors",
            "tokenizer/vocab.json",
            "tokenizer/merges.txt",
            "scheduler/scheduler_config.json",
            "safety_checker/model.safetensors",
            "unet/onnx/model.onnx",
        ]
        .map(String::from)
        .to_vec();
        let got = pipeline_files(&names);
        let want = [
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.fp16.safetensors",
            "text_encoder/config.json",
            "text_encoder/model.safetensors.index.json",
            "text_encoder/model-00001-of-00002.safetensors",
            "text_encoder/model-00002-of-00002.safetensors",
            "tokenizer/vocab.json",
            "tokenizer/merges.txt",
            "scheduler/scheduler_config.json",
        ];
        assert_eq!(got, want);
    }
}
