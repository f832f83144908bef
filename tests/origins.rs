//! What a web page can do to a local server: nothing, unless its origin is
//! listed. Cross-origin calls get no CORS grant and no data, other Host names
//! (DNS rebinding) are refused on gRPC, gRPC-Web and SSE, and every answer
//! carries the browser security headers.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Db, MASTER_KEY, TestDb, TestServer, users::As};
use prost::Message;
use roleplay_server::{
    api::{
        browser::{BrowserOptions, CorsOrigins},
        pb,
    },
    provider::{RetryPolicy, openai::OpenAiCompatible},
    secrets::{Keyring, MasterKey},
    server::{self, ServeError},
    state::AppState,
    store::Store,
};
use tonic::{Code, transport::Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

const APP: &str = "http://app.example";
const EVIL: &str = "https://evil.example";

fn http() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().expect("client")
}

/// A gRPC-Web request body: one data frame holding `message`.
fn grpc_web_frame(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    body.extend_from_slice(&bytes);
    body
}

fn list_characters_url(server: &TestServer) -> String {
    format!("http://{}/roleplay.v1.CharacterService/ListCharacters", server.addr)
}

async fn grpc_web_list(server: &TestServer, headers: &[(&str, String)]) -> reqwest::Response {
    let mut request = http()
        .post(list_characters_url(server))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(grpc_web_frame(&pb::ListCharactersRequest::default()));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("grpc-web call")
}

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    http()
        .request(reqwest::Method::OPTIONS, list_characters_url(server))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-grpc-web,authorization")
        .send()
        .await
        .expect("preflight")
}

