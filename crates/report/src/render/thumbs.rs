//! Thumbnails for the HTML report: each image downscaled, encoded as JPEG and inlined as a
//! base64 `data:` URI, once per image.
//!
//! It owns the size and speed budget of the HTML report (a 35-lane x 51-round campaign has
//! about 1,800 distinct 512x512 images and must stay under 20 MB and a few seconds):
//! * downscaling is an area average over integer boxes ([`downscale`]): one pass over the
//!   source, about a fifth of the cost of `image`'s resize filters (0.3 ms against 1.6 ms for
//!   512 to 160 pixels), and it does not alias;
//! * JPEG at quality [`JPEG_QUALITY`]: 5 to 11 KB for a 160-pixel thumbnail of a photograph
//!   (`image`'s encoder does no chroma subsampling). So that a large campaign still fits,
//!   the images of one report share [`IMAGES_BUDGET`]: a thumbnail larger than its share (but
//!   never less than [`MIN_IMAGE_SHARE`]) is encoded again at a lower quality, down to 30;
//! * [`encode_all`] encodes each distinct image once, in order of first use, on worker threads
//!   while the calling thread loads the next images (the loader callback need not be `Sync`);
//!   the report then refers to images by hash.

use art_core::Image;
use base64::Engine;
use image::ExtendedColorType;
use image::codecs::jpeg::JpegEncoder;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// JPEG quality of thumbnails (0-100) when they fit their share of the budget.
pub const JPEG_QUALITY: u8 = 70;

/// Base64 bytes all thumbnails of one report may take together (the rest of a 20 MB report
/// is text: about 2.5 MB for 1,800 rounds).
pub const IMAGES_BUDGET: usize = 15_000_000;

/// A thumbnail's share of [`IMAGES_BUDGET`] is never less than this (base64 bytes).
pub const MIN_IMAGE_SHARE: usize = 6_000;

/// The lowest quality a thumbnail is lowered to.
const MIN_QUALITY: u8 = 30;

/// An encoded thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// MIME type of `bytes` (`image/jpeg`).
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    /// JPEG quality it was encoded with.
    pub quality: u8,
    /// The encoded file.
    pub bytes: Vec<u8>,
}

impl Thumbnail {
    /// `data:image/jpeg;base64,...`
    pub fn data_uri(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out = String::with_capacity(32 + self.bytes.len().div_ceil(3) * 4);
        out.push_str("data:");
        out.push_str(self.mime);
        out.push_str(";base64,");
        b64.encode_string(&self.bytes, &mut out);
        out
    }
}

/// `image` scaled down (never up) so that its longer side is at most `max_side` pixels (at
/// least 1), keeping its aspect ratio, as a JPEG of quality [`JPEG_QUALITY`]. `None` only if
/// the encoder fails.
pub fn thumbnail(image: &Image, max_side: u32) -> Option<Thumbnail> {
    thumbnail_within(image, max_side, usize::MAX)
}

/// Like [`thumbnail`], but when the JPEG is larger than `max_bytes` it is encoded again at a
/// lower quality (chosen from how much too large it was; at most two more tries, never below
/// quality 30), and the smallest result is returned even if it is still too large.
pub fn thumbnail_within(image: &Image, max_side: u32, max_bytes: usize) -> Option<Thumbnail> {
    let (w, h) = (image.width(), image.height());
    let (tw, th) = fit(w, h, max_side.max(1));
    let small;
    let pixels = if (tw, th) == (w, h) {
        image.rgb()
    } else {
        small = downscale(image.rgb(), w, h, tw, th);
        &small
    };
    let encode = |quality: u8| {
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode(pixels, tw, th, ExtendedColorType::Rgb8)
            .ok()?;
        Some(Thumbnail {
            mime: "image/jpeg",
            width: tw,
            height: th,
            quality,
            bytes,
        })
    };
    let first = encode(JPEG_QUALITY)?;
    if first.bytes.len() <= max_bytes {
        return Some(first);
    }
    // Size falls about 1% per quality point between 70 and 30 on photographs.
    let ratio = max_bytes as f64 / first.bytes.len() as f64;
    let guess = (f64::from(JPEG_QUALITY) - (1.0 - ratio) * 110.0).round();
    let quality = (guess as u8).clamp(MIN_QUALITY, JPEG_QUALITY - 10);
    let second = encode(quality)?;
    if second.bytes.len() <= max_bytes || quality == MIN_QUALITY {
        return Some(second);
    }
    encode(MIN_QUALITY)
}

