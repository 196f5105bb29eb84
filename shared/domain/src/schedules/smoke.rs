//! Smoke contracts: an HTTP request on a schedule, with what its answer
//! must hold (status, latency budget, JSON assertions, a build fingerprint
//! on `/version`, pagination that really pages). A failing run raises an
//! alert (source `smoke`) through the normal incident flow; the next passing
//! run resolves it. Each run is kept (bounded), with which assertion failed
//! and why; the answer of a failing run goes to the blob store, redacted.
//!
//! Checks come from the API (`/v1/smoke-checks`), from files (`firewatch
//! dev`'s `./smoke-checks`, synced with [`sync_defined`]), and, when
//! `FIREWATCH_PUBLIC_URL` is set, firewatch's own `/health` and `/version`
//! ([`builtin`]). Header values and the URL may name secrets
//! (`{{ secrets.NAME }}`, plain substitution: nothing else is evaluated),
//! resolved only when the request is sent and masked everywhere a check or
//! run is shown: a check made through the API uses its tenant's secrets
//! (`/v1/secrets`), one from a file the operator's. The URL's origin is
//! pinned when the check is defined, its secret values percent-encoded, and
//! every request goes through the egress guard.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Principal, Role, Severity, SourceKind, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::require_role;
use crate::cadence::span_secs;
use crate::due::{Budget, JobReport};
use crate::egress::{self, PinnedOrigin};
use crate::ports::{Condition, OutboundRequest, OutboundResponse, Query};
use crate::secrets::{self, Owner};
use crate::template;
use crate::template::scrub;
use crate::work::Work;
use crate::{keys, DomainError, Services};

pub const JOB: &str = "smoke";
/// Days a run is kept.
pub const RUN_RETENTION_DAYS: i64 = 14;
const MAX_TIMEOUT_SECS: i64 = 30;
const MAX_ASSERTIONS: usize = 32;
const MAX_HEADERS: usize = 32;
const MAX_URL: usize = 2048;

/// A status or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Statuses {
    One(u16),
    Many(Vec<u16>),
}

impl Statuses {
    fn list(&self) -> Vec<u16> {
        match self {
            Self::One(s) => vec![*s],
            Self::Many(v) => v.clone(),
        }
    }
}

/// A check as written (the API's body, a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default = "method_get")]
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "one_minute")]
    pub interval: String,
    #[serde(default = "five_seconds")]
    pub timeout: String,
    /// Slowest acceptable answer (`800ms`, `2s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_budget: Option<String>,
    #[serde(default = "ok_status", alias = "expected_statuses")]
    pub expected_status: Statuses,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<Assertion>,
    #[serde(default = "sev2")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn method_get() -> String {
    "GET".into()
}
fn one_minute() -> String {
    "1m".into()
}
fn five_seconds() -> String {
    "5s".into()
}
fn ok_status() -> Statuses {
    Statuses::One(200)
}
fn sev2() -> String {
    "sev2".into()
}

/// What an answer must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assertion {
    /// A field of the JSON answer (dotted path; array items by index).
    Json {
        path: String,
        op: JsonOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
    /// Build fingerprint fields present and non-empty, optionally equal to
    /// an expected value.
    VersionFingerprint {
        #[serde(default = "fingerprint_fields")]
        fields: Vec<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        expected: BTreeMap<String, String>,
    },
    /// Two requests with `param` set to each of `values` must return
    /// different sets of item ids (`id_field` of each item of `items`).
    Pagination {
        param: String,
        values: Vec<String>,
        items: String,
        id_field: String,
    },
}

fn fingerprint_fields() -> Vec<String> {
    vec!["build_id".into(), "git_sha".into(), "release_tag".into()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonOp {
    Present,
    Equals,
    NonNegative,
    Array,
    ArrayMinLen,
    NotNull,
    Matches,
}

/// Where a check was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Api,
    File,
    Builtin,
}

/// A check as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokeCheck {
    pub id: String,
    pub tenant: TenantId,
    pub origin: Origin,
    pub definition: Definition,
    pub created_at: DateTime<Utc>,
    pub failing: bool,
    pub last_run: Option<RunSummary>,
    pub due_sk: Option<String>,
    pub events: u64,
    /// The item version it was read at (not stored).
    #[serde(skip)]
    pub version: u64,
}

crate::work::record!(SmokeCheck, "smoke-check", keys::smoke_pk);

/// The last run, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub at: DateTime<Utc>,
    pub ok: bool,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `request`, `status`, `latency`, or the failing assertion's type.
    pub kind: String,
    /// The failing assertion's index in `assertions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion: Option<usize>,
    pub message: String,
}

/// One run, as kept (14 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeRun {
    pub id: String,
    pub check_id: String,
    pub at: DateTime<Utc>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The URL requested, secrets masked.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The blob holding a failing answer (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_blob: Option<String>,
}

