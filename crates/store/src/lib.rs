//! `art-store`: where a campaign lives on disk.
//!
//! A campaign is a folder `DIR` holding
//!
//! * `DIR/art.db`: SQLite in WAL mode (`synchronous=NORMAL`, foreign keys on, 5 s busy
//!   timeout) with the campaign row, its lanes, every committed round and every judgment;
//! * `DIR/images/<first 2 hex>/<sha256>.png`: the rendered images, named by the SHA-256 of the
//!   PNG file, so identical images are stored once;
//! * `DIR/lock`: the writer lock. One process writes a campaign at a time; any number may read
//!   it meanwhile.
//!
//! The unit of commit is the round ([`commit_rounds`](Store::commit_rounds)): a run that is
//! killed loses at most the batch in flight, and `resume` continues each lane after its last
//! committed round. Modules:
//!
//! * [`records`]: the row types;
//! * `store`: creating and opening a folder, locking, read-only access;
//! * `schema`: the schema version and migrations;
//! * `lanes`: the campaign row and lanes; `rounds`: rounds and judgments; `evals`: the
//!   evaluation protocol's re-renders;
//! * `images`: PNG encoding and the content-addressed image files; `lock`: the writer lock;
//! * `error`: [`StoreError`].

mod error;
mod evals;
mod images;
mod lanes;
mod lock;
pub mod records;
mod rounds;
mod schema;
mod store;

pub use error::StoreError;
pub use images::{IMAGES_DIR, encode_png};
pub use lock::LOCK_FILE;
pub use records::*;
pub use schema::SCHEMA_VERSION;
pub use store::{ImageReader, Store};

/// The database file inside a campaign folder.
pub const DB_FILE: &str = "art.db";
