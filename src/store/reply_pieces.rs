//! The text of running replies as checkpointed pieces: each checkpoint
//! stores what a reply appended since the last one (`reply_fragments`),
//! not its whole text again, so its cost follows the new text rather than
//! the reply's length. A reply's final write replaces its pieces with the
//! whole text; a reply read while still streaming is its stored content
//! followed by its pieces.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Store, StoreResult,
    fixed::UpsertPiece,
    hot_write,
    models::{Message, MessageStatus},
    now,
    schema::{messages, reply_fragments},
    with_conn,
};

/// Replies checkpointed in one background write.
const CHECKPOINT_CHUNK: usize = 64;

/// What a running reply appended from byte `from` of its text.
#[derive(Debug, Clone)]
pub struct ReplyPiece {
    pub message_id: String,
    pub from: usize,
    pub piece: String,
}

/// Appends `pieces` (in offset order) to `content`. A piece that starts
/// inside the text already there (a checkpoint retried after a commit
/// that was in doubt) adds only its new part; one that would leave a gap
/// ends the merge, so the text never has a hole.
pub(crate) fn append_pieces<'a>(content: &mut String, pieces: impl IntoIterator<Item = (i64, &'a str)>) {
    for (from, piece) in pieces {
        let Ok(from) = usize::try_from(from) else { return };
        let end = from + piece.len();
        if from > content.len() {
            return;
        }
        if end > content.len() {
            match piece.get(content.len() - from..) {
                Some(new) => content.push_str(new),
                None => return,
            }
        }
    }
}

impl Store {
    /// Stores the newest text of running replies, in small jobs one after
    /// another in the writer's background lane: a send waits behind one of
    /// them at most, and a pool gives the checkpointer one connection.
    pub async fn checkpoint_replies(&self, pieces: Vec<ReplyPiece>) -> StoreResult<()> {
        let mut pieces = pieces.into_iter().peekable();
        while pieces.peek().is_some() {
            let chunk: Vec<_> = pieces
                .by_ref()
                .take(CHECKPOINT_CHUNK)
                .map(|p| (p.message_id, i64::try_from(p.from).unwrap_or(i64::MAX), p.piece))
                .collect();
            hot_write!(background self, conn => {
                for (message_id, from, piece) in &chunk {
                    execute!(UpsertPiece { message_id, from: *from, piece }, conn);
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Completes the content of the streaming messages among `rows` with
    /// their checkpointed pieces; one query, and only when there are any.
    pub(crate) async fn fill_streaming(&self, rows: &mut [Message]) -> StoreResult<()> {
        let ids: Vec<String> =
            rows.iter().filter(|m| m.status() == MessageStatus::Streaming).map(|m| m.id.clone()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let pieces: Vec<(String, i64, String)> = with_conn!(self, conn => reply_fragments::table
            .filter(reply_fragments::message_id.eq_any(&ids))
            .select((reply_fragments::message_id, reply_fragments::byte_offset, reply_fragments::piece))
            .order((reply_fragments::message_id.asc(), reply_fragments::byte_offset.asc()))
            .load(conn)
            .await?);
        for row in rows.iter_mut().filter(|m| m.status() == MessageStatus::Streaming) {
            let own = pieces.iter().filter(|(id, ..)| *id == row.id).map(|(_, from, piece)| (*from, piece.as_str()));
            append_pieces(&mut row.content, own);
        }
        Ok(())
    }

    /// Marks replies left streaming by a previous run (a crash or a kill) as
    /// interrupted, with their text so far: the stored content and the
    /// pieces checkpointed since. Pieces left by replies that did end are
    /// dropped. Returns how many replies there were.
    pub async fn interrupt_orphaned_replies(&self) -> StoreResult<usize> {
        let streaming = MessageStatus::Streaming.as_str();
        let mut orphans: Vec<Message> = with_conn!(self, conn => messages::table
            .filter(messages::status.eq(streaming))
            .select(Message::as_select())
            .load(conn)
            .await?);
        self.fill_streaming(&mut orphans).await?;
        let texts: Vec<(String, String)> = orphans.into_iter().map(|m| (m.id, m.content)).collect();
        let updated_at = now();
        hot_write!(self, conn => {
            for (id, content) in &texts {
                let row = messages::table.find(id).filter(messages::status.eq(streaming));
                execute!(diesel::update(row).set(messages::content.eq(content)), conn);
            }
            execute!(diesel::delete(reply_fragments::table), conn);
            let interrupted = execute!(
                diesel::update(messages::table.filter(messages::status.eq(streaming))).set((
                    messages::status.eq(MessageStatus::Interrupted.as_str()),
                    messages::error.eq("the server stopped while this reply was being generated"),
                    messages::updated_at.eq(updated_at),
                )),
                conn
            );
            Ok(interrupted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::append_pieces;

    #[test]
    fn pieces_append_in_order_without_repeats_or_holes() {
        let mut text = "Once".to_owned();
        append_pieces(&mut text, [(4, " upon"), (9, " a time")]);
        assert_eq!(text, "Once upon a time");
        // A retried piece overlapping what is there adds only its new part.
        let mut text = "Once upon".to_owned();
        append_pieces(&mut text, [(4, " upon a"), (11, " time")]);
        assert_eq!(text, "Once upon a time");
        // A gap stops the merge rather than leave a hole.
        let mut text = "Once".to_owned();
        append_pieces(&mut text, [(6, "pon"), (9, " a time")]);
        assert_eq!(text, "Once");
        let mut text = String::new();
        append_pieces(&mut text, [(0, "é"), (2, "t")]);
        assert_eq!(text, "ét");
    }
}
