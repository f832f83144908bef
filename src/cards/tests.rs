//! Import in every format, export, import again: the card must not change.
//! And every way a file can be wrong has its own error.

use base64::Engine;
use serde_json::{Value, json};

use super::samples::{self, bytes};
use super::*;

fn imported(data: &[u8], name: &str) -> ImportedCard {
    match import(data, name) {
        Ok(card) => card,
        Err(e) => panic!("{name} should import: {e}"),
    }
}

/// JSON and PNG exports of `first` import back to the same card.
fn assert_round_trips(first: &ImportedCard, what: &str) {
    let from_json = imported(&export_v3_json(&first.card), "export.json");
    assert_eq!(from_json.format, CardFormat::V3Json);
    assert_eq!(from_json.card, first.card, "{what} → V3 JSON → import");

    let png = export_png(&first.card, first.avatar.as_deref()).expect("PNG export");
    let from_png = imported(&png, "export.png");
    assert_eq!(from_png.format, CardFormat::V3Png);
    assert_eq!(from_png.card, first.card, "{what} → PNG → import");

    // The `chara` chunk alone (what a V2-only tool reads) gives the same card.
    let v2 = imported(&json::to_bytes(&json::v2_value(&first.card)), "export-v2.json");
    assert_eq!(v2.card, first.card, "{what} → V2 JSON → import");
}

#[test]
fn v1_json_round_trips() {
    let first = imported(&bytes(&samples::v1_json()), "mara.json");
    assert_eq!(first.format, CardFormat::V1Json);
    assert_eq!(first.card.name, "Mara");
    assert_eq!(first.card.scenario, "Fog.");
    assert_eq!(first.card.extra["x_v1_metadata"], json!({"created": 1}));
    assert_round_trips(&first, "V1 JSON");
}

#[test]
fn v2_json_round_trips_with_book_and_unknown_fields() {
    let first = imported(&bytes(&samples::v2_json()), "mara.json");
    assert_eq!(first.format, CardFormat::V2Json);
    let card = &first.card;
    assert_eq!(card.alternate_greetings.len(), 2);
    assert_eq!(card.extensions["x_unknown_tool"], json!({"nested": [1, {"deep": true}]}));
    assert_eq!(card.extra["x_unknown_data_field"], json!(42));
    assert!(!card.extra.contains_key("chat"), "fields outside `data` are not the card's");
    let book = card.character_book.as_ref().expect("book");
    assert_eq!(book.entries.len(), 2);
    assert_eq!(book.entries[0].extensions["x_entry_setting"], json!([1, 2]));
    assert_round_trips(&first, "V2 JSON");
}

#[test]
fn v3_json_round_trips_with_extra_fields() {
    let first = imported(&bytes(&samples::v3_json()), "mara.json");
    assert_eq!(first.format, CardFormat::V3Json);
    for key in ["nickname", "group_only_greetings", "source", "creator_notes_multilingual", "assets", "creation_date"] {
        assert!(first.card.extra.contains_key(key), "{key} kept");
    }
    assert_round_trips(&first, "V3 JSON");
}

#[test]
fn png_cards_round_trip_and_prefer_ccv3() {
    let v2 = imported(&samples::png(&[("chara", &samples::v2_json())]), "mara.png");
    assert_eq!(v2.format, CardFormat::V2Png);
    assert_eq!(v2.avatar.as_deref(), Some(&samples::png(&[("chara", &samples::v2_json())])[..]));
    assert_round_trips(&v2, "V2 PNG");

    // Both chunks: ccv3 wins even though chara holds a different card.
    let mut other = samples::v2_json();
    other["data"]["name"] = json!("Someone else");
    let both = imported(&samples::png(&[("chara", &other), ("ccv3", &samples::v3_json())]), "mara.png");
    assert_eq!(both.format, CardFormat::V3Png);
    assert_eq!(both.card, imported(&bytes(&samples::v3_json()), "x.json").card);
    assert_round_trips(&both, "V3 PNG");

    // A V1 card in a `chara` chunk, as TavernAI wrote them.
    let v1 = imported(&samples::png(&[("chara", &samples::v1_json())]), "old.png");
    assert_eq!(v1.card.name, "Mara");
}

#[test]
fn apng_cards_import() {
    let card = imported(&samples::apng(&samples::v2_json()), "animated.png");
    assert_eq!(card.format, CardFormat::V2Png);
    assert_round_trips(&card, "APNG");
}

