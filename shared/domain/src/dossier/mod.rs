//! The source dossier: one small index item per received webhook, so an
//! operator can see what each provider sent, what it touched, and which
//! sources arrive without links back to their origin.
//!
//! The item is written by ingest with the webhook's redelivery marker, in
//! one transaction, after the incident changes the webhook caused have
//! committed (their list is only known then). A webhook answered with an
//! error changes nothing and leaves no item; one whose answer was lost is
//! sent again by its provider and recorded then. A redelivery inside the
//! dedup window gets its own item, flagged `duplicate`.
//!
//! The item keeps a redacted preview of the content (at most
//! [`PREVIEW_BYTES`]), its sha256 and length, the links found in its alerts
//! by kind ([`SourceRef`]), the first alert's identity, and the incidents
//! touched. The whole redacted envelope is in the blob store when the
//! webhook changed something (`blob_key`). Reads are bounded: a list page
//! scans at most [`PAGE_BUDGET`] items, coverage the newest
//! [`COVERAGE_SCAN`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use firewatch_types::{Alert, AlertStatus, Principal, Role, Severity, SourceKind, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
pub use crate::keys::dossier_pk;
use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Bytes of redacted content kept in an item (the whole redacted envelope
/// is in the blob store when the webhook changed something).
pub const PREVIEW_BYTES: usize = 512;
/// Links kept per item.
pub const MAX_REFS: usize = 8;
/// Incidents and fingerprints kept per item.
pub const MAX_INCIDENTS: usize = 10;
/// Items one list page reads at most while filtering.
pub const PAGE_BUDGET: usize = 1000;
/// Items a coverage read counts at most (the newest).
pub const COVERAGE_SCAN: usize = 10_000;
/// Largest page.
pub const MAX_LIMIT: usize = 200;

/// A link back to where an alert came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// `generator` (the rule that fired: Prometheus, Grafana), `sentry`,
    /// `signoz`, `cloudwatch`, `dashboard`, `runbook`, `alertmanager`,
    /// `silence` or `other`.
    pub kind: String,
    pub href: String,
}

/// One received webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierEvent {
    /// `dos_<ULID>`.
    pub id: String,
    pub provider: SourceKind,
    /// `firing`, `resolved`, `acknowledged`, `mixed`, `heartbeat`,
    /// `subscription` or `empty` (no alert in it).
    pub stage: String,
    /// The provider's id of the event, where it sends one (PagerDuty
    /// `dedup_key`, Alertmanager/Grafana `groupKey`, Sentry event or issue
    /// id, SNS `MessageId`, a generic `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_event_id: Option<String>,
    /// The content, redacted, cut to [`PREVIEW_BYTES`].
    pub preview: String,
    pub sha256: String,
    pub length: usize,
    /// True when redaction removed something.
    pub redacted: bool,
    #[serde(default)]
    pub source_refs: Vec<SourceRef>,
    pub alerts: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Fingerprints of every alert in it (at most [`MAX_INCIDENTS`]), for
    /// the `fingerprint` filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    pub duplicate: bool,
    /// Alerts of it an active silence held (no incident, no message).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub silenced: usize,
    /// When the provider says it happened (the earliest alert start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_timestamp: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    #[serde(default)]
    pub incidents: Vec<String>,
    /// Where the whole redacted envelope is kept, when it changed something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_key: Option<String>,
}

/// The kind of a link, from its text and where it points.
fn ref_kind(source: SourceKind, text: Option<&str>, href: &str) -> &'static str {
    let h = href.to_ascii_lowercase();
    match text.unwrap_or_default() {
        "source" if source == SourceKind::Signoz || h.contains("signoz") => "signoz",
        "source" => "generator",
        "sentry" => "sentry",
        "cloudwatch" => "cloudwatch",
        "dashboard" | "panel" => "dashboard",
        "runbook" => "runbook",
        "alertmanager" => "alertmanager",
        "silence" => "silence",
        _ if h.contains("sentry.io") || source == SourceKind::Sentry => "sentry",
        _ if h.contains("signoz") => "signoz",
        _ if h.contains("console.aws.amazon.com/cloudwatch") => "cloudwatch",
        _ => "other",
    }
}

