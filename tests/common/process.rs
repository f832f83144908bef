//! The real server binary as a child process, for tests that kill it,
//! signal it or run its command line.

use std::{path::Path, process::Stdio, time::Duration};

use roleplay_server::api::pb;
use tokio::{
    process::{Child, Command},
    time::Instant,
};
use tonic::transport::Channel;

use super::{FakeUpstream, TestDb};

/// The environment that points the binary at the test's database and keys.
fn base_env(db: &TestDb, dir: &Path) -> Vec<(String, String)> {
    vec![
        ("DATABASE_URL".into(), db.url.clone()),
        ("ROLEPLAY_MASTER_KEY_FILE".into(), dir.join("master.key").display().to_string()),
        ("ROLEPLAY_MASTER_KEY_DIR".into(), dir.join("keys").display().to_string()),
        ("RUST_LOG".into(), "warn".into()),
        // Tests run many servers at once: no shared admin port.
        ("ROLEPLAY_METRICS_LISTEN".into(), String::new()),
    ]
}

/// Runs a command line (`keys rotate`, ...) to completion.
pub async fn run_cli(db: &TestDb, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_roleplay-server"))
        .args(args)
        .envs(base_env(db, dir))
        .env_remove("ROLEPLAY_MASTER_KEY")
        .env_remove("ROLEPLAY_MASTER_KEYS")
        .output()
        .await
        .expect("run the binary")
}

pub struct Process {
    pub child: Child,
    pub channel: Channel,
    pub port: u16,
}

pub async fn spawn(db: &TestDb, dir: &Path, upstream: &FakeUpstream) -> Process {
    spawn_with(db, dir, upstream, &[]).await
}

pub async fn spawn_with(db: &TestDb, dir: &Path, upstream: &FakeUpstream, env: &[(&str, &str)]) -> Process {
    spawn_logging(db, dir, upstream, env, Stdio::inherit()).await
}

/// Like [`spawn_with`], with the server's log (stderr) going to `stderr`.
pub async fn spawn_logging(
    db: &TestDb,
    dir: &Path,
    upstream: &FakeUpstream,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> Process {
    spawn_at(db, dir, &upstream.base_url(), env, stderr).await
}

/// The server with its provider at `base_url` (an upstream other than
/// [`FakeUpstream`]).
pub async fn spawn_at(db: &TestDb, dir: &Path, base_url: &str, env: &[(&str, &str)], stderr: Stdio) -> Process {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let child = Command::new(env!("CARGO_BIN_EXE_roleplay-server"))
        .arg("serve")
        .env("ROLEPLAY_LISTEN", format!("127.0.0.1:{port}"))
        .envs(base_env(db, dir))
        .env("OPENROUTER_BASE_URL", base_url)
        .env("ROLEPLAY_CHECKPOINT_INTERVAL", "250ms")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let channel = loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("uri").connect().await {
            Ok(channel) => break channel,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => panic!("server did not start: {err}"),
        }
    };
    Process { child, channel, port }
}

/// A character ("Aria", "A bard."), a profile ("Sam") and a chat between
/// them, with the API key set (in single-user mode).
pub async fn open_chat(channel: &Channel) -> pb::ChatSession {
    let local = super::users::As::new(channel.clone(), None);
    local.set_global_key().await;
    local.open_chat("Aria").await
}
