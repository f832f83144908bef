//! Character cards through the real server on both databases: every format
//! imports and round-trips, avatars are stored and served, the whole card and
//! its lorebook reach the prompt, alternate greetings become swipes, and bad
//! files are refused with nothing stored.

mod common;

use common::{Db, Reply, TestServer, card_samples as samples, collect};
use roleplay_server::api::pb;
use serde_json::{Value, json};
use tonic::Code;

async fn import(
    server: &TestServer,
    data: Vec<u8>,
    filename: &str,
) -> Result<pb::ImportCharacterResponse, tonic::Status> {
    let request = pb::ImportCharacterRequest { data, filename: filename.into() };
    server.characters().import_character(request).await.map(tonic::Response::into_inner)
}

async fn export(server: &TestServer, id: &str, format: pb::ExportFormat) -> pb::ExportCharacterResponse {
    let request = pb::ExportCharacterRequest { id: id.into(), format: format.into() };
    server.characters().export_character(request).await.expect("export").into_inner()
}

/// A character's card fields, without its id, times and avatar URL.
fn card_fields(character: &pb::Character) -> pb::Character {
    pb::Character {
        id: String::new(),
        created_at: None,
        updated_at: None,
        avatar_url: String::new(),
        lorebook_id: None,
        extensions_json: serde_json::from_str::<Value>(&character.extensions_json).expect("json").to_string(),
        ..character.clone()
    }
}

async fn every_format_imports_and_round_trips(db: Db) {
    let server = TestServer::start(db).await;
    let files = [
        ("v1.json", samples::bytes(&samples::v1_json()), pb::CardFormat::V1Json),
        ("v2.json", samples::bytes(&samples::v2_json()), pb::CardFormat::V2Json),
        ("v3.json", samples::bytes(&samples::v3_json()), pb::CardFormat::V3Json),
        ("v2.png", samples::png(&[("chara", &samples::v2_json())]), pb::CardFormat::PngV2),
        (
            "both.png",
            samples::png(&[("chara", &samples::v2_json()), ("ccv3", &samples::v3_json())]),
            pb::CardFormat::PngV3,
        ),
        ("animated.png", samples::apng(&samples::v2_json()), pb::CardFormat::PngV2),
        ("mara.charx", samples::charx(), pb::CardFormat::Charx),
    ];
    for (filename, data, format) in files {
        let imported = import(&server, data, filename).await.unwrap_or_else(|e| panic!("{filename}: {e:?}"));
        assert_eq!(imported.format, format as i32, "{filename}");
        let character = imported.character.expect("character");
        assert_eq!(character.name, "Mara", "{filename}");
        let is_png = filename.ends_with(".png");
        assert_eq!(!character.avatar_url.is_empty(), is_png || filename.ends_with(".charx"), "{filename} avatar");
        if format != pb::CardFormat::V1Json {
            assert_eq!(character.alternate_greetings, ["*She waves.*", "Fog again."], "{filename}");
            assert_eq!(character.tags, ["sea", "slice of life"]);
            let extensions: Value = serde_json::from_str(&character.extensions_json).expect("json");
            assert_eq!(extensions["x_unknown_tool"], json!({"nested": [1, {"deep": true}]}), "kept verbatim");
            assert!(character.lorebook_id.is_some(), "{filename}: the card's book is stored");
        }

        // Export, import the export, export again: nothing changes.
        for export_format in [pb::ExportFormat::Json, pb::ExportFormat::Png] {
            let first = export(&server, &character.id, export_format).await;
            let again =
                import(&server, first.data.clone(), &first.filename).await.expect("re-import").character.expect("c");
            assert_eq!(card_fields(&again), card_fields(&character), "{filename} via {export_format:?}");
            let second = export(&server, &again.id, pb::ExportFormat::Json).await;
            let first_json = export(&server, &character.id, pb::ExportFormat::Json).await;
            let (a, b): (Value, Value) = (
                serde_json::from_slice(&first_json.data).expect("json"),
                serde_json::from_slice(&second.data).expect("json"),
            );
            assert_eq!(a, b, "{filename}: import → export → import is the identity");
        }
    }
    let png = export(
        &server,
        &import(&server, samples::bytes(&samples::v3_json()), "m.json").await.expect("i").character.expect("c").id,
        pb::ExportFormat::Png,
    )
    .await;
    assert_eq!(png.content_type, "image/png");
    assert!(png.filename.ends_with(".png"));
}

