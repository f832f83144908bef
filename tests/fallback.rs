//! The provider fallback chain, with two fake upstreams, on SQLite and
//! PostgreSQL: the next provider is tried only when the previous one is
//! unavailable before the first token, and the stored reply says who answered.

mod common;

use common::{Db, FakeUpstream, Reply, TestServer, terminal, until_terminal};
use roleplay_server::{
    api::pb::{self, generation_event::Event},
    settings::names,
};
use tonic::Code;

const BACKUP_KEY: &str = "sk-backup-0123456789abcdef";

fn backup(upstream: &FakeUpstream, api_key: Option<&str>) -> pb::FallbackProviderInput {
    pb::FallbackProviderInput {
        name: "backup".into(),
        base_url: upstream.base_url(),
        model: "backup/model".into(),
        api_key: api_key.map(Into::into),
    }
}

async fn set(server: &TestServer, providers: Vec<pb::FallbackProviderInput>) -> Result<pb::Settings, tonic::Status> {
    server
        .settings()
        .set_fallback_providers(pb::SetFallbackProvidersRequest { providers })
        .await
        .map(tonic::Response::into_inner)
}

async fn an_unavailable_primary_falls_back(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let second = FakeUpstream::start().await;
    let settings = set(&server, vec![backup(&second, Some(BACKUP_KEY))]).await.expect("set");
    let listed = &settings.fallback_providers[0];
    assert_eq!((listed.name.as_str(), listed.api_key_set, listed.api_key_hint.as_str()), ("backup", true, "sk-…cdef"));
    let raw = server.state.store.setting(&names::fallback_api_key("backup")).await.expect("read").expect("row");
    assert!(!raw.contains(BACKUP_KEY));

    for _ in 0..3 {
        server.upstream.push(Reply::status(503, "overloaded"));
    }
    second.push(Reply::chunks(["from ", "backup"]));
    let events = until_terminal(&mut server.send(&chat.id, "hi").await.expect("send")).await;
    let Event::Completed(done) = terminal(&events) else { panic!("the backup answered: {events:?}") };
    let message = done.message.as_ref().expect("message");
    assert_eq!(message.content, "from backup");
    assert_eq!((message.provider.as_deref(), message.model.as_deref()), (Some("backup"), Some("backup/model")));
    let request = &second.requests()[0];
    assert_eq!(request.headers["authorization"], format!("Bearer {BACKUP_KEY}").as_str());
    assert_eq!(request.body["model"], "backup/model");
    assert_eq!(request.body["messages"], server.upstream.requests()[0].body["messages"], "the same prompt");

    // The primary answering: it is named as such.
    let events = until_terminal(&mut server.send(&chat.id, "again").await.expect("send")).await;
    let Event::Completed(done) = terminal(&events) else { panic!("completed") };
    assert_eq!(done.message.as_ref().and_then(|m| m.provider.as_deref()), Some("primary"));

    // A rejected key is not a reason to try elsewhere.
    server.upstream.push(Reply::status(401, "bad key"));
    let before = second.requests().len();
    let events = until_terminal(&mut server.send(&chat.id, "third").await.expect("send")).await;
    assert!(matches!(terminal(&events), Event::Failed(f) if f.code() == pb::FailureCode::KeyRejected));
    assert_eq!(second.requests().len(), before);
}

async fn the_fallback_list_is_validated_and_keys_are_kept_or_removed(db: Db) {
    let server = TestServer::start(db).await;
    let second = FakeUpstream::start().await;
    for (bad, expected) in [
        (pb::FallbackProviderInput { name: "primary".into(), ..backup(&second, None) }, "primary"),
        (pb::FallbackProviderInput { name: "has space".into(), ..backup(&second, None) }, "letters"),
        (pb::FallbackProviderInput { base_url: "ftp://x".into(), ..backup(&second, None) }, "http"),
        (pb::FallbackProviderInput { base_url: String::new(), ..backup(&second, None) }, "base_url"),
        (pb::FallbackProviderInput { api_key: Some("short".into()), ..backup(&second, None) }, "api_key"),
    ] {
        let err = set(&server, vec![bad]).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(expected), "{} should mention {expected}", err.message());
    }
    let err = set(&server, vec![backup(&second, None), backup(&second, None)]).await.expect_err("twice");
    assert!(err.message().contains("twice"));
    assert!(set(&server, vec![]).await.expect("empty").fallback_providers.is_empty(), "refusals stored nothing");

    set(&server, vec![backup(&second, Some(BACKUP_KEY))]).await.expect("set");
    let kept = set(&server, vec![backup(&second, None)]).await.expect("set without key");
    assert!(kept.fallback_providers[0].api_key_set, "an absent key keeps the stored one");
    set(&server, vec![]).await.expect("clear");
    assert!(server.state.store.setting(&names::fallback_api_key("backup")).await.expect("read").is_none());
    let request = backup(&second, Some(BACKUP_KEY));
    assert!(!format!("{request:?}").contains(BACKUP_KEY), "Debug redacts the key");
}

on_both_databases!(an_unavailable_primary_falls_back, the_fallback_list_is_validated_and_keys_are_kept_or_removed);
