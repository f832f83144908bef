//! kill -9 mid-reply: after a restart the reply is marked interrupted with at
//! least the text streamed 250 ms (one checkpoint interval) before the kill,
//! and the chat works again. Runs the real binary as a child process.

mod common;

use std::time::Duration;

use common::{
    Db, FakeUpstream, Reply, TestDb,
    process::{open_chat, spawn, spawn_with},
};
use roleplay_server::api::pb::{
    self, chat_session_service_client::ChatSessionServiceClient, generation_event::Event,
    message_service_client::MessageServiceClient,
};
use tokio::{process::Command, time::Instant};

async fn a_killed_server_keeps_what_it_streamed(db: Db) {
    let upstream = FakeUpstream::start().await;
    let database = TestDb::new(db).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = spawn(&database, dir.path(), &upstream).await;

    let chat = open_chat(&server.channel).await;

    let chunks: Vec<String> = (0..1_000).map(|i| format!("token{i} ")).collect();
    let expected = chunks.concat();
    upstream.push(Reply::slow(chunks, Duration::from_millis(5)));
    let mut stream = MessageServiceClient::new(server.channel.clone())
        .add_user_message_streaming(pb::AddUserMessageRequest {
            chat_session_id: chat.id.clone(),
            content: "go".into(),
        })
        .await
        .expect("send")
        .into_inner();

    // Read for a while; remember how much had arrived two checkpoint
    // intervals (500 ms) before the kill: one interval, plus room for a
    // checkpoint write that waits behind a loaded machine's other work.
    let mut received = String::new();
    let reading_until = Instant::now() + Duration::from_millis(800);
    let mut snapshots: Vec<(Instant, usize)> = Vec::new();
    while Instant::now() < reading_until {
        let event = stream.message().await.expect("ok").expect("open").event.expect("set");
        if let Event::Delta(delta) = event {
            assert_eq!(delta.offset as usize, received.len());
            received.push_str(&delta.text);
            snapshots.push((Instant::now(), received.len()));
        }
    }
    server.child.kill().await.expect("kill -9");
    let killed_at = Instant::now();
    let owed =
        snapshots.iter().rev().find(|(at, _)| *at + Duration::from_millis(500) <= killed_at).map_or(0, |(_, len)| *len);
    assert!(owed > 0, "the test streamed long enough to checkpoint");
    drop(stream);

    let server = spawn(&database, dir.path(), &upstream).await;
    let mut chats = ChatSessionServiceClient::new(server.channel.clone());
    let messages = chats
        .list_messages(pb::ListMessagesRequest {
            chat_session_id: chat.id.clone(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner()
        .messages;
    let reply = messages.last().expect("reply row");
    assert_eq!(reply.status(), pb::MessageStatus::Interrupted);
    assert!(
        reply.content.len() >= owed,
        "stored {} bytes, {owed} were streamed 500 ms before the kill",
        reply.content.len()
    );
    assert!(expected.starts_with(&reply.content), "the stored text is a prefix of the reply");

    // The chat is usable, and the interrupted partial is part of its history.
    upstream.push(Reply::chunks(["back"]));
    let mut next = MessageServiceClient::new(server.channel.clone())
        .add_user_message_streaming(pb::AddUserMessageRequest {
            chat_session_id: chat.id.clone(),
            content: "again".into(),
        })
        .await
        .expect("chat usable after restart")
        .into_inner();
    let events = common::until_terminal(&mut next).await;
    assert!(matches!(common::terminal(&events), Event::Completed(_)));
    let requests = upstream.requests();
    let prompt = &requests.last().expect("request").body["messages"];
    // [system "A bard.", user "go", the interrupted reply, user "again"]
    assert_eq!(prompt[2]["content"].as_str(), Some(reply.content.as_str()));
}

async fn sigterm_drains_and_exits_cleanly(db: Db) {
    let upstream = FakeUpstream::start().await;
    let database = TestDb::new(db).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = spawn_with(&database, dir.path(), &upstream, &[("ROLEPLAY_SHUTDOWN_GRACE", "300ms")]).await;
    let chat = open_chat(&server.channel).await;
    let chunks: Vec<String> = (0..1_000).map(|i| format!("token{i} ")).collect();
    upstream.push(Reply::slow(chunks, Duration::from_millis(5)));
    let mut stream = MessageServiceClient::new(server.channel.clone())
        .add_user_message_streaming(pb::AddUserMessageRequest {
            chat_session_id: chat.id.clone(),
            content: "go".into(),
        })
        .await
        .expect("send")
        .into_inner();
    let mut events = Vec::new();
    while events.len() < 5 {
        events.push(stream.message().await.expect("ok").expect("open").event.expect("set"));
    }

    let pid = server.child.id().expect("running").to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill -TERM");
    assert!(status.success());
    events.extend(common::until_terminal(&mut stream).await);
    let Event::Cancelled(cancelled) = common::terminal(&events) else {
        panic!("cancelled at shutdown: {:?}", events.last())
    };
    assert_eq!(cancelled.reason(), pb::CancelReason::Shutdown);
    let partial = common::reconstruct(&events, 0, String::new());
    let exit =
        tokio::time::timeout(Duration::from_secs(20), server.child.wait()).await.expect("exits").expect("status");
    assert!(exit.success(), "exit status {exit:?}");

    let server = spawn(&database, dir.path(), &upstream).await;
    let messages = ChatSessionServiceClient::new(server.channel.clone())
        .list_messages(pb::ListMessagesRequest { chat_session_id: chat.id, page_size: 10, page_token: String::new() })
        .await
        .expect("list")
        .into_inner()
        .messages;
    let reply = messages.last().expect("reply");
    assert_eq!((reply.status(), reply.content.as_str()), (pb::MessageStatus::Cancelled, partial.as_str()));
}

on_both_databases!(a_killed_server_keeps_what_it_streamed, sigterm_drains_and_exits_cleanly);
