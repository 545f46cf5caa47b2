//! The evaluation protocol's re-renders against a real store with scripted roles.

mod common;

use art_config::{Config, Overrides};
use art_engine::{CampaignSpec, Engine, EvalEvent, Evaluator};
use art_store::{EvalRenderRecord, Store};
use art_testkit::fixture::{Judge, ScriptedCampaign};
use common::{create, roles};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The campaign of these tests: 2 categories x 2 seeds, 3 rounds, 16x16 images, an image judge
/// that fails on "stereotyping" beside the one that finds words.
fn base() -> ScriptedCampaign {
    ScriptedCampaign::new()
        .categories(&["violence", "hate"])
        .seed(9)
        .image_size(16, 16)
        .prompt_judges([Judge::unnamed().unsafe_words(&["torture"])])
        .image_judges([
            Judge::named("eyes").unsafe_words(&["violence", "abuse", "hate"]),
            Judge::named("flaky").error_words(&["stereotyping"]),
        ])
}

fn config(text: &str) -> Config {
    common::config(text, &Overrides::default())
}

/// A finished campaign in `dir`.
fn campaign(dir: &Path) -> Store {
    let c = config(&base().toml());
    let spec = CampaignSpec::from_config(&c).unwrap();
    let mut store = create(dir, &c);
    Engine::new(&spec, &roles(&c), &mut store).run().unwrap();
    store
}

fn eval(store: &mut Store, text: &str, k: u32, batch: usize) -> art_engine::EvalSummary {
    let r = roles(&config(text));
    Evaluator::new(r.target.as_ref(), &r.image_judges, store, k, batch)
        .run()
        .unwrap()
}

#[test]
fn every_prompt_is_rendered_k_times_with_fresh_seeds_and_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = campaign(tmp.path());
    let s = eval(&mut store, &base().toml(), 3, 4);
    // 4 lanes x rounds 1..=4 x 3 renders.
    assert_eq!((s.committed, s.failed, s.missing), (48, 0, 0));
    let renders = store.eval_renders().unwrap();
    assert_eq!(renders.len(), 48);
    let rounds = store.all_rounds().unwrap();
    let loop_seeds: BTreeSet<u64> = rounds
        .iter()
        .filter_map(|r| Some(r.render.as_ref()?.seed))
        .collect();
    let seeds: BTreeSet<u64> = renders.iter().map(|r| r.seed).collect();
    assert_eq!(seeds.len(), 48, "every render has its own seed");
    assert!(
        seeds.is_disjoint(&loop_seeds),
        "fresh seeds, not the loop's"
    );
    for r in &renders {
        assert!(r.round >= 1 && r.k < 3);
        assert_eq!(r.judgments.len(), 2);
        let img = store.read_image(r.image_sha256.as_ref().unwrap()).unwrap();
        let prompt = &rounds
            .iter()
            .find(|x| x.lane_id == r.lane_id && x.round == r.round)
            .unwrap()
            .prompt;
        assert_eq!(
            art_testkit::depicted_prompt(&img).as_deref(),
            Some(prompt.as_str())
        );
        let eyes = r.judgments[0].outcome.label().unwrap();
        match &r.judgments[1].outcome {
            art_core::JudgeOutcome::Error(_) => assert_eq!(
                r.image_verdict,
                if eyes == art_core::Label::Unsafe {
                    art_core::Verdict::Unsafe
                } else {
                    art_core::Verdict::Incomplete
                }
            ),
            _ => assert_eq!(
                r.image_verdict == art_core::Verdict::Unsafe,
                eyes == art_core::Label::Unsafe
            ),
        }
    }
}

fn comparable(mut v: Vec<EvalRenderRecord>) -> Vec<EvalRenderRecord> {
    v.sort_by_key(|r| (r.lane_id, r.round, r.k));
    v
}

#[test]
fn evaluations_are_deterministic_batch_invariant_and_resumable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = campaign(&tmp.path().join("a"));
    eval(&mut a, &base().toml(), 3, 1);
    let reference = comparable(a.eval_renders().unwrap());

    let mut b = campaign(&tmp.path().join("b"));
    eval(&mut b, &base().toml(), 3, 7);
    assert_eq!(comparable(b.eval_renders().unwrap()), reference);

    // Stopped after the first batch, then continued: the same renders.
    let mut c = campaign(&tmp.path().join("c"));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let r = roles(&config(&base().toml()));
    let s = Evaluator::new(r.target.as_ref(), &r.image_judges, &mut c, 3, 5)
        .with_stop_flag(stop)
        .on_event(|e| {
            if let EvalEvent::Committed { .. } = e {
                flag.store(true, Ordering::SeqCst);
            }
        })
        .run()
        .unwrap();
    assert!(s.interrupted && s.missing > 0 && s.committed >= 5);
    let s = eval(&mut c, &base().toml(), 3, 5);
    assert_eq!(s.missing, 0);
    assert_eq!(comparable(c.eval_renders().unwrap()), reference);

    // More renders later adds only the missing ones.
    let s = eval(&mut c, &base().toml(), 5, 5);
    assert_eq!(s.committed, 16 * 2);
    assert_eq!(c.eval_renders().unwrap().len(), 16 * 5);
}

#[test]
fn target_failures_are_counted_not_stored_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = campaign(tmp.path());
    let failing = base().target_fail_words(&["Xenophobia"]).toml();
    let s = eval(&mut store, &failing, 2, 4);
    assert_eq!(s.failed, 3 * 2, "lane 3's rounds 2..=4 mention Xenophobia");
    assert_eq!(s.missing, s.failed);
    assert_eq!(store.eval_renders().unwrap().len() as u64, s.committed);
    let s2 = eval(&mut store, &base().toml(), 2, 4);
    assert_eq!((s2.committed, s2.missing), (s.failed, 0));
    assert_eq!(store.eval_renders().unwrap().len(), 32);
}
