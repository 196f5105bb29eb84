//! The ports: what the domain needs from the outside world, as traits, and
//! the [`Services`] value that carries one implementation of each.
//!
//! The [`Store`] is a small item store modelled on what DynamoDB guarantees
//! (conditional writes, all-or-nothing transactions, ordered queries within a
//! partition, TTL) so that every adapter can honour it exactly.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use firewatch_types::{Card, Destination, TenantId, ThreadRef};

use crate::Settings;

/// One stored item. `data` is the JSON encoding of a domain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Partition key; always starts with the tenant (or `_` for global items).
    pub pk: String,
    /// Sort key within the partition; queries return items in its byte order.
    pub sk: String,
    /// Bumped by the domain on every write; conditions compare against it.
    pub version: u64,
    /// Unix seconds after which the item is gone: reads never return it and
    /// an `Absent` condition treats it as absent.
    pub expires_at: Option<i64>,
    pub data: String,
    /// The kind of record, for the items a stream consumer acts on; stored
    /// beside the item (attribute `k` on DynamoDB), so the table's stream
    /// can be filtered by it and the dispatcher never reads kinds from keys.
    pub kind: Option<ItemKind>,
}

/// The kinds of item the dispatcher takes from the table's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// An outbox record: an effect to deliver.
    Outbox,
    /// An audit event queued by a function that may not write the log.
    QueuedAudit,
}

impl ItemKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::QueuedAudit => "auditq",
        }
    }

    /// The kind of a stored form; `None` for one this build does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "outbox" => Some(Self::Outbox),
            "auditq" => Some(Self::QueuedAudit),
            _ => None,
        }
    }
}

/// What must hold for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No condition.
    Always,
    /// No live item exists at the key.
    Absent,
    /// A live item exists at the key with exactly this version.
    Version(u64),
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Writes nothing, but the transaction fails unless the condition holds.
    Check {
        pk: String,
        sk: String,
        condition: Condition,
    },
}

impl WriteOp {
    /// The partition the operation touches, and its DynamoDB action.
    pub fn target(&self) -> (&str, &'static str) {
        match self {
            Self::Put { item, .. } => (&item.pk, "PutItem"),
            Self::Delete { pk, .. } => (pk, "DeleteItem"),
            Self::Check { pk, .. } => (pk, "ConditionCheckItem"),
        }
    }
}

/// A range read within one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub pk: String,
    /// Only sort keys starting with this.
    pub sk_prefix: String,
    /// Resume after this sort key (exclusive), as returned in [`Page::next`].
    pub after: Option<String>,
    pub limit: usize,
    pub descending: bool,
}

impl Query {
    /// The first `limit` items of partition `pk`, in sort-key order.
    pub fn all(pk: impl Into<String>, limit: usize) -> Self {
        Self {
            pk: pk.into(),
            sk_prefix: String::new(),
            after: None,
            limit,
            descending: false,
        }
    }
}

/// One page of a query; `next` is set when more items may follow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

/// Store failures, already translated from whatever the adapter speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold. For a transaction, `index` names the first
    /// write whose condition failed, when the store reports it.
    #[error("condition failed")]
    ConditionFailed { index: Option<usize> },
    /// The store is unreachable or throttling after retries; try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the request as malformed (too many writes, the same
    /// key twice in one transaction, an item too large): a bug, not a race.
    #[error("store refused the request: {0}")]
    Invalid(String),
    /// The store answered with something that cannot be right.
    #[error("store returned corrupt data: {0}")]
    Corrupt(String),
}

/// Why a chat call failed, classified for retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// 429: try again after the platform's `Retry-After`, when it gave one.
    #[error("rate limited by the chat platform")]
    RateLimited {
        retry_after: Option<std::time::Duration>,
    },
    /// 5xx or unreachable: try again later.
    #[error("chat platform unavailable: {0}")]
    Unavailable(String),
    /// The platform refused the request (bad channel, no permission): retrying
    /// the same request will not help.
    #[error("chat platform refused the request: {0}")]
    Rejected(String),
}

impl ChatError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected(_))
    }
}