fn bad(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::bad_input(code, message)
}

/// Checks a definition; what is wrong is named.
pub fn validate(d: &Definition) -> Result<(), DomainError> {
    let name = d.name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(bad(
            "invalid_name",
            "name must be 1 to 200 printable characters",
        ));
    }
    if !matches!(
        d.method.as_str(),
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
    ) {
        return Err(bad(
            "invalid_method",
            "method must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
        ));
    }
    if d.url.len() > MAX_URL {
        return Err(bad("invalid_url", format!("url is over {MAX_URL} bytes")));
    }
    template::substitution_names(&d.url).map_err(|e| bad("invalid_url", format!("url: {e}")))?;
    // The origin is pinned now: written out, or one secret base URL.
    let split = egress::split_origin(&d.url)
        .map_err(|e| bad("invalid_url", format!("url: {e}")))
        .and_then(|s| match s.origin {
            PinnedOrigin::Param { .. } => Err(bad(
                "invalid_url",
                "url: a smoke check has no parameters; write its origin out",
            )),
            _ => Ok(s),
        })?;
    if matches!(split.origin, PinnedOrigin::Literal(_)) {
        // The URL must be one once its secrets are filled in.
        let masked =
            render_url(d, &masks(d), false).map_err(|e| bad("invalid_url", format!("url: {e}")))?;
        let parsed = url::Url::parse(&masked)
            .map_err(|e| bad("invalid_url", format!("url is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("invalid_url", "url must be http or https"));
        }
    }
    if d.headers.len() > MAX_HEADERS {
        return Err(bad(
            "invalid_headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    for (k, v) in &d.headers {
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "invalid_headers",
                format!("header name {k:?} is not a token"),
            ));
        }
        template::substitution_names(v)
            .map_err(|e| bad("invalid_headers", format!("header {k}: {e}")))?;
    }
    span_secs("interval", &d.interval)?;
    let timeout = span_secs("timeout", &d.timeout)?;
    if timeout > MAX_TIMEOUT_SECS {
        return Err(bad(
            "invalid_duration",
            format!("timeout is at most {MAX_TIMEOUT_SECS}s"),
        ));
    }
    if let Some(b) = &d.latency_budget {
        humantime::parse_duration(b.trim()).map_err(|_| {
            bad(
                "invalid_duration",
                "latency_budget: not a duration such as 500ms or 2s".to_string(),
            )
        })?;
    }
    let statuses = d.expected_status.list();
    if statuses.is_empty() || statuses.iter().any(|s| !(100..=599).contains(s)) {
        return Err(bad(
            "invalid_status",
            "expected_status must be HTTP statuses (100-599)",
        ));
    }
    Severity::parse(&d.severity).ok_or_else(|| {
        bad(
            "invalid_severity",
            "severity must be sev1, sev2, sev3 or sev4",
        )
    })?;
    if d.labels.len() > 32 {
        return Err(bad("invalid_labels", "at most 32 labels"));
    }
    if d.assertions.len() > MAX_ASSERTIONS {
        return Err(bad(
            "invalid_assertion",
            format!("at most {MAX_ASSERTIONS} assertions"),
        ));
    }
    for (i, a) in d.assertions.iter().enumerate() {
        let at = |m: String| bad("invalid_assertion", format!("assertions[{i}]: {m}"));
        match a {
            Assertion::Json { path, op, value } => {
                if path.is_empty() {
                    return Err(at("path is empty".into()));
                }
                match (op, value) {
                    (JsonOp::Equals, None) => return Err(at("equals needs a value".into())),
                    (JsonOp::ArrayMinLen, v) if v.as_ref().and_then(Value::as_u64).is_none() => {
                        return Err(at("array_min_len needs a whole number value".into()))
                    }
                    (JsonOp::Matches, v) => {
                        let Some(re) = v.as_ref().and_then(Value::as_str) else {
                            return Err(at("matches needs a regex string value".into()));
                        };
                        regex_lite::Regex::new(re)
                            .map_err(|e| at(format!("not a valid regex: {e}")))?;
                    }
                    _ => {}
                }
            }
            Assertion::VersionFingerprint { fields, expected } => {
                if fields.is_empty() {
                    return Err(at("fields is empty".into()));
                }
                if let Some(k) = expected.keys().find(|k| !fields.contains(k)) {
                    return Err(at(format!("expected names {k}, which is not in fields")));
                }
            }
            Assertion::Pagination {
                param,
                values,
                items,
                id_field,
            } => {
                if param.is_empty() || items.is_empty() || id_field.is_empty() {
                    return Err(at("param, items and id_field must be set".into()));
                }
                if values.len() != 2 || values[0] == values[1] {
                    return Err(at("values must be two different values of param".into()));
                }
            }
        }
    }
    Ok(())
}

