//! A published file fetched by URL and pinned by size and SHA-256 (ART's judge heads on
//! GitHub at a fixed commit): a cached copy that matches its pin is used as it is; otherwise
//! it is downloaded, checked, written under a temporary name and renamed into place.

use crate::{HubError, digest::sha256_hex, hf::offline, http::agent};
use std::path::{Path, PathBuf};

/// What a published file must be, and how to name it in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    pub url: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// The source named first in errors (`GuanlinLee/ART`).
    pub source: String,
    /// The file as messages name it (``ART's `ViT-L-14/prompts.p` at <commit>``).
    pub what: String,
}

impl PinnedFile {
    /// Whether `bytes` are the pinned file.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.size && sha256_hex(bytes) == self.sha256
    }

    fn error(&self, detail: impl Into<String>) -> HubError {
        HubError::Hub {
            repo: self.source.clone(),
            detail: detail.into(),
        }
    }

    /// `target` when it holds the pinned file, else the file downloaded into `target`.
    /// `HF_HUB_OFFLINE=1` forbids the download.
    pub fn fetch(&self, target: &Path) -> Result<PathBuf, HubError> {
        if let Ok(bytes) = std::fs::read(target)
            && self.matches(&bytes)
        {
            return Ok(target.to_path_buf());
        }
        if offline() {
            return Err(self.error(format!(
                "{} is not in the cache ({}) and HF_HUB_OFFLINE forbids downloading it",
                self.what,
                target.display()
            )));
        }
        let url = &self.url;
        let mut resp = agent()
            .get(url)
            .call()
            .map_err(|e| self.error(format!("cannot download {url}: {e}")))?;
        if resp.status().as_u16() != 200 {
            return Err(self.error(format!(
                "cannot download {url}: HTTP {}",
                resp.status().as_u16()
            )));
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(self.size + 1)
            .read_to_vec()
            .map_err(|e| {
                self.error(format!(
                    "download of {url} failed (expected {} bytes): {e}",
                    self.size
                ))
            })?;
        if bytes.len() as u64 != self.size {
            return Err(self.error(format!(
                "{url} has {} bytes, {} has {}",
                bytes.len(),
                self.what,
                self.size
            )));
        }
        let digest = sha256_hex(&bytes);
        if digest != self.sha256 {
            return Err(self.error(format!(
                "{url} has SHA-256 {digest}, {} has {}",
                self.what, self.sha256
            )));
        }
        write_atomically(target, &bytes)?;
        Ok(target.to_path_buf())
    }
}

/// Writes `bytes` to a temporary file beside `target` and renames it into place, so a reader
/// never sees a partial file.
fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), HubError> {
    let parent = target.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| HubError::io(&parent, e))?;
    let part = parent.join(format!(
        ".{}.{}.incomplete",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file"),
        std::process::id()
    ));
    std::fs::write(&part, bytes).map_err(|e| HubError::io(&part, e))?;
    std::fs::rename(&part, target).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        HubError::io(target, e)
    })
}