#[test]
fn charx_round_trips_with_its_main_icon() {
    let first = imported(&samples::charx(), "mara.charx");
    assert_eq!(first.format, CardFormat::Charx);
    assert_eq!(first.avatar.as_deref(), Some(&samples::plain_png(12, 12)[..]));
    assert_round_trips(&first, "CHARX");
}

#[test]
fn content_decides_the_format_not_the_name() {
    assert_eq!(imported(&samples::charx(), "card.png").format, CardFormat::Charx);
    assert_eq!(imported(&bytes(&samples::v3_json()), "card.png").format, CardFormat::V3Json);
    let bom: Vec<u8> = [&b"\xEF\xBB\xBF  \n"[..], &bytes(&samples::v1_json())].concat();
    assert_eq!(imported(&bom, "card.txt").format, CardFormat::V1Json);
}

#[test]
fn export_png_without_an_avatar_is_400_by_600() {
    let card = imported(&bytes(&samples::v1_json()), "a.json").card;
    let png = export_png(&card, None).expect("export");
    let image = avatar::decode(&png).expect("decodes");
    assert_eq!((image.width(), image.height()), (400, 600));
    assert_eq!(avatar_content_type(&png), Some("image/png"));
}

#[test]
fn export_v3_json_is_stable() {
    let card = imported(&bytes(&samples::v3_json()), "a.json").card;
    assert_eq!(export_v3_json(&card), export_v3_json(&card.clone()));
    let value: Value = serde_json::from_slice(&export_v3_json(&card)).expect("json");
    assert_eq!(value["spec"], json!("chara_card_v3"));
    assert_eq!(value["spec_version"], json!("3.0"));
}

fn err(data: &[u8], name: &str) -> CardError {
    match import(data, name) {
        Ok(_) => panic!("{name} should not import"),
        Err(e) => e,
    }
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn png_with_raw_chunk(keyword: &str, text: String) -> Vec<u8> {
    let image = image::RgbaImage::new(4, 4);
    avatar::encode_png(&image, &[(keyword, text)]).expect("encodes")
}

#[test]
fn size_and_format_errors() {
    let huge = vec![b' '; MAX_INPUT_BYTES + 1];
    let e = err(&huge, "big.json");
    assert_eq!(e.to_string(), "the file is 20.1 MiB; a card may be at most 20 MiB");

    let e = err(b"hello there", "notes.txt");
    assert_eq!(
        e.to_string(),
        "\"notes.txt\" is not a character card: expected a PNG image, a JSON file or a CHARX archive"
    );
    let jpeg = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::new_rgb8(2, 2).write_to(&mut out, image::ImageFormat::Jpeg).expect("jpeg");
        out.into_inner()
    };
    assert_eq!(
        err(&jpeg, "card.png"),
        CardError::UnrecognizedFormat { filename: "card.png".into(), looks_like: Some("image/jpeg") }
    );

    assert_eq!(err(&samples::plain_png(4, 4), "plain.png"), CardError::NoCardInPng);
    assert!(matches!(err(b"\x89PNG\r\n\x1a\ngarbage", "bad.png"), CardError::InvalidPng(_)));
}

#[test]
fn chunk_and_json_errors() {
    let e = err(&png_with_raw_chunk("chara", "!!not base64!!".into()), "c.png");
    assert_eq!(e, CardError::InvalidBase64 { chunk: "chara" });

    let e = err(&png_with_raw_chunk("ccv3", b64(b"{\n  \"name\": }")), "c.png");
    assert!(matches!(e, CardError::InvalidJson { line: 2, column: 11, .. }), "{e}");
    assert!(e.to_string().contains("line 2, column 11"), "{e}");

    assert_eq!(err(b"[1]", "a.json"), CardError::UnrecognizedFormat { filename: "a.json".into(), looks_like: None });
    let spec = |s: Value| bytes(&s);
    assert_eq!(
        err(&spec(json!({"spec": "chara_card_v9", "data": {"name": "x"}})), "a.json"),
        CardError::UnsupportedSpec("chara_card_v9".into())
    );
    assert_eq!(
        err(&spec(json!({"spec": "chara_card_v2", "spec_version": "2.5", "data": {"name": "x"}})), "a.json"),
        CardError::UnsupportedSpecVersion { spec: "chara_card_v2", version: "2.5".into() }
    );
    assert!(matches!(
        err(&spec(json!({"spec": "chara_card_v3", "spec_version": "4.0", "data": {"name": "x"}})), "a.json"),
        CardError::UnsupportedSpecVersion { .. }
    ));
    // Minor V3 versions only add fields.
    assert!(import(&spec(json!({"spec": "chara_card_v3", "spec_version": "3.1", "data": {"name": "x"}})), "a").is_ok());

    let e = err(&spec(json!({"spec": "chara_card_v2", "data": {"description": "x"}})), "a.json");
    assert_eq!(e.to_string(), "the card has no `name`, which every card needs");
    assert_eq!(err(&spec(json!({"description": "v1 without a name"})), "a.json"), CardError::MissingField("name"));
    assert_eq!(err(&spec(json!({"spec": "chara_card_v2"})), "a.json"), CardError::MissingField("data"));

    let e = err(&spec(json!({"name": "x", "tags": 5})), "a.json");
    assert_eq!(e.to_string(), "the card's `tags` must be a list of strings");
    let e = err(&spec(json!({"name": "x", "character_book": {"entries": [5]}})), "a.json");
    assert!(matches!(e, CardError::InvalidBook(_)), "{e}");
}

