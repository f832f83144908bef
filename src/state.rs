//! The server's shared state: a bundle of cheap handles, cloned into every
//! service, and the lifecycle that shutdown drives.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use secrecy::SecretString;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    catalog::Catalog,
    config::ServerOptions,
    error::{Error, Result},
    limits::Limits,
    provider::ChatProvider,
    secrets::Keyring,
    settings::{self, ApiKey, Defaults, FallbackInput, Settings, SettingsChanges},
    store::{Store, StoreError},
    stream::{
        redis::RedisShared,
        registry::{CancelReason, Registry},
        shared::Sharing,
    },
    tokens::TokenCounter,
    users::{Authenticator, Caller},
};

/// A load error shared by the callers that waited for the same read: the
/// first gets it whole, the others a copy of its kind and words (loading
/// settings fails only in the store).
fn shared_error(err: Arc<Error>) -> Error {
    Arc::try_unwrap(err).unwrap_or_else(|shared| match &*shared {
        Error::Store(StoreError::Unavailable(detail)) => Error::Store(StoreError::Unavailable(detail.clone())),
        other => Error::Store(StoreError::Shared(other.to_string())),
    })
}

/// How long a settings snapshot is reused. Writes through this server drop
/// it at once; the age bounds how stale another server's writes can look.
const SETTINGS_TTL: Duration = Duration::from_secs(2);
/// Users whose own key is kept at once; beyond it the least used go first.
const USER_KEYS_CACHED: u64 = 10_000;

/// The settings as last read: sending a message reads them every time, and
/// a database round trip per message for rarely changed values is waste.
/// Concurrent misses share one read.
pub struct SettingsCache {
    snapshot: moka::future::Cache<(), Arc<Settings>>,
    /// Users' own provider keys, by user id.
    user_keys: moka::future::Cache<String, Arc<ApiKey>>,
}

