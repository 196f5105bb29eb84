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
    let r = triage::run_as(
        &svc,
        &responder(),
        &id,
        Requested::Assisted,
        &["rollback-checkout".into()],
    )
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
    let r = triage::run_as(&svc, &responder(), &id, Requested::Assisted, &[])
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
    let r = triage::run_as(&svc, &responder(), &id, Requested::Assisted, &[])
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
    let e = triage::run_as(&svc, &responder(), &id, Requested::Assisted, &[])
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
    let r = triage::run_as(&svc, &responder(), &id, Requested::Assisted, &[])
        .await
        .unwrap();
    assert!(r.degraded);
    assert_eq!(r.evidence["assisted"]["error_class"], "invalid_answer");

    // No model configured.
    let svc = services(None, AssistedPolicy::Fallback);
    let id = incident(&svc).await;
    let r = triage::run_as(&svc, &responder(), &id, Requested::Assisted, &[])
        .await
        .unwrap();
    assert_eq!(r.evidence["assisted"]["error_class"], "not_configured");
}
