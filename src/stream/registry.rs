//! The stream registry: for each chat, its live generation and who watches it.
//!
//! A [`Generation`] owns the reply's accumulated text in a `watch` channel.
//! Watchers never receive a queue of deltas: each keeps its own byte offset
//! and, when woken, copies the text from there to the end. A slow watcher
//! therefore coalesces many deltas into one, never blocks the generation or
//! other watchers, and cannot lag out; joining and resuming are the same code
//! path with a different starting offset (see [`crate::stream::follower`]).
//!
//! Lifetimes are guards: a [`ChatLock`] (one generation per chat) and a
//! [`ChatWatch`] (one watcher) each undo themselves on drop, and a chat's
//! entry is removed as soon as it has neither, so nothing outlives its use.
//! Finished generations stay resumable from memory for a grace period, then
//! from the database.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, OnceLock, PoisonError, Weak,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::NaiveDateTime;
use dashmap::DashMap;
use tokio::{
    sync::{broadcast, mpsc, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{provider::Usage, store::models::Message, text_enum::text_enum};

/// Who a generation is, as announced in `Started`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamInfo {
    pub stream_id: String,
    pub chat_session_id: String,
    pub user_message_id: String,
    pub assistant_message_id: String,
    pub model: String,
    pub started_at: NaiveDateTime,
    pub kind: ReplyKind,
    /// The alternative of the assistant message this reply fills, and how
    /// many the message has with it.
    pub alternative_index: u32,
    pub alternative_count: u32,
    /// Continuations: the bytes of the message before this reply's text.
    pub continues_from: usize,
    /// The prompt's tokens, and the stored history messages it holds and
    /// left out (0 for replies rebuilt from the database).
    pub prompt_tokens: u32,
    pub history_included: u32,
    pub history_omitted: u32,
}

// What started a reply: a new user message (send), a new alternative of a
// message or an answer to an unanswered one (regenerate), or more text for an
// existing message (continue).
text_enum!(ReplyKind {
    Send => "send",
    Regenerate => "regenerate",
    Continue => "continue",
} else Send);

text_enum!(ChatChangeKind {
    Edited => "edited",
    Deleted => "deleted",
    Selected => "selected",
    Rewound => "rewound",
    Resync => "resync",
} else Resync);

/// Messages of a chat changed other than by a reply; watchers are told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatChange {
    pub chat_session_id: String,
    pub kind: ChatChangeKind,
    pub message_ids: Vec<String>,
}

/// Changes a watcher may fall behind by before it is told to reload.
const CHANGE_BACKLOG: usize = 32;

/// Holds a chat's lock while its history is changed: no reply can start.
/// Never a stream id (those are UUIDs).
const CHANGING: &str = "changing";

/// A completed reply's message as stored, less its text (which is the
/// generation's): what a `Completed` event reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredReply {
    pub message_id: String,
    pub chat_session_id: String,
    pub role: String,
    pub status: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub stream_id: Option<String>,
    pub finish_reason: Option<String>,
    pub error: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub duration_ms: Option<i64>,
    pub alternative_index: i32,
    pub alternative_count: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub edited_at: Option<NaiveDateTime>,
}

impl StoredReply {
    pub fn of(message: &Message) -> Self {
        Self {
            message_id: message.id.clone(),
            chat_session_id: message.chat_session_id.clone(),
            role: message.role.clone(),
            status: message.status.clone(),
            model: message.model.clone(),
            provider: message.provider.clone(),
            stream_id: message.stream_id.clone(),
            finish_reason: message.finish_reason.clone(),
            error: message.error.clone(),
            prompt_tokens: message.prompt_tokens,
            completion_tokens: message.completion_tokens,
            duration_ms: message.duration_ms,
            alternative_index: message.alternative_index,
            alternative_count: message.alternative_count,
            created_at: message.created_at,
            updated_at: message.updated_at,
            edited_at: message.edited_at,
        }
    }

