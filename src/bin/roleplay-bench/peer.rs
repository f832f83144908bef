//! A peer in the same run: LiteLLM's proxy, the tool a user would put
//! between an app and OpenRouter instead of roleplay-server, in front of the
//! same fake upstream and measured beside the floor and roleplay-server
//! (`roleplay-bench --peer litellm`, BENCHMARKS.md §10).
//!
//! The proxy is installed once, at a pinned version, from PyPI into a venv
//! beside the bench (`target/peer/litellm-venv`). It runs as one uvicorn
//! worker (its default, asked for explicitly); its CPU and memory are those
//! of its whole process tree in /proc, which is that one process unless it
//! starts children. It is set up to store nothing and to reach nothing but
//! the fake upstream: no database, no cache, no callbacks, no spend or error
//! logs, the model cost map bundled with it instead of the one on GitHub,
//! and logs at ERROR like the other servers.
//!
//! Each concurrency level measures four things in turn with the same reply
//! shape: the fake upstream alone (the bench's HTTP client straight to it,
//! the baseline "added" time to first token is counted from), the floor and
//! roleplay-server over gRPC as in scenario 1, and LiteLLM over its OpenAI
//! HTTP API (SSE, one HTTP/1.1 connection per stream).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use roleplay_server::{
    api::pb::{self, generation_event::Event, message_service_client::MessageServiceClient},
    provider::{StreamEvent, sse::chat_events},
};
use tokio::{
    process::{Child, Command},
    time::Instant,
};
use tonic::transport::Channel;

use crate::{
    clients::{self, Roleplay},
    process::{self, Server},
    report,
    upstream::Shape,
};

/// The LiteLLM release measured, exactly (`litellm[proxy]==` this).
pub const LITELLM_VERSION: &str = "1.106.12";

const CONCURRENCY: [usize; 4] = [1, 10, 100, 1000];
/// A stream still open after this long counts as an error.
const STREAM_LIMIT: Duration = Duration::from_secs(120);
/// Creating the venv and installing LiteLLM into it.
const INSTALL_LIMIT: Duration = Duration::from_secs(900);
/// Measuring, once LiteLLM is installed.
const RUN_LIMIT: Duration = Duration::from_secs(1800);
/// The 1-stream and 10-stream rows repeat this many rounds, so their
/// percentiles and CPU (10 ms ticks) rest on more than one or ten replies.
fn rounds(concurrent: usize) -> usize {
    (30 / concurrent).clamp(1, 10)
}

/// `target/peer`, beside the folder the bench was built into.
fn peer_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().and_then(Path::parent).expect("the target folder").join("peer")
}

/// Installs LiteLLM if needed, then measures it beside the floor and
/// roleplay-server; the report section, or why LiteLLM could not run.
pub async fn run_litellm() -> Result<String, String> {
    let dir = peer_dir();
    let venv = install(&dir).await?;
    tokio::time::timeout(RUN_LIMIT, measure_all(&venv, &dir))
        .await
        .map_err(|_| format!("the peer run took longer than {} s", RUN_LIMIT.as_secs()))?
}

async fn installed_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import importlib.metadata as m; print(m.version('litellm'))"])
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `target/peer/litellm-venv` holding `litellm[proxy]==LITELLM_VERSION`.
async fn install(dir: &Path) -> Result<PathBuf, String> {
    let venv = dir.join("litellm-venv");
    let python = venv.join("bin/python");
    if installed_version(&python).await.as_deref() == Some(LITELLM_VERSION) {
        return Ok(venv);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    eprintln!("installing litellm[proxy]=={LITELLM_VERSION} into {} (once)", venv.display());
    if !python.is_file() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).await?;
    }
    let package = format!("litellm[proxy]=={LITELLM_VERSION}");
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", &package]))
        .await?;
    match installed_version(&python).await {
        Some(version) if version == LITELLM_VERSION => Ok(venv),
        other => Err(format!("after pip install, litellm is {other:?}, not {LITELLM_VERSION}")),
    }
}

async fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{:?}", command.as_std());
    let out = tokio::time::timeout(
        INSTALL_LIMIT,
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).output(),
    )
    .await
    .map_err(|_| format!("{shown} took longer than {} s", INSTALL_LIMIT.as_secs()))?
    .map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({}): {}", out.status, tail(&String::from_utf8_lossy(&out.stderr))))
    }
}

