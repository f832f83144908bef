//! Cards inside PNG images: base64 JSON in a `tEXt` chunk named `chara`
//! (V2, and V1 before it) or `ccv3` (V3). Writers put these chunks after the
//! image data, so the whole file's chunks are read, not just the header's.

use std::io::Cursor;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use image::{Rgba, RgbaImage};

use super::avatar;
use super::card::{Card, CardFormat, ImportedCard};
use super::error::CardError;
use super::json;

pub(crate) const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Memory the PNG decoder may reserve while walking the chunks. Only a row
/// buffer is needed (no pixels are decoded here), so a header declaring a huge
/// image is refused instead of allocated.
const CHUNK_WALK_ALLOC: usize = 64 * 1024 * 1024;

/// The size of the image written for a card without an avatar: the 2:3
/// portrait most card sites display.
const BLANK_SIZE: (u32, u32) = (400, 600);

/// Padding is optional and line breaks are skipped: writers differ on both.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads the card from a PNG (or APNG); the PNG itself becomes the avatar.
pub(crate) fn import(data: &[u8]) -> Result<ImportedCard, CardError> {
    let (chara, ccv3) = card_chunks(data)?;
    let (chunk, text, format) = match (ccv3, chara) {
        (Some(text), _) => ("ccv3", text, CardFormat::V3Png),
        (None, Some(text)) => ("chara", text, CardFormat::V2Png),
        (None, None) => return Err(CardError::NoCardInPng),
    };
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let decoded = LENIENT_BASE64.decode(&compact).map_err(|_| CardError::InvalidBase64 { chunk })?;
    let (card, _) = json::card_from_json(&decoded)?;
    avatar::decode(data)?;
    Ok(ImportedCard { card, avatar: Some(data.to_vec()), format })
}

/// The texts of the `chara` and `ccv3` chunks, if present.
fn card_chunks(data: &[u8]) -> Result<(Option<String>, Option<String>), CardError> {
    let damaged = |e: png::DecodingError| CardError::InvalidPng(e.to_string());
    let decoder = png::Decoder::new_with_limits(Cursor::new(data), png::Limits { bytes: CHUNK_WALK_ALLOC });
    let mut reader = decoder.read_info().map_err(damaged)?;
    // Skips the pixel data and reads every chunk up to IEND.
    reader.finish().map_err(damaged)?;
    let mut chara = None;
    let mut ccv3 = None;
    for chunk in &reader.info().uncompressed_latin1_text {
        match chunk.keyword.as_str() {
            "chara" => chara = Some(chunk.text.clone()),
            "ccv3" => ccv3 = Some(chunk.text.clone()),
            _ => {}
        }
    }
    Ok((chara, ccv3))
}

pub(crate) fn export(card: &Card, avatar: Option<&[u8]>) -> Result<Vec<u8>, CardError> {
    let image = match avatar {
        Some(bytes) => avatar::decode(bytes)?.to_rgba8(),
        None => RgbaImage::from_pixel(BLANK_SIZE.0, BLANK_SIZE.1, Rgba([0x80, 0x80, 0x80, 0xff])),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let chara = b64.encode(json::to_bytes(&json::v2_value(card)));
    let ccv3 = b64.encode(json::to_bytes(&json::v3_value(card)));
    avatar::encode_png(&image, &[("chara", chara), ("ccv3", ccv3)])
}
