//! The domain's one error type. Adapters convert their SDK errors into
//! [`StoreError`](crate::ports::StoreError) before anything reaches here.

use crate::ports::StoreError;

/// Everything that can go wrong in a domain operation, classified so the web
/// layer can pick a status code without knowing the details.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request is malformed or does not fit the provider's documented shape.
    #[error("{message}")]
    BadInput { code: &'static str, message: String },
    /// No valid credential was presented.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid principal lacks the role for this action.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state (illegal transition, stale
    /// version, another incident holds the group key).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A well-formed request that cannot be taken as sent (an
    /// `Idempotency-Key` reused for a different request): a `422`.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// Too many of one action in its window (`429` with `Retry-After`).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// A dependency is down or throttling; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A dependency failed in a way the caller asked to be told about
    /// (`assisted_mode_failed`): a 503 with this code.
    #[error("{message}")]
    DependencyFailed { code: &'static str, message: String },
    /// A bug or corrupt data: reported as an opaque 500.
    #[error("{0}")]
    Internal(String),
}

impl DomainError {
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed { .. } => {
                Self::conflict("conflict", "the item was changed by someone else; retry")
            }
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Corrupt(m) | StoreError::Invalid(m) => Self::Internal(m),
        }
    }
}

impl From<serde_json::Error> for DomainError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("stored item does not decode: {e}"))
    }
}
