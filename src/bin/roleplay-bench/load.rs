//! The scenarios: load generation, measurement and the report.

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use roleplay_server::api::pb::{self, generation_event::Event, message_service_client::MessageServiceClient};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::{
    clients::{OnRefusal, Roleplay, STREAMS_PER_CONNECTION, Stats, generations, generations_counted},
    per_chunk::{PerChunkSizes, per_chunk_section},
    process::Server,
    report::{machine, ms, percentile, ratio},
    steady::{SteadySizes, steady},
    upstream::Shape,
};

pub struct Sizes {
    concurrency: Vec<usize>,
    sustained: Vec<usize>,
    fan_out: Vec<usize>,
    memory: Vec<usize>,
    storm_watchers: usize,
    storm_seconds: u64,
    persistence: usize,
    chunks: usize,
    /// Stored messages of the long chat, and sends measured in each chat.
    long_chat: usize,
    long_sends: usize,
    /// Concurrent generations measured with metrics on and off (scenario 9).
    metrics_cost: usize,
    /// Sends at a steady rate over a streaming background (scenario 11).
    steady: SteadySizes,
    /// CPU per chunk by reply length (scenario 13).
    per_chunk: PerChunkSizes,
}

impl Sizes {
    /// Keeps only the numbered scenarios (1 and 2 run together), for
    /// profiling one of them; the report then has empty sections.
    pub fn only(mut self, scenarios: &[u8]) -> Self {
        let wants = |n: u8| scenarios.contains(&n);
        if !(wants(1) || wants(2)) {
            self.concurrency.clear();
        }
        if !wants(3) {
            self.sustained.clear();
        }
        if !wants(4) {
            self.fan_out.clear();
        }
        if !wants(5) {
            self.memory.clear();
        }
        if !wants(6) {
            self.storm_watchers = 0;
        }
        if !wants(7) {
            self.persistence = 0;
        }
        if !wants(8) {
            self.long_sends = 0;
        }
        if !wants(9) {
            self.metrics_cost = 0;
        }
        if !wants(11) {
            self.steady.rates.clear();
        }
        if !wants(13) {
            self.per_chunk.concurrency.clear();
        }
        self
    }

    pub fn quick() -> Self {
        Self {
            concurrency: vec![1, 10],
            sustained: vec![10],
            fan_out: vec![1, 10],
            memory: vec![10],
            storm_watchers: 20,
            storm_seconds: 2,
            persistence: 10,
            chunks: 20,
            long_chat: 40,
            long_sends: 3,
            metrics_cost: 10,
            steady: SteadySizes { background: 20, rates: vec![20], seconds: 1 },
            per_chunk: PerChunkSizes {
                concurrency: vec![10],
                chunks: vec![5, 20],
                interval: Duration::from_millis(10),
            },
        }
    }

    pub fn full() -> Self {
        Self {
            concurrency: vec![1, 100, 1000],
            sustained: vec![500, 1000, 2000, 5000],
            fan_out: vec![1, 10, 100, 1000],
            memory: vec![1000, 5000],
            storm_watchers: 1000,
            storm_seconds: 60,
            persistence: 100,
            chunks: 50,
            long_chat: 1000,
            long_sends: 40,
            metrics_cost: 100,
            steady: SteadySizes { background: 1000, rates: vec![100, 200, 400, 800], seconds: 5 },
            per_chunk: PerChunkSizes {
                concurrency: vec![100, 1000],
                chunks: vec![50, 500],
                interval: Duration::from_millis(50),
            },
        }
    }
}

pub(crate) struct Measured {
    pub stats: Stats,
    pub cpu: Duration,
}

/// Runs one generation per id at once and measures them. Scenario 1 counts
/// the sends admission refuses (`OnRefusal::Count`); the others retry them
/// after their RetryInfo, as a client should, so every generation runs.
async fn measure(server: &Server, ids: &[String], on_refusal: OnRefusal) -> Measured {
    measure_paced(server, ids, None, on_refusal).await
}

