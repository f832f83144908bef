//! Several replicas sharing the stream registry through Redis: three real
//! server processes (A, B, C) on one PostgreSQL schema, one master key, one
//! fake upstream and a private redis-server. A reply started on one replica
//! is followed, resumed and cancelled from the others; only one reply runs
//! per chat cluster-wide; a replica that dies (kill -9) or freezes (SIGSTOP)
//! has its reply marked interrupted by another, and a frozen one that wakes
//! up changes nothing; a Redis outage refuses new replies but lets the
//! running one finish and be stored.

mod common;

use std::{future::Future, sync::Arc, time::Duration};

use common::{
    Db, FakeUpstream, Reply, TestDb, is_terminal,
    process::{self, Process, open_chat},
    reconstruct,
    redis_server::RedisServer,
    slow_reply, started, terminal,
    users::As,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use roleplay_server::api::pb::{self, generation_event::Event, message_service_client::MessageServiceClient};
use tokio::time::Instant;
use tonic::{Code, Status, Streaming, transport::Channel};

/// The chat lease the replicas run with: short, so dead replicas' replies are
/// swept within a few seconds (renewed every lease/3, swept every lease/2).
const LEASE: &str = "2s";
/// Lease + sweep is about 3 s; everything that waits for a sweep allows this.
const SWEEP_BOUND: Duration = Duration::from_secs(15);

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// Three replicas on one database, one key, one upstream and one Redis.
/// Fields drop in order: the processes (killed) before the schema is dropped.
struct Cluster {
    replicas: Vec<Process>,
    upstream: FakeUpstream,
    redis: RedisServer,
    db: TestDb,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        Self::start_with_lease(LEASE, extra_env).await
    }

    async fn start_with_lease(lease: &str, extra_env: &[(&str, &str)]) -> Self {
        let redis = RedisServer::start().await;
        let upstream = FakeUpstream::start().await;
        let db = TestDb::new(Db::Postgres).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = redis.url();
        let mut env = vec![("ROLEPLAY_REDIS_URL", url.as_str()), ("ROLEPLAY_REDIS_LEASE", lease)];
        // REPLICAS_RUST_LOG=roleplay_server=debug shows the replicas' logs
        // when a test fails (they log warnings only otherwise).
        let log = std::env::var("REPLICAS_RUST_LOG").ok();
        if let Some(log) = &log {
            env.push(("RUST_LOG", log.as_str()));
        }
        env.extend_from_slice(extra_env);
        let mut replicas = Vec::new();
        // One after the other, A first: A creates the master key file (and
        // runs the migrations) before B and C read it. spawn_with returns
        // once the replica answers.
        for _ in 0..3 {
            replicas.push(process::spawn_with(&db, dir.path(), &upstream, &env).await);
        }
        Self { replicas, upstream, redis, db, _dir: dir }
    }

    fn channel(&self, replica: usize) -> Channel {
        self.replicas[replica].channel.clone()
    }

    /// The single-user mode's user (no token), on `replica`.
    fn user(&self, replica: usize) -> As {
        As::new(self.channel(replica), None)
    }

    fn pid(&self, replica: usize) -> String {
        self.replicas[replica].child.id().expect("replica running").to_string()
    }
}

/// Awaits `future`, failing the test if it takes longer than `secs`.
async fn within<T>(secs: u64, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s"))
}

async fn send(
    cluster: &Cluster,
    replica: usize,
    chat_id: &str,
    content: &str,
) -> Result<Streaming<pb::GenerationEvent>, Status> {
    within(10, "AddUserMessageStreaming", cluster.user(replica).send(chat_id, content)).await
}

async fn subscribe(
    cluster: &Cluster,
    replica: usize,
    chat_id: &str,
    resume: Option<(&str, usize)>,
) -> Result<Streaming<pb::GenerationEvent>, Status> {
    let mut client = MessageServiceClient::new(cluster.channel(replica));
    let call = client.subscribe_chat_session(pb::SubscribeChatSessionRequest {
        chat_session_id: chat_id.into(),
        resume: resume
            .map(|(stream_id, offset)| pb::ResumePosition { stream_id: stream_id.into(), offset: offset as u64 }),
    });
    within(10, "SubscribeChatSession", call).await.map(tonic::Response::into_inner)
}

async fn cancel(
    cluster: &Cluster,
    replica: usize,
    chat_id: &str,
    stream_id: Option<&str>,
) -> Result<pb::CancelGenerationResponse, Status> {
    let mut client = MessageServiceClient::new(cluster.channel(replica));
    let call = client.cancel_generation(pb::CancelGenerationRequest {
        chat_session_id: chat_id.into(),
        stream_id: stream_id.map(Into::into),
    });
    within(10, "CancelGeneration", call).await.map(tonic::Response::into_inner)
}

/// Calls `call` until it succeeds, while it fails with `code` (a replica
/// not ready yet), for at most `bound`, pausing `pause` between tries. Any
/// other failure, or `code` past the bound, fails the test naming `what`.
async fn retrying<T, Fut>(code: Code, bound: Duration, pause: Duration, what: &str, mut call: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, Status>>,
{
    let deadline = Instant::now() + bound;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(err) if err.code() == code && Instant::now() < deadline => tokio::time::sleep(pause).await,
            Err(err) => panic!("{what}: {err:?}"),
        }
    }
}

async fn messages_of(cluster: &Cluster, replica: usize, chat_id: &str) -> Vec<pb::Message> {
    within(10, "ListMessages", cluster.user(replica).messages_of(chat_id)).await
}

/// A first reply on `replica`, in a chat of its own, with the upstream's
/// default reply: a fresh process builds its first prompt slowly (over a
/// second in a debug build, loading the tokenizer), which is not what the
/// kill and freeze tests are about. Call it before queueing their replies.
async fn warm_up(cluster: &Cluster, replica: usize) {
    let chat = within(10, "open a chat", cluster.user(replica).open_chat("Warm")).await;
    let mut stream = send(cluster, replica, &chat.id, "warm up").await.expect("warm-up send");
    let events = terminal_within(&mut stream, Duration::from_secs(20)).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "warm-up reply: {events:?}");
}

