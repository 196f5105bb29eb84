//! The one retry helper for optimistic writes: read, decide, write on a
//! condition, and on a lost race read again.
//!
//! An attempt returns [`Retry::Lost`] when another writer changed what it
//! read (the only lost-race signal; [`Retry::from_commit`] makes it from a
//! unit of work's [`CommitError`], the one error for a lost race).
//! [`until_won!`] owns the attempt limit, the jittered back-off between
//! attempts and the error when every attempt lost. Any other error ends the
//! loop at once, unchanged.
//!
//! ```ignore
//! let busy = || DomainError::Unavailable("the heartbeat kept changing; try again".into());
//! retry::until_won!(retry::ATTEMPTS, busy, async || -> Result<_, Retry> {
//!     let (mut hb, version) = load(svc, tenant, id).await?;
//!     let mut work = Work::new(svc);
//!     save(&mut work, &mut hb, version)?;
//!     work.commit().await.map_err(Retry::from_commit)?;
//!     Ok(hb)
//! })
//! .await
//! ```

use crate::error::DomainError;
use crate::ports::StoreError;
use crate::work::CommitError;

/// Attempts for an ordinary record: enough for a handful of people and jobs
/// writing one item at once.
pub const ATTEMPTS: usize = 8;
/// Attempts for a record many writers share at once (a heartbeat pinged in a
/// burst, a pipeline's totals, a smoke check's schedule).
pub const BUSY: usize = 40;
/// Attempts for the hottest items: an incident under a storm of alerts, the
/// tenant's storm window, rate counts.
pub const HOT: usize = 64;

/// Why an attempt did not finish.
#[derive(Debug)]
pub enum Retry {
    /// Another writer changed what this attempt read: read again.
    Lost,
    /// Anything else: stop and return it.
    Fail(DomainError),
}

impl Retry {
    /// A unit of work's commit error as an attempt's outcome.
    pub fn from_commit(e: CommitError) -> Self {
        if e.is_lost_race() {
            Self::Lost
        } else {
            Self::Fail(e.into())
        }
    }
}

impl From<DomainError> for Retry {
    fn from(e: DomainError) -> Self {
        Self::Fail(e)
    }
}

/// A store error met with `?` fails the attempt as it would fail the
/// operation; only [`Retry::from_commit`] turns a lost race into a retry.
impl From<StoreError> for Retry {
    fn from(e: StoreError) -> Self {
        Self::Fail(e.into())
    }
}

/// A commit error met with `?` fails the attempt; only
/// [`Retry::from_commit`] turns a lost race into a retry.
impl From<CommitError> for Retry {
    fn from(e: CommitError) -> Self {
        Self::Fail(e.into())
    }
}

impl From<serde_json::Error> for Retry {
    fn from(e: serde_json::Error) -> Self {
        Self::Fail(e.into())
    }
}

/// Runs an attempt until it finishes, at most `attempts` times, pausing a
/// short jittered while before each retry so a burst of writers on one item
/// spreads out. When every attempt lost, the answer is `exhausted()` (most
/// callers say [`DomainError::Unavailable`] in their own words).
///
/// The attempt is written like an async closure returning
/// `Result<T, Retry>`; `return` inside it ends the attempt. It is a macro,
/// not a function taking a closure, so an attempt may borrow and change the
/// caller's variables (a fresh read kept for the next attempt) and the
/// caller's future stays `Send`.
macro_rules! until_won {
    ($attempts:expr, $exhausted:expr, async || -> $ret:ty $body:block $(,)?) => {
        async {
            let mut tries = $crate::retry::Tries::new($attempts);
            loop {
                if !tries.next().await {
                    break Err(($exhausted)());
                }
                let outcome: $ret = async $body.await;
                match outcome {
                    Ok(v) => break Ok(v),
                    Err($crate::retry::Retry::Lost) => continue,
                    Err($crate::retry::Retry::Fail(e)) => break Err(e),
                }
            }
        }
    };
}
pub(crate) use until_won;

/// The attempts of one retried write: the limit and the back-off. Used by
/// [`until_won!`], and directly by the few loops whose exhaustion is not an
/// error (`while tries.next().await { … }`).
pub struct Tries {
    done: usize,
    limit: usize,
}

impl Tries {
    pub fn new(limit: usize) -> Self {
        Self { done: 0, limit }
    }

    /// Whether another attempt may start, after its back-off.
    pub async fn next(&mut self) -> bool {
        if self.done >= self.limit {
            return false;
        }
        if self.done > 0 {
            back_off(self.done).await;
        }
        self.done += 1;
        true
    }

    /// Whether the attempt under way follows a lost one.
    pub fn is_retry(&self) -> bool {
        self.done > 1
    }
}

/// A short jittered pause before trying a lost race again (`attempt` from
/// 1), so a burst of writers on one item spreads out instead of colliding
/// again at once.
async fn back_off(attempt: usize) {
    let ms = 1 + rand::random::<u64>() % (2 * attempt.min(20) as u64 + 1);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn busy(m: &str) -> DomainError {
        DomainError::Unavailable(m.into())
    }

    #[tokio::test]
    async fn a_lost_race_is_tried_again_until_it_is_won() {
        let tries = AtomicUsize::new(0);
        let out = until_won!(ATTEMPTS, || busy("busy"), async || -> Result<_, Retry> {
            if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(Retry::from_commit(CommitError::Store(
                    StoreError::ConditionFailed { index: None },
                )));
            }
            Ok("written")
        },)
        .await
        .unwrap();
        assert_eq!(out, "written");
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn every_attempt_lost_is_unavailable_with_the_callers_words() {
        let tries = AtomicUsize::new(0);
        let e = until_won!(
            3,
            || busy("the item kept changing; try again"),
            async || -> Result<_, Retry> {
                tries.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Retry::Lost)
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, DomainError::Unavailable(m) if m == "the item kept changing; try again"),
            "{e:?}"
        );
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn any_other_error_stops_at_once_unchanged() {
        let tries = AtomicUsize::new(0);
        let e = until_won!(ATTEMPTS, || busy("busy"), async || -> Result<_, Retry> {
            tries.fetch_add(1, Ordering::SeqCst);
            // A store error met with `?` is not a lost race.
            Err::<(), StoreError>(StoreError::ConditionFailed { index: None })?;
            Ok(())
        },)
        .await
        .unwrap_err();
        assert!(matches!(e, DomainError::Conflict { .. }), "{e:?}");
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
