//! Reading tensor files without memory-mapping them (the workspace forbids `unsafe`):
//! safetensors files, single or sharded (`model.safetensors.index.json`), are indexed from
//! their JSON header and each tensor is read from disk when asked for, so loading a model
//! needs the model's memory plus one tensor, not twice the file. A truncated or corrupt file is
//! reported with its path and the tensor concerned.

use crate::ModelError;
use crate::invalid;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

/// An index over the tensors of one or more safetensors files.
#[derive(Debug)]
pub struct SafetensorsIndex {
    files: Vec<PathBuf>,
    entries: HashMap<String, Entry>,
}

fn open(path: &Path) -> Result<File, ModelError> {
    File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::Missing {
            path: path.to_path_buf(),
            what: "file".into(),
        },
        _ => invalid(path, e.to_string()),
    })
}

fn dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "U32" => DType::U32,
        "U8" => DType::U8,
        _ => return None,
    })
}

impl SafetensorsIndex {
    /// The weights of a model folder: `model.safetensors.index.json` (sharded) or
    /// `model.safetensors`.
    pub fn open_folder(dir: &Path, stem: &str) -> Result<Self, ModelError> {
        let index = dir.join(format!("{stem}.safetensors.index.json"));
        if index.is_file() {
            let bytes = std::fs::read(&index).map_err(|e| invalid(&index, e.to_string()))?;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| invalid(&index, e.to_string()))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| invalid(&index, "no `weight_map` object"))?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            let paths: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
            return Self::open_files(&paths);
        }
        Self::open_files(&[dir.join(format!("{stem}.safetensors"))])
    }

    pub fn open_files(paths: &[PathBuf]) -> Result<Self, ModelError> {
        let mut entries = HashMap::new();
        for (i, path) in paths.iter().enumerate() {
            let mut f = open(path)?;
            let len = f
                .metadata()
                .map_err(|e| invalid(path, e.to_string()))?
                .len();
            let mut n = [0u8; 8];
            f.read_exact(&mut n)
                .map_err(|_| invalid(path, "not a safetensors file (shorter than its header)"))?;
            let n = u64::from_le_bytes(n);
            if n > 100_000_000 || 8 + n > len {
                return Err(invalid(
                    path,
                    "not a safetensors file (header length out of range)",
                ));
            }
            let mut header = vec![0u8; n as usize];
            f.read_exact(&mut header)
                .map_err(|e| invalid(path, e.to_string()))?;
            let header: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&header)
                    .map_err(|e| invalid(path, format!("safetensors header: {e}")))?;
            let base = 8 + n;
            for (name, info) in header {
                if name == "__metadata__" {
                    continue;
                }
                let bad = |what: &str| invalid(path, format!("tensor `{name}`: {what}"));
                let dt = info
                    .get("dtype")
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| bad("no dtype"))?;
                let dt = dtype(dt).ok_or_else(|| bad(&format!("unsupported dtype {dt}")))?;
                let shape: Vec<usize> = info
                    .get("shape")
                    .and_then(|s| s.as_array())
                    .ok_or_else(|| bad("no shape"))?
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("shape is not a list of integers"))?;
                let offs = info
                    .get("data_offsets")
                    .and_then(|o| o.as_array())
                    .filter(|o| o.len() == 2)
                    .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
                    .ok_or_else(|| bad("no data_offsets"))?;
                let (start, end) = (base + offs.0, base + offs.1);
                let want = shape.iter().product::<usize>() as u64 * dt.size_in_bytes() as u64;
                if end < start || end - start != want {
                    return Err(bad("data_offsets do not match its shape and dtype"));
                }
                if end > len {
                    return Err(bad(&format!(
                        "the file is truncated ({len} bytes, the tensor ends at {end})"
                    )));
                }
                entries.insert(
                    name,
                    Entry {
                        file: i,
                        dtype: dt,
                        shape,
                        start,
                        end,
                    },
                );
            }
        }
        Ok(Self {
            files: paths.to_vec(),
            entries,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The path of the (first) file, for messages.
    pub fn path(&self) -> &Path {
        &self.files[0]
    }

    /// Reads one tensor onto `device`, converted to `dtype`.
    pub fn load(&self, name: &str, dtype: DType, device: &Device) -> Result<Tensor, ModelError> {
        let e = self.entries.get(name).ok_or_else(|| ModelError::Missing {
            path: self.files[0].clone(),
            what: format!("tensor `{name}`"),
        })?;
        let path = &self.files[e.file];
        let mut f = open(path)?;
        let mut buf = vec![0u8; (e.end - e.start) as usize];
        f.seek(SeekFrom::Start(e.start))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|err| invalid(path, format!("tensor `{name}`: {err}")))?;
        let t = Tensor::from_raw_buffer(&buf, e.dtype, &e.shape, &Device::Cpu)?;
        Ok(t.to_dtype(dtype)?.to_device(device)?)
    }
}