/// The last lines of a log, for an error message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The proxy's configuration: the bench's model name routed to the fake
/// upstream as an OpenAI-compatible provider (a dummy key; the fake checks
/// none), a master key for the clients, and nothing stored or called back.
fn config(upstream: &str, model: &str, master_key: &str) -> String {
    format!(
        r#"# Written by roleplay-bench (src/bin/roleplay-bench/peer.rs) for one run.
model_list:
  - model_name: "{model}"
    litellm_params:
      model: "openai/{model}"
      api_base: "{upstream}"
      api_key: "sk-bench-upstream-dummy"
litellm_settings:
  telemetry: false
  cache: false
  callbacks: []
  success_callback: []
  failure_callback: []
general_settings:
  master_key: "{master_key}"
  disable_spend_logs: true
  disable_error_logs: true
  store_model_in_db: false
  background_health_checks: false
"#
    )
}

/// The LiteLLM proxy as a child process; killed when dropped.
pub struct LiteLlm {
    _child: Child,
    url: String,
    key: String,
    pid: u32,
}

impl LiteLlm {
    async fn start(venv: &Path, dir: &Path, upstream: &str, shape: Shape) -> Result<Self, String> {
        let addr = process::free_addr();
        let key = format!("sk-bench-{}", uuid::Uuid::now_v7().simple());
        let config_path = dir.join("litellm.yaml");
        std::fs::write(&config_path, config(upstream, &shape.model(), &key)).map_err(|e| e.to_string())?;
        let log_path = dir.join("litellm.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(venv.join("bin/litellm"));
        command
            .arg("--config")
            .arg(&config_path)
            .args(["--host", "127.0.0.1", "--port", &addr.port().to_string(), "--num_workers", "1"])
            .current_dir(dir)
            // The bundled model cost map: the proxy otherwise fetches it
            // from GitHub at start (and retries when offline).
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            // Read by earlier releases; this one has no telemetry to send.
            .env("LITELLM_TELEMETRY", "False")
            // Like RUST_LOG=error for the others: no access log per request.
            .env("LITELLM_LOG", "ERROR")
            .env("LITELLM_DONT_SHOW_FEEDBACK_BOX", "True")
            .env("NO_PROXY", "127.0.0.1,localhost")
            // Nothing to store into, whatever the environment holds.
            .env_remove("DATABASE_URL")
            .env_remove("DIRECT_URL")
            .env_remove("REDIS_HOST")
            .env_remove("REDIS_URL")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| format!("start {}: {e}", venv.join("bin/litellm").display()))?;
        let pid = child.id().ok_or("LiteLLM exited at once")?;
        let url = format!("http://{addr}");
        let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("LiteLLM exited ({status}) before answering:\n{}", tail(&log)));
            }
            let health = client.get(format!("{url}/health/liveliness")).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(Self { _child: child, url, key, pid });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        Err(format!("LiteLLM did not answer in 180 s:\n{}", tail(&log)))
    }
}

/// What one stream got.
struct Outcome {
    first_token: Option<Duration>,
    bytes: u64,
    /// Ended cleanly with the whole reply.
    whole: bool,
    error: Option<String>,
}

impl Outcome {
    fn failed(error: String) -> Self {
        Self { first_token: None, bytes: 0, whole: false, error: Some(error) }
    }
}

/// One streamed chat completion over OpenAI's HTTP API.
async fn http_stream(
    client: reqwest::Client,
    url: String,
    key: Option<String>,
    model: String,
    expected: u64,
) -> Outcome {
    let start = Instant::now();
    let body = serde_json::json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": "Go on."}],
    });
    let mut request = client.post(url).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = match request.send().await {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Outcome::failed(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
        }
        Err(err) => return Outcome::failed(format!("{err:?}")),
    };
    let mut outcome = Outcome { first_token: None, bytes: 0, whole: false, error: None };
    let mut events = std::pin::pin!(chat_events(response.bytes_stream().eventsource()));
    while let Some(event) = events.next().await {
        match event {
            Ok(StreamEvent::Text(text)) => {
                outcome.first_token.get_or_insert_with(|| start.elapsed());
                outcome.bytes += text.len() as u64;
            }
            Ok(_) => {}
            Err(err) => {
                outcome.error = Some(err.to_string());
                return outcome;
            }
        }
    }
    outcome.whole = outcome.bytes == expected;
    if !outcome.whole {
        outcome.error = Some(format!("{} bytes of {expected}", outcome.bytes));
    }
    outcome
}

