//! The admin routes, in process through the real router.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use firewatch_domain::Services;
use firewatch_types::TenantId;
use firewatch_web::testing::{
    audit_actions, audit_events, get, json_request, open_incident, send, services_with_keys, Keys,
};

/// Links a Slack channel (and workspace `T0ACME`) to the default tenant the
/// way a user does: a code from `POST /v1/chat-links`, redeemed in the channel.
async fn link_slack_channel(app: &axum::Router, svc: &Services, admin: &str, channel: &str) {
    let a = send(
        app,
        json_request(
            Method::POST,
            "/v1/chat-links",
            Some(admin),
            r#"{"platform": "slack"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let code = a.json["code"].as_str().unwrap();
    let at = firewatch_domain::routing::links::Place {
        platform: "slack",
        workspace: "T0ACME",
        channel,
        user: "U024BE7LH",
    };
    let answer = firewatch_domain::routing::links::redeem(svc, &at, code)
        .await
        .unwrap();
    assert!(answer.starts_with("Linked"), "{answer}");
}

/// Services with keys for every role, one incident (so one outbox record),
/// and the admin router.
async fn setup() -> (Services, Keys, axum::Router, String) {
    let (svc, keys) = services_with_keys().await;
    let id = open_incident(&svc).await;
    let app = firewatch_admin::router(svc.clone());
    (svc, keys, app, id)
}

#[tokio::test]
async fn every_admin_route_needs_a_key() {
    let (_, _, app, _) = setup().await;
    for uri in [
        "/v1/routes",
        "/v1/chat-identities",
        "/v1/dispatch/dead-letters",
    ] {
        let res = send(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
}

#[tokio::test]
async fn dead_letters_can_be_listed_and_put_back_in_the_outbox() {
    let (svc, keys, app, _) = setup().await;
    let a = send(&app, get("/v1/dispatch/dead-letters", &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["items"], serde_json::json!([]));

    let page = svc
        .store
        .query(firewatch_domain::ports::Query::all(
            firewatch_domain::keys::outbox_pk(&TenantId::default_tenant()),
            1,
        ))
        .await
        .unwrap();
    let record: firewatch_domain::outbox::OutboxRecord =
        firewatch_domain::keys::decode(&page.items[0]).unwrap();
    firewatch_domain::dispatch::dead_letter(&svc, &record, 6, "503 from the platform")
        .await
        .unwrap();

    let a = send(&app, get("/v1/dispatch/dead-letters", &keys.viewer)).await;
    assert_eq!(a.json["items"][0]["id"], record.id.as_str());
    assert_eq!(a.json["items"][0]["last_error"], "503 from the platform");

    let uri = format!("/v1/dispatch/dead-letters/{}/retry", record.id);
    let refused = send(
        &app,
        json_request(Method::POST, &uri, Some(&keys.viewer), ""),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let missing = send(
        &app,
        json_request(
            Method::POST,
            "/v1/dispatch/dead-letters/nope/retry",
            Some(&keys.responder),
            "",
        ),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let ok = send(
        &app,
        json_request(Method::POST, &uri, Some(&keys.responder), ""),
    )
    .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    let a = send(&app, get("/v1/dispatch/dead-letters", &keys.viewer)).await;
    assert_eq!(a.json["items"], serde_json::json!([]), "back in the outbox");
}

#[tokio::test]
async fn admins_map_chat_users_to_roles() {
    let (svc, keys, app, _) = setup().await;
    let body = r#"{"platform": "slack", "workspace": "T0ACME", "user_id": "U024BE7LH", "role": "responder"}"#;
    let a = send(
        &app,
        json_request(Method::POST, "/v1/chat-identities", Some(&keys.admin), body),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "a workspace nobody linked: {}",
        a.text
    );
    link_slack_channel(&app, &svc, &keys.admin, "C0OPS").await;
    let a = send(
        &app,
        json_request(
            Method::POST,
            "/v1/chat-identities",
            Some(&keys.responder),
            body,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "only admins map users");
    let a = send(
        &app,
        json_request(Method::POST, "/v1/chat-identities", Some(&keys.admin), body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    for bad in [
        r#"{"platform": "irc", "workspace": "T0ACME", "user_id": "U1", "role": "viewer"}"#,
        r#"{"platform": "slack", "workspace": "T0ACME", "user_id": "U 1", "role": "viewer"}"#,
        r#"{"platform": "slack", "workspace": "T0ACME", "user_id": "U1", "role": "god"}"#,
        r#"{"platform": "slack", "user_id": "U1", "role": "viewer"}"#,
        r#"{"platform": "slack"}"#,
    ] {
        let a = send(
            &app,
            json_request(Method::POST, "/v1/chat-identities", Some(&keys.admin), bad),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    let a = send(&app, get("/v1/chat-identities", &keys.admin)).await;
    assert_eq!(a.json["items"][0]["user_id"], "U024BE7LH");
    assert_eq!(a.json["items"][0]["role"], "responder");
    let del = Request::delete("/v1/chat-identities/slack/T0ACME/U024BE7LH")
        .header("authorization", format!("Bearer {}", keys.admin))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, del).await.status, StatusCode::NO_CONTENT);
    let a = send(&app, get("/v1/chat-identities", &keys.admin)).await;
    assert_eq!(a.json["items"], serde_json::json!([]));
}

#[tokio::test]
async fn admins_manage_routing_rules() {
    let (svc, keys, app, _) = setup().await;
    let rule = r##"{"match": {"severities": ["sev1"], "labels": {"team": "payments"}}, "destinations": [{"platform": "slack", "channel": "C0PAYMENTS"}, {"platform": "telegram", "chat_id": "-1001234567890", "topic_id": "42"}]}"##;
    let put = |token: &str, id: &str, body: &str| {
        json_request(
            Method::PUT,
            &format!("/v1/routes/{id}"),
            Some(token),
            body.to_owned(),
        )
    };
    let a = send(&app, put(&keys.admin, "payments", rule)).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "channels nobody linked to this tenant: {}",
        a.text
    );
    link_slack_channel(&app, &svc, &keys.admin, "C0PAYMENTS").await;
    let telegram = firewatch_types::Destination::Telegram {
        chat_id: "-1001234567890".into(),
        topic_id: None,
    };
    firewatch_domain::routing::links::link_destination_directly(
        &svc,
        &TenantId::default_tenant(),
        &telegram,
    )
    .await
    .unwrap();
    assert_eq!(
        send(&app, put(&keys.responder, "payments", rule))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let a = send(&app, put(&keys.admin, "payments", rule)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["id"], "payments");
    for (id, body) in [
        ("bad id!", rule),
        ("empty", r#"{"destinations": []}"#),
        (
            "unknown-platform",
            r#"{"destinations": [{"platform": "irc", "channel": "x"}]}"#,
        ),
        (
            "unknown-field",
            r#"{"destinations": [{"platform": "console"}], "priority": 1}"#,
        ),
    ] {
        let a = send(
            &app,
            put(
                &keys.admin,
                &id.replace(' ', "%20").replace('!', "%21"),
                body,
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{id}: {}", a.text);
    }
    let a = send(&app, get("/v1/routes", &keys.viewer)).await;
    assert_eq!(a.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(a.json["items"][0]["destinations"][1]["topic_id"], "42");
    let del = Request::delete("/v1/routes/payments")
        .header("authorization", format!("Bearer {}", keys.admin))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, del).await.status, StatusCode::NO_CONTENT);
    let del = Request::delete("/v1/routes/payments")
        .header("authorization", format!("Bearer {}", keys.admin))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, del).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn keys_can_be_listed_created_rotated_and_revoked_by_an_admin_only() {
    let (svc, keys, app, _) = setup().await;
    // Viewers and responders may not see or make keys.
    for token in [&keys.viewer, &keys.responder] {
        let a = send(&app, get("/v1/keys", token)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let a = send(
            &app,
            json_request(
                Method::POST,
                "/v1/keys",
                Some(token),
                serde_json::json!({"name": "ci", "role": "admin"}).to_string(),
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
    }

    let made = send(
        &app,
        json_request(
            Method::POST,
            "/v1/keys",
            Some(&keys.admin),
            serde_json::json!({"name": "ci-bot", "role": "responder"}).to_string(),
        ),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let token = made.json["token"].as_str().unwrap().to_owned();
    let id = made.json["id"].as_str().unwrap().to_owned();
    assert!(made.json.get("token_sha256").is_none());
    assert_eq!(
        send(&app, get("/v1/routes", &token)).await.status,
        StatusCode::OK,
        "the new key works"
    );

    let listed = send(&app, get("/v1/keys", &keys.admin)).await;
    let text = listed.text.clone();
    assert!(text.contains(&id) && !text.contains(&token), "{text}");

    let rotated = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/keys/{id}/rotate"),
            Some(&keys.admin),
            serde_json::json!({}).to_string(),
        ),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_token = rotated.json["token"].as_str().unwrap().to_owned();
    let new_id = rotated.json["id"].as_str().unwrap().to_owned();
    assert_eq!(rotated.json["name"], "ci-bot");
    assert_eq!(
        send(&app, get("/v1/routes", &token)).await.status,
        StatusCode::UNAUTHORIZED,
        "the rotated-out token stops working"
    );
    assert_eq!(
        send(&app, get("/v1/routes", &new_token)).await.status,
        StatusCode::OK
    );

    let revoke = Request::builder()
        .method(Method::DELETE)
        .uri(format!("/v1/keys/{new_id}"))
        .header("authorization", format!("Bearer {}", keys.admin))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, revoke).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&app, get("/v1/routes", &new_token)).await.status,
        StatusCode::UNAUTHORIZED,
        "a revoked key is refused at once"
    );

    // Every key change is in the audit log.
    let audit = audit_events(&svc).await;
    let actions = audit_actions(&svc, "key.").await;
    assert_eq!(actions, ["key.create", "key.rotate", "key.revoke"]);
    assert!(
        !audit
            .iter()
            .any(|i| i.data.contains(&token) || i.data.contains(&new_token)),
        "no token in the audit log"
    );
}

#[tokio::test]
async fn a_changed_dev_token_revokes_the_dev_key_it_replaces() {
    let svc = firewatch_local::services_in_memory();
    let t = TenantId::default_tenant();
    let old = "fw_old_dev_token_0123456789";
    let new = "fw_new_dev_token_0123456789";
    let role = firewatch_types::Role::Admin;
    firewatch_domain::auth::replace_named_key(&svc, &t, "dev-admin", role, old)
        .await
        .unwrap();
    assert_eq!(
        firewatch_domain::auth::replace_named_key(&svc, &t, "dev-admin", role, old)
            .await
            .unwrap(),
        0,
        "the same token again revokes nothing"
    );
    assert_eq!(
        firewatch_domain::auth::replace_named_key(&svc, &t, "dev-admin", role, new)
            .await
            .unwrap(),
        1
    );
    assert!(firewatch_domain::auth::authenticate_token(&svc, old)
        .await
        .is_err());
    assert!(firewatch_domain::auth::authenticate_token(&svc, new)
        .await
        .is_ok());
}

#[tokio::test]
async fn a_tenants_secrets_are_write_only_admin_only_and_audited() {
    let (svc, keys) = services_with_keys().await;
    let app = firewatch_admin::router(svc.clone());
    const VALUE: &str = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    let put = |token: &str, name: &str, body: String| {
        json_request(
            Method::PUT,
            &format!("/v1/secrets/{name}"),
            Some(token),
            body,
        )
    };
    let body = serde_json::json!({"value": VALUE}).to_string();
    let a = send(&app, put(&keys.admin, "PAYMENTS_TOKEN", body.clone())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["name"], "PAYMENTS_TOKEN");
    assert!(!a.text.contains(VALUE), "the value is never returned");
    // Replaced: still one secret.
    let a = send(&app, put(&keys.admin, "PAYMENTS_TOKEN", body.clone())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let list = send(&app, get("/v1/secrets", &keys.admin)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
    assert!(!list.text.contains(VALUE));

    // Only admins, and only good names and values.
    for token in [&keys.viewer, &keys.responder] {
        let a = send(&app, get("/v1/secrets", token)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let a = send(&app, put(token, "X", body.clone())).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
    }
    let bad = send(&app, put(&keys.admin, "not-a-name", body.clone())).await;
    assert_eq!(bad.code(), "invalid_secret_name", "{}", bad.text);
    let empty = send(&app, put(&keys.admin, "X", r#"{"value": ""}"#.into())).await;
    assert_eq!(empty.code(), "invalid_secret_value", "{}", empty.text);

    let del = |name: &str| {
        json_request(
            Method::DELETE,
            &format!("/v1/secrets/{name}"),
            Some(&keys.admin),
            "",
        )
    };
    assert_eq!(
        send(&app, del("PAYMENTS_TOKEN")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, del("PAYMENTS_TOKEN")).await.status,
        StatusCode::NOT_FOUND
    );

    // Audited by name; the value is nowhere in the audit log.
    assert_eq!(
        audit_actions(&svc, "secret.").await,
        ["secret.create", "secret.update", "secret.delete"]
    );
    assert!(!audit_events(&svc)
        .await
        .iter()
        .any(|i| i.data.contains(VALUE)));
}

/// A vault in memory: what the Secrets Manager adapter does, by path.
#[derive(Default)]
struct MemoryVault(std::sync::Mutex<std::collections::BTreeMap<String, String>>);

#[async_trait::async_trait]
impl firewatch_domain::ports::TenantVault for MemoryVault {
    async fn put(&self, t: &TenantId, name: &str, value: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .insert(format!("{t}/{name}"), value.into());
        Ok(())
    }
    async fn get(&self, t: &TenantId, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().unwrap().get(&format!("{t}/{name}")).cloned())
    }
    async fn delete(&self, t: &TenantId, name: &str) -> Result<(), String> {
        self.0.lock().unwrap().remove(&format!("{t}/{name}"));
        Ok(())
    }
}

#[tokio::test]
async fn with_a_vault_a_secrets_value_is_kept_there_and_never_in_the_table() {
    let (svc, keys) = services_with_keys().await;
    let vault = std::sync::Arc::new(MemoryVault::default());
    let svc = svc.with_vault(Some(vault.clone()));
    let app = firewatch_admin::router(svc.clone());
    const VALUE: &str = "r0uting-key-payments-0001";
    let a = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/secrets/PD_PAYMENTS",
            Some(&keys.admin),
            serde_json::json!({"value": VALUE}).to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let t = TenantId::default_tenant();
    assert_eq!(
        vault
            .0
            .lock()
            .unwrap()
            .get("default/PD_PAYMENTS")
            .map(String::as_str),
        Some(VALUE)
    );
    let item = svc
        .store
        .get(&firewatch_domain::keys::secrets_pk(&t), "PD_PAYMENTS")
        .await
        .unwrap()
        .expect("the name is in the table");
    assert!(!item.data.contains(VALUE), "{}", item.data);
    let listed = send(&app, get("/v1/secrets", &keys.admin)).await;
    assert_eq!(listed.json["items"][0]["name"], "PD_PAYMENTS");
    // What a definition of the tenant reads, and no one else's.
    let owner = firewatch_domain::secrets::Owner::Tenant(t.clone());
    let got = firewatch_domain::secrets::resolve(&svc, &owner, &["PD_PAYMENTS".into()])
        .await
        .unwrap();
    assert_eq!(got["PD_PAYMENTS"], VALUE);
    let other = firewatch_domain::secrets::Owner::Tenant(TenantId::parse("beta").unwrap());
    assert!(
        firewatch_domain::secrets::resolve(&svc, &other, &["PD_PAYMENTS".into()])
            .await
            .is_err()
    );
    let d = send(
        &app,
        json_request(
            Method::DELETE,
            "/v1/secrets/PD_PAYMENTS",
            Some(&keys.admin),
            "",
        ),
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert!(vault.0.lock().unwrap().is_empty(), "the value went with it");
}

/// Values set before a vault was configured are read where they are, then
/// moved into the vault by an admin (`POST /v1/secrets/move-to-vault`),
/// audited by name; a second move moves nothing.
#[tokio::test]
async fn secrets_kept_in_the_table_move_into_a_vault_configured_later() {
    let (svc, keys) = services_with_keys().await;
    let app = firewatch_admin::router(svc.clone());
    const VALUE: &str = "r0uting-key-before-the-vault";
    let put = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/secrets/PD_OLD",
            Some(&keys.admin),
            serde_json::json!({"value": VALUE}).to_string(),
        ),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let move_it =
        |token: &str| json_request(Method::POST, "/v1/secrets/move-to-vault", Some(token), "");
    // Without a vault there is nowhere to move it.
    let none = send(&app, move_it(&keys.admin)).await;
    assert_eq!(none.code(), "no_vault", "{}", none.text);

    let vault = std::sync::Arc::new(MemoryVault::default());
    let svc = svc.with_vault(Some(vault.clone()));
    let app = firewatch_admin::router(svc.clone());
    let t = TenantId::default_tenant();
    let owner = firewatch_domain::secrets::Owner::Tenant(t.clone());
    let names = ["PD_OLD".to_owned()];
    let read = || firewatch_domain::secrets::resolve(&svc, &owner, &names);
    assert_eq!(
        read().await.unwrap()["PD_OLD"],
        VALUE,
        "read from the table meanwhile"
    );

    assert_eq!(
        send(&app, move_it(&keys.responder)).await.status,
        StatusCode::FORBIDDEN
    );
    let moved = send(&app, move_it(&keys.admin)).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    assert_eq!(moved.json["moved"], serde_json::json!(["PD_OLD"]));
    assert_eq!(moved.json["changed"], serde_json::json!([]));
    assert!(!moved.text.contains(VALUE));
    assert_eq!(
        vault
            .0
            .lock()
            .unwrap()
            .get("default/PD_OLD")
            .map(String::as_str),
        Some(VALUE)
    );
    let item = svc
        .store
        .get(&firewatch_domain::keys::secrets_pk(&t), "PD_OLD")
        .await
        .unwrap()
        .unwrap();
    assert!(!item.data.contains(VALUE), "{}", item.data);
    assert_eq!(read().await.unwrap()["PD_OLD"], VALUE, "now from the vault");
    let again = send(&app, move_it(&keys.admin)).await;
    assert_eq!(again.json["moved"], serde_json::json!([]));
    assert_eq!(
        audit_actions(&svc, "secret.").await,
        ["secret.create", "secret.move"]
    );
    assert!(!audit_events(&svc)
        .await
        .iter()
        .any(|i| i.data.contains(VALUE)));
}
