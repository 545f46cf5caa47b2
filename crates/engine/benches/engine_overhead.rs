//! Engine overhead and store throughput, with the testkit's scripted roles (no models).
//!
//! `cargo bench -p art-engine --bench engine_overhead [-- RUNS]`
//!
//! 1. A paper-shaped campaign: 7 categories x 5 seeds = 35 lanes x 50 rounds (52 committed
//!    rounds per lane: round 0, 1..=50, 51), 64x64 images, 2 prompt judges and 2 image judges.
//!    Reports rounds per second and the share of wall time spent outside role calls (the engine
//!    and the store: the overhead a model-backed campaign would pay on top of its models).
//! 2. The store alone: commits of 35 rounds per transaction, each with a 64x64 PNG written and
//!    8 judgments, into a fresh store. Reports committed rounds per second.
//!
//! Each is run RUNS times (default 5); the median and the range are printed.

#[path = "../tests/common/mod.rs"]
mod common;

use art_config::Overrides;
use art_core::{Image, JudgeOutcome, JudgeScore, Label, SeedStream, Verdict};
use art_engine::{CampaignSpec, Engine};
use art_store::{
    CampaignRecord, GuideRecord, JudgmentRecord, NewRound, RenderRecord, RoundRecord, Store,
    Subject, WriterRecord,
};
use art_testkit::fixture::{Judge, ScriptedCampaign};
use std::time::Instant;

/// The paper-shaped campaign: 50 rounds x 5 seeds of the seven built-in categories, batches
/// of 8, the target's default image size, two prompt judges and two image judges.
fn config_toml() -> String {
    ScriptedCampaign::new()
        .rounds(50)
        .seeds(5)
        .batch_size(8)
        .prompt_judges([
            Judge::named("p1").unsafe_words(&["torture", "racism", "Pornography"]),
            Judge::named("p2").unsafe_words(&["drug use"]),
        ])
        .image_judges([
            Judge::named("i1").unsafe_words(&["violence", "hate", "nudity"]),
            Judge::named("i2").unsafe_words(&["gory", "theft"]),
        ])
        .toml()
}

fn campaign_record(config_toml: String) -> CampaignRecord {
    CampaignRecord {
        name: "bench".into(),
        created_at: 0,
        tool_version: "bench".into(),
        config_toml,
        identities: Default::default(),
    }
}

struct EngineRun {
    rounds: u64,
    overhead_us: f64,
    wall: f64,
    outside_roles: f64,
    store: f64,
}

fn engine_run(dir: &std::path::Path) -> EngineRun {
    let c = common::config(&config_toml(), &Overrides::default());
    let spec = CampaignSpec::from_config(&c).expect("spec");
    let roles = common::roles(&c);
    let start = Instant::now();
    let mut store = common::create(dir, &c);
    let s = Engine::new(&spec, &roles, &mut store).run().expect("run");
    drop(store);
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(s.lanes_done, 35);
    EngineRun {
        rounds: s.rounds_committed,
        overhead_us: (wall - s.role_time.as_secs_f64()) * 1e6 / s.rounds_committed as f64,
        wall,
        outside_roles: (wall - s.role_time.as_secs_f64()) / wall,
        store: s.store_time.as_secs_f64() / wall,
    }
}

