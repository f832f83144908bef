//! A reply cut short is not complete, however the provider's HTTP body was
//! framed. Each test runs the real server binary on a SQLite database of its
//! own against one framing of the provider's stream:
//!
//! - HTTP/1.1 chunked, by hyper (the axum fake upstream) and by hand (the
//!   zero chunk written, or the connection dropped in the middle of a chunk);
//! - HTTP/1.1 close-delimited (no Content-Length, no chunked encoding: the
//!   body ends when the socket closes), by hand;
//! - HTTP/2 over TLS (ALPN h2), the axum fake behind rustls, trusted by the
//!   server through `SSL_CERT_FILE`, with a stream reset (RST_STREAM)
//!   mid-reply.
//!
//! For each, through the gRPC interface: a body that ends with neither
//! `[DONE]` nor a `finish_reason` sends `Failed` ("the provider's stream
//! ended before the reply finished"), stores the partial text as FAILED and
//! leaves the chat free for the next message; a `finish_reason` and then the
//! end of the body, or `[DONE]`, completes. A broken connection or reset
//! stream mid-reply fails with the partial text stored. Every failure is
//! counted in `roleplay_replies_failed_total{code="upstream_error"}`.

mod common;

use std::{process::Stdio, time::Duration};

use common::{
    End, FakeUpstream, Reply, TestDb,
    fake_upstream::RecordedRequest,
    hand_framed_upstream::{Framing, HandFramedUpstream, HandReply},
    process::{self, Process},
    reconstruct, terminal, tls_upstream, until_terminal,
    users::As,
};
use roleplay_server::{
    api::pb::{self, generation_event::Event},
    provider::sse::TRUNCATED,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server binary, its chat, and its metrics port.
struct Harness {
    _db: TestDb,
    _dir: tempfile::TempDir,
    _server: Process,
    user: As,
    chat: pb::ChatSession,
    metrics_port: u16,
    sent: usize,
}

impl Harness {
    async fn start(base_url: &str, env: &[(&str, &str)]) -> Self {
        let db = TestDb::new(common::Db::Sqlite).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics_port = free_port();
        let listen = format!("127.0.0.1:{metrics_port}");
        let mut env = env.to_vec();
        env.push(("ROLEPLAY_METRICS_LISTEN", &listen));
        let server = process::spawn_at(&db, dir.path(), base_url, &env, Stdio::inherit()).await;
        let chat = process::open_chat(&server.channel).await;
        let user = As::new(server.channel.clone(), None);
        Self { _db: db, _dir: dir, _server: server, user, chat, metrics_port, sent: 0 }
    }

    async fn send(&mut self) -> Vec<Event> {
        self.sent += 1;
        let content = format!("message {}", self.sent);
        let mut stream = self.user.send(&self.chat.id, &content).await.expect("the chat takes the message");
        until_terminal(&mut stream).await
    }

    async fn last_reply(&self) -> pb::Message {
        let reply = self.user.messages_of(&self.chat.id).await.pop().expect("a reply");
        assert_eq!(reply.role(), pb::Role::Assistant);
        reply
    }

    /// Neither `[DONE]` nor a finish reason: failed, partial text kept.
    async fn expect_truncated(&mut self, partial: &str) {
        let events = self.send().await;
        let Event::Failed(failed) = terminal(&events) else { panic!("a truncated stream fails: {events:?}") };
        assert_eq!(failed.code(), pb::FailureCode::UpstreamError);
        assert!(failed.message.ends_with(TRUNCATED), "{}", failed.message);
        assert_eq!(failed.partial_length, partial.len() as u64);
        assert_eq!(reconstruct(&events, 0, String::new()), partial);
        let reply = self.last_reply().await;
        assert_eq!((reply.status(), reply.content.as_str()), (pb::MessageStatus::Failed, partial));
        assert!(reply.error.as_deref().is_some_and(|e| e.ends_with(TRUNCATED)), "{:?}", reply.error);
    }

    /// The connection broke or the stream was reset after some text.
    async fn expect_broken(&mut self, partial: &str) {
        let events = self.send().await;
        let Event::Failed(failed) = terminal(&events) else { panic!("a broken stream fails: {events:?}") };
        assert_eq!(failed.code(), pb::FailureCode::UpstreamError);
        assert!(failed.message.contains("connection to the provider broke"), "{}", failed.message);
        assert_eq!(failed.partial_length, partial.len() as u64);
        assert_eq!(reconstruct(&events, 0, String::new()), partial);
        let reply = self.last_reply().await;
        assert_eq!((reply.status(), reply.content.as_str()), (pb::MessageStatus::Failed, partial));
        assert!(reply.error.is_some());
    }

    async fn expect_completed(&mut self, text: &str, finish_reason: &str) {
        let events = self.send().await;
        let Event::Completed(done) = terminal(&events) else { panic!("completes: {events:?}") };
        assert_eq!(done.finish_reason, finish_reason);
        assert_eq!(done.message.as_ref().map(|m| m.content.as_str()), Some(text));
        assert_eq!(reconstruct(&events, 0, String::new()), text);
        let reply = self.last_reply().await;
        assert_eq!((reply.status(), reply.content.as_str()), (pb::MessageStatus::Completed, text));
    }

    /// Waits for `roleplay_replies_failed_total{code="upstream_error"}` to
    /// reach `expected`, then checks it is exactly that.
    async fn expect_failures_counted(&self, expected: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
                .await
                .expect("scrape")
                .text()
                .await
                .expect("metrics");
            let counted = failed_upstream_errors(&metrics);
            if counted >= expected || tokio::time::Instant::now() > deadline {
                assert_eq!(counted, expected, "{metrics}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

fn failed_upstream_errors(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("roleplay_replies_failed_total{") && line.contains("code=\"upstream_error\""))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn versions(requests: &[RecordedRequest]) -> Vec<axum::http::Version> {
    requests.iter().map(|r| r.version).collect()
}

/// The response head the axum fake gives a plain HTTP/1.1 request (the
/// default reply; it is recorded like any request).
async fn response_head(upstream: &FakeUpstream) -> String {
    let addr = upstream.base_url().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let request = format!(
        "POST /chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before the head");
        head.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_chunked_by_hyper() {
    let upstream = FakeUpstream::start().await;
    let mut harness = Harness::start(&upstream.base_url(), &[]).await;

    upstream.push(Reply::chunks(["cut ", "short"]).with_end(End::Truncated));
    harness.expect_truncated("cut short").await;
    upstream.push(Reply::chunks(["finished, ", "no done"]).with_end(End::NoDone));
    harness.expect_completed("finished, no done", "stop").await;
    // Hyper ends the connection between chunks, without the zero chunk.
    upstream.push(Reply::chunks(["dropped ", "mid-body"]).with_end(End::Cut));
    harness.expect_broken("dropped mid-body").await;
    upstream.push(Reply::chunks(["all ", "done"]));
    harness.expect_completed("all done", "stop").await;
    harness.expect_failures_counted(2.0).await;

    assert_eq!(versions(&upstream.requests()), [axum::http::Version::HTTP_11; 4], "one request per send, no retry");
    // What the server read was chunked.
    let head = response_head(&upstream).await;
    assert!(head.starts_with("http/1.1 200") && head.contains("transfer-encoding: chunked"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_chunked_by_hand() {
    let upstream = HandFramedUpstream::start().await;
    let mut harness = Harness::start(&upstream.base_url(), &[]).await;

    // The zero chunk comes after the text, with no finish reason.
    upstream.push(HandReply::new(Framing::Chunked, ["cut ", "short"], End::Truncated));
    harness.expect_truncated("cut short").await;
    upstream.push(HandReply::new(Framing::Chunked, ["finished, ", "no done"], End::NoDone));
    harness.expect_completed("finished, no done", "stop").await;
    // A chunk of 0x100 bytes is announced; the connection closes after 27.
    upstream.push(HandReply::new(Framing::Chunked, ["dropped ", "mid-chunk"], End::Cut));
    harness.expect_broken("dropped mid-chunk").await;
    upstream.push(HandReply::new(Framing::Chunked, ["all ", "done"], End::Done));
    harness.expect_completed("all done", "stop").await;
    harness.expect_failures_counted(2.0).await;

    let requests = upstream.requests();
    assert_eq!(requests.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(), ["HTTP/1.1"; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_close_delimited() {
    let upstream = HandFramedUpstream::start().await;
    let mut harness = Harness::start(&upstream.base_url(), &[]).await;

    upstream.push(HandReply::new(Framing::CloseDelimited, ["cut ", "short"], End::Truncated));
    harness.expect_truncated("cut short").await;
    upstream.push(HandReply::new(Framing::CloseDelimited, ["finished, ", "no done"], End::NoDone));
    harness.expect_completed("finished, no done", "stop").await;
    upstream.push(HandReply::new(Framing::CloseDelimited, ["all ", "done"], End::Done));
    harness.expect_completed("all done", "stop").await;
    // Closed in the middle of an event: with this framing that is just the
    // end of the body. The half event is dropped; the reply was cut short.
    upstream.push(HandReply::new(Framing::CloseDelimited, ["dropped ", "mid-event"], End::Cut));
    harness.expect_truncated("dropped mid-event").await;
    upstream.push(HandReply::new(Framing::CloseDelimited, ["free ", "again"], End::Done));
    harness.expect_completed("free again", "stop").await;
    harness.expect_failures_counted(2.0).await;

    let requests = upstream.requests();
    assert_eq!(requests.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(), ["HTTP/1.1"; 5]);
    assert_eq!(requests[4].body["stream"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls() {
    let upstream = tls_upstream::start().await;
    assert!(upstream.base_url().starts_with("https://127.0.0.1:"));
    let mut harness = Harness::start(&upstream.base_url(), &[("SSL_CERT_FILE", tls_upstream::CA_FILE)]).await;

    upstream.push(Reply::chunks(["cut ", "short"]).with_end(End::Truncated));
    harness.expect_truncated("cut short").await;
    upstream.push(Reply::chunks(["finished, ", "no done"]).with_end(End::NoDone));
    harness.expect_completed("finished, no done", "stop").await;
    // The body errors: hyper resets the stream (RST_STREAM, INTERNAL_ERROR)
    // and keeps the connection.
    upstream.push(Reply::chunks(["reset ", "mid-reply"]).with_end(End::Cut));
    harness.expect_broken("reset mid-reply").await;
    upstream.push(Reply::chunks(["all ", "done"]));
    harness.expect_completed("all done", "stop").await;
    harness.expect_failures_counted(2.0).await;

    assert_eq!(versions(&upstream.requests()), [axum::http::Version::HTTP_2; 4], "HTTP/2 over TLS, no retry");
    assert_eq!(stream_error_of_a_cut(&upstream).await, "stream error received: unexpected internal error encountered");
}

/// What a client of the test's own sees when the TLS fake cuts a reply: the
/// innermost error, which tells a reset stream (RST_STREAM) from a closed
/// connection.
async fn stream_error_of_a_cut(upstream: &FakeUpstream) -> String {
    let ca = std::fs::read(tls_upstream::CA_FILE).expect("test CA");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("test CA")])
        .build()
        .expect("client");
    upstream.push(Reply::chunks(["reset"]).with_end(End::Cut));
    let mut response = client
        .post(format!("{}/chat/completions", upstream.base_url()))
        .body("{}")
        .send()
        .await
        .expect("response head");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(5), response.chunk()).await.expect("the cut in time") {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the body ended cleanly"),
            Err(err) => break err,
        }
    };
    let mut source: &dyn std::error::Error = &err;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