fn secret_names(d: &Definition) -> Vec<String> {
    let mut names: BTreeSet<String> = template::substitution_names(&d.url)
        .unwrap_or_default()
        .into_iter()
        .collect();
    for v in d.headers.values() {
        names.extend(template::substitution_names(v).unwrap_or_default());
    }
    names.into_iter().collect()
}

/// Each secret's mask (`***NAME***`), for what is shown.
fn masks(d: &Definition) -> HashMap<String, String> {
    secret_names(d)
        .into_iter()
        .map(|n| {
            let m = template::mask(&n);
            (n, m)
        })
        .collect()
}

/// The check's URL with `secrets` filled in: the origin as pinned (written
/// out, or a secret base URL), values after it percent-encoded when `real`
/// (a masked rendering shows the masks as they are). A real URL is checked
/// against its pinned origin.
fn render_url(
    d: &Definition,
    secrets: &HashMap<String, String>,
    real: bool,
) -> Result<String, String> {
    let split = egress::split_origin(&d.url)?;
    let base = match &split.origin {
        PinnedOrigin::Literal(o) => o.clone(),
        PinnedOrigin::Secret(n) => secrets
            .get(n)
            .cloned()
            .ok_or_else(|| format!("secret {n} has no value"))?,
        PinnedOrigin::Param { .. } => return Err("a smoke check has no parameters".into()),
    };
    let rest = template::substitute(&split.rest, &mut |n| {
        secrets.get(n).map(|v| {
            if real {
                egress::encode_value(v)
            } else {
                v.clone()
            }
        })
    })?;
    let url = format!("{}{rest}", base.trim_end_matches('/'));
    if !real {
        return Ok(url);
    }
    egress::check_rendered(&url, &egress::origin_of(&base)?)
}

/// Whose secrets a check may use: the operator's for checks the operator
/// ships (files, built in), the tenant's own for checks made through the
/// API.
fn owner(c: &SmokeCheck) -> Owner {
    match c.origin {
        Origin::Api => Owner::Tenant(c.tenant.clone()),
        Origin::File | Origin::Builtin => Owner::Operator,
    }
}

/// A check as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub id: String,
    pub origin: Origin,
    #[serde(flatten)]
    pub definition: Definition,
    pub state: &'static str,
    pub last_run: Option<RunSummary>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl View {
    pub fn of(c: &SmokeCheck) -> Self {
        Self {
            id: c.id.clone(),
            origin: c.origin,
            definition: c.definition.clone(),
            state: match (&c.last_run, c.failing) {
                (None, _) => "new",
                (_, true) => "failing",
                _ => "passing",
            },
            last_run: c.last_run.clone(),
            next_run_at: c
                .due_sk
                .as_deref()
                .and_then(|sk| sk.split('#').next()?.parse().ok())
                .and_then(|t| DateTime::from_timestamp(t, 0)),
            created_at: c.created_at,
        }
    }
}

fn not_found(_id: &str) -> DomainError {
    DomainError::NotFound("no smoke check has this id".into())
}

/// Saves `c` with `work` over the version it was read at (created when
/// 0), its due entry moved to `at`.
fn save(
    work: &mut Work<'_>,
    c: &mut SmokeCheck,
    at: Option<DateTime<Utc>>,
) -> Result<(), DomainError> {
    c.due_sk = crate::due::move_due(JOB, &c.tenant, &c.id, c.due_sk.as_deref(), at, work)?;
    let tenant = c.tenant.clone();
    work.save(&tenant, c)
}

/// Creates a check (admin); it first runs at once (the next job tick).
pub async fn create(
    svc: &Services,
    p: &Principal,
    d: Definition,
) -> Result<SmokeCheck, DomainError> {
    require_role(p, Role::Admin, "create smoke checks")?;
    put_new(
        svc,
        &p.tenant,
        &p.name,
        format!("smk_{}", svc.ids.ulid().to_ascii_lowercase()),
        Origin::Api,
        d,
    )
    .await
}

async fn put_new(
    svc: &Services,
    tenant: &TenantId,
    actor: &str,
    id: String,
    origin: Origin,
    mut d: Definition,
) -> Result<SmokeCheck, DomainError> {
    validate(&d)?;
    d.name = d.name.trim().to_owned();
    crate::limits::bound_map(&mut d.labels, crate::limits::MAX_LABEL_VALUE_BYTES);
    let now = svc.clock.now();
    let mut c = SmokeCheck {
        id,
        tenant: tenant.clone(),
        origin,
        definition: d,
        created_at: now,
        failing: false,
        last_run: None,
        due_sk: None,
        events: 0,
        version: 0,
    };
    let mut work = Work::new(svc);
    save(&mut work, &mut c, Some(now))?;
    work.audit(
        tenant,
        actor,
        "smoke_check.create",
        &c.id,
        Value::Null,
        serde_json::json!({"name": c.definition.name}),
    )?;
    work.commit().await.map_err(|e| {
        if e.is_lost_race() {
            DomainError::conflict("exists", "the smoke check exists")
        } else {
            e.into()
        }
    })?;
    Ok(c)
}

