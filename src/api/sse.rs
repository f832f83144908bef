//! GET /v1/chats/{id}/events: the events of SubscribeChatSession as
//! server-sent events, for browsers' EventSource.
//!
//! Every event that moves the reader's position carries
//! `id: <stream_id>:<offset>`, the byte offset *after* it, so the browser's
//! automatic reconnect (which sends the last id as `Last-Event-ID`) resumes
//! with nothing lost or repeated. A terminal event's id ends in `:end`, so a
//! reconnect after it waits for the next reply instead of replaying this one.
//! Heartbeats are SSE comments, which keep proxies from closing idle streams.

use std::convert::Infallible;

use axum::{
    Router,
    extract::{Extension, Path, State},
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, Sse},
    },
    routing::get,
};
use futures_util::stream;
use serde_json::json;

use super::validate;
use crate::{
    error::{Error, Result, http_status},
    state::AppState,
    stream::follower::{Event, Follower},
    stream::registry::Outcome,
    stream::watching::Resume,
    users::Caller,
};

pub const ROUTE: &str = "/v1/chats/{chat_id}/events";

/// Authenticated like the gRPC routes; EventSource cannot set headers, so
/// the token may also come as `?access_token=`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(ROUTE, get(events))
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::auth::http))
        .with_state(state)
}

async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match open(&state, &caller, &chat_id, &headers).await {
        Ok(follower) => {
            let events = stream::unfold(follower, |mut follower| async move {
                let event = match follower.next().await? {
                    Ok(event) => to_sse(event),
                    Err(err) => to_sse_error(&tonic::Status::from(err)),
                };
                Some((Ok::<_, Infallible>(event), follower))
            });
            Sse::new(events).into_response()
        }
        Err(err) => {
            let status = tonic::Status::from(err);
            (http_status(status.code()), status.message().to_owned()).into_response()
        }
    }
}

async fn open(state: &AppState, caller: &Caller, chat_id: &str, headers: &HeaderMap) -> Result<Follower> {
    let chat_id = validate::id("chat id", chat_id)?;
    let resume = headers
        .get("last-event-id")
        .map(|value| parse_last_event_id(value.to_str().unwrap_or_default()))
        .transpose()?;
    crate::stream::watching::subscribe(state, caller, &chat_id, resume).await
}

/// `<stream_id>:<offset>` or `<stream_id>:<offset>:end`.
fn parse_last_event_id(value: &str) -> Result<Resume> {
    let invalid = || Error::invalid(format!("Last-Event-ID {value:?}"), "is not an id this server sent");
    let mut parts = value.split(':');
    let (Some(stream_id), Some(offset)) = (parts.next(), parts.next()) else { return Err(invalid()) };
    let ended = match parts.next() {
        None => false,
        Some("end") => true,
        Some(_) => return Err(invalid()),
    };
    let stream_id = validate::id("Last-Event-ID stream id", stream_id)?;
    let offset = offset.parse().map_err(|_| invalid())?;
    Ok(Resume { stream_id, offset, ended })
}

/// The last event of a stream that cannot go on; the browser reconnects with
/// its Last-Event-ID and resumes. Not named "error": EventSource uses that
/// name for its own connection errors.
fn to_sse_error(status: &tonic::Status) -> SseEvent {
    SseEvent::default()
        .event("stream_error")
        .data(json!({"code": status.code() as i32, "message": status.message()}).to_string())
}

fn to_sse(event: Event) -> SseEvent {
    match event {
        Event::Started(generation) => {
            let info = &generation.info;
            SseEvent::default().event("started").id(format!("{}:0", info.stream_id)).data(
                json!({
                    "stream_id": info.stream_id,
                    "chat_session_id": info.chat_session_id,
                    "user_message_id": info.user_message_id,
                    "assistant_message_id": info.assistant_message_id,
                    "model": info.model,
                    "kind": info.kind.as_str(),
                    "alternative_index": info.alternative_index,
                    "alternative_count": info.alternative_count,
                    "continues_from": info.continues_from,
                })
                .to_string(),
            )
        }
        Event::Delta { generation, offset, text } => {
            let stream_id = &generation.info.stream_id;
            SseEvent::default()
                .event("delta")
                .id(format!("{stream_id}:{}", offset + text.len()))
                .data(json!({"stream_id": stream_id, "offset": offset, "text": text}).to_string())
        }
        Event::Heartbeat => SseEvent::default().comment("heartbeat"),
        // No id: a change moves no stream offset, so Last-Event-ID stays.
        Event::ChatChanged(change) => SseEvent::default().event("chat_changed").data(
            json!({
                "chat_session_id": change.chat_session_id,
                "kind": change.kind.as_str(),
                "message_ids": change.message_ids,
            })
            .to_string(),
        ),
        Event::Ended { generation, partial_length, outcome } => {
            let stream_id = &generation.info.stream_id;
            let (name, data) = match &*outcome {
                Outcome::Completed { reply, finish_reason, usage } => (
                    "completed",
                    json!({
                        "stream_id": stream_id,
                        "message_id": reply.message_id,
                        "content_length": partial_length,
                        "finish_reason": finish_reason,
                        "usage": {
                            "prompt_tokens": usage.prompt_tokens,
                            "completion_tokens": usage.completion_tokens,
                            "total_tokens": usage.total_tokens,
                            "cost": usage.cost,
                        },
                    }),
                ),
                Outcome::Failed { code, message } => (
                    "failed",
                    json!({"stream_id": stream_id, "code": code.as_str(), "message": message, "partial_length": partial_length}),
                ),
                Outcome::Cancelled { reason } => (
                    "cancelled",
                    json!({"stream_id": stream_id, "reason": reason.as_str(), "partial_length": partial_length}),
                ),
            };
            SseEvent::default().event(name).id(format!("{stream_id}:{partial_length}:end")).data(data.to_string())
        }
    }
}
