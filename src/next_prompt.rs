//! The prompt of a chat's next reply: the stored history and lorebooks
//! loaded, the reply planned (see [`crate::reply_plan`]), the prompt composed
//! (see [`crate::compose`]). Starting a reply and PromptPreview both come
//! here, so a preview is exactly what the next send would send.

use std::sync::Arc;

use secrecy::SecretString;

use crate::{
    catalog::Listed,
    character_cards,
    compose::{ComposeInput, Composed, compose},
    error::{Error, Result},
    reply_plan::ReplyPlan,
    settings::{ApiKey, Settings},
    state::AppState,
    store::{
        PromptInputs,
        models::{Character, ChatSession, UserProfile},
    },
    stream::generation::ReplyRequest,
    users::Caller,
};

/// A chat and its two parties, as read for a reply.
pub struct ChatParties {
    pub chat: ChatSession,
    pub character: Character,
    pub profile: UserProfile,
}

pub struct NextPrompt {
    pub plan: ReplyPlan,
    pub composed: Composed,
    /// The provider's catalog does not list the chat's model (sending still
    /// works; the model may be new, or misspelt).
    pub unknown_model: bool,
}

/// Loads, plans and composes. `catalog_key` lets a stale model catalog be
/// refreshed in the background (never waited for).
pub async fn next_prompt(
    state: &AppState,
    settings: &Settings,
    parties: &ChatParties,
    request: ReplyRequest,
    stream_id: &str,
    catalog_key: Option<SecretString>,
) -> Result<NextPrompt> {
    let ChatParties { chat, character, profile } = parties;
    let store = &state.store;
    let PromptInputs { history, books } = store.prompt_inputs(&chat.id, &chat.character_id).await?;
    let last_message_at = history.last().map(|m| m.updated_at);
    // Rolls are fixed by the turn, not the stream: a preview and the send
    // after it, or two regenerations of one turn, activate the same entries.
    let seed = crate::lore::seed(&format!("{}:{}", chat.id, history.len()));
    let model = chat.model.clone().unwrap_or_else(|| settings.default_model.clone());
    let plan = ReplyPlan::new(request, history, &chat.id, stream_id, &model)?;
    let books: Vec<_> = books.iter().filter_map(|row| character_cards::stored_book(row).ok()).collect();
    let base_url = &settings.provider_base_url;
    state.catalog.refresh_if_stale(&state.provider, base_url, catalog_key);
    let listed = state.catalog.lookup(base_url, &model);
    state.tokens.ready_for(&model).await;
    let composed = compose(&ComposeInput {
        chat,
        character,
        profile,
        settings,
        model: &model,
        history: &plan.history,
        turn: plan.turn(),
        turn_key: plan.user_message_id(),
        books: &books,
        seed,
        last_message_at,
        tokens: &state.tokens,
        catalog_context: match listed {
            Some(Listed::Yes { context_length }) => context_length,
            Some(Listed::No) | None => None,
        },
    })?;
    let unknown_model = listed == Some(Listed::No);
    Ok(NextPrompt { plan, composed, unknown_model })
}

/// The caller's chat with its parties, the settings and the caller's own
/// provider key, read together.
pub async fn load(
    state: &AppState,
    caller: &Caller,
    chat_id: &str,
) -> Result<(ChatParties, Arc<Settings>, Arc<ApiKey>)> {
    let ((chat, character, profile), settings, own_key) = tokio::try_join!(
        async {
            state
                .store
                .chat_with_parties(&caller.user_id, chat_id)
                .await?
                .ok_or_else(|| Error::not_found("chat session", chat_id))
        },
        state.settings(),
        state.user_api_key(&caller.user_id),
    )?;
    Ok((ChatParties { chat, character, profile }, settings, own_key))
}

/// What sending `content` to the chat now would send upstream; calls no
/// provider and changes nothing.
pub async fn preview(state: &AppState, caller: &Caller, chat_id: &str, content: String) -> Result<NextPrompt> {
    let (parties, settings, own_key) = load(state, caller, chat_id).await?;
    // Without a usable key the catalog cannot be refreshed; the preview still works.
    let key = crate::settings::choose_api_key(&own_key, &settings).ok();
    next_prompt(state, &settings, &parties, ReplyRequest::Send(content), "preview", key).await
}
