//! Crash safety for replies in flight: every interval, the text of each
//! running reply that grew since its last checkpoint is written to its
//! message row, all in one transaction.
//!
//! One task for the whole server, not one per reply: at thousands of
//! concurrent replies, per-reply timers and writes would cost more than the
//! streaming itself. The generation tasks never wait for it. A checkpoint only
//! touches rows still marked streaming, so it can never overwrite a final
//! outcome written in between.

use std::time::Duration;

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
        let pending: Vec<_> = registry
            .live_generations()
            .into_iter()
            .filter_map(|generation| {
                let text = generation.text_to_checkpoint()?;
                Some((generation, text))
            })
            .collect();
        if pending.is_empty() {
            continue;
        }
        let rows: Vec<(&str, &str)> =
            pending.iter().map(|(g, text)| (g.info.assistant_message_id.as_str(), text.as_str())).collect();
        match store.checkpoint_replies(&rows).await {
            Ok(()) => {
                for (generation, text) in &pending {
                    generation.mark_checkpointed(text.len());
                }
            }
            // The next tick tries again with the newer text; the stream goes on.
            Err(err) => tracing::warn!(error = %err, replies = rows.len(), "checkpoint failed"),
        }
    }
}
