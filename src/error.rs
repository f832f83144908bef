//! The one error type of the domain, and the one place it becomes a gRPC
//! status (and, for the plain HTTP routes, an HTTP status).
//!
//! Policy: variants name what went wrong in the domain (a busy chat, a key
//! that cannot be used, a field that is invalid), and their `#[error]` text is
//! the sentence the client reads, so it says what to do. The gRPC code is
//! chosen here, once per variant, in one exhaustive match: a new variant does
//! not compile until it has one. Infrastructure details (SQL errors, pool
//! errors) are logged here, once, and never sent; no error message ever
//! contains message text or a secret.

use std::time::Duration;

use axum::http::StatusCode;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    cards::CardError,
    lorebook::LorebookError,
    secrets::SecretError,
    settings::{KeyOwner, KeyProblem},
    store::StoreError,
    stream::registry::RegistryError,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field that is missing, malformed or out of range.
    #[error("{field} {why}")]
    Invalid { field: String, why: String },
    #[error("{what} {id} was not found")]
    NotFound { what: &'static str, id: String },
    #[error("a user named {name:?} already exists")]
    NameTaken { name: String },
    #[error("{what} {id} is used by chat sessions; delete those chat sessions first")]
    InUse { what: &'static str, id: String },

    /// A second reply in a chat whose reply is running.
    #[error(
        "a reply is already being generated in this chat (stream_id {stream_id}); wait for it to finish or cancel it"
    )]
    ChatBusy { stream_id: String },
    /// A change that must wait until the chat's reply has ended.
    #[error("a reply is being generated in this chat (stream_id {stream_id}); cancel it before {action}")]
    ReplyRunning { stream_id: String, action: &'static str },
    /// Another change to the chat's history holds its lock for a moment.
    #[error("another change to this chat is being saved; try again")]
    ChatChanging,
    /// The chat's history does not allow what was asked (nothing to answer,
    /// nothing to continue).
    #[error("{0}")]
    History(&'static str),
    /// A character card that cannot be read or written.
    #[error("{0}")]
    Card(#[from] CardError),
    /// A lorebook file that cannot be read.
    #[error("{0}")]
    Lorebook(#[from] LorebookError),
    /// Even the parts of a prompt that must go in exceed the model's context.
    #[error(
        "the prompt needs {needs} tokens without any history, but the model allows {allows} \
         ({context} tokens of context, {reply} kept for the reply); shorten the message, the character or \
         the author's note, or lower max_tokens"
    )]
    PromptTooLong { needs: usize, allows: usize, context: u32, reply: u32 },
    #[error("the provider's model list is not available: {0}")]
    CatalogUnavailable(String),
    /// A read-modify-write that lost to other writes of the same row every
    /// time it tried.
    #[error("{what} {id} was changed by other requests at the same time; try again")]
    Contended { what: &'static str, id: String },
    /// A stored document that no longer parses (logged where it is found).
    #[error("the stored {what} {id} cannot be read")]
    Corrupt { what: &'static str, id: String },
    #[error("this chat already has {max} watchers, the most allowed; close another stream first")]
    TooManyWatchers { max: usize },
    #[error("stream {stream_id} is not resumable: this server does not know it; reload the chat with ListMessages")]
    StreamNotResumable { stream_id: String },

    #[error("the replicas' shared registry (Redis) cannot be reached, so no reply can start now; try again shortly")]
    SharedRegistryUnavailable,
    #[error(
        "the replicas' shared registry (Redis) was lost while following stream {stream_id}; resume it from offset {offset}"
    )]
    SharedRegistryLost { stream_id: String, offset: usize },
    #[error("no provider API key is set: call SettingsService/SetProviderApiKey first")]
    NoApiKey,
    /// A stored key that may not be used for the request's provider.
    #[error("{}", problem.explain(*owner))]
    KeyUnusable { problem: KeyProblem, owner: KeyOwner },
    #[error("setting {name} cannot be re-encrypted: {source}")]
    KeyNotReencrypted { name: String, source: SecretError },
    #[error("the key could not be encrypted: {0}")]
    Encryption(SecretError),

    #[error("{why}")]
    Unauthenticated { why: &'static str },
    #[error("only admins may {action}")]
    AdminOnly { action: &'static str },

    #[error("the server is shutting down; send the message again shortly")]
    ShuttingDown,
    #[error("the reply could not be started; send the message again")]
    NotStarted,
    #[error("the system random source failed: {0}")]
    Random(String),
    /// Over a rate or concurrency limit; the client may retry after the delay.
    #[error("{message}")]
    RateLimited { message: String, retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `field` is invalid: `why` completes the sentence ("is required").
    pub fn invalid(field: impl Into<String>, why: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), why: why.into() }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { what, id: id.into() }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } | Self::Lorebook(_) => Code::InvalidArgument,
            Self::Card(CardError::EncodePng(_)) | Self::Corrupt { .. } => Code::Internal,
            Self::Card(_) => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::NameTaken { .. } => Code::AlreadyExists,
            Self::InUse { .. }
            | Self::ReplyRunning { .. }
            | Self::History(_)
            | Self::PromptTooLong { .. }
            | Self::StreamNotResumable { .. }
            | Self::NoApiKey
            | Self::KeyUnusable { .. }
            | Self::KeyNotReencrypted { .. } => Code::FailedPrecondition,
            Self::ChatBusy { .. } | Self::ChatChanging | Self::Contended { .. } => Code::Aborted,
            Self::TooManyWatchers { .. } | Self::RateLimited { .. } => Code::ResourceExhausted,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::AdminOnly { .. } => Code::PermissionDenied,
            Self::CatalogUnavailable(_) | Self::SharedRegistryUnavailable | Self::SharedRegistryLost { .. } => {
                Code::Unavailable
            }
            Self::ShuttingDown | Self::NotStarted | Self::Random(_) | Self::Encryption(_) => Code::Unavailable,
            Self::Store(StoreError::Unavailable(_)) => Code::Unavailable,
            Self::Store(StoreError::Fenced) => Code::Aborted,
            Self::Store(_) => Code::Internal,
        }
    }
}

impl From<RegistryError> for Error {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::Busy(stream_id) => Self::ChatBusy { stream_id },
            RegistryError::Changing => Self::ChatChanging,
            RegistryError::TooManyWatchers(max) => Self::TooManyWatchers { max },
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = err.code();
        match err {
            // RetryInfo (google.rpc.RetryInfo in grpc-status-details-bin)
            // tells clients when to try again.
            Error::RateLimited { message, retry_after } => {
                Status::with_error_details(code, message, ErrorDetails::with_retry_info(Some(retry_after)))
            }
            Error::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "database unavailable");
                Status::new(code, "the database is unavailable right now; try again shortly")
            }
            // A start slower than the chat's lease (replicas): another
            // replica took the chat over and nothing was stored.
            Error::Store(StoreError::Fenced) => Status::new(
                code,
                "another server took this chat over while the reply was starting; nothing was stored, send the message again",
            ),
            Error::Store(store_error) => {
                tracing::error!(error = %store_error, "database error");
                Status::new(code, "the database could not complete the request; the error was logged")
            }
            other => Status::new(code, other.to_string()),
        }
    }
}

/// The HTTP status the plain HTTP routes (the SSE endpoint, the auth
/// middleware in front of it) answer for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
