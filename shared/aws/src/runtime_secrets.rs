//! The deployment's secrets, read from Secrets Manager when a function
//! starts instead of being resolved into its Lambda environment: chat
//! tokens and signing secrets, the tracker's token, webhook HMAC secrets.
//!
//! `FIREWATCH_SECRET_IDS` names the secrets this function may read (one per
//! consumer, each a JSON object of strings, and only those in its policy);
//! `FIREWATCH_SECRET_FIELDS` lists the fields it takes from them. Each field becomes
//! the variable that configures it, unless that variable is set already, so
//! the rest of the function reads its configuration one way, and a value
//! never appears in the function's configuration, the console or a
//! template. Read when the function starts, then again once its time to
//! live has passed (`FIREWATCH_SECRETS_TTL`, default 5m; [`Fresh`]): a
//! rotated value is taken within that time by instances already warm.

use std::collections::HashMap;

use aws_config::SdkConfig;

/// The secret's fields and the variables they set. `tracker_token` sets the
/// token variable of the tracker in use (`FIREWATCH_TRACKER`).
pub const FIELDS: [(&str, &str); 7] = [
    ("hmac_secrets", "FIREWATCH_HMAC_SECRETS"),
    ("slack_bot_token", "SLACK_BOT_TOKEN"),
    ("slack_signing_secret", "SLACK_SIGNING_SECRET"),
    ("discord_bot_token", "DISCORD_BOT_TOKEN"),
    ("discord_public_key", "DISCORD_PUBLIC_KEY"),
    ("telegram_bot_token", "TELEGRAM_BOT_TOKEN"),
    ("telegram_webhook_secret", "TELEGRAM_WEBHOOK_SECRET"),
];

/// The variable a field sets, or `None` for a field firewatch does not know.
pub fn variable_of(field: &str, tracker: Option<&str>) -> Option<&'static str> {
    if field == "tracker_token" {
        return match tracker? {
            "github" => Some("GITHUB_TOKEN"),
            "gitlab" => Some("GITLAB_TOKEN"),
            "jira" => Some("JIRA_API_TOKEN"),
            _ => None,
        };
    }
    FIELDS.iter().find(|(f, _)| *f == field).map(|(_, v)| *v)
}

/// The variables to set from `secret` (the secret's JSON text): the
/// `wanted` fields present in it, except those `var` already has. An error
/// names the field or says the value is not an object, never a value.
pub fn variables(
    secret: &str,
    wanted: &[&str],
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<(&'static str, String)>, String> {
    let map: HashMap<String, serde_json::Value> = serde_json::from_str(secret)
        .map_err(|_| "the secret's value is not a JSON object".to_string())?;
    let tracker = var("FIREWATCH_TRACKER");
    let mut out = Vec::new();
    for field in wanted {
        let Some(name) = variable_of(field, tracker.as_deref()) else {
            if *field == "tracker_token" {
                continue;
            }
            return Err(format!("FIREWATCH_SECRET_FIELDS: unknown field {field:?}"));
        };
        if var(name).is_some_and(|v| !v.is_empty()) {
            continue;
        }
        match map.get(*field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if s.is_empty() => {}
            Some(serde_json::Value::String(s)) => out.push((name, s.clone())),
            Some(_) => return Err(format!("the secret's field {field} is not a string")),
        }
    }
    Ok(out)
}

/// Reads the secrets `FIREWATCH_SECRET_IDS` names (through `var`; a
/// comma-separated list, one secret per consumer: `<name>/slack`,
/// `<name>/hmac`, ...) and answers the variables `FIREWATCH_SECRET_FIELDS`
/// asks for, with their values. A named secret that does not exist (a chat
/// platform not in use) gives nothing. `FIREWATCH_SECRETSMANAGER_ENDPOINT`
/// points the client elsewhere (tests).
pub async fn secret_variables(
    sdk: &SdkConfig,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(&'static str, String)>, String> {
    let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    let ids = var("FIREWATCH_SECRET_IDS").unwrap_or_default();
    let fields = var("FIREWATCH_SECRET_FIELDS").unwrap_or_default();
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (ids, wanted) = (list(&ids), list(&fields));
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let client =
        crate::config::secrets_client(sdk, var("FIREWATCH_SECRETSMANAGER_ENDPOINT").as_deref());
    for id in &ids {
        let Some(text) = crate::config::read_secret(&client, id).await? else {
            continue;
        };
        for (name, value) in
            variables(&text, &wanted, &var).map_err(|e| format!("Secrets Manager {id}: {e}"))?
        {
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, value));
            }
        }
    }
    Ok(out)
}

/// How long values read from Secrets Manager are used before they are
/// read again, unless `FIREWATCH_SECRETS_TTL` says otherwise.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(300);

type Build<T> = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send>>
        + Send
        + Sync,
>;

/// What a function builds from its configuration (its services, its
/// router), kept as fresh as its secrets: built once after they are read
/// into the environment at start and, once their time to live has passed,
/// built again at the next request if a value changed. A read that fails
/// keeps the values in use (and says so in the log, never a value).
pub struct Fresh<T> {
    state: tokio::sync::Mutex<State<T>>,
    ttl: std::time::Duration,
    sdk: Option<SdkConfig>,
    /// The variables the secrets set: read anew at a refresh, not taken as
    /// set by the environment.
    ours: Vec<&'static str>,
    build: Build<T>,
}

