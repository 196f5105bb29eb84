//! The real OpenLineage Python client (openlineage-python, installed by
//! `tests/run.sh`), unchanged, emitting to a served router: its HTTP
//! transport's default endpoint, an API key as the bearer token, gzip
//! compression, its own facet classes and a custom facet.

use firewatch_types::{IncidentState, SourceKind, TenantId};
use firewatch_web::testing::{get, send, services_with_keys};

const RUN1: &str = "01934b6e-5c1a-7d2e-8f00-0000000000a1";
const RUN2: &str = "01934b6e-5c1a-7d2e-8f00-0000000000a2";

#[tokio::test]
async fn the_openlineage_python_client_emits_to_firewatch_unchanged() {
    let python = std::env::var("FIREWATCH_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("FIREWATCH_TEST_PYTHON is not set: run `bash tests/run.sh`, which installs openlineage-python in its virtual environment")
    });
    let (svc, keys) = services_with_keys().await;
    let app = firewatch_pipelines::router(svc.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/openlineage_emit.py"
    );
    let key = keys.responder.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args([script, &url, &key, RUN1, RUN2])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "the client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let first = send(&app, get(&format!("/v1/runs/{RUN1}"), &keys.viewer)).await;
    assert_eq!(first.json["status"], "failed", "{}", first.text);
    assert_eq!(first.json["started_at"], "2026-11-30T06:00:05.120Z");
    assert_eq!(first.json["nominal_time"], "2026-11-30T06:00:00Z");
    assert!(first.json["error"].as_str().unwrap().contains("orders_v2"));
    assert_eq!(
        first.json["inputs"][0],
        "postgres://db:5432/shop.public.orders"
    );
    let second = send(&app, get(&format!("/v1/runs/{RUN2}"), &keys.viewer)).await;
    assert_eq!(second.json["status"], "completed", "{}", second.text);
    assert_eq!(second.json["cost"]["amount"], 4.25, "the custom facet");

    let p = send(
        &app,
        get("/v1/pipelines/airflow%2Fetl.orders", &keys.viewer),
    )
    .await;
    assert_eq!(p.json["state"], "succeeded", "{}", p.text);
    assert_eq!(p.json["job"]["owners"][0], "team:data");
    assert_eq!(p.json["job"]["integration"], "AIRFLOW");
    assert_eq!(p.json["outputs"][0], "s3://lake/mart/orders");

    // The failure opened an incident; the later success resolved it.
    let incs = firewatch_domain::incidents::list(
        &svc,
        &TenantId::default_tenant(),
        &Default::default(),
        None,
        50,
    )
    .await
    .unwrap()
    .items;
    let inc = incs
        .iter()
        .find(|i| i.source == SourceKind::Pipelines)
        .expect("an incident from the failed run");
    assert_eq!(inc.state, IncidentState::Resolved);
    assert!(
        inc.title.contains("airflow/etl.orders failed"),
        "{}",
        inc.title
    );
}
