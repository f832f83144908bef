//! Runs the shell blocks of docs/grpcurl.md, as written, with a real grpcurl
//! binary against a live server, through reflection only. Blocks marked
//! `{terminal=2}` run in the background, as in a second terminal.
//!
//! grpcurl comes from $GRPCURL or PATH (scripts/test installs it).

mod common;

use std::{process::Stdio, time::Duration};

use common::{Db, Reply, TestServer};

const WALKTHROUGH: &str = include_str!("../docs/grpcurl.md");

/// The doc's shell blocks as one script: foreground blocks as they are,
/// second-terminal blocks in the background with their output to a file.
fn script() -> String {
    let mut script = String::from("set -euo pipefail\n");
    let mut block: Option<(bool, String)> = None;
    let mut background = 0;
    for line in WALKTHROUGH.lines() {
        match (&mut block, line.trim_start()) {
            (None, fence) if fence.starts_with("```sh") => block = Some((fence.contains("terminal=2"), String::new())),
            (Some((in_background, body)), "```") => {
                if *in_background {
                    background += 1;
                    script.push_str(&format!("( {body} ) > \"$OUT/terminal2-{background}.log\" 2>&1 &\nsleep 1\n"));
                } else {
                    script.push_str(body);
                }
                block = None;
            }
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    script.push_str("kill $(jobs -p) 2>/dev/null || true\n");
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_grpcurl_commands_work() {
    let grpcurl = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let version = tokio::process::Command::new(&grpcurl).arg("-version").output().await;
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "grpcurl is needed: run scripts/test (it installs it) or set GRPCURL"
    );
    let server = TestServer::start(Db::Sqlite).await;
    server.upstream.push(Reply::chunks(["The sea ", "is wide, ", "the sea is deep."]));
    let saga: Vec<String> = (0..400).map(|i| format!("verse{i} ")).collect();
    server.upstream.push(Reply::slow(saga, Duration::from_millis(20)));
    // "Swipes, continue and editing": RegenerateReply, then ContinueReply.
    server.upstream.push(Reply::chunks(["Once, a lighthouse ", "sang to the sea."]));
    server.upstream.push(Reply::chunks([" It sang ", "until dawn."]));

    let out = tempfile::tempdir().expect("tempdir");
    let grpcurl_dir = std::path::Path::new(&grpcurl).parent().map(|p| p.display().to_string()).unwrap_or_default();
    let path = format!("{grpcurl_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(script())
        .env("ADDR", server.addr.to_string())
        .env("OUT", out.path())
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run the walkthrough");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the walkthrough failed:\n{stdout}\n{stderr}");

    for expected in [
        "roleplay.v1.MessageService",
        "grpc.health.v1.Health",
        "rpc AddUserMessageStreaming",
        "\"apiKeySet\": true",
        "\"started\"",
        "the sea is deep.",
        "\"completed\"",
        "\"streaming\": true",
        "\"cancelled\": true",
        "MESSAGE_STATUS_CANCELLED",
        "REPLY_KIND_REGENERATE",
        "\"alternativeCount\": 2",
        "\"selectedIndex\": 1",
        "REPLY_KIND_CONTINUE",
        "\"continuesFrom\"",
        "Once, a lighthouse sang to the sea. It sang until dawn.",
        "\"editedAt\"",
        "Once, a lighthouse sang to the sea until dawn.",
        "\"deletedMessageIds\"",
        "Well met, Sam!",
        "\"name\": \"alice\"",
        "\"overall\"",
        "refused without a token",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing from the walkthrough's output:\n{stdout}");
    }
    assert!(!stdout.contains("sk-or-v1-replace"), "no RPC returns the key");
    assert!(stderr.contains("Unauthenticated"), "grpcurl shows why it was refused:\n{stderr}");
    let watched = std::fs::read_to_string(out.path().join("terminal2-1.log")).expect("second terminal output");
    assert!(watched.contains("the sea is deep."), "the subscriber saw the reply:\n{watched}");
    assert!(watched.contains("\"chatChanged\""), "the subscriber saw the edits:\n{watched}");
    let saga = std::fs::read_to_string(out.path().join("terminal2-2.log")).expect("second terminal output");
    assert!(saga.contains("\"cancelled\""), "the sender saw Cancelled:\n{saga}");

    // The chat belongs to `local`, whose calls now need a token: read it
    // through the store.
    let chats = server
        .state
        .store
        .list_chat_sessions(
            roleplay_server::users::LOCAL_USER_ID,
            None,
            &roleplay_server::store::PageRequest { after: None, size: 10 },
        )
        .await
        .expect("list");
    // The chat and its fork.
    assert_eq!(chats.items.len(), 2);
    assert_eq!(chats.items.iter().filter(|c| c.title.ends_with(" (fork)")).count(), 1);
}
