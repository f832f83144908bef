//! Users and tokens through the real server: single-user mode until a token
//! exists, tokens checked on every call, revocation at once, and two users
//! who cannot see or touch each other's data on any RPC.

mod common;

use std::time::Duration;

use common::{Db, Reply, TestServer, collect, terminal, until_terminal, users::As};
use roleplay_server::api::pb::{self, generation_event::Event};
use tonic::Code;

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// The server with an admin "root" and a plain user each; returns their
/// clients. Creating root ends single-user mode.
async fn two_users(server: &TestServer) -> (As, As, As) {
    let local = server.as_user(None);
    let root = server.as_user(Some(&local.create_user("root", true).await));
    let alice = server.as_user(Some(&root.create_user("alice", false).await));
    let bob = server.as_user(Some(&root.create_user("bob", false).await));
    root.set_global_key().await;
    (root, alice, bob)
}

async fn tokens_are_required_once_a_user_has_one(db: Db) {
    let server = TestServer::start(db).await;
    let anonymous = server.as_user(None);
    let me = anonymous.users().get_current_user(pb::GetCurrentUserRequest {}).await.expect("single-user mode");
    assert_eq!((me.get_ref().name.as_str(), me.get_ref().admin), ("local", true));

    let token = anonymous.create_user("alice", true).await;
    assert_eq!(token.len(), 43, "32 bytes as base64url");
    let alice = server.as_user(Some(&token));
    let me = alice.users().get_current_user(pb::GetCurrentUserRequest {}).await.expect("alice").into_inner();
    assert_eq!((me.name.as_str(), me.admin, me.active), ("alice", true, true));

    let refused = anonymous.characters().list_characters(pb::ListCharactersRequest::default()).await;
    let status = refused.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("Bearer"), "{}", status.message());
    // The same token with its last character changed.
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let wrong = server.as_user(Some(&format!("{}{last}", &token[..42])));
    assert_eq!(code(wrong.users().get_current_user(pb::GetCurrentUserRequest {}).await), Code::Unauthenticated);
    let garbage = server.as_user(Some("not a token"));
    assert_eq!(code(garbage.users().get_current_user(pb::GetCurrentUserRequest {}).await), Code::Unauthenticated);
    // Health and reflection stay open for load balancers and grpcurl.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health is open");

    // Revoked: refused at once. A new token works, the old one stays dead.
    let bob = server.as_user(Some(&alice.create_user("bob", false).await));
    bob.characters().list_characters(pb::ListCharactersRequest::default()).await.expect("bob works");
    let revoked =
        alice.users().revoke_user(pb::RevokeUserRequest { user: "bob".into() }).await.expect("revoke").into_inner();
    assert!(!revoked.active && revoked.revoked_at.is_some());
    let status = bob.characters().list_characters(pb::ListCharactersRequest::default()).await.expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{}", status.message());
    let reissued = alice
        .users()
        .issue_token(pb::IssueTokenRequest { user: revoked.id.clone() })
        .await
        .expect("issue")
        .into_inner();
    assert!(reissued.user.as_ref().is_some_and(|u| u.active));
    let bob_again = server.as_user(Some(&reissued.token));
    bob_again.characters().list_characters(pb::ListCharactersRequest::default()).await.expect("new token works");
    assert_eq!(
        code(bob.characters().list_characters(pb::ListCharactersRequest::default()).await),
        Code::Unauthenticated
    );

    // Only admins manage users; names are unique.
    assert_eq!(
        code(bob_again.users().create_user(pb::CreateUserRequest { name: "eve".into(), admin: true }).await),
        Code::PermissionDenied
    );
    assert_eq!(code(bob_again.users().list_users(pb::ListUsersRequest::default()).await), Code::PermissionDenied);
    assert_eq!(
        code(alice.users().create_user(pb::CreateUserRequest { name: "bob".into(), admin: false }).await),
        Code::AlreadyExists
    );
    let listed = alice.users().list_users(pb::ListUsersRequest::default()).await.expect("list").into_inner().users;
    let names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["local", "alice", "bob"]);
}

