//! Scenario 12: several replicas sharing live replies through Redis.
//!
//! A private `redis-server`, a PostgreSQL schema of its own and server
//! processes A and B (and C for the storm) with the same database, master
//! key and `ROLEPLAY_REDIS_URL`. Replies run on A; each is watched by one
//! subscriber on A and one on B, and every chunk's arrival at both is
//! matched by byte offset: B − A is what following from another replica
//! adds (A's writer batches appends to the reply's Redis stream, B's reader
//! tails it). Then the CPU of each side per chunk, against one process with
//! no Redis serving the same clients, Redis's memory per live reply, and a
//! reconnect storm whose every resume lands on another replica.
//!
//! The replies' text comes from a fake upstream of this file's own, the
//! same shapes as upstream.rs but each chunk numbered, so a watcher's text
//! can be compared with the reply byte for byte: with all-`x` text a piece
//! put at the wrong offset would go unseen.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::Engine as _;
use roleplay_server::api::pb::{
    self, GenerationEvent, generation_event::Event, message_service_client::MessageServiceClient,
};
use tokio::{
    process::{Child, Command},
    task::JoinHandle,
    time::Instant,
};
use tonic::{Streaming, transport::Channel};

use crate::{
    clients::{Prepared, STREAMS_PER_CONNECTION},
    load::postgres_schema,
    process::{Server, free_addr},
    report::{ms, percentile},
    upstream::{Shape, reply_text},
};

pub struct ReplicaSizes {
    /// Replies live at once, one row each.
    replies: Vec<usize>,
    /// Rounds per row (fresh chats each), pooled: CPU comes in 10 ms ticks.
    rounds: usize,
    storm_watchers: usize,
    storm_seconds: u64,
}

impl ReplicaSizes {
    pub fn quick() -> Self {
        Self { replies: vec![2], rounds: 1, storm_watchers: 50, storm_seconds: 3 }
    }

    pub fn full() -> Self {
        Self { replies: vec![10, 100], rounds: 3, storm_watchers: 1000, storm_seconds: 60 }
    }
}

/// The watched replies: 50 chunks of 16 bytes, one every 20 ms.
const SHAPE: Shape = Shape { chunks: 50, chunk_bytes: 16, interval: Duration::from_millis(20) };
/// Longest a round or the storm may take beyond its reply.
const ROUND_LIMIT: Duration = Duration::from_secs(120);

/// Runs scenario 12 and returns its section of the report. Panics, after
/// printing the section, when anything went wrong across replicas: bytes
/// lost, duplicated or altered, a reply or a watcher that did not complete.
pub async fn run(sizes: ReplicaSizes, postgres: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## 12. Several replicas through Redis\n");
    let mut redis = match RedisServer::start().await {
        Ok(redis) => redis,
        Err(why) => {
            let _ = writeln!(out, "Not run: {why}.");
            return out;
        }
    };
    let (Some((cluster_url, cluster_cleanup)), Some((single_url, single_cleanup))) =
        (postgres_schema(postgres).await, postgres_schema(postgres).await)
    else {
        let _ = writeln!(out, "Not run: PostgreSQL at {postgres} is not reachable.");
        redis.stop().await;
        return out;
    };
    let (problems, section) = measure(&sizes, &redis, &cluster_url, &single_url).await;
    out.push_str(&section);
    redis.stop().await;
    cluster_cleanup.await;
    single_cleanup.await;
    if !problems.is_empty() {
        eprintln!("{out}");
        let shown: Vec<&str> = problems.iter().take(40).map(String::as_str).collect();
        panic!(
            "scenario 12: {} problem(s) across replicas (the first {}):\n{}",
            problems.len(),
            shown.len(),
            shown.join("\n")
        );
    }
    out
}

