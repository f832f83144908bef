//! Lorebooks through the real server, on SQLite and PostgreSQL: books and
//! entries, SillyTavern world-info files in and out (losslessly), attaching
//! books to characters and chats, a card's own book, other users' books, and
//! bad input that changes nothing.

mod common;

use common::{Db, TestServer, users::As};
use roleplay_server::api::pb;
use serde_json::{Value, json};
use tonic::Code;

type Client = pb::lorebook_service_client::LorebookServiceClient<tonic::transport::Channel>;

/// The server with an admin "root" and two plain users; returns their
/// clients. Creating root ends single-user mode.
async fn two_users(server: &TestServer) -> (As, As, As) {
    let local = server.as_user(None);
    let root = server.as_user(Some(&local.create_user("root", true).await));
    let alice = server.as_user(Some(&root.create_user("alice", false).await));
    let bob = server.as_user(Some(&root.create_user("bob", false).await));
    root.set_global_key().await;
    (root, alice, bob)
}

async fn create_book(client: &mut Client, name: &str) -> pb::Lorebook {
    client
        .create_lorebook(pb::CreateLorebookRequest { name: name.into(), ..Default::default() })
        .await
        .expect("create lorebook")
        .into_inner()
}

async fn get_book(client: &mut Client, id: &str) -> Result<pb::Lorebook, tonic::Status> {
    client.get_lorebook(pb::GetLorebookRequest { id: id.into() }).await.map(tonic::Response::into_inner)
}

async fn list_books(client: &mut Client) -> Vec<pb::Lorebook> {
    client
        .list_lorebooks(pb::ListLorebooksRequest { page_size: 500, page_token: String::new() })
        .await
        .expect("list lorebooks")
        .into_inner()
        .lorebooks
}

fn entry(keys: &[&str], content: &str) -> pb::LorebookEntry {
    pb::LorebookEntry {
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        content: content.into(),
        enabled: true,
        insertion_order: 100,
        ..Default::default()
    }
}

async fn add_entry(
    client: &mut Client,
    book_id: &str,
    entry: pb::LorebookEntry,
) -> Result<pb::LorebookEntry, tonic::Status> {
    client
        .create_lorebook_entry(pb::CreateLorebookEntryRequest { lorebook_id: book_id.into(), entry: Some(entry) })
        .await
        .map(tonic::Response::into_inner)
}

async fn import(client: &mut Client, data: &[u8], filename: &str) -> Result<pb::Lorebook, tonic::Status> {
    client
        .import_lorebook(pb::ImportLorebookRequest { data: data.to_vec(), filename: filename.into() })
        .await
        .map(tonic::Response::into_inner)
}

async fn export(client: &mut Client, id: &str) -> (Value, String) {
    let exported =
        client.export_lorebook(pb::ExportLorebookRequest { id: id.into() }).await.expect("export").into_inner();
    (serde_json::from_slice(&exported.data).expect("exported JSON"), exported.filename)
}

fn character_target(id: &str) -> Option<pb::attach_lorebook_request::Target> {
    Some(pb::attach_lorebook_request::Target::CharacterId(id.into()))
}

fn chat_target(id: &str) -> Option<pb::attach_lorebook_request::Target> {
    Some(pb::attach_lorebook_request::Target::ChatSessionId(id.into()))
}

async fn attach(
    client: &mut Client,
    book_id: &str,
    target: Option<pb::attach_lorebook_request::Target>,
) -> Result<pb::Lorebook, tonic::Status> {
    client
        .attach_lorebook(pb::AttachLorebookRequest { lorebook_id: book_id.into(), target })
        .await
        .map(tonic::Response::into_inner)
}

async fn detach(
    client: &mut Client,
    book_id: &str,
    target: Option<pb::attach_lorebook_request::Target>,
) -> Result<pb::Lorebook, tonic::Status> {
    use pb::{attach_lorebook_request::Target as A, detach_lorebook_request::Target as D};
    let target = target.map(|t| match t {
        A::CharacterId(id) => D::CharacterId(id),
        A::ChatSessionId(id) => D::ChatSessionId(id),
    });
    client
        .detach_lorebook(pb::DetachLorebookRequest { lorebook_id: book_id.into(), target })
        .await
        .map(tonic::Response::into_inner)
}

/// `book` without what changes on every write.
fn settled(book: &pb::Lorebook) -> pb::Lorebook {
    pb::Lorebook { updated_at: None, ..book.clone() }
}

