//! The registry shared by replicas through Redis: what [`super::shared`]
//! does when `ROLEPLAY_REDIS_URL` is set.
//!
//! - **The chat's lock** is a lease (`SET NX PX`, taken in [`claims`] with
//!   the send limits), renewed by this replica's [`keeper`]; the database's
//!   reply epoch fences out a replica that lost it (see
//!   [`crate::store::Fence`]).
//! - **A reply's text** is a Redis stream whose entry ids are byte offsets.
//!   This replica's [`writer`] appends what its replies streamed, batched,
//!   so the token loop never waits on Redis; its [`reader`] tails the
//!   streams of other replicas' replies that local clients follow, into
//!   local copies (mirrors, made in [`following`]) that the ordinary
//!   followers read.
//! - **Events** (a reply started, a cancel, a history change) go over one
//!   pub/sub channel ([`events`]).
//! - **A dead replica's replies** are ended by any other's sweep
//!   ([`keeper`]) once their lease lapsed.

mod claims;
mod events;
mod following;
mod keeper;
mod reader;
mod scripts;
mod writer;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use dashmap::DashMap;
use redis::{
    AsyncCommands, Client, RedisError, ScriptInvocation,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    limits::LimitOptions,
    store::Store,
    stream::registry::{ChatChange, Generation, Outcome, Registry, StreamInfo},
};

pub use scripts::LIVE;

/// How long an ended reply stays readable from Redis (then from the
/// database), like the registry's resume grace.
const KEEP_ENDED: Duration = Duration::from_secs(120);
/// Answers slower than this count as Redis being unreachable. Blocking
/// reads use a connection of their own, without it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why sharing could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("ROLEPLAY_REDIS_URL is not a Redis URL: {0}")]
    Url(RedisError),
    #[error("Redis at ROLEPLAY_REDIS_URL cannot be reached: {0}")]
    Unreachable(RedisError),
}

/// The Lua scripts, loaded once (and again after Redis lost them).
struct Scripts {
    claim: redis::Script,
    renew: redis::Script,
    append: redis::Script,
    finish: redis::Script,
    sweep_claim: redis::Script,
    release: redis::Script,
    hold_for_change: redis::Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            claim: scripts::claim(),
            renew: scripts::renew(),
            append: scripts::append(),
            finish: scripts::finish(),
            sweep_claim: scripts::sweep_claim(),
            release: scripts::release(),
            hold_for_change: scripts::hold_for_change(),
        }
    }

    /// Loads every script, so pipelines can call them by hash.
    async fn load(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        for script in [
            &self.claim,
            &self.renew,
            &self.append,
            &self.finish,
            &self.sweep_claim,
            &self.release,
            &self.hold_for_change,
        ] {
            script.prepare_invoke().load_async(conn).await?;
        }
        Ok(())
    }
}

/// A reply this replica runs (from its claim on), as the writer and the
/// keeper need it. The keeper renews its lease from the claim on, however
/// long the start takes.
struct Held {
    chat_id: String,
    user_id: String,
    /// The lease's value: `<replica>|<stream>|<user>`.
    holder: String,
    /// Once published.
    generation: Option<Arc<Generation>>,
    /// The reply's [`SharedInfo`] as stored (once described), to store
    /// again if Redis lost it.
    info_json: Option<String>,
}

/// What other replicas need to know of a reply to follow or sweep it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SharedInfo {
    info: StreamInfo,
    user_id: String,
}

/// A running reply's hold on its chat, from [`RedisShared::claim`].
#[derive(Debug)]
pub struct Claim {
    pub holder: String,
}

pub struct RedisShared {
    replica: String,
    conn: ConnectionManager,
    client: Client,
    registry: Registry,
    store: Store,
    lease: Duration,
    limits: LimitOptions,
    scripts: Scripts,
    /// Replies this replica runs, by stream id.
    held: DashMap<String, Held>,
    writer: mpsc::UnboundedSender<writer::Job>,
    reader: mpsc::UnboundedSender<reader::Follow>,
    /// One mirror made at a time, so two watchers never make two copies.
    mirroring: tokio::sync::Mutex<()>,
    stop: CancellationToken,
}

