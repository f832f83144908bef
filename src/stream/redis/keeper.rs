//! The replica's periodic duties, in one task of two independent loops (a
//! sweep that waits, say on a row lock while storing a stopped replica's
//! reply, must not hold up renewing this replica's own leases, or they would
//! lapse and another replica would take its running replies over):
//!
//! - every third of a lease, renew the leases of the replies it runs (one
//!   pipeline), fencing a reply whose chat another replica took, and
//!   storing a reply's details again where Redis lost them; and record how
//!   many local clients follow each chat (other replicas' idle timers read
//!   it);
//! - every half lease, sweep: a reply in the live set whose lease lapsed
//!   belongs to a replica that died (or stopped). The first replica to take
//!   its lease stores it as interrupted with the text its stream holds
//!   (which may be ahead of the last checkpoint), ends the stream so
//!   watchers everywhere see the end, and frees the chat.

use std::{collections::HashSet, sync::Weak};

use redis::AsyncCommands;

use super::{RedisShared, SharedInfo, live_member, millis, reader, scripts};
use crate::stream::{
    backlog,
    registry::{FailureCode, Outcome},
};

pub async fn run(shared: Weak<RedisShared>) {
    let Some(strong) = shared.upgrade() else { return };
    let (lease, stop) = (strong.lease, strong.stop.clone());
    drop(strong);
    tokio::select! {
        () = stop.cancelled() => {}
        () = renewing(&shared, lease / 3) => {}
        () = sweeping(&shared, lease / 2) => {}
    }
}

/// Until the replica's shared state is gone: renews its leases and records
/// its watchers, every `period`.
async fn renewing(shared: &Weak<RedisShared>, period: std::time::Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut advertised: HashSet<String> = HashSet::new();
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        if let Err(err) = renew(&shared).await {
            tracing::warn!(error = %err, "renewing leases failed; replies go on and are stored");
        }
        if let Err(err) = advertise(&shared, &mut advertised).await {
            tracing::warn!(error = %err, "recording this replica's watchers failed");
        }
    }
}

/// Until the replica's shared state is gone: sweeps for replies of stopped
/// replicas, every `period`.
async fn sweeping(shared: &Weak<RedisShared>, period: std::time::Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        if let Err(err) = sweep(&shared).await {
            tracing::warn!(error = %err, "sweeping for replies of stopped replicas failed");
        }
    }
}

