//! Messages: listing, the rows of a generation, and its outcome.

use std::ops::Bound;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Page, PageRequest, Store, StoreResult, hot_write,
    models::{Alternative, Message, MessageStatus, ReplyOutcome, Role, UsageRecord},
    now,
    schema::{chat_sessions, message_alternatives, messages, usage_records},
    with_conn,
};

/// Replies checkpointed in one background write.
const CHECKPOINT_CHUNK: usize = 64;

impl Store {
    /// Oldest first.
    pub async fn list_messages(&self, chat_session_id: &str, page: &PageRequest) -> StoreResult<Page<Message>> {
        let rows = with_conn!(self, conn => {
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
        Ok(page.finish(rows))
    }

    /// The whole conversation, oldest first, for building a prompt.
    pub async fn chat_history(&self, chat_session_id: &str) -> StoreResult<Vec<Message>> {
        Ok(with_conn!(self, conn => messages::table
            .filter(messages::chat_session_id.eq(chat_session_id))
            .select(Message::as_select())
            .order(messages::id.asc())
            .load(conn)
            .await?))
    }

    /// The history a prompt is built from, oldest first. Only the newest
    /// message is read whole (a regeneration or continuation changes it);
    /// the others carry what a prompt uses (id, role, status, content), with
    /// their other fields empty. Reading every column of a long chat, its
    /// timestamps above all, was most of the cost of a send.
    pub async fn prompt_history(&self, chat_session_id: &str) -> StoreResult<Vec<Message>> {
        let (light, newest) = with_conn!(self, conn => {
            let light: Vec<(String, String, String, String)> = messages::table
                .filter(messages::chat_session_id.eq(chat_session_id))
                .select((messages::id, messages::role, messages::content, messages::status))
                .order(messages::id.asc())
                .load(conn)
                .await?;
            let newest = match light.last() {
                Some((id, ..)) => messages::table.find(id).select(Message::as_select()).first(conn).await.optional()?,
                None => None,
            };
            (light, newest)
        });
        let keep = light.len().saturating_sub(usize::from(newest.is_some()));
        let mut history: Vec<Message> = light
            .into_iter()
            .take(keep)
            .map(|(id, role, content, status)| Message::for_prompt(id, chat_session_id, role, content, status))
            .collect();
        history.extend(newest);
        Ok(history)
    }

    /// The chat's replies whose streams are from `since` and before
    /// `before` (exclusive), by stream: the replies a watcher missed.
    pub async fn replies_between(
        &self,
        chat_session_id: &str,
        since: Bound<&str>,
        before: Option<&str>,
    ) -> StoreResult<Vec<Message>> {
        Ok(with_conn!(self, conn => {
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
        }))
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
                .first(conn)
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
                    .first(conn)
                    .await
                    .optional()?
            };
            (shown, aside)
        });
        Ok(shown.or_else(|| aside.map(|(turn, alternative)| turn.showing(alternative))))
    }

    /// Stores the user's message (if any) and the empty, streaming reply
    /// together, so neither exists without the other.
    pub async fn insert_exchange(&self, user: Option<&Message>, reply: &Message) -> StoreResult<()> {
        let rows: Vec<Message> = user.into_iter().chain([reply]).cloned().collect();
        let (chat_id, at) = (reply.chat_session_id.clone(), reply.created_at);
        hot_write!(self, conn => {
            // One row per statement: SQLite has no DEFAULT keyword for
            // multi-row inserts of optional columns.
            for row in &rows {
                execute!(diesel::insert_into(messages::table).values(row), conn);
            }
            // A message is activity: chats are listed by it.
            execute!(diesel::update(chat_sessions::table.find(&chat_id)).set(chat_sessions::updated_at.eq(at)), conn);
            Ok(())
        })
    }

    /// Writes how a reply ended, with its usage record, in one transaction,
    /// and returns the stored row.
    pub async fn finish_reply(&self, id: &str, outcome: &ReplyOutcome, usage: &UsageRecord) -> StoreResult<Message> {
        let (id, outcome, usage) = (id.to_owned(), outcome.clone(), usage.clone());
        hot_write!(self, conn => {
            let update = diesel::update(messages::table.find(&id)).set(&outcome).returning(Message::as_returning());
            let message = get_result!(update, conn);
            execute!(diesel::insert_into(usage_records::table).values(&usage), conn);
            Ok(message)
        })
    }

    /// Saves the text so far of running replies (id, text), in one
    /// transaction. Rows no longer streaming are left alone.
    pub async fn checkpoint_replies(&self, replies: Vec<(String, String)>) -> StoreResult<()> {
        let updated_at = now();
        let streaming = MessageStatus::Streaming.as_str();
        // Small jobs, one after another, in the background lane: a send waits
        // behind one of them at most, not behind the checkpoint of every
        // running reply, and a pool gives the checkpointer one connection.
        let mut replies = replies.into_iter().peekable();
        while replies.peek().is_some() {
            let chunk: Vec<_> = replies.by_ref().take(CHECKPOINT_CHUNK).collect();
            hot_write!(background self, conn => {
                for (id, text) in &chunk {
                    let row = messages::table.find(id).filter(messages::status.eq(streaming));
                    execute!(diesel::update(row).set((messages::content.eq(text), messages::updated_at.eq(updated_at))), conn);
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Marks replies left streaming by a previous run (a crash or a kill) as
    /// interrupted; their text so far stays. Returns how many there were.
    pub async fn interrupt_orphaned_replies(&self) -> StoreResult<usize> {
        Ok(with_conn!(self, conn => diesel::update(
            messages::table.filter(messages::status.eq(MessageStatus::Streaming.as_str())),
        )
        .set((
            messages::status.eq(MessageStatus::Interrupted.as_str()),
            messages::error.eq("the server stopped while this reply was being generated"),
            messages::updated_at.eq(now()),
        ))
        .execute(conn)
        .await?))
    }
}