struct State<T> {
    value: std::sync::Arc<T>,
    read_at: std::time::Instant,
    values: Vec<(&'static str, String)>,
}

/// The environment's variable `k`, unless a secret set it.
fn env_var(ours: &[&'static str], k: &str) -> Option<String> {
    if ours.contains(&k) {
        None
    } else {
        std::env::var(k).ok()
    }
}

impl<T: Send + Sync + 'static> Fresh<T> {
    /// Reads the secrets `FIREWATCH_SECRET_IDS` names into the environment
    /// (nothing without it), then builds. Call first thing in `main`.
    pub async fn start<F, Fut>(build: F) -> Result<std::sync::Arc<Self>, String>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
    {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let ttl = match var("FIREWATCH_SECRETS_TTL") {
            Some(t) => std::time::Duration::from_secs(
                firewatch_domain::units::duration_secs(&t)
                    .map_err(|e| format!("FIREWATCH_SECRETS_TTL: {e}"))?,
            ),
            None => DEFAULT_TTL,
        };
        let sdk = match var("FIREWATCH_SECRET_IDS") {
            Some(_) => Some(crate::config::sdk_config(var("AWS_REGION")).await),
            None => None,
        };
        Self::start_with(sdk, ttl, build).await
    }

    /// [`Fresh::start`] with the SDK configuration (none: no secrets to
    /// read) and the time to live given.
    pub async fn start_with<F, Fut>(
        sdk: Option<SdkConfig>,
        ttl: std::time::Duration,
        build: F,
    ) -> Result<std::sync::Arc<Self>, String>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
    {
        // The variables the secrets may set: every wanted field's, unless the
        // environment sets it itself. A field absent now may appear at a
        // refresh, and is then read again at every one after.
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
        let tracker = std::env::var("FIREWATCH_TRACKER").ok();
        let ours: Vec<&'static str> = std::env::var("FIREWATCH_SECRET_FIELDS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|f| variable_of(f.trim(), tracker.as_deref()))
            .filter(|v| !set(v))
            .collect();
        let values = match &sdk {
            Some(sdk) => secret_variables(sdk, |k| std::env::var(k).ok()).await?,
            None => Vec::new(),
        };
        for (name, value) in &values {
            // Before anything is built, so before any other task reads them.
            std::env::set_var(name, value);
        }
        let build: Build<T> = Box::new(move || Box::pin(build()));
        let value = std::sync::Arc::new(build().await?);
        Ok(std::sync::Arc::new(Self {
            ours,
            state: tokio::sync::Mutex::new(State {
                value,
                read_at: std::time::Instant::now(),
                values,
            }),
            ttl,
            sdk,
            build,
        }))
    }

    /// What was built, built again first when the secrets' time to live
    /// has passed and a value changed.
    pub async fn get(&self) -> std::sync::Arc<T> {
        let mut state = self.state.lock().await;
        let Some(sdk) = &self.sdk else {
            return state.value.clone();
        };
        if state.read_at.elapsed() < self.ttl {
            return state.value.clone();
        }
        state.read_at = std::time::Instant::now();
        let values = match secret_variables(sdk, |k| env_var(&self.ours, k)).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "the deployment's secrets could not be read again; the values read before stay in use");
                return state.value.clone();
            }
        };
        if values == state.values {
            return state.value.clone();
        }
        // One request at a time per instance (`lambda_runtime::run` takes
        // the next event only when this one is answered, and nothing here
        // is spawned): nothing else reads the environment while it changes.
        for (name, _) in &state.values {
            if !values.iter().any(|(n, _)| n == name) {
                std::env::remove_var(name);
            }
        }
        for (name, value) in &values {
            std::env::set_var(name, value);
        }
        match (self.build)().await {
            Ok(v) => {
                tracing::info!("the deployment's secrets changed: rebuilt with the new values");
                state.value = std::sync::Arc::new(v);
                state.values = values;
            }
            Err(e) => {
                tracing::warn!(error = %e, "rebuilding with the deployment's new secrets failed; the values read before stay in use");
                for (name, _) in &values {
                    std::env::remove_var(name);
                }
                for (name, value) in &state.values {
                    std::env::set_var(name, value);
                }
            }
        }
        state.value.clone()
    }
}

/// A router kept as fresh as the secrets it was built with, as the service
/// an HTTP function serves (`lambda_http::run(serve_fresh(fresh))`).
#[cfg(feature = "fresh-router")]
pub fn serve_fresh<B>(
    fresh: std::sync::Arc<Fresh<axum::Router>>,
) -> impl tower::Service<
    axum::http::Request<B>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send,
> + Clone
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    tower::service_fn(move |req: axum::http::Request<B>| {
        let fresh = fresh.clone();
        async move {
            let router = (*fresh.get().await).clone();
            tower::ServiceExt::oneshot(router, req.map(axum::body::Body::new)).await
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_fields_become_their_variables_unless_already_set() {
        let secret = r#"{"slack_bot_token": "xoxb-1", "slack_signing_secret": "s3",
            "hmac_secrets": "grafana=g", "tracker_token": "glpat-x", "telegram_bot_token": ""}"#;
        let env = |k: &str| match k {
            "SLACK_SIGNING_SECRET" => Some("from-env".to_string()),
            "FIREWATCH_TRACKER" => Some("gitlab".to_string()),
            _ => None,
        };
        let got = variables(
            secret,
            &[
                "slack_bot_token",
                "slack_signing_secret",
                "tracker_token",
                "telegram_bot_token",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("SLACK_BOT_TOKEN", "xoxb-1".to_string()),
                ("GITLAB_TOKEN", "glpat-x".to_string())
            ],
            "the set variable wins; an empty field sets nothing; hmac_secrets was not asked for"
        );
        let err = variables(secret, &["slack_token"], &|_| None).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        let err = variables("\"xoxb-secret\"", &["slack_bot_token"], &|_| None).unwrap_err();
        assert!(!err.contains("xoxb-secret"), "{err}");
        // No tracker configured: its token is not needed.
        assert!(variables(secret, &["tracker_token"], &|_| None)
            .unwrap()
            .is_empty());
    }
}