/// One AddUserMessageStreaming over gRPC (chat id, or the model for the floor).
async fn grpc_stream(channel: Channel, id: String, expected: u64) -> Outcome {
    let start = Instant::now();
    let mut client = MessageServiceClient::new(channel);
    let request = pb::AddUserMessageRequest { chat_session_id: id, content: "Go on.".into() };
    let mut stream = match client.add_user_message_streaming(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Outcome::failed(format!("{status}")),
    };
    let mut outcome = Outcome { first_token: None, bytes: 0, whole: false, error: None };
    loop {
        match stream.message().await {
            Ok(Some(event)) => match event.event {
                Some(Event::Delta(delta)) => {
                    outcome.first_token.get_or_insert_with(|| start.elapsed());
                    outcome.bytes += delta.text.len() as u64;
                }
                Some(Event::Failed(failed)) => {
                    outcome.error = Some(format!("Failed: {failed:?}"));
                    return outcome;
                }
                Some(Event::Cancelled(_)) => {
                    outcome.error = Some("Cancelled".into());
                    return outcome;
                }
                _ => {}
            },
            Ok(None) => break,
            Err(status) => {
                outcome.error = Some(format!("{status}"));
                return outcome;
            }
        }
    }
    outcome.whole = outcome.bytes == expected;
    if !outcome.whole {
        outcome.error = Some(format!("{} bytes of {expected}", outcome.bytes));
    }
    outcome
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// The bench's HTTP client straight to the fake upstream.
    Upstream,
    Floor,
    Roleplay,
    LiteLlm,
}

impl Target {
    const ALL: [Target; 4] = [Target::Upstream, Target::Floor, Target::Roleplay, Target::LiteLlm];

    fn name(self) -> &'static str {
        match self {
            Target::Upstream => "fake upstream alone",
            Target::Floor => "floor",
            Target::Roleplay => "roleplay-server",
            Target::LiteLlm => "LiteLLM",
        }
    }
}

/// One row: a target at one concurrency, over its rounds.
#[derive(Default)]
struct Row {
    first_token: Vec<Duration>,
    streams: usize,
    whole: usize,
    bytes: u64,
    cpu: Duration,
    rss_before: u64,
    rss_peak: u64,
    first_error: Option<String>,
}

struct Bench {
    upstream: String,
    shape: Shape,
    http: reqwest::Client,
    floor: Server,
    roleplay: Roleplay,
    litellm: LiteLlm,
}

impl Bench {
    /// The process whose tree is measured (none for the fake upstream,
    /// which runs inside the bench).
    fn pid(&self, target: Target) -> Option<u32> {
        match target {
            Target::Upstream => None,
            Target::Floor => Some(self.floor.pid()),
            Target::Roleplay => Some(self.roleplay.server.pid()),
            Target::LiteLlm => Some(self.litellm.pid),
        }
    }

