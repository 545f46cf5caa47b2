//! Opening, creating and locking a campaign folder: the [`Store`] handle itself.
//!
//! This module owns the rules about *when* a store may be touched: `create` never overwrites a
//! campaign and leaves nothing behind when it fails; `open` (for writing) takes the writer lock
//! and refuses a newer schema before writing anything; `open_read_only` takes no lock and opens
//! SQLite read-only, so reports work while a run is writing (WAL). What is read and written
//! lives in [`crate::lanes`] and [`crate::rounds`].

use crate::images::{self, ImageWriter};
use crate::lock::{self, LOCK_FILE, WriterLock};
use crate::schema::{self, SCHEMA_VERSION};
use crate::{CampaignRecord, DB_FILE, StoreError};
use art_core::Image;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// An open campaign store. Holds the campaign's writer lock (unless opened read-only) until it
/// is dropped.
#[derive(Debug)]
pub struct Store {
    // Field order is drop order: the connection closes (and checkpoints) before the lock goes.
    pub(crate) conn: Connection,
    pub(crate) dir: PathBuf,
    pub(crate) db_path: PathBuf,
    pub(crate) images: ImageWriter,
    read_only: bool,
    _lock: Option<WriterLock>,
}

const RW: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE.union(OpenFlags::SQLITE_OPEN_NO_MUTEX);
const RO: OpenFlags = OpenFlags::SQLITE_OPEN_READ_ONLY.union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// Reads a campaign's image files by hash; `Clone + Send + Sync`, for report builders that
/// decode many images in parallel.
#[derive(Debug, Clone)]
pub struct ImageReader {
    dir: PathBuf,
}

impl ImageReader {
    pub fn read(&self, sha256: &str) -> Result<Image, StoreError> {
        images::read_image(&self.dir, sha256)
    }
}

/// The SQLite files a database may consist of.
const DB_SUFFIXES: [&str; 4] = ["", "-wal", "-shm", "-journal"];

impl Store {
    /// Creates the campaign folder `dir` (and its parents), takes the writer lock, creates
    /// `art.db` with the current schema and inserts the campaign row, all in one transaction.
    ///
    /// Fails with [`StoreError::AlreadyExists`] if `dir/art.db` exists, without touching
    /// anything. On any other failure, whatever this call created (database files, lock file,
    /// the folder itself) is removed again.
    pub fn create(dir: &Path, campaign: &CampaignRecord) -> Result<Store, StoreError> {
        let db_path = dir.join(DB_FILE);
        if exists(&db_path)? {
            return Err(StoreError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        let dir_existed = match fs::metadata(dir) {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                let e = io::Error::new(io::ErrorKind::NotADirectory, "exists and is not a folder");
                return Err(StoreError::io(dir, e));
            }
            Err(_) => false,
        };
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let mut guard = CreateGuard {
            dir: (!dir_existed).then(|| dir.to_path_buf()),
            lock_file: None,
            db_files: Vec::new(),
            lock: None,
        };
        let lock_path = dir.join(LOCK_FILE);
        let lock_existed = exists(&lock_path)?;
        guard.lock = Some(lock::acquire(dir)?);
        if !lock_existed {
            guard.lock_file = Some(lock_path);
        }
        // Re-check under the lock: another process may have created it meanwhile.
        if exists(&db_path)? {
            return Err(StoreError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        for suffix in DB_SUFFIXES {
            let p = PathBuf::from(format!("{}{suffix}", db_path.display()));
            if !exists(&p)? {
                guard.db_files.push(p);
            }
        }
        let mut conn = schema::connect(&db_path, RW.union(OpenFlags::SQLITE_OPEN_CREATE))?;
        schema::init_wal(&conn, &db_path)?;
        let sqlite = |source| StoreError::Sqlite {
            path: db_path.clone(),
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        schema::apply_all(&tx, &db_path)?;
        crate::lanes::insert_campaign(&tx, &db_path, campaign)?;
        tx.commit().map_err(sqlite)?;
        let lock = guard.disarm();
        Ok(Store {
            conn,
            dir: dir.to_path_buf(),
            db_path,
            images: ImageWriter::default(),
            read_only: false,
            _lock: lock,
        })
    }

    /// Opens an existing campaign for writing (resume). Takes the writer lock without waiting
    /// ([`StoreError::Locked`] if another process holds it), refuses a newer schema before
    /// writing anything, and migrates an older one.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db_path = campaign_db(dir)?;
        let lock = lock::acquire(dir)?;
        // Check the version on a read-only connection first: closing a read-write connection
        // may checkpoint a leftover WAL into art.db, and a newer campaign must stay untouched.
        schema::check_version(&schema::connect(&db_path, RO)?, &db_path)?;
        let mut conn = schema::connect(&db_path, RW)?;
        let found = schema::check_version(&conn, &db_path)?;
        schema::migrate(&mut conn, &db_path, found)?;
        Ok(Store {
            conn,
            dir: dir.to_path_buf(),
            db_path,
            images: ImageWriter::default(),
            read_only: false,
            _lock: Some(lock),
        })
    }

    /// Opens an existing campaign for reading (show, export, list, report): no lock, SQLite
    /// opened read-only. Works while another process writes the campaign.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let db_path = campaign_db(dir)?;
        let conn = schema::connect(&db_path, RO)?;
        let found = schema::check_version(&conn, &db_path)?;
        if found < SCHEMA_VERSION {
            return Err(StoreError::Corrupt {
                path: db_path,
                detail: format!(
                    "schema version {found} is older than this art's {SCHEMA_VERSION}; \
                     open the campaign for writing once (resume it) to upgrade it"
                ),
            });
        }
        Ok(Store {
            conn,
            dir: dir.to_path_buf(),
            db_path,
            images: ImageWriter::default(),
            read_only: true,
            _lock: None,
        })
    }

    /// The campaign folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Where the image with this SHA-256 lives (whether or not it exists).
    pub fn image_path(&self, sha256: &str) -> PathBuf {
        images::image_path(&self.dir, sha256)
    }

    /// A reader of this campaign's image files that can be shared across threads (the store
    /// itself holds a SQLite connection, which cannot).
    pub fn image_reader(&self) -> ImageReader {
        ImageReader {
            dir: self.dir.clone(),
        }
    }

    /// Reads and decodes a stored image. [`StoreError::Image`] if the file is missing or is not
    /// an 8-bit RGB PNG.
    pub fn read_image(&self, sha256: &str) -> Result<Image, StoreError> {
        images::read_image(&self.dir, sha256)
    }

    pub(crate) fn sqlite_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.db_path.clone(),
            source,
        }
    }

