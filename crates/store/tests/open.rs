//! Integration tests of opening a campaign folder: locking, read-only access, schema versions,
//! create's refusals and user errors.

mod common;

use art_store::{DB_FILE, LaneStatus, NewRound, SCHEMA_VERSION, Store, StoreError};
use common::*;
use std::fs;

#[test]
fn a_second_writer_is_locked_out_until_the_first_is_dropped() {
    let (_tmp, dir, store) = new_store();
    // std's File::try_lock is flock() on Linux, which conflicts between two open file
    // descriptions even within one process, so this needs no child process.
    match Store::open(&dir) {
        Err(e @ StoreError::Locked { .. }) => {
            assert!(e.is_user_error());
            let msg = e.to_string();
            assert!(msg.contains(&dir.display().to_string()), "{msg}");
            assert!(
                msg.contains(&format!("(pid {})", std::process::id())),
                "{msg}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(store);
    let mut store = Store::open(&dir).unwrap();
    assert!(matches!(Store::open(&dir), Err(StoreError::Locked { .. })));
    store.insert_lanes(&[lane("c", 0)]).unwrap();
}

#[test]
fn readers_work_while_a_writer_holds_the_lock() {
    let (_tmp, dir, mut writer) = new_store();
    let id = writer.insert_lanes(&[lane("c", 0)]).unwrap()[0].id;
    let mut reader = Store::open_read_only(&dir).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(reader.campaign().unwrap(), campaign());
    assert_eq!(reader.lanes().unwrap().len(), 1);
    assert!(reader.all_rounds().unwrap().is_empty());

    let img = image(16, 16, 1);
    writer
        .commit_rounds(&[NewRound {
            round: full(id, 1),
            image: Some(&img),
        }])
        .unwrap();
    // The reader sees the writer's commit.
    let rounds = reader.all_rounds().unwrap();
    assert_eq!(rounds.len(), 1);
    let sha = rounds[0]
        .render
        .as_ref()
        .unwrap()
        .image_sha256
        .clone()
        .unwrap();
    assert_eq!(reader.read_image(&sha).unwrap(), img);

    // A read-only store refuses to write, before writing any image file.
    let before = png_files(&dir);
    let other = image(16, 16, 2);
    assert!(
        reader
            .commit_rounds(&[NewRound {
                round: full(id, 2),
                image: Some(&other),
            }])
            .is_err()
    );
    assert_eq!(png_files(&dir), before);
    assert!(reader.insert_lanes(&[lane("d", 0)]).is_err());
    assert!(reader.set_lane_status(id, LaneStatus::Done, None).is_err());
    assert_eq!(writer.lanes().unwrap()[0].status, LaneStatus::Open);
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let (_tmp, dir, mut store) = new_store();
    store.insert_lanes(&[lane("c", 0)]).unwrap();
    drop(store);
    {
        let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let db_before = fs::read(dir.join(DB_FILE)).unwrap();
    for result in [Store::open(&dir), Store::open_read_only(&dir)] {
        match result {
            Err(e @ StoreError::NewerSchema { .. }) => {
                assert!(e.is_user_error());
                let StoreError::NewerSchema {
                    found, supported, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
                assert!(e.to_string().contains("upgrade art"), "{e}");
                assert!(e.to_string().contains(DB_FILE), "{e}");
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert_eq!(fs::read(dir.join(DB_FILE)).unwrap(), db_before);
    }
}

#[test]
fn create_never_overwrites_a_campaign() {
    let (_tmp, dir, mut store) = new_store();
    store.insert_lanes(&[lane("c", 0)]).unwrap();
    // While the first store is open (lock held) ...
    let mut other = campaign();
    other.name = "other".into();
    assert!(matches!(
        Store::create(&dir, &other),
        Err(StoreError::AlreadyExists { .. })
    ));
    drop(store);
    // ... and after it is closed.
    let before = snapshot(&dir);
    match Store::create(&dir, &other) {
        Err(e @ StoreError::AlreadyExists { .. }) => assert!(e.is_user_error()),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(snapshot(&dir), before);
    let store = Store::open_read_only(&dir).unwrap();
    assert_eq!(store.campaign().unwrap(), campaign());
    assert_eq!(store.lanes().unwrap().len(), 1);
}

#[test]
fn create_in_an_unwritable_place_is_a_user_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    // Tests run as root, where permission bits do not stop writes; a path under a regular file
    // fails for everyone.
    for dir in [file.join("campaign"), file.clone()] {
        match Store::create(&dir, &campaign()) {
            Err(e) => {
                assert!(e.is_user_error(), "{e:?}");
                assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
            }
            Ok(_) => panic!("create under a file succeeded"),
        }
    }
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_folder_without_a_database_is_not_a_campaign() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    for dir in [tmp.path(), missing.as_path()] {
        for result in [Store::open(dir), Store::open_read_only(dir)] {
            match result {
                Err(e @ StoreError::NotACampaign { .. }) => {
                    assert!(e.is_user_error());
                    assert!(e.to_string().contains(&dir.display().to_string()));
                }
                other => panic!("expected NotACampaign, got {other:?}"),
            }
        }
    }
    // Looking did not leave anything behind (no lock file, no folder).
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_fresh_campaign_has_the_current_schema_and_wal_mode() {
    let (_tmp, dir, store) = new_store();
    drop(store);
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
