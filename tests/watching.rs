//! Following chats through the real server: joining mid-reply, resuming by
//! offset (live, finished in memory, finished in the database), later replies
//! on the same watch, replies missed while away, cancel, idle timeout,
//! heartbeats, watcher limits.

mod common;

use std::time::Duration;

use common::{Db, Reply, TestServer, collect, reconstruct, slow_reply, started, terminal, until_terminal};
use roleplay_server::api::pb::{self, generation_event::Event};
use tonic::{Code, Streaming};

async fn subscribe(
    server: &TestServer,
    chat_id: &str,
    resume: Option<(&str, usize)>,
) -> Result<Streaming<pb::GenerationEvent>, tonic::Status> {
    server
        .messages()
        .subscribe_chat_session(pb::SubscribeChatSessionRequest {
            chat_session_id: chat_id.into(),
            resume: resume
                .map(|(stream_id, offset)| pb::ResumePosition { stream_id: stream_id.into(), offset: offset as u64 }),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Reads until at least `bytes` of reply text arrived; returns the events.
async fn read_text(stream: &mut Streaming<pb::GenerationEvent>, bytes: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut received = 0;
    while received < bytes {
        let event = stream.message().await.expect("ok").expect("open").event.expect("set");
        if let Event::Delta(d) = &event {
            received = d.offset as usize + d.text.len();
        }
        let end = common::is_terminal(&event);
        events.push(event);
        if end {
            break;
        }
    }
    events
}

async fn cancel(
    server: &TestServer,
    chat_id: &str,
    stream_id: Option<&str>,
) -> Result<pb::CancelGenerationResponse, tonic::Status> {
    server
        .messages()
        .cancel_generation(pb::CancelGenerationRequest {
            chat_session_id: chat_id.into(),
            stream_id: stream_id.map(Into::into),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn joining_mid_reply_gets_all_of_it(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let (reply, expected) = slow_reply(20, 25);
    server.upstream.push(reply);
    let mut caller = server.send(&chat.id, "hi").await.expect("send");
    let head = read_text(&mut caller, 30).await;

    let mut late = subscribe(&server, &chat.id, None).await.expect("subscribe");
    let late_events = until_terminal(&mut late).await;
    assert_eq!(started(&late_events).stream_id, started(&head).stream_id);
    let first_delta =
        late_events.iter().find_map(|e| if let Event::Delta(d) = e { Some(d) } else { None }).expect("delta");
    assert_eq!(first_delta.offset, 0, "a join without resume starts at 0");
    assert!(first_delta.text.len() >= 30, "the catch-up delta holds everything so far in one piece");
    assert_eq!(reconstruct(&late_events, 0, String::new()), expected);

    let mut caller_events = head;
    caller_events.extend(until_terminal(&mut caller).await);
    assert_eq!(reconstruct(&caller_events, 0, String::new()), expected);
    drop(late);
    drop(caller);
    assert_eq!(server.wait_registry_empty().await.0, 0);
}

async fn resuming_at_an_offset_sends_each_byte_once(db: Db) {
    let server = TestServer::start_with(db, |o| o.resume_grace = Duration::from_millis(200)).await;
    let chat = server.chat().await;
    let (reply, expected) = slow_reply(20, 25);
    server.upstream.push(reply);
    let mut caller = server.send(&chat.id, "hi").await.expect("send");
    let events = read_text(&mut caller, 40).await;
    let stream_id = started(&events).stream_id.clone();
    let have = reconstruct(&events, 0, String::new());
    drop(caller); // the connection drops mid-reply

    let mut resumed = subscribe(&server, &chat.id, Some((&stream_id, have.len()))).await.expect("resume live");
    let rest = until_terminal(&mut resumed).await;
    assert_eq!(started(&rest).stream_id, stream_id);
    let full = reconstruct(&rest, have.len(), have.clone());
    assert_eq!(full, expected);
    let Event::Completed(done) = terminal(&rest) else { panic!("completed") };
    assert_eq!(done.message.as_ref().expect("message").content, expected);
    drop(resumed);

    // Finished, still in memory: the tail from any offset, then the end.
    let offset = expected.char_indices().nth(7).expect("char").0;
    let tail = collect_until_terminal(&server, &chat.id, &stream_id, offset).await;
    assert_eq!(reconstruct(&tail, offset, expected[..offset].to_owned()), expected);

    // After the grace period it comes from the database, the same way.
    assert_eq!(server.wait_registry_empty().await, (0, 0), "memory is released after the grace period");
    let tail = collect_until_terminal(&server, &chat.id, &stream_id, offset).await;
    assert_eq!(reconstruct(&tail, offset, expected[..offset].to_owned()), expected);
    assert!(matches!(terminal(&tail), Event::Completed(c) if c.finish_reason == "stop"));
    let at_end = collect_until_terminal(&server, &chat.id, &stream_id, expected.len()).await;
    assert!(!at_end.iter().any(|e| matches!(e, Event::Delta(_))), "nothing is owed at the end");

    let inside_char = expected.find('ö').expect("ö") + 1;
    let err = subscribe(&server, &chat.id, Some((&stream_id, inside_char))).await.expect_err("mid-character");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = subscribe(&server, &chat.id, Some((&stream_id, expected.len() + 1))).await.expect_err("past the end");
    assert_eq!(err.code(), Code::InvalidArgument);
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = subscribe(&server, &chat.id, Some((&unknown, 0))).await.expect_err("unknown stream");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("not resumable"), "{}", err.message());
}

async fn collect_until_terminal(server: &TestServer, chat_id: &str, stream_id: &str, offset: usize) -> Vec<Event> {
    let mut stream = subscribe(server, chat_id, Some((stream_id, offset))).await.expect("resume");
    until_terminal(&mut stream).await
}

async fn later_replies_arrive_on_the_same_watch(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let mut watch = subscribe(&server, &chat.id, None).await.expect("subscribe");
    for (i, words) in [["one ", "two"], ["three ", "four"]].into_iter().enumerate() {
        server.upstream.push(Reply::chunks(words));
        let caller = until_terminal(&mut server.send(&chat.id, &format!("message {i}")).await.expect("send")).await;
        let seen = until_terminal(&mut watch).await;
        assert_eq!(started(&seen).stream_id, started(&caller).stream_id);
        assert_eq!(reconstruct(&seen, 0, String::new()), words.concat());
    }
    let status = server
        .messages()
        .get_stream_status(pb::GetStreamStatusRequest { chat_session_id: chat.id.clone() })
        .await
        .expect("status")
        .into_inner();
    assert_eq!((status.streaming, status.watchers), (false, 1));
}

/// A reply, sent and read to its end by its sender: (Started, the text).
async fn complete_reply(server: &TestServer, chat_id: &str, words: [&str; 2]) -> (pb::Started, String) {
    server.upstream.push(Reply::chunks(words));
    let events = until_terminal(&mut server.send(chat_id, "next").await.expect("send")).await;
    (started(&events).clone(), reconstruct(&events, 0, String::new()))
}

/// Events of one watch, grouped per reply, until `replies` have ended.
async fn replies_on(stream: &mut Streaming<pb::GenerationEvent>, replies: usize) -> Vec<Vec<Event>> {
    let mut seen = Vec::new();
    // Heartbeats keep an idle watch open: bound the wait, so a reply that
    // never comes fails the test instead of hanging it.
    let all = async {
        while seen.len() < replies {
            seen.push(until_terminal(stream).await);
        }
    };
    let arrived = tokio::time::timeout(Duration::from_secs(15), all).await;
    assert!(arrived.is_ok(), "{} of {replies} replies arrived: {seen:?}", seen.len());
    seen
}

/// A client that saw reply A and went away while B and C were generated
/// resumes at A's end: it gets B and C, each once and in order, then nothing
/// more. Three ways the gap arises: another client kept the chat watched
/// (the chat's newest is C, and C is still streaming), nobody did (the
/// server's memory of the chat was dropped), and B and C already left memory
/// (read back from the database).
async fn a_watcher_gets_every_reply_it_missed(db: Db) {
    for (case, grace, keep_watching) in [
        ("watched", Duration::from_secs(60), true),
        ("unwatched", Duration::from_secs(60), false),
        ("stored", Duration::ZERO, false),
    ] {
        let server = TestServer::start_with(db, |o| o.resume_grace = grace).await;
        let chat = server.chat().await;
        let keeper = if keep_watching { Some(subscribe(&server, &chat.id, None).await.expect("keeper")) } else { None };
        let (a, a_text) = complete_reply(&server, &chat.id, ["a1 ", "a2"]).await;
        let (b, b_text) = complete_reply(&server, &chat.id, ["b1 ", "b2"]).await;
        let (c, c_text) = if keep_watching {
            let (reply, text) = slow_reply(30, 20);
            server.upstream.push(reply);
            let mut caller = server.send(&chat.id, "last").await.expect("send");
            let head = read_text(&mut caller, 20).await;
            (started(&head).clone(), text)
        } else {
            complete_reply(&server, &chat.id, ["c1 ", "c2"]).await
        };

        let mut resumed = subscribe(&server, &chat.id, Some((&a.stream_id, a_text.len()))).await.expect("resume");
        let replies = replies_on(&mut resumed, 3).await;
        let ids: Vec<&str> = replies.iter().map(|events| started(events).stream_id.as_str()).collect();
        assert_eq!(ids, [&a.stream_id, &b.stream_id, &c.stream_id], "{case}: A's end, then B and C in order");
        assert!(!replies[0].iter().any(|e| matches!(e, Event::Delta(_))), "{case}: nothing of A is owed");
        for ((events, sent), text) in replies[1..].iter().zip([&b, &c]).zip([&b_text, &c_text]) {
            assert_eq!(&reconstruct(events, 0, String::new()), text, "{case}: every byte once");
            assert_eq!(started(events).user_message_id, sent.user_message_id, "{case}: names the message it answers");
            assert_eq!(started(events).assistant_message_id, sent.assistant_message_id, "{case}");
            assert!(matches!(terminal(events), Event::Completed(_)), "{case}");
        }
        let more = tokio::time::timeout(Duration::from_millis(300), resumed.message()).await;
        assert!(
            matches!(&more, Err(_) | Ok(Ok(Some(pb::GenerationEvent { event: Some(Event::Heartbeat(_)) })))),
            "{case}: nothing is sent twice: {more:?}"
        );
        drop((resumed, keeper));
    }
}

async fn cancel_stops_the_reply_and_keeps_the_partial(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let (reply, expected) = slow_reply(200, 20);
    server.upstream.push(reply);
    let mut caller = server.send(&chat.id, "hi").await.expect("send");
    let mut watcher = subscribe(&server, &chat.id, None).await.expect("subscribe");
    let head = read_text(&mut caller, 20).await;
    let stream_id = started(&head).stream_id.clone();

    let status = server
        .messages()
        .get_stream_status(pb::GetStreamStatusRequest { chat_session_id: chat.id.clone() })
        .await
        .expect("status")
        .into_inner();
    assert!(
        status.streaming && status.stream_id == stream_id && status.text_length >= 20 && status.watchers == 2,
        "{status:?}"
    );

    let response = cancel(&server, &chat.id, Some(&stream_id)).await.expect("cancel");
    assert!(response.cancelled, "{response:?}");
    let mut caller_events = head;
    caller_events.extend(until_terminal(&mut caller).await);
    let Event::Cancelled(cancelled) = terminal(&caller_events) else { panic!("caller sees Cancelled") };
    assert_eq!(cancelled.reason(), pb::CancelReason::Requested);
    let partial = reconstruct(&caller_events, 0, String::new());
    assert_eq!(cancelled.partial_length as usize, partial.len());
    assert!(partial.len() < expected.len() && expected.starts_with(&partial));
    let watcher_events = until_terminal(&mut watcher).await;
    assert!(matches!(terminal(&watcher_events), Event::Cancelled(_)));
    assert_eq!(reconstruct(&watcher_events, 0, String::new()), partial);

    let stored = server.messages_of(&chat.id).await.pop().expect("reply");
    assert_eq!((stored.status(), stored.content.as_str()), (pb::MessageStatus::Cancelled, partial.as_str()));
    assert_eq!(server.upstream.hung_up(), 1, "the upstream request was dropped");

    let again = cancel(&server, &chat.id, None).await.expect("no-op");
    assert!(!again.cancelled && again.message.contains("nothing to cancel"), "{again:?}");
    let finished = cancel(&server, &chat.id, Some(&stream_id)).await.expect("finished no-op");
    assert!(!finished.cancelled && finished.message.contains("already finished"), "{finished:?}");
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(cancel(&server, &chat.id, Some(&unknown)).await.expect_err("wrong id").code(), Code::NotFound);

    server.upstream.push(Reply::chunks(["after"]));
    let next = until_terminal(&mut server.send(&chat.id, "next").await.expect("chat is free")).await;
    assert!(matches!(terminal(&next), Event::Completed(_)));
    let prompt = &server.upstream.requests()[1].body["messages"];
    assert_eq!(prompt[2]["content"], partial.as_str(), "the cancelled partial is part of the history");
}

async fn cancel_works_before_the_first_token(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::Hang);
    let mut caller = server.send(&chat.id, "hi").await.expect("send");
    let head = caller.message().await.expect("ok").expect("event").event.expect("set");
    assert!(matches!(head, Event::Started(_)));
    let response = cancel(&server, &chat.id, None).await.expect("cancel");
    assert!(response.cancelled);
    let events = until_terminal(&mut caller).await;
    let Event::Cancelled(cancelled) = terminal(&events) else { panic!("Cancelled") };
    assert_eq!(cancelled.partial_length, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.upstream.hung_up() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.upstream.hung_up(), 1, "the hanging upstream request was closed");
    let stored = server.messages_of(&chat.id).await.pop().expect("reply");
    assert_eq!((stored.status(), stored.content.as_str()), (pb::MessageStatus::Cancelled, ""));
}

async fn a_reply_nobody_watches_times_out(db: Db) {
    let server = TestServer::start_with(db, |o| o.idle_timeout = Duration::from_millis(300)).await;
    let chat = server.chat().await;
    let (reply, _) = slow_reply(400, 20);
    server.upstream.push(reply);
    let mut caller = server.send(&chat.id, "hi").await.expect("send");
    read_text(&mut caller, 10).await;
    drop(caller);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    let stored = loop {
        let stored = server.messages_of(&chat.id).await.pop().expect("reply");
        if stored.status() != pb::MessageStatus::Streaming || tokio::time::Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stored.status(), pb::MessageStatus::Cancelled);
    assert!(!stored.content.is_empty(), "the partial text is kept");
    assert_eq!(server.wait_registry_empty().await.0, 0);
}

async fn idle_watches_get_heartbeats_and_watchers_are_limited(db: Db) {
    let server = TestServer::start_with(db, |o| {
        o.heartbeat_interval = Duration::from_millis(100);
        o.max_watchers_per_chat = 2;
    })
    .await;
    let chat = server.chat().await;
    let mut first = subscribe(&server, &chat.id, None).await.expect("first");
    let event = tokio::time::timeout(Duration::from_secs(2), first.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    assert!(matches!(event.event, Some(Event::Heartbeat(_))));
    let second = subscribe(&server, &chat.id, None).await.expect("second");
    let err = subscribe(&server, &chat.id, None).await.expect_err("third");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains('2'), "{}", err.message());
    let err = server.send(&chat.id, "hi").await.expect_err("the sender is a watcher too");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(server.messages_of(&chat.id).await.len(), 0, "a refused send stores nothing");

    drop(second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let third = loop {
        match subscribe(&server, &chat.id, None).await {
            Ok(stream) => break stream,
            Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(err) => panic!("a place was freed: {err}"),
        }
    };
    drop((first, third));
    assert_eq!(server.wait_registry_empty().await, (0, 0));
}

async fn shutdown_ends_watches_after_their_replies(db: Db) {
    let mut server = TestServer::start_with(db, |o| o.shutdown_grace = Duration::from_millis(1500)).await;
    let chat = server.chat().await;
    let (reply, _) = slow_reply(400, 20);
    server.upstream.push(reply);
    let mut caller = server.send(&chat.id, "hi").await.expect("send");
    let mut watch = subscribe(&server, &chat.id, None).await.expect("subscribe");
    read_text(&mut caller, 10).await;
    let other_chat = server.chat().await;
    server.begin_shutdown();
    // While running replies drain, new ones are refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let refused = loop {
        match server.send(&other_chat.id, "too late").await {
            Err(status) => break status,
            Ok(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(_) => panic!("a new reply started during shutdown"),
        }
    };
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("shutting down"));
    server.shutdown_and_wait().await;
    let events = collect(&mut caller).await;
    let Event::Cancelled(cancelled) = terminal(&events) else { panic!("cancelled at shutdown: {events:?}") };
    assert_eq!(cancelled.reason(), pb::CancelReason::Shutdown);
    let watched = collect(&mut watch).await;
    assert!(matches!(terminal(&watched), Event::Cancelled(_)), "the watch got the end, then closed");
    let stored = server.state.store.chat_history(&chat.id).await.expect("history").pop().expect("reply");
    assert_eq!(stored.status, "cancelled");
    assert!(!stored.content.is_empty());
}

on_every_registry!(
    joining_mid_reply_gets_all_of_it,
    resuming_at_an_offset_sends_each_byte_once,
    later_replies_arrive_on_the_same_watch,
    a_watcher_gets_every_reply_it_missed,
    cancel_stops_the_reply_and_keeps_the_partial,
    cancel_works_before_the_first_token,
    a_reply_nobody_watches_times_out,
    idle_watches_get_heartbeats_and_watchers_are_limited,
    shutdown_ends_watches_after_their_replies,
);