/// Reads until at least `bytes` of reply text arrived (or a terminal event).
async fn read_text(stream: &mut Streaming<pb::GenerationEvent>, bytes: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut received = 0;
    while received < bytes {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap_or_else(|_| panic!("stream stalled after {received} bytes"))
            .expect("stream ok")
            .expect("stream open")
            .event
            .expect("event set");
        if let Event::Delta(delta) = &event {
            received = delta.offset as usize + delta.text.len();
        }
        let end = is_terminal(&event);
        events.push(event);
        if end {
            break;
        }
    }
    events
}

/// Reads until a terminal event, an error status or the end of the stream,
/// for at most `bound`: (the events, the error status if it ended with one).
async fn until_end(stream: &mut Streaming<pb::GenerationEvent>, bound: Duration) -> (Vec<Event>, Option<Status>) {
    let deadline = Instant::now() + bound;
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) => panic!("neither a terminal event nor an error within {bound:?}; received {events:?}"),
            Ok(Err(status)) => return (events, Some(status)),
            Ok(Ok(None)) => return (events, None),
            Ok(Ok(Some(message))) => {
                let event = message.event.expect("event set");
                let end = is_terminal(&event);
                events.push(event);
                if end {
                    return (events, None);
                }
            }
        }
    }
}

/// Reads until a terminal event, which must come within `bound`.
async fn terminal_within(stream: &mut Streaming<pb::GenerationEvent>, bound: Duration) -> Vec<Event> {
    let (events, status) = until_end(stream, bound).await;
    if let Some(status) = status {
        panic!("the stream failed before a terminal event: {status:?}; received {events:?}");
    }
    assert!(events.last().is_some_and(is_terminal), "the stream ended before a terminal event: {events:?}");
    events
}

/// Polls ListMessages on `replica` until the chat's last message is no longer
/// streaming, for at most `bound`; returns it (still streaming if it never
/// settled).
async fn latest_reply(cluster: &Cluster, replica: usize, chat_id: &str, bound: Duration) -> pb::Message {
    let deadline = Instant::now() + bound;
    loop {
        let last = messages_of(cluster, replica, chat_id).await.pop().expect("a reply row");
        if last.status() != pb::MessageStatus::Streaming || Instant::now() >= deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// As [`latest_reply`], failing the test if it is still streaming.
async fn settled_reply(cluster: &Cluster, replica: usize, chat_id: &str, bound: Duration) -> pb::Message {
    let last = latest_reply(cluster, replica, chat_id, bound).await;
    assert_ne!(last.status(), pb::MessageStatus::Streaming, "the reply was still streaming after {bound:?}: {last:?}");
    last
}

/// After A stopped (killed or frozen): waits for another replica's sweep to
/// store the reply as interrupted, then for the watcher's terminal event;
/// fails with what was and was not seen of both. Returns the stored reply
/// and the watcher's events after `watched`.
async fn swept(
    cluster: &Cluster,
    watch: &mut Streaming<pb::GenerationEvent>,
    chat_id: &str,
    stopped_at: Instant,
) -> (pb::Message, Vec<Event>) {
    let stored = latest_reply(cluster, B, chat_id, SWEEP_BOUND).await;
    let stored_after = stopped_at.elapsed();
    let mut tail = Vec::new();
    let ending = loop {
        match tokio::time::timeout(Duration::from_secs(5), watch.message()).await {
            Err(_) => break "nothing more for 5 s".to_owned(),
            Ok(Err(status)) => break format!("the error {status:?}"),
            Ok(Ok(None)) => break "the end of the stream".to_owned(),
            Ok(Ok(Some(message))) => {
                let event = message.event.expect("event set");
                let end = is_terminal(&event);
                tail.push(event);
                if end {
                    break "its terminal event".to_owned();
                }
            }
        }
    };
    let said = format!(
        "{stored_after:?} after A stopped the stored reply was {:?} {:?} ({} bytes); the watcher on B got {tail:?}, then {ending}",
        stored.status(),
        stored.error,
        stored.content.len()
    );
    println!("{said}");
    assert_eq!(stored.status(), pb::MessageStatus::Interrupted, "{said}");
    assert!(tail.last().is_some_and(is_terminal), "{said}");
    (stored, tail)
}

/// `kill -<signal> <pid>`.
async fn signal(pid: &str, signal: &str) {
    let status = within(10, "kill", tokio::process::Command::new("kill").args([&format!("-{signal}"), pid]).status())
        .await
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

fn delta_count(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::Delta(_))).count()
}

// ---------------------------------------------------------------------------

/// Replica mode needs PostgreSQL: with SQLite the binary exits non-zero and
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_mode_refuses_sqlite() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_roleplay-server"))
        .arg("serve")
        .env("ROLEPLAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db.url)
        .env("ROLEPLAY_MASTER_KEY_FILE", dir.path().join("master.key"))
        .env("ROLEPLAY_MASTER_KEY_DIR", dir.path().join("keys"))
        .env("ROLEPLAY_METRICS_LISTEN", "")
        .env("OPENROUTER_BASE_URL", upstream.base_url())
        .env("RUST_LOG", "warn")
        .env("ROLEPLAY_REDIS_URL", redis.url())
        .env("ROLEPLAY_REDIS_LEASE", LEASE)
        .env_remove("ROLEPLAY_MASTER_KEY")
        .env_remove("ROLEPLAY_MASTER_KEYS")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the server kept running with SQLite and ROLEPLAY_REDIS_URL: it must refuse to start")
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {:?}; stderr: {stderr}", output.status);
    assert!(stderr.contains("PostgreSQL"), "the error names PostgreSQL: {stderr}");
}

/// A reply generated on A is followed live from B (watching since before it
/// started) and from C (joining mid-reply): every Delta continues the one
/// before, the text is exactly the upstream's, and all end with the same
/// Completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_on_one_replica_is_followed_live_on_the_others() {
    let cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    let (reply, expected) = slow_reply(40, 50);
    cluster.upstream.push(reply);

    let mut early = subscribe(&cluster, B, &chat.id, None).await.expect("watch on B");
    let mut caller = send(&cluster, A, &chat.id, "hi").await.expect("send on A");
    let mut caller_events = read_text(&mut caller, 30).await;
    let stream_id = started(&caller_events).stream_id.clone();
    let mut late = subscribe(&cluster, C, &chat.id, None).await.expect("join on C mid-reply");

    let bound = Duration::from_secs(20);
    let (rest, early_events, late_events) = tokio::join!(
        terminal_within(&mut caller, bound),
        terminal_within(&mut early, bound),
        terminal_within(&mut late, bound)
    );
    caller_events.extend(rest);

    for (who, events) in
        [("caller on A", &caller_events), ("watcher on B", &early_events), ("joiner on C", &late_events)]
    {
        assert_eq!(started(events).stream_id, stream_id, "{who}: the same stream");
        assert_eq!(reconstruct(events, 0, String::new()), expected, "{who}: every byte once, in order");
        let Event::Completed(done) = terminal(events) else { panic!("{who}: Completed, got {:?}", terminal(events)) };
        assert_eq!(done.stream_id, stream_id, "{who}");
        assert_eq!(done.message.as_ref().expect("message").content, expected, "{who}");
        assert_eq!(done.finish_reason, "stop", "{who}");
    }
    assert!(delta_count(&early_events) > 1, "B followed live, delta by delta: {early_events:?}");
    let first = late_events.iter().find_map(|e| if let Event::Delta(d) = e { Some(d) } else { None }).expect("delta");
    assert_eq!(first.offset, 0, "a join without resume starts at 0");

    let stored = messages_of(&cluster, B, &chat.id).await.pop().expect("reply");
    assert_eq!((stored.status(), stored.content.as_str()), (pb::MessageStatus::Completed, expected.as_str()));
    assert_eq!(cluster.upstream.requests().len(), 1, "one upstream request for one reply");
}