async fn measure(
    sizes: &ReplicaSizes,
    redis: &RedisServer,
    cluster_url: &str,
    single_url: &str,
) -> (Vec<String>, String) {
    let mut out = String::new();
    let mut problems = Vec::new();
    let upstream = format!("http://{}", crate::upstream::start_numbered().await);
    let dir = ScratchDir::new();
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("random master key");
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    let redis_url = redis.url();
    let replica_env = [("ROLEPLAY_REDIS_URL", redis_url.as_str()), ("ROLEPLAY_MASTER_KEY", key.as_str())];
    // A first: it runs the migrations before B reads the schema.
    let a = Server::roleplay_with_env(&upstream, cluster_url, dir.path(), false, &replica_env).await;
    let b = Server::roleplay_with_env(&upstream, cluster_url, dir.path(), false, &replica_env).await;
    let prepared = Prepared::on(&a).await;
    let single_dir = ScratchDir::new();
    let single = Server::roleplay(&upstream, single_url, single_dir.path(), false).await;
    let single_prepared = Prepared::on(&single).await;

    let _ = writeln!(
        out,
        "Replicas A and B on one PostgreSQL schema, one master key and a private `redis-server` (no persistence); \
         C joins for the storm. Each reply runs on A ({} chunks of {} bytes, one every {} ms) and is watched by one \
         subscriber on A and one on B, both subscribed before it starts. For every chunk, its arrival at the B \
         watcher minus its arrival at the A watcher (matched by byte offset; both clients in the bench process). \
         **Local control**: one process without Redis, the same sends and two local watchers per reply; their \
         difference is what the measurement itself spreads. Rounds per row: {}, fresh chats each.\n",
        SHAPE.chunks,
        SHAPE.chunk_bytes,
        SHAPE.interval.as_millis(),
        sizes.rounds
    );
    let mut latency_rows = String::new();
    let mut cpu_rows = String::new();
    let mut memory_rows = String::new();
    for &n in &sizes.replies {
        let replicated = rounds(&a, [&a, &b], &prepared, n, sizes.rounds, Some(redis)).await;
        let local = rounds(&single, [&single, &single], &single_prepared, n, sizes.rounds, None).await;
        problems.extend(replicated.problems.iter().map(|p| format!("{n} replies, A/B: {p}")));
        problems.extend(local.problems.iter().map(|p| format!("{n} replies, one process: {p}")));
        let (mut across, mut control) = (replicated.diffs, local.diffs);
        let _ = writeln!(
            latency_rows,
            "| {n} | {} | {} / {} | {} / {} | {} / {} |",
            across.len(),
            signed_ms(signed_percentile(&mut across, 0.5)),
            signed_ms(signed_percentile(&mut across, 0.99)),
            signed_ms(signed_percentile(&mut control, 0.5)),
            signed_ms(signed_percentile(&mut control, 0.99)),
            replicated.retries,
            local.retries,
        );
        let chunks = (n * SHAPE.chunks * sizes.rounds) as f64;
        let per_chunk = |cpu: Duration| cpu.as_secs_f64() * 1e6 / chunks;
        let (on_a, on_b, on_one) =
            (per_chunk(replicated.cpu[0]), per_chunk(replicated.cpu[1]), per_chunk(local.cpu[0]));
        let _ = writeln!(
            cpu_rows,
            "| {n} | {on_a:.1} µs | {on_b:.1} µs | {:.1} µs | {on_one:.1} µs | {} |",
            on_a + on_b,
            crate::report::ratio(on_a + on_b, on_one),
        );
        let readings = &replicated.memory;
        let count = readings.len().max(1) as f64;
        let mean = |f: &dyn Fn(&MemoryReading) -> f64| readings.iter().map(f).sum::<f64>() / count;
        let _ = writeln!(
            memory_rows,
            "| {n} | {:.2} MiB | {:.2} MiB | {} | {:.0} B | {:.1} KiB | {:.1} / {:.1} KiB | {:.1} KiB |",
            mean(&|m| m.before as f64) / 1048576.0,
            mean(&|m| m.live as f64) / 1048576.0,
            readings.iter().map(|m| format!("{} + {}", m.live_replies, m.ended_replies)).collect::<Vec<_>>().join(", "),
            mean(&|m| m.text_per_reply),
            mean(&|m| m.live.saturating_sub(m.before) as f64 / (m.live_replies + m.ended_replies).max(1) as f64)
                / 1024.0,
            mean(&|m| m.stream_key) / 1024.0,
            mean(&|m| m.info_key) / 1024.0,
            mean(&|m| m.ended.saturating_sub(m.before) as f64 / n as f64) / 1024.0,
        );
    }
    let _ = writeln!(
        out,
        "| live replies | chunks matched | B − A p50 / p99 | local control p50 / p99 | sends retried after admission refused: A / one process |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    out.push_str(&latency_rows);
    let _ = writeln!(
        out,
        "\nCPU: each process's user+system time (/proc, 10 ms ticks) from before the watchers subscribe to 300 ms \
         after the last reply ended, per chunk of the replies (the rounds pooled). A runs the replies (stores them, \
         serves their sender and its watcher, appends to Redis); B mirrors them from Redis for its watcher. The one \
         process serves the same three streams per reply with no Redis.\n"
    );
    let _ =
        writeln!(out, "| live replies | A CPU/chunk | B CPU/chunk | A + B | one process, no Redis | (A + B) ÷ one |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    out.push_str(&cpu_rows);
    let _ = writeln!(
        out,
        "\nRedis memory: `INFO memory` used_memory just before the sends (the watchers subscribed), while the \
         replies are live (once every A watcher had half of its reply; or, if one ended first, once all had text), \
         and 300 ms after the last ended (ended replies stay readable for 120 s). Per reply: the growth over the \
         replies whose text Redis held at the reading (live + already ended, per round), the mean over the rounds.\n"
    );
    let _ = writeln!(
        out,
        "| replies | used_memory before | while live | replies held then: live + ended, per round | text per reply then | per reply held | of which `MEMORY USAGE`: text stream / details key | per ended reply (kept 120 s) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    out.push_str(&memory_rows);
    drop(single);

    if sizes.storm_watchers > 0 {
        let c = Server::roleplay_with_env(&upstream, cluster_url, dir.path(), false, &replica_env).await;
        let (section, storm_problems) =
            storm(&[(&a, "A"), (&b, "B"), (&c, "C")], &prepared, sizes.storm_watchers, sizes.storm_seconds).await;
        out.push_str(&section);
        problems.extend(storm_problems);
    }
    (problems, out)
}

/// What a row's rounds measured.
struct Rounds {
    /// B − A (or the second local watcher − the first), per chunk, in ms.
    diffs: Vec<f64>,
    /// CPU of the sender's server and of the second watcher's, over the rounds.
    cpu: [Duration; 2],
    memory: Vec<MemoryReading>,
    problems: Vec<String>,
    /// Sends refused by admission control, then sent again.
    retries: usize,
}

struct MemoryReading {
    /// used_memory before the sends, with the replies live, after they ended.
    before: u64,
    live: u64,
    ended: u64,
    /// Replies with text in Redis at the live reading: streaming, and ended
    /// (kept) already.
    live_replies: usize,
    ended_replies: usize,
    /// Text each of them held then, on average.
    text_per_reply: f64,
    /// `MEMORY USAGE` of a reply's text stream and of its details, on
    /// average, at the same reading.
    stream_key: f64,
    info_key: f64,
}

/// `rounds` rounds of `n` replies sent on `sender`, each watched on
/// `watched[0]` and on `watched[1]`.
async fn rounds(
    sender: &Server,
    watched: [&Server; 2],
    prepared: &Prepared,
    n: usize,
    rounds: usize,
    redis: Option<&RedisServer>,
) -> Rounds {
    let mut result =
        Rounds { diffs: Vec::new(), cpu: [Duration::ZERO; 2], memory: Vec::new(), problems: Vec::new(), retries: 0 };
    for round in 0..rounds {
        let chats = prepared.chats(n, SHAPE).await;
        let connections = (2 * n).div_ceil(STREAMS_PER_CONNECTION);
        let sender_channels = sender.channels(connections).await;
        let pools = [watched[0].channels(connections).await, watched[1].channels(connections).await];
        let cpu_before = [watched[0].cpu(), watched[1].cpu()];
        let (diffs, memory, problems, retries) = one_round(&sender_channels, &pools, &chats, redis).await;
        result.retries += retries;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ended = match redis {
            Some(redis) => redis.used_memory().await,
            None => 0,
        };
        for (side, server) in watched.iter().enumerate() {
            result.cpu[side] += server.cpu().saturating_sub(cpu_before[side]);
        }
        result.diffs.extend(diffs);
        if let Some(mut memory) = memory {
            memory.ended = ended;
            result.memory.push(memory);
        }
        result.problems.extend(problems.into_iter().map(|p| format!("round {}: {p}", round + 1)));
    }
    // One process serving both sides counts once.
    if std::ptr::eq(watched[0], watched[1]) {
        result.cpu[1] = Duration::ZERO;
    }
    result
}

/// The first watchers' progress: how many received text, half of their
/// reply, all of it, and the text they hold.
#[derive(Default)]
struct Progress {
    started: AtomicUsize,
    halfway: AtomicUsize,
    completed: AtomicUsize,
    bytes: AtomicUsize,
    /// The replies' stream ids, as the watchers learn them.
    streams: std::sync::Mutex<Vec<String>>,
}

async fn one_round(
    sender_channels: &[Channel],
    pools: &[Vec<Channel>; 2],
    chats: &[String],
    redis: Option<&RedisServer>,
) -> (Vec<f64>, Option<MemoryReading>, Vec<String>, usize) {
    let n = chats.len();
    let deadline = Instant::now() + ROUND_LIMIT;
    let progress = Arc::new(Progress::default());
    let mut readers: [Vec<JoinHandle<Watched>>; 2] = [Vec::new(), Vec::new()];
    for (i, chat) in chats.iter().enumerate() {
        for (side, pool) in pools.iter().enumerate() {
            let channel = pool[i % pool.len()].clone();
            let progress = (side == 0).then(|| Arc::clone(&progress));
            readers[side].push(match subscribe(channel, chat, None).await {
                Ok(stream) => tokio::spawn(watch_reply(stream, progress, deadline)),
                Err(status) => {
                    let failed = Watched::failed(format!("subscribing failed: {status}"));
                    tokio::spawn(async move { failed })
                }
            });
        }
    }
    let before = match redis {
        Some(redis) => redis.used_memory().await,
        None => 0,
    };
    let senders: Vec<JoinHandle<Sent>> = chats
        .iter()
        .enumerate()
        .map(|(i, chat)| {
            let client = MessageServiceClient::new(sender_channels[i % sender_channels.len()].clone());
            tokio::spawn(send_reply(client, chat.clone(), deadline))
        })
        .collect();
    let mut memory = None;
    if let Some(redis) = redis {
        // Read when every reply is halfway; or, when one ends before that
        // (sends retried after admission control start late), once every
        // reply has started.
        let until = Instant::now() + Duration::from_secs(30);
        let load = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
        while load(&progress.halfway) < n
            && !(load(&progress.completed) > 0 && load(&progress.started) == n)
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (started, completed) = (load(&progress.started), load(&progress.completed));
        let text = load(&progress.bytes);
        let live = redis.used_memory().await;
        let streams = progress.streams.lock().map(|streams| streams.clone()).unwrap_or_default();
        let (stream_keys, info_keys, found) = redis.reply_key_sizes(&streams).await;
        memory = Some(MemoryReading {
            before,
            live,
            ended: 0,
            stream_key: stream_keys as f64 / found.max(1) as f64,
            info_key: info_keys as f64 / found.max(1) as f64,
            live_replies: started.saturating_sub(completed),
            ended_replies: completed,
            text_per_reply: text as f64 / started.max(1) as f64,
        });
    }
    let expected = reply_text(SHAPE);
    let mut diffs = Vec::with_capacity(n * SHAPE.chunks);
    let mut problems = Vec::new();
    let mut retries = 0;
    let [first, second] = readers;
    for (i, ((sender, a), b)) in senders.into_iter().zip(first).zip(second).enumerate() {
        let sent = sender.await.unwrap_or_else(|_| Sent::failed("the sender's task panicked"));
        let a = a.await.unwrap_or_else(|_| Watched::failed("the task panicked".into()));
        let b = b.await.unwrap_or_else(|_| Watched::failed("the task panicked".into()));
        retries += sent.retries;
        if let Some(problem) = &sent.problem {
            problems.push(format!("chat {i}: the sender: {problem}"));
        }
        for (name, watched) in [("first watcher", &a), ("second watcher", &b)] {
            problems.extend(
                watched.check(&sent.stream_id, &expected).into_iter().map(|p| format!("chat {i}, {name}: {p}")),
            );
        }
        let mut missing = Vec::new();
        for k in 0..SHAPE.chunks {
            let last_byte = (k + 1) * SHAPE.chunk_bytes;
            match (a.arrival(last_byte), b.arrival(last_byte)) {
                (Some(at_a), Some(at_b)) => diffs.push(signed_between(at_a, at_b)),
                _ => missing.push(k),
            }
        }
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            problems.push(format!(
                "chat {i}: {} of {} chunks did not reach both watchers (chunks {first} to {last})",
                missing.len(),
                SHAPE.chunks
            ));
        }
    }
    (diffs, memory, problems, retries)
}

/// `later − earlier` in milliseconds, negative when `later` came first.
fn signed_between(earlier: Instant, later: Instant) -> f64 {
    if later >= earlier { (later - earlier).as_secs_f64() * 1000.0 } else { -(earlier - later).as_secs_f64() * 1000.0 }
}

fn signed_percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index.min(values.len() - 1)]
}

