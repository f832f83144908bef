//! Following a chat: turns the registry's state into the event sequence a
//! client receives.
//!
//! For each generation a follower sends `Started`, then the text from its
//! offset in as few `Delta`s as the client's pace allows, then the terminal
//! event. Every byte is sent exactly once because the offset only moves by
//! what was sent, and text is only ever appended. The caller of
//! AddUserMessageStreaming and every subscriber run this same code.

use std::{pin::Pin, sync::Arc, time::Duration};

use tokio::{sync::watch, time::Sleep};
use tokio_util::sync::CancellationToken;

use crate::registry::{ChatWatch, Generation, Outcome, Progress};

/// What a follower sends.
#[derive(Debug, Clone)]
pub enum Event {
    Started(Arc<Generation>),
    Delta { generation: Arc<Generation>, offset: usize, text: String },
    Heartbeat,
    Ended { generation: Arc<Generation>, partial_length: usize, outcome: Arc<Outcome> },
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

    /// The next event of this generation; `None` after the terminal one.
    /// Cancel-safe: state changes only right before returning.
    async fn next(&mut self) -> Option<Event> {
        if !self.started_sent {
            self.started_sent = true;
            return Some(Event::Started(Arc::clone(&self.generation)));
        }
        loop {
            {
                let progress = self.progress.borrow_and_update();
                if progress.text.len() > self.offset {
                    let text = progress.text[self.offset..].to_owned();
                    let offset = self.offset;
                    self.offset = progress.text.len();
                    return Some(Event::Delta { generation: Arc::clone(&self.generation), offset, text });
                }
                if let Some(outcome) = &progress.outcome {
                    let event = Event::Ended {
                        generation: Arc::clone(&self.generation),
                        partial_length: progress.text.len(),
                        outcome: Arc::clone(outcome),
                    };
                    return Some(event);
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

pub struct Follower {
    watch: ChatWatch,
    current: Option<Cursor>,
    /// Subscribers go on to later generations; the sender of a message stops
    /// after its reply.
    follow_later: bool,
    /// The newest generation already followed or deliberately skipped.
    last_seq: u64,
    heartbeat_every: Duration,
    heartbeat: Pin<Box<Sleep>>,
    /// Ends the stream at shutdown, after generations have been drained.
    stop: CancellationToken,
    done: bool,
}

impl Follower {
    pub fn new(
        mut watch: ChatWatch,
        start: Start,
        follow_later: bool,
        heartbeat_every: Duration,
        stop: CancellationToken,
    ) -> Self {
        let latest = watch.latest();
        let (current, last_seq) = match start {
            Start::At { generation, offset } => {
                let skip_to = if generation.seq == 0 {
                    // Rebuilt from the database: newer live replies follow it.
                    latest.map_or(0, |g| if g.is_streaming() { g.seq - 1 } else { g.seq })
                } else {
                    generation.seq
                };
                (Some(Cursor::new(generation, offset)), skip_to)
            }
            Start::After(seen) if seen.seq > 0 => (None, seen.seq),
            Start::After(_) | Start::Live => match latest {
                Some(g) if g.is_streaming() => {
                    let seq = g.seq;
                    (Some(Cursor::new(g, 0)), seq)
                }
                Some(g) => (None, g.seq),
                None => (None, 0),
            },
        };
        Self {
            watch,
            current,
            follow_later,
            last_seq,
            heartbeat_every,
            heartbeat: Box::pin(tokio::time::sleep(heartbeat_every)),
            stop,
            done: false,
        }
    }

    /// The next event, or `None` when the stream should end.
    pub async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let event = self.next_inner().await;
        match &event {
            None => self.done = true,
            Some(Event::Ended { .. }) if !self.follow_later => self.done = true,
            Some(_) => {}
        }
        if event.is_some() {
            let deadline = tokio::time::Instant::now() + self.heartbeat_every;
            self.heartbeat.as_mut().reset(deadline);
        }
        event
    }

    async fn next_inner(&mut self) -> Option<Event> {
        loop {
            if let Some(cursor) = self.current.as_mut() {
                tokio::select! {
                    biased;
                    event = cursor.next() => match event {
                        Some(event @ Event::Ended { .. }) => {
                            self.current = None;
                            return Some(event);
                        }
                        Some(event) => return Some(event),
                        None => {
                            self.current = None;
                            if !self.follow_later {
                                return None;
                            }
                        }
                    },
                    () = self.stop.cancelled() => return None,
                    () = &mut self.heartbeat => return Some(Event::Heartbeat),
                }
                continue;
            }
            if !self.follow_later {
                return None;
            }
            if let Some(newer) = self.watch.latest().filter(|g| g.seq > self.last_seq) {
                self.last_seq = newer.seq;
                self.current = Some(Cursor::new(newer, 0));
                continue;
            }
            tokio::select! {
                biased;
                published = self.watch.next_published() => {
                    if let Some(generation) = published.filter(|g| g.seq > self.last_seq) {
                        self.last_seq = generation.seq;
                        self.current = Some(Cursor::new(generation, 0));
                    }
                }
                () = self.stop.cancelled() => return None,
                () = &mut self.heartbeat => return Some(Event::Heartbeat),
            }
        }
    }
}
