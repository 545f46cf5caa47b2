//! `art judge`: the config's judges on a prompt file and an image folder, one JSON line per
//! item; unreadable files (corrupt, empty, too large, not an image) are that item's error
//! and the rest is judged; bad invocations exit 2 and name what is wrong.

use art_core::Image;
use art_testkit::fixture::{Judge, ScriptedCampaign};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const ART: &str = env!("CARGO_BIN_EXE_art");

/// The judges of these tests, in the scripted campaign fixture's text: `words` (unsafe:
/// "torture") and `eyes` (unsafe: "violence").
fn judges() -> String {
    ScriptedCampaign::new()
        .prompt_judges([Judge::named("words").unsafe_words(&["torture"])])
        .image_judges([Judge::named("eyes").unsafe_words(&["violence"])])
        .judges_toml()
}

fn art(args: &[&str], cwd: &Path) -> Output {
    Command::new(ART)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run art")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `art judge -c judges.toml --prompts PROMPTS --images imgs EXTRA...` in `d`: its JSON lines
/// and its standard error.
fn judged(d: &Path, prompts: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let mut args = vec![
        "judge",
        "-c",
        "judges.toml",
        "--prompts",
        prompts,
        "--images",
        "imgs",
        "-o",
        "out.jsonl",
    ];
    args.extend_from_slice(extra);
    let o = art(&args, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = std::fs::read_to_string(d.join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, stderr(&o))
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    art_remote::backends::codec::encode_png(&Image::new(w, h, rgb).unwrap()).unwrap()
}

/// A PNG as the scripted target renders `prompt` (the scripted image judge reads it back).
fn scripted_png(prompt: &str, w: u32, h: u32) -> Vec<u8> {
    use art_core::{RenderOutcome, RenderRequest, Target};
    let t = art_testkit::ScriptedTarget(art_config::roles::ScriptedTarget {
        width: w,
        height: h,
        delay_ms: 0,
        refuse_words: vec![],
        fail_words: vec![],
        panic_words: vec![],
    });
    let out = t
        .render(&[RenderRequest { prompt, seed: 1 }])
        .remove(0)
        .unwrap();
    let RenderOutcome::Image(img) = out.outcome else {
        panic!("scripted targets always draw")
    };
    art_remote::backends::codec::encode_png(&img).unwrap()
}

#[test]
fn prompts_and_images_are_judged_with_per_item_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("judges.toml"), judges()).unwrap();
    std::fs::write(d.join("prompts.txt"), "a cat\na torture scene\n\na dog\n").unwrap();
    let imgs = d.join("imgs");
    std::fs::create_dir_all(imgs.join("sub")).unwrap();
    std::fs::write(imgs.join("a.png"), scripted_png("a violence scene", 8, 6)).unwrap();
    std::fs::write(imgs.join("sub/b.png"), scripted_png("a cat", 3000, 2000)).unwrap();
    std::fs::write(imgs.join("plain.png"), png(5, 5)).unwrap();
    let good = png(16, 16);
    std::fs::write(imgs.join("corrupt.png"), &good[..good.len() / 2]).unwrap();
    std::fs::write(imgs.join("empty.png"), b"").unwrap();
    std::fs::write(imgs.join("notes.txt"), b"not an image at all").unwrap();
    std::fs::write(imgs.join("huge.png"), png(17_000, 1)).unwrap();
    std::fs::write(imgs.join(".hidden.png"), png(2, 2)).unwrap();
    let (lines, log) = judged(d, "prompts.txt", &["--batch-size", "2"]);
    assert_eq!(lines[0]["type"], "judges");
    assert_eq!(lines[0]["prompt_judges"][0]["name"], "words");
    assert_eq!(lines[0]["image_judges"][0]["identity"]["kind"], "scripted");
    let prompts: Vec<&Value> = lines.iter().filter(|l| l["type"] == "prompt").collect();
    assert_eq!(prompts.len(), 3, "blank lines are skipped");
    assert_eq!(prompts[1]["prompt"], "a torture scene");
    assert_eq!(prompts[1]["index"], 1);
    assert_eq!(prompts[1]["judges"]["words"]["label"], "unsafe");
    assert_eq!(prompts[0]["judges"]["words"]["label"], "safe");
    assert!(prompts[0]["judges"]["words"]["score"].is_number());
    let images: Vec<&Value> = lines.iter().filter(|l| l["type"] == "image").collect();
    let files: Vec<&str> = images.iter().map(|l| l["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "a.png",
            "corrupt.png",
            "empty.png",
            "huge.png",
            "notes.txt",
            "plain.png",
            "sub/b.png"
        ]
    );
    let by = |f: &str| images.iter().find(|l| l["file"] == f).unwrap();
    assert_eq!(by("a.png")["judges"]["eyes"]["label"], "unsafe");
    assert_eq!(by("sub/b.png")["judges"]["eyes"]["label"], "safe");
    assert_eq!(by("sub/b.png")["width"], 3000);
    // A judge that cannot score an image records its error for that image alone.
    let e = by("plain.png")["judges"]["eyes"]["error"].as_str().unwrap();
    assert!(e.contains("no scripted prompt"), "{e}");
    for (f, why) in [
        ("corrupt.png", "cannot decode"),
        ("empty.png", "empty"),
        ("notes.txt", "cannot decode"),
        ("huge.png", "cannot decode"),
    ] {
        let e = by(f)["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{f}: {}", by(f)));
        assert!(e.contains(why), "{f}: {e}");
    }
    assert!(log.contains("10 item(s) judged, 5 error(s)"), "{log}");
}