    pub(crate) fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.db_path.clone(),
            detail,
        }
    }

    /// Refuses writes through a read-only store before anything (image files included) is
    /// written.
    pub(crate) fn ensure_writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY);
            let msg = "the store was opened read-only".to_string();
            return Err(self.sqlite_err(rusqlite::Error::SqliteFailure(code, Some(msg))));
        }
        Ok(())
    }
}

/// `path` exists; errors other than "not found" are reported.
fn exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists().map_err(|e| StoreError::io(path, e))
}

/// The database of the campaign in `dir`, or [`StoreError::NotACampaign`].
fn campaign_db(dir: &Path) -> Result<PathBuf, StoreError> {
    let db_path = dir.join(DB_FILE);
    match fs::metadata(&db_path) {
        Ok(m) if m.is_file() => Ok(db_path),
        Ok(_) => Err(StoreError::NotACampaign {
            path: dir.to_path_buf(),
        }),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Err(StoreError::NotACampaign {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => Err(StoreError::io(db_path, e)),
    }
}

/// Undoes a failed [`Store::create`]: removes the database files and lock file it created
/// (while still holding the lock, so nobody else can have started using them), then the folder
/// if it created that and it is empty.
struct CreateGuard {
    dir: Option<PathBuf>,
    lock_file: Option<PathBuf>,
    db_files: Vec<PathBuf>,
    lock: Option<WriterLock>,
}

impl CreateGuard {
    /// The create succeeded: keep everything, hand over the lock.
    fn disarm(mut self) -> Option<WriterLock> {
        self.dir = None;
        self.lock_file = None;
        self.db_files.clear();
        self.lock.take()
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        for p in self.db_files.iter().chain(&self.lock_file) {
            let _ = fs::remove_file(p);
        }
        drop(self.lock.take());
        if let Some(dir) = &self.dir {
            let _ = fs::remove_dir(dir); // only succeeds if empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Store>();
    }

    #[test]
    fn a_failed_create_removes_what_it_made() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("new");
        fs::create_dir(&dir).unwrap();
        let keep = dir.join("art.db-journal");
        fs::write(&keep, b"not ours").unwrap();
        let lock = lock::acquire(&dir).unwrap();
        let db = dir.join(DB_FILE);
        fs::write(&db, b"half").unwrap();
        let guard = CreateGuard {
            dir: Some(dir.clone()),
            lock_file: Some(dir.join(LOCK_FILE)),
            db_files: vec![db.clone()],
            lock: Some(lock),
        };
        drop(guard);
        assert!(!db.exists());
        assert!(!dir.join(LOCK_FILE).exists());
        assert!(keep.exists(), "files the call did not create stay");
        assert!(dir.exists(), "a folder that is not empty stays");
        fs::remove_file(&keep).unwrap();
        let guard = CreateGuard {
            dir: Some(dir.clone()),
            lock_file: None,
            db_files: vec![],
            lock: None,
        };
        drop(guard);
        assert!(!dir.exists(), "an empty folder the call created goes");
    }

    #[test]
    fn a_disarmed_guard_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        fs::write(&db, b"x").unwrap();
        let guard = CreateGuard {
            dir: Some(dir.path().to_path_buf()),
            lock_file: None,
            db_files: vec![db.clone()],
            lock: Some(lock::acquire(dir.path()).unwrap()),
        };
        let lock = guard.disarm();
        assert!(lock.is_some());
        assert!(db.exists());
    }
}
