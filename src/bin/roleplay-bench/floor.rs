//! The floor: the least a gRPC front for a model can do. It forwards the
//! upstream SSE text to a gRPC server stream as Deltas: no storage, no
//! registry, no prompt building, no second watcher. The chat id field names
//! the upstream model (the load shape).

use std::{net::SocketAddr, pin::Pin};

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use roleplay_server::{
    api::pb::{self, message_service_server::MessageService, message_service_server::MessageServiceServer},
    provider::{StreamEvent, sse::chat_events},
};
use tonic::{Request, Response, Status};

pub struct Floor {
    client: reqwest::Client,
    url: String,
}

type Events = Pin<Box<dyn Stream<Item = Result<pb::GenerationEvent, Status>> + Send>>;

fn only_streaming() -> Status {
    Status::failed_precondition("the floor server only forwards AddUserMessageStreaming")
}

#[tonic::async_trait]
impl MessageService for Floor {
    type AddUserMessageStreamingStream = Events;
    type SubscribeChatSessionStream = Events;
    type RegenerateReplyStream = Events;
    type ContinueReplyStream = Events;

    async fn add_user_message_streaming(
        &self,
        request: Request<pb::AddUserMessageRequest>,
    ) -> Result<Response<Events>, Status> {
        let request = request.into_inner();
        let body = serde_json::json!({
            "model": request.chat_session_id,
            "stream": true,
            "messages": [{"role": "user", "content": request.content}],
        });
        let response =
            self.client.post(&self.url).json(&body).send().await.map_err(|e| Status::unavailable(e.to_string()))?;
        let mut offset = 0u64;
        let events = chat_events(response.bytes_stream().eventsource()).filter_map(move |event| {
            let item = match event {
                Ok(StreamEvent::Text(text)) => {
                    let delta = pb::Delta { stream_id: String::new(), offset, text };
                    offset += delta.text.len() as u64;
                    Some(Ok(pb::GenerationEvent { event: Some(pb::generation_event::Event::Delta(delta)) }))
                }
                Ok(_) => None,
                Err(err) => Some(Err(Status::unavailable(err.to_string()))),
            };
            std::future::ready(item)
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn subscribe_chat_session(
        &self,
        _: Request<pb::SubscribeChatSessionRequest>,
    ) -> Result<Response<Events>, Status> {
        Err(only_streaming())
    }

    async fn cancel_generation(
        &self,
        _: Request<pb::CancelGenerationRequest>,
    ) -> Result<Response<pb::CancelGenerationResponse>, Status> {
        Err(only_streaming())
    }

    async fn get_stream_status(
        &self,
        _: Request<pb::GetStreamStatusRequest>,
    ) -> Result<Response<pb::StreamStatus>, Status> {
        Err(only_streaming())
    }

    async fn regenerate_reply(&self, _: Request<pb::RegenerateReplyRequest>) -> Result<Response<Events>, Status> {
        Err(only_streaming())
    }

    async fn continue_reply(&self, _: Request<pb::ContinueReplyRequest>) -> Result<Response<Events>, Status> {
        Err(only_streaming())
    }

    async fn select_alternative(
        &self,
        _: Request<pb::SelectAlternativeRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        Err(only_streaming())
    }

    async fn edit_message(&self, _: Request<pb::EditMessageRequest>) -> Result<Response<pb::Message>, Status> {
        Err(only_streaming())
    }

    async fn delete_message(
        &self,
        _: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::DeleteMessageResponse>, Status> {
        Err(only_streaming())
    }

    async fn rewind_chat_session(
        &self,
        _: Request<pb::RewindChatSessionRequest>,
    ) -> Result<Response<pb::RewindChatSessionResponse>, Status> {
        Err(only_streaming())
    }

    async fn list_alternatives(
        &self,
        _: Request<pb::ListAlternativesRequest>,
    ) -> Result<Response<pb::ListAlternativesResponse>, Status> {
        Err(only_streaming())
    }

    async fn preview_prompt(
        &self,
        _: Request<pb::PreviewPromptRequest>,
    ) -> Result<Response<pb::PromptPreview>, Status> {
        Err(only_streaming())
    }
}

/// Serves the floor (run in its own process, so its CPU is measured alone).
pub async fn serve(listen: SocketAddr, upstream: String) {
    let floor = Floor { client: reqwest::Client::new(), url: format!("{upstream}/chat/completions") };
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(MessageServiceServer::new(floor))
        .serve(listen)
        .await
        .expect("floor server");
}