/// SubscribeChatSession with resume {stream_id, offset} on another replica
/// gives exactly the bytes from the offset on, then the terminal event:
/// while the reply runs on A, and after it finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_on_another_replica_gets_exactly_the_rest() {
    let cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    let (reply, expected) = slow_reply(40, 50);
    cluster.upstream.push(reply);

    let mut caller = send(&cluster, A, &chat.id, "hi").await.expect("send on A");
    let head = read_text(&mut caller, 40).await;
    assert!(!head.iter().any(is_terminal), "the reply is still running: {head:?}");
    let stream_id = started(&head).stream_id.clone();
    let have = reconstruct(&head, 0, String::new());
    drop(caller); // the client moves to another replica mid-reply

    let mut resumed = subscribe(&cluster, B, &chat.id, Some((&stream_id, have.len()))).await.expect("resume on B");
    let rest = terminal_within(&mut resumed, Duration::from_secs(20)).await;
    assert_eq!(started(&rest).stream_id, stream_id);
    assert_eq!(reconstruct(&rest, have.len(), have.clone()), expected, "exactly the rest, once");
    let Event::Completed(done) = terminal(&rest) else { panic!("Completed, got {:?}", terminal(&rest)) };
    assert_eq!(done.message.as_ref().expect("message").content, expected);
    drop(resumed);

    // Finished: the tail from any offset, on yet another replica.
    let offset = expected.char_indices().nth(25).expect("char").0;
    let mut tail = subscribe(&cluster, C, &chat.id, Some((&stream_id, offset))).await.expect("resume on C");
    let tail = terminal_within(&mut tail, Duration::from_secs(10)).await;
    assert_eq!(reconstruct(&tail, offset, expected[..offset].to_owned()), expected);
    assert!(matches!(terminal(&tail), Event::Completed(_)), "{tail:?}");

    let mut at_end = subscribe(&cluster, C, &chat.id, Some((&stream_id, expected.len()))).await.expect("at the end");
    let at_end = terminal_within(&mut at_end, Duration::from_secs(10)).await;
    assert_eq!(delta_count(&at_end), 0, "nothing is owed at the end: {at_end:?}");
    assert!(matches!(terminal(&at_end), Event::Completed(_)), "{at_end:?}");
}

/// One reply per chat cluster-wide: a send into a chat whose reply runs on
/// another replica is ABORTED; 20 simultaneous sends spread over the three
/// replicas start exactly one reply and one upstream request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_reply_per_chat_across_replicas() {
    let cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;

    let (reply, _) = slow_reply(40, 50);
    cluster.upstream.push(reply);
    let mut running = send(&cluster, A, &chat.id, "first").await.expect("send on A");
    let head = read_text(&mut running, 10).await;
    let stream_id = started(&head).stream_id.clone();
    for replica in [B, C] {
        let err = match send(&cluster, replica, &chat.id, "meanwhile").await {
            Ok(_) => panic!("replica {replica} started a second reply while A's runs"),
            Err(err) => err,
        };
        assert_eq!(err.code(), Code::Aborted, "replica {replica}: {err:?}");
        assert!(err.message().contains("already being generated"), "replica {replica}: {}", err.message());
        assert!(err.message().contains(&stream_id), "names the running stream: {}", err.message());
    }
    let done = terminal_within(&mut running, Duration::from_secs(20)).await;
    assert!(matches!(terminal(&done), Event::Completed(_)), "{done:?}");
    assert_eq!(cluster.upstream.requests().len(), 1, "refused sends reach no upstream");
    assert_eq!(messages_of(&cluster, C, &chat.id).await.len(), 2, "refused sends store nothing");

    // 20 at once, over A, B and C.
    let (reply, expected) = slow_reply(40, 50);
    cluster.upstream.push(reply);
    let requests_before = cluster.upstream.requests().len();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let user = cluster.user(i % 3);
        let barrier = Arc::clone(&barrier);
        let chat_id = chat.id.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let outcome = match user.send(&chat_id, &format!("race {i}")).await {
                Err(status) => Err(status),
                Ok(mut stream) => match stream.message().await {
                    Ok(Some(pb::GenerationEvent { event: Some(Event::Started(_)) })) => Ok(stream),
                    Ok(other) => panic!("send {i}: the first event is not Started: {other:?}"),
                    Err(status) => Err(status),
                },
            };
            (i, outcome)
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for task in tasks {
        let (i, outcome) = within(20, "a racing send", task).await.expect("send task");
        match outcome {
            Ok(stream) => accepted.push((i, stream)),
            Err(status) => refused.push((i, status)),
        }
    }
    let accepted_at: Vec<usize> = accepted.iter().map(|(i, _)| i % 3).collect();
    assert_eq!(accepted.len(), 1, "exactly one send is accepted (on replicas {accepted_at:?}); refused: {refused:?}");
    assert_eq!(refused.len(), 19);
    for (i, status) in &refused {
        assert_eq!(status.code(), Code::Aborted, "send {i} on replica {}: {status:?}", i % 3);
        assert!(status.message().contains("already being generated"), "send {i}: {}", status.message());
    }
    let (_, mut winner) = accepted.pop().expect("the accepted send");
    let events = terminal_within(&mut winner, Duration::from_secs(20)).await;
    let Event::Completed(done) = terminal(&events) else { panic!("Completed, got {:?}", terminal(&events)) };
    assert_eq!(done.message.as_ref().expect("message").content, expected);
    assert_eq!(cluster.upstream.requests().len() - requests_before, 1, "the upstream saw exactly one request");
    assert_eq!(messages_of(&cluster, B, &chat.id).await.len(), 4, "one user message and one reply were stored");
}

