//! Assisted triage through the domain with a scripted model: what the model
//! is sent, how its answer is checked, retries and the failure policies.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use firewatch_domain::ports::{Llm, LlmAnswer, LlmError, LlmRequest};
use firewatch_domain::settings::AssistedPolicy;
use firewatch_domain::triage::{self, Requested};
use firewatch_domain::{DomainError, Services};
use firewatch_types::{
    IncidentId, Principal, Role, SourceKind, TenantId, TimelineKind, TokenUsage,
};
use serde_json::{json, Value};

/// A model that answers from a script and records what it was asked.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<LlmAnswer, LlmError>>>,
    asked: Mutex<Vec<LlmRequest>>,
}

impl Scripted {
    fn with(answers: Vec<Result<LlmAnswer, LlmError>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into()),
            asked: Mutex::default(),
        })
    }
}

#[async_trait]
impl Llm for Scripted {
    fn provider(&self) -> &'static str {
        "bedrock"
    }
    fn model(&self) -> String {
        "scripted-model".into()
    }
    async fn complete(&self, req: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        self.asked.lock().unwrap().push(req.clone());
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Err(LlmError::Server("no more answers".into())))
    }
}

fn tool(v: Value) -> Result<LlmAnswer, LlmError> {
    Ok(LlmAnswer {
        json: Some(v),
        text: None,
        usage: TokenUsage {
            input_tokens: 900,
            output_tokens: 150,
        },
    })
}

fn assisted(playbooks: &[&str]) -> triage::Ask {
    triage::Ask {
        mode: Requested::Assisted,
        playbooks: playbooks.iter().map(|p| (*p).to_owned()).collect(),
        report_id: None,
    }
}

fn responder() -> Principal {
    Principal {
        tenant: TenantId::default_tenant(),
        name: "ana".into(),
        role: Role::Responder,
    }
}

/// An open incident whose alert text carries a secret and a runbook link.
async fn incident(svc: &Services) -> IncidentId {
    let body = json!({"title": "CheckoutErrorRate high", "severity": "sev2",
        "labels": {"service": "checkout", "alertname": "CheckoutErrorRate"},
        "annotations": {"summary": "5xx above 5% password=hunter2"},
        "links": [{"href": "https://runbooks.example/checkout-errors", "text": "runbook"}]});
    let report = firewatch_domain::ingest::ingest(
        svc,
        firewatch_domain::ingest::IngestRequest {
            principal: &responder(),
            source: SourceKind::Generic,
            body: body.to_string().as_bytes(),
            headers: vec![],
        },
    )
    .await
    .unwrap();
    report.incidents[0].clone()
}

fn services(llm: Option<Arc<Scripted>>, policy: AssistedPolicy) -> Services {
    let settings = firewatch_domain::Settings {
        assisted_failure_policy: policy,
        assisted_retry_base_ms: 5,
        ..Default::default()
    };
    firewatch_local::services_in_memory()
        .with_settings(settings)
        .with_llm(llm.map(|l| l as Arc<dyn Llm>))
}

fn good_answer() -> Value {
    json!({
        "summary": {"text": "Checkout is failing for a share of requests.", "fact_ids": ["F1", "F3"]},
        "likely_cause": {"text": "A bad deploy of checkout.", "fact_ids": ["F3", "F6"]},
        "impact_summary": {"text": "Customers cannot pay.", "fact_ids": ["F1", "F5"]},
        "impacted_consumers": [
            {"text": "checkout", "fact_ids": ["F5"]},
            {"text": "payments-api", "fact_ids": ["F99"]}
        ],
        "next_actions": [
            {"text": "Follow the checkout runbook.", "fact_ids": ["F8"], "runbook": "https://runbooks.example/checkout-errors"},
            {"text": "Run the restart-everything playbook.", "fact_ids": ["F1"], "playbook": "restart-everything"},
            {"text": "Roll back the last deploy.", "fact_ids": ["F6"], "playbook": "rollback-checkout"},
            {"text": "Page the database team.", "fact_ids": []}
        ],
        "confidence": "medium",
        "confidence_reason": "the error rule matched; no deploy data"
    })
}

