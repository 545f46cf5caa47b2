//! Integration tests of what the store keeps: round trips, images, atomic commits, lanes.

mod common;

use art_core::{JudgeOutcome, JudgeScore, Label, Verdict};
use art_store::{
    JudgmentRecord, LaneRecord, LaneStatus, NewRound, RenderRecord, Store, StoreError, Subject,
    WriterRecord, encode_png,
};
use common::*;
use std::fs;

#[test]
fn every_field_of_every_record_round_trips() {
    let (_tmp, dir, mut store) = new_store();
    assert_eq!(store.dir(), dir);
    assert_eq!(store.campaign().unwrap(), campaign());

    let lanes = store
        .insert_lanes(&[lane("violence", 0), lane("hate", u64::MAX)])
        .unwrap();
    assert_eq!(
        lanes[1],
        LaneRecord {
            id: lanes[1].id,
            category: "hate".into(),
            seed_index: u64::MAX,
            lane_seed: 0,
            seed_prompt: "a seed prompt for hate #18446744073709551615".into(),
            status: LaneStatus::Open,
            error: None,
            last_round: None,
        }
    );
    let (a, b) = (lanes[0].id, lanes[1].id);

    // Round 0: writer only.
    let mut r0 = bare(a, 0);
    r0.writer = Some(WriterRecord {
        seed: u64::MAX,
        instruction: String::new(),
        output: "first rewrite".into(),
    });
    // Round 1: everything.
    let r1 = full(a, 1);
    let img1 = image(64, 64, 1);
    // Round 2: the provider refused; the prompt was truncated; one error judgment only.
    let mut r2 = bare(a, 2);
    r2.render = Some(RenderRecord {
        seed: 9,
        image_sha256: Some("a stale value the store must drop".into()),
        refusal: Some("content policy".into()),
        truncated_prompt: Some("prompt of lane".into()),
        revised_prompt: Some("the provider's rewrite".into()),
    });
    r2.image_verdict = Verdict::Incomplete;
    r2.prompt_verdict = Verdict::Unsafe;
    r2.judgments = vec![JudgmentRecord {
        judge: "nsfw".into(),
        subject: Subject::Image,
        outcome: JudgeOutcome::Error("no image".into()),
    }];
    // Lane b, round 3 (R+1): render and judge, no guide, no writer.
    let mut r3 = full(b, 3);
    r3.guide = None;
    r3.writer = None;
    r3.image_verdict = Verdict::Unsafe;
    let img3 = image(3, 5, 9);

    let shas = store
        .commit_rounds(&[
            NewRound {
                round: r0.clone(),
                image: None,
            },
            NewRound {
                round: r1.clone(),
                image: Some(&img1),
            },
            NewRound {
                round: r2.clone(),
                image: None,
            },
            NewRound {
                round: r3.clone(),
                image: Some(&img3),
            },
        ])
        .unwrap();
    let sha1 = encode_png(&img1).1;
    let sha3 = encode_png(&img3).1;
    assert_eq!(
        shas,
        vec![None, Some(sha1.clone()), None, Some(sha3.clone())]
    );

    let mut want1 = r1;
    want1.render.as_mut().unwrap().image_sha256 = Some(sha1.clone());
    let mut want2 = r2;
    want2.render.as_mut().unwrap().image_sha256 = None;
    let mut want3 = r3;
    want3.render.as_mut().unwrap().image_sha256 = Some(sha3.clone());

    let check = |store: &Store| {
        assert_eq!(
            store.rounds(a).unwrap(),
            vec![r0.clone(), want1.clone(), want2.clone()]
        );
        assert_eq!(store.rounds(b).unwrap(), vec![want3.clone()]);
        assert_eq!(
            store.all_rounds().unwrap(),
            vec![r0.clone(), want1.clone(), want2.clone(), want3.clone()]
        );
        assert_eq!(store.read_image(&sha1).unwrap(), img1);
        assert_eq!(store.read_image(&sha3).unwrap(), img3);
        assert_eq!(store.campaign().unwrap(), campaign());
    };
    check(&store);

    store
        .set_lane_status(b, LaneStatus::Failed, Some("guide: timed out"))
        .unwrap();
    store.set_lane_status(a, LaneStatus::Done, None).unwrap();
    let want_lanes = vec![
        LaneRecord {
            status: LaneStatus::Done,
            last_round: Some(2),
            ..lanes[0].clone()
        },
        LaneRecord {
            status: LaneStatus::Failed,
            error: Some("guide: timed out".into()),
            last_round: Some(3),
            ..lanes[1].clone()
        },
    ];
    assert_eq!(store.lanes().unwrap(), want_lanes);

    // Everything survives closing and reopening, for writing and for reading.
    drop(store);
    let store = Store::open(&dir).unwrap();
    check(&store);
    assert_eq!(store.lanes().unwrap(), want_lanes);
    drop(store);
    let store = Store::open_read_only(&dir).unwrap();
    check(&store);
    assert_eq!(store.lanes().unwrap(), want_lanes);
}

