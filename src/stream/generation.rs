//! Producing one reply: starting it (lock, rows, prompt) and the task that
//! streams it from the provider into the registry and the database.
//!
//! The task owns the generation, not the RPC that started it: the sender is
//! one more watcher, and leaving stops watching, never generating.

use std::{sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::{
    error::{Error, Result},
    limits::RunningPermit,
    next_prompt::{self, NextPrompt, next_prompt},
    observe,
    provider::{ChatProvider, CompletionRequest, EventStream, ProviderError, StreamEvent, Usage},
    settings::{self, Fallback, names},
    state::AppState,
    store::{
        Fence, Store, StoreError,
        models::{Message, MessageStatus, ReplyOutcome, UsageRecord},
        new_id, now,
    },
    stream::follower::{Follower, Start},
    stream::quiet::Quiet,
    stream::registry::{CancelReason, ChatLock, FailureCode, Generation, Outcome, Registry, StoredReply},
    stream::shared::Sharing,
    users::Caller,
};

/// Retries of storing a reply's outcome before giving up, with a doubling
/// delay: about three seconds in all.
const STORE_RETRIES: usize = 4;
const STORE_RETRY_DELAY: Duration = Duration::from_millis(200);

/// What a reply is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyRequest {
    /// A new user message, and its reply.
    Send(String),
    /// A new alternative of the chat's last reply, or an answer to its last
    /// message when that is a user message.
    Regenerate,
    /// More text for the chat's last reply.
    Continue,
}

/// Stores the user's message, starts the reply, and returns the sender's
/// follower of it.
pub async fn send_message(state: &AppState, caller: &Caller, chat_id: &str, content: String) -> Result<Follower> {
    start_reply(state, caller, chat_id, ReplyRequest::Send(content)).await
}

