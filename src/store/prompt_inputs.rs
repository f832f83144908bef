//! What the prompt of a chat's next reply is read from: the chat's history
//! and the lorebooks its reply may draw on, read together on one connection
//! (on SQLite, in one hop to the blocking pool).

use diesel::prelude::*;

use super::{
    Store, StoreResult,
    models::{LorebookRow, Message},
    read_together,
    schema::{character_lorebooks, characters, chat_lorebooks, lorebooks, messages},
};

/// A chat's history and books, as a prompt uses them.
pub struct PromptInputs {
    /// Oldest first. Only the newest message is read whole (a regeneration
    /// or continuation changes it); the others carry what a prompt uses (id,
    /// role, status, content), with their other fields empty. Reading every
    /// column of a long chat, its timestamps above all, was most of the cost
    /// of a send.
    pub history: Vec<Message>,
    /// The books a reply in this chat activates entries from: the
    /// character's own (from its card), those attached to the character, and
    /// those attached to the chat. Oldest first, each once.
    pub books: Vec<LorebookRow>,
}

impl Store {
    pub async fn prompt_inputs(&self, chat_session_id: &str, character_id: &str) -> StoreResult<PromptInputs> {
        let (chat_id, character_id) = (chat_session_id.to_owned(), character_id.to_owned());
        let (light, newest, books) = read_together!(self, conn => {
            let light: Vec<(String, String, String, String)> = load!(
                messages::table
                    .filter(messages::chat_session_id.eq(&chat_id))
                    .select((messages::id, messages::role, messages::content, messages::status))
                    .order(messages::id.asc()),
                conn
            );
            let newest: Option<Message> = match light.last() {
                Some((id, ..)) => one!(messages::table.find(id).select(Message::as_select()), conn),
                None => None,
            };
            let card_book = characters::table.find(&character_id).select(characters::lorebook_id).single_value();
            let of_character = character_lorebooks::table
                .filter(character_lorebooks::character_id.eq(&character_id))
                .select(character_lorebooks::lorebook_id);
            let of_chat = chat_lorebooks::table
                .filter(chat_lorebooks::chat_session_id.eq(&chat_id))
                .select(chat_lorebooks::lorebook_id);
            let books: Vec<LorebookRow> = load!(
                lorebooks::table
                    .filter(
                        lorebooks::id
                            .nullable()
                            .eq(card_book)
                            .or(lorebooks::id.eq_any(of_character))
                            .or(lorebooks::id.eq_any(of_chat)),
                    )
                    .select(LorebookRow::as_select())
                    .order(lorebooks::id.asc()),
                conn
            );
            Ok((light, newest, books))
        });
        let keep = light.len().saturating_sub(usize::from(newest.is_some()));
        let mut history: Vec<Message> = light
            .into_iter()
            .take(keep)
            .map(|(id, role, content, status)| Message::for_prompt(id, chat_session_id, role, content, status))
            .collect();
        history.extend(newest);
        Ok(PromptInputs { history, books })
    }
}
