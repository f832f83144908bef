//! roleplay.v1.ChatSessionService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, chat_session_service_server::ChatSessionService},
    validate::{self, Listing, MODEL_MAX_CHARS, NAME_MAX_CHARS},
};
use crate::{
    chats::{self, NewChat},
    editing,
    state::AppState,
};

const PAGE_SCOPE: &str = "chat_sessions";

pub struct ChatSessionApi {
    state: AppState,
}

impl ChatSessionApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl ChatSessionService for ChatSessionApi {
    async fn create_chat_session(
        &self,
        request: Request<pb::CreateChatSessionRequest>,
    ) -> Result<Response<pb::ChatSession>, Status> {
        let caller = caller(&request)?;
        let pb::CreateChatSessionRequest { character_id, user_profile_id, title, model, temperature, max_tokens } =
            request.into_inner();
        let new = NewChat {
            character_id: validate::id("character_id", &character_id)?,
            user_profile_id: validate::id("user_profile_id", &user_profile_id)?,
            title: title.map(|t| validate::clearable("title", t, NAME_MAX_CHARS)).transpose()?.flatten(),
            model: model.map(|m| validate::required("model", m, MODEL_MAX_CHARS)).transpose()?,
            temperature: validate::temperature(temperature)?,
            max_tokens: validate::max_tokens(max_tokens)?,
        };
        let chat = chats::create(&self.state, &caller, new).await?;
        Ok(Response::new(chat.into()))
    }

    async fn get_chat_session(
        &self,
        request: Request<pb::GetChatSessionRequest>,
    ) -> Result<Response<pb::ChatSession>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        Ok(Response::new(chats::owned(&self.state, &caller, &id).await?.into()))
    }

    async fn list_chat_sessions(
        &self,
        request: Request<pb::ListChatSessionsRequest>,
    ) -> Result<Response<pb::ListChatSessionsResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListChatSessionsRequest { page_size, page_token } = request.into_inner();
        let listing = Listing::new(PAGE_SCOPE, page_size, &page_token)?;
        let rows = chats::list(&self.state, &caller, &listing.page).await?;
        let (chat_sessions, next_page_token) = listing.finish(rows, |c| &c.id);
        Ok(Response::new(pb::ListChatSessionsResponse { chat_sessions, next_page_token }))
    }

    async fn delete_chat_session(
        &self,
        request: Request<pb::DeleteChatSessionRequest>,
    ) -> Result<Response<pb::DeleteChatSessionResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        chats::delete(&self.state, &caller, &id).await?;
        Ok(Response::new(pb::DeleteChatSessionResponse {}))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListMessagesRequest { chat_session_id, page_size, page_token } = request.into_inner();
        let chat_id = validate::id("chat_session_id", &chat_session_id)?;
        // Tokens are bound to the chat, so one chat's token cannot page another.
        let listing = Listing::new(format!("messages:{chat_id}"), page_size, &page_token)?;
        let (rows, avatar) = chats::messages(&self.state, &caller, &chat_id, &listing.page).await?;
        let (mut messages, next_page_token): (Vec<pb::Message>, _) = listing.finish(rows, |m| &m.id);
        if let Some(avatar) = avatar {
            for message in messages.iter_mut().filter(|m| m.role == pb::Role::Assistant as i32) {
                message.avatar_url.clone_from(&avatar);
            }
        }
        Ok(Response::new(pb::ListMessagesResponse { messages, next_page_token }))
    }

    async fn fork_chat_session(
        &self,
        request: Request<pb::ForkChatSessionRequest>,
    ) -> Result<Response<pb::ChatSession>, Status> {
        let caller = caller(&request)?;
        let pb::ForkChatSessionRequest { chat_session_id, message_id, title } = request.into_inner();
        let chat_id = validate::id("chat_session_id", &chat_session_id)?;
        let message_id = validate::id("message_id", &message_id)?;
        let title = title.map(|t| validate::clearable("title", t, NAME_MAX_CHARS)).transpose()?.flatten();
        let fork = editing::fork(&self.state, &caller, &chat_id, &message_id, title).await?;
        Ok(Response::new(fork.into()))
    }
}
