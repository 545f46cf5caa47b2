//! What the benchmarks share: their command-line options, medians, reading their PNG inputs,
//! and running a Python reference script of `tools/bench` for its JSON result.

use std::process::Command;

/// The value after `name` in `args`, else `default`.
pub fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

pub fn median(v: Vec<f64>) -> f64 {
    art_testkit::median(&v)
}

/// Runs `python tools/bench/SCRIPT ARGS` and parses the last JSON line it prints.
pub fn reference(python: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let script = format!("{}/../../tools/bench/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .expect("run the reference");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("{script} printed no JSON line: {stdout}"));
    serde_json::from_str(line).expect("reference JSON")
}

/// An 8-bit RGB PNG input as an image (the benches that take images).
#[allow(dead_code)]
pub fn read_png(path: &std::path::Path) -> art_core::Image {
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("open the image"),
    ));
    let mut reader = dec.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    assert_eq!(info.color_type, png::ColorType::Rgb, "an RGB image");
    buf.truncate(info.buffer_size());
    art_core::Image::new(info.width, info.height, buf).expect("image")
}
