//! The shared Store/Blobs contract, run against the local adapters.

use firewatch_domain::contract::{blobs_suite, bounds_suite, store_suite};
use firewatch_local::{EmbeddedStore, MemBlobs};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_store_on_disk_meets_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("db")).unwrap();
    store_suite(Arc::new(store), "contract").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_memory_store_meets_the_store_contract() {
    store_suite(Arc::new(EmbeddedStore::in_memory().unwrap()), "contract").await;
}

#[tokio::test]
async fn the_embedded_store_on_disk_meets_the_blobs_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("db")).unwrap();
    blobs_suite(Arc::new(store), "contract").await;
}

#[tokio::test]
async fn the_in_memory_store_meets_the_blobs_contract() {
    blobs_suite(Arc::new(EmbeddedStore::in_memory().unwrap()), "contract").await;
}

#[tokio::test]
async fn blobs_survive_reopening_the_store() {
    use firewatch_domain::ports::Blobs;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let s = EmbeddedStore::open(&path).unwrap();
        s.put("envelopes/t/a.json", b"kept".to_vec(), "application/json")
            .await
            .unwrap();
    }
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        s.get("envelopes/t/a.json").await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );
}

#[tokio::test]
async fn blobs_kept_as_files_by_an_older_data_dir_move_into_the_store() {
    use firewatch_domain::ports::Blobs;
    let dir = tempfile::tempdir().unwrap();
    // A data dir whose own path looks like a temporary name is still read.
    let data = dir.path().join("fw.tmp.1");
    let root = data.join("blobs");
    std::fs::create_dir_all(root.join("envelopes/acme")).unwrap();
    std::fs::write(root.join("envelopes/acme/abc.json"), b"{\"old\":1}").unwrap();
    std::fs::write(root.join("envelopes/acme/abc.tmp.1.2"), b"half").unwrap();
    let path = data.join("firewatch.db");
    assert_eq!(EmbeddedStore::import_blob_dir(&path, &root).unwrap(), 1);
    assert!(!root.exists(), "the old directory is gone once imported");
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        s.get("envelopes/acme/abc.json").await.unwrap().as_deref(),
        Some(&b"{\"old\":1}"[..])
    );
    // A second start finds nothing to import.
    assert_eq!(EmbeddedStore::import_blob_dir(&path, &root).unwrap(), 0);

    // A file that is not a valid blob key is not imported, and so the
    // directory that holds it is not deleted.
    std::fs::create_dir_all(root.join("envelopes")).unwrap();
    std::fs::write(root.join("envelopes/ok.json"), b"1").unwrap();
    std::fs::write(root.join("envelopes/bad key.json"), b"2").unwrap();
    assert_eq!(EmbeddedStore::import_blob_dir(&path, &root).unwrap(), 1);
    assert!(root.join("envelopes/bad key.json").exists(), "nothing lost");
}

#[tokio::test]
async fn memory_blobs_meet_the_blobs_contract() {
    blobs_suite(Arc::new(MemBlobs::default()), "contract").await;
}

#[tokio::test]
async fn data_survives_reopening_the_store() {
    use firewatch_domain::ports::{Condition, Item, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let s = EmbeddedStore::open(&path).unwrap();
        let item = Item {
            pk: "t#X".into(),
            sk: "a".into(),
            version: 1,
            expires_at: None,
            data: "kept".into(),
            kind: None,
        };
        s.put(item, Condition::Absent).await.unwrap();
    }
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(s.get("t#X", "a").await.unwrap().unwrap().data, "kept");
}

#[tokio::test]
async fn a_database_from_before_item_kinds_opens_with_its_items() {
    use firewatch_domain::ports::{Condition, Item, ItemKind, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        // The items table as earlier versions created it: no kind column.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, version INTEGER NOT NULL,
               expires_at INTEGER, data TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID;
             INSERT INTO items VALUES ('t#OUTBOX', 'a', 1, NULL, 'old');",
        )
        .unwrap();
    }
    let s = EmbeddedStore::open(&path).unwrap();
    let old = s.get("t#OUTBOX", "a").await.unwrap().unwrap();
    assert_eq!((old.data.as_str(), old.kind), ("old", None));
    let item = Item {
        pk: "t#OUTBOX".into(),
        sk: "b".into(),
        version: 1,
        expires_at: None,
        data: "new".into(),
        kind: Some(ItemKind::Outbox),
    };
    s.put(item, Condition::Absent).await.unwrap();
    drop(s);
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        s.get("t#OUTBOX", "b").await.unwrap().unwrap().kind,
        Some(ItemKind::Outbox)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_cases_a_sender_can_send_fit_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("db")).unwrap();
    bounds_suite(firewatch_domain::Services::new(
        Arc::new(store),
        Arc::new(MemBlobs::default()),
    ))
    .await;
}

#[tokio::test]
async fn expired_items_are_purged_from_disk_by_the_writer() {
    use firewatch_domain::ports::{Condition, Item, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let item = |sk: &str, expires_at| Item {
        pk: "t#TTL".into(),
        sk: sk.into(),
        version: 1,
        expires_at,
        data: "x".into(),
        kind: None,
    };
    {
        let s = EmbeddedStore::open(&path).unwrap();
        s.put(item("old", Some(1)), Condition::Always)
            .await
            .unwrap();
        s.put(item("keep", None), Condition::Always).await.unwrap();
    }
    let s = EmbeddedStore::open(&path).unwrap();
    // The first write after opening purges what expired.
    s.put(item("new", None), Condition::Always).await.unwrap();
    assert_eq!(
        s.purge_expired().await.unwrap(),
        0,
        "the expired item was already deleted"
    );
    assert!(s.get("t#TTL", "keep").await.unwrap().is_some());
}
