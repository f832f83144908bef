//! The server's shared state: a bundle of cheap handles, cloned into every
//! service, and the lifecycle that shutdown drives.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use dashmap::DashMap;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::ServerOptions,
    limits::Limits,
    provider::ChatProvider,
    registry::{CancelReason, Registry},
    secrets::Keyring,
    settings::{self, ApiKey, Defaults, Settings},
    store::Store,
    users::Authenticator,
};

/// How long a settings snapshot is reused. Writes through this server drop
/// it at once; the age bounds how stale another server's writes can look.
const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// The settings as last read: sending a message reads them every time, and
/// a database round trip per message for rarely changed values is waste.
#[derive(Default)]
pub struct SettingsCache {
    /// A std lock: held only to copy an Arc in or out, never across an await.
    snapshot: std::sync::RwLock<Option<(Instant, Arc<Settings>)>>,
    /// Users' own provider keys, by user id, with when each was read.
    user_keys: DashMap<String, (Instant, Arc<ApiKey>)>,
}

impl SettingsCache {
    fn fresh(&self) -> Option<Arc<Settings>> {
        let snapshot = self.snapshot.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        snapshot.as_ref().filter(|(at, _)| at.elapsed() < SETTINGS_TTL).map(|(_, s)| Arc::clone(s))
    }

    fn store(&self, settings: Arc<Settings>) {
        *self.snapshot.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), settings));
    }

    /// Forgets the snapshot; call after every settings write.
    pub fn invalidate(&self) {
        *self.snapshot.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Forgets a user's own key; call after it is set or cleared.
    pub fn forget_user_key(&self, user_id: &str) {
        self.user_keys.remove(user_id);
    }

    fn fresh_user_key(&self, user_id: &str) -> Option<Arc<ApiKey>> {
        let entry = self.user_keys.get(user_id)?;
        let (at, key) = entry.value();
        (at.elapsed() < SETTINGS_TTL).then(|| Arc::clone(key))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Encrypts and decrypts secrets at rest.
    pub keys: Arc<Keyring>,
    pub registry: Registry,
    pub provider: Arc<dyn ChatProvider>,
    pub options: Arc<ServerOptions>,
    pub lifecycle: Lifecycle,
    pub settings_cache: Arc<SettingsCache>,
    /// Resolves each call's token to its user.
    pub auth: Arc<Authenticator>,
    pub limits: Arc<Limits>,
}

impl AppState {
    pub fn new(store: Store, keys: Keyring, provider: Arc<dyn ChatProvider>, options: ServerOptions) -> Self {
        Self {
            auth: Arc::new(Authenticator::new(store.clone())),
            limits: Arc::new(Limits::new(options.limits)),
            store,
            keys: Arc::new(keys),
            registry: Registry::new(options.max_watchers_per_chat, options.resume_grace),
            provider,
            options: Arc::new(options),
            lifecycle: Lifecycle::default(),
            settings_cache: Arc::default(),
        }
    }

    /// The current settings, from a snapshot at most a couple of seconds old.
    pub async fn settings(&self) -> crate::error::Result<Arc<Settings>> {
        if let Some(settings) = self.settings_cache.fresh() {
            return Ok(settings);
        }
        let settings = Arc::new(Settings::load(&self.store, &self.keys, &self.defaults()).await?);
        self.settings_cache.store(Arc::clone(&settings));
        Ok(settings)
    }

    /// A user's own provider key, from a snapshot as young as the settings'.
    pub async fn user_api_key(&self, user_id: &str) -> crate::error::Result<Arc<ApiKey>> {
        if let Some(key) = self.settings_cache.fresh_user_key(user_id) {
            return Ok(key);
        }
        let key = Arc::new(settings::user_api_key(&self.store, &self.keys, user_id).await?);
        self.settings_cache.user_keys.insert(user_id.to_owned(), (Instant::now(), Arc::clone(&key)));
        Ok(key)
    }

    pub fn defaults(&self) -> Defaults {
        Defaults {
            default_model: self.options.default_model.clone(),
            provider_base_url: self.options.provider_base_url.clone(),
        }
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