    /// The message again, with its text.
    pub fn to_message(&self, content: String) -> Message {
        let reply = self.clone();
        Message {
            id: reply.message_id,
            chat_session_id: reply.chat_session_id,
            role: reply.role,
            content,
            status: reply.status,
            model: reply.model,
            prompt_tokens: reply.prompt_tokens,
            completion_tokens: reply.completion_tokens,
            error: reply.error,
            stream_id: reply.stream_id,
            finish_reason: reply.finish_reason,
            duration_ms: reply.duration_ms,
            created_at: reply.created_at,
            updated_at: reply.updated_at,
            provider: reply.provider,
            alternative_index: reply.alternative_index,
            alternative_count: reply.alternative_count,
            edited_at: reply.edited_at,
        }
    }
}

text_enum!(FailureCode {
    UpstreamError => "upstream_error",
    UpstreamTimeout => "upstream_timeout",
    UpstreamUnavailable => "upstream_unavailable",
    KeyRejected => "key_rejected",
    OutOfCredits => "out_of_credits",
    Storage => "storage",
    Interrupted => "interrupted",
} else UpstreamError);

text_enum!(CancelReason {
    Requested => "requested",
    IdleTimeout => "idle_timeout",
    Shutdown => "shutdown",
} else Requested);

impl CancelReason {
    /// Kept in an atomic while a cancel is pending: 0 is "none yet".
    fn to_u8(self) -> u8 {
        match self {
            Self::Requested => 1,
            Self::IdleTimeout => 2,
            Self::Shutdown => 3,
        }
    }

    fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Requested),
            2 => Some(Self::IdleTimeout),
            3 => Some(Self::Shutdown),
            _ => None,
        }
    }
}

/// How a generation ended. Plain data (no database row), so a replica can
/// hand it to another one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Completed { reply: Box<StoredReply>, finish_reason: String, usage: Usage },
    Failed { code: FailureCode, message: String },
    Cancelled { reason: CancelReason },
}

/// A reply's text so far and, once it ended, how.
#[derive(Debug, Default)]
pub struct Progress {
    pub text: String,
    pub outcome: Option<Arc<Outcome>>,
    /// A copy of another replica's reply whose source (Redis) was lost:
    /// watchers end at their offset, to resume when it is back.
    pub source_lost: bool,
}

/// Where a generation's text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This process streams it from the provider.
    Local,
    /// Another replica does; this is a copy fed from the shared registry.
    Mirror,
}

/// One reply being produced (or just produced).
#[derive(Debug)]
pub struct Generation {
    pub info: StreamInfo,
    /// Orders generations within the registry, so a watcher can tell a new
    /// one from one it already followed; 0 for one rebuilt from the database.
    pub(crate) seq: u64,
    /// The `seq` of the chat's generation published before this one in the
    /// same chat entry (0 if none): a watcher whose last reply is not this
    /// one missed some, and fetches them (see [`crate::stream::backlog`]).
    pub(crate) prev_seq: u64,
    pub origin: Origin,
    progress: watch::Sender<Progress>,
    cancel: CancellationToken,
    cancel_reason: AtomicU8,
    /// Another replica took the chat over: stop, and store nothing.
    fenced: AtomicBool,
    /// Bytes of text already written to the database by the checkpointer.
    checkpointed: AtomicUsize,
    /// Text was appended that the shared registry's writer has not taken
    /// yet (it is told once per batch, not per chunk).
    relay_pending: AtomicBool,
}

impl Generation {
    fn new(info: StreamInfo, seq: u64, prev_seq: u64, text: String, outcome: Option<Outcome>) -> Self {
        // A continuation's text starts with what its message holds already.
        let stored = text.len();
        let (progress, _) = watch::channel(Progress { text, outcome: outcome.map(Arc::new), source_lost: false });
        Self {
            info,
            seq,
            prev_seq,
            origin: Origin::Local,
            progress,
            cancel: CancellationToken::new(),
            cancel_reason: AtomicU8::new(0),
            fenced: AtomicBool::new(false),
            checkpointed: AtomicUsize::new(stored),
            relay_pending: AtomicBool::new(false),
        }
    }

