//! The one task per replica that appends its replies' text to their Redis
//! streams. The token loop only flags a reply as having new text; the
//! writer waits a moment for more, then sends every flagged reply's new
//! text in one pipeline, so Redis sees a few appends per reply per batch
//! rather than one per token, and the token loop never waits on it.
//!
//! Appends are idempotent by offset (see [`super::scripts::append`]): a
//! retry after a lost answer, or a stream Redis lost on a restart, is put
//! right by resending from what the stream holds. An append refused
//! because another replica took the chat fences the reply.

use std::{
    collections::{HashMap, HashSet},
    sync::Weak,
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

use super::RedisShared;

/// How long the writer waits for more text before sending a batch.
const COALESCE: Duration = Duration::from_millis(2);
/// Waits between tries while Redis cannot be reached.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub enum Job {
    /// The reply has text the stream lacks.
    Text(String),
    /// The reply ended with this outcome (JSON); `done` hears when the
    /// stream holds it.
    Finish { stream_id: String, outcome: String, done: oneshot::Sender<()> },
}

/// What the writer knows of one reply between batches.
#[derive(Default)]
struct Pending {
    /// Bytes the stream is known to hold.
    written: usize,
    finish: Option<(String, Option<oneshot::Sender<()>>)>,
}

/// What one pipelined call was for.
enum Call {
    Append { stream_id: String, upto: usize },
    Finish { stream_id: String, length: usize },
}

pub async fn run(shared: Weak<RedisShared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut due: HashSet<String> = HashSet::new();
    let mut retry_in = RETRY_MIN;
    loop {
        let stop = match shared.upgrade() {
            Some(shared) => shared.stop.clone(),
            None => return,
        };
        if due.is_empty() {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => take(job, &mut pending, &mut due),
                    None => return,
                },
                () = stop.cancelled() => return,
            }
        }
        tokio::time::sleep(COALESCE).await;
        while let Ok(job) = jobs.try_recv() {
            take(job, &mut pending, &mut due);
        }
        let Some(shared) = shared.upgrade() else { return };
        match write(&shared, &mut pending, &mut due).await {
            Ok(()) => retry_in = RETRY_MIN,
            Err(err) => {
                tracing::warn!(error = %err, "appending replies to Redis failed; retrying");
                // A waiting reply stops waiting; the writer keeps trying.
                for state in pending.values_mut() {
                    if let Some((_, done)) = &mut state.finish {
                        done.take();
                    }
                }
                drop(shared);
                tokio::time::sleep(retry_in).await;
                retry_in = (retry_in * 2).min(RETRY_MAX);
            }
        }
    }
}

fn take(job: Job, pending: &mut HashMap<String, Pending>, due: &mut HashSet<String>) {
    match job {
        Job::Text(stream_id) => {
            pending.entry(stream_id.clone()).or_default();
            due.insert(stream_id);
        }
        Job::Finish { stream_id, outcome, done } => {
            pending.entry(stream_id.clone()).or_default().finish = Some((outcome, Some(done)));
            due.insert(stream_id);
        }
    }
}

/// Sends one batch: each due reply's new text, and the outcome of those
/// that ended. What is still owed afterwards stays due.
async fn write(
    shared: &RedisShared,
    pending: &mut HashMap<String, Pending>,
    due: &mut HashSet<String>,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let mut calls = Vec::new();
    for stream_id in due.iter() {
        let Some(held) = shared.held.get(stream_id) else {
            pending.remove(stream_id);
            continue;
        };
        let (Some(state), Some(generation)) = (pending.get(stream_id), held.generation.as_ref()) else { continue };
        generation.take_relay_pending();
        let (text, length) = generation.text_from(state.written);
        if !text.is_empty() {
            pipe.invoke_script(&shared.append_call(stream_id, &held.chat_id, &held.holder, state.written, &text));
            calls.push(Call::Append { stream_id: stream_id.clone(), upto: length });
        }
        if let Some((outcome, _)) = &state.finish {
            pipe.invoke_script(&shared.finish_call(
                stream_id,
                (&held.chat_id, &held.user_id, &held.holder),
                length,
                outcome,
            ));
            calls.push(Call::Finish { stream_id: stream_id.clone(), length });
        }
    }
    due.clear();
    if calls.is_empty() {
        return Ok(());
    }
    let answers: Vec<i64> = match shared.run_scripts(&pipe).await {
        Ok(answers) => answers,
        Err(err) => {
            for call in &calls {
                let (Call::Append { stream_id, .. } | Call::Finish { stream_id, .. }) = call;
                due.insert(stream_id.clone());
            }
            return Err(err);
        }
    };
    for (call, answer) in calls.into_iter().zip(answers) {
        match call {
            Call::Append { stream_id, upto } => match usize::try_from(answer) {
                Ok(holds) => {
                    if let Some(state) = pending.get_mut(&stream_id) {
                        state.written = holds;
                    }
                    if holds != upto {
                        due.insert(stream_id);
                    }
                }
                Err(_) => fenced(shared, pending, &stream_id),
            },
            Call::Finish { stream_id, length } => match usize::try_from(answer) {
                Ok(holds) if holds == length => {
                    if let Some((_, Some(done))) = pending.remove(&stream_id).and_then(|state| state.finish) {
                        let _ = done.send(());
                    }
                    shared.held.remove(&stream_id);
                }
                Ok(holds) => {
                    if let Some(state) = pending.get_mut(&stream_id) {
                        state.written = holds;
                    }
                    due.insert(stream_id);
                }
                Err(_) => fenced(shared, pending, &stream_id),
            },
        }
    }
    Ok(())
}

/// Another replica took the chat: this reply stops and writes no more.
fn fenced(shared: &RedisShared, pending: &mut HashMap<String, Pending>, stream_id: &str) {
    pending.remove(stream_id);
    if let Some(generation) = shared.held.remove(stream_id).and_then(|(_, held)| held.generation) {
        tracing::warn!(stream_id, "another replica took this reply's chat over; stopping it");
        generation.fence();
    }
}
