//! The stream consumer path end to end on DynamoDB Local: incidents are
//! written through `DynamoStore`, the table's real stream is read with
//! aws-sdk-dynamodbstreams, shaped into the event Lambda delivers, and handed
//! to the dispatch handler. A redelivered batch has one effect; a failing
//! delivery follows the one dispatch policy (retried by the scheduler's
//! `retries` job, then dead-lettered), and a retried dead letter arrives
//! through the real stream and is delivered.

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use firewatch_domain::chat::{ChatClient, ChatError};
use firewatch_domain::ingest::{ingest, IngestRequest};
use firewatch_domain::{Services, Settings};
use firewatch_types::{Card, Destination, Principal, Role, SourceKind, TenantId, ThreadRef};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct RecordingChat {
    calls: Mutex<Vec<String>>,
    /// How many calls from now on fail with a 503.
    failing: Mutex<u32>,
}

impl RecordingChat {
    fn record(&self, what: String) -> Result<(), ChatError> {
        let mut failing = self.failing.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return Err(ChatError::Unavailable("503 from the platform".into()));
        }
        self.calls.lock().unwrap().push(what);
        Ok(())
    }
}

#[async_trait]
impl ChatClient for RecordingChat {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        self.record(format!("root {}", card.incident_id))?;
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: "1700000000.000100".into(),
            thread_id: None,
        })
    }
    async fn update_root(&self, _t: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        self.record(format!("update {}", card.state))
    }
    async fn reply(&self, _t: &ThreadRef, text: &str) -> Result<(), ChatError> {
        self.record(format!("reply {text}"))
    }
}

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run `bash tests/run.sh`, which starts DynamoDB Local and the S3 server"))
}

async fn sdk() -> aws_config::SdkConfig {
    firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHTEST", "firewatchtestsecret").await
}

fn attr(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        other => panic!("unexpected attribute {other:?}"),
    }
}

fn image(m: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attr(v))).collect())
}

/// The event source mapping's filter pattern, as `infra/template.yaml`
/// gives it to Lambda.
fn template_filter() -> Value {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .unwrap();
    let line = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("- Pattern: '"))
        .expect("the dispatch function's filter pattern");
    serde_json::from_str(line.trim_end_matches('\'')).unwrap()
}

/// Whether `record` passes filter `pattern` as Lambda's event filtering
/// matches it: every key of the pattern present and matching, a list of
/// values matching any of them.
fn passes(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(keys) => keys.iter().all(|(k, p)| passes(p, &record[k])),
        Value::Array(values) => values.contains(record),
        _ => false,
    }
}

/// Reads every record after the given iterators and returns them as the
/// event Lambda would deliver, with the iterators to continue from.
async fn read_stream(
    streams: &aws_sdk_dynamodbstreams::Client,
    iterators: &mut Vec<String>,
    stream_arn: &str,
) -> Value {
    let mut records = Vec::new();
    let mut next = Vec::new();
    for it in iterators.drain(..) {
        let out = streams
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .unwrap();
        for r in out.records() {
            let d = r.dynamodb().unwrap();
            let Some(new_image) = d.new_image() else {
                // A REMOVE: the filter in the SAM template never lets one through.
                continue;
            };
            records.push(json!({
                "eventID": r.event_id(),
                "eventName": r.event_name().unwrap().as_str(),
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1795089600.0,
                    "Keys": image(d.keys().unwrap()),
                    "NewImage": image(new_image),
                    "SequenceNumber": d.sequence_number(),
                    "SizeBytes": d.size_bytes(),
                    "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": stream_arn,
            }));
        }
        if let Some(n) = out.next_shard_iterator() {
            next.push(n.to_owned());
        }
    }
    *iterators = next;
    json!({ "Records": records })
}