    /// Marks text as waiting for the shared registry's writer; true when
    /// the writer must be told (it was not waiting already).
    pub fn mark_relay_pending(&self) -> bool {
        !self.relay_pending.swap(true, Ordering::AcqRel)
    }

    /// The writer takes the pending text: later text marks it again.
    pub fn take_relay_pending(&self) {
        self.relay_pending.store(false, Ordering::Release);
    }

    /// The text from byte `from` on (empty when there is none or `from`
    /// is not a character boundary), and the text's length.
    pub fn text_from(&self, from: usize) -> (String, usize) {
        let progress = self.progress.borrow();
        (progress.text.get(from..).map(str::to_owned).unwrap_or_default(), progress.text.len())
    }

    /// Another replica took the chat over: the reply task stops and stores
    /// nothing (what it would store is refused by the fencing epoch).
    pub fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
        self.cancel.cancel();
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// A mirror's source went away: its watchers end where they are.
    pub fn lose_source(&self) {
        self.progress.send_modify(|progress| progress.source_lost = true);
    }

    /// If the reply is live and grew since its last checkpoint: the byte
    /// offset that checkpoint reached, and the text since.
    pub fn text_to_checkpoint(&self) -> Option<(usize, String)> {
        let progress = self.progress.borrow();
        let from = self.checkpointed.load(Ordering::Acquire);
        if progress.text.len() <= from || progress.outcome.is_some() {
            return None;
        }
        // Text is appended in whole characters, so every checkpoint ends on
        // a character boundary.
        progress.text.get(from..).map(|piece| (from, piece.to_owned()))
    }

    pub fn mark_checkpointed(&self, len: usize) {
        self.checkpointed.fetch_max(len, Ordering::AcqRel);
    }

    /// A generation that is over, rebuilt from its stored message (to resume
    /// a stream that left memory).
    pub fn from_stored(info: StreamInfo, text: String, outcome: Outcome) -> Arc<Self> {
        Arc::new(Self::new(info, 0, 0, text, Some(outcome)))
    }

    /// Appends streamed text and wakes every watcher.
    pub fn push_text(&self, text: &str) {
        self.progress.send_modify(|progress| progress.text.push_str(text));
    }

    /// Publishes the outcome; watchers send it after any text they still owe.
    pub fn finish(&self, outcome: Outcome) {
        self.progress.send_modify(|progress| progress.outcome = Some(Arc::new(outcome)));
    }

    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    pub fn text(&self) -> String {
        self.progress.borrow().text.clone()
    }

    /// The text's length, and whether `offset` falls between characters, read
    /// without copying the text.
    pub fn offset_fit(&self, offset: usize) -> (usize, bool) {
        let progress = self.progress.borrow();
        (progress.text.len(), progress.text.is_char_boundary(offset))
    }

    pub fn text_len(&self) -> usize {
        self.progress.borrow().text.len()
    }

    pub fn is_streaming(&self) -> bool {
        let progress = self.progress.borrow();
        progress.outcome.is_none() && !progress.source_lost
    }

    pub fn outcome(&self) -> Option<Arc<Outcome>> {
        self.progress.borrow().outcome.clone()
    }

    /// Asks the generation's task to stop; the first reason given wins.
    pub fn cancel(&self, reason: CancelReason) {
        let _ = self.cancel_reason.compare_exchange(0, reason.to_u8(), Ordering::AcqRel, Ordering::Acquire);
        self.cancel.cancel();
    }

    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    pub fn cancel_reason(&self) -> CancelReason {
        CancelReason::from_u8(self.cancel_reason.load(Ordering::Acquire)).unwrap_or(CancelReason::Requested)
    }

