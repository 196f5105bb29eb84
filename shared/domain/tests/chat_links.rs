//! Tenant-owned chat places: a channel is a tenant's destination, and a
//! workspace's users are the tenant's to map, only after someone in that
//! channel redeemed a code of the tenant; ownership is claimed with
//! conditional writes, so racing tenants get one winner.

mod common;

use common::*;
use firewatch_domain::chat::identities::{self, ChatUser};
use firewatch_domain::routing::links::{self, Place};
use firewatch_domain::routing::routes::{self, Route};
use firewatch_domain::DomainError;
use firewatch_types::{Destination, Principal, Role, TenantId};

fn admin(tenant: &str) -> Principal {
    Principal {
        tenant: TenantId::parse(tenant).unwrap(),
        name: format!("{tenant}-admin"),
        role: Role::Admin,
    }
}

fn in_channel<'a>(channel: &'a str, user: &'a str) -> Place<'a> {
    Place {
        platform: "slack",
        workspace: "T0ACME",
        channel,
        user,
    }
}

fn route_to(channel: &str) -> Route {
    Route {
        id: String::new(),
        when: Default::default(),
        destinations: vec![Destination::Slack {
            channel: channel.into(),
        }],
        ticket: false,
        escalation: None,
        flapping: None,
        version: 0,
    }
}

fn user(id: &str) -> ChatUser<'_> {
    ChatUser {
        platform: "slack",
        workspace: "T0ACME",
        user_id: id,
    }
}