fn signed_ms(value: f64) -> String {
    format!("{value:+.2} ms")
}

async fn subscribe(
    channel: Channel,
    chat: &str,
    resume: Option<pb::ResumePosition>,
) -> Result<Streaming<GenerationEvent>, tonic::Status> {
    let request = pb::SubscribeChatSessionRequest { chat_session_id: chat.to_owned(), resume };
    let mut client = MessageServiceClient::new(channel);
    let call = client.subscribe_chat_session(request);
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(answer) => answer.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer to SubscribeChatSession within 10 s")),
    }
}

/// One subscriber's view of one reply.
#[derive(Default)]
struct Watched {
    stream_id: Option<String>,
    text: String,
    /// The text's length after each Delta, and when that Delta arrived.
    arrivals: Vec<(usize, Instant)>,
    completed: bool,
    problems: Vec<String>,
}

impl Watched {
    fn failed(problem: String) -> Self {
        Self { problems: vec![problem], ..Self::default() }
    }

    /// When the byte before `end` arrived.
    fn arrival(&self, end: usize) -> Option<Instant> {
        let at = self.arrivals.partition_point(|(len, _)| *len < end);
        self.arrivals.get(at).map(|(_, when)| *when)
    }

    /// What is wrong with this view of the reply `stream_id` whose text is
    /// `expected`.
    fn check(&self, stream_id: &Option<String>, expected: &str) -> Vec<String> {
        let mut problems = self.problems.clone();
        if stream_id.is_some() && self.stream_id != *stream_id {
            problems.push(format!("followed stream {:?}, the sender's was {stream_id:?}", self.stream_id));
        }
        if !self.completed {
            problems.push("did not see the reply complete".into());
        }
        if let Some(problem) = compare_text(&self.text, expected) {
            problems.push(problem);
        }
        problems
    }
}