async fn books_and_entries_have_a_lifecycle(db: Db) {
    let server = TestServer::start(db).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let request = tonic_health::pb::HealthCheckRequest { service: "roleplay.v1.LorebookService".into() };
    let status = health.check(request).await.expect("health").into_inner().status();
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving);
    let mut client = server.lorebooks();
    let created = client
        .create_lorebook(pb::CreateLorebookRequest {
            name: "Dragons".into(),
            description: "Everything about dragons.".into(),
            scan_depth: Some(6),
            token_budget: None,
            recursive_scanning: true,
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(
        (created.name.as_str(), created.description.as_str(), created.scan_depth, created.token_budget),
        ("Dragons", "Everything about dragons.", Some(6), None)
    );
    assert!(created.recursive_scanning && created.entries.is_empty() && created.entry_count == 0);
    assert!(created.created_at.is_some() && created.created_at == created.updated_at);
    assert_eq!(get_book(&mut client, &created.id).await.expect("get"), created, "read back as created");

    let first = add_entry(&mut client, &created.id, entry(&["dragon", "wyrm"], "Dragons hoard gold."))
        .await
        .expect("first entry");
    assert_eq!((first.id, first.content.as_str()), (0, "Dragons hoard gold."));
    assert_eq!(first.keys, ["dragon", "wyrm"]);
    let at_depth = pb::LorebookEntry {
        secondary_keys: vec!["fire".into()],
        selective_logic: pb::SelectiveLogic::NotAny.into(),
        comment: "Breath".into(),
        case_sensitive: Some(true),
        match_whole_words: Some(false),
        position: pb::EntryPosition::AtDepth.into(),
        depth: 2,
        depth_role: pb::EntryRole::User.into(),
        probability: Some(50),
        id: 77,
        ..entry(&["/breath(es)?/i"], "Dragon breath melts steel.")
    };
    let second = add_entry(&mut client, &created.id, at_depth.clone()).await.expect("second entry");
    assert_eq!(second, pb::LorebookEntry { id: 1, ..at_depth }, "stored as sent, with an id the server chose");

    let book = get_book(&mut client, &created.id).await.expect("get");
    assert_eq!(book.entries, [first.clone(), second.clone()]);
    assert_eq!(book.entry_count, 2);

    let changed = client
        .update_lorebook_entry(pb::UpdateLorebookEntryRequest {
            lorebook_id: created.id.clone(),
            entry_id: 0,
            entry: Some(pb::LorebookEntry { constant: true, ..entry(&["dragon"], "Dragons sleep on gold.") }),
        })
        .await
        .expect("update entry")
        .into_inner();
    assert_eq!((changed.id, changed.constant, changed.content.as_str()), (0, true, "Dragons sleep on gold."));
    assert_eq!(changed.keys, ["dragon"]);

    let renamed = client
        .update_lorebook(pb::UpdateLorebookRequest {
            id: created.id.clone(),
            name: Some("Wyrms".into()),
            token_budget: Some(300),
            ..Default::default()
        })
        .await
        .expect("update book")
        .into_inner();
    assert_eq!((renamed.name.as_str(), renamed.token_budget, renamed.scan_depth), ("Wyrms", Some(300), Some(6)));
    assert_eq!(renamed.description, "Everything about dragons.", "absent fields stay");
    assert!(renamed.recursive_scanning);
    assert_eq!(renamed.entries, [changed.clone(), second.clone()]);
    let at = |book: &pb::Lorebook| book.updated_at.map(|t| (t.seconds, t.nanos));
    assert!(at(&renamed) > at(&created), "an update stamps the book");

    let listed = list_books(&mut client).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].entries.is_empty(), "a listing leaves entries out");
    assert_eq!(listed[0].entry_count, 2);
    assert_eq!(listed[0], pb::Lorebook { entries: Vec::new(), ..renamed.clone() });

    client
        .delete_lorebook_entry(pb::DeleteLorebookEntryRequest { lorebook_id: created.id.clone(), entry_id: 1 })
        .await
        .expect("delete entry");
    let err = client
        .delete_lorebook_entry(pb::DeleteLorebookEntryRequest { lorebook_id: created.id.clone(), entry_id: 1 })
        .await
        .expect_err("deleted twice");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("entry 1"), "{}", err.message());
    let third = add_entry(&mut client, &created.id, entry(&["hoard"], "Gold.")).await.expect("third entry");
    assert_eq!(third.id, 1, "one above the largest id in the book");
    assert_eq!(get_book(&mut client, &created.id).await.expect("get").entries, [changed, third]);

    // Keyset paging over books, oldest first.
    let more = [create_book(&mut client, "B").await.id, create_book(&mut client, "C").await.id];
    let page = client
        .list_lorebooks(pb::ListLorebooksRequest { page_size: 2, page_token: String::new() })
        .await
        .expect("page 1")
        .into_inner();
    let rest = client
        .list_lorebooks(pb::ListLorebooksRequest { page_size: 2, page_token: page.next_page_token.clone() })
        .await
        .expect("page 2")
        .into_inner();
    let ids: Vec<_> = page.lorebooks.iter().chain(&rest.lorebooks).map(|b| b.id.clone()).collect();
    assert_eq!(ids, [created.id.clone(), more[0].clone(), more[1].clone()]);
    assert!(rest.next_page_token.is_empty());

    client.delete_lorebook(pb::DeleteLorebookRequest { id: created.id.clone() }).await.expect("delete");
    assert_eq!(get_book(&mut client, &created.id).await.expect_err("deleted").code(), Code::NotFound);
    let err = client.delete_lorebook(pb::DeleteLorebookRequest { id: created.id.clone() }).await.expect_err("twice");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(list_books(&mut client).await.len(), 2);
}

