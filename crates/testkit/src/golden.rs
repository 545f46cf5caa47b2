//! Helpers the model crates' golden tests share (feature `golden`): tensors and JSON of the
//! golden files, fixture folders, PNG fixtures.

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// The largest absolute difference of two tensors of one shape (compared in f32).
pub fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The largest absolute difference of two slices of one length; NaN if any difference is
/// NaN, so that a NaN never passes a tolerance.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, |m, d| if m.is_nan() || d <= m { m } else { d })
}

/// A JSON file (a golden file's numbers, a model's config).
pub fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The tensors of a golden `.safetensors` file, on the CPU.
pub fn read_tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// A fixture folder's golden files: `golden.json` and `golden.safetensors`.
#[derive(Debug)]
pub struct Golden {
    pub json: Value,
    pub tensors: HashMap<String, Tensor>,
}

impl Golden {
    pub fn read(dir: &Path) -> Self {
        Self {
            json: read_json(&dir.join("golden.json")),
            tensors: read_tensors(&dir.join("golden.safetensors")),
        }
    }

    /// The golden tensor `name` (a panic naming it when there is none).
    pub fn tensor(&self, name: &str) -> &Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("golden tensor {name}"))
    }
}

/// A JSON array of numbers as f32s.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A copy of the model folder `model` whose `config.json` is edited by `edit`.
pub fn edited_config(model: &Path, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(model, tmp.path());
    let p = tmp.path().join("config.json");
    let mut v = read_json(&p);
    edit(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    tmp
}

/// An 8-bit RGB PNG fixture as an image.
pub fn read_png(path: &Path) -> art_core::Image {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    buf.truncate(info.buffer_size());
    art_core::Image::new(info.width, info.height, buf).unwrap()
}

/// A copy of the model folder `model` in which every value of the tensor `tensor` of the
/// safetensors file `file` is NaN (same shape and dtype): a model whose forward returns NaN,
/// for the tests that a judge or a generator refuses non-finite numbers.
pub fn poisoned_copy(model: &Path, file: &str, tensor: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(model, tmp.path());
    let path = tmp.path().join(file);
    let mut tensors = read_tensors(&path);
    let t = tensors
        .get(tensor)
        .unwrap_or_else(|| panic!("{}: no tensor {tensor}", path.display()));
    let nan = (t.ones_like().unwrap() * f64::NAN).unwrap();
    tensors.insert(tensor.to_string(), nan);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    tmp
}
