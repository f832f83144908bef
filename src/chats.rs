//! Chat sessions: opening, reading, listing and removing them, and the one
//! ownership check every chat operation goes through.

use crate::{
    error::{Error, Result},
    prompt::substitute_names,
    samplers::Samplers,
    state::AppState,
    store::{
        DeleteOutcome, Page, PageRequest, Store,
        models::{Alternative, ChatChanges, ChatSession, Message, MessageStatus, Role},
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
    pub samplers: Samplers,
    pub context_tokens: Option<u32>,
    pub authors_note: String,
    pub authors_note_depth: u32,
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
        temperature: new.samplers.temperature,
        max_tokens: new.samplers.max_tokens.and_then(|t| i32::try_from(t).ok()),
        created_at,
        updated_at: created_at,
        user_id: owner.clone(),
        samplers: new.samplers.to_stored(),
        context_tokens: new.context_tokens.and_then(|t| i32::try_from(t).ok()),
        authors_note: new.authors_note,
        authors_note_depth: i32::try_from(new.authors_note_depth).unwrap_or(i32::MAX),
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
/// The caller's chats by last activity, newest first; only those with
/// `character_id` when given.
pub async fn list(
    store: &impl AsRef<Store>,
    caller: &Caller,
    character_id: Option<&str>,
    page: &PageRequest,
) -> Result<Page<ChatSession>> {
    Ok(store.as_ref().list_chat_sessions(&caller.user_id, character_id, page).await?)
}

/// A chat's settings to change (UpdateChatSession), already validated;
/// `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ChatUpdate {
    pub title: Option<String>,
    pub model: Option<Option<String>>,
    pub samplers: Option<SamplersUpdate>,
    pub context_tokens: Option<Option<u32>>,
    pub authors_note: Option<String>,
    pub authors_note_depth: Option<u32>,
}

/// How a chat's samplers change.
#[derive(Debug, Clone)]
pub enum SamplersUpdate {
    /// These replace the chat's own samplers.
    Whole(Samplers),
    /// These fields (see [`Samplers::FIELDS`]) are taken from `given`; the
    /// others stay.
    Fields { given: Samplers, fields: Vec<String> },
}

/// Changes a chat's settings; the change counts as activity.
pub async fn update(state: &AppState, caller: &Caller, chat_id: &str, update: ChatUpdate) -> Result<ChatSession> {
    let store = &state.store;
    let chat = owned(store, caller, chat_id).await?;
    let ChatUpdate { title, model, samplers, context_tokens, authors_note, authors_note_depth } = update;
    let samplers = samplers.map(|update| match update {
        SamplersUpdate::Whole(samplers) => samplers,
        SamplersUpdate::Fields { given, fields } => {
            let mut samplers = chat.samplers();
            for field in &fields {
                samplers.copy_field(&given, field);
            }
            samplers
        }
    });
    let changes = ChatChanges {
        title,
        model,
        temperature: samplers.as_ref().map(|s| s.temperature),
        max_tokens: samplers.as_ref().map(|s| s.max_tokens.and_then(|t| i32::try_from(t).ok())),
        samplers: samplers.as_ref().map(Samplers::to_stored),
        context_tokens: context_tokens.map(|t| t.and_then(|t| i32::try_from(t).ok())),
        authors_note,
        authors_note_depth: authors_note_depth.map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
        updated_at: Some(now()),
    };
    store
        .update_chat_session(&caller.user_id, chat_id, &changes)
        .await?
        .ok_or_else(|| Error::not_found("chat session", chat_id))
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
