//! Helpers of `onnx_judges.rs`: the fixtures, the test images made exactly as
//! `tools/golden/onnx_judges.py` makes them, PNG files, a local package index; [`gan`] is
//! the DCGAN face generator on candle.

pub mod gan;

use art_core::Image;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_judges")
}

pub fn golden(name: &str) -> Value {
    crate::common::read_json(&fixtures().join(name))
}

pub fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

// ---- the test images, made exactly as the golden script makes them ------------------------

/// The golden script's byte stream: a 64-bit LCG, the top byte of each state.
pub fn lcg_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

pub fn noise(w: u32, h: u32, seed: u64) -> Image {
    Image::new(w, h, lcg_bytes((w * h * 3) as usize, seed)).unwrap()
}

pub fn gradient(w: u32, h: u32) -> Image {
    let (w, h) = (w as u64, h as u64);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            rgb.push((x * 255 / (w - 1).max(1)) as u8);
            rgb.push((y * 255 / (h - 1).max(1)) as u8);
            rgb.push(((x + y) * 255 / (w + h - 2).max(1)) as u8);
        }
    }
    Image::new(w as u32, h as u32, rgb).unwrap()
}

pub fn flat(w: u32, h: u32, c: [u8; 3]) -> Image {
    Image::new(w, h, c.repeat((w * h) as usize)).unwrap()
}

pub fn read_png(path: &Path) -> Image {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    buf.truncate(info.buffer_size());
    Image::new(info.width, info.height, buf).unwrap()
}

pub fn write_png(path: &Path, img: &Image) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut enc = png::Encoder::new(f, img.width(), img.height());
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(img.rgb())
        .unwrap();
}

pub fn face(seed: u64) -> Image {
    read_png(&fixtures().join(format!("faces/face_{seed}.png")))
}

/// Every test image of the golden files, by name.
pub fn images() -> Vec<(String, Image)> {
    let mut v: Vec<(String, Image)> = (0..4).map(|s| (format!("face_{s}"), face(s))).collect();
    v.push(("flat".into(), flat(96, 64, [201, 152, 128])));
    v.push(("noise".into(), noise(200, 150, 7)));
    v.push(("gradient".into(), gradient(300, 200)));
    v.push(("wide640".into(), gradient(640, 400)));
    v.push(("tiny".into(), flat(1, 1, [10, 200, 30])));
    v.push(("big".into(), gradient(4000, 3000)));
    v
}

/// Serves a PEP 691 project page and a wheel; counts requests.
pub fn serve_index(
    project: &str,
    wheel_name: &str,
    wheel: Vec<u8>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    let page = serde_json::json!({"meta": {"api-version": "1.1"}, "name": project, "files": [
        {"filename": "other-0.0.1.tar.gz", "url": "/files/nothing", "hashes": {}},
        {"filename": wheel_name, "url": format!("/files/{wheel_name}"), "hashes": {"sha256": hex(&wheel)}},
    ]})
    .to_string();
    let (project, wheel_name) = (project.to_string(), wheel_name.to_string());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
            }
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body, ctype) = if path == format!("/simple/{project}/") {
                (
                    "200 OK",
                    page.clone().into_bytes(),
                    "application/vnd.pypi.simple.v1+json",
                )
            } else if path == format!("/files/{wheel_name}") {
                ("200 OK", wheel.clone(), "application/octet-stream")
            } else {
                ("404 Not Found", b"no".to_vec(), "text/plain")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    (base, hits)
}

pub fn make_wheel(member: &str, content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("fake/__init__.py", opts).unwrap();
        z.write_all(b"").unwrap();
        z.start_file(member, opts).unwrap();
        z.write_all(content).unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}
