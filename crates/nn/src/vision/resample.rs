//! Pillow's `Image.resize` for packed RGB8 images, bit for bit.
//!
//! The reference image processors resize with PIL (CLIP and LLaVA with `BICUBIC`, ViT with
//! `BILINEAR`), and the feature-level golden tests compare our pixel values with theirs, so a
//! resize that is merely close (an `image`-crate filter, a float convolution) would move every
//! feature downstream. This module therefore repeats Pillow's own arithmetic (Pillow 13,
//! `src/libImaging/Resample.c` and the nearest-neighbour path of `Geometry.c`):
//!
//! * filter weights in `f64`, with Pillow's support, centre and rounding of the tap window
//!   (`precompute_coeffs`), normalised by their sum, then turned into 22-bit fixed point
//!   (`normalize_coeffs_8bpc`);
//! * two passes, each rounding with `1 << 21` and clipping to `0..=255`, a pass skipped when
//!   its dimension does not change: horizontal (over just the rows the vertical pass reads)
//!   into an 8-bit intermediate, then vertical; or, as Pillow 13 does when the height shrinks
//!   much more than the width, vertical first (the rule: `vertical_first`);
//! * `NEAREST` as Pillow's scale-affine transform: source positions accumulated in `f64`
//!   (`xo += scale`), not recomputed per pixel, because the accumulated rounding is what
//!   Pillow samples;
//! * the same size returned as a copy, and no `reduce()` pre-step (`reducing_gap` is `None`
//!   by default in `Image.resize`, and the image processors leave it so).
//!
//! Checked against Pillow on every filter by `crates/models/tests/resample.rs`, with golden
//! files from `tools/golden/pil_resample.py`.

use std::f64::consts::PI;

/// Pillow's fixed-point precision for 8-bit images: 8 bits of result, 2 bits of headroom
/// for the negative lobes and overshoot of bicubic / lanczos, the rest fraction.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Pillow starts every sum at one half, so the final shift rounds to nearest.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// A resampling filter of `Image.resize` (`PIL.Image.Resampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    Nearest,
    Box,
    Bilinear,
    Hamming,
    Bicubic,
    Lanczos,
}

impl Filter {
    /// The filter of a PIL resampling code, as image processor configs store it
    /// (`"resample": 3` is `BICUBIC`); `None` for codes without a filter here (the MKS ones).
    pub fn from_pil_code(code: u64) -> Option<Filter> {
        Some(match code {
            0 => Filter::Nearest,
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            _ => return None,
        })
    }

    /// Half-width of the kernel at scale 1 (Pillow's `struct filter` support).
    fn support(self) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    /// The kernel, written as Pillow writes it: the order of operations is part of the
    /// result, since the weights are rounded to fixed point afterwards.
    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * PI;
                    // Pillow writes the window's constants as C floats (0.54f, 0.46f).
                    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * PI;
        x.sin() / x
    }
}

/// Pillow's `resize((new_width, new_height), resample=filter)` of a packed RGB8 image
/// (`width * height * 3` bytes, row-major), bit for bit; the result is packed the same way.
///
/// Errors on a zero size or a buffer whose length is not `width * height * 3`.
pub fn resize_rgb8(
    rgb: &[u8],
    width: u32,
    height: u32,
    new_width: u32,
    new_height: u32,
    filter: Filter,
) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 {
        return Err(format!(
            "resize: source image is {width}x{height}; both sides must be > 0"
        ));
    }
    if new_width == 0 || new_height == 0 {
        return Err(format!(
            "resize: target size is {new_width}x{new_height}; both sides must be > 0"
        ));
    }
    let (w, h, nw, nh) = (
        width as usize,
        height as usize,
        new_width as usize,
        new_height as usize,
    );
    let expected = w.checked_mul(h).and_then(|n| n.checked_mul(3));
    if expected != Some(rgb.len()) {
        return Err(format!(
            "resize: a {width}x{height} RGB8 image has {} bytes, got {}",
            expected.map_or_else(|| "too many".to_string(), |n| n.to_string()),
            rgb.len()
        ));
    }
    if nw.checked_mul(nh).and_then(|n| n.checked_mul(3)).is_none() {
        return Err(format!(
            "resize: target size {new_width}x{new_height} is too large"
        ));
    }
    // Image.resize returns self.copy() for the same size (and _imaging's resize a crop of the
    // whole image), whatever the filter.
    if (w, h) == (nw, nh) {
        return Ok(rgb.to_vec());
    }
    Ok(match filter {
        Filter::Nearest => nearest(rgb, w, h, nw, nh),
        _ => convolve(rgb, w, h, nw, nh, filter),
    })
}

