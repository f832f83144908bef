//! What browsers use: the SSE endpoint (with EventSource's Last-Event-ID
//! reconnect), gRPC-Web over HTTP/1.1, and CORS that exposes gRPC's status to
//! a listed origin (tests/origins.rs: everyone else).

mod common;

use std::time::Duration;

use common::{Db, Reply, TestServer};
use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;
use prost::Message;
use roleplay_server::api::pb;

fn events_url(server: &TestServer, chat_id: &str) -> String {
    format!("http://{}/v1/chats/{chat_id}/events", server.addr)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().expect("client")
}

/// Opens the event stream like EventSource does, optionally resuming.
async fn open(server: &TestServer, chat_id: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = http().get(events_url(server, chat_id)).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.expect("request")
}

fn delta_text(event: &Event) -> (u64, String) {
    let data: serde_json::Value = serde_json::from_str(&event.data).expect("json");
    (data["offset"].as_u64().expect("offset"), data["text"].as_str().expect("text").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_reconnects_with_last_event_id_and_loses_nothing() {
    let server = TestServer::start(Db::Sqlite).await;
    let chat = server.chat().await;
    let chunks: Vec<String> = (0..40).map(|i| format!("é{i}🎭 ")).collect();
    let expected = chunks.concat();
    server.upstream.push(Reply::slow(chunks, Duration::from_millis(20)));

    let response = open(&server, &chat.id, None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/event-stream"));
    let mut events = response.bytes_stream().eventsource();
    let mut sender = server.send(&chat.id, "hi").await.expect("send");

    let mut text = String::new();
    let mut last_id = String::new();
    let mut reconnects = 0;
    let mut saw_completed = false;
    while !saw_completed {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event");
        if !event.id.is_empty() {
            last_id = event.id.clone();
        }
        match event.event.as_str() {
            "delta" => {
                let (offset, piece) = delta_text(&event);
                assert_eq!(offset as usize, text.len(), "gap or duplicate");
                text.push_str(&piece);
                assert_eq!(last_id, format!("{}:{}", last_id.split(':').next().expect("id"), text.len()));
                // Drop the connection every few deltas and come back the way
                // EventSource does.
                if text.len().is_multiple_of(3) || reconnects < 3 {
                    drop(events);
                    reconnects += 1;
                    let response = open(&server, &chat.id, Some(&last_id)).await;
                    assert_eq!(response.status(), 200);
                    events = response.bytes_stream().eventsource();
                }
            }
            "completed" => {
                assert!(last_id.ends_with(":end"), "{last_id}");
                saw_completed = true;
            }
            "started" | "" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(text, expected);
    assert!(reconnects >= 3);
    common::until_terminal(&mut sender).await;

    // Reconnecting after the end waits for the next reply instead of
    // replaying this one.
    let response = open(&server, &chat.id, Some(&last_id)).await;
    let mut events = response.bytes_stream().eventsource();
    server.upstream.push(Reply::chunks(["next ", "reply"]));
    common::until_terminal(&mut server.send(&chat.id, "again").await.expect("send")).await;
    let mut next = String::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event");
        match event.event.as_str() {
            "delta" => next.push_str(&delta_text(&event).1),
            "completed" => break,
            _ => {}
        }
    }
    assert_eq!(next, "next reply");

    let unknown = uuid::Uuid::now_v7();
    assert_eq!(open(&server, &chat.id, Some(&format!("{unknown}:0"))).await.status(), 412, "not resumable");
    assert_eq!(open(&server, &chat.id, Some("garbage")).await.status(), 400);
    assert_eq!(open(&server, &unknown.to_string(), None).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_over_http1_with_cors() {
    let server = TestServer::start_with(Db::Sqlite, |options| {
        options.browser.cors_origins =
            roleplay_server::api::browser::CorsOrigins::List(vec!["http://app.example".into()]);
    })
    .await;
    let url = format!("http://{}/roleplay.v1.CharacterService/CreateCharacter", server.addr);

    let preflight = http()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-grpc-web")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://app.example");

    let message = pb::CreateCharacterRequest { name: "Web".into(), ..Default::default() }.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let response = http()
        .post(&url)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", "http://app.example")
        .body(body)
        .send()
        .await
        .expect("grpc-web call");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
    let exposed = response.headers()["access-control-expose-headers"].to_str().expect("ascii").to_owned();
    assert!(exposed.contains("grpc-status") && exposed.contains("grpc-message"), "{exposed}");
    let bytes = response.bytes().await.expect("body");
    assert_eq!(bytes[0], 0, "a data frame first");
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    let character = pb::Character::decode(&bytes[5..5 + len]).expect("a Character");
    assert_eq!(character.name, "Web");
    let trailers = String::from_utf8_lossy(&bytes[5 + len + 5..]).to_lowercase();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // Errors reach the browser as grpc-status / grpc-message.
    let response = http()
        .post(format!("http://{}/roleplay.v1.CharacterService/GetCharacter", server.addr))
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("grpc-web call");
    let status = response.headers().get("grpc-status").map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.bytes().await.expect("body");
    let all = format!("{status:?} {}", String::from_utf8_lossy(&body));
    assert!(all.contains('3'), "INVALID_ARGUMENT (3) for a missing id: {all}");
}