async fn concurrent_edits_of_one_book_lose_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let mut client = server.lorebooks();
    let book = create_book(&mut client, "Busy").await;
    let creates = (0..12).map(|i| {
        let (mut client, id) = (server.lorebooks(), book.id.clone());
        async move { add_entry(&mut client, &id, entry(&[&format!("key {i}")], &format!("entry {i}"))).await }
    });
    let created = futures_util::future::join_all(creates).await;
    let mut ids: Vec<i64> = created.into_iter().map(|r| r.expect("every create succeeds").id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..12).collect::<Vec<_>>(), "unique ids, none taken twice");

    let updates = (0..12).map(|i| {
        let (mut client, id) = (server.lorebooks(), book.id.clone());
        async move {
            let request = pb::UpdateLorebookEntryRequest {
                lorebook_id: id,
                entry_id: i,
                entry: Some(entry(&["same"], &format!("updated {i}"))),
            };
            client.update_lorebook_entry(request).await
        }
    });
    for result in futures_util::future::join_all(updates).await {
        result.expect("every update succeeds");
    }
    let stored = get_book(&mut client, &book.id).await.expect("get");
    let mut contents: Vec<_> = stored.entries.iter().map(|e| (e.id, e.content.clone())).collect();
    contents.sort();
    assert_eq!(contents, (0..12).map(|i| (i, format!("updated {i}"))).collect::<Vec<_>>(), "no write was lost");
}

/// A world-info file as SillyTavern writes it, with fields this server does
/// not model (at the book's and the entries' top level).
fn world_info() -> Value {
    json!({
        "name": "Dragons of the North",
        "originalData": {"kind": "kept as it is"},
        "entries": {
            "0": {
                "uid": 0, "key": ["dragon", "wyrm"], "keysecondary": ["fire"], "comment": "Dragons",
                "content": "Dragons hoard gold.", "constant": false, "selective": true, "selectiveLogic": 0,
                "addMemo": true, "order": 100, "position": 0, "disable": false, "excludeRecursion": false,
                "preventRecursion": true, "probability": 100, "useProbability": false, "depth": 4,
                "group": "", "groupOverride": false, "scanDepth": null, "caseSensitive": null,
                "matchWholeWords": null, "role": null, "sticky": 0, "displayIndex": 0, "vectorized": false
            },
            "1": {
                "uid": 1, "key": ["/sil(ver|ber)/i"], "keysecondary": [], "comment": "Silver",
                "content": "Silver burns them.", "constant": false, "selective": false, "selectiveLogic": 3,
                "addMemo": false, "order": 50, "position": 4, "depth": 2, "role": 1, "disable": false,
                "probability": 50, "useProbability": true, "caseSensitive": true, "matchWholeWords": false,
                "sticky": 2, "cooldown": 1, "automationId": "", "displayIndex": 1,
                "x_tool": {"nested": [1, {"deep": true}]}
            },
            "5": {
                "uid": 5, "key": [], "keysecondary": [], "comment": "", "content": "It is always winter.",
                "constant": true, "selective": false, "selectiveLogic": 0, "order": 5, "position": 1,
                "disable": true, "probability": 100, "useProbability": true, "depth": 4, "role": 0,
                "caseSensitive": false, "matchWholeWords": true, "displayIndex": 2
            }
        }
    })
}

