//! The device and dtype of a model, from a role's settings (`device = "cpu"`,
//! `dtype = "auto" | "f32" | "f16" | "bf16"`). Every in-process model takes a
//! [`LoadOptions`]; this is the one place that maps settings onto candle's types.

use crate::ModelError;
use art_config::local::Dtype;
use candle_core::{DType, Device};

/// Where a model runs and in which precision.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            device: Device::Cpu,
        }
    }
}

impl LoadOptions {
    /// The options a role section's `dtype` and `device` ask for.
    pub fn from_settings(dtype: Dtype, device: &str) -> Result<Self, ModelError> {
        Ok(Self {
            dtype: dtype_of(dtype),
            device: device_of(device)?,
        })
    }
}

/// The candle dtype of a `dtype` setting (`auto` is f32 on the CPU).
pub fn dtype_of(d: Dtype) -> DType {
    match d {
        Dtype::Auto | Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::Bf16 => DType::BF16,
    }
}

/// The candle device of a `device` setting.
pub fn device_of(name: &str) -> Result<Device, ModelError> {
    match name {
        "cpu" => Ok(Device::Cpu),
        other => Err(ModelError::Compute(format!(
            "device `{other}` is not available: this build of art runs models on `cpu` only"
        ))),
    }
}
