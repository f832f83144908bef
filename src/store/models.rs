//! Rows as stored. These are the domain's records too: plain derived structs,
//! converted to protobuf only at the API edge.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    avatars, characters, chat_sessions, lorebooks, message_alternatives, messages, usage_records, user_profiles, users,
};
use crate::{samplers::Samplers, text_enum::text_enum};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = characters)]
pub struct Character {
    pub id: String,
    pub name: String,
    pub description: String,
    pub system_prompt: Option<String>,
    pub post_history_instructions: Option<String>,
    pub first_message: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The owner.
    pub user_id: String,
    pub personality: String,
    pub scenario: String,
    /// Example dialogues, each block starting with `<START>`.
    pub mes_example: String,
    /// JSON array of strings: the chat's other possible first messages.
    pub alternate_greetings: String,
    /// JSON array of strings.
    pub tags: String,
    pub creator: String,
    pub creator_notes: String,
    pub character_version: String,
    /// JSON object: the card's `extensions`, verbatim.
    pub extensions: String,
    /// JSON object: card fields this server does not model, for export.
    pub card_extra: String,
    /// The avatar's content hash (see [`Avatar`]).
    pub avatar_hash: Option<String>,
    /// The card's own lorebook (its `character_book`).
    pub lorebook_id: Option<String>,
    /// JSON: [`Samplers`] for this character's chats.
    pub samplers: String,
}

impl Character {
    /// A new character of `owner`'s, created now, with only a name.
    pub fn new(owner: &str, name: String) -> Self {
        let created_at = super::now();
        Self {
            id: super::new_id(),
            name,
            description: String::new(),
            system_prompt: None,
            post_history_instructions: None,
            first_message: None,
            created_at,
            updated_at: created_at,
            user_id: owner.to_owned(),
            personality: String::new(),
            scenario: String::new(),
            mes_example: String::new(),
            alternate_greetings: "[]".into(),
            tags: "[]".into(),
            creator: String::new(),
            creator_notes: String::new(),
            character_version: String::new(),
            extensions: "{}".into(),
            card_extra: "{}".into(),
            avatar_hash: None,
            lorebook_id: None,
            samplers: "{}".into(),
        }
    }

    /// The path the avatar is served at, when there is one.
    pub fn avatar_path(&self) -> Option<String> {
        self.avatar_hash.as_ref().map(|_| format!("/v1/characters/{}/avatar", self.id))
    }

    pub fn alternate_greetings(&self) -> Vec<String> {
        serde_json::from_str(&self.alternate_greetings).unwrap_or_default()
    }

    pub fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    pub fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.extensions).unwrap_or_default()
    }

    pub fn card_extra(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.card_extra).unwrap_or_default()
    }
}

/// Fields to change; `None` leaves a field as it is, `Some(None)` clears a
/// nullable one.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = characters)]
pub struct CharacterChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub system_prompt: Option<Option<String>>,
    pub post_history_instructions: Option<Option<String>>,
    pub first_message: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
    pub personality: Option<String>,
    pub scenario: Option<String>,
    pub mes_example: Option<String>,
    pub alternate_greetings: Option<String>,
    pub tags: Option<String>,
    pub creator: Option<String>,
    pub creator_notes: Option<String>,
    pub character_version: Option<String>,
    pub extensions: Option<String>,
    pub avatar_hash: Option<Option<String>>,
    pub samplers: Option<String>,
}

/// An avatar image, stored once per content.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = avatars)]
pub struct Avatar {
    /// SHA-256 of `data`, hex.
    pub hash: String,
    pub content_type: String,
    pub data: Vec<u8>,
    pub created_at: NaiveDateTime,
}

/// A lorebook: its settings and entries as one JSON document
/// ([`crate::lorebook::Lorebook`]).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = lorebooks)]
pub struct LorebookRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub book: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_profiles)]
pub struct UserProfile {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The owner.
    pub user_id: String,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = user_profiles)]