/// [`measure`], optionally starting the generations `(n, every)`: n at a
/// time instead of all at once.
pub(crate) async fn measure_paced(
    server: &Server,
    ids: &[String],
    stagger: Option<(usize, Duration)>,
    on_refusal: OnRefusal,
) -> Measured {
    let channels = server.channels(ids.len().div_ceil(STREAMS_PER_CONNECTION)).await;
    let cpu_before = server.cpu();
    let stats = generations_counted(&channels, ids, &Arc::default(), stagger, on_refusal).await;
    // Let the server finish storing before reading its CPU.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Measured { stats, cpu: server.cpu().saturating_sub(cpu_before) }
}

pub async fn run_all(sizes: Sizes, postgres: &str) -> String {
    let upstream = format!("http://{}", crate::upstream::start().await);
    let mut out = String::new();
    let _ = writeln!(out, "Machine: {}.\n", machine());

    let floor = Server::floor(&upstream).await;
    let roleplay = Roleplay::start(&upstream, None).await;

    // 1 + 2: time to first token and CPU per chunk.
    let shape = Shape { chunks: sizes.chunks, chunk_bytes: 16, interval: Duration::from_millis(20) };
    let _ = writeln!(out, "## 1-2. Time to first token and CPU per chunk\n");
    let _ = writeln!(
        out,
        "Each generation streams {} chunks of 16 bytes, one every 20 ms. TTFT is measured at the client from the request to the first Delta; CPU is the server process's user+system time divided by the chunks it forwarded.\n",
        shape.chunks
    );
    let _ = writeln!(
        out,
        "| concurrent | floor TTFT p50 / p99 | roleplay TTFT p50 / p99 | added p99 | floor CPU/chunk | roleplay CPU/chunk | ratio | roleplay completed | `Started` p99 | refused at once (answer p99) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for &n in &sizes.concurrency {
        let floor_ids = vec![shape.model(); n];
        let mut f = measure(&floor, &floor_ids, OnRefusal::Count).await;
        let chats = roleplay.chats(n, shape).await;
        let mut r = measure(&roleplay.server, &chats, OnRefusal::Count).await;
        // CPU per chunk forwarded: refused sends forward none.
        let f_cpu = f.cpu.as_secs_f64() * 1e6 / (n * shape.chunks) as f64;
        let r_cpu = r.cpu.as_secs_f64() * 1e6 / (r.stats.deltas.max(1)) as f64;
        let refused = r.stats.refused.len();
        let refused_p99 = percentile(&mut r.stats.refused, 0.99);
        let started_p99 = percentile(&mut r.stats.started, 0.99);
        let (f50, f99) = (percentile(&mut f.stats.first_token, 0.5), percentile(&mut f.stats.first_token, 0.99));
        let (r50, r99) = (percentile(&mut r.stats.first_token, 0.5), percentile(&mut r.stats.first_token, 0.99));
        let _ = writeln!(
            out,
            "| {n} | {} / {} | {} / {} | {} | {f_cpu:.1} µs | {r_cpu:.1} µs | {} | {}/{n} | {} | {refused} ({}) |",
            ms(f50),
            ms(f99),
            ms(r50),
            ms(r99),
            ms(r99.saturating_sub(f99)),
            ratio(r_cpu, f_cpu),
            r.stats.completed,
            ms(started_p99),
            if refused > 0 { ms(refused_p99) } else { "-".into() },
        );
    }

    // 11: steady arrivals over a streaming background.
    if !sizes.steady.rates.is_empty() {
        let section = steady(&floor, &roleplay, &sizes.steady).await;
        let _ = writeln!(out, "{section}");
    }

    // 13: CPU per chunk by reply length.
    if !sizes.per_chunk.concurrency.is_empty() {
        let section = per_chunk_section(&floor, &roleplay, &sizes.per_chunk).await;
        let _ = writeln!(out, "{section}");
    }

    // 3: sustained generations at 20 chunks/s.
    let shape3 =
        Shape { chunks: if sizes.chunks < 50 { 20 } else { 60 }, chunk_bytes: 16, interval: Duration::from_millis(50) };
    let _ = writeln!(out, "\n## 3. Sustained generations at 20 chunks/s\n");
    let _ = writeln!(
        out,
        "Added inter-chunk delay = client-observed gap minus the upstream's 50 ms. Holds when p99 added < 50 ms and every generation completes.\n"
    );
    let _ = writeln!(out, "| concurrent | floor p99 added | roleplay p99 added | roleplay completed | holds |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for &n in &sizes.sustained {
        let mut f = measure(&floor, &vec![shape3.model(); n], OnRefusal::Retry).await;
        let chats = roleplay.chats(n, shape3).await;
        let mut r = measure(&roleplay.server, &chats, OnRefusal::Retry).await;
        let interval = shape3.interval;
        let f99 = percentile(&mut f.stats.gaps, 0.99).saturating_sub(interval);
        let r99 = percentile(&mut r.stats.gaps, 0.99).saturating_sub(interval);
        let holds = r99 < Duration::from_millis(50) && r.stats.completed as usize == n;
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {}/{n} | {} |",
            ms(f99),
            ms(r99),
            r.stats.completed,
            if holds { "yes" } else { "no" }
        );
        if !holds {
            break;
        }
    }

    // 4: fan-out.
    let _ = writeln!(out, "\n## 4. Fan-out: one generation, many watchers\n");
    let shape4 = Shape { chunks: 200, chunk_bytes: 16, interval: Duration::from_millis(5) };
    let _ = writeln!(
        out,
        "One generation of {} chunks; every watcher subscribed before it starts. CPU per chunk per watcher.\n",
        shape4.chunks
    );
    let _ = writeln!(out, "| watchers | server CPU | CPU/chunk/watcher | vs 1 watcher |");
    let _ = writeln!(out, "|---|---|---|---|");
    let mut one = None;
    for &w in &sizes.fan_out {
        let chat = roleplay.chats(1, shape4).await.remove(0);
        let cpu = fan_out(&roleplay.server, &chat, w).await;
        let per = cpu.as_secs_f64() * 1e6 / (shape4.chunks * w) as f64;
        let base = *one.get_or_insert(per);
        let _ = writeln!(out, "| {w} | {} | {per:.2} µs | {} |", ms(cpu), ratio(per, base));
    }

    // 5: memory per live generation.
    let _ = writeln!(out, "\n## 5. Memory per live generation\n");
    let _ = writeln!(
        out,
        "Resident memory of the server with N generations streaming, minus the idle server's, per live generation. Each row starts both servers afresh and gives them the same load: generations started 250 every 250 ms, RSS read 3 s after the last one received text (1 to 3 KiB of text each by then).\n"
    );
    let _ = writeln!(
        out,
        "| generations | floor live | floor per live generation | roleplay live | roleplay RSS idle / live | roleplay per live generation | ratio |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for &g in &sizes.memory {
        let (f, r) = memory(&upstream, g).await;
        let _ = writeln!(
            out,
            "| {g} | {} | {:.1} KiB | {} | {:.1} / {:.1} MiB | {:.1} KiB | {} |",
            f.live_count,
            f.per_live_kib(),
            r.live_count,
            r.idle as f64 / 1048576.0,
            r.live as f64 / 1048576.0,
            r.per_live_kib(),
            ratio(r.per_live_kib(), f.per_live_kib())
        );
    }

    // 6: reconnect storm.
    let _ = writeln!(out, "\n## 6. Reconnect storm\n");
    if sizes.storm_watchers > 0 {
        let storm = storm(&roleplay, sizes.storm_watchers, sizes.storm_seconds).await;
        let _ = writeln!(out, "{storm}");
    }

    // 9: what recording metrics costs.
    if sizes.metrics_cost > 0 {
        let section = metrics_cost(&upstream, sizes.metrics_cost, shape).await;
        let _ = writeln!(out, "{section}");
    }

    // 8: the prompt engine's cost on a long chat.
    if sizes.long_sends > 0 {
        let section = long_chat(&roleplay, sizes.long_chat, sizes.long_sends).await;
        let _ = writeln!(out, "{section}");
    }

    // 7: persistence.
    let _ = writeln!(out, "\n## 7. Replies stored per second\n");
    let _ = writeln!(
        out,
        "{} concurrent generations of {} chunks with no delay, repeated 3 times; completed (stored) replies per second of wall time, and the sends admission refused and the bench retried after their RetryInfo.\n",
        sizes.persistence, sizes.chunks
    );
    let _ = writeln!(out, "| database | replies/s | retried sends |");
    let _ = writeln!(out, "|---|---|---|");
    let fast = Shape { chunks: sizes.chunks, chunk_bytes: 16, interval: Duration::ZERO };
    if sizes.persistence == 0 {
        return out;
    }
    let (rate, retried) = persistence(&roleplay, sizes.persistence, fast).await;
    let _ = writeln!(out, "| SQLite | {rate:.0} | {retried} |");
    drop(roleplay);
    match postgres_schema(postgres).await {
        Some((url, cleanup)) => {
            let on_pg = Roleplay::start(&upstream, Some(url)).await;
            let (rate, retried) = persistence(&on_pg, sizes.persistence, fast).await;
            let _ = writeln!(out, "| PostgreSQL | {rate:.0} | {retried} |");
            drop(on_pg);
            cleanup.await;
        }
        None => {
            let _ = writeln!(out, "| PostgreSQL | not reachable | |");
        }
    }
    drop(floor);
    out
}

