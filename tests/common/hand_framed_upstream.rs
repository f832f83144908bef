//! HAND-FRAMED HTTP/1.1 FAKE UPSTREAM FOR TESTS: a raw tokio TcpListener on
//! loopback that writes its responses byte by byte, for the framings
//! axum/hyper never produce: a close-delimited body (neither Content-Length
//! nor chunked, `Connection: close`: the body ends when the socket closes)
//! and a chunked body dropped in the middle of a chunk. The SSE events are
//! those of [`FakeUpstream`](super::FakeUpstream) (`sse_pieces`).
//!
//! `POST /chat/completions` takes the next scripted [`HandReply`] (recorded
//! like the axum fake's requests); `GET /models` gets a 503. Every response
//! says `Connection: close` and the socket is closed after it.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::fake_upstream::{End, sse_pieces};

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No Content-Length, no Transfer-Encoding: the body is what comes
    /// until the server closes the connection.
    CloseDelimited,
    /// `Transfer-Encoding: chunked`, one chunk per SSE piece, written by hand.
    Chunked,
}

#[derive(Debug, Clone)]
pub struct HandReply {
    pub framing: Framing,
    pub chunks: Vec<String>,
    /// As for the axum fake: `Done`, `NoDone` and `Truncated` send those
    /// events and then end the body properly (the zero chunk when chunked)
    /// and close. `Cut` ends in the middle of something: chunked, a chunk
    /// is announced and only part of it sent; close-delimited, half an SSE
    /// event is sent. Then the socket closes.
    pub end: End,
}

impl HandReply {
    pub fn new<S: Into<String>>(framing: Framing, chunks: impl IntoIterator<Item = S>, end: End) -> Self {
        Self { framing, chunks: chunks.into_iter().map(Into::into).collect(), end }
    }
}

/// A chat completion request as it arrived.
#[derive(Debug, Clone)]
pub struct HandRequest {
    /// From the request line: "HTTP/1.1".
    pub version: String,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<HandReply>>,
    requests: Mutex<Vec<HandRequest>>,
}

#[derive(Clone)]
pub struct HandFramedUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl HandFramedUpstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind hand-framed upstream");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let serving = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&serving)));
            }
        });
        Self { addr, shared }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, reply: HandReply) {
        lock(&self.shared.script).push_back(reply);
    }

    pub fn requests(&self) -> Vec<HandRequest> {
        lock(&self.shared.requests).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One connection: one request, one response, then close.
async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    let _ = socket.set_nodelay(true);
    // Read the whole request before answering: closing a socket with unread
    // input makes the kernel send RST, which may discard the response.
    let Some((request_line, body)) = read_request(&mut socket).await else { return };
    let mut parts = request_line.split(' ');
    let (method, path, version) = (parts.next(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if method != Some("POST") || !path.ends_with("/chat/completions") {
        let _ = socket
            .write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\nconnection: close\r\n\r\ncatalog down",
            )
            .await;
        return;
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    lock(&shared.requests).push(HandRequest { version: version.to_owned(), body });
    let Some(reply) = lock(&shared.script).pop_front() else {
        let _ = socket.write_all(b"HTTP/1.1 500 No Script\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        return;
    };
    // The server may hang up early (at `[DONE]`, say): write errors are its.
    let _ = write_reply(&mut socket, &reply).await;
    // Dropping the socket closes it: the end of a close-delimited body.
}

async fn write_reply(socket: &mut TcpStream, reply: &HandReply) -> std::io::Result<()> {
    let chunked = reply.framing == Framing::Chunked;
    let mut head = String::from("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n");
    if chunked {
        head.push_str("transfer-encoding: chunked\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    socket.write_all(head.as_bytes()).await?;
    for (piece, _) in sse_pieces(&reply.chunks, false, &reply.end) {
        if chunked {
            socket.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
            socket.write_all(&piece).await?;
            socket.write_all(b"\r\n").await?;
        } else {
            socket.write_all(&piece).await?;
        }
        socket.flush().await?;
        // Separate reads on the other side, as from a real provider.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if matches!(reply.end, End::Cut) {
        let half_event: &[u8] = b"data: {\"id\": \"gen-1\", \"choi";
        if chunked {
            // Announce 0x100 bytes, send a few of them.
            socket.write_all(b"100\r\n").await?;
        }
        socket.write_all(half_event).await?;
        socket.flush().await?;
        // Let the text before the cut reach the server's reader first.
        tokio::time::sleep(Duration::from_millis(100)).await;
    } else if chunked {
        socket.write_all(b"0\r\n\r\n").await?;
    }
    socket.shutdown().await
}

/// The request line and the body (by Content-Length), or None if the
/// connection ended first.
async fn read_request(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut read = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut read).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&read[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = socket.read(&mut read).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&read[..n]);
    }
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    Some((request_line, buffer[head_end..head_end + length].to_vec()))
}
