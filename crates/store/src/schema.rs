//! The database schema, its version and its migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. [`MIGRATIONS`]`[i]` brings a
//! database from version `i` to `i + 1`; a new store runs them all (in the same transaction as
//! its campaign row, so a store either exists completely or not at all), an older store is
//! brought up to date one migration per transaction when it is opened for writing. A database
//! whose version is newer than [`SCHEMA_VERSION`] is refused before anything is written to it.

use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// The schema version this `art` writes (stored in `PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 3;

/// `MIGRATIONS[i]` brings the schema from version `i` to `i + 1`. Append only: a released
/// migration is never edited.
///
/// Seeds (u64) are stored as INTEGER by bit-casting to i64. The `render_*`, `guide_*` and
/// `writer_*` columns of a round are NULL exactly when that part of the round is absent
/// (`render_seed`, `guide_seed` and `writer_seed` tell). Judgments are `WITHOUT ROWID` so they
/// are stored clustered by round, which is the order they are always read in.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE campaign (
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        tool_version TEXT NOT NULL,
        config_toml TEXT NOT NULL,
        identities_json TEXT NOT NULL
    );
    CREATE TABLE lanes (
        id INTEGER PRIMARY KEY,
        category TEXT NOT NULL,
        seed_index INTEGER NOT NULL,
        lane_seed INTEGER NOT NULL,
        seed_prompt TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        UNIQUE (category, seed_index)
    );
    CREATE TABLE rounds (
        lane_id INTEGER NOT NULL REFERENCES lanes(id),
        round INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        render_seed INTEGER,
        image_sha256 TEXT,
        refusal TEXT,
        truncated_prompt TEXT,
        guide_seed INTEGER,
        guide_raw TEXT,
        guide_instructions TEXT,
        writer_seed INTEGER,
        writer_instruction TEXT,
        writer_output TEXT,
        prompt_verdict TEXT NOT NULL,
        image_verdict TEXT NOT NULL,
        timings_json TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        PRIMARY KEY (lane_id, round)
    );
    CREATE TABLE judgments (
        lane_id INTEGER NOT NULL,
        round INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        judge TEXT NOT NULL,
        subject TEXT NOT NULL,
        label TEXT,
        score REAL,
        threshold REAL,
        error TEXT,
        PRIMARY KEY (lane_id, round, seq),
        FOREIGN KEY (lane_id, round) REFERENCES rounds(lane_id, round)
    ) WITHOUT ROWID;",
    // 1 -> 2: the prompt a provider says it rendered instead of ours (DALL-E 3 rewrites).
    "ALTER TABLE rounds ADD COLUMN revised_prompt TEXT;",
    // 2 -> 3: the evaluation protocol's re-renders of stored prompts, and their judgments.
    "CREATE TABLE evaluation (
        renders INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        identities_json TEXT NOT NULL
    );
    CREATE TABLE eval_renders (
        lane_id INTEGER NOT NULL,
        round INTEGER NOT NULL,
        k INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        image_sha256 TEXT,
        refusal TEXT,
        revised_prompt TEXT,
        image_verdict TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        PRIMARY KEY (lane_id, round, k),
        FOREIGN KEY (lane_id, round) REFERENCES rounds(lane_id, round)
    ) WITHOUT ROWID;
    CREATE TABLE eval_judgments (
        lane_id INTEGER NOT NULL,
        round INTEGER NOT NULL,
        k INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        judge TEXT NOT NULL,
        label TEXT,
        score REAL,
        threshold REAL,
        error TEXT,
        PRIMARY KEY (lane_id, round, k, seq),
        FOREIGN KEY (lane_id, round, k) REFERENCES eval_renders(lane_id, round, k)
    ) WITHOUT ROWID;",
];

const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize);

/// How long a connection waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path` and applies the per-connection settings. Writes nothing to the database:
/// `journal_mode` is set by [`init_wal`] only.
pub(crate) fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite(path))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sqlite(path))?;
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite(path))?;
        // Enough for every statement the store uses.
        conn.set_prepared_statement_cache_capacity(32);
    }
    Ok(conn)
}

/// Switches a new database to WAL mode (persistent in the file).
pub(crate) fn init_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("could not switch to WAL journal mode (got {mode:?})"),
        })
    }
}

pub(crate) fn user_version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sqlite(path))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("schema version {v} is out of range"),
    })
}

/// Checks the stored version: newer than this `art` is refused; 0 (no schema was ever committed:
/// not a database `art` created) is not a campaign.
pub(crate) fn check_version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let found = user_version(conn, path)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        return Err(StoreError::NotACampaign {
            path: path.parent().unwrap_or(path).to_path_buf(),
        });
    }
    Ok(found)
}

/// Applies migration `version` (to `version + 1`) on `conn`, which must already be inside the
/// transaction the caller wants it in.
fn apply_migration(conn: &Connection, path: &Path, version: u32) -> Result<(), StoreError> {
    let sql = MIGRATIONS[version as usize];
    conn.execute_batch(sql).map_err(sqlite(path))?;
    conn.pragma_update(None, "user_version", i64::from(version) + 1)
        .map_err(sqlite(path))
}

/// Builds the whole schema in a new, empty database, inside the caller's transaction.
pub(crate) fn apply_all(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    (0..SCHEMA_VERSION).try_for_each(|v| apply_migration(conn, path, v))
}

/// Brings an existing store from `from` up to [`SCHEMA_VERSION`], one transaction per migration.
pub(crate) fn migrate(conn: &mut Connection, path: &Path, from: u32) -> Result<(), StoreError> {
    for version in from..SCHEMA_VERSION {
        let tx = conn.transaction().map_err(sqlite(path))?;
        apply_migration(&tx, path, version)?;
        tx.commit().map_err(sqlite(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applying_all_migrations_reaches_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let mut conn = connect(&path, flags).unwrap();
        init_wal(&conn, &path).unwrap();
        assert!(matches!(
            check_version(&conn, &path),
            Err(StoreError::NotACampaign { .. })
        ));
        migrate(&mut conn, &path, 0).unwrap();
        assert_eq!(check_version(&conn, &path).unwrap(), SCHEMA_VERSION);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            check_version(&conn, &path),
            Err(StoreError::NewerSchema { found, supported: SCHEMA_VERSION, .. })
                if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn a_version_1_store_is_migrated_on_open_and_keeps_its_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::DB_FILE);
        {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
            let conn = connect(&path, flags).unwrap();
            init_wal(&conn, &path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "INSERT INTO campaign VALUES ('old', 0, '0.0.1', '', '{}');
                 INSERT INTO lanes (id, category, seed_index, lane_seed, seed_prompt, status)
                     VALUES (1, 'hate', 0, 5, 'a pic of cat', 'open');
                 INSERT INTO rounds (lane_id, round, prompt, writer_seed, writer_instruction,
                     writer_output, prompt_verdict, image_verdict, timings_json, committed_at)
                     VALUES (1, 0, 'a pic of cat', 7, '', 'a cat', 'unjudged', 'unjudged',
                     '{}', 0);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = crate::Store::open(dir.path()).unwrap();
        assert_eq!(
            check_version(&store.conn, &path).unwrap(),
            SCHEMA_VERSION,
            "migrated"
        );
        let rounds = store.rounds(1).unwrap();
        assert_eq!(rounds.len(), 1);
        assert_eq!(rounds[0].writer.as_ref().unwrap().output, "a cat");
        assert!(rounds[0].render.is_none());
    }
}