/// Replaces a check's definition (admin); checks from files and built-in
/// ones are changed where they are defined.
pub async fn replace(
    svc: &Services,
    p: &Principal,
    id: &str,
    d: Definition,
) -> Result<SmokeCheck, DomainError> {
    require_role(p, Role::Admin, "change smoke checks")?;
    validate(&d)?;
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::Unavailable("the smoke check kept changing; try again".into()),
        async || -> Result<_, crate::retry::Retry> {
            let mut c = crate::work::find::<SmokeCheck>(svc, &p.tenant, id)
                .await?
                .ok_or_else(|| not_found(id))?;
            if c.origin != Origin::Api {
                return Err(DomainError::conflict(
                    "defined_elsewhere",
                    "this smoke check is defined in a file or built in; change it there",
                )
                .into());
            }
            c.definition = d.clone();
            let mut work = Work::new(svc);
            save(&mut work, &mut c, Some(svc.clock.now()))?;
            work.audit(
                &p.tenant,
                &p.name,
                "smoke_check.update",
                &c.id,
                Value::Null,
                serde_json::json!({"name": c.definition.name}),
            )?;
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            Ok(c)
        },
    )
    .await
}

/// Deletes a check (admin). An alert it raised stays open until resolved.
pub async fn delete(svc: &Services, p: &Principal, id: &str) -> Result<(), DomainError> {
    require_role(p, Role::Admin, "delete smoke checks")?;
    let c = crate::work::find::<SmokeCheck>(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut work = Work::new(svc);
    work.remove(&p.tenant, &c);
    work.audit(
        &p.tenant,
        &p.name,
        "smoke_check.delete",
        &c.id,
        serde_json::json!({"name": c.definition.name}),
        Value::Null,
    )?;
    if let Some(sk) = &c.due_sk {
        work.delete(keys::due_pk(JOB), sk.clone(), Condition::Always);
    }
    work.commit().await.map_err(|e| {
        if e.is_lost_race() {
            DomainError::conflict("changed", "the smoke check changed; try again")
        } else {
            e.into()
        }
    })
}

/// One check (viewer).
pub async fn get(svc: &Services, p: &Principal, id: &str) -> Result<SmokeCheck, DomainError> {
    require_role(p, Role::Viewer, "read smoke checks")?;
    crate::work::find::<SmokeCheck>(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// A page of checks (viewer).
pub async fn list(
    svc: &Services,
    p: &Principal,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<SmokeCheck>, Option<String>), DomainError> {
    require_role(p, Role::Viewer, "list smoke checks")?;
    crate::due::page_of(
        svc,
        keys::smoke_pk(&p.tenant),
        "smk_",
        after,
        limit.clamp(1, 200),
        false,
    )
    .await
}

/// A check's runs, newest first (viewer).
pub async fn runs(
    svc: &Services,
    p: &Principal,
    id: &str,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<SmokeRun>, Option<String>), DomainError> {
    require_role(p, Role::Viewer, "read smoke runs")?;
    crate::work::find::<SmokeCheck>(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    crate::due::page_of(
        svc,
        keys::smoke_runs_pk(&p.tenant, id),
        "RUN#",
        after,
        limit.clamp(1, 100),
        true,
    )
    .await
}

/// Runs a check now (responder) and answers the run.
pub async fn run_now(svc: &Services, p: &Principal, id: &str) -> Result<SmokeRun, DomainError> {
    require_role(p, Role::Responder, "run smoke checks")?;
    let c = crate::work::find::<SmokeCheck>(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    run_and_record(svc, c).await
}

/// Follows a dotted path (`items.0.id`) into a JSON value.
pub fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| match v {
        Value::Array(items) => k.parse::<usize>().ok().and_then(|i| items.get(i)),
        Value::Object(m) => m.get(k),
        _ => None,
    })
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    crate::limits::truncate(&s, 120)
}

/// Evaluates one JSON assertion.
fn check_json(body: &Value, path: &str, op: JsonOp, value: Option<&Value>) -> Result<(), String> {
    let got = at_path(body, path);
    match op {
        JsonOp::Present => got.map(|_| ()).ok_or_else(|| format!("{path} is absent")),
        JsonOp::NotNull => match got {
            Some(v) if !v.is_null() => Ok(()),
            _ => Err(format!("{path} is null or absent")),
        },
        JsonOp::Equals => {
            let want = value.unwrap_or(&Value::Null);
            match got {
                Some(v) if v == want => Ok(()),
                Some(v) => Err(format!("{path} is {}, expected {}", show(v), show(want))),
                None => Err(format!("{path} is absent, expected {}", show(want))),
            }
        }
        JsonOp::NonNegative => match got.and_then(Value::as_f64) {
            Some(n) if n >= 0.0 => Ok(()),
            Some(n) => Err(format!("{path} is {n}, expected a non-negative number")),
            None => Err(format!("{path} is not a number")),
        },
        JsonOp::Array => match got {
            Some(Value::Array(_)) => Ok(()),
            _ => Err(format!("{path} is not an array")),
        },
        JsonOp::ArrayMinLen => {
            let min = value.and_then(Value::as_u64).unwrap_or(0) as usize;
            match got {
                Some(Value::Array(a)) if a.len() >= min => Ok(()),
                Some(Value::Array(a)) => Err(format!(
                    "{path} has {} items, expected at least {min}",
                    a.len()
                )),
                _ => Err(format!("{path} is not an array")),
            }
        }
        JsonOp::Matches => {
            let re = value.and_then(Value::as_str).unwrap_or_default();
            let re = regex_lite::Regex::new(re).map_err(|e| e.to_string())?;
            match got.and_then(Value::as_str) {
                Some(s) if re.is_match(s) => Ok(()),
                Some(s) => Err(format!(
                    "{path} is {}, which does not match /{re}/",
                    show(&Value::String(s.into()))
                )),
                None => Err(format!("{path} is not a string")),
            }
        }
    }
}

fn check_fingerprint(
    body: &Value,
    fields: &[String],
    expected: &BTreeMap<String, String>,
) -> Result<(), String> {
    for f in fields {
        let v = match at_path(body, f) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(_)) => return Err(format!("{f} is empty")),
            _ => return Err(format!("{f} is missing")),
        };
        if let Some(want) = expected.get(f) {
            if &v != want {
                return Err(format!("{f} is {v:?}, expected {want:?}"));
            }
        }
    }
    Ok(())
}

/// The ids of a page: `id_field` of each item of `items`.
fn page_ids(body: &Value, items: &str, id_field: &str) -> Result<BTreeSet<String>, String> {
    let Some(Value::Array(list)) = at_path(body, items) else {
        return Err(format!("{items} is not an array"));
    };
    list.iter()
        .map(|it| match at_path(it, id_field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(format!("an item of {items} has no {id_field}")),
        })
        .collect()
}

fn with_param(url: &str, param: &str, value: &str) -> Result<String, String> {
    let mut u = url::Url::parse(url).map_err(|e| e.to_string())?;
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(param, value);
    Ok(u.into())
}

/// What one execution found.
struct Outcome {
    status: Option<u16>,
    latency_ms: u64,
    url: String,
    failure: Option<Failure>,
    answer: Option<OutboundResponse>,
    secrets: std::collections::HashMap<String, String>,
}

fn fail(kind: &str, assertion: Option<usize>, message: String) -> Option<Failure> {
    Some(Failure {
        kind: kind.into(),
        assertion,
        message,
    })
}

/// Sends the check's request(s) and evaluates the answer. Nothing is written.
async fn execute(svc: &Services, d: &Definition, owner: &Owner) -> Outcome {
    let names = secret_names(d);
    let masked_url = render_url(d, &masks(d), false).unwrap_or_else(|_| d.url.clone());
    let mut out = Outcome {
        status: None,
        latency_ms: 0,
        url: masked_url,
        failure: None,
        answer: None,
        secrets: Default::default(),
    };
    let secrets = match secrets::resolve(svc, owner, &names).await {
        Ok(s) => s,
        Err(e) => {
            out.failure = fail("request", None, e);
            return out;
        }
    };
    out.secrets = secrets;
    let rendered = (|| -> Result<(String, Vec<(String, String)>), String> {
        let url = render_url(d, &out.secrets, true)?;
        let headers = d
            .headers
            .iter()
            .map(|(k, v)| {
                let v = template::substitute(v, &mut |n| out.secrets.get(n).cloned())?;
                Ok((k.clone(), v))
            })
            .collect::<Result<_, String>>()?;
        Ok((url, headers))
    })();
    let (url, headers) = match rendered {
        Ok(r) => r,
        Err(e) => {
            out.failure = fail("request", None, scrub(&e, &out.secrets));
            return out;
        }
    };
    let timeout = std::time::Duration::from_secs(
        span_secs("timeout", &d.timeout).unwrap_or(5).unsigned_abs(),
    );
    let request = |url: String| OutboundRequest {
        method: d.method.clone(),
        url,
        headers: headers.clone(),
        json: None,
        timeout,
    };
    let started = Instant::now();
    let answer = svc.egress.send(&request(url.clone())).await;
    out.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            out.failure = fail("request", None, scrub(&e.to_string(), &out.secrets));
            return out;
        }
    };
    out.status = Some(answer.status);
    let statuses = d.expected_status.list();
    if !statuses.contains(&answer.status) {
        let want: Vec<String> = statuses.iter().map(u16::to_string).collect();
        out.failure = fail(
            "status",
            None,
            format!(
                "expected status {}, got {}",
                want.join(" or "),
                answer.status
            ),
        );
        out.answer = Some(answer);
        return out;
    }
    if let Some(budget) = d
        .latency_budget
        .as_deref()
        .and_then(|b| humantime::parse_duration(b.trim()).ok())
    {
        let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        if out.latency_ms > budget_ms {
            out.failure = fail(
                "latency",
                None,
                format!(
                    "answered in {} ms, over the budget of {budget_ms} ms",
                    out.latency_ms
                ),
            );
            out.answer = Some(answer);
            return out;
        }
    }
    for (i, a) in d.assertions.iter().enumerate() {
        let result = match a {
            Assertion::Json { path, op, value } => {
                check_json(&answer.body, path, *op, value.as_ref())
            }
            Assertion::VersionFingerprint { fields, expected } => {
                check_fingerprint(&answer.body, fields, expected)
            }
            Assertion::Pagination {
                param,
                values,
                items,
                id_field,
            } => paginate(svc, &request, &url, param, values, items, id_field).await,
        };
        if let Err(why) = result {
            let kind = match a {
                Assertion::Json { .. } => "json",
                Assertion::VersionFingerprint { .. } => "version_fingerprint",
                Assertion::Pagination { .. } => "pagination",
            };
            out.failure = fail(kind, Some(i), scrub(&why, &out.secrets));
            break;
        }
    }
    out.answer = Some(answer);
    out
}