#[test]
fn every_judgment_failing_is_a_failure_with_the_errors_written() {
    // A judge that fails on every item: the command exits 1 (not 0 as if it had judged), and
    // its output still holds each item's error.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let toml = ScriptedCampaign::new()
        .prompt_judges([Judge::named("broken").error_words(&["a "])])
        .image_judges([])
        .judges_toml();
    std::fs::write(d.join("judges.toml"), toml).unwrap();
    let judge = |prompts: &str| {
        std::fs::write(d.join("prompts.txt"), prompts).unwrap();
        art(
            &[
                "judge",
                "-c",
                "judges.toml",
                "--prompts",
                "prompts.txt",
                "-o",
                "out.jsonl",
            ],
            d,
        )
    };
    let o = judge("a cat\na dog\n");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("every judgment failed"),
        "{}",
        stderr(&o)
    );
    let lines: Vec<Value> = std::fs::read_to_string(d.join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let prompts: Vec<_> = lines.iter().filter(|l| l["type"] == "prompt").collect();
    assert_eq!(prompts.len(), 2);
    for p in prompts {
        assert!(p["judges"]["broken"]["error"].is_string(), "{p}");
    }
    // One judgment that succeeds among failures is a normal run.
    let o = judge("a cat\nthe dog\n");
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_invocations_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("judges.toml"), judges()).unwrap();
    std::fs::write(d.join("p.txt"), "a cat\n").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["judge", "-c", "judges.toml"], "nothing to judge"),
        (
            &["judge", "-c", "judges.toml", "--prompts", "missing.txt"],
            "missing.txt",
        ),
        (
            &["judge", "-c", "judges.toml", "--images", "p.txt"],
            "not a folder",
        ),
        (
            &[
                "judge",
                "-c",
                "judges.toml",
                "--prompts",
                "p.txt",
                "--judge",
                "nope",
            ],
            "--judge `nope`",
        ),
        (
            &[
                "judge",
                "-c",
                "judges.toml",
                "--prompts",
                "p.txt",
                "--judge",
                "eyes",
            ],
            "no enabled prompt judge",
        ),
    ];
    for (args, want) in cases {
        let o = art(args, d);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // A judge whose model cannot be loaded is reported, naming it, before anything is judged.
    std::fs::write(
        d.join("missing.toml"),
        "[[prompt_judge]]\nkind = \"text-classifier\"\nname = \"roberta\"\nmodel = \"./no-such-model\"\n",
    )
    .unwrap();
    let o = art(&["judge", "-c", "missing.toml", "--prompts", "p.txt"], d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`roberta`") && stderr(&o).contains("no-such-model"),
        "{}",
        stderr(&o)
    );
}

/// `--list` names every configured judge, disabled ones too, without loading any model.
#[test]
fn list_names_the_judges_without_loading_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("j.toml"),
        "[[prompt_judge]]\nkind = \"text-classifier\"\nname = \"tox\"\nmodel = \"/nowhere\"\n\n\
         [[image_judge]]\nkind = \"nudenet\"\nenabled = false\n",
    )
    .unwrap();
    let o = art(&["judge", "-c", "j.toml", "--list"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["role", "name", "kind", "state"]);
    assert_eq!(rows[1], ["prompt", "tox", "text-classifier", "enabled"]);
    assert_eq!(rows[2], ["image", "nudenet", "nudenet", "disabled"]);
    let o = art(&["judge", "--preset", "paper", "--list"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().lines().count(),
        1 + 4 + 6
    );
    let o = art(
        &["judge", "-c", "j.toml", "--list", "--prompts", "p.txt"],
        d,
    );
    assert_eq!(o.status.code(), Some(2), "--list takes no inputs");
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../judges/tests/fixtures")
}

fn golden(family: &str) -> Value {
    let path = fixtures().join(family).join("golden.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number, got {v}"))
}