async fn fan_out(server: &Server, chat: &str, watchers: usize) -> Duration {
    let channels = server.channels(watchers.div_ceil(STREAMS_PER_CONNECTION)).await;
    let mut streams = Vec::with_capacity(watchers);
    for i in 0..watchers {
        let mut client = MessageServiceClient::new(channels[i % channels.len()].clone());
        let request = pb::SubscribeChatSessionRequest { chat_session_id: chat.to_owned(), resume: None };
        streams.push(client.subscribe_chat_session(request).await.expect("subscribe").into_inner());
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                while let Ok(Some(event)) = stream.message().await {
                    if matches!(event.event, Some(Event::Completed(_) | Event::Failed(_) | Event::Cancelled(_))) {
                        return;
                    }
                }
            })
        })
        .collect();
    let cpu_before = server.cpu();
    let sender = generations(&channels[..1], &[chat.to_owned()]).await;
    for reader in readers {
        let _ = reader.await;
    }
    assert_eq!(sender.completed, 1);
    server.cpu().saturating_sub(cpu_before)
}

/// Resident memory with generations live.
struct Memory {
    idle: u64,
    live: u64,
    live_count: usize,
}

impl Memory {
    fn per_live_kib(&self) -> f64 {
        self.live.saturating_sub(self.idle) as f64 / 1024.0 / self.live_count.max(1) as f64
    }
}