/// Where `got` departs from `expected`, if it does.
fn compare_text(got: &str, expected: &str) -> Option<String> {
    if got == expected {
        return None;
    }
    let same = got.bytes().zip(expected.bytes()).take_while(|(g, e)| g == e).count();
    Some(format!(
        "text differs from the reply from byte {same} on ({} bytes received, {} in the reply)",
        got.len(),
        expected.len()
    ))
}

/// Reads one subscription until the first reply it follows ends.
async fn watch_reply(
    mut stream: Streaming<GenerationEvent>,
    progress: Option<Arc<Progress>>,
    deadline: Instant,
) -> Watched {
    let mut watched = Watched::default();
    let half = SHAPE.chunks * SHAPE.chunk_bytes / 2;
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) => {
                watched.problems.push("no end within the time limit".into());
                break;
            }
            Ok(Err(status)) => {
                watched.problems.push(format!("the stream broke at byte {}: {status}", watched.text.len()));
                break;
            }
            Ok(Ok(None)) => {
                watched.problems.push(format!("the stream ended at byte {} before the reply did", watched.text.len()));
                break;
            }
            Ok(Ok(Some(event))) => event,
        };
        let now = Instant::now();
        match event.event {
            Some(Event::Started(started)) => {
                if watched.stream_id.is_none()
                    && let Some(progress) = &progress
                    && let Ok(mut streams) = progress.streams.lock()
                {
                    streams.push(started.stream_id.clone());
                }
                watched.stream_id.get_or_insert(started.stream_id);
            }
            Some(Event::Delta(delta)) => {
                if *watched.stream_id.get_or_insert_with(|| delta.stream_id.clone()) != delta.stream_id {
                    continue;
                }
                let (offset, had) = (delta.offset as usize, watched.text.len());
                if offset != had {
                    watched
                        .problems
                        .push(format!("a Delta at byte {offset} of {} bytes after {had}", delta.text.len()));
                }
                if offset <= had && offset + delta.text.len() > had {
                    watched.text.push_str(delta.text.get(had - offset..).unwrap_or_default());
                }
                watched.arrivals.push((watched.text.len(), now));
                if let Some(progress) = &progress {
                    if had == 0 && !watched.text.is_empty() {
                        progress.started.fetch_add(1, Ordering::Relaxed);
                    }
                    progress.bytes.fetch_add(watched.text.len() - had, Ordering::Relaxed);
                    if had < half && watched.text.len() >= half {
                        progress.halfway.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some(Event::Completed(completed)) if watched.stream_id.as_deref() == Some(completed.stream_id.as_str()) => {
                watched.completed = true;
                if let Some(progress) = &progress {
                    progress.completed.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            Some(Event::Failed(failed)) => {
                watched.problems.push(format!("Failed at byte {}: {}", watched.text.len(), failed.message));
                break;
            }
            Some(Event::Cancelled(_)) => {
                watched.problems.push(format!("Cancelled at byte {}", watched.text.len()));
                break;
            }
            _ => {}
        }
    }
    watched
}

/// The sender's side of one reply.
struct Sent {
    stream_id: Option<String>,
    /// Sends refused by admission control and sent again after their RetryInfo.
    retries: usize,
    problem: Option<String>,
}

impl Sent {
    fn failed(problem: &str) -> Self {
        Self { stream_id: None, retries: 0, problem: Some(problem.to_owned()) }
    }
}

/// Sends one message and reads its reply to the end. A refusal by
/// admission control (RESOURCE_EXHAUSTED with a RetryInfo) is sent again
/// after the delay it names, as a client should, up to 50 times.
async fn send_reply(mut client: MessageServiceClient<Channel>, chat: String, deadline: Instant) -> Sent {
    use tonic_types::StatusExt;
    let mut sent = Sent { stream_id: None, retries: 0, problem: None };
    let mut stream = loop {
        let request = pb::AddUserMessageRequest { chat_session_id: chat.clone(), content: "Go on.".into() };
        match client.add_user_message_streaming(request).await {
            Ok(response) => break response.into_inner(),
            Err(status) if status.code() == tonic::Code::ResourceExhausted && sent.retries < 50 => {
                let Some(delay) = status.get_details_retry_info().and_then(|info| info.retry_delay) else {
                    return Sent::failed(&format!("refused without a RetryInfo: {status}"));
                };
                sent.retries += 1;
                tokio::time::sleep(delay).await;
            }
            Err(status) => {
                sent.problem = Some(format!("refused: {status}"));
                return sent;
            }
        }
    };
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(event))) => match event.event {
                Some(Event::Started(started)) => sent.stream_id = Some(started.stream_id),
                Some(Event::Completed(_)) => return sent,
                Some(Event::Failed(failed)) => {
                    sent.problem = Some(format!("Failed: {}", failed.message));
                    return sent;
                }
                Some(Event::Cancelled(_)) => {
                    sent.problem = Some("Cancelled".into());
                    return sent;
                }
                _ => {}
            },
            Ok(Ok(None)) => {
                sent.problem = Some("the stream ended before the reply did".into());
                return sent;
            }
            Ok(Err(status)) => {
                sent.problem = Some(format!("the stream broke: {status}"));
                return sent;
            }
            Err(_) => {
                sent.problem = Some("no end within the time limit".into());
                return sent;
            }
        }
    }
}