async fn avatars_are_served_with_etags(db: Db) {
    let server = TestServer::start(db).await;
    let character = import(&server, samples::png(&[("chara", &samples::v2_json())]), "mara.png")
        .await
        .expect("import")
        .character
        .expect("character");
    let url = format!("http://{}{}", server.addr, character.avatar_url);
    let http = reqwest::Client::new();
    let response = http.get(&url).send().await.expect("get avatar");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let etag = response.headers()["etag"].to_str().expect("etag").to_owned();
    let image = response.bytes().await.expect("body");
    assert!(image.starts_with(b"\x89PNG"));
    let again = http.get(&url).header("if-none-match", &etag).send().await.expect("revalidate");
    assert_eq!(again.status(), 304);

    // Set another one (the same bytes are stored once), then remove it.
    let other = samples::plain_png(20, 20);
    let set = pb::SetCharacterAvatarRequest { id: character.id.clone(), data: other.clone() };
    let updated = server.characters().set_character_avatar(set).await.expect("set").into_inner();
    let chat = open_chat(&server, &character.id).await;
    let greeting = &server.messages_of(&chat.id).await[0];
    assert_eq!(greeting.avatar_url, character.avatar_url, "messages show the character's avatar");
    let served = http.get(&url).send().await.expect("get").bytes().await.expect("body");
    assert_eq!(served.as_ref(), &other[..]);
    assert_eq!(updated.avatar_url, character.avatar_url);
    let broken = pb::SetCharacterAvatarRequest { id: character.id.clone(), data: b"\x89PNG\r\n\x1a\nbroken".to_vec() };
    let refused = server.characters().set_character_avatar(broken).await.expect_err("not an image");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let cleared = pb::SetCharacterAvatarRequest { id: character.id.clone(), data: Vec::new() };
    let removed = server.characters().set_character_avatar(cleared).await.expect("remove").into_inner();
    assert!(removed.avatar_url.is_empty());
    assert_eq!(http.get(&url).send().await.expect("get").status(), 404);
}

/// A V2 card whose book has an entry for "dragon" and one always on.
fn dragon_card() -> Value {
    json!({
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Aria",
            "description": "{{char}} is a bard.",
            "personality": "cheerful",
            "scenario": "A tavern at dusk.",
            "first_mes": "Welcome, {{user}}!",
            "alternate_greetings": ["Oh, a guest!", "Sit down, {{user}}."],
            "mes_example": "<START>\n{{user}}: Sing?\n{{char}}: Gladly.",
            "system_prompt": "{{original}} Play {{char}}.",
            "post_history_instructions": "",
            "creator_notes": "", "tags": [], "creator": "", "character_version": "", "extensions": {},
            "character_book": {
                "name": "Tavern lore",
                "entries": [
                    {"keys": ["dragon"], "content": "Dragons sleep under the mountain.", "enabled": true,
                     "insertion_order": 1, "position": "before_char"},
                    {"keys": ["tavern"], "content": "The tavern is called the Sleeping Cat.", "enabled": true,
                     "insertion_order": 2, "constant": true, "position": "after_char"}
                ]
            }
        }
    })
}

