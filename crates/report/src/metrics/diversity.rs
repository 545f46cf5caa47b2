//! Diversity of a set of prompts: `1 - Self-BLEU` and `1 - mean pairwise cosine similarity` of
//! sentence embeddings (the paper's two diversity numbers).
//!
//! The embedder is called once per report, on the distinct prompt texts of the whole campaign;
//! each category (and `all`) then takes the vectors of its own prompts, duplicates included.
//! The mean cosine similarity over all pairs `i < j` is computed from unit vectors as
//! `(|Σu|² - Σ|u|²) / (n(n-1))`, linear in the number of prompts instead of quadratic. A zero
//! vector has no direction: it is kept as a zero vector, so its similarity with every other
//! prompt counts as 0.

use super::bleu::self_bleu;
use crate::model::Diversity;
use std::collections::HashMap;

/// Sentence embeddings for the embedding-diversity metric.
pub trait Embedder {
    /// The model's name, recorded in the report.
    fn name(&self) -> String;
    /// One vector per text, in order, all of the same dimension.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// What the embedding-diversity metric has to work with for one report.
#[derive(Debug)]
pub(crate) enum Embedded {
    /// No embedder was given.
    NotConfigured,
    /// The embedder failed (or answered something unusable): recorded in every category.
    Failed(String),
    Vectors {
        name: String,
        /// Unit vectors of the distinct texts.
        unit: Vec<Vec<f64>>,
        /// For every prompt (in the order given to [`Embedded::new`]), its row in `unit`.
        row: Vec<usize>,
    },
}

impl Embedded {
    /// Embeds `texts` (one per prompt; identical texts are embedded once).
    pub(crate) fn new(embedder: Option<&dyn Embedder>, texts: &[&str]) -> Self {
        let Some(embedder) = embedder else {
            return Embedded::NotConfigured;
        };
        let name = embedder.name();
        let mut distinct: Vec<&str> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let row: Vec<usize> = texts
            .iter()
            .map(|t| {
                *seen.entry(t).or_insert_with(|| {
                    distinct.push(t);
                    distinct.len() - 1
                })
            })
            .collect();
        if distinct.is_empty() {
            return Embedded::Vectors {
                name,
                unit: Vec::new(),
                row,
            };
        }
        match embedder
            .embed(&distinct)
            .and_then(|v| check(v, distinct.len()))
        {
            Ok(vectors) => Embedded::Vectors {
                name,
                unit: vectors.iter().map(|v| unit(v)).collect(),
                row,
            },
            Err(message) => Embedded::Failed(format!("not computed: {name} failed: {message}")),
        }
    }

    /// The diversity of the prompts at `indices` (into the texts given to [`Embedded::new`]).
    pub(crate) fn diversity(&self, texts: &[&str], indices: &[usize]) -> Diversity {
        let own: Vec<&str> = indices.iter().map(|&i| texts[i]).collect();
        let self_bleu = self_bleu(&own).map(|b| 1.0 - b);
        let (embedding, embedder) = match self {
            Embedded::NotConfigured => (None, "not computed: no embedder configured".to_string()),
            Embedded::Failed(message) => (None, message.clone()),
            Embedded::Vectors { name, unit, row } => {
                let vectors: Vec<&[f64]> =
                    indices.iter().map(|&i| unit[row[i]].as_slice()).collect();
                (mean_cosine(&vectors).map(|c| 1.0 - c), name.clone())
            }
        };
        Diversity {
            self_bleu,
            embedding,
            embedder: Some(embedder),
        }
    }
}

/// Checks the embedder's answer: one finite vector per text, all of the same dimension.
fn check(vectors: Vec<Vec<f32>>, expected: usize) -> Result<Vec<Vec<f32>>, String> {
    if vectors.len() != expected {
        return Err(format!(
            "returned {} vectors for {expected} texts",
            vectors.len()
        ));
    }
    let dim = vectors[0].len();
    if dim == 0 {
        return Err("returned empty vectors".into());
    }
    if vectors.iter().any(|v| v.len() != dim) {
        return Err("returned vectors of different dimensions".into());
    }
    if vectors.iter().flatten().any(|x| !x.is_finite()) {
        return Err("returned non-finite values".into());
    }
    Ok(vectors)
}

/// `v / |v|` in f64; a zero vector stays zero.
fn unit(v: &[f32]) -> Vec<f64> {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return vec![0.0; v.len()];
    }
    v.iter().map(|&x| f64::from(x) / norm).collect()
}

/// Mean cosine similarity over all pairs `i < j` of unit vectors; `None` with fewer than two.
pub(crate) fn mean_cosine(unit: &[&[f64]]) -> Option<f64> {
    let n = unit.len();
    if n < 2 {
        return None;
    }
    let dim = unit[0].len();
    let mut sum = vec![0.0f64; dim];
    let mut self_dots = 0.0;
    for v in unit {
        for (s, x) in sum.iter_mut().zip(v.iter()) {
            *s += x;
        }
        self_dots += v.iter().map(|x| x * x).sum::<f64>();
    }
    let total: f64 = sum.iter().map(|x| x * x).sum();
    let pairs = (n * (n - 1)) as f64;
    Some((total - self_dots) / pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_cosine_matches_the_pairwise_definition() {
        let raw: [[f32; 3]; 4] = [
            [1.0, 2.0, 0.5],
            [0.0, -1.0, 3.0],
            [2.0, 2.0, 2.0],
            [0.0, 0.0, 0.0],
        ];
        let units: Vec<Vec<f64>> = raw.iter().map(|v| unit(v)).collect();
        let refs: Vec<&[f64]> = units.iter().map(Vec::as_slice).collect();
        let mut pairwise = 0.0;
        let mut count = 0.0;
        for i in 0..4 {
            for j in i + 1..4 {
                pairwise += units[i]
                    .iter()
                    .zip(&units[j])
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
                count += 1.0;
            }
        }
        let fast = mean_cosine(&refs).unwrap_or(f64::NAN);
        assert!(
            (fast - pairwise / count).abs() < 1e-12,
            "{fast} vs {}",
            pairwise / count
        );
    }
}
