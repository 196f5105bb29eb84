//! Settings that shape the domain's behaviour, read once at start from the
//! environment (see the README's configuration table).

use firewatch_types::{SourceKind, TenantId};
use std::collections::HashMap;
use std::fmt;

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Domain settings. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body accepted, in bytes (`FIREWATCH_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// New incidents allowed per group key per hour (`FIREWATCH_RATE_LIMIT_PER_HOUR`).
    pub rate_limit_per_hour: usize,
    /// Resolve an incident when all its alerts resolve (`FIREWATCH_AUTO_RESOLVE`).
    pub auto_resolve: bool,
    /// SNS topic ARNs whose subscriptions may be confirmed (`FIREWATCH_SNS_TOPICS`).
    pub sns_topic_allowlist: Vec<String>,
    /// HMAC secrets per tenant and source (`FIREWATCH_HMAC_SECRETS`).
    pub hmac_secrets: HashMap<(TenantId, SourceKind), Secret>,
    /// Labels whose values form the group key, per source (`FIREWATCH_GROUP_BY`);
    /// a source not listed groups by the provider's fingerprint.
    pub group_by: HashMap<SourceKind, Vec<String>>,
    /// Where incident threads go: `SLACK_DEFAULT_CHANNEL`,
    /// `DISCORD_DEFAULT_CHANNEL_ID`, `TELEGRAM_DEFAULT_CHAT_ID` (and the console
    /// in `firewatch dev`).
    pub default_destinations: Vec<firewatch_types::Destination>,
    /// `FIREWATCH_DEFAULT_CHANNEL_TENANTS`: the tenants whose unrouted
    /// incidents go to the operator's default chat channels (`*`: every
    /// tenant). Default: `default` alone, so a single-tenant install sends
    /// there and another tenant's incidents never reach the operator's
    /// channels unless the operator says so. The console of `firewatch dev`
    /// shows every tenant's threads.
    pub default_channel_tenants: TenantScope,
    /// Seconds during which a body identical to one already received is a
    /// redelivery and changes nothing (`FIREWATCH_DEDUP_WINDOW_SECS`).
    pub dedup_window_secs: i64,
    /// Where `github_workflow_dispatch` steps send their request
    /// (`GITHUB_API_URL`, as in GitHub Actions; GitHub Enterprise Server:
    /// `https://HOST/api/v3`).
    pub github_api_url: String,
    /// `FIREWATCH_FRESHNESS` (`alertmanager:15m,sentry:1h`): providers whose
    /// alerts must keep arriving, with their windows in seconds.
    pub freshness: std::collections::BTreeMap<SourceKind, i64>,
    /// `FIREWATCH_PUBLIC_URL`: firewatch's base URL as its callers reach it
    /// (ping URLs are built on it; else on the request's host).
    pub public_url: Option<String>,
    /// `FIREWATCH_EGRESS_ALLOW`: the local targets (`HOST`, `HOST:PORT`,
    /// CIDR) that playbook steps and smoke checks may reach beside public
    /// addresses; empty by default, everywhere.
    pub egress_allow: crate::egress::EgressAllow,
    /// `ASSISTED_FAILURE_POLICY`: what a failed assisted triage gives.
    pub assisted_failure_policy: AssistedPolicy,
    /// `ASSISTED_RETRY_MAX_ATTEMPTS` (default 4): tries of a throttled or
    /// 5xx model call.
    pub assisted_retry_max_attempts: u32,
    /// `ASSISTED_RETRY_BASE_MS` (default 300): the first backoff, doubled
    /// each retry, jittered.
    pub assisted_retry_base_ms: u64,
    /// `FIREWATCH_TRIAGE_DEFAULT` (`deterministic`, the default, or
    /// `assisted`): the mode of the Triage button, a bare `/fw triage` and
    /// a triage request that names none.
    pub triage_default: Requested,
    /// `FIREWATCH_COST_ALERT_BAND` (`low`, `medium`, `high`, the default, or
    /// `off`): the least cost-anomaly band the `pipelines` job raises an
    /// alert for (`None`: never).
    pub cost_alert_band: Option<Band>,
    /// `FIREWATCH_TRACKER` (`github`, `gitlab`, `jira`): where tickets are
    /// opened (the dispatcher holds the client; this says one exists).
    pub tracker: Option<String>,
    /// `FIREWATCH_WORK_ITEM_MIN_INCIDENTS` (default 3): incidents a
    /// recurring group needs within `work_item_window_secs` to be a work item.
    pub work_item_min_incidents: u64,
    /// `FIREWATCH_WORK_ITEM_WINDOW` (default `7d`).
    pub work_item_window_secs: i64,
    /// Flap damping (docs/NOISE.md): an alert group whose alerts flip
    /// between firing and resolved more than `flap.max_flips` times within
    /// `flap.window_secs` is flapping (`FIREWATCH_FLAP_MAX_FLIPS`, default 3;
    /// `FIREWATCH_FLAP_WINDOW`, default `10m`; `FIREWATCH_FLAP_HOLD`, default
    /// `15m`); a routing rule may set its own.
    pub flap: FlapRule,
    /// Storms (docs/NOISE.md): more than `storm_incidents` new incidents of
    /// a tenant within `storm_window_secs` collapse into one storm thread
    /// (`FIREWATCH_STORM_INCIDENTS`, default 20; `FIREWATCH_STORM_WINDOW`,
    /// default `60s`; 0 incidents turns storms off).
    pub storm_incidents: usize,
    pub storm_window_secs: i64,
    /// `FIREWATCH_RATE_LIMITS`: per-minute limits on dry-runs, assisted
    /// triage and silence changes per tenant, and pings per heartbeat.
    pub rate_limits: crate::throttle::Limits,
    /// `FIREWATCH_AUDIT_VIA_DISPATCHER` (default false): this function may
    /// not write the audit log (the chat functions on AWS), so its audit
    /// events are queued in the transaction of their change and the
    /// dispatcher files them.
    pub audit_via_dispatcher: bool,
}

