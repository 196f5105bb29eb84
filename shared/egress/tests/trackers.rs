//! Each tracker adapter against a recording fake that answers as the
//! tracker's API documents: the exact request sent (method, path, auth,
//! headers, body shape) and how failures are classified.

use firewatch_domain::ports::{NewTicket, Tracker, TrackerError};
use firewatch_egress::trackers::{GitHub, GitLab, Jira};
use firewatch_types::Severity;
use firewatch_web::testing::fakes::FakeTracker;

fn ticket() -> NewTicket {
    NewTicket {
        title: "[sev1] Disk full on db-1".into(),
        body: "## Disk full on db-1\n\n- `host`: db-1\n\nSee [runbook](https://rb.example/disk)"
            .into(),
        severity: Severity::Sev1,
        labels: vec!["source:alertmanager".into()],
    }
}

#[tokio::test]
async fn github_gets_an_issue_with_its_required_headers() {
    let fake = FakeTracker::start().await;
    let gh = GitHub::new(fake.base(), "ghp_secret_token_value", "acme/ops");
    let t = gh.create(&ticket()).await.unwrap();
    assert_eq!(t.id, "acme/ops#12");
    assert_eq!(t.url, "https://github.com/acme/ops/issues/12");
    let c = &fake.calls()[0];
    assert_eq!(c.method, "POST");
    assert_eq!(c.path, "/repos/acme/ops/issues");
    assert_eq!(
        c.header("authorization"),
        Some("Bearer ghp_secret_token_value")
    );
    assert_eq!(c.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(c.header("x-github-api-version"), Some("2022-11-28"));
    assert!(c.header("user-agent").unwrap().starts_with("firewatch/"));
    assert_eq!(c.body["title"], "[sev1] Disk full on db-1");
    assert!(c.body["body"].as_str().unwrap().starts_with("## Disk full"));
    assert_eq!(
        c.body["labels"],
        serde_json::json!(["firewatch", "severity:sev1", "source:alertmanager"])
    );
}

#[tokio::test]
async fn gitlab_gets_an_issue_on_the_encoded_project_path() {
    let fake = FakeTracker::start().await;
    let gl = GitLab::new(
        &format!("{}/api/v4", fake.base()),
        "glpat-secret",
        "platform/ops",
    );
    let t = gl.create(&ticket()).await.unwrap();
    assert_eq!(t.id, "platform/ops#3");
    assert_eq!(t.url, "https://gitlab.example/platform/ops/-/issues/3");
    let c = &fake.calls()[0];
    assert_eq!(c.path, "/api/v4/projects/platform%2Fops/issues");
    assert_eq!(c.header("private-token"), Some("glpat-secret"));
    assert!(c.header("authorization").is_none());
    assert_eq!(
        c.body["labels"],
        "firewatch,severity:sev1,source:alertmanager"
    );
    assert!(c.body["description"].as_str().unwrap().contains("db-1"));
}

#[tokio::test]
async fn jira_gets_an_issue_with_an_adf_description_and_a_priority() {
    let fake = FakeTracker::start().await;
    let jira = Jira::new(fake.base(), "ops@acme.example", "jira-secret", "OPS");
    let t = jira.create(&ticket()).await.unwrap();
    assert_eq!(t.id, "OPS-7");
    assert_eq!(t.url, format!("{}/browse/OPS-7", fake.base()));
    let c = &fake.calls()[0];
    assert_eq!(c.path, "/rest/api/3/issue");
    // Basic base64("ops@acme.example:jira-secret")
    assert_eq!(
        c.header("authorization"),
        Some("Basic b3BzQGFjbWUuZXhhbXBsZTpqaXJhLXNlY3JldA==")
    );
    let f = &c.body["fields"];
    assert_eq!(f["project"]["key"], "OPS");
    assert_eq!(f["summary"], "[sev1] Disk full on db-1");
    assert_eq!(f["issuetype"]["name"], "Task");
    assert_eq!(f["priority"]["name"], "Highest");
    assert_eq!(f["description"]["type"], "doc");
    assert_eq!(f["description"]["version"], 1);
    assert_eq!(f["description"]["content"][0]["type"], "heading");
    assert_eq!(f["description"]["content"][1]["type"], "bulletList");
    let quiet = Jira::new(fake.base(), "e", "t", "OPS").with_priority(false);
    quiet.create(&ticket()).await.unwrap();
    assert!(fake.calls()[1].body["fields"].get("priority").is_none());
}

#[tokio::test]
async fn failures_are_classified_and_never_carry_the_token() {
    let fake = FakeTracker::start().await;
    let gh = GitHub::new(fake.base(), "ghp_secret_token_value", "acme/ops");
    fake.answer_next(502);
    assert!(matches!(
        gh.create(&ticket()).await,
        Err(TrackerError::Retryable(_))
    ));
    fake.answer_next(429);
    assert!(matches!(
        gh.create(&ticket()).await,
        Err(TrackerError::Retryable(_))
    ));
    fake.answer_next(401);
    let e = gh.create(&ticket()).await.unwrap_err();
    assert!(matches!(e, TrackerError::Permanent(_)), "{e}");
    assert!(!e.to_string().contains("ghp_secret_token_value"));
    fake.set_down(true);
    let e = gh.create(&ticket()).await.unwrap_err();
    assert!(matches!(e, TrackerError::Retryable(_)), "{e}");
    fake.set_down(false);
    let unknown = GitHub::new(fake.base(), "t", "acme/ops");
    assert!(unknown.create(&ticket()).await.is_ok());
}