async fn open_chat(server: &TestServer, character_id: &str) -> pb::ChatSession {
    server.set_api_key().await;
    let profile = server
        .profiles()
        .create_user_profile(pb::CreateUserProfileRequest {
            name: "Sam".into(),
            description: "{{user}} travels.".into(),
        })
        .await
        .expect("profile")
        .into_inner();
    server
        .chats()
        .create_chat_session(pb::CreateChatSessionRequest {
            character_id: character_id.into(),
            user_profile_id: profile.id,
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner()
}

fn system_messages(server: &TestServer) -> Vec<String> {
    let requests = server.upstream.requests();
    requests.last().expect("a request").body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "system")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn the_whole_card_and_its_lorebook_reach_the_prompt(db: Db) {
    let server = TestServer::start(db).await;
    let character =
        import(&server, samples::bytes(&dragon_card()), "aria.json").await.expect("import").character.expect("c");
    let chat = open_chat(&server, &character.id).await;

    // Alternate greetings are the first message's swipes; no avatar yet.
    let first = &server.messages_of(&chat.id).await[0];
    assert!(first.avatar_url.is_empty());
    assert_eq!((first.content.as_str(), first.alternative_index, first.alternative_count), ("Welcome, Sam!", 0, 3));
    let request = pb::SelectAlternativeRequest { message_id: first.id.clone(), index: 2 };
    let chosen = server.messages().select_alternative(request).await.expect("select").into_inner();
    assert_eq!(chosen.content, "Sit down, Sam.");

    server.upstream.push(Reply::chunks(["ok"]));
    collect(&mut server.send(&chat.id, "hello").await.expect("send")).await;
    let system = system_messages(&server);
    assert_eq!(
        system[0],
        "Play Aria.\n---\nAria is a bard.\n---\nAria's personality: cheerful\n---\n\
         Scenario: A tavern at dusk.\n---\nThe tavern is called the Sleeping Cat.\n---\nSam travels.",
        "layers in order, the constant entry after the character, no dragon yet"
    );
    assert_eq!(system[1], "Sam: Sing?\nAria: Gladly.", "example dialogue after the definitions");

    let request =
        pb::PreviewPromptRequest { chat_session_id: chat.id.clone(), content: "Tell me about the DRAGON.".into() };
    let preview = server.messages().preview_prompt(request).await.expect("preview").into_inner();
    let activated: Vec<_> =
        preview.activated_entries.iter().map(|e| (e.lorebook.as_str(), e.reason.as_str())).collect();
    assert_eq!(
        activated,
        [("Tavern lore", "key \"dragon\""), ("Tavern lore", "constant")],
        "which entries, by which key"
    );

    server.upstream.push(Reply::chunks(["ok"]));
    collect(&mut server.send(&chat.id, "Tell me about the DRAGON.").await.expect("send")).await;
    let system = system_messages(&server);
    assert!(
        system[0].contains("Play Aria.\n---\nDragons sleep under the mountain.\n---\nAria is a bard."),
        "the keyed entry is placed before the character: {}",
        system[0]
    );
}

async fn bad_files_are_refused_and_nothing_is_stored(db: Db) {
    let server = TestServer::start(db).await;
    let mut too_long = samples::v2_json();
    too_long["data"]["name"] = json!("N".repeat(201));
    let mut unknown_spec = samples::v2_json();
    unknown_spec["spec"] = json!("chara_card_v9");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("notes.txt", b"just some text".to_vec(), "not a character card"),
        ("plain.png", samples::plain_png(4, 4), "no `chara` or `ccv3`"),
        ("bad64.png", bad_base64_png(), "not valid base64"),
        ("broken.json", b"{\"spec\": \"chara_card_v2\", ".to_vec(), "not valid JSON"),
        ("future.json", samples::bytes(&unknown_spec), "only \"chara_card_v2\""),
        ("long.json", samples::bytes(&too_long), "name"),
        ("huge.json", vec![b' '; 20 * 1024 * 1024 + 1], "at most 20 MiB"),
        ("broken.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(), "PNG"),
        ("empty.charx", samples::zip(&[("readme.txt", b"hi")]), "no card.json"),
    ];
    for (filename, data, says) in cases {
        let status = import(&server, data, filename).await.expect_err(filename);
        assert_eq!(status.code(), Code::InvalidArgument, "{filename}: {status:?}");
        assert!(status.message().contains(says), "{filename}: {:?} should mention {says:?}", status.message());
    }
    let listed =
        server.characters().list_characters(pb::ListCharactersRequest::default()).await.expect("list").into_inner();
    assert!(listed.characters.is_empty(), "nothing stored");
}

/// A PNG whose `chara` chunk is not base64.
fn bad_base64_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 1, 1);
        encoder.set_color(png::ColorType::Rgba);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(&[0, 0, 0, 255]).expect("pixels");
        writer.write_text_chunk(&png::text_metadata::TEXtChunk::new("chara", "%%% not base64 %%%")).expect("chunk");
        writer.finish().expect("finish");
    }
    out
}

async fn characters_are_listed_by_tag_and_name(db: Db) {
    let server = TestServer::start(db).await;
    for (name, tags) in [("Mara", vec!["Sea", "pilot"]), ("Aria", vec!["music"]), ("Marek", vec!["sea shanty"])] {
        let request = pb::CreateCharacterRequest {
            name: name.into(),
            tags: tags.into_iter().map(Into::into).collect(),
            ..Default::default()
        };
        server.characters().create_character(request).await.expect("create");
    }
    let names = |request: pb::ListCharactersRequest| {
        let mut client = server.characters();
        async move {
            let listed = client.list_characters(request).await.expect("list").into_inner();
            listed.characters.into_iter().map(|c| c.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(names(pb::ListCharactersRequest { tag: "sea".into(), ..Default::default() }).await, ["Mara"]);
    assert_eq!(
        names(pb::ListCharactersRequest { name_contains: "MAR".into(), ..Default::default() }).await,
        ["Mara", "Marek"]
    );
    assert_eq!(names(pb::ListCharactersRequest { tag: "%".into(), ..Default::default() }).await, Vec::<String>::new());
}

on_both_databases!(
    every_format_imports_and_round_trips,
    avatars_are_served_with_etags,
    the_whole_card_and_its_lorebook_reach_the_prompt,
    bad_files_are_refused_and_nothing_is_stored,
    characters_are_listed_by_tag_and_name,
);
