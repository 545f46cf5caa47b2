//! LLaVA-NeXT's "anyres" image handling, as transformers' `LlavaNextImageProcessor` (PIL
//! backend, the one matching the LLaVA repository's PIL code) and `pack_image_features`
//! compute it: pick the grid pinpoint that keeps the most of the image, resize keeping the
//! aspect ratio (PIL bicubic), pad centred with black, cut tiles of the tower's size, and put
//! the whole image squashed to one tile first; after the tower, the tiles' features are laid
//! back on the grid, the padding is cut off again (unpad) and an image-newline embedding ends
//! every row.

use art_core::Image;
use art_nn::vision::resample::{Filter, resize_rgb8};

/// transformers' `select_best_resolution`: the (height, width) pinpoint with the largest
/// effective resolution, then the least waste. `size` is (height, width).
pub fn best_resolution(size: (usize, usize), pinpoints: &[(usize, usize)]) -> (usize, usize) {
    let (oh, ow) = (size.0 as f64, size.1 as f64);
    let mut best = pinpoints[0];
    let (mut best_eff, mut best_waste) = (0usize, usize::MAX);
    for &(h, w) in pinpoints {
        let scale = (w as f64 / ow).min(h as f64 / oh);
        let (dw, dh) = ((ow * scale) as usize, (oh * scale) as usize);
        let eff = (dw * dh).min(size.0 * size.1);
        let waste = w * h - eff;
        if eff > best_eff || (eff == best_eff && waste < best_waste) {
            best = (h, w);
            best_eff = eff;
            best_waste = waste;
        }
    }
    best
}

/// transformers' `get_patch_output_size`: the (height, width) an image of `size` is resized
/// to inside `target` keeping its aspect ratio.
pub fn fit_size(size: (usize, usize), target: (usize, usize)) -> (usize, usize) {
    let (oh, ow) = size;
    let (th, tw) = target;
    let sw = tw as f64 / ow as f64;
    let sh = th as f64 / oh as f64;
    if sw < sh {
        (((oh as f64 * sw).ceil() as usize).min(th), tw)
    } else {
        (th, ((ow as f64 * sh).ceil() as usize).min(tw))
    }
}

/// Tiles (rows, cols) of the grid an image of `size` is cut into.
pub fn grid_shape(
    size: (usize, usize),
    pinpoints: &[(usize, usize)],
    tile: usize,
) -> (usize, usize) {
    let (h, w) = best_resolution(size, pinpoints);
    (h / tile, w / tile)
}

/// transformers' `unpad_image` on a feature map of (height, width) `current` for an image
/// of `size`: the (top, bottom-exclusive, left, right-exclusive) window without padding.
pub fn unpad_window(size: (usize, usize), current: (usize, usize)) -> (usize, usize, usize, usize) {
    let (oh, ow) = (size.0 as f64, size.1 as f64);
    let (ch, cw) = current;
    // Python's round(x, 7) before int(): products such as 23.999999999 count as 24.
    let round7 = |x: f64| ((x * 1e7).round() / 1e7) as usize;
    if ow / oh > cw as f64 / ch as f64 {
        let new_h = round7(oh * (cw as f64 / ow));
        let pad = (ch - new_h.min(ch)) / 2;
        (pad, ch - pad, 0, cw)
    } else {
        let new_w = round7(ow * (ch as f64 / oh));
        let pad = (cw - new_w.min(cw)) / 2;
        (0, ch, pad, cw - pad)
    }
}

/// An image cut into tower-sized RGB8 tiles: the squashed whole image first, then the
/// grid's tiles row by row.
#[derive(Debug, Clone)]
pub struct Tiles {
    /// Each `tile * tile * 3` bytes, packed RGB.
    pub tiles: Vec<Vec<u8>>,
    pub tile: usize,
    /// The image's (height, width).
    pub size: (usize, usize),
    /// The grid (rows, cols).
    pub grid: (usize, usize),
}

