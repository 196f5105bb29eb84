//! The router's part of recording which table partitions each function
//! reaches (`firewatch_domain::recording`, debug builds only): the store is
//! wrapped to record, and every request runs in the scope of the router's
//! family, the directory its source lives in (`functions/ingest` →
//! `ingest`). The test command checks each recorded access against the
//! function's IAM policy in `infra/template.yaml`.

use axum::Router;
use firewatch_domain::{recording, Services};

/// The family of the router built in `source` (the path of the file that
/// called `finish`), if it lives in a function's or a bot's directory.
fn family(source: &str) -> Option<String> {
    let mut parts = source.split(['/', '\\']);
    loop {
        match parts.next() {
            Some("functions" | "bots") => return parts.next().map(str::to_owned),
            Some(_) => continue,
            None => return None,
        }
    }
}

/// `router` and `services`, recording when `FIREWATCH_RECORD_KEYS` is set.
pub fn wrap(
    router: Router<Services>,
    mut services: Services,
    source: &str,
) -> (Router<Services>, Services) {
    let Some(family) = family(source) else {
        return (router, services);
    };
    if std::env::var_os("FIREWATCH_RECORD_KEYS").is_none() {
        return (router, services);
    }
    services.store = recording::wrap(services.store.clone());
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let family = family.clone();
            async move { recording::scope(&family, next.run(req)).await }
        },
    ));
    (router, services)
}
