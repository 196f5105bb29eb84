//! [`EmbeddedStore`]: the [`Store`] port on SQLite.
//!
//! One table of `(pk, sk) → (version, expires_at, data, kind)`. All writes go to
//! one writer thread that owns the write connection and commits in groups:
//! it takes every transaction waiting in its queue, applies each inside its
//! own SAVEPOINT (checking its conditions against everything applied before
//! it, so a failed condition rolls back only that transaction), then commits
//! the group once. Writers are therefore serialised, as DynamoDB's
//! conditional writes are per item, while the disk sees one commit per group
//! instead of one per transaction. Reads use a small pool of read-only
//! connections that see the last committed state (WAL snapshot isolation).
//!
//! Durability: by default WAL with `synchronous=FULL`, so a write is on the
//! disk (the WAL fsynced) before its caller is answered, and an API that
//! answered 202 has kept the alert through a power cut. The group commit
//! pays one fsync per group, not per transaction. [`Durability::Normal`]
//! (`FIREWATCH_SQLITE_SYNCHRONOUS=normal`) survives a process crash only.
//!
//! Expired items are invisible to reads and conditions at once, and are
//! deleted by the writer at most once a minute, inside a group commit.
//!
//! The store is also the [`Blobs`] port of `firewatch dev`: a blob (a
//! webhook's raw envelope) is a row of its own table, written by the same
//! writer in the same group commits, so concurrent webhooks share one
//! durable flush for their envelopes and their changes alike. A blob put
//! queued before a transaction commits in the same group or an earlier
//! one, never after it.

use async_trait::async_trait;
use firewatch_domain::ports::{
    check_blob_key, BlobError, Blobs, Condition, Item, ItemKind, Page, Query, Store, StoreError,
    WriteOp,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// The most writes one transaction may carry, as in DynamoDB.
pub const MAX_TRANSACTION_OPS: usize = 100;

/// Transactions committed together at most.
const MAX_GROUP: usize = 512;

/// Read connections of a file-backed store.
const READERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    data TEXT NOT NULL,
    kind TEXT,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
";

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Transact(Vec<WriteOp>, Reply<()>),
    Get(String, String, Reply<Option<Item>>),
    Query(Query, Reply<Page>),
    Purge(Reply<usize>),
    PutBlob(String, Vec<u8>, Reply<()>),
    GetBlob(String, Reply<Option<Vec<u8>>>),
}

/// The embedded store. Cheap to share behind an `Arc`.
pub struct EmbeddedStore {
    writer: mpsc::Sender<Job>,
    /// Read-only connections; empty for an in-memory store, whose reads go
    /// through the writer (a private in-memory database has one connection).
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn gone() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".into())
}

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// On the disk before the caller is answered (`synchronous=FULL`).
    #[default]
    Full,
    /// Survives a process crash; a power cut may lose the last commits.
    Normal,
}

impl Durability {
    /// Parses `full` or `normal` (`FIREWATCH_SQLITE_SYNCHRONOUS`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Some(Self::Full),
            "normal" => Some(Self::Normal),
            _ => None,
        }
    }
}

