//! Following a chat: turns the registry's state into the event sequence a
//! client receives.
//!
//! For each generation a follower sends `Started`, then the text from its
//! offset in as few `Delta`s as the client's pace allows, then the terminal
//! event. Every byte is sent exactly once because the offset only moves by
//! what was sent, and text is only ever appended. The caller of
//! AddUserMessageStreaming and every subscriber run this same code.
//!
//! A subscriber then follows every later reply, in order: one it fell too
//! far behind to see in memory comes from the [`Backlog`].

use std::{collections::VecDeque, ops::Bound, pin::Pin, sync::Arc, time::Duration};

use tokio::{
    sync::watch,
    time::{Instant, Sleep},
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::{
    error::{Error, Result},
    stream::backlog::Backlog,
    stream::quiet::Quiet,
    stream::registry::{ChatChange, ChatNews, ChatWatch, Generation, Outcome, Progress},
};

/// What a follower sends.
#[derive(Debug, Clone)]
pub enum Event {
    Started(Arc<Generation>),
    Delta {
        generation: Arc<Generation>,
        offset: usize,
        text: String,
    },
    Heartbeat,
    Ended {
        generation: Arc<Generation>,
        partial_length: usize,
        outcome: Arc<Outcome>,
    },
    /// Messages were edited, deleted, selected or rewound.
    ChatChanged(Arc<ChatChange>),
}

/// Reads one generation from a byte offset.
struct Cursor {
    generation: Arc<Generation>,
    progress: watch::Receiver<Progress>,
    offset: usize,
    started_sent: bool,
}

impl Cursor {
    fn new(generation: Arc<Generation>, offset: usize) -> Self {
        let progress = generation.subscribe();
        Self { generation, progress, offset, started_sent: false }
    }

    /// The next event of this generation; `None` after the terminal one;
    /// an error when it is another replica's and its source was lost (the
    /// client resumes from its offset).
    /// Cancel-safe: state changes only right before returning.
    async fn next(&mut self) -> Option<Result<Event>> {
        if !self.started_sent {
            self.started_sent = true;
            return Some(Ok(Event::Started(Arc::clone(&self.generation))));
        }
        loop {
            {
                let progress = self.progress.borrow_and_update();
                if progress.text.len() > self.offset {
                    let text = progress.text[self.offset..].to_owned();
                    let offset = self.offset;
                    self.offset = progress.text.len();
                    return Some(Ok(Event::Delta { generation: Arc::clone(&self.generation), offset, text }));
                }
                if let Some(outcome) = &progress.outcome {
                    let event = Event::Ended {
                        generation: Arc::clone(&self.generation),
                        partial_length: progress.text.len(),
                        outcome: Arc::clone(outcome),
                    };
                    return Some(Ok(event));
                }
                if progress.source_lost {
                    return Some(Err(Error::SharedRegistryLost {
                        stream_id: self.generation.info.stream_id.clone(),
                        offset: self.offset,
                    }));
                }
            }
            // Text and outcome are only ever set through the sender inside
            // the generation, which this cursor keeps alive.
            self.progress.changed().await.ok()?;
        }
    }
}

/// Where a follower starts.
pub enum Start {
    /// Follow this generation from this offset first.
    At { generation: Arc<Generation>, offset: usize },
    /// Follow the live generation, if any, from its start.
    Live,
    /// Follow only generations newer than this one (it was fully received).
    After(Arc<Generation>),
}

/// The newest reply a follower has followed, to tell the chat's next reply
/// from a gap.
#[derive(Debug)]
enum Seen {
    /// None: the chat had no reply in memory when following began.
    Nothing,
    /// This reply (by stream id); `seq` is 0 when it was rebuilt from the
    /// database.
    Reply { seq: u64, id: String },
}

impl Seen {
    fn of(generation: &Generation) -> Self {
        Self::Reply { seq: generation.seq, id: generation.info.stream_id.clone() }
    }

    /// Whether `generation` is newer than the reply seen. Stream ids are
    /// UUIDv7, ordered by creation, which covers replies with no `seq`; a
    /// regeneration or continuation of an older message is a newer stream.
    fn is_older_than(&self, generation: &Generation) -> bool {
        match self {
            Self::Nothing => true,
            Self::Reply { seq, .. } if *seq > 0 && generation.seq > 0 => generation.seq > *seq,
            Self::Reply { id, .. } => generation.info.stream_id.as_str() > id.as_str(),
        }
    }

    /// Whether `generation` came right after the reply seen, with nothing
    /// missed in between.
    fn is_followed_by(&self, generation: &Generation) -> bool {
        match self {
            Self::Nothing => generation.prev_seq == 0,
            Self::Reply { seq, .. } => *seq > 0 && generation.prev_seq == *seq,
        }
    }
}

pub struct Follower {
    watch: ChatWatch,
    current: Option<Cursor>,
    /// Subscribers go on to later generations, reading the ones they missed
    /// from here; the sender of a message stops after its reply.
    backlog: Option<Backlog>,
    /// Missed replies to follow, oldest first, before anything newer.
    missed: VecDeque<Arc<Generation>>,
    seen: Seen,
    /// Replies may have ended since the one the follower started from
    /// without this chat entry having seen them: look them up once.
    check_backlog: bool,
    heartbeat_every: Duration,
    /// Fires at or before the next heartbeat is due: it is not moved per
    /// event (that touches the timer wheel every chunk); when it fires
    /// early, it is set again from `last_event_at`.
    heartbeat: Pin<Box<Sleep>>,
    last_event_at: Instant,
    /// Ends the stream at shutdown, after generations have been drained.
    /// Made once, and polled only when it woke: the token takes a lock at
    /// every poll, and a follower is polled once per chunk.
    stop: Quiet<WaitForCancellationFutureOwned>,
    done: bool,
}

impl Follower {
    pub fn new(
        mut watch: ChatWatch,
        start: Start,
        backlog: Option<Backlog>,
        heartbeat_every: Duration,
        stop: CancellationToken,
    ) -> Self {
        let latest = watch.latest();
        let (current, seen) = match start {
            Start::At { generation, offset } => {
                let seen = Seen::of(&generation);
                (Some(Cursor::new(generation, offset)), seen)
            }
            Start::After(generation) => (None, Seen::of(&generation)),
            Start::Live => match latest.as_ref() {
                Some(g) if g.is_streaming() => (Some(Cursor::new(Arc::clone(g), 0)), Seen::of(g)),
                Some(g) => (None, Seen::of(g)),
                None => (None, Seen::Nothing),
            },
        };
        // A reply from the database, or from memory while this chat entry
        // has published nothing, may have been followed by others this entry
        // never held. (While an entry has a watcher it sees every reply.)
        let check_backlog = match &seen {
            Seen::Reply { seq, .. } => *seq == 0 || latest.is_none(),
            Seen::Nothing => false,
        };
        Self {
            watch,
            current,
            backlog,
            missed: VecDeque::new(),
            seen,
            check_backlog,
            heartbeat_every,
            heartbeat: Box::pin(tokio::time::sleep(heartbeat_every)),
            last_event_at: Instant::now(),
            stop: Quiet::new(stop.cancelled_owned()),
            done: false,
        }
    }

    /// The next event, or `None` when the stream should end. An error (the
    /// missed replies could not be read) ends the stream too; the client
    /// resumes from where it was.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        if self.done {
            return None;
        }
        let event = self.next_inner().await;
        match &event {
            None | Some(Err(_)) => self.done = true,
            Some(Ok(Event::Ended { .. })) if self.backlog.is_none() => self.done = true,
            Some(Ok(_)) => {}
        }
        if matches!(event, Some(Ok(_))) {
            self.last_event_at = Instant::now();
        }
        event
    }

    /// Whether a heartbeat is due now that the timer fired; if not, the
    /// timer is set for when it will be.
    fn heartbeat_due(&mut self) -> bool {
        let now = Instant::now();
        let due = self.last_event_at + self.heartbeat_every;
        let is_due = due <= now;
        self.heartbeat.as_mut().reset(if is_due { now + self.heartbeat_every } else { due });
        is_due
    }

    async fn next_inner(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(cursor) = self.current.as_mut() {
                tokio::select! {
                    biased;
                    event = cursor.next() => match event {
                        Some(Ok(event @ Event::Ended { .. })) => {
                            self.current = None;
                            return Some(Ok(event));
                        }
                        Some(event) => return Some(event),
                        None => self.current = None,
                    },
                    () = &mut self.stop => return None,
                    () = &mut self.heartbeat => if self.heartbeat_due() {
                        return Some(Ok(Event::Heartbeat));
                    },
                }
                continue;
            }
            self.backlog.as_ref()?;
            if let Some(missed) = self.missed.pop_front() {
                self.current = Some(Cursor::new(missed, 0));
                continue;
            }
            let newest = self.watch.latest().filter(|g| self.seen.is_older_than(g));
            if self.check_backlog || newest.as_ref().is_some_and(|g| !self.seen.is_followed_by(g)) {
                self.check_backlog = false;
                // Boxed: the backlog's database read is the largest thing a
                // follower awaits, and rare; inline, it would size every
                // follower for its whole life.
                if let Err(err) = Box::pin(self.catch_up(newest)).await {
                    return Some(Err(err));
                }
                continue;
            }
            if let Some(newest) = newest {
                self.seen = Seen::of(&newest);
                self.current = Some(Cursor::new(newest, 0));
                continue;
            }
            tokio::select! {
                biased;
                // A newer generation is read at the top of the loop.
                news = self.watch.next_news() => if let ChatNews::Changed(change) = news {
                    return Some(Ok(Event::ChatChanged(change)));
                },
                () = &mut self.stop => return None,
                () = &mut self.heartbeat => if self.heartbeat_due() {
                    return Some(Ok(Event::Heartbeat));
                },
            }
        }
    }

    /// Queues the replies between the one seen and `newest` (or all later
    /// ones), then `newest`.
    async fn catch_up(&mut self, newest: Option<Arc<Generation>>) -> Result<()> {
        // After the reply seen; or, having seen nothing, from the first reply
        // published since the watch began.
        let since = match &self.seen {
            Seen::Reply { id, .. } => Some(Bound::Excluded(id.clone())),
            Seen::Nothing => self.watch.entry().first_stream_id().map(|id| Bound::Included(id.to_owned())),
        };
        if let (Some(backlog), Some(since)) = (&self.backlog, since) {
            let before = newest.as_ref().map(|g| g.info.stream_id.as_str());
            for missed in backlog.between(since.as_ref().map(String::as_str), before).await? {
                if self.seen.is_older_than(&missed) {
                    self.seen = Seen::of(&missed);
                    self.missed.push_back(missed);
                }
            }
        }
        if let Some(newest) = newest.filter(|g| self.seen.is_older_than(g)) {
            self.seen = Seen::of(&newest);
            self.missed.push_back(newest);
        }
        Ok(())
    }
}