/// One axis's fixed-point filter taps: output index `i` reads `taps[i].1` inputs from
/// `taps[i].0` on, with the weights `weights[taps[i].2..][..taps[i].1]`.
struct Coeffs {
    taps: Vec<(usize, usize, usize)>,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole axis
/// (box `0..in_size`, which `Image.resize` passes as C floats).
fn precompute_coeffs(in_size: usize, out_size: usize, filter: Filter) -> Coeffs {
    let in0 = 0.0f32;
    let in1 = in_size as f32;
    let scale = f64::from(in1 - in0) / out_size as f64;
    // Downscaling widens the kernel by the scale so every input pixel is covered;
    // upscaling keeps it at its own width.
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;

    let mut taps = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size * (support.ceil() as usize * 2 + 1));
    let mut w = Vec::new();
    for xx in 0..out_size {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        // C's (int) truncation toward zero, then the clamps Pillow applies.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (xmax - xmin).max(0) as usize;
        let xmin = xmin as usize;

        w.clear();
        let mut ww = 0.0f64;
        for x in 0..n {
            let v = filter.weight(((x + xmin) as f64 - center + 0.5) * ss);
            w.push(v);
            ww += v;
        }
        taps.push((xmin, n, weights.len()));
        for &v in &w {
            let v = if ww != 0.0 { v / ww } else { v };
            let fixed = v * f64::from(1u32 << PRECISION_BITS);
            // Pillow rounds half away from zero, then truncates.
            weights.push(if v < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            });
        }
    }
    Coeffs { taps, weights }
}

/// `clip8`: drop the fraction, saturate to a byte.
#[inline]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Multiply-accumulate as Pillow's C `int` does. For 8-bit input the sums stay far inside
/// `i32` (weights sum to about `1 << 22`); wrapping only keeps debug builds from a panic
/// path the C code does not have.
#[inline]
fn mac(acc: i32, pixel: u8, weight: i32) -> i32 {
    acc.wrapping_add(i32::from(pixel).wrapping_mul(weight))
}

/// Pillow's `ImagingResampleInner` for the whole image: a pass is skipped when its dimension
/// does not change; otherwise the horizontal pass (on just the rows the vertical pass reads)
/// then the vertical pass, except that Pillow 13 runs the vertical pass first when the height
/// shrinks by more than twice as many pixels as the width does (python-pillow/Pillow#9549,
/// a speed-up for tall images). The order changes the result, since the intermediate is
/// rounded to 8 bits.
fn convolve(rgb: &[u8], w: usize, h: usize, nw: usize, nh: usize, filter: Filter) -> Vec<u8> {
    let vert = precompute_coeffs(h, nh, filter);
    if nw == w {
        return vertical(rgb, w, 0, &vert, nh);
    }
    let horiz = precompute_coeffs(w, nw, filter);
    if nh == h {
        return horizontal(rgb, w, 0, h, &horiz, nw);
    }
    if vertical_first(w, h, nw, nh) {
        let tmp = vertical(rgb, w, 0, &vert, nh);
        return horizontal(&tmp, w, 0, nh, &horiz, nw);
    }
    let first = vert.taps.first().map_or(0, |t| t.0);
    let last = vert.taps.last().map_or(h, |t| t.0 + t.1);
    let tmp = horizontal(rgb, w, first, last, &horiz, nw);
    vertical(&tmp, nw, first, &vert, nh)
}

/// Pillow 13's choice of pass order when both dimensions change, measured against Pillow on
/// some 2,400 random size pairs (up and down, every filter; the rule does not depend on the
/// filter): vertical first exactly when the height shrinks and loses more than twice as many
/// pixels as the width (a width that grows counts as a negative loss).
fn vertical_first(w: usize, h: usize, nw: usize, nh: usize) -> bool {
    let (w, h, nw, nh) = (w as i64, h as i64, nw as i64, nh as i64);
    nh < h && h - nh > 2 * (w - nw)
}

/// Rows `first..last` of `src` resampled to `nw` columns.
fn horizontal(src: &[u8], w: usize, first: usize, last: usize, c: &Coeffs, nw: usize) -> Vec<u8> {
    let mut out = vec![0u8; (last - first) * nw * 3];
    let rows = src[first * w * 3..last * w * 3].chunks_exact(w * 3);
    for (irow, orow) in rows.zip(out.chunks_exact_mut(nw * 3)) {
        for (px, &(xmin, n, off)) in orow.chunks_exact_mut(3).zip(&c.taps) {
            let (mut r, mut g, mut b) = (HALF, HALF, HALF);
            let taps = irow[xmin * 3..(xmin + n) * 3].chunks_exact(3);
            for (p, &k) in taps.zip(&c.weights[off..off + n]) {
                r = mac(r, p[0], k);
                g = mac(g, p[1], k);
                b = mac(b, p[2], k);
            }
            px[0] = clip8(r);
            px[1] = clip8(g);
            px[2] = clip8(b);
        }
    }
    out
}

