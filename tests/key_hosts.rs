//! A stored provider key follows its host: it is only ever sent to the
//! origin it was entered for. Moving a base URL elsewhere (as a page that
//! reached the settings would) clears the key or leaves it unused, so the
//! new host never sees it; giving the key again makes it work there.

mod common;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use common::{API_KEY, Db, FakeUpstream, MASTER_KEY, Reply, TestServer, terminal, until_terminal, users::As};
use roleplay_server::{
    api::pb::{self, generation_event::Event},
    settings::names,
};
use tonic::Code;

const OWN_KEY: &str = "sk-own-key-0123456789abcdef";
const BACKUP_KEY: &str = "sk-backup-0123456789abcdef";

fn authorization(upstream: &FakeUpstream) -> Vec<Option<String>> {
    upstream
        .requests()
        .iter()
        .map(|r| r.headers.get("authorization").map(|v| v.to_str().unwrap_or_default().to_owned()))
        .collect()
}

async fn completes(events: &[Event]) {
    assert!(matches!(terminal(events), Event::Completed(_)), "{events:?}");
}

async fn the_global_key_stays_with_its_host(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let attacker = FakeUpstream::start().await;
    let mut settings = server.settings();

    let moved = settings
        .update_settings(pb::UpdateSettingsRequest {
            provider_base_url: Some(attacker.base_url()),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner();
    assert!(!moved.api_key_set, "the key was cleared");
    assert!(
        moved.api_key_problem.contains("cleared") && moved.api_key_problem.contains(&attacker.base_url()),
        "{}",
        moved.api_key_problem
    );
    let read = settings.get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner();
    assert_eq!(read.api_key_problem, moved.api_key_problem, "GetSettings says so too");

    let err = server.send(&chat.id, "hello").await.expect_err("no key for that host");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&format!("no provider API key for {}", attacker.base_url())), "{}", err.message());
    assert!(attacker.requests().is_empty(), "the new host received nothing");
    assert!(server.messages_of(&chat.id).await.is_empty(), "nothing was stored");

    // Given again, for the new host, it is used there.
    let set = settings
        .set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: API_KEY.into() })
        .await
        .expect("set")
        .into_inner();
    assert_eq!((set.api_key_set, set.api_key_problem.as_str()), (true, ""));
    attacker.push(Reply::chunks(["ok"]));
    completes(&until_terminal(&mut server.send(&chat.id, "hello").await.expect("send")).await).await;
    assert_eq!(authorization(&attacker), vec![Some(format!("Bearer {API_KEY}"))]);

    // Moving back with the key in the same request keeps it.
    let back = settings
        .update_settings(pb::UpdateSettingsRequest {
            provider_base_url: Some(server.upstream.base_url()),
            provider_api_key: Some(API_KEY.into()),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!((back.api_key_set, back.api_key_problem.as_str()), (true, ""));
    assert!(
        !format!("{:?}", pb::UpdateSettingsRequest { provider_api_key: Some(API_KEY.into()), ..Default::default() })
            .contains(API_KEY)
    );
    completes(&until_terminal(&mut server.send(&chat.id, "again").await.expect("send")).await).await;
    assert_eq!(authorization(&server.upstream), vec![Some(format!("Bearer {API_KEY}"))]);

    // A base URL changed behind the server's back (in the database) finds a
    // key bound elsewhere: it is not sent either.
    server.state.store.put_settings(&[(names::PROVIDER_BASE_URL, &attacker.base_url())]).await.expect("write");
    server.state.settings_changed().await;
    let err = server.send(&chat.id, "third").await.expect_err("bound elsewhere");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("was entered for"), "{}", err.message());
    assert_eq!(attacker.requests().len(), 1, "nothing more reached the other host");
}

async fn a_users_own_key_stays_with_its_host(db: Db) {
    let server = TestServer::start(db).await;
    let local = As::new(server.channel(), None);
    let root = As::new(server.channel(), Some(&local.create_user("root", true).await));
    let alice = As::new(server.channel(), Some(&root.create_user("alice", false).await));
    root.set_global_key().await;
    alice
        .settings()
        .set_user_provider_api_key(pb::SetProviderApiKeyRequest { api_key: OWN_KEY.into() })
        .await
        .expect("own key");
    let chat = alice.open_chat("Aria").await;

    let attacker = FakeUpstream::start().await;
    root.settings()
        .update_settings(pb::UpdateSettingsRequest {
            provider_base_url: Some(attacker.base_url()),
            provider_api_key: Some(API_KEY.into()),
            ..Default::default()
        })
        .await
        .expect("the admin moves the provider, with the global key");
    let view = alice.settings().get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner();
    assert!(view.user_api_key_problem.contains("was entered for"), "{}", view.user_api_key_problem);

    let err = alice.send(&chat.id, "hello").await.expect_err("her key is for the old host");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("your own"), "{}", err.message());
    assert!(attacker.requests().is_empty(), "neither her key nor the global one was sent instead");

    alice
        .settings()
        .set_user_provider_api_key(pb::SetProviderApiKeyRequest { api_key: OWN_KEY.into() })
        .await
        .expect("given again");
    attacker.push(Reply::chunks(["ok"]));
    completes(&until_terminal(&mut alice.send(&chat.id, "hello").await.expect("send")).await).await;
    assert_eq!(authorization(&attacker), vec![Some(format!("Bearer {OWN_KEY}"))]);
}

