//! What the service reports about itself: Prometheus metrics (through the
//! `metrics` facade, rendered by `metrics-exporter-prometheus` on an admin
//! listener of its own) and health for orchestrators.
//!
//! Labels stay low-cardinality: services, methods, codes, outcomes, failure
//! codes, providers, and model names bounded to the first
//! [`MAX_MODEL_LABELS`] seen (the rest are `other`). Never a chat, user or
//! stream id, never text.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Mutex, OnceLock, PoisonError},
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::state::AppState;

/// Distinct model names used as label values; later ones are `other`.
pub const MAX_MODEL_LABELS: usize = 20;

/// Milliseconds to the first token.
const TTFT_MS_BUCKETS: &[f64] = &[5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0];
/// Whole replies, in seconds.
const DURATION_S_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Gaps between chunks, and unary calls, in milliseconds.
const SHORT_MS_BUCKETS: &[f64] = &[0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1_000.0, 5_000.0];
const TOKENS_PER_S_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];
/// Writes per group-committed transaction (at most 256 urgent plus one background).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 257.0];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static MODELS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Installs the process-wide recorder once and returns its handle (`None`
/// when another recorder was installed first).
pub fn install() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("roleplay_reply_ttft_ms".into()), TTFT_MS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("roleplay_reply_duration_seconds".into()),
                        DURATION_S_BUCKETS,
                    )
                })
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_ms".into()), SHORT_MS_BUCKETS))
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("roleplay_reply_tokens_per_second".into()),
                        TOKENS_PER_S_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("roleplay_store_group_commit_writes".into()), BATCH_BUCKETS)
                });
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => Some(handle),
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "metrics are off: a recorder was installed already");
                    None
                }
                Err(err) => {
                    tracing::warn!(error = %err, "metrics are off: the buckets were refused");
                    None
                }
            }
        })
        .clone()
}

/// A model name as a label value: one of the first [`MAX_MODEL_LABELS`]
/// seen, else `other`.
pub fn model_label(model: &str) -> String {
    let mut models = MODELS.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = models.get_or_insert_with(HashSet::new);
    if seen.contains(model) {
        return model.to_owned();
    }
    if seen.len() < MAX_MODEL_LABELS {
        seen.insert(model.to_owned());
        return model.to_owned();
    }
    "other".into()
}

/// One RPC answered.
pub fn grpc_request(path: &str, code: &str, elapsed: Duration, streaming: bool) {
    // "/roleplay.v1.MessageService/SendX": service and method are fixed
    // names from the proto; anything else is one bucket.
    let (service, method) = match path.trim_start_matches('/').split_once('/') {
        Some((service, method)) if service.starts_with("roleplay.v1.") || service.starts_with("grpc.") => {
            (service.to_owned(), method.to_owned())
        }
        _ => ("unknown".to_owned(), "unknown".to_owned()),
    };
    counter!("roleplay_grpc_requests_total", "service" => service.clone(), "method" => method.clone(), "code" => code.to_owned())
        .increment(1);
    if !streaming {
        histogram!("roleplay_grpc_unary_ms", "service" => service, "method" => method)
            .record(elapsed.as_secs_f64() * 1000.0);
    }
}

/// A gRPC call whose status is still to come, in its trailers.
pub struct GrpcCall {
    pub path: String,
    pub started: std::time::Instant,
    pub streaming: bool,
}

/// A response body that counts its call when the trailers carrying the
/// status pass, or as CANCELLED when it is dropped before them (the client
/// went away).
pub struct CountedBody {
    inner: axum::body::Body,
    call: Option<GrpcCall>,
}

impl CountedBody {
    pub fn new(inner: axum::body::Body, call: GrpcCall) -> Self {
        Self { inner, call: Some(call) }
    }

    fn count(&mut self, code: &str) {
        if let Some(call) = self.call.take() {
            grpc_request(&call.path, code, call.started.elapsed(), call.streaming);
        }
    }
}

impl http_body::Body for CountedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    let code = code.to_str().unwrap_or("2").to_owned();
                    self.count(&code);
                }
            }
            // A broken body, or one that ended without a status: UNKNOWN.
            std::task::Poll::Ready(Some(Err(_)) | None) => self.count("2"),
            std::task::Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.count("1");
    }
}

/// A reply began streaming from a provider.
pub fn reply_started(model: &str) {
    counter!("roleplay_replies_started_total", "model" => model_label(model)).increment(1);
    gauge!("roleplay_replies_running").increment(1.0);
}

/// How a reply ended, for the counters and histograms.
pub struct ReplyEnd<'a> {
    pub model: &'a str,
    pub provider: &'a str,
    /// "completed", "failed" or "cancelled".
    pub outcome: &'a str,
    /// The finish reason, failure code or cancel reason.
    pub detail: &'a str,
    pub first_token: Option<Duration>,
    pub duration: Duration,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Option<f64>,
}

