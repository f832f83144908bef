//! Characters, user profiles and chat sessions through the real server, on
//! SQLite and PostgreSQL: create, read, update, delete, paging, bad input.

mod common;

use std::collections::HashSet;

use common::{Db, TestServer};
use roleplay_server::api::pb;
use tonic::Code;

async fn character(server: &TestServer, name: &str) -> pb::Character {
    server
        .characters()
        .create_character(pb::CreateCharacterRequest {
            name: name.into(),
            description: "{{char}} greets {{user}}.".into(),
            system_prompt: Some("Be {{char}}.".into()),
            post_history_instructions: None,
            first_message: Some("Hello {{user}}, I am {{char}}.".into()),
            ..Default::default()
        })
        .await
        .expect("create character")
        .into_inner()
}

async fn profile(server: &TestServer, name: &str) -> pb::UserProfile {
    server
        .profiles()
        .create_user_profile(pb::CreateUserProfileRequest { name: name.into(), description: "A traveller.".into() })
        .await
        .expect("create profile")
        .into_inner()
}

async fn character_lifecycle(db: Db) {
    let server = TestServer::start(db).await;
    let mut client = server.characters();
    let created = character(&server, "Aria").await;
    assert_eq!(created.name, "Aria");
    assert_eq!(created.system_prompt.as_deref(), Some("Be {{char}}."));
    assert!(created.created_at.is_some());

    let fetched =
        client.get_character(pb::GetCharacterRequest { id: created.id.clone() }).await.expect("get").into_inner();
    assert_eq!(fetched, created, "what is read back equals what was created, timestamps included");

    let updated = client
        .update_character(pb::UpdateCharacterRequest {
            id: created.id.clone(),
            description: Some("Changed.".into()),
            system_prompt: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.name, "Aria", "absent fields stay");
    assert_eq!(updated.description, "Changed.");
    assert_eq!(updated.system_prompt, None, "an empty string clears an optional field");
    assert_eq!(updated.first_message, created.first_message);

    client.delete_character(pb::DeleteCharacterRequest { id: created.id.clone() }).await.expect("delete");
    let gone = client.get_character(pb::GetCharacterRequest { id: created.id.clone() }).await.expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    assert!(gone.message().contains(&created.id));
}

async fn profile_lifecycle(db: Db) {
    let server = TestServer::start(db).await;
    let mut client = server.profiles();
    let created = profile(&server, "Sam").await;
    let updated = client
        .update_user_profile(pb::UpdateUserProfileRequest {
            id: created.id.clone(),
            name: Some("Samantha".into()),
            description: None,
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.name, "Samantha");
    assert_eq!(updated.description, "A traveller.");
    let fetched =
        client.get_user_profile(pb::GetUserProfileRequest { id: created.id.clone() }).await.expect("get").into_inner();
    assert_eq!(fetched, updated);
    client.delete_user_profile(pb::DeleteUserProfileRequest { id: created.id.clone() }).await.expect("delete");
    let err = client.delete_user_profile(pb::DeleteUserProfileRequest { id: created.id }).await.expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}

async fn chat_with_first_message_and_deletes(db: Db) {
    let server = TestServer::start(db).await;
    let aria = character(&server, "Aria").await;
    let sam = profile(&server, "Sam").await;
    let mut chats = server.chats();
    let chat = chats
        .create_chat_session(pb::CreateChatSessionRequest {
            character_id: aria.id.clone(),
            user_profile_id: sam.id.clone(),
            title: None,
            model: Some("test/model".into()),
            temperature: Some(0.7),
            max_tokens: Some(256),
            ..Default::default()
        })
        .await
        .expect("create chat")
        .into_inner();
    assert_eq!(chat.title, "Chat with Aria");
    assert_eq!((chat.model.as_deref(), chat.temperature, chat.max_tokens), (Some("test/model"), Some(0.7), Some(256)));
    assert_eq!(
        chats.get_chat_session(pb::GetChatSessionRequest { id: chat.id.clone() }).await.expect("get").into_inner(),
        chat
    );

    let messages = server.messages_of(&chat.id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content, "Hello Sam, I am Aria.", "names are filled into the first message");
    assert_eq!(messages[0].role(), pb::Role::Assistant);
    assert_eq!(messages[0].status(), pb::MessageStatus::Completed);

    // Characters and profiles in use cannot be deleted: that would lose messages.
    let err = server
        .characters()
        .delete_character(pb::DeleteCharacterRequest { id: aria.id.clone() })
        .await
        .expect_err("in use");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("chat sessions"), "{}", err.message());
    let err = server
        .profiles()
        .delete_user_profile(pb::DeleteUserProfileRequest { id: sam.id.clone() })
        .await
        .expect_err("in use");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(server.messages_of(&chat.id).await.len(), 1, "a refused delete changes nothing");

    chats.delete_chat_session(pb::DeleteChatSessionRequest { id: chat.id.clone() }).await.expect("delete chat");
    let err = chats
        .list_messages(pb::ListMessagesRequest { chat_session_id: chat.id.clone(), ..Default::default() })
        .await
        .expect_err("chat gone");
    assert_eq!(err.code(), Code::NotFound);
    server.characters().delete_character(pb::DeleteCharacterRequest { id: aria.id }).await.expect("now deletable");
}

async fn paging_returns_every_row_once(db: Db) {
    let server = TestServer::start(db).await;
    let mut created = HashSet::new();
    for i in 0..120 {
        created.insert(character(&server, &format!("Character {i}")).await.id);
    }
    let mut client = server.characters();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_characters(pb::ListCharactersRequest {
                page_size: 50,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.characters.len() <= 50);
        seen.extend(page.characters.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120, "no row twice");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created, "every row once");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first");

    // Messages page too, bound to their chat.
    let sam = profile(&server, "Sam").await;
    let first = seen[0].clone();
    let chat = server
        .chats()
        .create_chat_session(pb::CreateChatSessionRequest {
            character_id: first,
            user_profile_id: sam.id,
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let page = server
        .chats()
        .list_messages(pb::ListMessagesRequest {
            chat_session_id: chat.id.clone(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("messages")
        .into_inner();
    assert_eq!(page.messages.len(), 1);
    assert!(page.next_page_token.is_empty(), "one message, one page");

    let token = client
        .list_characters(pb::ListCharactersRequest { page_size: 1, page_token: String::new(), ..Default::default() })
        .await
        .expect("page")
        .into_inner()
        .next_page_token;
    let err = server
        .chats()
        .list_messages(pb::ListMessagesRequest { chat_session_id: chat.id, page_size: 1, page_token: token })
        .await
        .expect_err("token of another listing");
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn bad_input_is_refused_and_changes_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let mut characters = server.characters();
    let too_long = "x".repeat(201);
    let cases: Vec<(pb::CreateCharacterRequest, &str)> = vec![
        (pb::CreateCharacterRequest { name: String::new(), ..Default::default() }, "name is required"),
        (pb::CreateCharacterRequest { name: " \t ".into(), ..Default::default() }, "only whitespace"),
        (pb::CreateCharacterRequest { name: too_long, ..Default::default() }, "at most 200"),
        (
            pb::CreateCharacterRequest { name: "ok".into(), description: "d".repeat(20_001), ..Default::default() },
            "description is 20001 characters",
        ),
    ];
    for (request, expected) in cases {
        let err = characters.create_character(request).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(expected), "{:?} should mention {expected:?}", err.message());
    }
    let listed = characters.list_characters(pb::ListCharactersRequest::default()).await.expect("list").into_inner();
    assert!(listed.characters.is_empty(), "nothing was written");

    let err =
        characters.get_character(pb::GetCharacterRequest { id: "not-an-id".into() }).await.expect_err("malformed");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = characters
        .get_character(pb::GetCharacterRequest { id: uuid::Uuid::now_v7().to_string() })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = characters
        .list_characters(pb::ListCharactersRequest { page_size: -1, page_token: String::new(), ..Default::default() })
        .await
        .expect_err("negative");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = characters
        .list_characters(pb::ListCharactersRequest {
            page_size: 10,
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("garbage token");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("page_token"));

    let aria = character(&server, "Aria").await;
    let mut chats = server.chats();
    let missing_profile = uuid::Uuid::now_v7().to_string();
    let err = chats
        .create_chat_session(pb::CreateChatSessionRequest {
            character_id: aria.id.clone(),
            user_profile_id: missing_profile.clone(),
            ..Default::default()
        })
        .await
        .expect_err("unknown profile");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("user profile") && err.message().contains(&missing_profile), "{}", err.message());
    let sam = profile(&server, "Sam").await;
    for (temperature, max_tokens) in [(Some(2.5), None), (Some(-0.1), None), (None, Some(0)), (None, Some(2_000_000))] {
        let err = chats
            .create_chat_session(pb::CreateChatSessionRequest {
                character_id: aria.id.clone(),
                user_profile_id: sam.id.clone(),
                temperature,
                max_tokens,
                ..Default::default()
            })
            .await
            .expect_err("out of range");
        assert_eq!(err.code(), Code::InvalidArgument, "{temperature:?} {max_tokens:?}");
    }
    let listed = chats.list_chat_sessions(pb::ListChatSessionsRequest::default()).await.expect("list").into_inner();
    assert!(listed.chat_sessions.is_empty(), "no chat was created by refused requests");

    // NUL cannot be stored by PostgreSQL, so neither backend accepts it.
    let err = characters
        .create_character(pb::CreateCharacterRequest { name: "nul\u{0}".into(), ..Default::default() })
        .await
        .expect_err("NUL");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("NUL"));
    // Other text is stored verbatim, control characters and SQL included.
    let odd = "Robert'); DROP TABLE characters;--\u{7}\u{1b}[31m";
    let stored = characters
        .create_character(pb::CreateCharacterRequest { name: odd.into(), ..Default::default() })
        .await
        .expect("odd name")
        .into_inner();
    let fetched = characters.get_character(pb::GetCharacterRequest { id: stored.id }).await.expect("get").into_inner();
    assert_eq!(fetched.name, odd);
}

on_both_databases!(
    character_lifecycle,
    profile_lifecycle,
    chat_with_first_message_and_deletes,
    paging_returns_every_row_once,
    bad_input_is_refused_and_changes_nothing,
);
