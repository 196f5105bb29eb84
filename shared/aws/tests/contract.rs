//! The shared Store/Blobs contract, run against the real AWS SDK pointed at
//! Amazon DynamoDB Local and a local S3 server. `tests/run.sh` starts both
//! and sets `FIREWATCH_TEST_DYNAMODB_ENDPOINT` and `FIREWATCH_TEST_S3_ENDPOINT`.

use firewatch_aws::{ensure_bucket, ensure_table, DynamoStore, S3Blobs};
use firewatch_domain::contract::{blobs_suite, bounds_suite, store_suite};
use std::sync::Arc;

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `bash tests/run.sh`, which starts DynamoDB Local and the S3 server")
    })
}

async fn sdk() -> aws_config::SdkConfig {
    firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHTEST", "firewatchtestsecret").await
}

pub async fn dynamo(table: &str) -> DynamoStore {
    let client = firewatch_aws::dynamo_client(
        &sdk().await,
        Some(&endpoint("FIREWATCH_TEST_DYNAMODB_ENDPOINT")),
    );
    ensure_table(&client, table).await.unwrap();
    DynamoStore::new(client, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_meets_the_store_contract() {
    let store = dynamo("firewatch-contract").await;
    let ns = format!("run{}", ulid::Ulid::new());
    store_suite(Arc::new(store), &ns).await;
}

#[tokio::test]
async fn s3_meets_the_blobs_contract() {
    let client =
        firewatch_aws::s3_client(&sdk().await, Some(&endpoint("FIREWATCH_TEST_S3_ENDPOINT")));
    ensure_bucket(&client, "firewatch-contract").await.unwrap();
    let ns = format!("run{}", ulid::Ulid::new());
    blobs_suite(Arc::new(S3Blobs::new(client, "firewatch-contract")), &ns).await;
}

#[tokio::test]
async fn oversized_items_are_refused_before_they_reach_dynamodb() {
    use firewatch_domain::ports::{Condition, Item, Store, StoreError};
    let store = dynamo("firewatch-contract").await;
    let item = Item {
        pk: "t#BIG".into(),
        sk: "x".into(),
        version: 1,
        expires_at: None,
        data: "x".repeat(400 * 1024),
        kind: None,
    };
    assert!(matches!(
        store.put(item, Condition::Always).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn aws_services() -> firewatch_domain::Services {
    let store = dynamo("firewatch-contract").await;
    let client =
        firewatch_aws::s3_client(&sdk().await, Some(&endpoint("FIREWATCH_TEST_S3_ENDPOINT")));
    ensure_bucket(&client, "firewatch-contract").await.unwrap();
    firewatch_domain::Services::new(
        Arc::new(store),
        Arc::new(S3Blobs::new(client, "firewatch-contract")),
    )
}

fn principal() -> firewatch_types::Principal {
    firewatch_types::Principal {
        tenant: firewatch_types::TenantId::parse(
            &format!("t{}", ulid::Ulid::new()).to_ascii_lowercase(),
        )
        .unwrap(),
        name: "contract".into(),
        role: firewatch_types::Role::Responder,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_deliveries_open_one_incident_on_dynamodb() {
    use firewatch_domain::ingest::{ingest, IngestRequest};
    let svc = aws_services().await;
    for round in 0..3 {
        let p = principal();
        let body = serde_json::json!({"title": "race", "fingerprint": format!("race-{round}"), "starts_at": "2026-11-20T11:00:00Z"})
            .to_string();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (svc, p, body) = (svc.clone(), p.clone(), body.clone());
                tokio::spawn(async move {
                    ingest(
                        &svc,
                        IngestRequest {
                            principal: &p,
                            source: firewatch_types::SourceKind::Generic,
                            body: body.as_bytes(),
                            headers: vec![],
                        },
                    )
                    .await
                    .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let all =
            firewatch_domain::incidents::list(&svc, &p.tenant, &Default::default(), None, 200)
                .await
                .unwrap();
        assert_eq!(
            all.items.len(),
            1,
            "one incident on DynamoDB (round {round})"
        );
        assert_eq!(all.items[0].occurrences, 1);
    }
}

#[tokio::test]
async fn an_incident_lives_its_whole_life_on_dynamodb_and_s3() {
    use firewatch_domain::incidents;
    use firewatch_domain::ingest::{ingest, IngestRequest, Outcome};
    use firewatch_types::{IncidentAction, IncidentState, SourceKind};
    let svc = aws_services().await;
    let p = principal();
    let post = |body: String| {
        let (svc, p) = (svc.clone(), p.clone());
        async move {
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
            .unwrap()
        }
    };
    let fire = serde_json::json!({"title": "db down", "fingerprint": "db", "starts_at": "2026-11-20T11:00:00Z", "labels": {"password": "hunter2"}}).to_string();
    let opened = post(fire.clone()).await;
    assert_eq!(opened.results[0].outcome, Outcome::Opened);
    assert!(post(fire).await.duplicate, "a redelivery changes nothing");
    let id = opened.incidents[0].clone();
    let acked = incidents::act(
        &svc,
        &p,
        &id,
        IncidentAction::Ack,
        Some("on it".into()),
        Some(1),
    )
    .await
    .unwrap();
    assert_eq!(acked.state, IncidentState::Acknowledged);
    let resolved = post(
        serde_json::json!({"title": "db down", "fingerprint": "db", "status": "resolved"})
            .to_string(),
    )
    .await;
    assert_eq!(resolved.results[0].outcome, Outcome::IncidentResolved);
    let tl = incidents::timeline(&svc, &p.tenant, &id, None, 50)
        .await
        .unwrap();
    let kinds: Vec<String> = tl
        .items
        .iter()
        .map(|e| {
            serde_json::to_value(&e.kind).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["opened", "state_changed", "alert_resolved", "state_changed"]
    );
    let env = tl.items[0].envelope.clone().unwrap();
    let stored = String::from_utf8(svc.blobs.get(&env.blob_key).await.unwrap().unwrap()).unwrap();
    assert!(
        !stored.contains("hunter2"),
        "the envelope in S3 is redacted"
    );
    let again = post(serde_json::json!({"title": "db down", "fingerprint": "db", "starts_at": "2026-11-20T12:00:00Z"}).to_string()).await;
    assert_eq!(
        again.results[0].outcome,
        Outcome::Opened,
        "a firing after resolve opens a new incident"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_cases_a_sender_can_send_fit_dynamodb() {
    bounds_suite(aws_services().await).await;
}

#[tokio::test]
async fn playbooks_load_from_an_s3_prefix_and_bad_files_are_reported() {
    let client =
        firewatch_aws::s3_client(&sdk().await, Some(&endpoint("FIREWATCH_TEST_S3_ENDPOINT")));
    ensure_bucket(&client, "firewatch-contract").await.unwrap();
    let prefix = format!("pb{}", ulid::Ulid::new());
    let good = "name: notify-team\ntitle: Tell the team\nrisk: low\napproval: never\nsteps:\n  - name: say\n    kind: notify\n    text: hello\n";
    let bad = "name: broken\ntitle: t\nrisk: low\nsteps:\n  - name: x\n    kind: htp\n";
    for (key, body) in [
        (format!("{prefix}/good.yaml"), good),
        (format!("{prefix}/bad.yml"), bad),
        (format!("{prefix}/nested/ignored.yaml"), good),
        (format!("{prefix}/README.md"), "not a playbook"),
    ] {
        client
            .put_object()
            .bucket("firewatch-contract")
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let loaded = firewatch_aws::playbooks_from_s3(&client, "firewatch-contract", &prefix)
        .await
        .unwrap();
    let names: Vec<_> = loaded
        .playbooks
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(names, ["notify-team"]);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let e = &loaded.errors[0];
    assert_eq!(e.file, format!("s3://firewatch-contract/{prefix}/bad.yml"));
    assert_eq!((e.line, e.field.as_str()), (6, "kind"));
}

#[tokio::test]
async fn playbooks_are_compiled_when_they_change_and_read_back_as_json() {
    let client =
        firewatch_aws::s3_client(&sdk().await, Some(&endpoint("FIREWATCH_TEST_S3_ENDPOINT")));
    ensure_bucket(&client, "firewatch-contract").await.unwrap();
    let prefix = format!("pbc{}/", ulid::Ulid::new());
    let put = |key: String, body: &'static str| {
        let client = client.clone();
        async move {
            client
                .put_object()
                .bucket("firewatch-contract")
                .key(key)
                .body(body.as_bytes().to_vec().into())
                .send()
                .await
                .unwrap();
        }
    };
    // Nothing published yet: no catalog, not an error.
    assert!(
        firewatch_aws::compiled_playbooks(&client, "firewatch-contract", &prefix)
            .await
            .unwrap()
            .is_none()
    );
    put(
        format!("{prefix}notify.yaml"),
        "name: notify-team\ntitle: Tell the team\nrisk: low\napproval: never\nsteps:\n  - name: say\n    kind: notify\n    text: hello {{ incident.title }}\n",
    )
    .await;
    put(
        format!("{prefix}bad.yml"),
        "name: broken\ntitle: t\nrisk: low\nsteps:\n  - name: x\n    kind: htp\n",
    )
    .await;
    let publish = || firewatch_aws::publish_playbooks(&client, "firewatch-contract", &prefix);
    assert_eq!(publish().await.unwrap(), Some(1), "the first run compiles");
    assert_eq!(
        publish().await.unwrap(),
        None,
        "unchanged files are not compiled again"
    );
    let yaml = firewatch_aws::playbooks_from_s3(&client, "firewatch-contract", &prefix)
        .await
        .unwrap();
    let compiled = firewatch_aws::compiled_playbooks(&client, "firewatch-contract", &prefix)
        .await
        .unwrap()
        .expect("published");
    // The JSON catalog holds what parsing the YAML gives (without the
    // source positions, which only parse errors use), errors included.
    assert_eq!(
        serde_json::to_value(&compiled.playbooks).unwrap(),
        serde_json::to_value(&yaml.playbooks).unwrap()
    );
    assert_eq!(compiled.errors, yaml.errors);
    assert_eq!(compiled.errors[0].field, "kind");
    // A changed file is compiled again.
    put(
        format!("{prefix}bad.yml"),
        "name: fixed\ntitle: t\nrisk: low\napproval: never\nsteps:\n  - name: say\n    kind: notify\n    text: ok\n",
    )
    .await;
    assert_eq!(publish().await.unwrap(), Some(2));
    let compiled = firewatch_aws::compiled_playbooks(&client, "firewatch-contract", &prefix)
        .await
        .unwrap()
        .unwrap();
    let names: Vec<_> = compiled
        .playbooks
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(names, ["fixed", "notify-team"]);
    assert!(compiled.errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pings_and_the_heartbeats_job_lose_nothing_on_dynamodb() {
    use firewatch_domain::schedules::heartbeats::{self, Fields, PingKind, Received};
    let clock = Arc::new(firewatch_domain::ports::FixedClock::new(chrono::Utc::now()));
    let svc = aws_services().await.with_clock(clock.clone());
    let admin = firewatch_types::Principal {
        role: firewatch_types::Role::Admin,
        ..principal()
    };
    let hb = heartbeats::create(
        &svc,
        &admin,
        Fields {
            name: Some("nightly".into()),
            period: Some("5m".into()),
            grace: Some("1m".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let pings: Vec<_> = (0..20)
        .map(|i| {
            let (svc, uuid) = (svc.clone(), hb.ping_uuid.clone());
            tokio::spawn(async move {
                let body = format!("run {i}");
                heartbeats::ping(
                    &svc,
                    Received {
                        uuid: &uuid,
                        kind: PingKind::Success,
                        exit_status: None,
                        rid: None,
                        method: "POST",
                        user_agent: None,
                        body: body.as_bytes(),
                    },
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for p in pings {
        assert!(p.await.unwrap());
    }
    let (_, kept) = heartbeats::get(&svc, &admin, &hb.id, 50).await.unwrap();
    assert_eq!(kept.len(), 20, "every concurrent ping is kept");

    clock.advance(chrono::Duration::minutes(7));
    let budget = firewatch_domain::schedules::Budget::new(std::time::Duration::from_secs(20));
    heartbeats::run_due(&svc, &budget).await.unwrap();
    let filter = firewatch_domain::incidents::ListFilter {
        source: Some(firewatch_types::SourceKind::Heartbeat),
        ..Default::default()
    };
    let raised = firewatch_domain::incidents::list(&svc, &admin.tenant, &filter, None, 10)
        .await
        .unwrap();
    assert_eq!(raised.items.len(), 1);
    assert_eq!(raised.items[0].state, firewatch_types::IncidentState::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_run_events_of_one_pipeline_lose_nothing_on_dynamodb() {
    use firewatch_domain::pipelines::{openlineage, read, record};
    let svc = aws_services().await;
    let p = principal();
    let ended = chrono::Utc::now() - chrono::Duration::minutes(5);
    let events: Vec<_> = (0..20)
        .map(|i| {
            let (svc, p) = (svc.clone(), p.clone());
            tokio::spawn(async move {
                let body = serde_json::json!({
                    "eventType": "COMPLETE",
                    "eventTime": ended.to_rfc3339(),
                    "run": {"runId": format!("01934b6e-0000-7000-8000-{i:012}"),
                            "facets": {"firewatch_cost": {"_producer": "p", "_schemaURL": "s", "amount": 1.5, "currency": "USD"}}},
                    "job": {"namespace": "airflow", "name": "etl.orders"},
                    "inputs": [], "outputs": [{"namespace": "lake", "name": format!("part{i}")}],
                    "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
                })
                .to_string();
                let openlineage::Event::Run(ev) = openlineage::parse(body.as_bytes()).unwrap() else {
                    unreachable!()
                };
                record::record(&svc, &p, *ev, body.as_bytes()).await.unwrap()
            })
        })
        .collect();
    for e in events {
        assert!(!e.await.unwrap().duplicate);
    }
    let viewer = firewatch_types::Principal {
        role: firewatch_types::Role::Viewer,
        ..p.clone()
    };
    let pl = read::pipeline(&svc, &viewer, "airflow/etl.orders")
        .await
        .unwrap();
    assert_eq!(pl.runs_7d, 20, "every concurrent run is counted");
    assert_eq!(pl.cost_7d["USD"], 30.0);
    assert_eq!(pl.pipeline.outputs.len(), 20, "every dataset is kept");
    let s = read::summary(&svc, &viewer).await.unwrap();
    assert_eq!(s.runs_24h, 20);
    assert_eq!(s.cost_24h["USD"], 30.0);
}
