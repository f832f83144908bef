//! Who is calling, for every RPC: a middleware in front of the gRPC routes
//! that gives each call a request id and a tracing span, resolves its
//! `authorization` metadata to a [`Caller`] (or answers UNAUTHENTICATED),
//! and logs how the call ended. Handlers read the caller with [`caller`].
//!
//! Health checks and reflection stay open: load balancers and grpcurl call
//! them without tokens, and they reveal no data.

use std::time::Instant;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header::AUTHORIZATION},
    middleware::Next,
    response::Response,
};
use tonic::Status;
use tracing::Instrument;

use crate::{error::Error, state::AppState, users::Caller};

/// The response header (and accepted request header) carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Paths served without a token.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// The caller the middleware attached to the request.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated { why: "the call was not authenticated" }.into())
}

/// The caller, who must be an admin to `action` ("manage users", ...).
pub fn admin<T>(request: &tonic::Request<T>, action: &'static str) -> Result<Caller, Status> {
    let caller = caller(request)?;
    caller.require_admin(action)?;
    Ok(caller)
}

/// A request id: the client's `x-request-id` when it is a short printable
/// token (so logs on both sides match), else a new UUIDv7.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// The request's token as `authorization` metadata: the header, or for
/// EventSource, which cannot set headers, `access_token` in the query.
fn authorization(request: &Request) -> Result<Option<String>, Error> {
    match request.headers().get(AUTHORIZATION) {
        Some(value) => value
            .to_str()
            .map(|v| Some(v.to_owned()))
            .map_err(|_| Error::Unauthenticated { why: "the authorization metadata is not valid text" }),
        None => Ok(access_token(request.uri().query()).map(|token| format!("Bearer {token}"))),
    }
}

fn access_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("access_token="))
}

/// The query string as it may be logged: the token replaced.
fn redacted_query(query: Option<&str>) -> String {
    query
        .unwrap_or_default()
        .split('&')
        .map(|pair| if pair.starts_with("access_token=") { "access_token=[REDACTED]" } else { pair })
        .collect::<Vec<_>>()
        .join("&")
}

/// Resolves the request's caller and attaches it for the handlers (and to
/// the current span).
async fn identify(state: &AppState, request: &mut Request) -> Result<(), Error> {
    let authorization = authorization(request)?;
    let caller = state.auth.authenticate(authorization.as_deref()).await.inspect_err(|err| {
        if matches!(err, Error::Unauthenticated { .. }) {
            crate::observe::auth_failed();
        }
    })?;
    tracing::Span::current().record("user", caller.user_id.as_str());
    request.extensions_mut().insert(caller);
    Ok(())
}

/// The gRPC middleware (see the module doc).
pub async fn grpc(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if is_public(&path) {
        return next.run(request).await;
    }
    let request_id = request_id(request.headers());
    let span = tracing::info_span!(
        "rpc",
        otel.name = path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.grpc.status_code = tracing::field::Empty,
        method = %path,
        request_id = %request_id,
        user = tracing::field::Empty
    );
    crate::traces::continue_trace(&span, request.headers());
    async move {
        let started = Instant::now();
        let mut response = match identify(&state, &mut request).await {
            Ok(()) => next.run(request).await,
            Err(err) => Status::from(err).into_http(),
        };
        log_finished(&response, started);
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
    .instrument(span)
    .await
}

/// The same for plain HTTP routes (the SSE endpoint): a refusal is 401
/// (503 when the database cannot be asked) with the reason as text.
pub async fn http(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let request_id = request_id(request.headers());
    let span = tracing::info_span!(
        "http",
        path = %request.uri().path(),
        query = %redacted_query(request.uri().query()),
        request_id = %request_id,
        user = tracing::field::Empty
    );
    crate::traces::continue_trace(&span, request.headers());
    async move {
        match identify(&state, &mut request).await {
            Ok(()) => next.run(request).await,
            Err(err) => {
                let status = Status::from(err);
                tracing::info!(grpc_status = ?status.code(), "http request refused");
                (crate::error::http_status(status.code()), status.message().to_owned()).into_response()
            }
        }
    }
    .instrument(span)
    .await
}

/// Logs a call's end. A failed call carries its grpc-status in the headers
/// (trailers-only); a streaming call's status comes later in trailers, so
/// its line means "the stream opened".
fn log_finished(response: &Response, started: Instant) {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let code = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0");
    // INTERNAL, UNKNOWN, DATA_LOSS: our fault.
    let our_fault = matches!(code, "2" | "13" | "15");
    let span = tracing::Span::current();
    span.record("rpc.grpc.status_code", code.parse::<i64>().unwrap_or(2));
    if our_fault {
        span.record("otel.status_code", "error");
    }
    match code {
        "0" => tracing::debug!(elapsed_ms, "rpc answered"),
        _ if our_fault => tracing::warn!(elapsed_ms, grpc_status = code, "rpc failed"),
        _ => tracing::info!(elapsed_ms, grpc_status = code, "rpc refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_token_never_reaches_a_log_line() {
        let query = Some("a=1&access_token=secret-token-value&b=2");
        assert_eq!(redacted_query(query), "a=1&access_token=[REDACTED]&b=2");
        assert_eq!(access_token(query), Some("secret-token-value"));
        assert_eq!(redacted_query(None), "");
    }
}