/// Starts a generation per id on `server`, 250 every 250 ms (this measures
/// memory per live generation, not how a burst of starts is admitted:
/// scenario 1 does that), and reads its RSS 3 s after the last one received
/// text. Returns the reading and the load, still running.
async fn memory_of(server: &Server, ids: Vec<String>) -> (Memory, tokio::task::JoinHandle<Stats>) {
    let count = ids.len();
    let idle = server.rss();
    let channels = server.channels(count.div_ceil(STREAMS_PER_CONNECTION)).await;
    let started = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&started);
    let load = tokio::spawn(async move {
        generations_counted(&channels, &ids, &counter, Some((250, Duration::from_millis(250))), OnRefusal::Retry).await
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while started.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    (Memory { idle, live: server.rss(), live_count: started.load(Ordering::Relaxed) }, load)
}

/// The floor's and roleplay-server's memory with `count` generations live,
/// each in a fresh process: one that ran earlier scenarios keeps their
/// memory in its allocator, and new generations would hide in it.
async fn memory(upstream: &str, count: usize) -> (Memory, Memory) {
    let floor = &Server::floor(upstream).await;
    let roleplay = &Roleplay::start(upstream, None).await;
    // The floor's replies end by themselves soon after the reading (it has
    // no cancel); roleplay-server's are long and cancelled after it.
    let short = Shape { chunks: 300, chunk_bytes: 16, interval: Duration::from_millis(50) };
    let (floor_memory, floor_load) = memory_of(floor, vec![short.model(); count]).await;
    let _ = floor_load.await;
    let long = Shape { chunks: 2_000, chunk_bytes: 16, interval: Duration::from_millis(50) };
    let chats = roleplay.chats(count, long).await;
    let (roleplay_memory, load) = memory_of(&roleplay.server, chats.clone()).await;
    let mut client = MessageServiceClient::new(roleplay.prepared.channel.clone());
    for chat in &chats {
        let _ = client
            .cancel_generation(pb::CancelGenerationRequest { chat_session_id: chat.clone(), stream_id: None })
            .await;
    }
    let _ = load.await;
    (floor_memory, roleplay_memory)
}

/// Stored replies per second, and the sends retried after a refusal.
async fn persistence(roleplay: &Roleplay, n: usize, shape: Shape) -> (f64, u64) {
    let chats = roleplay.chats(n, shape).await;
    let (mut completed, mut retried) = (0, 0);
    let started = Instant::now();
    for _ in 0..3 {
        let stats = measure(&roleplay.server, &chats, OnRefusal::Retry).await.stats;
        completed += stats.completed;
        retried += stats.retries;
    }
    // Less the three pauses in `measure` that let the server finish storing.
    (completed as f64 / (started.elapsed().as_secs_f64() - 0.9), retried)
}

/// Watchers that drop and resume at random during one long generation.
async fn storm(roleplay: &Roleplay, watchers: usize, seconds: u64) -> String {
    let chunks = (seconds * 50) as usize;
    let shape = Shape { chunks, chunk_bytes: 16, interval: Duration::from_millis(20) };
    let chat = roleplay.chats(1, shape).await.remove(0);
    let expected_len = chunks * 16;
    let mut tasks = Vec::with_capacity(watchers);
    for i in 0..watchers {
        let channel = roleplay.server.channel().await;
        let chat = chat.clone();
        tasks.push(tokio::spawn(async move { storm_watcher(channel, chat, i as u64 + 1).await }));
    }
    let sender_channel = roleplay.server.channel().await;
    let sender = generations(&[sender_channel], &[chat]).await;
    let mut lost = 0u64;
    let mut duplicated = 0u64;
    let mut resumes: Vec<Duration> = Vec::new();
    for task in tasks {
        let Ok(result) = task.await else { continue };
        lost += expected_len.saturating_sub(result.bytes) as u64;
        duplicated += result.duplicated;
        resumes.extend(result.resume_latency);
    }
    let count = resumes.len();
    format!(
        "{watchers} watchers, each on its own connection, dropping after 1-30 events and resuming from their offset, during a {seconds} s reply ({} bytes); the sender completed: {}.\n\n| bytes lost | bytes duplicated | resumes | resume latency p50 / p99 |\n|---|---|---|---|\n| {lost} | {duplicated} | {count} | {} / {} |",
        expected_len,
        sender.completed == 1,
        ms(percentile(&mut resumes, 0.5)),
        ms(percentile(&mut resumes, 0.99)),
    )
}

struct StormResult {
    bytes: usize,
    duplicated: u64,
    resume_latency: Vec<Duration>,
}

async fn storm_watcher(channel: Channel, chat: String, seed: u64) -> StormResult {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut client = MessageServiceClient::new(channel);
    let mut received = 0usize;
    let mut duplicated = 0u64;
    let mut stream_id: Option<String> = None;
    let mut resume_latency = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let resume = stream_id.as_ref().map(|id| pb::ResumePosition { stream_id: id.clone(), offset: received as u64 });
        let resuming = resume.is_some();
        let asked = Instant::now();
        let Ok(response) = client
            .subscribe_chat_session(pb::SubscribeChatSessionRequest { chat_session_id: chat.clone(), resume })
            .await
        else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut stream = response.into_inner();
        let budget = 1 + next(30);
        let mut first = true;
        for _ in 0..budget {
            let Ok(Some(event)) = stream.message().await else { break };
            if first && resuming {
                resume_latency.push(asked.elapsed());
            }
            first = false;
            match event.event {
                Some(Event::Started(started)) => stream_id = Some(started.stream_id),
                Some(Event::Delta(delta)) => {
                    let offset = delta.offset as usize;
                    if offset < received {
                        duplicated += (received - offset).min(delta.text.len()) as u64;
                    }
                    received = received.max(offset + delta.text.len());
                }
                Some(Event::Completed(_) | Event::Failed(_) | Event::Cancelled(_)) => {
                    return StormResult { bytes: received, duplicated, resume_latency };
                }
                _ => {}
            }
        }
    }
    StormResult { bytes: received, duplicated, resume_latency }
}