/// How often the writer deletes expired items.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl EmbeddedStore {
    /// Opens (or creates) the database file at `path`, fully durable.
    pub fn open(path: &Path) -> Result<Self, String> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (or creates) the database file at `path`.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, String> {
        let ctx = |e: rusqlite::Error| format!("cannot open {}: {e}", path.display());
        let conn = Connection::open(path).map_err(ctx)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000;
             PRAGMA cache_size=-8000; PRAGMA temp_store=MEMORY;"
        ))
        .map_err(ctx)?;
        prepare_schema(&conn).map_err(ctx)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(ctx)?;
            r.execute_batch("PRAGMA busy_timeout=5000; PRAGMA cache_size=-2000;")
                .map_err(ctx)?;
            readers.push(Mutex::new(r));
        }
        Self::start(conn, readers)
    }

    /// Moves the blobs of a data directory from before blobs lived in the
    /// store (files under `root`, keyed by their relative path) into the
    /// database at `path`, in one transaction, then removes `root`. A data
    /// directory without `root` is left as it is. A file whose path is not a
    /// valid blob key is not imported, and then `root` is kept (nothing is
    /// deleted that was not moved; the next start imports the rest again,
    /// which changes nothing). Answers how many moved.
    pub fn import_blob_dir(path: &Path, root: &Path) -> Result<usize, String> {
        if !root.is_dir() {
            return Ok(0);
        }
        let ctx = |e: rusqlite::Error| format!("cannot import blobs into {}: {e}", path.display());
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(d) = dirs.pop() {
            let entries =
                std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            for entry in entries {
                let p = entry.map_err(|e| e.to_string())?.path();
                // A half-written blob from before (`<name>.tmp.<pid>.<n>`)
                // was never linked: left out.
                let temporary = p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(".tmp."));
                if p.is_dir() {
                    dirs.push(p);
                } else if !temporary {
                    files.push(p);
                }
            }
        }
        let mut conn = Connection::open(path).map_err(ctx)?;
        prepare_schema(&conn).map_err(ctx)?;
        let tx = conn.transaction().map_err(ctx)?;
        let mut moved = 0;
        for f in &files {
            let key = f
                .strip_prefix(root)
                .ok()
                .and_then(|k| k.to_str())
                .map(|k| k.replace(std::path::MAIN_SEPARATOR, "/"))
                .filter(|k| check_blob_key(k).is_ok());
            let Some(key) = key else { continue };
            let bytes =
                std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            write_blob(&tx, &key, &bytes).map_err(|e| e.to_string())?;
            moved += 1;
        }
        tx.commit().map_err(ctx)?;
        if moved == files.len() {
            std::fs::remove_dir_all(root)
                .map_err(|e| format!("cannot remove {}: {e}", root.display()))?;
        }
        Ok(moved)
    }

    /// A private database in memory.
    pub fn in_memory() -> Result<Self, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        prepare_schema(&conn).map_err(|e| e.to_string())?;
        Self::start(conn, Vec::new())
    }

    fn start(conn: Connection, readers: Vec<Mutex<Connection>>) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("firewatch-store".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| format!("cannot start the store writer: {e}"))?;
        Ok(Self {
            writer: tx,
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer.send(job(reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Runs `f` on a read connection, or `None` when reads go to the writer.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        if self.readers.is_empty() {
            return None;
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        // A poisoned lock only means a reader panicked mid-read; the
        // connection itself is still sound.
        let conn = self.readers[i].lock().unwrap_or_else(|p| p.into_inner());
        Some(f(&conn))
    }

    /// Deletes items whose TTL passed; reads already ignore them.
    pub async fn purge_expired(&self) -> Result<usize, StoreError> {
        self.ask(Job::Purge).await
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    // Purge at the first write after opening, then at most every minute.
    let mut last_purge: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let now = now_secs();
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                for job in batch {
                    fail(job, StoreError::Unavailable(format!("sqlite: {e}")));
                }
                continue;
            }
        };
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(std::time::Instant::now());
            if let Err(e) = tx.execute(
                "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [now],
            ) {
                tracing::warn!(error = %e, "purging expired items failed");
            }
        }
        let mut pending: Vec<(Reply<()>, Result<(), StoreError>)> = Vec::new();
        for job in batch {
            // An error SQLite answers by rolling the whole transaction back
            // (a full disk, an I/O error) leaves the connection in autocommit:
            // the group is lost, and running the rest would commit each of
            // them on its own behind the failing COMMIT below.
            if tx.is_autocommit() {
                fail(
                    job,
                    StoreError::Unavailable(
                        "sqlite: the group's transaction was rolled back".into(),
                    ),
                );
                continue;
            }
            match job {
                Job::Transact(ops, reply) => {
                    let result = apply_group_member(&mut tx, &ops, now);
                    pending.push((reply, result));
                }
                Job::Get(pk, sk, reply) => {
                    let _ = reply.send(get_on(&tx, &pk, &sk, now));
                }
                Job::Query(q, reply) => {
                    let _ = reply.send(query_on(&tx, &q, now));
                }
                Job::Purge(reply) => {
                    let r = tx
                        .execute(
                            "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                            [now],
                        )
                        .map_err(unavailable);
                    let _ = reply.send(r);
                }
                Job::PutBlob(key, bytes, reply) => {
                    pending.push((reply, write_blob(&tx, &key, &bytes)));
                }
                Job::GetBlob(key, reply) => {
                    let _ = reply.send(get_blob_on(&tx, &key));
                }
            }
        }
        match tx.commit() {
            Ok(()) => {
                for (reply, result) in pending {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for (reply, _) in pending {
                    let _ = reply.send(Err(StoreError::Unavailable(format!("sqlite: {e}"))));
                }
            }
        }
    }
}

fn fail(job: Job, e: StoreError) {
    match job {
        Job::Transact(_, r) => drop(r.send(Err(e))),
        Job::Get(_, _, r) => drop(r.send(Err(e))),
        Job::Query(_, r) => drop(r.send(Err(e))),
        Job::Purge(r) => drop(r.send(Err(e))),
        Job::PutBlob(_, _, r) => drop(r.send(Err(e))),
        Job::GetBlob(_, r) => drop(r.send(Err(e))),
    }
}

/// Applies one transaction of a group inside its own savepoint: all of its
/// writes, or none of them when a condition fails.
fn apply_group_member(
    tx: &mut rusqlite::Transaction<'_>,
    ops: &[WriteOp],
    now: i64,
) -> Result<(), StoreError> {
    let mut sp = tx.savepoint().map_err(unavailable)?;
    for (i, op) in ops.iter().enumerate() {
        let (pk, sk) = op_key(op);
        let cond = match op {
            WriteOp::Put { condition, .. }
            | WriteOp::Delete { condition, .. }
            | WriteOp::Check { condition, .. } => *condition,
        };
        if !holds(&sp, pk, sk, cond, now)? {
            sp.rollback().map_err(unavailable)?;
            return Err(StoreError::ConditionFailed { index: Some(i) });
        }
        match op {
            WriteOp::Put { item, .. } => write_put(&sp, item)?,
            WriteOp::Delete { pk, sk, .. } => write_delete(&sp, pk, sk)?,
            WriteOp::Check { .. } => {}
        }
    }
    sp.commit().map_err(unavailable)
}

/// The live version at a key, if any.
fn live_version(
    conn: &Connection,
    pk: &str,
    sk: &str,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached(
        "SELECT version FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
    )
    .and_then(|mut st| st.query_row(params![pk, sk, now], |r| r.get::<_, i64>(0)).optional())
    .map(|v| v.map(|v| v as u64))
    .map_err(unavailable)
}

fn holds(
    conn: &Connection,
    pk: &str,
    sk: &str,
    cond: Condition,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(match cond {
        Condition::Always => true,
        Condition::Absent => live_version(conn, pk, sk, now)?.is_none(),
        Condition::Version(v) => live_version(conn, pk, sk, now)? == Some(v),
    })
}

/// Creates the tables, and adds what a database from an earlier version
/// lacks (the `kind` column).
fn prepare_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    let has_kind: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('items') WHERE name = 'kind'",
        [],
        |r| r.get(0),
    )?;
    if !has_kind {
        match conn.execute_batch("ALTER TABLE items ADD COLUMN kind TEXT") {
            // Another process opening the same database added it first.
            Err(e) if e.to_string().contains("duplicate column") => {}
            other => other?,
        }
    }
    Ok(())
}

