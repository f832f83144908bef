//! roleplay.v1.MessageService: sending messages, following replies, and
//! changing the history (swipes, edits, deletions, rewinds).

use std::pin::Pin;

use futures_util::{Stream, stream};
use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, message_service_server::MessageService},
    validate::{self, CONTENT_MAX_CHARS},
};
use crate::{
    editing, next_prompt,
    state::AppState,
    stream::follower::Follower,
    stream::generation::{self, ReplyRequest},
    stream::watching::{self, Resume},
};

pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::GenerationEvent, Status>> + Send>>;

/// A follower as a gRPC response stream. When the client goes away tonic
/// drops the stream, and with it the follower: the watcher leaves, the
/// generation goes on.
fn event_stream(follower: Follower) -> EventStream {
    Box::pin(stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        Some((event.map(Into::into).map_err(Status::from), follower))
    }))
}

pub struct MessageApi {
    state: AppState,
}

impl MessageApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl MessageService for MessageApi {
    type AddUserMessageStreamingStream = EventStream;
    type ContinueReplyStream = EventStream;
    type RegenerateReplyStream = EventStream;
    type SubscribeChatSessionStream = EventStream;

    async fn add_user_message_streaming(
        &self,
        request: Request<pb::AddUserMessageRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = caller(&request)?;
        let pb::AddUserMessageRequest { chat_session_id, content } = request.into_inner();
        let chat_id = validate::id("chat_session_id", &chat_session_id)?;
        let content = validate::required("content", content, CONTENT_MAX_CHARS)?;
        let follower = generation::send_message(&self.state, &caller, &chat_id, content).await?;
        Ok(Response::new(event_stream(follower)))
    }

    async fn regenerate_reply(
        &self,
        request: Request<pb::RegenerateReplyRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = caller(&request)?;
        let chat_id = validate::id("chat_session_id", &request.into_inner().chat_session_id)?;
        let follower = generation::start_reply(&self.state, &caller, &chat_id, ReplyRequest::Regenerate).await?;
        Ok(Response::new(event_stream(follower)))
    }

    async fn continue_reply(
        &self,
        request: Request<pb::ContinueReplyRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = caller(&request)?;
        let chat_id = validate::id("chat_session_id", &request.into_inner().chat_session_id)?;
        let follower = generation::start_reply(&self.state, &caller, &chat_id, ReplyRequest::Continue).await?;
        Ok(Response::new(event_stream(follower)))
    }

    async fn select_alternative(
        &self,
        request: Request<pb::SelectAlternativeRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = caller(&request)?;
        let pb::SelectAlternativeRequest { message_id, index } = request.into_inner();
        let message_id = validate::id("message_id", &message_id)?;
        let message = editing::select_alternative(&self.state, &caller, &message_id, index).await?;
        Ok(Response::new(message.into()))
    }

    async fn edit_message(&self, request: Request<pb::EditMessageRequest>) -> Result<Response<pb::Message>, Status> {
        let caller = caller(&request)?;
        let pb::EditMessageRequest { message_id, content } = request.into_inner();
        let message_id = validate::id("message_id", &message_id)?;
        let content = validate::required("content", content, CONTENT_MAX_CHARS)?;
        let message = editing::edit(&self.state, &caller, &message_id, &content).await?;
        Ok(Response::new(message.into()))
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::DeleteMessageResponse>, Status> {
        let caller = caller(&request)?;
        let message_id = validate::id("message_id", &request.into_inner().message_id)?;
        editing::delete(&self.state, &caller, &message_id).await?;
        Ok(Response::new(pb::DeleteMessageResponse {}))
    }

    async fn rewind_chat_session(
        &self,
        request: Request<pb::RewindChatSessionRequest>,
    ) -> Result<Response<pb::RewindChatSessionResponse>, Status> {
        let caller = caller(&request)?;
        let pb::RewindChatSessionRequest { chat_session_id, message_id } = request.into_inner();
        let chat_id = validate::id("chat_session_id", &chat_session_id)?;
        let message_id = validate::id("message_id", &message_id)?;
        let deleted_message_ids = editing::rewind(&self.state, &caller, &chat_id, &message_id).await?;
        Ok(Response::new(pb::RewindChatSessionResponse { deleted_message_ids }))
    }

    async fn preview_prompt(
        &self,
        request: Request<pb::PreviewPromptRequest>,
    ) -> Result<Response<pb::PromptPreview>, Status> {
        let caller = caller(&request)?;
        let pb::PreviewPromptRequest { chat_session_id, content } = request.into_inner();
        let chat_id = validate::id("chat_session_id", &chat_session_id)?;
        let content = validate::required("content", content, CONTENT_MAX_CHARS)?;
        let next = next_prompt::preview(&self.state, &caller, &chat_id, content).await?;
        Ok(Response::new(super::convert::prompt_preview(next)))
    }

    async fn list_alternatives(
        &self,
        request: Request<pb::ListAlternativesRequest>,
    ) -> Result<Response<pb::ListAlternativesResponse>, Status> {
        let caller = caller(&request)?;
        let message_id = validate::id("message_id", &request.into_inner().message_id)?;
        let (alternatives, selected_index) = editing::alternatives(&self.state, &caller, &message_id).await?;
        let alternatives = alternatives.into_iter().map(Into::into).collect();
        Ok(Response::new(pb::ListAlternativesResponse { alternatives, selected_index }))
    }

    async fn subscribe_chat_session(
        &self,
        request: Request<pb::SubscribeChatSessionRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = caller(&request)?;
        let pb::SubscribeChatSessionRequest { chat_session_id, resume } = request.into_inner();
        let chat_id = validate::id("chat_session_id", &chat_session_id)?;
        let resume = resume
            .map(|pb::ResumePosition { stream_id, offset }| {
                validate::id("resume.stream_id", &stream_id).map(|stream_id| Resume { stream_id, offset, ended: false })
            })
            .transpose()?;
        let follower = watching::subscribe(&self.state, &caller, &chat_id, resume).await?;
        Ok(Response::new(event_stream(follower)))
    }

    async fn cancel_generation(
        &self,
        request: Request<pb::CancelGenerationRequest>,
    ) -> Result<Response<pb::CancelGenerationResponse>, Status> {
        let caller = caller(&request)?;
        let pb::CancelGenerationRequest { chat_session_id, stream_id } = request.into_inner();
        let chat_id = validate::id("chat_session_id", &chat_session_id)?;
        let stream_id = stream_id.filter(|s| !s.is_empty()).map(|s| validate::id("stream_id", &s)).transpose()?;
        let result = watching::cancel(&self.state, &caller, &chat_id, stream_id.as_deref()).await?;
        Ok(Response::new(pb::CancelGenerationResponse {
            cancelled: result.cancelled,
            stream_id: result.stream_id,
            message: result.message,
        }))
    }

    async fn get_stream_status(
        &self,
        request: Request<pb::GetStreamStatusRequest>,
    ) -> Result<Response<pb::StreamStatus>, Status> {
        let caller = caller(&request)?;
        let chat_id = validate::id("chat_session_id", &request.into_inner().chat_session_id)?;
        Ok(Response::new(watching::status(&self.state, &caller, &chat_id).await?.into()))
    }
}
