//! Persistence: one [`Store`] over either embedded SQLite or PostgreSQL.
//!
//! The backend is chosen once, from the database URL, and never leaks out of
//! this module: every query is written once with diesel's DSL and compiled for
//! both backends by [`with_conn!`]. Both migration sets create the same schema
//! ([`schema`]); ids are UUIDv7 text and timestamps are truncated to
//! microseconds, so values read back are equal on either backend.
//!
//! A lookup by key takes its row with `get_result`, not `first`: `first`
//! adds `LIMIT ?`, and SQLite re-prepares a statement whose LIMIT is a bound
//! parameter every time it is bound again, so a cached lookup was parsed and
//! planned afresh at every call (5 % of the server's CPU while streaming).
//! For the same reason the hot UPDATE and upsert statements are written out
//! in `fixed`, and messages and usage records are inserted naming every
//! column.

mod avatars;
mod chats;
mod editing;
mod fencing;
mod fixed;
pub mod library;
mod lorebooks;
mod messages;
pub mod models;
mod paging;
mod prompt_inputs;
mod reply_pieces;
pub mod schema;
pub use reply_pieces::ReplyPiece;
mod settings;
mod usage;
mod users;
pub(crate) mod writer;

use std::{path::Path, time::Duration};

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::{Connection, SqliteConnection};
use diesel_async::{
    AsyncPgConnection, SimpleAsyncConnection,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        deadpool::{Pool as DieselPool, PoolError},
    },
    sync_connection_wrapper::SyncConnectionWrapper,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use fencing::{Fence, SWEPT};
pub use library::{CharacterFilter, DeleteOutcome};
pub use lorebooks::LorebookLinks;
pub use paging::{Page, PageRequest};
pub use prompt_inputs::PromptInputs;
pub use usage::{UsageGroupRow, UsageGrouping, UsageQuery};
use writer::SqliteWriter;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applied to every SQLite connection: WAL lets readers run beside the one
/// writer; foreign keys are off by default in SQLite; the busy timeout makes a
/// writer wait for the lock instead of failing at once. It comes first, so
/// the statements after it wait too (switching to WAL needs a lock that a
/// closing connection, checkpointing the WAL away, may hold for a moment).
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                            PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// SQLite has one writer at a time, so more connections only add contention.
const SQLITE_POOL_SIZE: usize = 4;

type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection available: {0}")]
    Unavailable(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A failed read that several callers waited for; each gets its words.
    #[error("{0}")]
    Shared(String),
    /// A replica's final write after another replica took the chat over.
    #[error("another server took over this reply (this one lost its hold on the chat); nothing was written")]
    Fenced,
}

impl StoreError {
    fn pool(err: PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }

    /// A write refused because a unique column already holds the value.
    pub fn is_unique_violation(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        matches!(self, Self::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)))
    }

    /// A write refused because a row it refers to, or a row referring to it,
    /// exists or not (foreign keys).
    pub fn is_foreign_key_violation(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Query(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => true,
            // SQLite reports a RESTRICT refusal from a statement step without
            // the extended code diesel classifies by; its message is fixed.
            Self::Query(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                info.message() == "FOREIGN KEY constraint failed"
            }
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(DieselPool<SqliteConn>),
    Postgres(DieselPool<AsyncPgConnection>),
}

/// A cheap-to-clone handle on the connection pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// SQLite only: the group-committing writer of the hot writes (see
    /// [`writer`]). Other writes use the pool and wait for its lock.
    pub(crate) sqlite_writer: Option<SqliteWriter>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.pool {
            Pool::Sqlite(_) => "Store(sqlite)",
            Pool::Postgres(_) => "Store(postgres)",
        })
    }
}

/// Domain functions take `&impl AsRef<Store>`: the store itself (the command
/// line) or the server's state (the RPC handlers, which never name the store).
impl AsRef<Store> for Store {
    fn as_ref(&self) -> &Store {
        self
    }
}

/// A connection from `$pool`, the wait for it timed, with a guard that
/// times the work on it (keep it while the connection is used).
macro_rules! checkout {
    ($pool:expr) => {{
        let waiting = $crate::observe::PoolWait::start();
        let pooled = $pool.get().await.map_err($crate::store::StoreError::pool)?;
        (pooled, waiting.got_connection())
    }};
}
pub(crate) use checkout;