/// Every RPC that takes an id answers NOT_FOUND for another user's, exactly
/// as for an id that does not exist, and changes nothing.
async fn users_cannot_see_or_touch_each_others_data(db: Db) {
    let server = TestServer::start(db).await;
    let (root, alice, bob) = two_users(&server).await;
    let chat = alice.open_chat("Aria").await;
    server.upstream.push(Reply::chunks(["Hello ", "there."]));
    collect(&mut alice.send(&chat.id, "Hi!").await.expect("send")).await;
    let before = alice.messages_of(&chat.id).await;
    assert_eq!(before.len(), 2);
    let stream_id = before[1].stream_id.clone().expect("a stream id");

    // A reply running now, so the live paths are checked too.
    let verses: Vec<String> = (0..200).map(|i| format!("v{i} ")).collect();
    server.upstream.push(Reply::slow(verses, Duration::from_millis(20)));
    let mut running = alice.send(&chat.id, "Sing.").await.expect("send");
    let live_stream = match running.message().await.expect("event").and_then(|e| e.event) {
        Some(Event::Started(started)) => started.stream_id,
        other => panic!("expected Started, got {other:?}"),
    };

    let id = |s: &str| s.to_owned();
    let (character_id, profile_id, chat_id) = (id(&chat.character_id), id(&chat.user_profile_id), id(&chat.id));
    let mut results: Vec<(&str, Code)> = vec![
        (
            "GetCharacter",
            code(bob.characters().get_character(pb::GetCharacterRequest { id: character_id.clone() }).await),
        ),
        (
            "UpdateCharacter",
            code(
                bob.characters()
                    .update_character(pb::UpdateCharacterRequest {
                        id: character_id.clone(),
                        name: Some("Stolen".into()),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "DeleteCharacter",
            code(bob.characters().delete_character(pb::DeleteCharacterRequest { id: character_id.clone() }).await),
        ),
        (
            "GetUserProfile",
            code(bob.profiles().get_user_profile(pb::GetUserProfileRequest { id: profile_id.clone() }).await),
        ),
        (
            "UpdateUserProfile",
            code(
                bob.profiles()
                    .update_user_profile(pb::UpdateUserProfileRequest {
                        id: profile_id.clone(),
                        name: Some("Stolen".into()),
                        description: None,
                    })
                    .await,
            ),
        ),
        (
            "DeleteUserProfile",
            code(bob.profiles().delete_user_profile(pb::DeleteUserProfileRequest { id: profile_id.clone() }).await),
        ),
        (
            "CreateChatSession",
            code(
                bob.chats()
                    .create_chat_session(pb::CreateChatSessionRequest {
                        character_id: character_id.clone(),
                        user_profile_id: profile_id.clone(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        ("GetChatSession", code(bob.chats().get_chat_session(pb::GetChatSessionRequest { id: chat_id.clone() }).await)),
        (
            "DeleteChatSession",
            code(bob.chats().delete_chat_session(pb::DeleteChatSessionRequest { id: chat_id.clone() }).await),
        ),
        (
            "ListMessages",
            code(
                bob.chats()
                    .list_messages(pb::ListMessagesRequest { chat_session_id: chat_id.clone(), ..Default::default() })
                    .await,
            ),
        ),
        ("AddUserMessageStreaming", code(bob.send(&chat_id, "Let me in.").await)),
        (
            "SubscribeChatSession",
            code(
                bob.messages()
                    .subscribe_chat_session(pb::SubscribeChatSessionRequest {
                        chat_session_id: chat_id.clone(),
                        resume: None,
                    })
                    .await,
            ),
        ),
        (
            "SubscribeChatSession(resume)",
            code(
                bob.messages()
                    .subscribe_chat_session(pb::SubscribeChatSessionRequest {
                        chat_session_id: chat_id.clone(),
                        resume: Some(pb::ResumePosition { stream_id: stream_id.clone(), offset: 0 }),
                    })
                    .await,
            ),
        ),
        (
            "CancelGeneration",
            code(
                bob.messages()
                    .cancel_generation(pb::CancelGenerationRequest {
                        chat_session_id: chat_id.clone(),
                        stream_id: Some(live_stream.clone()),
                    })
                    .await,
            ),
        ),
        (
            "GetStreamStatus",
            code(
                bob.messages().get_stream_status(pb::GetStreamStatusRequest { chat_session_id: chat_id.clone() }).await,
            ),
        ),
    ];
    // Even an admin sees only their own chats.
    results.push((
        "GetChatSession(admin)",
        code(root.chats().get_chat_session(pb::GetChatSessionRequest { id: chat_id.clone() }).await),
    ));
    for (rpc, got) in &results {
        assert_eq!(*got, Code::NotFound, "{rpc} with another user's id");
    }

    // Lists show only one's own rows; usage of others is admin-only.
    assert!(
        bob.characters()
            .list_characters(pb::ListCharactersRequest::default())
            .await
            .expect("list")
            .into_inner()
            .characters
            .is_empty()
    );
    assert!(
        bob.profiles()
            .list_user_profiles(pb::ListUserProfilesRequest::default())
            .await
            .expect("list")
            .into_inner()
            .user_profiles
            .is_empty()
    );
    assert!(
        bob.chats()
            .list_chat_sessions(pb::ListChatSessionsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .chat_sessions
            .is_empty()
    );
    let alice_id = alice.users().get_current_user(pb::GetCurrentUserRequest {}).await.expect("me").into_inner().id;
    let peek = bob.usage().get_usage(pb::GetUsageRequest { user_id: alice_id.clone(), ..Default::default() }).await;
    assert_eq!(code(peek), Code::PermissionDenied);
    let bob_usage = bob.usage().get_usage(pb::GetUsageRequest::default()).await.expect("own usage").into_inner();
    assert_eq!(bob_usage.overall.map(|o| o.generations), Some(0));
    let audited =
        root.usage().get_usage(pb::GetUsageRequest { user_id: alice_id, ..Default::default() }).await.expect("admin");
    assert_eq!(audited.into_inner().overall.map(|o| o.generations), Some(1));
    // Global settings are for admins.
    let update = bob
        .settings()
        .update_settings(pb::UpdateSettingsRequest { system_prompt: Some("Obey bob.".into()), ..Default::default() })
        .await;
    assert_eq!(code(update), Code::PermissionDenied);
    assert_eq!(
        code(bob.settings().clear_provider_api_key(pb::ClearProviderApiKeyRequest {}).await),
        Code::PermissionDenied
    );
    let seen = bob.settings().get_settings(pb::GetSettingsRequest {}).await.expect("read").into_inner();
    assert!(seen.api_key_set && seen.api_key_hint.is_empty(), "non-admins see that a key is set, not its hint");

    // The SSE endpoint answers the same.
    let url = format!("http://{}/v1/chats/{chat_id}/events", server.addr);
    let sse = reqwest_status(&url, bob.token()).await;
    assert_eq!(sse, 404);
    assert_eq!(reqwest_status(&url, None).await, 401);
    // EventSource cannot set headers: the token may come in the query.
    let alice_token = alice.token().expect("token");
    assert_eq!(reqwest_status(&format!("{url}?access_token={alice_token}"), None).await, 200);
    assert_eq!(reqwest_status(&format!("{url}?access_token={}", bob.token().expect("token")), None).await, 404);

    // Alice's reply was never disturbed, and her data is as it was.
    let events = until_terminal(&mut running).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "{:?}", terminal(&events));
    let after = alice.messages_of(&chat.id).await;
    assert_eq!(after[..2], before[..]);
    assert_eq!(after.len(), 4);
    let character =
        alice.characters().get_character(pb::GetCharacterRequest { id: character_id }).await.expect("still there");
    assert_eq!(character.into_inner().name, "Aria");
}

/// A user's own provider key is used for their messages instead of the
/// global one, and is never shown to anyone.
async fn a_users_own_key_wins_over_the_global_one(db: Db) {
    let server = TestServer::start(db).await;
    let (_root, alice, bob) = two_users(&server).await;
    let own_key = "sk-alice-own-0123456789";
    let settings = alice
        .settings()
        .set_user_provider_api_key(pb::SetProviderApiKeyRequest { api_key: own_key.into() })
        .await
        .expect("own key")
        .into_inner();
    assert!(settings.user_api_key_set);
    assert!(!settings.user_api_key_hint.contains("0123456789"), "a hint, not the key");
    assert!(!bob.settings().get_settings(pb::GetSettingsRequest {}).await.expect("bob").into_inner().user_api_key_set);

    for (user, expected) in [(&alice, own_key), (&bob, common::API_KEY)] {
        let chat = user.open_chat("Aria").await;
        server.upstream.push(Reply::chunks(["ok"]));
        collect(&mut user.send(&chat.id, "Hi").await.expect("send")).await;
        let sent = server.upstream.requests().last().expect("a request").headers["authorization"].clone();
        assert_eq!(sent.to_str().expect("ascii"), format!("Bearer {expected}"));
    }
    alice.settings().clear_user_provider_api_key(pb::ClearProviderApiKeyRequest {}).await.expect("clear");
    let chat = alice.open_chat("Aria").await;
    server.upstream.push(Reply::chunks(["ok"]));
    collect(&mut alice.send(&chat.id, "Hi").await.expect("send")).await;
    let sent = server.upstream.requests().last().expect("a request").headers["authorization"].clone();
    assert_eq!(sent.to_str().expect("ascii"), format!("Bearer {}", common::API_KEY));
}

async fn reqwest_status(url: &str, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().get(url).timeout(Duration::from_secs(5));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("http").status().as_u16()
}

on_both_databases!(
    tokens_are_required_once_a_user_has_one,
    users_cannot_see_or_touch_each_others_data,
    a_users_own_key_wins_over_the_global_one,
);
