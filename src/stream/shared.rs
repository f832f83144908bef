//! What replicas must agree on, behind one small interface with two
//! implementations: [`Sharing::Single`], one process whose in-memory
//! registry is the whole truth (the default), and [`Sharing::Redis`],
//! replicas sharing it through Redis ([`super::redis`]).
//!
//! The interface is the reply's life as other replicas see it: claim the
//! chat (with the send limits), publish the reply, append its text, end it,
//! cancel it, find a chat's running reply or a stream to resume, count
//! watchers for the idle timer, and hold a chat while its history changes.
//! Everything else (the reply task, followers, checkpoints) is the same
//! code in both.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use super::{
    redis::{Claim as RedisClaim, RedisShared},
    registry::{CancelReason, ChatChange, Generation, Origin, Outcome, Registry, StreamInfo},
};
use crate::{
    error::Result,
    store::{Fence, Store},
};

#[derive(Clone, Default)]
pub enum Sharing {
    /// One process: nothing is shared.
    #[default]
    Single,
    /// Replicas sharing the registry through Redis.
    Redis(Arc<RedisShared>),
}

/// A reply's claim on its chat across replicas; given back when dropped
/// before the reply was published (the start failed).
pub struct Claim {
    pub fence: Option<Fence>,
    held: Option<Held>,
}

struct Held {
    shared: Arc<RedisShared>,
    claim: Option<RedisClaim>,
    chat_id: String,
    stream_id: String,
    user_id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let Some(claim) = held.claim else { return };
        tokio::spawn(async move {
            held.shared.release(&held.chat_id, &held.stream_id, &held.user_id, &claim.holder).await;
        });
    }
}

/// A chat held for a history change on every replica; freed when dropped.
pub struct ChangeHold {
    held: Option<(Arc<RedisShared>, String, String)>,
}

impl Drop for ChangeHold {
    fn drop(&mut self) {
        if let Some((shared, chat_id, holder)) = self.held.take() {
            tokio::spawn(async move { shared.release_change(&chat_id, &holder).await });
        }
    }
}

