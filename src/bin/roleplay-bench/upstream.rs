//! The bench's fast fake provider: OpenAI-style SSE whose shape comes from
//! the requested model name, `bench:<chunks>:<chunk bytes>:<interval ms>`,
//! so every generation can ask for its own load.

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    http::header,
    response::Response,
    routing::post,
    serve::ListenerExt,
};
use futures_util::stream;
use tokio::time::{Interval, MissedTickBehavior};

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub chunks: usize,
    pub chunk_bytes: usize,
    pub interval: Duration,
}

impl Shape {
    pub fn model(&self) -> String {
        format!("bench:{}:{}:{}", self.chunks, self.chunk_bytes, self.interval.as_millis())
    }

    fn parse(model: &str) -> Self {
        let mut parts = model.strip_prefix("bench:").unwrap_or("20:16:0").split(':').map(|p| p.parse().unwrap_or(0));
        let chunks = parts.next().unwrap_or(20) as usize;
        let chunk_bytes = parts.next().unwrap_or(16).max(1) as usize;
        let interval = Duration::from_millis(parts.next().unwrap_or(0));
        Self { chunks, chunk_bytes, interval }
    }
}

pub async fn start() -> SocketAddr {
    serve(Text::Repeated).await
}

/// The same provider with numbered chunks (see [`chunk_text`]), so a
/// client's copy of a reply can be checked byte for byte.
pub async fn start_numbered() -> SocketAddr {
    serve(Text::Numbered).await
}

/// What a reply's chunks hold.
#[derive(Debug, Clone, Copy)]
enum Text {
    /// One chunk of `x`s repeated, encoded once per reply.
    Repeated,
    /// Chunk i is [`chunk_text`]`(i)`.
    Numbered,
}

/// Chunk `index` of a numbered reply: `index` in decimal, zero-padded, then
/// `|`, `chunk_bytes` bytes in all.
pub fn chunk_text(index: usize, chunk_bytes: usize) -> String {
    format!("{index:0>width$}|", width = chunk_bytes.saturating_sub(1))
}

/// The whole text of a numbered reply of `shape`.
pub fn reply_text(shape: Shape) -> String {
    (0..shape.chunks).map(|i| chunk_text(i, shape.chunk_bytes)).collect()
}

fn sse_chunk(text: &str) -> Bytes {
    Bytes::from(format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"))
}

async fn serve(text: Text) -> SocketAddr {
    let app = Router::new().route("/chat/completions", post(move |body| completions(body, text)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    // Without TCP_NODELAY a reply's first chunk can wait for the client's
    // delayed ACK of the previous reply's end on a reused connection (40 ms).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct State {
    shape: Shape,
    sent: usize,
    ticks: Option<Interval>,
    text: Text,
    /// The repeated chunk, encoded once.
    chunk: Bytes,
    done: bool,
}

async fn completions(body: Bytes, text: Text) -> Response {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let shape = Shape::parse(body["model"].as_str().unwrap_or_default());
    let chunk = sse_chunk(&"x".repeat(shape.chunk_bytes));
    let ticks = (!shape.interval.is_zero()).then(|| {
        let mut ticks = tokio::time::interval(shape.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    });
    let state = State { shape, sent: 0, ticks, text, chunk, done: false };
    let body = stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        if state.sent == state.shape.chunks {
            state.done = true;
            let tail = format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":10,\"completion_tokens\":{},\"total_tokens\":{}}}}}\n\ndata: [DONE]\n\n",
                state.shape.chunks,
                state.shape.chunks + 10
            );
            return Some((Ok::<_, Infallible>(Bytes::from(tail)), state));
        }
        if let Some(ticks) = state.ticks.as_mut() {
            ticks.tick().await;
        }
        let chunk = match state.text {
            Text::Repeated => state.chunk.clone(),
            Text::Numbered => sse_chunk(&chunk_text(state.sent, state.shape.chunk_bytes)),
        };
        state.sent += 1;
        Some((Ok(chunk), state))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(body))
        .expect("response")
}
