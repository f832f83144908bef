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
    state::AppState,
    store::{
        Store,
        models::{Message, MessageStatus},
    },
    stream::registry::{CancelReason, FailureCode, Generation, Outcome, Registry, ReplyKind, StoredReply, StreamInfo},
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

    /// The replies whose streams started from `since` and before the stream
    /// `before` (or all), oldest first: new messages, regenerations and
    /// continuations alike, each as its message now shows it. A reply still
    /// being generated is left out unless this server is generating it: the
    /// watch delivers live replies.
    pub async fn between(&self, since: Bound<&str>, before: Option<&str>) -> Result<Vec<Arc<Generation>>> {
        let rows = self.store.replies_between(&self.chat_id, since, before).await?;
        let Some(newest) = rows.iter().map(|row| row.id.as_str()).max() else { return Ok(Vec::new()) };
        let askers = self.store.user_message_ids(&self.chat_id, newest).await?;
        let mut replies = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(stream_id) = row.stream_id.as_deref() else { continue };
            if let Some(generation) = self.registry.stream(stream_id) {
                replies.push(generation);
            } else if row.status() != MessageStatus::Streaming {
                // The user message right before the reply asked for it.
                let asked_by = askers.partition_point(|id| id.as_str() < row.id.as_str());
                let user_message_id = asked_by.checked_sub(1).map(|i| askers[i].clone()).unwrap_or_default();
                replies.push(stored_generation(row, user_message_id));
            }
        }
        Ok(replies)
    }
}

pub fn stored_generation(message: Message, user_message_id: String) -> Arc<Generation> {
    let info = StreamInfo {
        stream_id: message.stream_id.clone().unwrap_or_default(),
        chat_session_id: message.chat_session_id.clone(),
        user_message_id,
        assistant_message_id: message.id.clone(),
        model: message.model.clone().unwrap_or_default(),
        started_at: message.created_at,
        // How a stored reply began is not kept; a later alternative was a
        // regeneration. Its whole text is sent from offset 0 either way.
        kind: if message.alternative_index > 0 { ReplyKind::Regenerate } else { ReplyKind::Send },
        alternative_index: u32::try_from(message.alternative_index).unwrap_or(0),
        alternative_count: u32::try_from(message.alternative_count).unwrap_or(1),
        continues_from: 0,
        prompt_tokens: 0,
        history_included: 0,
        history_omitted: 0,
    };
    let outcome = stored_outcome(&message);
    Generation::from_stored(info, message.content, outcome)
}

/// How a stored reply ended, from its row.
pub fn stored_outcome(message: &Message) -> Outcome {
    let reason = message.finish_reason.clone().unwrap_or_default();
    match message.status() {
        MessageStatus::Completed => Outcome::Completed {
            finish_reason: if reason.is_empty() { "unknown".into() } else { reason },
            usage: stored_usage(message),
            reply: Box::new(StoredReply::of(message)),
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
    }
}

fn stored_usage(message: &Message) -> Usage {
    let prompt = message.prompt_tokens.and_then(|t| u32::try_from(t).ok()).unwrap_or(0);
    let completion = message.completion_tokens.and_then(|t| u32::try_from(t).ok()).unwrap_or(0);
    Usage { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, cost: None }
}