/// The reconnect storm over several replicas: one reply on the first, and
/// watchers spread over all of them, each dropping after 1-30 events and
/// resuming from its offset on another replica. Returns the section and
/// what went wrong (lost, duplicated or wrong bytes).
async fn storm(
    replicas: &[(&Server, &str)],
    prepared: &Prepared,
    watchers: usize,
    seconds: u64,
) -> (String, Vec<String>) {
    let shape = Shape { chunks: (seconds * 50) as usize, chunk_bytes: 16, interval: Duration::from_millis(20) };
    let expected = Arc::new(reply_text(shape));
    let chat = prepared.chats(1, shape).await.remove(0);
    let mut pools = Vec::with_capacity(replicas.len());
    for (server, _) in replicas {
        pools.push(server.channels(watchers.div_ceil(STREAMS_PER_CONNECTION)).await);
    }
    let pools = Arc::new(pools);
    let names: Arc<Vec<String>> = Arc::new(replicas.iter().map(|(_, name)| (*name).to_owned()).collect());
    let deadline = Instant::now() + Duration::from_secs(seconds) + ROUND_LIMIT;
    let cpu_before: Vec<Duration> = replicas.iter().map(|(server, _)| server.cpu()).collect();
    let tasks: Vec<JoinHandle<StormResult>> = (0..watchers)
        .map(|i| {
            let (pools, names, chat, expected) =
                (Arc::clone(&pools), Arc::clone(&names), chat.clone(), Arc::clone(&expected));
            tokio::spawn(async move { storm_watcher(&pools, &names, i, &chat, &expected, deadline).await })
        })
        .collect();
    let sender_channel = replicas[0].0.channel().await;
    let sent = send_reply(MessageServiceClient::new(sender_channel), chat, deadline).await;
    let mut problems = Vec::new();
    if let Some(problem) = &sent.problem {
        problems.push(format!("storm: the sender: {problem}"));
    }
    let (mut lost, mut duplicated, mut mismatched, mut gaps, mut resumes, mut unfinished) = (0, 0, 0, 0, 0, 0);
    let mut latency = Vec::new();
    let mut refusals: BTreeMap<String, Refused> = BTreeMap::new();
    let mut refusal_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let Ok(result) = task.await else {
            problems.push(format!("storm watcher {i}: its task panicked"));
            unfinished += 1;
            continue;
        };
        lost += expected.len().saturating_sub(result.text.len());
        duplicated += result.duplicated;
        mismatched += result.mismatched;
        gaps += result.gaps.len();
        resumes += result.resume_latency.len();
        latency.extend(result.resume_latency);
        for (route, refused) in result.refusals {
            let total = refusals.entry(route).or_default();
            total.asked += refused.asked;
            total.count += refused.count;
            total.behind.extend(refused.behind);
        }
        for (kind, count) in result.refusal_kinds {
            *refusal_kinds.entry(kind).or_default() += count;
        }
        if !result.completed {
            unfinished += 1;
        }
        if result.stream_id.is_some() && result.stream_id != sent.stream_id {
            problems
                .push(format!("storm watcher {i}: followed stream {:?}, not {:?}", result.stream_id, sent.stream_id));
        }
        for (offset, had, on) in &result.gaps {
            problems.push(format!("storm watcher {i}: a Delta at byte {offset} after {had} (on {on}): bytes skipped"));
        }
        if result.duplicated > 0 {
            problems.push(format!("storm watcher {i}: {} bytes duplicated", result.duplicated));
        }
        if result.mismatched > 0 {
            problems.push(format!(
                "storm watcher {i}: {} bytes sent again differed from the first time",
                result.mismatched
            ));
        }
        if let Some(problem) = compare_text(&result.text, &expected) {
            problems.push(format!("storm watcher {i}: {problem}"));
        }
        if !result.completed {
            problems.push(format!("storm watcher {i}: did not see the reply complete ({})", result.ended));
        }
    }
    let cpu: Vec<String> = replicas
        .iter()
        .zip(&cpu_before)
        .map(|((server, name), before)| format!("{name} {:.1} s", server.cpu().saturating_sub(*before).as_secs_f64()))
        .collect();
    let refused: usize = refusals.values().map(|r| r.count).sum();
    refusals.retain(|route, _| !route.starts_with("(first)"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n**Reconnect storm over {} replicas.** One reply on A ({} bytes in {} chunks over {seconds} s); {watchers} \
         watchers spread over {}, sharing {} HTTP/2 connections per replica, each dropping after 1-30 events and \
         resuming {{stream_id, offset}} on another replica, at random; a refused subscribe is tried \
         again 10 ms later on another replica (never back on the one the watcher left). Every watcher's text is compared with the reply \
         byte for byte (the chunks are numbered). The sender completed: {}. Server CPU during the storm: {}.\n",
        replicas.len(),
        expected.len(),
        shape.chunks,
        names.join(", "),
        pools[0].len(),
        sent.problem.is_none(),
        cpu.join(", "),
    );
    let _ = writeln!(
        out,
        "| bytes lost | bytes duplicated | bytes differing | gaps | watchers not completed | resumes answered | resume latency p50 / p99 | subscribes refused (then retried elsewhere) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| {lost} | {duplicated} | {mismatched} | {gaps} | {unfinished}/{watchers} | {resumes} | {} / {} | {refused} |",
        ms(percentile(&mut latency, 0.5)),
        ms(percentile(&mut latency, 0.99)),
    );
    if refused > 0 {
        let kinds: Vec<String> = refusal_kinds.iter().map(|(kind, count)| format!("{count} × {kind}")).collect();
        let _ = writeln!(
            out,
            "\nThe refusals: {}. Resumes by the replica of the watcher's previous stream and the one it asked:\n",
            kinds.join("; ")
        );
        let _ = writeln!(
            out,
            "| from → to | resumes asked | refused | share refused | resume offset past the replica's copy: p50 / max |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for (route, refused) in &mut refusals {
            refused.behind.sort_unstable();
            let behind = match (refused.behind.get(refused.behind.len() / 2), refused.behind.last()) {
                (Some(p50), Some(max)) => format!("{p50} / {max} bytes"),
                _ => "-".to_owned(),
            };
            let share = refused.count as f64 * 100.0 / refused.asked.max(1) as f64;
            let _ = writeln!(out, "| {route} | {} | {} | {share:.1} % | {behind} |", refused.asked, refused.count);
        }
    }
    (out, problems)
}