/// kill -9 of the replica generating a reply: another replica marks it
/// interrupted within lease + sweep, with at least the text a watcher had;
/// the watcher gets Failed(INTERRUPTED); the chat takes the next message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_reply_is_interrupted_by_another() {
    let mut cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    warm_up(&cluster, A).await;
    let (reply, expected) = slow_reply(80, 50);
    cluster.upstream.push(reply);

    let mut watch = subscribe(&cluster, B, &chat.id, None).await.expect("watch on B");
    let caller = send(&cluster, A, &chat.id, "go").await.expect("send on A");
    let mut watched = read_text(&mut watch, 40).await;
    assert!(!watched.iter().any(is_terminal), "the reply is still running: {watched:?}");
    let seen_at_kill = reconstruct(&watched, 0, String::new());

    within(10, "kill -9 A", cluster.replicas[A].child.kill()).await.expect("kill -9 A");
    let killed_at = Instant::now();
    drop(caller);

    let (stored, tail) = swept(&cluster, &mut watch, &chat.id, killed_at).await;
    watched.extend(tail);
    let Event::Failed(failed) = terminal(&watched) else {
        panic!("the watcher on B gets Failed(INTERRUPTED), got {:?}", terminal(&watched))
    };
    assert_eq!(failed.code(), pb::FailureCode::Interrupted, "{failed:?}");
    let watcher_text = reconstruct(&watched, 0, String::new());
    assert!(expected.starts_with(&stored.content), "the stored text is a prefix of the reply: {:?}", stored.content);
    assert!(
        stored.content.starts_with(&watcher_text),
        "what the watcher received ({} bytes) is a prefix of the stored text ({} bytes)",
        watcher_text.len(),
        stored.content.len()
    );
    assert!(stored.content.len() >= seen_at_kill.len(), "at least what was streamed before the kill");
    assert!(stored.content.len() < expected.len(), "the kill came mid-reply");
    assert_eq!(failed.partial_length as usize, stored.content.len(), "Failed counts the stored partial");

    cluster.upstream.push(Reply::chunks(["back"]));
    let mut next = send(&cluster, B, &chat.id, "again").await.expect("the chat takes the next message on B");
    let events = terminal_within(&mut next, Duration::from_secs(20)).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "{events:?}");
    let requests = cluster.upstream.requests();
    let prompt = &requests.last().expect("request").body["messages"];
    // [system "A bard.", user "go", the interrupted reply, user "again"]
    assert_eq!(prompt[2]["content"].as_str(), Some(stored.content.as_str()), "the partial is in the history");
}

/// kill -9 of A right after its reply started, on A's first send: a fresh
/// replica builds its first prompt slowly (over a second in a debug build),
/// so with a 1 s lease the chat's claim outlasts its lease before the reply
/// is published, and a sweep may look at it in that gap. The reply must
/// still be swept once A is gone: stored as interrupted, its watcher told.
/// (The lease is 1 s rather than the other tests' 2 s to make that gap
/// certain rather than a matter of machine load.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_killed_right_after_a_slow_start_is_still_swept() {
    let mut cluster = Cluster::start_with_lease("1s", &[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    let (reply, expected) = slow_reply(80, 50);
    cluster.upstream.push(reply);

    let mut watch = subscribe(&cluster, B, &chat.id, None).await.expect("watch on B");
    let sent_at = Instant::now();
    let mut caller = send(&cluster, A, &chat.id, "go").await.expect("send on A");
    let first = within(20, "Started", caller.message()).await.expect("ok").expect("open").event.expect("set");
    assert!(matches!(first, Event::Started(_)), "{first:?}");
    let start_took = sent_at.elapsed();
    within(10, "kill -9 A", cluster.replicas[A].child.kill()).await.expect("kill -9 A");
    let killed_at = Instant::now();
    drop(caller);
    println!("A took {start_took:?} to start its first reply");

    let (stored, tail) = swept(&cluster, &mut watch, &chat.id, killed_at).await;
    let Event::Failed(failed) = terminal(&tail) else {
        panic!("the watcher on B gets Failed(INTERRUPTED), got {:?}", terminal(&tail))
    };
    assert_eq!(failed.code(), pb::FailureCode::Interrupted, "{failed:?}");
    assert!(expected.starts_with(&stored.content), "the stored text is a prefix of the reply: {:?}", stored.content);

    cluster.upstream.push(Reply::chunks(["back"]));
    let mut next = send(&cluster, B, &chat.id, "again").await.expect("the chat takes the next message on B");
    let events = terminal_within(&mut next, Duration::from_secs(20)).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "{events:?}");
}

