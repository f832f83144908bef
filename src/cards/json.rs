//! Card JSON: reading V1, V2 and V3, writing V2 and V3.
//!
//! V1 (TavernAI) keeps its six fields at the top level. V2 and V3 put every
//! field under `data` and name themselves with `spec`/`spec_version`. Fields
//! outside `data` in V2/V3 are not kept: tools duplicate V1 fields there for
//! old readers, and the rest is their own bookkeeping (`chat`, `create_date`).

use serde_json::{Map, Value, json};

use super::card::{Card, CardFormat};
use super::error::CardError;
use crate::lorebook::card_book;
use crate::lorebook::fields::{self, FieldError, Fields, JsonError};

const V2: &str = "chara_card_v2";
const V3: &str = "chara_card_v3";

/// Whether `data` starts like a JSON object (after whitespace and a BOM).
pub(crate) fn looks_like_json(data: &[u8]) -> bool {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Parses card JSON bytes, telling V1, V2 and V3 apart.
pub(crate) fn card_from_json(data: &[u8]) -> Result<(Card, CardFormat), CardError> {
    let object = fields::parse_object(data).map_err(|e| match e {
        JsonError::Syntax { line, column, message } => CardError::InvalidJson { line, column, message },
        JsonError::NotAnObject => CardError::NotAnObject,
    })?;
    card_from_object(object)
}

fn invalid(e: FieldError) -> CardError {
    CardError::InvalidField { field: e.field, expected: e.expected }
}

fn card_from_object(mut top: Fields) -> Result<(Card, CardFormat), CardError> {
    let spec = fields::string(&mut top, "spec").map_err(invalid)?;
    let version = fields::string(&mut top, "spec_version").map_err(invalid)?;
    let format = match spec.as_deref() {
        None => return Ok((card_from_fields(top)?, CardFormat::V1Json)),
        Some(V2) => {
            // "2.0" is the only V2 version; some writers leave it out.
            if version.as_deref().is_some_and(|v| v != "2.0") {
                return Err(unsupported_version(V2, version));
            }
            CardFormat::V2Json
        }
        Some(V3) => {
            // Minor versions of V3 only add fields, which `extra` keeps.
            if version.as_deref().is_some_and(|v| !(v == "3" || v.starts_with("3."))) {
                return Err(unsupported_version(V3, version));
            }
            CardFormat::V3Json
        }
        Some(other) => return Err(CardError::UnsupportedSpec(other.to_owned())),
    };
    let data = fields::object(&mut top, "data").map_err(invalid)?.ok_or(CardError::MissingField("data"))?;
    Ok((card_from_fields(data)?, format))
}

fn unsupported_version(spec: &'static str, version: Option<String>) -> CardError {
    CardError::UnsupportedSpecVersion { spec, version: version.unwrap_or_default() }
}

/// Reads the card fields out of `m` (V2/V3 `data`, or a V1 card's top level);
/// what is left becomes [`Card::extra`].
fn card_from_fields(mut m: Fields) -> Result<Card, CardError> {
    let mut text = |key: &str| fields::string(&mut m, key).map_err(invalid).map(Option::unwrap_or_default);
    let name = text("name")?;
    if name.trim().is_empty() {
        return Err(CardError::MissingField("name"));
    }
    let description = text("description")?;
    let personality = text("personality")?;
    let scenario = text("scenario")?;
    let first_mes = text("first_mes")?;
    let mes_example = text("mes_example")?;
    let creator_notes = text("creator_notes")?;
    let system_prompt = text("system_prompt")?;
    let post_history_instructions = text("post_history_instructions")?;
    let creator = text("creator")?;
    let character_version = text("character_version")?;
    let alternate_greetings = fields::strings(&mut m, "alternate_greetings").map_err(invalid)?.unwrap_or_default();
    let tags = fields::strings(&mut m, "tags").map_err(invalid)?.unwrap_or_default();
    let extensions = fields::object(&mut m, "extensions").map_err(invalid)?.unwrap_or_default();
    let character_book = match fields::object(&mut m, "character_book").map_err(invalid)? {
        Some(book) => Some(card_book::from_value(Value::Object(book))?),
        None => None,
    };
    Ok(Card {
        name,
        description,
        personality,
        scenario,
        first_mes,
        mes_example,
        creator_notes,
        system_prompt,
        post_history_instructions,
        alternate_greetings,
        tags,
        creator,
        character_version,
        extensions,
        character_book,
        extra: m,
    })
}

/// The `data` object shared by V2 and V3 output.
fn data_value(card: &Card) -> Fields {
    let mut data = card.extra.clone();
    let strings = [
        ("name", &card.name),
        ("description", &card.description),
        ("personality", &card.personality),
        ("scenario", &card.scenario),
        ("first_mes", &card.first_mes),
        ("mes_example", &card.mes_example),
        ("creator_notes", &card.creator_notes),
        ("system_prompt", &card.system_prompt),
        ("post_history_instructions", &card.post_history_instructions),
        ("creator", &card.creator),
        ("character_version", &card.character_version),
    ];
    for (key, value) in strings {
        data.insert(key.to_owned(), Value::String(value.clone()));
    }
    data.insert("alternate_greetings".into(), json!(card.alternate_greetings));
    data.insert("tags".into(), json!(card.tags));
    data.insert("extensions".into(), Value::Object(card.extensions.clone()));
    if let Some(book) = &card.character_book {
        data.insert("character_book".into(), card_book::to_value(book));
    }
    data
}

/// A Character Card V3 object.
pub(crate) fn v3_value(card: &Card) -> Value {
    json!({"spec": V3, "spec_version": "3.0", "data": data_value(card)})
}

/// A Character Card V2 object, with the V1 fields repeated at the top level
/// for readers that only know V1 (as SillyTavern writes it).
pub(crate) fn v2_value(card: &Card) -> Value {
    let mut top = Map::new();
    for (key, value) in [
        ("name", &card.name),
        ("description", &card.description),
        ("personality", &card.personality),
        ("scenario", &card.scenario),
        ("first_mes", &card.first_mes),
        ("mes_example", &card.mes_example),
    ] {
        top.insert(key.to_owned(), Value::String(value.clone()));
    }
    top.insert("spec".into(), json!(V2));
    top.insert("spec_version".into(), json!("2.0"));
    top.insert("data".into(), Value::Object(data_value(card)));
    Value::Object(top)
}

/// Compact JSON. serde_json's map is ordered by key, so output is stable.
pub(crate) fn to_bytes(value: &Value) -> Vec<u8> {
    // Serializing a `Value` to memory cannot fail (all keys are strings).
    serde_json::to_vec(value).unwrap_or_default()
}
