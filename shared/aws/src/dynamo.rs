//! [`DynamoStore`]: the `Store` port on one DynamoDB table.
//!
//! Items are `{pk: S, sk: S, v: N, ttl: N?, d: S}` under the table's
//! `pk`/`sk` key; `ttl` is the table's TTL attribute. Conditions become
//! condition expressions, transactions `TransactWriteItems` with a
//! `ClientRequestToken` (so an SDK retry of a transaction that did commit is
//! not applied twice), and reads are strongly consistent. DynamoDB deletes
//! expired items lazily (up to days late), so reads filter them and
//! `Absent` treats them as absent, as the contract requires.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, Put, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use firewatch_domain::ports::{Condition, Item, ItemKind, Page, Query, Store, StoreError, WriteOp};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// DynamoDB refuses items over 400 KB; refuse earlier with a clear error.
pub const MAX_ITEM_BYTES: usize = 350 * 1024;

/// The store.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Attrs = HashMap<String, AttributeValue>;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn key(pk: &str, sk: &str) -> Attrs {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

fn to_attrs(item: &Item) -> Result<Attrs, StoreError> {
    if item.data.len() > MAX_ITEM_BYTES {
        return Err(StoreError::Invalid(format!(
            "item {}/{} is {} bytes, over the {MAX_ITEM_BYTES} byte limit",
            item.pk,
            item.sk,
            item.data.len()
        )));
    }
    let mut a = key(&item.pk, &item.sk);
    a.insert("v".into(), AttributeValue::N(item.version.to_string()));
    a.insert("d".into(), AttributeValue::S(item.data.clone()));
    if let Some(t) = item.expires_at {
        a.insert("ttl".into(), AttributeValue::N(t.to_string()));
    }
    if let Some(k) = item.kind {
        a.insert("k".into(), AttributeValue::S(k.as_str().into()));
    }
    Ok(a)
}

fn from_attrs(a: &Attrs) -> Result<Item, StoreError> {
    let s = |k: &str| match a.get(k) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {k} missing or not a string"
        ))),
    };
    let n = |k: &str| -> Result<Option<i64>, StoreError> {
        match a.get(k) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("attribute {k} is not a number"))),
            Some(_) => Err(StoreError::Corrupt(format!(
                "attribute {k} is not a number"
            ))),
        }
    };
    Ok(Item {
        pk: s("pk")?,
        sk: s("sk")?,
        version: n("v")?.unwrap_or(0) as u64,
        expires_at: n("ttl")?,
        data: s("d")?,
        kind: match a.get("k") {
            Some(AttributeValue::S(k)) => ItemKind::parse(k),
            _ => None,
        },
    })
}

fn live(item: &Item, now: i64) -> bool {
    item.expires_at.is_none_or(|t| t > now)
}

/// Adds the condition expression of a `Condition` to any SDK request or
/// builder that takes one (put, delete, their transaction forms).
macro_rules! conditioned {
    ($builder:expr, $condition:expr, $now:expr) => {{
        let b = $builder;
        match condition_expr($condition, $now) {
            Some((expr, values)) => b
                .set_expression_attribute_names(Some(names(&expr)))
                .set_expression_attribute_values(Some(values))
                .condition_expression(expr),
            None => b,
        }
    }};
}

/// A condition as (expression, names, values), or `None` for `Always`.
fn condition_expr(c: Condition, now: i64) -> Option<(String, Attrs)> {
    match c {
        Condition::Always => None,
        Condition::Absent => Some((
            "attribute_not_exists(pk) OR #ttl <= :now".into(),
            HashMap::from([(":now".into(), AttributeValue::N(now.to_string()))]),
        )),
        Condition::Version(v) => Some((
            "#v = :v AND (attribute_not_exists(#ttl) OR #ttl > :now)".into(),
            HashMap::from([
                (":v".into(), AttributeValue::N(v.to_string())),
                (":now".into(), AttributeValue::N(now.to_string())),
            ]),
        )),
    }
}

fn names(expr: &str) -> HashMap<String, String> {
    let mut n = HashMap::new();
    if expr.contains("#ttl") {
        n.insert("#ttl".into(), "ttl".into());
    }
    if expr.contains("#v") {
        n.insert("#v".into(), "v".into());
    }
    n
}

