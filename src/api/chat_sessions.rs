//! roleplay.v1.ChatSessionService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, chat_session_service_server::ChatSessionService},
    validate::{self, DESCRIPTION_MAX_CHARS, Listing, MODEL_MAX_CHARS, NAME_MAX_CHARS},
};
use crate::{
    chats::{self, ChatUpdate, NewChat, SamplersUpdate},
    editing,
    samplers::Samplers,
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
        let pb::CreateChatSessionRequest {
            character_id,
            user_profile_id,
            title,
            model,
            temperature,
            max_tokens,
            samplers,
            context_tokens,
            authors_note,
            authors_note_depth,
        } = request.into_inner();
        // The older top-level fields fill in what `samplers` leaves unset.
        let legacy = Samplers {
            temperature: validate::temperature(temperature)?,
            max_tokens: validate::max_tokens(max_tokens)?.and_then(|n| u32::try_from(n).ok()),
            ..Samplers::default()
        };
        // Both parts are checked, so their merge is.
        let samplers = validate::samplers("samplers", samplers)?.or(&legacy);
        let new = NewChat {
            character_id: validate::id("character_id", &character_id)?,
            user_profile_id: validate::id("user_profile_id", &user_profile_id)?,
            title: title.map(|t| validate::clearable("title", t, NAME_MAX_CHARS)).transpose()?.flatten(),
            model: model.map(|m| validate::required("model", m, MODEL_MAX_CHARS)).transpose()?,
            samplers,
            context_tokens: validate::context_tokens("context_tokens", context_tokens)?,
            authors_note: validate::at_most("authors_note", authors_note, DESCRIPTION_MAX_CHARS)?,
            authors_note_depth,
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
        let pb::ListChatSessionsRequest { page_size, page_token, character_id } = request.into_inner();
        let character_id =
            Some(character_id).filter(|c| !c.is_empty()).map(|c| validate::id("character_id", &c)).transpose()?;
        let scope = format!("{PAGE_SCOPE}:{}", character_id.as_deref().unwrap_or(""));
        let listing = Listing::new(scope, page_size, &page_token)?;
        let rows = chats::list(&self.state, &caller, character_id.as_deref(), &listing.page).await?;
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

    async fn update_chat_session(
        &self,
        request: Request<pb::UpdateChatSessionRequest>,
    ) -> Result<Response<pb::ChatSession>, Status> {
        let caller = caller(&request)?;
        let pb::UpdateChatSessionRequest { chat_session, update_mask } = request.into_inner();
        let chat =
            chat_session.ok_or_else(|| Status::invalid_argument("chat_session is required (its id names the chat)"))?;
        let id = validate::id("chat_session.id", &chat.id)?;
        let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
        let update = chat_update(chat, &paths)?;
        Ok(Response::new(chats::update(&self.state, &caller, &id, update).await?.into()))
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

/// The fields of `chat` that `paths` name (AIP-134): `samplers` replaces the
/// chat's samplers, `samplers.<field>` sets one of them; a named field left
/// unset clears it.
fn chat_update(chat: pb::ChatSession, paths: &[String]) -> Result<ChatUpdate, Status> {
    if paths.is_empty() {
        return Err(Status::invalid_argument(
            "update_mask is empty: name the fields to change (title, model, samplers, samplers.<field>, \
             context_tokens, authors_note, authors_note_depth)",
        ));
    }
    let given = chat.samplers.clone().map(super::convert::samplers_in).unwrap_or_default();
    given.validate("chat_session.samplers")?;
    let (mut whole, mut fields) = (false, Vec::new());
    let mut update = ChatUpdate::default();
    for path in paths {
        match path.as_str() {
            "title" => update.title = Some(validate::required("title", chat.title.clone(), NAME_MAX_CHARS)?),
            "model" => {
                let model = chat.model.clone().map(|m| validate::clearable("model", m, MODEL_MAX_CHARS));
                update.model = Some(model.transpose()?.flatten());
            }
            "samplers" => whole = true,
            "context_tokens" => {
                update.context_tokens = Some(validate::context_tokens("context_tokens", chat.context_tokens)?);
            }
            "authors_note" => {
                let note = validate::at_most("authors_note", chat.authors_note.clone(), DESCRIPTION_MAX_CHARS)?;
                update.authors_note = Some(note);
            }
            "authors_note_depth" => update.authors_note_depth = Some(chat.authors_note_depth),
            path => match path.strip_prefix("samplers.") {
                Some(field) if Samplers::FIELDS.contains(&field) => fields.push(field.to_owned()),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask path {path:?} is not a field UpdateChatSession can change"
                    )));
                }
            },
        }
    }
    update.samplers = match (whole, fields.is_empty()) {
        (true, _) => Some(SamplersUpdate::Whole(given)),
        (false, false) => Some(SamplersUpdate::Fields { given, fields }),
        (false, true) => None,
    };
    Ok(update)
}
