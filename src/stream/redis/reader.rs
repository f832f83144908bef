//! The one task per replica that tails the Redis streams of the replies
//! local clients follow (mirrors of other replicas' replies) and feeds
//! them into the local copies, which the ordinary followers read: one
//! blocking `XREAD` over every followed stream, however many watchers.
//!
//! The read blocks on a connection of its own, without a response timeout
//! (the shared connection's would cut it short and stall what queued
//! behind it). A new stream to follow interrupts the read with
//! `CLIENT UNBLOCK`, so it is read at once. When Redis is lost, every copy
//! is marked lost: its watchers end at their offset, to resume later.

use std::{collections::HashMap, sync::Arc, sync::Weak, time::Duration};

use redis::{
    AsyncConnectionConfig,
    aio::MultiplexedConnection,
    streams::{StreamId, StreamReadOptions, StreamReadReply},
};
use tokio::sync::mpsc;

use super::{RedisShared, scripts};
use crate::stream::registry::{Generation, Outcome};

/// Longest single block; a new stream to follow cuts it short anyway.
const BLOCK: Duration = Duration::from_secs(10);
/// Entries read per stream per round.
const COUNT: usize = 512;

/// A copy to feed from its stream, after entry `last_id`.
pub struct Follow {
    pub generation: Arc<Generation>,
    pub last_id: String,
}

/// One entry of a reply stream.
pub enum Entry {
    Text { offset: usize, text: String },
    Ended(Outcome),
}

/// Reads an entry: `<offset>-1` with `t` (text) or `o` (outcome).
pub fn entry_of(entry: &StreamId) -> Option<Entry> {
    let offset = entry.id.split('-').next()?.parse::<usize>().ok()?;
    if let Some(text) = entry.get::<String>("t") {
        return Some(Entry::Text { offset, text });
    }
    let outcome = entry.get::<String>("o")?;
    serde_json::from_str(&outcome).ok().map(Entry::Ended)
}

/// A reply stream read whole: its text, its outcome if it ended, and the
/// id of its last entry (to go on reading after).
pub struct Replayed {
    pub text: String,
    pub outcome: Option<Outcome>,
    pub last_id: String,
}

/// Puts a reply stream's entries back together.
pub fn replay(entries: &[StreamId]) -> Replayed {
    let mut replayed = Replayed { text: String::new(), outcome: None, last_id: "0-0".to_owned() };
    for entry in entries {
        match entry_of(entry) {
            Some(Entry::Text { offset, text }) if offset == replayed.text.len() => replayed.text.push_str(&text),
            Some(Entry::Ended(ended)) => replayed.outcome = Some(ended),
            _ => {}
        }
        replayed.last_id.clone_from(&entry.id);
    }
    replayed
}

struct Followed {
    generation: Arc<Generation>,
    last_id: String,
}

pub async fn run(shared: Weak<RedisShared>, mut follows: mpsc::UnboundedReceiver<Follow>) {
    let mut followed: HashMap<String, Followed> = HashMap::new();
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let (client, stop, mut commands) = (strong.client.clone(), strong.stop.clone(), strong.conn());
        drop(strong);
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let connected = async {
            let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
            let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut conn).await?;
            Ok::<_, redis::RedisError>((conn, id))
        };
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            connected = connected => connected,
        };
        let (mut conn, client_id) = match connected {
            Ok(connected) => connected,
            Err(err) => {
                tracing::warn!(error = %err, "the stream reader cannot reach Redis; retrying");
                lose_all(&shared, &mut followed, &mut follows);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                continue;
            }
        };
        loop {
            while let Ok(follow) = follows.try_recv() {
                add(&mut followed, follow);
            }
            if followed.is_empty() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    follow = follows.recv() => match follow {
                        Some(follow) => add(&mut followed, follow),
                        None => return,
                    },
                }
                continue;
            }
            match read(&mut conn, &mut commands, client_id, &followed, &mut follows, &stop).await {
                Ok(Some((reply, arrived))) => {
                    apply(&shared, &mut followed, reply);
                    for follow in arrived {
                        add(&mut followed, follow);
                    }
                }
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "the stream reader lost Redis; watchers of other replicas' replies end");
                    lose_all(&shared, &mut followed, &mut follows);
                    break;
                }
            }
        }
    }
}

