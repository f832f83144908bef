//! AddUserMessageStreaming end to end against the fake upstream, on SQLite
//! and PostgreSQL: the prompt sent, the events, what is stored, failures.

mod common;

use std::time::Duration;

use common::{API_KEY, Db, End, Reply, TestServer, reconstruct, started, terminal, until_terminal};
use roleplay_server::api::pb::{self, generation_event::Event};
use serde_json::json;
use tonic::Code;

/// A chat where every prompt layer is set, with one earlier exchange.
async fn layered_chat(server: &TestServer) -> pb::ChatSession {
    server.set_api_key().await;
    server
        .settings()
        .update_settings(pb::UpdateSettingsRequest {
            pre_system_prompt: Some("Pre: {{user}} meets {{char}}.".into()),
            system_prompt: Some("Global system, overridden.".into()),
            post_system_prompt: Some("Global post, overridden.".into()),
            ..Default::default()
        })
        .await
        .expect("settings");
    let character = server
        .characters()
        .create_character(pb::CreateCharacterRequest {
            name: "Aria".into(),
            description: "{{char}} is a bard.".into(),
            system_prompt: Some("You are {{char}}.".into()),
            post_history_instructions: Some("Answer {{user}} in rhyme.".into()),
            first_message: Some("Greetings, {{user}}!".into()),
            ..Default::default()
        })
        .await
        .expect("character")
        .into_inner();
    let profile = server
        .profiles()
        .create_user_profile(pb::CreateUserProfileRequest {
            name: "Sam".into(),
            description: "{{user}} is curious.".into(),
        })
        .await
        .expect("profile")
        .into_inner();
    server
        .chats()
        .create_chat_session(pb::CreateChatSessionRequest {
            character_id: character.id,
            user_profile_id: profile.id,
            model: Some("vendor/chat-model".into()),
            temperature: Some(0.5),
            max_tokens: Some(300),
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner()
}

async fn reply_streams_in_and_is_stored_byte_for_byte(db: Db) {
    let server = TestServer::start(db).await;
    let chat = layered_chat(&server).await;
    server.upstream.push(Reply::chunks(["Roses ", "are ", "red"]));
    let first = until_terminal(&mut server.send(&chat.id, "Hi {{char}}").await.expect("send")).await;
    assert!(matches!(terminal(&first), Event::Completed(_)));

    server.upstream.push(Reply::chunks(["Violets ", "are ", "blue, ", "café ☕ and 🎭"]).split());
    let events = until_terminal(&mut server.send(&chat.id, "And then?").await.expect("send")).await;

    // Started, contiguous Deltas, Completed with the stored message.
    let Event::Started(start) = &events[0] else { panic!("first event is Started: {events:?}") };
    assert_eq!(start.chat_session_id, chat.id);
    assert_eq!(start.model, "vendor/chat-model");
    let text = reconstruct(&events, 0, String::new());
    assert_eq!(text, "Violets are blue, café ☕ and 🎭");
    let Event::Completed(done) = events.last().expect("events") else { panic!("ends with Completed: {events:?}") };
    let stored = done.message.as_ref().expect("message");
    assert_eq!(stored.content, text, "stored content equals the concatenated deltas");
    assert_eq!(stored.id, start.assistant_message_id);
    assert_eq!(stored.stream_id.as_deref(), Some(start.stream_id.as_str()));
    assert_eq!(done.finish_reason, "stop");
    let usage = done.usage.as_ref().expect("usage");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.cost), (11, 4, Some(0.0001)));
    assert!(events.iter().all(|e| match e {
        Event::Delta(d) => d.stream_id == start.stream_id,
        _ => true,
    }));

    // The exact prompt: one system message of layers, history, post
    // instructions just before the new user message.
    let requests = server.upstream.requests();
    assert_eq!(requests.len(), 2);
    let body = &requests[1].body;
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Pre: Sam meets Aria.\n---\nYou are Aria.\n---\nAria is a bard.\n---\nSam is curious."},
            {"role": "assistant", "content": "Greetings, Sam!"},
            // Macros apply in the history too; the stored text keeps them.
            {"role": "user", "content": "Hi Aria"},
            {"role": "assistant", "content": "Roses are red"},
            {"role": "system", "content": "Answer Sam in rhyme."},
            {"role": "user", "content": "And then?"},
        ])
    );
    assert_eq!(body["model"], "vendor/chat-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["max_tokens"], 300);
    let headers = &requests[1].headers;
    assert_eq!(headers["authorization"], format!("Bearer {API_KEY}").as_str());
    assert!(headers.contains_key("http-referer") && headers.contains_key("x-title"));

    let messages = server.messages_of(&chat.id).await;
    let summary: Vec<(pb::Role, &str, pb::MessageStatus)> =
        messages.iter().map(|m| (m.role(), m.content.as_str(), m.status())).collect();
    assert_eq!(
        summary,
        vec![
            (pb::Role::Assistant, "Greetings, Sam!", pb::MessageStatus::Completed),
            (pb::Role::User, "Hi {{char}}", pb::MessageStatus::Completed),
            (pb::Role::Assistant, "Roses are red", pb::MessageStatus::Completed),
            (pb::Role::User, "And then?", pb::MessageStatus::Completed),
            (pb::Role::Assistant, "Violets are blue, café ☕ and 🎭", pb::MessageStatus::Completed),
        ]
    );
    let reply = messages.last().expect("reply");
    assert_eq!((reply.prompt_tokens, reply.completion_tokens), (Some(11), Some(4)));
    assert!(reply.duration_ms.is_some());
    assert_eq!(server.wait_registry_empty().await.0, 0, "no chat entry is left behind");
}

