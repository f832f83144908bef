//! Swipes and editing through the real gRPC interface on both databases:
//! regenerate, select, continue, edit, delete, rewind and fork change exactly
//! what they say, the model sees exactly the selected history, watchers hear
//! of every change, and nothing changes while a reply runs.

mod common;

use std::time::Duration;

use common::{Db, End, Reply, TestServer, collect, reconstruct, started, terminal, until_terminal};
use roleplay_server::api::pb::{self, generation_event::Event};
use tonic::{Code, Streaming};

/// The prompt of the `n`th upstream request, without system messages, as
/// (role, content).
fn prompt(server: &TestServer, n: usize) -> Vec<(String, String)> {
    let requests = server.upstream.requests();
    let body = &requests.get(n).unwrap_or_else(|| panic!("upstream request {n} of {}", requests.len())).body;
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| (m["role"].as_str().unwrap_or("").to_owned(), m["content"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn last_prompt(server: &TestServer) -> Vec<(String, String)> {
    prompt(server, server.upstream.requests().len() - 1)
}

fn turn(role: &str, content: &str) -> (String, String) {
    (role.to_owned(), content.to_owned())
}

async fn regenerate(server: &TestServer, chat_id: &str) -> Result<Streaming<pb::GenerationEvent>, tonic::Status> {
    let request = pb::RegenerateReplyRequest { chat_session_id: chat_id.into() };
    server.messages().regenerate_reply(request).await.map(tonic::Response::into_inner)
}

async fn continue_reply(server: &TestServer, chat_id: &str) -> Result<Streaming<pb::GenerationEvent>, tonic::Status> {
    let request = pb::ContinueReplyRequest { chat_session_id: chat_id.into() };
    server.messages().continue_reply(request).await.map(tonic::Response::into_inner)
}

async fn select(server: &TestServer, message_id: &str, index: u32) -> Result<pb::Message, tonic::Status> {
    let request = pb::SelectAlternativeRequest { message_id: message_id.into(), index };
    server.messages().select_alternative(request).await.map(tonic::Response::into_inner)
}

async fn rewind(server: &TestServer, chat_id: &str, message_id: &str) -> Result<Vec<String>, tonic::Status> {
    let request = pb::RewindChatSessionRequest { chat_session_id: chat_id.into(), message_id: message_id.into() };
    Ok(server.messages().rewind_chat_session(request).await?.into_inner().deleted_message_ids)
}

async fn edit(server: &TestServer, message_id: &str, content: &str) -> Result<pb::Message, tonic::Status> {
    let request = pb::EditMessageRequest { message_id: message_id.into(), content: content.into() };
    server.messages().edit_message(request).await.map(tonic::Response::into_inner)
}

async fn delete(server: &TestServer, message_id: &str) -> Result<(), tonic::Status> {
    let request = pb::DeleteMessageRequest { message_id: message_id.into() };
    server.messages().delete_message(request).await.map(|_| ())
}

async fn alternatives(server: &TestServer, message_id: &str) -> pb::ListAlternativesResponse {
    let request = pb::ListAlternativesRequest { message_id: message_id.into() };
    server.messages().list_alternatives(request).await.expect("list alternatives").into_inner()
}

fn completed_text(events: &[Event]) -> String {
    match terminal(events) {
        Event::Completed(done) => done.message.as_ref().expect("message").content.clone(),
        other => panic!("expected Completed, got {other:?}"),
    }
}

fn contents(messages: &[pb::Message]) -> Vec<(i32, String)> {
    messages.iter().map(|m| (m.role, m.content.clone())).collect()
}

const USER: i32 = pb::Role::User as i32;
const ASSISTANT: i32 = pb::Role::Assistant as i32;

async fn regenerated_alternatives_are_kept_and_the_selected_one_is_what_the_model_sees(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::chunks(["take ", "0"]));
    collect(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    let reply_id = server.messages_of(&chat.id).await[1].id.clone();

    for take in 1..=3u32 {
        server.upstream.push(Reply::chunks(["take ", &take.to_string()]));
        let events = collect(&mut regenerate(&server, &chat.id).await.expect("regenerate")).await;
        let start = started(&events);
        assert_eq!(start.kind, pb::ReplyKind::Regenerate as i32);
        assert_eq!((start.alternative_index, start.alternative_count), (take, take + 1));
        assert_eq!(start.assistant_message_id, reply_id, "a new alternative of the same message");
        assert_eq!(completed_text(&events), format!("take {take}"));
        assert_eq!(prompt(&server, take as usize), [turn("user", "hi")], "regenerating answers the same turn");
    }
    let listed = alternatives(&server, &reply_id).await;
    assert_eq!(listed.selected_index, 3);
    let texts: Vec<_> = listed.alternatives.iter().map(|a| (a.alternative_index, a.content.as_str())).collect();
    assert_eq!(texts, [(0, "take 0"), (1, "take 1"), (2, "take 2"), (3, "take 3")]);
    assert!(
        listed.alternatives.iter().all(|a| a.status == pb::MessageStatus::Completed as i32 && a.stream_id.is_some())
    );

    for index in 0..4u32 {
        let shown = select(&server, &reply_id, index).await.expect("select");
        assert_eq!((shown.alternative_index, shown.alternative_count), (index, 4));
        assert_eq!(shown.content, format!("take {index}"));
        let messages = server.messages_of(&chat.id).await;
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].content, format!("take {index}"), "ListMessages shows the selected alternative");

        collect(&mut server.send(&chat.id, "next").await.expect("send")).await;
        assert_eq!(
            last_prompt(&server),
            [turn("user", "hi"), turn("assistant", &format!("take {index}")), turn("user", "next")],
            "the model sees the selected alternative only"
        );
        let deleted = rewind(&server, &chat.id, &reply_id).await.expect("rewind");
        assert_eq!(deleted.len(), 2, "the exchange after the swipe is rewound away");
    }
    assert_eq!(select(&server, &reply_id, 4).await.expect_err("out of range").code(), Code::InvalidArgument);
}

async fn retrying_a_failed_reply_sends_one_user_turn(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::status(400, "bad request"));
    let events = collect(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    assert!(matches!(terminal(&events), Event::Failed(_)));

    collect(&mut regenerate(&server, &chat.id).await.expect("retry")).await;
    assert_eq!(last_prompt(&server), [turn("user", "hi")], "one user turn, not two");
    let messages = server.messages_of(&chat.id).await;
    assert_eq!(contents(&messages), [(USER, "hi".into()), (ASSISTANT, "Hello there!".into())]);
    assert_eq!((messages[1].alternative_index, messages[1].alternative_count), (1, 2));
    let listed = alternatives(&server, &messages[1].id).await;
    assert_eq!(listed.alternatives[0].status, pb::MessageStatus::Failed as i32, "the failure keeps its record");

    // A user message whose reply is gone is answered, once.
    delete(&server, &messages[1].id).await.expect("delete the reply");
    let events = collect(&mut regenerate(&server, &chat.id).await.expect("answer")).await;
    assert_eq!(started(&events).user_message_id, messages[0].id);
    assert_eq!(last_prompt(&server), [turn("user", "hi")]);
    let messages = server.messages_of(&chat.id).await;
    assert_eq!(contents(&messages), [(USER, "hi".into()), (ASSISTANT, "Hello there!".into())]);
    assert_eq!(messages[1].alternative_count, 1, "a new message, not an alternative of the deleted one");
}

async fn continuing_appends_byte_for_byte_and_resumes_mid_way(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::chunks(["Once ", "upon"]).with_end(End::Length));
    let events = collect(&mut server.send(&chat.id, "tell me").await.expect("send")).await;
    let Event::Completed(done) = terminal(&events) else { panic!("completed") };
    assert_eq!(done.finish_reason, "length");
    let reply = done.message.clone().expect("message");

    let rest = ["a ", "time ", "there ", "was ", "a ", "crab."];
    server.upstream.push(Reply::slow(rest, Duration::from_millis(150)));
    let mut sender = continue_reply(&server, &chat.id).await.expect("continue");
    let first = sender.message().await.expect("event").expect("started").event.expect("set");
    let Event::Started(start) = first else { panic!("Started first, got {first:?}") };
    assert_eq!(start.kind, pb::ReplyKind::Continue as i32);
    assert_eq!(start.assistant_message_id, reply.id);
    assert_eq!(start.continues_from, "Once upon".len() as u64);

    // A watcher that had the old text and a little more resumes from there.
    let mut seen = String::from("Once upon");
    let mut sender_events = vec![];
    while seen.len() < "Once upon".len() + 4 {
        let event = sender.message().await.expect("event").expect("open").event.expect("set");
        if let Event::Delta(delta) = &event {
            assert_eq!(delta.offset as usize, seen.len(), "offsets count from the start of the message");
            seen.push_str(&delta.text);
        }
        sender_events.push(event);
    }
    let resume = pb::ResumePosition { stream_id: start.stream_id.clone(), offset: seen.len() as u64 };
    let request = pb::SubscribeChatSessionRequest { chat_session_id: chat.id.clone(), resume: Some(resume) };
    let mut watcher = server.messages().subscribe_chat_session(request).await.expect("resume").into_inner();
    // Mid-way, the stored message is the old text and the pieces
    // checkpointed since (every 250 ms).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let listed = server.messages_of(&chat.id).await.remove(1);
    assert_eq!(listed.status(), pb::MessageStatus::Streaming);
    assert!(listed.content.len() > "Once upon".len(), "checkpointed new text: {:?}", listed.content);
    let resumed = until_terminal(&mut watcher).await;
    let whole = reconstruct(&resumed, seen.len(), seen.clone());
    assert_eq!(whole, format!("Once upon{}", rest.concat()), "exactly the rest, nothing lost or repeated");
    assert!(whole.starts_with(&listed.content), "listed mid-way: {:?}", listed.content);
    let stored = completed_text(&until_terminal(&mut sender).await);
    assert_eq!(stored, whole);
    assert_eq!(server.messages_of(&chat.id).await[1].content, whole, "stored as old + new text");
    assert_eq!(
        last_prompt(&server),
        [turn("user", "tell me"), turn("assistant", "Once upon")],
        "the model is asked to go on from the reply"
    );

    // Nothing to continue after a user message.
    rewind(&server, &chat.id, &server.messages_of(&chat.id).await[0].id).await.expect("rewind");
    let refused = continue_reply(&server, &chat.id).await.expect_err("nothing to continue");
    assert_eq!(refused.code(), Code::FailedPrecondition);
}

