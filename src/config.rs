//! Command line and environment configuration. [`ServerOptions`], what the
//! running server reads, is part of the command line (flattened), so each
//! option and its default is written once; tests build it by hand.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::{api::browser::BrowserOptions, limits::LimitOptions};

pub const DEFAULT_MODEL: &str = "meta-llama/llama-3.2-3b-instruct";
pub const DEFAULT_PROVIDER_BASE_URL: &str = "https://openrouter.ai/api/v1";

#[derive(Debug, Parser)]
#[command(name = "roleplay-server", version, about = "gRPC roleplay chat server with resumable LLM streams")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users and their API tokens.
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Manage master keys (file-based keyring: the key file and the key directory).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List key ids and how many stored values each encrypts.
    List,
    /// Make a new primary key, keep the old one for decryption, and
    /// re-encrypt every stored secret with the new key. Restart the server
    /// afterwards so it uses the new key.
    Rotate,
    /// Delete an older key; refused while any stored value still uses it.
    Retire {
        /// The key id (8 hex digits, as `keys list` shows).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print its API token (shown only this once) on stdout.
    Add {
        /// 1 to 64 letters, digits, '-', '_' or '.'.
        name: String,
        /// May manage users, global settings and everyone's usage.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
    /// Print a new token for a user (by name or id); the old one stops working.
    Token { user: String },
    /// Revoke a user's token (by name or id) at once; their data stays.
    Revoke { user: String },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "ROLEPLAY_LISTEN", default_value = "127.0.0.1:50051", global = true)]
    pub listen: SocketAddr,

    /// The admin listener for GET /metrics (Prometheus), /healthz and
    /// /readyz; empty turns it off.
    #[arg(long, env = "ROLEPLAY_METRICS_LISTEN", default_value = "127.0.0.1:9464", global = true)]
    pub metrics_listen: String,

    /// A SQLite file path (optionally sqlite://...) or a postgres:// URL.
    #[arg(long, env = "DATABASE_URL", default_value = "data/roleplay.db", hide_env_values = true, global = true)]
    pub database_url: String,

    /// Maximum database connections (SQLite uses at most 4).
    #[arg(long, env = "ROLEPLAY_DB_POOL_SIZE", default_value_t = 16, global = true)]
    pub db_pool_size: usize,

    /// The master key as base64 of 32 bytes. Wins over the key file.
    #[arg(long, env = "ROLEPLAY_MASTER_KEY", hide_env_values = true, value_parser = parse_secret, global = true)]
    pub master_key: Option<SecretString>,

    /// Several master keys as base64, separated by commas: the first
    /// encrypts, all decrypt. Wins over the key file and directory.
    #[arg(long, env = "ROLEPLAY_MASTER_KEYS", hide_env_values = true, value_parser = parse_secret, global = true)]
    pub master_keys: Option<SecretString>,

    /// File holding the primary master key; created with a new random key
    /// (mode 0600) when it does not exist.
    #[arg(long, env = "ROLEPLAY_MASTER_KEY_FILE", default_value = "data/master.key", global = true)]
    pub master_key_file: PathBuf,

    /// Directory of older master keys (`<id>.key`), kept to decrypt values
    /// written before a rotation. Default: `keys/` beside the key file.
    #[arg(long, env = "ROLEPLAY_MASTER_KEY_DIR", global = true)]
    pub master_key_dir: Option<PathBuf>,

    /// Serve a non-loopback address in single-user mode (no tokens issued
    /// yet), letting anyone who can reach it in. Create a user instead.
    #[arg(long, env = "ROLEPLAY_INSECURE", global = true)]
    pub insecure: bool,

    /// Log format on stderr.
    #[arg(long, env = "ROLEPLAY_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,

    /// What the running server does.
    #[command(flatten)]
    pub server: ServerOptions,
}

impl Config {
    pub fn master_key_dir(&self) -> PathBuf {
        self.master_key_dir.clone().unwrap_or_else(|| {
            self.master_key_file.parent().map_or_else(|| PathBuf::from("keys"), |dir| dir.join("keys"))
        })
    }
}

fn parse_secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_owned()))
}

/// A count that must be at least one.
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{value:?} is not a whole number of at least 1")),
    }
}

/// Everything the running server needs to know. Each option is written
/// once, here, with its default, its environment variable and its help;
/// [`ServerOptions::default`] is what the command line gives with no flags.
#[derive(Debug, Clone, Args)]
pub struct ServerOptions {
    /// OpenAI-compatible API base URL, used until one is stored in settings.
    #[arg(long, env = "OPENROUTER_BASE_URL", default_value = DEFAULT_PROVIDER_BASE_URL, global = true)]
    pub provider_base_url: String,

