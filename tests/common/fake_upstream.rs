//! FAKE LLM PROVIDER FOR TESTS: an OpenAI/OpenRouter-compatible streaming
//! endpoint on a loopback port. Each request takes the next scripted
//! [`Reply`] (or the default one) and is recorded, so tests can assert the
//! exact body the server sent upstream and see when it hung up.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode, Version},
    response::{IntoResponse, Response},
    routing::post,
};
use futures_util::stream;
use serde_json::json;

/// How a stream ends.
#[derive(Debug, Clone)]
pub enum End {
    /// Usage chunk, then `data: [DONE]`.
    Done,
    /// As `Done`, with finish reason "length": the reply hit max_tokens.
    Length,
    /// Usage chunk, then the body just ends.
    NoDone,
    /// The connection breaks (no terminating chunk).
    Cut,
    /// The body ends cleanly after the text, with no finish reason, usage
    /// or `[DONE]`: a reply cut short by a closed connection.
    Truncated,
    /// An OpenRouter-style `error` object with HTTP status 200.
    Error(String),
}

#[derive(Debug, Clone)]
pub enum Reply {
    Stream {
        chunks: Vec<String>,
        /// Before each chunk.
        delay: Duration,
        /// Send the bytes in 3-byte writes, splitting events and UTF-8
        /// characters.
        split: bool,
        end: End,
    },
    Status {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// Accept the request, send headers, then never send a byte.
    Hang,
}

impl Reply {
    pub fn chunks<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Reply::Stream {
            chunks: chunks.into_iter().map(Into::into).collect(),
            delay: Duration::ZERO,
            split: false,
            end: End::Done,
        }
    }

    pub fn slow<S: Into<String>>(chunks: impl IntoIterator<Item = S>, delay: Duration) -> Self {
        Reply::Stream { chunks: chunks.into_iter().map(Into::into).collect(), delay, split: false, end: End::Done }
    }

    pub fn with_end(self, new_end: End) -> Self {
        match self {
            Reply::Stream { chunks, delay, split, .. } => Reply::Stream { chunks, delay, split, end: new_end },
            other => other,
        }
    }

    pub fn split(self) -> Self {
        match self {
            Reply::Stream { chunks, delay, end, .. } => Reply::Stream { chunks, delay, split: true, end },
            other => other,
        }
    }

    pub fn status(status: u16, message: &str) -> Self {
        Reply::Status { status, message: message.into(), retry_after: None }
    }
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub body: serde_json::Value,
    pub headers: HeaderMap,
    /// The HTTP version the request came in on (HTTP/2 over TLS with
    /// [`FakeUpstream::start_serving`]).
    pub version: Version,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Response bodies dropped before they were fully sent: the server hung up.
    hung_up: AtomicUsize,
    finished: AtomicUsize,
    /// `GET /models`: the body served (OpenRouter's shape), or None for a
    /// 503; and how many times it was asked.
    models: Mutex<Option<serde_json::Value>>,
    model_calls: AtomicUsize,
}

#[derive(Clone)]
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The base URL's scheme: "http", or "https" when served over TLS.
    scheme: &'static str,
}

impl FakeUpstream {
    pub async fn start() -> Self {
        Self::start_serving("http", |listener, app| async move {
            let _ = axum::serve(listener, app).await;
        })
        .await
    }

    /// The same fake, on a loopback listener that `serve` runs (over TLS,
    /// say: tests/common/tls_upstream.rs); `scheme` goes in the base URL.
    pub async fn start_serving<F, Fut>(scheme: &'static str, serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, Router) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/chat/completions", post(handle))
            .route("/models", axum::routing::get(models))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake upstream");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(serve(listener, app));
        Self { addr, shared, scheme }
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Queues replies for the next requests, in order.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// The reply used when nothing is queued.
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default) = Some(reply);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn hung_up(&self) -> usize {
        self.shared.hung_up.load(Ordering::SeqCst)
    }