    /// Waits (at most `within`) until the text is `len` bytes long, or the
    /// reply ended or lost its source: a copy of another replica's reply
    /// trails it by a few milliseconds, and a client resuming here at an
    /// offset it got there is not wrong.
    pub async fn catch_up_to(&self, len: usize, within: Duration) {
        let mut progress = self.subscribe();
        let caught_up = async {
            loop {
                {
                    let now = progress.borrow_and_update();
                    if now.text.len() >= len || now.outcome.is_some() || now.source_lost {
                        return;
                    }
                }
                if progress.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(within, caught_up).await;
    }

    /// Waits until the generation has an outcome.
    pub async fn ended(&self) -> Arc<Outcome> {
        let mut rx = self.subscribe();
        loop {
            if let Some(outcome) = rx.borrow_and_update().outcome.clone() {
                return outcome;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`, so this cannot happen while we
                // hold `&self`; wait forever rather than invent an outcome.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A chat's entry: its newest generation, its watchers and its lock.
#[derive(Debug)]
pub struct ChatEntry {
    /// The newest generation; subscribers wake when a new one is published.
    latest: watch::Sender<Option<Arc<Generation>>>,
    /// Clients following the chat. A watch so a running generation's idle
    /// timer can wait for the count to change.
    watchers: watch::Sender<usize>,
    /// The stream holding the chat's lock. A std Mutex: it is never held
    /// across an await.
    running: Mutex<Option<String>>,
    /// The stream of the first generation published in this entry: where a
    /// watcher that joined the empty entry looks up replies it missed.
    first_stream_id: OnceLock<String>,
    /// Edits, deletions, selections and rewinds, for the chat's watchers.
    changes: broadcast::Sender<Arc<ChatChange>>,
}

impl ChatEntry {
    fn new() -> Self {
        Self {
            latest: watch::channel(None).0,
            watchers: watch::channel(0).0,
            running: Mutex::new(None),
            first_stream_id: OnceLock::new(),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_idle(&self) -> bool {
        *self.watchers.borrow() == 0 && self.running().is_none()
    }

    pub fn watcher_count(&self) -> usize {
        *self.watchers.borrow()
    }

    pub fn watcher_counts(&self) -> watch::Receiver<usize> {
        self.watchers.subscribe()
    }

    /// The running generation, if any.
    pub fn live(&self) -> Option<Arc<Generation>> {
        self.latest.borrow().as_ref().filter(|g| g.is_streaming()).cloned()
    }

    /// The stream of the newest reply here, live or not.
    pub fn latest_stream_id(&self) -> Option<String> {
        self.latest.borrow().as_ref().map(|g| g.info.stream_id.clone())
    }

    pub fn first_stream_id(&self) -> Option<&str> {
        self.first_stream_id.get().map(String::as_str)
    }
}

#[derive(Debug)]
struct Inner {
    chats: DashMap<String, Arc<ChatEntry>>,
    /// Live generations and finished ones within the resume grace period.
    streams: DashMap<String, Arc<Generation>>,
    next_seq: AtomicU64,
    max_watchers: usize,
    resume_grace: Duration,
    /// Finished generations waiting for their grace to end, for the one
    /// expiry task (started with the first); see [`Registry::retire`].
    expiring: OnceLock<mpsc::UnboundedSender<String>>,
}

/// Cheap to clone: a handle on the shared maps.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("a reply is already being generated in this chat (stream_id {0}); wait for it to finish or cancel it")]
    Busy(String),
    #[error("another change to this chat is being saved; try again")]
    Changing,
    #[error("this chat already has {0} watchers, the most allowed; close another stream first")]
    TooManyWatchers(usize),
}

impl Registry {
    pub fn new(max_watchers: usize, resume_grace: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                chats: DashMap::new(),
                streams: DashMap::new(),
                next_seq: AtomicU64::new(1),
                max_watchers,
                resume_grace,
                expiring: OnceLock::new(),
            }),
        }
    }

    /// Takes the chat's generation lock for `stream_id`.
    pub fn lock_chat(&self, chat_id: &str, stream_id: &str) -> Result<ChatLock, RegistryError> {
        let entry = self.inner.chats.entry(chat_id.to_owned()).or_insert_with(|| Arc::new(ChatEntry::new()));
        let mut running = entry.running();
        match running.as_deref() {
            Some(CHANGING) => return Err(RegistryError::Changing),
            Some(other) => return Err(RegistryError::Busy(other.to_owned())),
            None => {}
        }
        *running = Some(stream_id.to_owned());
        drop(running);
        Ok(ChatLock {
            registry: self.clone(),
            chat_id: chat_id.to_owned(),
            entry: Arc::clone(&entry),
            stream_id: stream_id.to_owned(),
        })
    }

    /// Takes the chat's lock to change its history (no reply may start or
    /// run meanwhile).
    pub fn lock_chat_for_change(&self, chat_id: &str) -> Result<ChatLock, RegistryError> {
        self.lock_chat(chat_id, CHANGING)
    }

    /// Tells the chat's watchers that its history changed.
    pub fn announce(&self, lock: &ChatLock, change: ChatChange) {
        // No receiver is no watcher: nothing to tell.
        let _ = lock.entry.changes.send(Arc::new(change));
    }

    /// Adds a watcher to the chat, unless it has the most allowed.
    pub fn watch_chat(&self, chat_id: &str) -> Result<ChatWatch, RegistryError> {
        // The count changes under the map's shard lock, so an entry seen as
        // idle by `remove_if_idle` cannot gain a watcher at the same time.
        let entry = self.inner.chats.entry(chat_id.to_owned()).or_insert_with(|| Arc::new(ChatEntry::new()));
        let max = self.inner.max_watchers;
        let mut refused = false;
        entry.watchers.send_if_modified(|count| {
            if *count >= max {
                refused = true;
                return false;
            }
            *count += 1;
            true
        });
        if refused {
            return Err(RegistryError::TooManyWatchers(max));
        }
        let latest = entry.latest.subscribe();
        let changes = entry.changes.subscribe();
        Ok(ChatWatch {
            registry: self.clone(),
            chat_id: chat_id.to_owned(),
            entry: Arc::clone(&entry),
            latest,
            changes,
        })
    }

    /// Makes a generation visible to watchers and resumable by its stream id.
    pub fn publish(&self, lock: &ChatLock, info: StreamInfo, text: String) -> Arc<Generation> {
        let seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        // Publishing happens under the chat's lock, so `latest` is the
        // generation right before this one.
        let prev_seq = lock.entry.latest.borrow().as_ref().map_or(0, |g| g.seq);
        lock.entry.first_stream_id.get_or_init(|| info.stream_id.clone());
        let generation = Arc::new(Generation::new(info, seq, prev_seq, text, None));
        self.inner.streams.insert(generation.info.stream_id.clone(), Arc::clone(&generation));
        lock.entry.latest.send_replace(Some(Arc::clone(&generation)));
        generation
    }

    /// A copy of another replica's reply (see [`Origin::Mirror`]), resumable
    /// by its stream id and, when it is newer than the chat's latest reply
    /// here, the chat's latest for its watchers. `prev_stream` is the reply
    /// before it in the chat, when known: a watcher that saw that one here
    /// misses nothing in between.
    pub fn adopt(
        &self,
        info: StreamInfo,
        text: String,
        outcome: Option<Outcome>,
        prev_stream: Option<&str>,
    ) -> Arc<Generation> {
        let entry = self.chat(&info.chat_session_id);
        let latest = entry.as_ref().and_then(|entry| entry.latest.borrow().clone());
        let prev_seq = match (&latest, prev_stream) {
            (Some(latest), Some(prev)) if latest.info.stream_id == prev => latest.seq,
            _ => 0,
        };
        let seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut generation = Generation::new(info, seq, prev_seq, text, outcome);
        generation.origin = Origin::Mirror;
        let generation = Arc::new(generation);
        self.inner.streams.insert(generation.info.stream_id.clone(), Arc::clone(&generation));
        if let Some(entry) = entry {
            let newer = latest.is_none_or(|latest| latest.info.stream_id < generation.info.stream_id);
            if newer {
                entry.first_stream_id.get_or_init(|| generation.info.stream_id.clone());
                entry.latest.send_replace(Some(Arc::clone(&generation)));
            }
        }
        generation
    }

    /// Forgets a generation at once (a mirror whose source was lost).
    pub fn forget(&self, stream_id: &str) {
        self.inner.streams.remove(stream_id);
    }

    /// Tells this process's watchers of a chat about a change another
    /// replica made.
    pub fn announce_elsewhere(&self, change: ChatChange) {
        if let Some(entry) = self.chat(&change.chat_session_id) {
            let _ = entry.changes.send(Arc::new(change));
        }
    }

    /// Chats this process's clients follow, with how many follow each.
    pub fn watched_chats(&self) -> Vec<(String, usize)> {
        self.inner
            .chats
            .iter()
            .filter(|entry| entry.watcher_count() > 0)
            .map(|entry| (entry.key().clone(), entry.watcher_count()))
            .collect()
    }

    /// Keeps a finished generation resumable from memory for the grace
    /// period, then forgets it. One task expires them all: the grace is the
    /// same for every generation, so they expire in the order they retire
    /// and a queue is the whole timer structure.
    pub fn retire(&self, generation: &Arc<Generation>) {
        let stream_id = generation.info.stream_id.clone();
        let grace = self.inner.resume_grace;
        if grace.is_zero() {
            self.inner.streams.remove(&stream_id);
            return;
        }
        let expiring = self.inner.expiring.get_or_init(|| {
            let (sender, retired) = mpsc::unbounded_channel();
            tokio::spawn(expire(Arc::downgrade(&self.inner), retired, grace));
            sender
        });
        let _ = expiring.send(stream_id);
    }

    /// A live or recently finished generation.
    pub fn stream(&self, stream_id: &str) -> Option<Arc<Generation>> {
        self.inner.streams.get(stream_id).map(|g| Arc::clone(&g))
    }

    pub fn chat(&self, chat_id: &str) -> Option<Arc<ChatEntry>> {
        self.inner.chats.get(chat_id).map(|e| Arc::clone(&e))
    }

    /// The chat's running generation, if any.
    pub fn live(&self, chat_id: &str) -> Option<Arc<Generation>> {
        self.chat(chat_id).and_then(|entry| entry.live())
    }

    /// Every generation this process is running (for checkpoints and
    /// shutdown; copies of other replicas' replies are theirs).
    pub fn live_generations(&self) -> Vec<Arc<Generation>> {
        self.inner
            .streams
            .iter()
            .filter(|g| g.origin == Origin::Local && g.is_streaming())
            .map(|g| Arc::clone(&g))
            .collect()
    }

    /// Chats with an entry, and generations held in memory.
    pub fn sizes(&self) -> (usize, usize) {
        (self.inner.chats.len(), self.inner.streams.len())
    }

    /// Bytes of reply text held in memory (live and resumable replies).
    pub fn held_bytes(&self) -> usize {
        self.inner.streams.iter().map(|g| g.text_len()).sum()
    }

    /// Clients following any chat now.
    pub fn watcher_total(&self) -> usize {
        self.inner.chats.iter().map(|e| e.watcher_count()).sum()
    }

    fn remove_if_idle(&self, chat_id: &str) {
        self.inner.chats.remove_if(chat_id, |_, entry| entry.is_idle());
    }
}

/// The expiry task: forgets each retired generation `grace` after it
/// retired. Ends when the registry is gone (its sender with it).
async fn expire(registry: Weak<Inner>, mut retired: mpsc::UnboundedReceiver<String>, grace: Duration) {
    let mut queue: VecDeque<(Instant, String)> = VecDeque::new();
    loop {
        let next_expiry = queue.front().map(|(at, _)| *at);
        tokio::select! {
            received = retired.recv() => match received {
                Some(stream_id) => queue.push_back((Instant::now() + grace, stream_id)),
                None => return,
            },
            () = sleep_until_or_forever(next_expiry) => {
                let Some(inner) = registry.upgrade() else { return };
                let now = Instant::now();
                while let Some((_, stream_id)) = queue.front().filter(|(at, _)| *at <= now).cloned() {
                    queue.pop_front();
                    inner.streams.remove(&stream_id);
                }
            }
        }
    }
}

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The right to generate in a chat; released on drop.
#[derive(Debug)]
pub struct ChatLock {
    registry: Registry,
    chat_id: String,
    entry: Arc<ChatEntry>,
    stream_id: String,
}

impl ChatLock {
    pub fn entry(&self) -> &Arc<ChatEntry> {
        &self.entry
    }
}

impl Drop for ChatLock {
    fn drop(&mut self) {
        {
            let mut running = self.entry.running();
            if running.as_deref() == Some(self.stream_id.as_str()) {
                *running = None;
            }
        }
        self.registry.remove_if_idle(&self.chat_id);
    }
}

/// One client following a chat; counted until dropped.
#[derive(Debug)]
pub struct ChatWatch {
    registry: Registry,
    chat_id: String,
    entry: Arc<ChatEntry>,
    latest: watch::Receiver<Option<Arc<Generation>>>,
    changes: broadcast::Receiver<Arc<ChatChange>>,
}

impl ChatWatch {
    pub fn entry(&self) -> &Arc<ChatEntry> {
        &self.entry
    }

    /// The chat's newest generation, marking it seen.
    pub fn latest(&mut self) -> Option<Arc<Generation>> {
        self.latest.borrow_and_update().clone()
    }

    /// Waits until a generation newer than the one last seen is published.
    pub async fn next_published(&mut self) -> Option<Arc<Generation>> {
        self.latest.changed().await.ok()?;
        self.latest.borrow_and_update().clone()
    }

    /// Waits for the next generation published (read it with
    /// [`Self::latest`]) or the next change to the chat's history, whichever
    /// comes first. A watcher that fell more than [`CHANGE_BACKLOG`] changes
    /// behind is told to reload instead (`Resync`).
    pub async fn next_news(&mut self) -> ChatNews {
        tokio::select! {
            biased;
            published = self.latest.changed() => match published {
                Ok(()) => ChatNews::Published,
                // The sender lives in the entry this watch holds.
                Err(_) => std::future::pending().await,
            },
            change = self.changes.recv() => match change {
                Ok(change) => ChatNews::Changed(change),
                Err(broadcast::error::RecvError::Lagged(_)) => ChatNews::Changed(Arc::new(ChatChange {
                    chat_session_id: self.chat_id.clone(),
                    kind: ChatChangeKind::Resync,
                    message_ids: Vec::new(),
                })),
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            },
        }
    }
}

/// What woke a watcher.
#[derive(Debug)]
pub enum ChatNews {
    Published,
    Changed(Arc<ChatChange>),
}

impl Drop for ChatWatch {
    fn drop(&mut self) {
        self.entry.watchers.send_modify(|count| *count = count.saturating_sub(1));
        self.registry.remove_if_idle(&self.chat_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(stream_id: &str) -> StreamInfo {
        StreamInfo {
            stream_id: stream_id.into(),
            chat_session_id: "chat".into(),
            user_message_id: "u".into(),
            assistant_message_id: "a".into(),
            model: "m".into(),
            started_at: crate::store::now(),
            kind: ReplyKind::Send,
            alternative_index: 0,
            alternative_count: 1,
            continues_from: 0,
            prompt_tokens: 0,
            history_included: 0,
            history_omitted: 0,
        }
    }

    /// One finished reply after another: each stays resumable for exactly
    /// the grace after it retired, in paused time.
    #[tokio::test(start_paused = true)]
    async fn retired_replies_stay_resumable_for_the_grace_then_go() {
        let grace = Duration::from_secs(60);
        let registry = Registry::new(4, grace);
        for (at, stream_id) in [(0, "s1"), (10, "s2")] {
            tokio::time::sleep(Duration::from_secs(at)).await;
            let lock = registry.lock_chat("chat", stream_id).expect("lock");
            let generation = registry.publish(&lock, info(stream_id), String::new());
            generation.finish(Outcome::Cancelled { reason: CancelReason::Requested });
            drop(lock);
            registry.retire(&generation);
        }
        tokio::time::sleep(Duration::from_secs(49)).await;
        assert!(registry.stream("s1").is_some() && registry.stream("s2").is_some(), "59 s after s1 retired");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(registry.stream("s1").is_none(), "61 s after s1 retired");
        assert!(registry.stream("s2").is_some(), "51 s after s2 retired");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(registry.sizes(), (0, 0), "both gone, and the chat entry with them");
    }
}