/// The provider's own id of the event, where its payload has one.
fn provider_event_id(
    source: SourceKind,
    body: &serde_json::Value,
    dedup: Option<&str>,
) -> Option<String> {
    if let Some(d) = dedup {
        return Some(d.to_owned());
    }
    let s = |p: &str| {
        body.pointer(p).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let id = match source {
        SourceKind::Alertmanager | SourceKind::Grafana | SourceKind::Signoz => s("/groupKey"),
        SourceKind::Sentry => s("/data/event/event_id")
            .or_else(|| s("/data/issue/id"))
            .or_else(|| s("/id")),
        SourceKind::Cloudwatch => s("/MessageId"),
        _ => s("/id").or_else(|| s("/event_id")),
    };
    // An id is the provider's text: a group key may carry label values.
    id.map(|v| crate::redact::redact_text(&crate::limits::truncate(&v, 200)))
}

/// A copy of `v` small enough to preview: lists cut to their first three
/// elements, strings to 300 bytes, nesting to 8 levels.
fn pruned(v: &serde_json::Value, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    match v {
        _ if depth > 8 => Value::String("…".into()),
        Value::Object(m) => Value::Object(
            m.iter()
                .take(40)
                .map(|(k, c)| (k.clone(), pruned(c, depth + 1)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().take(3).map(|c| pruned(c, depth + 1)).collect()),
        Value::String(s) if s.len() > 300 => Value::String(crate::limits::truncate(s, 300)),
        other => other.clone(),
    }
}

/// Whether redaction would remove anything from `v` (stops at the first).
fn carries_secret(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, c)| (crate::redact::is_secret_key(k) && !c.is_null()) || carries_secret(c)),
        Value::Array(a) => a.iter().any(carries_secret),
        Value::String(s) => crate::redact::redact_str(s).is_some(),
        _ => false,
    }
}

/// What a webhook is about, from its alerts.
fn stage(alerts: &[Alert]) -> &'static str {
    let all = |st: AlertStatus| alerts.iter().all(|a| a.status == st);
    match alerts.first() {
        None => "empty",
        Some(_) if all(AlertStatus::Firing) => "firing",
        Some(_) if all(AlertStatus::Resolved) => "resolved",
        Some(_) if all(AlertStatus::Acknowledged) => "acknowledged",
        Some(_) => "mixed",
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What ingest knows about one received webhook.
pub struct Received<'a> {
    pub source: SourceKind,
    pub body: &'a [u8],
    pub sha256: &'a str,
    pub alerts: &'a [Alert],
    pub dedup_key: Option<&'a str>,
    pub incidents: &'a [firewatch_types::IncidentId],
    pub duplicate: bool,
    pub blob_key: Option<&'a str>,
    /// Alerts an active silence held.
    pub silenced: usize,
    /// Overrides the stage read from the alerts (`heartbeat`, `subscription`).
    pub stage: Option<&'a str>,
}

/// The dossier item of a received webhook, given its new ULID and the time.
pub fn describe(ulid: &str, now: DateTime<Utc>, r: &Received<'_>) -> DossierEvent {
    let original: serde_json::Value = serde_json::from_slice(r.body).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(r.body).into_owned())
    });
    // The preview needs the first kilobyte only: redact a pruned copy (the
    // first elements of each list, strings cut), not the whole body.
    let mut shown = pruned(&original, 0);
    crate::redact::redact_json(&mut shown);
    let preview_full = match &shown {
        serde_json::Value::String(s) => crate::redact::redact_text(s),
        v => v.to_string(),
    };
    let mut refs: Vec<SourceRef> = Vec::new();
    for a in r.alerts {
        for l in &a.links {
            if refs.len() < MAX_REFS && !refs.iter().any(|x| x.href == l.href) {
                refs.push(SourceRef {
                    kind: ref_kind(r.source, l.text.as_deref(), &l.href).into(),
                    href: crate::limits::truncate(&l.href, 300),
                });
            }
        }
    }
    let first = r.alerts.first();
    let label = |keys: &[&str]| {
        first.and_then(|a| {
            keys.iter()
                .find_map(|k| a.labels.get(*k))
                .map(|v| crate::limits::truncate(v, 200))
        })
    };
    DossierEvent {
        id: format!("dos_{ulid}"),
        provider: r.source,
        stage: r.stage.unwrap_or_else(|| stage(r.alerts)).into(),
        provider_event_id: provider_event_id(r.source, &original, r.dedup_key),
        preview: crate::limits::truncate(&preview_full, PREVIEW_BYTES),
        sha256: r.sha256.to_owned(),
        length: r.body.len(),
        redacted: carries_secret(&original),
        source_refs: refs,
        alerts: r.alerts.len(),
        alertname: label(&["alertname"])
            .or_else(|| first.map(|a| crate::limits::truncate(&a.title, 200))),
        severity: r.alerts.iter().map(|a| a.severity).reduce(Severity::worst),
        namespace: label(&["namespace", "kubernetes_namespace"]),
        target: label(&["instance", "service", "job", "host", "pod"]),
        fingerprint: first.map(|a| crate::limits::truncate(&a.fingerprint, 200)),
        fingerprints: r
            .alerts
            .iter()
            .take(MAX_INCIDENTS)
            .map(|a| crate::limits::truncate(&a.fingerprint, 200))
            .collect(),
        duplicate: r.duplicate,
        silenced: r.silenced,
        provider_timestamp: r
            .alerts
            .iter()
            .filter_map(|a| a.starts_at.or(a.ends_at))
            .min(),
        received_at: now,
        incidents: r
            .incidents
            .iter()
            .take(MAX_INCIDENTS)
            .map(ToString::to_string)
            .collect(),
        blob_key: r.blob_key.map(str::to_owned),
    }
}

