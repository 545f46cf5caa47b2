//! Where a model's files are: a local folder, or a snapshot in the standard Hugging Face hub
//! cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), found by its
//! hub id (`org/name`) without any network access.

use crate::HubError;
use std::path::{Path, PathBuf};

/// The hub cache folder, from the same variables the Hugging Face libraries read.
pub fn hub_cache() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// The snapshot folder of `repo_id` in a hub cache: the revision `refs/main` names, else the
/// only snapshot there is.
pub fn cached_snapshot(cache: &Path, repo_id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
        let p = snapshots.join(rev.trim());
        if p.is_dir() {
            return Some(p);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    (dirs.len() == 1).then(|| dirs.remove(0))
}

/// A model folder from `spec`: an existing folder, or a hub id found in the hub cache.
pub fn resolve(spec: &str) -> Result<PathBuf, HubError> {
    let p = PathBuf::from(spec);
    if p.is_dir() {
        return Ok(p);
    }
    if let Some(cache) = hub_cache()
        && let Some(snap) = cached_snapshot(&cache, spec)
    {
        return Ok(snap);
    }
    Err(HubError::Missing {
        path: p,
        what: format!(
            "a model folder (not a folder here, and `{spec}` is not in the Hugging Face hub \
             cache {})",
            hub_cache().map_or("(no HOME)".into(), |c| c.display().to_string())
        ),
    })
}

/// Whether `spec` has the shape of a hub id (`org/name`).
pub fn is_hub_id(spec: &str) -> bool {
    let mut parts = spec.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// A model folder from `spec` like [`resolve`], downloading a hub id that is not in the cache
/// (the files `pick` chooses, see [`crate::hf::model_files`]).
pub fn fetch(spec: &str, pick: impl Fn(&[String]) -> Vec<String>) -> Result<PathBuf, HubError> {
    match resolve(spec) {
        Ok(p) => Ok(p),
        Err(e) if !is_hub_id(spec) || Path::new(spec).exists() => Err(e),
        Err(e) => {
            let Some(cache) = hub_cache() else {
                return Err(e);
            };
            crate::hf::download(&cache, spec, "main", pick)
        }
    }
}

/// The snapshot folder name of a hub-cache path (`.../snapshots/<commit>`): the revision a
/// model was loaded from, for its identity.
pub fn snapshot_revision(dir: &Path) -> Option<String> {
    let parent = dir.parent()?;
    (parent.file_name()? == "snapshots")
        .then(|| dir.file_name()?.to_str().map(str::to_string))
        .flatten()
}

/// Reads a file of a model folder, naming it when it is missing.
pub fn read(dir: &Path, name: &str) -> Result<Vec<u8>, HubError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => HubError::Missing {
            path,
            what: "file".into(),
        },
        _ => HubError::Invalid {
            path,
            detail: e.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_snapshots_in_a_hub_cache_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("models--org--name");
        std::fs::create_dir_all(repo.join("snapshots/abc123")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/def456")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "def456\n").unwrap();
        assert_eq!(
            cached_snapshot(tmp.path(), "org/name"),
            Some(repo.join("snapshots/def456"))
        );
        std::fs::remove_file(repo.join("refs/main")).unwrap();
        assert_eq!(
            cached_snapshot(tmp.path(), "org/name"),
            None,
            "ambiguous without refs/main"
        );
        std::fs::remove_dir(repo.join("snapshots/abc123")).unwrap();
        assert_eq!(
            cached_snapshot(tmp.path(), "org/name"),
            Some(repo.join("snapshots/def456"))
        );
        assert_eq!(cached_snapshot(tmp.path(), "org/other"), None);
    }

    #[test]
    fn hub_ids_are_org_slash_name() {
        assert!(is_hub_id("meta-llama/Llama-2-7b-hf"));
        assert!(is_hub_id("glli/ART_WriterModel"));
        for not in ["model", "/abs/path", "a/b/c", "../x", "./x", "a/", "a b/c"] {
            assert!(!is_hub_id(not), "{not}");
        }
    }

    #[test]
    fn missing_files_and_models_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read(tmp.path(), "config.json").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("not found"), "{e}");
        let e = resolve("no-such-org/no-such-model")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-org/no-such-model"), "{e}");
    }
}
