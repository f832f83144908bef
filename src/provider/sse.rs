//! OpenAI-style chat completion chunks from server-sent events.
//!
//! Takes parsed SSE events (eventsource-stream handles framing, CRLF, comment
//! lines like `: OPENROUTER PROCESSING`, and UTF-8 split across reads), so it
//! can be fed canned events in tests. Handles `[DONE]`, a stream that ends
//! without it after a `finish_reason`, one that ends with neither (cut
//! short: an error), role-only and usage-only chunks, and an `error` object
//! sent mid-stream with status 200.

use std::{collections::VecDeque, fmt::Display, pin::Pin};

use eventsource_stream::Event;
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;

use super::{ProviderError, StreamEvent, Usage};

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<ChunkUsage>,
    error: Option<ChunkError>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    delta: Option<ChoiceDelta>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceDelta {
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    total_tokens: Option<u32>,
    cost: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct ChunkError {
    code: Option<serde_json::Value>,
    message: Option<String>,
}

enum Parsed {
    Events(Vec<StreamEvent>),
    Done,
    Failed(ProviderError),
}

/// Turns SSE events into stream events; ends at `[DONE]`, after the first
/// error, or at the end of the input. A stream that ends with neither
/// `[DONE]` nor a `finish_reason` was cut short (the connection closed
/// cleanly, whatever the framing): it ends with an error rather than
/// passing for a complete reply.
pub fn chat_events<S, E>(events: S) -> impl Stream<Item = Result<StreamEvent, ProviderError>> + Send
where
    S: Stream<Item = Result<Event, E>> + Send,
    E: Display,
{
    let state = Reading { events: Box::pin(events), pending: VecDeque::new(), finished: false, over: false };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.pending.pop_front() {
                return Some((item, state));
            }
            if state.over {
                return None;
            }
            let failure = match state.events.next().await {
                None if state.finished => return None,
                None => ProviderError::Upstream(TRUNCATED.into()),
                // The reply was whole at its finish_reason; only what may
                // follow it (usage, `[DONE]`) is lost with the connection.
                Some(Err(_)) if state.finished => return None,
                Some(Err(err)) => ProviderError::Upstream(format!("the connection to the provider broke: {err}")),
                Some(Ok(event)) => match parse_event(&event) {
                    Parsed::Done => return None,
                    Parsed::Failed(err) => err,
                    Parsed::Events(events) => {
                        state.finished |= events.iter().any(|e| matches!(e, StreamEvent::Finish(_)));
                        state.pending.extend(events.into_iter().map(Ok));
                        continue;
                    }
                },
            };
            state.over = true;
            return Some((Err(failure), state));
        }
    })
}

/// What a stream that closed without finishing is told.
pub const TRUNCATED: &str = "the provider's stream ended before the reply finished";

/// The parser's place in the provider's events.
struct Reading<S> {
    events: Pin<Box<S>>,
    /// Events of the last chunk not handed out yet.
    pending: VecDeque<Result<StreamEvent, ProviderError>>,
    /// A `finish_reason` was seen: the reply is whole even without `[DONE]`.
    finished: bool,
    /// `[DONE]` or an error ended the stream.
    over: bool,
}

fn parse_event(event: &Event) -> Parsed {
    let data = event.data.trim();
    if data == "[DONE]" {
        return Parsed::Done;
    }
    if data.is_empty() {
        return Parsed::Events(Vec::new());
    }
    let chunk: Chunk = match serde_json::from_str(data) {
        Ok(chunk) => chunk,
        Err(err) => {
            return Parsed::Failed(ProviderError::Upstream(format!(
                "the provider sent a chunk that is not valid JSON: {err}"
            )));
        }
    };
    if let Some(error) = chunk.error {
        let code = error.code.map(|c| format!(" (code {c})")).unwrap_or_default();
        let message = error.message.unwrap_or_else(|| "no message".into());
        return Parsed::Failed(ProviderError::Upstream(format!("{message}{code}")));
    }
    let mut events = Vec::with_capacity(2);
    for choice in chunk.choices {
        if let Some(text) = choice.delta.and_then(|d| d.content).filter(|t| !t.is_empty()) {
            events.push(StreamEvent::Text(text));
        }
        if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
            if reason == "error" {
                return Parsed::Failed(ProviderError::Upstream("the provider ended the reply with an error".into()));
            }
            events.push(StreamEvent::Finish(reason));
        }
    }
    if let Some(usage) = chunk.usage {
        events.push(StreamEvent::Usage(Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens.unwrap_or(usage.prompt_tokens + usage.completion_tokens),
            cost: usage.cost,
        }));
    }
    Parsed::Events(events)
}

