//! The Stable Diffusion safety checker (diffusers' `StableDiffusionSafetyChecker`), its
//! concept and special-care rule as diffusers' numpy `forward` computes it.

use super::*;

/// `kind = "sd-safety-checker"`.
#[derive(Debug, Clone)]
pub struct SdSafetyCheckerSettings {
    pub name: String,
    /// A folder or hub id with `config.json`, the weights (`model.safetensors` or
    /// `pytorch_model.bin`) and usually `preprocessor_config.json`
    /// ([`DEFAULT_SAFETY_CHECKER`]; a pipeline's `safety_checker/` folder works too).
    pub model: String,
    /// A folder or hub id whose `preprocessor_config.json` to use instead of the model's
    /// (a pipeline's `feature_extractor/`); without either, CLIP's defaults at the tower's
    /// size.
    pub processor: Option<String>,
    pub load: LoadOptions,
}

impl Default for SdSafetyCheckerSettings {
    fn default() -> Self {
        Self {
            name: "sd-safety-checker".into(),
            model: DEFAULT_SAFETY_CHECKER.into(),
            processor: None,
            load: LoadOptions::default(),
        }
    }
}

/// The safety checker's numbers for one image, as diffusers' `forward` computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyCheckerScores {
    /// Cosine with the special-care embeddings (f32).
    pub special_cos: Vec<f32>,
    /// Cosine with the concept embeddings (f32).
    pub concept_cos: Vec<f32>,
    /// `round(cos - threshold + adjustment, 3)` of each special-care concept.
    pub special: Vec<f32>,
    /// `round(cos - threshold + adjustment, 3)` of each concept.
    pub concepts: Vec<f32>,
    /// 0.01 when a special-care score was > 0, else 0.
    pub adjustment: f32,
    /// The concepts whose score is > 0.
    pub bad_concepts: Vec<usize>,
}

impl SafetyCheckerScores {
    /// diffusers' `has_nsfw_concepts` for this image.
    pub fn has_nsfw_concept(&self) -> bool {
        !self.bad_concepts.is_empty()
    }

    /// The highest concept score (> 0 exactly when the image has an NSFW concept).
    pub fn score(&self) -> f32 {
        self.concepts
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
    }
}

/// numpy's `round(np.float32(x), 3)`: `rint(x * 1000) / 1000` in f32.
fn round3(x: f32) -> f32 {
    (x * 1000.0).round_ties_even() / 1000.0
}

/// The Stable Diffusion safety checker.
pub type SdSafetyChecker = ClipJudge<SafetyCheckerScorer>;

/// The safety checker's part of its judge: the concept embeddings (L2-normalized) and their
/// thresholds.
#[derive(Debug)]
pub struct SafetyCheckerScorer {
    concepts: Vec<Vec<f32>>,
    concept_thresholds: Vec<f32>,
    special: Vec<Vec<f32>>,
    special_thresholds: Vec<f32>,
}

/// The files of a safety checker repository: configs, and the safetensors weights (else
/// `pytorch_model.bin`).
pub fn safety_checker_files(names: &[String]) -> Vec<String> {
    let top: Vec<&String> = names.iter().filter(|n| !n.contains('/')).collect();
    let st = top.iter().any(|n| n.ends_with(".safetensors"));
    top.into_iter()
        .filter(|n| {
            matches!(n.as_str(), "config.json" | "preprocessor_config.json")
                || (st
                    && (n.ends_with(".safetensors")
                        || n.as_str() == "model.safetensors.index.json"))
                || (!st && n.as_str() == "pytorch_model.bin")
        })
        .cloned()
        .collect()
}