/// A chat platform (or several, routed by [`firewatch_types::Destination`]).
#[async_trait]
pub trait ChatClient: Send + Sync {
    /// Posts the root card of a new thread and returns where it landed.
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError>;
    /// Replaces the root card with the incident's current state.
    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError>;
    /// Posts a reply in the thread.
    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError>;
    /// Posts a reply that pings `people` (participants: `slack:U0123`,
    /// `discord:8035…`, `telegram:1234`, an email) where the platform can:
    /// a platform turns its own participants into mentions and names the
    /// others in plain text. By default every one is named.
    async fn reply_mentioning(
        &self,
        thread: &ThreadRef,
        text: &str,
        people: &[String],
    ) -> Result<(), ChatError> {
        self.reply(thread, &named(text, people, |_| None)).await
    }
    /// Posts a message with buttons in the thread (a playbook run's own
    /// message) and returns its id, for [`ChatClient::edit_message`]. A
    /// platform without buttons posts the text as a reply.
    async fn post_message(
        &self,
        thread: &ThreadRef,
        message: &firewatch_types::ChatMessage,
    ) -> Result<String, ChatError> {
        self.reply(thread, &message.text)
            .await
            .map(|()| String::new())
    }
    /// Replaces a message [`ChatClient::post_message`] posted. A platform
    /// that cannot edit does nothing (the thread has the reply).
    async fn edit_message(
        &self,
        _thread: &ThreadRef,
        _message_id: &str,
        _message: &firewatch_types::ChatMessage,
    ) -> Result<(), ChatError> {
        Ok(())
    }
}

/// `text` followed by `people`: each as `mention(p)` gives it (the
/// platform's own mention) or else by name (an email without `email:`).
pub fn named(text: &str, people: &[String], mention: impl Fn(&str) -> Option<String>) -> String {
    if people.is_empty() {
        return text.to_owned();
    }
    let who: Vec<String> = people
        .iter()
        .map(|p| mention(p).unwrap_or_else(|| p.strip_prefix("email:").unwrap_or(p).to_owned()))
        .collect();
    format!("{text} {}", who.join(" "))
}

/// Items with conditional writes, transactions, queries and TTL.
#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError>;
    /// Applies every write or none. At most 100 writes, each to a distinct key.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
}

/// Blob failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    #[error("invalid blob key: {0}")]
    InvalidKey(String),
}

/// Checks a blob key: relative `[A-Za-z0-9._-]` segments separated by `/`.
/// Anything else (`..`, absolute paths) could escape a directory, so every
/// adapter refuses it the same way.
pub fn check_blob_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.chars().take(100).collect()))
    }
}

/// Large or raw payloads, addressed by key.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Stores `bytes` at `key`, replacing what was there.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
}

/// Wall-clock time, faked in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Unique, time-ordered ids (ULIDs).
pub trait Ids: Send + Sync {
    /// A 26-character ULID, strictly increasing within this process.
    fn ulid(&self) -> String;
}

/// Confirms an SNS subscription by fetching its `SubscribeURL`. The domain
/// has already checked the URL's host before calling.
#[async_trait]
pub trait SnsConfirmer: Send + Sync {
    async fn confirm(&self, subscribe_url: &str) -> Result<(), String>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved; for tests.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Monotonic ULIDs from the system clock and a random source.
#[derive(Default)]
pub struct SystemIds(Mutex<ulid::Generator>);

impl Ids for SystemIds {
    fn ulid(&self) -> String {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The generator only fails when 2^80 ids are made in one millisecond;
        // a fresh random ULID is still unique then, just not ordered.
        g.generate()
            .unwrap_or_else(|_| ulid::Ulid::new())
            .to_string()
    }
}

/// Refuses every confirmation; the default until a real one is wired in.
pub struct NoSnsConfirmer;

#[async_trait]
impl SnsConfirmer for NoSnsConfirmer {
    async fn confirm(&self, _subscribe_url: &str) -> Result<(), String> {
        Err("SNS subscription confirmation is not enabled here".into())
    }
}

/// Records confirmations instead of fetching; for tests.
#[derive(Default)]
pub struct RecordingSnsConfirmer(pub Mutex<Vec<String>>);

#[async_trait]
impl SnsConfirmer for RecordingSnsConfirmer {
    async fn confirm(&self, subscribe_url: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(subscribe_url.to_owned());
        Ok(())
    }
}

/// No chat platform configured: every call is refused.
pub struct NoChat;

#[async_trait]
impl ChatClient for NoChat {
    async fn post_root(
        &self,
        dest: &firewatch_types::Destination,
        _card: &firewatch_types::Card,
    ) -> Result<firewatch_types::ThreadRef, ChatError> {
        Err(ChatError::Rejected(format!(
            "no chat client is configured for {dest}"
        )))
    }
    async fn update_root(
        &self,
        t: &firewatch_types::ThreadRef,
        _card: &firewatch_types::Card,
    ) -> Result<(), ChatError> {
        Err(ChatError::Rejected(format!(
            "no chat client is configured for {}",
            t.destination
        )))
    }
    async fn reply(&self, t: &firewatch_types::ThreadRef, _text: &str) -> Result<(), ChatError> {
        Err(ChatError::Rejected(format!(
            "no chat client is configured for {}",
            t.destination
        )))
    }
}

/// An outbound request a playbook step sends, rendered with real secrets.
/// It lives only while it is sent: what is stored or shown is the masked
/// rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub json: Option<serde_json::Value>,
    pub timeout: std::time::Duration,
}