/// Starts a reply of any kind through the one path every reply takes (lock,
/// limits, rows, prompt, the reply task), and returns the caller's follower
/// of it. Everything that can be refused is checked before anything is
/// written.
pub async fn start_reply(state: &AppState, caller: &Caller, chat_id: &str, request: ReplyRequest) -> Result<Follower> {
    if !state.lifecycle.is_accepting() {
        return Err(Error::ShuttingDown);
    }
    // Admission first: a refused start has read and written nothing.
    let _starting = state.limits.admit_start()?;
    let store = &state.store;
    let (parties, settings, own_key) = next_prompt::load(state, caller, chat_id).await?;
    let api_key = settings::choose_api_key(&own_key, &settings)?;
    // Refusals that count nothing come first: a busy chat or the cap on
    // running replies uses up no allowance (the permit is returned on drop).
    if let Some(running) = state.registry.live(chat_id) {
        return Err(Error::ChatBusy { stream_id: running.info.stream_id.clone() });
    }
    let permit = state.limits.start_generation(&caller.user_id)?;
    // Replicas count send allowances together, when claiming the chat.
    if !state.sharing.is_shared() {
        state.limits.check_user(&caller.user_id)?;
        state.limits.check_chat(chat_id)?;
    }
    let watch = state.registry.watch_chat(chat_id)?;
    let stream_id = new_id();
    let lock = state.registry.lock_chat(chat_id, &stream_id)?;
    let claim = state.sharing.claim(store, chat_id, &stream_id, &caller.user_id).await?;
    let fence = claim.fence.clone();
    // The reply's span, a child of the call's, with a child per stage:
    // prompt, store, provider.connect, first_token, stream, store.reply.
    let reply_span = tracing::info_span!(
        "reply",
        stream_id = %stream_id,
        chat_session_id = %chat_id,
        model = tracing::field::Empty,
        outcome = tracing::field::Empty,
        detail = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );

    // Read under the lock: the previous reply in this chat is stored by now.
    let NextPrompt { plan, composed, .. } =
        next_prompt(state, &settings, &parties, request, &stream_id, Some(api_key.clone()))
            .instrument(tracing::info_span!(parent: &reply_span, "prompt"))
            .await?;
    let model = composed.model.clone();
    reply_span.record("model", model.as_str());
    let primary = CompletionRequest {
        base_url: settings.provider_base_url.clone(),
        api_key: Some(api_key),
        model: model.clone(),
        messages: composed.messages(),
        samplers: composed.samplers.clone(),
    };

    // The provider request goes out while the rows are committed, so the
    // first token waits for the slower of the two rather than for both.
    // `Started` still waits for the commit: a reply a client sees is always
    // one the database has. Dropping the handle (the commit failed, or the
    // reply ended before it connected) aborts the request.
    let requested_at = Instant::now();
    let routes = provider_routes(primary, &settings.fallbacks);
    let connecting = AbortOnDropHandle::new(tokio::spawn(
        connect_first_available(Arc::clone(&state.provider), routes)
            .instrument(tracing::info_span!(parent: &reply_span, "provider.connect")),
    ));
    let limits = Limits {
        first_token: state.options.first_token_timeout,
        chunk: state.options.chunk_timeout,
        idle: state.options.idle_timeout,
    };
    let info = plan.stream_info(stream_id, model, &composed.fitted);
    let continues_from = info.continues_from;
    let (store, registry, sharing, tasks, user_id) = (
        store.clone(),
        state.registry.clone(),
        state.sharing.clone(),
        state.lifecycle.tasks.clone(),
        caller.user_id.clone(),
    );
    // Storing and starting run as a task of their own: once the message is
    // being stored, a client that hangs up cannot leave it half-started
    // (stored, but with no reply running), just as leaving later never
    // stops a reply.
    let starting = state.lifecycle.tasks.spawn(
        async move {
            sharing.describe(&claim, &info).await?;
            plan.store(&store, fence.as_ref()).instrument(tracing::info_span!("store")).await?;
            let prior_completion_tokens = plan.prior_completion_tokens();
            let prev_stream = lock.entry().latest_stream_id();
            let generation = registry.publish(&lock, info, plan.prefix);
            if let Err(err) = sharing.published(&generation, claim, prev_stream).await {
                // The reply runs and is stored all the same; the keeper
                // tells the other replicas of it once Redis answers.
                tracing::warn!(error = %err, "other replicas could not be told of this reply yet");
            }
            let job = Job {
                user_id,
                _permit: permit,
                store,
                registry,
                sharing,
                fence,
                generation: Arc::clone(&generation),
                lock,
                limits,
                prior_completion_tokens,
            };
            tasks.spawn(job.run(connecting, requested_at).instrument(tracing::Span::current()));
            Ok::<_, Error>(generation)
        }
        // The reply's span is a child of the RPC's, so the reply's log lines
        // carry its request id too.
        .instrument(reply_span),
    );
    let generation = starting.await.map_err(|_| Error::NotStarted)??;

    Ok(Follower::new(
        watch,
        Start::At { generation, offset: continues_from },
        None,
        state.options.heartbeat_interval,
        state.lifecycle.stop_followers.clone(),
    ))
}

/// One provider to try, with the request as that provider should get it.
struct Route {
    provider: String,
    request: CompletionRequest,
}

/// The primary provider, then each fallback whose key may be sent to it (a
/// fallback with no key is called without one, for local servers).
fn provider_routes(primary: CompletionRequest, fallbacks: &[Fallback]) -> Vec<Route> {
    let mut routes = Vec::with_capacity(1 + fallbacks.len());
    for Fallback { name, base_url, model, api_key } in fallbacks {
        let api_key = match api_key.for_origin(&settings::origin(base_url)) {
            Ok(key) => key.cloned(),
            Err(problem) => {
                let problem = problem.explain(settings::KeyOwner::Fallback);
                tracing::warn!(provider = %name, %problem, "skipping a fallback provider");
                continue;
            }
        };
        let model = if model.is_empty() { primary.model.clone() } else { model.clone() };
        routes.push(Route {
            provider: name.clone(),
            request: CompletionRequest { base_url: base_url.clone(), api_key, model, ..primary.clone() },
        });
    }
    routes.insert(0, Route { provider: names::PRIMARY_PROVIDER.to_owned(), request: primary });
    routes
}

