//! `roleplay-server users ...` against the database of a running server:
//! the server sees each change at its next call.

mod common;

use std::time::Duration;

use common::{Db, FakeUpstream, TestDb, process, users::As};
use roleplay_server::api::pb;
use tonic::Code;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn current_user(server: &process::Process, token: Option<&str>) -> Result<String, Code> {
    As::new(server.channel.clone(), token)
        .users()
        .get_current_user(pb::GetCurrentUserRequest {})
        .await
        .map(|r| r.into_inner().name)
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_managed_from_the_command_line_while_the_server_runs() {
    let db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = FakeUpstream::start().await;
    let server = process::spawn(&db, dir.path(), &upstream).await;
    assert_eq!(current_user(&server, None).await, Ok("local".into()), "single-user mode");

    let added = process::run_cli(&db, dir.path(), &["users", "add", "alice", "--admin"]).await;
    assert!(added.status.success(), "{}", text(&added.stderr));
    let token = text(&added.stdout).trim().to_owned();
    assert_eq!((token.len(), text(&added.stdout).lines().count()), (43, 1), "the token alone on stdout");
    assert!(text(&added.stderr).contains("shown only once"));
    let again = process::run_cli(&db, dir.path(), &["users", "add", "alice"]).await;
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));

    assert_eq!(current_user(&server, Some(&token)).await, Ok("alice".into()));
    // Single-user mode ends within a second of the first token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(current_user(&server, None).await, Err(Code::Unauthenticated));

    let reissued = process::run_cli(&db, dir.path(), &["users", "token", "alice"]).await;
    assert!(reissued.status.success(), "{}", text(&reissued.stderr));
    let new_token = text(&reissued.stdout).trim().to_owned();
    assert_eq!(current_user(&server, Some(&token)).await, Err(Code::Unauthenticated), "the old token died at once");
    assert_eq!(current_user(&server, Some(&new_token)).await, Ok("alice".into()));

    let revoked = process::run_cli(&db, dir.path(), &["users", "revoke", "alice"]).await;
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert_eq!(current_user(&server, Some(&new_token)).await, Err(Code::Unauthenticated), "revoked at once");

    let listed = text(&process::run_cli(&db, dir.path(), &["users", "list"]).await.stdout);
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0][1..], ["local", "admin", "no", "token"]);
    assert_eq!(rows[1][1..], ["alice", "admin", "revoked"]);
    assert!(!listed.contains(&new_token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_address_needs_a_user_first() {
    let db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        process::run_cli(&db, dir.path(), &["serve", "--listen", "0.0.0.0:0"]),
    )
    .await
    .expect("the server refuses at once instead of serving");
    assert!(!refused.status.success());
    let said = text(&refused.stderr);
    assert!(said.contains("refusing to serve 0.0.0.0:0 without authentication"), "{said}");
    assert!(said.contains("users add"), "the refusal says what to do: {said}");
}