/// The byte budget of one thumbnail's JPEG when a report holds `images` of them.
pub(crate) fn jpeg_share(images: usize) -> usize {
    (IMAGES_BUDGET / images.max(1)).max(MIN_IMAGE_SHARE) * 3 / 4
}

/// Size with the longer side at most `max_side`, aspect kept, each side at least 1.
fn fit(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max_side {
        return (w, h);
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long);
        (scaled as u32).max(1)
    };
    (scale(w), scale(h))
}

/// Downscales RGB8 `src` (`w` x `h`) to `tw` x `th` (no larger than the source): each output
/// pixel is the rounded mean of the source pixels in its box, the boxes tiling the source.
fn downscale(src: &[u8], w: u32, h: u32, tw: u32, th: u32) -> Vec<u8> {
    let (w, h, tw, th) = (w as usize, h as usize, tw as usize, th as usize);
    debug_assert!(tw <= w && th <= h && src.len() == w * h * 3);
    // Box edges: output column o covers source columns x_edges[o]..x_edges[o + 1] (never empty,
    // as tw <= w).
    let x_edges: Vec<usize> = (0..=tw).map(|o| o * w / tw).collect();
    let mut acc = vec![0u64; tw * 3];
    let mut out = Vec::with_capacity(tw * th * 3);
    for oy in 0..th {
        let (y0, y1) = (oy * h / th, (oy + 1) * h / th);
        acc.fill(0);
        for line in src[y0 * w * 3..y1 * w * 3].chunks_exact(w * 3) {
            for (o, sum) in acc.chunks_exact_mut(3).enumerate() {
                let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
                for px in line[x_edges[o] * 3..x_edges[o + 1] * 3].chunks_exact(3) {
                    r += u32::from(px[0]);
                    g += u32::from(px[1]);
                    b += u32::from(px[2]);
                }
                sum[0] += u64::from(r);
                sum[1] += u64::from(g);
                sum[2] += u64::from(b);
            }
        }
        for (o, sum) in acc.chunks_exact(3).enumerate() {
            let n = ((x_edges[o + 1] - x_edges[o]) * (y1 - y0)) as u64;
            out.extend(sum.iter().map(|&v| ((v + n / 2) / n) as u8));
        }
    }
    out
}

