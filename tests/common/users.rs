//! Clients that call as a given user: every request carries
//! `authorization: Bearer <token>`.

use roleplay_server::api::pb::{
    self, character_service_client::CharacterServiceClient, chat_session_service_client::ChatSessionServiceClient,
    lorebook_service_client::LorebookServiceClient, message_service_client::MessageServiceClient,
    settings_service_client::SettingsServiceClient, usage_service_client::UsageServiceClient,
    user_profile_service_client::UserProfileServiceClient, user_service_client::UserServiceClient,
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use super::API_KEY;

/// Adds the token, when there is one, to every request.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

/// One person's view of the server.
#[derive(Clone)]
pub struct As {
    channel: Channel,
    bearer: Bearer,
    token: Option<String>,
}

impl As {
    /// `token: None` sends no authorization at all; any other string is
    /// sent as it is (tests send wrong ones on purpose).
    pub fn new(channel: Channel, token: Option<&str>) -> Self {
        let bearer = Bearer(token.map(|t| format!("Bearer {t}").parse().expect("ascii token")));
        Self { channel, bearer, token: token.map(str::to_owned) }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn authed(&self) -> Authed {
        InterceptedService::new(self.channel.clone(), self.bearer.clone())
    }

    pub fn characters(&self) -> CharacterServiceClient<Authed> {
        CharacterServiceClient::new(self.authed())
    }
    pub fn profiles(&self) -> UserProfileServiceClient<Authed> {
        UserProfileServiceClient::new(self.authed())
    }
    pub fn chats(&self) -> ChatSessionServiceClient<Authed> {
        ChatSessionServiceClient::new(self.authed())
    }
    pub fn messages(&self) -> MessageServiceClient<Authed> {
        MessageServiceClient::new(self.authed())
    }
    pub fn settings(&self) -> SettingsServiceClient<Authed> {
        SettingsServiceClient::new(self.authed())
    }
    pub fn users(&self) -> UserServiceClient<Authed> {
        UserServiceClient::new(self.authed())
    }
    pub fn usage(&self) -> UsageServiceClient<Authed> {
        UsageServiceClient::new(self.authed())
    }
    pub fn lorebooks(&self) -> LorebookServiceClient<Authed> {
        LorebookServiceClient::new(self.authed())
    }

    /// Creates a user (the caller must be an admin) and returns its token.
    pub async fn create_user(&self, name: &str, admin: bool) -> String {
        self.users()
            .create_user(pb::CreateUserRequest { name: name.into(), admin })
            .await
            .expect("create user")
            .into_inner()
            .token
    }

    /// A character, a profile and a chat of this user's.
    pub async fn open_chat(&self, character: &str) -> pb::ChatSession {
        let character = self
            .characters()
            .create_character(pb::CreateCharacterRequest {
                name: character.into(),
                description: "A bard.".into(),
                ..Default::default()
            })
            .await
            .expect("character")
            .into_inner();
        let profile = self
            .profiles()
            .create_user_profile(pb::CreateUserProfileRequest { name: "Sam".into(), description: String::new() })
            .await
            .expect("profile")
            .into_inner();
        self.chats()
            .create_chat_session(pb::CreateChatSessionRequest {
                character_id: character.id,
                user_profile_id: profile.id,
                ..Default::default()
            })
            .await
            .expect("chat")
            .into_inner()
    }

    /// Sets the global API key (the caller must be an admin).
    pub async fn set_global_key(&self) {
        self.settings()
            .set_provider_api_key(pb::SetProviderApiKeyRequest { api_key: API_KEY.into() })
            .await
            .expect("set key");
    }

    pub async fn send(
        &self,
        chat_id: &str,
        content: &str,
    ) -> Result<tonic::Streaming<pb::GenerationEvent>, tonic::Status> {
        self.messages()
            .add_user_message_streaming(pb::AddUserMessageRequest {
                chat_session_id: chat_id.into(),
                content: content.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn messages_of(&self, chat_id: &str) -> Vec<pb::Message> {
        self.chats()
            .list_messages(pb::ListMessagesRequest {
                chat_session_id: chat_id.into(),
                page_size: 500,
                page_token: String::new(),
            })
            .await
            .expect("list messages")
            .into_inner()
            .messages
    }
}
