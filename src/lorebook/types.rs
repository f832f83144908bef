//! The lorebook data model shared by character books and standalone world info.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A book of world-info entries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Lorebook {
    pub name: String,
    pub description: String,
    /// History messages scanned for keys; `None` means [`super::DEFAULT_SCAN_DEPTH`].
    pub scan_depth: Option<u32>,
    /// Tokens this book may add to a prompt; `None` means no limit of its own.
    pub token_budget: Option<u32>,
    /// Whether activated entries' content is itself scanned for further keys.
    pub recursive_scanning: bool,
    /// Book-level fields this model does not know, kept verbatim for export.
    pub extensions: Map<String, Value>,
    pub entries: Vec<Entry>,
}

/// One piece of world info and the rules that decide when it is inserted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The id the source format gave the entry (`id` or SillyTavern's `uid`), if any.
    pub id: Option<i64>,
    pub keys: Vec<String>,
    pub secondary_keys: Vec<String>,
    /// Whether `secondary_keys` are consulted at all (the formats store the two separately).
    pub selective: bool,
    pub selective_logic: SelectiveLogic,
    pub content: String,
    pub name: String,
    pub comment: String,
    /// Always active, whatever the text says.
    pub constant: bool,
    pub enabled: bool,
    /// `None` means "the default" (case-insensitive), kept apart from an explicit `false`.
    pub case_sensitive: Option<bool>,
    /// `None` means "the default" (substring match), kept apart from an explicit `false`.
    pub match_whole_words: Option<bool>,
    /// Every key is a regular expression, not only keys written `/like this/`.
    pub use_regex: bool,
    /// Lower comes first in the prompt; also the default priority.
    pub insertion_order: i64,
    /// Higher is admitted first when the book's token budget runs short.
    pub priority: Option<i64>,
    pub position: Position,
    /// Chance in percent (0..=100) that a matching entry activates; `None` = always.
    pub probability: Option<u32>,
    /// Entry fields this model does not know, kept verbatim for export.
    pub extensions: Map<String, Value>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            id: None,
            keys: Vec::new(),
            secondary_keys: Vec::new(),
            selective: false,
            selective_logic: SelectiveLogic::AndAny,
            content: String::new(),
            name: String::new(),
            comment: String::new(),
            constant: false,
            enabled: true,
            case_sensitive: None,
            match_whole_words: None,
            use_regex: false,
            insertion_order: 100,
            priority: None,
            position: Position::BeforeCharacter,
            probability: None,
            extensions: Map::new(),
        }
    }
}

/// How secondary keys combine with a primary-key match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SelectiveLogic {
    /// At least one secondary key matches.
    #[default]
    AndAny,
    /// Every secondary key matches.
    AndAll,
    /// No secondary key matches.
    NotAny,
    /// At least one secondary key does not match.
    NotAll,
}

impl SelectiveLogic {
    /// SillyTavern's numbering: 0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL.
    pub fn from_st(n: i64) -> Option<Self> {
        match n {
            0 => Some(Self::AndAny),
            1 => Some(Self::NotAll),
            2 => Some(Self::NotAny),
            3 => Some(Self::AndAll),
            _ => None,
        }
    }

    pub fn to_st(self) -> i64 {
        match self {
            Self::AndAny => 0,
            Self::NotAll => 1,
            Self::NotAny => 2,
            Self::AndAll => 3,
        }
    }
}

/// Where in the prompt an activated entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Position {
    #[default]
    BeforeCharacter,
    AfterCharacter,
    AuthorsNoteTop,
    AuthorsNoteBottom,
    ExamplesTop,
    ExamplesBottom,
    /// Inserted into the history, `depth` messages from the newest, as `role`.
    AtDepth {
        depth: u32,
        role: Role,
    },
}

impl Position {
    /// SillyTavern's position number (0..=6); `AtDepth` is 4 with its depth and role stored apart.
    pub fn to_st(self) -> i64 {
        match self {
            Self::BeforeCharacter => 0,
            Self::AfterCharacter => 1,
            Self::AuthorsNoteTop => 2,
            Self::AuthorsNoteBottom => 3,
            Self::AtDepth { .. } => 4,
            Self::ExamplesTop => 5,
            Self::ExamplesBottom => 6,
        }
    }

    /// The position for SillyTavern number `n`; `depth_role` is only consulted for 4.
    pub fn from_st(n: i64, depth_role: (u32, Role)) -> Option<Self> {
        Some(match n {
            0 => Self::BeforeCharacter,
            1 => Self::AfterCharacter,
            2 => Self::AuthorsNoteTop,
            3 => Self::AuthorsNoteBottom,
            4 => Self::AtDepth { depth: depth_role.0, role: depth_role.1 },
            5 => Self::ExamplesTop,
            6 => Self::ExamplesBottom,
            _ => return None,
        })
    }
}

/// The chat role an at-depth entry is inserted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Role {
    #[default]
    System,
    User,
    Assistant,
}

impl Role {
    /// SillyTavern's numbering: 0 system, 1 user, 2 assistant.
    pub fn from_st(n: i64) -> Option<Self> {
        match n {
            0 => Some(Self::System),
            1 => Some(Self::User),
            2 => Some(Self::Assistant),
            _ => None,
        }
    }

    pub fn to_st(self) -> i64 {
        match self {
            Self::System => 0,
            Self::User => 1,
            Self::Assistant => 2,
        }
    }
}