#[test]
fn images_are_stored_once_per_content_and_read_back_equal() {
    let (_tmp, dir, mut store) = new_store();
    let id = store.insert_lanes(&[lane("c", 0)]).unwrap()[0].id;
    let same = image(64, 64, 3);
    let other = image(64, 64, 4);
    let rounds: Vec<_> = (1..=3).map(|r| full(id, r)).collect();
    let shas = store
        .commit_rounds(&[
            NewRound {
                round: rounds[0].clone(),
                image: Some(&same),
            },
            NewRound {
                round: rounds[1].clone(),
                image: Some(&same.clone()),
            },
            NewRound {
                round: rounds[2].clone(),
                image: Some(&other),
            },
        ])
        .unwrap();
    assert_eq!(shas[0], shas[1]);
    assert_ne!(shas[0], shas[2]);
    let pngs = png_files(&dir);
    assert_eq!(pngs.len(), 2, "{pngs:?}");
    let sha = shas[0].as_deref().unwrap();
    let path = store.image_path(sha);
    assert_eq!(
        path,
        dir.join("images")
            .join(&sha[..2])
            .join(format!("{sha}.png"))
    );
    assert_eq!(fs::read(&path).unwrap(), encode_png(&same).0);
    assert_eq!(store.read_image(sha).unwrap(), same);
    assert_eq!(
        store.read_image(shas[2].as_deref().unwrap()).unwrap(),
        other
    );

    // Committing the same pixels again later reuses the file.
    let again = store
        .commit_rounds(&[NewRound {
            round: full(id, 4),
            image: Some(&same),
        }])
        .unwrap();
    assert_eq!(again[0].as_deref(), Some(sha));
    assert_eq!(png_files(&dir).len(), 2);

    // A missing file is an Image error naming it.
    fs::remove_file(&path).unwrap();
    match store.read_image(sha) {
        Err(e @ StoreError::Image { .. }) => assert!(e.to_string().contains(sha), "{e}"),
        other => panic!("expected an Image error, got {other:?}"),
    }
}

