//! Global settings: what is stored, what the defaults are, and the provider
//! API keys (global, per user, per fallback), which are encrypted at rest and
//! only ever decrypted to be sent to the provider origin they were entered
//! for.
//!
//! A key follows its host: each key is bound to the origin of the base URL it
//! was stored for (see [`crate::secrets`]). Moving a base URL to another
//! origin without giving the key again clears that key, with a note saying
//! why; a key found bound to another origin than the one a request would go
//! to is never sent.

use std::collections::HashMap;

use secrecy::SecretString;

use crate::{
    error::{Error, Result},
    samplers::Samplers,
    secrets::{Keyring, SecretError, api_key_hint, origin_of},
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
    /// Sampler settings for every chat, as JSON (see [`crate::samplers`]).
    pub const DEFAULT_SAMPLERS: &str = "default_samplers";
    pub const DEFAULT_CONTEXT_TOKENS: &str = "default_context_tokens";
    pub const DEFAULT_REPLY_TOKENS: &str = "default_reply_tokens";

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

    /// Why the key stored under `key_name` was cleared, kept until a key is
    /// stored there again.
    pub fn key_note(key_name: &str) -> String {
        format!("key_note:{key_name}")
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

/// A stored API key, as far as this server can read it.
#[derive(Debug)]
pub enum ApiKey {
    Missing,
    /// Cleared because its base URL moved to another origin: why, in words.
    Cleared(String),
    Readable {
        secret: SecretString,
        /// The provider origin it was entered for (`None`: stored before
        /// keys were bound; bound at the next start).
        origin: Option<String>,
    },
    Unreadable(SecretError),
}

/// Why a stored key cannot be sent to an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Unreadable(String),
    OtherOrigin { entered_for: String, origin: String },
    Unbound { origin: String },
    Cleared { note: String, origin: String },
}

/// Whose key it is: says how to set it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    Global,
    /// The caller's own key.
    User,
    Fallback,
}

impl KeyOwner {
    fn key(self) -> &'static str {
        match self {
            Self::User => "your own stored provider API key",
            Self::Global | Self::Fallback => "the stored provider API key",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Self::Global => "set it again with SettingsService/SetProviderApiKey",
            Self::User => "set it again with SettingsService/SetUserProviderApiKey, or clear it to use the global one",
            Self::Fallback => "give it again with SettingsService/SetFallbackProviders",
        }
    }
}

impl KeyProblem {
    /// The problem as a sentence, ending with how the `owner` fixes it.
    pub fn explain(&self, owner: KeyOwner) -> String {
        let (key, fix) = (owner.key(), owner.fix());
        match self {
            Self::Unreadable(err) => format!("{key} cannot be decrypted ({err}); {fix}"),
            Self::OtherOrigin { entered_for, origin } => format!(
                "no provider API key for {origin}: {key} was entered for {entered_for} and is never sent to \
                 another host; {fix}"
            ),
            Self::Unbound { origin } => format!(
                "no provider API key for {origin}: {key} is not bound to a provider host yet (it is at the next \
                 start); {fix}"
            ),
            Self::Cleared { note, origin } => format!("no provider API key for {origin}: {note}; {fix}"),
        }
    }
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

/// The stored fallback list (empty when none is stored, or it is not the
/// JSON this server writes).
fn stored_fallbacks(json: Option<&str>) -> Vec<StoredFallback> {
    json.and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default()
}

/// A fallback to store; `api_key: None` keeps the stored key of that name
/// while its base URL stays on the same origin.
#[derive(Debug)]
pub struct FallbackInput {
    pub name: String,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<SecretString>,
}

/// A model's context length when neither the catalog nor the chat says.
pub const DEFAULT_CONTEXT_TOKENS: u32 = 8_192;
/// Tokens kept free for the reply when no max_tokens is set.
pub const DEFAULT_REPLY_TOKENS: u32 = 1_024;

/// Global defaults for the prompt engine.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptDefaults {
    pub samplers: Samplers,
    pub context_tokens: u32,
    pub reply_tokens: u32,
}

#[derive(Debug)]
pub struct Settings {
    pub prompts: PromptSettings,
    pub prompt_defaults: PromptDefaults,
    pub default_model: String,
    pub provider_base_url: String,
    pub api_key: ApiKey,
    pub fallbacks: Vec<Fallback>,
}

/// What `name`'s stored value (and its note, when it was cleared) says.
fn read_key(keys: &Keyring, name: &str, stored: Option<String>, note: Option<String>) -> ApiKey {
    match (stored, note) {
        (None, None) => ApiKey::Missing,
        (None, Some(note)) => ApiKey::Cleared(note),
        (Some(ciphertext), _) => match keys.decrypt(name, &ciphertext) {
            Ok(opened) => ApiKey::Readable { secret: opened.secret, origin: opened.origin },
            Err(err) => ApiKey::Unreadable(err),
        },
    }
}

