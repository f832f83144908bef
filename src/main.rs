//! The roleplay-server binary: configuration, logging, then serve, migrate,
//! or one of the commands in [`roleplay_server::cli`].

use std::{process::ExitCode, sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use clap::Parser;
use roleplay_server::{
    cli,
    config::{Cli, Command, Config, LogFormat},
    observe,
    provider::{RetryPolicy, openai::OpenAiCompatible},
    server,
    state::AppState,
    store::{self, Backend, Store},
    traces,
};
use tokio::net::TcpListener;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let traces = init_logging(cli.config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => store::migrate(&Backend::from_url(&cli.config.database_url)).await.map_err(Into::into),
        Command::Keys { action } => cli::manage_keys(&cli.config, action).await,
        Command::Users { action } => cli::manage_users(&cli.config, action).await,
    };
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout is for what commands like `users add` print),
/// as text or one JSON object per line; spans also go out as OpenTelemetry
/// traces when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
fn init_logging(format: LogFormat) -> Option<traces::Traces> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Text => lines.with_filter(filter).boxed(),
        LogFormat::Json => lines.json().with_current_span(true).with_span_list(true).with_filter(filter).boxed(),
    };
    let (spans, traces, failure) = match traces::layer() {
        Ok(Some((layer, traces))) => (Some(layer), Some(traces), None),
        Ok(None) => (None, None, None),
        Err(err) => (None, None, Some(err)),
    };
    tracing_subscriber::registry().with(lines).with(spans).init();
    if let Some(err) = failure {
        tracing::error!("{err}");
    }
    traces
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let keys = cli::load_keyring(&config)?;
    let store = open_store(&config).await?;
    // With replicas, other replicas' replies are streaming now: their
    // sweeps end those of a replica that stopped, not this start.
    if config.server.redis_url.is_none() {
        let interrupted = store.interrupt_orphaned_replies().await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "marked replies left streaming by the previous run as interrupted");
        }
    }
    if !config.listen.ip().is_loopback() && !config.insecure && !store.any_token_issued().await? {
        return Err(format!(
            "refusing to serve {} without authentication: no user has a token yet, so anyone who can reach \
             this address could use the server. Create one with `roleplay-server users add NAME --admin`, \
             listen on a loopback address, or pass --insecure",
            config.listen
        )
        .into());
    }
    let options = config.server.clone();
    let provider = OpenAiCompatible::new(
        options.connect_timeout,
        RetryPolicy {
            tries: options.upstream_tries,
            base_delay: options.retry_base_delay,
            max_delay: options.first_token_timeout / 4,
        },
    )?;
    let mut state = AppState::new(store, keys, Arc::new(provider), options);
    state.share_with_replicas().await?;
    let listener = TcpListener::bind(config.listen).await?;
    let admin_stop = tokio_util::sync::CancellationToken::new();
    if !config.metrics_listen.trim().is_empty() {
        let addr: std::net::SocketAddr =
            config.metrics_listen.trim().parse().map_err(|err| {
                format!("ROLEPLAY_METRICS_LISTEN {:?} is not an address: {err}", config.metrics_listen)
            })?;
        let stop = admin_stop.clone();
        // Metrics are an aid, not the service: a taken port is reported and
        // the server runs without them.
        match observe::serve_admin(addr, state.clone(), async move { stop.cancelled().await }).await {
            Ok(bound) => tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz"),
            Err(err) => tracing::error!(address = %addr, error = %err, "the admin listener (metrics) is off"),
        }
    }
    tracing::info!(address = %listener.local_addr()?, database = %database_kind(&config.database_url), "serving roleplay.v1");
    let served = server::run(listener, state, shutdown_signal()).await;
    admin_stop.cancel();
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the database, waiting for it when it cannot be reached yet (a
/// PostgreSQL that starts after us, or is restarting): the server heals by
/// itself instead of exiting. Other errors (a failed migration) stop it.
async fn open_store(config: &Config) -> Result<Store, store::StoreError> {
    let waits = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(10))
        .without_max_times();
    let open = (|| Store::open(&config.database_url, config.db_pool_size))
        .retry(waits)
        .when(|err| matches!(err, store::StoreError::Unavailable(_)))
        .notify(|err, delay| {
            tracing::warn!(detail = %err, retry_in_ms = delay.as_millis() as u64, "database unreachable; waiting for it");
        });
    tokio::select! {
        opened = open => opened,
        () = shutdown_signal() => Err(store::StoreError::Unavailable("stopped while waiting for the database".into())),
    }
}

/// Names the backend without printing a URL that may hold a password.
fn database_kind(url: &str) -> String {
    match Backend::from_url(url) {
        Backend::Sqlite(path) => format!("sqlite:{path}"),
        Backend::Postgres(_) => "postgres".into(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