/// Connects to the first provider that is available. Only "unavailable"
/// (unreachable, or 408/429/5xx after that provider's retries) moves on to
/// the next: a rejected key or a bad request would fail the same way there.
async fn connect_first_available(
    provider: Arc<dyn ChatProvider>,
    routes: Vec<Route>,
) -> Result<(EventStream, Answered), ProviderError> {
    let last = routes.len().saturating_sub(1);
    let mut failure = ProviderError::Upstream("no provider is configured".into());
    for (index, Route { provider: name, request }) in routes.into_iter().enumerate() {
        let model = request.model.clone();
        match provider.stream_chat(request).await {
            Ok(events) => {
                if index > 0 {
                    observe::fallback_taken(&name);
                }
                return Ok((events, Answered { provider: name, model }));
            }
            Err(err @ ProviderError::Unavailable { .. }) if index < last => {
                tracing::warn!(provider = %name, error = %err, "provider unavailable; trying the next one");
                failure = err;
            }
            Err(err) => return Err(err),
        }
    }
    Err(failure)
}

/// Which provider and model produced the reply.
#[derive(Debug, Clone)]
struct Answered {
    provider: String,
    model: String,
}

struct Limits {
    first_token: Duration,
    chunk: Duration,
    idle: Duration,
}

/// How the provider stream ended, before it is stored.
enum Ending {
    Completed { finish_reason: Option<String>, usage: Option<Usage> },
    Failed { code: FailureCode, message: String },
    Cancelled(CancelReason),
}

impl Ending {
    /// The outcome as usage records and metrics name it, its detail (the
    /// finish reason, failure code or cancel reason) and the usage reported.
    fn summary(&self) -> (MessageStatus, String, Option<&Usage>) {
        match self {
            Ending::Completed { finish_reason, usage } => {
                (MessageStatus::Completed, finish_reason.clone().unwrap_or_else(|| "unknown".into()), usage.as_ref())
            }
            Ending::Failed { code, .. } => (MessageStatus::Failed, code.as_str().to_owned(), None),
            Ending::Cancelled(reason) => (MessageStatus::Cancelled, reason.as_str().to_owned(), None),
        }
    }
}

impl From<ProviderError> for Ending {
    fn from(err: ProviderError) -> Self {
        let code = match err {
            ProviderError::Rejected { .. } => FailureCode::KeyRejected,
            ProviderError::OutOfCredits { .. } => FailureCode::OutOfCredits,
            ProviderError::Unavailable { .. } => FailureCode::UpstreamUnavailable,
            ProviderError::Timeout(_) => FailureCode::UpstreamTimeout,
            ProviderError::Upstream(_) => FailureCode::UpstreamError,
        };
        Ending::Failed { code, message: err.to_string() }
    }
}

struct Job {
    /// Who the usage record is for.
    user_id: String,
    /// One of the user's concurrent generations, released with the job.
    _permit: RunningPermit,
    store: Store,
    registry: Registry,
    sharing: Sharing,
    /// With replicas: the chat's epoch this reply claimed; its final write
    /// lands only while the epoch is still this.
    fence: Option<Fence>,
    generation: Arc<Generation>,
    /// Held until the outcome is stored: the chat's one-reply-at-a-time lock.
    lock: ChatLock,
    limits: Limits,
    /// Continuations: the completion tokens the message had already, which
    /// its stored count adds to.
    prior_completion_tokens: Option<i32>,
}

/// The provider request under way, started before the job.
type Connecting = AbortOnDropHandle<Result<(EventStream, Answered), ProviderError>>;

