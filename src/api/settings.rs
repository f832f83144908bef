//! roleplay.v1.SettingsService.

use std::fmt;

use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::{
    pb::{self, settings_service_server::SettingsService},
    validate::{self, MODEL_MAX_CHARS, PROMPT_MAX_CHARS},
};
use crate::{
    settings::{self, Settings, SettingsChanges},
    state::AppState,
};

/// The generated Debug is switched off for this message (build.rs): it would
/// print the key.
impl fmt::Debug for pb::SetProviderApiKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetProviderApiKeyRequest").field("api_key", &"[REDACTED]").finish()
    }
}

pub struct SettingsApi {
    state: AppState,
}

impl SettingsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn current(&self) -> Result<Response<pb::Settings>, Status> {
        let state = &self.state;
        let settings = Settings::load(&state.store, &state.keys, &state.defaults()).await?;
        Ok(Response::new(settings.into()))
    }
}

#[tonic::async_trait]
impl SettingsService for SettingsApi {
    async fn get_settings(&self, _request: Request<pb::GetSettingsRequest>) -> Result<Response<pb::Settings>, Status> {
        self.current().await
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let pb::UpdateSettingsRequest {
            pre_system_prompt,
            system_prompt,
            post_system_prompt,
            default_model,
            provider_base_url,
        } = request.into_inner();
        let changes = SettingsChanges {
            pre_system_prompt: validate::optional_at_most("pre_system_prompt", pre_system_prompt, PROMPT_MAX_CHARS)?,
            system_prompt: validate::optional_at_most("system_prompt", system_prompt, PROMPT_MAX_CHARS)?,
            post_system_prompt: validate::optional_at_most("post_system_prompt", post_system_prompt, PROMPT_MAX_CHARS)?,
            default_model: default_model
                .map(|m| validate::required("default_model", m, MODEL_MAX_CHARS))
                .transpose()?,
            provider_base_url: provider_base_url.map(validate::base_url).transpose()?,
        };
        settings::update(&self.state.store, &changes).await?;
        self.current().await
    }

    async fn set_provider_api_key(
        &self,
        request: Request<pb::SetProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let api_key = SecretString::from(request.into_inner().api_key);
        validate::api_key(secrecy::ExposeSecret::expose_secret(&api_key))?;
        settings::set_api_key(&self.state.store, &self.state.keys, &api_key).await?;
        tracing::info!("provider API key replaced");
        self.current().await
    }

    async fn clear_provider_api_key(
        &self,
        _request: Request<pb::ClearProviderApiKeyRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        settings::clear_api_key(&self.state.store).await?;
        tracing::info!("provider API key cleared");
        self.current().await
    }
}
