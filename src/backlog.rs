//! Replies a subscriber missed: the ones that ended while it was away, or
//! while it was more than a whole reply behind. A subscription promises every
//! later reply in the chat, and the registry only holds each chat's newest,
//! so the gap is read back from the store, in order.
//!
//! Gaps are rare (a watcher knows from [`Generation::prev_seq`] whether it
//! saw the reply before the newest), so this costs nothing per reply in the
//! common case.

use std::{ops::Bound, sync::Arc};

use crate::{
    error::Result,
    provider::Usage,
    registry::{CancelReason, FailureCode, Generation, Outcome, Registry, StreamInfo},
    state::AppState,
    store::{
        Store,
        models::{Message, MessageStatus, Role},
    },
};

/// One chat's replies, from memory where the registry still holds them and
/// from the database otherwise.
#[derive(Clone)]
pub struct Backlog {
    store: Store,
    registry: Registry,
    chat_id: String,
}

impl Backlog {
    pub fn new(state: &AppState, chat_id: &str) -> Self {
        Self { store: state.store.clone(), registry: state.registry.clone(), chat_id: chat_id.to_owned() }
    }

    /// The replies from the message id `since` and before the reply `before`
    /// (or all), oldest first. A reply still being generated is left out
    /// unless this server is generating it: the watch delivers live replies.
    pub async fn between(&self, since: Bound<&str>, before: Option<&str>) -> Result<Vec<Arc<Generation>>> {
        let rows = self.store.messages_between(&self.chat_id, since, before).await?;
        let mut replies = Vec::new();
        let mut asked_by = None;
        for row in rows {
            if row.role() == Role::User {
                asked_by = Some(row.id);
                continue;
            }
            let user_message_id = asked_by.take().unwrap_or_default();
            let Some(stream_id) = row.stream_id.as_deref() else { continue };
            if let Some(generation) = self.registry.stream(stream_id) {
                replies.push(generation);
            } else if row.status() != MessageStatus::Streaming {
                replies.push(stored_generation(row, user_message_id));
            }
        }
        Ok(replies)
    }
}

/// A finished reply as a generation, so following it (resumed, or missed) is
/// the same code path as following a live one.
pub fn stored_generation(message: Message, user_message_id: String) -> Arc<Generation> {
    let info = StreamInfo {
        stream_id: message.stream_id.clone().unwrap_or_default(),
        chat_session_id: message.chat_session_id.clone(),
        user_message_id,
        assistant_message_id: message.id.clone(),
        model: message.model.clone().unwrap_or_default(),
        started_at: message.created_at,
    };
    let reason = message.finish_reason.clone().unwrap_or_default();
    let outcome = match message.status() {
        MessageStatus::Completed => Outcome::Completed {
            finish_reason: if reason.is_empty() { "unknown".into() } else { reason },
            usage: stored_usage(&message),
            message: Box::new(message.clone()),
        },
        MessageStatus::Failed => {
            Outcome::Failed { code: FailureCode::parse(&reason), message: message.error.clone().unwrap_or_default() }
        }
        MessageStatus::Cancelled => Outcome::Cancelled { reason: CancelReason::parse(&reason) },
        MessageStatus::Interrupted | MessageStatus::Streaming | MessageStatus::Unknown => Outcome::Failed {
            code: FailureCode::Interrupted,
            message: message
                .error
                .clone()
                .unwrap_or_else(|| "the server stopped while this reply was being generated".into()),
        },
    };
    Generation::from_stored(info, message.content, outcome)
}

fn stored_usage(message: &Message) -> Usage {
    let prompt = message.prompt_tokens.and_then(|t| u32::try_from(t).ok()).unwrap_or(0);
    let completion = message.completion_tokens.and_then(|t| u32::try_from(t).ok()).unwrap_or(0);
    Usage { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, cost: None }
}
