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
//! template. Read once per cold start; a rotated value is taken by the next
//! instance.

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

/// [`secret_variables`] from the environment, set in it. Call first thing
/// in `main`, before anything reads its configuration; without
/// `FIREWATCH_SECRET_IDS` it does nothing and costs nothing.
pub async fn secrets_into_env() -> Result<(), String> {
    let var = |k: &str| std::env::var(k).ok();
    if var("FIREWATCH_SECRET_IDS").is_none_or(|v| v.trim().is_empty()) {
        return Ok(());
    }
    let sdk = crate::config::sdk_config(var("AWS_REGION")).await;
    for (name, value) in secret_variables(&sdk, var).await? {
        // At start, before any other task reads the environment.
        std::env::set_var(name, value);
    }
    Ok(())
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