/// Runs `$body` with `$conn` bound to a pooled connection of the store's
/// backend, timing the wait for the connection and the work on it. The body
/// is compiled once per backend, so it must use only what both support.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite(pool) => {
                let (mut pooled, _query) = $crate::store::checkout!(pool);
                let $conn = &mut *pooled;
                $body
            }
            $crate::store::Pool::Postgres(pool) => {
                let (mut pooled, _query) = $crate::store::checkout!(pool);
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// Runs one of the hot writes (a message pair, a checkpoint, a reply's
/// outcome), written once: on SQLite in the group-committing [`writer`] (its
/// own savepoint in the batch's transaction), on PostgreSQL in a transaction
/// of its own. In `$body`, `execute!(query, conn)` runs a statement and
/// `get_result!(query, conn)` returns its row: synchronously on the writer's
/// thread, awaited on the pool. The body must own what it uses (the writer
/// runs it on another thread), and ends with `Ok(value)`. `background`
/// first puts it in the writer's background lane (checkpoints).
macro_rules! hot_write {
    ($store:expr, $conn:ident => $body:block) => {
        $crate::store::hot_write!(@lane $crate::store::writer::Lane::Urgent, $store, $conn => $body)
    };
    (background $store:expr, $conn:ident => $body:block) => {
        $crate::store::hot_write!(@lane $crate::store::writer::Lane::Background, $store, $conn => $body)
    };
    (@lane $lane:expr, $store:expr, $conn:ident => $body:block) => {{
        let started = std::time::Instant::now();
        let written = match &$store.sqlite_writer {
            Some(writer) => {
                writer
                    .write($lane, move |$conn| {
                        #[allow(unused_macros, reason = "not every hot write executes a statement")]
                        macro_rules! execute {
                            ($query:expr, $c:ident) => {
                                diesel::RunQueryDsl::execute($query, $c)?
                            };
                        }
                        #[allow(unused_macros, reason = "not every hot write returns a row")]
                        macro_rules! get_result {
                            ($query:expr, $c:ident) => {
                                diesel::RunQueryDsl::get_result($query, $c)?
                            };
                        }
                        $body
                    })
                    .await
            }
            None => $crate::store::with_conn!($store, pooled => {
                diesel_async::AsyncConnection::transaction::<_, $crate::store::StoreError, _>(pooled, async |$conn| {
                    #[allow(unused_macros, reason = "not every hot write executes a statement")]
                    macro_rules! execute {
                        ($query:expr, $c:ident) => {
                            diesel_async::RunQueryDsl::execute($query, $c).await?
                        };
                    }
                    #[allow(unused_macros, reason = "not every hot write returns a row")]
                    macro_rules! get_result {
                        ($query:expr, $c:ident) => {
                            diesel_async::RunQueryDsl::get_result($query, $c).await?
                        };
                    }
                    $body
                })
                .await
            }),
        };
        $crate::observe::store_write(started.elapsed());
        written
    }};
}
pub(crate) use hot_write;

/// Runs several reads on one pooled connection, written once: on SQLite in
/// one hop to the blocking pool (each query awaited on its own would be a
/// hop of its own), on PostgreSQL one after another. In `$body`,
/// `load!(query, conn)` returns the rows and `one!(query, conn)` the one row
/// of a lookup by key, if any. The body must own what it uses (SQLite runs
/// it on a blocking thread) and ends with `Ok(value)`.
macro_rules! read_together {
    ($store:expr, $conn:ident => $body:block) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite(pool) => {
                let (mut pooled, _query) = $crate::store::checkout!(pool);
                pooled
                    .spawn_blocking(move |$conn| {
                        #[allow(unused_macros, reason = "not every read loads several rows")]
                        macro_rules! load {
                            ($query:expr, $c:ident) => {
                                diesel::RunQueryDsl::load($query, $c)?
                            };
                        }
                        #[allow(unused_macros, reason = "not every read takes one row")]
                        macro_rules! one {
                            ($query:expr, $c:ident) => {
                                diesel::OptionalExtension::optional(diesel::RunQueryDsl::get_result($query, $c))?
                            };
                        }
                        $body
                    })
                    .await?
            }
            $crate::store::Pool::Postgres(pool) => {
                let (mut pooled, _query) = $crate::store::checkout!(pool);
                let $conn = &mut *pooled;
                #[allow(unused_macros, reason = "not every read loads several rows")]
                macro_rules! load {
                    ($query:expr, $c:ident) => {
                        diesel_async::RunQueryDsl::load($query, $c).await?
                    };
                }
                #[allow(unused_macros, reason = "not every read takes one row")]
                macro_rules! one {
                    ($query:expr, $c:ident) => {
                        diesel::OptionalExtension::optional(diesel_async::RunQueryDsl::get_result($query, $c).await)?
                    };
                }
                let read: Result<_, diesel::result::Error> = async { $body }.await;
                read?
            }
        }
    };
}
pub(crate) use read_together;

