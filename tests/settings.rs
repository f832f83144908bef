//! Settings and the encrypted provider key, on SQLite and PostgreSQL.

mod common;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use common::{API_KEY, Db, TestServer};
use roleplay_server::{api::pb, config::DEFAULT_MODEL, settings::names};
use tonic::Code;

async fn defaults_and_partial_updates(db: Db) {
    let server = TestServer::start(db).await;
    let mut client = server.settings();
    let initial = client.get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner();
    assert!(!initial.api_key_set);
    assert_eq!(initial.api_key_hint, "");
    assert_eq!(initial.default_model, DEFAULT_MODEL);
    assert_eq!(initial.provider_base_url, server.upstream.base_url(), "the configured base URL is the default");

    let updated = client
        .update_settings(pb::UpdateSettingsRequest {
            system_prompt: Some("You are {{char}}.".into()),
            default_model: Some("vendor/model-b".into()),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.system_prompt, "You are {{char}}.");
    assert_eq!(updated.default_model, "vendor/model-b");
    assert_eq!(updated.pre_system_prompt, "", "absent fields stay as they were");

    let updated = client
        .update_settings(pb::UpdateSettingsRequest {
            post_system_prompt: Some("Stay in character.".into()),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.system_prompt, "You are {{char}}.", "earlier updates are kept");
    assert_eq!(updated.post_system_prompt, "Stay in character.");

    for bad in ["ftp://example.com", "not a url", "http://"] {
        let err = client
            .update_settings(pb::UpdateSettingsRequest { provider_base_url: Some(bad.into()), ..Default::default() })
            .await
            .expect_err("bad url");
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
    }
    let err = client
        .update_settings(pb::UpdateSettingsRequest { default_model: Some("  ".into()), ..Default::default() })
        .await
        .expect_err("blank model");
    assert_eq!(err.code(), Code::InvalidArgument);
    let after = client.get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner();
    assert_eq!(after, updated, "refused updates change nothing");
}

async fn api_key_is_encrypted_write_only_and_survives_restart(db: Db) {
    let server = TestServer::start(db).await;
    let mut client = server.settings();
    for bad in ["", "   ", "sk-with space-1234", "short"] {
        let err = client
            .set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: bad.into() })
            .await
            .expect_err("bad key");
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(!err.message().contains(bad) || bad.trim().is_empty(), "the refused key is not echoed");
    }
    assert!(!client.get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner().api_key_set);

    let settings = client
        .set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: API_KEY.into() })
        .await
        .expect("set")
        .into_inner();
    assert!(settings.api_key_set);
    assert_eq!(settings.api_key_hint, "sk-…cdef");
    assert!(!format!("{settings:?}").contains(API_KEY));
    let request = pb::SetProviderApiKeyRequest { api_key: API_KEY.into() };
    assert!(!format!("{request:?}").contains(API_KEY), "Debug of the request redacts the key");

    let raw = server.state.store.setting(names::PROVIDER_API_KEY).await.expect("read").expect("row");
    assert!(raw.starts_with(&format!("v2:{}:", server.state.keys.primary().id())), "{raw}");
    assert!(!raw.contains(API_KEY) && !raw.contains("0123456789abcdef"), "the row does not hold the key");

    let server = server.restart().await;
    let settings = server.settings().get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner();
    assert_eq!(
        (settings.api_key_set, settings.api_key_hint.as_str(), settings.api_key_problem.as_str()),
        (true, "sk-…cdef", "")
    );

    let cleared =
        server.settings().clear_provider_api_key(pb::ClearProviderApiKeyRequest {}).await.expect("clear").into_inner();
    assert!(!cleared.api_key_set);
    assert!(server.state.store.setting(names::PROVIDER_API_KEY).await.expect("read").is_none());
}

async fn a_tampered_key_is_a_clear_failed_precondition(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let store = &server.state.store;
    let raw = store.setting(names::PROVIDER_API_KEY).await.expect("read").expect("row");
    let split = raw.rfind(':').expect("format") + 1;
    let mut blob = STANDARD.decode(&raw[split..]).expect("base64");
    blob[30] ^= 0x01;
    let tampered = format!("{}{}", &raw[..split], STANDARD.encode(&blob));
    store.put_settings(&[(names::PROVIDER_API_KEY, &tampered)]).await.expect("write");

    let settings = server.settings().get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner();
    assert!(settings.api_key_set);
    assert_eq!(settings.api_key_hint, "");
    assert!(settings.api_key_problem.contains("cannot be decrypted"), "{}", settings.api_key_problem);

    let err = server.send(&chat.id, "hello").await.expect_err("no usable key");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("cannot be decrypted") && err.message().contains("SetProviderApiKey"),
        "{}",
        err.message()
    );
    assert_eq!(server.messages_of(&chat.id).await.len(), 0, "nothing was stored");
    assert!(server.upstream.requests().is_empty(), "nothing was sent upstream");

    server.settings().clear_provider_api_key(pb::ClearProviderApiKeyRequest {}).await.expect("clear");
    let err = server.send(&chat.id, "hello").await.expect_err("no key");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("no provider API key"), "{}", err.message());
}

on_both_databases!(
    defaults_and_partial_updates,
    api_key_is_encrypted_write_only_and_survives_restart,
    a_tampered_key_is_a_clear_failed_precondition,
);