impl Default for SettingsCache {
    fn default() -> Self {
        Self {
            snapshot: moka::future::Cache::builder().max_capacity(1).time_to_live(SETTINGS_TTL).build(),
            user_keys: moka::future::Cache::builder().max_capacity(USER_KEYS_CACHED).time_to_live(SETTINGS_TTL).build(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Encrypts and decrypts secrets at rest.
    pub keys: Arc<Keyring>,
    pub registry: Registry,
    /// What replicas share (nothing when this process is the only one).
    pub sharing: Sharing,
    pub provider: Arc<dyn ChatProvider>,
    pub options: Arc<ServerOptions>,
    pub lifecycle: Lifecycle,
    settings_cache: Arc<SettingsCache>,
    /// Resolves each call's token to its user.
    pub auth: Arc<Authenticator>,
    pub limits: Arc<Limits>,
    /// Counts prompt tokens with each model's tokenizer.
    pub tokens: TokenCounter,
    /// The provider's models, for context lengths and ListModels.
    pub catalog: Arc<Catalog>,
}

impl AppState {
    /// A tokenizer file that cannot be read is refused before this, by
    /// [`crate::server::run`]; here it falls back to the built-in encodings.
    pub fn new(store: Store, keys: Keyring, provider: Arc<dyn ChatProvider>, options: ServerOptions) -> Self {
        let tokens = TokenCounter::new(&options.tokenizer_files).unwrap_or_else(|err| {
            tracing::error!(error = %err, "tokenizer files not loaded; counting with the built-in encodings");
            TokenCounter::builtin()
        });
        Self {
            tokens,
            catalog: Arc::default(),
            auth: Arc::new(Authenticator::new(store.clone())),
            limits: Arc::new(Limits::new(options.limits)),
            store,
            keys: Arc::new(keys),
            registry: Registry::new(options.max_watchers_per_chat, options.resume_grace),
            sharing: Sharing::Single,
            provider,
            options: Arc::new(options),
            lifecycle: Lifecycle::default(),
            settings_cache: Arc::default(),
        }
    }

    /// With `ROLEPLAY_REDIS_URL`: shares the registry, chat locks and send
    /// limits with the other replicas through Redis. Refused on SQLite:
    /// replicas must share one database.
    pub async fn share_with_replicas(&mut self) -> std::result::Result<(), String> {
        let Some(url) = self.options.redis_url.clone() else { return Ok(()) };
        if !self.store.is_postgres() {
            return Err("ROLEPLAY_REDIS_URL needs a PostgreSQL DATABASE_URL (postgres://...): replicas must share \
                        one database, and a SQLite file belongs to one process"
                .into());
        }
        let shared = RedisShared::connect(
            &url,
            self.registry.clone(),
            self.store.clone(),
            self.options.redis_lease,
            self.options.limits,
            self.lifecycle.stop_followers.clone(),
        )
        .await
        .map_err(|err| err.to_string())?;
        self.sharing = Sharing::Redis(shared);
        Ok(())
    }

    /// The current settings, from a snapshot at most a couple of seconds old.
    pub async fn settings(&self) -> Result<Arc<Settings>> {
        let (store, keys, defaults) = (&self.store, &self.keys, self.defaults());
        self.settings_cache
            .snapshot
            .try_get_with((), async { Settings::load(store, keys, &defaults).await.map(Arc::new) })
            .await
            .map_err(shared_error)
    }

    /// A user's own provider key, from a snapshot as young as the settings'.
    pub async fn user_api_key(&self, user_id: &str) -> Result<Arc<ApiKey>> {
        let (store, keys) = (&self.store, &self.keys);
        self.settings_cache
            .user_keys
            .try_get_with(user_id.to_owned(), async {
                settings::user_api_key(store, keys, user_id).await.map(Arc::new)
            })
            .await
            .map_err(shared_error)
    }

    /// The settings as `caller` sees them, read afresh (a write may just
    /// have happened elsewhere), with their own key.
    pub async fn settings_for(&self, caller: &Caller) -> Result<(Settings, ApiKey)> {
        self.settings_cache.snapshot.invalidate_all();
        self.settings_cache.user_keys.invalidate(&caller.user_id).await;
        let defaults = self.defaults();
        tokio::try_join!(
            Settings::load(&self.store, &self.keys, &defaults),
            settings::user_api_key(&self.store, &self.keys, &caller.user_id),
        )
    }

    /// Changes the global settings (see [`settings::update`]).
    pub async fn update_settings(&self, changes: &SettingsChanges) -> Result<()> {
        settings::update(&self.store, &self.keys, &self.defaults(), changes).await?;
        self.settings_changed().await;
        Ok(())
    }

    pub async fn set_api_key(&self, api_key: &SecretString) -> Result<()> {
        settings::set_api_key(&self.store, &self.keys, &self.defaults(), api_key).await?;
        self.settings_changed().await;
        Ok(())
    }

    pub async fn clear_api_key(&self) -> Result<()> {
        settings::clear_api_key(&self.store).await?;
        self.settings_changed().await;
        Ok(())
    }

    pub async fn set_fallbacks(&self, inputs: Vec<FallbackInput>) -> Result<()> {
        settings::set_fallbacks(&self.store, &self.keys, inputs).await?;
        self.settings_changed().await;
        Ok(())
    }

    pub async fn set_user_api_key(&self, user_id: &str, api_key: &SecretString) -> Result<()> {
        settings::set_user_api_key(&self.store, &self.keys, &self.defaults(), user_id, api_key).await?;
        self.settings_cache.user_keys.invalidate(user_id).await;
        Ok(())
    }

    pub async fn clear_user_api_key(&self, user_id: &str) -> Result<()> {
        settings::clear_user_api_key(&self.store, user_id).await?;
        self.settings_cache.user_keys.invalidate(user_id).await;
        Ok(())
    }

    /// Forgets everything read from settings: the next message reads them.
    pub async fn settings_changed(&self) {
        self.settings_cache.snapshot.invalidate_all();
        self.settings_cache.user_keys.invalidate_all();
    }

    pub fn defaults(&self) -> Defaults {
        Defaults {
            default_model: self.options.default_model.clone(),
            provider_base_url: self.options.provider_base_url.clone(),
        }
    }
}

impl AsRef<Store> for AppState {
    fn as_ref(&self) -> &Store {
        &self.store
    }
}

/// Whether new generations are accepted, the running generation tasks, and
/// the signal that ends long-lived watch streams.
#[derive(Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
    /// Every generation task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Cancelled last at shutdown: ends watch streams once every generation
    /// has delivered its terminal event.
    pub stop_followers: CancellationToken,
}

impl Lifecycle {
    pub fn is_accepting(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
    }

    /// Stops accepting generations, lets running ones finish for `grace`,
    /// cancels the rest (their partial text is stored), then ends watches.
    pub async fn shutdown(&self, registry: &Registry, grace: Duration) {
        self.draining.store(true, Ordering::Release);
        self.tasks.close();
        let running = self.tasks.len();
        if running > 0 {
            tracing::info!(running, grace_s = grace.as_secs_f64(), "waiting for running replies to finish");
        }
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_err() {
            let live = registry.live_generations();
            tracing::warn!(cancelled = live.len(), "shutdown grace over; cancelling running replies");
            for generation in live {
                generation.cancel(CancelReason::Shutdown);
            }
            self.tasks.wait().await;
        }
        self.stop_followers.cancel();
    }
}
