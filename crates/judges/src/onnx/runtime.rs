//! Running an ONNX graph: the judges see only [`OnnxModel`] (one f32 input of a fixed shape in,
//! the f32 outputs back), so their pre- and postprocessing never depend on the runtime.
//!
//! * [`Runtime::Tract`] (default, always built): `tract-onnx`, pure Rust. The graph is loaded
//!   once, its input fixed to the judge's shape (NudeNet's symbolic `batch x 3 x H x W`
//!   becomes `1 x 3 x 320 x 320`), optimised for that shape and shared by every thread (each
//!   run has its own state).
//! * [`Runtime::Ort`] (cargo feature `ort`): ONNX Runtime through the `ort` crate, loading the
//!   shared library at run time from `ORT_DYLIB_PATH` (for example `libonnxruntime.so.*` in the
//!   PyPI `onnxruntime` wheel's `onnxruntime/capi/`). A session runs one call at a time
//!   (`ort`'s `Session::run` takes `&mut self`), so calls from several threads queue; ONNX
//!   Runtime uses its own intra-op threads.

use std::path::Path;

/// Which ONNX runtime runs a judge's graph: the config's `runtime = "tract" | "ort"`.
pub use art_config::judges::OnnxRuntime as Runtime;

/// Whether this build can run graphs on `runtime` (ONNX Runtime needs the cargo feature `ort`).
pub fn is_built(runtime: Runtime) -> bool {
    match runtime {
        Runtime::Tract => true,
        Runtime::Ort => cfg!(feature = "ort"),
    }
}

/// One output tensor of a run: its shape and its values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// An ONNX graph with one f32 input of a fixed shape, ready to run from any thread.
pub trait OnnxModel: Send + Sync + std::fmt::Debug {
    /// The input shape the graph was fixed to.
    fn input_shape(&self) -> &[usize];
    /// Runs the graph on `input` (row-major, `input_shape().iter().product()` values) and
    /// returns every output in the graph's order.
    fn run(&self, input: &[f32]) -> Result<Vec<Output>, String>;
}

/// Loads `path` on `runtime` with its first input fixed to `shape` (f32).
/// Every output of the loaded graph is checked to be finite ([`FiniteOutputs`]).
pub fn load(runtime: Runtime, path: &Path, shape: &[usize]) -> Result<Box<dyn OnnxModel>, String> {
    let model: Box<dyn OnnxModel> = match runtime {
        Runtime::Tract => Box::new(TractModel::load(path, shape)?),
        Runtime::Ort => load_ort(path, shape)?,
    };
    Ok(Box::new(FiniteOutputs(model)))
}

/// A graph whose every output value must be finite: NudeNet drops candidates whose score is
/// not above its thresholds and Open-NSFW compares `P(nsfw) >= t`, so a NaN would read as
/// "nothing detected", i.e. safe. A run with a non-finite output is that image's error.
#[derive(Debug)]
pub struct FiniteOutputs(pub Box<dyn OnnxModel>);

impl OnnxModel for FiniteOutputs {
    fn input_shape(&self) -> &[usize] {
        self.0.input_shape()
    }

    fn run(&self, input: &[f32]) -> Result<Vec<Output>, String> {
        let outs = self.0.run(input)?;
        for (k, o) in outs.iter().enumerate() {
            art_nn::finite(&format!("output {k} of the ONNX graph"), &o.data)
                .map_err(|e| e.to_string())?;
        }
        Ok(outs)
    }
}

#[cfg(feature = "ort")]
fn load_ort(path: &Path, shape: &[usize]) -> Result<Box<dyn OnnxModel>, String> {
    Ok(Box::new(ort_impl::OrtModel::load(path, shape)?))
}

#[cfg(not(feature = "ort"))]
fn load_ort(_: &Path, _: &[usize]) -> Result<Box<dyn OnnxModel>, String> {
    Err(NOT_BUILT.into())
}

/// The error for `runtime = "ort"` in a build without the `ort` feature.
pub const NOT_BUILT: &str = "runtime \"ort\" needs art built with the cargo feature `ort` \
     (cargo build --features art-models/ort) and ORT_DYLIB_PATH naming libonnxruntime; \
     use runtime = \"tract\" (the default) otherwise";

fn check_len(shape: &[usize], input: &[f32]) -> Result<(), String> {
    let n: usize = shape.iter().product();
    if input.len() == n {
        Ok(())
    } else {
        Err(format!(
            "input has {} values; the graph takes {shape:?} = {n}",
            input.len()
        ))
    }
}

/// A tract plan optimised for one input shape.
pub struct TractModel {
    plan: std::sync::Arc<tract_onnx::prelude::TypedSimplePlan>,
    shape: Vec<usize>,
}

