//! The database failing under a running server (PostgreSQL): replies keep
//! streaming, the final write is retried, a write that cannot be made ends the
//! reply as Failed(STORAGE) with the chat released, a watch that cannot read
//! the replies it missed ends with a status, and everything heals once the
//! database is back.

mod common;

use std::time::Duration;

use common::{Db, Reply, TestServer, reconstruct, started, terminal, until_terminal};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use roleplay_server::api::pb::{self, generation_event::Event};
use tonic::Code;

async fn admin(server: &TestServer) -> (AsyncPgConnection, String) {
    let (base, schema) = server.db.postgres.clone().expect("a PostgreSQL test");
    (AsyncPgConnection::establish(&base).await.expect("admin connection"), schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_reply_keeps_streaming_and_fails_cleanly_then_heals() {
    let server = TestServer::start(Db::Postgres).await;
    let chat = server.chat().await;
    let chunks: Vec<String> = (0..60).map(|i| format!("line{i} ")).collect();
    let expected = chunks.concat();
    server.upstream.push(Reply::slow(chunks, Duration::from_millis(30)));
    let mut stream = server.send(&chat.id, "hi").await.expect("send");
    let mut events = vec![stream.message().await.expect("ok").expect("open").event.expect("set")];

    // The database goes away under the running reply.
    let (mut admin, schema) = admin(&server).await;
    admin.batch_execute(&format!("ALTER SCHEMA {schema} RENAME TO {schema}_away")).await.expect("take the schema away");

    events.extend(until_terminal(&mut stream).await);
    assert_eq!(reconstruct(&events, 0, String::new()), expected, "watchers got the whole reply regardless");
    let Event::Failed(failed) = terminal(&events) else { panic!("the reply could not be stored: {events:?}") };
    assert_eq!(failed.code(), pb::FailureCode::Storage);
    assert!(failed.message.contains("could not be stored"), "{}", failed.message);
    assert!(server.state.registry.live(&chat.id).is_none(), "the chat's lock is released");

    // The database comes back: the same pool serves again.
    admin.batch_execute(&format!("ALTER SCHEMA {schema}_away RENAME TO {schema}")).await.expect("bring it back");
    server.upstream.push(Reply::chunks(["back ", "again"]));
    let events = until_terminal(&mut server.send(&chat.id, "still there?").await.expect("send after recovery")).await;
    assert!(
        matches!(terminal(&events), Event::Completed(c) if c.message.as_ref().is_some_and(|m| m.content == "back again"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_cut_while_idle_are_replaced() {
    let server = TestServer::start(Db::Postgres).await;
    let chat = server.chat().await;
    let (mut admin, schema) = admin(&server).await;
    for _ in 0..3 {
        admin
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{schema}'"
            ))
            .await
            .expect("cut the server's connections");
        let settings = server.settings().get_settings(pb::GetSettingsRequest {}).await.expect("served after the cut");
        assert!(settings.into_inner().api_key_set);
        let events = until_terminal(&mut server.send(&chat.id, "hello").await.expect("send after the cut")).await;
        assert!(matches!(terminal(&events), Event::Completed(_)));
    }
}

/// A client that hangs up while its message is being stored (here, behind a
/// lock another session holds) does not leave it half-started: once stored,
/// its reply runs and is stored too, as when a client leaves mid-reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_while_the_message_is_stored_still_runs_the_reply() {
    let server = TestServer::start(Db::Postgres).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::chunks(["Stored ", "anyway."]));
    let (mut admin, schema) = admin(&server).await;
    admin.batch_execute(&format!("BEGIN; LOCK TABLE {schema}.messages IN EXCLUSIVE MODE")).await.expect("lock");

    let send = server.send(&chat.id, "Are you there?");
    let gave_up = tokio::time::timeout(Duration::from_millis(500), send).await;
    assert!(gave_up.is_err(), "the send waits for the lock, and the client gives up");
    admin.batch_execute("COMMIT").await.expect("release the lock");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let messages = loop {
        let messages = server.messages_of(&chat.id).await;
        if messages.iter().any(|m| m.content == "Stored anyway.") || tokio::time::Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let texts: Vec<(&str, pb::MessageStatus)> = messages.iter().map(|m| (m.content.as_str(), m.status())).collect();
    assert_eq!(
        texts,
        [("Are you there?", pb::MessageStatus::Completed), ("Stored anyway.", pb::MessageStatus::Completed)]
    );
    assert!(server.state.registry.live(&chat.id).is_none(), "the chat is free again");
}

/// A watch that cannot read the replies it missed ends with a status (it
/// neither hangs nor skips them); resuming once the database answers again
/// delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_replies_that_cannot_be_read_end_the_watch_with_a_status() {
    let server = TestServer::start(Db::Postgres).await;
    let chat = server.chat().await;
    let mut sent = Vec::new();
    for words in [["a1 ", "a2"], ["b1 ", "b2"]] {
        server.upstream.push(Reply::chunks(words));
        let events = until_terminal(&mut server.send(&chat.id, "next").await.expect("send")).await;
        sent.push((started(&events).clone(), reconstruct(&events, 0, String::new())));
    }
    // Nobody watches the chat, so the registry forgets it (the replies stay
    // resumable from memory): what came after A must be read back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.state.registry.sizes().0 > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (a, a_text) = &sent[0];
    let resume = || pb::SubscribeChatSessionRequest {
        chat_session_id: chat.id.clone(),
        resume: Some(pb::ResumePosition { stream_id: a.stream_id.clone(), offset: a_text.len() as u64 }),
    };

    let (mut admin, schema) = admin(&server).await;
    // ACCESS EXCLUSIVE: the one mode that also blocks reads.
    admin.batch_execute(&format!("BEGIN; LOCK TABLE {schema}.messages IN ACCESS EXCLUSIVE MODE")).await.expect("lock");
    let mut watch = server.messages().subscribe_chat_session(resume()).await.expect("subscribe").into_inner();
    for _ in 0..2 {
        let event = watch.message().await.expect("A's end, from memory").expect("open").event.expect("set");
        assert!(matches!(event, Event::Started(_) | Event::Completed(_)), "{event:?}");
    }
    // The read of what followed waits on the lock; its connection is cut.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cut: Vec<bool> = diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity \
             WHERE application_name = '{schema}' AND wait_event_type = 'Lock'"
        ))
        .load::<Terminated>(&mut admin)
        .await
        .expect("cut")
        .into_iter()
        .map(|t| t.cut)
        .collect();
        if cut.contains(&true) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the watch never read the missed replies");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), watch.message()).await.expect("the watch ends");
    let status = ended.expect_err("with a status");
    assert!(matches!(status.code(), Code::Unavailable | Code::Internal), "{status:?}");
    admin.batch_execute("COMMIT").await.expect("release the lock");

    let mut watch = server.messages().subscribe_chat_session(resume()).await.expect("resume again").into_inner();
    let mut events = until_terminal(&mut watch).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "A's end again: {events:?}");
    events = until_terminal(&mut watch).await;
    let (b, b_text) = &sent[1];
    assert_eq!(started(&events).stream_id, b.stream_id, "then B, which was missed");
    assert_eq!(&reconstruct(&events, 0, String::new()), b_text);
}

#[derive(diesel::QueryableByName)]
struct Terminated {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    cut: bool,
}
