//! OpenTelemetry traces through the real binary into an in-test OTLP
//! collector: a call continues the caller's W3C trace, the reply's span and
//! its stages hang under it, the provider request carries the trace on, and
//! no span holds message text or the key. Without an endpoint, nothing is
//! sent.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{API_KEY, Db, FakeUpstream, Reply, TestDb, collect, process};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::Span,
};
use roleplay_server::api::pb::{self, generation_event::Event, message_service_client::MessageServiceClient};
use tokio_stream::wrappers::TcpListenerStream;

/// An OTLP/gRPC trace receiver that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.spans.lock().expect("spans").extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (Self, u16) {
        let collector = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (collector, port)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("spans").clone()
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).map(|kv| text(&kv.value))
}

/// Every string a span carries: its name, attributes, events and theirs.
fn every_string(span: &Span) -> Vec<String> {
    let pairs = |kvs: &[KeyValue]| kvs.iter().flat_map(|kv| [kv.key.clone(), text(&kv.value)]).collect::<Vec<_>>();
    let mut all = vec![span.name.clone()];
    all.extend(pairs(&span.attributes));
    for event in &span.events {
        all.push(event.name.clone());
        all.extend(pairs(&event.attributes));
    }
    all
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";
const SECRET_TEXT: &str = "my private confession";
const REPLY_TEXT: &str = "a confidential answer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_one_trace_continuing_the_callers_and_carried_to_the_provider() {
    let (collector, collector_port) = Collector::start().await;
    let db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = FakeUpstream::start().await;
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let mut server = process::spawn_with(
        &db,
        dir.path(),
        &upstream,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let chat = process::open_chat(&server.channel).await;
    let mut messages = MessageServiceClient::new(server.channel.clone());

    upstream.push(Reply::chunks(["a confidential ", "answer"]));
    let mut request = tonic::Request::new(pb::AddUserMessageRequest {
        chat_session_id: chat.id.clone(),
        content: SECRET_TEXT.into(),
    });
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01");
    request.metadata_mut().insert("traceparent", traceparent.parse().expect("metadata"));
    let events = collect(&mut messages.add_user_message_streaming(request).await.expect("send").into_inner()).await;
    assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");

    // Stopping flushes what the batch has not sent yet.
    let pid = server.child.id().expect("pid").to_string();
    let stopped = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
    assert!(stopped.success());
    tokio::time::timeout(Duration::from_secs(20), server.child.wait()).await.expect("stops").expect("exit");

    let spans = collector.spans();
    let hex = |bytes: &[u8]| hex::encode(bytes);
    let by_name = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let send_rpc = by_name("roleplay.v1.MessageService/AddUserMessageStreaming");
    assert_eq!(send_rpc.len(), 1, "one span for the call: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let rpc = send_rpc[0];
    assert_eq!(hex(&rpc.trace_id), TRACE_ID, "the call continues the caller's trace");
    assert_eq!(hex(&rpc.parent_span_id), CALLER_SPAN_ID, "under the caller's span");
    assert_eq!(attribute(rpc, "rpc.grpc.status_code").as_deref(), Some("IntValue(0)"));

    let replies = by_name("reply");
    assert_eq!(replies.len(), 1);
    let reply = replies[0];
    assert_eq!(reply.trace_id, rpc.trace_id);
    assert_eq!(reply.parent_span_id, rpc.span_id, "the reply hangs under its call");
    assert_eq!(attribute(reply, "outcome").as_deref(), Some("completed"));
    assert_eq!(attribute(reply, "stream_id").as_deref(), Some(events_stream_id(&events).as_str()));

    let stages: HashMap<&str, &Span> =
        spans.iter().filter(|s| s.parent_span_id == reply.span_id).map(|s| (s.name.as_str(), s)).collect();
    for stage in ["prompt", "store", "provider.connect", "first_token", "stream", "store.reply"] {
        let Some(span) = stages.get(stage) else { panic!("no {stage} stage under the reply: {:?}", stages.keys()) };
        assert_eq!(span.trace_id, reply.trace_id);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    }
    let (first_token, stream) = (stages["first_token"], stages["stream"]);
    assert!(stream.start_time_unix_nano >= first_token.end_time_unix_nano, "streaming follows the first token");

    // The provider was asked within the same trace, as a child of the
    // connect stage.
    let sent = upstream.requests();
    let carried = sent[0].headers.get("traceparent").and_then(|v| v.to_str().ok()).expect("traceparent sent on");
    let connect = stages["provider.connect"];
    assert_eq!(carried, format!("00-{TRACE_ID}-{}-01", hex(&connect.span_id)));

    for span in &spans {
        for value in every_string(span) {
            for secret in [SECRET_TEXT, REPLY_TEXT, API_KEY, "confidential", "confession"] {
                assert!(!value.contains(secret), "span {} holds {secret:?} in {value:?}", span.name);
            }
        }
    }
}

fn events_stream_id(events: &[Event]) -> String {
    match events.first() {
        Some(Event::Started(started)) => started.stream_id.clone(),
        other => panic!("the reply did not start: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_traced_or_sent_on() {
    let db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = FakeUpstream::start().await;
    let server = process::spawn_with(&db, dir.path(), &upstream, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).await;
    let chat = process::open_chat(&server.channel).await;
    let mut messages = MessageServiceClient::new(server.channel.clone());
    upstream.push(Reply::chunks(["hello"]));
    let mut request =
        tonic::Request::new(pb::AddUserMessageRequest { chat_session_id: chat.id.clone(), content: "hi".into() });
    request.metadata_mut().insert("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01").parse().expect("md"));
    collect(&mut messages.add_user_message_streaming(request).await.expect("send").into_inner()).await;
    assert!(upstream.requests()[0].headers.get("traceparent").is_none(), "no trace context without tracing");
}
