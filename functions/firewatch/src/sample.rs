//! A realistic Alertmanager webhook (payload version 4) for trying firewatch.

use serde_json::{json, Value};

/// The sample, firing or resolved. Its fingerprint and start time are fixed,
/// so sending it twice shows deduplication.
pub fn alertmanager(resolved: bool) -> Value {
    let status = if resolved { "resolved" } else { "firing" };
    let ends_at = if resolved {
        "2026-11-23T10:12:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    json!({
        "version": "4",
        "groupKey": "{}/{severity=\"critical\"}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "firewatch",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "critical", "namespace": "checkout", "service": "payments-api"},
        "commonAnnotations": {"summary": "payments-api 5xx rate above 5% for 10 minutes"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": status,
            "labels": {
                "alertname": "HighErrorRate",
                "severity": "critical",
                "namespace": "checkout",
                "service": "payments-api",
                "instance": "payments-api-7d9f8c6b5-x2x9k:8080",
                "job": "payments-api"
            },
            "annotations": {
                "summary": "payments-api 5xx rate above 5% for 10 minutes",
                "description": "5xx ratio is 7.3% (threshold 5%).",
                "runbook_url": "https://runbooks.example/payments/high-error-rate"
            },
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": ends_at,
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=job%3Apayments_5xx%3Aratio5m+%3E+0.05",
            "fingerprint": "c4a7d2f1e9b03a58"
        }]
    })
}
