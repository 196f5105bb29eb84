//! Which table partitions each function reaches, recorded while the test
//! suite runs, so that every function's key patterns in
//! `infra/template.yaml` are checked against what its code does
//! (`tests/template_privileges.py --recorded DIR`).
//!
//! Every store access is attributed to the function that would make it on
//! AWS: a router's handlers to its family (`functions/ingest` → `ingest`,
//! set by `firewatch_web::finish`), and the work of the functions without a
//! router to their job, through [`scope`]: `job:stream` for the dispatcher
//! (the table stream's consumer), `job:retries` for the scheduler, and the
//! checking jobs by name (`job:heartbeats`, `job:smoke`, ...). The first
//! scope entered holds for everything below it, so the dispatch policy run
//! by the retries job counts as the retries job's.
//!
//! Only debug builds record, and only with `FIREWATCH_RECORD_KEYS` naming a
//! directory (the test command sets it); each process appends lines
//! `name action pk` to `<dir>/<name>-<pid>.keys`. Release builds keep
//! [`scope`] as a plain `await`.

use std::future::Future;

/// Runs `fut` as the work of `name` (a router family, or `job:<job>`),
/// unless it already runs inside another scope. In debug builds the future
/// is boxed, so the scopes add nothing to the (unoptimised) stack; release
/// builds return `fut` itself.
pub fn scope<F: Future>(name: &str, fut: F) -> impl Future<Output = F::Output> {
    #[cfg(debug_assertions)]
    {
        let name = name.to_owned();
        let fut = Box::pin(fut);
        async move {
            if SCOPE.try_with(|_| ()).is_err() {
                SCOPE.scope(name, fut).await
            } else {
                fut.await
            }
        }
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = name;
        fut
    }
}

#[cfg(debug_assertions)]
tokio::task_local! {
    static SCOPE: String;
}

#[cfg(debug_assertions)]
pub use recorder::wrap;

#[cfg(debug_assertions)]
mod recorder {
    use std::collections::HashSet;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::SCOPE;
    use crate::ports::{Condition, Item, Page, Query, Store, StoreError, WriteOp};

    /// `store`, recording each access under its scope when
    /// `FIREWATCH_RECORD_KEYS` is set (unchanged otherwise). Accesses made
    /// outside any scope are not recorded.
    pub fn wrap(store: Arc<dyn Store>) -> Arc<dyn Store> {
        match std::env::var_os("FIREWATCH_RECORD_KEYS") {
            Some(dir) => Arc::new(Recording {
                inner: store,
                dir: dir.into(),
                seen: Mutex::new(HashSet::new()),
            }),
            None => store,
        }
    }

    struct Recording {
        inner: Arc<dyn Store>,
        dir: std::path::PathBuf,
        seen: Mutex<HashSet<(String, &'static str, String)>>,
    }

    impl Recording {
        fn note(&self, action: &'static str, pk: &str) {
            let Ok(name) = SCOPE.try_with(Clone::clone) else {
                return;
            };
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.insert((name.clone(), action, pk.to_owned())) {
                return;
            }
            let file = format!("{}-{}.keys", name.replace(':', "-"), std::process::id());
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(file))
            {
                let _ = f.write_all(format!("{name} {action} {pk}\n").as_bytes());
            }
        }
    }

    #[async_trait]
    impl Store for Recording {
        async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
            self.note("GetItem", pk);
            self.inner.get(pk, sk).await
        }
        async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
            self.note("PutItem", &item.pk);
            self.inner.put(item, condition).await
        }
        async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
            self.note("DeleteItem", pk);
            self.inner.delete(pk, sk, condition).await
        }
        async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
            for op in &ops {
                let (pk, action) = op.target();
                self.note(action, pk);
            }
            self.inner.transact(ops).await
        }
        async fn query(&self, query: Query) -> Result<Page, StoreError> {
            self.note("Query", &query.pk);
            self.inner.query(query).await
        }
    }
}