/// A fresh schema on the bench's PostgreSQL, and its removal; `None` when
/// PostgreSQL cannot be reached within 10 s.
pub(crate) async fn postgres_schema(base: &str) -> Option<(String, impl std::future::Future<Output = ()>)> {
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let connecting = AsyncPgConnection::establish(base);
    let mut conn = tokio::time::timeout(Duration::from_secs(10), connecting).await.ok()?.ok()?;
    conn.batch_execute(&format!("CREATE SCHEMA {schema}")).await.ok()?;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let cleanup = async move {
        let _ = conn.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
    };
    Some((url, cleanup))
}

/// Scenario 8: sends into a chat holding `stored` messages against one
/// holding 10, one at a time, so the cost of counting and trimming a long
/// history shows as added time to first token and CPU per send.
async fn long_chat(roleplay: &Roleplay, stored: usize, sends: usize) -> String {
    let shape = Shape { chunks: 5, chunk_bytes: 16, interval: Duration::ZERO };
    let mut out = String::new();
    let _ = writeln!(out, "\n## 8. Sending into a long chat\n");
    let _ = writeln!(
        out,
        "A chat with {stored} stored messages (more than the default 8,192-token context holds, so every send counts and trims) against one with 10; {sends} sends one after another in each, replies of {} chunks with no delay. TTFT at the client; CPU of the server per send.\n",
        shape.chunks
    );
    let _ = writeln!(out, "| stored messages | TTFT p50 / p99 | CPU per send |");
    let _ = writeln!(out, "|---|---|---|");
    for size in [10, stored] {
        let chat = roleplay.chats(1, shape).await.remove(0);
        let ids = vec![chat];
        // Fill the chat by sending, as people do: each send stores two.
        let channels = roleplay.server.channels(1).await;
        for _ in 0..size / 2 {
            generations(&channels, &ids).await;
        }
        let mut first_token = Vec::with_capacity(sends);
        let mut cpu = Duration::ZERO;
        for _ in 0..sends {
            let measured = measure(&roleplay.server, &ids, OnRefusal::Retry).await;
            first_token.extend(measured.stats.first_token);
            cpu += measured.cpu;
        }
        let (p50, p99) = (percentile(&mut first_token, 0.5), percentile(&mut first_token, 0.99));
        let per_send = cpu.as_secs_f64() * 1e6 / sends.max(1) as f64;
        let _ = writeln!(out, "| {size} | {} / {} | {per_send:.0} µs |", ms(p50), ms(p99));
    }
    out
}

