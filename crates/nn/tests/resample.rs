//! `vision::resample::resize_rgb8` against Pillow's `Image.resize`, byte for byte, on every
//! filter: the golden files of `tools/golden/pil_resample.py` (random images, a smooth 300x200
//! image with hard edges; downscales, upscales, non-integer scales, one side unchanged, the
//! same size).

use std::path::{Path, PathBuf};

use art_nn::vision::resample::{Filter, resize_rgb8};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pil_resample")
}

fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The golden script's smooth_image, integer for integer.
fn smooth_image(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3u32 {
                let base = match c {
                    0 => x * 255 / (w - 1),
                    1 => y * 255 / (h - 1),
                    _ => (x + y) * 255 / (w + h - 2),
                } as i64;
                let n = x.wrapping_mul(73_856_093)
                    ^ y.wrapping_mul(19_349_663)
                    ^ c.wrapping_mul(83_492_791);
                let n = n.wrapping_mul(2_654_435_761) >> 16;
                let mut v = base + i64::from(n % 41) - 20;
                if (40..100).contains(&x) && (60..120).contains(&y) {
                    v = if (x / 6 + y / 6) % 2 == 1 { 255 } else { 0 };
                }
                out.push(v.clamp(0, 255) as u8);
            }
        }
    }
    out
}

fn filter(name: &str) -> Filter {
    match name {
        "nearest" => Filter::Nearest,
        "box" => Filter::Box,
        "bilinear" => Filter::Bilinear,
        "hamming" => Filter::Hamming,
        "bicubic" => Filter::Bicubic,
        "lanczos" => Filter::Lanczos,
        other => panic!("unknown filter {other}"),
    }
}

fn num(v: &Value, key: &str) -> usize {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}")) as usize
}

#[test]
fn matches_pillow_on_every_case_and_filter() {
    let index: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("cases.json")).unwrap()).unwrap();
    let blob = std::fs::read(fixtures().join("cases.bin")).unwrap();

    let input = |name: &str| -> (u32, u32, Vec<u8>) {
        let e = &index["inputs"][name];
        let (w, h) = (num(e, "w") as u32, num(e, "h") as u32);
        let data = if e["generated"] == "smooth" {
            let data = smooth_image(w, h);
            let want = u64::from_str_radix(e["fnv1a64"].as_str().unwrap(), 16).unwrap();
            assert_eq!(
                fnv1a64(&data),
                want,
                "{name}: the rebuilt image differs from the script's"
            );
            data
        } else {
            blob[num(e, "offset")..][..num(e, "len")].to_vec()
        };
        (w, h, data)
    };

    let cases = index["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["input"].as_str().unwrap();
        let (w, h, data) = input(name);
        let (nw, nh) = (num(case, "w") as u32, num(case, "h") as u32);
        let f = filter(case["filter"].as_str().unwrap());
        let label = format!("{name} -> {nw}x{nh} {f:?}");
        let got = resize_rgb8(&data, w, h, nw, nh, f).unwrap();
        assert_eq!(got.len(), (nw * nh * 3) as usize, "{label}");
        let want = &blob[num(case, "offset")..][..num(case, "len")];
        let row = (nw * 3) as usize;
        match case["data"].as_str().unwrap() {
            "raw" => {
                if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
                    let (y, x, c) = (i / row, i % row / 3, i % 3);
                    let n = got.iter().zip(want).filter(|(a, b)| a != b).count();
                    failures.push(format!(
                        "{label}: {n} bytes differ, first at ({x}, {y}) channel {c}: {} vs Pillow {}",
                        got[i], want[i]
                    ));
                }
            }
            "row_fnv1a64" => {
                let bad: Vec<usize> = got
                    .chunks_exact(row)
                    .zip(want.chunks_exact(8))
                    .enumerate()
                    .filter(|(_, (r, h))| {
                        fnv1a64(r) != u64::from_le_bytes((*h).try_into().unwrap())
                    })
                    .map(|(y, _)| y)
                    .collect();
                if !bad.is_empty() {
                    failures.push(format!(
                        "{label}: {} rows differ, first row {}",
                        bad.len(),
                        bad[0]
                    ));
                }
            }
            other => panic!("{label}: unknown data kind {other}"),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Pillow:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
