//! The log of a whole conversation, from the real binary at debug level in
//! JSON: one object per line, with request ids and stream ids, and never
//! the API key, a token, the message or the reply.

mod common;

use std::{process::Stdio, time::Duration};

use common::{API_KEY, Db, FakeUpstream, Reply, TestDb, collect, process, users::As};
use roleplay_server::api::pb;

const MESSAGE: &str = "my secret word is pomegranate-7391";
const REPLY: &str = "whispered back: zebra-4821";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_logs_ids_and_never_secrets_or_text() {
    let db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = FakeUpstream::start().await;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let env = [("ROLEPLAY_LOG_FORMAT", "json"), ("RUST_LOG", "debug")];
    let mut server = process::spawn_logging(&db, dir.path(), &upstream, &env, Stdio::from(log)).await;

    // A user with a token, a key, a chat, a reply, a failure and a cancel.
    let local = As::new(server.channel.clone(), None);
    let token = local.create_user("alice", true).await;
    let alice = As::new(server.channel.clone(), Some(&token));
    alice.set_global_key().await;
    let chat = alice.open_chat("Aria").await;
    upstream.push(Reply::chunks(REPLY.split_inclusive(' ').collect::<Vec<_>>()));
    collect(&mut alice.send(&chat.id, MESSAGE).await.expect("send")).await;
    upstream.push(Reply::status(401, "invalid key"));
    collect(&mut alice.send(&chat.id, MESSAGE).await.expect("send")).await;
    // EventSource sends its token in the query; the request log redacts it.
    let events = format!("http://127.0.0.1:{}/v1/chats/{}/events?access_token={token}", server.port, chat.id);
    let sse = reqwest::Client::new().get(&events).send().await.expect("sse");
    assert_eq!(sse.status(), 200);
    drop(sse);
    let refused = reqwest::Client::new().get(format!("{events}x")).send().await.expect("sse");
    assert_eq!(refused.status(), 401);
    let wrong = As::new(server.channel.clone(), Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert!(wrong.users().get_current_user(pb::GetCurrentUserRequest {}).await.is_err());
    assert_eq!(alice.messages_of(&chat.id).await[1].content, REPLY);

    server.child.start_kill().expect("kill");
    let _ = tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await;
    let log = std::fs::read_to_string(&log_path).expect("read log");

    for (what, secret) in [("API key", API_KEY), ("token", token.as_str()), ("message", MESSAGE), ("reply", REPLY)] {
        assert!(!log.contains(secret), "the log contains the {what}");
    }
    // Pieces of the text too: a reply is logged chunk by chunk if at all.
    for fragment in ["pomegranate", "zebra-4821"] {
        assert!(!log.contains(fragment), "the log contains {fragment:?}");
    }
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}")))
        .collect();
    assert!(lines.len() > 10, "a debug log of a conversation has more than {} lines", lines.len());
    let with = |field: &str| lines.iter().filter(|l| l["span"][field].is_string()).count();
    assert!(with("request_id") > 0, "no line carries a request id");
    assert!(
        lines.iter().any(|l| l["span"]["query"] == "access_token=[REDACTED]"),
        "the SSE request is logged with its token redacted"
    );
    assert!(with("stream_id") > 0, "no line carries a stream id");
    let completed = lines.iter().find(|l| l["fields"]["message"] == "reply completed").expect("a completion line");
    assert!(completed["span"]["stream_id"].is_string());
    let spans = completed["spans"].as_array().expect("the span list");
    assert!(
        spans.iter().any(|span| span["request_id"].is_string()),
        "a reply's lines carry the request id of the RPC that started it: {completed}"
    );
}
