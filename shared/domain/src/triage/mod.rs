//! Deterministic triage: rules over an incident and its history give a
//! likely cause, the impact, next actions, runbook links, a confidence and
//! the facts used.
//!
//! The rules read the incident's title and labels (split into words, so
//! `KubePodCrashLooping` reads as "kube pod crash looping"); the first rule
//! with a matching word wins. History is the same alert group's incidents of
//! the last [`HISTORY_DAYS`] days. Running triage records the report on the
//! timeline (and so in the chat thread, through the outbox) and audits it.

pub mod assisted;
pub mod feedback;
pub mod markdown;
pub mod telemetry;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{
    Confidence, FactUsed, Incident, IncidentId, IncidentState, Link, Principal, Role, Severity,
    TimelineKind, Traceability, TriageReport,
};

use crate::auth::require_role;
use crate::change::Change;
use crate::incidents;
use crate::ports::Condition;
use crate::work::Work;
use crate::{DomainError, Services};

/// The deterministic report's `mode`.
pub const DETERMINISTIC_MODE: &str = "deterministic_rules_v1";

pub use crate::settings::Requested;

/// How a triage is asked for.
#[derive(Debug, Clone)]
pub struct Ask {
    pub mode: Requested,
    /// The playbooks offered for the incident, which assisted triage may name.
    pub playbooks: Vec<String>,
    /// The report's id when the caller fixes it in advance (a triage the
    /// dispatcher performs for a chat click), so that performing it twice
    /// writes one report. `None`: a new id.
    pub report_id: Option<String>,
}

impl Ask {
    pub fn mode(mode: Requested) -> Self {
        Self {
            mode,
            playbooks: Vec::new(),
            report_id: None,
        }
    }
}

/// A new report id: `trg_` and a ULID, so ids sort by time.
pub fn new_report_id(svc: &Services) -> String {
    format!("trg_{}", svc.ids.ulid())
}

/// In an incident's partition: its reports, sort key `TRIAGE#<report id>`.
const REPORT_PREFIX: &str = "TRIAGE#";

/// How far back history goes.
pub const HISTORY_DAYS: i64 = 30;

/// At most this many recent incidents are read for history.
pub const HISTORY_SCAN_LIMIT: usize = 100;

/// Earlier incidents of the same alert group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Incidents for the same source and group key in the window, not
    /// counting the one being triaged.
    pub earlier: u64,
    /// Of those, how many were resolved (or closed).
    pub resolved: u64,
    /// The most recent earlier incident.
    pub last: Option<IncidentId>,
    pub last_resolved_at: Option<DateTime<Utc>>,
    /// Median time from opening to resolution of the resolved ones.
    pub median_time_to_resolve: Option<Duration>,
}

struct Rule {
    name: &'static str,
    /// Words (or word beginnings) that select the rule.
    words: &'static [&'static str],
    cause: &'static str,
    actions: &'static [&'static str],
}

/// The rule of an incident firewatch's pipelines view raised for a failed
/// or late run (source `pipelines`, not a cost anomaly): chosen before any
/// word, since a failed run's title ("failed", "error") would otherwise read
/// as a failing web service.
const PIPELINE_RULE: Rule = Rule {
    name: "pipeline",
    words: &[],
    cause: "A data pipeline run failed or is late: a failing task, input data that is late, \
            missing or malformed, or a change to the job or to what it reads.",
    actions: &[
        "Read the run's error and its failing task's log.",
        "Check that the inputs the run reads arrived complete and on time.",
        "Rerun the pipeline once the cause is fixed, and tell its downstream consumers when their data will be current.",
    ],
};

