//! What produced a result: stored with every campaign so a number can be traced to a model.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The identity of one role implementation: enough to say exactly which model, weights and
/// settings produced a result. Parameters are kept as sorted key/value text so identities
/// compare and serialize stably. Secrets never go here (an API key is named by its variable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// The implementation kind, as written in config (`kind = "..."`).
    pub kind: String,
    /// Model id or path (e.g. `runwayml/stable-diffusion-v1-5`).
    pub model: String,
    /// Resolved revision (commit hash) where known.
    pub revision: Option<String>,
    /// Adapter (LoRA) id or path where one is applied.
    pub adapter: Option<String>,
    /// Settings that change outputs (dtype, steps, sampling...).
    pub params: BTreeMap<String, String>,
}

impl ModelIdentity {
    pub fn new(kind: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            model: model.into(),
            revision: None,
            adapter: None,
            params: BTreeMap::new(),
        }
    }

    pub fn with_param(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.params.insert(key.into(), value.to_string());
        self
    }
}
