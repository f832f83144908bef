//! World info ("lorebooks"): entries of background text that are pulled into a
//! prompt when their keys show up in the conversation.
//!
//! The types here are the one shape the server works with; the two formats the
//! community shares books in are converted to and from it losslessly:
//!
//! - [`card_book`]: the `character_book` object of Character Card V2/V3, with
//!   SillyTavern's extra settings inside each entry's `extensions`.
//! - [`world_info`]: SillyTavern's standalone world-info JSON file.
//! - [`activate`](mod@activate): which entries a new message switches on.
//! - [`matching`]: how one key is matched against text (plain, whole word, regex).
//!
//! Anything a format carries that is not modelled here lands in an
//! `extensions` map and is written back on export, so import → export →
//! import is the identity.

pub mod activate;
pub mod card_book;
mod error;
pub(crate) mod fields;
pub mod matching;
mod types;
pub mod world_info;

pub use activate::{Activated, ActivationInput, Reason, activate};
pub use error::LorebookError;
pub use types::{Entry, Lorebook, Position, Role, SelectiveLogic};

/// How many history messages a book scans when it does not say (SillyTavern's default).
pub const DEFAULT_SCAN_DEPTH: u32 = 4;
/// How many rounds of recursive scanning run at most unless the caller says otherwise.
pub const DEFAULT_MAX_RECURSION: u32 = 3;
#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod roundtrip_props;
