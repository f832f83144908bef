//! The roleplay-server binary: configuration, logging, then serve or migrate.

use std::{process::ExitCode, sync::Arc, time::Duration};

use clap::Parser;
use roleplay_server::{
    config::{Cli, Command, Config, ServerOptions},
    provider::{RetryPolicy, openai::OpenAiCompatible},
    secrets::MasterKey,
    server,
    state::AppState,
    store::{self, Backend, Store},
};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => store::migrate(&Backend::from_url(&cli.config.database_url)).await.map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn load_master_key(config: &Config) -> Result<MasterKey, Box<dyn std::error::Error>> {
    if let Some(encoded) = &config.master_key {
        let key = MasterKey::from_base64(encoded.expose_secret())?;
        tracing::info!(key_id = key.id(), "using the master key from ROLEPLAY_MASTER_KEY");
        return Ok(key);
    }
    let path = &config.master_key_file;
    let (key, created) = MasterKey::load_or_create(path)?;
    if created {
        tracing::info!(path = %path.display(), key_id = key.id(), "created a new master key file; back it up: without it the stored API key cannot be read");
    } else {
        tracing::info!(path = %path.display(), key_id = key.id(), "loaded the master key");
    }
    Ok(key)
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let master_key = load_master_key(&config)?;
    let store = open_store(&config).await?;
    let interrupted = store.interrupt_orphaned_replies().await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "marked replies left streaming by the previous run as interrupted");
    }
    let options = ServerOptions::from(&config);
    let provider = OpenAiCompatible::new(
        options.connect_timeout,
        RetryPolicy {
            tries: options.upstream_tries,
            base_delay: options.retry_base_delay,
            max_delay: options.first_token_timeout / 4,
        },
    )?;
    let state = AppState::new(store, master_key, Arc::new(provider), options);
    let listener = TcpListener::bind(config.listen).await?;
    tracing::info!(address = %listener.local_addr()?, database = %database_kind(&config.database_url), "serving roleplay.v1");
    server::run(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the database, waiting for it when it cannot be reached yet (a
/// PostgreSQL that starts after us, or is restarting): the server heals by
/// itself instead of exiting. Other errors (a failed migration) stop it.
async fn open_store(config: &Config) -> Result<Store, store::StoreError> {
    let mut delay = Duration::from_millis(500);
    loop {
        match Store::open(&config.database_url, config.db_pool_size).await {
            Err(store::StoreError::Unavailable(detail)) => {
                tracing::warn!(%detail, retry_in_ms = delay.as_millis() as u64, "database unreachable; waiting for it");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown_signal() => return Err(store::StoreError::Unavailable(detail)),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
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
