//! The egress guard on real sockets: what a request whose target a
//! definition or API input can set may reach, checked on the address dialled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use firewatch_domain::egress::EgressAllow;
use firewatch_domain::ports::{Egress, OutboundError, OutboundRequest};
use firewatch_egress::HttpEgress;

/// A listener on 127.0.0.1 that counts what reaches it; `/redirect` sends
/// the caller to `to`.
async fn listener(to: Option<String>) -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/redirect",
            get(move || {
                let to = to.clone().unwrap_or_default();
                async move { (StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }
            }),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                }
            },
        ));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    (port, hits)
}

fn get_req(url: &str) -> OutboundRequest {
    OutboundRequest {
        method: "GET".into(),
        url: url.into(),
        headers: vec![("Authorization".into(), "Token s3cr3t".into())],
        json: None,
        timeout: Duration::from_secs(5),
    }
}

fn refused(r: Result<firewatch_domain::ports::OutboundResponse, OutboundError>) -> String {
    match r {
        Err(OutboundError::Unsupported(m)) if m.starts_with("refused by the egress guard") => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn only_public_addresses_are_reached_unless_the_operator_allows_more() {
    let (port, hits) = listener(None).await;
    let guard = HttpEgress::new(EgressAllow::default());
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00::1]/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
    ] {
        let m = refused(guard.send(&get_req(&url)).await);
        assert!(m.contains("FIREWATCH_EGRESS_ALLOW"), "{url}: {m}");
        assert!(!m.contains("s3cr3t"), "{m}");
    }
    let metadata = refused(
        guard
            .send(&get_req("http://169.254.169.254/latest/meta-data/"))
            .await,
    );
    assert!(metadata.contains("link-local"), "{metadata}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the listener"
    );

    // Named by the operator: that host, and only on that port when a port
    // is given.
    let allowed = HttpEgress::new(EgressAllow::parse(&format!("localhost:{port}")).unwrap());
    let ok = allowed
        .send(&get_req(&format!("http://localhost:{port}/")))
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    refused(
        allowed
            .send(&get_req(&format!("http://localhost:{}/", port + 1)))
            .await,
    );
    refused(
        allowed
            .send(&get_req(&format!("http://127.0.0.2:{port}/")))
            .await,
    );
    let by_net = HttpEgress::new(EgressAllow::parse("127.0.0.0/8").unwrap());
    assert_eq!(
        by_net
            .send(&get_req(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    let (elsewhere, elsewhere_hits) = listener(None).await;
    let (port, hits) = listener(Some(format!("http://127.0.0.1:{elsewhere}/"))).await;
    let guard = HttpEgress::new(EgressAllow::parse("127.0.0.1").unwrap());
    let a = guard
        .send(&get_req(&format!("http://127.0.0.1:{port}/redirect")))
        .await
        .unwrap();
    assert_eq!(a.status, 302, "the answer is the redirect itself");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0, "never followed");
}