/// `src` (whose row 0 is source row `first_row`) resampled to `nh` rows. Every byte of a row
/// is filtered the same way, so the row is accumulated as a whole, tap by tap (the same sums
/// as Pillow's per-pixel loop, in a loop the compiler vectorises).
fn vertical(src: &[u8], w: usize, first_row: usize, c: &Coeffs, nh: usize) -> Vec<u8> {
    let row = w * 3;
    let mut out = vec![0u8; nh * row];
    let mut acc = vec![0i32; row];
    for (orow, &(ymin, n, off)) in out.chunks_exact_mut(row).zip(&c.taps) {
        acc.fill(HALF);
        let start = (ymin - first_row) * row;
        let rows = src[start..start + n * row].chunks_exact(row);
        for (irow, &k) in rows.zip(&c.weights[off..off + n]) {
            for (a, &p) in acc.iter_mut().zip(irow) {
                *a = mac(*a, p, k);
            }
        }
        for (o, &a) in orow.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Pillow's `NEAREST` resize: `ImagingScaleAffine` with scale `in / out` and offset 0.
fn nearest(rgb: &[u8], w: usize, h: usize, nw: usize, nh: usize) -> Vec<u8> {
    // _imaging.c: a[0] = (double)(box[2] - box[0]) / xsize, the box being C floats.
    let ax = f64::from(w as f32 - 0.0f32) / nw as f64;
    let ay = f64::from(h as f32 - 0.0f32) / nh as f64;
    // Geometry.c's COORD: -1 for anything negative, else truncation.
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };

    // Pillow pretabulates the source column of each output column, summing the scale
    // rather than multiplying, and fills columns outside the source with zeros.
    let mut xintab = vec![0usize; nw];
    let (mut xmin, mut xmax) = (nw, 0);
    let mut xo = 0.0 + ax * 0.5;
    for (x, slot) in xintab.iter_mut().enumerate() {
        let xin = coord(xo);
        if xin >= 0 && (xin as usize) < w {
            xmax = x + 1;
            xmin = xmin.min(x);
            *slot = xin as usize;
        }
        xo += ax;
    }

    let mut out = vec![0u8; nw * nh * 3];
    let mut yo = 0.0 + ay * 0.5;
    for orow in out.chunks_exact_mut(nw * 3) {
        let yi = coord(yo);
        if yi >= 0 && (yi as usize) < h {
            let irow = &rgb[yi as usize * w * 3..][..w * 3];
            for x in xmin..xmax {
                let sx = xintab[x] * 3;
                orow[x * 3..x * 3 + 3].copy_from_slice(&irow[sx..sx + 3]);
            }
        }
        yo += ay;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Filter; 6] = [
        Filter::Nearest,
        Filter::Box,
        Filter::Bilinear,
        Filter::Hamming,
        Filter::Bicubic,
        Filter::Lanczos,
    ];

    #[test]
    fn same_size_is_a_copy() {
        let rgb: Vec<u8> = (0..5 * 4 * 3).map(|i| (i * 37 % 256) as u8).collect();
        for f in ALL {
            assert_eq!(resize_rgb8(&rgb, 5, 4, 5, 4, f).unwrap(), rgb, "{f:?}");
        }
    }

    #[test]
    fn one_pixel_scales_up_to_a_constant() {
        let rgb = [12u8, 200, 255];
        for f in ALL {
            let out = resize_rgb8(&rgb, 1, 1, 3, 3, f).unwrap();
            assert_eq!(out, rgb.repeat(9), "{f:?}");
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        // Normalised weights each round by at most half a unit.
        for f in ALL[1..].iter().copied() {
            for (i, o) in [(50, 28), (28, 50), (1024, 672), (7, 336)] {
                let c = precompute_coeffs(i, o, f);
                for &(_, n, off) in &c.taps {
                    let sum: i32 = c.weights[off..off + n].iter().sum();
                    assert!(
                        (sum - (1 << PRECISION_BITS)).abs() <= n as i32,
                        "{f:?} {i}->{o}"
                    );
                }
            }
        }
    }

    #[test]
    fn pass_order_follows_pillow_13() {
        // The boundary Pillow showed: 200x200 to width 190 goes vertical first below height 180.
        assert!(vertical_first(200, 200, 190, 179));
        assert!(!vertical_first(200, 200, 190, 180));
        // A growing width counts as a negative loss; a growing height never goes first.
        assert!(vertical_first(300, 200, 301, 199));
        assert!(!vertical_first(300, 200, 224, 224));
        assert!(!vertical_first(30, 20, 10, 21));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(
            resize_rgb8(&[], 0, 1, 2, 2, Filter::Bicubic)
                .unwrap_err()
                .contains("0x1")
        );
        assert!(
            resize_rgb8(&[0; 3], 1, 1, 2, 0, Filter::Bicubic)
                .unwrap_err()
                .contains("2x0")
        );
        let e = resize_rgb8(&[0; 5], 1, 2, 2, 2, Filter::Bilinear).unwrap_err();
        assert!(e.contains("has 6 bytes, got 5"), "{e}");
    }

    #[test]
    fn pil_codes() {
        assert_eq!(Filter::from_pil_code(3), Some(Filter::Bicubic));
        assert_eq!(Filter::from_pil_code(2), Some(Filter::Bilinear));
        assert_eq!(Filter::from_pil_code(6), None);
    }
}
