//! A reply's prompt, composed: the chat's settings resolved (chat, then
//! character, then global), the lorebooks activated, the layers built, the
//! context budget applied. Starting a reply and PromptPreview both call
//! [`compose`], so a preview is exactly what would be sent. Pure.

use chrono::NaiveDateTime;

use crate::{
    budget::{self, Budget, Fitted},
    error::Result,
    lore,
    lorebook::Lorebook,
    macros::Macros,
    prompt::{self, ChatMessage, LoreInsert, PromptInput, Turn},
    samplers::Samplers,
    settings::Settings,
    store::models::{Character, ChatSession, Message, UserProfile},
    tokens::TokenCounter,
};

/// Everything a prompt is made from.
pub struct ComposeInput<'a> {
    pub chat: &'a ChatSession,
    pub character: &'a Character,
    pub profile: &'a UserProfile,
    pub settings: &'a Settings,
    /// The chat's model, or else the default one.
    pub model: &'a str,
    /// The history before the turn (see [`crate::reply_plan::ReplyPlan`]).
    pub history: &'a [Message],
    pub turn: Turn<'a>,
    /// The id of the user message the turn is.
    pub turn_key: &'a str,
    pub books: &'a [Lorebook],
    /// Fixes lorebook probability rolls for this reply.
    pub seed: u64,
    /// When the chat's last stored message was written (`{{idle_duration}}`).
    pub last_message_at: Option<NaiveDateTime>,
    pub tokens: &'a TokenCounter,
    /// The model's context length from the provider's catalog, if known.
    pub catalog_context: Option<u32>,
}

/// A prompt ready to send.
#[derive(Debug, Clone)]
pub struct Composed {
    pub model: String,
    pub samplers: Samplers,
    pub budget: Budget,
    pub tokenizer: String,
    /// The messages with their sources and counts, and what was left out.
    pub fitted: Fitted,
    /// The lorebook entries that activated, in insertion order.
    pub lore: Vec<LoreInsert>,
}

impl Composed {
    /// The messages as the provider gets them.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.fitted.messages.iter().map(|(message, _)| message.to_chat()).collect()
    }
}

pub fn compose(input: &ComposeInput<'_>) -> Result<Composed> {
    let ComposeInput { chat, character, profile, settings, .. } = *input;
    let model = input.model.to_owned();
    let defaults = &settings.prompt_defaults;
    let samplers = chat.samplers().or(&Samplers::from_stored(&character.samplers)).or(&defaults.samplers);
    let context_tokens = input
        .catalog_context
        .or(chat.context_tokens.and_then(|t| u32::try_from(t).ok()))
        .unwrap_or(defaults.context_tokens);
    // An explicit max_tokens is kept free in full; the default reserve takes
    // at most a quarter of a small context.
    let reply_tokens = samplers.max_tokens.unwrap_or(defaults.reply_tokens.min(context_tokens / 4));
    let budget = Budget { context_tokens, reply_tokens };

    let lore = lore::for_reply(input.books, input.turn.text(), input.history, input.seed);
    let macros = Macros {
        character: &character.name,
        user: &profile.name,
        now: chrono::Utc::now(),
        last_message_at: input.last_message_at,
    };
    let authors_note_depth = u32::try_from(chat.authors_note_depth).unwrap_or(0);
    let messages = prompt::build(&PromptInput {
        settings: &settings.prompts,
        character,
        profile,
        history: input.history,
        turn: input.turn,
        lore: &lore,
        authors_note: (&chat.authors_note, authors_note_depth),
        macros: &macros,
        turn_key: input.turn_key,
    });
    let tokens = input.tokens.for_model(&model);
    let fitted = budget::fit(messages, &tokens, budget)?;
    Ok(Composed { model, samplers, budget, tokenizer: tokens.tokenizer_name().to_owned(), fitted, lore })
}
