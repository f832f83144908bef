//! Master-key rotation through the command line, on SQLite and PostgreSQL:
//! add (rotate) → re-encrypt → retire, with refusals while a key is in use.

mod common;

use common::{
    API_KEY, Db, FakeUpstream, Reply, TestDb,
    process::{open_chat, run_cli, spawn},
};
use roleplay_server::{
    api::pb::{self, settings_service_client::SettingsServiceClient},
    secrets::{MasterKey, key_id_of},
    settings::names,
    store::Store,
};
use secrecy::SecretString;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn stored_key_id(store: &Store) -> String {
    let raw = store.setting(names::PROVIDER_API_KEY).await.expect("read").expect("row");
    key_id_of(&raw).expect("v1 format").to_owned()
}

async fn rotate_then_retire(db: Db) {
    let upstream = FakeUpstream::start().await;
    let database = TestDb::new(db).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = spawn(&database, dir.path(), &upstream).await;
    let chat = open_chat(&server.channel).await; // stores the API key
    server.child.kill().await.expect("stop");
    let store = Store::open(&database.url, 2).await.expect("store");
    let first = stored_key_id(&store).await;

    let refused = run_cli(&database, dir.path(), &["keys", "retire", &first]).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("primary"), "{}", stderr(&refused));

    let rotated = run_cli(&database, dir.path(), &["keys", "rotate"]).await;
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert!(stdout(&rotated).contains("re-encrypted 1 stored value"), "{}", stdout(&rotated));
    let second = stored_key_id(&store).await;
    assert_ne!(second, first, "the value is now under the new primary");
    assert!(dir.path().join("keys").join(format!("{first}.key")).exists(), "the old key is kept");

    // A value still under the old key blocks its retirement...
    let old_key = MasterKey::from_base64(
        &std::fs::read_to_string(dir.path().join("keys").join(format!("{first}.key"))).expect("old key"),
    )
    .expect("key");
    let origin = roleplay_server::settings::origin(&upstream.base_url());
    let old_value = old_key.encrypt(names::PROVIDER_API_KEY, &origin, &SecretString::from(API_KEY)).expect("encrypt");
    store.put_settings(&[(names::PROVIDER_API_KEY, &old_value)]).await.expect("write");
    let listed = run_cli(&database, dir.path(), &["keys", "list"]).await;
    assert!(stdout(&listed).contains(&format!("{first}  older    1 stored value(s)")), "{}", stdout(&listed));
    let refused = run_cli(&database, dir.path(), &["keys", "retire", &first]).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("still encrypts 1"), "{}", stderr(&refused));

    // ...until a rotation re-encrypts it.
    let rotated = run_cli(&database, dir.path(), &["keys", "rotate"]).await;
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let third = stored_key_id(&store).await;
    assert!(third != first && third != second);
    for old in [&first, &second] {
        let retired = run_cli(&database, dir.path(), &["keys", "retire", old]).await;
        assert!(retired.status.success(), "{}", stderr(&retired));
        assert!(!dir.path().join("keys").join(format!("{old}.key")).exists());
    }

    // The restarted server reads the key and uses it.
    let server = spawn(&database, dir.path(), &upstream).await;
    let settings = SettingsServiceClient::new(server.channel.clone())
        .get_settings(pb::GetSettingsRequest {})
        .await
        .expect("settings")
        .into_inner();
    assert_eq!((settings.api_key_problem.as_str(), settings.api_key_hint.as_str()), ("", "sk-…cdef"));
    upstream.push(Reply::chunks(["still ", "works"]));
    let mut stream =
        roleplay_server::api::pb::message_service_client::MessageServiceClient::new(server.channel.clone())
            .add_user_message_streaming(pb::AddUserMessageRequest { chat_session_id: chat.id, content: "hi".into() })
            .await
            .expect("send")
            .into_inner();
    let events = common::until_terminal(&mut stream).await;
    assert!(matches!(common::terminal(&events), pb::generation_event::Event::Completed(_)));
    let requests = upstream.requests();
    assert_eq!(requests.last().expect("request").headers["authorization"], format!("Bearer {API_KEY}").as_str());
}

on_both_databases!(rotate_then_retire);
