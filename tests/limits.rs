//! Rate and concurrency limits through the real server: refused with
//! RESOURCE_EXHAUSTED and a RetryInfo, nothing stored, and accepted again
//! once the allowance refills or a reply ends.

mod common;

use std::time::Duration;

use common::{Db, Reply, TestServer, collect};
use roleplay_server::{api::pb, limits::LimitOptions};
use tonic::Code;
use tonic_types::StatusExt;

/// The delay a refusal asks for; it must carry one.
fn retry_delay(status: &tonic::Status) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .unwrap_or_else(|| panic!("no RetryInfo in {status:?}"))
}

async fn start(db: Db, limits: LimitOptions) -> TestServer {
    TestServer::start_with(db, |options| options.limits = limits).await
}

async fn a_chats_allowance_refuses_then_refills(db: Db) {
    let limits =
        LimitOptions { messages_per_minute_per_chat: 2, window: Duration::from_secs(2), ..LimitOptions::UNLIMITED };
    let server = start(db, limits).await;
    let chat = server.chat().await;
    server.upstream.set_default(Reply::chunks(["ok"]));
    for _ in 0..2 {
        collect(&mut server.send(&chat.id, "Hi").await.expect("within the allowance")).await;
    }
    let stored = server.messages_of(&chat.id).await;
    let refused = server.send(&chat.id, "One more").await.expect_err("over the chat's allowance");
    let delay = retry_delay(&refused);
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(2), "{delay:?}");
    assert!(refused.message().contains("this chat"), "{}", refused.message());
    assert_eq!(server.messages_of(&chat.id).await, stored, "a refused message is not stored");

    // Another chat has its own allowance.
    let other = server.chat().await;
    collect(&mut server.send(&other.id, "Hi").await.expect("other chat")).await;

    tokio::time::sleep(delay).await;
    collect(&mut server.send(&chat.id, "Again").await.expect("refilled")).await;
}

async fn a_users_allowance_spans_their_chats(db: Db) {
    let limits =
        LimitOptions { messages_per_minute_per_user: 3, window: Duration::from_secs(3), ..LimitOptions::UNLIMITED };
    let server = start(db, limits).await;
    server.upstream.set_default(Reply::chunks(["ok"]));
    let local = server.as_user(None);
    let alice = server.as_user(Some(&local.create_user("alice", true).await));
    let bob = server.as_user(Some(&alice.create_user("bob", false).await));
    alice.set_global_key().await;
    for _ in 0..3 {
        let chat = alice.open_chat("Aria").await;
        collect(&mut alice.send(&chat.id, "Hi").await.expect("within the allowance")).await;
    }
    let chat = alice.open_chat("Aria").await;
    let refused = alice.send(&chat.id, "Hi").await.expect_err("over the user's allowance");
    let delay = retry_delay(&refused);
    assert!(alice.messages_of(&chat.id).await.is_empty());
    // Bob is not held back by Alice.
    let bobs = bob.open_chat("Aria").await;
    collect(&mut bob.send(&bobs.id, "Hi").await.expect("bob's own allowance")).await;
    tokio::time::sleep(delay).await;
    collect(&mut alice.send(&chat.id, "Hi").await.expect("refilled")).await;
}

async fn concurrent_generations_per_user_are_capped(db: Db) {
    let server = start(db, LimitOptions { generations_per_user: 1, ..LimitOptions::UNLIMITED }).await;
    let first = server.chat().await;
    let second = server.chat().await;
    server.upstream.push(Reply::Hang);
    let mut running = server.send(&first.id, "Take your time").await.expect("first reply");
    running.message().await.expect("started");

    let refused = server.send(&second.id, "Me too").await.expect_err("one at a time");
    assert!(retry_delay(&refused) > Duration::ZERO);
    assert!(refused.message().contains("being generated"), "{}", refused.message());
    assert!(server.messages_of(&second.id).await.is_empty(), "nothing stored for the refused message");

    server
        .messages()
        .cancel_generation(pb::CancelGenerationRequest { chat_session_id: first.id.clone(), stream_id: None })
        .await
        .expect("cancel");
    server.upstream.push(Reply::chunks(["ok"]));
    collect(&mut server.send(&second.id, "Now?").await.expect("the slot is free after the cancel")).await;
}

on_both_databases!(
    a_chats_allowance_refuses_then_refills,
    a_users_allowance_spans_their_chats,
    concurrent_generations_per_user_are_capped,
);

/// A burst beyond the bound on starts is refused at once (RESOURCE_EXHAUSTED
/// with a RetryInfo, nothing stored) rather than queued; the admitted starts
/// go on, and a retry later is accepted. The starts are held by a lock on
/// the messages table, so they stay pending for as long as the test says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_beyond_the_admission_bound_are_refused_at_once() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let server = start(Db::Postgres, LimitOptions { max_pending_starts: 2, ..LimitOptions::UNLIMITED }).await;
    server.upstream.set_default(Reply::chunks(["ok"]));
    let chats = [server.chat().await, server.chat().await, server.chat().await];
    let (base, schema) = server.db.postgres.clone().expect("PostgreSQL");
    let mut holder = AsyncPgConnection::establish(&base).await.expect("connect");
    holder
        .batch_execute(&format!("BEGIN; LOCK TABLE {schema}.messages IN ACCESS EXCLUSIVE MODE"))
        .await
        .expect("hold the messages table");

    let mut held = Vec::new();
    for chat in &chats[..2] {
        let messages = server.messages();
        let request = pb::AddUserMessageRequest { chat_session_id: chat.id.clone(), content: "Hi".into() };
        held.push(tokio::spawn(async move {
            let mut messages = messages;
            let stream = messages.add_user_message_streaming(request).await.expect("admitted").into_inner();
            collect(&mut { stream }).await
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.state.limits.pending_starts() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the two starts did not begin");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Refused while the two are still held: it did not wait for them.
    let refused = tokio::time::timeout(Duration::from_secs(5), server.send(&chats[2].id, "Me too"))
        .await
        .expect("answered while the others are held, not queued behind them")
        .expect_err("over the admission bound");
    assert!(retry_delay(&refused) > Duration::ZERO);
    assert!(refused.message().contains("starting 2 replies"), "{}", refused.message());
    assert_eq!(server.state.limits.pending_starts(), 2, "still held");

    holder.batch_execute("COMMIT").await.expect("release the table");
    for start in held {
        let events = start.await.expect("joined");
        assert!(matches!(events.last(), Some(pb::generation_event::Event::Completed(_))), "{events:?}");
    }
    assert!(server.messages_of(&chats[2].id).await.is_empty(), "the refused message was not stored");
    collect(&mut server.send(&chats[2].id, "Now?").await.expect("accepted once the starts are done")).await;
}