/// Converts an SDK error, keeping the service's message but never request
/// details.
fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().map(str::to_owned);
    match code.as_deref() {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed { index: None },
        // A single write met a transaction in flight on its item: a lost
        // race, retried by the domain like one (as a transaction's own
        // `TransactionConflict` is).
        Some("TransactionConflictException") => StoreError::ConditionFailed { index: None },
        Some("ValidationException") => {
            StoreError::Invalid(e.message().unwrap_or("validation failed").to_owned())
        }
        Some(c) => StoreError::Unavailable(format!("DynamoDB {c}: {}", e.message().unwrap_or(""))),
        None => StoreError::Unavailable(format!(
            "DynamoDB unreachable: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
        )),
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn transact_item(&self, op: &WriteOp, now: i64) -> Result<TransactWriteItem, StoreError> {
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
        Ok(match op {
            WriteOp::Put { item, condition } => {
                let b = conditioned!(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(to_attrs(item)?)),
                    *condition,
                    now
                );
                TransactWriteItem::builder()
                    .put(b.build().map_err(invalid)?)
                    .build()
            }
            WriteOp::Delete { pk, sk, condition } => {
                let b = conditioned!(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk))),
                    *condition,
                    now
                );
                TransactWriteItem::builder()
                    .delete(b.build().map_err(invalid)?)
                    .build()
            }
            WriteOp::Check { pk, sk, condition } => {
                let (expr, values) = condition_expr(*condition, now).unwrap_or_else(|| {
                    (
                        "attribute_exists(pk) OR attribute_not_exists(pk)".into(),
                        HashMap::new(),
                    )
                });
                let mut b = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, sk)))
                    .set_expression_attribute_names(Some(names(&expr)).filter(|n| !n.is_empty()))
                    .condition_expression(expr);
                if !values.is_empty() {
                    b = b.set_expression_attribute_values(Some(values));
                }
                TransactWriteItem::builder()
                    .condition_check(b.build().map_err(invalid)?)
                    .build()
            }
        })
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.item {
            Some(a) => {
                let item = from_attrs(&a)?;
                Ok(live(&item, now_secs()).then_some(item))
            }
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let req = conditioned!(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(to_attrs(&item)?)),
            condition,
            now_secs()
        );
        req.send().await.map(|_| ()).map_err(sdk_error)
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        let req = conditioned!(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk))),
            condition,
            now_secs()
        );
        req.send().await.map(|_| ()).map_err(sdk_error)
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if ops.is_empty() || ops.len() > 100 {
            return Err(StoreError::Invalid(format!(
                "a transaction holds 1 to 100 writes, got {}",
                ops.len()
            )));
        }
        let now = now_secs();
        let items = ops
            .iter()
            .map(|op| self.transact_item(op, now))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(ulid::Ulid::new().to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons = c.cancellation_reasons();
                    if let Some(i) = reasons
                        .iter()
                        .position(|r| r.code() == Some("ConditionalCheckFailed"))
                    {
                        return Err(StoreError::ConditionFailed { index: Some(i) });
                    }
                    // Another transaction touched one of the items at the same
                    // moment: a lost race, retried by the domain like one.
                    if reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                    {
                        return Err(StoreError::ConditionFailed { index: None });
                    }
                    let codes: Vec<_> = reasons
                        .iter()
                        .filter_map(|r| r.code())
                        .filter(|c| *c != "None")
                        .collect();
                    Err(StoreError::Unavailable(format!(
                        "transaction cancelled: {codes:?}"
                    )))
                }
                other => {
                    let code = other.code().unwrap_or("unknown").to_owned();
                    let msg = other.message().unwrap_or("").to_owned();
                    if code == "ValidationException" {
                        Err(StoreError::Invalid(msg))
                    } else {
                        Err(StoreError::Unavailable(format!("DynamoDB {code}: {msg}")))
                    }
                }
            },
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        let limit = q.limit.clamp(1, 1000);
        let now = now_secs();
        let mut items = Vec::new();
        let mut start = q.after.as_ref().map(|after| key(&q.pk, after));
        loop {
            let mut values = HashMap::from([
                (":pk".to_owned(), AttributeValue::S(q.pk.clone())),
                (":now".to_owned(), AttributeValue::N(now.to_string())),
            ]);
            let mut cond = "pk = :pk".to_owned();
            if !q.sk_prefix.is_empty() {
                cond.push_str(" AND begins_with(sk, :prefix)");
                values.insert(":prefix".into(), AttributeValue::S(q.sk_prefix.clone()));
            }
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(cond)
                .filter_expression("attribute_not_exists(#ttl) OR #ttl > :now")
                .expression_attribute_names("#ttl", "ttl")
                .set_expression_attribute_values(Some(values))
                .scan_index_forward(!q.descending)
                .consistent_read(true)
                .limit((limit - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for a in out.items() {
                items.push(from_attrs(a)?);
            }
            match out.last_evaluated_key {
                // The filter dropped expired items: read on to fill the page.
                Some(lek) if items.len() < limit => start = Some(lek),
                Some(lek) => {
                    let next = match lek.get("sk") {
                        Some(AttributeValue::S(s)) => Some(s.clone()),
                        _ => return Err(StoreError::Corrupt("LastEvaluatedKey without sk".into())),
                    };
                    return Ok(Page { items, next });
                }
                None => return Ok(Page { items, next: None }),
            }
        }
    }
}

/// Creates the table as the SAM template declares it (on-demand, `pk`/`sk`,
/// TTL on `ttl`, a new-image stream) when it does not exist. For local
/// servers and tests; in AWS the stack owns the table.
pub async fn ensure_table(client: &Client, table: &str) -> Result<(), String> {
    if client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let ks = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| e.to_string())
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(ks("pk", KeyType::Hash)?)
        .key_schema(ks("sk", KeyType::Range)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Someone else created it meanwhile: theirs is as good as ours.
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot create table {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))
        }
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot enable TTL on {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(())
}