async fn world_info_round_trips_losslessly(db: Db) {
    let server = TestServer::start(db).await;
    let mut client = server.lorebooks();
    let original = world_info();
    let bytes = serde_json::to_vec_pretty(&original).expect("json");
    let imported = import(&mut client, &bytes, "ignored because the book has a name.json").await.expect("import");
    assert_eq!(imported.name, "Dragons of the North");
    assert_eq!(imported.entry_count, 3);
    let ids: Vec<i64> = imported.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, [0, 1, 5], "SillyTavern's uids are the entry ids");
    let silver = &imported.entries[1];
    assert_eq!(silver.keys, ["/sil(ver|ber)/i"]);
    assert_eq!(
        (silver.position(), silver.depth, silver.depth_role()),
        (pb::EntryPosition::AtDepth, 2, pb::EntryRole::User)
    );
    assert_eq!(
        (silver.selective_logic(), silver.probability, silver.case_sensitive),
        (pb::SelectiveLogic::AndAll, Some(50), Some(true))
    );
    let winter = &imported.entries[2];
    assert!(winter.constant && !winter.enabled);
    assert_eq!((winter.position(), winter.match_whole_words), (pb::EntryPosition::AfterCharacter, Some(true)));
    assert_eq!(get_book(&mut client, &imported.id).await.expect("get"), imported);

    let (exported, filename) = export(&mut client, &imported.id).await;
    assert_eq!(filename, "Dragons of the North.json");
    assert_eq!(exported, original, "export gives back exactly the file that was imported");

    let again = import(&mut client, &serde_json::to_vec(&exported).expect("json"), &filename).await.expect("re-import");
    assert_eq!(
        pb::Lorebook { id: imported.id.clone(), created_at: None, updated_at: None, ..again.clone() },
        pb::Lorebook { created_at: None, updated_at: None, ..imported.clone() },
        "import → export → import reads the same book"
    );
    assert_eq!(export(&mut client, &again.id).await.0, original);

    // Editing an entry keeps what the API does not carry.
    let edited = pb::LorebookEntry { content: "Silver and moonlight burn them.".into(), ..silver.clone() };
    client
        .update_lorebook_entry(pb::UpdateLorebookEntryRequest {
            lorebook_id: imported.id.clone(),
            entry_id: 1,
            entry: Some(edited),
        })
        .await
        .expect("update entry");
    let (exported, _) = export(&mut client, &imported.id).await;
    let mut expected = original.clone();
    expected["entries"]["1"]["content"] = json!("Silver and moonlight burn them.");
    assert_eq!(exported, expected, "only the content changed; unknown fields and the rest stayed");

    // A new entry takes the next uid and is written in SillyTavern's shape.
    let added = add_entry(&mut client, &imported.id, entry(&["north"], "Snow.")).await.expect("add");
    assert_eq!(added.id, 6);
    let (exported, _) = export(&mut client, &imported.id).await;
    let new = &exported["entries"]["6"];
    assert_eq!(
        (new["uid"].clone(), new["key"].clone(), new["content"].clone()),
        (json!(6), json!(["north"]), json!("Snow."))
    );
    assert_eq!((new["disable"].clone(), new["selective"].clone()), (json!(false), json!(true)));

    // A file without a name is named after the file; a card's
    // character_book object is read as one.
    let nameless = json!({"entries": {"0": {"uid": 0, "key": ["elf"], "content": "Elves are tall."}}});
    let book =
        import(&mut client, nameless.to_string().as_bytes(), "books/Elves of the West.json").await.expect("import");
    assert_eq!(book.name, "Elves of the West");
    let character_book = json!({
        "name": "Harbor",
        "entries": [
            {"keys": ["harbor"], "content": "The harbor is quiet.", "enabled": true, "insertion_order": 10,
             "extensions": {"position": 4, "depth": 1, "role": 2}},
            {"id": 7, "keys": ["docks"], "content": "The docks are busy.", "enabled": false, "insertion_order": 20}
        ]
    });
    let book = import(&mut client, character_book.to_string().as_bytes(), "harbor.json").await.expect("card book");
    assert_eq!(book.name, "Harbor");
    let read: Vec<_> =
        book.entries.iter().map(|e| (e.id, e.keys[0].as_str(), e.enabled, e.position(), e.depth_role())).collect();
    assert_eq!(
        read,
        [
            (8, "harbor", true, pb::EntryPosition::AtDepth, pb::EntryRole::Assistant),
            (7, "docks", false, pb::EntryPosition::BeforeCharacter, pb::EntryRole::System)
        ],
        "an entry without an id gets one above the largest"
    );
}

