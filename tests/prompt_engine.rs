//! The prompt engine through the real server on both databases: the context
//! budget on a long chat, samplers resolved across three levels, the model
//! catalog, the author's note, chat updates by field mask, listing by
//! activity, and PromptPreview against what the provider then receives.

mod common;

use common::{Db, Reply, TestServer, collect, started};
use prost_types::FieldMask;
use roleplay_server::{
    api::pb,
    store::models::{Message, MessageStatus, Role},
};
use serde_json::{Value, json};
use tonic::Code;

async fn update_chat(
    server: &TestServer,
    chat: pb::ChatSession,
    paths: &[&str],
) -> Result<pb::ChatSession, tonic::Status> {
    let request = pb::UpdateChatSessionRequest {
        chat_session: Some(chat),
        update_mask: Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    };
    server.chats().update_chat_session(request).await.map(tonic::Response::into_inner)
}

async fn preview(server: &TestServer, chat_id: &str, content: &str) -> Result<pb::PromptPreview, tonic::Status> {
    let request = pb::PreviewPromptRequest { chat_session_id: chat_id.into(), content: content.into() };
    server.messages().preview_prompt(request).await.map(tonic::Response::into_inner)
}

/// The last upstream request's body.
fn last_body(server: &TestServer) -> Value {
    server.upstream.requests().last().expect("a request").body.clone()
}

/// Stores `pairs` exchanges in the chat directly, as if sent long ago.
async fn store_history(server: &TestServer, chat_id: &str, pairs: usize) {
    for i in 0..pairs {
        let user = Message::new(
            chat_id,
            Role::User,
            format!("question {i}: {}", "tell me more ".repeat(5)),
            MessageStatus::Completed,
        );
        let reply = Message::new(
            chat_id,
            Role::Assistant,
            format!("answer {i}: {}", "and so it went ".repeat(5)),
            MessageStatus::Completed,
        );
        server.state.store.insert_exchange(Some(&user), &reply, None).await.expect("store history");
    }
}

async fn a_long_chat_keeps_the_newest_history_that_fits(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    store_history(&server, &chat.id, 250).await;
    let stored = server.messages_of(&chat.id).await;
    assert_eq!(stored.len(), 500);
    let small = pb::ChatSession { id: chat.id.clone(), context_tokens: Some(2_000), ..Default::default() };
    update_chat(&server, small, &["context_tokens"]).await.expect("small context");

    let preview = preview(&server, &chat.id, "now").await.expect("preview");
    assert!(preview.history_omitted > 0 && preview.history_included > 0, "{preview:?}");
    assert_eq!(preview.history_included + preview.history_omitted, 500);
    assert!(preview.prompt_tokens <= 2_000 - preview.reply_tokens);
    assert_eq!(preview.omitted_message_ids.first(), Some(&stored[0].id), "the oldest go first");

    server.upstream.push(Reply::chunks(["ok"]));
    let events = collect(&mut server.send(&chat.id, "now").await.expect("send")).await;
    let start = started(&events);
    assert_eq!(
        (start.prompt_tokens, start.history_included, start.history_omitted),
        (preview.prompt_tokens, preview.history_included, preview.history_omitted),
        "Started reports what the preview showed"
    );
    let sent = last_body(&server)["messages"].as_array().expect("messages").clone();
    let history_sent = sent.iter().filter(|m| m["role"] != "system").count() - 1;
    assert_eq!(history_sent, start.history_included as usize, "the provider got exactly the included history");
    assert_eq!(sent[sent.len() - 2]["content"], stored[499].content, "the newest message is kept");
    assert_eq!(sent.last().expect("last")["content"], "now", "the new message always goes in");

    // Too small for even the required parts: refused with the numbers.
    let tiny = pb::ChatSession { id: chat.id.clone(), context_tokens: Some(256), ..Default::default() };
    update_chat(&server, tiny, &["context_tokens"]).await.expect("tiny context");
    let long = "word ".repeat(400);
    let refused = server.send(&chat.id, &long).await.expect_err("does not fit");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("tokens"), "{}", refused.message());
    let stored = server.state.store.chat_history(&chat.id).await.expect("history");
    assert_eq!(stored.len(), 502, "nothing stored");
}

