//! Silences in Alertmanager's API v2 shapes (`api/v2/openapi.yaml`:
//! `gettableSilence`, `postableSilence`, `alertmanagerStatus`), so `amtool`
//! and Grafana's Alertmanager data source manage firewatch's silences.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Matcher, NewSilence, View};

/// `gettableSilence`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    pub id: String,
    pub status: SilenceStatus,
    pub updated_at: DateTime<Utc>,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub annotations: BTreeMap<String, String>,
}

/// `silenceStatus`.
#[derive(Debug, Clone, Serialize)]
pub struct SilenceStatus {
    pub state: &'static str,
}

impl From<View> for GettableSilence {
    fn from(v: View) -> Self {
        let s = v.silence;
        Self {
            id: s.id,
            status: SilenceStatus {
                state: v.state.as_str(),
            },
            updated_at: s.updated_at,
            matchers: s.matchers,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            created_by: s.created_by,
            comment: s.comment,
            annotations: BTreeMap::new(),
        }
    }
}

/// `postableSilence`: a new silence, or an update of `id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    /// Newer Alertmanagers accept annotations; firewatch keeps none.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl From<PostableSilence> for NewSilence {
    fn from(p: PostableSilence) -> Self {
        Self {
            id: p.id.filter(|i| !i.is_empty()),
            matchers: p.matchers,
            starts_at: Some(p.starts_at),
            ends_at: p.ends_at,
            created_by: Some(p.created_by),
            comment: p.comment,
            incident: None,
        }
    }
}

/// `postSilences`' answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceId {
    #[serde(rename = "silenceID")]
    pub silence_id: String,
}

/// `alertmanagerStatus`: what `amtool` reads first. firewatch is one
/// "instance" with clustering disabled.
pub fn status(version: &str, up_since: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "cluster": {"name": "firewatch", "status": "disabled", "peers": []},
        "versionInfo": {
            "version": version,
            "revision": "",
            "branch": "",
            "buildUser": "firewatch",
            "buildDate": "",
            "goVersion": "",
        },
        "config": {"original": ""},
        "uptime": up_since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amtool_add_body_reads_as_a_new_silence() {
        // What amtool 0.25 sends for `silence add alertname=Foo env=~prod|stage team!=x`.
        let body = r#"{"comment":"maint","createdBy":"alice","endsAt":"2026-12-02T07:11:25.905Z","matchers":[{"isEqual":true,"isRegex":false,"name":"alertname","value":"Foo"},{"isEqual":true,"isRegex":true,"name":"env","value":"prod|stage"},{"isEqual":false,"isRegex":false,"name":"team","value":"x"}],"startsAt":"2026-12-02T05:11:25.905Z"}"#;
        let p: PostableSilence = serde_json::from_str(body).unwrap();
        let n: NewSilence = p.into();
        assert_eq!(n.id, None);
        assert_eq!(n.matchers.len(), 3);
        assert_eq!(n.matchers[2].op(), "!=");
        assert_eq!(n.created_by.as_deref(), Some("alice"));
        // isEqual may be left out by older clients: it defaults to true.
        let old: Matcher =
            serde_json::from_str(r#"{"name":"a","value":"b","isRegex":false}"#).unwrap();
        assert!(old.is_equal);
    }
}