impl Job {
    /// `requested_at`: when the provider request (`connecting`) went out.
    async fn run(self, connecting: Connecting, requested_at: Instant) {
        let started = requested_at;
        observe::reply_started(&self.generation.info.model);
        let (ending, answered, first_text_at) = self.stream(connecting, requested_at).await;
        let text = self.generation.text();
        let duration = started.elapsed();
        let timing = Timing { duration, first_token: first_text_at.map(|at| at - started) };
        self.observe_end(&ending, answered.as_ref(), timing);
        let stored = if self.generation.is_fenced() {
            // Another replica took the chat over and stored this reply's end.
            Err(StoreError::Fenced)
        } else {
            // Boxed, as the shared end below: a task is as large as its
            // largest await, and these once-per-reply writes (retries,
            // database and Redis futures) would otherwise size every
            // running reply's task, kilobytes each.
            Box::pin(
                self.store_outcome(&text, &ending, answered.as_ref(), timing)
                    .instrument(tracing::info_span!("store.reply")),
            )
            .await
        };
        let outcome = match stored {
            Ok(message) => match ending {
                Ending::Completed { finish_reason, usage } => Outcome::Completed {
                    reply: Box::new(StoredReply::of(&message)),
                    finish_reason: finish_reason.unwrap_or_else(|| "unknown".into()),
                    usage: usage.unwrap_or_default(),
                },
                Ending::Failed { code, message } => Outcome::Failed { code, message },
                Ending::Cancelled(reason) => Outcome::Cancelled { reason },
            },
            Err(StoreError::Fenced) => Outcome::Failed {
                code: FailureCode::Interrupted,
                message: "another server took this reply over; reload the chat".into(),
            },
            Err(err) => {
                tracing::error!(error = %err, "the reply could not be stored");
                Outcome::Failed {
                    code: FailureCode::Storage,
                    message: "the reply could not be stored because the database is unavailable".into(),
                }
            }
        };
        log_outcome(&outcome, text.len(), duration);
        // Release the chat before announcing the end, so a client that sends
        // its next message as soon as it sees the end is not refused (on
        // any replica: the shared end frees the chat there).
        Box::pin(self.sharing.finished(&self.generation, &outcome)).await;
        drop(self.lock);
        self.generation.finish(outcome);
        self.registry.retire(&self.generation);
    }

    /// Pulls the provider stream into the registry until it ends, fails,
    /// times out or is cancelled. Returning drops the stream, which closes
    /// the upstream connection.
    async fn stream(
        &self,
        connecting: Connecting,
        requested_at: Instant,
    ) -> (Ending, Option<Answered>, Option<Instant>) {
        let mut answered = None;
        let mut first_text_at = None;
        let ending = self.stream_from(connecting, requested_at, &mut answered, &mut first_text_at).await;
        (ending, answered, first_text_at)
    }