/// When an alert group is flapping, and when it is stable again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapRule {
    /// Flips (firing to resolved, or back) beyond which the group flaps.
    pub max_flips: u32,
    pub window_secs: i64,
    /// How long without a flip before a flapping incident is stable again.
    pub hold_secs: i64,
}

impl Default for FlapRule {
    fn default() -> Self {
        Self {
            max_flips: 3,
            window_secs: 600,
            hold_secs: 900,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            rate_limit_per_hour: 3,
            auto_resolve: true,
            sns_topic_allowlist: Vec::new(),
            hmac_secrets: HashMap::new(),
            group_by: HashMap::new(),
            dedup_window_secs: 600,
            default_destinations: Vec::new(),
            default_channel_tenants: TenantScope::Only(vec![TenantId::default_tenant()]),
            github_api_url: "https://api.github.com".into(),
            freshness: std::collections::BTreeMap::new(),
            public_url: None,
            egress_allow: crate::egress::EgressAllow::default(),
            assisted_failure_policy: AssistedPolicy::Fallback,
            assisted_retry_max_attempts: 4,
            assisted_retry_base_ms: 300,
            triage_default: Requested::Deterministic,
            cost_alert_band: Some(Band::High),
            tracker: None,
            work_item_min_incidents: 3,
            work_item_window_secs: 7 * 86_400,
            flap: FlapRule::default(),
            storm_incidents: 20,
            storm_window_secs: 60,
            rate_limits: crate::throttle::Limits::default(),
            audit_via_dispatcher: false,
        }
    }
}

/// A set of tenants: every one, or those listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    All,
    Only(Vec<TenantId>),
}

impl TenantScope {
    pub fn contains(&self, t: &TenantId) -> bool {
        match self {
            Self::All => true,
            Self::Only(ts) => ts.contains(t),
        }
    }

    /// `*`, or a comma-separated list of tenant ids (empty: none).
    pub fn parse(name: &str, v: &str) -> Result<Self, String> {
        if v.trim() == "*" {
            return Ok(Self::All);
        }
        split_list(v)
            .map(|t| TenantId::parse(t).map_err(|e| format!("{name}: {e}")))
            .collect::<Result<_, _>>()
            .map(Self::Only)
    }
}

/// What a failed assisted triage gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssistedPolicy {
    /// The deterministic report, marked `degraded`, with a warning.
    Fallback,
    /// `503 assisted_mode_failed`, nothing written.
    Strict,
}

/// PagerDuty refuses Events v2 bodies over 512 KB; so do we on its routes.
pub const PAGERDUTY_MAX_BODY_BYTES: usize = 512 * 1024;

