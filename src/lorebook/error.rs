//! Why a lorebook could not be read, in words a person can act on.

use super::fields::{FieldError, JsonError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LorebookError {
    #[error("the lorebook is not valid JSON: {message} at line {line}, column {column}")]
    InvalidJson { line: usize, column: usize, message: String },
    #[error("the lorebook must be a JSON object")]
    NotAnObject,
    #[error("the lorebook has no `entries`")]
    MissingEntries,
    #[error("the lorebook's `{field}` must be {expected}")]
    InvalidBookField { field: String, expected: &'static str },
    #[error("lorebook entry {entry}: `{field}` must be {expected}")]
    InvalidEntryField { entry: String, field: String, expected: &'static str },
}

impl LorebookError {
    pub(crate) fn book(e: FieldError) -> Self {
        Self::InvalidBookField { field: e.field, expected: e.expected }
    }

    /// `entry` is how the entry is named to the person: its key or its index.
    pub(crate) fn entry(entry: impl ToString, e: FieldError) -> Self {
        Self::InvalidEntryField { entry: entry.to_string(), field: e.field, expected: e.expected }
    }
}

impl From<JsonError> for LorebookError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Syntax { line, column, message } => Self::InvalidJson { line, column, message },
            JsonError::NotAnObject => Self::NotAnObject,
        }
    }
}