    /// Hugging Face tokenizer files for exact token counts, as
    /// `MODEL_PREFIX=PATH` pairs (comma-separated in the environment): a
    /// model whose id starts with the prefix is counted with that file.
    /// Other models use tiktoken's encodings.
    #[arg(long = "tokenizer", env = "ROLEPLAY_TOKENIZERS", value_delimiter = ',', global = true)]
    pub tokenizer_files: Vec<String>,

    /// Model used when neither the chat nor the settings name one.
    #[arg(long, env = "ROLEPLAY_DEFAULT_MODEL", default_value = DEFAULT_MODEL, global = true)]
    pub default_model: String,

    /// Send a Heartbeat event when a stream was silent this long.
    #[arg(long, env = "ROLEPLAY_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration, global = true)]
    pub heartbeat_interval: Duration,

    /// Timeout for connecting to the provider.
    #[arg(long, env = "ROLEPLAY_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub connect_timeout: Duration,

    /// Longest wait from sending a request (retries included) to the first token.
    #[arg(long, env = "ROLEPLAY_FIRST_TOKEN_TIMEOUT", default_value = "90s", value_parser = humantime::parse_duration, global = true)]
    pub first_token_timeout: Duration,

    /// Longest silence between two chunks once text has started.
    #[arg(long, env = "ROLEPLAY_CHUNK_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub chunk_timeout: Duration,

    /// Tries per request when the provider answers 408/429/5xx or cannot be
    /// reached before the first token.
    #[arg(long, env = "ROLEPLAY_UPSTREAM_TRIES", default_value = "3", value_parser = at_least_one, global = true)]
    pub upstream_tries: usize,

    /// First delay between tries; doubles each time, with jitter.
    #[arg(long, env = "ROLEPLAY_RETRY_BASE_DELAY", default_value = "500ms", value_parser = humantime::parse_duration, global = true)]
    pub retry_base_delay: Duration,

    /// A reply nobody watches for this long is cancelled and stored.
    #[arg(long, env = "ROLEPLAY_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub idle_timeout: Duration,

    /// Clients that may follow one chat at once.
    #[arg(long, env = "ROLEPLAY_MAX_WATCHERS_PER_CHAT", default_value = "32", value_parser = at_least_one, global = true)]
    pub max_watchers_per_chat: usize,

    /// How long a finished reply stays resumable from memory (then from the database).
    #[arg(long, env = "ROLEPLAY_RESUME_GRACE", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub resume_grace: Duration,

    /// How often the text of running replies is saved, so a crash loses at
    /// most this much of what was streamed.
    #[arg(long, env = "ROLEPLAY_CHECKPOINT_INTERVAL", default_value = "250ms", value_parser = humantime::parse_duration, global = true)]
    pub checkpoint_interval: Duration,

    /// On shutdown, how long running replies may finish before they are cancelled.
    #[arg(long, env = "ROLEPLAY_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_grace: Duration,

    /// Run as one of several replicas sharing the stream registry, the chat
    /// locks and the send limits through this Redis (`redis://host:port/`).
    /// Requires PostgreSQL: replicas must share the database.
    #[arg(long, env = "ROLEPLAY_REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,

    /// With Redis: how long a replica's hold on a chat outlives its last
    /// renewal (renewed every third of it). A replica that dies frees its
    /// chats after this, plus half of it for another replica's sweep.
    #[arg(long, env = "ROLEPLAY_REDIS_LEASE", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub redis_lease: Duration,

    #[command(flatten)]
    pub limits: LimitOptions,

    #[command(flatten)]
    pub browser: BrowserOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        /// The options alone, as a command line with no flags gives them.
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            options: ServerOptions,
        }
        Defaults::parse_from(["roleplay-server"]).options
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed_and_defaults_come_from_it() {
        Cli::command().debug_assert();
        let defaults = ServerOptions::default();
        assert_eq!(defaults.heartbeat_interval, Duration::from_secs(15));
        assert_eq!(defaults.checkpoint_interval, Duration::from_millis(250));
        assert_eq!((defaults.upstream_tries, defaults.max_watchers_per_chat), (3, 32));
        assert_eq!(defaults.limits.messages_per_minute_per_user, 60);
        assert_eq!(defaults.limits.window, Duration::from_secs(60));
        let cli = Cli::parse_from(["roleplay-server", "--upstream-tries", "5", "--cors-origins", "http://a.example"]);
        assert_eq!(cli.config.server.upstream_tries, 5);
        assert!(Cli::try_parse_from(["roleplay-server", "--upstream-tries", "0"]).is_err(), "at least one try");
    }
}
