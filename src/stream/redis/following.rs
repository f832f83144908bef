//! Following other replicas' replies from here: finding a chat's running
//! reply, making the local copy (mirror) of a reply that the reader then
//! feeds, and counting who follows which chat, for the idle timers.

use std::sync::Arc;

use redis::AsyncCommands;

use super::{RedisShared, SharedInfo, holder_stream, millis, now_ms, reader, scripts, unavailable};
use crate::{error::Result, stream::registry::Generation};

impl RedisShared {
    /// The chat's running reply, wherever it runs, as a local generation.
    pub async fn live(&self, chat_id: &str) -> Result<Option<Arc<Generation>>> {
        if let Some(live) = self.registry.live(chat_id) {
            return Ok(Some(live));
        }
        let holder: Option<String> = self.conn().get(scripts::lease(chat_id)).await.map_err(|err| unavailable(&err))?;
        match holder.as_deref().and_then(holder_stream) {
            Some(stream_id) => self.mirror(stream_id, None).await,
            None => Ok(None),
        }
    }

    /// A local client follows the chat: other replicas count it (for their
    /// idle timers), and the chat's running reply is mirrored here.
    /// Without Redis, a chat whose running reply is this replica's own can
    /// still be followed; others cannot (a reply elsewhere would be missed).
    pub async fn follow_chat(&self, chat_id: &str) -> Result<()> {
        let count = self.registry.chat(chat_id).map_or(1, |entry| entry.watcher_count().max(1));
        let followed = match self.advertise_watchers(&[(chat_id.to_owned(), count)]).await {
            Ok(()) => self.live(chat_id).await.map(drop),
            Err(err) => Err(unavailable(&err)),
        };
        match followed {
            Err(_) if self.registry.live(chat_id).is_some() => Ok(()),
            followed => followed,
        }
    }

    /// Records how many local clients follow each chat, for a few leases.
    pub(super) async fn advertise_watchers(&self, chats: &[(String, usize)]) -> redis::RedisResult<()> {
        if chats.is_empty() {
            return Ok(());
        }
        let until = now_ms() + 3 * millis(self.lease);
        let mut pipe = redis::pipe();
        for (chat_id, count) in chats {
            let key = scripts::watchers(chat_id);
            pipe.hset(&key, &self.replica, format!("{count}|{until}")).ignore();
            pipe.pexpire(&key, i64::try_from(3 * millis(self.lease)).unwrap_or(i64::MAX)).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// Clients following the chat on other replicas.
    pub async fn watchers_elsewhere(&self, chat_id: &str) -> Result<usize> {
        let all: std::collections::HashMap<String, String> =
            self.conn().hgetall(scripts::watchers(chat_id)).await.map_err(|err| unavailable(&err))?;
        let now = now_ms();
        Ok(all
            .iter()
            .filter(|(replica, _)| **replica != self.replica)
            .filter_map(|(_, value)| value.split_once('|'))
            .filter(|(_, until)| until.parse::<u64>().is_ok_and(|until| until > now))
            .filter_map(|(count, _)| count.parse::<usize>().ok())
            .sum())
    }

    /// Another replica's reply (or one ended lately), as a local copy fed
    /// from its Redis stream; `None` when Redis does not know it.
    pub async fn mirror(&self, stream_id: &str, prev_stream: Option<&str>) -> Result<Option<Arc<Generation>>> {
        if let Some(generation) = self.registry.stream(stream_id) {
            return Ok(Some(generation));
        }
        let _one_at_a_time = self.mirroring.lock().await;
        if let Some(generation) = self.registry.stream(stream_id) {
            return Ok(Some(generation));
        }
        let mut conn = self.conn();
        let (info, entries): (Option<String>, redis::streams::StreamRangeReply) = redis::pipe()
            .get(scripts::reply_info(stream_id))
            .xrange_all(scripts::reply(stream_id))
            .query_async(&mut conn)
            .await
            .map_err(|err| unavailable(&err))?;
        let Some(shared) = info.and_then(|json| serde_json::from_str::<SharedInfo>(&json).ok()) else {
            return Ok(None);
        };
        let reader::Replayed { text, outcome, last_id } = reader::replay(&entries.ids);
        let ended = outcome.is_some();
        let generation = self.registry.adopt(shared.info, text, outcome, prev_stream);
        if ended {
            self.registry.retire(&generation);
        } else {
            let _ = self.reader.send(reader::Follow { generation: Arc::clone(&generation), last_id });
        }
        Ok(Some(generation))
    }
}