async fn books_attach_to_characters_and_chats(db: Db) {
    let server = TestServer::start(db).await;
    let chat = server.chat().await;
    let mut client = server.lorebooks();
    let book = create_book(&mut client, "Harbor").await;
    add_entry(&mut client, &book.id, entry(&["harbor"], "Quiet.")).await.expect("entry");

    let attached = attach(&mut client, &book.id, character_target(&chat.character_id)).await.expect("attach");
    assert_eq!(attached.character_ids, [chat.character_id.as_str()]);
    assert_eq!(attached.entries.len(), 1, "the whole book comes back");
    let twice = attach(&mut client, &book.id, character_target(&chat.character_id)).await.expect("attach twice");
    assert_eq!(twice.character_ids, [chat.character_id.as_str()], "attaching twice is one attachment");
    let both = attach(&mut client, &book.id, chat_target(&chat.id)).await.expect("attach to chat");
    assert_eq!(
        (both.character_ids.clone(), both.chat_session_ids.clone()),
        (vec![chat.character_id.clone()], vec![chat.id.clone()])
    );
    assert_eq!(settled(&get_book(&mut client, &book.id).await.expect("get")), settled(&both));
    assert_eq!(list_books(&mut client).await[0].chat_session_ids, [chat.id.as_str()]);
    let for_chat = server.state.store.prompt_inputs(&chat.id, &chat.character_id).await.expect("books for chat").books;
    assert_eq!(for_chat.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [book.id.as_str()], "each book once");

    // A second chat of the same character sees the book through the character only.
    let other = create_book(&mut client, "Only this chat").await;
    attach(&mut client, &other.id, chat_target(&chat.id)).await.expect("attach other");
    let for_chat = server.state.store.prompt_inputs(&chat.id, &chat.character_id).await.expect("books for chat").books;
    assert_eq!(for_chat.len(), 2);

    let detached = detach(&mut client, &book.id, character_target(&chat.character_id)).await.expect("detach");
    assert!(detached.character_ids.is_empty());
    assert_eq!(detached.chat_session_ids, [chat.id.as_str()]);
    let detached = detach(&mut client, &book.id, chat_target(&chat.id)).await.expect("detach chat");
    assert!(detached.character_ids.is_empty() && detached.chat_session_ids.is_empty());
    detach(&mut client, &book.id, chat_target(&chat.id)).await.expect("detaching what is not attached is fine");
    let for_chat = server.state.store.prompt_inputs(&chat.id, &chat.character_id).await.expect("books for chat").books;
    assert_eq!(for_chat.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [other.id.as_str()]);

    // Unknown targets, or none, are refused and attach nothing.
    let unknown = uuid::Uuid::now_v7().to_string();
    for target in [character_target(&unknown), chat_target(&unknown)] {
        let err = attach(&mut client, &book.id, target.clone()).await.expect_err("unknown target");
        assert_eq!(err.code(), Code::NotFound);
        assert!(err.message().contains(&unknown), "{}", err.message());
        assert_eq!(detach(&mut client, &book.id, target).await.expect_err("unknown target").code(), Code::NotFound);
    }
    let err = attach(&mut client, &unknown, character_target(&chat.character_id)).await.expect_err("unknown book");
    assert_eq!(err.code(), Code::NotFound);
    let err = attach(&mut client, &book.id, None).await.expect_err("no target");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("target"), "{}", err.message());
    let unchanged = get_book(&mut client, &book.id).await.expect("get");
    assert!(unchanged.character_ids.is_empty() && unchanged.chat_session_ids.is_empty());

    // Deleting a chat, a character or a book removes their attachments.
    attach(&mut client, &book.id, chat_target(&chat.id)).await.expect("attach again");
    attach(&mut client, &book.id, character_target(&chat.character_id)).await.expect("attach again");
    server
        .chats()
        .delete_chat_session(pb::DeleteChatSessionRequest { id: chat.id.clone() })
        .await
        .expect("delete chat");
    let after = get_book(&mut client, &book.id).await.expect("get");
    assert!(after.chat_session_ids.is_empty(), "the chat's attachment went with it");
    assert_eq!(after.character_ids, [chat.character_id.as_str()]);
    server
        .characters()
        .delete_character(pb::DeleteCharacterRequest { id: chat.character_id.clone() })
        .await
        .expect("a character with books attached can be deleted");
    assert!(get_book(&mut client, &book.id).await.expect("get").character_ids.is_empty());
    client.delete_lorebook(pb::DeleteLorebookRequest { id: book.id.clone() }).await.expect("delete book");
    client.delete_lorebook(pb::DeleteLorebookRequest { id: other.id.clone() }).await.expect("delete other");
    assert!(list_books(&mut client).await.is_empty());
}

