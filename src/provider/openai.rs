//! The OpenAI/OpenRouter-compatible provider over reqwest.
//!
//! Before the first byte of the reply, 408/429/5xx answers and connection
//! errors are retried with exponential backoff and jitter, honouring
//! `Retry-After`. Once the stream is handed out there is no retry: text the
//! user has seen must never be generated twice.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use eventsource_stream::Eventsource;
use futures_util::{TryStreamExt, future::BoxFuture};
use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{ChatProvider, CompletionRequest, EventStream, ModelInfo, ProviderError, RetryPolicy, sse::chat_events};
use crate::{prompt::ChatMessage, samplers::Samplers};

/// OpenRouter shows these on its dashboard to attribute traffic.
const REFERER: &str = "https://github.com/roleplay-server/roleplay-server";
const TITLE: &str = "roleplay-server";
/// Longest Retry-After we honour; beyond it the backoff delay is used.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Enough of an error body to quote the provider's message.
const MAX_ERROR_BODY: usize = 4096;

pub struct OpenAiCompatible {
    client: reqwest::Client,
    retry: RetryPolicy,
}

#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    stream_options: StreamOptions,
    /// OpenRouter: include token counts and cost in the last chunk.
    usage: UsageOptions,
    #[serde(flatten)]
    samplers: &'a Samplers,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct UsageOptions {
    include: bool,
}

impl OpenAiCompatible {
    /// One client for the whole server: it pools connections to the provider.
    pub fn new(connect_timeout: Duration, retry: RetryPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("roleplay-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, retry })
    }

    async fn connect(&self, request: CompletionRequest) -> Result<EventStream, ProviderError> {
        let url = format!("{}/chat/completions", request.base_url.trim_end_matches('/'));
        let body = RequestBody {
            model: &request.model,
            messages: &request.messages,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
            usage: UsageOptions { include: true },
            samplers: &request.samplers,
        };
        let body = serde_json::to_vec(&body).map_err(|err| ProviderError::Upstream(err.to_string()))?;
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.retry.base_delay)
            .with_max_delay(self.retry.max_delay)
            .with_jitter()
            .with_max_times(self.retry.tries.saturating_sub(1))
            .build();
        // The trace goes on to the provider (W3C traceparent), when traced.
        let mut trace_context = header::HeaderMap::new();
        crate::traces::inject_current(&mut trace_context);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut post = self.client.post(&url).headers(trace_context.clone());
            if let Some(api_key) = &request.api_key {
                post = post.bearer_auth(api_key.expose_secret());
            }
            let sent = post
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "text/event-stream")
                .header("HTTP-Referer", REFERER)
                .header("X-Title", TITLE)
                .body(body.clone())
                .send()
                .await;
            if let Ok(response) = &sent {
                crate::observe::provider_response(response.status().as_u16());
            }
            let (detail, retry_after) = match sent {
                Ok(response) if response.status().is_success() => {
                    // A broken body is told by its innermost cause (an h2
                    // reset, an incomplete message), not reqwest's summary.
                    let body = response.bytes_stream().map_err(|err| std::io::Error::other(root_cause(&err)));
                    return Ok(Box::pin(chat_events(body.eventsource())));
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let detail = error_detail(response).await;
                    if !ProviderError::is_retryable_status(status.as_u16()) {
                        return Err(classify(status, detail));
                    }
                    (format!("HTTP {}: {detail}", status.as_u16()), retry_after)
                }
                Err(err) if err.is_connect() || err.is_timeout() || err.is_request() => {
                    (format!("could not reach {}: {}", host_of(&url), root_cause(&err)), None)
                }
                Err(err) => return Err(ProviderError::Upstream(root_cause(&err))),
            };
            let Some(delay) = delays.next() else {
                return Err(ProviderError::Unavailable { tries, detail });
            };
            let delay = retry_after.filter(|d| *d <= MAX_RETRY_AFTER).map_or(delay, |d| d.max(delay));
            tracing::warn!(tries, delay_ms = delay.as_millis() as u64, %detail, "provider request failed; retrying");
            crate::observe::provider_retry();
            tokio::time::sleep(delay).await;
        }
    }
}

impl ChatProvider for OpenAiCompatible {
    fn stream_chat(&self, request: CompletionRequest) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
        Box::pin(self.connect(request))
    }

    fn list_models(
        &self,
        base_url: String,
        api_key: Option<SecretString>,
    ) -> BoxFuture<'_, Result<Vec<ModelInfo>, ProviderError>> {
        Box::pin(async move {
            let url = format!("{}/models", base_url.trim_end_matches('/'));
            let mut get = self.client.get(&url).timeout(CATALOG_TIMEOUT);
            if let Some(api_key) = &api_key {
                get = get.bearer_auth(api_key.expose_secret());
            }
            let response = get.send().await.map_err(|err| ProviderError::Unavailable {
                tries: 1,
                detail: format!("could not reach {}: {}", host_of(&url), root_cause(&err)),
            })?;
            let status = response.status();
            if !status.is_success() {
                return Err(classify(status, error_detail(response).await));
            }
            let body: CatalogBody = response.json().await.map_err(|err| {
                ProviderError::Upstream(format!("the model list cannot be read: {}", root_cause(&err)))
            })?;
            Ok(body.data.into_iter().map(CatalogModel::into_info).collect())
        })
    }
}

/// Longest wait for the model list: it is fetched in the background.
const CATALOG_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET /models`: OpenRouter's shape; an OpenAI-style list (ids only) reads
/// as models with nothing else known.
#[derive(Deserialize)]
struct CatalogBody {
    data: Vec<CatalogModel>,
}

#[derive(Deserialize)]
struct CatalogModel {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default)]
    top_provider: Option<TopProvider>,
    #[serde(default)]
    pricing: Option<Pricing>,
    #[serde(default)]
    supported_parameters: Vec<String>,
}

#[derive(Deserialize)]
struct TopProvider {
    #[serde(default)]
    max_completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Pricing {
    #[serde(default)]
    prompt: Option<serde_json::Value>,
    #[serde(default)]
    completion: Option<serde_json::Value>,
}

impl CatalogModel {
    fn into_info(self) -> ModelInfo {
        let price = |value: Option<&serde_json::Value>| match value {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let clamp = |n: Option<u64>| n.map(|n| u32::try_from(n).unwrap_or(u32::MAX)).filter(|n| *n > 0);
        ModelInfo {
            name: self.name.unwrap_or_else(|| self.id.clone()),
            context_length: clamp(self.context_length),
            max_completion_tokens: clamp(self.top_provider.and_then(|t| t.max_completion_tokens)),
            prompt_price: price(self.pricing.as_ref().and_then(|p| p.prompt.as_ref())),
            completion_price: price(self.pricing.as_ref().and_then(|p| p.completion.as_ref())),
            supported_parameters: self.supported_parameters,
            id: self.id,
        }
    }
}

fn classify(status: StatusCode, detail: String) -> ProviderError {
    match status.as_u16() {
        401 | 403 => ProviderError::Rejected { status: status.as_u16(), detail },
        402 => ProviderError::OutOfCredits { detail },
        code => ProviderError::Upstream(format!("HTTP {code}: {detail}")),
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

/// The provider's own error message when the body is OpenAI-style JSON,
/// else the start of the body.
async fn error_detail(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let body = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]).into_owned();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| if body.trim().is_empty() { "no details".into() } else { body.trim().to_owned() })
}

fn host_of(url: &str) -> &str {
    url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(url)
}

fn root_cause(err: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = err;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