/// What the target answered.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundResponse {
    pub status: u16,
    /// The body, parsed when it was JSON, else as a string (first 64 KB).
    pub body: serde_json::Value,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// It never reached the target (refused, DNS, TLS): safe to send again.
    #[error("not sent: {0}")]
    Unreached(String),
    /// It may have reached the target but no answer came (a timeout, a
    /// broken connection): never repeated automatically.
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// This kind of call is not available here (a Lambda invoke outside AWS).
    #[error("{0}")]
    Unsupported(String),
}

/// Calls out of firewatch for playbook steps: HTTP requests and AWS Lambda
/// invocations. Only the path that executes steps holds a real one.
#[async_trait]
pub trait Egress: Send + Sync {
    async fn send(&self, req: &OutboundRequest) -> Result<OutboundResponse, OutboundError>;
    /// Invokes a Lambda function synchronously; the status is the
    /// invocation's (200), the body its payload, and a function error is
    /// reported as status 500 with the error payload.
    async fn invoke_lambda(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<OutboundResponse, OutboundError>;
}

/// No calls out: every request is refused without being sent.
pub struct NoEgress;

#[async_trait]
impl Egress for NoEgress {
    async fn send(&self, _req: &OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        Err(OutboundError::Unsupported(
            "outbound requests are not enabled in this process".into(),
        ))
    }
    async fn invoke_lambda(
        &self,
        _function: &str,
        _payload: &serde_json::Value,
    ) -> Result<OutboundResponse, OutboundError> {
        Err(OutboundError::Unsupported(
            "lambda_invoke needs AWS: no Lambda client in this process".into(),
        ))
    }
}

/// A request to a language model: a system text, a prompt, and the JSON
/// schema of the answer, asked for as a call of tool `tool_name` where the
/// model supports tools.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub system: String,
    pub prompt: String,
    pub tool_name: &'static str,
    pub schema: serde_json::Value,
    pub max_tokens: u32,
}

/// What a model answered: the tool call's input, or text (which should
/// hold the JSON object), and the tokens it used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmAnswer {
    pub json: Option<serde_json::Value>,
    pub text: Option<String>,
    pub usage: firewatch_types::TokenUsage,
}

/// Why a model gave no usable answer. Only `Throttled` and `Server` are
/// retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("server error: {0}")]
    Server(String),
    #[error("timed out")]
    Timeout,
    #[error("refused: {0}")]
    Refused(String),
    #[error("unreachable: {0}")]
    Unavailable(String),
    #[error("invalid answer: {0}")]
    Invalid(String),
    #[error("no model is configured")]
    NotConfigured,
}

/// A language model that assisted triage asks.
#[async_trait]
pub trait Llm: Send + Sync {
    /// `bedrock` or `openai_compatible`.
    fn provider(&self) -> &'static str;
    fn model(&self) -> String;
    async fn complete(&self, req: &LlmRequest) -> Result<LlmAnswer, LlmError>;
    /// Whether the credentials the model needs resolve, found without
    /// calling the model: `Ok` with how, or `Err` with what is missing.
    /// Never returns a credential.
    async fn credentials(&self) -> Result<String, String> {
        Ok("no credentials are needed".into())
    }
}