async fn renew(shared: &RedisShared) -> redis::RedisResult<()> {
    let held: Vec<(String, String, String, String, bool)> = shared
        .held
        .iter()
        .map(|h| (h.key().clone(), h.chat_id.clone(), h.user_id.clone(), h.holder.clone(), h.info_json.is_some()))
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (stream_id, chat_id, user_id, holder, described) in &held {
        pipe.invoke_script(
            shared
                .scripts
                .renew
                .key(scripts::lease(chat_id))
                .key(scripts::reply_end(stream_id))
                .key(scripts::running(user_id))
                .key(scripts::LIVE)
                .key(scripts::reply_info(stream_id))
                .arg(holder)
                .arg(millis(shared.lease))
                .arg(stream_id)
                .arg(live_member(chat_id, stream_id))
                .arg(if *described { "1" } else { "0" }),
        );
    }
    let answers: Vec<String> = shared.run_scripts(&pipe).await?;
    for ((stream_id, ..), answer) in held.iter().zip(answers) {
        match answer.as_str() {
            "lost" => {
                if let Some(generation) = shared.held.remove(stream_id).and_then(|(_, held)| held.generation) {
                    tracing::warn!(stream_id, "another replica took this reply's chat over; stopping it");
                    generation.fence();
                }
            }
            "restored" => restore(shared, stream_id).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Redis lost a reply this replica runs (it restarted empty): its text goes
/// back first, then its details, so a replica that finds the details finds
/// the text with them. The writer then carries on from there.
async fn restore(shared: &RedisShared, stream_id: &str) -> redis::RedisResult<()> {
    let Some((chat_id, holder, generation, info_json)) = shared
        .held
        .get(stream_id)
        .map(|held| (held.chat_id.clone(), held.holder.clone(), held.generation.clone(), held.info_json.clone()))
    else {
        return Ok(());
    };
    tracing::info!(stream_id, "Redis had lost a running reply; restoring it");
    if let Some(generation) = &generation {
        let mut from = 0;
        // Each try sends what the stream lacks; a second one only when an
        // append raced with the writer's.
        for _ in 0..3 {
            let (text, length) = generation.text_from(from);
            if text.is_empty() {
                break;
            }
            let holds: i64 =
                shared.append_call(stream_id, &chat_id, &holder, from, &text).invoke_async(&mut shared.conn()).await?;
            let Ok(holds) = usize::try_from(holds) else { return Ok(()) };
            from = holds;
            if from >= length {
                break;
            }
        }
    }
    if let Some(info_json) = info_json {
        shared.conn().set::<_, _, ()>(scripts::reply_info(stream_id), info_json).await?;
    }
    let _ = shared.writer.send(super::writer::Job::Text(stream_id.to_owned()));
    Ok(())
}

async fn advertise(shared: &RedisShared, advertised: &mut HashSet<String>) -> redis::RedisResult<()> {
    let watched = shared.registry.watched_chats();
    let now: HashSet<String> = watched.iter().map(|(chat_id, _)| chat_id.clone()).collect();
    let gone: Vec<String> = advertised.difference(&now).cloned().collect();
    shared.advertise_watchers(&watched).await?;
    if !gone.is_empty() {
        let mut pipe = redis::pipe();
        for chat_id in &gone {
            pipe.hdel(scripts::watchers(chat_id), &shared.replica).ignore();
        }
        pipe.query_async::<()>(&mut shared.conn()).await?;
    }
    *advertised = now;
    Ok(())
}

async fn sweep(shared: &RedisShared) -> redis::RedisResult<()> {
    let members: Vec<String> = shared.conn().zrange(scripts::LIVE, 0, -1).await?;
    for member in members {
        let Some((chat_id, stream_id)) = member.split_once('|') else { continue };
        if shared.held.contains_key(stream_id) {
            continue;
        }
        let holder = format!("{}|sweep|", shared.replica);
        let took: i64 = shared
            .scripts
            .sweep_claim
            .key(scripts::lease(chat_id))
            .key(scripts::reply_end(stream_id))
            .key(scripts::LIVE)
            .arg(&holder)
            .arg(millis(shared.lease))
            .arg(&member)
            .invoke_async(&mut shared.conn())
            .await?;
        if took == 1 {
            tracing::warn!(stream_id, "the replica running this reply stopped; ending it as interrupted");
            take_over(shared, chat_id, stream_id, &holder).await?;
        }
    }
    Ok(())
}

/// Ends a stopped replica's reply (this replica holds its chat's lease).
async fn take_over(shared: &RedisShared, chat_id: &str, stream_id: &str, holder: &str) -> redis::RedisResult<()> {
    let (info, entries): (Option<String>, redis::streams::StreamRangeReply) = redis::pipe()
        .get(scripts::reply_info(stream_id))
        .xrange_all(scripts::reply(stream_id))
        .query_async(&mut shared.conn())
        .await?;
    let streamed = reader::replay(&entries.ids).text;
    let Some(SharedInfo { info, user_id }) = info.and_then(|json| serde_json::from_str(&json).ok()) else {
        // Nothing says which message it was: its owner stopped before
        // storing it. Its epoch is taken first, so if the owner was only
        // slow it cannot store the reply once the chat is freed.
        if let Err(err) = shared.store.next_reply_epoch(chat_id).await {
            tracing::warn!(error = %err, stream_id, "a stopped replica's chat could not be fenced; will retry");
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.zrem(scripts::LIVE, live_member(chat_id, stream_id)).ignore();
        pipe.invoke_script(shared.scripts.release.key(scripts::lease(chat_id)).arg(holder)).ignore();
        return shared.run_scripts::<()>(&pipe).await;
    };
    let stored = shared.store.sweep_reply(chat_id, &info.assistant_message_id, &streamed).await;
    let (text, outcome) = match stored {
        Ok(Some(message)) => {
            let text = message.content.clone();
            (text, backlog::stored_outcome(&message))
        }
        Ok(None) => (
            streamed.clone(),
            Outcome::Failed { code: FailureCode::Interrupted, message: crate::store::SWEPT.to_owned() },
        ),
        Err(err) => {
            // Leave the lease to lapse: a later sweep tries again.
            tracing::warn!(error = %err, stream_id, "an interrupted reply could not be stored; will retry");
            return Ok(());
        }
    };
    // The stream gets whatever the stored text has beyond it, then the end.
    let mut pipe = redis::pipe();
    let length = if text.len() > streamed.len() && text.starts_with(&streamed) {
        let rest = &text[streamed.len()..];
        pipe.invoke_script(&shared.append_call(stream_id, chat_id, holder, streamed.len(), rest)).ignore();
        text.len()
    } else {
        streamed.len()
    };
    let outcome = serde_json::to_string(&outcome).unwrap_or_default();
    pipe.invoke_script(&shared.finish_call(stream_id, (chat_id, &user_id, holder), length, &outcome)).ignore();
    // Copies of it on every replica end too, through their readers.
    shared.run_scripts::<()>(&pipe).await
}
