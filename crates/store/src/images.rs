//! Content-addressed PNG files: `DIR/images/<first 2 hex>/<sha256>.png`.
//!
//! Images live beside the database rather than in it so the database stays small and fast to
//! scan, and so a user can look at them with any viewer. A file is named by the SHA-256 of its
//! own bytes, so identical renders are stored once and a name can never point at other content.
//! Encoding settings are fixed (8-bit RGB, `Compression::Fast`, no metadata chunks), so the same
//! pixels always give the same file with a given `png` version. Files are written to a temporary
//! name in the same folder and renamed into place, so a reader never sees a partial file.
//!
//! Files are not fsynced (matching the database's `synchronous=NORMAL`): a power loss may lose
//! recent images along with recent commits. A file written for a commit that then failed stays
//! behind unreferenced; that is harmless.

use crate::StoreError;
use art_core::Image;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The folder inside a campaign that holds the image files.
pub const IMAGES_DIR: &str = "images";

/// Encodes `image` as PNG and returns the bytes and their lower-case hex SHA-256.
///
/// # Panics
/// Only for an image the PNG format cannot represent (a side over 2^31 - 1 pixels), which no
/// [`Image`] in practice can be; the store itself uses the fallible form.
pub fn encode_png(image: &Image) -> (Vec<u8>, String) {
    match try_encode_png(image) {
        Ok(encoded) => encoded,
        Err(e) => panic!("cannot encode a {image:?} as PNG: {e}"),
    }
}