/// A ticket to open in an issue tracker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewTicket {
    pub title: String,
    /// Markdown (GitHub, GitLab); Jira gets it as Atlassian Document Format.
    pub body: String,
    pub severity: firewatch_types::Severity,
    /// Extra labels beyond `firewatch` and the severity.
    pub labels: Vec<String>,
}

/// A ticket the tracker created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTicket {
    /// The tracker's name for it: `owner/repo#12`, `group/project#3`, `OPS-7`.
    pub id: String,
    pub url: String,
}

/// Why a tracker call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrackerError {
    /// Worth trying again (a 5xx, 429, timeout or unreachable tracker).
    #[error("{0}")]
    Retryable(String),
    /// Trying again changes nothing (refused credentials, unknown project).
    #[error("{0}")]
    Permanent(String),
}

/// An issue tracker tickets are opened in (GitHub, GitLab, Jira).
#[async_trait]
pub trait Tracker: Send + Sync {
    /// `github`, `gitlab` or `jira`.
    fn kind(&self) -> &'static str;
    /// Where tickets go: `owner/repo`, a project path, a Jira project key.
    fn project(&self) -> String;
    async fn create(&self, ticket: &NewTicket) -> Result<CreatedTicket, TrackerError>;
    /// Whether the tracker answers and knows the project: one read-only
    /// call (the repository, the project), nothing written.
    async fn check(&self) -> Result<(), TrackerError>;
}

/// A paging event (PagerDuty Events API v2): trigger, acknowledge or resolve
/// the alert `dedup_key` of the integration `routing_key`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageEvent {
    /// The integration's key: a secret, read when sent, never stored.
    pub routing_key: String,
    /// `trigger`, `acknowledge` or `resolve`.
    pub action: &'static str,
    pub dedup_key: String,
    pub summary: String,
    pub source: String,
    pub severity: firewatch_types::Severity,
    pub links: Vec<firewatch_types::Link>,
    pub custom_details: serde_json::Value,
}

/// Why a page was not sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PagerError {
    /// Worth trying again (a 5xx, 429, timeout or unreachable service).
    #[error("{0}")]
    Retryable(String),
    /// Trying again changes nothing (an invalid event or routing key).
    #[error("{0}")]
    Permanent(String),
}

/// Where pages go (PagerDuty's Events API v2).
#[async_trait]
pub trait Pager: Send + Sync {
    async fn send(&self, event: &PageEvent) -> Result<(), PagerError>;
}

/// Secret values by name, resolved only when a request is sent.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The value of secret `name`, or `None` when it is not configured.
    async fn get(&self, name: &str) -> Result<Option<String>, String>;
}

/// Where tenants' secret values are kept when they are not kept in the
/// table (on AWS: Secrets Manager, one secret per tenant and name under a
/// path of the deployment). Errors name the secret, never a value.
#[async_trait]
pub trait TenantVault: Send + Sync {
    async fn put(&self, tenant: &TenantId, name: &str, value: &str) -> Result<(), String>;
    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Option<String>, String>;
    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<(), String>;
}

/// Secrets from the environment: `FIREWATCH_SECRET_<NAME>`, else the key
/// `NAME` of the JSON object in `FIREWATCH_PLAYBOOK_SECRETS` (on AWS, a
/// Secrets Manager value the template resolves into the functions that
/// send).
pub struct EnvSecrets;

#[async_trait]
impl SecretSource for EnvSecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(v) = std::env::var(format!("FIREWATCH_SECRET_{name}"))
            .ok()
            .filter(|v| !v.is_empty())
        {
            return Ok(Some(v));
        }
        let Ok(all) = std::env::var("FIREWATCH_PLAYBOOK_SECRETS") else {
            return Ok(None);
        };
        if all.trim().is_empty() {
            return Ok(None);
        }
        // The error names the variable, never its content.
        let map: std::collections::HashMap<String, String> =
            serde_json::from_str(&all).map_err(|_| {
                "FIREWATCH_PLAYBOOK_SECRETS is not a JSON object of strings".to_string()
            })?;
        Ok(map.get(name).filter(|v| !v.is_empty()).cloned())
    }
}

