//! The servers under test as child processes, and what /proc says of them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};
use tonic::transport::Channel;

pub struct Server {
    /// Killed when dropped.
    _child: Child,
    pub addr: SocketAddr,
    pid: u32,
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr")
}

/// The roleplay-server binary the bench measures: the one cargo built beside
/// the bench, so a release bench measures a release server.
pub fn server_binary() -> PathBuf {
    std::env::current_exe().expect("own path").with_file_name("roleplay-server")
}

impl Server {
    pub async fn floor(upstream: &str) -> Self {
        let addr = free_addr();
        let exe = std::env::current_exe().expect("own path");
        let mut command = Command::new(exe);
        command.args(["floor", "--listen", &addr.to_string(), "--upstream", upstream]);
        Self::start(command, addr).await
    }

    /// `metrics`: serve /metrics on an admin port of its own (recording
    /// every metric), else none (the facade's calls are then no-ops).
    /// `ROLEPLAY_BENCH_METRICS_LISTEN` gives every server the bench starts
    /// metrics at that address instead, for a Prometheus to scrape during a
    /// run (docs/dashboard); while two servers run at once, the second
    /// serves none.
    pub async fn roleplay(upstream: &str, database_url: &str, dir: &Path, metrics: bool) -> Self {
        Self::roleplay_with_env(upstream, database_url, dir, metrics, &[]).await
    }

    /// [`Self::roleplay`] with more environment, set last so it wins (e.g.
    /// `ROLEPLAY_REDIS_URL` and a master key shared by replicas).
    pub async fn roleplay_with_env(
        upstream: &str,
        database_url: &str,
        dir: &Path,
        metrics: bool,
        env: &[(&str, &str)],
    ) -> Self {
        let addr = free_addr();
        let admin = match std::env::var("ROLEPLAY_BENCH_METRICS_LISTEN") {
            Ok(fixed) if !fixed.is_empty() => fixed,
            _ if metrics => free_addr().to_string(),
            _ => String::new(),
        };
        let mut command = Command::new(server_binary());
        command
            .arg("serve")
            .env("ROLEPLAY_LISTEN", addr.to_string())
            .env("DATABASE_URL", database_url)
            .env("ROLEPLAY_MASTER_KEY_FILE", dir.join("master.key"))
            .env("OPENROUTER_BASE_URL", upstream)
            .env("ROLEPLAY_MAX_WATCHERS_PER_CHAT", "5000")
            .env("ROLEPLAY_DB_POOL_SIZE", "16")
            // One local user sends every message here: the per-user and
            // per-chat limits would measure the limiter, not the server.
            .env("ROLEPLAY_MESSAGES_PER_MINUTE_PER_USER", "0")
            .env("ROLEPLAY_MESSAGES_PER_MINUTE_PER_CHAT", "0")
            .env("ROLEPLAY_GENERATIONS_PER_USER", "0")
            .env("ROLEPLAY_METRICS_LISTEN", admin)
            .env("RUST_LOG", "error")
            .envs(env.iter().copied());
        let server = Self::start(command, addr).await;
        server.until_serving().await;
        server
    }

    /// Waits until gRPC health says SERVING: the server has loaded its
    /// tokenizer (a first send would otherwise wait for it, and every
    /// scenario's first round would measure that load).
    async fn until_serving(&self) {
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
        let mut health = HealthClient::new(self.channel().await);
        for _ in 0..600 {
            let answer = health.check(HealthCheckRequest { service: String::new() }).await;
            if answer.is_ok_and(|answer| answer.into_inner().status() == ServingStatus::Serving) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server at {} did not report SERVING", self.addr);
    }

    async fn start(mut command: Command, addr: SocketAddr) -> Self {
        let child = command.stdout(Stdio::null()).kill_on_drop(true).spawn().expect("spawn server");
        let pid = child.id().expect("pid");
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Self { _child: child, addr, pid };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server at {addr} did not start");
    }

    /// Fresh HTTP/2 connections: one carries a bounded number of streams.
    pub async fn channels(&self, count: usize) -> Vec<Channel> {
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            channels.push(self.channel().await);
        }
        channels
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).expect("uri").connect().await.expect("connect")
    }

    /// User + system CPU time of the server process so far.
    pub fn cpu(&self) -> Duration {
        cpu_of(self.pid)
    }

    /// Resident memory, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// User + system CPU time of one process so far (all its threads).
pub fn cpu_of(pid: u32) -> Duration {
    let ticks = stat_fields(pid).map_or(0, |fields| {
        // utime and stime: the 14th and 15th fields overall, in clock ticks
        // (100 per second); `stat_fields` starts at the 3rd.
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    });
    Duration::from_millis(ticks * 10)
}

/// Resident memory of one process, in bytes.
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A process and all its descendants alive now, from each process's parent
/// in /proc (for servers that run workers as child processes).
pub fn tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            // The parent is the 4th field overall, the 2nd after the name.
            let parent = stat_fields(pid)?.get(1)?.parse().ok()?;
            Some((pid, parent))
        })
        .collect();
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(pid, _)| *pid));
        next += 1;
    }
    found
}

/// The fields of /proc/<pid>/stat after the parenthesised command name
/// (which may hold spaces): the state first.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}