async fn samplers_resolve_chat_then_character_then_global(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let global = pb::Samplers { top_k: Some(40), top_p: Some(0.5), seed: Some(7), ..Default::default() };
    let settings = pb::UpdateSettingsRequest { default_samplers: Some(global), ..Default::default() };
    server.settings().update_settings(settings).await.expect("global samplers");
    let character_samplers = pb::Samplers { top_p: Some(0.8), stop: vec!["END".into()], ..Default::default() };
    let character = pb::UpdateCharacterRequest {
        id: chat.character_id.clone(),
        samplers: Some(character_samplers),
        ..Default::default()
    };
    server.characters().update_character(character).await.expect("character samplers");
    let own = pb::Samplers {
        temperature: Some(0.2),
        reasoning: Some(pb::Reasoning { effort: Some("low".into()), ..Default::default() }),
        ..Default::default()
    };
    let update = pb::ChatSession { id: chat.id.clone(), samplers: Some(own), ..Default::default() };
    let updated = update_chat(&server, update, &["samplers"]).await.expect("chat samplers");
    assert_eq!(updated.samplers.as_ref().and_then(|s| s.temperature), Some(0.2));

    collect(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    let body = last_body(&server);
    assert_eq!(
        (&body["temperature"], &body["top_p"], &body["top_k"], &body["seed"], &body["stop"]),
        (&json!(0.2), &json!(0.8), &json!(40), &json!(7), &json!(["END"]))
    );
    assert_eq!(body["reasoning"], json!({"effort": "low"}));
    for unset in ["min_p", "top_a", "frequency_penalty", "presence_penalty", "repetition_penalty", "max_tokens"] {
        assert!(body.get(unset).is_none(), "{unset} is not sent when no level sets it");
    }

    // One field by mask; the others stay.
    let one = pb::ChatSession {
        id: chat.id.clone(),
        samplers: Some(pb::Samplers { min_p: Some(0.05), ..Default::default() }),
        ..Default::default()
    };
    let updated = update_chat(&server, one, &["samplers.min_p"]).await.expect("one field");
    let samplers = updated.samplers.expect("samplers");
    assert_eq!((samplers.min_p, samplers.temperature), (Some(0.05), Some(0.2)));
}

async fn the_catalog_is_fetched_once_and_an_outage_stops_no_send(db: Db) {
    let server = TestServer::start(db).await;
    server.upstream.set_models(None);
    let chat = server.chat().await;
    let down = server.settings().list_models(pb::ListModelsRequest {}).await.expect_err("no list yet");
    assert_eq!(down.code(), Code::Unavailable);
    collect(&mut server.send(&chat.id, "hi").await.expect("a send works without the catalog")).await;

    let server = TestServer::start(db).await;
    server.upstream.set_models(Some(&[("vendor/small", 1_000), ("vendor/big", 200_000)]));
    let chat = server.chat().await;
    let listed = server.settings().list_models(pb::ListModelsRequest {}).await.expect("list").into_inner();
    let ids: Vec<_> = listed.models.iter().map(|m| (m.id.as_str(), m.context_length)).collect();
    assert_eq!(ids, [("vendor/small", 1_000), ("vendor/big", 200_000)]);
    assert!(listed.fetched_at.is_some());
    server.settings().list_models(pb::ListModelsRequest {}).await.expect("again");
    let small = pb::ChatSession { id: chat.id.clone(), model: Some("vendor/small".into()), ..Default::default() };
    update_chat(&server, small, &["model"]).await.expect("model");
    let shown = preview(&server, &chat.id, "hi").await.expect("preview");
    assert_eq!(shown.context_tokens, 1_000, "the context length comes from the catalog");
    assert!(shown.warning.is_empty());
    collect(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    assert_eq!(server.upstream.model_calls(), 1, "fetched once, then reused");

    let unknown = pb::ChatSession { id: chat.id.clone(), model: Some("vendor/typo".into()), ..Default::default() };
    update_chat(&server, unknown, &["model"]).await.expect("model");
    let warned = preview(&server, &chat.id, "hi").await.expect("preview");
    assert!(warned.warning.contains("vendor/typo"), "an unknown model is warned about: {warned:?}");
}

async fn the_authors_note_goes_its_depth_from_the_end(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    store_history(&server, &chat.id, 2).await;
    let contents = |body: &Value| -> Vec<String> {
        body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    for (depth, at) in [(0u32, 5usize), (2, 3), (9, 1)] {
        let note = pb::ChatSession {
            id: chat.id.clone(),
            authors_note: "Keep it short.".into(),
            authors_note_depth: depth,
            ..Default::default()
        };
        update_chat(&server, note, &["authors_note", "authors_note_depth"]).await.expect("note");
        let shown = preview(&server, &chat.id, "next").await.expect("preview");
        let position = shown.messages.iter().position(|m| m.source == pb::PromptSource::AuthorsNote as i32);
        assert_eq!(position, Some(at), "depth {depth}: {shown:?}");
        server.upstream.push(Reply::chunks(["ok"]));
        collect(&mut server.send(&chat.id, "next").await.expect("send")).await;
        assert_eq!(contents(&last_body(&server))[at], "Keep it short.", "depth {depth} upstream");
        // Back to the two stored exchanges for the next depth.
        let messages = server.messages_of(&chat.id).await;
        let request =
            pb::RewindChatSessionRequest { chat_session_id: chat.id.clone(), message_id: messages[3].id.clone() };
        server.messages().rewind_chat_session(request).await.expect("rewind");
    }
}

async fn the_preview_is_what_the_provider_receives(db: Db) {
    let server = TestServer::start(db).await;
    for case in 0..8usize {
        let chat = server.chat().await;
        store_history(&server, &chat.id, case * 3).await;
        let update = pb::ChatSession {
            id: chat.id.clone(),
            authors_note: if case % 2 == 0 { format!("Note {case} for {{{{user}}}}") } else { String::new() },
            authors_note_depth: (case % 4) as u32,
            context_tokens: Some(if case % 3 == 0 { 600 } else { 8_192 }),
            ..Default::default()
        };
        update_chat(&server, update, &["authors_note", "authors_note_depth", "context_tokens"]).await.expect("update");
        let content = format!("message {case} from {{{{user}}}} to {{{{char}}}}");
        let shown = preview(&server, &chat.id, &content).await.expect("preview");
        server.upstream.push(Reply::chunks(["ok"]));
        let events = collect(&mut server.send(&chat.id, &content).await.expect("send")).await;
        let sent = last_body(&server)["messages"].clone();
        let previewed: Vec<Value> =
            shown.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
        assert_eq!(sent, Value::Array(previewed), "case {case}: the preview is the body, byte for byte");
        assert_eq!(started(&events).prompt_tokens, shown.prompt_tokens, "case {case}");
    }
}

async fn bad_settings_are_refused_and_change_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let before = server
        .chats()
        .get_chat_session(pb::GetChatSessionRequest { id: chat.id.clone() })
        .await
        .expect("get")
        .into_inner();
    let bad_samplers = [
        pb::Samplers { temperature: Some(3.0), ..Default::default() },
        pb::Samplers { top_p: Some(0.0), ..Default::default() },
        pb::Samplers { frequency_penalty: Some(-2.5), ..Default::default() },
        pb::Samplers { stop: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()], ..Default::default() },
        pb::Samplers {
            reasoning: Some(pb::Reasoning { effort: Some("max".into()), ..Default::default() }),
            ..Default::default()
        },
    ];
    for samplers in bad_samplers {
        let update = pb::ChatSession { id: chat.id.clone(), samplers: Some(samplers.clone()), ..Default::default() };
        let refused = update_chat(&server, update, &["samplers"]).await.expect_err("bad sampler");
        assert_eq!(refused.code(), Code::InvalidArgument, "{samplers:?}");
        assert!(refused.message().contains("samplers."), "names the field: {}", refused.message());
    }
    let cases: [(&[&str], pb::ChatSession); 4] = [
        (&[], pb::ChatSession { id: chat.id.clone(), title: "x".into(), ..Default::default() }),
        (&["colour"], pb::ChatSession { id: chat.id.clone(), ..Default::default() }),
        (&["samplers.warmth"], pb::ChatSession { id: chat.id.clone(), ..Default::default() }),
        (&["context_tokens"], pb::ChatSession { id: chat.id.clone(), context_tokens: Some(10), ..Default::default() }),
    ];
    for (paths, update) in cases {
        let refused = update_chat(&server, update, paths).await.expect_err("bad update");
        assert_eq!(refused.code(), Code::InvalidArgument, "{paths:?}");
    }
    let settings = pb::UpdateSettingsRequest { default_context_tokens: Some(1), ..Default::default() };
    assert_eq!(server.settings().update_settings(settings).await.expect_err("bad").code(), Code::InvalidArgument);
    let after = server
        .chats()
        .get_chat_session(pb::GetChatSessionRequest { id: chat.id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(after, before, "nothing changed");
}

async fn chats_are_listed_by_last_activity_and_by_character(db: Db) {
    let server = TestServer::start(db).await;
    let first = server.chat().await;
    let second = server.chat().await;
    let list = |character_id: &str| {
        let request = pb::ListChatSessionsRequest { character_id: character_id.into(), ..Default::default() };
        let mut client = server.chats();
        async move {
            let listed = client.list_chat_sessions(request).await.expect("list").into_inner();
            listed.chat_sessions.into_iter().map(|c| c.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await[..2], [second.id.clone(), first.id.clone()], "newest first");
    collect(&mut server.send(&first.id, "I am back").await.expect("send")).await;
    assert_eq!(list("").await[..2], [first.id.clone(), second.id.clone()], "a message moves a chat to the top");
    assert_eq!(list(&second.character_id).await, std::slice::from_ref(&second.id), "filtered by character");
}

on_both_databases!(
    a_long_chat_keeps_the_newest_history_that_fits,
    samplers_resolve_chat_then_character_then_global,
    the_catalog_is_fetched_once_and_an_outage_stops_no_send,
    the_authors_note_goes_its_depth_from_the_end,
    the_preview_is_what_the_provider_receives,
    bad_settings_are_refused_and_change_nothing,
    chats_are_listed_by_last_activity_and_by_character,
);
