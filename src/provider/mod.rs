//! LLM providers: a chat completion request in, a stream of text deltas,
//! usage and a finish reason out.
//!
//! [`openai::OpenAiCompatible`] speaks the OpenAI/OpenRouter streaming API;
//! [`sse`] turns server-sent events into [`StreamEvent`]s and is tested alone.

pub mod openai;
pub mod sse;

use std::{pin::Pin, time::Duration};

use futures_util::{Stream, future::BoxFuture};
use secrecy::SecretString;

use crate::{prompt::ChatMessage, samplers::Samplers};

/// One call to the model.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub base_url: String,
    /// None for providers that need no key (a local server).
    pub api_key: Option<SecretString>,
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// Resolved for the chat; only set fields are sent.
    pub samplers: Samplers,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// OpenRouter reports the cost in credits with the last chunk.
    pub cost: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Text(String),
    Usage(Usage),
    Finish(String),
}

/// Why a provider call failed. Messages are for people; none holds the key or
/// prompt text.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ProviderError {
    #[error("the provider rejected the API key or refused the request (HTTP {status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("the provider account is out of credits (HTTP 402): {detail}")]
    OutOfCredits { detail: String },
    #[error("the provider is unavailable after {tries} tries: {detail}")]
    Unavailable { tries: usize, detail: String },
    #[error("the provider did not answer in time: {0}")]
    Timeout(String),
    #[error("the provider returned an error: {0}")]
    Upstream(String),
}

impl ProviderError {
    /// The HTTP statuses worth another try before any text was streamed.
    pub fn is_retryable_status(status: u16) -> bool {
        matches!(status, 408 | 429) || (500..=599).contains(&status)
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// A chat completion provider. `stream_chat` resolves once the provider has
/// accepted the request (retrying before that as it sees fit); dropping the
/// returned stream closes the upstream connection.
pub trait ChatProvider: Send + Sync + 'static {
    fn stream_chat(&self, request: CompletionRequest) -> BoxFuture<'_, Result<EventStream, ProviderError>>;

    /// The provider's models (`GET {base_url}/models`).
    fn list_models(
        &self,
        base_url: String,
        api_key: Option<SecretString>,
    ) -> BoxFuture<'_, Result<Vec<ModelInfo>, ProviderError>>;
}

/// One model of a provider's catalog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub context_length: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    /// US dollars per token, as the provider writes them.
    pub prompt_price: String,
    pub completion_price: String,
    pub supported_parameters: Vec<String>,
}

/// How hard to try before the first token.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub tries: usize,
    pub base_delay: Duration,
    pub max_delay: Duration,
}
