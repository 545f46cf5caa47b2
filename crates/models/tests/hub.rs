//! Fetching a model by hub id from a local server that speaks the Hugging Face hub's API
//! (`HF_ENDPOINT`): the files land in the standard hub-cache layout, only the model files are
//! fetched, a second load needs no network, a gated model without a token is a clear error
//! that never shows the token, and `HF_HUB_OFFLINE` forbids the network; a diffusers pipeline
//! (`org/tiny-sd`) downloads its component folders and nothing else, and a sentence embedder
//! (`org/tiny-minilm`) its pooling folder but not its exports. One test, because it sets
//! process-wide environment variables.

use art_config::local::LlamaWriter as LlamaWriterConfig;
use art_llm::writer::LlamaWriter;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/fixtures/llama")
}

fn sd_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../diffusion/tests/fixtures/sd/sd1")
}

fn minilm_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm/tiny")
}

/// The files of the tiny sentence embedder, relative to its folder.
fn minilm_files() -> Vec<String> {
    files_of(&minilm_fixture())
}

/// Files a sentence-transformers repository has that art must not fetch.
const MINILM_EXTRAS: [&str; 4] = [
    "pytorch_model.bin",
    "onnx/model.onnx",
    "openvino/openvino_model.xml",
    "train_script.py",
];

/// The files of the tiny SD pipeline, relative to its folder.
fn sd_files() -> Vec<String> {
    files_of(&sd_fixture())
}