/// The data URI of every image in `shas` (duplicates ignored), keyed by hash; `None` for an
/// image the loader did not find or that could not be encoded.
///
/// Loading, resizing and encoding run on up to 8 worker threads, each taking the next image
/// in turn, so at most one decoded image per worker is in memory.
pub(crate) fn encode_all<'a>(
    shas: impl IntoIterator<Item = &'a str>,
    load: &(dyn Fn(&str) -> Option<Image> + Sync),
    max_side: u32,
) -> HashMap<String, Option<String>> {
    let mut out: HashMap<String, Option<String>> = HashMap::new();
    let mut todo = Vec::new();
    for sha in shas {
        if !out.contains_key(sha) {
            out.insert(sha.to_string(), None);
            todo.push(sha);
        }
    }
    let max_bytes = jpeg_share(todo.len());
    let make = |sha: &str| {
        load(sha).and_then(|img| thumbnail_within(&img, max_side, max_bytes).map(|t| t.data_uri()))
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(todo.len().max(1));
    let next = AtomicUsize::new(0);
    let (todo, next, make) = (&todo, &next, &make);
    let done: Vec<Vec<(usize, Option<String>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(sha) = todo.get(i) else { break };
                        mine.push((i, make(sha)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, uri) in done.into_iter().flatten() {
        out.insert(todo[i].to_string(), uri);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_longer_side() {
        assert_eq!(fit(512, 512, 160), (160, 160));
        assert_eq!(fit(1024, 512, 160), (160, 80));
        assert_eq!(fit(100, 50, 160), (100, 50));
        assert_eq!(fit(4000, 1, 160), (160, 1));
    }

    #[test]
    fn downscale_averages_boxes() {
        // 4x2 -> 2x1: each output pixel is the mean of a 2x2 box.
        #[rustfmt::skip]
        let src = [
            0, 0, 0,   2, 4, 6,     100, 100, 100, 200, 200, 200,
            4, 8, 12,  6, 12, 18,   100, 100, 100, 200, 200, 201,
        ];
        assert_eq!(downscale(&src, 4, 2, 2, 1), vec![3, 6, 9, 150, 150, 150]);
        // 3x1 -> 2x1: boxes of 1 and 2 columns.
        assert_eq!(
            downscale(&[9, 9, 9, 1, 1, 1, 3, 3, 3], 3, 1, 2, 1),
            vec![9, 9, 9, 2, 2, 2]
        );
    }

    #[test]
    fn thumbnails_are_small_jpegs() {
        let rgb: Vec<u8> = (0..512 * 256 * 3).map(|i| (i % 251) as u8).collect();
        let img = Image::new(512, 256, rgb).unwrap();
        let t = thumbnail(&img, 160).unwrap();
        assert_eq!((t.width, t.height), (160, 80));
        assert_eq!(&t.bytes[..2], &[0xFF, 0xD8]);
        assert!(t.data_uri().starts_with("data:image/jpeg;base64,/9j/"));
    }

    #[test]
    fn large_thumbnails_are_encoded_again_at_a_lower_quality() {
        let mut x = 1u32;
        let rgb: Vec<u8> = (0..256 * 256 * 3)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        let img = Image::new(256, 256, rgb).unwrap();
        let full = thumbnail(&img, 160).unwrap();
        assert_eq!(full.quality, JPEG_QUALITY);
        let fits = thumbnail_within(&img, 160, full.bytes.len()).unwrap();
        assert_eq!(fits, full);
        let lower = thumbnail_within(&img, 160, full.bytes.len() * 3 / 4).unwrap();
        assert!(lower.quality < JPEG_QUALITY && lower.bytes.len() < full.bytes.len());
        let lowest = thumbnail_within(&img, 160, 10).unwrap();
        assert_eq!(lowest.quality, MIN_QUALITY);
        assert_eq!((lowest.width, lowest.height), (160, 160));
    }

    #[test]
    fn the_budget_is_shared() {
        assert_eq!(jpeg_share(1), IMAGES_BUDGET * 3 / 4);
        assert_eq!(jpeg_share(1_800), IMAGES_BUDGET / 1_800 * 3 / 4);
        assert_eq!(jpeg_share(1_000_000), MIN_IMAGE_SHARE * 3 / 4);
    }

    #[test]
    fn encodes_each_image_once() {
        let calls = std::sync::Mutex::new(Vec::new());
        let load = |sha: &str| {
            calls.lock().unwrap().push(sha.to_string());
            (sha != "missing").then(|| Image::new(8, 8, vec![sha.len() as u8; 8 * 8 * 3]).unwrap())
        };
        let shas = ["a", "bb", "a", "missing", "ccc", "bb", "dddd", "eeeee"];
        let map = encode_all(shas, &load, 4);
        assert_eq!(map.len(), 6);
        assert_eq!(calls.lock().unwrap().len(), 6);
        assert!(map["missing"].is_none());
        assert!(
            map["a"]
                .as_ref()
                .unwrap()
                .starts_with("data:image/jpeg;base64,")
        );
        assert_ne!(map["a"], map["bb"]);
    }
}