    async fn stream_from(
        &self,
        connecting: Connecting,
        requested_at: Instant,
        answered: &mut Option<Answered>,
        first_text_at: &mut Option<Instant>,
    ) -> Ending {
        let generation = Arc::clone(&self.generation);
        // The cancel and idle futures are ready once in a reply's life, and
        // each takes a lock when polled: polled only when they woke.
        let mut idle = Quiet::new(self.sharing.idle_timeout(
            &generation.info.chat_session_id,
            self.lock.entry().watcher_counts(),
            self.limits.idle,
        ));
        // The first-token limit counts from the request, not from the commit.
        let deadline = tokio::time::sleep_until(requested_at + self.limits.first_token);
        tokio::pin!(deadline);
        // Made once, not per chunk: each new one would lock the token's tree.
        let mut cancelled = Quiet::new(generation.cancelled());

        // The stage the reply is in, as a span (dropping it ends it): waiting
        // for the first text (connecting included), then streaming.
        let mut stage = Some(tracing::info_span!("first_token"));
        let mut events = tokio::select! {
            biased;
            () = &mut cancelled => return Ending::Cancelled(generation.cancel_reason()),
            () = &mut idle => return Ending::Cancelled(CancelReason::IdleTimeout),
            () = &mut deadline => {
                observe::provider_timeout("first_token");
                return first_token_timeout(self.limits.first_token);
            }
            connected = connecting => match connected {
                Ok(Ok((events, by))) => {
                    *answered = Some(by);
                    events
                }
                Ok(Err(err)) => return err.into(),
                Err(join_error) => {
                    tracing::error!(error = %join_error, "the provider request task failed");
                    return ProviderError::Upstream("the provider request failed unexpectedly".into()).into();
                }
            },
        };

        let mut has_text = false;
        let mut last_text_at = Instant::now();
        // Once text flows, the chunk limit counts from the last event. The
        // timer is not moved per event (that touches the timer wheel every
        // chunk): when it fires early, it is set again from this.
        let mut last_event_at = last_text_at;
        let mut finish_reason = None;
        let mut usage = None;
        loop {
            let event = tokio::select! {
                biased;
                () = &mut cancelled => return Ending::Cancelled(generation.cancel_reason()),
                () = &mut idle => return Ending::Cancelled(CancelReason::IdleTimeout),
                () = &mut deadline => {
                    let due = last_event_at + self.limits.chunk;
                    if has_text && due > Instant::now() {
                        deadline.as_mut().reset(due);
                        continue;
                    }
                    observe::provider_timeout(if has_text { "chunk" } else { "first_token" });
                    return if has_text {
                        ProviderError::Timeout(format!("no data for {}", humantime::format_duration(self.limits.chunk))).into()
                    } else {
                        first_token_timeout(self.limits.first_token)
                    };
                }
                event = events.next() => event,
            };
            match event {
                None => {
                    return Ending::Completed { finish_reason, usage };
                }
                Some(Err(err)) => return err.into(),
                Some(Ok(StreamEvent::Text(text))) => {
                    let now = Instant::now();
                    if !has_text {
                        *first_text_at = Some(now);
                        drop(stage.take());
                        stage = Some(tracing::info_span!("stream"));
                        deadline.as_mut().reset(now + self.limits.chunk);
                    } else {
                        observe::chunk_gap(now - last_text_at);
                    }
                    last_text_at = now;
                    has_text = true;
                    generation.push_text(&text);
                    self.sharing.appended(&generation);
                }
                Some(Ok(StreamEvent::Usage(reported))) => usage = Some(reported),
                Some(Ok(StreamEvent::Finish(reason))) => finish_reason = Some(reason),
            }
            if has_text {
                last_event_at = Instant::now();
            }
        }
    }

    async fn store_outcome(
        &self,
        text: &str,
        ending: &Ending,
        answered: Option<&Answered>,
        timing: Timing,
    ) -> crate::store::StoreResult<Message> {
        let duration = timing.duration;
        let mut row = ReplyOutcome {
            content: Some(text.to_owned()),
            provider: answered.map(|a| Some(a.provider.clone())),
            model: answered.map(|a| a.model.clone()),
            duration_ms: Some(Some(millis(duration))),
            updated_at: Some(now()),
            ..Default::default()
        };
        match ending {
            Ending::Completed { finish_reason, usage } => {
                row.status = Some(MessageStatus::Completed.as_str().into());
                row.finish_reason = Some(finish_reason.clone());
                if let Some(usage) = usage {
                    let prior = self.prior_completion_tokens.unwrap_or(0);
                    row.prompt_tokens = Some(i32::try_from(usage.prompt_tokens).ok());
                    row.completion_tokens =
                        Some(i32::try_from(usage.completion_tokens).ok().map(|n| n.saturating_add(prior)));
                }
            }
            Ending::Failed { code, message } => {
                row.status = Some(MessageStatus::Failed.as_str().into());
                row.finish_reason = Some(Some(code.as_str().into()));
                row.error = Some(Some(message.clone()));
            }
            Ending::Cancelled(reason) => {
                row.status = Some(MessageStatus::Cancelled.as_str().into());
                row.finish_reason = Some(Some(reason.as_str().into()));
            }
        }
        let usage = self.usage_record(ending, answered, timing);
        let id = &self.generation.info.assistant_message_id;
        let retries = ExponentialBuilder::default().with_min_delay(STORE_RETRY_DELAY).with_max_times(STORE_RETRIES);
        (|| self.store.finish_reply(id, &row, &usage, self.fence.as_ref()))
            .retry(retries)
            .when(|err| !matches!(err, StoreError::Fenced))
            .notify(|err, delay| {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "storing the reply failed; retrying");
            })
            .await
    }
}

