//! Evaluation renders: round trip, atomicity, and the evaluation row.

mod common;

use art_core::{JudgeOutcome, Label, Verdict};
use art_store::{
    EvalRenderRecord, EvaluationRecord, JudgmentRecord, NewEvalRender, NewRound, Subject,
};
use common::*;

fn render(lane_id: i64, round: u32, k: u32) -> EvalRenderRecord {
    EvalRenderRecord {
        lane_id,
        round,
        k,
        seed: u64::MAX - u64::from(k),
        image_sha256: Some("replaced by the store".into()),
        refusal: None,
        revised_prompt: None,
        image_verdict: Verdict::Unsafe,
        judgments: vec![
            scored("q16", Subject::Image, Label::Unsafe, Some(0.5)),
            JudgmentRecord {
                judge: "nudenet".into(),
                subject: Subject::Image,
                outcome: JudgeOutcome::Error("model crashed".into()),
            },
        ],
    }
}

#[test]
fn eval_renders_round_trip_with_judgments_and_refusals() {
    let (_tmp, _dir, mut store) = new_store();
    let lanes = store.insert_lanes(&[lane("hate", 0)]).unwrap();
    let id = lanes[0].id;
    store
        .commit_rounds(&[
            NewRound {
                round: full(id, 1),
                image: None,
            },
            NewRound {
                round: full(id, 2),
                image: None,
            },
        ])
        .unwrap();
    assert_eq!(store.evaluation().unwrap(), None);
    let e = EvaluationRecord {
        renders: 2,
        started_at: 7,
        identities: Default::default(),
    };
    store.set_evaluation(&e).unwrap();
    assert_eq!(store.evaluation().unwrap(), Some(e.clone()));
    let more = EvaluationRecord { renders: 5, ..e };
    store.set_evaluation(&more).unwrap();
    assert_eq!(
        store.evaluation().unwrap(),
        Some(more),
        "one evaluation row"
    );

    let img = image(4, 4, 1);
    let mut refused = render(id, 2, 1);
    refused.image_sha256 = None;
    refused.refusal = Some("content policy".into());
    refused.revised_prompt = Some("a safer cat".into());
    refused.image_verdict = Verdict::Unjudged;
    refused.judgments.clear();
    store
        .commit_eval_renders(&[
            NewEvalRender {
                render: render(id, 1, 0),
                image: Some(&img),
            },
            NewEvalRender {
                render: render(id, 1, 1),
                image: Some(&img),
            },
            NewEvalRender {
                render: refused.clone(),
                image: None,
            },
        ])
        .unwrap();
    let back = store.eval_renders().unwrap();
    assert_eq!(back.len(), 3);
    let sha = back[0].image_sha256.clone().unwrap();
    assert_eq!(store.read_image(&sha).unwrap(), img);
    let mut expected = render(id, 1, 0);
    expected.image_sha256 = Some(sha.clone());
    assert_eq!(back[0], expected);
    assert_eq!(back[1].k, 1);
    assert_eq!(back[2], refused);
}

#[test]
fn a_batch_of_eval_renders_lands_whole_or_not_at_all() {
    let (_tmp, _dir, mut store) = new_store();
    let id = store.insert_lanes(&[lane("hate", 0)]).unwrap()[0].id;
    store
        .commit_rounds(&[NewRound {
            round: full(id, 1),
            image: None,
        }])
        .unwrap();
    let img = image(2, 2, 3);
    store
        .commit_eval_renders(&[NewEvalRender {
            render: render(id, 1, 0),
            image: Some(&img),
        }])
        .unwrap();
    // A duplicate k, and a render of a round that does not exist: neither batch lands.
    for bad in [render(id, 1, 0), render(id, 9, 0)] {
        let r = store.commit_eval_renders(&[
            NewEvalRender {
                render: render(id, 1, 1),
                image: Some(&img),
            },
            NewEvalRender {
                render: bad,
                image: Some(&img),
            },
        ]);
        assert!(r.is_err());
        assert_eq!(store.eval_renders().unwrap().len(), 1);
    }
}
