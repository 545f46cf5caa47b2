//! Reading ART's embedding files without Python: `torch.save` files (a zip archive, read with
//! `art_hub::archive`) by candle's pickle reader or, for a single pickled tensor, by this
//! module's; numpy pickles (protocols 2 to 5) by a small pickle machine of the numpy array
//! protocol.

use super::*;

/// The one tensor of a `torch.save` file: a pickled tensor or `nn.Parameter` (ART's
/// `finetuned_q16/prompts.pt`), or a dict holding exactly one tensor. Read on the CPU in the
/// file's dtype.
pub fn read_torch_tensor(path: &Path) -> Result<Tensor, ModelError> {
    let data = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(path, "file"),
        _ => invalid(path, e.to_string()),
    })?;
    let entries = art_hub::archive::zip_members(&data).map_err(|e| invalid(path, e))?;
    let (pkl, pkl_bytes) = entries
        .iter()
        .find(|(n, _)| n.ends_with("data.pkl"))
        .ok_or_else(|| invalid(path, "no data.pkl in the archive: not a torch.save file"))?;
    let dir = PathBuf::from(pkl.strip_suffix(".pkl").unwrap_or(pkl));
    let mut stack = candle_core::pickle::Stack::empty();
    let mut reader: &[u8] = pkl_bytes;
    stack
        .read_loop(&mut reader)
        .map_err(|e| invalid(path, format!("data.pkl: {e}")))?;
    let obj = stack
        .finalize()
        .map_err(|e| invalid(path, format!("data.pkl: {e}")))?;
    let infos: Vec<candle_core::pickle::TensorInfo> = match obj {
        candle_core::pickle::Object::Dict(kv) => kv
            .into_iter()
            .filter_map(|(k, v)| v.into_tensor_info(k, &dir).ok().flatten())
            .collect(),
        other => other
            .into_tensor_info(candle_core::pickle::Object::Unicode("tensor".into()), &dir)
            .map_err(|e| invalid(path, format!("data.pkl: {e}")))?
            .into_iter()
            .collect(),
    };
    let [info] = <[_; 1]>::try_from(infos).map_err(|v: Vec<_>| {
        invalid(
            path,
            format!(
                "holds {} tensors; one tensor (torch.save of a tensor or nn.Parameter) was expected",
                v.len()
            ),
        )
    })?;
    if !info.layout.is_contiguous() {
        return Err(invalid(path, "the tensor is not contiguous"));
    }
    let (_, bytes) = entries
        .iter()
        .find(|(n, _)| *n == info.path)
        .ok_or_else(|| invalid(path, format!("no `{}` in the archive", info.path)))?;
    let start = info.layout.start_offset();
    let len = info.layout.shape().elem_count() * info.dtype.size_in_bytes();
    let raw = bytes
        .get(start..start + len)
        .ok_or_else(|| invalid(path, format!("`{}` is shorter than its tensor", info.path)))?;
    Ok(Tensor::from_raw_buffer(
        raw,
        info.dtype,
        info.layout.dims(),
        &Device::Cpu,
    )?)
}

/// A value of the pickle machine below: just what numpy array pickles need.
#[derive(Debug, Clone)]
enum Py {
    None,
    Bool(bool),
    Int(i64),
    /// A float (no array pickle needs its value).
    Float,
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
    Global(String, String),
    Mark,
    Dtype {
        descr: String,
        order: Option<String>,
    },
    Array {
        shape: Vec<usize>,
        dtype: Box<Py>,
        fortran: bool,
        data: Vec<u8>,
        /// `_reconstruct` gives an empty array that BUILD fills.
        filled: bool,
    },
    /// Some other object; what made it.
    Other(String),
}

fn is_numpy_module(module: &str, sub: &str) -> bool {
    module == format!("numpy.core.{sub}") || module == format!("numpy._core.{sub}")
}