fn write_put(conn: &Connection, item: &Item) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO items (pk, sk, version, expires_at, data, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (pk, sk) DO UPDATE SET version = excluded.version,
           expires_at = excluded.expires_at, data = excluded.data, kind = excluded.kind",
    )
    .and_then(|mut st| {
        st.execute(params![
            item.pk,
            item.sk,
            item.version as i64,
            item.expires_at,
            item.data,
            item.kind.map(ItemKind::as_str)
        ])
    })
    .map(|_| ())
    .map_err(unavailable)
}

fn kind_of(stored: Option<String>) -> Option<ItemKind> {
    stored.as_deref().and_then(ItemKind::parse)
}

fn write_delete(conn: &Connection, pk: &str, sk: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut st| st.execute(params![pk, sk]))
        .map(|_| ())
        .map_err(unavailable)
}

fn get_on(conn: &Connection, pk: &str, sk: &str, now: i64) -> Result<Option<Item>, StoreError> {
    conn.prepare_cached(
        "SELECT version, expires_at, data, kind FROM items
         WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
    )
    .and_then(|mut st| {
        st.query_row(params![pk, sk, now], |r| {
            Ok(Item {
                pk: pk.to_owned(),
                sk: sk.to_owned(),
                version: r.get::<_, i64>(0)? as u64,
                expires_at: r.get(1)?,
                data: r.get(2)?,
                kind: kind_of(r.get(3)?),
            })
        })
        .optional()
    })
    .map_err(unavailable)
}

