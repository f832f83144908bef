//! The `character_book` object of Character Card V2/V3, read into a
//! [`Lorebook`] and written back.
//!
//! The spec's entry fields map one to one. SillyTavern keeps the settings the
//! spec lacks (position numbers, depth, role, selective logic, probability,
//! whole words) inside each entry's `extensions`; they are read from there and
//! written back there. Fields that are neither in the spec nor modelled stay in
//! `extensions`; fields found *beside* `extensions` at the top level of a book
//! or entry are kept in `extensions[UNKNOWN_FIELDS_KEY]` and put back at the
//! top level on export.

use serde_json::{Map, Value};

use super::error::LorebookError;
use super::fields::{self, FieldError, Fields, put, put_opt};
use super::types::{Entry, Lorebook, Position, Role, SelectiveLogic};

/// Where top-level fields nobody modelled are kept, inside `extensions`.
pub const UNKNOWN_FIELDS_KEY: &str = "roleplay_server_unknown_fields";

/// Reads a `character_book` JSON value.
pub fn from_value(value: Value) -> Result<Lorebook, LorebookError> {
    let Value::Object(mut m) = value else {
        return Err(LorebookError::NotAnObject);
    };
    let book = |e: FieldError| LorebookError::book(e);
    let name = fields::string(&mut m, "name").map_err(book)?.unwrap_or_default();
    let description = fields::string(&mut m, "description").map_err(book)?.unwrap_or_default();
    let scan_depth = fields::uint(&mut m, "scan_depth").map_err(book)?;
    let token_budget = fields::uint(&mut m, "token_budget").map_err(book)?;
    let recursive_scanning = fields::bool(&mut m, "recursive_scanning").map_err(book)?.unwrap_or(false);
    let mut extensions = fields::object(&mut m, "extensions").map_err(book)?.unwrap_or_default();
    let raw_entries = match m.remove("entries") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(book(FieldError { field: "entries".into(), expected: "a list of entries" })),
    };
    let entries = raw_entries.into_iter().enumerate().map(|(i, v)| entry_from_value(i, v)).collect::<Result<_, _>>()?;
    if !m.is_empty() {
        extensions.insert(UNKNOWN_FIELDS_KEY.to_owned(), Value::Object(m));
    }
    Ok(Lorebook { name, description, scan_depth, token_budget, recursive_scanning, extensions, entries })
}

/// Reads a `character_book` from JSON bytes.
pub fn from_json(data: &[u8]) -> Result<Lorebook, LorebookError> {
    from_value(Value::Object(fields::parse_object(data)?))
}

fn entry_from_value(index: usize, value: Value) -> Result<Entry, LorebookError> {
    let Value::Object(mut m) = value else {
        return Err(LorebookError::InvalidEntryField {
            entry: index.to_string(),
            field: "(the entry itself)".into(),
            expected: "an object",
        });
    };
    let err = |e: FieldError| LorebookError::entry(index, e);
    let id = fields::int(&mut m, "id").map_err(err)?;
    let keys = fields::strings(&mut m, "keys").map_err(err)?.unwrap_or_default();
    let secondary_keys = fields::strings(&mut m, "secondary_keys").map_err(err)?.unwrap_or_default();
    let content = fields::string(&mut m, "content").map_err(err)?.unwrap_or_default();
    let name = fields::string(&mut m, "name").map_err(err)?.unwrap_or_default();
    let comment = fields::string(&mut m, "comment").map_err(err)?.unwrap_or_default();
    let enabled = fields::bool(&mut m, "enabled").map_err(err)?.unwrap_or(true);
    let insertion_order = fields::int(&mut m, "insertion_order").map_err(err)?.unwrap_or(100);
    let case_sensitive_top = fields::bool(&mut m, "case_sensitive").map_err(err)?;
    let priority = fields::int(&mut m, "priority").map_err(err)?;
    let selective = fields::bool(&mut m, "selective").map_err(err)?.unwrap_or(false);
    let constant = fields::bool(&mut m, "constant").map_err(err)?.unwrap_or(false);
    let use_regex = fields::bool(&mut m, "use_regex").map_err(err)?.unwrap_or(false);
    let position_top = match fields::string(&mut m, "position").map_err(err)?.as_deref() {
        None | Some("") => None,
        Some("before_char") => Some(Position::BeforeCharacter),
        Some("after_char") => Some(Position::AfterCharacter),
        Some(_) => {
            return Err(err(FieldError { field: "position".into(), expected: "\"before_char\" or \"after_char\"" }));
        }
    };
    let mut ext = fields::object(&mut m, "extensions").map_err(err)?.unwrap_or_default();

    // SillyTavern's settings, inside `extensions`.
    let ext_err =
        |e: FieldError| LorebookError::entry(index, FieldError { field: format!("extensions.{}", e.field), ..e });
    let st = read_st_settings(&mut ext).map_err(ext_err)?;
    let case_sensitive_ext = fields::bool(&mut ext, "case_sensitive").map_err(ext_err)?;
    let match_whole_words = fields::bool(&mut ext, "match_whole_words").map_err(ext_err)?;

    if !m.is_empty() {
        ext.insert(UNKNOWN_FIELDS_KEY.to_owned(), Value::Object(m));
    }
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
        enabled,
        case_sensitive: case_sensitive_top.or(case_sensitive_ext),
        match_whole_words,
        use_regex,
        insertion_order,
        priority,
        position: st.position.or(position_top).unwrap_or_default(),
        probability: st.probability,
        extensions: ext,
    })
}

