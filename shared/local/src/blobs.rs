//! Blobs in memory ([`MemBlobs`]), for tests. `firewatch dev` keeps its
//! blobs in the embedded store.

use async_trait::async_trait;
use firewatch_domain::ports::{check_blob_key, BlobError, Blobs};
use std::collections::HashMap;
use std::sync::Mutex;

/// Blobs in memory; for tests.
#[derive(Default)]
pub struct MemBlobs(Mutex<HashMap<String, Vec<u8>>>);

#[async_trait]
impl Blobs for MemBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), BlobError> {
        check_blob_key(key)?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_blob_key(key)?;
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }
}
