//! Characters in and out as the cards people share (see [`crate::cards`] for
//! the formats), and their avatars.
//!
//! An import stores the character, its card's lorebook and its avatar
//! together or not at all; every card field lands somewhere (unknown ones in
//! `card_extra`), so an export gives back what came in.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    cards::{self, Card, CardFormat},
    characters::{self, NewCharacter},
    error::{Error, Result},
    lorebook::Lorebook,
    samplers::Samplers,
    store::{
        Store,
        models::{Avatar, Character, CharacterChanges, LorebookRow},
        new_id, now,
    },
    users::Caller,
};

// An imported card is held to the limits CreateCharacter checks: names,
// texts (description, personality, scenario, first message, greetings,
// notes) and prompts (system prompt, post-history instructions, examples).
use crate::api::validate::{DESCRIPTION_MAX_CHARS as TEXT_MAX_CHARS, NAME_MAX_CHARS, PROMPT_MAX_CHARS};

/// Alternate greetings and tags a character may have.
const LIST_MAX_ITEMS: usize = 64;
pub const TAG_MAX_CHARS: usize = 100;

/// How a character is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Png,
}

/// A card file, ready to download.
#[derive(Debug, Clone)]
pub struct ExportedCard {
    pub data: Vec<u8>,
    pub content_type: &'static str,
    pub filename: String,
}

/// Reads a card and stores it as a new character of the caller's, with its
/// lorebook and avatar. Nothing is stored when anything is wrong.
pub async fn import(
    store: &impl AsRef<Store>,
    caller: &Caller,
    data: &[u8],
    filename: &str,
) -> Result<(Character, CardFormat)> {
    let store = store.as_ref();
    let imported = cards::import(data, filename)?;
    let card = imported.card;
    check_card(&card)?;
    let avatar = imported.avatar.as_deref().map(checked_avatar).transpose()?;
    let owner = &caller.user_id;
    let book = card.character_book.as_ref().map(|book| book_row(owner, &card.name, book)).transpose()?;
    let mut row = NewCharacter {
        name: card.name.trim().to_owned(),
        description: card.description,
        system_prompt: non_empty(card.system_prompt),
        post_history_instructions: non_empty(card.post_history_instructions),
        first_message: non_empty(card.first_mes),
        personality: card.personality,
        scenario: card.scenario,
        mes_example: card.mes_example,
        alternate_greetings: card.alternate_greetings,
        tags: card.tags,
        creator: card.creator,
        creator_notes: card.creator_notes,
        character_version: card.character_version,
        extensions: card.extensions,
        samplers: Samplers::default(),
    }
    .into_row(owner);
    row.card_extra = Value::Object(card.extra).to_string();
    row.avatar_hash = avatar.as_ref().map(|a| a.hash.clone());
    row.lorebook_id = book.as_ref().map(|b| b.id.clone());
    if let Some(avatar) = &avatar {
        store.insert_avatar(avatar).await?;
    }
    store.insert_character_with_book(&row, book.as_ref()).await?;
    Ok((row, imported.format))
}

/// The caller's character as a card file.
pub async fn export(
    store: &impl AsRef<Store>,
    caller: &Caller,
    id: &str,
    format: ExportFormat,
) -> Result<ExportedCard> {
    let store = store.as_ref();
    let character = characters::get(store, caller, id).await?;
    let book = match &character.lorebook_id {
        Some(book_id) => match store.lorebook(&caller.user_id, book_id).await? {
            Some(row) => Some(stored_book(&row)?),
            // The book was deleted: the card goes without it.
            None => None,
        },
        None => None,
    };
    let card = card_of(&character, book);
    let stem = file_stem(&character.name, "character");
    match format {
        ExportFormat::Json => Ok(ExportedCard {
            data: cards::export_v3_json(&card),
            content_type: "application/json",
            filename: format!("{stem}.json"),
        }),
        ExportFormat::Png => {
            let avatar = match &character.avatar_hash {
                Some(hash) => store.avatar(hash).await?.map(|a| a.data),
                None => None,
            };
            let data = cards::export_png(&card, avatar.as_deref())?;
            Ok(ExportedCard { data, content_type: "image/png", filename: format!("{stem}.png") })
        }
    }
}

/// Sets the character's avatar (PNG, JPEG or WebP), or removes it when
/// `data` is empty.
pub async fn set_avatar(store: &impl AsRef<Store>, caller: &Caller, id: &str, data: &[u8]) -> Result<Character> {
    let store = store.as_ref();
    characters::get(store, caller, id).await?;
    let avatar = if data.is_empty() { None } else { Some(checked_avatar(data)?) };
    if let Some(avatar) = &avatar {
        store.insert_avatar(avatar).await?;
    }
    let changes = CharacterChanges { avatar_hash: Some(avatar.map(|a| a.hash)), ..Default::default() };
    characters::update(store, caller, id, changes).await
}

