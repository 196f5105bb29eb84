//! A Lambda function URL event and an HTTP API event with path parameters,
//! parsed by lambda_http as the runtime does, drive the incidents router.

use axum::body::Body;
use firewatch_domain::ingest::{ingest, IngestRequest};
use firewatch_types::{Principal, Role, SourceKind, TenantId};
use firewatch_web::testing::{fixture, send, services_with_keys};

fn lambda_request(event: &str) -> axum::http::Request<Body> {
    let req = lambda_http::request::from_str(event).expect("a valid Lambda HTTP event");
    let (parts, body) = req.into_parts();
    axum::http::Request::from_parts(parts, Body::from(body.to_vec()))
}

#[tokio::test]
async fn function_url_and_http_api_events_list_and_act_on_incidents() {
    let (svc, keys) = services_with_keys().await;
    let p = Principal {
        tenant: TenantId::default_tenant(),
        name: "t".into(),
        role: Role::Responder,
    };
    let r = ingest(
        &svc,
        IngestRequest {
            principal: &p,
            source: SourceKind::Generic,
            body: &fixture("generic/firing.json"),
            headers: vec![],
        },
    )
    .await
    .unwrap();
    let id = r.incidents[0].to_string();
    let app = firewatch_incidents::router(svc);

    let list = String::from_utf8(fixture("lambda/function_url_get_incidents.json"))
        .unwrap()
        .replace("__TOKEN__", &keys.viewer);
    let a = send(&app, lambda_request(&list)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.json["items"][0]["id"],
        id.as_str(),
        "the query string (state=open) was honoured"
    );

    let act = String::from_utf8(fixture("lambda/apigw_v2_post_action.json"))
        .unwrap()
        .replace("__TOKEN__", &keys.responder)
        .replace("__ID__", &id);
    let a = send(&app, lambda_request(&act)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["state"], "acknowledged");
}