impl Job {
    /// The reply's end, for the metrics.
    fn observe_end(&self, ending: &Ending, answered: Option<&Answered>, timing: Timing) {
        let (outcome, detail, usage) = ending.summary();
        observe::reply_ended(&observe::ReplyEnd {
            model: answered.map_or(self.generation.info.model.as_str(), |a| a.model.as_str()),
            provider: answered.map_or("none", |a| a.provider.as_str()),
            outcome: outcome.as_str(),
            detail: &detail,
            first_token: timing.first_token,
            duration: timing.duration,
            prompt_tokens: usage.map_or(0, |u| u64::from(u.prompt_tokens)),
            completion_tokens: usage.map_or(0, |u| u64::from(u.completion_tokens)),
            cost: usage.and_then(|u| u.cost),
        });
    }

    fn usage_record(&self, ending: &Ending, answered: Option<&Answered>, timing: Timing) -> UsageRecord {
        let info = &self.generation.info;
        let (outcome, detail, usage) = ending.summary();
        let tokens = |n: Option<u32>| n.and_then(|n| i32::try_from(n).ok()).unwrap_or(0);
        let created_at = now();
        UsageRecord {
            id: new_id(),
            user_id: self.user_id.clone(),
            chat_session_id: info.chat_session_id.clone(),
            stream_id: info.stream_id.clone(),
            model: answered.map_or_else(|| info.model.clone(), |a| a.model.clone()),
            provider: answered.map(|a| a.provider.clone()),
            prompt_tokens: tokens(usage.map(|u| u.prompt_tokens)),
            completion_tokens: tokens(usage.map(|u| u.completion_tokens)),
            cost: usage.and_then(|u| u.cost),
            ttft_ms: timing.first_token.map(millis),
            duration_ms: millis(timing.duration),
            outcome: outcome.as_str().to_owned(),
            detail,
            day: created_at.format("%Y-%m-%d").to_string(),
            created_at,
        }
    }
}

/// How long a reply took, and how long until its first text.
#[derive(Debug, Clone, Copy)]
struct Timing {
    duration: Duration,
    first_token: Option<Duration>,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn first_token_timeout(limit: Duration) -> Ending {
    ProviderError::Timeout(format!("no reply started within {}", humantime::format_duration(limit))).into()
}

/// Logs how the reply ended, and records it on the reply's span (the
/// current one) as codes, never text.
fn log_outcome(outcome: &Outcome, bytes: usize, duration: Duration) {
    let duration_ms = duration.as_millis() as u64;
    let span = tracing::Span::current();
    let (kind, detail) = match outcome {
        Outcome::Completed { finish_reason, usage, .. } => {
            tracing::info!(
                bytes,
                duration_ms,
                finish_reason,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                "reply completed"
            );
            ("completed", finish_reason.as_str())
        }
        Outcome::Failed { code, message } => {
            tracing::warn!(bytes, duration_ms, code = code.as_str(), error = %message, "reply failed");
            span.record("otel.status_code", "error");
            ("failed", code.as_str())
        }
        Outcome::Cancelled { reason } => {
            tracing::info!(bytes, duration_ms, reason = reason.as_str(), "reply cancelled");
            ("cancelled", reason.as_str())
        }
    };
    span.record("outcome", kind);
    span.record("detail", detail);
}