/// The rule catalogue, most specific first.
const RULES: &[Rule] = &[
    Rule {
        name: "certificate",
        words: &["certificate", "cert", "certs", "tls", "ssl"],
        cause: "A certificate is expiring or invalid.",
        actions: &[
            "Check the certificate's expiry and issuer on the endpoint.",
            "Renew or re-issue it, then confirm the new one is served everywhere.",
        ],
    },
    Rule {
        name: "disk",
        words: &["disk", "volume", "filesystem", "inode", "inodes", "storage"],
        cause: "A disk or volume is filling up.",
        actions: &[
            "Find what grew (logs, temp files, data) on the volume.",
            "Free or extend space before writes start failing.",
        ],
    },
    Rule {
        name: "memory",
        words: &["memory", "oom", "oomkilled", "heap", "rss", "swap"],
        cause: "Memory pressure: a leak, a load spike, or limits set too low.",
        actions: &[
            "Check memory use against limits and for OOM kills around the start time.",
            "Compare with the latest deploy; a leak often starts with one.",
        ],
    },
    Rule {
        name: "cpu",
        words: &["cpu", "throttl", "load"],
        cause: "CPU saturation: more load than capacity, or a hot code path.",
        actions: &[
            "Check CPU use and throttling against requests and limits.",
            "Scale out, or find the hot path in a profile.",
        ],
    },
    Rule {
        name: "queue",
        words: &["queue", "backlog", "lag", "consumer", "consumers", "dlq"],
        cause: "Consumers are falling behind: they slowed down, failed, or traffic rose.",
        actions: &[
            "Check that consumers are running and not failing on a poison message.",
            "Compare the produce rate with the consume rate; scale consumers if needed.",
        ],
    },
    Rule {
        name: "target_down",
        words: &[
            "down",
            "unreachable",
            "heartbeat",
            "crash",
            "crashloop",
            "crashlooping",
            "restart",
            "restarting",
            "unhealthy",
            "nodata",
            "absent",
        ],
        cause: "The target stopped answering: a crash, a failed deploy, or the network path to it.",
        actions: &[
            "Check whether the process or pod is running and when it last restarted.",
            "Look at the latest deploy or configuration change of this target.",
            "Check the network path and the load balancer's health checks.",
        ],
    },
    Rule {
        name: "latency",
        words: &[
            "latency", "slow", "p99", "p95", "p90", "duration", "timeout", "timeouts",
        ],
        cause: "Requests are slow: saturation, a slow dependency, or contention.",
        actions: &[
            "Find which dependency or endpoint the time is spent in.",
            "Check saturation (CPU, connections, pools) of the service and its database.",
        ],
    },
    Rule {
        name: "errors",
        words: &[
            "error",
            "errors",
            "5xx",
            "500",
            "502",
            "503",
            "exception",
            "exceptions",
            "failure",
            "failures",
            "failing",
            "failed",
        ],
        cause: "Requests are failing: a bad deploy, a failing dependency, or bad input.",
        actions: &[
            "Line the start of the errors up with the latest deploy; roll back if they match.",
            "Check the health of the dependencies this service calls.",
            "Read the most frequent error messages in the logs.",
        ],
    },
];

/// Splits text into lowercase words, also at lower→upper case changes.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in text.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_lowercase() || ch.is_numeric();
        cur.extend(ch.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The labels worth naming, in this order.
const SCOPE_LABELS: [&str; 6] = ["service", "namespace", "job", "instance", "host", "region"];

fn minutes(d: Duration) -> String {
    let m = d.num_minutes().max(0);
    if m < 120 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h", m / 60)
    } else {
        format!("{} days", m / (24 * 60))
    }
}