/// The settings SillyTavern stores under the same names in both of its places:
/// a character book entry's `extensions` and a world-info entry's top level.
pub(crate) struct StSettings {
    pub position: Option<Position>,
    pub selective_logic: Option<SelectiveLogic>,
    pub probability: Option<u32>,
}

/// Takes `position` (with `depth` and `role` when it is 4), `selectiveLogic`,
/// `useProbability` and `probability` out of `m`.
///
/// `depth` and `role` are only consumed for at-depth entries: SillyTavern
/// writes them on every entry, and for the others they must survive as-is.
/// Likewise `probability` stays when `useProbability` is false, because the
/// model has no place for a probability that is switched off.
pub(crate) fn read_st_settings(m: &mut Fields) -> Result<StSettings, FieldError> {
    let position = match fields::int(m, "position")? {
        None => None,
        Some(4) => {
            let depth = fields::uint(m, "depth")?.unwrap_or(4);
            let role = match fields::int(m, "role")? {
                None => Role::System,
                Some(n) => Role::from_st(n)
                    .ok_or(FieldError { field: "role".into(), expected: "0 (system), 1 (user) or 2 (assistant)" })?,
            };
            Some(Position::AtDepth { depth, role })
        }
        Some(n) => Some(
            Position::from_st(n, (4, Role::System))
                .ok_or(FieldError { field: "position".into(), expected: "a position number from 0 to 6" })?,
        ),
    };
    let selective_logic = match fields::int(m, "selectiveLogic")? {
        None => None,
        Some(n) => Some(
            SelectiveLogic::from_st(n)
                .ok_or(FieldError { field: "selectiveLogic".into(), expected: "a number from 0 to 3" })?,
        ),
    };
    let probability = match fields::bool(m, "useProbability")? {
        Some(false) => None,
        _ => match fields::uint(m, "probability")? {
            Some(p) if p <= 100 => Some(p),
            Some(_) => return Err(FieldError { field: "probability".into(), expected: "a percentage from 0 to 100" }),
            None => None,
        },
    };
    Ok(StSettings { position, selective_logic, probability })
}

/// Writes the settings [`read_st_settings`] reads, the inverse of it.
pub(crate) fn write_st_settings(m: &mut Fields, entry: &Entry) {
    put(m, "position", entry.position.to_st());
    if let Position::AtDepth { depth, role } = entry.position {
        put(m, "depth", depth);
        put(m, "role", role.to_st());
    }
    put(m, "selectiveLogic", entry.selective_logic.to_st());
    match entry.probability {
        Some(p) => {
            put(m, "useProbability", true);
            put(m, "probability", p);
        }
        None => put(m, "useProbability", false),
    }
}

/// Splits the kept top-level fields out of an `extensions` map.
pub(crate) fn split_unknown(extensions: &Map<String, Value>) -> (Fields, Fields) {
    let mut ext = extensions.clone();
    let top = match ext.remove(UNKNOWN_FIELDS_KEY) {
        Some(Value::Object(m)) => m,
        Some(other) => {
            // Not ours after all: leave it where it was.
            ext.insert(UNKNOWN_FIELDS_KEY.to_owned(), other);
            Fields::new()
        }
        None => Fields::new(),
    };
    (top, ext)
}

/// Writes a book as a `character_book` JSON value.
pub fn to_value(book: &Lorebook) -> Value {
    let (mut out, ext) = split_unknown(&book.extensions);
    put(&mut out, "name", book.name.as_str());
    put(&mut out, "description", book.description.as_str());
    put_opt(&mut out, "scan_depth", book.scan_depth);
    put_opt(&mut out, "token_budget", book.token_budget);
    put(&mut out, "recursive_scanning", book.recursive_scanning);
    put(&mut out, "extensions", ext);
    put(&mut out, "entries", book.entries.iter().map(entry_to_value).collect::<Vec<_>>());
    Value::Object(out)
}

/// Writes a book as `character_book` JSON bytes.
pub fn to_json(book: &Lorebook) -> Vec<u8> {
    serde_json::to_vec(&to_value(book)).unwrap_or_default()
}

fn entry_to_value(entry: &Entry) -> Value {
    let (mut out, mut ext) = split_unknown(&entry.extensions);
    put_opt(&mut out, "id", entry.id);
    put(&mut out, "keys", entry.keys.clone());
    put(&mut out, "secondary_keys", entry.secondary_keys.clone());
    put(&mut out, "content", entry.content.as_str());
    put(&mut out, "name", entry.name.as_str());
    put(&mut out, "comment", entry.comment.as_str());
    put(&mut out, "enabled", entry.enabled);
    put(&mut out, "insertion_order", entry.insertion_order);
    put_opt(&mut out, "case_sensitive", entry.case_sensitive);
    put_opt(&mut out, "priority", entry.priority);
    put(&mut out, "selective", entry.selective);
    put(&mut out, "constant", entry.constant);
    put(&mut out, "use_regex", entry.use_regex);
    // The spec knows two positions; the exact one is in extensions.position.
    let coarse = if entry.position == Position::BeforeCharacter { "before_char" } else { "after_char" };
    put(&mut out, "position", coarse);

    write_st_settings(&mut ext, entry);
    put_opt(&mut ext, "case_sensitive", entry.case_sensitive);
    put_opt(&mut ext, "match_whole_words", entry.match_whole_words);
    put(&mut out, "extensions", ext);
    Value::Object(out)
}