#[tokio::test]
async fn the_model_gets_numbered_redacted_facts_and_unsupported_claims_are_dropped() {
    let llm = Scripted::with(vec![tool(good_answer())]);
    let svc = services(Some(llm.clone()), AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    let r = triage::run_as(&svc, &responder(), &id, &assisted(&["rollback-checkout"]))
        .await
        .unwrap();
    assert_eq!(r.mode, "assisted_bedrock_v1");
    assert_eq!(r.requested_mode, "assisted");
    assert!(!r.degraded);
    assert_eq!(r.summary, "Checkout is failing for a share of requests.");
    assert_eq!(r.likely_cause, "A bad deploy of checkout.");
    assert_eq!(
        r.next_actions,
        ["Follow the checkout runbook.", "Roll back the last deploy."],
        "an invented playbook and an action citing nothing are dropped"
    );
    assert_eq!(r.impacted_consumers, ["checkout"]);
    assert!(r.warnings.iter().any(|w| w.contains("unknown playbook")));
    assert_eq!(r.usage.unwrap().input_tokens, 900);
    assert_eq!(r.evidence["assisted"]["fallback_used"], false);

    let asked = llm.asked.lock().unwrap()[0].clone();
    assert!(
        asked.prompt.contains("F1 [incident] incident.status"),
        "{}",
        asked.prompt
    );
    assert!(asked.prompt.contains("<untrusted>"), "alert text is fenced");
    assert!(asked.prompt.contains("rollback-checkout"));
    assert!(
        !asked.prompt.contains("hunter2"),
        "no secret reaches the model"
    );
    assert!(asked.system.contains("untrusted"));
    assert_eq!(asked.tool_name, "triage_report");

    // On the timeline as the assisted report.
    let tl =
        firewatch_domain::incidents::timeline(&svc, &TenantId::default_tenant(), &id, None, 50)
            .await
            .unwrap();
    assert!(tl.items.iter().any(|e| matches!(&e.kind, TimelineKind::Triage { report } if report.mode == "assisted_bedrock_v1")));
}

#[tokio::test]
async fn a_text_answer_is_accepted_and_throttling_is_retried() {
    let text = format!("Here is the report:\n```json\n{}\n```", good_answer());
    let llm = Scripted::with(vec![
        Err(LlmError::Throttled("slow down".into())),
        Err(LlmError::Server("503".into())),
        Ok(LlmAnswer {
            json: None,
            text: Some(text),
            usage: TokenUsage::default(),
        }),
    ]);
    let svc = services(Some(llm.clone()), AssistedPolicy::Strict);
    let id = incident(&svc).await;
    let r = triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap();
    assert_eq!(r.mode, "assisted_bedrock_v1");
    assert_eq!(llm.asked.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_failing_model_falls_back_or_under_strict_writes_nothing() {
    // Not retried: a refusal.
    let llm = Scripted::with(vec![Err(LlmError::Refused("AccessDenied".into()))]);
    let svc = services(Some(llm.clone()), AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    let r = triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap();
    assert_eq!(r.mode, "deterministic_rules_v1");
    assert!(r.degraded);
    assert_eq!(r.evidence["assisted"]["fallback_used"], true);
    assert_eq!(r.evidence["assisted"]["error_class"], "refused");
    assert!(r.warnings[0].contains("refused"));
    assert_eq!(llm.asked.lock().unwrap().len(), 1);

    // Persistent 5xx under strict: 503 assisted_mode_failed, nothing on the timeline.
    let llm = Scripted::with(vec![]);
    let svc = services(Some(llm.clone()), AssistedPolicy::Strict);
    let id = incident(&svc).await;
    let before =
        firewatch_domain::incidents::timeline(&svc, &TenantId::default_tenant(), &id, None, 50)
            .await
            .unwrap()
            .items
            .len();
    let e = triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            DomainError::DependencyFailed {
                code: "assisted_mode_failed",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        llm.asked.lock().unwrap().len(),
        4,
        "ASSISTED_RETRY_MAX_ATTEMPTS"
    );
    let after =
        firewatch_domain::incidents::timeline(&svc, &TenantId::default_tenant(), &id, None, 50)
            .await
            .unwrap()
            .items
            .len();
    assert_eq!(before, after);

    // An answer that does not validate is a failure too.
    let llm = Scripted::with(vec![tool(
        json!({"summary": {"text": "made up", "fact_ids": ["F77"]}}),
    )]);
    let svc = services(Some(llm), AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    let r = triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap();
    assert!(r.degraded);
    assert_eq!(r.evidence["assisted"]["error_class"], "invalid_answer");

    // No model configured.
    let svc = services(None, AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    let r = triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap();
    assert_eq!(r.evidence["assisted"]["error_class"], "not_configured");
}

fn viewer() -> Principal {
    Principal {
        role: Role::Viewer,
        ..responder()
    }
}

#[tokio::test]
async fn telemetry_counts_each_outcome_and_the_provider_reports_the_last_ones() {
    let llm = Scripted::with(vec![
        tool(good_answer()),
        Err(LlmError::Refused("AccessDenied".into())),
    ]);
    let svc = services(Some(llm.clone()), AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap();
    let fell_back = triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap();
    assert!(fell_back.degraded);
    // Strict on the same store: the model keeps failing (5xx, retried).
    let strict = svc.clone().with_settings(firewatch_domain::Settings {
        assisted_failure_policy: AssistedPolicy::Strict,
        assisted_retry_base_ms: 5,
        ..Default::default()
    });
    triage::run_as(&strict, &responder(), &id, &assisted(&[]))
        .await
        .unwrap_err();
    // Deterministic triage is not a model call: not counted.
    triage::run(&svc, &responder(), &id).await.unwrap();

    let t = triage::telemetry::summary(&svc, &viewer(), 24)
        .await
        .unwrap();
    assert_eq!(t.events, 3);
    assert_eq!(t.by_status["success"], 1);
    assert_eq!(t.by_status["fallback"], 1);
    assert_eq!(t.by_status["failed"], 1);
    assert_eq!(t.by_error_class["refused"], 1);
    assert_eq!(t.by_error_class["server_error"], 1);
    assert_eq!(t.by_provider_model["bedrock/scripted-model"], 3);
    assert_eq!((t.tokens_in, t.tokens_out), (900, 150));
    assert!(t.latency_ms.p50.is_some());
    assert_eq!(
        t.recent[0].status,
        triage::telemetry::Status::Failed,
        "newest first"
    );
    assert_eq!(
        t.recent[0].report_id, None,
        "the strict failure wrote no report"
    );

    let p = triage::telemetry::provider(&strict, &viewer())
        .await
        .unwrap();
    assert_eq!(p.provider, "bedrock");
    assert_eq!(p.model.as_deref(), Some("scripted-model"));
    assert_eq!(p.failure_policy, "strict");
    assert_eq!((p.retry_max_attempts, p.retry_base_ms), (4, 5));
    assert!(p.last_success.is_some());
    assert_eq!(
        p.last_failure.unwrap().error_class.as_deref(),
        Some("server_error")
    );
    assert!(p.credentials.resolved);

    // Nothing configured: said so, without a model call.
    let none = services(None, AssistedPolicy::Fallback);
    let p = triage::telemetry::provider(&none, &viewer()).await.unwrap();
    assert_eq!(p.provider, "none");
    assert!(!p.credentials.resolved);

    // A bad window is refused.
    let e = triage::telemetry::summary(&svc, &viewer(), 0)
        .await
        .unwrap_err();
    assert!(matches!(e, DomainError::BadInput { .. }), "{e:?}");
}

#[tokio::test]
async fn feedback_round_trips_one_vote_per_person_and_is_summarised() {
    let llm = Scripted::with(vec![tool(good_answer())]);
    let svc = services(Some(llm), AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    let rules = triage::run(&svc, &responder(), &id).await.unwrap();
    let model = triage::run_as(&svc, &responder(), &id, &assisted(&[]))
        .await
        .unwrap();
    let (r1, r2) = (rules.id.clone().unwrap(), model.id.clone().unwrap());
    assert!(r1.starts_with("trg_") && r1 != r2);

    use triage::feedback::{record, summary};
    let ana = responder();
    let v = record(
        &svc,
        &ana,
        Some(&id),
        &r1,
        true,
        Some("spot on; token=abc123secret".into()),
    )
    .await
    .unwrap();
    assert!(!v.comment.unwrap().contains("abc123secret"), "redacted");
    // Ana changes her mind: her vote is replaced, not added.
    record(&svc, &ana, Some(&id), &r1, false, None)
        .await
        .unwrap();
    // Ten people vote on the assisted report at once: none is lost.
    let votes = (0..10).map(|n| {
        let svc = svc.clone();
        let r2 = r2.clone();
        async move {
            let p = Principal {
                name: format!("responder-{n}"),
                ..responder()
            };
            record(&svc, &p, None, &r2, n % 5 != 0, None).await
        }
    });
    for v in futures_util::future::join_all(votes).await {
        v.unwrap();
    }

    let s = summary(&svc, &viewer()).await.unwrap();
    assert_eq!(s.overall.total, 11);
    assert_eq!(s.overall.helpful, 8);
    let det = &s.by_mode["deterministic_rules_v1"];
    assert_eq!((det.helpful, det.not_helpful), (0, 1));
    let asst = &s.by_mode["assisted_bedrock_v1"];
    assert_eq!((asst.helpful, asst.not_helpful), (8, 2));
    assert_eq!(s.by_provider["rules"].total, 1);
    assert_eq!(s.by_provider["bedrock"].total, 10);
    assert_eq!(s.by_model["scripted-model"].total, 10);
    assert_eq!(s.by_rule["errors"].total, 11);
    assert_eq!(asst.helpful_ratio, Some(0.8));

    // Refusals change nothing.
    let other = IncidentId::parse("inc_01JD0000000000000000000009").unwrap();
    let e = record(&svc, &ana, Some(&other), &r1, true, None)
        .await
        .unwrap_err();
    assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
    let e = record(&svc, &ana, None, "trg_nope", true, None)
        .await
        .unwrap_err();
    assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
    let e = record(&svc, &viewer(), None, &r1, true, None)
        .await
        .unwrap_err();
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    let e = record(&svc, &ana, None, &r1, true, Some("x".repeat(1001)))
        .await
        .unwrap_err();
    assert!(matches!(e, DomainError::BadInput { .. }), "{e:?}");
    assert_eq!(summary(&svc, &viewer()).await.unwrap().overall.total, 11);
}

#[tokio::test]
async fn the_latest_report_reads_back_and_renders_as_markdown() {
    let svc = services(None, AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    let e = triage::latest(&svc, &viewer(), &id).await.unwrap_err();
    assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
    triage::run(&svc, &responder(), &id).await.unwrap();
    let second = triage::run(&svc, &responder(), &id).await.unwrap();
    let (inc, latest) = triage::latest(&svc, &viewer(), &id).await.unwrap();
    assert_eq!(latest.id, second.id, "the newest one");
    let md = triage::markdown::render(&inc, &latest);
    assert!(md.starts_with("## Triage: CheckoutErrorRate high"), "{md}");
    assert!(
        md.contains("**Likely cause:** Requests are failing"),
        "{md}"
    );
    assert!(md.contains("### Next actions\n\n1. Acknowledge"), "{md}");
    assert!(
        md.contains("- <https://runbooks.example/checkout-errors>"),
        "{md}"
    );
    assert!(md.contains("- **F1** (incident, incident.status)"), "{md}");
    assert!(md.contains(latest.id.as_deref().unwrap()), "{md}");
    assert!(!md.contains("hunter2"), "{md}");
}

/// A model slower than any chat platform lets a click wait.
struct Slow;

#[async_trait]
impl Llm for Slow {
    fn provider(&self) -> &'static str {
        "openai_compatible"
    }
    fn model(&self) -> String {
        "slow-model".into()
    }
    async fn complete(&self, _req: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
        tool(good_answer())
    }
}

/// A chat platform that records the messages posted with buttons.
#[derive(Default)]
struct Recorder {
    messages: Mutex<Vec<firewatch_types::ChatMessage>>,
    replies: Mutex<Vec<String>>,
}

#[async_trait]
impl firewatch_domain::chat::ChatClient for Recorder {
    async fn post_root(
        &self,
        dest: &firewatch_types::Destination,
        _card: &firewatch_types::Card,
    ) -> Result<firewatch_types::ThreadRef, firewatch_domain::chat::ChatError> {
        Ok(firewatch_types::ThreadRef {
            destination: dest.clone(),
            root_id: "root".into(),
            thread_id: None,
        })
    }
    async fn update_root(
        &self,
        _t: &firewatch_types::ThreadRef,
        _card: &firewatch_types::Card,
    ) -> Result<(), firewatch_domain::chat::ChatError> {
        Ok(())
    }
    async fn reply(
        &self,
        _t: &firewatch_types::ThreadRef,
        text: &str,
    ) -> Result<(), firewatch_domain::chat::ChatError> {
        self.replies.lock().unwrap().push(text.to_owned());
        Ok(())
    }
    async fn post_message(
        &self,
        _t: &firewatch_types::ThreadRef,
        message: &firewatch_types::ChatMessage,
    ) -> Result<String, firewatch_domain::chat::ChatError> {
        self.messages.lock().unwrap().push(message.clone());
        Ok("m1".into())
    }
}

#[tokio::test]
async fn a_slow_model_still_answers_a_chat_click_within_3s_and_the_report_follows() {
    use firewatch_domain::chat::press;
    let chat = Arc::new(Recorder::default());
    let settings = firewatch_domain::Settings {
        triage_default: Requested::Assisted,
        default_destinations: vec![firewatch_types::Destination::Slack {
            channel: "C1".into(),
        }],
        ..Default::default()
    };
    let svc = firewatch_local::services_in_memory()
        .with_settings(settings)
        .with_llm(Some(Arc::new(Slow)))
        .with_chat(chat.clone());
    firewatch_domain::auth::ensure_tenant(&svc, &TenantId::default_tenant())
        .await
        .unwrap();
    let id = incident(&svc).await;
    firewatch_domain::dispatch::drain(&svc).await.unwrap();
    let catalog = firewatch_domain::playbooks::Catalog::default();

    let started = std::time::Instant::now();
    let answer = press(&svc, &catalog, &responder(), &format!("fw1:triage:{id}"))
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "answered in {:?}",
        started.elapsed()
    );
    assert!(
        answer.text.contains("follows in its thread"),
        "{}",
        answer.text
    );

    // The dispatcher performs it: the request, then the report with its
    // feedback buttons, in the thread.
    // (The report's own record is new after the first pass.)
    firewatch_domain::dispatch::drain(&svc).await.unwrap();
    firewatch_domain::dispatch::drain(&svc).await.unwrap();
    assert!(chat
        .replies
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.contains("assisted triage requested")));
    let message = chat.messages.lock().unwrap()[0].clone();
    assert!(message.text.contains("assisted"), "{}", message.text);
    let labels: Vec<&str> = message.buttons.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["👍 Helpful", "👎 Not helpful"]);
    let (_, report_id) = firewatch_types::Button::parse(&message.buttons[0].payload).unwrap();
    assert!(report_id.starts_with("trg_"));
    assert!(message.buttons[0].payload.len() <= 64, "Telegram's limit");

    // The effect performed again (a redelivery) writes no second report.
    let (_, latest) = triage::latest(&svc, &viewer(), &id).await.unwrap();
    assert_eq!(latest.id.as_deref(), Some(report_id));
    triage::perform(
        &svc,
        &TenantId::default_tenant(),
        &id,
        report_id,
        Requested::Assisted,
        responder(),
        vec![],
    )
    .await
    .unwrap();
    let tl =
        firewatch_domain::incidents::timeline(&svc, &TenantId::default_tenant(), &id, None, 50)
            .await
            .unwrap();
    let reports = tl
        .items
        .iter()
        .filter(|e| matches!(e.kind, TimelineKind::Triage { .. }))
        .count();
    assert_eq!(reports, 1);

    // 👍 from the thread is a vote.
    let thanks = press(&svc, &catalog, &responder(), &message.buttons[0].payload)
        .await
        .unwrap();
    assert!(thanks.text.contains("helped"), "{}", thanks.text);
    let s = triage::feedback::summary(&svc, &viewer()).await.unwrap();
    assert_eq!(s.by_provider["openai_compatible"].helpful, 1);
}

#[tokio::test]
async fn under_strict_a_chat_requested_triage_that_fails_says_so_in_the_thread() {
    let llm = Scripted::with(vec![Err(LlmError::Refused("AccessDenied".into()))]);
    let svc = services(Some(llm), AssistedPolicy::Strict);
    let id = incident(&svc).await;
    let rid = triage::request(&svc, &responder(), &id, Requested::Assisted, vec![])
        .await
        .unwrap();
    for _ in 0..2 {
        triage::perform(
            &svc,
            &TenantId::default_tenant(),
            &id,
            &rid,
            Requested::Assisted,
            responder(),
            vec![],
        )
        .await
        .unwrap();
    }
    let tl =
        firewatch_domain::incidents::timeline(&svc, &TenantId::default_tenant(), &id, None, 50)
            .await
            .unwrap();
    let notes: Vec<&str> = tl
        .items
        .iter()
        .filter_map(|e| match &e.kind {
            TimelineKind::Comment { text } if text.starts_with("No triage report") => {
                Some(text.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "one note however often it runs");
    assert!(notes[0].contains("refused"), "{}", notes[0]);
}