    pub fn finished(&self) -> usize {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// Serves these models at `GET /models` ((id, context length) pairs), or
    /// a 503 with `None`.
    pub fn set_models(&self, models: Option<&[(&str, u32)]>) {
        let body = models.map(|models| {
            let data: Vec<serde_json::Value> = models
                .iter()
                .map(|(id, context)| {
                    json!({
                        "id": id, "name": format!("Model {id}"), "context_length": context,
                        "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                        "top_provider": {"max_completion_tokens": 4096},
                        "supported_parameters": ["temperature", "top_p", "stop"],
                    })
                })
                .collect();
            json!({ "data": data })
        });
        *lock(&self.shared.models) = body;
    }

    /// How many times `GET /models` was asked.
    pub fn model_calls(&self) -> usize {
        self.shared.model_calls.load(Ordering::SeqCst)
    }
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    shared.model_calls.fetch_add(1, Ordering::SeqCst);
    match lock(&shared.models).clone() {
        Some(body) => axum::Json(body).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "catalog down").into_response(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn handle(State(shared): State<Arc<Shared>>, version: Version, headers: HeaderMap, body: Bytes) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    lock(&shared.requests).push(RecordedRequest { body, headers, version });
    let reply = lock(&shared.script)
        .pop_front()
        .or_else(|| lock(&shared.default).clone())
        .unwrap_or_else(|| Reply::chunks(["Hello", " there", "!"]));
    match reply {
        Reply::Status { status, message, retry_after } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                (status, axum::Json(json!({"error": {"message": message, "code": status.as_u16()}}))).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert("retry-after", seconds.into());
            }
            response
        }
        Reply::Hang => sse_response(Body::from_stream(guarded(shared, vec![], true))),
        Reply::Stream { chunks, delay, split, end } => {
            let pieces = sse_pieces(&chunks, split, &end);
            let mut items: Vec<(Duration, Result<Bytes, std::io::Error>)> = Vec::new();
            // The preamble arrives at once; each content chunk after `delay`.
            for (bytes, starts_chunk) in pieces {
                let wait = if starts_chunk { delay } else { Duration::ZERO };
                items.push((wait, Ok(Bytes::from(bytes))));
            }
            if matches!(end, End::Cut) {
                // Let what came before reach the client, so the cut is
                // mid-reply rather than before the response.
                items.push((
                    delay.max(Duration::from_millis(100)),
                    Err(std::io::Error::other("fake upstream cut the connection")),
                ));
            }
            sse_response(Body::from_stream(guarded(shared, items, false)))
        }
    }
}

fn sse_response(body: Body) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(body)
        .expect("response")
}

/// SSE byte pieces; the flag marks those that start a new content chunk
/// (and so wait for the configured delay). Public for the hand-framed
/// upstream, which sends the same events.
pub fn sse_pieces(chunks: &[String], split: bool, end: &End) -> Vec<(Vec<u8>, bool)> {
    let event = |value: serde_json::Value| format!("data: {value}\r\n\r\n").into_bytes();
    let mut out: Vec<(Vec<u8>, bool)> = vec![
        (b": OPENROUTER PROCESSING\r\n\r\n".to_vec(), false),
        (
            event(json!({"id": "gen-1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})),
            false,
        ),
    ];
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        let finish = match end {
            End::Done | End::NoDone if i == last => json!("stop"),
            End::Length if i == last => json!("length"),
            _ => json!(null),
        };
        out.push((
            event(
                json!({"id": "gen-1", "choices": [{"index": 0, "delta": {"content": chunk}, "finish_reason": finish}]}),
            ),
            true,
        ));
    }
    match end {
        End::Done | End::NoDone | End::Length => {
            let completion = chunks.len() as u64;
            out.push((
                event(json!({"id": "gen-1", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": completion, "total_tokens": 11 + completion, "cost": 0.0001}})),
                false,
            ));
            if matches!(end, End::Done | End::Length) {
                out.push((b"data: [DONE]\r\n\r\n".to_vec(), false));
            }
        }
        End::Error(message) => out.push((event(json!({"error": {"code": 502, "message": message}})), true)),
        End::Cut | End::Truncated => {}
    }
    if !split {
        return out;
    }
    out.into_iter()
        .flat_map(|(bytes, first)| {
            bytes.chunks(3).enumerate().map(|(i, part)| (part.to_vec(), first && i == 0)).collect::<Vec<_>>()
        })
        .collect()
}

/// Counts whether the body was sent to the end or dropped early.
struct BodyGuard {
    shared: Arc<Shared>,
    complete: bool,
}

impl BodyGuard {
    /// The body ended as scripted (fully sent, or deliberately cut).
    fn complete(&mut self) {
        self.complete = true;
    }
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        let counter = if self.complete { &self.shared.finished } else { &self.shared.hung_up };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn guarded(
    shared: Arc<Shared>,
    items: Vec<(Duration, Result<Bytes, std::io::Error>)>,
    hang: bool,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let guard = BodyGuard { shared, complete: false };
    stream::unfold((guard, items.into_iter()), move |(mut guard, mut items)| async move {
        if hang {
            std::future::pending::<()>().await;
        }
        match items.next() {
            Some((wait, item)) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                if item.is_err() {
                    // A cut is not a hang-up by our server.
                    guard.complete();
                }
                Some((item, (guard, items)))
            }
            None => {
                guard.complete();
                None
            }
        }
    })
}
