//! Crash safety for replies in flight: every interval, the text each running
//! reply appended since its last checkpoint is stored as one more piece of
//! it (so a checkpoint writes what is new, not the whole text again).
//!
//! One task for the whole server, not one per reply: at thousands of
//! concurrent replies, per-reply timers and writes would cost more than the
//! streaming itself. The generation tasks never wait for it. Pieces are read
//! only for replies still marked streaming, so a piece stored after its
//! reply's final write changes nothing (and is removed at the next start).

use std::{sync::Arc, time::Duration};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::{
    store::{ReplyPiece, Store},
    stream::registry::Registry,
};

pub async fn run(registry: Registry, store: Store, every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let mut marks = Vec::new();
        let mut rows = Vec::new();
        for generation in registry.live_generations() {
            if let Some((from, piece)) = generation.text_to_checkpoint() {
                marks.push((from + piece.len(), Arc::clone(&generation)));
                rows.push(ReplyPiece { message_id: generation.info.assistant_message_id.clone(), from, piece });
            }
        }
        if rows.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let written = store.checkpoint_replies(rows).await;
        crate::observe::checkpoint(started.elapsed(), marks.len());
        match written {
            Ok(()) => {
                for (len, generation) in &marks {
                    generation.mark_checkpointed(*len);
                }
            }
            // The next tick tries again with the newer text; the stream goes on.
            Err(err) => tracing::warn!(error = %err, replies = marks.len(), "checkpoint failed"),
        }
    }
}
