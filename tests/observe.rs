//! Metrics and health through the real binary (one process, so its counts are
//! its own): a scripted conversation (a completed, a failed and a cancelled
//! reply, and a resume) is scraped from `/metrics` and checked exactly;
//! `/healthz` and `/readyz` answer, readiness turns off while draining, and
//! gRPC health and readiness follow the database out and back.

mod common;

use std::time::Duration;

use common::{Db, FakeUpstream, Reply, TestDb, collect, process, tcp_proxy::TcpProxy, until_terminal};
use roleplay_server::api::pb::{self, generation_event::Event, message_service_client::MessageServiceClient};
use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};

/// The sum of a metric's samples whose labels include all of `labels`.
fn value(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, sample) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name).then_some((label_text, sample))
        })
        .filter(|(label_text, _)| labels.iter().all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|(_, sample)| sample.parse::<f64>().ok())
        .sum()
}

async fn get(port: u16, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.expect("get");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_conversation_is_counted_exactly() {
    let db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = FakeUpstream::start().await;
    let admin = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{admin}");
    let mut server = process::spawn_with(&db, dir.path(), &upstream, &[("ROLEPLAY_METRICS_LISTEN", &listen)]).await;
    let chat = process::open_chat(&server.channel).await;
    let mut messages = MessageServiceClient::new(server.channel.clone());
    let send = |content: &str| pb::AddUserMessageRequest { chat_session_id: chat.id.clone(), content: content.into() };

    // Completed.
    upstream.push(Reply::chunks(["The secret ", "words."]));
    let done =
        collect(&mut messages.add_user_message_streaming(send("private text one")).await.expect("send").into_inner())
            .await;
    let Some(Event::Started(started)) = done.first() else { panic!("started") };
    // Failed before any text.
    upstream.push(Reply::status(400, "bad request"));
    collect(&mut messages.add_user_message_streaming(send("private text two")).await.expect("send").into_inner()).await;
    // Cancelled after its first text.
    upstream.push(Reply::slow(["slow ", "reply ", "that ", "goes ", "on"], Duration::from_millis(300)));
    let mut slow = messages.add_user_message_streaming(send("private text three")).await.expect("send").into_inner();
    loop {
        let event = slow.message().await.expect("event").expect("open").event.expect("set");
        if matches!(event, Event::Delta(_)) {
            break;
        }
    }
    let cancel = pb::CancelGenerationRequest { chat_session_id: chat.id.clone(), stream_id: None };
    messages.cancel_generation(cancel).await.expect("cancel");
    until_terminal(&mut slow).await;
    // A resume of the completed reply.
    let resume = pb::ResumePosition { stream_id: started.stream_id.clone(), offset: 4 };
    let request = pb::SubscribeChatSessionRequest { chat_session_id: chat.id.clone(), resume: Some(resume) };
    let mut resumed = messages.subscribe_chat_session(request).await.expect("resume").into_inner();
    until_terminal(&mut resumed).await;
    drop(resumed);

    // A streaming call is counted when it ends: the subscription above ends
    // CANCELLED once the server sees the client hang up.
    let watch = [("method", "SubscribeChatSession"), ("code", "1")];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (status, metrics) = get(admin, "/metrics").await;
        assert_eq!(status, 200);
        if value(&metrics, "roleplay_grpc_requests_total", &watch) >= 1.0 {
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "the dropped subscription was not counted: {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value(&metrics, "roleplay_replies_started_total", &[]), 3.0, "{metrics}");
    assert_eq!(value(&metrics, "roleplay_replies_ended_total", &[("outcome", "completed")]), 1.0);
    assert_eq!(value(&metrics, "roleplay_replies_ended_total", &[("outcome", "failed")]), 1.0);
    assert_eq!(value(&metrics, "roleplay_replies_ended_total", &[("outcome", "cancelled")]), 1.0);
    assert_eq!(value(&metrics, "roleplay_replies_failed_total", &[("code", "upstream_error")]), 1.0);
    assert_eq!(value(&metrics, "roleplay_replies_cancelled_total", &[("reason", "requested")]), 1.0);
    assert_eq!(value(&metrics, "roleplay_reply_ttft_ms_count", &[]), 2.0, "the two replies that had text");
    assert_eq!(value(&metrics, "roleplay_reply_duration_seconds_count", &[]), 3.0);
    assert_eq!(value(&metrics, "roleplay_completion_tokens_total", &[]), 2.0, "the fake reports a token per chunk");
    assert_eq!(value(&metrics, "roleplay_replies_running", &[]), 0.0);
    let sends = [("service", "roleplay.v1.MessageService"), ("method", "AddUserMessageStreaming"), ("code", "0")];
    assert_eq!(value(&metrics, "roleplay_grpc_requests_total", &sends), 3.0);
    assert_eq!(value(&metrics, "roleplay_grpc_requests_total", &watch), 1.0);
    let watches = [("method", "SubscribeChatSession")];
    assert_eq!(value(&metrics, "roleplay_grpc_requests_total", &watches), 1.0, "counted once, at its end");
    assert_eq!(value(&metrics, "roleplay_grpc_unary_ms_count", &[("method", "CancelGeneration")]), 1.0);
    assert_eq!(value(&metrics, "roleplay_provider_responses_total", &[("status", "400")]), 1.0);
    assert_eq!(value(&metrics, "roleplay_provider_responses_total", &[("status", "200")]), 2.0);
    for text in ["private text", "secret", &chat.id, &started.stream_id] {
        assert!(!metrics.contains(text), "no text or ids in labels: {text}");
    }

    assert_eq!(get(admin, "/healthz").await.0, 200);
    assert_eq!(get(admin, "/readyz").await, (200, "ready\n".into()));
    assert_eq!(get(server.port, "/readyz").await.0, 200, "also on the main port");

    // Draining: a reply that never ends holds the server in its grace period.
    upstream.push(Reply::Hang);
    let mut hung = messages.add_user_message_streaming(send("wait")).await.expect("send").into_inner();
    hung.message().await.expect("started").expect("open");
    let pid = server.child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
    assert!(killed.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(admin, "/readyz").await;
        if status == 503 {
            assert!(body.contains("draining"), "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "readiness did not turn off while draining");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = server.child.kill().await;
}

const MESSAGE_SERVICE: &str = "roleplay.v1.MessageService";

/// What gRPC health says of `service` (the empty name: the server as a
/// whole).
async fn grpc_health(channel: &tonic::transport::Channel, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(channel.clone());
    let request = tonic_health::pb::HealthCheckRequest { service: service.into() };
    match health.check(request).await {
        Ok(answer) => answer.into_inner().status(),
        Err(status) => panic!("health did not answer: {status}"),
    }
}

/// Waits until gRPC health and `/readyz` both say `serving`, or panics.
async fn until_health(server: &process::Process, admin: u16, serving: bool) {
    let (want_status, want_http) =
        if serving { (ServingStatus::Serving, 200) } else { (ServingStatus::NotServing, 503) };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = grpc_health(&server.channel, MESSAGE_SERVICE).await;
        let (http, body) = get(admin, "/readyz").await;
        if status == want_status && http == want_http {
            if !serving {
                assert!(body.contains("database"), "readiness names the database: {body}");
            }
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "health stayed {status:?} / {http} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// From the start: until the tokenizer is loaded (seconds in a debug
/// build), `/readyz` says so and gRPC health, the server's as a whole too,
/// is NOT_SERVING; then both say serving.
async fn until_loaded(server: &process::Process, admin: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // gRPC first: it turns SERVING only after the load, so a `/readyz`
        // that still waits for the load means it was not SERVING then.
        let (status, message_service) =
            (grpc_health(&server.channel, "").await, grpc_health(&server.channel, MESSAGE_SERVICE).await);
        let (http, body) = get(admin, "/readyz").await;
        if http == 200 {
            break;
        }
        assert!(body.contains("tokenizer"), "only the load keeps a fresh server unready: {body}");
        assert_eq!((status, message_service), (ServingStatus::NotServing, ServingStatus::NotServing));
        assert!(tokio::time::Instant::now() < deadline, "the tokenizer did not load");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(grpc_health(&server.channel, "").await, ServingStatus::Serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_database_out_and_back() {
    let db = TestDb::new(Db::Postgres).await;
    // The server reaches PostgreSQL through a forwarder the test can cut.
    let mut url = reqwest::Url::parse(&db.url).expect("database url");
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let target = tokio::net::lookup_host((host.as_str(), url.port().unwrap_or(5432)))
        .await
        .expect("resolve the database")
        .next()
        .expect("an address");
    let mut proxy = TcpProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(proxy.addr.port())).expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = FakeUpstream::start().await;
    let admin = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let (listen, url) = (format!("127.0.0.1:{admin}"), url.to_string());
    let mut server = process::spawn_with(
        &db,
        dir.path(),
        &upstream,
        &[("ROLEPLAY_METRICS_LISTEN", &listen), ("DATABASE_URL", &url)],
    )
    .await;
    until_loaded(&server, admin).await;
    until_health(&server, admin, true).await;

    proxy.cut();
    until_health(&server, admin, false).await;
    assert_eq!(get(admin, "/healthz").await.0, 200, "the process itself is alive");

    proxy.restore().await;
    until_health(&server, admin, true).await;
    let _ = server.child.kill().await;
}
