//! Reflection (v1 and v1alpha) and health, as grpcurl and load balancers use
//! them.

mod common;

use common::{Db, TestServer};
use futures_util::StreamExt;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::{v1, v1alpha};

const EXPECTED: [&str; 7] = [
    "grpc.health.v1.Health",
    "roleplay.v1.CharacterService",
    "roleplay.v1.ChatSessionService",
    "roleplay.v1.MessageService",
    "roleplay.v1.SettingsService",
    "roleplay.v1.UserProfileService",
    "grpc.reflection.v1.ServerReflection",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_service_in_both_versions() {
    let server = TestServer::start(Db::Sqlite).await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(server.channel());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::once(request)).await.expect("v1").into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = response.message_response
    else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in EXPECTED {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "roleplay.v1.MessageService".into(),
        )),
    };
    let mut responses = client.server_reflection_info(tokio_stream::once(request)).await.expect("v1alpha").into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        response.message_response
    else {
        panic!("unexpected reflection response");
    };
    assert!(!files.file_descriptor_proto.is_empty(), "v1alpha describes the service (grpcurl 1.8 speaks only v1alpha)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_per_service() {
    let server = TestServer::start(Db::Sqlite).await;
    let mut health = HealthClient::new(server.channel());
    for service in ["", "roleplay.v1.MessageService", "roleplay.v1.SettingsService"] {
        let status =
            health.check(HealthCheckRequest { service: service.into() }).await.expect("health").into_inner().status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
}
