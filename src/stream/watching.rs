//! Watching chats: subscribing (and resuming), cancelling the running reply,
//! and reporting stream status.

use std::{sync::Arc, time::Duration};

use chrono::NaiveDateTime;

use crate::{
    chats,
    error::{Error, Result},
    state::AppState,
    store::models::MessageStatus,
    stream::backlog::{self, Backlog},
    stream::follower::{Follower, Start},
    stream::registry::{Generation, Origin, Outcome},
    users::Caller,
};

/// How long CancelGeneration waits for the partial reply to be stored before
/// answering (the write is retried for a few seconds at most).
const CANCEL_WAIT: Duration = Duration::from_secs(15);

/// How long a resume on a copy of another replica's reply waits for the
/// copy to reach the client's offset (it trails by milliseconds).
const MIRROR_CATCH_UP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub stream_id: String,
    pub offset: u64,
    /// The client already has the reply's end: follow only newer replies.
    pub ended: bool,
}

/// A long-lived watch of a chat, optionally resuming a reply at an offset.
pub async fn subscribe(state: &AppState, caller: &Caller, chat_id: &str, resume: Option<Resume>) -> Result<Follower> {
    chats::owned(state, caller, chat_id).await?;
    let start = match resume {
        None => Start::Live,
        Some(resume) => {
            let generation = resumable(state, chat_id, &resume.stream_id).await?;
            if generation.origin == Origin::Mirror {
                let wanted = usize::try_from(resume.offset).unwrap_or(usize::MAX);
                generation.catch_up_to(wanted, MIRROR_CATCH_UP).await;
            }
            let offset = checked_offset(&generation, resume.offset)?;
            if resume.ended && !generation.is_streaming() {
                Start::After(generation)
            } else {
                Start::At { generation, offset }
            }
        }
    };
    let watch = state.registry.watch_chat(chat_id)?;
    // Other replicas count this watcher, and the chat's running reply, if
    // another replica runs it, is followed from here.
    state.sharing.follow_chat(chat_id).await?;
    Ok(Follower::new(
        watch,
        start,
        Some(Backlog::new(state, chat_id)),
        state.options.heartbeat_interval,
        state.lifecycle.stop_followers.clone(),
    ))
}

/// The generation behind a stream id: from memory while it is live or
/// recently finished, else rebuilt from its stored message.
async fn resumable(state: &AppState, chat_id: &str, stream_id: &str) -> Result<Arc<Generation>> {
    if let Some(generation) = state.sharing.stream(&state.registry, stream_id).await? {
        if generation.info.chat_session_id != chat_id {
            return Err(Error::invalid(format!("stream {stream_id}"), "belongs to another chat session"));
        }
        return Ok(generation);
    }
    match state.store.message_by_stream(chat_id, stream_id).await? {
        // Replicas: a reply the database still shows running is running on
        // another replica that Redis does not (yet) know of again.
        Some(message) if state.sharing.is_shared() && message.status() == MessageStatus::Streaming => {
            Err(Error::SharedRegistryLost { stream_id: stream_id.to_owned(), offset: 0 })
        }
        Some(message) => Ok(backlog::stored_generation(message, String::new())),
        None => Err(Error::StreamNotResumable { stream_id: stream_id.to_owned() }),
    }
}

fn checked_offset(generation: &Generation, offset: u64) -> Result<usize> {
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let (len, on_boundary) = generation.offset_fit(offset);
    if offset > len {
        return Err(Error::invalid(
            format!("resume offset {offset}"),
            format!("is past the {len} bytes of this reply generated so far"),
        ));
    }
    if !on_boundary {
        return Err(Error::invalid(format!("resume offset {offset}"), "falls inside a UTF-8 character"));
    }
    Ok(offset)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelResult {
    pub cancelled: bool,
    pub stream_id: String,
    pub message: String,
}

/// Cancels the chat's running reply and waits until its partial text is
/// stored, so the chat is free again when this returns.
pub async fn cancel(state: &AppState, caller: &Caller, chat_id: &str, stream_id: Option<&str>) -> Result<CancelResult> {
    chats::owned(state, caller, chat_id).await?;
    let live = state.sharing.live(&state.registry, chat_id).await?;
    let target = match (live, stream_id) {
        (Some(generation), None) => Some(generation),
        (Some(generation), Some(id)) if generation.info.stream_id == id => Some(generation),
        _ => None,
    };
    if let Some(generation) = target {
        state.sharing.cancel(&generation).await?;
        let stream_id = generation.info.stream_id.clone();
        let outcome = tokio::time::timeout(CANCEL_WAIT, generation.ended()).await;
        return Ok(match outcome.as_deref() {
            Ok(Outcome::Cancelled { .. }) => CancelResult {
                cancelled: true,
                stream_id,
                message: "the reply was cancelled; its partial text is stored".into(),
            },
            Ok(_) => CancelResult { cancelled: false, stream_id, message: "the reply had already finished".into() },
            Err(_) => CancelResult {
                cancelled: true,
                stream_id,
                message: "the reply is stopping; its partial text is being stored".into(),
            },
        });
    }
    match stream_id {
        None => Ok(CancelResult {
            cancelled: false,
            stream_id: String::new(),
            message: "no reply is being generated in this chat; nothing to cancel".into(),
        }),
        Some(id) => {
            let known_in_memory = state.registry.stream(id).is_some_and(|g| g.info.chat_session_id == chat_id);
            if !known_in_memory && state.store.message_by_stream(chat_id, id).await?.is_none() {
                return Err(Error::not_found("stream", id));
            }
            Ok(CancelResult {
                cancelled: false,
                stream_id: id.to_owned(),
                message: "that reply has already finished; nothing to cancel".into(),
            })
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStatus {
    pub streaming: bool,
    pub stream_id: String,
    pub text_length: usize,
    pub watchers: usize,
    pub started_at: Option<NaiveDateTime>,
}

pub async fn status(state: &AppState, caller: &Caller, chat_id: &str) -> Result<StreamStatus> {
    chats::owned(state, caller, chat_id).await?;
    let watchers =
        state.registry.chat(chat_id).map_or(0, |e| e.watcher_count()) + state.sharing.watchers_elsewhere(chat_id).await;
    Ok(match state.sharing.live(&state.registry, chat_id).await? {
        Some(generation) => StreamStatus {
            streaming: true,
            stream_id: generation.info.stream_id.clone(),
            text_length: generation.text_len(),
            watchers,
            started_at: Some(generation.info.started_at),
        },
        None => StreamStatus { streaming: false, stream_id: String::new(), text_length: 0, watchers, started_at: None },
    })
}
