//! roleplay.v1.MessageService: sending messages and following replies.

use std::pin::Pin;

use futures_util::{Stream, stream};
use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, message_service_server::MessageService},
    validate::{self, CONTENT_MAX_CHARS},
};
use crate::{
    follower::Follower,
    generation,
    state::AppState,
    watching::{self, Resume},
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