#[cfg(test)]
mod tests {
    use eventsource_stream::Eventsource;

    use super::*;

    /// Feeds raw bytes, split at the given positions, through the real SSE
    /// decoder and this parser.
    async fn run(raw: &str, splits: &[usize]) -> Vec<Result<StreamEvent, ProviderError>> {
        let bytes = raw.as_bytes();
        let mut pieces = Vec::new();
        let mut start = 0;
        for &split in splits.iter().chain(std::iter::once(&bytes.len())) {
            pieces.push(Ok::<_, std::io::Error>(bytes[start..split].to_vec()));
            start = split;
        }
        chat_events(stream::iter(pieces).eventsource()).collect().await
    }

    fn text(t: &str) -> Result<StreamEvent, ProviderError> {
        Ok(StreamEvent::Text(t.into()))
    }

    #[tokio::test]
    async fn openrouter_stream_with_comments_role_chunk_usage_and_done() {
        let raw = ": OPENROUTER PROCESSING\r\n\r\n\
            data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}\r\n\r\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\r\n\r\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7,\"cost\":0.001}}\r\n\r\n\
            data: [DONE]\r\n\r\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"after done\"}}]}\n\n";
        let expected = vec![
            text("Hé"),
            text("llo"),
            Ok(StreamEvent::Finish("stop".into())),
            Ok(StreamEvent::Usage(Usage {
                prompt_tokens: 5,
                completion_tokens: 2,
                total_tokens: 7,
                cost: Some(0.001),
            })),
        ];
        assert_eq!(run(raw, &[]).await, expected);
        // Split at every byte, including inside the two-byte 'é'.
        let every_byte: Vec<usize> = (1..raw.len()).collect();
        assert_eq!(run(raw, &every_byte).await, expected);
    }

    #[tokio::test]
    async fn a_stream_may_end_without_done_once_it_has_a_finish_reason() {
        let raw = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}]}\n\n";
        assert_eq!(run(raw, &[7]).await, vec![text("a"), Ok(StreamEvent::Finish("length".into()))]);
    }

    #[tokio::test]
    async fn a_stream_that_ends_with_neither_done_nor_finish_reason_was_cut_short() {
        let raw = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n";
        let events = run(raw, &[7]).await;
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0], text("a"));
        assert!(matches!(&events[2], Err(ProviderError::Upstream(m)) if m == TRUNCATED), "{events:?}");
        // [DONE] alone also marks the end as whole.
        let done = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(run(done, &[]).await, vec![text("a")]);
        assert!(matches!(&run("", &[]).await[..], [Err(ProviderError::Upstream(m))] if m == TRUNCATED));
    }

    #[tokio::test]
    async fn a_connection_broken_after_the_finish_reason_leaves_a_whole_reply() {
        let finished = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\n";
        let unfinished = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
        let broken = |raw: &'static str| {
            let pieces = vec![Ok::<_, std::io::Error>(raw.as_bytes().to_vec()), Err(std::io::Error::other("reset"))];
            chat_events(stream::iter(pieces).eventsource()).collect::<Vec<_>>()
        };
        assert_eq!(broken(finished).await, vec![text("a"), Ok(StreamEvent::Finish("stop".into()))]);
        let cut = broken(unfinished).await;
        assert_eq!(cut[0], text("a"));
        assert!(
            matches!(&cut[1], Err(ProviderError::Upstream(m)) if m.contains("broke") && m.contains("reset")),
            "{cut:?}"
        );
    }

    #[tokio::test]
    async fn error_object_mid_stream_ends_with_an_error() {
        let raw = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
            data: {\"error\":{\"code\":502,\"message\":\"Provider returned error\"}}\n\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
        let events = run(raw, &[]).await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], text("a"));
        assert!(
            matches!(&events[1], Err(ProviderError::Upstream(m)) if m.contains("Provider returned error") && m.contains("502"))
        );
    }

    #[tokio::test]
    async fn invalid_json_is_an_error() {
        let events = run("data: {nope\n\n", &[]).await;
        assert!(matches!(&events[..], [Err(ProviderError::Upstream(_))]));
    }
}