impl Sharing {
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }

    /// Claims the chat for a new reply, counting the send limits across
    /// replicas, and takes the chat's next fencing epoch. Single: nothing
    /// to claim (the registry's lock and the local limits do it).
    pub async fn claim(&self, store: &Store, chat_id: &str, stream_id: &str, user_id: &str) -> Result<Claim> {
        let Self::Redis(shared) = self else { return Ok(Claim { fence: None, held: None }) };
        let claim = shared.claim(chat_id, stream_id, user_id).await?;
        let mut claim = Claim {
            fence: None,
            held: Some(Held {
                shared: Arc::clone(shared),
                claim: Some(claim),
                chat_id: chat_id.to_owned(),
                stream_id: stream_id.to_owned(),
                user_id: user_id.to_owned(),
            }),
        };
        claim.fence = Some(store.next_reply_epoch(chat_id).await?);
        Ok(claim)
    }

    /// Before the reply's rows are stored: what a sweep needs to end it if
    /// this replica dies. Refused (nothing stored) when Redis is gone.
    pub async fn describe(&self, claim: &Claim, info: &StreamInfo) -> Result<()> {
        match &claim.held {
            Some(held) => held.shared.describe(info, &held.user_id).await,
            None => Ok(()),
        }
    }

    /// The reply is published here; other replicas' watchers learn of it.
    pub async fn published(
        &self,
        generation: &Arc<Generation>,
        mut claim: Claim,
        prev_stream: Option<String>,
    ) -> Result<()> {
        let Some(mut held) = claim.held.take() else { return Ok(()) };
        held.claim.take();
        held.shared.published(generation, prev_stream).await
    }

    /// The reply grew.
    pub fn appended(&self, generation: &Generation) {
        if let Self::Redis(shared) = self {
            shared.appended(generation);
        }
    }

    /// The reply ended and is stored: other replicas' watchers get its end
    /// and the chat is free everywhere.
    pub async fn finished(&self, generation: &Generation, outcome: &Outcome) {
        if let Self::Redis(shared) = self {
            shared.finished(generation, outcome).await;
        }
    }

    /// Cancels a reply, wherever it runs.
    pub async fn cancel(&self, generation: &Generation) -> Result<()> {
        match self {
            Self::Redis(shared) if generation.origin == Origin::Mirror => {
                shared.cancel(&generation.info.stream_id).await
            }
            _ => {
                generation.cancel(CancelReason::Requested);
                Ok(())
            }
        }
    }

    /// The chat's running reply, wherever it runs.
    pub async fn live(&self, registry: &Registry, chat_id: &str) -> Result<Option<Arc<Generation>>> {
        match self {
            Self::Single => Ok(registry.live(chat_id)),
            Self::Redis(shared) => shared.live(chat_id).await,
        }
    }

    /// A live or lately ended reply by stream id, wherever it ran.
    pub async fn stream(&self, registry: &Registry, stream_id: &str) -> Result<Option<Arc<Generation>>> {
        match self {
            Self::Single => Ok(registry.stream(stream_id)),
            Self::Redis(shared) => shared.mirror(stream_id, None).await,
        }
    }

    /// A client here follows the chat (registered in the registry already).
    pub async fn follow_chat(&self, chat_id: &str) -> Result<()> {
        match self {
            Self::Single => Ok(()),
            Self::Redis(shared) => shared.follow_chat(chat_id).await,
        }
    }

    /// Clients following the chat on other replicas (0 when unknown).
    pub async fn watchers_elsewhere(&self, chat_id: &str) -> usize {
        match self {
            Self::Single => 0,
            Self::Redis(shared) => shared.watchers_elsewhere(chat_id).await.unwrap_or(0),
        }
    }

    /// Tells other replicas' watchers of a change to the chat's history.
    pub async fn announce(&self, change: &ChatChange) {
        if let Self::Redis(shared) = self {
            shared.announce(change).await;
        }
    }

    /// Holds the chat on every replica while its history changes.
    pub async fn hold_for_change(&self, chat_id: &str) -> Result<ChangeHold> {
        match self {
            Self::Single => Ok(ChangeHold { held: None }),
            Self::Redis(shared) => {
                let holder = shared.hold_for_change(chat_id).await?;
                Ok(ChangeHold { held: Some((Arc::clone(shared), chat_id.to_owned(), holder)) })
            }
        }
    }

    /// Resolves once nobody, on any replica, has watched the chat for
    /// `idle`. A replica that cannot be asked counts as watching: a Redis
    /// outage never cancels a reply.
    pub async fn idle_timeout(&self, chat_id: &str, watchers: watch::Receiver<usize>, idle: Duration) {
        let Self::Redis(shared) = self else { return idle_here(watchers, idle).await };
        let poll = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            idle_here(watchers.clone(), idle).await;
            let mut watched_elsewhere = false;
            while !matches!(shared.watchers_elsewhere(chat_id).await, Ok(0)) {
                watched_elsewhere = true;
                tokio::time::sleep(poll).await;
            }
            if !watched_elsewhere {
                return;
            }
            // Watched elsewhere meanwhile: the unwatched time starts over.
        }
    }
}

/// Resolves once nobody here has watched the chat for `idle`.
async fn idle_here(mut watchers: watch::Receiver<usize>, idle: Duration) {
    loop {
        if *watchers.borrow_and_update() == 0 {
            tokio::select! {
                () = tokio::time::sleep(idle) => return,
                changed = watchers.changed() => if changed.is_err() { std::future::pending::<()>().await },
            }
        } else if watchers.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle timer runs only while nobody watches, and starts over when
    /// someone comes and goes.
    #[tokio::test(start_paused = true)]
    async fn the_idle_timer_counts_only_unwatched_time() {
        let idle = Duration::from_secs(300);
        let (watchers, counts) = watch::channel(1usize);
        let timer = tokio::spawn(idle_here(counts, idle));
        tokio::time::sleep(Duration::from_secs(1000)).await;
        assert!(!timer.is_finished(), "watched the whole time");
        watchers.send_replace(0);
        tokio::time::sleep(Duration::from_secs(200)).await;
        watchers.send_replace(1);
        watchers.send_replace(0);
        tokio::time::sleep(Duration::from_secs(200)).await;
        assert!(!timer.is_finished(), "a visit starts the idle time over");
        tokio::time::sleep(Duration::from_secs(101)).await;
        assert!(timer.is_finished(), "300 s unwatched");
    }
}