#[tokio::test]
async fn stream_batches_deliver_once_and_report_failures_per_record() {
    let sdk = sdk().await;
    let ddb_endpoint = endpoint("FIREWATCH_TEST_DYNAMODB_ENDPOINT");
    let table = format!("firewatch-stream-{}", ulid::Ulid::new()).to_ascii_lowercase();
    let ddb = firewatch_aws::dynamo_client(&sdk, Some(&ddb_endpoint));
    firewatch_aws::ensure_table(&ddb, &table).await.unwrap();
    let s3 = firewatch_aws::s3_client(&sdk, Some(&endpoint("FIREWATCH_TEST_S3_ENDPOINT")));
    firewatch_aws::ensure_bucket(&s3, "firewatch-stream")
        .await
        .unwrap();
    let chat = Arc::new(RecordingChat::default());
    let clock = Arc::new(firewatch_domain::ports::FixedClock::new(chrono::Utc::now()));
    let settings = Settings {
        default_destinations: vec![Destination::Slack {
            channel: "C0INCIDENTS".into(),
        }],
        ..Settings::default()
    };
    let svc = Services::new(
        Arc::new(firewatch_aws::DynamoStore::new(ddb.clone(), table.clone())),
        Arc::new(firewatch_aws::S3Blobs::new(s3, "firewatch-stream")),
    )
    .with_settings(settings)
    .with_chat(chat.clone())
    .with_clock(clock.clone());

    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::config::Builder::from(&sdk)
            .endpoint_url(&ddb_endpoint)
            .build(),
    );
    let arn = streams
        .list_streams()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .streams()[0]
        .stream_arn()
        .unwrap()
        .to_owned();
    let desc = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let mut iterators = Vec::new();
    for shard in desc.stream_description().unwrap().shards() {
        let it = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        iterators.push(it.shard_iterator().unwrap().to_owned());
    }

    let p = Principal {
        tenant: TenantId::default_tenant(),
        name: "stream-test".into(),
        role: Role::Responder,
    };
    // A tenant exists once it has a key; the retry sweep walks tenants.
    firewatch_domain::auth::ensure_tenant(&svc, &p.tenant)
        .await
        .unwrap();
    let body =
        json!({"title": "queue backlog", "fingerprint": "q1", "starts_at": "2026-11-20T11:00:00Z"})
            .to_string();
    let report = ingest(
        &svc,
        IngestRequest {
            principal: &p,
            source: SourceKind::Generic,
            body: body.as_bytes(),
            headers: vec![],
        },
    )
    .await
    .unwrap();

    let batch = read_stream(&streams, &mut iterators, &arn).await;
    let outbox_records = batch["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["dynamodb"]["Keys"]["pk"]["S"]
                .as_str()
                .unwrap()
                .ends_with("#OUTBOX")
        })
        .count();
    assert_eq!(
        outbox_records, 1,
        "the stream carries the outbox record among the other writes"
    );
    // Lambda hands the dispatcher that record alone: the filter passes items
    // by their kind attribute, not the incident, timeline, index, audit,
    // envelope marker and dossier items around it.
    let filter = template_filter();
    let records = batch["Records"].as_array().unwrap();
    let passed: Vec<&Value> = records.iter().filter(|r| passes(&filter, r)).collect();
    assert_eq!(passed.len(), 1, "of {} records", records.len());
    assert!(passed[0]["dynamodb"]["Keys"]["pk"]["S"]
        .as_str()
        .unwrap()
        .ends_with("#OUTBOX"));
    assert!(records.len() >= 6, "{} records", records.len());
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(batch).unwrap();

    let response = firewatch_dispatch::handle(&svc, event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        *chat.calls.lock().unwrap(),
        [format!("root {}", report.incidents[0])]
    );
    let again = firewatch_dispatch::handle(&svc, event).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(
        chat.calls.lock().unwrap().len(),
        1,
        "a redelivered batch has one effect"
    );

    // The platform fails: the batch still succeeds, and the record waits in
    // the outbox with its attempt recorded instead of blocking the shard.
    firewatch_domain::incidents::comment(&svc, &p, &report.incidents[0], "draining the queue")
        .await
        .unwrap();
    let batch = read_stream(&streams, &mut iterators, &arn).await;
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(batch).unwrap();
    *chat.failing.lock().unwrap() = 1;
    let response = firewatch_dispatch::handle(&svc, event.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a delivery failure does not fail the batch"
    );
    let waiting = outbox(&svc, &p).await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].attempts, 1);
    assert!(waiting[0].next_at.is_some());
    // A redelivery of the batch leaves it to the policy: no second attempt now.
    firewatch_dispatch::handle(&svc, event).await;
    assert_eq!(outbox(&svc, &p).await[0].attempts, 1);

    // The scheduler's retries job delivers it once it is due, once.
    clock.advance(chrono::Duration::seconds(5));
    let job = json!({"job": "retries"});
    let done = firewatch_scheduler::handle(&svc, &job).await.unwrap();
    assert_eq!(serde_json::to_value(done).unwrap()["delivered"], 1);
    assert!(outbox(&svc, &p).await.is_empty());
    let calls = chat.calls.lock().unwrap().clone();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.contains("draining the queue"))
            .count(),
        1,
        "{calls:?}"
    );

    // A delivery that keeps failing ends as a dead letter after the
    // documented attempts, visible in the API.
    firewatch_domain::incidents::comment(&svc, &p, &report.incidents[0], "still failing")
        .await
        .unwrap();
    let batch = read_stream(&streams, &mut iterators, &arn).await;
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(batch).unwrap();
    *chat.failing.lock().unwrap() = u32::MAX;
    firewatch_dispatch::handle(&svc, event).await;
    for _ in 1..firewatch_domain::dispatch::MAX_ATTEMPTS {
        clock.advance(chrono::Duration::minutes(10));
        firewatch_scheduler::handle(&svc, &job).await.unwrap();
    }
    assert!(outbox(&svc, &p).await.is_empty());
    let dead = firewatch_domain::dispatch::dead_letters(&svc, &p.tenant)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, firewatch_domain::dispatch::MAX_ATTEMPTS);

    // Retrying the dead letter puts it back through the real stream, and the
    // stream handler delivers it.
    *chat.failing.lock().unwrap() = 0;
    read_stream(&streams, &mut iterators, &arn).await;
    firewatch_domain::dispatch::retry_dead_letter(&svc, &p, &dead[0].id)
        .await
        .unwrap();
    let batch = read_stream(&streams, &mut iterators, &arn).await;
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(batch).unwrap();
    let response = firewatch_dispatch::handle(&svc, event).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(outbox(&svc, &p).await.is_empty());
    assert!(chat
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|c| c.contains("still failing")));
}