fn backup(base_url: String, api_key: Option<&str>) -> pb::FallbackProviderInput {
    pb::FallbackProviderInput {
        name: "backup".into(),
        base_url,
        model: String::new(),
        api_key: api_key.map(Into::into),
    }
}

async fn a_fallbacks_key_stays_with_its_host(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let second = FakeUpstream::start().await;
    let attacker = FakeUpstream::start().await;
    let mut settings = server.settings();
    let set = |providers| pb::SetFallbackProvidersRequest { providers };
    settings.set_fallback_providers(set(vec![backup(second.base_url(), Some(BACKUP_KEY))])).await.expect("set");

    let moved = settings
        .set_fallback_providers(set(vec![backup(attacker.base_url(), None)]))
        .await
        .expect("moved without its key")
        .into_inner();
    let listed = &moved.fallback_providers[0];
    assert!(!listed.api_key_set);
    assert!(listed.api_key_problem.contains("cleared"), "{}", listed.api_key_problem);

    // The primary is down: the moved fallback, whose key was entered for
    // another host, is skipped rather than sent that key (or none).
    for _ in 0..3 {
        server.upstream.push(Reply::status(503, "overloaded"));
    }
    let events = until_terminal(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    assert!(matches!(terminal(&events), Event::Failed(f) if f.code() == pb::FailureCode::UpstreamUnavailable));
    assert!(attacker.requests().is_empty() && second.requests().is_empty(), "no fallback was called");

    settings.set_fallback_providers(set(vec![backup(attacker.base_url(), Some(BACKUP_KEY))])).await.expect("given");
    for _ in 0..3 {
        server.upstream.push(Reply::status(503, "overloaded"));
    }
    attacker.push(Reply::chunks(["with key"]));
    completes(&until_terminal(&mut server.send(&chat.id, "again").await.expect("send")).await).await;
    assert_eq!(authorization(&attacker), vec![Some(format!("Bearer {BACKUP_KEY}"))]);
}

/// A key stored by an earlier version (v1, bound to nothing) is bound at
/// start to the host it is sent to, and keeps working there.
async fn keys_from_before_are_bound_at_start(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let key_id = server.state.keys.primary().id().to_owned();
    let cipher = XChaCha20Poly1305::new(&MASTER_KEY.into());
    let nonce = XNonce::from([7u8; 24]);
    let aad = format!("{}\0{key_id}", names::PROVIDER_API_KEY);
    let sealed = cipher.encrypt(&nonce, Payload { msg: API_KEY.as_bytes(), aad: aad.as_bytes() }).expect("encrypt");
    let v1 = format!("v1:{key_id}:{}", STANDARD.encode([nonce.as_slice(), &sealed].concat()));
    server.state.store.put_settings(&[(names::PROVIDER_API_KEY, &v1)]).await.expect("write");

    let server = server.restart().await;
    // The server binds keys before it serves: a call answered means done.
    server.settings().get_settings(pb::GetSettingsRequest {}).await.expect("serving");
    let raw = server.state.store.setting(names::PROVIDER_API_KEY).await.expect("read").expect("row");
    assert!(raw.starts_with(&format!("v2:{key_id}:")), "{raw}");
    assert_eq!(roleplay_server::secrets::origin_of(&raw), Some(server.upstream.base_url()));
    server.upstream.push(Reply::chunks(["still works"]));
    completes(&until_terminal(&mut server.send(&chat.id, "hi").await.expect("send")).await).await;
    assert_eq!(authorization(&server.upstream), vec![Some(format!("Bearer {API_KEY}"))]);
}

on_both_databases!(
    the_global_key_stays_with_its_host,
    a_users_own_key_stays_with_its_host,
    a_fallbacks_key_stays_with_its_host,
    keys_from_before_are_bound_at_start,
);
