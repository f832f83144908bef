//! Global settings: what is stored, what the defaults are, and the provider
//! API key, which is encrypted at rest and only ever decrypted to be sent to
//! the provider.

use std::collections::HashMap;

use secrecy::SecretString;

use crate::{
    error::{Error, Result},
    secrets::{Keyring, SecretError, api_key_hint},
    store::Store,
};

/// Setting names in the settings table.
pub mod names {
    pub const PROVIDER_API_KEY: &str = "provider_api_key";
    pub const PRE_SYSTEM_PROMPT: &str = "pre_system_prompt";
    pub const SYSTEM_PROMPT: &str = "system_prompt";
    pub const POST_SYSTEM_PROMPT: &str = "post_system_prompt";
    pub const DEFAULT_MODEL: &str = "default_model";
    pub const PROVIDER_BASE_URL: &str = "provider_base_url";

    /// Settings stored encrypted.
    pub const SECRETS: [&str; 1] = [PROVIDER_API_KEY];
}

/// The values used when nothing is stored.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub default_model: String,
    pub provider_base_url: String,
}

/// The prompt layers that come from settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptSettings {
    pub pre_system_prompt: String,
    pub system_prompt: String,
    pub post_system_prompt: String,
}

/// The stored API key, as far as this server can read it.
#[derive(Debug)]
pub enum ApiKey {
    Missing,
    Readable(SecretString),
    Unreadable(SecretError),
}

#[derive(Debug)]
pub struct Settings {
    pub prompts: PromptSettings,
    pub default_model: String,
    pub provider_base_url: String,
    pub api_key: ApiKey,
}

/// Changes to the plain settings; `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct SettingsChanges {
    pub pre_system_prompt: Option<String>,
    pub system_prompt: Option<String>,
    pub post_system_prompt: Option<String>,
    pub default_model: Option<String>,
    /// An empty string restores the default.
    pub provider_base_url: Option<String>,
}

impl Settings {
    pub async fn load(store: &Store, key: &Keyring, defaults: &Defaults) -> Result<Self> {
        let mut stored = store.settings().await?;
        let mut take = |name: &str| stored.remove(name).filter(|v| !v.is_empty());
        let api_key = match take(names::PROVIDER_API_KEY) {
            None => ApiKey::Missing,
            Some(ciphertext) => match key.decrypt(names::PROVIDER_API_KEY, &ciphertext) {
                Ok(secret) => ApiKey::Readable(secret),
                Err(err) => ApiKey::Unreadable(err),
            },
        };
        Ok(Self {
            prompts: PromptSettings {
                pre_system_prompt: take(names::PRE_SYSTEM_PROMPT).unwrap_or_default(),
                system_prompt: take(names::SYSTEM_PROMPT).unwrap_or_default(),
                post_system_prompt: take(names::POST_SYSTEM_PROMPT).unwrap_or_default(),
            },
            default_model: take(names::DEFAULT_MODEL).unwrap_or_else(|| defaults.default_model.clone()),
            provider_base_url: take(names::PROVIDER_BASE_URL).unwrap_or_else(|| defaults.provider_base_url.clone()),
            api_key,
        })
    }

    /// The key to call the provider with, or why there is none.
    pub fn require_api_key(&self) -> Result<&SecretString> {
        match &self.api_key {
            ApiKey::Readable(key) => Ok(key),
            ApiKey::Missing => Err(Error::FailedPrecondition(
                "no provider API key is set: call SettingsService/SetProviderApiKey first".into(),
            )),
            ApiKey::Unreadable(err) => Err(Error::FailedPrecondition(unreadable_key_message(err))),
        }
    }

    pub fn api_key_hint(&self) -> String {
        match &self.api_key {
            ApiKey::Readable(key) => api_key_hint(key),
            _ => String::new(),
        }
    }

    pub fn api_key_problem(&self) -> Option<String> {
        match &self.api_key {
            ApiKey::Unreadable(err) => Some(unreadable_key_message(err)),
            _ => None,
        }
    }
}

fn unreadable_key_message(err: &SecretError) -> String {
    format!(
        "the stored provider API key cannot be decrypted ({err}); set it again with SettingsService/SetProviderApiKey"
    )
}

pub async fn update(store: &Store, changes: &SettingsChanges) -> Result<()> {
    let pairs: Vec<(&str, &str)> = [
        (names::PRE_SYSTEM_PROMPT, &changes.pre_system_prompt),
        (names::SYSTEM_PROMPT, &changes.system_prompt),
        (names::POST_SYSTEM_PROMPT, &changes.post_system_prompt),
        (names::DEFAULT_MODEL, &changes.default_model),
        (names::PROVIDER_BASE_URL, &changes.provider_base_url),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    .collect();
    Ok(store.put_settings(&pairs).await?)
}

pub async fn set_api_key(store: &Store, key: &Keyring, api_key: &SecretString) -> Result<()> {
    let ciphertext = key
        .encrypt(names::PROVIDER_API_KEY, api_key)
        .map_err(|err| Error::Unavailable(format!("the key could not be encrypted: {err}")))?;
    Ok(store.put_settings(&[(names::PROVIDER_API_KEY, &ciphertext)]).await?)
}

pub async fn clear_api_key(store: &Store) -> Result<()> {
    store.delete_setting(names::PROVIDER_API_KEY).await?;
    Ok(())
}

/// Stored values by name, for tests and tools that inspect the raw table.
pub async fn raw(store: &Store) -> Result<HashMap<String, String>> {
    Ok(store.settings().await?)
}
