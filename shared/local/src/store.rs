//! [`EmbeddedStore`]: the [`Store`] port on SQLite.
//!
//! One table of `(pk, sk) → (version, expires_at, data)`. Every operation
//! runs under one connection lock, and a transaction is a SQLite transaction,
//! so conditions are checked and writes applied atomically: the same
//! guarantees DynamoDB gives, which the shared contract suite checks.
//! WAL with `synchronous=NORMAL` survives a process crash; a power cut may
//! lose the last few milliseconds of commits.

use async_trait::async_trait;
use firewatch_domain::ports::{Condition, Item, Page, Query, Store, StoreError, WriteOp};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The most writes one transaction may carry, as in DynamoDB.
pub const MAX_TRANSACTION_OPS: usize = 100;

/// The embedded store. Cheap to share behind an `Arc`.
pub struct EmbeddedStore {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    data TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

impl EmbeddedStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, String> {
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| format!("cannot configure {}: {e}", path.display()))?;
        Self::init(conn)
    }

    /// A private database in memory.
    pub fn in_memory() -> Result<Self, String> {
        Self::init(Connection::open_in_memory().map_err(|e| e.to_string())?)
    }

    fn init(conn: Connection) -> Result<Self, String> {
        conn.execute_batch(SCHEMA)
            .map_err(|e| format!("cannot create schema: {e}"))?;
        let store = Self {
            conn: Mutex::new(conn),
        };
        store.purge_expired().map_err(|e| e.to_string())?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied SQLite
        // transaction behind (it rolls back on drop), so the data is sound.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deletes items whose TTL passed; reads already ignore them.
    pub fn purge_expired(&self) -> Result<usize, StoreError> {
        self.lock()
            .execute(
                "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [now_secs()],
            )
            .map_err(unavailable)
    }
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

fn write_put(conn: &Connection, item: &Item) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO items (pk, sk, version, expires_at, data) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (pk, sk) DO UPDATE SET version = excluded.version,
           expires_at = excluded.expires_at, data = excluded.data",
    )
    .and_then(|mut st| {
        st.execute(params![
            item.pk,
            item.sk,
            item.version as i64,
            item.expires_at,
            item.data
        ])
    })
    .map(|_| ())
    .map_err(unavailable)
}

fn write_delete(conn: &Connection, pk: &str, sk: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut st| st.execute(params![pk, sk]))
        .map(|_| ())
        .map_err(unavailable)
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
        let conn = self.lock();
        conn.prepare_cached(
            "SELECT version, expires_at, data FROM items
             WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .and_then(|mut st| {
            st.query_row(params![pk, sk, now_secs()], |r| {
                Ok(Item {
                    pk: pk.to_owned(),
                    sk: sk.to_owned(),
                    version: r.get::<_, i64>(0)? as u64,
                    expires_at: r.get(1)?,
                    data: r.get(2)?,
                })
            })
            .optional()
        })
        .map_err(unavailable)
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
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        for (i, op) in ops.iter().enumerate() {
            let (pk, sk) = op_key(op);
            let cond = match op {
                WriteOp::Put { condition, .. }
                | WriteOp::Delete { condition, .. }
                | WriteOp::Check { condition, .. } => *condition,
            };
            if !holds(&tx, pk, sk, cond, now)? {
                // Dropping `tx` rolls back the writes already made.
                return Err(StoreError::ConditionFailed { index: Some(i) });
            }
            match op {
                WriteOp::Put { item, .. } => write_put(&tx, item)?,
                WriteOp::Delete { pk, sk, .. } => write_delete(&tx, pk, sk)?,
                WriteOp::Check { .. } => {}
            }
        }
        tx.commit().map_err(unavailable)
    }

    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        let limit = q.limit.clamp(1, 1000);
        // Every key with the prefix sorts below prefix + U+10FFFF.
        let upper = if q.sk_prefix.is_empty() {
            None
        } else {
            Some(format!("{}\u{10FFFF}", q.sk_prefix))
        };
        let (cmp, order) = if q.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let sql = format!(
            "SELECT sk, version, expires_at, data FROM items
             WHERE pk = ?1 AND sk >= ?2 AND (?3 IS NULL OR sk < ?3)
               AND (?4 IS NULL OR sk {cmp} ?4)
               AND (expires_at IS NULL OR expires_at > ?5)
             ORDER BY sk {order} LIMIT ?6"
        );
        let conn = self.lock();
        let mut st = conn.prepare_cached(&sql).map_err(unavailable)?;
        let rows = st
            .query_map(
                params![
                    q.pk,
                    q.sk_prefix,
                    upper,
                    q.after,
                    now_secs(),
                    (limit + 1) as i64
                ],
                |r| {
                    Ok(Item {
                        pk: q.pk.clone(),
                        sk: r.get(0)?,
                        version: r.get::<_, i64>(1)? as u64,
                        expires_at: r.get(2)?,
                        data: r.get(3)?,
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
}