/// Subscribes along one route (from the replica of the previous stream to
/// the one asked).
#[derive(Default)]
struct Refused {
    asked: usize,
    count: usize,
    behind: Vec<usize>,
}

#[derive(Default)]
struct StormResult {
    stream_id: Option<String>,
    text: String,
    duplicated: usize,
    /// Bytes sent again that differ from what was received the first time.
    mismatched: usize,
    /// Deltas past the text received: (offset, bytes held, replica).
    gaps: Vec<(usize, usize, String)>,
    resume_latency: Vec<Duration>,
    /// Subscribes by route `from → to`: how many, how many refused, and by
    /// how many bytes the resume offset was past what the replica held (when
    /// the refusal says so).
    refusals: BTreeMap<String, Refused>,
    /// The refusals' messages, numbers left out.
    refusal_kinds: BTreeMap<String, usize>,
    completed: bool,
    /// How the watcher ended.
    ended: String,
}

async fn storm_watcher(
    pools: &[Vec<Channel>],
    names: &[String],
    index: usize,
    chat: &str,
    expected: &str,
    deadline: Instant,
) -> StormResult {
    let mut rng = (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let replicas = pools.len();
    let mut on = index % replicas;
    // Where the last stream that was answered came from.
    let mut last_on: Option<usize> = None;
    let mut result = StormResult { ended: "the time limit".into(), ..StormResult::default() };
    'subscriptions: while Instant::now() < deadline {
        let resume = result
            .stream_id
            .as_ref()
            .map(|id| pb::ResumePosition { stream_id: id.clone(), offset: result.text.len() as u64 });
        let resuming = resume.is_some();
        let pool = &pools[on];
        let from = last_on.map_or("(first)", |from| names[from].as_str());
        let route = result.refusals.entry(format!("{from} → {}", names[on])).or_default();
        route.asked += 1;
        let asked = Instant::now();
        let mut stream = match subscribe(pool[index % pool.len()].clone(), chat, resume).await {
            Ok(stream) => stream,
            Err(status) => {
                let message = status.message();
                // The kind of refusal: its message with each number as `N`.
                let mut kind = String::with_capacity(message.len());
                for c in message.chars() {
                    match (c.is_ascii_digit(), kind.ends_with('N')) {
                        (true, true) => {}
                        (true, false) => kind.push('N'),
                        (false, _) => kind.push(c),
                    }
                }
                *result.refusal_kinds.entry(format!("{:?}: \"{kind}\"", status.code())).or_default() += 1;
                let from = last_on.map_or("(first)", |from| names[from].as_str());
                let refused = result.refusals.entry(format!("{from} → {}", names[on])).or_default();
                refused.count += 1;
                // "resume offset <asked> is past the <held> bytes ...".
                let numbers: Vec<usize> =
                    message.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
                if let [asked, held] = numbers[..] {
                    refused.behind.push(asked.saturating_sub(held));
                }
                // Another replica than this one and than the previous stream's.
                on = other_replica(replicas, on, last_on, &mut next);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        last_on = Some(on);
        let budget = 1 + next(30);
        let mut first = true;
        for _ in 0..budget {
            let event = match tokio::time::timeout_at(deadline, stream.message()).await {
                Ok(Ok(Some(event))) => event,
                _ => break,
            };
            if first && resuming {
                result.resume_latency.push(asked.elapsed());
            }
            first = false;
            match event.event {
                Some(Event::Started(started)) => {
                    result.stream_id.get_or_insert(started.stream_id);
                }
                Some(Event::Delta(delta)) => {
                    if *result.stream_id.get_or_insert_with(|| delta.stream_id.clone()) != delta.stream_id {
                        continue;
                    }
                    let (offset, had) = (delta.offset as usize, result.text.len());
                    if offset > had {
                        result.gaps.push((offset, had, names[on].clone()));
                        // Resume from what is held, elsewhere.
                        break;
                    }
                    let overlap = (had - offset).min(delta.text.len());
                    if overlap > 0 {
                        result.duplicated += overlap;
                        let again = &delta.text.as_bytes()[..overlap];
                        let before = &result.text.as_bytes()[offset..offset + overlap];
                        result.mismatched += again.iter().zip(before).filter(|(x, y)| x != y).count();
                    }
                    result.text.push_str(delta.text.get(overlap..).unwrap_or_default());
                }
                Some(Event::Completed(completed))
                    if result.stream_id.as_deref() == Some(completed.stream_id.as_str()) =>
                {
                    result.completed = true;
                    result.ended = "Completed".into();
                    break 'subscriptions;
                }
                Some(Event::Failed(failed)) => {
                    result.ended = format!("Failed on {} at byte {}: {}", names[on], result.text.len(), failed.message);
                    break 'subscriptions;
                }
                Some(Event::Cancelled(_)) => {
                    result.ended = format!("Cancelled on {} at byte {}", names[on], result.text.len());
                    break 'subscriptions;
                }
                _ => {}
            }
        }
        drop(stream);
        on = other_replica(replicas, on, None, &mut next);
    }
    if result.text.len() > expected.len() {
        result.ended.push_str(&format!("; {} bytes past the reply's end", result.text.len() - expected.len()));
    }
    result
}

/// A replica at random other than `not` and, when there is a third, than
/// `nor`.
fn other_replica(replicas: usize, not: usize, nor: Option<usize>, next: &mut impl FnMut(u64) -> u64) -> usize {
    let mut others: Vec<usize> = (0..replicas).filter(|&r| r != not && Some(r) != nor).collect();
    if others.is_empty() {
        others = (0..replicas).filter(|&r| r != not).collect();
    }
    others.get(next(others.len().max(1) as u64) as usize).copied().unwrap_or(not)
}

/// A private `redis-server` on a free loopback port, saving nothing; killed
/// by [`RedisServer::stop`] (or when dropped).
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts it and waits (up to 10 s) until it answers PING.
    async fn start() -> Result<Self, String> {
        let port = free_addr().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("`redis-server` could not be run ({err})"))?;
        let mut server = Self { port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match server.query(&mut redis::cmd("PING")).await {
                Ok(_) => return Ok(server),
                Err(err) if Instant::now() > deadline => {
                    server.stop().await;
                    return Err(format!("redis-server on port {port} did not answer PING within 10 s ({err})"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn query(&self, command: &mut redis::Cmd) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let call = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            command.query_async(&mut conn).await
        };
        match tokio::time::timeout(Duration::from_secs(2), call).await {
            Ok(answer) => answer,
            Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "no answer within 2 s"))),
        }
    }

    /// `used_memory` from `INFO memory`, in bytes (0 when unreadable).
    async fn used_memory(&self) -> u64 {
        let info = match self.query(redis::cmd("INFO").arg("memory")).await {
            Ok(redis::Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(redis::Value::VerbatimString { text, .. }) => text,
            _ => return 0,
        };
        info.lines().find_map(|line| line.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    /// `MEMORY USAGE` of each reply's text stream and of its details key,
    /// summed: (streams, details, replies found).
    async fn reply_key_sizes(&self, stream_ids: &[String]) -> (u64, u64, usize) {
        let mut pipe = redis::pipe();
        for id in stream_ids {
            // Key names as src/stream/redis/scripts.rs makes them.
            pipe.cmd("MEMORY").arg("USAGE").arg(format!("rp:reply:{id}")).arg("SAMPLES").arg(0);
            pipe.cmd("MEMORY").arg("USAGE").arg(format!("rp:reply:{id}:info")).arg("SAMPLES").arg(0);
        }
        let answer = async {
            let mut conn = redis::Client::open(self.url())?.get_multiplexed_async_connection().await?;
            pipe.query_async::<Vec<Option<u64>>>(&mut conn).await
        };
        let Ok(Ok(sizes)) = tokio::time::timeout(Duration::from_secs(5), answer).await else { return (0, 0, 0) };
        let (mut streams, mut details, mut found) = (0, 0, 0);
        for pair in sizes.chunks(2) {
            if let [Some(stream), info] = pair {
                streams += stream;
                details += info.unwrap_or(0);
                found += 1;
            }
        }
        (streams, details, found)
    }

    /// SIGKILL, and waits until it exited.
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), child.kill()).await;
        }
    }
}

/// A folder for the replicas' key file (unused: the key is given) and
/// anything else they write, removed afterwards.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("roleplay-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&path).expect("scratch dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
