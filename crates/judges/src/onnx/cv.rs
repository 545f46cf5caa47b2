//! OpenCV's `cv::resize(src, dst, size, 0, 0, INTER_LINEAR)` on 8-bit images, bit for bit, as
//! `cv2.dnn.blobFromImage` calls it inside NudeNet's preprocessing (OpenCV 4.x and 5.0,
//! `modules/imgproc/src/resize.cpp`; the IPP HAL declines 8-bit linear resizes because they are
//! not exact, so the generic code is what runs):
//!
//! * coordinates `f = (float)((d + 0.5) * scale - 0.5)` with `scale = 1 / (dst / src)` in f64,
//!   `s = floor(f)`, weights `1 - (f - s)` and `f - s` in f32, turned into 11-bit fixed point
//!   with round-half-even (`saturate_cast<short>`);
//! * along x, a source index outside the image is clamped *with its weight* (the pixel at the
//!   edge gets weight 2048); along y only the row index is clamped and the two weights stay,
//!   so the first and last rows of an upscale are the same row counted twice, each product
//!   truncated on its own;
//! * the horizontal pass keeps `sum(w * p)` (scaled by 2048) per pixel; the vertical pass is
//!   `((b0 * (S0 >> 4)) >> 16) + ((b1 * (S1 >> 4)) >> 16) + 2) >> 2`;
//! * a downscale by exactly 2 in both directions is INTER_AREA's fast path instead:
//!   `(a + b + c + d + 2) >> 2` over each 2x2 block;
//! * the same size is a copy (blobFromImage does not even call resize then).
//!
//! The source may be a letterboxed view of an image ([`Padded`]): zero pixels to its right and
//! bottom, never materialised, so a 4000x3000 photo costs two rows of the padded square.

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// An RGB8 (or any 3-channel 8-bit) image padded with zeros on the right and bottom to
/// `width x height` (`cv2.copyMakeBorder(img, 0, bottom, 0, right, BORDER_CONSTANT)`).
#[derive(Debug, Clone, Copy)]
pub struct Padded<'a> {
    pub pixels: &'a [u8],
    pub inner_width: usize,
    pub inner_height: usize,
    pub width: usize,
    pub height: usize,
}

impl<'a> Padded<'a> {
    /// An image without padding.
    pub fn plain(pixels: &'a [u8], width: usize, height: usize) -> Self {
        Self {
            pixels,
            inner_width: width,
            inner_height: height,
            width,
            height,
        }
    }

    /// NudeNet's letterbox: the image padded on the right and bottom to a square of its
    /// longer side.
    pub fn square(pixels: &'a [u8], width: usize, height: usize) -> Self {
        let side = width.max(height);
        Self {
            pixels,
            inner_width: width,
            inner_height: height,
            width: side,
            height: side,
        }
    }

    /// Row `y` of the padded image into `out` (`width * 3` bytes).
    fn row_into(&self, y: usize, out: &mut [u8]) {
        out.fill(0);
        if y < self.inner_height {
            let n = self.inner_width * 3;
            out[..n].copy_from_slice(&self.pixels[y * n..(y + 1) * n]);
        }
    }
}

/// One axis of the linear resize: for each output index, the first source index and the two
/// fixed-point weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Taps {
    pub index: Vec<i64>,
    pub weight: Vec<[i32; 2]>,
}

/// OpenCV's table for one axis. `clamp` is the x axis' treatment (index and weight moved to
/// the edge); the y axis keeps the raw index and weights and clamps rows when reading.
pub fn taps(src: usize, dst: usize, clamp: bool) -> Taps {
    let inv_scale = dst as f64 / src as f64;
    let scale = 1.0 / inv_scale;
    let mut index = Vec::with_capacity(dst);
    let mut weight = Vec::with_capacity(dst);
    for d in 0..dst {
        let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let mut s = f.floor() as i64;
        f -= s as f32;
        if clamp {
            if s < 0 {
                f = 0.0;
                s = 0;
            }
            if s + 1 >= src as i64 {
                f = 0.0;
                s = src as i64 - 1;
            }
        }
        index.push(s);
        let w0 = ((1.0 - f) * COEF_SCALE).round_ties_even() as i32;
        let w1 = (f * COEF_SCALE).round_ties_even() as i32;
        weight.push([w0, w1]);
    }
    Taps { index, weight }
}