pub struct UserProfileChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = chat_sessions)]
pub struct ChatSession {
    pub id: String,
    pub character_id: String,
    pub user_profile_id: String,
    pub title: String,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    pub created_at: NaiveDateTime,
    /// The last activity: a message sent or changed, or the chat updated.
    pub updated_at: NaiveDateTime,
    /// The owner.
    pub user_id: String,
    /// JSON: this chat's own [`Samplers`] (temperature and max_tokens live
    /// in their columns, older than this one).
    pub samplers: String,
    pub context_tokens: Option<i32>,
    pub authors_note: String,
    pub authors_note_depth: i32,
}

impl ChatSession {
    /// The chat's own sampler settings (not resolved with its character's or
    /// the global ones).
    pub fn samplers(&self) -> Samplers {
        let own = Samplers::from_stored(&self.samplers);
        Samplers {
            temperature: own.temperature.or(self.temperature),
            max_tokens: own.max_tokens.or(self.max_tokens.and_then(|t| u32::try_from(t).ok())),
            ..own
        }
    }
}

/// A chat's fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = chat_sessions)]
pub struct ChatChanges {
    pub title: Option<String>,
    pub model: Option<Option<String>>,
    pub temperature: Option<Option<f64>>,
    pub max_tokens: Option<Option<i32>>,
    pub samplers: Option<String>,
    pub context_tokens: Option<Option<i32>>,
    pub authors_note: Option<String>,
    pub authors_note_depth: Option<i32>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Inserted with every column named (a `None` as NULL, which is each
/// optional column's default): diesel leaves out the `None` columns
/// otherwise, and an insert whose text varies is prepared again every time.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages, treat_none_as_default_value = false)]
pub struct Message {
    pub id: String,
    pub chat_session_id: String,
    pub role: String,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub error: Option<String>,
    pub stream_id: Option<String>,
    pub finish_reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub provider: Option<String>,
    /// Which alternative of its turn this row shows (see [`Alternative`]).
    pub alternative_index: i32,
    pub alternative_count: i32,
    pub edited_at: Option<NaiveDateTime>,
}

impl Message {
    /// A new message, created now, with none of a generated reply's details.
    pub fn new(chat_session_id: &str, role: Role, content: String, status: MessageStatus) -> Self {
        let created_at = super::now();
        Self {
            id: super::new_id(),
            chat_session_id: chat_session_id.to_owned(),
            role: role.as_str().to_owned(),
            content,
            status: status.as_str().to_owned(),
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            error: None,
            stream_id: None,
            finish_reason: None,
            duration_ms: None,
            provider: None,
            created_at,
            updated_at: created_at,
            alternative_index: 0,
            alternative_count: 1,
            edited_at: None,
        }
    }

    /// A message as a prompt reads it: no timestamps, usage or stream.
    pub fn for_prompt(id: String, chat_session_id: &str, role: String, content: String, status: String) -> Self {
        Self {
            id,
            chat_session_id: chat_session_id.to_owned(),
            role,
            content,
            status,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            error: None,
            stream_id: None,
            finish_reason: None,
            duration_ms: None,
            created_at: NaiveDateTime::default(),
            updated_at: NaiveDateTime::default(),
            provider: None,
            alternative_index: 0,
            alternative_count: 1,
            edited_at: None,
        }
    }

    /// This row's alternative, to be put aside while another is selected.
    pub fn to_alternative(&self) -> Alternative {
        Alternative {
            message_id: self.id.clone(),
            alternative_index: self.alternative_index,
            content: self.content.clone(),
            status: self.status.clone(),
            model: self.model.clone(),
            provider: self.provider.clone(),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            error: self.error.clone(),
            stream_id: self.stream_id.clone(),
            finish_reason: self.finish_reason.clone(),
            duration_ms: self.duration_ms,
            edited_at: self.edited_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The turn as it reads with `alternative` selected.
    pub fn showing(&self, alternative: Alternative) -> Message {
        Message {
            id: self.id.clone(),
            chat_session_id: self.chat_session_id.clone(),
            role: self.role.clone(),
            content: alternative.content,
            status: alternative.status,
            model: alternative.model,
            prompt_tokens: alternative.prompt_tokens,
            completion_tokens: alternative.completion_tokens,
            error: alternative.error,
            stream_id: alternative.stream_id,
            finish_reason: alternative.finish_reason,
            duration_ms: alternative.duration_ms,
            created_at: alternative.created_at,
            updated_at: alternative.updated_at,
            provider: alternative.provider,
            alternative_index: alternative.alternative_index,
            alternative_count: self.alternative_count,
            edited_at: alternative.edited_at,
        }
    }

    pub fn role(&self) -> Role {
        Role::parse(&self.role)
    }

    pub fn status(&self) -> MessageStatus {
        MessageStatus::parse(&self.status)
    }
}

/// An alternative ("swipe") of an assistant turn that is not selected. The
/// selected one is the turn's `messages` row itself, so readers of the
/// history never look here; selecting trades the two places.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_alternatives)]
pub struct Alternative {
    pub message_id: String,
    pub alternative_index: i32,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub error: Option<String>,
    pub stream_id: Option<String>,
    pub finish_reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub edited_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A turn's row changed to show another alternative: every field an
/// alternative has, unset ones written as NULL.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = messages, treat_none_as_null = true)]
pub struct ShownAlternative {
    pub alternative_index: i32,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub error: Option<String>,
    pub stream_id: Option<String>,
    pub finish_reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub edited_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl From<Alternative> for ShownAlternative {
    fn from(alternative: Alternative) -> Self {
        let Alternative {
            message_id: _,
            alternative_index,
            content,
            status,
            model,
            provider,
            prompt_tokens,
            completion_tokens,
            error,
            stream_id,
            finish_reason,
            duration_ms,
            edited_at,
            created_at,
            updated_at,
        } = alternative;
        Self {
            alternative_index,
            content,
            status,
            model,
            provider,
            prompt_tokens,
            completion_tokens,
            error,
            stream_id,
            finish_reason,
            duration_ms,
            edited_at,
            created_at,
            updated_at,
        }
    }
}

/// How a generated reply ended, as written to its row (by the store's
/// fixed `FinishReply` statement): a `None` field leaves its column as it
/// is, `Some(None)` sets it to NULL.
#[derive(Debug, Clone, Default)]
pub struct ReplyOutcome {
    pub content: Option<String>,
    pub status: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: Option<Option<i32>>,
    pub completion_tokens: Option<Option<i32>>,
    pub error: Option<Option<String>>,
    pub finish_reason: Option<Option<String>>,
    pub duration_ms: Option<Option<i64>>,
    pub updated_at: Option<NaiveDateTime>,
    pub provider: Option<Option<String>>,
}

text_enum!(Role { User => "user", Assistant => "assistant", System => "system" });
text_enum!(MessageStatus {
    Completed => "completed",
    Streaming => "streaming",
    Failed => "failed",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
});

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub name: String,
    pub is_admin: bool,
    /// The first 16 hex digits of the token's SHA-256, for the index lookup.
    pub token_lookup: Option<String>,
    /// The token's whole SHA-256 (hex); the token itself is never stored.
    pub token_hash: Option<String>,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl User {
    /// Holds a token that works.
    pub fn is_active(&self) -> bool {
        self.token_hash.is_some() && self.revoked_at.is_none()
    }
}

/// One generation's usage, written with its outcome.
/// Inserted with every column named, as [`Message`] is.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = usage_records, treat_none_as_default_value = false)]
pub struct UsageRecord {
    pub id: String,
    pub user_id: String,
    pub chat_session_id: String,
    pub stream_id: String,
    pub model: String,
    pub provider: Option<String>,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub cost: Option<f64>,
    pub ttft_ms: Option<i64>,
    pub duration_ms: i64,
    /// How the reply ended: a [`MessageStatus`] (completed, failed or
    /// cancelled) as text.
    pub outcome: String,
    /// The finish reason, failure code or cancel reason.
    pub detail: String,
    /// The UTC day of `created_at`, "YYYY-MM-DD".
    pub day: String,
    pub created_at: NaiveDateTime,
}
