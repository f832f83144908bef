//! The roleplay-server binary: configuration, logging, then serve or migrate.

use std::{process::ExitCode, sync::Arc, time::Duration};

use clap::Parser;
use roleplay_server::{
    config::{Cli, Command, Config, KeysCommand, LogFormat, ServerOptions, UsersCommand},
    keys,
    provider::{RetryPolicy, openai::OpenAiCompatible},
    secrets::{Keyring, MasterKey},
    server,
    state::AppState,
    store::{self, Backend, PageRequest, Store},
    users,
};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => store::migrate(&Backend::from_url(&cli.config.database_url)).await.map_err(Into::into),
        Command::Keys { action } => manage_keys(&cli.config, action).await,
        Command::Users { action } => manage_users(&cli.config, action).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout is for what commands like `users add` print),
/// as text or one JSON object per line.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
}

/// `users add | list | token | revoke`, straight on the database; a running
/// server sees the change at its next call.
async fn manage_users(config: &Config, action: UsersCommand) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&config.database_url, 1).await?;
    match action {
        UsersCommand::Add { name, admin } => {
            let created = users::create(&store, None, &name, admin).await?;
            // The token alone on stdout, so scripts can capture it.
            println!("{}", created.token.expose_secret());
            eprintln!(
                "created {}user {} ({}); the token above is shown only once",
                if admin { "admin " } else { "" },
                created.user.name,
                created.user.id
            );
        }
        UsersCommand::List => {
            let mut page = PageRequest { after: None, size: 500 };
            loop {
                let rows = users::list(&store, &page).await?;
                for user in &rows.items {
                    let state = if user.revoked_at.is_some() {
                        "revoked"
                    } else if user.token_hash.is_some() {
                        "active"
                    } else {
                        "no token"
                    };
                    let role = if user.is_admin { "admin" } else { "user" };
                    println!("{}  {:<24}  {role:<5}  {state}", user.id, user.name);
                }
                match rows.items.last() {
                    Some(last) if rows.has_more => page.after = Some(last.id.clone()),
                    _ => break,
                }
            }
        }
        UsersCommand::Token { user } => {
            let issued = users::issue_token(&store, None, &user).await?;
            println!("{}", issued.token.expose_secret());
            eprintln!("new token for {}; the previous one no longer works", issued.user.name);
        }
        UsersCommand::Revoke { user } => {
            let revoked = users::revoke(&store, &user).await?;
            eprintln!("revoked {} ({}); their token no longer works", revoked.name, revoked.id);
        }
    }
    Ok(())
}

fn load_keyring(config: &Config) -> Result<Keyring, Box<dyn std::error::Error>> {
    if let Some(list) = &config.master_keys {
        let keys = Keyring::from_base64_list(list.expose_secret())?;
        tracing::info!(primary = keys.primary().id(), keys = ?keys.ids(), "using the master keys from ROLEPLAY_MASTER_KEYS");
        return Ok(keys);
    }
    if let Some(encoded) = &config.master_key {
        let keys = Keyring::single(MasterKey::from_base64(encoded.expose_secret())?);
        tracing::info!(primary = keys.primary().id(), "using the master key from ROLEPLAY_MASTER_KEY");
        return Ok(keys);
    }
    let path = &config.master_key_file;
    let (keys, created) = Keyring::load(path, &config.master_key_dir())?;
    if created {
        tracing::info!(path = %path.display(), primary = keys.primary().id(), "created a new master key file; back it up: without it the stored API key cannot be read");
    } else {
        tracing::info!(path = %path.display(), primary = keys.primary().id(), keys = ?keys.ids(), "loaded the master keys");
    }
    Ok(keys)
}

/// `keys list | rotate | retire`: run against the database while the server
/// is stopped (or restart it afterwards, so it loads the new keys).
async fn manage_keys(config: &Config, action: KeysCommand) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&config.database_url, 1).await?;
    let file_based = config.master_keys.is_none() && config.master_key.is_none();
    let keys = load_keyring(config)?;
    let dir = config.master_key_dir();
    match action {
        KeysCommand::List => {
            let usage = keys::usage(&store).await?;
            for (index, id) in keys.ids().into_iter().enumerate() {
                let role = if index == 0 { "primary" } else { "older" };
                println!("{id}  {role:7}  {} stored value(s)", usage.get(id).copied().unwrap_or(0));
            }
            for (id, count) in usage.iter().filter(|(id, _)| !keys.ids().contains(&id.as_str())) {
                println!("{id}  MISSING  {count} stored value(s) cannot be decrypted");
            }
        }
        KeysCommand::Rotate => {
            if !file_based {
                return Err("keys come from ROLEPLAY_MASTER_KEY(S): put a new key first in ROLEPLAY_MASTER_KEYS and restart; rotate manages the key file and directory".into());
            }
            let old = keys.primary().id().to_owned();
            let keys = keys.rotate_files(&config.master_key_file, &dir)?;
            let rewritten = keys::reencrypt_all(&store, &keys).await?;
            println!(
                "new primary key {}; re-encrypted {rewritten} stored value(s); key {old} kept in {} until retired. Restart the server to use the new key.",
                keys.primary().id(),
                dir.display()
            );
        }
        KeysCommand::Retire { id } => {
            if id == keys.primary().id() {
                return Err(format!("key {id} is the primary key; rotate first").into());
            }
            let in_use = keys::usage(&store).await?.get(&id).copied().unwrap_or(0);
            if in_use > 0 {
                return Err(format!("key {id} still encrypts {in_use} stored value(s); run `keys rotate` first").into());
            }
            let path = dir.join(format!("{id}.key"));
            std::fs::remove_file(&path).map_err(|err| format!("key {id} is not in {}: {err}", dir.display()))?;
            println!("retired key {id}");
        }
    }
    Ok(())
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let keys = load_keyring(&config)?;
    let store = open_store(&config).await?;
    let interrupted = store.interrupt_orphaned_replies().await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "marked replies left streaming by the previous run as interrupted");
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
    let options = ServerOptions::from(&config);
    let provider = OpenAiCompatible::new(
        options.connect_timeout,
        RetryPolicy {
            tries: options.upstream_tries,
            base_delay: options.retry_base_delay,
            max_delay: options.first_token_timeout / 4,
        },
    )?;
    let state = AppState::new(store, keys, Arc::new(provider), options);
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