async fn another_users_book_is_not_found(db: Db) {
    let server = TestServer::start(db).await;
    let (_root, alice, bob) = two_users(&server).await;
    let alice_chat = alice.open_chat("Aria").await;
    let bob_chat = bob.open_chat("Bram").await;
    let mut alices = alice.lorebooks();
    let mut bobs = bob.lorebooks();
    let book = alices
        .create_lorebook(pb::CreateLorebookRequest { name: "Alice's".into(), ..Default::default() })
        .await
        .expect("create")
        .into_inner();
    alices
        .create_lorebook_entry(pb::CreateLorebookEntryRequest {
            lorebook_id: book.id.clone(),
            entry: Some(entry(&["secret"], "Alice's secret.")),
        })
        .await
        .expect("entry");
    attach_as(&mut alices, &book.id, character_target(&alice_chat.character_id)).await.expect("alice attaches");
    let before = alices.get_lorebook(pb::GetLorebookRequest { id: book.id.clone() }).await.expect("get").into_inner();
    let bobs_book = bobs
        .create_lorebook(pb::CreateLorebookRequest { name: "Bob's".into(), ..Default::default() })
        .await
        .expect("bob's")
        .into_inner();

    let id = book.id.clone();
    let results = vec![
        ("GetLorebook", code(bobs.get_lorebook(pb::GetLorebookRequest { id: id.clone() }).await)),
        (
            "UpdateLorebook",
            code(
                bobs.update_lorebook(pb::UpdateLorebookRequest {
                    id: id.clone(),
                    name: Some("Stolen".into()),
                    ..Default::default()
                })
                .await,
            ),
        ),
        ("DeleteLorebook", code(bobs.delete_lorebook(pb::DeleteLorebookRequest { id: id.clone() }).await)),
        (
            "CreateLorebookEntry",
            code(
                bobs.create_lorebook_entry(pb::CreateLorebookEntryRequest {
                    lorebook_id: id.clone(),
                    entry: Some(entry(&["x"], "x")),
                })
                .await,
            ),
        ),
        (
            "UpdateLorebookEntry",
            code(
                bobs.update_lorebook_entry(pb::UpdateLorebookEntryRequest {
                    lorebook_id: id.clone(),
                    entry_id: 0,
                    entry: Some(entry(&["x"], "x")),
                })
                .await,
            ),
        ),
        (
            "DeleteLorebookEntry",
            code(
                bobs.delete_lorebook_entry(pb::DeleteLorebookEntryRequest { lorebook_id: id.clone(), entry_id: 0 })
                    .await,
            ),
        ),
        ("ExportLorebook", code(bobs.export_lorebook(pb::ExportLorebookRequest { id: id.clone() }).await)),
        ("AttachLorebook (her book, his chat)", code(attach_as(&mut bobs, &id, chat_target(&bob_chat.id)).await)),
        (
            "AttachLorebook (his book, her character)",
            code(attach_as(&mut bobs, &bobs_book.id, character_target(&alice_chat.character_id)).await),
        ),
        (
            "AttachLorebook (his book, her chat)",
            code(attach_as(&mut bobs, &bobs_book.id, chat_target(&alice_chat.id)).await),
        ),
        (
            "DetachLorebook (her book, her character)",
            code(
                bobs.detach_lorebook(pb::DetachLorebookRequest {
                    lorebook_id: id.clone(),
                    target: Some(pb::detach_lorebook_request::Target::CharacterId(alice_chat.character_id.clone())),
                })
                .await,
            ),
        ),
    ];
    for (rpc, code) in results {
        assert_eq!(code, Code::NotFound, "{rpc}");
    }
    let listed = bobs.list_lorebooks(pb::ListLorebooksRequest::default()).await.expect("list").into_inner().lorebooks;
    assert_eq!(
        listed.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        [bobs_book.id.as_str()],
        "bob sees his own only"
    );
    let after = alices.get_lorebook(pb::GetLorebookRequest { id: book.id.clone() }).await.expect("get").into_inner();
    assert_eq!(after, before, "nothing of alice's changed");
    let bobs_after =
        bobs.get_lorebook(pb::GetLorebookRequest { id: bobs_book.id.clone() }).await.expect("get").into_inner();
    assert!(bobs_after.character_ids.is_empty() && bobs_after.chat_session_ids.is_empty());
}

/// The code a refused call ended with.
fn code<T>(result: Result<T, tonic::Status>) -> Code {
    result.map(drop).expect_err("refused").code()
}

async fn attach_as(
    client: &mut pb::lorebook_service_client::LorebookServiceClient<common::users::Authed>,
    book_id: &str,
    target: Option<pb::attach_lorebook_request::Target>,
) -> Result<pb::Lorebook, tonic::Status> {
    client
        .attach_lorebook(pb::AttachLorebookRequest { lorebook_id: book_id.into(), target })
        .await
        .map(tonic::Response::into_inner)
}