pub(crate) fn try_encode_png(image: &Image) -> Result<(Vec<u8>, String), png::EncodingError> {
    let rgb = image.rgb();
    let mut bytes = Vec::with_capacity(rgb.len() / 2 + 128);
    {
        let mut encoder = png::Encoder::new(&mut bytes, image.width(), image.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    let sha = hex(&Sha256::digest(&bytes));
    Ok((bytes, sha))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Whether `sha` looks like a name this store writes (64 lower-case hex digits). Anything else
/// is refused before it is turned into a path.
pub(crate) fn is_sha256(sha: &str) -> bool {
    sha.len() == 64
        && sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Where the image with this hash lives under `dir`.
pub(crate) fn image_path(dir: &Path, sha256: &str) -> PathBuf {
    let prefix = sha256.get(..2).unwrap_or(sha256);
    dir.join(IMAGES_DIR)
        .join(prefix)
        .join(format!("{sha256}.png"))
}

/// At most this many threads encode and write the images of one batch. Creating a file is
/// latency-bound on many file systems (far more than encoding a small PNG), so this is not tied
/// to the number of cores.
const MAX_WRITERS: usize = 8;

/// Below this many images per thread, another thread is not worth starting.
const IMAGES_PER_WRITER: usize = 4;

/// Writes image files for one store, remembering which prefix folders already exist.
#[derive(Debug, Default)]
pub(crate) struct ImageWriter {
    made_dirs: Mutex<HashSet<String>>,
    tmp_counter: AtomicU64,
}

impl ImageWriter {
    /// Encodes each image and makes sure its file exists under `dir`, in parallel; returns the
    /// hashes in order (`None` where there is no image). Fails with the first failure in order;
    /// files already written for the other images stay (they are content-addressed).
    pub(crate) fn store_all(
        &self,
        dir: &Path,
        images: &[Option<&Image>],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let count = images.iter().flatten().count();
        let workers = count.div_ceil(IMAGES_PER_WRITER).clamp(1, MAX_WRITERS);
        let mut out: Vec<Result<Option<String>, StoreError>> = Vec::with_capacity(images.len());
        if workers == 1 {
            out.extend(
                images
                    .iter()
                    .map(|i| i.map(|i| self.store(dir, i)).transpose()),
            );
        } else {
            let chunk = images.len().div_ceil(workers);
            std::thread::scope(|scope| {
                let handles: Vec<_> = images
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter()
                                .map(|i| i.map(|i| self.store(dir, i)).transpose())
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                for h in handles {
                    match h.join() {
                        Ok(results) => out.extend(results),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
            });
        }
        out.into_iter().collect()
    }

    /// Encodes `image` and makes sure its file exists under `dir`; returns its hash.
    pub(crate) fn store(&self, dir: &Path, image: &Image) -> Result<String, StoreError> {
        let (bytes, sha) = try_encode_png(image).map_err(|e| StoreError::Image {
            path: dir.join(IMAGES_DIR),
            detail: format!("cannot encode a {image:?} as PNG: {e}"),
        })?;
        let path = image_path(dir, &sha);
        let folder = path.parent().unwrap_or(dir);
        let prefix = &sha[..2];
        let known = self.made_dirs.lock().is_ok_and(|d| d.contains(prefix));
        if !known {
            fs::create_dir_all(folder).map_err(|e| StoreError::io(folder, e))?;
            if let Ok(mut d) = self.made_dirs.lock() {
                d.insert(prefix.to_string());
            }
        }
        if path.exists() {
            return Ok(sha);
        }
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = folder.join(format!(".{sha}.{}.{n}.tmp", std::process::id()));
        let written = fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(|e| StoreError::io(&tmp, e))
            .and_then(|()| fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| sha)
    }
}

/// Reads and decodes the stored image `sha256` of the campaign in `dir`.
pub(crate) fn read_image(dir: &Path, sha256: &str) -> Result<Image, StoreError> {
    if !is_sha256(sha256) {
        return Err(StoreError::Image {
            path: dir.join(IMAGES_DIR),
            detail: format!("{sha256:?} is not a SHA-256 image name"),
        });
    }
    let path = image_path(dir, sha256);
    let bad = |detail: String| StoreError::Image {
        path: path.clone(),
        detail,
    };
    let file = fs::File::open(&path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let decoder = png::Decoder::new(BufReader::new(file));
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a PNG: {e}")))?;
    let (color, depth) = reader.output_color_type();
    if color != png::ColorType::Rgb || depth != png::BitDepth::Eight {
        return Err(bad(format!(
            "expected an 8-bit RGB PNG, found {color:?} at {depth:?}"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad("image too large".to_string()))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("cannot decode: {e}")))?;
    buf.truncate(info.buffer_size());
    Image::new(info.width, info.height, buf).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Image {
        let rgb = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        Image::new(w, h, rgb).unwrap()
    }

    #[test]
    fn encoding_is_deterministic_and_hash_names_the_bytes() {
        let img = gradient(13, 7);
        let (a, sha_a) = encode_png(&img);
        let (b, sha_b) = encode_png(&img);
        assert_eq!(a, b);
        assert_eq!(sha_a, sha_b);
        assert!(is_sha256(&sha_a));
        assert_eq!(sha_a, hex(&Sha256::digest(&a)));
        assert_ne!(sha_a, encode_png(&gradient(7, 13)).1);
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x5f, 0xff]), "00ab5fff");
    }

    #[test]
    fn stored_images_read_back_equal_and_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let img = gradient(64, 64);
        let w = ImageWriter::default();
        let sha = w.store(dir.path(), &img).unwrap();
        let path = image_path(dir.path(), &sha);
        assert!(path.starts_with(dir.path().join("images").join(&sha[..2])));
        let before = fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(w.store(dir.path(), &img).unwrap(), sha);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
        assert_eq!(read_image(dir.path(), &sha).unwrap(), img);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(format!("{sha}.png"))]);
    }

    #[test]
    fn missing_bad_and_non_rgb_files_are_image_errors() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        assert!(matches!(
            read_image(dir.path(), &sha),
            Err(StoreError::Image { .. })
        ));
        assert!(matches!(
            read_image(dir.path(), "../../etc/passwd"),
            Err(StoreError::Image { .. })
        ));
        let path = image_path(dir.path(), &sha);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"not a png").unwrap();
        let err = read_image(dir.path(), &sha).unwrap_err();
        assert!(err.to_string().contains(&sha), "{err}");
        // A grayscale PNG is refused rather than misread.
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, 2, 2);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header().unwrap();
            wr.write_image_data(&[1, 2, 3, 4]).unwrap();
        }
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            read_image(dir.path(), &sha),
            Err(StoreError::Image { detail, .. }) if detail.contains("RGB")
        ));
    }

    #[test]
    fn parallel_store_keeps_order_and_dedupes() {
        let dir = tempfile::tempdir().unwrap();
        let imgs: Vec<Image> = (1..=20).map(|w| gradient(w, 3)).collect();
        let mut input: Vec<Option<&Image>> = imgs.iter().map(Some).collect();
        input.insert(5, None);
        input.push(Some(&imgs[0]));
        let w = ImageWriter::default();
        let shas = w.store_all(dir.path(), &input).unwrap();
        assert_eq!(shas.len(), input.len());
        for (sha, img) in shas.iter().zip(&input) {
            match (sha, img) {
                (Some(sha), Some(img)) => {
                    assert_eq!(*sha, encode_png(img).1);
                    assert_eq!(read_image(dir.path(), sha).unwrap(), **img);
                }
                (None, None) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(shas[0], shas[shas.len() - 1]);
    }
}
