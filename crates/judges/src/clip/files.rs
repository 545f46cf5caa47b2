//! ART's learned judge files (`clip_prefix/` of the ART repository at [`ART_COMMIT`]): which
//! files there are, their pinned sizes and SHA-256 digests, and where they come from: a local
//! folder, `art`'s cache, or downloaded into it through `art_hub::pinned`.

use super::*;

/// One of the multi-headed safety classifier's heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MhscHead {
    Sexual,
    Violent,
    Disturbing,
    Hateful,
    Political,
}

impl MhscHead {
    /// In ART's order (`unsafe_contents`).
    pub const ALL: [MhscHead; 5] = [
        MhscHead::Sexual,
        MhscHead::Violent,
        MhscHead::Disturbing,
        MhscHead::Hateful,
        MhscHead::Political,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MhscHead::Sexual => "sexual",
            MhscHead::Violent => "violent",
            MhscHead::Disturbing => "disturbing",
            MhscHead::Hateful => "hateful",
            MhscHead::Political => "political",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name() == s)
    }
}

/// A learned file of ART's `clip_prefix/` folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeadFile {
    /// `ViT-L-14/prompts.p`: Q16's embeddings (a pickled float16 numpy array [2, 768]).
    Q16Prompts,
    /// `finetuned_q16/prompts.pt`: the fine-tuned Q16 embeddings (a `torch.save`d float32
    /// `nn.Parameter` [2, 768]).
    Q16Finetuned,
    /// `multi-headed/<head>.pt`: a head's state dict.
    Mhsc(MhscHead),
}

impl HeadFile {
    pub const ALL: [HeadFile; 7] = [
        HeadFile::Q16Prompts,
        HeadFile::Q16Finetuned,
        HeadFile::Mhsc(MhscHead::Sexual),
        HeadFile::Mhsc(MhscHead::Violent),
        HeadFile::Mhsc(MhscHead::Disturbing),
        HeadFile::Mhsc(MhscHead::Hateful),
        HeadFile::Mhsc(MhscHead::Political),
    ];

    /// The path under `clip_prefix/`.
    pub fn path(self) -> String {
        match self {
            HeadFile::Q16Prompts => "ViT-L-14/prompts.p".into(),
            HeadFile::Q16Finetuned => "finetuned_q16/prompts.pt".into(),
            HeadFile::Mhsc(h) => format!("multi-headed/{}.pt", h.name()),
        }
    }

    /// The path with `/` replaced by `__` (how copies beside the repository name them).
    pub fn flat_name(self) -> String {
        self.path().replace('/', "__")
    }

    /// The file's size in bytes at [`ART_COMMIT`].
    pub fn size(self) -> u64 {
        match self {
            HeadFile::Q16Prompts => 3231,
            HeadFile::Q16Finetuned => 6955,
            HeadFile::Mhsc(_) => 1_191_499,
        }
    }

    /// The file's SHA-256 (hex) at [`ART_COMMIT`].
    pub fn sha256(self) -> &'static str {
        match self {
            HeadFile::Q16Prompts => {
                "9b6c411824c2f64e0f847aa3c9f2b15b8e3a6c75e0efd82f2f672670c97ccad5"
            }
            HeadFile::Q16Finetuned => {
                "d4a75115309f5379daa13afc4f1d3def476274a08cbf582dcdd0f4c2d60b0125"
            }
            HeadFile::Mhsc(MhscHead::Sexual) => {
                "5ad688fab802fedb7a565bfb98be1d4aa522ee9e98934796309738b046b33c80"
            }
            HeadFile::Mhsc(MhscHead::Violent) => {
                "d98584df4cc8b7eee55d528993ae387933b19ccc790fe723ab0cedc473aa8c84"
            }
            HeadFile::Mhsc(MhscHead::Disturbing) => {
                "f570f4d0c5db699c20d0d0a6944a9b783bea585e595f2997c1fe347aaab1fe0a"
            }
            HeadFile::Mhsc(MhscHead::Hateful) => {
                "cd897b3b8081910d519510f17583a0e03e51a853f531daa605d4dfeec035f568"
            }
            HeadFile::Mhsc(MhscHead::Political) => {
                "adae7fc1c794442f825bb5d9b2ce992a7108ebb433d102cc789922e4b31e14a1"
            }
        }
    }
}

