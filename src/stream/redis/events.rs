//! The replicas' one pub/sub channel: a reply started (watchers of its chat
//! elsewhere mirror it), a cancel (the replica running it stops it), a
//! history change (watchers elsewhere are told).
//!
//! Pub/sub may drop messages while a connection is down; each is also
//! recoverable otherwise: a watcher that missed a start catches up from the
//! backlog, and after reconnecting every followed chat's running reply is
//! looked up again.

use std::{sync::Weak, time::Duration};

use futures_util::StreamExt;

use super::{RedisShared, scripts};
use crate::stream::registry::{CancelReason, ChatChange, ChatChangeKind, Origin};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Started { from: String, chat: String, stream: String, prev: Option<String> },
    Cancel { stream: String },
    Changed { from: String, change: ChatChange },
}

impl Event {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Listens until the replica stops, reconnecting after a lost connection.
pub async fn listen(shared: Weak<RedisShared>) {
    let mut first = true;
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let (client, stop) = (strong.client.clone(), strong.stop.clone());
        drop(strong);
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(scripts::EVENTS).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = stop.cancelled() => return,
            subscribed = subscribed => subscribed,
        };
        match pubsub {
            Ok(mut pubsub) => {
                if !first {
                    resync(&shared).await;
                }
                first = false;
                let mut messages = pubsub.on_message();
                loop {
                    let message = tokio::select! {
                        () = stop.cancelled() => return,
                        message = messages.next() => message,
                    };
                    let Some(message) = message else { break };
                    let Ok(payload) = message.get_payload::<String>() else { continue };
                    let Ok(event) = serde_json::from_str::<Event>(&payload) else { continue };
                    let Some(shared) = shared.upgrade() else { return };
                    handle(&shared, event).await;
                }
                tracing::warn!("lost the replicas' event channel; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "cannot subscribe to the replicas' event channel; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn handle(shared: &RedisShared, event: Event) {
    match event {
        Event::Started { from, chat, stream, prev } => {
            // Only chats followed here need a copy.
            if from != shared.replica
                && shared.registry.chat(&chat).is_some_and(|entry| entry.watcher_count() > 0)
                && let Err(err) = shared.mirror(&stream, prev.as_deref()).await
            {
                tracing::warn!(error = %err, "a reply started elsewhere could not be followed");
            }
        }
        Event::Cancel { stream } => {
            if let Some(generation) = shared.registry.stream(&stream).filter(|g| g.origin == Origin::Local) {
                generation.cancel(CancelReason::Requested);
            }
        }
        Event::Changed { from, change } => {
            if from != shared.replica {
                shared.registry.announce_elsewhere(change);
            }
        }
    }
}

/// After a reconnect: events may have been missed. Watchers are told to
/// reload, and each followed chat's running reply is looked up again.
async fn resync(shared: &Weak<RedisShared>) {
    let Some(shared) = shared.upgrade() else { return };
    for (chat_id, _) in shared.registry.watched_chats() {
        shared.registry.announce_elsewhere(ChatChange {
            chat_session_id: chat_id.clone(),
            kind: ChatChangeKind::Resync,
            message_ids: Vec::new(),
        });
        if let Err(err) = shared.live(&chat_id).await {
            tracing::warn!(error = %err, "a followed chat's running reply could not be looked up");
        }
    }
}
