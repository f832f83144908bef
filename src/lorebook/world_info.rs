//! SillyTavern's standalone world-info file: `{"entries": {"0": {...}, ...}}`,
//! read into a [`Lorebook`] and written back.
//!
//! Entries are keyed by their `uid`; on import they are ordered by that key
//! (numerically), and an entry without a `uid` takes its key as id. Fields the
//! model does not know (`addMemo`, `displayIndex`, `group`, `sticky`, …) go
//! into the entry's `extensions` and come back at the entry's top level.
//! `scan_depth`, `token_budget`, `recursive_scanning`, `description` and an
//! entry's `name`, `priority` and `use_regex` have no place in SillyTavern's
//! file; they are written under those names only when set, and read back.

use serde_json::{Map, Value};

use super::card_book::{read_st_settings, write_st_settings};
use super::error::LorebookError;
use super::fields::{self, FieldError, Fields, put, put_opt};
use super::types::{Entry, Lorebook};

/// Reads a world-info JSON value.
pub fn from_value(value: Value) -> Result<Lorebook, LorebookError> {
    let Value::Object(mut m) = value else {
        return Err(LorebookError::NotAnObject);
    };
    let book = |e: FieldError| LorebookError::book(e);
    let raw_entries: Vec<(String, Value)> = match m.remove("entries") {
        None | Some(Value::Null) => return Err(LorebookError::MissingEntries),
        Some(Value::Object(entries)) => {
            let mut entries: Vec<_> = entries.into_iter().collect();
            // Numeric keys in numeric order ("2" before "10"), anything else after them.
            entries.sort_by_cached_key(|(k, _)| (k.parse::<i64>().map_or((1, 0), |n| (0, n)), k.clone()));
            entries
        }
        // Some exporters write a plain list; its indices serve as keys.
        Some(Value::Array(items)) => items.into_iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        Some(_) => return Err(book(FieldError { field: "entries".into(), expected: "an object of entries" })),
    };
    let name = fields::string(&mut m, "name").map_err(book)?.unwrap_or_default();
    let description = fields::string(&mut m, "description").map_err(book)?.unwrap_or_default();
    let scan_depth = fields::uint(&mut m, "scan_depth").map_err(book)?;
    let token_budget = fields::uint(&mut m, "token_budget").map_err(book)?;
    let recursive_scanning = fields::bool(&mut m, "recursive_scanning").map_err(book)?.unwrap_or(false);
    let entries = raw_entries.into_iter().map(|(k, v)| entry_from_value(&k, v)).collect::<Result<_, _>>()?;
    Ok(Lorebook { name, description, scan_depth, token_budget, recursive_scanning, extensions: m, entries })
}

/// Reads a world-info file.
pub fn from_json(data: &[u8]) -> Result<Lorebook, LorebookError> {
    from_value(Value::Object(fields::parse_object(data)?))
}

fn entry_from_value(key: &str, value: Value) -> Result<Entry, LorebookError> {
    let Value::Object(mut m) = value else {
        return Err(LorebookError::InvalidEntryField {
            entry: key.to_owned(),
            field: "(the entry itself)".into(),
            expected: "an object",
        });
    };
    let err = |e: FieldError| LorebookError::entry(key, e);
    let id = fields::int(&mut m, "uid").map_err(err)?.or_else(|| key.parse().ok());
    let keys = fields::strings(&mut m, "key").map_err(err)?.unwrap_or_default();
    let secondary_keys = fields::strings(&mut m, "keysecondary").map_err(err)?.unwrap_or_default();
    let content = fields::string(&mut m, "content").map_err(err)?.unwrap_or_default();
    let comment = fields::string(&mut m, "comment").map_err(err)?.unwrap_or_default();
    let name = fields::string(&mut m, "name").map_err(err)?.unwrap_or_default();
    let constant = fields::bool(&mut m, "constant").map_err(err)?.unwrap_or(false);
    let selective = fields::bool(&mut m, "selective").map_err(err)?.unwrap_or(false);
    let insertion_order = fields::int(&mut m, "order").map_err(err)?.unwrap_or(100);
    let disable = fields::bool(&mut m, "disable").map_err(err)?.unwrap_or(false);
    let case_sensitive = fields::bool(&mut m, "caseSensitive").map_err(err)?;
    let match_whole_words = fields::bool(&mut m, "matchWholeWords").map_err(err)?;
    let priority = fields::int(&mut m, "priority").map_err(err)?;
    let use_regex = fields::bool(&mut m, "use_regex").map_err(err)?.unwrap_or(false);
    let st = read_st_settings(&mut m).map_err(err)?;
    Ok(Entry {
        id,
        keys,
        secondary_keys,
        selective,
        selective_logic: st.selective_logic.unwrap_or_default(),
        content,
        name,
        comment,
        constant,
        enabled: !disable,
        case_sensitive,
        match_whole_words,
        use_regex,
        insertion_order,
        priority,
        position: st.position.unwrap_or_default(),
        probability: st.probability,
        extensions: m,
    })
}

/// Writes a book as a world-info JSON value.
pub fn to_value(book: &Lorebook) -> Value {
    let mut out = book.extensions.clone();
    if !book.name.is_empty() {
        put(&mut out, "name", book.name.as_str());
    }
    if !book.description.is_empty() {
        put(&mut out, "description", book.description.as_str());
    }
    put_opt(&mut out, "scan_depth", book.scan_depth);
    put_opt(&mut out, "token_budget", book.token_budget);
    if book.recursive_scanning {
        put(&mut out, "recursive_scanning", true);
    }

    // Keys are the uids; entries without one (or with a uid already taken) get
    // fresh numbers after the largest, so no entry overwrites another.
    let mut next_free = book.entries.iter().filter_map(|e| e.id).max().map_or(0, |m| m.saturating_add(1));
    let mut entries = Map::new();
    for entry in &book.entries {
        let key = match entry.id {
            Some(id) if !entries.contains_key(&id.to_string()) => id,
            _ => {
                let k = next_free;
                next_free = next_free.saturating_add(1);
                k
            }
        };
        entries.insert(key.to_string(), entry_to_value(entry, key));
    }
    put(&mut out, "entries", entries);
    Value::Object(out)
}

/// Writes a book as world-info JSON bytes.
pub fn to_json(book: &Lorebook) -> Vec<u8> {
    serde_json::to_vec(&to_value(book)).unwrap_or_default()
}

fn entry_to_value(entry: &Entry, key: i64) -> Value {
    let mut out: Fields = entry.extensions.clone();
    put(&mut out, "uid", entry.id.unwrap_or(key));
    put(&mut out, "key", entry.keys.clone());
    put(&mut out, "keysecondary", entry.secondary_keys.clone());
    put(&mut out, "content", entry.content.as_str());
    put(&mut out, "comment", entry.comment.as_str());
    if !entry.name.is_empty() {
        put(&mut out, "name", entry.name.as_str());
    }
    put(&mut out, "constant", entry.constant);
    put(&mut out, "selective", entry.selective);
    put(&mut out, "order", entry.insertion_order);
    put(&mut out, "disable", !entry.enabled);
    // SillyTavern writes null for "use the global setting".
    put(&mut out, "caseSensitive", entry.case_sensitive.map_or(Value::Null, Value::Bool));
    put(&mut out, "matchWholeWords", entry.match_whole_words.map_or(Value::Null, Value::Bool));
    put_opt(&mut out, "priority", entry.priority);
    if entry.use_regex {
        put(&mut out, "use_regex", true);
    }
    write_st_settings(&mut out, entry);
    Value::Object(out)
}
