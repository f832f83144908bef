//! The one error type of the domain, and the one place it becomes a gRPC
//! status.
//!
//! Policy: a client gets the right code and a sentence it can act on.
//! Infrastructure details (SQL errors, pool errors) are logged here, once, and
//! never sent; no error message ever contains message text or a secret.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{what} {id} was not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// Over a rate or concurrency limit; the client may retry after the delay.
    #[error("{message}")]
    RateLimited { message: String, retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { what, id: id.into() }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::NotFound { .. } => Status::not_found(err.to_string()),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::Aborted(message) => Status::aborted(message),
            Error::ResourceExhausted(message) => Status::resource_exhausted(message),
            Error::Unavailable(message) => Status::unavailable(message),
            Error::Unauthenticated(message) => Status::unauthenticated(message),
            Error::PermissionDenied(message) => Status::permission_denied(message),
            Error::AlreadyExists(message) => Status::already_exists(message),
            // RetryInfo (google.rpc.RetryInfo in grpc-status-details-bin)
            // tells clients when to try again.
            Error::RateLimited { message, retry_after } => Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            Error::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "database unavailable");
                Status::unavailable("the database is unavailable right now; try again shortly")
            }
            Error::Store(store_error) => {
                tracing::error!(error = %store_error, "database error");
                Status::internal("the database could not complete the request; the error was logged")
            }
        }
    }
}