/// The character's avatar image.
pub async fn avatar(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<Avatar> {
    let store = store.as_ref();
    let character = characters::get(store, caller, id).await?;
    let missing = || Error::not_found("avatar of character", id);
    let hash = character.avatar_hash.ok_or_else(missing)?;
    store.avatar(&hash).await?.ok_or_else(missing)
}

/// A stored lorebook's book.
pub fn stored_book(row: &LorebookRow) -> Result<Lorebook> {
    serde_json::from_str(&row.book).map_err(|err| {
        tracing::error!(lorebook_id = %row.id, error = %err, "a stored lorebook cannot be read");
        Error::Corrupt { what: "lorebook", id: row.id.clone() }
    })
}

fn book_row(owner: &str, character_name: &str, book: &Lorebook) -> Result<LorebookRow> {
    let name = if book.name.trim().is_empty() { format!("{character_name}'s lorebook") } else { book.name.clone() };
    let created_at = now();
    Ok(LorebookRow {
        id: new_id(),
        user_id: owner.to_owned(),
        name: name.chars().take(NAME_MAX_CHARS).collect(),
        book: serde_json::to_string(book)
            .map_err(|err| Error::invalid("the card's character_book", err.to_string()))?,
        created_at,
        updated_at: created_at,
    })
}

/// The card a character is, with its book.
fn card_of(character: &Character, character_book: Option<Lorebook>) -> Card {
    Card {
        name: character.name.clone(),
        description: character.description.clone(),
        personality: character.personality.clone(),
        scenario: character.scenario.clone(),
        first_mes: character.first_message.clone().unwrap_or_default(),
        mes_example: character.mes_example.clone(),
        creator_notes: character.creator_notes.clone(),
        system_prompt: character.system_prompt.clone().unwrap_or_default(),
        post_history_instructions: character.post_history_instructions.clone().unwrap_or_default(),
        alternate_greetings: character.alternate_greetings(),
        tags: character.tags(),
        creator: character.creator.clone(),
        character_version: character.character_version.clone(),
        extensions: character.extensions(),
        character_book,
        extra: character.card_extra(),
    }
}

/// Checks an avatar image and makes its stored form.
fn checked_avatar(data: &[u8]) -> Result<Avatar> {
    if data.len() > cards::MAX_INPUT_BYTES {
        return Err(cards::CardError::TooLarge { size: data.len(), limit: cards::MAX_INPUT_BYTES }.into());
    }
    let content_type =
        cards::avatar_content_type(data).ok_or_else(|| Error::invalid("avatar", "is not a PNG, JPEG or WebP image"))?;
    // Decoding it (for the thumbnail) proves the image is whole and not too
    // large; the original is what is kept and served.
    cards::avatar_thumbnail(data)?;
    Ok(Avatar {
        hash: hex::encode(Sha256::digest(data)),
        content_type: content_type.to_owned(),
        data: data.to_vec(),
        created_at: now(),
    })
}

/// Refuses a card with a field longer than a character may have.
fn check_card(card: &Card) -> Result<()> {
    let name_chars = card.name.trim().chars().count();
    if name_chars == 0 {
        return Err(Error::invalid("the card's name", "is empty; a character needs a name"));
    }
    let fields = [
        ("name", card.name.as_str(), NAME_MAX_CHARS),
        ("description", &card.description, TEXT_MAX_CHARS),
        ("personality", &card.personality, TEXT_MAX_CHARS),
        ("scenario", &card.scenario, TEXT_MAX_CHARS),
        ("first_mes", &card.first_mes, TEXT_MAX_CHARS),
        ("creator_notes", &card.creator_notes, TEXT_MAX_CHARS),
        ("creator", &card.creator, NAME_MAX_CHARS),
        ("character_version", &card.character_version, NAME_MAX_CHARS),
        ("system_prompt", &card.system_prompt, PROMPT_MAX_CHARS),
        ("post_history_instructions", &card.post_history_instructions, PROMPT_MAX_CHARS),
        ("mes_example", &card.mes_example, PROMPT_MAX_CHARS),
    ];
    for (field, text, max) in fields {
        check_length(&format!("the card's {field}"), text, max)?;
    }
    check_list("alternate_greetings", &card.alternate_greetings, TEXT_MAX_CHARS)?;
    check_list("tags", &card.tags, TAG_MAX_CHARS)
}

/// A list field: at most [`LIST_MAX_ITEMS`] items of at most `max` characters.
pub fn check_list(field: &str, items: &[String], max: usize) -> Result<()> {
    if items.len() > LIST_MAX_ITEMS {
        return Err(Error::invalid(field, format!("has {} items; at most {LIST_MAX_ITEMS} are allowed", items.len())));
    }
    for (i, item) in items.iter().enumerate() {
        check_length(&format!("{field}[{i}]"), item, max)?;
    }
    Ok(())
}

/// `text` is at most `max` characters long.
pub(crate) fn check_length(field: &str, text: &str, max: usize) -> Result<()> {
    let chars = text.chars().count();
    if chars > max {
        return Err(Error::invalid(field, format!("is {chars} characters long; at most {max} are allowed")));
    }
    Ok(())
}

fn non_empty(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

/// A file name from a character's or a book's name: letters, digits,
/// spaces, `-` and `_` kept, anything else `_`; `fallback` when nothing is
/// left.
pub(crate) fn file_stem(name: &str, fallback: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_') { c } else { '_' })
        .take(100)
        .collect();
    if stem.trim().is_empty() { fallback.into() } else { stem.trim().to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_stem("Aria the Bard", "character"), "Aria the Bard");
        assert_eq!(file_stem("../etc/passwd", "character"), "___etc_passwd");
        assert_eq!(file_stem("  ", "character"), "character");
    }

    #[test]
    fn a_card_with_an_over_long_field_is_refused_naming_it() {
        let card = Card { name: "A".into(), scenario: "x".repeat(TEXT_MAX_CHARS + 1), ..Card::default() };
        let err = check_card(&card).expect_err("too long");
        assert!(err.to_string().contains("the card's scenario"), "{err}");
        let tags = Card { name: "A".into(), tags: vec!["t".repeat(TAG_MAX_CHARS + 1)], ..Card::default() };
        assert!(check_card(&tags).expect_err("tag too long").to_string().contains("tags[0]"));
    }
}