fn py_reduce(callable: Py, args: Py) -> Result<Py, String> {
    let Py::Global(module, name) = callable else {
        return Ok(Py::Other("a call of a non-global".into()));
    };
    let args = match args {
        Py::Tuple(a) => a,
        _ => return Err(format!("{module}.{name}: arguments are not a tuple")),
    };
    Ok(match (module.as_str(), name.as_str()) {
        ("_codecs", "encode") => match args.as_slice() {
            // Protocol 2 writes bytes as `_codecs.encode(str, "latin1")`.
            [Py::Str(s), Py::Str(enc)] if matches!(enc.as_str(), "latin1" | "latin-1") => {
                Py::Bytes(s.chars().map(|c| c as u32 as u8).collect())
            }
            [Py::Str(s)] => Py::Bytes(s.as_bytes().to_vec()),
            _ => return Err("_codecs.encode with unexpected arguments".into()),
        },
        ("numpy", "dtype") => match args.first() {
            Some(Py::Str(d)) => Py::Dtype {
                descr: d.clone(),
                order: None,
            },
            _ => return Err("numpy.dtype without a type string".into()),
        },
        (m, "_reconstruct") if is_numpy_module(m, "multiarray") => Py::Array {
            shape: vec![],
            dtype: Box::new(Py::None),
            fortran: false,
            data: vec![],
            filled: false,
        },
        (m, "_frombuffer") if is_numpy_module(m, "numeric") => match args.as_slice() {
            [Py::Bytes(b), dtype, Py::Tuple(shape), Py::Str(order)] => Py::Array {
                shape: ints(shape)?,
                dtype: Box::new(dtype.clone()),
                fortran: order == "F",
                data: b.clone(),
                filled: true,
            },
            _ => return Err("_frombuffer with unexpected arguments".into()),
        },
        _ => Py::Other(format!("{module}.{name}")),
    })
}

fn ints(v: &[Py]) -> Result<Vec<usize>, String> {
    v.iter()
        .map(|x| match x {
            Py::Int(i) if *i >= 0 => Ok(*i as usize),
            _ => Err("an array shape that is not a tuple of integers".to_string()),
        })
        .collect()
}

fn py_build(obj: Py, state: Py) -> Result<Py, String> {
    Ok(match (obj, state) {
        (Py::Dtype { descr, .. }, Py::Tuple(s)) => {
            let order = match s.get(1) {
                Some(Py::Str(o)) => Some(o.clone()),
                _ => None,
            };
            Py::Dtype { descr, order }
        }
        (Py::Array { filled: false, .. }, Py::Tuple(s)) => {
            // ndarray.__setstate__: (version, shape, dtype, is_fortran, data) or without the
            // version.
            let s = if s.len() == 5 { &s[1..] } else { &s[..] };
            match s {
                [Py::Tuple(shape), dtype, Py::Bool(f), Py::Bytes(b)] => Py::Array {
                    shape: ints(shape)?,
                    dtype: Box::new(dtype.clone()),
                    fortran: *f,
                    data: b.clone(),
                    filled: true,
                },
                [_, _, _, Py::List(_)] => {
                    return Err("an object array (not numbers)".into());
                }
                _ => {
                    return Err("an ndarray state that is not (shape, dtype, fortran, data)".into());
                }
            }
        }
        (o, _) => match o {
            Py::Other(w) => Py::Other(w),
            _ => Py::Other("an object with state".into()),
        },
    })
}