/// The item of a webhook `svc` received now.
pub fn record(svc: &Services, r: &Received<'_>) -> DossierEvent {
    describe(&svc.ids.ulid(), svc.clock.now(), r)
}

/// Writes the item of a webhook that caused no incident change.
pub async fn keep(svc: &Services, tenant: &TenantId, r: &Received<'_>) -> Result<(), DomainError> {
    let ev = record(svc, r);
    let mut work = Work::new(svc);
    keep_in(&mut work, tenant, &ev)?;
    work.commit().await?;
    Ok(())
}

/// Writes dossier item `ev` with `work` (put once: its ULID is new).
pub fn keep_in(
    work: &mut Work<'_>,
    tenant: &TenantId,
    ev: &DossierEvent,
) -> Result<(), DomainError> {
    let sk = ev.id.trim_start_matches("dos_").to_owned();
    let item = keys::item(dossier_pk(tenant), sk, 1, ev)?;
    // A fresh ULID names no existing item: nothing to check first.
    work.put(item, Condition::Always);
    Ok(())
}

/// Filters of `GET /v1/dossier/events`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub provider: Option<SourceKind>,
    pub incident: Option<String>,
    pub fingerprint: Option<String>,
}

impl Filter {
    fn keeps(&self, e: &DossierEvent) -> bool {
        self.provider.is_none_or(|p| e.provider == p)
            && self
                .incident
                .as_ref()
                .is_none_or(|i| e.incidents.iter().any(|x| x == i))
            && self.fingerprint.as_ref().is_none_or(|f| {
                e.fingerprint.as_ref() == Some(f) || e.fingerprints.iter().any(|x| x == f)
            })
    }
}

/// A page of dossier items, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub items: Vec<DossierEvent>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
    /// Items read for this page (at most [`PAGE_BUDGET`]): a rare filter
    /// answers what it found within the budget, with a cursor to go on.
    pub scanned: usize,
}

fn check_cursor(c: &str) -> Result<(), DomainError> {
    if c.len() != 26 || !c.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(DomainError::bad_input(
            "invalid_cursor",
            "cursor is not one this API gave",
        ));
    }
    Ok(())
}

