//! Character cards as the community shares them: TavernAI V1 JSON, Character
//! Card V2/V3 JSON, PNG images carrying the card in a text chunk, and CHARX
//! zip archives. Bytes in, bytes out; no I/O.
//!
//! - [`import`] detects the format by content and returns a [`Card`] with its
//!   avatar; [`export_v3_json`] and [`export_png`] write one back.
//! - [`avatar_thumbnail`] and [`avatar_content_type`] serve the avatar store.
//!
//! Nothing a card carries is dropped: `extensions` is kept verbatim, every
//! other `data` field lands in [`Card::extra`], and the character book keeps
//! its unknown fields (see [`crate::lorebook::card_book`]).

mod avatar;
mod card;
mod charx;
mod error;
mod json;
mod png_card;

pub use avatar::{avatar_content_type, avatar_thumbnail};
pub use card::{Card, CardFormat, ImportedCard};
pub use error::CardError;

/// Largest card file accepted. Real cards with a large lorebook and a
/// full-size avatar stay well under 10 MiB.
pub const MAX_INPUT_BYTES: usize = 20 * 1024 * 1024;
/// Largest avatar side in pixels; a 4096×4096 RGBA image is 64 MiB decoded.
pub const MAX_AVATAR_SIDE: u32 = 4096;
/// Largest side of the thumbnail [`avatar_thumbnail`] makes.
pub const THUMBNAIL_SIDE: u32 = 256;

/// Reads a card from a file's bytes. The format is decided by the content;
/// `filename` only helps word the error when the content is not a card.
pub fn import(data: &[u8], filename: &str) -> Result<ImportedCard, CardError> {
    if data.len() > MAX_INPUT_BYTES {
        return Err(CardError::TooLarge { size: data.len(), limit: MAX_INPUT_BYTES });
    }
    if data.starts_with(png_card::PNG_SIGNATURE) {
        return png_card::import(data);
    }
    if charx::looks_like_zip(data) {
        return charx::import(data);
    }
    if json::looks_like_json(data) {
        let (card, format) = json::card_from_json(data)?;
        return Ok(ImportedCard { card, avatar: None, format });
    }
    Err(CardError::UnrecognizedFormat { filename: filename.to_owned(), looks_like: avatar_content_type(data) })
}

/// The card as Character Card V3 JSON (compact, fields in a stable order).
pub fn export_v3_json(card: &Card) -> Vec<u8> {
    json::to_bytes(&json::v3_value(card))
}

/// The card as a PNG: `avatar` (PNG, JPEG or WebP) re-encoded, or a plain
/// 400×600 image when there is none, carrying a `ccv3` chunk (V3) and a
/// `chara` chunk (V2, for older tools).
pub fn export_png(card: &Card, avatar: Option<&[u8]>) -> Result<Vec<u8>, CardError> {
    png_card::export(card, avatar)
}

#[cfg(test)]
mod fuzz_tests;
/// Shared with the integration tests (tests/cards.rs), which import the same
/// cards through the server.
#[cfg(test)]
#[path = "../../tests/common/card_samples.rs"]
mod samples;
#[cfg(test)]
mod tests;
