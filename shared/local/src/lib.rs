//! The local adapters: what `firewatch dev` and the tests run on, with no
//! cloud account.
//!
//! - [`EmbeddedStore`]: the item store on SQLite (bundled, WAL mode), ACID,
//!   in a data directory or in memory; also the blob store, in the same
//!   database and group commits. [`MemBlobs`]: blobs in memory, for tests.

mod blobs;
mod console;
mod store;

use firewatch_domain::Services;
use std::path::Path;
use std::sync::Arc;

pub use blobs::MemBlobs;
pub use console::ConsoleChat;
pub use store::{Durability, EmbeddedStore};

/// Services over a data directory: `firewatch.db` inside it holds the items
/// and the blobs (a `blobs/` directory an older version left is moved in at
/// start). Creates the directory when missing. `FIREWATCH_SQLITE_SYNCHRONOUS`
/// (`full`, the default, or `normal`) sets the store's [`Durability`].
pub fn services(dir: &Path) -> Result<Services, String> {
    let durability = match std::env::var("FIREWATCH_SQLITE_SYNCHRONOUS") {
        Ok(v) => Durability::parse(&v)
            .ok_or_else(|| "FIREWATCH_SQLITE_SYNCHRONOUS must be `full` or `normal`".to_owned())?,
        Err(_) => Durability::Full,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
    let db = dir.join("firewatch.db");
    EmbeddedStore::import_blob_dir(&db, &dir.join("blobs"))?;
    let store = Arc::new(EmbeddedStore::open_with(&db, durability)?);
    Ok(Services::new(recorded(store.clone()), store))
}

/// Services entirely in memory; for tests.
pub fn services_in_memory() -> Services {
    let store = EmbeddedStore::in_memory().expect("an in-memory SQLite database always opens");
    Services::new(recorded(Arc::new(store)), Arc::new(MemBlobs::default()))
}

/// The store, recording which partitions each function's work reaches while
/// the tests run (`firewatch_domain::recording`; debug builds only).
fn recorded(store: Arc<EmbeddedStore>) -> Arc<dyn firewatch_domain::ports::Store> {
    #[cfg(debug_assertions)]
    return firewatch_domain::recording::wrap(store);
    #[cfg(not(debug_assertions))]
    store
}
