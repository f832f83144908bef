//! Changing a chat's history after the fact: choosing among a reply's
//! alternatives, editing, deleting, rewinding, and forking into a new chat.
//! (Regenerating and continuing are replies: see [`crate::stream::generation`].)
//!
//! Every change takes the chat's lock, as a reply does: while a reply runs
//! the change is refused (ABORTED, naming the stream) and nothing changes,
//! and no reply can start until the change is stored. The chat's watchers
//! then hear of it as a [`ChatChange`], so every open view stays in step.

use crate::{
    api::validate::NAME_MAX_CHARS,
    chats,
    error::{Error, Result},
    state::AppState,
    store::{
        Store,
        models::{ChatSession, Message, MessageStatus},
        new_id, now,
    },
    stream::{
        registry::{ChatChange, ChatChangeKind, ChatLock},
        shared::ChangeHold,
    },
    users::Caller,
};

/// Makes alternative `index` of a message the one the story continues from.
pub async fn select_alternative(state: &AppState, caller: &Caller, message_id: &str, index: u32) -> Result<Message> {
    let (message, lock) = lock_message(state, caller, message_id).await?;
    let count = u32::try_from(message.alternative_count).unwrap_or(1);
    if index >= count {
        return Err(Error::invalid(
            format!("index {index}"),
            format!("is out of range: message {message_id} has {count} alternative(s), counted from 0"),
        ));
    }
    if i64::from(index) == i64::from(message.alternative_index) {
        return Ok(message);
    }
    let selected = state
        .store
        .select_alternative(&message, i32::try_from(index).unwrap_or(i32::MAX))
        .await?
        .ok_or_else(|| Error::not_found("alternative", format!("{message_id}/{index}")))?;
    announce(state, &lock, &selected.chat_session_id, ChatChangeKind::Selected, vec![selected.id.clone()]).await;
    Ok(selected)
}

/// Replaces a message's content (a user message, or the selected
/// alternative of a reply).
pub async fn edit(state: &AppState, caller: &Caller, message_id: &str, content: &str) -> Result<Message> {
    let (message, lock) = lock_message(state, caller, message_id).await?;
    let edited = state.store.edit_message(&message.id, content).await?;
    announce(state, &lock, &edited.chat_session_id, ChatChangeKind::Edited, vec![edited.id.clone()]).await;
    Ok(edited)
}

/// Deletes a message with all its alternatives.
pub async fn delete(state: &AppState, caller: &Caller, message_id: &str) -> Result<()> {
    let (message, lock) = lock_message(state, caller, message_id).await?;
    state.store.delete_message(&message.id).await?;
    announce(state, &lock, &message.chat_session_id, ChatChangeKind::Deleted, vec![message.id]).await;
    Ok(())
}

/// Keeps `message_id` and deletes every later message of the chat; returns
/// the ids deleted, oldest first.
pub async fn rewind(state: &AppState, caller: &Caller, chat_id: &str, message_id: &str) -> Result<Vec<String>> {
    chats::owned(state, caller, chat_id).await?;
    let (message, lock) = lock_message(state, caller, message_id).await?;
    if message.chat_session_id != chat_id {
        return Err(Error::not_found("message", format!("{message_id} in chat session {chat_id}")));
    }
    let deleted = state.store.rewind_chat(chat_id, &message.id).await?;
    if !deleted.is_empty() {
        announce(state, &lock, chat_id, ChatChangeKind::Rewound, deleted.clone()).await;
    }
    Ok(deleted)
}

/// Every alternative of a message, by index, and the selected index.
pub async fn alternatives(state: &AppState, caller: &Caller, message_id: &str) -> Result<(Vec<Message>, u32)> {
    let store = &state.store;
    let message = owned_message(store, caller, message_id).await?;
    let aside = store.other_alternatives(&message.id).await?;
    let selected = u32::try_from(message.alternative_index).unwrap_or(0);
    let mut all: Vec<Message> = aside.into_iter().map(|alternative| message.showing(alternative)).collect();
    all.push(message);
    all.sort_by_key(|m| m.alternative_index);
    Ok((all, selected))
}

/// A new chat of the caller's with the same character, profile and settings,
/// whose history is a copy of `chat_id`'s up to and including `message_id`
/// (selected alternatives only).
pub async fn fork(
    state: &AppState,
    caller: &Caller,
    chat_id: &str,
    message_id: &str,
    title: Option<String>,
) -> Result<ChatSession> {
    let store = &state.store;
    let source = chats::owned(store, caller, chat_id).await?;
    let last = owned_message(store, caller, message_id).await?;
    if last.chat_session_id != chat_id {
        return Err(Error::not_found("message", format!("{message_id} in chat session {chat_id}")));
    }
    let history = store.chat_history(chat_id).await?;
    let kept = history.into_iter().take_while(|m| m.id.as_str() <= last.id.as_str());
    let created_at = now();
    let fork = ChatSession {
        id: new_id(),
        title: title.unwrap_or_else(|| fork_title(&source.title)),
        created_at,
        updated_at: created_at,
        user_id: caller.user_id.clone(),
        ..source
    };
    let mut copies = Vec::new();
    for message in kept {
        if message.status() == MessageStatus::Streaming {
            // Only the running reply streams: it has not ended, so it cannot
            // be copied yet.
            let stream_id = message.stream_id.clone().unwrap_or_default();
            return Err(Error::ChatBusy { stream_id });
        }
        copies.push(Message {
            id: new_id(),
            chat_session_id: fork.id.clone(),
            // Stream ids name one reply; the copy was not streamed.
            stream_id: None,
            alternative_index: 0,
            alternative_count: 1,
            ..message
        });
    }
    store.insert_fork(&fork, &copies).await?;
    Ok(fork)
}

/// "<title> (fork)", within the characters a title may have.
fn fork_title(title: &str) -> String {
    const SUFFIX: &str = " (fork)";
    // A title is held to the limit CreateChatSession checks.
    let room = NAME_MAX_CHARS - SUFFIX.chars().count();
    let base: String = title.chars().take(room).collect();
    format!("{base}{SUFFIX}")
}

async fn owned_message(store: &Store, caller: &Caller, message_id: &str) -> Result<Message> {
    store.owned_message(&caller.user_id, message_id).await?.ok_or_else(|| Error::not_found("message", message_id))
}

/// A chat held for a change: here (the registry's lock) and, with
/// replicas, on all of them.
struct ChangeLock {
    lock: ChatLock,
    _everywhere: ChangeHold,
}

/// Takes the lock of the message's chat, and reads the message again under
/// it (a reply or another change may have ended just before).
async fn lock_message(state: &AppState, caller: &Caller, message_id: &str) -> Result<(Message, ChangeLock)> {
    let found = owned_message(&state.store, caller, message_id).await?;
    let lock = state.registry.lock_chat_for_change(&found.chat_session_id)?;
    let everywhere = state.sharing.hold_for_change(&found.chat_session_id).await?;
    let message = owned_message(&state.store, caller, message_id).await?;
    Ok((message, ChangeLock { lock, _everywhere: everywhere }))
}

async fn announce(state: &AppState, lock: &ChangeLock, chat_id: &str, kind: ChatChangeKind, message_ids: Vec<String>) {
    let change = ChatChange { chat_session_id: chat_id.to_owned(), kind, message_ids };
    state.sharing.announce(&change).await;
    state.registry.announce(&lock.lock, change);
}
