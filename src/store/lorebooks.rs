//! Lorebooks, always scoped to their owner, and their attachments.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Store, StoreResult,
    models::LorebookRow,
    schema::{character_lorebooks, characters, chat_lorebooks, lorebooks},
    with_conn,
};

impl Store {
    pub async fn lorebook(&self, owner: &str, id: &str) -> StoreResult<Option<LorebookRow>> {
        Ok(with_conn!(self, conn => lorebooks::table
            .find(id)
            .filter(lorebooks::user_id.eq(owner))
            .select(LorebookRow::as_select())
            .first(conn)
            .await
            .optional()?))
    }

    /// The books a reply in this chat activates entries from: the character's
    /// own (from its card), those attached to the character, and those
    /// attached to the chat. Oldest first, each once.
    pub async fn books_for_chat(&self, chat_session_id: &str, character_id: &str) -> StoreResult<Vec<LorebookRow>> {
        let card_book = characters::table.find(character_id).select(characters::lorebook_id).single_value();
        let of_character = character_lorebooks::table
            .filter(character_lorebooks::character_id.eq(character_id))
            .select(character_lorebooks::lorebook_id);
        let of_chat = chat_lorebooks::table
            .filter(chat_lorebooks::chat_session_id.eq(chat_session_id))
            .select(chat_lorebooks::lorebook_id);
        Ok(with_conn!(self, conn => lorebooks::table
            .filter(
                lorebooks::id
                    .nullable()
                    .eq(card_book)
                    .or(lorebooks::id.eq_any(of_character))
                    .or(lorebooks::id.eq_any(of_chat)),
            )
            .select(LorebookRow::as_select())
            .order(lorebooks::id.asc())
            .load(conn)
            .await?))
    }
}