/// Runs a pickle (protocols 2 to 5) far enough for a numpy array and returns the top object.
fn unpickle(data: &[u8]) -> Result<Py, String> {
    let mut stack: Vec<Py> = Vec::new();
    let mut memo: HashMap<u64, Py> = HashMap::new();
    let mut i = 0usize;
    let take = |i: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = data
            .get(*i..*i + n)
            .ok_or_else(|| "the pickle ends early".to_string())?;
        *i += n;
        Ok(s)
    };
    let uint = |b: &[u8]| -> u64 { b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64) };
    let pop = |stack: &mut Vec<Py>| {
        stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    };
    let to_mark = |stack: &mut Vec<Py>| -> Result<Vec<Py>, String> {
        let m = stack
            .iter()
            .rposition(|x| matches!(x, Py::Mark))
            .ok_or("pickle MARK missing")?;
        let items = stack.split_off(m + 1);
        stack.pop();
        Ok(items)
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    loop {
        let op = take(&mut i, 1)?[0];
        match op {
            0x80 => {
                take(&mut i, 1)?;
            }
            0x95 => {
                take(&mut i, 8)?;
            }
            b'c' => {
                let line = |i: &mut usize| -> Result<String, String> {
                    let rest = data.get(*i..).unwrap_or(&[]);
                    let n = rest
                        .iter()
                        .position(|&c| c == b'\n')
                        .ok_or("GLOBAL without a newline")?;
                    *i += n + 1;
                    Ok(text(&rest[..n]))
                };
                let m = line(&mut i)?;
                let n = line(&mut i)?;
                stack.push(Py::Global(m, n));
            }
            0x93 => {
                let n = pop(&mut stack)?;
                let m = pop(&mut stack)?;
                match (m, n) {
                    (Py::Str(m), Py::Str(n)) => stack.push(Py::Global(m, n)),
                    _ => return Err("STACK_GLOBAL of non-strings".into()),
                }
            }
            0x8c | b'X' | 0x8d => {
                let w = match op {
                    0x8c => 1,
                    b'X' => 4,
                    _ => 8,
                };
                let n = uint(take(&mut i, w)?) as usize;
                let s = text(take(&mut i, n)?);
                stack.push(Py::Str(s));
            }
            b'C' | b'B' | 0x8e | 0x96 => {
                let w = match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                };
                let n = uint(take(&mut i, w)?) as usize;
                let b = take(&mut i, n)?.to_vec();
                stack.push(Py::Bytes(b));
            }
            0x94 => {
                let top = stack.last().ok_or("MEMOIZE on an empty stack")?.clone();
                memo.insert(memo.len() as u64, top);
            }
            b'q' | b'r' => {
                let w = if op == b'q' { 1 } else { 4 };
                let k = uint(take(&mut i, w)?);
                let top = stack.last().ok_or("PUT on an empty stack")?.clone();
                memo.insert(k, top);
            }
            b'h' | b'j' => {
                let w = if op == b'h' { 1 } else { 4 };
                let k = uint(take(&mut i, w)?);
                stack.push(memo.get(&k).cloned().ok_or("GET of a missing memo entry")?);
            }
            b'(' => stack.push(Py::Mark),
            b't' => {
                let items = to_mark(&mut stack)?;
                stack.push(Py::Tuple(items));
            }
            b')' => stack.push(Py::Tuple(vec![])),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Py::Tuple(items));
            }
            b']' => stack.push(Py::List(vec![])),
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Py::List(l)) => l.push(v),
                    _ => return Err("APPEND to a non-list".into()),
                }
            }
            b'e' => {
                let items = to_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Py::List(l)) => l.extend(items),
                    _ => return Err("APPENDS to a non-list".into()),
                }
            }
            b'}' => stack.push(Py::Dict(vec![])),
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Py::Dict(d)) => d.push((k, v)),
                    _ => return Err("SETITEM on a non-dict".into()),
                }
            }
            b'u' => {
                let items = to_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Py::Dict(d)) => {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                    _ => return Err("SETITEMS on a non-dict".into()),
                }
            }
            b'K' => stack.push(Py::Int(take(&mut i, 1)?[0] as i64)),
            b'M' => stack.push(Py::Int(uint(take(&mut i, 2)?) as i64)),
            b'J' => {
                let b = take(&mut i, 4)?;
                stack.push(Py::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64));
            }
            0x8a => {
                let n = take(&mut i, 1)?[0] as usize;
                let b = take(&mut i, n)?;
                if n > 8 {
                    return Err("LONG1 wider than 64 bits".into());
                }
                let mut v = uint(b) as i64;
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Py::Int(v));
            }
            b'G' => {
                take(&mut i, 8)?;
                stack.push(Py::Float);
            }
            b'N' => stack.push(Py::None),
            0x88 => stack.push(Py::Bool(true)),
            0x89 => stack.push(Py::Bool(false)),
            b'R' | 0x81 => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(py_reduce(callable, args)?);
            }
            b'b' => {
                let state = pop(&mut stack)?;
                let obj = pop(&mut stack)?;
                stack.push(py_build(obj, state)?);
            }
            b'.' => return pop(&mut stack),
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
    }
}