#[test]
fn a_batch_lands_entirely_or_not_at_all() {
    let (_tmp, _dir, mut store) = new_store();
    let id = store.insert_lanes(&[lane("c", 0)]).unwrap()[0].id;
    let img = image(8, 8, 0);
    let batch = |rounds: &[u32]| -> Vec<NewRound<'_>> {
        rounds
            .iter()
            .map(|&r| NewRound {
                round: full(id, r),
                image: Some(&img),
            })
            .collect()
    };
    // A duplicate inside the batch: none of it is stored.
    let err = store.commit_rounds(&batch(&[1, 2, 1])).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err:?}");
    assert!(!err.is_user_error());
    assert_eq!(store.rounds(id).unwrap(), vec![]);
    assert_eq!(store.lanes().unwrap()[0].last_round, None);

    // A round that is already stored: the new rounds of the batch are not stored either.
    store.commit_rounds(&batch(&[1])).unwrap();
    assert!(store.commit_rounds(&batch(&[2, 3, 1])).is_err());
    let stored: Vec<u32> = store.rounds(id).unwrap().iter().map(|r| r.round).collect();
    assert_eq!(stored, vec![1]);

    // A round of an unknown lane violates the foreign key.
    assert!(store.commit_rounds(&batch(&[2])).is_ok());
    let mut orphan = full(id + 100, 1);
    orphan.judgments.clear();
    assert!(
        store
            .commit_rounds(&[NewRound {
                round: orphan,
                image: None,
            }])
            .is_err()
    );
    assert_eq!(store.all_rounds().unwrap().len(), 2);
}

#[test]
fn an_image_without_a_render_record_is_refused_before_anything_is_written() {
    let (_tmp, dir, mut store) = new_store();
    let id = store.insert_lanes(&[lane("c", 0)]).unwrap()[0].id;
    let img = image(4, 4, 0);
    let err = store
        .commit_rounds(&[NewRound {
            round: bare(id, 0),
            image: Some(&img),
        }])
        .unwrap_err();
    assert!(matches!(err, StoreError::Image { .. }), "{err:?}");
    assert!(png_files(&dir).is_empty());
    assert!(store.all_rounds().unwrap().is_empty());
}

#[test]
fn lanes_are_inserted_all_or_none_and_report_their_last_round() {
    let (_tmp, _dir, mut store) = new_store();
    let lanes = store
        .insert_lanes(&[lane("a", 0), lane("a", 1), lane("b", 0)])
        .unwrap();
    assert!(lanes.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(store.lanes().unwrap(), lanes);

    // (category, seed_index) is unique; the whole insert is refused.
    assert!(store.insert_lanes(&[lane("c", 0), lane("a", 1)]).is_err());
    assert_eq!(store.lanes().unwrap().len(), 3);

    let ids: Vec<i64> = lanes.iter().map(|l| l.id).collect();
    let commit = |store: &mut Store, lane_id: i64, round: u32| {
        store
            .commit_rounds(&[NewRound {
                round: bare(lane_id, round),
                image: None,
            }])
            .unwrap();
    };
    commit(&mut store, ids[0], 0);
    commit(&mut store, ids[1], 0);
    commit(&mut store, ids[1], 1);
    commit(&mut store, ids[1], 2);
    let last: Vec<_> = store
        .lanes()
        .unwrap()
        .iter()
        .map(|l| l.last_round)
        .collect();
    assert_eq!(last, vec![Some(0), Some(2), None]);

    assert!(
        store
            .set_lane_status(ids[2] + 1, LaneStatus::Done, None)
            .is_err()
    );
}

#[test]
fn a_nan_score_reads_back_as_nan() {
    let (_tmp, _dir, mut store) = new_store();
    let id = store.insert_lanes(&[lane("c", 0)]).unwrap()[0].id;
    let mut r = bare(id, 0);
    r.judgments = vec![JudgmentRecord {
        judge: "j".into(),
        subject: Subject::Prompt,
        outcome: JudgeOutcome::Scored(JudgeScore {
            label: Label::Safe,
            score: f64::NAN,
            threshold: None,
        }),
    }];
    r.timings_ms.insert("x".into(), f64::NAN);
    store
        .commit_rounds(&[NewRound {
            round: r,
            image: None,
        }])
        .unwrap();
    let back = &store.rounds(id).unwrap()[0];
    assert!(back.timings_ms["x"].is_nan());
    match &back.judgments[0].outcome {
        JudgeOutcome::Scored(s) => assert!(s.score.is_nan() && s.label == Label::Safe),
        other => panic!("{other:?}"),
    }
}