async fn empty_layers_are_left_out(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await; // "A bard." description, no prompts.
    until_terminal(&mut server.send(&chat.id, "hello").await.expect("send")).await;
    let body = &server.upstream.requests()[0].body;
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "A bard."}, {"role": "user", "content": "hello"}])
    );
    assert_eq!(body["model"], roleplay_server::config::DEFAULT_MODEL);
    assert!(body.get("temperature").is_none() && body.get("max_tokens").is_none(), "unset options are not sent");
}

async fn a_second_sender_is_aborted_until_the_reply_ends(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::slow(["one ", "two ", "three"], Duration::from_millis(100)));
    let mut first = server.send(&chat.id, "first").await.expect("send");
    let head = first.message().await.expect("ok").expect("event").event.expect("set");
    let Event::Started(start) = head else { panic!("Started first") };

    let err = server.send(&chat.id, "second").await.expect_err("busy");
    assert_eq!(err.code(), Code::Aborted);
    assert!(err.message().contains(&start.stream_id), "names the running stream: {}", err.message());
    until_terminal(&mut first).await;
    assert_eq!(server.messages_of(&chat.id).await.len(), 2, "the refused message was not stored");

    let events = until_terminal(&mut server.send(&chat.id, "second").await.expect("free again")).await;
    assert!(matches!(terminal(&events), Event::Completed(_)));
}

async fn retryable_statuses_are_retried_before_the_first_token(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::Status { status: 429, message: "slow down".into(), retry_after: Some(0) });
    server.upstream.push(Reply::status(503, "overloaded"));
    server.upstream.push(Reply::chunks(["fine"]));
    let events = until_terminal(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    assert!(
        matches!(terminal(&events), Event::Completed(c) if c.message.as_ref().is_some_and(|m| m.content == "fine"))
    );
    assert_eq!(server.upstream.requests().len(), 3);

    for _ in 0..3 {
        server.upstream.push(Reply::status(500, "down"));
    }
    let events = until_terminal(&mut server.send(&chat.id, "again").await.expect("send")).await;
    let Event::Failed(failed) = terminal(&events) else { panic!("fails after 3 tries: {events:?}") };
    assert_eq!(failed.code(), pb::FailureCode::UpstreamUnavailable);
    assert!(failed.message.contains("3 tries"), "{}", failed.message);
    assert_eq!(server.upstream.requests().len(), 6);
}

