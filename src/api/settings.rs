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
    catalog,
    error::Error,
    settings::{FallbackInput, SettingsChanges, names},
    state::AppState,
    users::{self, Caller, NAME_RULE},
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
        let (settings, own_key) = self.state.settings_for(caller).await?;
        Ok(Response::new(settings_view(settings, &own_key, caller.admin)))
    }
}

const ADMIN_ACTION: &str = "change the global settings";

#[tonic::async_trait]
impl SettingsService for SettingsApi {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let caller = caller(&request)?;
        let view = catalog::list(&self.state, &caller).await?;
        Ok(Response::new(super::convert::model_list(view)))
    }

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
            default_samplers,
            default_context_tokens,
            default_reply_tokens,
        } = request.into_inner();
        let default_samplers = default_samplers.map(|s| validate::samplers("default_samplers", Some(s))).transpose()?;
        let default_reply_tokens = validate::max_tokens(default_reply_tokens)
            .map_err(|_| Status::invalid_argument("default_reply_tokens must be from 1 to 1000000"))?
            .and_then(|n| u32::try_from(n).ok());
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
            default_samplers,
            default_context_tokens: validate::context_tokens("default_context_tokens", default_context_tokens)?,
            default_reply_tokens,
        };
        self.state.update_settings(&changes).await?;
        self.current(&caller).await
    }

    async fn set_provider_api_key(
        &self,
        request: Request<pb::SetProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = admin(&request, ADMIN_ACTION)?;
        let api_key = SecretString::from(request.into_inner().api_key);
        validate::api_key(secrecy::ExposeSecret::expose_secret(&api_key))?;
        self.state.set_api_key(&api_key).await?;
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
            let why = format!("may list at most {MAX_FALLBACK_PROVIDERS} providers, got {}", providers.len());
            return Err(Error::invalid("providers", why).into());
        }
        let mut inputs: Vec<FallbackInput> = Vec::with_capacity(providers.len());
        for pb::FallbackProviderInput { name, base_url, model, api_key } in providers {
            if !users::is_plain_name(&name) || name == names::PRIMARY_PROVIDER {
                let why = format!("{NAME_RULE}, and not \"primary\"");
                return Err(Error::invalid(format!("fallback provider name {name:?}"), why).into());
            }
            if inputs.iter().any(|f| f.name == name) {
                return Err(Error::invalid(format!("fallback provider {name:?}"), "is listed twice").into());
            }
            let base_url = validate::base_url(base_url)?;
            if base_url.is_empty() {
                return Err(Error::invalid(format!("fallback provider {name:?}"), "needs a base_url").into());
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
        self.state.set_fallbacks(inputs).await?;
        tracing::info!("fallback providers replaced");
        self.current(&caller).await
    }

    async fn clear_provider_api_key(
        &self,
        request: Request<pb::ClearProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = admin(&request, ADMIN_ACTION)?;
        self.state.clear_api_key().await?;
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
        self.state.set_user_api_key(&caller.user_id, &api_key).await?;
        tracing::info!("user's own provider API key replaced");
        self.current(&caller).await
    }

    async fn clear_user_provider_api_key(
        &self,
        request: Request<pb::ClearProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let caller = caller(&request)?;
        self.state.clear_user_api_key(&caller.user_id).await?;
        tracing::info!("user's own provider API key cleared");
        self.current(&caller).await
    }
}
