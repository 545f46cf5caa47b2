//! Builders and helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses a different subset

use art_core::{Image, JudgeOutcome, JudgeScore, Label, ModelIdentity, Verdict};
use art_store::{
    CampaignRecord, GuideRecord, JudgmentRecord, NewLane, RenderRecord, RoundRecord, Store,
    Subject, WriterRecord,
};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub fn campaign() -> CampaignRecord {
    let mut identities = BTreeMap::new();
    let mut target = ModelIdentity::new("diffusers", "runwayml/stable-diffusion-v1-5")
        .with_param("steps", 25)
        .with_param("dtype", "fp16");
    target.revision = Some("0123abcd".into());
    identities.insert("target".to_string(), target);
    let mut writer = ModelIdentity::new("llm", "llama-2-7b");
    writer.adapter = Some("writer-lora".into());
    identities.insert("writer".to_string(), writer);
    identities.insert(
        "image_judge:nsfw".to_string(),
        ModelIdentity::new("clip", "nsfw-detector"),
    );
    CampaignRecord {
        name: "nightly \"é\" run".into(),
        created_at: 1_700_000_000,
        tool_version: "0.1.0".into(),
        config_toml: "[target]\nkind = \"diffusers\"\n".into(),
        identities,
    }
}

pub fn lane(category: &str, seed_index: u64) -> NewLane {
    NewLane {
        category: category.into(),
        seed_index,
        lane_seed: u64::MAX - seed_index,
        seed_prompt: format!("a seed prompt for {category} #{seed_index}"),
    }
}

pub fn image(w: u32, h: u32, salt: u8) -> Image {
    let rgb = (0..w * h * 3)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect();
    Image::new(w, h, rgb).unwrap()
}

pub fn scored(
    judge: &str,
    subject: Subject,
    label: Label,
    threshold: Option<f64>,
) -> JudgmentRecord {
    JudgmentRecord {
        judge: judge.into(),
        subject,
        outcome: JudgeOutcome::Scored(JudgeScore {
            label,
            score: 0.125,
            threshold,
        }),
    }
}

/// A round with every part absent: what round 0 and a refusal build on.
pub fn bare(lane_id: i64, round: u32) -> RoundRecord {
    RoundRecord {
        lane_id,
        round,
        prompt: format!("prompt of lane {lane_id} round {round}"),
        render: None,
        guide: None,
        writer: None,
        prompt_verdict: Verdict::Unjudged,
        image_verdict: Verdict::Unjudged,
        judgments: vec![],
        timings_ms: BTreeMap::new(),
    }
}

/// A full round 1..=R: render with image, guide, writer, both kinds of judgment.
pub fn full(lane_id: i64, round: u32) -> RoundRecord {
    let mut r = bare(lane_id, round);
    r.render = Some(RenderRecord {
        seed: u64::MAX - 7,
        image_sha256: Some("replaced by the store".into()),
        refusal: None,
        truncated_prompt: None,
        revised_prompt: None,
    });
    r.guide = Some(GuideRecord {
        seed: (1 << 63) + 5,
        raw: "raw guide text\nwith lines".into(),
        instructions: "make it subtler".into(),
    });
    r.writer = Some(WriterRecord {
        seed: 42,
        instruction: "make it subtler".into(),
        output: "the next prompt".into(),
    });
    r.prompt_verdict = Verdict::Safe;
    r.image_verdict = Verdict::Incomplete;
    r.judgments = vec![
        scored("toxic-bert", Subject::Prompt, Label::Safe, Some(0.5)),
        scored("keywords", Subject::Prompt, Label::Safe, None),
        scored("nsfw", Subject::Image, Label::Unsafe, Some(0.25)),
        JudgmentRecord {
            judge: "q16".into(),
            subject: Subject::Image,
            outcome: JudgeOutcome::Error("CUDA out of memory".into()),
        },
    ];
    r.timings_ms = BTreeMap::from([("render".to_string(), 812.5), ("judge".to_string(), 3.25)]);
    r
}

pub fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("campaign");
    let store = Store::create(&dir, &campaign()).unwrap();
    (tmp, dir, store)
}

/// Every file under `dir` with its bytes, for before/after comparisons.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

pub fn png_files(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_keys()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect()
}
