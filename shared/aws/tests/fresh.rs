//! The deployment's secrets are read when a function starts and again once
//! their time to live has passed: a value rotated in Secrets Manager (moto)
//! is taken by an instance already warm, which builds what it serves anew.
//! A test binary of its own: it sets the process's environment.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn moto() -> String {
    std::env::var("FIREWATCH_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("FIREWATCH_TEST_S3_ENDPOINT is not set: run `bash tests/run.sh`, which starts the moto server")
    })
}

#[tokio::test]
async fn a_rotated_secret_is_taken_once_its_time_to_live_has_passed() {
    let sdk =
        firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHTEST", "firewatchtestsecret")
            .await;
    let client = firewatch_aws::secrets_client(&sdk, Some(&moto()));
    let id = format!("firewatch/secrets-{}/slack", ulid::Ulid::new());
    let set = |token: &str| serde_json::json!({"slack_bot_token": token}).to_string();
    client
        .create_secret()
        .name(&id)
        .secret_string(set("xoxb-first"))
        .send()
        .await
        .unwrap();
    std::env::set_var("FIREWATCH_SECRET_IDS", &id);
    std::env::set_var(
        "FIREWATCH_SECRET_FIELDS",
        "slack_bot_token,slack_signing_secret",
    );
    std::env::set_var("FIREWATCH_SECRETSMANAGER_ENDPOINT", moto());
    std::env::remove_var("SLACK_BOT_TOKEN");
    std::env::remove_var("SLACK_SIGNING_SECRET");

    // What the function builds: here, the token it would send with.
    let builds = Arc::new(AtomicUsize::new(0));
    let counter = builds.clone();
    let ttl = std::time::Duration::from_millis(300);
    let fresh = firewatch_aws::Fresh::start_with(Some(sdk.clone()), ttl, move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(std::env::var("SLACK_BOT_TOKEN").unwrap()) }
    })
    .await
    .unwrap();
    assert_eq!(*fresh.get().await, "xoxb-first");

    client
        .put_secret_value()
        .secret_id(&id)
        .secret_string(set("xoxb-rotated"))
        .send()
        .await
        .unwrap();
    assert_eq!(*fresh.get().await, "xoxb-first", "within the time to live");
    tokio::time::sleep(ttl).await;
    assert_eq!(*fresh.get().await, "xoxb-rotated", "read again after it");
    assert_eq!(builds.load(Ordering::SeqCst), 2, "built anew once");

    // Unchanged values: read again, nothing rebuilt.
    tokio::time::sleep(ttl).await;
    assert_eq!(*fresh.get().await, "xoxb-rotated");
    assert_eq!(builds.load(Ordering::SeqCst), 2);

    // A field the secret did not have at start, added later: taken, and
    // kept at every refresh after.
    client
        .put_secret_value()
        .secret_id(&id)
        .secret_string(
            serde_json::json!({"slack_bot_token": "xoxb-rotated", "slack_signing_secret": "sign-2"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        tokio::time::sleep(ttl).await;
        fresh.get().await;
        assert_eq!(
            std::env::var("SLACK_SIGNING_SECRET").as_deref(),
            Ok("sign-2"),
            "read again, not dropped at the next refresh"
        );
    }

    // Secrets Manager unreachable: the values in use stay in use.
    std::env::set_var("FIREWATCH_SECRETSMANAGER_ENDPOINT", "http://127.0.0.1:9");
    tokio::time::sleep(ttl).await;
    assert_eq!(*fresh.get().await, "xoxb-rotated");
}