/// The report for `inc` given its history, as of `now`. Pure: the same
/// incident and history always give the same report.
pub fn deterministic(inc: &Incident, h: &History, now: DateTime<Utc>) -> TriageReport {
    let mut text = inc.title.clone();
    if let Some(name) = inc.labels.get("alertname") {
        text.push(' ');
        text.push_str(name);
    }
    let ws = words(&text);
    // A run that failed or is late; a cost anomaly (`sla=cost`) or another
    // provider's alert that happens to carry a `pipeline` label is read by
    // its words like any other.
    let pipeline = inc.labels.get("pipeline").filter(|_| {
        inc.source == firewatch_types::SourceKind::Pipelines
            && inc.labels.get("sla").map(String::as_str) != Some("cost")
    });
    let matched = match pipeline {
        Some(id) => Some((&PIPELINE_RULE, format!("pipeline={id}"))),
        None => RULES.iter().find_map(|r| {
            ws.iter()
                .find(|w| r.words.iter().any(|k| w.starts_with(k)))
                .map(|w| (r, w.clone()))
        }),
    };

    let mut facts: Vec<String> = Vec::new();
    let mut used: Vec<FactUsed> = Vec::new();
    let mut fact = |field: &str, source: &str, value: String| {
        let id = format!("F{}", used.len() + 1);
        used.push(FactUsed {
            id: id.clone(),
            field: field.to_owned(),
            value: crate::redact::redact_text(&value),
            source: source.to_owned(),
        });
        facts.push(value);
        id
    };
    let status_fact = fact(
        "incident.status",
        "incident",
        format!("{} · {} · {}", inc.severity, inc.state, inc.source),
    );
    let occurrence_fact = fact(
        "incident.occurrences",
        "incident",
        format!(
            "fired {}× since {} (open {})",
            inc.occurrences,
            inc.created_at.format("%Y-%m-%d %H:%M UTC"),
            minutes(now - inc.created_at)
        ),
    );
    fact("incident.title", "incident", inc.title.clone());
    let mut telemetry = vec![status_fact.clone(), occurrence_fact];
    if let Some(name) = inc.labels.get("alertname") {
        telemetry.push(fact(
            "labels.alertname",
            "labels",
            format!("alertname={name}"),
        ));
    }
    let scope: Vec<String> = SCOPE_LABELS
        .iter()
        .filter_map(|k| inc.labels.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    let mut impact_facts = vec![status_fact];
    if !scope.is_empty() {
        impact_facts.push(fact("labels.scope", "labels", scope.join(" ")));
    }
    let firing = inc
        .alerts
        .values()
        .filter(|a| a.status == firewatch_types::AlertStatus::Firing)
        .count();
    if inc.alerts.len() > 1 {
        telemetry.push(fact(
            "alerts.firing",
            "alerts",
            format!(
                "{firing} of {} alerts in this incident are firing",
                inc.alerts.len()
            ),
        ));
    }
    if let (Some((r, w)), Some(_)) = (&matched, pipeline) {
        fact(
            "rules.match",
            "rules",
            format!("rule `{}` matched the label {w}", r.name),
        );
    } else if let Some((r, w)) = &matched {
        fact(
            "rules.match",
            "rules",
            format!("rule `{}` matched the word \"{w}\"", r.name),
        );
    } else {
        fact(
            "rules.match",
            "rules",
            "no rule matched the title or alertname".into(),
        );
    }
    if h.earlier > 0 {
        let mut f = format!(
            "{} earlier incident{} of this alert group in {HISTORY_DAYS} days, {} resolved",
            h.earlier,
            if h.earlier == 1 { "" } else { "s" },
            h.resolved
        );
        if let Some(t) = h.median_time_to_resolve {
            f.push_str(&format!(", typically in {}", minutes(t)));
        }
        if let Some(at) = h.last_resolved_at {
            f.push_str(&format!(
                "; last resolved {}",
                at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        telemetry.push(fact("history", "history", f));
    } else {
        telemetry.push(fact(
            "history",
            "history",
            format!("first incident of this alert group in {HISTORY_DAYS} days"),
        ));
    }

    let mut impact = match (pipeline.is_some(), inc.severity) {
        // A pipeline's harm is the data it did not deliver; who is hurt is
        // its downstream (added from the lineage graph when known).
        (true, Severity::Sev1) => "Critical: data others depend on now is late or missing.",
        (true, Severity::Sev2) => "High: the data this pipeline produces is late or missing.",
        (true, _) => "Moderate: the data this pipeline produces is late or missing.",
        (false, Severity::Sev1) => "Critical: customers are likely affected now.",
        (false, Severity::Sev2) => "High: a user-facing degradation is likely.",
        (false, Severity::Sev3) => "Moderate: degraded, not yet user-facing.",
        (false, Severity::Sev4) => "Low: an early warning.",
    }
    .to_owned();
    if !scope.is_empty() {
        impact.push_str(&format!(" Scope: {}.", scope.join(", ")));
    }
    if inc.state.is_active() && firing == 0 && !inc.alerts.is_empty() {
        impact.push_str(" Every alert has stopped firing.");
    }

    let runbooks: Vec<Link> = inc
        .links
        .iter()
        .filter(|l| {
            l.text
                .as_deref()
                .is_some_and(|t| t.to_lowercase().contains("runbook"))
                || l.href.to_lowercase().contains("runbook")
        })
        .cloned()
        .collect();
    let runbook_facts: Vec<String> = runbooks
        .iter()
        .map(|r| fact("runbook", "runbook", r.href.clone()))
        .collect();

    let mut next_actions = Vec::new();
    if inc.state == IncidentState::Open {
        next_actions.push("Acknowledge, so others know someone is on it.".to_owned());
    }
    for r in &runbooks {
        next_actions.push(format!("Follow the runbook: {}", r.href));
    }
    match &matched {
        Some((r, _)) => next_actions.extend(r.actions.iter().map(|a| (*a).to_owned())),
        None => next_actions.push(
            "Open the source alert and its dashboards; no rule knows this alert yet.".to_owned(),
        ),
    }
    if h.earlier > 0 {
        let last = h
            .last
            .as_ref()
            .map(|i| format!(" (last: {i})"))
            .unwrap_or_default();
        next_actions.push(format!(
            "This keeps coming back: read how the earlier incidents ended{last} and plan a lasting fix."
        ));
    }

    let (likely_cause, confidence) = match &matched {
        Some((r, _)) if h.resolved > 0 => (r.cause.to_owned(), Confidence::High),
        Some((r, _)) => (r.cause.to_owned(), Confidence::Medium),
        None => (
            "Unknown: no rule matches this alert. The facts below are what is known.".to_owned(),
            Confidence::Low,
        ),
    };

    let confidence_reason = match (&matched, confidence) {
        (Some((r, _)), Confidence::High) => format!(
            "rule `{}` matched, and this alert group was resolved before",
            r.name
        ),
        (Some((r, _)), _) => format!("rule `{}` matched; no earlier resolution to go by", r.name),
        (None, _) => "no rule matched this alert".to_owned(),
    };
    let summary = format!(
        "{} {} incident from {}: {}",
        inc.severity, inc.state, inc.source, inc.title
    );
    TriageReport {
        id: None,
        mode: DETERMINISTIC_MODE.into(),
        requested_mode: "deterministic".into(),
        summary,
        rule: matched.map(|(r, _)| r.name.to_owned()),
        likely_cause,
        impact_summary: impact.clone(),
        impact,
        impacted_consumers: scope,
        next_actions,
        runbook_references: runbooks.iter().map(|r| r.href.clone()).collect(),
        runbooks,
        confidence,
        confidence_reason,
        facts,
        facts_used: used,
        traceability: Traceability {
            telemetry_facts: telemetry,
            runbook_facts,
            impact_facts,
            cost_facts: Vec::new(),
            evidence_links: inc.links.iter().map(|l| l.href.clone()).collect(),
        },
        degraded: false,
        warnings: Vec::new(),
        evidence: serde_json::json!({
            "history": {
                "earlier": h.earlier,
                "resolved": h.resolved,
                "last": h.last,
            },
        }),
        generated_at: Some(now),
        usage: None,
        latency_ms: None,
    }
}

/// The alert group's earlier incidents in the last [`HISTORY_DAYS`] days
/// (at most [`HISTORY_SCAN_LIMIT`] of them), read from the group's own index,
/// not from a scan of the tenant.
pub async fn history(svc: &Services, inc: &Incident) -> Result<History, DomainError> {
    let since = svc.clock.now() - Duration::days(HISTORY_DAYS);
    let mut h = History::default();
    let mut to_resolve: Vec<Duration> = Vec::new();
    let page = svc
        .store
        .query(crate::ports::Query {
            pk: crate::keys::group_incidents_pk(&inc.tenant, inc.source, &inc.group_key),
            sk_prefix: String::new(),
            // Incident ids are ULIDs: older ids sort before this one.
            after: Some(inc.id.to_string()),
            limit: HISTORY_SCAN_LIMIT,
            descending: true,
        })
        .await?;
    let mut earlier = Vec::new();
    for item in &page.items {
        let created: chrono::DateTime<chrono::Utc> = crate::keys::decode(item)?;
        if created < since {
            break;
        }
        earlier.push(item.sk.clone());
    }
    let reads = earlier.iter().map(|id| async move {
        let id = firewatch_types::IncidentId::parse(id)
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        incidents::get(svc, &inc.tenant, &id).await
    });
    for other in futures_util::future::join_all(reads).await {
        let other = match other {
            Ok(o) => o,
            Err(DomainError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        h.earlier += 1;
        if h.last.is_none() {
            h.last = Some(other.id.clone());
        }
        if let Some(at) = other.resolved_at.filter(|_| !other.state.is_active()) {
            h.resolved += 1;
            to_resolve.push(at - other.created_at);
            h.last_resolved_at = Some(h.last_resolved_at.map_or(at, |l| l.max(at)));
        }
    }
    to_resolve.sort();
    h.median_time_to_resolve = to_resolve.get(to_resolve.len() / 2).copied();
    Ok(h)
}

/// Triages incident `id` as `principal` (a responder or above) with the
/// rules: the report goes on the timeline and into the chat thread, and is
/// audited.
pub async fn run(
    svc: &Services,
    principal: &Principal,
    id: &IncidentId,
) -> Result<TriageReport, DomainError> {
    run_as(svc, principal, id, &Ask::mode(Requested::Deterministic)).await
}

/// [`run`] as asked. Assisted triage may name the runbooks of the incident
/// and the playbooks offered for it; each assisted triage is counted in
/// [`telemetry`]. Under the strict policy a failed assisted triage writes
/// no report and answers `503 assisted_mode_failed`.
pub async fn run_as(
    svc: &Services,
    principal: &Principal,
    id: &IncidentId,
    ask: &Ask,
) -> Result<TriageReport, DomainError> {
    require_role(principal, Role::Responder, "triage an incident")?;
    if let Some(rid) = &ask.report_id {
        if let Some(done) = report(svc, &principal.tenant, id, rid).await? {
            return Ok(done);
        }
    }
    let inc = incidents::get(svc, &principal.tenant, id).await?;
    // A requested triage (a report id given) was counted when requested.
    if ask.mode == Requested::Assisted && ask.report_id.is_none() {
        crate::throttle::take(svc, &inc.tenant, crate::throttle::Action::AssistedTriage).await?;
    }
    let h = history(svc, &inc).await?;
    let mut report = deterministic(&inc, &h, svc.clock.now());
    if inc.source == firewatch_types::SourceKind::Pipelines {
        pipeline_facts(svc, &inc, &mut report).await?;
    }
    let report_id = ask.report_id.clone().unwrap_or_else(|| new_report_id(svc));
    report.id = Some(report_id.clone());
    let mut event = None;
    if ask.mode == Requested::Assisted {
        report.requested_mode = "assisted".into();
        for p in &ask.playbooks {
            let id = format!("F{}", report.facts_used.len() + 1);
            report.facts_used.push(FactUsed {
                id: id.clone(),
                field: "playbook".into(),
                value: p.clone(),
                source: "playbook".into(),
            });
            report.traceability.runbook_facts.push(id);
        }
        let allowed = assisted::Allowed {
            runbooks: report.runbook_references.clone(),
            playbooks: ask.playbooks.clone(),
        };
        let out = assisted::enrich(svc.llm.as_deref(), &svc.settings, report, &allowed).await;
        let mut ev = telemetry::Event {
            id: svc.ids.ulid(),
            at: svc.clock.now(),
            incident_id: inc.id.clone(),
            report_id: None,
            status: telemetry::Status::Success,
            provider: out.provider.to_owned(),
            model: out.model.clone(),
            error_class: out.error_class.map(Into::into),
            input_tokens: out.usage.input_tokens,
            output_tokens: out.usage.output_tokens,
            latency_ms: out.latency_ms,
        };
        report = match out.result {
            Ok(r) => r,
            Err(e) => {
                ev.status = telemetry::Status::Failed;
                let mut work = Work::new(svc);
                telemetry::write(&mut work, &ev, &inc.tenant)?;
                if let Err(w) = work.commit().await {
                    tracing::warn!(error = %w, "triage telemetry not recorded");
                }
                return Err(e);
            }
        };
        if report.degraded {
            ev.status = telemetry::Status::Fallback;
        }
        ev.report_id = Some(report_id.clone());
        event = Some(ev);
    }
    let assisted_ran = report.mode != DETERMINISTIC_MODE;
    let reference = feedback::ReportRef {
        report_id: report_id.clone(),
        incident_id: inc.id.clone(),
        mode: report.mode.clone(),
        rule: report.rule.clone(),
        provider: match &event {
            Some(e) if assisted_ran => e.provider.clone(),
            _ => "rules".into(),
        },
        model: match &event {
            Some(e) if assisted_ran => e.model.clone(),
            _ => String::new(),
        },
        generated_at: svc.clock.now(),
    };
    let tenant = inc.tenant.clone();
    let incident_pk = crate::keys::incident_pk(&tenant, &inc.id);
    let mut change = Change::to(svc, inc);
    let e = change.entry(
        &principal.name,
        TimelineKind::Triage {
            report: Box::new(report.clone()),
        },
    );
    let after = serde_json::json!({"timeline_entry": e.id, "report_id": report_id, "mode": report.mode, "requested_mode": report.requested_mode, "degraded": report.degraded, "rule": report.rule, "confidence": report.confidence});
    change.show(e);
    change.also().put(
        crate::keys::item(
            feedback::reports_pk(&tenant),
            report_id.clone(),
            1,
            &reference,
        )?,
        Condition::Absent,
    );
    change.also().put(
        crate::keys::item(
            incident_pk,
            format!("{REPORT_PREFIX}{report_id}"),
            1,
            &report,
        )?,
        Condition::Absent,
    );
    if let Some(ev) = &event {
        telemetry::write(change.also(), ev, &tenant)?;
    }
    change.audit(
        &principal.name,
        "incident.triage",
        serde_json::Value::Null,
        after,
        None,
    );
    match change.commit().await {
        Ok(_) => Ok(report),
        // The same report was written meanwhile (a redelivered effect).
        Err(e) if e.is_lost_race() && ask.report_id.is_some() => {
            match self::report(svc, &tenant, id, &report_id).await? {
                Some(done) => Ok(done),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Adds a numbered fact to `report`; returns its id.
fn add_fact(report: &mut TriageReport, field: &str, source: &str, value: String) -> String {
    let id = format!("F{}", report.facts_used.len() + 1);
    report.facts_used.push(FactUsed {
        id: id.clone(),
        field: field.to_owned(),
        value: crate::redact::redact_text(&value),
        source: source.to_owned(),
    });
    report.facts.push(value);
    id
}

/// For an incident a failed pipeline run opened: the pipeline's downstream
/// impact, its cost against its baseline, its runbook and its last run, as
/// facts (impact and cost facts in the traceability), and the actions they
/// call for.
async fn pipeline_facts(
    svc: &Services,
    inc: &Incident,
    report: &mut TriageReport,
) -> Result<(), DomainError> {
    use crate::pipelines::{costs, impact, load, runbooks};
    let Some(id) = inc.labels.get("pipeline") else {
        return Ok(());
    };
    let Some((pl, _)) = load(svc, &inc.tenant, id).await? else {
        report
            .warnings
            .push(format!("pipeline {id} is not known: no pipeline facts"));
        return Ok(());
    };
    if let Some(run) = &pl.last_run {
        let status = serde_json::to_value(run.status)?;
        let mut v = format!(
            "last run {} of {id}: {}",
            run.run_id,
            status.as_str().unwrap_or_default()
        );
        if let Some(e) = &run.error {
            v.push_str(&format!(": {e}"));
        }
        let f = add_fact(report, "pipeline.last_run", "pipelines", v);
        report.traceability.telemetry_facts.push(f);
        report.next_actions.push(format!(
            "Read the run's explanation: GET /v1/runs/{}/explain",
            run.run_id
        ));
    }
    let g = impact::downstream_from(svc, &inc.tenant, &pl).await?;
    let f = add_fact(report, "pipeline.impact", "pipelines", g.summary());
    report.traceability.impact_facts.push(f);
    report.impacted_consumers.extend(
        g.downstream_consumers
            .iter()
            .take(10)
            .map(|c| format!("pipeline {}", c.pipeline)),
    );
    report.impact_summary = format!("{} Downstream: {}.", report.impact_summary, g.summary());
    if g.degraded {
        report.warnings.extend(g.warnings);
    }
    for a in costs::anomalies_of(&pl) {
        let f = add_fact(
            report,
            "pipeline.cost",
            "cost",
            format!(
                "spend on {}: {} {} against a {} {} daily baseline ({} band)",
                a.day,
                a.latest,
                a.currency,
                a.baseline,
                a.currency,
                serde_json::to_value(a.band)?.as_str().unwrap_or_default()
            ),
        );
        report.traceability.cost_facts.push(f);
    }
    match runbooks::status_of(pl.config.runbook_url.as_deref()) {
        runbooks::RunbookStatus::Configured => {}
        other => {
            let what = match other {
                runbooks::RunbookStatus::Missing => "no runbook is configured",
                _ => "its runbook is not a usable URL",
            };
            let f = add_fact(
                report,
                "pipeline.runbook",
                "runbook",
                format!("{id}: {what}"),
            );
            report.traceability.runbook_facts.push(f);
            report.next_actions.push(format!(
                "Give {id} a runbook (PUT /v1/pipelines/{{id}}, runbook_url) so the next responder has one."
            ));
        }
    }
    Ok(())
}

/// Report `report_id` of incident `id`, if it was written.
pub async fn report(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    id: &IncidentId,
    report_id: &str,
) -> Result<Option<TriageReport>, DomainError> {
    match svc
        .store
        .get(
            &crate::keys::incident_pk(tenant, id),
            &format!("{REPORT_PREFIX}{report_id}"),
        )
        .await?
    {
        Some(item) => Ok(Some(crate::keys::decode(&item)?)),
        None => Ok(None),
    }
}

/// The newest report of incident `id`, for a viewer.
pub async fn latest(
    svc: &Services,
    principal: &Principal,
    id: &IncidentId,
) -> Result<(Incident, TriageReport), DomainError> {
    require_role(principal, Role::Viewer, "read a triage report")?;
    let inc = incidents::get(svc, &principal.tenant, id).await?;
    let page = svc
        .store
        .query(crate::ports::Query {
            pk: crate::keys::incident_pk(&principal.tenant, id),
            sk_prefix: REPORT_PREFIX.into(),
            after: None,
            limit: 1,
            descending: true,
        })
        .await?;
    match page.items.first() {
        Some(item) => Ok((inc, crate::keys::decode(item)?)),
        None => Err(DomainError::NotFound(format!(
            "incident {id} has not been triaged yet"
        ))),
    }
}

/// Asks for a triage that runs after the caller has been answered: the
/// request goes on the timeline (and into the thread) with an effect the
/// dispatcher performs, whose report then follows in the thread. What a
/// chat click uses for assisted triage, which may take longer than a click
/// may wait. Returns the report id to come.
pub async fn request(
    svc: &Services,
    principal: &Principal,
    id: &IncidentId,
    mode: Requested,
    playbooks: Vec<String>,
) -> Result<String, DomainError> {
    require_role(principal, Role::Responder, "triage an incident")?;
    let inc = incidents::get(svc, &principal.tenant, id).await?;
    if mode == Requested::Assisted {
        crate::throttle::take(svc, &inc.tenant, crate::throttle::Action::AssistedTriage).await?;
    }
    let report_id = new_report_id(svc);
    let mut change = Change::to(svc, inc);
    let e = change.entry(
        &principal.name,
        TimelineKind::TriageRequested {
            mode: mode.as_str().into(),
        },
    );
    change.show_with_effect(
        e,
        crate::outbox::Effect::Triage {
            report_id: report_id.clone(),
            mode: mode.as_str().into(),
            actor: principal.name.clone(),
            role: principal.role,
            playbooks,
        },
    );
    change.commit().await?;
    Ok(report_id)
}

/// Performs a requested triage (the dispatcher's effect). A strict
/// policy's refusal is written on the timeline, so the thread says why no
/// report came; every other failure is the caller's to retry.
pub async fn perform(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    incident: &IncidentId,
    report_id: &str,
    mode: Requested,
    principal: Principal,
    playbooks: Vec<String>,
) -> Result<(), DomainError> {
    debug_assert_eq!(&principal.tenant, tenant);
    let ask = Ask {
        mode,
        playbooks,
        report_id: Some(report_id.to_owned()),
    };
    match run_as(svc, &principal, incident, &ask).await {
        Ok(_) => Ok(()),
        Err(DomainError::DependencyFailed { message, .. }) => {
            let inc = incidents::get(svc, tenant, incident).await?;
            let mut change = Change::to(svc, inc);
            let mut e = change.entry(
                "firewatch",
                TimelineKind::Comment {
                    text: format!("No triage report: {message}."),
                },
            );
            // One note per request, however often the effect runs.
            e.id = report_id.to_owned();
            change.show(e);
            match change.commit().await {
                Ok(_) => Ok(()),
                Err(e) if e.is_lost_race() => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use firewatch_types::{AlertSnapshot, AlertStatus, SourceKind, TenantId};
    use std::collections::BTreeMap;

    fn incident(title: &str, labels: &[(&str, &str)]) -> Incident {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 11, 0, 0).unwrap();
        Incident {
            id: IncidentId::parse("inc_01JD0000000000000000000001").unwrap(),
            tenant: TenantId::default_tenant(),
            state: IncidentState::Open,
            severity: Severity::Sev2,
            title: title.into(),
            source: SourceKind::Alertmanager,
            group_key: "g".into(),
            fingerprint: "f".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            annotations: BTreeMap::new(),
            links: vec![],
            alerts: BTreeMap::from([(
                "f".to_owned(),
                AlertSnapshot {
                    status: AlertStatus::Firing,
                    severity: Severity::Sev2,
                    starts_at: Some(t0),
                    last_seen: t0,
                    last_envelope: None,
                },
            )]),
            alerts_truncated: false,
            untracked_alerts: 0,
            ticket: None,
            ticket_requested: None,
            flapping: None,
            snoozed_until: None,
            occurrences: 3,
            created_at: t0,
            updated_at: t0,
            acknowledged_at: None,
            resolved_at: None,
            version: 1,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 11, 25, 0).unwrap()
    }

    #[test]
    fn camel_case_alert_names_read_as_words() {
        assert_eq!(
            words("KubePodCrashLooping on api-7f9"),
            ["kube", "pod", "crash", "looping", "on", "api", "7f9"]
        );
        let r = deterministic(
            &incident("Pod restarting", &[("alertname", "KubePodCrashLooping")]),
            &History::default(),
            now(),
        );
        assert_eq!(r.rule.as_deref(), Some("target_down"));
    }

    #[test]
    fn a_matching_rule_gives_its_cause_and_actions_with_medium_confidence() {
        let inc = incident(
            "High error rate on checkout",
            &[("alertname", "HighErrorRate"), ("service", "checkout")],
        );
        let r = deterministic(&inc, &History::default(), now());
        assert_eq!(r.mode, "deterministic_rules_v1");
        assert_eq!(r.rule.as_deref(), Some("errors"));
        assert_eq!(r.confidence, Confidence::Medium);
        assert!(r.likely_cause.contains("failing"));
        assert!(r.impact.starts_with("High"));
        assert!(r.impact.contains("service=checkout"));
        assert_eq!(
            r.next_actions[0],
            "Acknowledge, so others know someone is on it."
        );
        assert!(r.facts.iter().any(|f| f.contains("fired 3×")));
        assert!(r.facts.iter().any(|f| f.contains("open 25 min")));
        assert!(r.facts.iter().any(|f| f.contains("first incident")));
    }

    #[test]
    fn specific_rules_win_over_generic_ones() {
        for (title, rule) in [
            ("api latency p99 above 2s", "latency"),
            ("Disk space low on db-1", "disk"),
            ("orders queue backlog", "queue"),
            ("TLS certificate expires in 3 days", "certificate"),
            ("Container OOMKilled", "memory"),
            ("Failed to write: disk full", "disk"),
            ("CPU throttling high", "cpu"),
            ("Instance down", "target_down"),
        ] {
            let r = deterministic(&incident(title, &[]), &History::default(), now());
            assert_eq!(r.rule.as_deref(), Some(rule), "{title}");
        }
    }

    #[test]
    fn no_rule_is_low_confidence_and_says_so() {
        let r = deterministic(&incident("Something odd", &[]), &History::default(), now());
        assert_eq!(r.rule, None);
        assert_eq!(r.confidence, Confidence::Low);
        assert!(r.likely_cause.starts_with("Unknown"));
        assert!(r.facts.iter().any(|f| f.contains("no rule matched")));
    }

    #[test]
    fn history_raises_confidence_and_runbooks_come_first() {
        let mut inc = incident("api latency p99 above 2s", &[]);
        inc.state = IncidentState::Acknowledged;
        inc.links = vec![
            Link {
                href: "https://grafana.example/d/api".into(),
                text: Some("dashboard".into()),
            },
            Link {
                href: "https://runbooks.example/api/latency".into(),
                text: Some("runbook".into()),
            },
        ];
        let h = History {
            earlier: 2,
            resolved: 2,
            last: Some(IncidentId::parse("inc_01JC0000000000000000000001").unwrap()),
            last_resolved_at: Some(Utc.with_ymd_and_hms(2026, 11, 18, 9, 40, 0).unwrap()),
            median_time_to_resolve: Some(Duration::minutes(40)),
        };
        let r = deterministic(&inc, &h, now());
        assert_eq!(r.confidence, Confidence::High);
        assert_eq!(r.runbooks.len(), 1);
        assert_eq!(
            r.next_actions[0], "Follow the runbook: https://runbooks.example/api/latency",
            "acknowledged already, so the runbook is first"
        );
        assert!(r
            .facts
            .iter()
            .any(|f| f.contains("2 earlier incidents") && f.contains("typically in 40 min")));
        assert!(r
            .next_actions
            .last()
            .unwrap()
            .contains("inc_01JC0000000000000000000001"));
    }
}
