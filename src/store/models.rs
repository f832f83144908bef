//! Rows as stored. These are the domain's records too: plain derived structs,
//! converted to protobuf only at the API edge.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{characters, chat_sessions, messages, usage_records, user_profiles, users};
use crate::text_enum::text_enum;

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
    pub updated_at: NaiveDateTime,
    /// The owner.
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
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
        }
    }

    pub fn role(&self) -> Role {
        Role::parse(&self.role)
    }

    pub fn status(&self) -> MessageStatus {
        MessageStatus::parse(&self.status)
    }
}

/// How a generated reply ended, as written to its row.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = messages)]
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
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = usage_records)]
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