fn query_on(conn: &Connection, q: &Query, now: i64) -> Result<Page, StoreError> {
    let limit = q.limit.clamp(1, 1000);
    // Every key with the prefix sorts below prefix + U+10FFFF.
    let upper = (!q.sk_prefix.is_empty()).then(|| format!("{}\u{10FFFF}", q.sk_prefix));
    let sql = if q.descending {
        "SELECT sk, version, expires_at, data, kind FROM items
         WHERE pk = ?1 AND sk >= ?2 AND (?3 IS NULL OR sk < ?3) AND (?4 IS NULL OR sk < ?4)
           AND (expires_at IS NULL OR expires_at > ?5)
         ORDER BY sk DESC LIMIT ?6"
    } else {
        "SELECT sk, version, expires_at, data, kind FROM items
         WHERE pk = ?1 AND sk >= ?2 AND (?3 IS NULL OR sk < ?3) AND (?4 IS NULL OR sk > ?4)
           AND (expires_at IS NULL OR expires_at > ?5)
         ORDER BY sk ASC LIMIT ?6"
    };
    let mut st = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = st
        .query_map(
            params![q.pk, q.sk_prefix, upper, q.after, now, (limit + 1) as i64],
            |r| {
                Ok(Item {
                    pk: q.pk.clone(),
                    sk: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u64,
                    expires_at: r.get(2)?,
                    data: r.get(3)?,
                    kind: kind_of(r.get(4)?),
                })
            },
        )
        .map_err(unavailable)?;
    let mut items = rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|i| i.sk.clone())
    } else {
        None
    };
    Ok(Page { items, next })
}

fn write_blob(conn: &Connection, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO blobs (key, data) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![key, bytes]))
        .map(|_| ())
        .map_err(unavailable)
}

fn get_blob_on(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT data FROM blobs WHERE key = ?1")
        .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
        .map_err(unavailable)
}

fn blob_error(e: StoreError) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

fn op_key(op: &WriteOp) -> (&str, &str) {
    match op {
        WriteOp::Put { item, .. } => (&item.pk, &item.sk),
        WriteOp::Delete { pk, sk, .. } | WriteOp::Check { pk, sk, .. } => (pk, sk),
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        if let Some(r) = self.read(|c| get_on(c, pk, sk, now_secs())) {
            return r;
        }
        self.ask(|reply| Job::Get(pk.to_owned(), sk.to_owned(), reply))
            .await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.transact(vec![WriteOp::Put { item, condition }]).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        self.transact(vec![WriteOp::Delete {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            condition,
        }])
        .await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
            return Err(StoreError::Invalid(format!(
                "a transaction holds 1 to {MAX_TRANSACTION_OPS} writes, got {}",
                ops.len()
            )));
        }
        let mut seen = HashSet::new();
        if !ops.iter().all(|op| seen.insert(op_key(op))) {
            return Err(StoreError::Invalid(
                "a transaction writes the same key twice".into(),
            ));
        }
        self.ask(|reply| Job::Transact(ops, reply)).await
    }

    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        let q = match self.read(|c| query_on(c, &q, now_secs())) {
            Some(r) => return r,
            None => q,
        };
        self.ask(|reply| Job::Query(q, reply)).await
    }
}

#[async_trait]
impl Blobs for EmbeddedStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), BlobError> {
        check_blob_key(key)?;
        self.ask(|reply| Job::PutBlob(key.to_owned(), bytes, reply))
            .await
            .map_err(blob_error)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_blob_key(key)?;
        if let Some(r) = self.read(|c| get_blob_on(c, key)) {
            return r.map_err(blob_error);
        }
        self.ask(|reply| Job::GetBlob(key.to_owned(), reply))
            .await
            .map_err(blob_error)
    }
}
