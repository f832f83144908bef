//! Property: whatever the chunking of a reply and however watchers join,
//! leave and resume, each watcher's deltas placed by offset are exactly the
//! reply, and the registry is empty once everything has ended.

use std::{sync::Arc, time::Duration};

use proptest::prelude::*;
use roleplay_server::{
    store::now,
    stream::follower::{Event, Follower, Start},
    stream::registry::{CancelReason, Generation, Outcome, Registry, ReplyKind, StreamInfo},
};
use tokio_util::sync::CancellationToken;

const CHAT: &str = "chat";

fn info() -> StreamInfo {
    StreamInfo {
        stream_id: "stream".into(),
        chat_session_id: CHAT.into(),
        user_message_id: "user".into(),
        assistant_message_id: "reply".into(),
        model: "model".into(),
        started_at: now(),
        kind: ReplyKind::Send,
        alternative_index: 0,
        alternative_count: 1,
        continues_from: 0,
        prompt_tokens: 0,
        history_included: 0,
        history_omitted: 0,
    }
}

/// One watcher: waits `join_after` yields, then runs sessions of the given
/// numbers of events, resuming each from what it has, until the end.
async fn watcher(
    registry: Registry,
    generation: Arc<Generation>,
    join_after: usize,
    sessions: Vec<usize>,
    live_first: bool,
) -> String {
    for _ in 0..join_after {
        tokio::task::yield_now().await;
    }
    let mut text = String::new();
    let mut budgets = sessions.into_iter();
    let mut first = true;
    loop {
        let watch = registry.watch_chat(CHAT).expect("under the watcher limit");
        let start = if first && live_first {
            Start::Live
        } else {
            Start::At { generation: Arc::clone(&generation), offset: text.len() }
        };
        first = false;
        let mut follower = Follower::new(watch, start, None, Duration::from_secs(3600), CancellationToken::new());
        let budget = budgets.next().unwrap_or(usize::MAX);
        let mut used = 0;
        while used < budget {
            let Some(event) = follower.next().await else {
                break;
            };
            let event = event.expect("without a backlog nothing is read from the store");
            used += 1;
            match event {
                Event::Delta { offset, text: piece, .. } => {
                    assert_eq!(offset, text.len(), "gap or duplicate");
                    text.push_str(&piece);
                }
                Event::Ended { partial_length, .. } => {
                    assert_eq!(partial_length, text.len());
                    return text;
                }
                Event::Started(_) | Event::Heartbeat | Event::ChatChanged(_) => {}
            }
        }
        // A Live start after the reply ended sees nothing; the client then
        // resumes by stream id, as the next session does.
        drop(follower);
        tokio::task::yield_now().await;
    }
}

fn run_case(chunks: Vec<String>, yields: Vec<usize>, watchers: Vec<(usize, Vec<usize>, bool)>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    runtime.block_on(async move {
        let registry = Registry::new(64, Duration::ZERO);
        let lock = registry.lock_chat(CHAT, "stream").expect("free chat");
        let generation = registry.publish(&lock, info(), String::new());
        let expected = chunks.concat();

        let tasks: Vec<_> = watchers
            .into_iter()
            .map(|(join_after, sessions, live_first)| {
                tokio::spawn(watcher(registry.clone(), Arc::clone(&generation), join_after, sessions, live_first))
            })
            .collect();
        for (i, chunk) in chunks.iter().enumerate() {
            generation.push_text(chunk);
            for _ in 0..yields.get(i).copied().unwrap_or(0) {
                tokio::task::yield_now().await;
            }
        }
        drop(lock);
        generation.finish(Outcome::Cancelled { reason: CancelReason::Requested });
        registry.retire(&generation);

        for task in tasks {
            assert_eq!(task.await.expect("watcher"), expected);
        }
        drop(generation);
        for _ in 0..100 {
            if registry.sizes() == (0, 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(registry.sizes(), (0, 0), "nothing outlives the reply and its watchers");
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_watcher_reconstructs_the_exact_reply(
        chunks in prop::collection::vec("\\PC{0,8}", 1..40),
        yields in prop::collection::vec(0usize..4, 40),
        watchers in prop::collection::vec(
            (0usize..60, prop::collection::vec(1usize..5, 0..6), any::<bool>()),
            1..8,
        ),
    ) {
        run_case(chunks, yields, watchers);
    }
}

#[test]
fn the_lock_admits_one_generation_per_chat() {
    let registry = Registry::new(4, Duration::ZERO);
    let lock = registry.lock_chat(CHAT, "first").expect("free");
    let refused = registry.lock_chat(CHAT, "second").expect_err("busy");
    assert!(refused.to_string().contains("first"));
    assert!(registry.lock_chat("other chat", "third").is_ok(), "chats are independent");
    drop(lock);
    assert!(registry.lock_chat(CHAT, "second").is_ok(), "released on drop");
}