async fn edit_delete_rewind_and_fork_change_exactly_what_they_say(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    for (question, answer) in [("one", "A1"), ("two", "A2"), ("three", "A3")] {
        server.upstream.push(Reply::chunks([answer]));
        collect(&mut server.send(&chat.id, question).await.expect("send")).await;
    }
    let messages = server.messages_of(&chat.id).await;
    assert_eq!(messages.len(), 6);

    let edited = edit(&server, &messages[0].id, "ONE").await.expect("edit user message");
    assert_eq!(edited.content, "ONE");
    assert!(edited.edited_at.is_some());
    edit(&server, &messages[3].id, "A2 edited").await.expect("edit reply");
    delete(&server, &messages[4].id).await.expect("delete");
    server.upstream.push(Reply::chunks(["A4"]));
    collect(&mut server.send(&chat.id, "four").await.expect("send")).await;
    assert_eq!(
        last_prompt(&server),
        [
            turn("user", "ONE"),
            turn("assistant", "A1"),
            turn("user", "two"),
            turn("assistant", "A2 edited"),
            turn("assistant", "A3"),
            turn("user", "four"),
        ]
    );

    let fork = server
        .chats()
        .fork_chat_session(pb::ForkChatSessionRequest {
            chat_session_id: chat.id.clone(),
            message_id: messages[3].id.clone(),
            title: None,
        })
        .await
        .expect("fork")
        .into_inner();
    assert_eq!(fork.title, format!("{} (fork)", chat.title));
    assert_eq!(
        (fork.character_id.as_str(), fork.user_profile_id.as_str()),
        (chat.character_id.as_str(), chat.user_profile_id.as_str())
    );
    let forked = server.messages_of(&fork.id).await;
    assert_eq!(
        contents(&forked),
        [(USER, "ONE".into()), (ASSISTANT, "A1".into()), (USER, "two".into()), (ASSISTANT, "A2 edited".into())]
    );
    assert!(forked.iter().zip(&messages).all(|(copy, original)| copy.id != original.id));

    let deleted = rewind(&server, &chat.id, &messages[1].id).await.expect("rewind");
    assert_eq!(deleted.len(), 5, "two, A2, A3, four and A4");
    assert_eq!(contents(&server.messages_of(&chat.id).await), [(USER, "ONE".into()), (ASSISTANT, "A1".into())]);
    assert_eq!(server.messages_of(&fork.id).await.len(), 4, "the fork is its own chat");
    server.upstream.push(Reply::chunks(["F"]));
    collect(&mut server.send(&fork.id, "in the fork").await.expect("send")).await;
    assert_eq!(last_prompt(&server).len(), 5);
    assert_eq!(last_prompt(&server)[4], turn("user", "in the fork"));
}

