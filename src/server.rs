//! Serving: the gRPC services, health and reflection on one listener, until
//! the shutdown signal, then a drained stop (see [`crate::state::Lifecycle`]).

use std::future::Future;

use axum::http::{HeaderValue, header};

use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_web::GrpcWebLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{
    api::{
        CharacterApi, ChatSessionApi, LorebookApi, MessageApi, SERVICE_NAMES, SettingsApi, UsageApi, UserApi,
        UserProfileApi, auth, avatars,
        browser::{self, CorsOrigins, Guard},
        pb::{
            self, character_service_server::CharacterServiceServer,
            chat_session_service_server::ChatSessionServiceServer, lorebook_service_server::LorebookServiceServer,
            message_service_server::MessageServiceServer, settings_service_server::SettingsServiceServer,
            usage_service_server::UsageServiceServer, user_profile_service_server::UserProfileServiceServer,
            user_service_server::UserServiceServer,
        },
        sse, web_ui,
    },
    observe,
    state::AppState,
    stream::checkpoint,
};

/// Largest request accepted, checked before it is decoded: comfortably above
/// the largest valid message (100,000 characters of up to 4 bytes each).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Largest LorebookService request: a world-info file being imported, with
/// room for the rest of the request.
pub const MAX_LOREBOOK_REQUEST_BYTES: usize = crate::lorebooks::IMPORT_MAX_BYTES + 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection could not be built: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Refused(String),
    #[error("the server could not start: {0}")]
    Startup(#[from] crate::error::Error),
    #[error("the listener has no address: {0}")]
    Listener(#[from] std::io::Error),
}

/// Serves until `shutdown` resolves; then stops accepting generations, drains
/// the running ones and returns.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    if state.options.browser.cors_origins == CorsOrigins::Any
        && !state.store.any_token_issued().await.map_err(crate::error::Error::from)?
    {
        return Err(ServeError::Refused(
            "refusing ROLEPLAY_CORS_ORIGINS=*: in single-user mode (no user has a token yet) any web page could \
             use this server. List the origins of your front ends instead, or create a user with \
             `roleplay-server users add NAME --admin` first"
                .into(),
        ));
    }
    if let Err(err) = crate::tokens::TokenCounter::new(&state.options.tokenizer_files) {
        return Err(ServeError::Refused(format!("{err}; check --tokenizer / ROLEPLAY_TOKENIZERS")));
    }
    let bound = crate::settings::bind_unbound_keys(&state.store, &state.keys, &state.defaults()).await?;
    if bound > 0 {
        tracing::info!(bound, "bound stored provider keys to the host they are sent to");
    }
    let guard = Guard::new(state.options.browser.clone(), listener.local_addr()?);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // Until the default tokenizer is loaded (in the background, below) a
    // send waits for it: a balancer that follows health waits too, and a
    // fresh replica's first burst is not slowed by it.
    let warm = crate::tokens::TokenCounter::is_warm();
    set_health(&health_reporter, warm).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let stop_checkpoints = tokio_util::sync::CancellationToken::new();
    let checkpointer = tokio::spawn(checkpoint::run(
        state.registry.clone(),
        state.store.clone(),
        state.options.checkpoint_interval,
        stop_checkpoints.clone(),
    ));
    let limits = std::sync::Arc::clone(&state.limits);
    let stop_sweeps = stop_checkpoints.clone();
    let sweeper = tokio::spawn(async move {
        // Limiter state of users and chats idle for a minute is back to a
        // full allowance and can be forgotten.
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = every.tick() => limits.forget_idle(),
                () = stop_sweeps.cancelled() => return,
            }
        }
    });
    // Health follows the tokenizer's load, then the database: NOT_SERVING
    // while it cannot be reached (and from the start of draining, set
    // below).
    let (health_state, reporter, stop_health) = (state.clone(), health_reporter.clone(), stop_checkpoints.clone());
    let health = tokio::spawn(async move {
        tokio::select! {
            () = crate::tokens::TokenCounter::warm_up() => {}
            () = stop_health.cancelled() => return,
        }
        // The first tick is at once: SERVING as soon as the load is done.
        let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
        let mut serving = warm;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop_health.cancelled() => return,
            }
            let ready = observe::ready(&health_state).await;
            if ready.is_ok() != serving && health_state.lifecycle.is_accepting() {
                serving = ready.is_ok();
                if let Err(why) = &ready {
                    tracing::warn!(%why, "not ready; health answers NOT_SERVING");
                }
                set_health(&reporter, serving).await;
            }
        }
    });
    let drain_state = state.clone();
    let drained = async move {
        shutdown.await;
        tracing::info!("shutting down");
        set_health(&health_reporter, false).await;
        drain_state.lifecycle.shutdown(&drain_state.registry, drain_state.options.shutdown_grace).await;
    };

    let mut grpc = Routes::builder();
    grpc.add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            // Character cards come in as request bytes: room for the largest
            // card the importer takes, so a larger one is refused by it, in
            // words, rather than by the transport.
            CharacterServiceServer::new(CharacterApi::new(state.clone()))
                .max_decoding_message_size(crate::cards::MAX_INPUT_BYTES + MAX_REQUEST_BYTES),
        )
        .add_service(
            UserProfileServiceServer::new(UserProfileApi::new(state.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            ChatSessionServiceServer::new(ChatSessionApi::new(state.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            MessageServiceServer::new(MessageApi::new(state.clone())).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            SettingsServiceServer::new(SettingsApi::new(state.clone())).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(UserServiceServer::new(UserApi::new(state.clone())).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(UsageServiceServer::new(UsageApi::new(state.clone())).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(
            LorebookServiceServer::new(LorebookApi::new(state.clone()))
                .max_decoding_message_size(MAX_LOREBOOK_REQUEST_BYTES),
        );
    // Authentication and the browser guard sit inside gRPC-Web, so their
    // refusals are translated for browsers like any other status. gRPC-Web
    // wraps the gRPC routes only: it answers 400 to any other HTTP/1.1
    // request, which would shut out EventSource.
    let guard_layer = axum::middleware::from_fn_with_state(std::sync::Arc::clone(&guard), browser::guard);
    let routes = grpc
        .routes()
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::grpc))
        .layer(axum::middleware::from_fn(count_grpc))
        .layer(guard_layer.clone())
        .layer(GrpcWebLayer::new())
        .merge(sse::router(state.clone()).layer(guard_layer.clone()))
        // Everything on these routes is chat data or settings: never cached.
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .merge(avatars::router(state.clone()).layer(guard_layer.clone()))
        .merge(web_ui::router().layer(guard_layer))
        // Orchestrators probe these without a token, under any host name.
        .merge(observe::health_routes(state.clone()));

    // The builder's tcp_nodelay applies only to listeners tonic binds itself.
    // Without it, Started and the first Delta are two small writes, and
    // Nagle holds the second until the client's delayed ACK: +40 ms to the
    // first token.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

    // HTTP/1.1 is accepted beside HTTP/2 for gRPC-Web and the SSE endpoint.
    Server::builder()
        .tcp_nodelay(true)
        .accept_http1(true)
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(guard.cors())
        .add_routes(Routes::from(routes))
        .serve_with_incoming_shutdown(incoming, drained)
        .await?;
    // Every generation has stored its outcome by now.
    stop_checkpoints.cancel();
    let _ = tokio::join!(checkpointer, sweeper, health);
    Ok(())
}

/// Server-streaming methods: counted when their stream ends, by the status
/// in its trailers; their latency would be the whole conversation, so it is
/// not recorded.
const STREAMING_METHODS: [&str; 5] =
    ["AddUserMessageStreaming", "SubscribeChatSession", "RegenerateReply", "ContinueReply", "Watch"];

/// Counts each gRPC call by service, method and status code, and times the
/// unary ones. A status sent in the response headers (every refusal) is the
/// code; a call whose status comes in trailers is counted when they pass.
async fn count_grpc(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let streaming = path.rsplit('/').next().is_some_and(|method| STREAMING_METHODS.contains(&method));
    match response.headers().get("grpc-status").and_then(|v| v.to_str().ok()) {
        Some(code) => observe::grpc_request(&path, code, started.elapsed(), streaming),
        None => {
            let call = observe::GrpcCall { path, started, streaming };
            return response.map(|body| axum::body::Body::new(observe::CountedBody::new(body, call)));
        }
    }
    response
}

/// Sets what gRPC health says of every service, and of the server as a
/// whole (the empty name, which probes ask by default).
async fn set_health(reporter: &tonic_health::server::HealthReporter, serving: bool) {
    let status = if serving { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
    for name in std::iter::once("").chain(SERVICE_NAMES) {
        reporter.set_service_status(name, status).await;
    }
}
