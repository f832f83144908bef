//! roleplay.v1.SettingsService.

use std::fmt;

use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::{
    auth::{admin, caller},
    convert::settings_view,
    pb::{self, settings_service_server::SettingsService},
    validate::{self, MODEL_MAX_CHARS, PROMPT_MAX_CHARS},
};
use crate::{
    settings::{self, FallbackInput, Settings, SettingsChanges, names},
    state::AppState,
    users::Caller,
};

/// The generated Debug is switched off for this message (build.rs): it would
/// print the key.
impl fmt::Debug for pb::SetProviderApiKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetProviderApiKeyRequest").field("api_key", &"[REDACTED]").finish()
    }
}

impl fmt::Debug for pb::UpdateSettingsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateSettingsRequest")
            .field("pre_system_prompt", &self.pre_system_prompt)
            .field("system_prompt", &self.system_prompt)
            .field("post_system_prompt", &self.post_system_prompt)
            .field("default_model", &self.default_model)
            .field("provider_base_url", &self.provider_base_url)
            .field("provider_api_key", &self.provider_api_key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Enough for a chain of providers; more would only delay the failure.
const MAX_FALLBACK_PROVIDERS: usize = 8;

impl fmt::Debug for pb::FallbackProviderInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackProviderInput")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

pub struct SettingsApi {
    state: AppState,
}

impl SettingsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn current(&self, caller: &Caller) -> Result<Response<pb::Settings>, Status> {
        // A write may just have happened: read afresh, and drop the snapshot
        // that message sending reuses.
        let state = &self.state;
        state.settings_cache.invalidate();
        let defaults = state.defaults();
        let (settings, own_key) = tokio::try_join!(
            Settings::load(&state.store, &state.keys, &defaults),
            settings::user_api_key(&state.store, &state.keys, &caller.user_id),
        )?;
        Ok(Response::new(settings_view(settings, &own_key, caller.admin)))
    }
}

const ADMIN_ACTION: &str = "change the global settings";

#[tonic::async_trait]
impl SettingsService for SettingsApi {
    async fn get_settings(&self, request: Request<pb::GetSettingsRequest>) -> Result<Response<pb::Settings>, Status> {
        self.current(&caller(&request)?).await
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = admin(&request, ADMIN_ACTION)?;
        let pb::UpdateSettingsRequest {
            pre_system_prompt,
            system_prompt,
            post_system_prompt,
            default_model,
            provider_base_url,
            provider_api_key,
        } = request.into_inner();
        let api_key =
            provider_api_key.map(|key| validate::api_key(&key).map(|()| SecretString::from(key))).transpose()?;
        let changes = SettingsChanges {
            pre_system_prompt: validate::optional_at_most("pre_system_prompt", pre_system_prompt, PROMPT_MAX_CHARS)?,
            system_prompt: validate::optional_at_most("system_prompt", system_prompt, PROMPT_MAX_CHARS)?,
            post_system_prompt: validate::optional_at_most("post_system_prompt", post_system_prompt, PROMPT_MAX_CHARS)?,
            default_model: default_model
                .map(|m| validate::required("default_model", m, MODEL_MAX_CHARS))
                .transpose()?,
            provider_base_url: provider_base_url.map(validate::base_url).transpose()?,
            api_key,
        };
        let state = &self.state;
        settings::update(&state.store, &state.keys, &state.defaults(), &changes).await?;
        self.current(&caller).await
    }

    async fn set_provider_api_key(
        &self,
        request: Request<pb::SetProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = admin(&request, ADMIN_ACTION)?;
        let api_key = SecretString::from(request.into_inner().api_key);
        validate::api_key(secrecy::ExposeSecret::expose_secret(&api_key))?;
        settings::set_api_key(&self.state.store, &self.state.keys, &self.state.defaults(), &api_key).await?;
        tracing::info!("provider API key replaced");
        self.current(&caller).await
    }

    async fn set_fallback_providers(
        &self,
        request: Request<pb::SetFallbackProvidersRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = admin(&request, ADMIN_ACTION)?;
        let providers = request.into_inner().providers;
        if providers.len() > MAX_FALLBACK_PROVIDERS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_FALLBACK_PROVIDERS} fallback providers are allowed, got {}",
                providers.len()
            )));
        }
        let mut inputs: Vec<FallbackInput> = Vec::with_capacity(providers.len());
        for pb::FallbackProviderInput { name, base_url, model, api_key } in providers {
            let valid_name = (1..=64).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && name != names::PRIMARY_PROVIDER;
            if !valid_name {
                return Err(Status::invalid_argument(format!(
                    "fallback provider name {name:?} must be 1 to 64 letters, digits, '-', '_' or '.', and not \"primary\""
                )));
            }
            if inputs.iter().any(|f| f.name == name) {
                return Err(Status::invalid_argument(format!("fallback provider {name:?} is listed twice")));
            }
            let base_url = validate::base_url(base_url)?;
            if base_url.is_empty() {
                return Err(Status::invalid_argument(format!("fallback provider {name:?} needs a base_url")));
            }
            let model = validate::at_most("model", model, MODEL_MAX_CHARS)?;
            let api_key = match api_key {
                Some(key) => {
                    validate::api_key(&key)?;
                    Some(SecretString::from(key))
                }
                None => None,
            };
            inputs.push(FallbackInput { name, base_url, model, api_key });
        }
        settings::set_fallbacks(&self.state.store, &self.state.keys, inputs).await?;
        tracing::info!("fallback providers replaced");
        self.current(&caller).await
    }

    async fn clear_provider_api_key(
        &self,
        request: Request<pb::ClearProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = admin(&request, ADMIN_ACTION)?;
        settings::clear_api_key(&self.state.store).await?;
        tracing::info!("provider API key cleared");
        self.current(&caller).await
    }

    async fn set_user_provider_api_key(
        &self,
        request: Request<pb::SetProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = caller(&request)?;
        let api_key = SecretString::from(request.into_inner().api_key);
        validate::api_key(secrecy::ExposeSecret::expose_secret(&api_key))?;
        let state = &self.state;
        settings::set_user_api_key(&state.store, &state.keys, &state.defaults(), &caller.user_id, &api_key).await?;
        self.state.settings_cache.forget_user_key(&caller.user_id);
        tracing::info!("user's own provider API key replaced");
        self.current(&caller).await
    }

    async fn clear_user_provider_api_key(
        &self,
        request: Request<pb::ClearProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = caller(&request)?;
        settings::clear_user_api_key(&self.state.store, &caller.user_id).await?;
        self.state.settings_cache.forget_user_key(&caller.user_id);
        tracing::info!("user's own provider API key cleared");
        self.current(&caller).await
    }
}