pub fn reply_ended(end: &ReplyEnd<'_>) {
    let model = model_label(end.model);
    let provider = end.provider.to_owned();
    gauge!("roleplay_replies_running").decrement(1.0);
    let labels = [("model", model.clone()), ("provider", provider.clone()), ("outcome", end.outcome.to_owned())];
    counter!("roleplay_replies_ended_total", &labels).increment(1);
    match end.outcome {
        "failed" => counter!("roleplay_replies_failed_total", "code" => end.detail.to_owned()).increment(1),
        "cancelled" => counter!("roleplay_replies_cancelled_total", "reason" => end.detail.to_owned()).increment(1),
        _ => {}
    }
    if let Some(first) = end.first_token {
        histogram!("roleplay_reply_ttft_ms", "model" => model.clone()).record(first.as_secs_f64() * 1000.0);
    }
    histogram!("roleplay_reply_duration_seconds", "model" => model.clone()).record(end.duration.as_secs_f64());
    let streaming = end.duration.saturating_sub(end.first_token.unwrap_or_default()).as_secs_f64();
    if end.completion_tokens > 0 && streaming > 0.0 {
        histogram!("roleplay_reply_tokens_per_second", "model" => model.clone())
            .record(end.completion_tokens as f64 / streaming);
    }
    counter!("roleplay_prompt_tokens_total", "model" => model.clone()).increment(end.prompt_tokens);
    counter!("roleplay_completion_tokens_total", "model" => model.clone()).increment(end.completion_tokens);
    if let Some(cost) = end.cost {
        // Micro-dollars, so the counter stays an integer.
        counter!("roleplay_cost_microdollars_total", "model" => model).increment((cost * 1e6).round() as u64);
    }
}

/// The gap between two chunks of a reply.
pub fn chunk_gap(gap: Duration) {
    histogram!("roleplay_reply_chunk_gap_ms").record(gap.as_secs_f64() * 1000.0);
}

/// A provider answered with an HTTP status (before streaming).
pub fn provider_response(status: u16) {
    counter!("roleplay_provider_responses_total", "status" => status.to_string()).increment(1);
}

pub fn provider_retry() {
    counter!("roleplay_provider_retries_total").increment(1);
}

pub fn fallback_taken(provider: &str) {
    counter!("roleplay_provider_fallbacks_total", "provider" => provider.to_owned()).increment(1);
}

/// A reply timed out: "first_token" or "chunk".
pub fn provider_timeout(kind: &'static str) {
    counter!("roleplay_provider_timeouts_total", "kind" => kind).increment(1);
}

/// A request refused by a limit ("user_rate", "chat_rate", "concurrent",
/// "watchers", "starts").
pub fn limit_refused(limit: &'static str) {
    counter!("roleplay_limit_refusals_total", "limit" => limit).increment(1);
}

pub fn auth_failed() {
    counter!("roleplay_auth_failures_total").increment(1);
}

/// A hot write committed (one message pair, checkpoint or outcome).
pub fn store_write(elapsed: Duration) {
    histogram!("roleplay_store_write_ms").record(elapsed.as_secs_f64() * 1000.0);
}

/// Times a pooled database call: the wait for a connection, then the work
/// on it (until the returned [`QueryTimer`] is dropped, early returns
/// included).
pub struct PoolWait(std::time::Instant);

impl PoolWait {
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    pub fn got_connection(self) -> QueryTimer {
        histogram!("roleplay_store_pool_wait_ms").record(self.0.elapsed().as_secs_f64() * 1000.0);
        QueryTimer(std::time::Instant::now())
    }
}

pub struct QueryTimer(std::time::Instant);

impl Drop for QueryTimer {
    fn drop(&mut self) {
        histogram!("roleplay_store_query_ms").record(self.0.elapsed().as_secs_f64() * 1000.0);
    }
}

/// One checkpoint of the running replies' text.
pub fn checkpoint(elapsed: Duration, replies: usize) {
    histogram!("roleplay_checkpoint_ms").record(elapsed.as_secs_f64() * 1000.0);
    counter!("roleplay_checkpointed_replies_total").increment(replies as u64);
}

/// SQLite's group commit: how many writes one transaction held.
pub fn group_commit(batch: usize) {
    histogram!("roleplay_store_group_commit_writes").record(batch as f64);
}

/// Live state, set before each scrape.
fn live_gauges(state: &AppState) {
    let (chats, streams) = state.registry.sizes();
    gauge!("roleplay_registry_chats").set(chats as f64);
    gauge!("roleplay_resumable_replies").set(streams as f64);
    gauge!("roleplay_resumable_reply_bytes").set(state.registry.held_bytes() as f64);
    gauge!("roleplay_watchers").set(state.registry.watcher_total() as f64);
    gauge!("roleplay_starts_pending").set(state.limits.pending_starts() as f64);
    gauge!("roleplay_starts_allowed").set(state.limits.allowed_starts() as f64);
}

/// Whether the server should get traffic: the database answers and it is
/// not draining.
pub async fn ready(state: &AppState) -> Result<(), String> {
    if !state.lifecycle.is_accepting() {
        return Err("draining: the server is shutting down".into());
    }
    if !crate::tokens::TokenCounter::is_warm() {
        // A send now would wait for it (0.1 s, seconds in a debug build).
        return Err("starting: the tokenizer is still loading".into());
    }
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("the database cannot be reached: {err}")),
        Err(_) => Err("the database did not answer within 2 s".into()),
    }
}

/// `/healthz` and `/readyz`, for any listener.
pub fn health_routes(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(state): State<AppState>| async move {
                match ready(&state).await {
                    Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                }
            }),
        )
        .with_state(state)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on the admin listener until
/// `stop`.
pub async fn serve_admin(
    addr: SocketAddr,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let Some(handle) = install() else {
        return Err(std::io::Error::other("metrics cannot be recorded: another recorder is installed"));
    };
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let metrics_state = state.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let (handle, state) = (handle.clone(), metrics_state.clone());
                async move {
                    live_gauges(&state);
                    ([("content-type", "text/plain; version=0.0.4")], handle.render()).into_response()
                }
            }),
        )
        .merge(health_routes(state));
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(error = %err, "the admin listener stopped");
        }
    });
    Ok(bound)
}