/// The grpc-status of a gRPC-Web answer: in the headers (trailers-only) or
/// in the trailer frame at the end of the body.
async fn grpc_web_status(response: reqwest::Response) -> (Option<String>, Vec<u8>) {
    let in_headers = response.headers().get("grpc-status").map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.bytes().await.expect("body").to_vec();
    let status = in_headers.or_else(|| {
        let text = String::from_utf8_lossy(&body).to_lowercase();
        text.split("grpc-status:").nth(1).map(|rest| rest.trim().chars().take_while(char::is_ascii_digit).collect())
    });
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_origins_get_no_grant_and_no_data() {
    let server = TestServer::start(Db::Sqlite).await;
    server.chat().await;

    let answer = preflight(&server, EVIL).await;
    assert!(answer.headers().get("access-control-allow-origin").is_none(), "no grant: {:?}", answer.headers());

    // A request sent anyway (a tool, or a browser bug) is refused outright.
    let answer = grpc_web_list(&server, &[("origin", EVIL.into())]).await;
    assert!(answer.headers().get("access-control-allow-origin").is_none());
    let (status, body) = grpc_web_status(answer).await;
    assert_eq!(status.as_deref(), Some("7"), "PERMISSION_DENIED");
    assert!(!String::from_utf8_lossy(&body).contains("Aria"), "no data");

    let sse = http()
        .get(format!("http://{}/v1/chats/{}/events", server.addr, uuid::Uuid::now_v7()))
        .header("origin", EVIL)
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 403);
    assert!(sse.headers().get("access-control-allow-origin").is_none());
    assert!(sse.text().await.expect("text").contains("ROLEPLAY_CORS_ORIGINS"));

    // The server's own pages (same origin) are not foreign.
    let same = grpc_web_list(&server, &[("origin", format!("http://{}", server.addr))]).await;
    let (status, body) = grpc_web_status(same).await;
    assert_eq!(status.as_deref(), Some("0"));
    assert!(String::from_utf8_lossy(&body).contains("Aria"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_origin_works_over_grpc_web_and_sse() {
    let server = TestServer::start_with(Db::Sqlite, |options| {
        options.browser.cors_origins = CorsOrigins::List(vec![APP.into()]);
    })
    .await;
    let chat = server.chat().await;

    let answer = preflight(&server, APP).await;
    assert!(answer.status().is_success());
    assert_eq!(answer.headers()["access-control-allow-origin"], APP);
    let allowed = answer.headers()["access-control-allow-headers"].to_str().expect("ascii").to_lowercase();
    for header in ["content-type", "x-grpc-web", "authorization", "x-request-id", "grpc-timeout", "last-event-id"] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
    let other = http()
        .request(reqwest::Method::OPTIONS, list_characters_url(&server))
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-made-up")
        .send()
        .await
        .expect("preflight");
    let allowed = other.headers().get("access-control-allow-headers").map(|v| v.to_str().unwrap_or("").to_owned());
    assert!(!allowed.unwrap_or_default().contains("x-made-up"), "request headers are named, not mirrored");

    let answer = grpc_web_list(&server, &[("origin", APP.into())]).await;
    assert_eq!(answer.headers()["access-control-allow-origin"], APP);
    let exposed = answer.headers()["access-control-expose-headers"].to_str().expect("ascii").to_owned();
    assert!(exposed.contains("grpc-status") && exposed.contains("grpc-message"), "{exposed}");
    let (status, body) = grpc_web_status(answer).await;
    assert_eq!(status.as_deref(), Some("0"));
    assert!(String::from_utf8_lossy(&body).contains("Aria"));

    let sse = http()
        .get(format!("http://{}/v1/chats/{}/events", server.addr, chat.id))
        .header("origin", APP)
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);
    assert_eq!(sse.headers()["access-control-allow-origin"], APP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_host_names_are_refused_on_grpc_grpc_web_and_sse() {
    let server = TestServer::start_with(Db::Sqlite, |options| {
        options.browser.allowed_hosts = BrowserOptions::parse_hosts("chat.local");
    })
    .await;
    let chat = server.chat().await;
    let port = server.addr.port();
    let channel_as = |host: &str| {
        Endpoint::from_shared(format!("http://{}", server.addr))
            .expect("uri")
            .origin(format!("http://{host}:{port}").parse().expect("origin"))
            .connect_lazy()
    };

    let rebound = channel_as("evil.example");
    let err = pb::character_service_client::CharacterServiceClient::new(rebound.clone())
        .list_characters(pb::ListCharactersRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("ROLEPLAY_ALLOWED_HOSTS"), "{}", err.message());
    let health = HealthClient::new(rebound)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("health stays reachable")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    for host in ["localhost", "127.0.0.1", "chat.local"] {
        pb::character_service_client::CharacterServiceClient::new(channel_as(host))
            .list_characters(pb::ListCharactersRequest::default())
            .await
            .unwrap_or_else(|err| panic!("{host}: {err}"));
    }

    let evil_host = ("host", format!("evil.example:{port}"));
    let (status, body) = grpc_web_status(grpc_web_list(&server, std::slice::from_ref(&evil_host)).await).await;
    assert_eq!(status.as_deref(), Some("7"));
    assert!(!String::from_utf8_lossy(&body).contains("Aria"));
    let (status, _) = grpc_web_status(grpc_web_list(&server, &[("host", format!("localhost:{port}"))]).await).await;
    assert_eq!(status.as_deref(), Some("0"));

    let events = format!("http://{}/v1/chats/{}/events", server.addr, chat.id);
    let refused = http().get(&events).header(evil_host.0, &evil_host.1).send().await.expect("sse");
    assert_eq!(refused.status(), 421);
    let served = http().get(&events).header("host", format!("localhost:{port}")).send().await.expect("sse");
    assert_eq!(served.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let server = TestServer::start(Db::Sqlite).await;
    let chat = server.chat().await;
    let grpc_web = grpc_web_list(&server, &[]).await;
    let sse = http().get(format!("http://{}/v1/chats/{}/events", server.addr, chat.id)).send().await.expect("sse");
    let refused = http().get(format!("http://{}/v1/chats/nope/events", server.addr)).send().await.expect("sse");
    for answer in [&grpc_web, &sse, &refused] {
        let headers = answer.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    for answer in [&grpc_web, &sse] {
        assert_eq!(answer.headers()["cache-control"], "no-store", "chat data is never cached");
    }
}

/// Runs the server on `db` until it has started (or refused to), then stops.
async fn serve_once(db: &TestDb, options: roleplay_server::config::ServerOptions) -> Result<(), ServeError> {
    let store = Store::open(&db.url, 2).await.expect("store");
    let provider = OpenAiCompatible::new(
        Duration::from_secs(1),
        RetryPolicy { tries: 1, base_delay: Duration::ZERO, max_delay: Duration::ZERO },
    )
    .expect("client");
    let state = AppState::new(store, Keyring::single(MasterKey::from_bytes(&MASTER_KEY)), Arc::new(provider), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    tokio::time::timeout(Duration::from_secs(20), server::run(listener, state, async {}))
        .await
        .expect("the server stops by itself")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_origin_is_refused_until_tokens_are_required() {
    let db = TestDb::new(Db::Sqlite).await;
    let any = roleplay_server::config::ServerOptions {
        browser: BrowserOptions { cors_origins: CorsOrigins::Any, ..Default::default() },
        ..Default::default()
    };
    let refused = serve_once(&db, any.clone()).await.expect_err("refused in single-user mode");
    assert!(refused.to_string().contains("single-user mode"), "{refused}");

    // Once a user has a token, every call needs one and `*` is accepted.
    let server = TestServer::start(Db::Sqlite).await;
    As::new(server.channel(), None).create_user("root", true).await;
    let db = server.stop().await.0;
    serve_once(&db, any).await.expect("serves with tokens required");
}