/// Cuts `image` into tiles of `tile` pixels for the grid `pinpoints` allow.
pub fn tiles(image: &Image, pinpoints: &[(usize, usize)], tile: usize) -> Result<Tiles, String> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let size = (h, w);
    let best = best_resolution(size, pinpoints);
    if !best.0.is_multiple_of(tile) || !best.1.is_multiple_of(tile) {
        return Err(format!(
            "grid pinpoint {best:?} is not a multiple of the tile size {tile}"
        ));
    }
    let (nh, nw) = fit_size(size, best);
    let resized = resize_rgb8(
        image.rgb(),
        w as u32,
        h as u32,
        nw as u32,
        nh as u32,
        Filter::Bicubic,
    )?;
    let (bh, bw) = best;
    let (top, left) = ((bh - nh) / 2, (bw - nw) / 2);
    let mut canvas = vec![0u8; bh * bw * 3];
    for y in 0..nh {
        let dst = ((top + y) * bw + left) * 3;
        canvas[dst..dst + nw * 3].copy_from_slice(&resized[y * nw * 3..(y + 1) * nw * 3]);
    }
    let grid = (bh / tile, bw / tile);
    let mut out = Vec::with_capacity(1 + grid.0 * grid.1);
    out.push(resize_rgb8(
        image.rgb(),
        w as u32,
        h as u32,
        tile as u32,
        tile as u32,
        Filter::Bicubic,
    )?);
    for gy in 0..grid.0 {
        for gx in 0..grid.1 {
            let mut t = Vec::with_capacity(tile * tile * 3);
            for y in 0..tile {
                let src = ((gy * tile + y) * bw + gx * tile) * 3;
                t.extend_from_slice(&canvas[src..src + tile * 3]);
            }
            out.push(t);
        }
    }
    Ok(Tiles {
        tiles: out,
        tile,
        size,
        grid,
    })
}

/// The tiles as normalized channels-first floats, [tiles][3 * tile * tile]:
/// `(x * rescale - mean) / std` as transformers' numpy path computes it: the rescale in
/// f64 rounded to f32, the normalization in f32.
pub fn pixel_values(t: &Tiles, mean: &[f32; 3], std: &[f32; 3], rescale: f64) -> Vec<f32> {
    let n = t.tile * t.tile;
    let mut out = Vec::with_capacity(t.tiles.len() * 3 * n);
    for tile in &t.tiles {
        for c in 0..3 {
            let (m, s) = (mean[c], std[c]);
            out.extend(
                tile[c..]
                    .iter()
                    .step_by(3)
                    .map(|&x| ((x as f64 * rescale) as f32 - m) / s),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: [(usize, usize); 5] = [(336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008)];

    #[test]
    fn best_resolution_keeps_most_pixels_then_wastes_least() {
        // A 512x512 image fits 672x672 without downscaling; wider images pick wider grids.
        assert_eq!(best_resolution((512, 512), &PIN), (672, 672));
        assert_eq!(best_resolution((300, 900), &PIN), (336, 1008));
        assert_eq!(best_resolution((400, 700), &PIN), (672, 672));
        assert_eq!(best_resolution((100, 150), &PIN), (336, 672));
    }

    #[test]
    fn fit_and_unpad_agree() {
        // 300x900 into 336x1008: exact 3x; no padding.
        assert_eq!(fit_size((300, 900), (336, 1008)), (336, 1008));
        // 400x700 into 672x672: width-bound, height ceil(400 * 0.96) = 384.
        assert_eq!(fit_size((400, 700), (672, 672)), (384, 672));
        // On a 48x48 feature map the image covers int(400 * 48 / 700) = 27 rows; transformers
        // cuts the same (48 - 27) / 2 = 10 rows off both ends, keeping 28.
        assert_eq!(unpad_window((400, 700), (48, 48)), (10, 38, 0, 48));
        // Taller than the map: columns are cut.
        assert_eq!(unpad_window((700, 400), (48, 48)), (0, 48, 10, 38));
    }
}
