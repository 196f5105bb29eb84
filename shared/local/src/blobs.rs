//! Blobs on the local filesystem ([`DirBlobs`]) or in memory ([`MemBlobs`]).

use async_trait::async_trait;
use firewatch_domain::ports::{check_blob_key, BlobError, Blobs};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Makes temporary file names unique within the process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Blobs as files under a root directory. Writes go to a temporary file that
/// is renamed into place, so a reader never sees half a blob, and a put
/// returns only once the blob and its directory entry are on the disk.
///
/// Durability is paid in groups, as the embedded store's commits are: on
/// Linux every put waits for one `syncfs` of the blob filesystem that began
/// after its rename, so puts that arrive together share one flush instead of
/// two fsyncs each. Elsewhere each put fsyncs its file and its directory.
pub struct DirBlobs {
    root: PathBuf,
    #[cfg(target_os = "linux")]
    sync: GroupSync,
}

impl DirBlobs {
    pub fn new(root: PathBuf) -> Self {
        Self {
            #[cfg(target_os = "linux")]
            sync: GroupSync::start(root.clone()),
            root,
        }
    }
}

/// A thread that flushes the blob filesystem for every group of waiting puts.
#[cfg(target_os = "linux")]
struct GroupSync {
    tx: Mutex<std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), String>>>>,
}

#[cfg(target_os = "linux")]
impl GroupSync {
    fn start(root: PathBuf) -> Self {
        let (tx, rx) =
            std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<Result<(), String>>>();
        // Ends when the DirBlobs (the only sender) is dropped.
        std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                group.extend(rx.try_iter());
                let flushed = std::fs::File::open(&root)
                    .and_then(|dir| rustix::fs::syncfs(&dir).map_err(std::io::Error::from))
                    .map_err(|e| format!("cannot flush blobs to disk: {e}"));
                for waiter in group {
                    let _ = waiter.send(flushed.clone());
                }
            }
        });
        Self { tx: Mutex::new(tx) }
    }

    /// Returns once a flush that began after this call has finished.
    async fn durable(&self) -> Result<(), BlobError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(tx)
            .map_err(|_| BlobError::Unavailable("the blob flusher has stopped".into()))?;
        rx.await
            .map_err(|_| BlobError::Unavailable("the blob flusher has stopped".into()))?
            .map_err(BlobError::Unavailable)
    }
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

#[async_trait]
impl Blobs for DirBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), BlobError> {
        check_blob_key(key)?;
        let path = self.root.join(key);
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp.{}.{seq}", std::process::id()));
        // One blocking task for the filesystem calls.
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let parent = path.parent().map(Path::to_path_buf);
            if let Some(parent) = &parent {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            #[cfg(not(target_os = "linux"))]
            file.sync_data()?;
            drop(file);
            std::fs::rename(&tmp, &path)?;
            #[cfg(not(target_os = "linux"))]
            if let Some(parent) = parent {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| BlobError::Unavailable(e.to_string()))?
        .map_err(io)?;
        // The file and its directory entry reach the disk before the put
        // returns, so a blob that a committed change links to survives a
        // power cut.
        #[cfg(target_os = "linux")]
        self.sync.durable().await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_blob_key(key)?;
        match tokio::fs::read(self.root.join(key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }
}

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