async fn paginate(
    svc: &Services,
    request: &(dyn Fn(String) -> OutboundRequest + Sync),
    url: &str,
    param: &str,
    values: &[String],
    items: &str,
    id_field: &str,
) -> Result<(), String> {
    let mut pages = Vec::new();
    for v in values {
        let u = with_param(url, param, v)?;
        let a = svc
            .egress
            .send(&request(u))
            .await
            .map_err(|e| format!("{param}={v}: {e}"))?;
        if !(200..300).contains(&a.status) {
            return Err(format!("{param}={v}: status {}", a.status));
        }
        pages.push(page_ids(&a.body, items, id_field).map_err(|e| format!("{param}={v}: {e}"))?);
    }
    if pages[0].is_empty() && pages[1].is_empty() {
        return Err(format!(
            "both pages ({param}={} and {}) are empty: nothing to compare",
            values[0], values[1]
        ));
    }
    if pages[0] == pages[1] {
        return Err(format!(
            "{param}={} and {param}={} returned the same {id_field}s: the server ignores {param}",
            values[0], values[1]
        ));
    }
    Ok(())
}

/// Runs a check, raises or resolves its alert, records the run and the
/// check's next due time.
async fn run_and_record(svc: &Services, mut c: SmokeCheck) -> Result<SmokeRun, DomainError> {
    let outcome = execute(svc, &c.definition, &owner(&c)).await;
    let now = svc.clock.now();
    let run_id = svc.ids.ulid();
    let mut run = SmokeRun {
        id: run_id.clone(),
        check_id: c.id.clone(),
        at: now,
        ok: outcome.failure.is_none(),
        status: outcome.status,
        latency_ms: outcome.latency_ms,
        url: outcome.url.clone(),
        failure: outcome.failure.clone(),
        body_blob: None,
    };
    if let (false, Some(answer)) = (run.ok, &outcome.answer) {
        let key = format!(
            "smoke/{}/{}/{}.json",
            c.tenant,
            c.id,
            run_id.to_ascii_lowercase()
        );
        let mut body = answer.body.clone();
        crate::redact::redact_json(&mut body);
        let text = scrub(
            &serde_json::json!({"status": answer.status, "body": body}).to_string(),
            &outcome.secrets,
        );
        match svc
            .blobs
            .put(&key, text.into_bytes(), "application/json")
            .await
        {
            Ok(()) => run.body_blob = Some(key),
            Err(e) => tracing::warn!(check = %c.id, error = %e, "failing answer not kept"),
        }
    }
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::Unavailable("the smoke check kept changing".into()),
        async || -> Result<_, crate::retry::Retry> {
            let event = match (run.ok, c.failing) {
                (false, false) => Some(true),
                (true, true) => Some(false),
                _ => None,
            };
            if let Some(firing) = event {
                raise(svc, &mut c, firing, &run).await?;
            }
            c.last_run = Some(RunSummary {
                id: run.id.clone(),
                at: now,
                ok: run.ok,
            });
            let interval = span_secs("interval", &c.definition.interval).unwrap_or(60);
            let mut work = Work::new(svc);
            save(&mut work, &mut c, Some(now + Duration::seconds(interval)))?;
            let mut run_item = keys::item(
                keys::smoke_runs_pk(&c.tenant, &c.id),
                format!("RUN#{}", run.id),
                1,
                &run,
            )?;
            run_item.expires_at = Some((now + Duration::days(RUN_RETENTION_DAYS)).timestamp());
            work.put(run_item, Condition::Absent);
            match work.commit().await {
                Ok(()) => return Ok(run.clone()),
                Err(e) if e.is_lost_race() => {
                    // Changed meanwhile (another run, an edit): record this run
                    // on the fresh state. An alert already raised for it is
                    // deduplicated into the same incident if raised again.
                    c = crate::work::find::<SmokeCheck>(svc, &c.tenant, &c.id)
                        .await?
                        .ok_or_else(|| not_found(&c.id))?;
                    Err(crate::retry::Retry::Lost)
                }
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
}

async fn raise(
    svc: &Services,
    c: &mut SmokeCheck,
    firing: bool,
    run: &SmokeRun,
) -> Result<(), DomainError> {
    c.events += 1;
    let d = &c.definition;
    let mut labels = d.labels.clone();
    labels.insert("smoke_check".into(), d.name.clone());
    let mut annotations = BTreeMap::from([
        ("smoke_check_id".to_owned(), c.id.clone()),
        ("url".to_owned(), run.url.clone()),
        ("run".to_owned(), run.id.clone()),
        ("event".to_owned(), c.events.to_string()),
    ]);
    if let Some(f) = &run.failure {
        let which = match f.assertion {
            Some(i) => format!("assertions[{i}] ({})", f.kind),
            None => f.kind.clone(),
        };
        annotations.insert("failed".into(), which);
        annotations.insert("reason".into(), f.message.clone());
    }
    let alert = serde_json::json!({
        "title": format!("Smoke check {} failed", d.name),
        "status": if firing { "firing" } else { "resolved" },
        "severity": d.severity,
        "fingerprint": format!("smoke:{}", c.id),
        "labels": labels,
        "annotations": annotations,
        if firing { "starts_at" } else { "ends_at" }: run.at,
    });
    crate::ingest::ingest_alert(
        svc,
        &c.tenant,
        SourceKind::Smoke,
        format!("smoke:{}", d.name),
        &alert,
    )
    .await?;
    c.failing = firing;
    Ok(())
}

/// The `smoke` job: every check whose time has come, oldest first, while
/// the budget lasts.
pub async fn run_due(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::recording::scope("job:smoke", run_due_scoped(svc, budget)).await
}

async fn run_due_scoped(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::due::run_due_index(svc, JOB, budget, |due, sk| {
        let svc = svc.clone();
        async move {
            let Some(c) = crate::work::find::<SmokeCheck>(&svc, &due.tenant, &due.id).await? else {
                crate::due::drop_due(&svc, JOB, &sk).await?;
                return Ok(false);
            };
            if c.due_sk.as_deref() != Some(sk.as_str()) {
                crate::due::drop_due(&svc, JOB, &sk).await?;
                return Ok(false);
            }
            let was_failing = c.failing;
            let run = run_and_record(&svc, c).await?;
            Ok(run.ok == was_failing)
        }
    })
    .await
}

/// Brings the checks of `origin` (files, built-in) in line with `defs`
/// (keyed by a stable id): new ones are created, changed ones replaced
/// (keeping their state), ones no longer defined deleted. Returns how many
/// changed.
pub async fn sync_defined(
    svc: &Services,
    tenant: &TenantId,
    origin: Origin,
    defs: Vec<(String, Definition)>,
) -> Result<usize, DomainError> {
    // The checks function syncs before its first smoke job.
    crate::recording::scope("job:smoke", sync_defined_scoped(svc, tenant, origin, defs)).await
}

async fn sync_defined_scoped(
    svc: &Services,
    tenant: &TenantId,
    origin: Origin,
    defs: Vec<(String, Definition)>,
) -> Result<usize, DomainError> {
    let actor = match origin {
        Origin::File => "smoke-check-files",
        _ => "firewatch",
    };
    let mut changed = 0;
    let mut existing = BTreeMap::new();
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: keys::smoke_pk(tenant),
                sk_prefix: "smk_".into(),
                after,
                limit: 200,
                descending: false,
            })
            .await?;
        for i in &page.items {
            let c: SmokeCheck = crate::work::decode(i)?;
            if c.origin == origin {
                existing.insert(c.id.clone(), c);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    for (id, d) in defs {
        match existing.remove(&id) {
            None => {
                put_new(svc, tenant, actor, id, origin, d).await?;
                changed += 1;
            }
            Some(c) if c.definition == d => {}
            Some(mut c) => {
                validate(&d)?;
                c.definition = d;
                let mut work = Work::new(svc);
                save(&mut work, &mut c, Some(svc.clock.now()))?;
                work.commit().await?;
                changed += 1;
            }
        }
    }
    for c in existing.into_values() {
        let mut work = Work::new(svc);
        work.remove(tenant, &c);
        if let Some(sk) = c.due_sk {
            work.delete(keys::due_pk(JOB), sk, Condition::Always);
        }
        work.commit().await?;
        changed += 1;
    }
    Ok(changed)
}

/// The stable id of a check defined in a file or built in.
pub fn defined_id(origin: Origin, name: &str) -> String {
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let prefix = match origin {
        Origin::Builtin => "smk_builtin_",
        _ => "smk_file_",
    };
    format!("{prefix}{}", crate::limits::truncate(&slug, 80))
}

/// firewatch's own smoke checks when it knows its public URL: `/health`
/// answers `{"status": "ok"}` and `/version` carries its build
/// fingerprint.
pub fn builtin(public_url: &str) -> Vec<(String, Definition)> {
    let def = |name: &str, path: &str, assertions: Vec<Assertion>| Definition {
        name: name.into(),
        method: "GET".into(),
        url: format!("{}{path}", public_url.trim_end_matches('/')),
        headers: BTreeMap::new(),
        interval: "1m".into(),
        timeout: "5s".into(),
        latency_budget: None,
        expected_status: Statuses::One(200),
        assertions,
        severity: "sev2".into(),
        labels: BTreeMap::from([("service".to_owned(), "firewatch".to_owned())]),
    };
    [
        def(
            "firewatch-health",
            "/health",
            vec![Assertion::Json {
                path: "status".into(),
                op: JsonOp::Equals,
                value: Some(Value::String("ok".into())),
            }],
        ),
        def(
            "firewatch-version",
            "/version",
            vec![Assertion::VersionFingerprint {
                fields: vec!["version".into(), "git_sha".into(), "build_id".into()],
                expected: BTreeMap::new(),
            }],
        ),
    ]
    .into_iter()
    .map(|d| (defined_id(Origin::Builtin, &d.name), d))
    .collect()
}

/// Definitions read from files, each with its stable id, and the files
/// refused (`file: why`).
#[derive(Debug, Default)]
pub struct Files {
    pub defs: Vec<(String, Definition)>,
    pub errors: Vec<String>,
}

/// Reads smoke check definitions from YAML or JSON files in `dir`; a file
/// that does not parse or validate is reported (`file: why`) and skipped.
pub fn load_dir(dir: &std::path::Path) -> std::io::Result<Files> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    let mut out = Files::default();
    for path in files {
        let file = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_file(&text) {
                Ok(d) => out.defs.push((defined_id(Origin::File, &d.name), d)),
                Err(e) => out.errors.push(format!("{file}: {e}")),
            },
            Err(e) => out.errors.push(format!("{file}: cannot read: {e}")),
        }
    }
    Ok(out)
}