/// The origin (`scheme://host[:port]`) requests to `base_url` go to: what a
/// key is bound to. A path change on the same origin keeps the key.
pub fn origin(base_url: &str) -> String {
    match reqwest::Url::parse(base_url) {
        Ok(url) if url.origin().is_tuple() => url.origin().ascii_serialization(),
        _ => base_url.to_owned(),
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
    /// The global key, given with a base URL change so it is not cleared.
    pub api_key: Option<SecretString>,
    pub default_samplers: Option<Samplers>,
    pub default_context_tokens: Option<u32>,
    pub default_reply_tokens: Option<u32>,
}

impl Settings {
    pub async fn load(store: &Store, key: &Keyring, defaults: &Defaults) -> Result<Self> {
        let mut stored = store.settings().await?;
        let mut take = |name: &str| stored.remove(name).filter(|v| !v.is_empty());
        let api_key = read_key(
            key,
            names::PROVIDER_API_KEY,
            take(names::PROVIDER_API_KEY),
            take(&names::key_note(names::PROVIDER_API_KEY)),
        );
        let listed = stored_fallbacks(take(names::FALLBACK_PROVIDERS).as_deref());
        let fallbacks = listed
            .into_iter()
            .map(|StoredFallback { name, base_url, model }| {
                let key_name = names::fallback_api_key(&name);
                let api_key = read_key(key, &key_name, take(&key_name), take(&names::key_note(&key_name)));
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
            prompt_defaults: PromptDefaults {
                samplers: Samplers::from_stored(&take(names::DEFAULT_SAMPLERS).unwrap_or_default()),
                context_tokens: take(names::DEFAULT_CONTEXT_TOKENS)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_CONTEXT_TOKENS),
                reply_tokens: take(names::DEFAULT_REPLY_TOKENS)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_REPLY_TOKENS),
            },
            default_model: take(names::DEFAULT_MODEL).unwrap_or_else(|| defaults.default_model.clone()),
            provider_base_url: take(names::PROVIDER_BASE_URL).unwrap_or_else(|| defaults.provider_base_url.clone()),
            api_key,
        })
    }

    /// The origin the primary provider's requests go to.
    pub fn provider_origin(&self) -> String {
        origin(&self.provider_base_url)
    }

    /// The key to call the primary provider with, or why there is none.
    pub fn require_api_key(&self) -> Result<&SecretString> {
        match self.api_key.for_origin(&self.provider_origin()) {
            Ok(Some(key)) => Ok(key),
            Ok(None) => Err(Error::NoApiKey),
            Err(problem) => Err(Error::KeyUnusable { problem, owner: KeyOwner::Global }),
        }
    }
}

impl ApiKey {
    /// A key is stored, usable or not.
    pub fn is_set(&self) -> bool {
        matches!(self, ApiKey::Readable { .. } | ApiKey::Unreadable(_))
    }

    /// "sk-…abcd" for a readable key, else empty.
    pub fn hint(&self) -> String {
        match self {
            ApiKey::Readable { secret, .. } => api_key_hint(secret),
            _ => String::new(),
        }
    }

    /// The key to send to `origin`: `None` when none is stored, a problem
    /// when one is stored (or was cleared) but may not be sent there.
    pub fn for_origin(&self, origin: &str) -> Result<Option<&SecretString>, KeyProblem> {
        match self {
            ApiKey::Missing => Ok(None),
            ApiKey::Cleared(note) => Err(KeyProblem::Cleared { note: note.clone(), origin: origin.to_owned() }),
            ApiKey::Readable { secret, origin: Some(entered_for) } if entered_for == origin => Ok(Some(secret)),
            ApiKey::Readable { origin: Some(entered_for), .. } => {
                Err(KeyProblem::OtherOrigin { entered_for: entered_for.clone(), origin: origin.to_owned() })
            }
            ApiKey::Readable { origin: None, .. } => Err(KeyProblem::Unbound { origin: origin.to_owned() }),
            ApiKey::Unreadable(err) => Err(KeyProblem::Unreadable(err.to_string())),
        }
    }

    /// Why this key cannot be used for `origin`, in words, else empty.
    pub fn problem(&self, origin: &str, owner: KeyOwner) -> String {
        self.for_origin(origin).err().map(|problem| problem.explain(owner)).unwrap_or_default()
    }
}

/// The stored base URL of the primary provider, or the default.
async fn stored_base_url(store: &Store, defaults: &Defaults) -> Result<String> {
    Ok(store
        .setting(names::PROVIDER_BASE_URL)
        .await?
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| defaults.provider_base_url.clone()))
}