async fn outbox(svc: &Services, p: &Principal) -> Vec<firewatch_domain::outbox::OutboxRecord> {
    let page = svc
        .store
        .query(firewatch_domain::ports::Query::all(
            firewatch_domain::keys::outbox_pk(&p.tenant),
            100,
        ))
        .await
        .unwrap();
    page.items
        .iter()
        .map(|i| firewatch_domain::keys::decode(i).unwrap())
        .collect()
}

/// The items of one partition of `svc`'s store.
async fn partition(svc: &Services, pk: String) -> Vec<firewatch_domain::ports::Item> {
    svc.store
        .query(firewatch_domain::ports::Query {
            pk,
            sk_prefix: String::new(),
            after: None,
            limit: 100,
            descending: false,
        })
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn audit_events_a_chat_function_queues_are_filed_by_the_dispatcher_once() {
    use firewatch_domain::keys::{audit_pk, audit_queue_pk};
    let dispatcher = firewatch_local::services_in_memory();
    let t = TenantId::default_tenant();
    firewatch_domain::auth::ensure_tenant(&dispatcher, &t)
        .await
        .unwrap();
    // The chat function: same table, but it may not write the audit log.
    let chat_fn = dispatcher.clone().with_settings(Settings {
        audit_via_dispatcher: true,
        ..Settings::default()
    });
    let body = json!({"title": "disk full", "fingerprint": "disk-1", "severity": "sev2"});
    let sender = Principal {
        tenant: t.clone(),
        name: "source:test".into(),
        role: Role::Ingest,
    };
    let body = body.to_string();
    let id = ingest(
        &dispatcher,
        IngestRequest {
            principal: &sender,
            source: SourceKind::Generic,
            body: body.as_bytes(),
            headers: vec![],
        },
    )
    .await
    .unwrap()
    .incidents[0]
        .clone();
    let before = partition(&dispatcher, audit_pk(&t)).await.len();
    let clicker = Principal {
        tenant: t.clone(),
        name: "slack:U024BE7LH".into(),
        role: Role::Responder,
    };
    firewatch_domain::incidents::act(
        &chat_fn,
        &clicker,
        &id,
        firewatch_types::IncidentAction::Ack,
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        partition(&dispatcher, audit_pk(&t)).await.len(),
        before,
        "not written by the chat function"
    );
    let queued = partition(&dispatcher, audit_queue_pk(&t)).await;
    assert_eq!(queued.len(), 1);

    // The stream's INSERT of the queued event, as Lambda delivers it.
    let q = &queued[0];
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {"pk": {"S": q.pk}, "sk": {"S": q.sk}},
            "NewImage": {"pk": {"S": q.pk}, "sk": {"S": q.sk}, "v": {"N": "1"}, "d": {"S": q.data},
                "k": {"S": q.kind.expect("a queued audit event has its kind").as_str()}},
            "SequenceNumber": "100", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026"}]}))
        .unwrap();
    for _ in 0..2 {
        let r = firewatch_dispatch::handle(&dispatcher, event.clone()).await;
        assert!(r.batch_item_failures.is_empty());
    }
    let log = partition(&dispatcher, audit_pk(&t)).await;
    assert_eq!(log.len(), before + 1, "filed once, redelivery included");
    assert!(log.iter().any(|i| i.sk == q.sk && i.data == q.data));
    assert!(partition(&dispatcher, audit_queue_pk(&t)).await.is_empty());
    assert_eq!(
        firewatch_domain::dispatch::file_audits(&dispatcher)
            .await
            .unwrap(),
        0
    );
}