    /// `n` streams at once; the row gathers what they got, the CPU the
    /// target spent and its highest resident memory meanwhile.
    async fn round(&self, target: Target, n: usize, row: &mut Row) {
        let expected = (self.shape.chunks * self.shape.chunk_bytes) as u64;
        let model = self.shape.model();
        // Connections and chats are made before the CPU is read.
        let (channels, ids) = match target {
            Target::Floor => {
                (self.floor.channels(n.div_ceil(clients::STREAMS_PER_CONNECTION)).await, vec![model.clone(); n])
            }
            Target::Roleplay => (
                self.roleplay.server.channels(n.div_ceil(clients::STREAMS_PER_CONNECTION)).await,
                self.roleplay.chats(n, self.shape).await,
            ),
            Target::Upstream | Target::LiteLlm => (Vec::new(), Vec::new()),
        };
        match target {
            Target::Upstream => {
                let url = format!("{}/chat/completions", self.upstream);
                let body = serde_json::json!({"model": "bench:1:1:0", "stream": true, "messages": []});
                open_connections(n, || self.http.post(&url).json(&body)).await;
            }
            Target::LiteLlm => {
                let url = format!("{}/health/liveliness", self.litellm.url);
                open_connections(n, || self.http.get(&url)).await;
            }
            Target::Floor | Target::Roleplay => {}
        }
        let pid = self.pid(target);
        let cpu = || pid.map_or(Duration::ZERO, |pid| process::tree(pid).into_iter().map(process::cpu_of).sum());
        let cpu_before = cpu();
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut peak = 0;
                let rss = || pid.map_or(0, |pid| process::tree(pid).into_iter().map(process::rss_of).sum::<u64>());
                while !done.load(Ordering::Relaxed) {
                    peak = peak.max(rss());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                peak.max(rss())
            })
        };
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let stream = match target {
                Target::Upstream | Target::LiteLlm => {
                    let (url, key) = if target == Target::Upstream {
                        (format!("{}/chat/completions", self.upstream), None)
                    } else {
                        (format!("{}/v1/chat/completions", self.litellm.url), Some(self.litellm.key.clone()))
                    };
                    let stream = http_stream(self.http.clone(), url, key, model.clone(), expected);
                    Box::pin(stream) as std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>
                }
                Target::Floor | Target::Roleplay => {
                    Box::pin(grpc_stream(channels[i % channels.len()].clone(), ids[i].clone(), expected))
                }
            };
            tasks.push(tokio::spawn(async move {
                tokio::time::timeout(STREAM_LIMIT, stream)
                    .await
                    .unwrap_or_else(|_| Outcome::failed(format!("still open after {} s", STREAM_LIMIT.as_secs())))
            }));
        }
        for task in tasks {
            let outcome = task.await.unwrap_or_else(|e| Outcome::failed(e.to_string()));
            row.streams += 1;
            row.bytes += outcome.bytes;
            row.whole += usize::from(outcome.whole);
            row.first_token.extend(outcome.first_token);
            if row.first_error.is_none() {
                row.first_error = outcome.error;
            }
        }
        done.store(true, Ordering::Relaxed);
        row.rss_peak = row.rss_peak.max(sampler.await.unwrap_or(0));
        // As in scenario 1: let the server finish (storing) before reading.
        tokio::time::sleep(Duration::from_millis(300)).await;
        row.cpu += cpu().saturating_sub(cpu_before);
    }

    async fn row(&self, target: Target, n: usize) -> Row {
        let mut row = Row {
            rss_before: self.pid(target).map_or(0, |pid| process::tree(pid).into_iter().map(process::rss_of).sum()),
            ..Row::default()
        };
        for _ in 0..rounds(n) {
            self.round(target, n, &mut row).await;
        }
        if let Some(error) = &row.first_error {
            eprintln!(
                "{} at {n}: {} of {} streams failed; first: {error}",
                target.name(),
                row.streams - row.whole,
                row.streams
            );
        }
        row
    }
}

