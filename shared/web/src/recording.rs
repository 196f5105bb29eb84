//! Which table partitions each router reaches, recorded while the test
//! suite runs (debug builds only, and only with `FIREWATCH_RECORD_KEYS`
//! naming a directory): every store access a router's handlers make is
//! written there as `family action pk`, where the family is the directory
//! its source lives in (`functions/ingest` → `ingest`). The test command
//! checks each against the function's IAM policy in `infra/template.yaml`
//! (`tests/template_privileges.py --recorded DIR`), so a function's key
//! patterns cannot leave out what its code reaches.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use firewatch_domain::ports::{Condition, Item, Page, Query, Store, StoreError, WriteOp};
use firewatch_domain::Services;

/// `services` with a recording store, when `FIREWATCH_RECORD_KEYS` is set;
/// `source` is the path of the file that built the router.
pub fn wrap(services: Services, source: &str) -> Services {
    let Some(dir) = std::env::var_os("FIREWATCH_RECORD_KEYS") else {
        return services;
    };
    let mut parts = source.split(['/', '\\']);
    let family = loop {
        match parts.next() {
            Some("functions" | "bots") => break parts.next(),
            Some(_) => continue,
            None => break None,
        }
    };
    let Some(family) = family else {
        return services;
    };
    let path = std::path::Path::new(&dir).join(format!("{family}-{}.keys", std::process::id()));
    let inner = services.store.clone();
    let mut services = services;
    services.store = Arc::new(Recording {
        inner,
        family: family.to_owned(),
        path,
        seen: Mutex::new(HashSet::new()),
    });
    services
}

struct Recording {
    inner: Arc<dyn Store>,
    family: String,
    path: std::path::PathBuf,
    seen: Mutex<HashSet<(&'static str, String)>>,
}

impl Recording {
    fn note(&self, action: &'static str, pk: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.insert((action, pk.to_owned())) {
            return;
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = f.write_all(format!("{} {action} {pk}\n", self.family).as_bytes());
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
            match op {
                WriteOp::Put { item, .. } => self.note("PutItem", &item.pk),
                WriteOp::Delete { pk, .. } => self.note("DeleteItem", pk),
                WriteOp::Check { pk, .. } => self.note("ConditionCheckItem", pk),
            }
        }
        self.inner.transact(ops).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.note("Query", &query.pk);
        self.inner.query(query).await
    }
}
