//! The provider's model catalog: context lengths, prices and parameters of
//! its models, from its `GET /models`. Kept in memory and refreshed in the
//! background, so a send never waits for it and an outage of the catalog
//! never stops a send: the last good list is served, with its age and why
//! the refresh failed.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::{
    error::{Error, Result},
    provider::{ChatProvider, ModelInfo},
    settings,
    state::AppState,
    users::Caller,
};

/// A list younger than this is served without asking the provider again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(600);
/// After a failed fetch, background refreshes wait this long: a provider
/// without a model list is not asked on every send.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// The list as last fetched.
#[derive(Debug, Clone, Default)]
pub struct CatalogView {
    pub models: Arc<Vec<ModelInfo>>,
    pub fetched_at: Option<DateTime<Utc>>,
    /// Why the last refresh failed, when it did.
    pub refresh_error: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The provider the list is of: another base URL needs another list.
    base_url: String,
    view: CatalogView,
    fetched: Option<Instant>,
    failed: Option<Instant>,
    refreshing: bool,
}

/// Whether a model is in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Yes { context_length: Option<u32> },
    No,
}

#[derive(Debug, Default)]
pub struct Catalog {
    inner: Mutex<Inner>,
}

impl Catalog {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `base_url`'s list says of `model`: `None` when there is no list,
    /// else whether it is listed and its context length when given.
    pub fn lookup(&self, base_url: &str, model: &str) -> Option<Listed> {
        let inner = self.inner();
        if inner.base_url != base_url || inner.fetched.is_none() {
            return None;
        }
        Some(match inner.view.models.iter().find(|m| m.id == model) {
            Some(found) => Listed::Yes { context_length: found.context_length },
            None => Listed::No,
        })
    }

    /// Starts a refresh in the background when the list of `base_url` is
    /// missing or older than [`REFRESH_EVERY`], unless one is running.
    pub fn refresh_if_stale(
        self: &Arc<Self>,
        provider: &Arc<dyn ChatProvider>,
        base_url: &str,
        api_key: Option<SecretString>,
    ) {
        {
            let mut inner = self.inner();
            let same = inner.base_url == base_url;
            let fresh = same && inner.fetched.is_some_and(|at| at.elapsed() < REFRESH_EVERY);
            let failed_lately = same && inner.failed.is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE);
            if fresh || failed_lately || inner.refreshing {
                return;
            }
            inner.refreshing = true;
        }
        let (catalog, provider, base_url) = (Arc::clone(self), Arc::clone(provider), base_url.to_owned());
        tokio::spawn(async move {
            let _ = catalog.fetch(&provider, &base_url, api_key).await;
        });
    }

    /// The list of `base_url`: fetched now when there is none yet (so the
    /// first caller waits), else the one in memory, refreshed in the
    /// background when old. UNAVAILABLE only when there never was a list.
    pub async fn list(
        self: &Arc<Self>,
        provider: &Arc<dyn ChatProvider>,
        base_url: &str,
        api_key: Option<SecretString>,
    ) -> Result<CatalogView> {
        let have = {
            let inner = self.inner();
            (inner.base_url == base_url && inner.fetched.is_some()).then(|| inner.view.clone())
        };
        match have {
            Some(view) => {
                self.refresh_if_stale(provider, base_url, api_key);
                Ok(view)
            }
            None => {
                self.inner().refreshing = true;
                self.fetch(provider, base_url, api_key).await
            }
        }
    }

    async fn fetch(
        &self,
        provider: &Arc<dyn ChatProvider>,
        base_url: &str,
        api_key: Option<SecretString>,
    ) -> Result<CatalogView> {
        let fetched = provider.list_models(base_url.to_owned(), api_key).await;
        let mut inner = self.inner();
        inner.refreshing = false;
        if inner.base_url != base_url {
            // Another provider's list is of no use for this one.
            *inner = Inner { base_url: base_url.to_owned(), ..Inner::default() };
        }
        match fetched {
            Ok(models) => {
                inner.view =
                    CatalogView { models: Arc::new(models), fetched_at: Some(Utc::now()), refresh_error: None };
                inner.fetched = Some(Instant::now());
                inner.failed = None;
                Ok(inner.view.clone())
            }
            Err(err) => {
                tracing::warn!(error = %err, "the provider's model list could not be fetched");
                // Try again at the next use rather than at once.
                inner.view.refresh_error = Some(err.to_string());
                inner.failed = Some(Instant::now());
                if inner.fetched.is_some() {
                    Ok(inner.view.clone())
                } else {
                    Err(Error::CatalogUnavailable(err.to_string()))
                }
            }
        }
    }
}

/// The provider's models as the caller sees them, fetched with the key the
/// caller's messages would use (none works for providers without keys).
pub async fn list(state: &AppState, caller: &Caller) -> Result<CatalogView> {
    let (settings, own_key) = tokio::try_join!(state.settings(), state.user_api_key(&caller.user_id))?;
    let key = settings::choose_api_key(&own_key, &settings).ok();
    state.catalog.list(&state.provider, &settings.provider_base_url, key).await
}