/// Received webhooks, newest first, filtered, in pages.
pub async fn list(
    svc: &Services,
    p: &Principal,
    filter: &Filter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page, DomainError> {
    require_role(p, Role::Viewer, "read the source dossier")?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(DomainError::bad_input(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if let Some(c) = cursor {
        check_cursor(c)?;
    }
    let mut after = cursor.map(str::to_owned);
    let mut out = Page {
        items: Vec::new(),
        next_cursor: None,
        scanned: 0,
    };
    loop {
        let page = svc
            .store
            .query(Query {
                pk: dossier_pk(&p.tenant),
                sk_prefix: String::new(),
                after: after.take(),
                limit: (PAGE_BUDGET - out.scanned).min(limit.max(50)),
                descending: true,
            })
            .await?;
        for (i, item) in page.items.iter().enumerate() {
            out.scanned += 1;
            let e: DossierEvent = keys::decode(item)?;
            if filter.keeps(&e) {
                out.items.push(e);
                if out.items.len() == limit {
                    let more = i + 1 < page.items.len() || page.next.is_some();
                    out.next_cursor = more.then(|| item.sk.clone());
                    return Ok(out);
                }
            }
            if out.scanned == PAGE_BUDGET {
                let more = i + 1 < page.items.len() || page.next.is_some();
                out.next_cursor = more.then(|| item.sk.clone());
                return Ok(out);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// One dossier item with its envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WithEnvelope {
    #[serde(flatten)]
    pub event: DossierEvent,
    /// The webhook as kept: provider, headers (secrets redacted) and body
    /// (redacted); `null` when it changed nothing and was not kept.
    pub envelope: Option<serde_json::Value>,
    pub warnings: Vec<String>,
}

/// Item `id` (`dos_<ULID>`) with the redacted envelope it points to.
pub async fn get(svc: &Services, p: &Principal, id: &str) -> Result<WithEnvelope, DomainError> {
    require_role(p, Role::Viewer, "read the source dossier")?;
    let not_found = || {
        DomainError::NotFound(format!(
            "no dossier event {}",
            crate::limits::truncate(id, 40)
        ))
    };
    let sk = id.strip_prefix("dos_").ok_or_else(not_found)?;
    if check_cursor(sk).is_err() {
        return Err(not_found());
    }
    let item = svc
        .store
        .get(&dossier_pk(&p.tenant), sk)
        .await?
        .ok_or_else(not_found)?;
    let event: DossierEvent = keys::decode(&item)?;
    let mut warnings = Vec::new();
    let envelope = match &event.blob_key {
        None => {
            warnings.push(if event.duplicate {
                "a redelivery: the envelope is kept with the first delivery".to_owned()
            } else {
                "the webhook changed nothing, so its envelope was not kept: the preview is what remains".to_owned()
            });
            None
        }
        Some(key) => match svc.blobs.get(key).await {
            Ok(Some(bytes)) => Some(serde_json::from_slice(&bytes)?),
            Ok(None) => {
                warnings.push("the envelope is no longer in the blob store".into());
                None
            }
            Err(e) => {
                warnings.push(format!("the envelope could not be read: {e}"));
                None
            }
        },
    };
    Ok(WithEnvelope {
        event,
        envelope,
        warnings,
    })
}

/// Counts of one provider (or all).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub events: u64,
    pub duplicates: u64,
    pub redacted: u64,
    pub with_source_refs: u64,
    pub without_source_refs: u64,
    pub refs_by_kind: BTreeMap<String, u64>,
    pub latest_received: Option<DateTime<Utc>>,
}

impl Counts {
    fn add(&mut self, e: &DossierEvent) {
        self.events += 1;
        self.duplicates += u64::from(e.duplicate);
        self.redacted += u64::from(e.redacted);
        if e.source_refs.is_empty() {
            self.without_source_refs += 1;
        } else {
            self.with_source_refs += 1;
        }
        for r in &e.source_refs {
            *self.refs_by_kind.entry(r.kind.clone()).or_default() += 1;
        }
        self.latest_received = self.latest_received.max(Some(e.received_at));
    }
}

/// `GET /v1/dossier/coverage`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    pub providers: BTreeMap<String, Counts>,
    pub total: Counts,
    /// Items counted (the newest, at most [`COVERAGE_SCAN`]).
    pub scanned: usize,
    /// True when older items were left uncounted.
    pub truncated: bool,
    /// The oldest item counted.
    pub since: Option<DateTime<Utc>>,
}

/// What each provider sent, over the newest [`COVERAGE_SCAN`] webhooks.
pub async fn coverage(
    svc: &Services,
    p: &Principal,
    provider: Option<SourceKind>,
) -> Result<Coverage, DomainError> {
    require_role(p, Role::Viewer, "read the source dossier")?;
    let mut out = Coverage {
        providers: BTreeMap::new(),
        total: Counts::default(),
        scanned: 0,
        truncated: false,
        since: None,
    };
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: dossier_pk(&p.tenant),
                sk_prefix: String::new(),
                after: after.take(),
                limit: 1000.min(COVERAGE_SCAN - out.scanned),
                descending: true,
            })
            .await?;
        for item in &page.items {
            out.scanned += 1;
            let e: DossierEvent = keys::decode(item)?;
            out.since = Some(e.received_at);
            if provider.is_some_and(|p| p != e.provider) {
                continue;
            }
            out.total.add(&e);
            out.providers
                .entry(e.provider.as_str().to_owned())
                .or_default()
                .add(&e);
        }
        match page.next {
            Some(n) if out.scanned < COVERAGE_SCAN => after = Some(n),
            Some(_) => {
                out.truncated = true;
                return Ok(out);
            }
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firewatch_types::Link;

    fn alert(source: SourceKind, links: &[(&str, &str)]) -> Alert {
        Alert {
            source,
            fingerprint: "fp1".into(),
            status: AlertStatus::Firing,
            severity: Severity::Sev2,
            title: "HighErrorRate".into(),
            labels: [
                ("alertname".to_owned(), "HighErrorRate".to_owned()),
                ("namespace".to_owned(), "shop".to_owned()),
                ("instance".to_owned(), "10.0.0.7:9090".to_owned()),
            ]
            .into(),
            annotations: BTreeMap::new(),
            links: links
                .iter()
                .map(|(t, h)| Link {
                    href: (*h).into(),
                    text: Some((*t).into()),
                })
                .collect(),
            starts_at: None,
            ends_at: None,
        }
    }

    #[test]
    fn links_are_sorted_by_where_they_lead() {
        let am = SourceKind::Alertmanager;
        assert_eq!(
            ref_kind(am, Some("source"), "http://prom:9090/graph?g0.expr=up"),
            "generator"
        );
        assert_eq!(
            ref_kind(
                SourceKind::Signoz,
                Some("source"),
                "https://signoz.example/alerts/1"
            ),
            "signoz"
        );
        assert_eq!(
            ref_kind(
                SourceKind::Sentry,
                Some("sentry"),
                "https://acme.sentry.io/issues/1/"
            ),
            "sentry"
        );
        assert_eq!(
            ref_kind(
                SourceKind::Cloudwatch,
                Some("cloudwatch"),
                "https://console.aws.amazon.com/cloudwatch/home"
            ),
            "cloudwatch"
        );
        assert_eq!(
            ref_kind(am, Some("runbook"), "https://runbooks.example/x"),
            "runbook"
        );
        assert_eq!(
            ref_kind(SourceKind::Generic, None, "https://example.com"),
            "other"
        );
    }

    #[test]
    fn an_item_keeps_a_redacted_preview_and_the_alerts_identity() {
        let ulid = "01JD0000000000000000000001";
        let body = br#"{"groupKey": "{}:{alertname=\"HighErrorRate\"}", "token": "s3cr3t-value", "alerts": []}"#;
        let alerts = [alert(
            SourceKind::Alertmanager,
            &[("source", "http://prom:9090/graph")],
        )];
        let e = describe(
            ulid,
            Utc::now(),
            &Received {
                source: SourceKind::Alertmanager,
                body,
                sha256: "abc",
                alerts: &alerts,
                dedup_key: None,
                incidents: &[],
                duplicate: false,
                blob_key: None,
                stage: None,
                silenced: 0,
            },
        );
        assert!(e.id.starts_with("dos_"));
        assert_eq!(e.stage, "firing");
        assert!(e.redacted);
        assert!(!e.preview.contains("s3cr3t-value"), "{}", e.preview);
        assert_eq!(
            e.provider_event_id.as_deref(),
            Some("{}:{alertname=\"HighErrorRate\"}")
        );
        assert_eq!(e.alertname.as_deref(), Some("HighErrorRate"));
        assert_eq!(e.namespace.as_deref(), Some("shop"));
        assert_eq!(e.target.as_deref(), Some("10.0.0.7:9090"));
        assert_eq!(e.source_refs[0].kind, "generator");
        assert_eq!(e.length, body.len());
        let big = vec![b'x'; 5000];
        let e = describe(
            ulid,
            Utc::now(),
            &Received {
                source: SourceKind::Generic,
                body: &big,
                sha256: "abc",
                alerts: &[],
                dedup_key: None,
                incidents: &[],
                duplicate: true,
                blob_key: None,
                stage: None,
                silenced: 0,
            },
        );
        assert!(e.preview.len() <= PREVIEW_BYTES);
        assert_eq!((e.stage.as_str(), e.duplicate), ("empty", true));
    }
}