/// A start slower than the chat's lease: A claims the chat, then its rows
/// wait (the messages table is locked), then A freezes, so its lease lapses
/// and B sweeps the reply before any row of it exists. B's sweep fences the
/// chat first; when A wakes and its insert goes through, nothing may land:
/// the send fails ABORTED, the chat has no message, and it takes the next
/// one on B. (Before the fence covered a start's rows, A stored the pair as
/// streaming after the sweep had ended the reply, a row no one would end.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_outlives_its_lease_stores_nothing_once_swept() {
    let cluster = Cluster::start_with_lease("1s", &[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    warm_up(&cluster, A).await;
    let mut locker = lock_messages(&cluster).await;

    cluster.upstream.push(Reply::chunks(["never ", "sent"]));
    let sender = cluster.user(A);
    let chat_id = chat.id.clone();
    let sending = tokio::spawn(async move { sender.send(&chat_id, "go").await });
    within(10, "A's insert waits for the lock", async {
        while waiting_for_messages(&mut locker).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let pid_a = cluster.pid(A);
    signal(&pid_a, "STOP").await;

    // A's claim put the reply in the live set; B's sweep, once the lease
    // lapsed, ends it and takes it out (the lease itself just expires).
    let mut redis = redis_of(&cluster).await;
    assert!(live_in(&mut redis, &chat.id).await, "A's reply is in the live set while its start waits");
    within(15, "B sweeps A's reply", async {
        while live_in(&mut redis, &chat.id).await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    locker.batch_execute("COMMIT").await.expect("unlock messages");
    signal(&pid_a, "CONT").await;
    let sent = within(20, "A's send answers", sending).await.expect("send task");
    let status = sent.expect_err("A's send fails: its start was swept");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert!(status.message().contains("another server took this chat over"), "{status:?}");
    assert!(messages_of(&cluster, B, &chat.id).await.is_empty(), "nothing of the swept start is stored");

    cluster.upstream.push(Reply::chunks(["next"]));
    let mut next = send(&cluster, B, &chat.id, "again").await.expect("the chat takes the next message on B");
    let events = terminal_within(&mut next, Duration::from_secs(20)).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "{events:?}");
    assert_eq!(messages_of(&cluster, A, &chat.id).await.len(), 2, "again, and its reply");
}

/// A sweep that waits on the database must not hold up renewing the
/// sweeper's own leases. B runs a reply of its own that is quiet (its
/// provider sends nothing yet, so no text renews its lease on the way); A
/// stops mid-reply; B's sweep claims A's reply and then waits for the
/// messages table, locked by the test, for more than two leases.
/// Throughout, the lease of B's own reply must hold, and cancelling it
/// afterwards ends it as cancelled, not interrupted. (The sweep and the
/// renewals shared one loop: B's own lease lapsed, and another replica would
/// have taken over a reply that was running fine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_waiting_on_the_database_does_not_stop_the_sweeper_renewing_its_own_leases() {
    let cluster = Cluster::start_with_lease("2s", &[]).await;
    let own = open_chat(&cluster.channel(B)).await;
    let theirs = open_chat(&cluster.channel(A)).await;
    warm_up(&cluster, A).await;
    warm_up(&cluster, B).await;
    // B is the one replica left to sweep.
    let pid_c = cluster.pid(C);
    signal(&pid_c, "STOP").await;

    cluster.upstream.push(Reply::Hang);
    let mut own_stream = send(&cluster, B, &own.id, "mine").await.expect("send on B");
    let own_started = within(10, "B's reply starts", own_stream.message()).await.expect("stream ok");
    assert!(matches!(own_started.and_then(|e| e.event), Some(Event::Started(_))), "B's reply started");
    let (their_reply, _) = slow_reply(300, 50);
    cluster.upstream.push(their_reply);
    let mut their_stream = send(&cluster, A, &theirs.id, "theirs").await.expect("send on A");
    read_text(&mut their_stream, 20).await;

    let mut locker = lock_messages(&cluster).await;
    let pid_a = cluster.pid(A);
    signal(&pid_a, "STOP").await;

    let mut redis = redis_of(&cluster).await;
    within(15, "B's sweep claims A's reply", async {
        loop {
            let holder: Option<String> =
                redis::cmd("GET").arg(lease_key(&theirs.id)).query_async(&mut redis).await.expect("GET");
            if holder.is_some_and(|holder| holder.contains("|sweep|")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // The sweep now waits for the lock; two and a half leases pass.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let ttl: i64 = redis::cmd("PTTL").arg(lease_key(&own.id)).query_async(&mut redis).await.expect("PTTL");
        assert!(ttl > 0, "B's own reply lost its lease while B's sweep waited (PTTL {ttl})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    locker.batch_execute("COMMIT").await.expect("unlock messages");
    cancel(&cluster, B, &own.id, None).await.expect("cancel B's own reply");
    let events = terminal_within(&mut own_stream, Duration::from_secs(30)).await;
    assert!(matches!(terminal(&events), Event::Cancelled(_)), "B's own reply ends as cancelled: {events:?}");
    let stored = messages_of(&cluster, B, &own.id).await;
    assert_eq!(stored.last().map(pb::Message::status), Some(pb::MessageStatus::Cancelled), "{stored:?}");
    signal(&pid_c, "CONT").await;
}

/// The Redis key of a chat's lease (its value names the holder).
fn lease_key(chat_id: &str) -> String {
    format!("rp:chat:{chat_id}:lease")
}

/// A connection to the cluster's Redis, for reading its keys.
async fn redis_of(cluster: &Cluster) -> redis::aio::MultiplexedConnection {
    redis::Client::open(cluster.redis.url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

/// A transaction holding the messages table against writes (reads go on)
/// until the test sends `COMMIT` on it.
async fn lock_messages(cluster: &Cluster) -> AsyncPgConnection {
    let mut locker = within(10, "connect", AsyncPgConnection::establish(&cluster.db.url)).await.expect("connect");
    locker.batch_execute("BEGIN; LOCK TABLE messages IN EXCLUSIVE MODE").await.expect("lock messages");
    locker
}

/// Whether the live set (the replies the sweep checks) holds one of the chat.
async fn live_in(redis: &mut redis::aio::MultiplexedConnection, chat_id: &str) -> bool {
    let members: Vec<String> =
        redis::cmd("ZRANGE").arg("rp:live").arg(0).arg(-1).query_async(redis).await.expect("ZRANGE rp:live");
    members.iter().any(|member| member.strip_prefix(chat_id).is_some_and(|rest| rest.starts_with('|')))
}

/// How many lock requests on the messages table are waiting.
async fn waiting_for_messages(conn: &mut AsyncPgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = "SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted AND relation = 'messages'::regclass";
    let rows: Vec<Waiting> = diesel_async::RunQueryDsl::load(diesel::sql_query(query), conn).await.expect("pg_locks");
    rows.first().map_or(0, |row| row.n)
}

/// SIGSTOP of the replica generating a reply: once its lease lapses another
/// replica marks the reply interrupted and the chat takes a new message on
/// B. When A wakes up (SIGCONT) it must change nothing: no event reaches
/// watchers, no upstream request is made, the stored messages stay as they
/// are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_changes_nothing_when_it_wakes() {
    let cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    warm_up(&cluster, A).await;
    let (reply, expected) = slow_reply(60, 50);
    cluster.upstream.push(reply);

    let mut watch = subscribe(&cluster, B, &chat.id, None).await.expect("watch on B");
    let caller = send(&cluster, A, &chat.id, "go").await.expect("send on A");
    let mut watched = read_text(&mut watch, 40).await;
    assert!(!watched.iter().any(is_terminal), "the reply is still running: {watched:?}");
    let old_stream = started(&watched).stream_id.clone();

    let pid_a = cluster.pid(A);
    signal(&pid_a, "STOP").await;
    let stopped_at = Instant::now();
    drop(caller);

    let (interrupted, tail) = swept(&cluster, &mut watch, &chat.id, stopped_at).await;
    watched.extend(tail);
    let Event::Failed(failed) = terminal(&watched) else {
        panic!("the watcher on B gets Failed(INTERRUPTED), got {:?}", terminal(&watched))
    };
    assert_eq!(failed.code(), pb::FailureCode::Interrupted, "{failed:?}");
    assert!(expected.starts_with(&interrupted.content), "a prefix of the reply: {:?}", interrupted.content);
    assert!(interrupted.content.starts_with(&reconstruct(&watched, 0, String::new())));

    // The chat is free: a new reply on B, followed by B's watch too.
    cluster.upstream.push(Reply::chunks(["fresh ", "reply"]));
    let mut next = send(&cluster, B, &chat.id, "next").await.expect("the chat takes a new message on B");
    let next_events = terminal_within(&mut next, Duration::from_secs(20)).await;
    let Event::Completed(done) = terminal(&next_events) else { panic!("Completed, got {:?}", terminal(&next_events)) };
    assert_eq!(done.message.as_ref().expect("message").content, "fresh reply");
    let new_stream = started(&next_events).stream_id.clone();
    let followed = terminal_within(&mut watch, Duration::from_secs(10)).await;
    assert_eq!(started(&followed).stream_id, new_stream);
    assert_eq!(reconstruct(&followed, 0, String::new()), "fresh reply");

    let before_wake = messages_of(&cluster, B, &chat.id).await;
    assert_eq!(before_wake.len(), 4, "go, the interrupted reply, next, the new reply: {before_wake:#?}");
    assert_eq!(before_wake[1], interrupted, "the interrupted reply is as the sweep left it");
    assert_eq!(
        (before_wake[3].status(), before_wake[3].content.as_str()),
        (pb::MessageStatus::Completed, "fresh reply")
    );
    let requests_before_wake = cluster.upstream.requests().len();

    signal(&pid_a, "CONT").await;
    // A reads what the upstream sent while it slept and finds its lease gone.
    let quiet_until = Instant::now() + Duration::from_secs(5);
    let mut after_wake = Vec::new();
    loop {
        match tokio::time::timeout_at(quiet_until, watch.message()).await {
            Err(_) => break,
            Ok(Ok(Some(event))) => after_wake.push(event.event.expect("event set")),
            Ok(Ok(None)) => panic!("B's watch ended after A woke up; received {after_wake:?}"),
            Ok(Err(status)) => panic!("B's watch failed after A woke up: {status:?}; received {after_wake:?}"),
        }
    }
    assert!(
        after_wake.iter().all(|e| matches!(e, Event::Heartbeat(_))),
        "A woke up and reached watchers of {old_stream}: {after_wake:?}"
    );
    assert_eq!(cluster.upstream.requests().len(), requests_before_wake, "A made no upstream request on waking");
    let after = messages_of(&cluster, B, &chat.id).await;
    assert_eq!(after, before_wake, "A changed the stored messages after waking up");
}

/// Redis killed mid-reply: new sends are UNAVAILABLE on every replica, the
/// reply running on A still finishes and is stored, a watcher on B ends with
/// UNAVAILABLE. With Redis back (empty, same port) B's watcher resumes and
/// gets exactly the rest, and sends work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_refuses_new_replies_and_loses_nothing() {
    let mut cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    let other = cluster.user(A).open_chat("Bex").await;
    let (reply, expected) = slow_reply(60, 50);
    cluster.upstream.push(reply);

    let mut watch = subscribe(&cluster, B, &chat.id, None).await.expect("watch on B");
    let mut caller = send(&cluster, A, &chat.id, "go").await.expect("send on A");
    let mut watched = read_text(&mut watch, 40).await;
    assert!(!watched.iter().any(is_terminal), "the reply is still running: {watched:?}");
    let stream_id = started(&watched).stream_id.clone();
    // The sender stays connected to A, reading.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = caller.message().await {} });

    cluster.redis.kill().await;

    for replica in [A, B, C] {
        match send(&cluster, replica, &other.id, "while Redis is down").await {
            Ok(_) => panic!("replica {replica} accepted a send while Redis was down"),
            Err(err) => assert_eq!(err.code(), Code::Unavailable, "replica {replica}: {err:?}"),
        }
    }

    let (rest, status) = until_end(&mut watch, SWEEP_BOUND).await;
    watched.extend(rest);
    assert!(
        !watched.iter().any(is_terminal),
        "B lost Redis before the reply ended: its watch should end with UNAVAILABLE, not {:?}",
        terminal(&watched)
    );
    let status = status.expect("B's watch ends with an error status, not a clean end");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let have = reconstruct(&watched, 0, String::new());
    assert!(expected.starts_with(&have));

    // The reply on A finishes regardless (~3 s of upstream) and is stored.
    let stored = settled_reply(&cluster, B, &chat.id, Duration::from_secs(15)).await;
    assert_eq!(
        (stored.status(), stored.content.as_str()),
        (pb::MessageStatus::Completed, expected.as_str()),
        "the reply on A finished and was stored whole"
    );
    drain.abort();

    cluster.redis.restart().await;

    // B's watcher resumes where it was: the rest from the stored message.
    let mut resumed = retrying(
        Code::Unavailable,
        Duration::from_secs(15),
        Duration::from_millis(200),
        "resume on B after Redis came back",
        || subscribe(&cluster, B, &chat.id, Some((&stream_id, have.len()))),
    )
    .await;
    let rest = terminal_within(&mut resumed, Duration::from_secs(20)).await;
    assert_eq!(started(&rest).stream_id, stream_id);
    assert_eq!(reconstruct(&rest, have.len(), have.clone()), expected, "nothing lost or repeated");
    assert!(matches!(terminal(&rest), Event::Completed(_)), "{rest:?}");
    drop(resumed);

    // New sends work again on every replica.
    for replica in [A, B, C] {
        let what = format!("send on replica {replica} after Redis came back");
        let mut stream =
            retrying(Code::Unavailable, Duration::from_secs(15), Duration::from_millis(200), &what, || {
                send(&cluster, replica, &other.id, "Redis is back")
            })
            .await;
        let events = terminal_within(&mut stream, Duration::from_secs(20)).await;
        assert!(matches!(terminal(&events), Event::Completed(_)), "replica {replica}: {events:?}");
    }
    assert_eq!(cluster.upstream.requests().len(), 4, "the refused sends reached no upstream");
    let still = messages_of(&cluster, C, &chat.id).await.pop().expect("reply");
    assert_eq!(still, stored, "the finished reply is left as it was");
}

/// CancelGeneration on C for a reply running on A: cancelled, every follower
/// gets Cancelled, the partial is stored as cancelled, the upstream request is
/// dropped and the chat is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_another_replica_stops_the_reply() {
    let cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    let (reply, expected) = slow_reply(200, 20);
    cluster.upstream.push(reply);

    let mut watch = subscribe(&cluster, B, &chat.id, None).await.expect("watch on B");
    let mut caller = send(&cluster, A, &chat.id, "hi").await.expect("send on A");
    let mut caller_events = read_text(&mut caller, 20).await;
    let stream_id = started(&caller_events).stream_id.clone();
    let mut watched = read_text(&mut watch, 20).await;
    assert!(!watched.iter().any(is_terminal), "the reply is still running: {watched:?}");

    let response = cancel(&cluster, C, &chat.id, Some(&stream_id)).await.expect("cancel on C");
    assert!(response.cancelled, "{response:?}");
    assert_eq!(response.stream_id, stream_id);

    caller_events.extend(terminal_within(&mut caller, Duration::from_secs(10)).await);
    let Event::Cancelled(cancelled) = terminal(&caller_events) else {
        panic!("the caller on A gets Cancelled, got {:?}", terminal(&caller_events))
    };
    assert_eq!(cancelled.reason(), pb::CancelReason::Requested);
    let partial = reconstruct(&caller_events, 0, String::new());
    assert_eq!(cancelled.partial_length as usize, partial.len());
    assert!(partial.len() < expected.len() && expected.starts_with(&partial), "cancelled mid-reply");

    watched.extend(terminal_within(&mut watch, Duration::from_secs(10)).await);
    assert!(matches!(terminal(&watched), Event::Cancelled(_)), "the watcher on B gets Cancelled: {watched:?}");
    assert_eq!(reconstruct(&watched, 0, String::new()), partial, "B saw the same partial");

    let stored = settled_reply(&cluster, B, &chat.id, Duration::from_secs(5)).await;
    assert_eq!((stored.status(), stored.content.as_str()), (pb::MessageStatus::Cancelled, partial.as_str()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while cluster.upstream.hung_up() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cluster.upstream.hung_up(), 1, "A dropped the upstream request");

    let again = cancel(&cluster, C, &chat.id, None).await.expect("no-op");
    assert!(!again.cancelled, "nothing is running any more: {again:?}");

    cluster.upstream.push(Reply::chunks(["after"]));
    let mut next = retrying(
        Code::Aborted,
        Duration::from_secs(3),
        Duration::from_millis(50),
        "the chat is free after the cancel",
        || send(&cluster, C, &chat.id, "next"),
    )
    .await;
    let events = terminal_within(&mut next, Duration::from_secs(20)).await;
    assert!(matches!(terminal(&events), Event::Completed(_)), "{events:?}");
}

/// With a short idle timeout, a reply on A whose sender left is not cancelled
/// while B watches it; a reply nobody watches anywhere still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_another_replica_keeps_a_reply_from_idling_out() {
    let cluster = Cluster::start(&[("ROLEPLAY_IDLE_TIMEOUT", "300ms")]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    let (reply, expected) = slow_reply(60, 50);
    cluster.upstream.push(reply);

    let mut caller = send(&cluster, A, &chat.id, "hi").await.expect("send on A");
    let head = read_text(&mut caller, 10).await;
    let stream_id = started(&head).stream_id.clone();
    let mut watch = subscribe(&cluster, B, &chat.id, None).await.expect("watch on B");
    // The catch-up, then live deltas: B is following.
    let mut watched = read_text(&mut watch, reconstruct(&head, 0, String::new()).len() + 30).await;
    assert!(!watched.iter().any(is_terminal), "the reply is still running: {watched:?}");
    drop(caller); // the sender leaves; only B watches

    watched.extend(terminal_within(&mut watch, Duration::from_secs(20)).await);
    assert_eq!(started(&watched).stream_id, stream_id);
    let Event::Completed(done) = terminal(&watched) else {
        panic!("the reply B watched ran to its end, got {:?}", terminal(&watched))
    };
    assert_eq!(done.message.as_ref().expect("message").content, expected);
    assert_eq!(reconstruct(&watched, 0, String::new()), expected);
    let stored = messages_of(&cluster, C, &chat.id).await.pop().expect("reply");
    assert_eq!((stored.status(), stored.content.as_str()), (pb::MessageStatus::Completed, expected.as_str()));
    assert_eq!(cluster.upstream.hung_up(), 0, "the upstream request was not dropped");
    drop(watch);

    // The control: nobody watches anywhere, and the idle timeout applies.
    let lonely = cluster.user(A).open_chat("Bex").await;
    let (reply, _) = slow_reply(200, 20);
    cluster.upstream.push(reply);
    let mut caller = send(&cluster, A, &lonely.id, "hi").await.expect("send on A");
    read_text(&mut caller, 10).await;
    drop(caller);
    let stored = settled_reply(&cluster, B, &lonely.id, Duration::from_secs(10)).await;
    assert_eq!(stored.status(), pb::MessageStatus::Cancelled, "a reply nobody watches idles out: {stored:?}");
    assert!(!stored.content.is_empty(), "the partial text is kept");
}

/// The send limits hold across replicas: a user's per-minute allowance and
/// running limit are counted in Redis, so spreading sends over A, B and C
/// gains nothing. A refusal is RESOURCE_EXHAUSTED with a RetryInfo and
/// stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_limits_hold_across_replicas() {
    let cluster = Cluster::start(&[
        ("ROLEPLAY_MESSAGES_PER_MINUTE_PER_USER", "3"),
        ("ROLEPLAY_MESSAGES_PER_MINUTE_PER_CHAT", "0"),
        ("ROLEPLAY_GENERATIONS_PER_USER", "2"),
    ])
    .await;
    let local = cluster.user(A);
    local.set_global_key().await;
    let chats = [local.open_chat("Aria").await, local.open_chat("Bea").await, local.open_chat("Cai").await];
    cluster.upstream.set_default(slow_reply(60, 50).0);

    // Two running replies, on A and B: the third, on C, is over the
    // user's running limit although C runs none.
    let mut first = send(&cluster, A, &chats[0].id, "one").await.expect("first on A");
    let mut second = send(&cluster, B, &chats[1].id, "two").await.expect("second on B");
    let over = send(&cluster, C, &chats[2].id, "three").await.expect_err("a third running reply");
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert!(over.message().contains("2 replies"), "{over:?}");
    assert!(!over.details().is_empty(), "a RetryInfo says when to retry");
    assert!(messages_of(&cluster, C, &chats[2].id).await.is_empty(), "a refusal stores nothing");

    // Once they end, a third send fits the running limit and uses up the
    // minute's allowance of three...
    terminal_within(&mut first, Duration::from_secs(20)).await;
    terminal_within(&mut second, Duration::from_secs(20)).await;
    let mut third = send(&cluster, C, &chats[2].id, "three").await.expect("third on C");
    terminal_within(&mut third, Duration::from_secs(20)).await;
    // ...so a fourth, on any replica, is refused until the allowance refills.
    for replica in [A, B, C] {
        let refused = send(&cluster, replica, &chats[0].id, "four").await.expect_err("over the minute's allowance");
        assert_eq!(refused.code(), Code::ResourceExhausted, "replica {replica}: {refused:?}");
        assert!(refused.message().contains("too many messages this minute"), "{refused:?}");
    }
    assert_eq!(cluster.upstream.requests().len(), 3, "refused sends reach no provider");
    let stored = messages_of(&cluster, A, &chats[0].id).await;
    assert!(stored.iter().all(|m| m.content != "four"), "a refused message is not stored: {stored:?}");
}

/// A client that moves to another replica resumes at the offset it just got
/// from the first, though that replica's copy of the reply trails by a few
/// milliseconds: the resume waits for the copy instead of refusing an
/// offset that is valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_at_the_newest_offset_on_another_replica_is_not_refused() {
    let cluster = Cluster::start(&[]).await;
    let chat = open_chat(&cluster.channel(A)).await;
    let (reply, expected) = slow_reply(60, 40);
    cluster.upstream.push(reply);

    let mut caller = send(&cluster, A, &chat.id, "hi").await.expect("send on A");
    let mut have = String::new();
    let mut stream_id = String::new();
    let mut resumes = 0;
    while resumes < 10 {
        let event = within(10, "a reply event on A", caller.message()).await.expect("stream").expect("event");
        match event.event.expect("event") {
            Event::Started(started) => stream_id = started.stream_id,
            Event::Delta(delta) => {
                assert_eq!(delta.offset as usize, have.len());
                have.push_str(&delta.text);
                // At once, on B, from exactly what A just sent.
                let mut moved = subscribe(&cluster, B, &chat.id, Some((&stream_id, have.len())))
                    .await
                    .unwrap_or_else(|status| panic!("resume on B at {} refused: {status:?}", have.len()));
                let next = read_text(&mut moved, 1).await;
                let first = next.iter().find_map(|e| if let Event::Delta(d) = e { Some(d.offset) } else { None });
                assert_eq!(first, Some(have.len() as u64), "B continues at the offset: {next:?}");
                resumes += 1;
            }
            other => panic!("the reply ended early: {other:?}"),
        }
    }
    let rest = terminal_within(&mut caller, Duration::from_secs(20)).await;
    assert_eq!(reconstruct(&rest, have.len(), have.clone()), expected);
}