fn encrypt(keys: &Keyring, name: &str, origin: &str, secret: &SecretString) -> Result<String> {
    keys.encrypt(name, origin, secret).map_err(Error::Encryption)
}

/// A key-and-note change to write: the key (re)stored with its note removed,
/// or the key removed with a note saying why.
#[derive(Default)]
struct KeyWrites {
    values: Vec<(String, String)>,
    removed: Vec<String>,
}

impl KeyWrites {
    fn store_key(&mut self, name: &str, ciphertext: String) {
        self.values.push((name.to_owned(), ciphertext));
        self.removed.push(names::key_note(name));
    }

    fn clear_key(&mut self, name: &str, note: String) {
        self.removed.push(name.to_owned());
        self.values.push((names::key_note(name), note));
    }

    fn plain(&mut self, name: &str, value: &str) {
        self.values.push((name.to_owned(), value.to_owned()));
    }

    async fn write(self, store: &Store) -> Result<()> {
        let values: Vec<(&str, &str)> = self.values.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let removed: Vec<&str> = self.removed.iter().map(String::as_str).collect();
        Ok(store.change_settings(&values, &removed).await?)
    }
}

/// Why a key was cleared when its provider moved.
fn moved_note(what: &str, from: &str, to: &str) -> String {
    format!("{what} was cleared when its base URL moved from {from} to {to}, so it is not sent to the new host")
}

/// Writes the plain settings. A base URL moved to another origin clears the
/// global key unless `changes.api_key` gives it again for the new origin.
pub async fn update(store: &Store, keys: &Keyring, defaults: &Defaults, changes: &SettingsChanges) -> Result<()> {
    let mut writes = KeyWrites::default();
    let numbers = [
        (names::DEFAULT_SAMPLERS, changes.default_samplers.as_ref().map(Samplers::to_stored)),
        (names::DEFAULT_CONTEXT_TOKENS, changes.default_context_tokens.map(|n| n.to_string())),
        (names::DEFAULT_REPLY_TOKENS, changes.default_reply_tokens.map(|n| n.to_string())),
    ];
    for (name, value) in &numbers {
        if let Some(value) = value {
            writes.plain(name, value);
        }
    }
    for (name, value) in [
        (names::PRE_SYSTEM_PROMPT, &changes.pre_system_prompt),
        (names::SYSTEM_PROMPT, &changes.system_prompt),
        (names::POST_SYSTEM_PROMPT, &changes.post_system_prompt),
        (names::DEFAULT_MODEL, &changes.default_model),
        (names::PROVIDER_BASE_URL, &changes.provider_base_url),
    ] {
        if let Some(value) = value {
            writes.plain(name, value);
        }
    }
    let old_origin = origin(&stored_base_url(store, defaults).await?);
    let new_origin = match changes.provider_base_url.as_deref() {
        Some("") => origin(&defaults.provider_base_url),
        Some(url) => origin(url),
        None => old_origin.clone(),
    };
    if let Some(api_key) = &changes.api_key {
        writes.store_key(names::PROVIDER_API_KEY, encrypt(keys, names::PROVIDER_API_KEY, &new_origin, api_key)?);
    } else if new_origin != old_origin && store.setting(names::PROVIDER_API_KEY).await?.is_some() {
        writes.clear_key(names::PROVIDER_API_KEY, moved_note("the provider API key", &old_origin, &new_origin));
    }
    writes.write(store).await
}

/// Stores the global key, bound to the primary provider's current origin.
pub async fn set_api_key(store: &Store, keys: &Keyring, defaults: &Defaults, api_key: &SecretString) -> Result<()> {
    let origin = origin(&stored_base_url(store, defaults).await?);
    let mut writes = KeyWrites::default();
    writes.store_key(names::PROVIDER_API_KEY, encrypt(keys, names::PROVIDER_API_KEY, &origin, api_key)?);
    writes.write(store).await
}

pub async fn clear_api_key(store: &Store) -> Result<()> {
    let note = names::key_note(names::PROVIDER_API_KEY);
    store.change_settings(&[], &[names::PROVIDER_API_KEY, &note]).await?;
    Ok(())
}

/// A user's own provider key, as far as this server can read it.
pub async fn user_api_key(store: &Store, keys: &Keyring, user_id: &str) -> Result<ApiKey> {
    let name = names::user_api_key(user_id);
    let stored = store.setting(&name).await?.filter(|v| !v.is_empty());
    Ok(read_key(keys, &name, stored, None))
}

