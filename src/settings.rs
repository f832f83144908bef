//! Global settings: what is stored, what the defaults are, and the provider
//! API key, which is encrypted at rest and only ever decrypted to be sent to
//! the provider.

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

    /// The ordered fallback providers, as JSON (their keys are stored apart).
    pub const FALLBACK_PROVIDERS: &str = "fallback_providers";
    /// The name the primary provider goes by in stored messages.
    pub const PRIMARY_PROVIDER: &str = "primary";

    /// The setting that holds a fallback provider's encrypted key.
    pub fn fallback_api_key(provider: &str) -> String {
        format!("{PROVIDER_API_KEY}:{provider}")
    }

    /// The setting that holds a user's own encrypted provider key. Fallback
    /// names cannot contain ':', so the two never collide.
    pub fn user_api_key(user_id: &str) -> String {
        format!("user:{user_id}:{PROVIDER_API_KEY}")
    }

    /// Whether a setting is stored encrypted.
    pub fn is_secret(name: &str) -> bool {
        name == PROVIDER_API_KEY
            || name.starts_with("provider_api_key:")
            || (name.starts_with("user:") && name.ends_with(":provider_api_key"))
    }
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

/// A provider tried after the primary one, in order.
#[derive(Debug)]
pub struct Fallback {
    pub name: String,
    pub base_url: String,
    /// Empty: the chat's model.
    pub model: String,
    pub api_key: ApiKey,
}

/// How a fallback is stored in the settings table (its key apart, encrypted).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredFallback {
    name: String,
    base_url: String,
    model: String,
}

/// A fallback to store; `api_key: None` keeps the stored key of that name.
#[derive(Debug)]
pub struct FallbackInput {
    pub name: String,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<SecretString>,
}

#[derive(Debug)]
pub struct Settings {
    pub prompts: PromptSettings,
    pub default_model: String,
    pub provider_base_url: String,
    pub api_key: ApiKey,
    pub fallbacks: Vec<Fallback>,
}

fn read_key(keys: &Keyring, name: &str, stored: Option<String>) -> ApiKey {
    match stored {
        None => ApiKey::Missing,
        Some(ciphertext) => match keys.decrypt(name, &ciphertext) {
            Ok(secret) => ApiKey::Readable(secret),
            Err(err) => ApiKey::Unreadable(err),
        },
    }
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
        let api_key = read_key(key, names::PROVIDER_API_KEY, take(names::PROVIDER_API_KEY));
        let listed: Vec<StoredFallback> =
            take(names::FALLBACK_PROVIDERS).and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default();
        let fallbacks = listed
            .into_iter()
            .map(|StoredFallback { name, base_url, model }| {
                let key_name = names::fallback_api_key(&name);
                let api_key = read_key(key, &key_name, take(&key_name));
                Fallback { name, base_url, model, api_key }
            })
            .collect();
        Ok(Self {
            fallbacks,
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
}

impl ApiKey {
    pub fn is_set(&self) -> bool {
        !matches!(self, ApiKey::Missing)
    }

    /// "sk-…abcd" for a readable key, else empty.
    pub fn hint(&self) -> String {
        match self {
            ApiKey::Readable(key) => api_key_hint(key),
            _ => String::new(),
        }
    }

    /// Why a stored key cannot be used, else empty.
    pub fn problem(&self) -> String {
        match self {
            ApiKey::Unreadable(err) => unreadable_key_message(err),
            _ => String::new(),
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
    put_secret(store, key, names::PROVIDER_API_KEY, api_key).await
}

/// Encrypts a secret with its setting name as associated data (so it
/// cannot be moved to another name or user) and stores it.
async fn put_secret(store: &Store, keys: &Keyring, name: &str, secret: &SecretString) -> Result<()> {
    let ciphertext = keys
        .encrypt(name, secret)
        .map_err(|err| Error::Unavailable(format!("the key could not be encrypted: {err}")))?;
    Ok(store.put_settings(&[(name, &ciphertext)]).await?)
}

/// A user's own provider key, as far as this server can read it.
pub async fn user_api_key(store: &Store, keys: &Keyring, user_id: &str) -> Result<ApiKey> {
    let name = names::user_api_key(user_id);
    let stored = store.setting(&name).await?.filter(|v| !v.is_empty());
    Ok(read_key(keys, &name, stored))
}

pub async fn set_user_api_key(store: &Store, keys: &Keyring, user_id: &str, api_key: &SecretString) -> Result<()> {
    put_secret(store, keys, &names::user_api_key(user_id), api_key).await
}

pub async fn clear_user_api_key(store: &Store, user_id: &str) -> Result<()> {
    store.delete_setting(&names::user_api_key(user_id)).await?;
    Ok(())
}

/// The key a user's messages are sent with: their own when they stored
/// one, else the global one.
pub fn choose_api_key(own: &ApiKey, settings: &Settings) -> Result<SecretString> {
    match own {
        ApiKey::Readable(key) => Ok(key.clone()),
        ApiKey::Missing => settings.require_api_key().cloned(),
        ApiKey::Unreadable(err) => Err(Error::FailedPrecondition(format!(
            "your own provider API key cannot be decrypted ({err}); set it again with SettingsService/SetUserProviderApiKey"
        ))),
    }
}

/// Replaces the fallback list; keys of providers no longer listed are deleted.
pub async fn set_fallbacks(store: &Store, keys: &Keyring, inputs: Vec<FallbackInput>) -> Result<()> {
    let stored = store.settings().await?;
    let listed: Vec<StoredFallback> = inputs
        .iter()
        .map(|f| StoredFallback { name: f.name.clone(), base_url: f.base_url.clone(), model: f.model.clone() })
        .collect();
    let list_json = serde_json::to_string(&listed).map_err(|err| Error::invalid(err.to_string()))?;
    let mut writes: Vec<(String, String)> = vec![(names::FALLBACK_PROVIDERS.to_owned(), list_json)];
    for input in &inputs {
        if let Some(api_key) = &input.api_key {
            let key_name = names::fallback_api_key(&input.name);
            let ciphertext = keys
                .encrypt(&key_name, api_key)
                .map_err(|err| Error::Unavailable(format!("the key could not be encrypted: {err}")))?;
            writes.push((key_name, ciphertext));
        }
    }
    let pairs: Vec<(&str, &str)> = writes.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    store.put_settings(&pairs).await?;
    let kept: Vec<String> = inputs.iter().map(|f| names::fallback_api_key(&f.name)).collect();
    for name in stored.keys().filter(|n| n.starts_with("provider_api_key:") && !kept.contains(n)) {
        store.delete_setting(name).await?;
    }
    Ok(())
}

pub async fn clear_api_key(store: &Store) -> Result<()> {
    store.delete_setting(names::PROVIDER_API_KEY).await?;
    Ok(())
}