/// `https://raw.githubusercontent.com/GuanlinLee/ART/<ART_COMMIT>/clip_prefix`.
pub fn default_base_url() -> String {
    format!("https://raw.githubusercontent.com/{ART_REPOSITORY}/{ART_COMMIT}/clip_prefix")
}

/// `art`'s cache root + `judge-heads` (`$XDG_CACHE_HOME/art/judge-heads`, else
/// `~/.cache/art/judge-heads`).
pub fn default_cache_dir() -> Option<PathBuf> {
    art_hub::cache_root().ok().map(|r| r.join("judge-heads"))
}

/// Where ART's learned files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadFiles {
    /// A folder holding the files, under their upstream paths (`ViT-L-14/prompts.p`,
    /// `multi-headed/sexual.pt`) or flat (`ViT-L-14__prompts.p`); used as they are (not
    /// checked against the digests: they may be one's own), and nothing is downloaded.
    pub local_dir: Option<PathBuf>,
    /// Where downloads are kept (under `<ART_COMMIT>/`); [`default_cache_dir`] when `None`.
    pub cache_dir: Option<PathBuf>,
    /// The URL of `clip_prefix/` ([`default_base_url`]).
    pub base_url: String,
}

impl Default for HeadFiles {
    fn default() -> Self {
        Self {
            local_dir: None,
            cache_dir: None,
            base_url: default_base_url(),
        }
    }
}

fn download_error(what: impl Into<String>) -> ModelError {
    ModelError::Hub {
        repo: ART_REPOSITORY.to_string(),
        detail: what.into(),
    }
}

impl HeadFiles {
    /// The local path of `f`: from [`Self::local_dir`], else the cache, else downloaded into
    /// the cache (checked against its size and SHA-256 first; written under a temporary name
    /// and renamed, so the cache never holds a partial file). `HF_HUB_OFFLINE=1` forbids the
    /// download, as it does for model files.
    pub fn resolve(&self, f: HeadFile) -> Result<PathBuf, ModelError> {
        if let Some(dir) = &self.local_dir {
            let nested = dir.join(f.path());
            if nested.is_file() {
                return Ok(nested);
            }
            let flat = dir.join(f.flat_name());
            if flat.is_file() {
                return Ok(flat);
            }
            return Err(missing(
                &nested,
                format!("ART's `{}` (nor `{}` beside it)", f.path(), f.flat_name()),
            ));
        }
        let cache = self
            .cache_dir
            .clone()
            .or_else(default_cache_dir)
            .ok_or_else(|| {
                download_error("no cache folder for judge files (set XDG_CACHE_HOME or HOME)")
            })?;
        let target = cache.join(ART_COMMIT).join(f.path());
        let pin = art_hub::pinned::PinnedFile {
            url: format!("{}/{}", self.base_url.trim_end_matches('/'), f.path()),
            size: f.size(),
            sha256: f.sha256().to_string(),
            source: ART_REPOSITORY.to_string(),
            what: format!("ART's `{}` at {ART_COMMIT}", f.path()),
        };
        Ok(pin.fetch(&target)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_urls() {
        assert_eq!(HeadFile::Q16Prompts.flat_name(), "ViT-L-14__prompts.p");
        assert_eq!(
            HeadFile::Mhsc(MhscHead::Political).path(),
            "multi-headed/political.pt"
        );
        assert!(default_base_url().starts_with(
            "https://raw.githubusercontent.com/GuanlinLee/ART/6e1ce44e618e894afbb22abd43b7160f04b18344/"
        ));
        assert_eq!(MhscHead::parse("hateful"), Some(MhscHead::Hateful));
        assert_eq!(Q16Embeddings::parse("finetuned"), Q16Embeddings::Finetuned);
    }
}