/// Scenario 9: CPU per chunk of the same load on a server recording metrics
/// and on one that does not, each measured three times, alternating.
async fn metrics_cost(upstream: &str, concurrent: usize, shape: Shape) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## 9. The cost of metrics\n");
    let _ = writeln!(
        out,
        "{concurrent} concurrent generations of {} chunks, three rounds on each of two servers, one recording metrics (served on an admin port) and one not; CPU per chunk of the server process, total of the rounds.\n",
        shape.chunks
    );
    let (on, off) =
        (Roleplay::start_with(upstream, None, true).await, Roleplay::start_with(upstream, None, false).await);
    let (mut cpu_on, mut cpu_off) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        for (server, total) in [(&on, &mut cpu_on), (&off, &mut cpu_off)] {
            let chats = server.chats(concurrent, shape).await;
            *total += measure(&server.server, &chats, OnRefusal::Retry).await.cpu;
        }
    }
    let chunks = (3 * concurrent * shape.chunks) as f64;
    let (per_on, per_off) = (cpu_on.as_secs_f64() * 1e6 / chunks, cpu_off.as_secs_f64() * 1e6 / chunks);
    let _ = writeln!(out, "| metrics | CPU/chunk |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(out, "| off | {per_off:.1} µs |");
    let _ = writeln!(out, "| on | {per_on:.1} µs ({} of off) |", ratio(per_on, per_off));
    out
}
