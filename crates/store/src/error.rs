//! The one error type of the store.
//!
//! Every variant names the file or folder it is about, because the CLI prints these messages to
//! users as they are. [`StoreError::is_user_error`] separates what the user can fix (a folder in
//! use, a newer campaign, an unwritable output folder) from faults of the store itself, so the
//! CLI can pick its exit status without matching on variants.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database was written by a newer `art`. Nothing in it has been changed.
    #[error(
        "{} was written by a newer art (schema {found}, this art supports up to {supported}); \
         upgrade art to open it",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// Another process holds the campaign's writer lock. `holder` is what that process wrote
    /// into the lock file (`pid N`).
    #[error(
        "campaign {} is in use by another art process ({holder}); wait for it to finish or stop it",
        path.display()
    )]
    Locked { path: PathBuf, holder: String },
    /// The folder holds no campaign database.
    #[error("{} is not an art campaign (it has no {})", path.display(), crate::DB_FILE)]
    NotACampaign { path: PathBuf },
    /// `create` was pointed at a folder that already holds a campaign.
    #[error(
        "{} already holds an art campaign; resume it or choose another folder",
        path.display()
    )]
    AlreadyExists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be parsed back (unknown enum text, bad JSON, out-of-range
    /// number, missing campaign row...).
    #[error("database {} holds an unreadable value: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// A stored image is missing or not an 8-bit RGB PNG, or an image could not be stored.
    #[error("image {}: {detail}", path.display())]
    Image { path: PathBuf, detail: String },
}

impl StoreError {
    /// Whether the user can fix this (the CLI exits with status 2 for these): a newer or busy
    /// campaign, a folder that is not (or already is) a campaign, or an output location that
    /// cannot be written.
    pub fn is_user_error(&self) -> bool {
        match self {
            StoreError::NewerSchema { .. }
            | StoreError::Locked { .. }
            | StoreError::NotACampaign { .. }
            | StoreError::AlreadyExists { .. } => true,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::ReadOnlyFilesystem
            ),
            StoreError::Sqlite { .. } | StoreError::Corrupt { .. } | StoreError::Image { .. } => {
                false
            }
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_errors_are_the_ones_a_user_can_fix() {
        let p = PathBuf::from("/x");
        let io_err = |kind| StoreError::io(&p, io::Error::from(kind));
        assert!(io_err(io::ErrorKind::PermissionDenied).is_user_error());
        assert!(io_err(io::ErrorKind::NotADirectory).is_user_error());
        assert!(io_err(io::ErrorKind::ReadOnlyFilesystem).is_user_error());
        assert!(!io_err(io::ErrorKind::UnexpectedEof).is_user_error());
        assert!(StoreError::NotACampaign { path: p.clone() }.is_user_error());
        assert!(
            !StoreError::Corrupt {
                path: p.clone(),
                detail: "x".into()
            }
            .is_user_error()
        );
    }

    #[test]
    fn messages_name_the_path() {
        let e = StoreError::Locked {
            path: PathBuf::from("/runs/a"),
            holder: "pid 42".into(),
        };
        assert_eq!(
            e.to_string(),
            "campaign /runs/a is in use by another art process (pid 42); \
             wait for it to finish or stop it"
        );
        let e = StoreError::NewerSchema {
            path: PathBuf::from("/runs/a/art.db"),
            found: 3,
            supported: 1,
        };
        assert_eq!(
            e.to_string(),
            "/runs/a/art.db was written by a newer art (schema 3, this art supports up to 1); \
             upgrade art to open it"
        );
    }
}
