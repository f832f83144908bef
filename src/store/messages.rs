//! Messages: listing, the rows of a generation, and its outcome.

use std::ops::Bound;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Fence, Page, PageRequest, Store, StoreError, StoreResult,
    fixed::{FinishReply, TouchChat},
    hot_write,
    models::{Alternative, Message, MessageStatus, ReplyOutcome, Role, UsageRecord},
    now,
    schema::{message_alternatives, messages, reply_fragments, usage_records},
    with_conn,
};

impl Store {
    /// Oldest first.
    pub async fn list_messages(&self, chat_session_id: &str, page: &PageRequest) -> StoreResult<Page<Message>> {
        let mut rows = with_conn!(self, conn => {
            let mut query = messages::table
                .filter(messages::chat_session_id.eq(chat_session_id))
                .select(Message::as_select())
                .order(messages::id.asc())
                .into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(messages::id.gt(after.clone()));
            }
            query.limit(page.fetch_limit()).load(conn).await?
        });
        self.fill_streaming(&mut rows).await?;
        Ok(page.finish(rows))
    }

    /// The whole conversation, oldest first, for building a prompt.
    pub async fn chat_history(&self, chat_session_id: &str) -> StoreResult<Vec<Message>> {
        let mut rows = with_conn!(self, conn => messages::table
            .filter(messages::chat_session_id.eq(chat_session_id))
            .select(Message::as_select())
            .order(messages::id.asc())
            .load(conn)
            .await?);
        self.fill_streaming(&mut rows).await?;
        Ok(rows)
    }

    /// The chat's replies whose streams are from `since` and before
    /// `before` (exclusive), by stream: the replies a watcher missed.
    pub async fn replies_between(
        &self,
        chat_session_id: &str,
        since: Bound<&str>,
        before: Option<&str>,
    ) -> StoreResult<Vec<Message>> {
        let mut rows = with_conn!(self, conn => {
            let mut query = messages::table
                .filter(messages::chat_session_id.eq(chat_session_id))
                .filter(messages::stream_id.is_not_null())
                .select(Message::as_select())
                .order(messages::stream_id.asc())
                .into_boxed();
            query = match since {
                Bound::Included(id) => query.filter(messages::stream_id.ge(id.to_owned())),
                Bound::Excluded(id) => query.filter(messages::stream_id.gt(id.to_owned())),
                Bound::Unbounded => query,
            };
            if let Some(before) = before {
                query = query.filter(messages::stream_id.lt(before.to_owned()));
            }
            query.load(conn).await?
        });
        self.fill_streaming(&mut rows).await?;
        Ok(rows)
    }

    /// The ids of the chat's user messages up to `until`, oldest first.
    pub async fn user_message_ids(&self, chat_session_id: &str, until: &str) -> StoreResult<Vec<String>> {
        Ok(with_conn!(self, conn => messages::table
            .filter(messages::chat_session_id.eq(chat_session_id))
            .filter(messages::role.eq(Role::User.as_str()))
            .filter(messages::id.le(until))
            .select(messages::id)
            .order(messages::id.asc())
            .load(conn)
            .await?))
    }

    /// The reply a stream produced, if it is stored in this chat: the
    /// message as it shows that stream's alternative, selected or not.
    pub async fn message_by_stream(&self, chat_session_id: &str, stream_id: &str) -> StoreResult<Option<Message>> {
        let (shown, aside) = with_conn!(self, conn => {
            let shown = messages::table
                .filter(messages::stream_id.eq(stream_id))
                .filter(messages::chat_session_id.eq(chat_session_id))
                .select(Message::as_select())
                .get_result(conn)
                .await
                .optional()?;
            let aside = if shown.is_some() {
                None
            } else {
                message_alternatives::table
                    .inner_join(messages::table)
                    .filter(message_alternatives::stream_id.eq(stream_id))
                    .filter(messages::chat_session_id.eq(chat_session_id))
                    .select((Message::as_select(), Alternative::as_select()))
                    .get_result(conn)
                    .await
                    .optional()?
            };
            (shown, aside)
        });
        let mut found = shown.or_else(|| aside.map(|(turn, alternative)| turn.showing(alternative)));
        if let Some(message) = &mut found {
            self.fill_streaming(std::slice::from_mut(message)).await?;
        }
        Ok(found)
    }

    /// Stores the user's message (if any) and the empty, streaming reply
    /// together, so neither exists without the other.
    ///
    /// With a `fence` (replicas), the rows land only while the chat's reply
    /// epoch is still the fence's: otherwise another replica took the chat
    /// over while this start was slow, and this is [`StoreError::Fenced`]
    /// with nothing written.
    pub async fn insert_exchange(
        &self,
        user: Option<&Message>,
        reply: &Message,
        fence: Option<&Fence>,
    ) -> StoreResult<()> {
        let rows: Vec<Message> = user.into_iter().chain([reply]).cloned().collect();
        let (chat_id, at, fence) = (reply.chat_session_id.clone(), reply.created_at, fence.cloned());
        hot_write!(self, conn => {
            // One row per statement: SQLite has no DEFAULT keyword for
            // multi-row inserts of optional columns.
            for row in &rows {
                execute!(diesel::insert_into(messages::table).values(row), conn);
            }
            // A message is activity: chats are listed by it.
            execute!(TouchChat { chat_session_id: &chat_id, at: &at }, conn);
            // Last, so the epoch's row is locked only for the commit.
            if let Some(fence) = &fence
                && execute!(fence.hold(), conn) == 0
            {
                // Rolls the write back; `?` converts the error to each
                // backend's body error type.
                Err::<(), _>(diesel::result::Error::RollbackTransaction)?;
            }
            Ok(())
        })
        .map_err(StoreError::fenced_if_rolled_back)
    }

    /// Writes how a reply ended, with its usage record, in one transaction,
    /// and returns the stored row.
    ///
    /// With a `fence` (replicas), the write lands only while the chat's
    /// reply epoch is still the fence's and the reply is still streaming:
    /// otherwise another replica took the chat over, and this is
    /// [`StoreError::Fenced`] with nothing written.
    pub async fn finish_reply(
        &self,
        id: &str,
        outcome: &ReplyOutcome,
        usage: &UsageRecord,
        fence: Option<&Fence>,
    ) -> StoreResult<Message> {
        let (id, outcome, usage, fence) = (id.to_owned(), outcome.clone(), usage.clone(), fence.cloned());
        let finished = hot_write!(self, conn => {
            if let Some(fence) = &fence {
                // The status filter makes a takeover committed while this
                // waited for the row count too (see [`Store::sweep_reply`]).
                let streaming = messages::table.find(&id).filter(messages::status.eq(MessageStatus::Streaming.as_str()));
                if execute!(fence.hold(), conn) == 0
                    || execute!(diesel::update(streaming).set(messages::updated_at.eq(now())), conn) == 0
                {
                    return Ok(None);
                }
            }
            execute!(FinishReply::new(&id, &outcome), conn);
            let message = get_result!(messages::table.find(&id).select(Message::as_select()), conn);
            // The whole text is in the row now.
            execute!(diesel::delete(reply_fragments::table.filter(reply_fragments::message_id.eq(&id))), conn);
            execute!(diesel::insert_into(usage_records::table).values(&usage), conn);
            Ok(Some(message))
        })?;
        finished.ok_or(StoreError::Fenced)
    }
}
