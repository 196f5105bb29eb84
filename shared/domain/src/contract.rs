//! The contract every [`Store`] and [`Blobs`] adapter must meet, as one suite
//! that each adapter crate runs against its own implementation. Keeping one
//! suite is what lets the domain trust the embedded store and DynamoDB alike.
//!
//! Each check panics with a message saying which guarantee broke.

use crate::ports::{Blobs, Condition, Item, ItemKind, Query, Store, StoreError, WriteOp};
use std::sync::Arc;

fn item(pk: &str, sk: &str, version: u64, data: &str) -> Item {
    Item {
        pk: pk.into(),
        sk: sk.into(),
        version,
        expires_at: None,
        data: data.into(),
        kind: None,
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs every store check. `ns` prefixes every key so that runs against a
/// shared server do not see each other's items.
pub async fn store_suite(store: Arc<dyn Store>, ns: &str) {
    put_if_absent_writes_once(&*store, ns).await;
    version_checks_refuse_stale_writers(&*store, ns).await;
    transactions_apply_all_or_nothing(&*store, ns).await;
    queries_page_in_sort_key_order_within_a_prefix(&*store, ns).await;
    expired_items_are_gone_for_reads_and_conditions(&*store, ns).await;
    concurrent_put_if_absent_has_one_winner(store.clone(), ns).await;
    concurrent_versioned_updates_lose_nothing(store.clone(), ns).await;
    an_items_kind_is_kept(&*store, ns).await;
}

/// Runs every blob check.
pub async fn blobs_suite(blobs: Arc<dyn Blobs>, ns: &str) {
    let key = format!("{ns}/envelopes/t/abc.json");
    assert_eq!(
        blobs.get(&key).await.unwrap(),
        None,
        "a missing blob reads as None"
    );
    blobs
        .put(&key, b"one".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(blobs.get(&key).await.unwrap().as_deref(), Some(&b"one"[..]));
    blobs
        .put(&key, b"two".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(
        blobs.get(&key).await.unwrap().as_deref(),
        Some(&b"two"[..]),
        "put replaces"
    );

    // Several MB, with every byte value, survive the round trip unchanged.
    let big: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let big_key = format!("{ns}/big/blob.bin");
    blobs
        .put(&big_key, big.clone(), "application/octet-stream")
        .await
        .unwrap();
    assert!(
        blobs.get(&big_key).await.unwrap() == Some(big),
        "a large blob round-trips"
    );

    for bad in ["../escape", "/abs", "a//b", "a/../b"] {
        assert!(
            blobs.put(bad, vec![1], "x").await.is_err(),
            "blob key {bad:?} must be refused"
        );
    }
}

async fn put_if_absent_writes_once(s: &dyn Store, ns: &str) {
    let pk = format!("{ns}#absent");
    s.put(item(&pk, "a", 1, "first"), Condition::Absent)
        .await
        .unwrap();
    let again = s.put(item(&pk, "a", 1, "second"), Condition::Absent).await;
    assert!(
        matches!(again, Err(StoreError::ConditionFailed { .. })),
        "second put-if-absent must fail: {again:?}"
    );
    assert_eq!(
        s.get(&pk, "a").await.unwrap().unwrap().data,
        "first",
        "the failed put changed nothing"
    );
    s.delete(&pk, "a", Condition::Version(1)).await.unwrap();
    assert_eq!(s.get(&pk, "a").await.unwrap(), None, "deleted");
    s.put(item(&pk, "a", 1, "again"), Condition::Absent)
        .await
        .unwrap();
}

async fn an_items_kind_is_kept(s: &dyn Store, ns: &str) {
    let pk = format!("{ns}#kinds");
    let with = |sk: &str, kind| Item {
        kind,
        ..item(&pk, sk, 1, "{}")
    };
    s.put(with("o", Some(ItemKind::Outbox)), Condition::Absent)
        .await
        .unwrap();
    s.transact(vec![
        WriteOp::Put {
            item: with("q", Some(ItemKind::QueuedAudit)),
            condition: Condition::Absent,
        },
        WriteOp::Put {
            item: with("n", None),
            condition: Condition::Absent,
        },
    ])
    .await
    .unwrap();
    let pk_ref = pk.as_str();
    let kind = |sk: &'static str| async move { s.get(pk_ref, sk).await.unwrap().unwrap().kind };
    assert_eq!(
        kind("o").await,
        Some(ItemKind::Outbox),
        "put keeps the kind"
    );
    assert_eq!(
        kind("q").await,
        Some(ItemKind::QueuedAudit),
        "so does a transaction"
    );
    assert_eq!(kind("n").await, None, "an item without a kind has none");
    let page = s.query(Query::all(&pk, 10)).await.unwrap();
    let kinds: Vec<_> = page.items.iter().map(|i| (i.sk.as_str(), i.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("n", None),
            ("o", Some(ItemKind::Outbox)),
            ("q", Some(ItemKind::QueuedAudit))
        ],
        "queries return the kind"
    );
    // Put over an item without a kind, the kind goes.
    s.put(with("o", None), Condition::Version(1)).await.unwrap();
    assert_eq!(kind("o").await, None, "a put replaces the kind");
}

async fn version_checks_refuse_stale_writers(s: &dyn Store, ns: &str) {
    let pk = format!("{ns}#version");
    s.put(item(&pk, "v", 1, "v1"), Condition::Absent)
        .await
        .unwrap();
    s.put(item(&pk, "v", 2, "v2"), Condition::Version(1))
        .await
        .unwrap();
    let stale = s
        .put(item(&pk, "v", 2, "stale"), Condition::Version(1))
        .await;
    assert!(
        matches!(stale, Err(StoreError::ConditionFailed { .. })),
        "a stale version must be refused"
    );
    let got = s.get(&pk, "v").await.unwrap().unwrap();
    assert_eq!((got.version, got.data.as_str()), (2, "v2"));
    let missing = s
        .put(item(&pk, "nope", 2, "x"), Condition::Version(1))
        .await;
    assert!(
        matches!(missing, Err(StoreError::ConditionFailed { .. })),
        "a version condition needs an item"
    );
    let del = s.delete(&pk, "v", Condition::Version(7)).await;
    assert!(
        matches!(del, Err(StoreError::ConditionFailed { .. })),
        "a conditional delete checks the version"
    );
}

async fn transactions_apply_all_or_nothing(s: &dyn Store, ns: &str) {
    let pk = format!("{ns}#tx");
    s.put(item(&pk, "held", 1, "held"), Condition::Absent)
        .await
        .unwrap();
    let failed = s
        .transact(vec![
            WriteOp::Put {
                item: item(&pk, "new", 1, "new"),
                condition: Condition::Absent,
            },
            WriteOp::Put {
                item: item(&pk, "held", 2, "x"),
                condition: Condition::Version(9),
            },
        ])
        .await;
    assert!(
        matches!(failed, Err(StoreError::ConditionFailed { .. })),
        "{failed:?}"
    );
    if let Err(StoreError::ConditionFailed { index: Some(i) }) = failed {
        assert_eq!(i, 1, "the failing write is named");
    }
    assert_eq!(
        s.get(&pk, "new").await.unwrap(),
        None,
        "no write of a failed transaction is applied"
    );

    let check_failed = s
        .transact(vec![
            WriteOp::Put {
                item: item(&pk, "new", 1, "new"),
                condition: Condition::Absent,
            },
            WriteOp::Check {
                pk: pk.clone(),
                sk: "held".into(),
                condition: Condition::Absent,
            },
        ])
        .await;
    assert!(
        matches!(check_failed, Err(StoreError::ConditionFailed { .. })),
        "a failing check fails the transaction"
    );
    assert_eq!(s.get(&pk, "new").await.unwrap(), None);

    s.transact(vec![
        WriteOp::Put {
            item: item(&pk, "new", 1, "new"),
            condition: Condition::Absent,
        },
        WriteOp::Check {
            pk: pk.clone(),
            sk: "held".into(),
            condition: Condition::Version(1),
        },
        WriteOp::Delete {
            pk: pk.clone(),
            sk: "held".into(),
            condition: Condition::Always,
        }
        .clone(),
    ])
    .await
    .expect_err("the same key twice in one transaction is refused");
    s.transact(vec![
        WriteOp::Put {
            item: item(&pk, "new", 1, "new"),
            condition: Condition::Absent,
        },
        WriteOp::Delete {
            pk: pk.clone(),
            sk: "held".into(),
            condition: Condition::Version(1),
        },
    ])
    .await
    .unwrap();
    assert!(s.get(&pk, "new").await.unwrap().is_some());
    assert!(s.get(&pk, "held").await.unwrap().is_none());
}

async fn queries_page_in_sort_key_order_within_a_prefix(s: &dyn Store, ns: &str) {
    let pk = format!("{ns}#query");
    for i in 0..25 {
        s.put(
            item(&pk, &format!("TL#{i:03}"), 1, &i.to_string()),
            Condition::Always,
        )
        .await
        .unwrap();
    }
    s.put(item(&pk, "OTHER", 1, "x"), Condition::Always)
        .await
        .unwrap();
    s.put(item(&pk, "TM", 1, "x"), Condition::Always)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .query(Query {
                pk: pk.clone(),
                sk_prefix: "TL#".into(),
                after,
                limit: 10,
                descending: false,
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 10, "a page holds at most limit items");
        seen.extend(page.items.iter().map(|i| i.sk.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("TL#{i:03}")).collect();
    assert_eq!(seen, expected, "pages cover the prefix once, in order");

    let desc = s
        .query(Query {
            pk: pk.clone(),
            sk_prefix: "TL#".into(),
            after: None,
            limit: 3,
            descending: true,
        })
        .await
        .unwrap();
    let sks: Vec<_> = desc.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(
        sks,
        ["TL#024", "TL#023", "TL#022"],
        "descending queries start at the end"
    );
    let rest = s
        .query(Query {
            pk: pk.clone(),
            sk_prefix: "TL#".into(),
            after: desc.next,
            limit: 100,
            descending: true,
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 22);
    assert_eq!(rest.next, None);
    let all = s
        .query(Query {
            pk,
            sk_prefix: String::new(),
            after: None,
            limit: 100,
            descending: false,
        })
        .await
        .unwrap();
    assert_eq!(
        all.items.len(),
        27,
        "an empty prefix reads the whole partition"
    );
    let other = s
        .query(Query::all(format!("{ns}#nothing-here"), 5))
        .await
        .unwrap();
    assert!(other.items.is_empty() && other.next.is_none());
}

async fn expired_items_are_gone_for_reads_and_conditions(s: &dyn Store, ns: &str) {
    let pk = format!("{ns}#ttl");
    let mut old = item(&pk, "old", 1, "old");
    old.expires_at = Some(now_secs() - 60);
    s.put(old, Condition::Always).await.unwrap();
    let mut live = item(&pk, "live", 1, "live");
    live.expires_at = Some(now_secs() + 3600);
    s.put(live, Condition::Always).await.unwrap();
    assert_eq!(
        s.get(&pk, "old").await.unwrap(),
        None,
        "an expired item is not returned"
    );
    let got = s.get(&pk, "live").await.unwrap().unwrap();
    assert!(got.expires_at.is_some(), "the TTL attribute is kept");
    let page = s.query(Query::all(&pk, 10)).await.unwrap();
    assert_eq!(page.items.len(), 1, "queries skip expired items");
    s.put(item(&pk, "old", 1, "reborn"), Condition::Absent)
        .await
        .expect("an expired item counts as absent");
}

async fn concurrent_put_if_absent_has_one_winner(s: Arc<dyn Store>, ns: &str) {
    for round in 0..5 {
        let pk = format!("{ns}#race{round}");
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let s = s.clone();
                let pk = pk.clone();
                tokio::spawn(async move {
                    s.put(item(&pk, "k", 1, &i.to_string()), Condition::Absent)
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => wins += 1,
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => panic!("unexpected error in a race: {e}"),
            }
        }
        assert_eq!(
            wins, 1,
            "exactly one of 50 racing put-if-absent writers wins (round {round})"
        );
    }
}

async fn concurrent_versioned_updates_lose_nothing(s: Arc<dyn Store>, ns: &str) {
    let pk = format!("{ns}#counter");
    s.put(item(&pk, "c", 1, "0"), Condition::Absent)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            let pk = pk.clone();
            tokio::spawn(async move {
                loop {
                    let cur = s.get(&pk, "c").await.unwrap().unwrap();
                    let n: u64 = cur.data.parse().unwrap();
                    let next = item(&pk, "c", cur.version + 1, &(n + 1).to_string());
                    match s.put(next, Condition::Version(cur.version)).await {
                        Ok(()) => return,
                        Err(StoreError::ConditionFailed { .. }) => tokio::task::yield_now().await,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let end = s.get(&pk, "c").await.unwrap().unwrap();
    assert_eq!(end.data, "20", "20 racing increments all land");
    assert_eq!(end.version, 21);
}

/// The worst cases a sender can produce within the body cap, run through the
/// real ingest and incident paths on `svc`'s store: none may fail for its
/// size, and the incidents they make must stay changeable. `svc` should be
/// fresh services over the adapter under test (any blobs will do).
pub async fn bounds_suite(svc: crate::Services) {
    use crate::change::INCIDENT_BUDGET;
    use crate::incidents;
    use crate::ingest::{ingest, IngestRequest, Outcome};
    use crate::limits::{MAX_FINGERPRINT_BYTES, TRUNCATED};
    use firewatch_types::{IncidentAction, IncidentState, Principal, Role, SourceKind, TenantId};

    let principal = Principal {
        tenant: TenantId::parse(&format!("b{}", ulid::Ulid::new()).to_ascii_lowercase())
            .expect("a valid tenant id"),
        name: "bounds".into(),
        role: firewatch_types::Role::Admin,
    };
    assert_eq!(principal.role, Role::Admin);
    let post = |body: serde_json::Value| {
        let (svc, p) = (svc.clone(), principal.clone());
        async move {
            let body = body.to_string();
            ingest(
                &svc,
                IngestRequest {
                    principal: &p,
                    source: SourceKind::Generic,
                    body: body.as_bytes(),
                    headers: vec![],
                },
            )
            .await
        }
    };
    let act = |id: firewatch_types::IncidentId, action| {
        let (svc, p) = (svc.clone(), principal.clone());
        async move { incidents::act(&svc, &p, &id, action, None, None).await }
    };

    // A 1 MB title and a 1 MB label set: kept, cut, changeable.
    let huge = "t".repeat(1024 * 1024 - 200);
    let report = post(serde_json::json!({"title": huge, "fingerprint": "big-title"}))
        .await
        .expect("a 1 MB title is accepted");
    let id = report.incidents[0].clone();
    let inc = incidents::get(&svc, &principal.tenant, &id).await.unwrap();
    assert!(inc.title.ends_with(TRUNCATED) && inc.title.len() < 2048);
    let labels: serde_json::Map<String, serde_json::Value> = (0..2000)
        .map(|i| (format!("label{i}"), serde_json::json!("v".repeat(500))))
        .collect();
    let report =
        post(serde_json::json!({"title": "labels", "fingerprint": "big-labels", "labels": labels}))
            .await
            .expect("a 1 MB label set is accepted");
    let acked = act(report.incidents[0].clone(), IncidentAction::Ack)
        .await
        .expect("an incident with a huge label set can be acknowledged");
    assert!(acked.labels.contains_key(crate::limits::TRUNCATED_LABEL));

    // A 5,000-character fingerprint: hashed into a key, and stable.
    let fp = "f".repeat(5000);
    let first = post(serde_json::json!({"title": "long fp", "fingerprint": fp, "starts_at": "2026-11-20T10:00:00Z"}))
        .await
        .expect("a 5,000-character fingerprint is accepted");
    assert!(first.results[0].fingerprint.len() <= MAX_FINGERPRINT_BYTES);
    let again = post(serde_json::json!({"title": "long fp", "fingerprint": fp, "starts_at": "2026-11-20T11:00:00Z"}))
        .await
        .unwrap();
    assert_eq!(again.results[0].outcome, Outcome::Occurrence);
    assert_eq!(again.incidents, first.incidents);

    // One incident tracking 1,000 alerts with 200-character fingerprints
    // stays within its budget and can still be acknowledged and resolved.
    let mut grouped = (*svc.settings).clone();
    grouped
        .group_by
        .insert(SourceKind::Generic, vec!["alertname".into()]);
    let grouped = svc.clone().with_settings(grouped);
    let alerts: Vec<serde_json::Value> = (0..1000)
        .map(|i| serde_json::json!({"title": "fan-out", "fingerprint": format!("{i:04}{}", "x".repeat(196)), "labels": {"alertname": "FanOut"}}))
        .collect();
    let body = serde_json::json!({ "alerts": alerts }).to_string();
    let fan = ingest(
        &grouped,
        IngestRequest {
            principal: &principal,
            source: SourceKind::Generic,
            body: body.as_bytes(),
            headers: vec![],
        },
    )
    .await
    .expect("1,000 alerts into one incident are accepted");
    assert_eq!(fan.incidents.len(), 1, "one incident for the group");
    let big = fan.incidents[0].clone();
    let inc = incidents::get(&svc, &principal.tenant, &big).await.unwrap();
    assert!(serde_json::to_vec(&inc).unwrap().len() <= INCIDENT_BUDGET);
    assert_eq!(inc.occurrences, 1000);
    assert_eq!(inc.alerts.len() as u64 + inc.untracked_alerts, 1000);
    act(big.clone(), IncidentAction::Ack)
        .await
        .expect("a large incident can be acknowledged");
    let resolved = act(big, IncidentAction::Resolve)
        .await
        .expect("a large incident can be resolved");
    assert_eq!(resolved.state, IncidentState::Resolved);

    // The redelivery marker of a webhook that touched 11,000 incidents.
    let report = crate::ingest::IngestReport {
        accepted: 11_000,
        duplicate: false,
        envelope_sha256: "e".repeat(64),
        incidents: (0..11_000)
            .map(|_| firewatch_types::IncidentId::from_ulid(&ulid::Ulid::new().to_string()))
            .collect(),
        results: (0..11_000)
            .map(|i| crate::ingest::AlertResult {
                fingerprint: format!("{i:05}{}", "y".repeat(250)),
                status: firewatch_types::AlertStatus::Firing,
                outcome: Outcome::Opened,
                incident_id: None,
            })
            .collect(),
        silenced: 0,
        dedup_key: None,
        note: None,
    };
    let marker = crate::ingest::redelivery_marker(&svc, &principal.tenant, &report).unwrap();
    assert!(marker.data.len() <= crate::ingest::MARKER_BUDGET + 1024);
    svc.store
        .put(marker, Condition::Always)
        .await
        .expect("the redelivery marker of a huge webhook fits the store");

    // The largest alert a silence can hold: recorded, then released into
    // its incident when the silence is expired.
    let silence = crate::silences::create(
        &svc,
        &principal,
        crate::silences::NewSilence {
            matchers: crate::silences::matchers::parse_all(["alertname=held"]).unwrap(),
            ends_at: svc.clock.now() + chrono::Duration::hours(1),
            comment: "c".repeat(1024),
            ..Default::default()
        },
    )
    .await
    .expect("a silence is stored");
    // About 1 MB, the body cap: 500 KB of labels, 450 KB of annotations.
    let labels: serde_json::Map<String, serde_json::Value> = (0..1000)
        .map(|i| (format!("label{i}"), serde_json::json!("v".repeat(500))))
        .collect();
    let annotations: serde_json::Map<String, serde_json::Value> = (0..150)
        .map(|i| (format!("note{i}"), serde_json::json!("n".repeat(3000))))
        .collect();
    let report = post(
        serde_json::json!({"title": "held", "fingerprint": "x".repeat(5000),
        "labels": labels, "annotations": annotations}),
    )
    .await
    .expect("the largest alert is held by its silence");
    assert_eq!(report.silenced, 1);
    let listed = crate::silences::list(&svc, &principal, &Default::default())
        .await
        .unwrap();
    assert_eq!(listed[0].matched_alerts, 1);
    crate::silence_ends::expire(
        &svc,
        &principal,
        &silence.id,
        crate::silence_ends::Release::Now,
    )
    .await
    .expect("the silence ends");
    let page = incidents::list(&svc, &principal.tenant, &Default::default(), None, 50)
        .await
        .unwrap();
    assert!(
        page.items.iter().any(|i| i.title == "held"),
        "the held alert opened its incident when its silence ended"
    );
}