impl Store {
    /// Whether this is a PostgreSQL database (replicas need one to share).
    pub fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// A round trip to the database, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), conn).await?;
        });
        Ok(())
    }
}

/// Which backend a database URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A file path (the `sqlite://` prefix is optional).
    Sqlite(String),
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(url.to_owned())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Self::Sqlite(path.to_owned())
        }
    }
}

impl Store {
    /// Opens the database (creating the SQLite file and its folder if needed)
    /// and applies pending migrations.
    pub async fn open(url: &str, max_connections: usize) -> StoreResult<Self> {
        let backend = Backend::from_url(url);
        migrate(&backend).await?;
        let mut sqlite_writer = None;
        let pool = match backend {
            Backend::Sqlite(path) => {
                sqlite_writer = Some(SqliteWriter::start(&path)?);
                // SQLite connections are handed out without diesel-async's
                // default test query (`SELECT 1` at every checkout): it was a
                // second hop to the blocking pool for every read, and a
                // connection to a local file cannot be cut while it idles.
                // PostgreSQL keeps the test: a connection the server cut is
                // not always seen closed by then, and the query would fail.
                let mut config = ManagerConfig::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(|path| {
                    Box::pin(async move {
                        let mut conn = <SqliteConn as diesel_async::AsyncConnection>::establish(path).await?;
                        conn.batch_execute(SQLITE_SETUP)
                            .await
                            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    })
                });
                let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
                Pool::Sqlite(build_pool(manager, max_connections.min(SQLITE_POOL_SIZE))?)
            }
            Backend::Postgres(url) => {
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
                Pool::Postgres(build_pool(manager, max_connections)?)
            }
        };
        Ok(Self { pool, sqlite_writer })
    }
}

fn build_pool<C>(manager: AsyncDieselConnectionManager<C>, size: usize) -> StoreResult<DieselPool<C>>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    DieselPool::builder(manager)
        .max_size(size.max(1))
        // A request waits this long for a free connection before it is told
        // the database is unavailable, rather than hanging.
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|err| StoreError::Unavailable(err.to_string()))
}

/// Applies pending migrations. Diesel's migration harness is synchronous, so
/// it runs on a blocking thread.
pub async fn migrate(backend: &Backend) -> StoreResult<()> {
    let backend = backend.clone();
    tokio::task::spawn_blocking(move || match backend {
        Backend::Sqlite(path) => {
            if let Some(parent) = Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|err| StoreError::Migration(err.to_string()))?;
            }
            let mut conn =
                SqliteConnection::establish(&path).map_err(|err| StoreError::Unavailable(err.to_string()))?;
            diesel::connection::SimpleConnection::batch_execute(&mut conn, SQLITE_SETUP)?;
            conn.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(drop)
                .map_err(|err| StoreError::Migration(err.to_string()))
        }
        Backend::Postgres(url) => {
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
                .map_err(|err| StoreError::Unavailable(err.to_string()))?;
            conn.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(drop)
                .map_err(|err| StoreError::Migration(err.to_string()))
        }
    })
    .await
    .map_err(|err| StoreError::Migration(err.to_string()))?
}

/// Now, truncated to the microseconds both backends keep.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
