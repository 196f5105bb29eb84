//! An inbound chat request handled once, however often and however
//! concurrently the platform delivers it.

use crate::keys::INBOUND_PK;
use crate::{DomainError, Services};
use serde::{Deserialize, Serialize};

/// How long an inbound chat request's id is remembered.
pub const INBOUND_MEMORY_DAYS: i64 = 7;

/// How long a delivery of an inbound request may hold it before a later
/// delivery takes it over (the first one stopped).
pub const INBOUND_LEASE_SECS: i64 = 60;

/// An inbound request's record: when a delivery took it, and whether its
/// action is done.
#[derive(Serialize, Deserialize)]
struct InboundRecord {
    at: chrono::DateTime<chrono::Utc>,
    done: bool,
}

/// Handles a platform's request `id` (Telegram update id, Discord
/// interaction id, Slack trigger id) once, however often and however
/// concurrently it is delivered: `handle` runs only for the delivery that
/// takes the request, which is remembered as done when `handle` succeeds.
/// `None` when it was handled already, or another delivery is handling it
/// now. A failure (`Err`, a passing one the platform's redelivery should
/// retry) lets the request go again; a delivery that stopped holds it for
/// [`INBOUND_LEASE_SECS`] at most. Without an id, `handle` just runs.
pub async fn once<T, E: From<DomainError>>(
    svc: &Services,
    platform: &str,
    id: Option<&str>,
    handle: impl std::future::Future<Output = Result<T, E>>,
) -> Result<Option<T>, E> {
    let Some(id) = id else {
        return handle.await.map(Some);
    };
    let sk = format!("{platform}:{id}");
    let Some(version) = take_inbound(svc, &sk).await? else {
        return Ok(None);
    };
    let result = handle.await;
    let record = |done| -> Result<crate::ports::Item, DomainError> {
        let now = svc.clock.now();
        let mut item = crate::keys::item(
            INBOUND_PK.into(),
            sk.clone(),
            version + 1,
            &InboundRecord { at: now, done },
        )?;
        item.expires_at = Some(now.timestamp() + INBOUND_MEMORY_DAYS * 86_400);
        Ok(item)
    };
    match &result {
        Ok(_) => match crate::work::put(
            svc,
            record(true)?,
            crate::ports::Condition::Version(version),
        )
        .await
        {
            Ok(()) => {}
            // Taken over after the lease ran out: the later delivery's
            // record stands.
            Err(e) if e.is_lost_race() => {}
            Err(e) => return Err(DomainError::from(e).into()),
        },
        Err(_) => {
            if let Err(e) = crate::work::delete(
                svc,
                INBOUND_PK,
                &sk,
                crate::ports::Condition::Version(version),
            )
            .await
            {
                tracing::warn!(error = %e, "an inbound request was not let go; its lease runs out");
            }
        }
    }
    result.map(Some)
}

/// Takes the inbound request `sk` for this delivery: the version it holds,
/// or `None` when it is done or held by a live delivery.
async fn take_inbound(svc: &Services, sk: &str) -> Result<Option<u64>, DomainError> {
    let now = svc.clock.now();
    let mut item = crate::keys::item(
        INBOUND_PK.into(),
        sk.to_owned(),
        1,
        &InboundRecord {
            at: now,
            done: false,
        },
    )?;
    item.expires_at = Some(now.timestamp() + INBOUND_MEMORY_DAYS * 86_400);
    match crate::work::put(svc, item.clone(), crate::ports::Condition::Absent).await {
        Ok(()) => return Ok(Some(1)),
        Err(e) if e.is_lost_race() => {}
        Err(e) => return Err(e.into()),
    }
    let Some(held) = svc.store.get(INBOUND_PK, sk).await? else {
        // Let go between the two calls: another delivery is at it.
        return Ok(None);
    };
    // Records from before leases were a bare time: done.
    let Ok(record) = crate::keys::decode::<InboundRecord>(&held) else {
        return Ok(None);
    };
    if record.done || now - record.at < chrono::Duration::seconds(INBOUND_LEASE_SECS) {
        return Ok(None);
    }
    // The delivery that held it stopped: take it over.
    item.version = held.version + 1;
    match crate::work::put(svc, item, crate::ports::Condition::Version(held.version)).await {
        Ok(()) => Ok(Some(held.version + 1)),
        Err(e) if e.is_lost_race() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
