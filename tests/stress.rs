//! 200 watchers joining, dropping and resuming during a 2,000-chunk reply,
//! through the real server: every one reconstructs the reply exactly.

mod common;

use std::time::Duration;

use common::{Db, Reply, TestServer, is_terminal};
use roleplay_server::api::pb::{self, generation_event::Event, message_service_client::MessageServiceClient};
use tonic::transport::Channel;

const WATCHERS: usize = 200;
const CHUNKS: usize = 2_000;

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Follows the chat, dropping the connection after a random number of events
/// and resuming from what it has, until the reply ends. Returns the text and
/// how many times it reconnected.
async fn flaky_watcher(channel: Channel, chat_id: String, seed: u64) -> (String, usize) {
    let mut rng = XorShift(seed | 1);
    let mut client = MessageServiceClient::new(channel);
    let mut text = String::new();
    let mut stream_id: Option<String> = None;
    let mut sessions = 0;
    loop {
        sessions += 1;
        let resume =
            stream_id.as_ref().map(|id| pb::ResumePosition { stream_id: id.clone(), offset: text.len() as u64 });
        let mut stream = client
            .subscribe_chat_session(pb::SubscribeChatSessionRequest { chat_session_id: chat_id.clone(), resume })
            .await
            .expect("subscribe")
            .into_inner();
        let budget = 1 + rng.below(30);
        for _ in 0..budget {
            let event = tokio::time::timeout(Duration::from_secs(30), stream.message())
                .await
                .expect("stalled")
                .expect("ok")
                .expect("open")
                .event
                .expect("set");
            match &event {
                Event::Started(s) => stream_id = Some(s.stream_id.clone()),
                Event::Delta(d) => {
                    assert_eq!(d.offset as usize, text.len(), "watcher {seed}: gap or duplicate");
                    text.push_str(&d.text);
                }
                _ => {}
            }
            if is_terminal(&event) {
                return (text, sessions);
            }
        }
        drop(stream);
        if rng.below(2) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_flaky_watchers_each_get_the_exact_reply() {
    storm(Db::Sqlite).await;
}

/// The same storm with the registry shared through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_flaky_watchers_each_get_the_exact_reply_through_redis() {
    storm(Db::Redis).await;
}

async fn storm(db: Db) {
    let server = TestServer::start_with(db, |o| o.max_watchers_per_chat = WATCHERS + 8).await;
    let chat = server.chat().await;
    let chunks: Vec<String> = (0..CHUNKS).map(|i| format!("{i}é🎭 ")).collect();
    let expected = chunks.concat();
    server.upstream.push(Reply::slow(chunks, Duration::from_millis(1)));

    let mut caller = server.send(&chat.id, "go").await.expect("send");
    // One connection per watcher, as separate tabs and devices have. (h2
    // clients refuse to cancel more than 1,024 streams on one connection.)
    let mut watchers = Vec::new();
    for i in 0..WATCHERS {
        let channel = server.new_channel().await;
        watchers.push(tokio::spawn(flaky_watcher(channel, chat.id.clone(), 0x9e37_79b9 * (i as u64 + 1))));
    }

    let caller_events = common::until_terminal(&mut caller).await;
    assert_eq!(common::reconstruct(&caller_events, 0, String::new()), expected);
    let mut reconnects = 0;
    for watcher in watchers {
        let (text, sessions) =
            tokio::time::timeout(Duration::from_secs(120), watcher).await.expect("watcher finishes").expect("watcher");
        assert_eq!(text.len(), expected.len());
        assert!(text == expected, "a watcher's text differs from the reply");
        reconnects += sessions - 1;
    }
    assert!(reconnects >= WATCHERS, "the watchers really did drop and resume ({reconnects} resumes)");
    let stored = server.messages_of(&chat.id).await.pop().expect("reply");
    assert_eq!(stored.content, expected);
    drop(caller);
    assert_eq!(server.wait_registry_empty().await.0, 0, "no chat entry outlives its watchers");
}