#[tokio::test]
async fn a_channel_is_a_tenants_destination_only_after_someone_in_it_redeems_its_code() {
    let w = world();
    let (a, b) = (admin("acme"), admin("rival"));
    let refused = routes::put(&w.svc, &a, "r1", route_to("C0OPS")).await;
    assert!(
        matches!(refused, Err(DomainError::Forbidden(_))),
        "{refused:?}"
    );

    let code = links::create_code(&w.svc, &a, "slack").await.unwrap();
    assert!(code.instructions.starts_with("/fw link fwl-"));
    let answer = links::redeem(&w.svc, &in_channel("C0OPS", "U1"), &code.code)
        .await
        .unwrap();
    assert!(answer.starts_with("Linked"), "{answer}");
    routes::put(&w.svc, &a, "r1", route_to("C0OPS"))
        .await
        .unwrap();

    // The other tenant can neither route there nor take the channel over.
    let theirs = routes::put(&w.svc, &b, "steal", route_to("C0OPS")).await;
    assert!(matches!(theirs, Err(DomainError::Forbidden(_))));
    let their_code = links::create_code(&w.svc, &b, "slack").await.unwrap();
    let answer = links::redeem(&w.svc, &in_channel("C0OPS", "U9"), &their_code.code)
        .await
        .unwrap();
    assert!(answer.contains("another firewatch tenant"), "{answer}");
    assert!(matches!(
        routes::put(&w.svc, &b, "steal", route_to("C0OPS")).await,
        Err(DomainError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_spent_expired_or_wrong_platform_code_links_nothing() {
    let w = world();
    let a = admin("acme");
    let code = links::create_code(&w.svc, &a, "slack").await.unwrap();
    links::redeem(&w.svc, &in_channel("C0ONE", "U1"), &code.code)
        .await
        .unwrap();
    let again = links::redeem(&w.svc, &in_channel("C0TWO", "U1"), &code.code)
        .await
        .unwrap();
    assert!(again.contains("unknown, spent or expired"), "{again}");
    assert!(routes::put(&w.svc, &a, "two", route_to("C0TWO"))
        .await
        .is_err());

    let late = links::create_code(&w.svc, &a, "slack").await.unwrap();
    w.clock
        .advance(chrono::Duration::minutes(links::CODE_TTL_MINUTES + 1));
    let answer = links::redeem(&w.svc, &in_channel("C0TWO", "U1"), &late.code)
        .await
        .unwrap();
    assert!(answer.contains("expired"));

    let discord = links::create_code(&w.svc, &a, "discord").await.unwrap();
    let answer = links::redeem(&w.svc, &in_channel("C0TWO", "U1"), &discord.code)
        .await
        .unwrap();
    assert!(
        answer.contains("unknown"),
        "a Discord code does not link a Slack channel"
    );
    assert!(routes::put(&w.svc, &a, "two", route_to("C0TWO"))
        .await
        .is_err());
}

#[tokio::test]
async fn users_of_a_workspace_another_tenant_linked_cannot_be_mapped() {
    let w = world();
    let (a, b) = (admin("acme"), admin("rival"));
    let code = links::create_code(&w.svc, &a, "slack").await.unwrap();
    links::redeem(&w.svc, &in_channel("C0OPS", "U1"), &code.code)
        .await
        .unwrap();
    identities::register(&w.svc, &a, user("U1"), Role::Responder, None)
        .await
        .unwrap();
    let stolen = identities::register(&w.svc, &b, user("U1"), Role::Admin, None).await;
    assert!(
        matches!(stolen, Err(DomainError::Forbidden(_))),
        "{stolen:?}"
    );
    let p = identities::principal(&w.svc, user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.tenant, p.role), (a.tenant.clone(), Role::Responder));
    // The same user id in another workspace is another person.
    let elsewhere = ChatUser {
        workspace: "T0OTHER",
        ..user("U1")
    };
    assert_eq!(
        identities::principal(&w.svc, elsewhere).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_claims_across_two_tenants_give_one_winner() {
    let w = world();
    let (a, b) = (admin("acme"), admin("rival"));
    // 25 codes each, all redeemed at once in one channel.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let admin = if i % 2 == 0 { a.clone() } else { b.clone() };
        let svc = w.svc.clone();
        tasks.push(tokio::spawn(async move {
            let code = links::create_code(&svc, &admin, "slack").await.unwrap();
            links::redeem(&svc, &in_channel("C0CONTESTED", "U1"), &code.code)
                .await
                .unwrap()
        }));
    }
    let mut linked = 0;
    for t in tasks {
        linked += usize::from(t.await.unwrap().starts_with("Linked"));
    }
    assert!(linked >= 1);
    let a_owns = routes::put(&w.svc, &a, "x", route_to("C0CONTESTED"))
        .await
        .is_ok();
    let b_owns = routes::put(&w.svc, &b, "x", route_to("C0CONTESTED"))
        .await
        .is_ok();
    assert!(a_owns != b_owns, "exactly one tenant owns the channel");
    let (winner, loser) = if a_owns { (a, b) } else { (b, a) };

    // 50 identity claims for one user from both tenants: only the owner's land.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let admin = if i % 2 == 0 {
            winner.clone()
        } else {
            loser.clone()
        };
        let svc = w.svc.clone();
        tasks.push(tokio::spawn(async move {
            identities::register(&svc, &admin, user("U7"), Role::Responder, None)
                .await
                .map(|id| id.tenant)
        }));
    }
    for t in tasks {
        if let Ok(tenant) = t.await.unwrap() {
            assert_eq!(tenant, winner.tenant);
        }
    }
    let p = identities::principal(&w.svc, user("U7"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.tenant, winner.tenant);
    assert_eq!(identities::list(&w.svc, &winner).await.unwrap().len(), 1);
    assert!(identities::list(&w.svc, &loser).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_inbound_request_runs_once_lets_go_on_failure_and_is_taken_over_after_a_stop() {
    use firewatch_domain::chat::{once, INBOUND_LEASE_SECS};
    use std::sync::atomic::{AtomicU32, Ordering};
    let w = world();
    let runs = AtomicU32::new(0);
    let act = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<_, DomainError>("done")
    };
    assert_eq!(
        once(&w.svc, "slack", Some("t1"), act()).await.unwrap(),
        Some("done")
    );
    assert_eq!(
        once(&w.svc, "slack", Some("t1"), act()).await.unwrap(),
        None
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // A passing failure lets the request go: the redelivery acts.
    let failed = once(&w.svc, "slack", Some("t2"), async {
        Err::<(), _>(DomainError::Unavailable("store down".into()))
    })
    .await;
    assert!(failed.is_err());
    assert_eq!(
        once(&w.svc, "slack", Some("t2"), act()).await.unwrap(),
        Some("done")
    );

    // A delivery that stopped mid-way holds the request for its lease only.
    let item = firewatch_domain::keys::item(
        "_#INBOUND".into(),
        "slack:t3".into(),
        1,
        &serde_json::json!({"at": firewatch_domain::ports::Clock::now(w.clock.as_ref()), "done": false}),
    )
    .unwrap();
    w.svc
        .store
        .put(item, firewatch_domain::ports::Condition::Always)
        .await
        .unwrap();
    assert_eq!(
        once(&w.svc, "slack", Some("t3"), act()).await.unwrap(),
        None,
        "held"
    );
    w.clock
        .advance(chrono::Duration::seconds(INBOUND_LEASE_SECS + 1));
    assert_eq!(
        once(&w.svc, "slack", Some("t3"), act()).await.unwrap(),
        Some("done"),
        "taken over"
    );
    assert_eq!(
        once(&w.svc, "slack", Some("t3"), act()).await.unwrap(),
        None
    );
    // Without an id there is nothing to remember.
    assert_eq!(
        once(&w.svc, "slack", None, act()).await.unwrap(),
        Some("done")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}
