//! Realistic cards in every format, built with the png and zip crates, for
//! the card unit tests (src/cards, which include this file) and the
//! integration tests of importing through the server.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{Cursor, Write};

use base64::Engine;
use image::{Rgba, RgbaImage};
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

fn b64(json: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(json).unwrap_or_default())
}

/// A character book with SillyTavern settings and fields nobody models.
pub fn book() -> Value {
    json!({
        "name": "Harbor lore",
        "scan_depth": 3,
        "token_budget": 500,
        "recursive_scanning": true,
        "extensions": {"x_book_setting": 1},
        "entries": [
            {
                "id": 1, "keys": ["harbor", "docks"], "secondary_keys": ["night"], "selective": true,
                "content": "The harbor is quiet at night.", "comment": "Harbor", "enabled": true,
                "insertion_order": 10, "constant": false, "position": "after_char", "use_regex": false,
                "extensions": {"position": 4, "depth": 1, "role": 0, "selectiveLogic": 2,
                               "probability": 80, "useProbability": true, "group": "places",
                               "x_entry_setting": [1, 2]}
            },
            {
                "id": 2, "keys": ["/capt(ain|\\.) ?reyes/i"], "content": "Captain Reyes commands the fleet.",
                "enabled": true, "insertion_order": 20, "priority": 5, "name": "Reyes",
                "x_top_level_field": "kept"
            }
        ]
    })
}

/// The `data` object of a full card, V2 fields only.
pub fn v2_data() -> Value {
    json!({
        "name": "Mara",
        "description": "{{char}} is a harbor pilot.",
        "personality": "calm, dry humor",
        "scenario": "A storm is coming.",
        "first_mes": "*Mara looks up.* Another ship?",
        "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hello.",
        "creator_notes": "Works best with long replies.",
        "system_prompt": "Write as {{char}}.",
        "post_history_instructions": "Stay in character.",
        "alternate_greetings": ["*She waves.*", "Fog again."],
        "tags": ["sea", "slice of life"],
        "creator": "someone",
        "character_version": "1.2",
        "extensions": {
            "talkativeness": "0.5", "fav": false, "world": "Harbor lore",
            "depth_prompt": {"prompt": "Mara is tired.", "depth": 4, "role": "system"},
            "x_unknown_tool": {"nested": [1, {"deep": true}]}
        },
        "character_book": book(),
        "x_unknown_data_field": 42
    })
}

/// A V3 `data` object: the V2 fields plus V3's own.
pub fn v3_data() -> Value {
    let mut data = v2_data();
    if let Some(m) = data.as_object_mut() {
        m.insert("nickname".into(), json!("Captain M"));
        m.insert("group_only_greetings".into(), json!(["*Mara nods at everyone.*"]));
        m.insert("source".into(), json!(["https://example.invalid/mara"]));
        m.insert("creator_notes_multilingual".into(), json!({"fr": "Pilote du port."}));
        m.insert("creation_date".into(), json!(1_700_000_000));
        m.insert("modification_date".into(), json!(1_700_000_500));
        m.insert(
            "assets".into(),
            json!([
                {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"},
                {"type": "background", "uri": "embeded://assets/bg.png", "name": "harbor", "ext": "png"}
            ]),
        );
    }
    data
}

pub fn v1_json() -> Value {
    json!({
        "name": "Mara",
        "description": "A harbor pilot.",
        "personality": "calm",
        "scenario": "Fog.",
        "first_mes": "Another ship?",
        "mes_example": "",
        "x_v1_metadata": {"created": 1}
    })
}

pub fn v2_json() -> Value {
    json!({"spec": "chara_card_v2", "spec_version": "2.0", "name": "Mara", "data": v2_data(), "chat": "old chat"})
}

pub fn v3_json() -> Value {
    json!({"spec": "chara_card_v3", "spec_version": "3.0", "data": v3_data()})
}

pub fn bytes(json: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(json).unwrap_or_default()
}

fn pixels(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| Rgba([(x * 16) as u8, (y * 16) as u8, 128, 255]))
}

/// A PNG with the given text chunks written after the image data, as card
/// editors do.
pub fn png(chunks: &[(&str, &Value)]) -> Vec<u8> {
    encode(&pixels(16, 24), chunks)
}

fn encode(image: &RgbaImage, chunks: &[(&str, &Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, image.width(), image.height());
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let Ok(mut writer) = encoder.write_header() else { return out };
        let _ = writer.write_image_data(image.as_raw());
        for (keyword, json) in chunks {
            let _ = writer.write_text_chunk(&png::text_metadata::TEXtChunk::new(*keyword, b64(json)));
        }
        let _ = writer.finish();
    }
    out
}

/// A two-frame APNG carrying a `chara` chunk after the frames.
pub fn apng(card: &Value) -> Vec<u8> {
    let image = pixels(8, 8);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 8, 8);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let _ = encoder.set_animated(2, 0);
        let Ok(mut writer) = encoder.write_header() else { return out };
        let _ = writer.write_image_data(image.as_raw());
        let _ = writer.write_image_data(image.as_raw());
        let _ = writer.write_text_chunk(&png::text_metadata::TEXtChunk::new("chara", b64(card)));
        let _ = writer.finish();
    }
    out
}

/// A plain PNG (no card) of the given size.
pub fn plain_png(width: u32, height: u32) -> Vec<u8> {
    encode(&pixels(width, height), &[])
}

/// A CHARX archive from (path, bytes) pairs, deflated as real ones are.
pub fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        let _ = writer.start_file(*name, options);
        let _ = writer.write_all(data);
    }
    writer.finish().map(Cursor::into_inner).unwrap_or_default()
}

/// A CHARX with the V3 card and its main icon.
pub fn charx() -> Vec<u8> {
    let icon = plain_png(12, 12);
    let bg = plain_png(4, 4);
    zip(&[
        ("card.json", &bytes(&v3_json())),
        ("assets/icon/images/main.png", &icon),
        ("assets/bg.png", &bg),
        ("module.risum", b"not read"),
    ])
}