async fn bad_input_is_refused_and_changes_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let mut client = server.lorebooks();
    let cases = [
        (pb::CreateLorebookRequest::default(), "name is required"),
        (pb::CreateLorebookRequest { name: " \t".into(), ..Default::default() }, "only whitespace"),
        (pb::CreateLorebookRequest { name: "x".repeat(201), ..Default::default() }, "at most 200"),
        (pb::CreateLorebookRequest { name: "ok".into(), scan_depth: Some(5_000), ..Default::default() }, "scan_depth"),
    ];
    for (request, expected) in cases {
        let err = client.create_lorebook(request).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(expected), "{:?} should mention {expected:?}", err.message());
    }
    assert!(list_books(&mut client).await.is_empty(), "nothing was created");

    let book = create_book(&mut client, "Dragons").await;
    add_entry(&mut client, &book.id, entry(&["dragon"], "Dragons hoard gold.")).await.expect("entry");
    let before = get_book(&mut client, &book.id).await.expect("get");

    let err = client
        .update_lorebook(pb::UpdateLorebookRequest {
            id: book.id.clone(),
            name: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect_err("empty name");
    assert_eq!(err.code(), Code::InvalidArgument);

    let long_key = "k".repeat(201);
    let bad_entries = [
        (entry(&["dragon", "/dra(gon/i"], "x"), "keys[1] \"/dra(gon/i\" is not a valid regular expression"),
        (pb::LorebookEntry { secondary_keys: vec!["/[/".into()], ..entry(&["dragon"], "x") }, "secondary_keys[0]"),
        (entry(&["k"; 101], "x"), "at most 100"),
        (entry(&[long_key.as_str()], "x"), "keys[0] is 201 characters"),
        (entry(&["dragon"], &"c".repeat(50_001)), "content is 50001 characters"),
        (pb::LorebookEntry { probability: Some(101), ..entry(&["dragon"], "x") }, "probability"),
        (pb::LorebookEntry { position: 99, ..entry(&["dragon"], "x") }, "position"),
        (pb::LorebookEntry { selective_logic: -1, ..entry(&["dragon"], "x") }, "selective_logic"),
    ];
    for (bad, expected) in bad_entries {
        let err = add_entry(&mut client, &book.id, bad.clone()).await.expect_err("bad entry");
        assert_eq!(err.code(), Code::InvalidArgument, "{expected}");
        assert!(err.message().contains(expected), "{:?} should mention {expected:?}", err.message());
        let err = client
            .update_lorebook_entry(pb::UpdateLorebookEntryRequest {
                lorebook_id: book.id.clone(),
                entry_id: 0,
                entry: Some(bad),
            })
            .await
            .expect_err("bad entry");
        assert_eq!(err.code(), Code::InvalidArgument, "{expected}");
        assert!(err.message().contains(expected), "{:?} should mention {expected:?}", err.message());
    }
    let err = client
        .create_lorebook_entry(pb::CreateLorebookEntryRequest { lorebook_id: book.id.clone(), entry: None })
        .await
        .expect_err("no entry");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Unknown and malformed ids.
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(get_book(&mut client, &unknown).await.expect_err("unknown").code(), Code::NotFound);
    assert_eq!(get_book(&mut client, "not-an-id").await.expect_err("malformed").code(), Code::InvalidArgument);
    let err = add_entry(&mut client, &unknown, entry(&["x"], "x")).await.expect_err("unknown book");
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .update_lorebook_entry(pb::UpdateLorebookEntryRequest {
            lorebook_id: book.id.clone(),
            entry_id: 42,
            entry: Some(entry(&["x"], "x")),
        })
        .await
        .expect_err("unknown entry");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("entry 42"), "{}", err.message());
    let err = client
        .list_lorebooks(pb::ListLorebooksRequest { page_size: 10, page_token: "garbage".into() })
        .await
        .expect_err("garbage token");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Files that are not lorebooks.
    let card = json!({"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Aria"}});
    let files: [(Vec<u8>, &str); 6] = [
        (b"{\"entries\": {\"0\": ".to_vec(), "not valid JSON"),
        (b"[1, 2]".to_vec(), "must be a JSON object"),
        (b"{\"name\": \"x\"}".to_vec(), "no `entries`"),
        (json!({"entries": {"0": {"key": 5}}}).to_string().into_bytes(), "`key` must be a list of strings"),
        (json!({"entries": {"3": {"key": ["/(/"], "content": "x"}}}).to_string().into_bytes(), "entry 3"),
        (card.to_string().into_bytes(), "ImportCharacter"),
    ];
    for (data, expected) in files {
        let err = import(&mut client, &data, "bad.json").await.expect_err("not a lorebook");
        assert_eq!(err.code(), Code::InvalidArgument, "{expected}");
        assert!(err.message().contains(expected), "{:?} should mention {expected:?}", err.message());
    }

    let too_many: serde_json::Map<String, Value> =
        (0..5_001).map(|i| (i.to_string(), json!({"key": ["k"], "content": "x"}))).collect();
    let data = json!({"name": "Huge", "entries": too_many}).to_string();
    let err = import(&mut client, data.as_bytes(), "huge.json").await.expect_err("too many entries");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("at most 5000"), "{}", err.message());

    assert_eq!(get_book(&mut client, &book.id).await.expect("get"), before, "the book is as it was");
    assert_eq!(list_books(&mut client).await.len(), 1, "no file was imported");

    // A large file (several times the other services' request limit) is fine.
    let text = "Long lore. ".repeat(2_700);
    let large: serde_json::Map<String, Value> =
        (0..100).map(|i| (i.to_string(), json!({"uid": i, "key": [format!("k{i}")], "content": text}))).collect();
    let data = json!({"name": "Large", "entries": large}).to_string();
    // Under 4 MB, the default limit of what a client receives (the book
    // comes back whole).
    assert!(data.len() > 2 * 1024 * 1024);
    let large = import(&mut client, data.as_bytes(), "large.json").await.expect("a 3 MB file imports");
    assert_eq!(large.entry_count, 100);
}