async fn rejected_keys_and_exhausted_credits_are_not_retried(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    for (status, code) in [(401, pb::FailureCode::KeyRejected), (402, pb::FailureCode::OutOfCredits)] {
        let before = server.upstream.requests().len();
        server.upstream.push(Reply::status(status, "nope"));
        let events = until_terminal(&mut server.send(&chat.id, "hi").await.expect("send")).await;
        let Event::Failed(failed) = terminal(&events) else { panic!("{status} fails: {events:?}") };
        assert_eq!(failed.code(), code);
        assert!(failed.message.contains("nope"), "quotes the provider: {}", failed.message);
        assert_eq!(server.upstream.requests().len(), before + 1, "{status} is not retried");
    }
    let messages = server.messages_of(&chat.id).await;
    assert_eq!(messages.last().expect("reply").status(), pb::MessageStatus::Failed);
    assert!(
        messages
            .last()
            .expect("reply")
            .error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 402") || e.contains("credits"))
    );
}

async fn a_cut_mid_reply_keeps_the_partial_and_frees_the_chat(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::chunks(["partial ", "text"]).with_end(End::Cut));
    let events = until_terminal(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    let Event::Failed(failed) = terminal(&events) else { panic!("cut fails: {events:?}") };
    assert_eq!(failed.code(), pb::FailureCode::UpstreamError);
    assert_eq!(failed.partial_length, "partial text".len() as u64);
    assert_eq!(reconstruct(&events, 0, String::new()), "partial text");
    assert_eq!(server.upstream.requests().len(), 1, "no retry once text has streamed");

    let reply = server.messages_of(&chat.id).await.pop().expect("reply");
    assert_eq!((reply.status(), reply.content.as_str()), (pb::MessageStatus::Failed, "partial text"));
    assert!(reply.error.is_some());

    server.upstream.push(Reply::chunks(["a", "b"]).with_end(End::Error("Provider returned error".into())));
    let events = until_terminal(&mut server.send(&chat.id, "again").await.expect("usable")).await;
    let Event::Failed(failed) = terminal(&events) else { panic!("error object fails: {events:?}") };
    assert!(failed.message.contains("Provider returned error"));

    server.upstream.push(Reply::chunks(["no ", "done"]).with_end(End::NoDone));
    let events = until_terminal(&mut server.send(&chat.id, "third").await.expect("usable")).await;
    assert!(
        matches!(terminal(&events), Event::Completed(c) if c.message.as_ref().is_some_and(|m| m.content == "no done"))
    );

    // A body that just ends, with neither [DONE] nor a finish reason, was
    // cut short: the partial text is stored as failed, not as a reply.
    server.upstream.push(Reply::chunks(["cut ", "short"]).with_end(End::Truncated));
    let events = until_terminal(&mut server.send(&chat.id, "fourth").await.expect("usable")).await;
    let Event::Failed(failed) = terminal(&events) else { panic!("a truncated stream fails: {events:?}") };
    assert_eq!(failed.code(), pb::FailureCode::UpstreamError);
    assert!(failed.message.contains("ended before the reply finished"), "{}", failed.message);
    assert_eq!(failed.partial_length, "cut short".len() as u64);
    let reply = server.messages_of(&chat.id).await.pop().expect("reply");
    assert_eq!((reply.status(), reply.content.as_str()), (pb::MessageStatus::Failed, "cut short"));

    // Failed replies are left out of the next prompt; their user messages stay.
    let contents: Vec<String> = server.upstream.requests()[2].body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(contents, ["A bard.", "hi", "again", "third"]);
}

async fn a_client_that_leaves_does_not_stop_the_reply(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let chunks: Vec<String> = (0..10).map(|i| format!("chunk{i} ")).collect();
    server.upstream.push(Reply::slow(chunks.clone(), Duration::from_millis(40)));
    let mut stream = server.send(&chat.id, "hi").await.expect("send");
    let start = stream.message().await.expect("ok").expect("event");
    assert!(matches!(start.event, Some(Event::Started(_))));
    drop(stream);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let reply = server.messages_of(&chat.id).await.pop().expect("reply row");
        if reply.status() != pb::MessageStatus::Streaming || tokio::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply.status(), pb::MessageStatus::Completed);
    assert_eq!(reply.content, chunks.concat());
    assert_eq!(server.upstream.hung_up(), 0, "the upstream request ran to the end");
}

