//! The dispatch family: the outbox consumer on AWS.
//!
//! The table's stream delivers the new items of the kinds the dispatcher
//! acts on (the event source mapping filters on the item's kind attribute
//! `k`, infra/template.yaml); [`handle`] tells them apart by that kind, never
//! by their key, and hands each outbox record to the domain's
//! [`dispatch::process_new`], which applies the one delivery policy: deliver,
//! or record the failure and the time of its retry in the outbox item, or
//! dead-letter it. A delivery failure therefore never fails the batch or
//! holds up the shard; retries are run by the scheduler's `retries` job
//! (`functions/scheduler`), through the same policy as `firewatch dev`.
//!
//! Only when the store itself cannot record the outcome is the record
//! reported in `batchItemFailures`, so Lambda retries it; if Lambda gives up,
//! the outbox item is still there and the `retries` job's sweep delivers it.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use firewatch_domain::dispatch;
use firewatch_domain::outbox::OutboxRecord;
use firewatch_domain::ports::ItemKind;
use firewatch_domain::Services;
use firewatch_types::AuditEvent;
use serde::Deserialize;

/// The attributes of a stream image this consumer needs.
#[derive(Deserialize)]
struct Image {
    sk: String,
    d: String,
    /// The item's kind (`ports::ItemKind`), when it has one.
    #[serde(default)]
    k: Option<String>,
}

/// Handles one batch of stream records.
pub async fn handle(svc: &Services, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in event.records {
        // A retried dead letter is a fresh item (INSERT); the policy's own
        // rewrites (MODIFY) and deletions (REMOVE) are not new work.
        if record.event_name != "INSERT" {
            continue;
        }
        let image: Image = match serde_dynamo::from_item(record.change.new_image.clone()) {
            Ok(i) => i,
            // Not one of ours (or not an item with data): nothing to do.
            Err(_) => continue,
        };
        match image.k.as_deref().and_then(ItemKind::parse) {
            // An audit event a chat function queued: filed into the log here
            // (from its own tenant's queue, where `file_audit` looks for it).
            Some(ItemKind::QueuedAudit) => {
                let Ok(ev) = serde_json::from_str::<AuditEvent>(&image.d) else {
                    tracing::error!(event_id = %record.event_id, "undecodable queued audit event left for the retries job");
                    continue;
                };
                if let Err(e) = dispatch::file_audit(svc, &ev.tenant, &image.sk).await {
                    tracing::warn!(error = %e, "audit event not filed; the retries job files it");
                }
                continue;
            }
            Some(ItemKind::Outbox) => {}
            None => continue,
        }
        let outbox: OutboxRecord = match serde_json::from_str(&image.d) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(event_id = %record.event_id, error = %e, "undecodable outbox record skipped");
                continue;
            }
        };
        match dispatch::process_new(svc, &outbox.tenant, &outbox.id).await {
            Ok(outcome) => {
                tracing::debug!(record = %outbox.id, ?outcome, "outbox record processed")
            }
            Err(e) => {
                tracing::warn!(record = %outbox.id, error = %e, "outcome not recorded; Lambda will retry");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                // Lambda retries from the first failure on; stop here so the
                // thread keeps its order.
                break;
            }
        }
    }
    response
}

/// The services of a Lambda that delivers (this one and the scheduler): the
/// AWS adapters, the chat clients and the assisted-triage model configured
/// in the environment, with tracing initialised.
#[cfg(feature = "lambda")]
pub async fn delivering_services_from_env(
) -> Result<std::sync::Arc<Services>, Box<dyn std::error::Error + Send + Sync>> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let egress_allow = config.settings.egress_allow.clone();
    let chat = chat_from_env()?;
    let firewatch_aws::Bootstrap { sdk, services, .. } =
        firewatch_aws::bootstrap(config.settings).await?;
    // Playbook steps are performed here: HTTP requests, Lambda invocations,
    // and their secrets read when each is sent.
    let egress = firewatch_aws::egress_from_env(
        &sdk,
        std::sync::Arc::new(firewatch_egress::HttpEgress::new(egress_allow)),
    );
    // Assisted triage asked for from chat runs here (the chat functions
    // answer the click and hand it over).
    let llm = firewatch_aws::assisted_model(&sdk).await?;
    // Tickets asked for are created here (FIREWATCH_TRACKER).
    let tracker = firewatch_egress::tracker_from_env()?;
    Ok(std::sync::Arc::new(
        services
            .with_chat(std::sync::Arc::new(chat))
            .with_egress(egress)
            .with_secrets(firewatch_aws::secrets_from_env(&sdk))
            .with_llm(llm)
            .with_tracker(tracker)
            // Escalation pages are sent here (PagerDuty Events API v2).
            .with_pager(Some(firewatch_egress::pager_from_env())),
    ))
}

/// The chat clients configured in the environment (Slack, Discord,
/// Telegram).
#[cfg(feature = "lambda")]
fn chat_from_env(
) -> Result<firewatch_domain::chat::ChatHub, Box<dyn std::error::Error + Send + Sync>> {
    use firewatch_domain::chat::ChatClient;
    use std::sync::Arc;
    let var = |k: &str| std::env::var(k).ok();
    let slack = firewatch_slack::SlackConfig::from_vars(var)?;
    let telegram = firewatch_telegram::TelegramConfig::from_vars(var)?;
    let discord = firewatch_discord::DiscordConfig::from_vars(var)?;
    Ok(firewatch_domain::chat::ChatHub {
        discord: discord
            .map(|c| Arc::new(firewatch_discord::DiscordChat::new(c)) as Arc<dyn ChatClient>),
        telegram: telegram
            .map(|c| Arc::new(firewatch_telegram::TelegramChat::new(c)) as Arc<dyn ChatClient>),
        slack: slack.map(|c| Arc::new(firewatch_slack::SlackChat::new(c)) as Arc<dyn ChatClient>),
        ..Default::default()
    })
}