/// Parses and validates one definition file (YAML, of which JSON is a part).
pub fn parse_file(text: &str) -> Result<Definition, String> {
    if text.len() > 64 * 1024 {
        return Err("the file is over 64 KB".into());
    }
    let d: Definition = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    validate(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_assertions_follow_paths_into_objects_and_arrays() {
        let body =
            serde_json::json!({"items": [{"id": "a", "n": 3}], "total": -1, "name": "api-7"});
        assert!(check_json(&body, "items.0.id", JsonOp::Equals, Some(&"a".into())).is_ok());
        assert!(check_json(&body, "items", JsonOp::ArrayMinLen, Some(&1.into())).is_ok());
        let e = check_json(&body, "items", JsonOp::ArrayMinLen, Some(&2.into())).unwrap_err();
        assert!(e.contains("has 1 items"), "{e}");
        let e = check_json(&body, "total", JsonOp::NonNegative, None).unwrap_err();
        assert!(e.contains("-1"), "{e}");
        assert!(check_json(&body, "name", JsonOp::Matches, Some(&"^api-\\d+$".into())).is_ok());
        assert!(check_json(&body, "missing", JsonOp::Present, None).is_err());
        assert!(check_json(&body, "items.0.n", JsonOp::NotNull, None).is_ok());
        assert!(check_json(&body, "name", JsonOp::Array, None).is_err());
    }

    #[test]
    fn fingerprints_need_every_field_non_empty_and_equal_when_expected() {
        let body = serde_json::json!({"build_id": "b1", "git_sha": "abc", "release_tag": ""});
        let fields = fingerprint_fields();
        let e = check_fingerprint(&body, &fields, &BTreeMap::new()).unwrap_err();
        assert!(e.contains("release_tag is empty"), "{e}");
        let two = vec!["build_id".to_owned(), "git_sha".to_owned()];
        let want = BTreeMap::from([("git_sha".to_owned(), "def".to_owned())]);
        assert!(check_fingerprint(&body, &two, &want)
            .unwrap_err()
            .contains("expected \"def\""));
    }

    #[test]
    fn a_query_parameter_is_replaced_not_repeated() {
        let u = with_param("https://api.example/runs?limit=3&offset=9", "offset", "3").unwrap();
        assert_eq!(u, "https://api.example/runs?limit=3&offset=3");
    }
}