async fn silence_before_the_first_token_times_out(db: Db) {
    let server = TestServer::start_with(db, |o| o.first_token_timeout = Duration::from_millis(300)).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::Hang);
    let events = until_terminal(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    let Event::Failed(failed) = terminal(&events) else { panic!("times out: {events:?}") };
    assert_eq!(failed.code(), pb::FailureCode::UpstreamTimeout);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.upstream.hung_up() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.upstream.hung_up(), 1, "the upstream connection was closed");
    assert_eq!(started(&events).chat_session_id, chat.id);
}

/// The chunk limit counts from the last event: steady gaps under it run for
/// longer than the limit in all, and one gap over it fails the reply with
/// its text so far kept.
async fn silence_between_chunks_times_out(db: Db) {
    let server = TestServer::start_with(db, |o| o.chunk_timeout = Duration::from_millis(300)).await;
    let chat = server.chat().await;
    let steady: Vec<String> = (0..8).map(|i| format!("s{i} ")).collect();
    server.upstream.push(Reply::slow(steady.clone(), Duration::from_millis(100)));
    let events = until_terminal(&mut server.send(&chat.id, "steady").await.expect("send")).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "gaps under the limit: {events:?}");
    assert_eq!(reconstruct(&events, 0, String::new()), steady.concat());

    server.upstream.push(Reply::slow(["first ", "late"], Duration::from_millis(700)));
    let events = until_terminal(&mut server.send(&chat.id, "stalling").await.expect("send")).await;
    let Event::Failed(failed) = terminal(&events) else { panic!("a gap over the limit: {events:?}") };
    assert_eq!(failed.code(), pb::FailureCode::UpstreamTimeout);
    assert!(failed.message.contains("no data for 300ms"), "{}", failed.message);
    let reply = server.messages_of(&chat.id).await.pop().expect("reply row");
    assert_eq!((reply.status(), reply.content.as_str()), (pb::MessageStatus::Failed, "first "));
}

async fn bad_messages_are_refused_before_anything_is_stored(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(server.send(&unknown, "hi").await.expect_err("unknown chat").code(), Code::NotFound);
    assert_eq!(server.send("nope", "hi").await.expect_err("malformed").code(), Code::InvalidArgument);
    for content in [String::new(), " \n\t".into(), "x".repeat(100_001)] {
        let err = server.send(&chat.id, &content).await.expect_err("bad content");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("content"), "{}", err.message());
    }
    assert!(server.messages_of(&chat.id).await.is_empty());
    assert!(server.upstream.requests().is_empty());
}

/// Chats are listed by their last activity: a send moves its chat first.
async fn a_send_moves_its_chat_to_the_top_of_the_list(db: Db) {
    let server = TestServer::start(db).await;
    let older = server.chat().await;
    let newer = server.chat().await;
    let listed_ids = || async {
        let listed = server.chats().list_chat_sessions(pb::ListChatSessionsRequest::default()).await.expect("list");
        listed.into_inner().chat_sessions.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(listed_ids().await, [newer.id.clone(), older.id.clone()], "newest first before any message");
    let events = until_terminal(&mut server.send(&older.id, "hello").await.expect("send")).await;
    assert!(matches!(terminal(&events), Event::Completed(_)));
    assert_eq!(listed_ids().await, [older.id, newer.id], "the chat just written in comes first");
}

on_every_registry!(
    a_send_moves_its_chat_to_the_top_of_the_list,
    reply_streams_in_and_is_stored_byte_for_byte,
    empty_layers_are_left_out,
    a_second_sender_is_aborted_until_the_reply_ends,
    retryable_statuses_are_retried_before_the_first_token,
    rejected_keys_and_exhausted_credits_are_not_retried,
    a_cut_mid_reply_keeps_the_partial_and_frees_the_chat,
    a_client_that_leaves_does_not_stop_the_reply,
    silence_before_the_first_token_times_out,
    silence_between_chunks_times_out,
    bad_messages_are_refused_before_anything_is_stored,
);
