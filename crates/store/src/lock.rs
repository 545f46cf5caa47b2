//! The writer lock of a campaign folder (`DIR/lock`).
//!
//! Only one process may write a campaign at a time. The lock is an OS advisory lock
//! (`File::try_lock`, `flock` on Linux) on `DIR/lock`, held for as long as the [`Store`] keeps
//! the file open, so the OS releases it however the process ends (SIGKILL included) and no
//! stale-lock cleanup is ever needed. The file is never deleted: deleting it would let a second
//! process lock a fresh inode while the first still holds the old one. The lock holder writes
//! `pid N` into it so a refused process can say who is in the way.
//!
//! [`Store`]: crate::Store

use crate::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;

/// The name of the lock file inside a campaign folder.
pub const LOCK_FILE: &str = "lock";

/// A held writer lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

/// Takes the writer lock of `dir` without waiting. Creates `DIR/lock` if needed.
pub(crate) fn acquire(dir: &Path) -> Result<WriterLock, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false) // the holder's pid must survive a refused attempt
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // Best effort: the holder may not have written its pid yet.
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "pid unknown".to_string()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "pid {}", std::process::id()))
        .map_err(|e| StoreError::io(&path, e))?;
    Ok(WriterLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_in_the_same_process_is_refused_until_the_first_is_dropped() {
        // std's try_lock is flock() on Linux: locks belong to the open file description, so a
        // second open() of the same file conflicts even within one process.
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let contents = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(contents, format!("pid {}\n", std::process::id()));
        match acquire(dir.path()) {
            Err(StoreError::Locked { path, holder }) => {
                assert_eq!(path, dir.path());
                assert_eq!(holder, format!("pid {}", std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        // The refused attempt must not have wiped the holder's pid.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            contents
        );
        drop(first);
        let _again = acquire(dir.path()).unwrap();
    }
}
