//! Chat sessions, always scoped to their owner.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Page, PageRequest, Store, StoreError, StoreResult,
    library::DeleteOutcome,
    models::{Alternative, Character, ChatChanges, ChatSession, Message, UserProfile},
    schema::{characters, chat_sessions, message_alternatives, messages, user_profiles},
    with_conn,
};

impl Store {
    /// Inserts the chat and, when the character has one, its first message
    /// with its other alternatives (the alternate greetings), in one
    /// transaction.
    pub async fn insert_chat_session(
        &self,
        chat: &ChatSession,
        first_message: Option<&Message>,
        alternatives: &[Alternative],
    ) -> StoreResult<()> {
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                diesel::insert_into(chat_sessions::table).values(chat).execute(conn).await?;
                if let Some(message) = first_message {
                    diesel::insert_into(messages::table).values(message).execute(conn).await?;
                }
                for alternative in alternatives {
                    diesel::insert_into(message_alternatives::table).values(alternative).execute(conn).await?;
                }
                Ok(())
            })
            .await)
    }

    pub async fn chat_session(&self, owner: &str, id: &str) -> StoreResult<Option<ChatSession>> {
        Ok(with_conn!(self, conn => chat_sessions::table
            .find(id)
            .filter(chat_sessions::user_id.eq(owner))
            .select(ChatSession::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// A chat with its character and user profile, in one query (sending a
    /// message needs all three).
    pub async fn chat_with_parties(
        &self,
        owner: &str,
        id: &str,
    ) -> StoreResult<Option<(ChatSession, Character, UserProfile)>> {
        Ok(with_conn!(self, conn => chat_sessions::table
            .find(id)
            .filter(chat_sessions::user_id.eq(owner))
            .inner_join(characters::table)
            .inner_join(user_profiles::table)
            .select((ChatSession::as_select(), Character::as_select(), UserProfile::as_select()))
            .get_result(conn)
            .await
            .optional()?))
    }

    /// By last activity, newest first. The page cursor is the last chat's id;
    /// its activity time is read back here, so a cursor is a plain id.
    pub async fn list_chat_sessions(
        &self,
        owner: &str,
        character_id: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<ChatSession>> {
        let rows = with_conn!(self, conn => {
            let mut query = chat_sessions::table
                .filter(chat_sessions::user_id.eq(owner))
                .select(ChatSession::as_select())
                .order((chat_sessions::updated_at.desc(), chat_sessions::id.desc()))
                .into_boxed();
            if let Some(character_id) = character_id {
                query = query.filter(chat_sessions::character_id.eq(character_id.to_owned()));
            }
            if let Some(after) = &page.after {
                let at: Option<chrono::NaiveDateTime> = chat_sessions::table
                    .find(after)
                    .select(chat_sessions::updated_at)
                    .get_result(conn)
                    .await
                    .optional()?;
                // A chat deleted since the last page: continue from the start
                // of the list would repeat, so end the listing instead.
                let Some(at) = at else { return Ok(Page { items: Vec::new(), has_more: false }) };
                query = query.filter(
                    chat_sessions::updated_at
                        .lt(at)
                        .or(chat_sessions::updated_at.eq(at).and(chat_sessions::id.lt(after.clone()))),
                );
            }
            query.limit(page.fetch_limit()).load(conn).await?
        });
        Ok(page.finish(rows))
    }

    pub async fn update_chat_session(
        &self,
        owner: &str,
        id: &str,
        changes: &ChatChanges,
    ) -> StoreResult<Option<ChatSession>> {
        Ok(
            with_conn!(self, conn => diesel::update(chat_sessions::table.find(id).filter(chat_sessions::user_id.eq(owner)))
            .set(changes)
            .returning(ChatSession::as_returning())
            .get_result(conn)
            .await
            .optional()?),
        )
    }

    /// Deletes the chat; its messages go with it (ON DELETE CASCADE).
    pub async fn delete_chat_session(&self, owner: &str, id: &str) -> StoreResult<DeleteOutcome> {
        let deleted = with_conn!(self, conn => diesel::delete(chat_sessions::table.find(id).filter(chat_sessions::user_id.eq(owner)))
            .execute(conn)
            .await?);
        Ok(if deleted == 0 { DeleteOutcome::NotFound } else { DeleteOutcome::Deleted })
    }
}
