//! Lorebooks as a user keeps them: books and their entries, SillyTavern
//! world-info files in and out, and attaching books to characters and chats.
//!
//! A book is stored whole, as the JSON of [`Lorebook`]; everything an
//! imported file carried that the model does not know stays in its
//! `extensions` and survives edits, so an export gives back what came in.
//! Another user's book, character or chat is NOT_FOUND, exactly like one that
//! does not exist.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    character_cards::{check_length, file_stem, stored_book},
    characters, chats,
    error::{Error, Result},
    lorebook::{
        Entry, Lorebook, LorebookError, Position, SelectiveLogic, card_book, fields, matching::KeyMatcher, world_info,
    },
    store::{LorebookLinks, Page, PageRequest, Store, models::LorebookRow, new_id, now},
    users::Caller,
};

/// A book's name and description, as for characters.
pub use crate::api::validate::{DESCRIPTION_MAX_CHARS, NAME_MAX_CHARS};
/// The text one entry puts into a prompt.
pub const CONTENT_MAX_CHARS: usize = 50_000;
/// Primary keys, and secondary keys, of one entry.
pub const KEYS_MAX: usize = 100;
pub const KEY_MAX_CHARS: usize = 200;
/// Entries in one book: far above hand-made books, and every book of a chat
/// is scanned for every reply.
pub const ENTRIES_MAX: usize = 5_000;
/// Largest world-info file imported: big shared books are a few megabytes.
pub const IMPORT_MAX_BYTES: usize = 8 * 1024 * 1024;
/// The name of an imported book that has none, from a file without a name.
const IMPORTED_NAME: &str = "Imported lorebook";
/// Times an edit is redone on the newer book when another edit of the same
/// book was saved between its read and its write. Of n edits that start
/// together one wins each round, so this many concurrent edits of one book
/// all succeed; a try is two short queries.
const EDIT_TRIES: usize = 20;

/// A book to create, already validated.
#[derive(Debug, Clone, Default)]
pub struct NewLorebook {
    pub name: String,
    pub description: String,
    pub scan_depth: Option<u32>,
    pub token_budget: Option<u32>,
    pub recursive_scanning: bool,
}

/// Book settings to change; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct LorebookChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scan_depth: Option<u32>,
    pub token_budget: Option<u32>,
    pub recursive_scanning: Option<bool>,
}

/// An entry as a client writes it. An entry has more than this (a name, a
/// priority, regex mode, imported extensions): an update keeps those.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryInput {
    pub keys: Vec<String>,
    pub secondary_keys: Vec<String>,
    pub selective_logic: SelectiveLogic,
    pub content: String,
    pub comment: String,
    pub constant: bool,
    pub enabled: bool,
    pub case_sensitive: Option<bool>,
    pub match_whole_words: Option<bool>,
    pub insertion_order: i64,
    pub position: Position,
    pub probability: Option<u32>,
}

impl EntryInput {
    /// The entry this input makes of `old` (a new entry when `None`).
    fn apply(self, old: Option<Entry>) -> Entry {
        let EntryInput {
            keys,
            secondary_keys,
            selective_logic,
            content,
            comment,
            constant,
            enabled,
            case_sensitive,
            match_whole_words,
            insertion_order,
            position,
            probability,
        } = self;
        // Secondary keys only count in a selective entry, and this API says
        // they count: new entries are selective (as SillyTavern makes them),
        // and an entry given new secondary keys becomes selective. An
        // imported entry whose keys stay as they were keeps its setting.
        let selective = match &old {
            None => true,
            Some(old) if old.secondary_keys == secondary_keys => old.selective,
            Some(old) => old.selective || !secondary_keys.is_empty(),
        };
        Entry {
            keys,
            secondary_keys,
            selective,
            selective_logic,
            content,
            comment,
            constant,
            enabled,
            case_sensitive,
            match_whole_words,
            insertion_order,
            position,
            probability,
            ..old.unwrap_or_default()
        }
    }
}

/// A book and who uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct LorebookView {
    pub id: String,
    /// Without its entries when listed.
    pub book: Lorebook,
    pub entry_count: usize,
    pub character_ids: Vec<String>,
    pub chat_session_ids: Vec<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What a book is attached to or detached from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Character(String),
    ChatSession(String),
}

