//! The fencing epoch of a chat's replies, for replicas sharing one
//! database. Every reply a replica starts takes the chat's next epoch, and
//! its rows and its final write land only while the epoch is still its own
//! ([`Store::insert_exchange`], [`Store::finish_reply`]); a replica taking
//! over a dead one's reply ([`Store::sweep_reply`]) takes the next epoch
//! first. So a replica that lost
//! its hold on a chat (paused past its lease, cut off) cannot overwrite what
//! another stored. The epoch lives in the database, not in Redis, so it
//! survives a Redis restart.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Store, StoreError, StoreResult,
    fixed::HoldEpoch,
    hot_write,
    models::{Message, MessageStatus},
    now,
    schema::{messages, reply_epochs, reply_fragments},
    with_conn,
};

/// A reply's claim on its chat: the chat and the epoch it started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub chat_session_id: String,
    pub epoch: i64,
}

impl Fence {
    /// The statement that holds this fence inside a write, or changes
    /// nothing (zero rows) when another replica took the chat over.
    pub(super) fn hold(&self) -> HoldEpoch<'_> {
        HoldEpoch { chat_session_id: &self.chat_session_id, epoch: self.epoch }
    }
}

impl StoreError {
    /// A write whose fence no longer held rolls back with diesel's
    /// rollback error (the one error both backends' write bodies share):
    /// that is [`StoreError::Fenced`].
    pub(super) fn fenced_if_rolled_back(self) -> Self {
        match self {
            Self::Query(diesel::result::Error::RollbackTransaction) => Self::Fenced,
            other => other,
        }
    }
}

impl Store {
    /// Takes the chat's next reply epoch.
    pub async fn next_reply_epoch(&self, chat_session_id: &str) -> StoreResult<Fence> {
        let chat_session_id = chat_session_id.to_owned();
        let epoch = {
            let chat_session_id = chat_session_id.clone();
            hot_write!(self, conn => {
                let epoch: i64 = get_result!(
                    diesel::insert_into(reply_epochs::table)
                        .values((reply_epochs::chat_session_id.eq(&chat_session_id), reply_epochs::epoch.eq(1_i64)))
                        .on_conflict(reply_epochs::chat_session_id)
                        .do_update()
                        .set(reply_epochs::epoch.eq(reply_epochs::epoch + 1_i64))
                        .returning(reply_epochs::epoch),
                    conn
                );
                Ok(epoch)
            })?
        };
        Ok(Fence { chat_session_id, epoch })
    }

    /// Takes over a reply whose replica died: takes the chat's next epoch
    /// (fencing the old owner out) and, if the reply is still streaming,
    /// stores it as interrupted with the longer of `shared_text` (what the
    /// replicas saw streamed) and what its checkpoints hold. Returns the
    /// message as it now is (the owner may have stored it first), or `None`
    /// when it does not exist (the owner stopped before storing it).
    ///
    /// The epoch comes first: once it is committed the old owner can store
    /// neither the reply's rows (a start slower than the lease) nor its
    /// end, so a message not found here never appears later.
    pub async fn sweep_reply(
        &self,
        chat_session_id: &str,
        message_id: &str,
        shared_text: &str,
    ) -> StoreResult<Option<Message>> {
        self.next_reply_epoch(chat_session_id).await?;
        let found: Option<Message> = with_conn!(self, conn => messages::table
            .find(message_id)
            .select(Message::as_select())
            .get_result(conn)
            .await
            .optional()?);
        let Some(mut message) = found else { return Ok(None) };
        self.fill_streaming(std::slice::from_mut(&mut message)).await?;
        if message.status() != MessageStatus::Streaming {
            return Ok(Some(message));
        }
        let text = if shared_text.len() > message.content.len() { shared_text.to_owned() } else { message.content };
        let message_id = message_id.to_owned();
        hot_write!(self, conn => {
            let streaming = messages::table.find(&message_id).filter(messages::status.eq(MessageStatus::Streaming.as_str()));
            execute!(
                diesel::update(streaming).set((
                    messages::content.eq(&text),
                    messages::status.eq(MessageStatus::Interrupted.as_str()),
                    messages::error.eq(SWEPT),
                    messages::updated_at.eq(now()),
                )),
                conn
            );
            execute!(diesel::delete(reply_fragments::table.filter(reply_fragments::message_id.eq(&message_id))), conn);
            let message = get_result!(messages::table.find(&message_id).select(Message::as_select()), conn);
            Ok(Some(message))
        })
    }
}

/// Why a swept reply ended.
pub const SWEPT: &str = "the server generating this reply stopped before it finished";
