//! Changing a chat's history after the fact: alternatives (swipes), edits,
//! deletions, rewinds and forks.
//!
//! A turn's `messages` row always shows its selected alternative; the others
//! wait in `message_alternatives`. Selecting trades the two places in one
//! transaction, so every reader of the history stays a plain `messages` query.
//! The caller holds the chat's lock for all of these (see [`crate::editing`]).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Fence, Store, StoreError, StoreResult,
    models::{Alternative, ChatSession, Message, MessageStatus, ShownAlternative},
    now,
    schema::{chat_sessions, message_alternatives, messages},
    with_conn,
};

impl Store {
    /// A message, if it is in one of `owner`'s chats.
    pub async fn owned_message(&self, owner: &str, id: &str) -> StoreResult<Option<Message>> {
        Ok(with_conn!(self, conn => messages::table
            .find(id)
            .inner_join(chat_sessions::table)
            .filter(chat_sessions::user_id.eq(owner))
            .select(Message::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// The alternatives of a turn that are not selected, by index.
    pub async fn other_alternatives(&self, message_id: &str) -> StoreResult<Vec<Alternative>> {
        Ok(with_conn!(self, conn => message_alternatives::table
            .filter(message_alternatives::message_id.eq(message_id))
            .select(Alternative::as_select())
            .order(message_alternatives::alternative_index.asc())
            .load(conn)
            .await?))
    }

    /// Puts the turn's selected alternative aside and makes `reply` (a new,
    /// streaming alternative, last of the turn) the one its row shows. With
    /// a `fence`, only while it holds (see [`Store::insert_exchange`]).
    pub async fn start_alternative(
        &self,
        current: &Message,
        reply: &Message,
        fence: Option<&Fence>,
    ) -> StoreResult<()> {
        let (parked, shown) = (current.to_alternative(), ShownAlternative::from(reply.to_alternative()));
        let count = reply.alternative_count;
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                diesel::insert_into(message_alternatives::table).values(&parked).execute(conn).await?;
                diesel::update(messages::table.find(&current.id))
                    .set((&shown, messages::alternative_count.eq(count)))
                    .execute(conn)
                    .await?;
                hold(fence, conn).await
            })
            .await)
    }

    /// Marks the turn's selected alternative as streaming again under a new
    /// stream, keeping its text: a continuation appends to it. With a
    /// `fence`, only while it holds (see [`Store::insert_exchange`]).
    pub async fn start_continuation(
        &self,
        id: &str,
        stream_id: &str,
        model: &str,
        fence: Option<&Fence>,
    ) -> StoreResult<()> {
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                diesel::update(messages::table.find(id))
                    .set((
                        messages::status.eq(MessageStatus::Streaming.as_str()),
                        messages::stream_id.eq(stream_id),
                        messages::model.eq(model),
                        messages::error.eq(None::<String>),
                        messages::finish_reason.eq(None::<String>),
                        messages::updated_at.eq(now()),
                    ))
                    .execute(conn)
                    .await?;
                hold(fence, conn).await
            })
            .await)
    }

    /// Shows alternative `index` in the turn's row, putting the one shown
    /// now aside. `None` when the turn has no such alternative.
    pub async fn select_alternative(&self, current: &Message, index: i32) -> StoreResult<Option<Message>> {
        let parked = current.to_alternative();
        let result = with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                // Writing first takes SQLite's lock before anything is read,
                // so the transaction cannot fail to upgrade from a reader.
                let key = (current.id.as_str(), index);
                let chosen = diesel::delete(message_alternatives::table.find(key))
                    .returning(Alternative::as_returning())
                    .get_result(conn)
                    .await?;
                diesel::insert_into(message_alternatives::table).values(&parked).execute(conn).await?;
                let row = diesel::update(messages::table.find(&current.id))
                    .set(&ShownAlternative::from(chosen))
                    .returning(Message::as_returning())
                    .get_result(conn)
                    .await?;
                Ok(row)
            })
            .await);
        match result {
            Ok(row) => Ok(Some(row)),
            Err(StoreError::Query(diesel::result::Error::NotFound)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Replaces the content the turn's row shows, and records when.
    pub async fn edit_message(&self, id: &str, content: &str) -> StoreResult<Message> {
        let at = now();
        Ok(with_conn!(self, conn => diesel::update(messages::table.find(id))
            .set((messages::content.eq(content), messages::edited_at.eq(at), messages::updated_at.eq(at)))
            .returning(Message::as_returning())
            .get_result(conn)
            .await?))
    }

    /// Deletes a message; its alternatives go with it (ON DELETE CASCADE).
    pub async fn delete_message(&self, id: &str) -> StoreResult<()> {
        with_conn!(self, conn => diesel::delete(messages::table.find(id)).execute(conn).await?);
        Ok(())
    }

    /// Deletes every message of the chat after `message_id`; returns their
    /// ids, oldest first.
    pub async fn rewind_chat(&self, chat_session_id: &str, message_id: &str) -> StoreResult<Vec<String>> {
        let later =
            messages::table.filter(messages::chat_session_id.eq(chat_session_id)).filter(messages::id.gt(message_id));
        let mut ids: Vec<String> =
            with_conn!(self, conn => diesel::delete(later).returning(messages::id).get_results(conn).await?);
        ids.sort_unstable();
        Ok(ids)
    }

    /// Inserts a forked chat with its copied history, in one transaction.
    pub async fn insert_fork(&self, chat: &ChatSession, history: &[Message]) -> StoreResult<()> {
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                diesel::insert_into(chat_sessions::table).values(chat).execute(conn).await?;
                // One row per statement: SQLite has no DEFAULT keyword for
                // multi-row inserts of optional columns.
                for row in history {
                    diesel::insert_into(messages::table).values(row).execute(conn).await?;
                }
                Ok(())
            })
            .await)
    }
}

/// The last statement of a reply's start on replicas: the transaction
/// commits only while the `fence` still holds, and rolls back as
/// [`StoreError::Fenced`] once another replica took the chat over.
async fn hold<Conn>(fence: Option<&Fence>, conn: &mut Conn) -> StoreResult<()>
where
    Conn: AsyncConnection,
    for<'a> super::fixed::HoldEpoch<'a>: diesel_async::methods::ExecuteDsl<Conn>,
{
    match fence {
        Some(fence) if fence.hold().execute(conn).await? == 0 => Err(StoreError::Fenced),
        _ => Ok(()),
    }
}