async fn watchers_hear_of_changes(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    collect(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    let messages = server.messages_of(&chat.id).await;
    let subscribe = || async {
        let request = pb::SubscribeChatSessionRequest { chat_session_id: chat.id.clone(), resume: None };
        server.messages().subscribe_chat_session(request).await.expect("subscribe").into_inner()
    };
    let (mut first, mut second) = (subscribe().await, subscribe().await);
    // Both are registered once the server counts them.
    for _ in 0..100 {
        let status = server
            .messages()
            .get_stream_status(pb::GetStreamStatusRequest { chat_session_id: chat.id.clone() })
            .await
            .expect("status")
            .into_inner();
        if status.watchers == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    edit(&server, &messages[0].id, "hello").await.expect("edit");
    for watcher in [&mut first, &mut second] {
        let change = next_change(watcher).await;
        assert_eq!(change.kind, pb::ChatChangeKind::Edited as i32);
        assert_eq!(change.message_ids, [messages[0].id.clone()]);
    }
    // A regeneration reaches them as a reply, then a selection as a change.
    collect(&mut regenerate(&server, &chat.id).await.expect("regenerate")).await;
    select(&server, &messages[1].id, 0).await.expect("select");
    for watcher in [&mut first, &mut second] {
        let reply = until_terminal(watcher).await;
        let start = started(&reply);
        assert_eq!((start.kind, start.alternative_index), (pb::ReplyKind::Regenerate as i32, 1));
        let change = next_change(watcher).await;
        assert_eq!(change.kind, pb::ChatChangeKind::Selected as i32);
    }
}

async fn next_change(stream: &mut Streaming<pb::GenerationEvent>) -> pb::ChatChanged {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a change in time")
            .expect("stream open")
            .expect("event")
            .event
            .expect("set");
        match event {
            Event::ChatChanged(change) => return change,
            Event::Heartbeat(_) => {}
            other => panic!("expected ChatChanged, got {other:?}"),
        }
    }
}

async fn every_change_during_a_running_reply_is_aborted_and_changes_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    collect(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    server.upstream.push(Reply::Hang);
    let mut running = server.send(&chat.id, "again").await.expect("send");
    let first = running.message().await.expect("event").expect("open").event.expect("set");
    let Event::Started(start) = first else { panic!("Started") };
    let before = server.messages_of(&chat.id).await;
    let (user, reply) = (&before[0].id, &before[1].id);

    let refusals = [
        edit(&server, user, "changed").await.map(|_| ()),
        edit(&server, &start.assistant_message_id, "changed").await.map(|_| ()),
        delete(&server, user).await,
        rewind(&server, &chat.id, user).await.map(|_| ()),
        select(&server, reply, 0).await.map(|_| ()),
        regenerate(&server, &chat.id).await.map(|_| ()),
        continue_reply(&server, &chat.id).await.map(|_| ()),
    ];
    for refusal in refusals {
        let status = refusal.expect_err("refused while the reply runs");
        assert_eq!(status.code(), Code::Aborted, "{status:?}");
        assert!(status.message().contains(&start.stream_id), "names the running stream: {}", status.message());
    }
    assert_eq!(server.messages_of(&chat.id).await, before, "nothing changed");
    server
        .messages()
        .cancel_generation(pb::CancelGenerationRequest { chat_session_id: chat.id.clone(), stream_id: None })
        .await
        .expect("cancel");
}

async fn bad_input_is_refused_and_changes_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let local = server.as_user(None);
    let root = server.as_user(Some(&local.create_user("root", true).await));
    let alice = server.as_user(Some(&root.create_user("alice", false).await));
    let bob = server.as_user(Some(&root.create_user("bob", false).await));
    root.set_global_key().await;
    let chat = alice.open_chat("Aria").await;
    collect(&mut alice.send(&chat.id, "hi").await.expect("send")).await;
    let messages = alice.messages_of(&chat.id).await;
    let unknown = "0190b7a4-0000-7000-8000-000000000000";

    let code = |result: Result<tonic::Response<pb::Message>, tonic::Status>| result.expect_err("refused").code();
    let edit_as = |who: &common::users::As, id: &str, content: &str| {
        let request = pb::EditMessageRequest { message_id: id.into(), content: content.into() };
        let mut client = who.messages();
        async move { client.edit_message(request).await }
    };
    assert_eq!(code(edit_as(&bob, &messages[0].id, "mine now").await), Code::NotFound, "another user's message");
    assert_eq!(code(edit_as(&alice, unknown, "x").await), Code::NotFound);
    assert_eq!(code(edit_as(&alice, &messages[0].id, "   ").await), Code::InvalidArgument, "empty content");
    assert_eq!(code(edit_as(&alice, "not-an-id", "x").await), Code::InvalidArgument);
    let select_request = pb::SelectAlternativeRequest { message_id: messages[1].id.clone(), index: 1 };
    let refused = alice.messages().select_alternative(select_request.clone()).await;
    assert_eq!(code(refused), Code::InvalidArgument, "index out of range");
    let refused = bob.messages().select_alternative(select_request).await;
    assert_eq!(code(refused), Code::NotFound);
    let regenerate_request = pb::RegenerateReplyRequest { chat_session_id: chat.id.clone() };
    let refused = bob.messages().regenerate_reply(regenerate_request).await.expect_err("not bob's");
    assert_eq!(refused.code(), Code::NotFound);
    let rewind_request =
        pb::RewindChatSessionRequest { chat_session_id: chat.id.clone(), message_id: messages[0].id.clone() };
    let refused = bob.messages().rewind_chat_session(rewind_request).await.expect_err("not bob's");
    assert_eq!(refused.code(), Code::NotFound);
    let delete_request = pb::DeleteMessageRequest { message_id: messages[0].id.clone() };
    let refused = bob.messages().delete_message(delete_request).await.expect_err("not bob's");
    assert_eq!(refused.code(), Code::NotFound);
    let fork_request = pb::ForkChatSessionRequest {
        chat_session_id: chat.id.clone(),
        message_id: messages[0].id.clone(),
        title: None,
    };
    let refused = bob.chats().fork_chat_session(fork_request).await.expect_err("not bob's");
    assert_eq!(refused.code(), Code::NotFound);
    let other_chat = alice.open_chat("Other").await;
    let rewind_request =
        pb::RewindChatSessionRequest { chat_session_id: other_chat.id.clone(), message_id: messages[0].id.clone() };
    let refused = alice.messages().rewind_chat_session(rewind_request).await.expect_err("not in that chat");
    assert_eq!(refused.code(), Code::NotFound);
    let regenerate_request = pb::RegenerateReplyRequest { chat_session_id: other_chat.id.clone() };
    let refused = alice.messages().regenerate_reply(regenerate_request).await.expect_err("nothing to answer");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    assert_eq!(alice.messages_of(&chat.id).await, messages, "nothing changed");
}

on_both_databases!(
    regenerated_alternatives_are_kept_and_the_selected_one_is_what_the_model_sees,
    retrying_a_failed_reply_sends_one_user_turn,
    continuing_appends_byte_for_byte_and_resumes_mid_way,
    edit_delete_rewind_and_fork_change_exactly_what_they_say,
    watchers_hear_of_changes,
    every_change_during_a_running_reply_is_aborted_and_changes_nothing,
    bad_input_is_refused_and_changes_nothing,
);
