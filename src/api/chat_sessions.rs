//! roleplay.v1.ChatSessionService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, chat_session_service_server::ChatSessionService},
    validate::{self, MODEL_MAX_CHARS, NAME_MAX_CHARS},
};
use crate::{
    chats::{self, NewChat},
    error::Error,
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
        let chat = chats::create(&self.state.store, &caller, new).await?;
        Ok(Response::new(chat.into()))
    }

    async fn get_chat_session(
        &self,
        request: Request<pb::GetChatSessionRequest>,
    ) -> Result<Response<pb::ChatSession>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        let chat = self.state.store.chat_session(&caller.user_id, &id).await.map_err(Error::from)?;
        chat.map(|c| Response::new(c.into())).ok_or_else(|| Error::not_found("chat session", id).into())
    }

    async fn list_chat_sessions(
        &self,
        request: Request<pb::ListChatSessionsRequest>,
    ) -> Result<Response<pb::ListChatSessionsResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListChatSessionsRequest { page_size, page_token } = request.into_inner();
        let page = validate::page(PAGE_SCOPE, page_size, &page_token)?;
        let rows = self.state.store.list_chat_sessions(&caller.user_id, &page).await.map_err(Error::from)?;
        let next_page_token =
            validate::next_page_token(PAGE_SCOPE, rows.has_more, rows.items.last().map(|c| c.id.as_str()));
        Ok(Response::new(pb::ListChatSessionsResponse {
            chat_sessions: rows.items.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn delete_chat_session(
        &self,
        request: Request<pb::DeleteChatSessionRequest>,
    ) -> Result<Response<pb::DeleteChatSessionResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        chats::delete(&self.state.store, &self.state.registry, &caller, &id).await?;
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
        let scope = format!("messages:{chat_id}");
        let page = validate::page(&scope, page_size, &page_token)?;
        let store = &self.state.store;
        if store.chat_session(&caller.user_id, &chat_id).await.map_err(Error::from)?.is_none() {
            return Err(Error::not_found("chat session", chat_id).into());
        }
        let rows = store.list_messages(&chat_id, &page).await.map_err(Error::from)?;
        let next_page_token =
            validate::next_page_token(&scope, rows.has_more, rows.items.last().map(|m| m.id.as_str()));
        Ok(Response::new(pb::ListMessagesResponse {
            messages: rows.items.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }
}