/// All tensors of a PyTorch pickle checkpoint (`*.bin`, the zip format of `torch.save`), read
/// without Python.
pub fn read_pytorch(path: &Path) -> Result<Vec<(String, Tensor)>, ModelError> {
    if !path.is_file() {
        return Err(ModelError::Missing {
            path: path.to_path_buf(),
            what: "file".into(),
        });
    }
    candle_core::pickle::read_all(path)
        .map_err(|e| invalid(path, format!("not a readable PyTorch checkpoint: {e}")))
}

/// The error of a tensor whose shape is not the one the model's config needs.
fn shape_error(path: &Path, name: &str, found: &[usize], wanted: &[usize]) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "{}: tensor `{name}` has shape {found:?}, the model's config needs {wanted:?}",
        path.display()
    ))
}

/// Lets candle's `VarBuilder` read a model's tensors lazily from the index, one at a time, with
/// the shape the model expects checked against the file (the message names file and tensor).
impl candle_nn::var_builder::SimpleBackend for SafetensorsIndex {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Some(e) = self.entries.get(name)
            && e.shape.as_slice() != s.dims()
        {
            return Err(shape_error(&self.files[e.file], name, &e.shape, s.dims()));
        }
        self.get_unchecked(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.load(name, dtype, dev)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}

/// A checkpoint's tensors: a safetensors index (read tensor by tensor) or every tensor of a
/// PyTorch file, held in memory.
#[derive(Debug)]
pub enum Checkpoint {
    Index(SafetensorsIndex),
    Map {
        path: PathBuf,
        tensors: HashMap<String, Tensor>,
    },
}

impl Checkpoint {
    /// One file: safetensors by its extension, else a PyTorch checkpoint.
    pub fn open_file(path: &Path) -> Result<Self, ModelError> {
        if path.extension().is_some_and(|e| e == "safetensors") {
            Ok(Self::Index(SafetensorsIndex::open_files(&[
                path.to_path_buf()
            ])?))
        } else {
            Ok(Self::Map {
                path: path.to_path_buf(),
                tensors: read_pytorch(path)?.into_iter().collect(),
            })
        }
    }

    /// A transformers folder's weights: `model.safetensors` (or its sharded index), else
    /// `pytorch_model.bin`.
    pub fn open_folder(dir: &Path) -> Result<Self, ModelError> {
        let st = dir.join("model.safetensors");
        if st.is_file() || dir.join("model.safetensors.index.json").is_file() {
            return Ok(Self::Index(SafetensorsIndex::open_folder(dir, "model")?));
        }
        let bin = dir.join("pytorch_model.bin");
        if bin.is_file() {
            return Self::open_file(&bin);
        }
        Err(ModelError::Missing {
            path: st,
            what: "weights (model.safetensors or pytorch_model.bin)".into(),
        })
    }

    /// The file named in errors (the first shard of an index).
    pub fn path(&self) -> &Path {
        match self {
            Self::Index(i) => i.path(),
            Self::Map { path, .. } => path,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            Self::Index(i) => i.contains(name),
            Self::Map { tensors, .. } => tensors.contains_key(name),
        }
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            Self::Index(i) => i.names().map(str::to_string).collect(),
            Self::Map { tensors, .. } => tensors.keys().cloned().collect(),
        }
    }

    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match self {
            Self::Index(i) => i.shape(name).map(<[usize]>::to_vec),
            Self::Map { tensors, .. } => tensors.get(name).map(|t| t.dims().to_vec()),
        }
    }

    /// Reads one tensor onto `device`, converted to `dtype`.
    pub fn load(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor, ModelError> {
        match self {
            Self::Index(i) => i.load(name, dtype, dev),
            Self::Map { path, tensors } => tensors
                .get(name)
                .ok_or_else(|| ModelError::Missing {
                    path: path.clone(),
                    what: format!("tensor `{name}`"),
                })?
                .to_dtype(dtype)
                .and_then(|t| t.to_device(dev))
                .map_err(|e| invalid(path, format!("tensor `{name}`: {e}"))),
        }
    }
}