impl Settings {
    /// Reads settings through `var` (normally `std::env::var`). An error names
    /// the variable that is wrong and why.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = Self::default();
        if let Some(v) = var("FIREWATCH_MAX_BODY_BYTES") {
            s.max_body_bytes = parse_num("FIREWATCH_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = var("FIREWATCH_RATE_LIMIT_PER_HOUR") {
            s.rate_limit_per_hour = parse_num("FIREWATCH_RATE_LIMIT_PER_HOUR", &v)?;
        }
        if let Some(v) = var("FIREWATCH_DEDUP_WINDOW_SECS") {
            s.dedup_window_secs = parse_num("FIREWATCH_DEDUP_WINDOW_SECS", &v)? as i64;
        }
        if let Some(v) = var("FIREWATCH_AUTO_RESOLVE") {
            s.auto_resolve = match v.as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(format!(
                        "FIREWATCH_AUTO_RESOLVE must be true or false, got {v:?}"
                    ))
                }
            };
        }
        if let Some(v) = var("GITHUB_API_URL") {
            if !(v.starts_with("https://") || v.starts_with("http://")) {
                return Err("GITHUB_API_URL must be an http(s) URL".into());
            }
            s.github_api_url = v.trim_end_matches('/').to_owned();
        }
        if let Some(v) = var("FIREWATCH_FRESHNESS") {
            for entry in split_list(&v) {
                let (source, window) = entry.split_once(':').ok_or_else(|| {
                    "FIREWATCH_FRESHNESS entries must look like provider:window (alertmanager:15m)"
                        .to_string()
                })?;
                let source = SourceKind::parse(source.trim())
                    .filter(|s| !s.is_internal())
                    .ok_or_else(|| format!("FIREWATCH_FRESHNESS: unknown provider {source:?}"))?;
                let secs = crate::units::span_secs("window", window)
                    .map_err(|e| format!("FIREWATCH_FRESHNESS: {source}: {e}"))?;
                s.freshness.insert(source, secs);
            }
        }
        if let Some(v) = var("FIREWATCH_AUDIT_VIA_DISPATCHER") {
            s.audit_via_dispatcher = match v.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" | "" => false,
                _ => {
                    return Err(format!(
                        "FIREWATCH_AUDIT_VIA_DISPATCHER must be true or false, got {v:?}"
                    ))
                }
            };
        }
        if let Some(v) = var("FIREWATCH_RATE_LIMITS") {
            s.rate_limits = crate::throttle::Limits::parse(&v)?;
        }
        if let Some(v) = var("FIREWATCH_EGRESS_ALLOW") {
            s.egress_allow = crate::egress::EgressAllow::parse(&v)?;
        }
        if let Some(v) = var("FIREWATCH_PUBLIC_URL").filter(|v| !v.trim().is_empty()) {
            if !(v.starts_with("https://") || v.starts_with("http://")) {
                return Err("FIREWATCH_PUBLIC_URL must be an http(s) URL".into());
            }
            s.public_url = Some(v.trim().trim_end_matches('/').to_owned());
        }
        if let Some(v) = var("ASSISTED_FAILURE_POLICY") {
            s.assisted_failure_policy = match v.trim() {
                "fallback" => AssistedPolicy::Fallback,
                "strict" => AssistedPolicy::Strict,
                _ => {
                    return Err(format!(
                        "ASSISTED_FAILURE_POLICY must be fallback or strict, got {v:?}"
                    ))
                }
            };
        }
        if let Some(v) = var("ASSISTED_RETRY_MAX_ATTEMPTS") {
            let n = parse_num("ASSISTED_RETRY_MAX_ATTEMPTS", &v)?;
            if !(1..=10).contains(&n) {
                return Err("ASSISTED_RETRY_MAX_ATTEMPTS must be between 1 and 10".into());
            }
            s.assisted_retry_max_attempts = n as u32;
        }
        if let Some(v) = var("ASSISTED_RETRY_BASE_MS") {
            s.assisted_retry_base_ms =
                parse_num("ASSISTED_RETRY_BASE_MS", &v)?.clamp(1, 10_000) as u64;
        }
        if let Some(v) = var("FIREWATCH_TRIAGE_DEFAULT").filter(|v| !v.trim().is_empty()) {
            s.triage_default = Requested::parse(v.trim()).ok_or_else(|| {
                format!("FIREWATCH_TRIAGE_DEFAULT must be deterministic or assisted, got {v:?}")
            })?;
        }
        if let Some(v) = var("FIREWATCH_COST_ALERT_BAND").filter(|v| !v.trim().is_empty()) {
            s.cost_alert_band = match v.trim() {
                "off" => None,
                "low" => Some(Band::Low),
                "medium" => Some(Band::Medium),
                "high" => Some(Band::High),
                _ => {
                    return Err(format!(
                        "FIREWATCH_COST_ALERT_BAND must be low, medium, high or off, got {v:?}"
                    ))
                }
            };
        }
        if let Some(v) = var("FIREWATCH_TRACKER").filter(|v| !v.trim().is_empty()) {
            let v = v.trim();
            if !["github", "gitlab", "jira"].contains(&v) {
                return Err(format!(
                    "FIREWATCH_TRACKER must be github, gitlab or jira, got {:?}",
                    crate::limits::truncate(v, 20)
                ));
            }
            s.tracker = Some(v.to_owned());
        }
        if let Some(v) = var("FIREWATCH_WORK_ITEM_MIN_INCIDENTS") {
            let n = parse_num("FIREWATCH_WORK_ITEM_MIN_INCIDENTS", &v)?;
            if !(2..=1000).contains(&n) {
                return Err("FIREWATCH_WORK_ITEM_MIN_INCIDENTS must be between 2 and 1000".into());
            }
            s.work_item_min_incidents = n as u64;
        }
        if let Some(v) = var("FIREWATCH_WORK_ITEM_WINDOW") {
            s.work_item_window_secs = crate::units::span_secs("FIREWATCH_WORK_ITEM_WINDOW", &v)
                .map_err(|e| e.to_string())?;
        }
        if let Some(v) = var("FIREWATCH_FLAP_MAX_FLIPS") {
            let n = parse_num("FIREWATCH_FLAP_MAX_FLIPS", &v)?;
            if !(1..=100).contains(&n) {
                return Err("FIREWATCH_FLAP_MAX_FLIPS must be between 1 and 100".into());
            }
            s.flap.max_flips = n as u32;
        }
        for (name, slot) in [
            ("FIREWATCH_FLAP_WINDOW", &mut s.flap.window_secs),
            ("FIREWATCH_FLAP_HOLD", &mut s.flap.hold_secs),
            ("FIREWATCH_STORM_WINDOW", &mut s.storm_window_secs),
        ] {
            if let Some(v) = var(name) {
                *slot = crate::units::span_secs(name, &v).map_err(|e| e.to_string())?;
            }
        }
        if let Some(v) = var("FIREWATCH_STORM_INCIDENTS") {
            s.storm_incidents = parse_num("FIREWATCH_STORM_INCIDENTS", &v)?;
        }
        if let Some(v) = var("FIREWATCH_SNS_TOPICS") {
            s.sns_topic_allowlist = split_list(&v).map(str::to_owned).collect();
        }
        if let Some(v) = var("FIREWATCH_HMAC_SECRETS") {
            for entry in split_list(&v) {
                let (target, secret) = entry.split_once('=').ok_or_else(|| {
                    "FIREWATCH_HMAC_SECRETS entries must look like [tenant/]source=secret"
                        .to_string()
                })?;
                let (tenant, source) = match target.split_once('/') {
                    Some((t, src)) => (t, src),
                    None => ("default", target),
                };
                // Errors never quote an entry: a secret holding `,` or `=`
                // would leak a piece of itself into the log.
                let tenant = TenantId::parse(tenant).map_err(|_| {
                    "FIREWATCH_HMAC_SECRETS: an entry names an invalid tenant".to_string()
                })?;
                let source = SourceKind::parse(source).ok_or_else(|| {
                    "FIREWATCH_HMAC_SECRETS: an entry names an unknown source".to_string()
                })?;
                if secret.is_empty() {
                    return Err("FIREWATCH_HMAC_SECRETS: a secret is empty".into());
                }
                s.hmac_secrets.insert((tenant, source), Secret::new(secret));
            }
        }
        use firewatch_types::Destination;
        if let Some(channel) = var("SLACK_DEFAULT_CHANNEL").filter(|v| !v.is_empty()) {
            s.default_destinations.push(Destination::Slack { channel });
        }
        if let Some(channel_id) = var("DISCORD_DEFAULT_CHANNEL_ID").filter(|v| !v.is_empty()) {
            s.default_destinations
                .push(Destination::Discord { channel_id });
        }
        if let Some(chat_id) = var("TELEGRAM_DEFAULT_CHAT_ID").filter(|v| !v.is_empty()) {
            s.default_destinations.push(Destination::Telegram {
                chat_id,
                topic_id: None,
            });
        }
        if let Some(v) = var("FIREWATCH_DEFAULT_CHANNEL_TENANTS") {
            s.default_channel_tenants =
                TenantScope::parse("FIREWATCH_DEFAULT_CHANNEL_TENANTS", &v)?;
        }
        if let Some(v) = var("FIREWATCH_GROUP_BY") {
            // `alertmanager=alertname+namespace;grafana=alertname`
            for entry in v.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                let (source, labels) = entry.split_once('=').ok_or_else(|| {
                    "FIREWATCH_GROUP_BY entries must look like source=label+label".to_string()
                })?;
                let source = SourceKind::parse(source.trim())
                    .ok_or_else(|| format!("FIREWATCH_GROUP_BY: unknown source {source:?}"))?;
                let labels: Vec<String> = labels
                    .split('+')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                if labels.is_empty() {
                    return Err(format!("FIREWATCH_GROUP_BY: no labels for {source}"));
                }
                s.group_by.insert(source, labels);
            }
        }
        Ok(s)
    }
}

fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|e| !e.is_empty())
}

fn parse_num(name: &str, v: &str) -> Result<usize, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{name} must be a whole number, got {v:?}"))
}

/// The triage mode a caller asks for (its default is a setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Deterministic,
    /// The model enriches the deterministic report (see `triage::assisted`).
    Assisted,
}

impl Requested {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deterministic => "deterministic",
            Self::Assisted => "assisted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deterministic" => Some(Self::Deterministic),
            "assisted" => Some(Self::Assisted),
            _ => None,
        }
    }
}

/// How far above its baseline a day's cost is (the band that alerts is a
/// setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    None,
    /// At least 1.5× the baseline.
    Low,
    /// At least 2×.
    Medium,
    /// At least 3×, or spend with no baseline at all.
    High,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn freshness_windows_and_the_public_url_are_read_and_bad_ones_named() {
        let s = Settings::from_vars(vars(&[
            ("FIREWATCH_FRESHNESS", "alertmanager:15m, sentry:1h"),
            ("FIREWATCH_PUBLIC_URL", "https://fw.example/"),
        ]))
        .unwrap();
        assert_eq!(s.freshness.get(&SourceKind::Alertmanager), Some(&900));
        assert_eq!(s.freshness.get(&SourceKind::Sentry), Some(&3600));
        assert_eq!(s.public_url.as_deref(), Some("https://fw.example"));
        for (bad, named) in [
            ("nagios:5m", "nagios"),
            ("heartbeat:5m", "heartbeat"),
            ("sentry", "provider:window"),
            ("sentry:soon", "sentry"),
        ] {
            let e = Settings::from_vars(vars(&[("FIREWATCH_FRESHNESS", bad)])).unwrap_err();
            assert!(
                e.contains("FIREWATCH_FRESHNESS") && e.contains(named),
                "{e}"
            );
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.rate_limit_per_hour, 3);
        assert!(s.auto_resolve);
    }

    #[test]
    fn hmac_secrets_and_group_by_parse_per_source() {
        let s = Settings::from_vars(vars(&[
            ("FIREWATCH_HMAC_SECRETS", "grafana=s1, acme/sentry=s2"),
            ("FIREWATCH_GROUP_BY", "alertmanager=alertname+namespace"),
        ]))
        .unwrap();
        let key = (TenantId::parse("acme").unwrap(), SourceKind::Sentry);
        assert_eq!(s.hmac_secrets[&key].expose(), "s2");
        assert_eq!(
            s.group_by[&SourceKind::Alertmanager],
            vec!["alertname", "namespace"]
        );
    }

    #[test]
    fn a_bad_value_names_its_variable_and_hides_secrets() {
        let e =
            Settings::from_vars(vars(&[("FIREWATCH_RATE_LIMIT_PER_HOUR", "lots")])).unwrap_err();
        assert!(e.contains("FIREWATCH_RATE_LIMIT_PER_HOUR"));
        let e =
            Settings::from_vars(vars(&[("FIREWATCH_HMAC_SECRETS", "nagios=hunter2")])).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(format!("{:?}", Secret::new("hunter2"))
            .find("hunter2")
            .is_none());
    }
}