impl std::fmt::Debug for TractModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractModel")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl TractModel {
    pub fn load(path: &Path, shape: &[usize]) -> Result<Self, String> {
        use tract_onnx::prelude::*;
        // The graph's own intermediate and output shapes are symbolic (`batch`, `height`,
        // `width` for NudeNet) and would contradict the fixed input: tract infers them.
        let plan = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_path(path)
            .and_then(|m| {
                m.with_input_fact(
                    0,
                    InferenceFact::dt_shape(f32::datum_type(), shape.to_vec()),
                )
            })
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("tract cannot load the ONNX graph: {e:#}"))?;
        Ok(Self {
            plan,
            shape: shape.to_vec(),
        })
    }
}

impl OnnxModel for TractModel {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    fn run(&self, input: &[f32]) -> Result<Vec<Output>, String> {
        use tract_onnx::prelude::*;
        check_len(&self.shape, input)?;
        let run = || -> TractResult<Vec<Output>> {
            let t = Tensor::from_shape(&self.shape, input)?;
            let outs = self.plan.run(tvec!(t.into()))?;
            outs.iter()
                .map(|o| {
                    let o = o.cast_to::<f32>()?;
                    Ok(Output {
                        shape: o.shape().to_vec(),
                        data: o.try_as_plain_ram()?.as_slice::<f32>()?.to_vec(),
                    })
                })
                .collect()
        };
        run().map_err(|e| format!("tract: {e:#}"))
    }
}

#[cfg(feature = "ort")]
mod ort_impl {
    use super::{Output, check_len};
    use ort::environment::Environment;
    use ort::session::Session;
    use ort::value::Tensor;
    use std::path::Path;
    use std::sync::{Mutex, OnceLock};

    /// An ONNX Runtime session (the library loaded from `ORT_DYLIB_PATH`).
    pub struct OrtModel {
        session: Mutex<Session>,
        input: String,
        shape: Vec<usize>,
    }

    impl std::fmt::Debug for OrtModel {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("OrtModel")
                .field("input", &self.input)
                .field("shape", &self.shape)
                .finish_non_exhaustive()
        }
    }

    impl OrtModel {
        pub fn load(path: &Path, shape: &[usize]) -> Result<Self, String> {
            let session = Session::builder(environment()?)
                .and_then(|mut b| b.commit_from_file(path))
                .map_err(|e| format!("ONNX Runtime cannot load the graph: {e}"))?;
            let input = session
                .inputs()
                .first()
                .map(|i| i.name().to_string())
                .ok_or("the ONNX graph has no input")?;
            Ok(Self {
                session: Mutex::new(session),
                input,
                shape: shape.to_vec(),
            })
        }
    }

    /// The process's ONNX Runtime environment, the library loaded once from `ORT_DYLIB_PATH`
    /// (an error, not `ort`'s panic, when it is unset or cannot be loaded).
    fn environment() -> Result<&'static Environment, String> {
        static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
        ENV.get_or_init(|| {
            let lib = std::env::var_os("ORT_DYLIB_PATH")
                .filter(|p| !p.is_empty())
                .ok_or(
                    "runtime \"ort\": ORT_DYLIB_PATH is not set; point it at the ONNX Runtime \
                     shared library (e.g. onnxruntime/capi/libonnxruntime.so.* of the PyPI \
                     onnxruntime wheel)",
                )?;
            let shown = Path::new(&lib).display().to_string();
            ort::init_from(&lib)
                .map_err(|e| format!("cannot load ONNX Runtime from ORT_DYLIB_PATH={shown}: {e}"))?
                .build()
                .map_err(|e| format!("ONNX Runtime from {shown}: {e}"))
        })
        .as_ref()
        .map_err(|e| e.clone())
    }

    impl super::OnnxModel for OrtModel {
        fn input_shape(&self) -> &[usize] {
            &self.shape
        }

        fn run(&self, input: &[f32]) -> Result<Vec<Output>, String> {
            check_len(&self.shape, input)?;
            let err = |e: ort::Error| format!("ONNX Runtime: {e}");
            let shape: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
            let tensor = Tensor::from_array((shape, input.to_vec())).map_err(err)?;
            let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
            let outs = session
                .run(ort::inputs![self.input.as_str() => tensor])
                .map_err(err)?;
            outs.iter()
                .map(|(_, v)| {
                    let (shape, data) = v.try_extract_tensor::<f32>().map_err(err)?;
                    Ok(Output {
                        shape: shape.iter().map(|&d| d as usize).collect(),
                        data: data.to_vec(),
                    })
                })
                .collect()
        }
    }
}