/// The files under `root`, relative to it, sorted.
fn files_of(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Files a pipeline repository has that art must not fetch.
const SD_EXTRAS: [&str; 5] = [
    "v1-5-pruned.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.bin",
    "safety_checker/model.safetensors",
    "feature_extractor/preprocessor_config.json",
];

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// The repositories served from a fixture folder: name, folder, the extra files the listing
/// names that art must not fetch.
fn folder_repos() -> [(&'static str, PathBuf, &'static [&'static str]); 2] {
    [
        ("org/tiny-sd", sd_fixture(), &SD_EXTRAS),
        ("org/tiny-minilm", minilm_fixture(), &MINILM_EXTRAS),
    ]
}

type Answer = (&'static str, Vec<u8>, Option<String>);

/// The hub's answer to `path` for a folder repository: its listing, or one of its files.
fn folder_repo(path: &str) -> Option<Answer> {
    for (repo, dir, extras) in folder_repos() {
        let files = files_of(&dir);
        if path == format!("/api/models/{repo}/revision/main") {
            let mut siblings = files.clone();
            siblings.extend(extras.iter().map(|s| s.to_string()));
            let v = serde_json::json!({
                "sha": SHA,
                "siblings": siblings.iter().map(|s| serde_json::json!({"rfilename": s})).collect::<Vec<_>>(),
            });
            return Some(("200 OK", v.to_string().into_bytes(), None));
        }
        if let Some(f) = path.strip_prefix(&format!("/{repo}/resolve/{SHA}/")) {
            return Some(match std::fs::read(dir.join(f)) {
                Ok(b) if files.iter().any(|x| x == f) => (
                    "200 OK",
                    b,
                    Some(format!("{repo}/{f}").replace(['/', '.'], "-")),
                ),
                _ => ("404 Not Found", b"no".to_vec(), None),
            });
        }
    }
    None
}

/// Serves org/tiny (the tiny Llama fixture), the folder repositories and org/gated (401); records request paths and
/// whether an Authorization header came.
fn serve() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut auth = false;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                auth |= h.to_ascii_lowercase().starts_with("authorization:");
            }
            seen.lock().unwrap().push(format!("{path} auth={auth}"));
            let files = [
                "config.json",
                "generation_config.json",
                "model.safetensors",
                "tokenizer.json",
            ];
            let (status, body, etag): (&str, Vec<u8>, Option<String>) = if path
                == "/api/models/org/corrupt/revision/main"
            {
                let v = serde_json::json!({
                    "sha": SHA,
                    "siblings": files.iter().map(|s| serde_json::json!({"rfilename": s})).collect::<Vec<_>>(),
                });
                ("200 OK", v.to_string().into_bytes(), None)
            } else if let Some(f) = path.strip_prefix(&format!("/org/corrupt/resolve/{SHA}/")) {
                // The weights arrive whole, but they are not the file the LFS etag names.
                match std::fs::read(fixtures().join("llama").join(f)) {
                    Ok(b) if f == "model.safetensors" => {
                        ("200 OK", b, Some(art_hub::sha256_hex(b"other weights")))
                    }
                    Ok(b) if files.contains(&f) => ("200 OK", b, None),
                    _ => ("404 Not Found", b"no".to_vec(), None),
                }
            } else if path == "/api/models/org/tiny/revision/main" {
                let mut siblings: Vec<String> = files.iter().map(|f| f.to_string()).collect();
                siblings.extend([
                    "README.md".into(),
                    "pytorch_model.bin".into(),
                    "onnx/model.onnx".into(),
                ]);
                let v = serde_json::json!({
                    "sha": SHA,
                    "siblings": siblings.iter().map(|s| serde_json::json!({"rfilename": s})).collect::<Vec<_>>(),
                });
                ("200 OK", v.to_string().into_bytes(), None)
            } else if let Some(f) = path.strip_prefix(&format!("/org/tiny/resolve/{SHA}/")) {
                match std::fs::read(fixtures().join("llama").join(f)) {
                    // The hub's etag of an LFS file is the SHA-256 of its content.
                    Ok(b) if f == "model.safetensors" => {
                        let etag = art_hub::sha256_hex(&b);
                        ("200 OK", b, Some(etag))
                    }
                    Ok(b) if files.contains(&f) => {
                        ("200 OK", b, Some(format!("etag-{}", f.replace('.', "-"))))
                    }
                    _ => ("404 Not Found", b"no".to_vec(), None),
                }
            } else if let Some(answer) = folder_repo(&path) {
                answer
            } else if path.starts_with("/api/models/org/gated/") {
                ("401 Unauthorized", b"gated".to_vec(), None)
            } else {
                ("404 Not Found", b"no".to_vec(), None)
            };
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(e) = etag {
                head.push_str(&format!("ETag: \"{e}\"\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (addr, log)
}

fn writer(model: &str) -> Result<LlamaWriter, String> {
    let c: LlamaWriterConfig =
        toml::from_str(&format!("model = {model:?}\nmax_new_tokens = 4")).unwrap();
    LlamaWriter::new(&c).map_err(|e| e.to_string())
}

const PHASE: &str = "ART_HUB_TEST_PHASE";

/// Runs this test again in a child process in `phase`, with `env` set and `remove` unset.
fn child(phase: &str, env: &[(&str, &str)], remove: &[&str]) -> String {
    let mut set = env.to_vec();
    set.push((PHASE, phase));
    art_testkit::rerun_test_with_env("hub_ids_download_into_the_hub_cache", &set, remove)
}

/// What a child does in each phase; it prints `RESULT: ...` for the parent to check.
fn run_phase(phase: &str) {
    match phase {
        "download" | "cached" => {
            let w = writer("org/tiny").expect("loaded");
            let id = art_core::Writer::identity(&w);
            eprintln!("RESULT: revision={}", id.revision.unwrap_or_default());
        }
        "embedder" => {
            let e =
                art_models::SentenceEmbedder::resolve_and_load("org/tiny-minilm").expect("loaded");
            let v = e.embed(&["a pic of cat"]).expect("embedded");
            eprintln!(
                "RESULT: name={} dim={} len={}",
                e.name(),
                e.dim(),
                v[0].len()
            );
        }
        "sd" => {
            let c: art_config::local::StableDiffusionTarget =
                toml::from_str("model = \"org/tiny-sd\"\nsteps = 2").unwrap();
            let t = art_diffusion::target::StableDiffusionTarget::new(&c).expect("loaded");
            let id = art_core::Target::identity(&t);
            eprintln!("RESULT: revision={}", id.revision.unwrap_or_default());
        }
        _ => {
            let e = writer(phase.strip_prefix("error:").unwrap()).unwrap_err();
            eprintln!("RESULT: {e}");
        }
    }
}

#[test]
fn hub_ids_download_into_the_hub_cache() {
    if let Ok(phase) = std::env::var(PHASE) {
        run_phase(&phase);
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let (addr, log) = serve();
    let base = [
        ("HF_HUB_CACHE", cache.path().to_str().unwrap()),
        ("HF_ENDPOINT", addr.as_str()),
    ];
    let no_token = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"];

    let out = child("download", &base, &no_token);
    assert!(out.contains(&format!("RESULT: revision={SHA}")), "{out}");
    let repo = cache.path().join("models--org--tiny");
    let snap = repo.join("snapshots").join(SHA);
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        let p = snap.join(f);
        assert!(
            p.symlink_metadata().unwrap().file_type().is_symlink(),
            "{f} links into blobs"
        );
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(fixtures().join("llama").join(f)).unwrap()
        );
    }
    let weights = std::fs::read(fixtures().join("llama/model.safetensors")).unwrap();
    assert!(
        repo.join("blobs")
            .join(art_hub::sha256_hex(&weights))
            .is_file(),
        "an LFS blob is named by its SHA-256"
    );
    assert!(repo.join("blobs/etag-config-json").is_file());
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        SHA
    );
    for skipped in ["README.md", "pytorch_model.bin", "onnx"] {
        assert!(
            !snap.join(skipped).exists(),
            "{skipped} is not a model file"
        );
    }
    assert!(std::fs::read_dir(repo.join("blobs")).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".incomplete")
    }));

    // Cached now: a second load asks the server nothing.
    let before = log.lock().unwrap().len();
    let out = child("cached", &base, &no_token);
    assert!(out.contains(&format!("RESULT: revision={SHA}")), "{out}");
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "no request for a cached model"
    );

    // A diffusers pipeline: its component folders land in the snapshot (links reaching the
    // blobs from one folder deeper), the extras stay on the hub; then it loads offline.
    let out = child("sd", &base, &no_token);
    assert!(out.contains(&format!("RESULT: revision={SHA}")), "{out}");
    let snap = cache
        .path()
        .join("models--org--tiny-sd/snapshots")
        .join(SHA);
    for f in sd_files() {
        assert_eq!(
            std::fs::read(snap.join(&f)).unwrap(),
            std::fs::read(sd_fixture().join(&f)).unwrap(),
            "{f}"
        );
    }
    assert!(
        snap.join("unet/diffusion_pytorch_model.safetensors")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    for skipped in SD_EXTRAS {
        assert!(!snap.join(skipped).exists(), "{skipped} is not fetched");
    }
    let before = log.lock().unwrap().len();
    let mut offline = base.to_vec();
    offline.push(("HF_HUB_OFFLINE", "1"));
    let out = child("sd", &offline, &["HF_TOKEN"]);
    assert!(out.contains(&format!("RESULT: revision={SHA}")), "{out}");
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "no request for a cached pipeline"
    );

    // A sentence-transformers embedder (the report's diversity metric): its pooling folder
    // comes along, the exports stay on the hub; then it loads offline.
    let out = child("embedder", &base, &no_token);
    assert!(out.contains("RESULT: name=org/tiny-minilm"), "{out}");
    let snap = cache
        .path()
        .join("models--org--tiny-minilm/snapshots")
        .join(SHA);
    for f in minilm_files() {
        assert_eq!(
            std::fs::read(snap.join(&f)).unwrap(),
            std::fs::read(minilm_fixture().join(&f)).unwrap(),
            "{f}"
        );
    }
    for skipped in MINILM_EXTRAS {
        assert!(!snap.join(skipped).exists(), "{skipped} is not fetched");
    }
    let before = log.lock().unwrap().len();
    let out = child("embedder", &offline, &["HF_TOKEN"]);
    assert!(out.contains("RESULT: name=org/tiny-minilm"), "{out}");
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "no request for a cached embedder"
    );

    // A gated model: the token is sent, the refusal names HF_TOKEN, the token never shows.
    let secret = "hf_secret_value_123";
    let mut with_token = base.to_vec();
    with_token.push(("HF_TOKEN", secret));
    let out = child("error:org/gated", &with_token, &["HF_HUB_OFFLINE"]);
    assert!(
        out.contains("HF_TOKEN") && out.contains("org/gated"),
        "{out}"
    );
    assert!(!out.contains(secret), "{out}");
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("gated") && l.ends_with("auth=true"))
    );

    // Offline: no request, a clear error.
    let before = log.lock().unwrap().len();
    let mut offline = base.to_vec();
    offline.push(("HF_HUB_OFFLINE", "1"));
    let out = child("error:org/other", &offline, &["HF_TOKEN"]);
    assert!(
        out.contains("HF_HUB_OFFLINE") && out.contains("org/other"),
        "{out}"
    );
    assert_eq!(log.lock().unwrap().len(), before);
    // A download whose content does not hash to its LFS etag is refused, and nothing of it
    // stays in the cache.
    let out = child("error:org/corrupt", &base, &no_token);
    assert!(
        out.contains("SHA-256") && out.contains("model.safetensors") && out.contains("org/corrupt"),
        "{out}"
    );
    let blobs = cache.path().join("models--org--corrupt/blobs");
    assert!(
        std::fs::read_dir(&blobs).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("safetensors")),
        "no weights kept"
    );
    assert!(
        !cache
            .path()
            .join("models--org--corrupt/snapshots")
            .join(SHA)
            .join("model.safetensors")
            .exists()
    );
    // A missing local path is never taken for a hub id.
    let out = child("error:/no/such/model", &base, &no_token);
    assert!(out.contains("/no/such/model"), "{out}");
}