/// candle's `VarBuilder` over a shared [`Checkpoint`], the shape checked against the model's.
#[derive(Debug)]
pub struct CheckpointBackend(pub std::sync::Arc<Checkpoint>);

impl candle_nn::var_builder::SimpleBackend for CheckpointBackend {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Some(shape) = self.0.shape(name)
            && shape.as_slice() != s.dims()
        {
            return Err(shape_error(self.0.path(), name, &shape, s.dims()));
        }
        self.get_unchecked(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0
            .load(name, dtype, dev)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

/// Tensors that replace a checkpoint's tensors of the same name (an original-layout LLaVA
/// LoRA's `non_lora_trainables.bin`), and which of them were used: a replacement that
/// matches nothing is reported rather than dropped.
#[derive(Debug, Default)]
pub struct Overlay {
    tensors: HashMap<String, Tensor>,
    used: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Where the tensors came from (named in errors).
    pub source: PathBuf,
}

impl Overlay {
    pub fn new(tensors: HashMap<String, Tensor>, source: PathBuf) -> Self {
        Self {
            tensors,
            used: Default::default(),
            source,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The replacement for `name`, if any, checked against the shape the model expects.
    pub fn take(&self, name: &str, shape: Option<&[usize]>) -> Result<Option<Tensor>, ModelError> {
        let Some(t) = self.tensors.get(name) else {
            return Ok(None);
        };
        if let Some(shape) = shape
            && t.dims() != shape
        {
            return Err(invalid(
                &self.source,
                format!(
                    "`{name}` is {:?}, the model's weight is {shape:?}",
                    t.dims()
                ),
            ));
        }
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        Ok(Some(t.clone()))
    }

    /// The replacements no weight asked for, sorted.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect();
        out.sort();
        out
    }
}

/// A checkpoint seen through an [`Overlay`], for candle's `VarBuilder`.
#[derive(Debug)]
pub struct OverlaidIndex {
    pub index: std::sync::Arc<SafetensorsIndex>,
    pub overlay: std::sync::Arc<Overlay>,
}

impl candle_nn::var_builder::SimpleBackend for OverlaidIndex {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let msg = |e: ModelError| candle_core::Error::Msg(e.to_string());
        match self.overlay.take(name, Some(s.dims())).map_err(msg)? {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => self.index.get(s, name, init, dtype, dev),
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let msg = |e: ModelError| candle_core::Error::Msg(e.to_string());
        match self.overlay.take(name, None).map_err(msg)? {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => self.index.get_unchecked(name, dtype, dev),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.index.contains(name) || self.overlay.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, tensors: &[(&str, Tensor)]) {
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, path).unwrap();
    }

    #[test]
    fn reads_single_and_sharded_files_tensor_by_tensor() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let b = Tensor::new(&[1u32, 2, 3], &Device::Cpu).unwrap();
        write(&tmp.path().join("model-1.safetensors"), &[("a", a.clone())]);
        write(&tmp.path().join("model-2.safetensors"), &[("b", b)]);
        std::fs::write(
            tmp.path().join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}"#,
        )
        .unwrap();
        let idx = SafetensorsIndex::open_folder(tmp.path(), "model").unwrap();
        assert_eq!(idx.shape("a"), Some(&[2usize, 3][..]));
        let got = idx.load("a", DType::F16, &Device::Cpu).unwrap();
        assert_eq!(got.dtype(), DType::F16);
        assert_eq!(
            got.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap(),
            a.to_vec2::<f32>().unwrap()
        );
        assert!(idx.contains("b"));
        let e = idx.load("c", DType::F32, &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("`c`"), "{e}");
    }

    #[test]
    fn truncated_and_foreign_files_are_named_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("model.safetensors");
        let a = Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap();
        write(&p, &[("w", a)]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
        let e = SafetensorsIndex::open_folder(tmp.path(), "model")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("truncated"),
            "{e}"
        );
        std::fs::write(&p, b"<html>not found</html>").unwrap();
        let e = SafetensorsIndex::open_folder(tmp.path(), "model")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
        std::fs::remove_file(&p).unwrap();
        let e = SafetensorsIndex::open_folder(tmp.path(), "model")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not found"), "{e}");
    }
}