/// `cv::resize(src, (new_width, new_height), INTER_LINEAR)` of a 3-channel 8-bit image.
pub fn resize_linear(src: &Padded<'_>, new_width: usize, new_height: usize) -> Vec<u8> {
    let (w, h) = (src.width, src.height);
    let mut out = vec![0u8; new_width * new_height * 3];
    if w == new_width && h == new_height {
        let mut row = vec![0u8; w * 3];
        for y in 0..h {
            src.row_into(y, &mut row);
            out[y * w * 3..(y + 1) * w * 3].copy_from_slice(&row);
        }
        return out;
    }
    if is_half(w, new_width) && is_half(h, new_height) {
        area_half(src, new_width, new_height, &mut out);
        return out;
    }
    let xt = taps(w, new_width, true);
    let yt = taps(h, new_height, false);
    let mut raw = vec![0u8; w * 3];
    // Horizontally resized rows, cached by source row (each is read by up to a few outputs).
    let mut cache: [(usize, Vec<i32>); 2] = [
        (usize::MAX, vec![0; new_width * 3]),
        (usize::MAX, vec![0; new_width * 3]),
    ];
    let mut hrow = |y: usize, slot: usize, cache: &mut [(usize, Vec<i32>); 2]| {
        if cache[slot].0 == y {
            return;
        }
        let other = 1 - slot;
        if cache[other].0 == y {
            let (a, b) = cache.split_at_mut(1);
            if slot == 0 {
                a[0].1.copy_from_slice(&b[0].1);
            } else {
                b[0].1.copy_from_slice(&a[0].1);
            }
            cache[slot].0 = y;
            return;
        }
        src.row_into(y, &mut raw);
        let dst = &mut cache[slot].1;
        for dx in 0..new_width {
            let sx = xt.index[dx] as usize;
            let [a0, a1] = xt.weight[dx];
            let sx1 = (sx + 1).min(w - 1);
            for c in 0..3 {
                let p0 = raw[sx * 3 + c] as i32;
                let p1 = raw[sx1 * 3 + c] as i32;
                dst[dx * 3 + c] = p0 * a0 + p1 * a1;
            }
        }
        cache[slot].0 = y;
    };
    let clip = |v: i64| v.clamp(0, h as i64 - 1) as usize;
    for dy in 0..new_height {
        let sy = yt.index[dy];
        let (r0, r1) = (clip(sy), clip(sy + 1));
        hrow(r0, 0, &mut cache);
        hrow(r1, 1, &mut cache);
        let [b0, b1] = yt.weight[dy];
        let (s0, s1) = (&cache[0].1, &cache[1].1);
        let o = &mut out[dy * new_width * 3..(dy + 1) * new_width * 3];
        for (i, v) in o.iter_mut().enumerate() {
            let t = ((b0 * (s0[i] >> 4)) >> 16) + ((b1 * (s1[i] >> 4)) >> 16) + 2;
            *v = (t >> 2) as u8;
        }
    }
    out
}

/// OpenCV's test for the 2x area shortcut: `scale = 1 / (dst / src)` equal to 2 within
/// `DBL_EPSILON`.
fn is_half(src: usize, dst: usize) -> bool {
    let scale = 1.0 / (dst as f64 / src as f64);
    (scale - 2.0).abs() < f64::EPSILON
}

fn area_half(src: &Padded<'_>, new_width: usize, new_height: usize, out: &mut [u8]) {
    let w = src.width;
    let (mut r0, mut r1) = (vec![0u8; w * 3], vec![0u8; w * 3]);
    for dy in 0..new_height {
        src.row_into(2 * dy, &mut r0);
        src.row_into(2 * dy + 1, &mut r1);
        for dx in 0..new_width {
            for c in 0..3 {
                let i = dx * 6 + c;
                let s = r0[i] as u32 + r0[i + 3] as u32 + r1[i] as u32 + r1[i + 3] as u32;
                out[(dy * new_width + dx) * 3 + c] = ((s + 2) >> 2) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_clamp_x_but_not_y() {
        let x = taps(5, 9, true);
        let y = taps(5, 9, false);
        assert_eq!(x.index[0], 0);
        assert_eq!(x.weight[0], [2048, 0]);
        assert_eq!(y.index[0], -1);
        assert_eq!(y.weight[0][0] + y.weight[0][1], 2048);
        assert_eq!(x.index[8], 4);
        assert_eq!(x.weight[8], [2048, 0]);
    }

    #[test]
    fn same_size_is_a_copy_and_padding_is_zero() {
        let px: Vec<u8> = (0..2 * 3 * 3).map(|v| v as u8 + 1).collect();
        let p = Padded::square(&px, 3, 2);
        let out = resize_linear(&p, 3, 3);
        assert_eq!(&out[..18], &px[..]);
        assert!(out[18..].iter().all(|&v| v == 0));
    }
}
