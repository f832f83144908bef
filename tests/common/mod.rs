//! Shared test harness: a database of the test's own (a temporary SQLite file
//! or a fresh PostgreSQL schema), the real server on a loopback port, the fake
//! upstream, and helpers to read event streams.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod card_samples;
pub mod fake_upstream;
pub mod hand_framed_upstream;
pub mod process;
pub mod redis_server;
pub mod tcp_proxy;
pub mod tls_upstream;
pub mod users;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use roleplay_server::{
    api::pb::{
        self, character_service_client::CharacterServiceClient, chat_session_service_client::ChatSessionServiceClient,
        generation_event::Event, lorebook_service_client::LorebookServiceClient,
        message_service_client::MessageServiceClient, settings_service_client::SettingsServiceClient,
        user_profile_service_client::UserProfileServiceClient,
    },
    config::ServerOptions,
    limits::LimitOptions,
    provider::{RetryPolicy, openai::OpenAiCompatible},
    secrets::{Keyring, MasterKey},
    server,
    state::AppState,
    store::Store,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Streaming, transport::Channel};

#[allow(unused_imports, reason = "not every test binary scripts stream endings")]
pub use fake_upstream::{End, FakeUpstream, Reply};

pub const MASTER_KEY: [u8; 32] = [42; 32];
pub const API_KEY: &str = "sk-or-v1-test-0123456789abcdef";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    /// PostgreSQL with the registry shared through a private Redis (the
    /// replicas' implementation, with this server as the one replica).
    Redis,
}

/// Runs an async test body once per registry implementation and backend:
/// in memory on SQLite and PostgreSQL, and shared through Redis.
#[macro_export]
macro_rules! on_every_registry {
    ($($name:ident),+ $(,)?) => {
        $crate::on_both_databases!($($name),+);
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Redis).await;
                }
            )+
        }
    };
}

/// Runs an async test body once per backend, as two #[tokio::test]s.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Postgres).await;
                }
            )+
        }
    };
}

/// A database of the test's own, removed when dropped.
pub struct TestDb {
    pub url: String,
    /// (server URL, schema) for PostgreSQL.
    pub postgres: Option<(String, String)>,
    /// The private Redis of a [`Db::Redis`] test.
    pub redis: Option<redis_server::RedisServer>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(kind: Db) -> Self {
        match kind {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = dir.path().join("roleplay.db").display().to_string();
                Self { url, postgres: None, redis: None, _dir: Some(dir) }
            }
            Db::Redis => {
                let mut db = Box::pin(Self::new(Db::Postgres)).await;
                db.redis = Some(redis_server::RedisServer::start().await);
                db
            }
            Db::Postgres => {
                let base = std::env::var("TEST_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
                let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
                let mut conn = AsyncPgConnection::establish(&base).await.expect("connect to TEST_DATABASE_URL");
                conn.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
                let separator = if base.contains('?') { '&' } else { '?' };
                // The application name lets a test find this server's
                // connections (to cut them) without touching other tests'.
                let url = format!("{base}{separator}options=-c%20search_path%3D{schema}&application_name={schema}");
                Self { url, postgres: Some((base, schema)), redis: None, _dir: None }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; a thread of its own may block.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&base).await {
                    let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
                }
            });
        })
        .join();
    }
}

