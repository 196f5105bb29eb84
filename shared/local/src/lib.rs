//! The local adapters: what `firewatch dev` and the tests run on, with no
//! cloud account.
//!
//! - [`EmbeddedStore`]: the item store on SQLite (bundled, WAL mode), ACID,
//!   in a data directory or in memory.
//! - [`DirBlobs`]: blobs as files under a directory; [`MemBlobs`] in memory.

mod blobs;
mod console;
mod store;

use firewatch_domain::Services;
use std::path::Path;
use std::sync::Arc;

pub use blobs::{DirBlobs, MemBlobs};
pub use console::ConsoleChat;
pub use store::EmbeddedStore;

/// Services over a data directory: `firewatch.db` and `blobs/` inside it.
/// Creates the directory when missing.
pub fn services(dir: &Path) -> Result<Services, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
    let store = EmbeddedStore::open(&dir.join("firewatch.db"))?;
    let blobs = DirBlobs::new(dir.join("blobs"));
    Ok(Services::new(Arc::new(store), Arc::new(blobs)))
}

/// Services entirely in memory; for tests.
pub fn services_in_memory() -> Services {
    let store = EmbeddedStore::in_memory().expect("an in-memory SQLite database always opens");
    Services::new(Arc::new(store), Arc::new(MemBlobs::default()))
}
