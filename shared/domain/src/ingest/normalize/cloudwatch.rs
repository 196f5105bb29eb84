//! CloudWatch alarms delivered by SNS over HTTP(S).
//!
//! SNS posts an envelope whose `Message` is the alarm as a JSON *string*.
//! `NewStateValue` `ALARM` fires, `OK` resolves, `INSUFFICIENT_DATA` carries
//! no alert. A `SubscriptionConfirmation` is returned for the caller to check
//! against the topic allow-list before anything is fetched.

use chrono::{DateTime, Utc};
use firewatch_types::{Alert, AlertStatus, Link, Severity, SourceKind};
use serde::Deserialize;
use std::collections::BTreeMap;

pub use super::parts::SnsSubscription;
use super::parts::{invalid, parse_json, Normalized};
use crate::DomainError;

const SOURCE: SourceKind = SourceKind::Cloudwatch;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    topic_arn: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "SubscribeURL")]
    subscribe_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Alarm {
    alarm_name: String,
    #[serde(default)]
    alarm_description: Option<String>,
    #[serde(default, rename = "AWSAccountId")]
    account_id: Option<String>,
    new_state_value: String,
    #[serde(default)]
    new_state_reason: Option<String>,
    #[serde(default)]
    state_change_time: Option<String>,
    #[serde(default)]
    region: Option<String>,
    alarm_arn: String,
}

pub(super) fn parse(body: &[u8]) -> Result<Normalized, DomainError> {
    let env: SnsEnvelope = parse_json(SOURCE, body)?;
    match env.kind.as_str() {
        "SubscriptionConfirmation" => {
            let (Some(topic_arn), Some(subscribe_url)) = (env.topic_arn, env.subscribe_url) else {
                return Err(invalid(
                    SOURCE,
                    "SubscriptionConfirmation without TopicArn or SubscribeURL",
                ));
            };
            Ok(Normalized {
                sns_subscription: Some(SnsSubscription {
                    topic_arn,
                    subscribe_url,
                }),
                ..Default::default()
            })
        }
        "UnsubscribeConfirmation" => Ok(Normalized {
            note: Some("SNS unsubscribe confirmation ignored".into()),
            ..Default::default()
        }),
        "Notification" => {
            let message = env
                .message
                .ok_or_else(|| invalid(SOURCE, "Notification without Message"))?;
            let alarm: Alarm = serde_json::from_str(&message).map_err(|e| {
                invalid(
                    SOURCE,
                    format!(
                        "Message is not a CloudWatch alarm JSON string: {}",
                        crate::redact::error_without_values(&e.to_string())
                    ),
                )
            })?;
            alarm_to_alert(alarm)
        }
        _ => Err(invalid(
            SOURCE,
            "SNS message Type is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation".to_owned(),
        )),
    }
}

fn alarm_to_alert(alarm: Alarm) -> Result<Normalized, DomainError> {
    let status = match alarm.new_state_value.as_str() {
        "ALARM" => AlertStatus::Firing,
        "OK" => AlertStatus::Resolved,
        "INSUFFICIENT_DATA" => {
            return Ok(Normalized {
                note: Some(format!(
                    "alarm {} has insufficient data; no alert",
                    alarm.alarm_name
                )),
                ..Default::default()
            })
        }
        _ => {
            return Err(invalid(
                SOURCE,
                "NewStateValue is not ALARM, OK or INSUFFICIENT_DATA".to_owned(),
            ))
        }
    };
    let mut labels = BTreeMap::from([("alertname".to_owned(), alarm.alarm_name.clone())]);
    if let Some(r) = &alarm.region {
        labels.insert("region".to_owned(), r.clone());
    }
    if let Some(a) = alarm.account_id {
        labels.insert("account".to_owned(), a);
    }
    let mut annotations = BTreeMap::new();
    if let Some(d) = alarm.alarm_description.filter(|d| !d.is_empty()) {
        annotations.insert("description".to_owned(), d);
    }
    if let Some(r) = alarm.new_state_reason {
        annotations.insert("reason".to_owned(), r);
    }
    // CloudWatch writes `2024-01-01T00:00:00.000+0000`.
    let changed: Option<DateTime<Utc>> = alarm.state_change_time.as_deref().and_then(|t| {
        DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_rfc3339(t))
            .ok()
            .map(|t| t.with_timezone(&Utc))
    });
    let links = alarm
        .region
        .as_ref()
        .map(|r| Link {
            href: format!(
                "https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#alarmsV2:alarm/{}",
                alarm.alarm_name
            ),
            text: Some("cloudwatch".into()),
        })
        .into_iter()
        .collect();
    let (starts_at, ends_at) = match status {
        AlertStatus::Resolved => (None, changed),
        _ => (changed, None),
    };
    Ok(Normalized {
        alerts: vec![Alert {
            source: SOURCE,
            fingerprint: alarm.alarm_arn,
            status,
            severity: Severity::Sev2,
            title: alarm.alarm_name,
            labels,
            annotations,
            links,
            starts_at,
            ends_at,
        }],
        ..Default::default()
    })
}

/// True when `url` is an `https://sns.<region>.amazonaws.com/` URL, the only
/// place a SubscribeURL may point to; anything else could make firewatch
/// fetch an attacker's URL.
pub fn is_sns_url(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    if u.scheme() != "https"
        || u.port().is_some()
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return false;
    }
    let Some(host) = u.host_str() else {
        return false;
    };
    let Some(region) = host
        .strip_prefix("sns.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
    else {
        return false;
    };
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::is_sns_url;

    #[test]
    fn only_regional_sns_hosts_may_be_fetched() {
        assert!(is_sns_url(
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=x"
        ));
        assert!(!is_sns_url(
            "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"
        ));
        assert!(!is_sns_url(
            "https://sns.us-west-2.amazonaws.com.evil.example/"
        ));
        assert!(!is_sns_url(
            "https://evil.example/sns.us-west-2.amazonaws.com"
        ));
        assert!(!is_sns_url("https://sns.amazonaws.com/"));
        assert!(!is_sns_url("https://user@sns.us-east-1.amazonaws.com/"));
        assert!(!is_sns_url("https://sns.us-east-1.amazonaws.com:8443/"));
        assert!(!is_sns_url("https://sns.evil.x.amazonaws.com/"));
    }
}
