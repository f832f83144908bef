//! The bench's clients: a roleplay-server prepared with a character and
//! chats, and sends with their replies as a client sees them (time to
//! `Started` and to the first text, gaps, refusals and their retries).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use roleplay_server::api::pb::{
    self, character_service_client::CharacterServiceClient, chat_session_service_client::ChatSessionServiceClient,
    generation_event::Event, message_service_client::MessageServiceClient,
    settings_service_client::SettingsServiceClient, user_profile_service_client::UserProfileServiceClient,
};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::{process::Server, upstream::Shape};

/// Streams per HTTP/2 connection: below the servers' concurrent-stream limit.
pub(crate) const STREAMS_PER_CONNECTION: usize = 100;

#[derive(Default)]
pub(crate) struct Stats {
    pub first_token: Vec<Duration>,
    /// From the request to `Started`.
    pub started: Vec<Duration>,
    /// From the request to a RESOURCE_EXHAUSTED refusal (admission), for
    /// sends that were not retried.
    pub refused: Vec<Duration>,
    /// Refusals that were retried after their RetryInfo.
    pub retries: u64,
    /// Any other refusal or broken stream.
    pub errors: u64,
    pub gaps: Vec<Duration>,
    pub deltas: u64,
    pub bytes: u64,
    pub completed: u64,
}

impl Stats {
    pub(crate) fn absorb(&mut self, other: Stats) {
        self.first_token.extend(other.first_token);
        self.started.extend(other.started);
        self.refused.extend(other.refused);
        self.retries += other.retries;
        self.errors += other.errors;
        self.gaps.extend(other.gaps);
        self.deltas += other.deltas;
        self.bytes += other.bytes;
        self.completed += other.completed;
    }
}

/// What a bench client does with a send refused by admission control.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRefusal {
    /// Count it and stop (scenario 1: how many were refused at once).
    Count,
    /// Wait as its RetryInfo says and send again, as a client should.
    Retry,
}

/// Runs one generation per id at once (chat ids for roleplay-server, the
/// upstream model for the floor) and measures what the clients see.
pub(crate) async fn generations(channels: &[Channel], ids: &[String]) -> Stats {
    generations_counted(channels, ids, &Arc::default(), None, OnRefusal::Count).await
}

/// [`generations`], counting in `started` those that received text, and
/// optionally starting them `(n, every)`: n at a time, instead of all at once.
pub(crate) async fn generations_counted(
    channels: &[Channel],
    ids: &[String],
    started: &Arc<AtomicUsize>,
    stagger: Option<(usize, Duration)>,
    on_refusal: OnRefusal,
) -> Stats {
    let mut tasks = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if let Some((n, every)) = stagger
            && i > 0
            && i % n == 0
        {
            tokio::time::sleep(every).await;
        }
        let client = MessageServiceClient::new(channels[i % channels.len()].clone());
        let id = id.clone();
        let started = Arc::clone(started);
        tasks.push(tokio::spawn(async move { one_generation(client, id, &started, on_refusal).await }));
    }
    let mut total = Stats::default();
    for task in tasks {
        let Ok(stats) = task.await else { continue };
        total.absorb(stats);
    }
    total
}

/// One send and its reply, as its client sees them; `started` counts the
/// replies that received text.
pub(crate) async fn one_generation(
    mut client: MessageServiceClient<Channel>,
    chat: String,
    started: &AtomicUsize,
    on_refusal: OnRefusal,
) -> Stats {
    let mut stats = Stats::default();
    let Some((start, mut stream)) = send(&mut client, &chat, on_refusal, &mut stats).await else {
        return stats;
    };
    let mut last = start;
    while let Ok(Some(event)) = stream.message().await {
        match event.event {
            Some(Event::Started(_)) => stats.started.push(start.elapsed()),
            Some(Event::Delta(delta)) => {
                let now = Instant::now();
                if stats.deltas == 0 {
                    started.fetch_add(1, Ordering::Relaxed);
                    stats.first_token.push(now - start);
                } else {
                    stats.gaps.push(now - last);
                }
                last = now;
                stats.deltas += 1;
                stats.bytes += delta.text.len() as u64;
            }
            Some(Event::Completed(_)) => stats.completed += 1,
            _ => {}
        }
    }
    stats
}

