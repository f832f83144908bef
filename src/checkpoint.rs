//! Crash safety for replies in flight: every interval, the text of each
//! running reply that grew since its last checkpoint is written to its
//! message row, all in one transaction.
//!
//! One task for the whole server, not one per reply: at thousands of
//! concurrent replies, per-reply timers and writes would cost more than the
//! streaming itself. The generation tasks never wait for it. A checkpoint only
//! touches rows still marked streaming, so it can never overwrite a final
//! outcome written in between.

use std::{sync::Arc, time::Duration};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::{registry::Registry, store::Store};

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
            if let Some(text) = generation.text_to_checkpoint() {
                marks.push((text.len(), Arc::clone(&generation)));
                rows.push((generation.info.assistant_message_id.clone(), text));
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