/// A numeric numpy array pickled with `pickle.dump` (ART's `ViT-L-14/prompts.p`), as an f32
/// tensor on the CPU: float16 / float32 / float64, either byte order, C or Fortran order.
pub fn read_numpy_pickle(path: &Path) -> Result<Tensor, ModelError> {
    let data = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(path, "file"),
        _ => invalid(path, e.to_string()),
    })?;
    let obj = unpickle(&data).map_err(|e| invalid(path, format!("not a readable pickle: {e}")))?;
    let Py::Array {
        shape,
        dtype,
        fortran,
        data,
        filled: true,
    } = obj
    else {
        return Err(invalid(
            path,
            format!(
                "the pickle holds {}, not a numpy array",
                match obj {
                    Py::Other(w) => w,
                    other => format!("{other:?}").chars().take(60).collect(),
                }
            ),
        ));
    };
    let Py::Dtype { descr, order } = *dtype else {
        return Err(invalid(path, "the array has no dtype"));
    };
    let (dt, size) = match descr.trim_start_matches(['<', '>', '=', '|']) {
        "f2" | "float16" => (DType::F16, 2),
        "f4" | "float32" => (DType::F32, 4),
        "f8" | "float64" => (DType::F64, 8),
        other => {
            return Err(invalid(
                path,
                format!("the array's dtype `{other}` is not a float type"),
            ));
        }
    };
    let n: usize = shape.iter().product();
    if data.len() != n * size {
        return Err(invalid(
            path,
            format!(
                "the array {shape:?} of {descr} needs {} bytes, the pickle has {}",
                n * size,
                data.len()
            ),
        ));
    }
    let big = order.as_deref() == Some(">") || descr.starts_with('>');
    let mut raw = data;
    if big {
        for c in raw.chunks_exact_mut(size) {
            c.reverse();
        }
    }
    let t = if fortran && shape.len() > 1 {
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        let dims: Vec<usize> = (0..shape.len()).rev().collect();
        Tensor::from_raw_buffer(&raw, dt, &rev, &Device::Cpu)?
            .permute(dims)?
            .contiguous()?
    } else {
        Tensor::from_raw_buffer(&raw, dt, &shape, &Device::Cpu)?
    };
    Ok(t.to_dtype(DType::F32)?)
}

/// A 2-D embedding table from a torch file (a zip: `PK`) or a numpy pickle, as f32 on the CPU.
pub fn read_embeddings(path: &Path) -> Result<Tensor, ModelError> {
    let mut head = [0u8; 2];
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(path, "file"),
        _ => invalid(path, e.to_string()),
    })?;
    f.read_exact(&mut head)
        .map_err(|_| invalid(path, "empty or truncated file"))?;
    let t = if &head == b"PK" {
        read_torch_tensor(path)?.to_dtype(DType::F32)?
    } else if head[0] == 0x80 {
        read_numpy_pickle(path)?
    } else {
        return Err(invalid(
            path,
            "neither a torch.save file nor a pickle (protocol 2 or later)",
        ));
    };
    if t.rank() != 2 {
        return Err(invalid(
            path,
            format!(
                "the embeddings are {:?}, a [rows, width] table was expected",
                t.dims()
            ),
        ));
    }
    Ok(t)
}