#[test]
fn charx_errors() {
    let card = bytes(&samples::v3_json());
    assert_eq!(err(&samples::zip(&[("readme.txt", b"hi")]), "a.charx"), CardError::NoCardJson);
    assert!(matches!(err(b"PK\x03\x04 truncated", "a.charx"), CardError::InvalidZip(_)));

    let bad_icon = samples::zip(&[("card.json", &card), ("assets/icon/images/main.png", b"not an image")]);
    assert!(matches!(err(&bad_icon, "a.charx"), CardError::InvalidImage(_)));
    let wide = samples::plain_png(MAX_AVATAR_SIDE + 1, 1);
    let wide_icon = samples::zip(&[("card.json", &card), ("assets/icon/images/main.png", &wide)]);
    assert!(matches!(err(&wide_icon, "a.charx"), CardError::ImageTooLarge { width: 4097, height: 1, .. }));

    // An icon the assets name but the archive lacks is no avatar, not an error.
    let no_icon = imported(&samples::zip(&[("card.json", &card)]), "a.charx");
    assert_eq!(no_icon.avatar, None);
}

#[test]
fn zip_bombs_are_refused() {
    use charx::{ZipLimits, import_with};
    let card = bytes(&samples::v3_json());
    let small = ZipLimits { max_entries: 3, max_entry_bytes: 64 * 1024, max_total_bytes: 100 * 1024 };

    let many: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("f{i}"), vec![])).collect();
    let many: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    assert_eq!(import_with(&samples::zip(&many), small), Err(CardError::ZipTooManyEntries { count: 4, limit: 3 }));

    // 1 MiB of zeros deflates to about 1 KiB: declared size over the entry limit.
    let zeros = vec![0u8; 1024 * 1024];
    let bomb = samples::zip(&[("card.json", &card), ("assets/big.bin", &zeros)]);
    assert!(bomb.len() < 20 * 1024);
    assert!(matches!(import_with(&bomb, small), Err(CardError::ZipEntryTooLarge { .. })));

    let total = ZipLimits { max_total_bytes: 80 * 1024, ..small };
    let half = vec![0u8; 50 * 1024];
    let two = samples::zip(&[("card.json", &card), ("a", &half), ("b", &half)]);
    assert_eq!(import_with(&two, total), Err(CardError::ZipTooLarge { limit: 80 * 1024 }));

    // A header that lies: card.json declares 10 bytes but inflates to 1 MiB.
    let padded = [&card[..], &vec![b' '; 1024 * 1024]].concat();
    let mut liar = samples::zip(&[("card.json", &padded)]);
    let actual = (padded.len() as u32).to_le_bytes();
    let mut patched = 0;
    for i in 0..liar.len().saturating_sub(4) {
        if liar[i..i + 4] == actual {
            liar[i..i + 4].copy_from_slice(&10u32.to_le_bytes());
            patched += 1;
        }
    }
    assert!(patched >= 2, "local and central headers patched");
    // The zip crate notices the lie itself; `take()` in read_entry is the
    // second line (tested on its own in charx::tests).
    let e = import_with(&liar, small).expect_err("the lie is caught");
    assert!(matches!(&e, CardError::InvalidZip(m) if m.contains("declared")), "{e}");
}

#[test]
fn thumbnails_and_content_types() {
    let (png, w, h) = avatar_thumbnail(&samples::plain_png(512, 300)).expect("thumbnail");
    assert_eq!((w, h), (256, 150));
    assert_eq!(avatar_content_type(&png), Some("image/png"));
}