/// A world-info file, ready to download.
#[derive(Debug, Clone)]
pub struct ExportedLorebook {
    pub data: Vec<u8>,
    pub filename: String,
}

pub async fn create(store: &impl AsRef<Store>, caller: &Caller, new: NewLorebook) -> Result<LorebookView> {
    let NewLorebook { name, description, scan_depth, token_budget, recursive_scanning } = new;
    let book = Lorebook { name, description, scan_depth, token_budget, recursive_scanning, ..Lorebook::default() };
    insert(store.as_ref(), caller, book).await
}

pub async fn get(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<LorebookView> {
    let store = store.as_ref();
    let row = owned(store, caller, id).await?;
    let book = read(&row)?;
    view(store, caller, row, book).await
}

/// The caller's books, oldest first, without their entries.
pub async fn list(store: &impl AsRef<Store>, caller: &Caller, page: &PageRequest) -> Result<Page<LorebookView>> {
    let store = store.as_ref();
    let rows = store.list_lorebooks(&caller.user_id, page).await?;
    let ids: Vec<String> = rows.items.iter().map(|row| row.id.clone()).collect();
    let links = store.lorebook_links(&caller.user_id, &ids).await?;
    let items = rows
        .items
        .into_iter()
        .map(|row| {
            let (book, entry_count) = summary(&row)?;
            Ok(with_links(row, book, entry_count, &links))
        })
        .collect::<Result<_>>()?;
    Ok(Page { items, has_more: rows.has_more })
}

/// Applies `changes` (`None` settings stay as they are).
pub async fn update(
    store: &impl AsRef<Store>,
    caller: &Caller,
    id: &str,
    changes: LorebookChanges,
) -> Result<LorebookView> {
    let store = store.as_ref();
    let LorebookChanges { name, description, scan_depth, token_budget, recursive_scanning } = changes;
    let (row, book, ()) = edit(store, caller, id, |book| {
        if let Some(name) = &name {
            book.name.clone_from(name);
        }
        if let Some(description) = &description {
            book.description.clone_from(description);
        }
        book.scan_depth = scan_depth.or(book.scan_depth);
        book.token_budget = token_budget.or(book.token_budget);
        book.recursive_scanning = recursive_scanning.unwrap_or(book.recursive_scanning);
        Ok(())
    })
    .await?;
    view(store, caller, row, book).await
}

/// Deletes the book and its attachments; characters whose card's book it
/// was go on without one.
pub async fn delete(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<()> {
    if store.as_ref().delete_lorebook(&caller.user_id, id, now()).await? {
        Ok(())
    } else {
        Err(Error::not_found("lorebook", id))
    }
}

/// Adds an entry with an id one above the book's largest.
pub async fn create_entry(
    store: &impl AsRef<Store>,
    caller: &Caller,
    book_id: &str,
    input: EntryInput,
) -> Result<Entry> {
    let new = input.apply(None);
    check_entry("entry", &new)?;
    let (_, _, created) = edit(store.as_ref(), caller, book_id, |book| {
        if book.entries.len() >= ENTRIES_MAX {
            return Err(Error::invalid(
                format!("lorebook {book_id}"),
                format!("already has {ENTRIES_MAX} entries, the most a book may have"),
            ));
        }
        let entry = Entry { id: Some(next_entry_id(&book.entries)), ..new.clone() };
        book.entries.push(entry.clone());
        Ok(entry)
    })
    .await?;
    Ok(created)
}

/// Replaces the entry's fields with `input`'s; what the input does not carry
/// (its name, priority, regex mode, imported extensions) stays.
pub async fn update_entry(
    store: &impl AsRef<Store>,
    caller: &Caller,
    book_id: &str,
    entry_id: i64,
    input: EntryInput,
) -> Result<Entry> {
    let (_, _, updated) = edit(store.as_ref(), caller, book_id, |book| {
        let entry = book
            .entries
            .iter_mut()
            .find(|e| e.id == Some(entry_id))
            .ok_or_else(|| entry_not_found(book_id, entry_id))?;
        let updated = input.clone().apply(Some(entry.clone()));
        check_entry(&format!("entry {entry_id}"), &updated)?;
        *entry = updated.clone();
        Ok(updated)
    })
    .await?;
    Ok(updated)
}

pub async fn delete_entry(store: &impl AsRef<Store>, caller: &Caller, book_id: &str, entry_id: i64) -> Result<()> {
    edit(store.as_ref(), caller, book_id, |book| {
        let index = book
            .entries
            .iter()
            .position(|e| e.id == Some(entry_id))
            .ok_or_else(|| entry_not_found(book_id, entry_id))?;
        book.entries.remove(index);
        Ok(())
    })
    .await?;
    Ok(())
}

/// Reads a SillyTavern world-info file (or a card's `character_book`
/// object) as a new book of the caller's. The name is the file's, else the
/// file name's stem. Nothing is stored when anything is wrong.
pub async fn import(store: &impl AsRef<Store>, caller: &Caller, data: &[u8], filename: &str) -> Result<LorebookView> {
    if data.len() > IMPORT_MAX_BYTES {
        return Err(Error::invalid(
            "data",
            format!("is {} bytes; a lorebook file may be at most {IMPORT_MAX_BYTES} bytes", data.len()),
        ));
    }
    let mut book = parse(data)?;
    book.name = imported_name(&book.name, filename);
    with_entry_ids(&mut book);
    check_book(&book)?;
    insert(store.as_ref(), caller, book).await
}

/// The book as a SillyTavern world-info file named after it.
pub async fn export(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<ExportedLorebook> {
    let row = owned(store.as_ref(), caller, id).await?;
    let book = read(&row)?;
    Ok(ExportedLorebook {
        data: world_info::to_json(&book),
        filename: format!("{}.json", file_stem(&row.name, "lorebook")),
    })
}

/// Attaches the book to a character or chat of the caller's; attaching
/// twice is the same as once.
pub async fn attach(store: &impl AsRef<Store>, caller: &Caller, id: &str, target: &Target) -> Result<LorebookView> {
    let store = store.as_ref();
    let row = owned(store, caller, id).await?;
    let attached = match target {
        Target::Character(character_id) => {
            characters::get(store, caller, character_id).await?;
            store.attach_lorebook_to_character(id, character_id).await
        }
        Target::ChatSession(chat_id) => {
            chats::owned(store, caller, chat_id).await?;
            store.attach_lorebook_to_chat(id, chat_id).await
        }
    };
    match attached {
        Ok(()) => {}
        // The book or the target was deleted between the check and the insert.
        Err(err) if err.is_foreign_key_violation() => return Err(target_gone(id, target)),
        Err(err) => return Err(err.into()),
    }
    let book = read(&row)?;
    view(store, caller, row, book).await
}

/// Detaches the book from a character or chat of the caller's; from a
/// character, that includes the book being its card's own. Detaching what
/// is not attached changes nothing.
pub async fn detach(store: &impl AsRef<Store>, caller: &Caller, id: &str, target: &Target) -> Result<LorebookView> {
    let store = store.as_ref();
    let row = owned(store, caller, id).await?;
    match target {
        Target::Character(character_id) => {
            characters::get(store, caller, character_id).await?;
            store.detach_lorebook_from_character(id, character_id, now()).await?;
        }
        Target::ChatSession(chat_id) => {
            chats::owned(store, caller, chat_id).await?;
            store.detach_lorebook_from_chat(id, chat_id).await?;
        }
    }
    let book = read(&row)?;
    view(store, caller, row, book).await
}

/// The caller's book row.
async fn owned(store: &Store, caller: &Caller, id: &str) -> Result<LorebookRow> {
    store.lorebook(&caller.user_id, id).await?.ok_or_else(|| Error::not_found("lorebook", id))
}

/// The stored book, named as its row and with an id on every entry.
fn read(row: &LorebookRow) -> Result<Lorebook> {
    let mut book = stored_book(row)?;
    // The row's name is the one shown and changed; a card's book may have
    // been stored under another (its character's) name.
    book.name.clone_from(&row.name);
    with_entry_ids(&mut book);
    Ok(book)
}

/// A listed book: its settings and how many entries it has, read without
/// building the entries.
fn summary(row: &LorebookRow) -> Result<(Lorebook, usize)> {
    /// The fields of [`Lorebook`]'s JSON that a listing shows.
    #[derive(Deserialize)]
    struct Summary {
        description: String,
        scan_depth: Option<u32>,
        token_budget: Option<u32>,
        recursive_scanning: bool,
        entries: Vec<serde::de::IgnoredAny>,
    }
    let Summary { description, scan_depth, token_budget, recursive_scanning, entries } =
        serde_json::from_str(&row.book).map_err(|err| {
            tracing::error!(lorebook_id = %row.id, error = %err, "a stored lorebook cannot be read");
            Error::Corrupt { what: "lorebook", id: row.id.clone() }
        })?;
    let book = Lorebook {
        name: row.name.clone(),
        description,
        scan_depth,
        token_budget,
        recursive_scanning,
        ..Lorebook::default()
    };
    Ok((book, entries.len()))
}

async fn insert(store: &Store, caller: &Caller, book: Lorebook) -> Result<LorebookView> {
    let created_at = now();
    let row = LorebookRow {
        id: new_id(),
        user_id: caller.user_id.clone(),
        name: book.name.clone(),
        book: document(&book)?,
        created_at,
        updated_at: created_at,
    };
    store.insert_lorebook(&row).await?;
    let entry_count = book.entries.len();
    Ok(with_links(row, book, entry_count, &LorebookLinks::default()))
}

/// Reads, changes and writes back the caller's book, redoing `change` on the
/// newer book when another write came in between. Returns the written row
/// and book, and what `change` returned.
async fn edit<T>(
    store: &Store,
    caller: &Caller,
    id: &str,
    mut change: impl FnMut(&mut Lorebook) -> Result<T>,
) -> Result<(LorebookRow, Lorebook, T)> {
    for _ in 0..EDIT_TRIES {
        let row = owned(store, caller, id).await?;
        let mut book = read(&row)?;
        let out = change(&mut book)?;
        let written = document(&book)?;
        if let Some(row) =
            store.replace_lorebook_if_unchanged(&caller.user_id, id, &row.book, &book.name, &written, now()).await?
        {
            return Ok((row, book, out));
        }
        // Changed or deleted meanwhile: the next read sees which.
    }
    Err(Error::Contended { what: "lorebook", id: id.to_owned() })
}

/// The stored form of a book.
fn document(book: &Lorebook) -> Result<String> {
    serde_json::to_string(book).map_err(|err| Error::invalid("lorebook", err.to_string()))
}

/// The book as shown, with who uses it.
async fn view(store: &Store, caller: &Caller, row: LorebookRow, book: Lorebook) -> Result<LorebookView> {
    let links = store.lorebook_links(&caller.user_id, std::slice::from_ref(&row.id)).await?;
    let entry_count = book.entries.len();
    Ok(with_links(row, book, entry_count, &links))
}

fn with_links(row: LorebookRow, book: Lorebook, entry_count: usize, links: &LorebookLinks) -> LorebookView {
    let of = |pairs: &[(String, String)]| -> Vec<String> {
        pairs.iter().filter(|(book_id, _)| *book_id == row.id).map(|(_, other)| other.clone()).collect()
    };
    LorebookView {
        character_ids: of(&links.characters),
        chat_session_ids: of(&links.chats),
        entry_count,
        book,
        id: row.id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// The id for a new entry: one above the largest (the first is 0, as in
/// SillyTavern), or the smallest unused one when the largest is `i64::MAX`.
fn next_entry_id(entries: &[Entry]) -> i64 {
    let max = entries.iter().filter_map(|e| e.id).max();
    match max {
        None => 0,
        Some(max) => max.checked_add(1).unwrap_or_else(|| {
            let taken: HashSet<i64> = entries.iter().filter_map(|e| e.id).collect();
            (0..).find(|id| !taken.contains(id)).unwrap_or(0)
        }),
    }
}

/// Gives every entry an id unique in the book: entries without one, or with
/// one an earlier entry has, get new ids above the largest. The same book
/// always gets the same ids, so the ids shown for a card's book (stored as
/// its card had them) name the same entries in the next request.
fn with_entry_ids(book: &mut Lorebook) {
    let mut taken = HashSet::new();
    let mut missing = Vec::new();
    for (i, entry) in book.entries.iter().enumerate() {
        if !entry.id.is_some_and(|id| taken.insert(id)) {
            missing.push(i);
        }
    }
    let mut candidate = taken.iter().max().map_or(0, |max| max.saturating_add(1));
    for i in missing {
        while taken.contains(&candidate) {
            candidate = candidate.checked_add(1).unwrap_or(0);
        }
        taken.insert(candidate);
        book.entries[i].id = Some(candidate);
    }
}

fn entry_not_found(book_id: &str, entry_id: i64) -> Error {
    Error::not_found("lorebook entry", format!("{entry_id} in lorebook {book_id}"))
}

fn target_gone(id: &str, target: &Target) -> Error {
    match target {
        Target::Character(character_id) => {
            Error::NotFound { what: "lorebook or character", id: format!("{id}/{character_id}") }
        }
        Target::ChatSession(chat_id) => {
            Error::NotFound { what: "lorebook or chat session", id: format!("{id}/{chat_id}") }
        }
    }
}

/// Reads a world-info file, or a card's `character_book` object when the
/// JSON has that shape.
fn parse(data: &[u8]) -> Result<Lorebook> {
    let value = Value::Object(fields::parse_object(data).map_err(LorebookError::from)?);
    if value.get("spec").and_then(Value::as_str).is_some_and(|spec| spec.starts_with("chara_card")) {
        return Err(Error::invalid(
            "data",
            "is a character card, not a lorebook; import it with CharacterService/ImportCharacter, which keeps its \
             lorebook",
        ));
    }
    // World info is the usual file, but it may list its entries, as a
    // character book does; a list of entries written with a character book's
    // field names is one.
    if looks_like_card_book(&value) { Ok(card_book::from_value(value)?) } else { Ok(world_info::from_value(value)?) }
}

/// `entries` is a list whose entries use a character book's field names
/// (`keys`, `insertion_order`, ...) and none of world info's (`key`, `uid`).
fn looks_like_card_book(value: &Value) -> bool {
    let Some(entries) = value.get("entries").and_then(Value::as_array) else {
        return false;
    };
    let objects = || entries.iter().filter_map(Value::as_object);
    let has_any = |names: &[&str]| objects().any(|entry| names.iter().any(|name| entry.contains_key(*name)));
    has_any(&["keys", "secondary_keys", "insertion_order", "enabled"]) && !has_any(&["key", "keysecondary", "uid"])
}

/// An imported book's name: its own, else the file name without folder and
/// extension, else a placeholder; at most [`NAME_MAX_CHARS`] characters.
fn imported_name(own: &str, filename: &str) -> String {
    let from_file = || {
        let base = filename.rsplit(['/', '\\']).next().unwrap_or_default();
        let stem = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
        Some(stem.trim()).filter(|s| !s.is_empty()).map(str::to_owned)
    };
    let name =
        if own.trim().is_empty() { from_file().unwrap_or_else(|| IMPORTED_NAME.to_owned()) } else { own.to_owned() };
    name.chars().take(NAME_MAX_CHARS).collect()
}

/// Refuses a book outside the limits, naming the first problem.
fn check_book(book: &Lorebook) -> Result<()> {
    if book.name.trim().is_empty() {
        return Err(Error::invalid("name", "is required and cannot be only whitespace"));
    }
    if book.name.contains('\0') {
        return Err(Error::invalid("name", "cannot contain NUL (\\0) characters"));
    }
    check_length("name", &book.name, NAME_MAX_CHARS)?;
    check_length("description", &book.description, DESCRIPTION_MAX_CHARS)?;
    if book.entries.len() > ENTRIES_MAX {
        return Err(Error::invalid(
            "the lorebook",
            format!("has {} entries; at most {ENTRIES_MAX} are allowed", book.entries.len()),
        ));
    }
    for entry in &book.entries {
        let label = match (entry.id, entry.comment.trim()) {
            (Some(id), "") => format!("entry {id}"),
            (Some(id), comment) => format!("entry {id} ({:?})", comment.chars().take(40).collect::<String>()),
            (None, _) => "entry".to_owned(),
        };
        check_entry(&label, entry)?;
    }
    Ok(())
}

/// Refuses an entry outside the limits or with a regex key that does not
/// compile (it would silently never match), naming `label` and the key.
pub fn check_entry(label: &str, entry: &Entry) -> Result<()> {
    check_length(&format!("{label}: content"), &entry.content, CONTENT_MAX_CHARS)?;
    for (field, keys) in [("keys", &entry.keys), ("secondary_keys", &entry.secondary_keys)] {
        if keys.len() > KEYS_MAX {
            return Err(Error::invalid(
                format!("{label}: {field}"),
                format!("has {} keys; at most {KEYS_MAX} are allowed", keys.len()),
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            check_length(&format!("{label}: {field}[{i}]"), key, KEY_MAX_CHARS)?;
            if let Err(err) = KeyMatcher::compile(key, entry) {
                return Err(Error::invalid(
                    format!("{label}: {field}[{i}] {key:?}"),
                    format!("is not a valid regular expression: {}", regex_reason(&err)),
                ));
            }
        }
    }
    Ok(())
}

/// The one line of a regex error that says what is wrong (its display
/// draws the pattern with a caret over several lines).
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines().rev().find_map(|line| line.strip_prefix("error: ")).map_or_else(|| text.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: Option<i64>) -> Entry {
        Entry { id, ..Entry::default() }
    }

    #[test]
    fn entries_get_unique_ids_deterministically() {
        let mut book = Lorebook {
            entries: vec![entry(Some(3)), entry(None), entry(Some(3)), entry(Some(7)), entry(None)],
            ..Lorebook::default()
        };
        with_entry_ids(&mut book);
        let ids: Vec<_> = book.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, [Some(3), Some(8), Some(9), Some(7), Some(10)]);
        let again = book.clone();
        with_entry_ids(&mut book);
        assert_eq!(book, again, "ids once given stay");
        assert_eq!(next_entry_id(&[]), 0);
        assert_eq!(next_entry_id(&[entry(Some(i64::MAX)), entry(Some(0))]), 1);
    }

    #[test]
    fn an_update_keeps_what_the_input_does_not_carry() {
        let mut extensions = serde_json::Map::new();
        extensions.insert("addMemo".into(), Value::Bool(true));
        let old = Entry {
            id: Some(4),
            name: "Dragons".into(),
            priority: Some(9),
            use_regex: true,
            selective: false,
            secondary_keys: vec!["fire".into()],
            extensions: extensions.clone(),
            ..Entry::default()
        };
        let input = EntryInput { content: "new".into(), secondary_keys: vec!["fire".into()], ..EntryInput::default() };
        let updated = input.clone().apply(Some(old.clone()));
        assert_eq!(
            (updated.id, updated.name.as_str(), updated.priority, updated.use_regex, updated.selective),
            (Some(4), "Dragons", Some(9), true, false)
        );
        assert_eq!(updated.extensions, extensions);
        assert_eq!(updated.content, "new");
        let changed = EntryInput { secondary_keys: vec!["ice".into()], ..input }.apply(Some(old));
        assert!(changed.selective, "new secondary keys are consulted");
        assert!(EntryInput::default().apply(None).selective);
    }

    #[test]
    fn bad_regex_keys_are_named() {
        let bad = Entry { keys: vec!["dragon".into(), "/(unclosed/i".into()], ..Entry::default() };
        let err = check_entry("entry 5", &bad).expect_err("bad regex");
        let text = err.to_string();
        assert!(text.contains("entry 5") && text.contains("keys[1]") && text.contains("/(unclosed/i"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        let plain = Entry { keys: vec!["(not a regex".into()], ..Entry::default() };
        assert!(check_entry("entry", &plain).is_ok());
    }

    #[test]
    fn card_books_are_told_from_world_info() {
        let card = serde_json::json!({"entries": [{"keys": ["a"], "content": "x"}]});
        let listed_world_info = serde_json::json!({"entries": [{"key": ["a"], "content": "x"}]});
        let world_info = serde_json::json!({"entries": {"0": {"key": ["a"], "content": "x"}}});
        assert!(looks_like_card_book(&card));
        assert!(!looks_like_card_book(&listed_world_info));
        assert!(!looks_like_card_book(&world_info));
        let book = parse(card.to_string().as_bytes()).expect("card book");
        assert_eq!(book.entries[0].keys, ["a"]);
    }

    #[test]
    fn imported_names_come_from_the_book_then_the_file() {
        assert_eq!(imported_name("Dragons", "x.json"), "Dragons");
        assert_eq!(imported_name(" ", "C:\\books\\Elves of the North.json"), "Elves of the North");
        assert_eq!(imported_name("", "dir/.json"), IMPORTED_NAME);
        assert_eq!(imported_name(&"n".repeat(300), "").chars().count(), NAME_MAX_CHARS);
    }
}