fn unavailable(err: &RedisError) -> Error {
    tracing::warn!(error = %err, "Redis request failed");
    Error::SharedRegistryUnavailable
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The stream id a lease's holder names.
fn holder_stream(holder: &str) -> Option<&str> {
    holder.split('|').nth(1)
}

fn live_member(chat_id: &str, stream_id: &str) -> String {
    format!("{chat_id}|{stream_id}")
}

impl RedisShared {
    /// Connects, loads the scripts and starts this replica's writer,
    /// reader, event listener and keeper (they stop with `stop`).
    pub async fn connect(
        url: &str,
        registry: Registry,
        store: Store,
        lease: Duration,
        limits: LimitOptions,
        stop: CancellationToken,
    ) -> std::result::Result<Arc<Self>, ConnectError> {
        let client = Client::open(url).map_err(ConnectError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let mut conn =
            ConnectionManager::new_with_config(client.clone(), config).await.map_err(ConnectError::Unreachable)?;
        let scripts = Scripts::new();
        scripts.load(&mut conn).await.map_err(ConnectError::Unreachable)?;
        let (writer, writes) = mpsc::unbounded_channel();
        let (reader, follows) = mpsc::unbounded_channel();
        let shared = Arc::new(Self {
            replica: uuid::Uuid::now_v7().simple().to_string(),
            conn,
            client,
            registry,
            store,
            lease,
            limits,
            scripts,
            held: DashMap::new(),
            writer,
            reader,
            mirroring: tokio::sync::Mutex::new(()),
            stop,
        });
        tokio::spawn(writer::run(Arc::downgrade(&shared), writes));
        tokio::spawn(reader::run(Arc::downgrade(&shared), follows));
        tokio::spawn(events::listen(Arc::downgrade(&shared)));
        tokio::spawn(keeper::run(Arc::downgrade(&shared)));
        tracing::info!(replica = %shared.replica, lease_ms = millis(lease), "sharing the registry through Redis");
        Ok(shared)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs a pipeline that calls scripts by hash; when Redis lost them (it
    /// restarted), loads them again and runs it once more.
    async fn run_scripts<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> redis::RedisResult<T> {
        let mut conn = self.conn();
        match pipe.query_async(&mut conn).await {
            Err(err) if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.scripts.load(&mut conn).await?;
                pipe.query_async(&mut conn).await
            }
            answer => answer,
        }
    }

    /// A call of the append script: `text` at byte `from` of the reply.
    fn append_call(
        &self,
        stream_id: &str,
        chat_id: &str,
        holder: &str,
        from: usize,
        text: &str,
    ) -> ScriptInvocation<'_> {
        let mut call = self.scripts.append.prepare_invoke();
        call.key(scripts::reply(stream_id))
            .key(scripts::lease(chat_id))
            .key(scripts::reply_end(stream_id))
            .arg(holder)
            .arg(from)
            .arg(text)
            .arg(millis(self.lease));
        call
    }

    /// A call of the finish script: the reply ends at `length` bytes with
    /// `outcome` (JSON), and its chat is freed; `holding` is the chat, the
    /// user and the lease's holder.
    fn finish_call(
        &self,
        stream_id: &str,
        holding: (&str, &str, &str),
        length: usize,
        outcome: &str,
    ) -> ScriptInvocation<'_> {
        let (chat_id, user_id, holder) = holding;
        let mut call = self.scripts.finish.prepare_invoke();
        call.key(scripts::reply(stream_id))
            .key(scripts::lease(chat_id))
            .key(scripts::reply_end(stream_id))
            .key(scripts::LIVE)
            .key(scripts::running(user_id))
            .key(scripts::reply_info(stream_id))
            .arg(holder)
            .arg(length)
            .arg(outcome)
            .arg(millis(KEEP_ENDED))
            .arg(live_member(chat_id, stream_id))
            .arg(stream_id)
            .arg(millis(self.lease));
        call
    }

    /// Stores a claimed reply's details, before its message is stored: a
    /// sweep that finds the reply's replica dead must know which message to
    /// end.
    pub async fn describe(&self, info: &StreamInfo, user_id: &str) -> Result<()> {
        let shared = SharedInfo { info: info.clone(), user_id: user_id.to_owned() };
        let info_json = serde_json::to_string(&shared).map_err(|_| Error::SharedRegistryUnavailable)?;
        if let Some(mut held) = self.held.get_mut(&info.stream_id) {
            held.info_json = Some(info_json.clone());
        }
        self.conn()
            .set::<_, _, ()>(scripts::reply_info(&info.stream_id), info_json)
            .await
            .map_err(|err| unavailable(&err))
    }

    /// Makes a reply this replica runs visible to the others' watchers.
    pub async fn published(&self, generation: &Arc<Generation>, prev_stream: Option<String>) -> Result<()> {
        let info = &generation.info;
        if let Some(mut held) = self.held.get_mut(&info.stream_id) {
            held.generation = Some(Arc::clone(generation));
        }
        if generation.text_len() > 0 {
            // A continuation starts with its message's text.
            self.appended(generation);
        }
        let event = events::Event::Started {
            from: self.replica.clone(),
            chat: info.chat_session_id.clone(),
            stream: info.stream_id.clone(),
            prev: prev_stream,
        };
        self.conn().publish::<_, _, ()>(scripts::EVENTS, event.encode()).await.map_err(|err| unavailable(&err))
    }

    /// New text in a reply this replica runs: the writer takes it with its
    /// next batch.
    pub fn appended(&self, generation: &Generation) {
        if generation.mark_relay_pending() {
            let _ = self.writer.send(writer::Job::Text(generation.info.stream_id.clone()));
        }
    }

    /// Ends a reply this replica ran: its outcome is the stream's last entry
    /// and the chat is free. Waits for Redis at most a lease; the writer
    /// keeps trying after that.
    pub async fn finished(&self, generation: &Generation, outcome: &Outcome) {
        let Ok(outcome) = serde_json::to_string(outcome) else { return };
        let (done, written) = oneshot::channel();
        let job = writer::Job::Finish { stream_id: generation.info.stream_id.clone(), outcome, done };
        if self.writer.send(job).is_ok() {
            let _ = tokio::time::timeout(self.lease, written).await;
        }
    }

    /// Asks the replica running the reply to cancel it.
    pub async fn cancel(&self, stream_id: &str) -> Result<()> {
        let event = events::Event::Cancel { stream: stream_id.to_owned() };
        self.conn().publish::<_, _, ()>(scripts::EVENTS, event.encode()).await.map_err(|err| unavailable(&err))
    }

    /// Tells other replicas' watchers of a history change.
    pub async fn announce(&self, change: &ChatChange) {
        let event = events::Event::Changed { from: self.replica.clone(), change: change.clone() };
        if let Err(err) = self.conn().publish::<_, _, ()>(scripts::EVENTS, event.encode()).await {
            tracing::warn!(error = %err, "a history change could not be announced to other replicas");
        }
    }
}
