//! Bad input, as a table: every case is a real call through the server, with
//! the status code it must get, words its message must contain, and a check
//! that nothing stored changed (a snapshot of everything every user can see,
//! taken before and after each case).

mod common;

use std::{fmt::Debug, future::Future, pin::Pin};

use common::{Db, Reply, TestServer, collect, users::As};
use prost_types::Timestamp;
use roleplay_server::api::pb;
use tonic::{Code, Response, Status};

type Outcome = Result<String, Status>;
type Call = Pin<Box<dyn Future<Output = Outcome> + Send>>;

struct Case {
    name: &'static str,
    call: Call,
    code: Code,
    /// Words the status message (or, for OK, the response) must contain.
    says: &'static str,
}

fn case(
    name: &'static str,
    code: Code,
    says: &'static str,
    call: impl Future<Output = Outcome> + Send + 'static,
) -> Case {
    Case { name, call: Box::pin(call), code, says }
}

/// A unary answer as text, so OK cases can be checked like errors.
fn shown<T: Debug>(result: Result<Response<T>, Status>) -> Outcome {
    result.map(|response| format!("{:?}", response.into_inner()))
}

/// A streaming call's answer: only whether it was accepted matters here.
fn opened<T>(result: Result<Response<T>, Status>) -> Outcome {
    result.map(|_| "stream opened".to_owned())
}

/// Everything the users can see, as text.
async fn snapshot(root: &As, users: &[&As]) -> String {
    let mut seen = String::new();
    for user in users {
        let (mut characters, mut profiles, mut chats, mut usage, mut settings) =
            (user.characters(), user.profiles(), user.chats(), user.usage(), user.settings());
        let (characters, profiles, chats, records, settings) = tokio::try_join!(
            characters.list_characters(pb::ListCharactersRequest { page_size: 500, ..Default::default() }),
            profiles.list_user_profiles(pb::ListUserProfilesRequest { page_size: 500, ..Default::default() }),
            chats.list_chat_sessions(pb::ListChatSessionsRequest { page_size: 500, ..Default::default() }),
            usage.list_usage_records(pb::ListUsageRecordsRequest::default()),
            settings.get_settings(pb::GetSettingsRequest {}),
        )
        .expect("snapshot");
        // The messages only: response metadata (dates, request ids) differs per call.
        let (characters, profiles, records, settings) =
            (characters.into_inner(), profiles.into_inner(), records.into_inner(), settings.into_inner());
        seen += &format!("{characters:?}\n{profiles:?}\n{records:?}\n{settings:?}\n");
        for chat in chats.into_inner().chat_sessions {
            seen += &format!("{chat:?}\n{:?}\n", user.messages_of(&chat.id).await);
        }
    }
    let users = root.users().list_users(pb::ListUsersRequest::default()).await.expect("users").into_inner();
    seen + &format!("{users:?}")
}

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

