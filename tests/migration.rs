//! Chats written before swipes existed keep working: a database at the
//! previous schema, holding a chat with a reply, is migrated by the server and
//! read, resumed, regenerated and swiped through the RPCs, on both backends.

mod common;

use common::{Db, TestDb, TestServer, collect, started, terminal};
use diesel::{Connection, SqliteConnection, connection::SimpleConnection};
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use roleplay_server::api::pb::{self, generation_event::Event};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The schema's last migration before swipes (2026-11-25-000002_users), as
/// diesel writes versions: its digits.
const BEFORE_SWIPES: &str = "20261125000002";

const CHAT: &str = "01900000-0000-7000-8000-00000000c4a7";
const USER_MESSAGE: &str = "01900000-0000-7000-8000-000000000001";
const REPLY: &str = "01900000-0000-7000-8000-000000000002";
const OLD_STREAM: &str = "01900000-0000-7000-8000-0000000057e4";

/// Rows as the previous schema had them (no alternative columns).
fn old_rows() -> String {
    format!(
        "INSERT INTO characters (id, name, description, created_at, updated_at)
           VALUES ('01900000-0000-7000-8000-0000000000c1', 'Aria', 'A bard.', '2026-11-25 10:00:00', '2026-11-25 10:00:00');
         INSERT INTO user_profiles (id, name, description, created_at, updated_at)
           VALUES ('01900000-0000-7000-8000-0000000000f1', 'Sam', '', '2026-11-25 10:00:00', '2026-11-25 10:00:00');
         INSERT INTO chat_sessions (id, character_id, user_profile_id, title, created_at, updated_at)
           VALUES ('{CHAT}', '01900000-0000-7000-8000-0000000000c1', '01900000-0000-7000-8000-0000000000f1',
                   'Old chat', '2026-11-25 10:00:00', '2026-11-25 10:00:00');
         INSERT INTO messages (id, chat_session_id, role, content, status, created_at, updated_at)
           VALUES ('{USER_MESSAGE}', '{CHAT}', 'user', 'Hello from before', 'completed',
                   '2026-11-25 10:01:00', '2026-11-25 10:01:00');
         INSERT INTO messages (id, chat_session_id, role, content, status, model, provider, prompt_tokens,
                               completion_tokens, stream_id, finish_reason, duration_ms, created_at, updated_at)
           VALUES ('{REPLY}', '{CHAT}', 'assistant', 'An old reply', 'completed', 'old/model', 'primary', 11, 3,
                   '{OLD_STREAM}', 'stop', 1200, '2026-11-25 10:01:01', '2026-11-25 10:01:02');"
    )
}

/// Runs every migration, then reverts those after [`BEFORE_SWIPES`]. A macro
/// because each use of an embedded-migrations constant is a fresh value.
macro_rules! to_previous_schema {
    ($conn:expr, $migrations:expr) => {{
        $conn.run_pending_migrations($migrations).expect("migrate");
        while $conn
            .applied_migrations()
            .expect("applied")
            .iter()
            .any(|v| digits(&v.to_string()).as_str() > BEFORE_SWIPES)
        {
            $conn.revert_last_migration($migrations).expect("revert");
        }
    }};
}

fn digits(version: &str) -> String {
    version.chars().filter(char::is_ascii_digit).collect()
}

/// Migrates the test's database to the schema before swipes and fills it.
async fn previous_schema_with_a_chat(db: &TestDb, kind: Db) {
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || match kind {
        Db::Sqlite => {
            let mut conn = SqliteConnection::establish(&url).expect("sqlite");
            to_previous_schema!(conn, SQLITE);
            conn.batch_execute(&old_rows()).expect("old rows");
        }
        Db::Postgres | Db::Redis => {
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).expect("postgres");
            to_previous_schema!(conn, POSTGRES);
            conn.batch_execute(&old_rows()).expect("old rows");
        }
    })
    .await
    .expect("prepare the old database");
}

async fn old_chats_read_resume_and_swipe_after_the_migration(db: Db) {
    let test_db = TestDb::new(db).await;
    previous_schema_with_a_chat(&test_db, db).await;
    let server = TestServer::start_on(test_db).await;
    server.set_api_key().await;

    let messages = server.messages_of(CHAT).await;
    let read: Vec<_> = messages
        .iter()
        .map(|m| (m.id.as_str(), m.content.as_str(), m.alternative_index, m.alternative_count, m.edited_at.is_some()))
        .collect();
    assert_eq!(read, [(USER_MESSAGE, "Hello from before", 0, 1, false), (REPLY, "An old reply", 0, 1, false)]);
    assert_eq!(messages[1].stream_id.as_deref(), Some(OLD_STREAM));
    assert_eq!(messages[1].finish_reason.as_deref(), Some("stop"));

    let events = collect(
        &mut server
            .messages()
            .regenerate_reply(pb::RegenerateReplyRequest { chat_session_id: CHAT.into() })
            .await
            .expect("regenerate an old reply")
            .into_inner(),
    )
    .await;
    assert_eq!((started(&events).alternative_index, started(&events).alternative_count), (1, 2));
    assert!(matches!(terminal(&events), Event::Completed(_)));

    // The old reply, now set aside, still resumes by its stream id.
    let resume = pb::ResumePosition { stream_id: OLD_STREAM.into(), offset: 4 };
    let request = pb::SubscribeChatSessionRequest { chat_session_id: CHAT.into(), resume: Some(resume) };
    let mut resumed = server.messages().subscribe_chat_session(request).await.expect("resume").into_inner();
    let replayed = common::until_terminal(&mut resumed).await;
    assert_eq!(common::reconstruct(&replayed, 4, "An o".into()), "An old reply");

    let back = server
        .messages()
        .select_alternative(pb::SelectAlternativeRequest { message_id: REPLY.into(), index: 0 })
        .await
        .expect("select the old reply")
        .into_inner();
    assert_eq!(
        (back.content.as_str(), back.model.as_deref(), back.completion_tokens),
        ("An old reply", Some("old/model"), Some(3))
    );
    assert_eq!(server.messages_of(CHAT).await[1].content, "An old reply");
}

on_both_databases!(old_chats_read_resume_and_swipe_after_the_migration);
