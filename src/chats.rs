//! Chat sessions: opening, reading, listing and removing them, and the one
//! ownership check every chat operation goes through.

use crate::{
    error::{Error, Result},
    prompt::substitute_names,
    state::AppState,
    store::{
        DeleteOutcome, Page, PageRequest, Store,
        models::{Alternative, ChatSession, Message, MessageStatus, Role},
        new_id, now,
    },
    users::Caller,
};

/// A chat to open, already validated.
#[derive(Debug, Clone)]
pub struct NewChat {
    pub character_id: String,
    pub user_profile_id: String,
    pub title: Option<String>,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
}

/// Opens a chat; the character's first message, with names filled in, becomes
/// its first assistant message.
pub async fn create(store: &impl AsRef<Store>, caller: &Caller, new: NewChat) -> Result<ChatSession> {
    let store = store.as_ref();
    let owner = &caller.user_id;
    let (character, profile) =
        tokio::try_join!(store.character(owner, &new.character_id), store.user_profile(owner, &new.user_profile_id))?;
    let character = character.ok_or_else(|| Error::not_found("character", &new.character_id))?;
    let profile = profile.ok_or_else(|| Error::not_found("user profile", &new.user_profile_id))?;
    let created_at = now();
    let chat = ChatSession {
        id: new_id(),
        character_id: character.id.clone(),
        user_profile_id: profile.id.clone(),
        title: new.title.unwrap_or_else(|| format!("Chat with {}", character.name)),
        model: new.model,
        temperature: new.temperature,
        max_tokens: new.max_tokens,
        created_at,
        updated_at: created_at,
        user_id: owner.clone(),
    };
    // The first message and the alternate greetings are the alternatives
    // (swipes) of the chat's first message; the first message is selected.
    let greetings: Vec<String> = character
        .first_message
        .iter()
        .cloned()
        .chain(character.alternate_greetings())
        .filter(|text| !text.trim().is_empty())
        .map(|text| substitute_names(&text, &character.name, &profile.name))
        .collect();
    let mut greetings = greetings.into_iter();
    let first_message =
        greetings.next().map(|content| Message::new(&chat.id, Role::Assistant, content, MessageStatus::Completed));
    let others: Vec<Alternative> = match &first_message {
        Some(first) => greetings
            .enumerate()
            .map(|(i, content)| Alternative {
                alternative_index: i32::try_from(i + 1).unwrap_or(i32::MAX),
                content,
                ..first.to_alternative()
            })
            .collect(),
        None => Vec::new(),
    };
    let first_message = first_message
        .map(|first| Message { alternative_count: i32::try_from(others.len() + 1).unwrap_or(i32::MAX), ..first });
    match store.insert_chat_session(&chat, first_message.as_ref(), &others).await {
        Ok(()) => Ok(chat),
        // The character or profile was deleted between the check and the insert.
        Err(err) if err.is_foreign_key_violation() => Err(Error::NotFound {
            what: "character or user profile",
            id: format!("{}/{}", chat.character_id, chat.user_profile_id),
        }),
        Err(err) => Err(err.into()),
    }
}

/// The caller's chat: another user's chat is NOT_FOUND, exactly like one
/// that does not exist.
pub async fn owned(store: &impl AsRef<Store>, caller: &Caller, chat_id: &str) -> Result<ChatSession> {
    let store = store.as_ref();
    store.chat_session(&caller.user_id, chat_id).await?.ok_or_else(|| Error::not_found("chat session", chat_id))
}

/// The caller's chats, newest first.
pub async fn list(store: &impl AsRef<Store>, caller: &Caller, page: &PageRequest) -> Result<Page<ChatSession>> {
    let store = store.as_ref();
    Ok(store.list_chat_sessions(&caller.user_id, page).await?)
}

/// A page of the chat's messages, oldest first.
/// A page of the chat's messages, oldest first, and the path of its
/// character's avatar (for the assistant's messages), if it has one.
pub async fn messages(
    store: &impl AsRef<Store>,
    caller: &Caller,
    chat_id: &str,
    page: &PageRequest,
) -> Result<(Page<Message>, Option<String>)> {
    let store = store.as_ref();
    let chat = owned(store, caller, chat_id).await?;
    let (messages, character) =
        tokio::try_join!(store.list_messages(chat_id, page), store.character(&caller.user_id, &chat.character_id))?;
    Ok((messages, character.and_then(|c| c.avatar_path())))
}

pub async fn delete(state: &AppState, caller: &Caller, chat_id: &str) -> Result<()> {
    let (store, registry) = (&state.store, &state.registry);
    // Ownership first: another user's chat is NOT_FOUND even while it streams.
    owned(store, caller, chat_id).await?;
    if let Some(generation) = registry.live(chat_id) {
        return Err(Error::ReplyRunning { stream_id: generation.info.stream_id.clone(), action: "deleting the chat" });
    }
    match store.delete_chat_session(&caller.user_id, chat_id).await? {
        DeleteOutcome::Deleted => Ok(()),
        DeleteOutcome::NotFound | DeleteOutcome::InUse => Err(Error::not_found("chat session", chat_id)),
    }
}