/// Sends one message; a RESOURCE_EXHAUSTED refusal is counted, or retried
/// after its RetryInfo (up to 50 times). Returns when the accepted request
/// was sent, with its stream.
async fn send(
    client: &mut MessageServiceClient<Channel>,
    chat: &str,
    on_refusal: OnRefusal,
    stats: &mut Stats,
) -> Option<(Instant, tonic::Streaming<pb::GenerationEvent>)> {
    use tonic_types::StatusExt;
    for _ in 0..50 {
        let start = Instant::now();
        let request = pb::AddUserMessageRequest { chat_session_id: chat.to_owned(), content: "Go on.".into() };
        match client.add_user_message_streaming(request).await {
            Ok(response) => return Some((start, response.into_inner())),
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                let delay = status.get_details_retry_info().and_then(|info| info.retry_delay);
                match (on_refusal, delay) {
                    (OnRefusal::Retry, Some(delay)) => {
                        stats.retries += 1;
                        tokio::time::sleep(delay).await;
                    }
                    _ => {
                        stats.refused.push(start.elapsed());
                        return None;
                    }
                }
            }
            Err(_) => {
                stats.errors += 1;
                return None;
            }
        }
    }
    stats.errors += 1;
    None
}

/// A folder for one server's database and key, removed afterwards.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("roleplay-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&path).expect("scratch dir");
        Self(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A roleplay-server with a key, a character and a profile, ready for chats.
pub(crate) struct Roleplay {
    pub(crate) server: Server,
    pub(crate) prepared: Prepared,
    _dir: ScratchDir,
}

impl Roleplay {
    pub(crate) async fn start(upstream: &str, database_url: Option<String>) -> Self {
        Self::start_with(upstream, database_url, false).await
    }

    pub(crate) async fn start_with(upstream: &str, database_url: Option<String>, metrics: bool) -> Self {
        let dir = ScratchDir::new();
        let url = database_url.unwrap_or_else(|| dir.path().join("bench.db").display().to_string());
        let server = Server::roleplay(upstream, &url, dir.path(), metrics).await;
        let prepared = Prepared::on(&server).await;
        Self { server, prepared, _dir: dir }
    }

    pub(crate) async fn chats(&self, count: usize, shape: Shape) -> Vec<String> {
        self.prepared.chats(count, shape).await
    }
}

/// A server's provider key, character and profile, made through one
/// connection (replicas read them from their shared database).
pub(crate) struct Prepared {
    pub(crate) channel: Channel,
    character_id: String,
    profile_id: String,
}

impl Prepared {
    pub(crate) async fn on(server: &Server) -> Self {
        let channel = server.channel().await;
        SettingsServiceClient::new(channel.clone())
            .set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: "sk-bench-0123456789abcdef".into() })
            .await
            .expect("key");
        let character_id = CharacterServiceClient::new(channel.clone())
            .create_character(pb::CreateCharacterRequest {
                name: "Bench".into(),
                description: "{{char}} answers {{user}}.".into(),
                ..Default::default()
            })
            .await
            .expect("character")
            .into_inner()
            .id;
        let profile_id = UserProfileServiceClient::new(channel.clone())
            .create_user_profile(pb::CreateUserProfileRequest { name: "User".into(), description: String::new() })
            .await
            .expect("profile")
            .into_inner()
            .id;
        Self { channel, character_id, profile_id }
    }

    /// `count` new chats between the character and the profile.
    pub(crate) async fn chats(&self, count: usize, shape: Shape) -> Vec<String> {
        let mut ids = Vec::with_capacity(count);
        let mut client = ChatSessionServiceClient::new(self.channel.clone());
        for _ in 0..count {
            let chat = client
                .create_chat_session(pb::CreateChatSessionRequest {
                    character_id: self.character_id.clone(),
                    user_profile_id: self.profile_id.clone(),
                    model: Some(shape.model()),
                    ..Default::default()
                })
                .await
                .expect("chat");
            ids.push(chat.into_inner().id);
        }
        ids
    }
}
