//! Issue trackers behind the domain's `Tracker` port: GitHub REST (issues),
//! GitLab REST v4 (issues) and Jira Cloud REST v3 (issues with an Atlassian
//! Document Format body), each sending what its API requires.
//!
//! Configured from the environment ([`tracker_from_env`]):
//! `FIREWATCH_TRACKER` (`github | gitlab | jira`, empty: none), then
//! `GITHUB_API_URL` (default `https://api.github.com`), `GITHUB_TOKEN`,
//! `GITHUB_REPO` (`owner/name`); `GITLAB_API_URL` (default
//! `https://gitlab.com/api/v4`), `GITLAB_TOKEN`, `GITLAB_PROJECT` (an id or
//! `group/project`); `JIRA_API_URL` (the site, `https://acme.atlassian.net`),
//! `JIRA_EMAIL`, `JIRA_API_TOKEN`, `JIRA_PROJECT` (a key), optionally
//! `JIRA_ISSUE_TYPE` (default `Task`) and `JIRA_SET_PRIORITY=false` for
//! projects whose create screen has no priority.
//!
//! A 429, a 5xx, a timeout or an unreachable tracker is worth retrying;
//! any other refusal is not. No error or log carries a token.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use firewatch_domain::ports::{CreatedTicket, NewTicket, Tracker, TrackerError};
use firewatch_types::Severity;
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("firewatch/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .unwrap_or_default()
}

fn severity_label(s: Severity) -> String {
    format!("severity:{}", s.as_str())
}

/// Every ticket's labels: `firewatch`, its severity, then its own.
fn labels(t: &NewTicket) -> Vec<String> {
    let mut out = vec!["firewatch".to_owned(), severity_label(t.severity)];
    out.extend(t.labels.iter().cloned());
    out
}

/// Sends `req`, reads a JSON answer; classifies failures.
async fn send(what: &str, req: reqwest::RequestBuilder) -> Result<Value, TrackerError> {
    let resp = req.send().await.map_err(|e| {
        TrackerError::Retryable(if e.is_timeout() {
            format!("{what} timed out")
        } else {
            format!("{what} is unreachable")
        })
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|_| {
            TrackerError::Permanent(format!("{what} answered {status} with no JSON"))
        });
    }
    // The tracker's own message, bounded and redacted.
    let detail = firewatch_domain::redact::redact_text(&firewatch_domain::limits::truncate(
        text.trim(),
        300,
    ));
    let message = format!("{what} answered {status}: {detail}");
    if status.as_u16() == 429 || status.is_server_error() {
        Err(TrackerError::Retryable(message))
    } else {
        Err(TrackerError::Permanent(message))
    }
}

/// GitHub issues (REST API, `POST /repos/{owner}/{repo}/issues`).
pub struct GitHub {
    http: reqwest::Client,
    api: String,
    token: String,
    repo: String,
}

impl GitHub {
    pub fn new(api: &str, token: &str, repo: &str) -> Self {
        Self {
            http: client(),
            api: api.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            repo: repo.to_owned(),
        }
    }

    /// A request to `{api}/repos/{repo}{path}` with the headers GitHub asks for.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/repos/{}{path}", self.api, self.repo))
            .bearer_auth(&self.token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
    }
}