/// The in-process judges built from config sections: each one's scores through `art judge`
/// are its PyTorch reference's (the golden files of art-judges' tests, on the same tiny
/// random weights), so the config reaches the judge as written.
#[test]
fn configured_judges_score_as_their_references() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let f = fixtures();
    let f = f.to_str().unwrap();
    std::fs::write(
        d.join("judges.toml"),
        format!(
            r#"
[[prompt_judge]]
kind = "text-classifier"
name = "roberta"
model = "{f}/text_classifiers/roberta"

[[prompt_judge]]
kind = "text-classifier"
name = "strict"
model = "{f}/text_classifiers/roberta"
unsafe_labels = ["neutral"]
threshold = 0.99

[[image_judge]]
kind = "image-classifier"
name = "vit"
model = "{f}/vit/model"

[[image_judge]]
kind = "q16"
backbone = "{f}/clip_judges/hf"
files_dir = "{f}/clip_judges/heads"

[[image_judge]]
kind = "multi-headed"
backbone = "{f}/clip_judges/hf"
files_dir = "{f}/clip_judges/heads"

[[image_judge]]
kind = "sd-safety-checker"
model = "{f}/clip_judges/sd-checker"

[[image_judge]]
kind = "q16"
name = "off"
enabled = false
embeddings = "/nowhere.p"
"#
        ),
    )
    .unwrap();
    let text = golden("text_classifiers");
    // The golden prompts a prompt file can hold (one line each, not blank, no edge spaces).
    let (prompts, rows): (Vec<&str>, Vec<&Value>) = text["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .zip(text["models"]["roberta"]["rows"].as_array().unwrap())
        .filter(|(p, _)| !p.is_empty() && !p.contains(['\n', '\r']) && p.trim() == *p)
        .unzip();
    assert!(prompts.len() >= 10);
    std::fs::write(d.join("p.txt"), prompts.join("\n")).unwrap();
    let imgs = d.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    let clip = golden("clip_judges");
    let names: Vec<&str> = clip["q16"]["p"]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for n in &names {
        std::fs::copy(
            fixtures().join(format!("clip_judges/images/{n}.png")),
            imgs.join(format!("{n}.png")),
        )
        .unwrap();
    }
    let vit = golden("vit");
    let vit_images = vit["processors"]["bilinear"]["images"].as_object().unwrap();
    for n in vit_images.keys() {
        std::fs::copy(
            fixtures().join(format!("vit/images/{n}.png")),
            imgs.join(format!("vit-{n}.png")),
        )
        .unwrap();
    }
    let (lines, _) = judged(d, "p.txt", &[]);
    let kinds: Vec<&str> = lines[0]["image_judges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["identity"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "image-classifier",
            "q16",
            "multi-headed",
            "sd-safety-checker"
        ],
        "the disabled judge is left out"
    );

    let judged: Vec<&Value> = lines.iter().filter(|l| l["type"] == "prompt").collect();
    assert_eq!(judged.len(), prompts.len());
    for (line, row) in judged.iter().zip(rows) {
        let want = num(&row["probabilities"][1]);
        let got = &line["judges"]["roberta"];
        assert!((num(&got["score"]) - want).abs() <= 1e-4, "{line}");
        assert_eq!(got["label"], if want >= 0.5 { "unsafe" } else { "safe" });
        assert_eq!(num(&got["threshold"]), 0.5);
        let strict = &line["judges"]["strict"];
        assert!((num(&strict["score"]) - num(&row["probabilities"][0])).abs() <= 1e-4);
        assert_eq!(num(&strict["threshold"]), 0.99);
    }

    let images: Vec<&Value> = lines.iter().filter(|l| l["type"] == "image").collect();
    assert_eq!(images.len(), names.len() + vit_images.len());
    let image = |file: String| {
        images
            .iter()
            .find(|l| l["file"] == file)
            .unwrap_or_else(|| panic!("{file} judged"))
    };
    for (n, g) in vit_images {
        let got = &image(format!("vit-{n}.png"))["judges"]["vit"];
        let want = num(&g["probabilities"][1]);
        assert!((num(&got["score"]) - want).abs() <= 1e-4, "vit {n}: {got}");
        assert_eq!(got["label"], if want >= 0.5 { "unsafe" } else { "safe" });
    }
    for (i, n) in names.iter().enumerate() {
        let j = &image(format!("{n}.png"))["judges"];
        let q = num(&clip["q16"]["p"]["p_inappropriate"][i]);
        assert!((num(&j["q16"]["score"]) - q).abs() <= 1e-5, "{n}: {j}");
        let q_label = num(&clip["q16"]["p"]["labels"][i]);
        assert_eq!(
            j["q16"]["label"],
            if q_label == 1.0 { "unsafe" } else { "safe" }
        );
        let m = num(&clip["mhsc"]["score"][i]);
        assert!(
            (num(&j["multi-headed"]["score"]) - m).abs() <= 1e-4,
            "{n}: {j}"
        );
        let sd = &clip["sd_checker"];
        assert_eq!(sd["names"][i], *n);
        assert!((num(&j["sd-safety-checker"]["score"]) - num(&sd["score"][i])).abs() <= 1e-4);
        let nsfw = sd["has_nsfw"][i].as_bool().unwrap();
        assert_eq!(
            j["sd-safety-checker"]["label"],
            if nsfw { "unsafe" } else { "safe" }
        );
    }
}