async fn bad_input_is_refused_clearly_and_changes_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let local = server.as_user(None);
    let root = server.as_user(Some(&local.create_user("root", true).await));
    let alice = server.as_user(Some(&root.create_user("alice", false).await));
    let bob = server.as_user(Some(&root.create_user("bob", false).await));
    root.set_global_key().await;
    let chat = alice.open_chat("Aria").await;
    server.upstream.push(Reply::chunks(["Hello."]));
    collect(&mut alice.send(&chat.id, "Hi").await.expect("send")).await;
    let stream_id = alice.messages_of(&chat.id).await[1].stream_id.clone().expect("stream id");
    let bobs_chat = bob.open_chat("Bard").await;
    // A reply that stays running (the upstream never answers, so nothing is
    // written while the table runs) makes its chat busy.
    let busy = alice.open_chat("Busy").await;
    server.upstream.push(Reply::Hang);
    let mut running = alice.send(&busy.id, "Wait").await.expect("send");
    running.message().await.expect("started");

    let unknown = "0190b7a4-0000-7000-8000-000000000000".to_owned();
    let characters_token = {
        // A valid token of the characters listing, used where it does not belong.
        let one = alice.open_chat("Extra").await;
        let page = alice
            .characters()
            .list_characters(pb::ListCharactersRequest { page_size: 1, ..Default::default() })
            .await
            .expect("page")
            .into_inner();
        assert!(!one.id.is_empty());
        page.next_page_token
    };
    let long = |n: usize| "x".repeat(n);
    let (a, b) = (alice.clone(), bob.clone());
    let c = chat.clone();
    let character =
        |name: String, description: String| pb::CreateCharacterRequest { name, description, ..Default::default() };
    let new_chat = |character_id: &str, profile_id: &str| pb::CreateChatSessionRequest {
        character_id: character_id.into(),
        user_profile_id: profile_id.into(),
        ..Default::default()
    };
    let send = |user: &As, chat_id: &str, content: String| {
        let user = user.clone();
        let chat_id = chat_id.to_owned();
        async move {
            opened(
                user.messages()
                    .add_user_message_streaming(pb::AddUserMessageRequest { chat_session_id: chat_id, content })
                    .await,
            )
        }
    };
    let subscribe = |user: &As, chat_id: &str, resume: Option<pb::ResumePosition>| {
        let user = user.clone();
        let chat_id = chat_id.to_owned();
        async move {
            opened(
                user.messages()
                    .subscribe_chat_session(pb::SubscribeChatSessionRequest { chat_session_id: chat_id, resume })
                    .await,
            )
        }
    };

    let cases = vec![
        case("character: empty name", Code::InvalidArgument, "name is required", {
            let a = a.clone();
            async move { shown(a.characters().create_character(character(String::new(), "d".into())).await) }
        }),
        case("character: whitespace-only name", Code::InvalidArgument, "only whitespace", {
            let a = a.clone();
            async move { shown(a.characters().create_character(character(" \t\n ".into(), "d".into())).await) }
        }),
        case("character: name over 200 characters", Code::InvalidArgument, "at most 200", {
            let a = a.clone();
            async move { shown(a.characters().create_character(character(long(201), String::new())).await) }
        }),
        case("character: description over 20,000 characters", Code::InvalidArgument, "at most 20000", {
            let a = a.clone();
            async move { shown(a.characters().create_character(character("N".into(), long(20_001))).await) }
        }),
        case("character: NUL in the name", Code::InvalidArgument, "NUL", {
            let a = a.clone();
            async move { shown(a.characters().create_character(character("A\0B".into(), String::new())).await) }
        }),
        case("character: malformed id", Code::InvalidArgument, "not a valid id", {
            let a = a.clone();
            async move { shown(a.characters().get_character(pb::GetCharacterRequest { id: "42; DROP TABLE".into() }).await) }
        }),
        case("character: empty id", Code::InvalidArgument, "id is required", {
            let a = a.clone();
            async move { shown(a.characters().get_character(pb::GetCharacterRequest { id: String::new() }).await) }
        }),
        case("character: unknown id", Code::NotFound, "was not found", {
            let (a, id) = (a.clone(), unknown.clone());
            async move { shown(a.characters().get_character(pb::GetCharacterRequest { id }).await) }
        }),
        case("character: another user's, updated", Code::NotFound, "was not found", {
            let (b, id) = (b.clone(), c.character_id.clone());
            async move {
                let update = pb::UpdateCharacterRequest { id, name: Some("Mine".into()), ..Default::default() };
                shown(b.characters().update_character(update).await)
            }
        }),
        case("character: deleted while a chat uses it", Code::FailedPrecondition, "used by chat sessions", {
            let (a, id) = (a.clone(), c.character_id.clone());
            async move { shown(a.characters().delete_character(pb::DeleteCharacterRequest { id }).await) }
        }),
        case("profile: empty name", Code::InvalidArgument, "name is required", {
            let a = a.clone();
            async move {
                let request = pb::CreateUserProfileRequest { name: String::new(), description: String::new() };
                shown(a.profiles().create_user_profile(request).await)
            }
        }),
        case("profile: renamed to whitespace", Code::InvalidArgument, "only whitespace", {
            let (a, id) = (a.clone(), c.user_profile_id.clone());
            async move {
                let request = pb::UpdateUserProfileRequest { id, name: Some("   ".into()), description: None };
                shown(a.profiles().update_user_profile(request).await)
            }
        }),
        case("profile: another user's, deleted", Code::NotFound, "was not found", {
            let (b, id) = (b.clone(), c.user_profile_id.clone());
            async move { shown(b.profiles().delete_user_profile(pb::DeleteUserProfileRequest { id }).await) }
        }),
        case("list: negative page size", Code::InvalidArgument, "cannot be negative", {
            let a = a.clone();
            async move {
                shown(
                    a.characters()
                        .list_characters(pb::ListCharactersRequest { page_size: -1, ..Default::default() })
                        .await,
                )
            }
        }),
        case("list: huge page size is capped, not refused", Code::Ok, "ListCharactersResponse", {
            let a = a.clone();
            async move {
                shown(
                    a.characters()
                        .list_characters(pb::ListCharactersRequest { page_size: i32::MAX, ..Default::default() })
                        .await,
                )
            }
        }),
        case("list: garbage page token", Code::InvalidArgument, "not a token this server issued", {
            let a = a.clone();
            async move {
                let request = pb::ListCharactersRequest {
                    page_size: 5,
                    page_token: "%%%not-base64".into(),
                    ..Default::default()
                };
                shown(a.characters().list_characters(request).await)
            }
        }),
        case("list: another listing's page token", Code::InvalidArgument, "different listing", {
            let (a, chat_id, page_token) = (a.clone(), c.id.clone(), characters_token.clone());
            async move {
                let request = pb::ListMessagesRequest { chat_session_id: chat_id, page_size: 5, page_token };
                shown(a.chats().list_messages(request).await)
            }
        }),
        case("chat: temperature above 2", Code::InvalidArgument, "temperature must be between 0 and 2", {
            let (a, request) = (
                a.clone(),
                pb::CreateChatSessionRequest {
                    temperature: Some(2.5),
                    ..new_chat(&c.character_id, &c.user_profile_id)
                },
            );
            async move { shown(a.chats().create_chat_session(request).await) }
        }),
        case("chat: negative temperature", Code::InvalidArgument, "temperature", {
            let (a, request) = (
                a.clone(),
                pb::CreateChatSessionRequest {
                    temperature: Some(-0.1),
                    ..new_chat(&c.character_id, &c.user_profile_id)
                },
            );
            async move { shown(a.chats().create_chat_session(request).await) }
        }),
        case("chat: max_tokens of 0", Code::InvalidArgument, "max_tokens must be between 1", {
            let (a, request) = (
                a.clone(),
                pb::CreateChatSessionRequest { max_tokens: Some(0), ..new_chat(&c.character_id, &c.user_profile_id) },
            );
            async move { shown(a.chats().create_chat_session(request).await) }
        }),
        case("chat: max_tokens too large", Code::InvalidArgument, "max_tokens", {
            let (a, request) = (
                a.clone(),
                pb::CreateChatSessionRequest {
                    max_tokens: Some(u32::MAX),
                    ..new_chat(&c.character_id, &c.user_profile_id)
                },
            );
            async move { shown(a.chats().create_chat_session(request).await) }
        }),
        case("chat: unknown character", Code::NotFound, "character", {
            let (a, request) = (a.clone(), new_chat(&unknown, &c.user_profile_id));
            async move { shown(a.chats().create_chat_session(request).await) }
        }),
        case("chat: another user's character and profile", Code::NotFound, "was not found", {
            let (b, request) = (b.clone(), new_chat(&c.character_id, &c.user_profile_id));
            async move { shown(b.chats().create_chat_session(request).await) }
        }),
        case("chat: another user's, deleted", Code::NotFound, "was not found", {
            let (a, id) = (a.clone(), bobs_chat.id.clone());
            async move { shown(a.chats().delete_chat_session(pb::DeleteChatSessionRequest { id }).await) }
        }),
        case("message: empty", Code::InvalidArgument, "content is required", send(&a, &c.id, String::new())),
        case("message: whitespace only", Code::InvalidArgument, "only whitespace", send(&a, &c.id, " \n\t ".into())),
        case(
            "message: over 100,000 characters",
            Code::InvalidArgument,
            "at most 100000",
            send(&a, &c.id, long(100_001)),
        ),
        case(
            "message: request over 1 MiB, refused before decoding",
            Code::OutOfRange,
            "message length too large",
            send(&a, &c.id, long(2 * 1024 * 1024)),
        ),
        case("message: malformed chat id", Code::InvalidArgument, "not a valid id", send(&a, "chat-1", "Hi".into())),
        case("message: another user's chat", Code::NotFound, "was not found", send(&b, &c.id, "Hi".into())),
        case("message: a second reply in a busy chat", Code::Aborted, "stream", send(&a, &busy.id, "And?".into())),
        case("cancel: a finished stream is a no-op", Code::Ok, "already finished", {
            let (a, chat_session_id, stream_id) = (a.clone(), c.id.clone(), stream_id.clone());
            async move {
                let request = pb::CancelGenerationRequest { chat_session_id, stream_id: Some(stream_id) };
                shown(a.messages().cancel_generation(request).await)
            }
        }),
        case("cancel: unknown stream", Code::NotFound, "stream", {
            let (a, chat_session_id, stream_id) = (a.clone(), c.id.clone(), unknown.clone());
            async move {
                let request = pb::CancelGenerationRequest { chat_session_id, stream_id: Some(stream_id) };
                shown(a.messages().cancel_generation(request).await)
            }
        }),
        case(
            "resume: offset past the reply",
            Code::InvalidArgument,
            "past the 6 bytes",
            subscribe(&a, &c.id, Some(pb::ResumePosition { stream_id: stream_id.clone(), offset: 7 })),
        ),
        case(
            "resume: a stream this server does not know",
            Code::FailedPrecondition,
            "not resumable",
            subscribe(&a, &c.id, Some(pb::ResumePosition { stream_id: unknown.clone(), offset: 0 })),
        ),
        case("settings: API key too short", Code::InvalidArgument, "8 to 1024 characters", {
            let root = root.clone();
            async move {
                shown(
                    root.settings().set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: "sk-1".into() }).await,
                )
            }
        }),
        case("settings: global key set by a non-admin", Code::PermissionDenied, "only admins", {
            let a = a.clone();
            async move {
                shown(
                    a.settings()
                        .set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: "sk-mine-12345".into() })
                        .await,
                )
            }
        }),
        case("settings: base URL that is not http(s)", Code::InvalidArgument, "not an http:// or https:// URL", {
            let root = root.clone();
            async move {
                let request =
                    pb::UpdateSettingsRequest { provider_base_url: Some("ftp://example".into()), ..Default::default() };
                shown(root.settings().update_settings(request).await)
            }
        }),
        case("usage: from after to", Code::InvalidArgument, "must be before", {
            let a = a.clone();
            async move {
                shown(
                    a.usage()
                        .get_usage(pb::GetUsageRequest {
                            from: ts(2_000_000_000),
                            to: ts(1_000_000_000),
                            ..Default::default()
                        })
                        .await,
                )
            }
        }),
        case("usage: unknown grouping", Code::InvalidArgument, "not a known grouping", {
            let a = a.clone();
            async move { shown(a.usage().get_usage(pb::GetUsageRequest { group_by: 99, ..Default::default() }).await) }
        }),
        case("users: name with a space", Code::InvalidArgument, "must be 1 to 64", {
            let root = root.clone();
            async move {
                shown(root.users().create_user(pb::CreateUserRequest { name: "eve smith".into(), admin: false }).await)
            }
        }),
        case("users: revoke someone unknown", Code::NotFound, "was not found", {
            let root = root.clone();
            async move { shown(root.users().revoke_user(pb::RevokeUserRequest { user: "nobody".into() }).await) }
        }),
        case("auth: a token that was never issued", Code::Unauthenticated, "not valid", {
            let stranger = server.as_user(Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
            async move { shown(stranger.characters().list_characters(pb::ListCharactersRequest::default()).await) }
        }),
    ];
    assert!(cases.len() >= 30, "the table has {} cases", cases.len());

    let users = [&root, &alice, &bob];
    let mut before = snapshot(&root, &users).await;
    let mut failures = Vec::new();
    for Case { name, call, code, says } in cases {
        let outcome = call.await;
        let (got, text) = match &outcome {
            Ok(shown) => (Code::Ok, shown.clone()),
            Err(status) => (status.code(), status.message().to_owned()),
        };
        if got != code || !text.contains(says) {
            failures.push(format!("{name}: expected {code:?} saying {says:?}, got {got:?}: {text:.300}"));
        }
        let after = snapshot(&root, &users).await;
        if after != before {
            failures.push(format!("{name}: the stored data changed"));
            before = after;
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));

    // Control characters and SQL-looking text are data: stored and returned
    // byte for byte.
    let odd = "Robert'); DROP TABLE characters;-- \u{7}\u{1b}[31m\t\"%_\\ 😀";
    let created = alice.characters().create_character(character(odd.into(), odd.into())).await.expect("stored");
    let read = alice
        .characters()
        .get_character(pb::GetCharacterRequest { id: created.into_inner().id })
        .await
        .expect("read")
        .into_inner();
    assert_eq!((read.name.as_str(), read.description.as_str()), (odd, odd));
    server.upstream.push(Reply::chunks(["Noted."]));
    collect(&mut alice.send(&chat.id, odd).await.expect("send")).await;
    let messages = alice.messages_of(&chat.id).await;
    assert_eq!(messages[messages.len() - 2].content, odd);
}

on_both_databases!(bad_input_is_refused_clearly_and_changes_nothing);