/// Options for tests: fast retries, short timeouts.
pub fn test_options(upstream: &FakeUpstream) -> ServerOptions {
    ServerOptions {
        provider_base_url: upstream.base_url(),
        retry_base_delay: Duration::from_millis(20),
        first_token_timeout: Duration::from_secs(10),
        chunk_timeout: Duration::from_secs(10),
        // Tests of limits set their own; others send as fast as they like.
        limits: LimitOptions::UNLIMITED,
        ..ServerOptions::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub upstream: FakeUpstream,
    pub db: TestDb,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(kind: Db) -> Self {
        Self::start_with(kind, |_| {}).await
    }

    pub async fn start_with(kind: Db, tweak: impl FnOnce(&mut ServerOptions)) -> Self {
        let upstream = FakeUpstream::start().await;
        let mut options = test_options(&upstream);
        tweak(&mut options);
        Self::launch(TestDb::new(kind).await, upstream, options).await
    }

    /// The server on a database the test prepared.
    pub async fn start_on(db: TestDb) -> Self {
        let upstream = FakeUpstream::start().await;
        let options = test_options(&upstream);
        Self::launch(db, upstream, options).await
    }

    async fn launch(db: TestDb, upstream: FakeUpstream, options: ServerOptions) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
            .try_init();
        let mut options = options;
        if let Some(redis) = &db.redis {
            options.redis_url = Some(redis.url());
            options.redis_lease = Duration::from_secs(3);
        }
        // The default tokenizer loads first (once per test process). A
        // send waits for it while building its prompt, after its allowance
        // is counted and before anything is stored: seconds in a debug
        // build, which tests of windows and hang-ups must not count.
        roleplay_server::tokens::TokenCounter::warm_up().await;
        let store = Store::open(&db.url, 4).await.expect("open store");
        if db.redis.is_none() {
            store.interrupt_orphaned_replies().await.expect("interrupt orphans");
        }
        let provider = OpenAiCompatible::new(
            options.connect_timeout,
            RetryPolicy {
                tries: options.upstream_tries,
                base_delay: options.retry_base_delay,
                max_delay: Duration::from_secs(1),
            },
        )
        .expect("http client");
        let mut state =
            AppState::new(store, Keyring::single(MasterKey::from_bytes(&MASTER_KEY)), Arc::new(provider), options);
        state.share_with_replicas().await.expect("share the registry through Redis");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server_state = state.clone();
        let handle = tokio::spawn(async move {
            server::run(listener, server_state, async {
                let _ = stop.await;
            })
            .await
            .expect("server runs");
        });
        let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect_lazy();
        Self { addr, state, upstream, db, channel, shutdown: Some(shutdown), handle: Some(handle) }
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn stop(mut self) -> (TestDb, FakeUpstream, ServerOptions) {
        self.shutdown_and_wait().await;
        let options = (*self.state.options).clone();
        let db =
            std::mem::replace(&mut self.db, TestDb { url: String::new(), postgres: None, redis: None, _dir: None });
        (db, self.upstream.clone(), options)
    }

    /// Signals shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub async fn shutdown_and_wait(&mut self) {
        self.begin_shutdown();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), handle).await.expect("server stops").expect("server task");
        }
    }

    /// Stops this server and starts a new one on the same database and key.
    pub async fn restart(self) -> Self {
        let (db, upstream, options) = self.stop().await;
        Self::launch(db, upstream, options).await
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A new HTTP/2 connection, for tests that cut one client off.
    pub async fn new_channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).expect("uri").connect().await.expect("connect")
    }

    /// Clients that call with `token` (None: with no authorization).
    pub fn as_user(&self, token: Option<&str>) -> users::As {
        users::As::new(self.channel(), token)
    }

    pub fn characters(&self) -> CharacterServiceClient<Channel> {
        CharacterServiceClient::new(self.channel())
    }

    pub fn profiles(&self) -> UserProfileServiceClient<Channel> {
        UserProfileServiceClient::new(self.channel())
    }

    pub fn chats(&self) -> ChatSessionServiceClient<Channel> {
        ChatSessionServiceClient::new(self.channel())
    }

    pub fn messages(&self) -> MessageServiceClient<Channel> {
        MessageServiceClient::new(self.channel())
    }

    pub fn settings(&self) -> SettingsServiceClient<Channel> {
        SettingsServiceClient::new(self.channel())
    }

    pub fn lorebooks(&self) -> LorebookServiceClient<Channel> {
        LorebookServiceClient::new(self.channel())
    }

    pub async fn set_api_key(&self) {
        self.settings()
            .set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: API_KEY.into() })
            .await
            .expect("set key");
    }

    /// A character ("Aria", "A bard."), a profile ("Sam") and a chat between
    /// them, with the API key set.
    pub async fn chat(&self) -> pb::ChatSession {
        process::open_chat(&self.channel).await
    }

    /// Sends as the single-user mode's user (no token).
    pub async fn send(&self, chat_id: &str, content: &str) -> Result<Streaming<pb::GenerationEvent>, tonic::Status> {
        self.as_user(None).send(chat_id, content).await
    }

    pub async fn messages_of(&self, chat_id: &str) -> Vec<pb::Message> {
        self.as_user(None).messages_of(chat_id).await
    }

    /// Waits until the registry holds nothing for any chat.
    pub async fn wait_registry_empty(&self) -> (usize, usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let sizes = self.state.registry.sizes();
            if sizes == (0, 0) || tokio::time::Instant::now() > deadline {
                return sizes;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A reply of `chunks` distinct pieces, one every `delay_ms`, and its whole
/// text (distinct, so a piece at the wrong offset would show).
pub fn slow_reply(chunks: usize, delay_ms: u64) -> (Reply, String) {
    let pieces: Vec<String> = (0..chunks).map(|i| format!("wörd{i}·")).collect();
    let text = pieces.concat();
    (Reply::slow(pieces, Duration::from_millis(delay_ms)), text)
}

/// Reads events until the stream ends (or `limit` passes).
pub async fn collect(stream: &mut Streaming<pb::GenerationEvent>) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("stream stalled")
        .expect("stream error")
    {
        events.push(event.event.expect("event set"));
    }
    events
}

/// Reads events until a terminal one (Completed, Failed, Cancelled).
pub async fn until_terminal(stream: &mut Streaming<pb::GenerationEvent>) -> Vec<Event> {
    // Heartbeats keep a stream with no reply open forever: bound the whole
    // wait as well as each event, so a reply that never comes fails the test.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut events = Vec::new();
    loop {
        let next_by = (tokio::time::Instant::now() + Duration::from_secs(20)).min(deadline);
        let event = tokio::time::timeout_at(next_by, stream.message())
            .await
            .unwrap_or_else(|_| panic!("no terminal event; received {events:?}"))
            .expect("stream error")
            .expect("stream ended before a terminal event")
            .event
            .expect("event set");
        let terminal = is_terminal(&event);
        events.push(event);
        if terminal {
            return events;
        }
    }
}

pub fn is_terminal(event: &Event) -> bool {
    matches!(event, Event::Completed(_) | Event::Failed(_) | Event::Cancelled(_))
}

/// Places each Delta at its offset, failing on any gap or overlap: the
/// exactly-once guarantee. `start` is where the first Delta must begin.
pub fn reconstruct(events: &[Event], start: usize, mut text: String) -> String {
    assert_eq!(text.len(), start, "caller passes the text it already has");
    for event in events {
        if let Event::Delta(delta) = event {
            assert_eq!(
                delta.offset as usize,
                text.len(),
                "delta at {} but {} bytes received: gap or duplicate",
                delta.offset,
                text.len()
            );
            text.push_str(&delta.text);
        }
    }
    text
}

pub fn started(events: &[Event]) -> &pb::Started {
    events.iter().find_map(|e| if let Event::Started(s) = e { Some(s) } else { None }).expect("a Started event")
}

pub fn terminal(events: &[Event]) -> &Event {
    events.iter().rev().find(|e| is_terminal(e)).expect("a terminal event")
}