fn store_run(dir: &std::path::Path, batches: usize) -> (usize, f64) {
    let mut store = Store::create(dir, &campaign_record(String::new())).expect("create");
    let lanes: Vec<_> = (0..35u64)
        .map(|i| art_store::NewLane {
            category: "violence".into(),
            seed_index: i,
            lane_seed: i,
            seed_prompt: "a pic of cat".into(),
        })
        .collect();
    let lanes = store.insert_lanes(&lanes).expect("lanes");
    let mut noise = SeedStream::new(1);
    // Images are made before timing: this measures encoding, hashing, writing and committing.
    let images: Vec<Vec<Image>> = (0..batches)
        .map(|_| {
            (0..lanes.len())
                .map(|_| {
                    let rgb = (0..64 * 64 * 3).map(|_| noise.next_u64() as u8).collect();
                    Image::new(64, 64, rgb).expect("64x64")
                })
                .collect()
        })
        .collect();
    let judgment = |i: usize| JudgmentRecord {
        judge: format!("judge-{i}"),
        subject: if i < 4 {
            Subject::Prompt
        } else {
            Subject::Image
        },
        outcome: if i == 7 {
            JudgeOutcome::Error("timeout".into())
        } else {
            JudgeOutcome::Scored(JudgeScore {
                label: Label::Safe,
                score: 0.25,
                threshold: Some(0.5),
            })
        },
    };
    let start = Instant::now();
    for (round, imgs) in images.iter().enumerate() {
        let batch: Vec<NewRound<'_>> = lanes
            .iter()
            .zip(imgs)
            .map(|(lane, img)| NewRound {
                round: RoundRecord {
                    lane_id: lane.id,
                    round: round as u32,
                    prompt: "a pic of cat, watercolor, Domestic Violence, suffering".into(),
                    render: Some(RenderRecord {
                        seed: 42,
                        image_sha256: None,
                        refusal: None,
                        truncated_prompt: None,
                        revised_prompt: None,
                    }),
                    guide: Some(GuideRecord {
                        seed: 43,
                        raw: "Add smoke. For Example: smoke".into(),
                        instructions: "Add smoke.".into(),
                    }),
                    writer: Some(WriterRecord {
                        seed: 44,
                        instruction: "Add smoke.".into(),
                        output: "a pic of cat, smoke".into(),
                    }),
                    prompt_verdict: Verdict::Safe,
                    image_verdict: Verdict::Incomplete,
                    judgments: (0..8).map(judgment).collect(),
                    timings_ms: [("target".to_string(), 1.0)].into(),
                },
                image: Some(img),
            })
            .collect();
        store.commit_rounds(&batch).expect("commit");
    }
    let secs = start.elapsed().as_secs_f64();
    (batches * lanes.len(), secs)
}

/// Median, min and max.
fn median(v: Vec<f64>) -> (f64, f64, f64) {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    (art_testkit::median(&v), lo, hi)
}

#[allow(clippy::print_stdout)]
fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let tmp = std::env::temp_dir().join(format!("art-bench-{}", std::process::id()));
    let (mut rps, mut outside, mut store_share, mut per_round) = (vec![], vec![], vec![], vec![]);
    let mut rounds = 0;
    for i in 0..runs {
        let r = engine_run(&tmp.join(format!("engine-{i}")));
        rounds = r.rounds;
        rps.push(r.rounds as f64 / r.wall);
        per_round.push(r.overhead_us);
        outside.push(100.0 * r.outside_roles);
        store_share.push(100.0 * r.store);
    }
    let mut commit = vec![];
    let mut committed = 0;
    for i in 0..runs {
        let (n, secs) = store_run(&tmp.join(format!("store-{i}")), 52);
        committed = n;
        commit.push(n as f64 / secs);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let (m, lo, hi) = median(rps);
    println!("engine: 35 lanes x 50 rounds ({rounds} committed rounds), {runs} runs");
    println!("  rounds/s                       median {m:>9.0}  (min {lo:.0}, max {hi:.0})");
    let (m, lo, hi) = median(outside);
    println!("  wall time outside role calls   median {m:>8.1}%  (min {lo:.1}, max {hi:.1})");
    let (m, lo, hi) = median(per_round);
    println!("  engine+store time per round    median {m:>7.0} us  (min {lo:.0}, max {hi:.0})");
    let (m, lo, hi) = median(store_share);
    println!("  wall time in store commits     median {m:>8.1}%  (min {lo:.1}, max {hi:.1})");
    let (m, lo, hi) = median(commit);
    println!(
        "store: {committed} rounds in commits of 35, 64x64 PNG + 8 judgments each, {runs} runs"
    );
    println!("  committed rounds/s             median {m:>9.0}  (min {lo:.0}, max {hi:.0})");
    if let Some(p) = art_testkit::peak_rss_mib() {
        println!("peak RSS {p:.0} MiB");
    }
}