#[async_trait]
impl Tracker for GitHub {
    fn kind(&self) -> &'static str {
        "github"
    }

    fn project(&self) -> String {
        self.repo.clone()
    }

    async fn check(&self) -> Result<(), TrackerError> {
        send("GitHub", self.request(reqwest::Method::GET, ""))
            .await
            .map(|_| ())
    }

    async fn create(&self, t: &NewTicket) -> Result<CreatedTicket, TrackerError> {
        let req = self
            .request(reqwest::Method::POST, "/issues")
            .json(&json!({"title": t.title, "body": t.body, "labels": labels(t)}));
        let v = send("GitHub", req).await?;
        let number = v["number"].as_u64().ok_or_else(|| {
            TrackerError::Permanent("GitHub answered without an issue number".into())
        })?;
        Ok(CreatedTicket {
            id: format!("{}#{number}", self.repo),
            url: v["html_url"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// GitLab issues (REST API v4, `POST /projects/:id/issues`).
pub struct GitLab {
    http: reqwest::Client,
    api: String,
    token: String,
    project: String,
}

impl GitLab {
    pub fn new(api: &str, token: &str, project: &str) -> Self {
        Self {
            http: client(),
            api: api.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            project: project.to_owned(),
        }
    }

    /// A request to `{api}/projects/{id}{path}` with the project's token.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!(
                    "{}/projects/{}{path}",
                    self.api,
                    encode_segment(&self.project)
                ),
            )
            .header("private-token", &self.token)
    }
}

/// A project id or path as a path segment (`group/project` → `group%2Fproject`).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[async_trait]
impl Tracker for GitLab {
    fn kind(&self) -> &'static str {
        "gitlab"
    }

    fn project(&self) -> String {
        self.project.clone()
    }

    async fn check(&self) -> Result<(), TrackerError> {
        send("GitLab", self.request(reqwest::Method::GET, ""))
            .await
            .map(|_| ())
    }

    async fn create(&self, t: &NewTicket) -> Result<CreatedTicket, TrackerError> {
        let req = self
            .request(reqwest::Method::POST, "/issues")
            .json(&json!({"title": t.title, "description": t.body, "labels": labels(t).join(",")}));
        let v = send("GitLab", req).await?;
        let iid = v["iid"].as_u64().ok_or_else(|| {
            TrackerError::Permanent("GitLab answered without an issue iid".into())
        })?;
        Ok(CreatedTicket {
            id: format!("{}#{iid}", self.project),
            url: v["web_url"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// Jira Cloud issues (REST API v3, `POST /rest/api/3/issue`).
pub struct Jira {
    http: reqwest::Client,
    api: String,
    email: String,
    token: String,
    project: String,
    issue_type: String,
    set_priority: bool,
}

impl Jira {
    pub fn new(api: &str, email: &str, token: &str, project: &str) -> Self {
        Self {
            http: client(),
            api: api.trim_end_matches('/').to_owned(),
            email: email.to_owned(),
            token: token.to_owned(),
            project: project.to_owned(),
            issue_type: "Task".into(),
            set_priority: true,
        }
    }

    pub fn with_issue_type(mut self, t: &str) -> Self {
        t.clone_into(&mut self.issue_type);
        self
    }

    pub fn with_priority(mut self, on: bool) -> Self {
        self.set_priority = on;
        self
    }

    fn basic(&self) -> String {
        let b = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.email, self.token));
        format!("Basic {b}")
    }
}

#[async_trait]
impl Tracker for Jira {
    fn kind(&self) -> &'static str {
        "jira"
    }

    fn project(&self) -> String {
        self.project.clone()
    }

    async fn check(&self) -> Result<(), TrackerError> {
        let req = self
            .http
            .get(format!(
                "{}/rest/api/3/project/{}",
                self.api,
                encode_segment(&self.project)
            ))
            .header("authorization", self.basic())
            .header("accept", "application/json");
        send("Jira", req).await.map(|_| ())
    }

    async fn create(&self, t: &NewTicket) -> Result<CreatedTicket, TrackerError> {
        // Jira labels may not hold spaces.
        let labels: Vec<String> = labels(t).iter().map(|l| l.replace(' ', "_")).collect();
        let mut fields = json!({
            "project": {"key": self.project},
            "summary": t.title,
            "issuetype": {"name": self.issue_type},
            "description": adf(&t.body),
            "labels": labels,
        });
        if self.set_priority {
            fields["priority"] =
                json!({"name": firewatch_domain::tickets::jira_priority(t.severity)});
        }
        let req = self
            .http
            .post(format!("{}/rest/api/3/issue", self.api))
            .header("authorization", self.basic())
            .header("accept", "application/json")
            .json(&json!({"fields": fields}));
        let v = send("Jira", req).await?;
        let key = v["key"]
            .as_str()
            .ok_or_else(|| TrackerError::Permanent("Jira answered without an issue key".into()))?;
        Ok(CreatedTicket {
            id: key.to_owned(),
            url: format!("{}/browse/{key}", self.api),
        })
    }
}

/// Inline Markdown (`**bold**`, `` `code` ``, `[text](url)`) as ADF text
/// nodes with marks.
fn inline(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let flush = |plain: &mut String, out: &mut Vec<Value>| {
        if !plain.is_empty() {
            out.push(json!({"type": "text", "text": std::mem::take(plain)}));
        }
    };
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("**") {
            if let Some(end) = r.find("**").filter(|e| *e > 0) {
                flush(&mut plain, &mut out);
                out.push(json!({"type": "text", "text": &r[..end], "marks": [{"type": "strong"}]}));
                rest = &r[end + 2..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('`') {
            if let Some(end) = r.find('`').filter(|e| *e > 0) {
                flush(&mut plain, &mut out);
                out.push(json!({"type": "text", "text": &r[..end], "marks": [{"type": "code"}]}));
                rest = &r[end + 1..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('[') {
            if let Some((label, after)) = r.split_once("](") {
                if let Some(end) = after.find(')') {
                    let href = &after[..end];
                    if !label.is_empty()
                        && (href.starts_with("http://") || href.starts_with("https://"))
                    {
                        flush(&mut plain, &mut out);
                        out.push(json!({"type": "text", "text": label, "marks": [{"type": "link", "attrs": {"href": href}}]}));
                        rest = &after[end + 1..];
                        continue;
                    }
                }
            }
        }
        plain.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut plain, &mut out);
    out
}

/// A Markdown body as an Atlassian Document Format document: headings,
/// bullet lists, rules and paragraphs, with inline marks.
pub fn adf(markdown: &str) -> Value {
    let mut content: Vec<Value> = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    let flush_list = |items: &mut Vec<Value>, content: &mut Vec<Value>| {
        if !items.is_empty() {
            content.push(json!({"type": "bulletList", "content": std::mem::take(items)}));
        }
    };
    for line in markdown.lines() {
        let l = line.trim_end();
        if let Some(item) = l.strip_prefix("- ") {
            items.push(json!({"type": "listItem", "content": [{"type": "paragraph", "content": inline(item)}]}));
            continue;
        }
        flush_list(&mut items, &mut content);
        if l.trim().is_empty() {
            continue;
        }
        if l == "---" {
            content.push(json!({"type": "rule"}));
        } else if let Some((hashes, text)) = l
            .split_once(' ')
            .filter(|(h, _)| !h.is_empty() && h.len() <= 6 && h.chars().all(|c| c == '#'))
        {
            content.push(json!({"type": "heading", "attrs": {"level": hashes.len()}, "content": inline(text)}));
        } else {
            content.push(json!({"type": "paragraph", "content": inline(l)}));
        }
    }
    flush_list(&mut items, &mut content);
    json!({"type": "doc", "version": 1, "content": content})
}

/// The tracker `FIREWATCH_TRACKER` names, configured from the environment
/// (module docs); `None` when unset. The error names what is missing, never
/// a value.
pub fn tracker_from_env() -> Result<Option<Arc<dyn Tracker>>, String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let need = |k: &str| var(k).ok_or_else(|| format!("{k} is required with FIREWATCH_TRACKER"));
    let Some(kind) = var("FIREWATCH_TRACKER") else {
        return Ok(None);
    };
    let tracker: Arc<dyn Tracker> = match kind.trim() {
        "github" => {
            let repo = need("GITHUB_REPO")?;
            if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
                return Err("GITHUB_REPO must be owner/name".into());
            }
            Arc::new(GitHub::new(
                &var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
                &need("GITHUB_TOKEN")?,
                &repo,
            ))
        }
        "gitlab" => Arc::new(GitLab::new(
            &var("GITLAB_API_URL").unwrap_or_else(|| "https://gitlab.com/api/v4".into()),
            &need("GITLAB_TOKEN")?,
            &need("GITLAB_PROJECT")?,
        )),
        "jira" => Arc::new(
            Jira::new(
                &need("JIRA_API_URL")?,
                &need("JIRA_EMAIL")?,
                &need("JIRA_API_TOKEN")?,
                &need("JIRA_PROJECT")?,
            )
            .with_issue_type(&var("JIRA_ISSUE_TYPE").unwrap_or_else(|| "Task".into()))
            .with_priority(var("JIRA_SET_PRIORITY").is_none_or(|v| v != "false")),
        ),
        other => {
            return Err(format!(
                "FIREWATCH_TRACKER must be github, gitlab or jira, got {:?}",
                firewatch_domain::limits::truncate(other, 20)
            ))
        }
    };
    Ok(Some(tracker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_an_adf_document() {
        let doc = adf("## Disk full\n\n**Severity:** sev1 · see [runbook](https://rb.example/disk)\n\n- `host`: db-1\n- two\n\n---\nplain");
        assert_eq!(doc["type"], "doc");
        assert_eq!(doc["version"], 1);
        let c = doc["content"].as_array().unwrap();
        assert_eq!(c[0]["type"], "heading");
        assert_eq!(c[0]["attrs"]["level"], 2);
        assert_eq!(c[1]["content"][0]["marks"][0]["type"], "strong");
        assert_eq!(
            c[1]["content"][2]["marks"][0]["attrs"]["href"],
            "https://rb.example/disk"
        );
        assert_eq!(c[2]["type"], "bulletList");
        assert_eq!(c[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(
            c[2]["content"][0]["content"][0]["content"][0]["marks"][0]["type"],
            "code"
        );
        assert_eq!(c[3]["type"], "rule");
        assert_eq!(c[4]["content"][0]["text"], "plain");
    }

    #[test]
    fn project_paths_are_one_segment() {
        assert_eq!(encode_segment("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(encode_segment("42"), "42");
    }
}