/// Opens `n` HTTP connections before a round is timed, as the gRPC
/// clients' connections are: each request keeps its connection until all
/// have answered, so none is reused and the pool then holds `n` idle.
async fn open_connections(n: usize, request: impl Fn() -> reqwest::RequestBuilder) {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (request, barrier) = (request(), Arc::clone(&barrier));
            tokio::spawn(async move {
                let response = request.send().await;
                barrier.wait().await;
                if let Ok(response) = response {
                    let _ = response.bytes().await;
                }
            })
        })
        .collect();
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let all = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), all).await.is_err() {
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// `a - b` in milliseconds, signed: a target can be faster than the
/// baseline by noise.
fn added(a: Duration, b: Duration) -> String {
    format!("{:+.2} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
}

async fn measure_all(venv: &Path, dir: &Path) -> Result<String, String> {
    let upstream = format!("http://{}", crate::upstream::start().await);
    // Scenario 1's reply: 50 chunks of 16 bytes, one every 20 ms.
    let shape = Shape { chunks: 50, chunk_bytes: 16, interval: Duration::from_millis(20) };
    let litellm = LiteLlm::start(venv, dir, &upstream, shape).await?;
    let http = reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        // A connection per stream, kept for the next round; dropped before
        // uvicorn's 5 s keep-alive would close it under a request.
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let bench = Bench {
        floor: Server::floor(&upstream).await,
        roleplay: Roleplay::start(&upstream, None).await,
        upstream,
        shape,
        http,
        litellm,
    };
    // One reply each first: lazy imports and first connections.
    for target in Target::ALL {
        let warm = bench.row(target, 1).await;
        if warm.whole == 0 {
            return Err(format!("{} did not stream a reply: {:?}", target.name(), warm.first_error));
        }
    }
    let processes = process::tree(bench.litellm.pid).len();

    let mut out = String::new();
    let _ = writeln!(out, "## 10. A peer in the same run: LiteLLM\n");
    let _ = writeln!(
        out,
        "Command: `cargo build --release --bins && target/release/roleplay-bench --peer litellm`. Machine: {}.\n",
        report::machine()
    );
    let _ = writeln!(
        out,
        "LiteLLM {LITELLM_VERSION} (`litellm[proxy]=={LITELLM_VERSION}` from PyPI into `target/peer/litellm-venv`), its proxy run as one uvicorn worker (`--num_workers 1`, its default: one Python process, so at most one of the cores; CPU and RSS are summed over its process tree, which held {processes} process{}), in front of the same fake upstream as the floor and roleplay-server, configured by `src/bin/roleplay-bench/peer.rs` with no database, no cache, no callbacks, no spend or error logs and the bundled model cost map. **LiteLLM stores nothing in this setup; roleplay-server stores both messages (the user's and the reply, on SQLite) and the floor stores nothing.**\n",
        if processes == 1 { "" } else { "es" }
    );
    let _ = writeln!(
        out,
        "Each stream is a reply of {} chunks of {} bytes, one every {} ms. At each concurrency the four are measured in turn: the bench's HTTP client straight to the fake upstream, then the floor and roleplay-server over gRPC (as in §1-2), then LiteLLM over its OpenAI HTTP API (`POST /v1/chat/completions`, `stream: true`, one HTTP/1.1 connection per stream, opened before the round is timed as the gRPC connections are). TTFT is measured at the client from the request to the first text; **added** is that minus the fake upstream alone at the same percentile and concurrency. CPU is the process's user+system time per chunk delivered; RSS is read before the row and sampled every 50 ms during it (peak). An error is a stream that did not end cleanly with the whole reply within {} s. Rows at 1 and 10 streams repeat {} and {} rounds.\n",
        shape.chunks,
        shape.chunk_bytes,
        shape.interval.as_millis(),
        STREAM_LIMIT.as_secs(),
        rounds(1),
        rounds(10)
    );
    let _ = writeln!(
        out,
        "| concurrent | measured | TTFT p50 / p99 | added p50 / p99 | CPU/chunk | RSS before → peak | errors |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    for n in CONCURRENCY {
        let mut rows = Vec::new();
        for target in Target::ALL {
            rows.push(bench.row(target, n).await);
        }
        let base = &mut rows[0].first_token.clone();
        let (b50, b99) = (report::percentile(base, 0.5), report::percentile(base, 0.99));
        let mut cpu_per_chunk = [0.0; 4];
        let mut p99s = [Duration::ZERO; 4];
        for (i, (target, row)) in Target::ALL.into_iter().zip(rows.iter_mut()).enumerate() {
            let (p50, p99) =
                (report::percentile(&mut row.first_token, 0.5), report::percentile(&mut row.first_token, 0.99));
            p99s[i] = p99;
            let chunks = row.bytes as f64 / shape.chunk_bytes as f64;
            cpu_per_chunk[i] = if chunks > 0.0 { row.cpu.as_secs_f64() * 1e6 / chunks } else { 0.0 };
            let (added_cell, cpu_cell, rss_cell) = if target == Target::Upstream {
                ("(baseline)".to_owned(), "in the bench".to_owned(), "in the bench".to_owned())
            } else {
                (
                    format!("{} / {}", added(p50, b50), added(p99, b99)),
                    format!("{:.1} µs", cpu_per_chunk[i]),
                    format!("{} → {}", mib(row.rss_before), mib(row.rss_peak)),
                )
            };
            let _ = writeln!(
                out,
                "| {n} | {} | {} / {} | {added_cell} | {cpu_cell} | {rss_cell} | {}/{} |",
                target.name(),
                report::ms(p50),
                report::ms(p99),
                row.streams - row.whole,
                row.streams
            );
        }
        summary.push((
            n,
            p99s.map(|p| added(p, b99)),
            cpu_per_chunk,
            rows.iter().map(|r| r.rss_peak).collect::<Vec<_>>(),
        ));
    }
    let _ = writeln!(out, "\nSide by side (the ÷ columns are LiteLLM's figure over roleplay-server's):\n");
    let _ = writeln!(
        out,
        "| concurrent | added TTFT p99: floor / roleplay-server / LiteLLM | CPU/chunk: floor / roleplay-server / LiteLLM | CPU/chunk LiteLLM ÷ roleplay-server | peak RSS LiteLLM ÷ roleplay-server |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (n, added_p99, cpu, rss) in summary {
        let _ = writeln!(
            out,
            "| {n} | {} / {} / {} | {:.1} / {:.1} / {:.1} µs | {} | {} |",
            added_p99[1],
            added_p99[2],
            added_p99[3],
            cpu[1],
            cpu[2],
            cpu[3],
            report::ratio(cpu[3], cpu[2]),
            report::ratio(rss[3] as f64, rss[2] as f64)
        );
    }
    Ok(out)
}