/// Stores a user's own key, bound to the primary provider's current origin
/// (the user's messages go there).
pub async fn set_user_api_key(
    store: &Store,
    keys: &Keyring,
    defaults: &Defaults,
    user_id: &str,
    api_key: &SecretString,
) -> Result<()> {
    let origin = origin(&stored_base_url(store, defaults).await?);
    let name = names::user_api_key(user_id);
    Ok(store.put_settings(&[(&name, &encrypt(keys, &name, &origin, api_key)?)]).await?)
}

pub async fn clear_user_api_key(store: &Store, user_id: &str) -> Result<()> {
    store.delete_setting(&names::user_api_key(user_id)).await?;
    Ok(())
}

/// The key a user's messages are sent with: their own when they stored
/// one, else the global one; either only if it was entered for the origin
/// the request goes to.
pub fn choose_api_key(own: &ApiKey, settings: &Settings) -> Result<SecretString> {
    match own.for_origin(&settings.provider_origin()) {
        Ok(Some(key)) => Ok(key.clone()),
        Ok(None) => settings.require_api_key().cloned(),
        Err(problem) => Err(Error::KeyUnusable { problem, owner: KeyOwner::User }),
    }
}

/// Replaces the fallback list; keys of providers no longer listed are
/// deleted, and a provider moved to another origin without a new key loses
/// its key.
pub async fn set_fallbacks(store: &Store, keys: &Keyring, inputs: Vec<FallbackInput>) -> Result<()> {
    let stored = store.settings().await?;
    let old_lists = stored_fallbacks(stored.get(names::FALLBACK_PROVIDERS).map(String::as_str));
    let listed: Vec<StoredFallback> = inputs
        .iter()
        .map(|f| StoredFallback { name: f.name.clone(), base_url: f.base_url.clone(), model: f.model.clone() })
        .collect();
    let list_json =
        serde_json::to_string(&listed).map_err(|err| Error::invalid("fallback_providers", err.to_string()))?;
    let mut writes = KeyWrites::default();
    writes.plain(names::FALLBACK_PROVIDERS, &list_json);
    for input in &inputs {
        let key_name = names::fallback_api_key(&input.name);
        let new_origin = origin(&input.base_url);
        if let Some(api_key) = &input.api_key {
            writes.store_key(&key_name, encrypt(keys, &key_name, &new_origin, api_key)?);
        } else if let Some(bound_to) = stored.get(&key_name).map(|value| key_origin(value, &old_lists, &input.name))
            && bound_to.as_deref() != Some(new_origin.as_str())
        {
            let from = bound_to.unwrap_or_else(|| "an unknown host".into());
            let what = format!("the API key of fallback provider {:?}", input.name);
            writes.clear_key(&key_name, moved_note(&what, &from, &new_origin));
        }
    }
    let kept: Vec<String> = inputs.iter().map(|f| names::fallback_api_key(&f.name)).collect();
    for name in stored.keys().filter(|n| n.starts_with("provider_api_key:") && !kept.contains(n)) {
        writes.removed.push(name.clone());
        writes.removed.push(names::key_note(name));
    }
    writes.write(store).await
}

/// The origin a stored fallback key is bound to; an unbound (v1) one counts
/// as bound to where its provider was listed.
fn key_origin(stored: &str, listed: &[StoredFallback], name: &str) -> Option<String> {
    origin_of(stored).or_else(|| listed.iter().find(|f| f.name == name).map(|f| origin(&f.base_url)))
}

/// Binds keys stored before keys were bound to a host (the v1 format) to the
/// origin they are sent to now: the global key and users' own keys to the
/// primary provider's, a fallback's to its own. Run once at start; returns
/// how many were bound.
pub async fn bind_unbound_keys(store: &Store, keys: &Keyring, defaults: &Defaults) -> Result<usize> {
    let all: HashMap<String, String> = store.all_settings().await?;
    let primary =
        origin(all.get(names::PROVIDER_BASE_URL).filter(|v| !v.is_empty()).unwrap_or(&defaults.provider_base_url));
    let listed = stored_fallbacks(all.get(names::FALLBACK_PROVIDERS).map(String::as_str));
    let mut bound = 0;
    for (name, stored) in all.iter().filter(|(name, value)| names::is_secret(name) && origin_of(value).is_none()) {
        let target = match name.strip_prefix("provider_api_key:") {
            Some(fallback) => match listed.iter().find(|f| f.name == fallback) {
                Some(f) => origin(&f.base_url),
                None => continue,
            },
            None => primary.clone(),
        };
        // A value no key opens stays as it is: GetSettings reports it.
        let Ok(opened) = keys.decrypt(name, stored) else { continue };
        store.put_settings(&[(name, &encrypt(keys, name, &target, &opened.secret)?)]).await?;
        bound += 1;
    }
    Ok(bound)
}