/// A V2 card with a character_book, as ImportCharacter reads it.
fn card_with_book() -> Value {
    json!({
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Mara",
            "description": "A harbor pilot.",
            "first_mes": "Another ship?",
            "character_book": {
                "name": "Harbor lore",
                "entries": [
                    {"keys": ["harbor"], "content": "The harbor is quiet at night.", "enabled": true,
                     "insertion_order": 10, "x_top_level_field": "kept"},
                    {"keys": ["reyes"], "content": "Captain Reyes commands the fleet.", "enabled": true,
                     "insertion_order": 20}
                ]
            }
        }
    })
}

async fn an_imported_cards_book_is_listed_with_its_character(db: Db) {
    let server = TestServer::start(db).await;
    let imported = server
        .characters()
        .import_character(pb::ImportCharacterRequest {
            data: serde_json::to_vec(&card_with_book()).expect("json"),
            filename: "mara.json".into(),
        })
        .await
        .expect("import card")
        .into_inner();
    let character = imported.character.expect("character");
    let book_id = character.lorebook_id.clone().expect("the card's book");

    let mut client = server.lorebooks();
    let listed = list_books(&mut client).await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].name.as_str()), (book_id.as_str(), "Harbor lore"));
    assert_eq!(listed[0].character_ids, [character.id.as_str()]);
    assert_eq!(listed[0].entry_count, 2);

    // The card's entries had no ids; they get ones that stay.
    let book = get_book(&mut client, &book_id).await.expect("get");
    let ids: Vec<i64> = book.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, [0, 1]);
    assert_eq!(get_book(&mut client, &book_id).await.expect("again").entries, book.entries);
    let edited = client
        .update_lorebook_entry(pb::UpdateLorebookEntryRequest {
            lorebook_id: book_id.clone(),
            entry_id: 1,
            entry: Some(pb::LorebookEntry { content: "Captain Reyes has retired.".into(), ..book.entries[1].clone() }),
        })
        .await
        .expect("edit a card's entry")
        .into_inner();
    assert_eq!(edited.content, "Captain Reyes has retired.");

    // The card goes out with its edited book, unknown fields included.
    let exported = server
        .characters()
        .export_character(pb::ExportCharacterRequest {
            id: character.id.clone(),
            format: pb::ExportFormat::Json.into(),
        })
        .await
        .expect("export card")
        .into_inner();
    let card: Value = serde_json::from_slice(&exported.data).expect("card JSON");
    let entries = &card["data"]["character_book"]["entries"];
    assert_eq!(entries[1]["content"], json!("Captain Reyes has retired."));
    assert_eq!(entries[0]["x_top_level_field"], json!("kept"));

    // Detaching the card's own book from its character unlinks it.
    let detached = detach(&mut client, &book_id, character_target(&character.id)).await.expect("detach");
    assert!(detached.character_ids.is_empty());
    let character = server
        .characters()
        .get_character(pb::GetCharacterRequest { id: character.id.clone() })
        .await
        .expect("character")
        .into_inner();
    assert_eq!(character.lorebook_id, None);
}

on_both_databases!(
    books_and_entries_have_a_lifecycle,
    concurrent_edits_of_one_book_lose_nothing,
    world_info_round_trips_losslessly,
    books_attach_to_characters_and_chats,
    another_users_book_is_not_found,
    bad_input_is_refused_and_changes_nothing,
    an_imported_cards_book_is_listed_with_its_character,
);
