//! Why a card could not be read or written. Each message is a sentence for
//! the person who uploaded the file; they become INVALID_ARGUMENT at the edge.

use crate::lorebook::LorebookError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the file is {} MiB; a card may be at most {} MiB", mib(*.size), mib(*.limit))]
    TooLarge { size: usize, limit: usize },
    #[error("{} is not a character card: expected a PNG image, a JSON file or a CHARX archive{}", describe(.filename), looks_like_note(*.looks_like))]
    UnrecognizedFormat { filename: String, looks_like: Option<&'static str> },
    #[error("the PNG image carries no character card (it has no `chara` or `ccv3` text chunk)")]
    NoCardInPng,
    #[error("the PNG image is damaged: {0}")]
    InvalidPng(String),
    #[error("the card in the PNG's `{chunk}` chunk is not valid base64")]
    InvalidBase64 { chunk: &'static str },
    #[error("the card is not valid JSON: {message} at line {line}, column {column}")]
    InvalidJson { line: usize, column: usize, message: String },
    #[error("the card must be a JSON object")]
    NotAnObject,
    #[error("the card's spec is {0:?}; only \"chara_card_v2\" and \"chara_card_v3\" are supported")]
    UnsupportedSpec(String),
    #[error("the card says spec {spec} version {version:?}, which is not supported")]
    UnsupportedSpecVersion { spec: &'static str, version: String },
    #[error("the card has no `{0}`, which every card needs")]
    MissingField(&'static str),
    #[error("the card's `{field}` must be {expected}")]
    InvalidField { field: String, expected: &'static str },
    #[error("the card's character book is invalid: {0}")]
    InvalidBook(#[from] LorebookError),
    #[error("the CHARX archive cannot be read: {0}")]
    InvalidZip(String),
    #[error("the CHARX archive holds {count} files; at most {limit} are accepted")]
    ZipTooManyEntries { count: usize, limit: usize },
    #[error("the CHARX archive's {name:?} unpacks to more than {limit} bytes")]
    ZipEntryTooLarge { name: String, limit: u64 },
    #[error("the CHARX archive unpacks to more than {limit} bytes in all")]
    ZipTooLarge { limit: u64 },
    #[error("the CHARX archive has no card.json")]
    NoCardJson,
    #[error("the avatar image cannot be decoded: {0}")]
    InvalidImage(String),
    #[error("the avatar image is {width}×{height} pixels; at most {limit}×{limit} is accepted")]
    ImageTooLarge { width: u32, height: u32, limit: u32 },
    #[error("the PNG could not be written: {0}")]
    EncodePng(String),
}

/// Sizes in MiB with one decimal, rounded up so a file just over the limit never reads as equal to it.
fn mib(bytes: usize) -> String {
    let tenths = (bytes as u64).saturating_mul(10).div_ceil(1024 * 1024);
    match tenths % 10 {
        0 => format!("{}", tenths / 10),
        t => format!("{}.{t}", tenths / 10),
    }
}

fn describe(filename: &str) -> String {
    if filename.is_empty() { "the file".to_owned() } else { format!("{filename:?}") }
}

fn looks_like_note(looks_like: Option<&'static str>) -> String {
    match looks_like {
        Some(kind) => format!(" (it holds an image of type {kind}, which cannot carry a card)"),
        None => String::new(),
    }
}