fn add(followed: &mut HashMap<String, Followed>, follow: Follow) {
    let key = scripts::reply(&follow.generation.info.stream_id);
    followed.entry(key).or_insert(Followed { generation: follow.generation, last_id: follow.last_id });
}

/// One blocking read over every followed stream; follows that arrive
/// meanwhile unblock it and are returned with what it read. `None` when
/// the replica stops.
async fn read(
    conn: &mut MultiplexedConnection,
    commands: &mut redis::aio::ConnectionManager,
    client_id: i64,
    followed: &HashMap<String, Followed>,
    follows: &mut mpsc::UnboundedReceiver<Follow>,
    stop: &tokio_util::sync::CancellationToken,
) -> redis::RedisResult<Option<(StreamReadReply, Vec<Follow>)>> {
    let keys: Vec<&str> = followed.keys().map(String::as_str).collect();
    let ids: Vec<&str> = followed.values().map(|f| f.last_id.as_str()).collect();
    let block = usize::try_from(BLOCK.as_millis()).unwrap_or(usize::MAX);
    let options = StreamReadOptions::default().block(block).count(COUNT);
    let reading = redis::AsyncCommands::xread_options::<_, _, Option<StreamReadReply>>(conn, &keys, &ids, &options);
    tokio::pin!(reading);
    let mut arrived = Vec::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(None),
            read = &mut reading => return read.map(|reply| Some((reply.unwrap_or_default(), arrived))),
            follow = follows.recv(), if arrived.is_empty() => {
                let Some(follow) = follow else { return Ok(None) };
                arrived.push(follow);
                // Cut the block short; the read returns what it has.
                let _: redis::RedisResult<i64> =
                    redis::cmd("CLIENT").arg("UNBLOCK").arg(client_id).query_async(commands).await;
            }
        }
    }
}

/// Feeds what was read into the copies; an ended reply stops being read.
fn apply(shared: &Weak<RedisShared>, followed: &mut HashMap<String, Followed>, reply: StreamReadReply) {
    let Some(shared) = shared.upgrade() else { return };
    for stream in reply.keys {
        let Some(follow) = followed.get_mut(&stream.key) else { continue };
        let mut ended = false;
        for entry in &stream.ids {
            follow.last_id.clone_from(&entry.id);
            match entry_of(entry) {
                Some(Entry::Text { offset, text }) => {
                    let have = follow.generation.text_len();
                    // Text already here (read when the copy was made) is
                    // skipped; entries never overlap otherwise.
                    if offset == have {
                        follow.generation.push_text(&text);
                    } else if offset < have && offset + text.len() > have {
                        follow.generation.push_text(text.get(have - offset..).unwrap_or_default());
                    }
                }
                Some(Entry::Ended(outcome)) => {
                    follow.generation.finish(outcome);
                    ended = true;
                }
                None => {}
            }
        }
        if ended && let Some(done) = followed.remove(&stream.key) {
            shared.registry.retire(&done.generation);
        }
    }
}

/// Redis is gone: every copy's watchers end where they are, and the copies
/// are forgotten, to be made again from Redis when a client resumes.
fn lose_all(
    shared: &Weak<RedisShared>,
    followed: &mut HashMap<String, Followed>,
    follows: &mut mpsc::UnboundedReceiver<Follow>,
) {
    while let Ok(follow) = follows.try_recv() {
        add(followed, follow);
    }
    let Some(shared) = shared.upgrade() else { return };
    for (_, lost) in followed.drain() {
        lost.generation.lose_source();
        shared.registry.forget(&lost.generation.info.stream_id);
    }
}