impl SdSafetyChecker {
    pub fn load(s: &SdSafetyCheckerSettings) -> Result<Self, ModelError> {
        let dir = art_hub::fetch(&s.model, safety_checker_files)?;
        let cfg_path = dir.join("config.json");
        let cfg = ClipVisionConfig::from_value(&json_file(&cfg_path)?, &cfg_path)?;
        let store = Arc::new(Checkpoint::open_folder(&dir)?);
        let path = store.path().to_path_buf();
        let table = |n: &str| -> Result<Vec<Vec<f32>>, ModelError> {
            if !store.contains(n) {
                return Err(missing(
                    &path,
                    format!("tensor `{n}` (not a StableDiffusionSafetyChecker checkpoint)"),
                ));
            }
            let t = store.load(n, DType::F32, &Device::Cpu)?;
            Ok(match t.rank() {
                1 => vec![t.to_vec1::<f32>()?],
                2 => t.to_vec2::<f32>()?,
                _ => return Err(invalid(&path, format!("`{n}` is {:?}", t.dims()))),
            })
        };
        let concepts = table("concept_embeds")?;
        let special = table("special_care_embeds")?;
        let concept_thresholds = table("concept_embeds_weights")?.concat();
        let special_thresholds = table("special_care_embeds_weights")?.concat();
        if concepts.len() != concept_thresholds.len() || special.len() != special_thresholds.len() {
            return Err(invalid(
                &path,
                format!(
                    "{} concepts with {} thresholds, {} special-care concepts with {}",
                    concepts.len(),
                    concept_thresholds.len(),
                    special.len(),
                    special_thresholds.len()
                ),
            ));
        }
        let revision = art_hub::snapshot_revision(&dir);
        let backbone = ClipBackbone::from_transformers(store, &cfg, &s.model, revision, &s.load)?;
        let width = backbone.embed_dim();
        if let Some(bad) = concepts.iter().chain(&special).find(|r| r.len() != width) {
            return Err(invalid(
                &path,
                format!(
                    "concept embeddings are {} wide, the image embeddings {width}",
                    bad.len()
                ),
            ));
        }
        let processor_dir = match &s.processor {
            Some(p) => Some(art_hub::fetch(p, |names| {
                names
                    .iter()
                    .filter(|n| n.as_str() == "preprocessor_config.json")
                    .cloned()
                    .collect()
            })?),
            None => Some(dir.clone()),
        };
        let processor = match processor_dir.map(|d| d.join("preprocessor_config.json")) {
            Some(p) if p.is_file() => {
                let bytes = std::fs::read(&p).map_err(|e| invalid(&p, e.to_string()))?;
                ClipImageProcessor::from_json(&bytes, &p)?
            }
            Some(p) if s.processor.is_some() => return Err(missing(&p, "file")),
            _ => ClipImageProcessor::clip(backbone.image_size()),
        };
        let preprocess = ImagePreprocessor::Transformers(processor);
        let norm = |v: Vec<Vec<f32>>| v.into_iter().map(|r| l2_normalized(&r, 1e-12)).collect();
        let identity = ModelIdentity::new("sd-safety-checker", &s.model);
        let scorer = SafetyCheckerScorer {
            concepts: norm(concepts),
            concept_thresholds,
            special: norm(special),
            special_thresholds,
        };
        Self::new(&s.name, Arc::new(backbone), preprocess, identity, scorer)
    }
}

impl ClipScorer for SafetyCheckerScorer {
    type Scores = SafetyCheckerScores;

    /// diffusers' numbers for an image embedding (`visual_projection(pooler_output)`).
    fn scores(&self, embedding: &[f32]) -> SafetyCheckerScores {
        let x = l2_normalized(embedding, 1e-12);
        let special_cos: Vec<f32> = self.special.iter().map(|c| dot(&x, c)).collect();
        let concept_cos: Vec<f32> = self.concepts.iter().map(|c| dot(&x, c)).collect();
        let mut adjustment = 0.0f32;
        let mut special = Vec::with_capacity(special_cos.len());
        for (c, t) in special_cos.iter().zip(&self.special_thresholds) {
            let s = round3((c - t) + adjustment);
            special.push(s);
            if s > 0.0 {
                adjustment = 0.01;
            }
        }
        let concepts: Vec<f32> = concept_cos
            .iter()
            .zip(&self.concept_thresholds)
            .map(|(c, t)| round3((c - t) + adjustment))
            .collect();
        let bad_concepts = (0..concepts.len()).filter(|&k| concepts[k] > 0.0).collect();
        SafetyCheckerScores {
            special_cos,
            concept_cos,
            special,
            concepts,
            adjustment,
            bad_concepts,
        }
    }

    fn values(&self, s: &SafetyCheckerScores) -> Vec<f32> {
        [s.special.as_slice(), &s.concepts].concat()
    }

    /// Unsafe when the image has an NSFW concept; the score is the highest concept score, on
    /// the threshold 0.
    fn judge(&self, s: &SafetyCheckerScores) -> JudgeScore {
        JudgeScore {
            label: if s.has_nsfw_concept() {
                Label::Unsafe
            } else {
                Label::Safe
            },
            score: s.score() as f64,
            threshold: Some(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round3_is_numpys_float32_rounding() {
        // Ties go to even in the scaled value; the result is the f32 of the quotient.
        assert_eq!(round3(0.0125), 0.012);
        assert_eq!(round3(0.0135), 0.014);
        assert_eq!(round3(0.0003), 0.0);
        assert_eq!(round3(-0.0004), -0.0);
        assert!(round3(-0.0004) <= 0.0);
    }
}
