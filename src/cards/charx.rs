//! CHARX: a zip archive holding `card.json` (V3) and the card's assets. The
//! avatar is the icon asset named "main" (or else the first icon).
//!
//! Archives come from strangers, so sizes are checked twice: the sizes the
//! central directory declares (cheap, before anything is inflated), and the
//! bytes actually inflated, read through `take()` so a lying header gains
//! nothing.

use std::io::{Cursor, Read};

use serde_json::Value;
use zip::ZipArchive;

use super::MAX_INPUT_BYTES;
use super::avatar;
use super::card::{CardFormat, ImportedCard};
use super::error::CardError;
use super::json;

/// How much an archive may hold; a parameter so tests can use small numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZipLimits {
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
}

pub(crate) const LIMITS: ZipLimits = ZipLimits {
    // Real CHARX files hold a card and a few dozen assets.
    max_entries: 1000,
    // A single file once inflated: the same as a whole card upload.
    max_entry_bytes: MAX_INPUT_BYTES as u64,
    // Everything declared, once inflated; assets are mostly already-compressed images.
    max_total_bytes: 4 * MAX_INPUT_BYTES as u64,
};

pub(crate) fn looks_like_zip(data: &[u8]) -> bool {
    // A local file header, or the end record of an empty archive.
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

pub(crate) fn import(data: &[u8]) -> Result<ImportedCard, CardError> {
    import_with(data, LIMITS)
}

pub(crate) fn import_with(data: &[u8], limits: ZipLimits) -> Result<ImportedCard, CardError> {
    let bad_zip = |e: zip::result::ZipError| CardError::InvalidZip(e.to_string());
    let mut archive = ZipArchive::new(Cursor::new(data)).map_err(bad_zip)?;
    check_declared_sizes(&mut archive, limits)?;

    let card_json = read_entry(&mut archive, "card.json", limits)?.ok_or(CardError::NoCardJson)?;
    let (card, _) = json::card_from_json(&card_json)?;

    let avatar = match main_icon_path(card.extra.get("assets")) {
        Some(path) => read_entry(&mut archive, &path, limits)?,
        None => None,
    };
    if let Some(bytes) = &avatar {
        avatar::decode(bytes)?;
    }
    Ok(ImportedCard { card, avatar, format: CardFormat::Charx })
}

fn check_declared_sizes(archive: &mut ZipArchive<Cursor<&[u8]>>, limits: ZipLimits) -> Result<(), CardError> {
    let count = archive.len();
    if count > limits.max_entries {
        return Err(CardError::ZipTooManyEntries { count, limit: limits.max_entries });
    }
    let mut total: u64 = 0;
    for i in 0..count {
        let file = archive.by_index_raw(i).map_err(|e| CardError::InvalidZip(e.to_string()))?;
        let size = file.size();
        if size > limits.max_entry_bytes {
            let name = file.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("file #{i}"));
            return Err(CardError::ZipEntryTooLarge { name, limit: limits.max_entry_bytes });
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(CardError::ZipTooLarge { limit: limits.max_total_bytes });
        }
    }
    Ok(())
}

/// Inflates one file, never more than `max_entry_bytes` whatever its header says.
fn read_entry(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limits: ZipLimits,
) -> Result<Option<Vec<u8>>, CardError> {
    let Some(index) = archive.index_for_name(name) else {
        return Ok(None);
    };
    let file = archive.by_index(index).map_err(|e| CardError::InvalidZip(e.to_string()))?;
    let mut out = Vec::new();
    file.take(limits.max_entry_bytes + 1)
        .read_to_end(&mut out)
        .map_err(|e| CardError::InvalidZip(format!("{name}: {e}")))?;
    if out.len() as u64 > limits.max_entry_bytes {
        return Err(CardError::ZipEntryTooLarge { name: name.to_owned(), limit: limits.max_entry_bytes });
    }
    Ok(Some(out))
}

/// The archive path of the main icon named in V3 `assets`, if it is embedded.
fn main_icon_path(assets: Option<&Value>) -> Option<String> {
    let icons: Vec<&serde_json::Map<String, Value>> = assets?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .filter(|a| a.get("type").and_then(Value::as_str) == Some("icon"))
        .collect();
    let chosen = icons.iter().find(|a| a.get("name").and_then(Value::as_str) == Some("main")).or(icons.first())?;
    let uri = chosen.get("uri")?.as_str()?;
    // The spec spells it "embeded"; accept the dictionary spelling too.
    let path = uri.strip_prefix("embeded://").or_else(|| uri.strip_prefix("embedded://"))?;
    Some(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_main_icon_wins_then_the_first_icon() {
        let assets = json!([
            {"type": "background", "uri": "embeded://assets/bg.png", "name": "main"},
            {"type": "icon", "uri": "embeded://assets/icon/images/a.png", "name": "happy"},
            {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main"}
        ]);
        assert_eq!(main_icon_path(Some(&assets)).as_deref(), Some("assets/icon/images/main.png"));
        let assets = json!([{"type": "icon", "uri": "embedded://x.webp", "name": "sad"}]);
        assert_eq!(main_icon_path(Some(&assets)).as_deref(), Some("x.webp"));
        let assets = json!([{"type": "icon", "uri": "ccdefault:", "name": "main"}]);
        assert_eq!(main_icon_path(Some(&assets)), None);
        assert_eq!(main_icon_path(Some(&json!("nonsense"))), None);
    }

    #[test]
    fn reading_stops_at_the_limit_whatever_was_declared() {
        let data = crate::cards::samples::zip(&[("card.json", &[b' '; 1000])]);
        let mut archive = ZipArchive::new(Cursor::new(&data[..])).expect("zip");
        // Skip the declared-size check and go straight to the bounded read.
        let limits = ZipLimits { max_entry_bytes: 100, ..LIMITS };
        let e = read_entry(&mut archive, "card.json", limits).expect_err("over the limit");
        assert_eq!(e, CardError::ZipEntryTooLarge { name: "card.json".into(), limit: 100 });
        assert_eq!(read_entry(&mut archive, "card.json", LIMITS).map(|d| d.map(|d| d.len())), Ok(Some(1000)));
    }
}
