//! The dispatch family: the outbox consumer.
//!
//! In AWS the table's stream delivers every new item; [`handle`] picks the
//! outbox records among them and performs their chat effects through the
//! domain's dispatcher, whose keyed effects make a redelivered batch
//! harmless. A record that fails for a reason worth retrying is reported in
//! `batchItemFailures`, so Lambda retries it (and what follows it in its
//! shard) without failing the whole batch; one that can never succeed is
//! dead-lettered and counted as handled. Locally, `firewatch dev` runs the
//! same dispatcher over the outbox in a loop instead.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use firewatch_domain::dispatch;
use firewatch_domain::outbox::OutboxRecord;
use firewatch_domain::Services;
use serde::Deserialize;

/// The attributes of a stream image this consumer needs.
#[derive(Deserialize)]
struct Image {
    pk: String,
    d: String,
}

/// Handles one batch of stream records.
pub async fn handle(svc: &Services, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let image: Image = match serde_dynamo::from_item(record.change.new_image.clone()) {
            Ok(i) => i,
            // Not one of ours (or not an item with data): nothing to do.
            Err(_) => continue,
        };
        if !image.pk.ends_with("#OUTBOX") {
            continue;
        }
        let outbox: OutboxRecord = match serde_json::from_str(&image.d) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(event_id = %record.event_id, error = %e, "undecodable outbox record skipped");
                continue;
            }
        };
        match dispatch::deliver(svc, &outbox).await {
            Ok(()) => {}
            Err(e) if e.retryable => {
                tracing::warn!(record = %outbox.id, error = %e.message, "delivery failed; Lambda will retry");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                // Lambda retries from the first failure on; stop here so the
                // thread keeps its order.
                break;
            }
            Err(e) => {
                tracing::error!(record = %outbox.id, error = %e.message, "delivery can never succeed; dead-lettered");
                if let Err(store) = dispatch::dead_letter(svc, &outbox, 1, &e.message).await {
                    tracing::error!(record = %outbox.id, error = %store, "could not store the dead letter");
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = record.change.sequence_number.clone();
                    response.batch_item_failures.push(failure);
                    break;
                }
            }
        }
    }
    response
}
