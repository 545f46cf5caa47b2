//! `art-nn`: the toolkit every in-process model of `art` shares, on candle.
//!
//! * [`ModelError`] and its constructors ([`invalid`], [`missing`]): one error type for every
//!   model crate, each message naming the file (or setting) and what was expected;
//! * [`device`]: the device and dtype a role's settings ask for ([`LoadOptions`]);
//! * [`tensors`]: checkpoints read tensor by tensor (safetensors, sharded indexes, PyTorch
//!   `.bin`), as a `VarBuilder` backend with errors that name the tensor;
//! * [`clip`]: CLIP's encoder layer (shared by the SD text encoders, LLaVA's tower and the
//!   CLIP judges) and the vision tower;
//! * [`vision`]: image preprocessing bit for bit as the Python processors do it (Pillow's
//!   resize, transformers' `CLIPImageProcessor`, torchvision's CLIP transform).
//!
//! Finding and downloading files is `art-hub`'s; a [`art_hub::HubError`] converts into the
//! [`ModelError`] variant of the same name.

pub mod clip;
pub mod device;
pub mod tensors;
pub mod vision;

pub use device::{LoadOptions, device_of, dtype_of};

use std::path::PathBuf;

/// A model that could not be found, read or run; messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {what} not found")]
    Missing { path: PathBuf, what: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    /// A hub id that is neither cached nor downloadable: why, in words.
    #[error("{repo}: {detail}")]
    Hub { repo: String, detail: String },
    #[error("model computation failed: {0}")]
    Compute(String),
}

/// `path` (a file, or a setting such as `[image_judge] heads`) does not hold what was expected.
pub fn invalid(path: impl Into<PathBuf>, detail: impl ToString) -> ModelError {
    ModelError::Invalid {
        path: path.into(),
        detail: detail.to_string(),
    }
}

/// `what` (a file, a tensor, a key) is not in `path`.
pub fn missing(path: impl Into<PathBuf>, what: impl ToString) -> ModelError {
    ModelError::Missing {
        path: path.into(),
        what: what.to_string(),
    }
}

/// Every number a model hands to a decision (a judge's logits, probabilities, embeddings or
/// detections; a generator's logits) must be finite: every comparison with NaN is false, so a
/// NaN left in would quietly become a label ("safe"), an argmax or a sampled token. A
/// non-finite value is a [`ModelError::Compute`] naming `what` and where, which the roles
/// record as that item's error. `-inf` is refused too: raw model outputs never hold it (the
/// logit processors that mask tokens with it run after this check).
pub fn finite(what: &str, values: &[f32]) -> Result<(), ModelError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(ModelError::Compute(format!(
            "{what} holds a non-finite value ({} at index {i} of {}): the model's numbers are \
             broken (NaN or overflow, e.g. in half precision), so no verdict or token is taken \
             from them",
            values[i],
            values.len()
        ))),
    }
}

impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        ModelError::Compute(e.to_string())
    }
}

impl From<art_hub::HubError> for ModelError {
    fn from(e: art_hub::HubError) -> Self {
        match e {
            art_hub::HubError::Missing { path, what } => ModelError::Missing { path, what },
            art_hub::HubError::Invalid { path, detail } => ModelError::Invalid { path, detail },
            art_hub::HubError::Hub { repo, detail } => ModelError::Hub { repo, detail },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_finite_outputs_are_errors_naming_where() {
        assert!(super::finite("x", &[0.0, -3.5, 1e30]).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = super::finite("the logits", &[0.0, bad, 1.0])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("the logits") && e.contains("index 1 of 3"),
                "{e}"
            );
        }
    }
}
