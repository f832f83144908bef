//! Usage records through the real server: one per generation whatever its
//! outcome, with tokens, cost, provider and timings, summed per day and per
//! model by GetUsage.

mod common;

use common::{Db, Reply, TestServer, collect};
use prost_types::Timestamp;
use roleplay_server::api::pb;
use tonic::Code;

fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

async fn every_generation_is_recorded_and_totalled(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    server.upstream.push(Reply::chunks(["Once ", "upon ", "a time."]));
    collect(&mut server.send(&chat.id, "A story?").await.expect("send")).await;
    server.upstream.push(Reply::status(401, "bad key"));
    collect(&mut server.send(&chat.id, "Another?").await.expect("send")).await;
    let messages = server.messages_of(&chat.id).await;
    let completed = &messages[1];
    let me = server.as_user(None);

    let records = me
        .usage()
        .list_usage_records(pb::ListUsageRecordsRequest::default())
        .await
        .expect("records")
        .into_inner()
        .records;
    assert_eq!(records.len(), 2, "{records:?}");
    let (failed, ok) = (&records[0], &records[1]);
    assert_eq!((ok.outcome.as_str(), ok.provider.as_str()), ("completed", "primary"));
    assert_eq!(ok.stream_id, completed.stream_id.clone().unwrap_or_default());
    assert_eq!(ok.chat_session_id, chat.id);
    assert_eq!(Some(ok.prompt_tokens as u32), completed.prompt_tokens);
    assert_eq!(Some(ok.completion_tokens as u32), completed.completion_tokens);
    assert_eq!(ok.cost, Some(0.0001), "OpenRouter's cost from the last chunk");
    assert!(ok.time_to_first_token_ms.is_some_and(|t| t <= ok.duration_ms));
    assert_eq!(ok.model, completed.model.clone().unwrap_or_default());
    assert_eq!((failed.outcome.as_str(), failed.detail.as_str()), ("failed", "key_rejected"));
    assert_eq!((failed.prompt_tokens, failed.cost, failed.time_to_first_token_ms), (0, None, None));

    for (grouping, key) in [
        (pb::UsageGrouping::Day, chrono::Utc::now().format("%Y-%m-%d").to_string()),
        (pb::UsageGrouping::Model, ok.model.clone()),
    ] {
        let usage = me
            .usage()
            .get_usage(pb::GetUsageRequest { group_by: grouping.into(), ..Default::default() })
            .await
            .expect("usage")
            .into_inner();
        assert_eq!(usage.totals.len(), 1, "{usage:?}");
        let total = &usage.totals[0];
        assert_eq!(total.key, key);
        assert_eq!((total.generations, total.completed), (2, 1));
        assert_eq!((total.prompt_tokens, total.completion_tokens), (ok.prompt_tokens, ok.completion_tokens));
        assert!((total.cost - 0.0001).abs() < 1e-12);
        assert_eq!(usage.overall.as_ref().map(|o| o.generations), Some(2));
    }

    // A range before any of it holds nothing; a reversed range is refused.
    let yesterday = Some(Timestamp { seconds: now_seconds() - 86_400, nanos: 0 });
    let empty = me
        .usage()
        .get_usage(pb::GetUsageRequest { to: yesterday, ..Default::default() })
        .await
        .expect("usage")
        .into_inner();
    assert!(empty.totals.is_empty());
    let reversed = me
        .usage()
        .get_usage(pb::GetUsageRequest {
            from: Some(Timestamp { seconds: now_seconds(), nanos: 0 }),
            to: yesterday,
            ..Default::default()
        })
        .await;
    assert_eq!(reversed.map(|_| ()).map_err(|s| s.code()), Err(Code::InvalidArgument));

    // Usage outlives the chat it came from.
    server
        .chats()
        .delete_chat_session(pb::DeleteChatSessionRequest { id: chat.id.clone() })
        .await
        .expect("delete chat");
    let usage = me.usage().get_usage(pb::GetUsageRequest::default()).await.expect("usage").into_inner();
    assert_eq!(usage.overall.map(|o| o.generations), Some(2));
}

on_both_databases!(every_generation_is_recorded_and_totalled);
