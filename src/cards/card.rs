//! The card model: the fields a prompt uses, and places for everything else.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::lorebook::Lorebook;

/// A character card, whichever format it came in.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Card {
    pub name: String,
    pub description: String,
    pub personality: String,
    pub scenario: String,
    pub first_mes: String,
    pub mes_example: String,
    pub creator_notes: String,
    pub system_prompt: String,
    pub post_history_instructions: String,
    pub alternate_greetings: Vec<String>,
    pub tags: Vec<String>,
    pub creator: String,
    pub character_version: String,
    /// `data.extensions`, verbatim: tools keep their own settings here.
    pub extensions: Map<String, Value>,
    pub character_book: Option<Lorebook>,
    /// Every other `data` field (V3's nickname, group_only_greetings, source,
    /// assets, creation dates, and anything unknown), verbatim, so an export
    /// loses nothing.
    pub extra: Map<String, Value>,
}

/// Which format a card was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardFormat {
    V1Json,
    V2Json,
    V3Json,
    /// A PNG whose card came from its `chara` chunk.
    V2Png,
    /// A PNG whose card came from its `ccv3` chunk.
    V3Png,
    Charx,
}

/// What [`super::import`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedCard {
    pub card: Card,
    /// The image: a PNG card's own bytes, or a CHARX's main icon.
    pub avatar: Option<Vec<u8>>,
    pub format: CardFormat,
}