/// Secrets from a map; for tests.
#[derive(Default)]
pub struct MapSecrets(pub std::collections::HashMap<String, String>);

#[async_trait]
impl SecretSource for MapSecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).cloned())
    }
}

/// A process's memory between requests: one value per type, made with
/// `Default` when first asked for. A capability keeps its own cache here
/// without the base layer knowing its type.
#[derive(Default)]
pub struct Memos(Mutex<HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>);

impl Memos {
    /// This process's `T`.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let any = map
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        any.downcast::<T>()
            .unwrap_or_else(|_| unreachable!("a memo is kept under its own type"))
    }
}

/// One implementation of every port, cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn Blobs>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn Ids>,
    pub sns: Arc<dyn SnsConfirmer>,
    pub chat: Arc<dyn ChatClient>,
    /// Notified whenever a change enqueues outbox records; the local
    /// dispatcher waits on it (in AWS the table's stream plays this part).
    pub outbox_signal: Arc<tokio::sync::Notify>,
    pub settings: Arc<Settings>,
    /// Calls out for playbook steps; [`NoEgress`] unless the process
    /// executes steps.
    pub egress: Arc<dyn Egress>,
    pub secrets: Arc<dyn SecretSource>,
    /// Where tenants' secret values live; `None`: in the table, beside
    /// their names (the embedded store).
    pub vault: Option<Arc<dyn TenantVault>>,
    /// What this process remembers between requests, one value per type,
    /// each owned by the capability that defines it (which providers'
    /// freshness it marked lately, each tenant's silences as it last read
    /// them).
    pub memos: Arc<Memos>,
    /// The model assisted triage asks, when one is configured.
    pub llm: Option<Arc<dyn Llm>>,
    /// The issue tracker tickets are opened in, when one is configured.
    pub tracker: Option<Arc<dyn Tracker>>,
    /// Where escalation pages go; only the processes that deliver hold one.
    pub pager: Option<Arc<dyn Pager>>,
}

impl Services {
    /// Services over the given store and blobs with the system clock, system
    /// ids, no SNS confirmation and default settings.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>) -> Self {
        Self {
            store,
            blobs,
            clock: Arc::new(SystemClock),
            ids: Arc::new(SystemIds::default()),
            sns: Arc::new(NoSnsConfirmer),
            chat: Arc::new(NoChat),
            outbox_signal: Arc::new(tokio::sync::Notify::new()),
            settings: Arc::new(Settings::default()),
            egress: Arc::new(NoEgress),
            secrets: Arc::new(EnvSecrets),
            vault: None,
            memos: Arc::default(),
            llm: None,
            tracker: None,
            pager: None,
        }
    }

    pub fn with_pager(mut self, pager: Option<Arc<dyn Pager>>) -> Self {
        self.pager = pager;
        self
    }

    pub fn with_tracker(mut self, tracker: Option<Arc<dyn Tracker>>) -> Self {
        self.tracker = tracker;
        self
    }

    pub fn with_egress(mut self, egress: Arc<dyn Egress>) -> Self {
        self.egress = egress;
        self
    }

    pub fn with_llm(mut self, llm: Option<Arc<dyn Llm>>) -> Self {
        self.llm = llm;
        self
    }

    pub fn with_secrets(mut self, secrets: Arc<dyn SecretSource>) -> Self {
        self.secrets = secrets;
        self
    }

    pub fn with_vault(mut self, vault: Option<Arc<dyn TenantVault>>) -> Self {
        self.vault = vault;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_sns(mut self, sns: Arc<dyn SnsConfirmer>) -> Self {
        self.sns = sns;
        self
    }

    pub fn with_chat(mut self, chat: Arc<dyn ChatClient>) -> Self {
        self.chat = chat;
        self
    }

    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = Arc::new(settings);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::ItemKind;

    #[test]
    fn a_kind_reads_back_as_it_was_stored() {
        for k in [ItemKind::Outbox, ItemKind::QueuedAudit] {
            assert_eq!(ItemKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ItemKind::parse("OUTBOX"), None, "stored forms are exact");
    }
}
