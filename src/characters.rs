//! Characters and user profiles: the two parties of a chat, owned by a user.
//! Rows are made here (ids, timestamps, owner); another user's row is
//! NOT_FOUND, exactly like one that does not exist.

pub use crate::store::models::{CharacterChanges, UserProfileChanges};
use serde_json::{Map, Value};

use crate::samplers::Samplers;

use crate::{
    error::{Error, Result},
    store::{
        CharacterFilter, DeleteOutcome, Page, PageRequest, Store,
        models::{Character, UserProfile},
        new_id, now,
    },
    users::Caller,
};

/// A character to create, already validated.
#[derive(Debug, Clone, Default)]
pub struct NewCharacter {
    pub name: String,
    pub description: String,
    pub system_prompt: Option<String>,
    pub post_history_instructions: Option<String>,
    pub first_message: Option<String>,
    pub personality: String,
    pub scenario: String,
    pub mes_example: String,
    pub alternate_greetings: Vec<String>,
    pub tags: Vec<String>,
    pub creator: String,
    pub creator_notes: String,
    pub character_version: String,
    pub extensions: Map<String, Value>,
    pub samplers: Samplers,
}

impl NewCharacter {
    /// The row for `owner`, created now.
    pub fn into_row(self, owner: &str) -> Character {
        let NewCharacter {
            name,
            description,
            system_prompt,
            post_history_instructions,
            first_message,
            personality,
            scenario,
            mes_example,
            alternate_greetings,
            tags,
            creator,
            creator_notes,
            character_version,
            extensions,
            samplers,
        } = self;
        Character {
            description,
            system_prompt,
            post_history_instructions,
            first_message,
            personality,
            scenario,
            mes_example,
            alternate_greetings: json_list(&alternate_greetings),
            tags: json_list(&tags),
            creator,
            creator_notes,
            character_version,
            extensions: Value::Object(extensions).to_string(),
            samplers: samplers.to_stored(),
            ..Character::new(owner, name)
        }
    }
}

/// A list of strings as the JSON text a character row keeps it in.
pub fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub async fn create(store: &impl AsRef<Store>, caller: &Caller, new: NewCharacter) -> Result<Character> {
    let row = new.into_row(&caller.user_id);
    store.as_ref().insert_character(&row).await?;
    Ok(row)
}

pub async fn get(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<Character> {
    let store = store.as_ref();
    store.character(&caller.user_id, id).await?.ok_or_else(|| Error::not_found("character", id))
}

pub async fn list(
    store: &impl AsRef<Store>,
    caller: &Caller,
    filter: &CharacterFilter,
    page: &PageRequest,
) -> Result<Page<Character>> {
    Ok(store.as_ref().list_characters(&caller.user_id, filter, page).await?)
}

/// Applies `changes` (`None` fields stay as they are) and stamps the change.
pub async fn update(
    store: &impl AsRef<Store>,
    caller: &Caller,
    id: &str,
    changes: CharacterChanges,
) -> Result<Character> {
    let store = store.as_ref();
    let changes = CharacterChanges { updated_at: Some(now()), ..changes };
    store.update_character(&caller.user_id, id, &changes).await?.ok_or_else(|| Error::not_found("character", id))
}

/// Refused while chats use the character, so no stored message is lost by
/// accident.
pub async fn delete(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<()> {
    let store = store.as_ref();
    deleted("character", id, store.delete_character(&caller.user_id, id).await?)
}

/// A profile to create, already validated.
#[derive(Debug, Clone, Default)]
pub struct NewProfile {
    pub name: String,
    pub description: String,
}

pub async fn create_profile(store: &impl AsRef<Store>, caller: &Caller, new: NewProfile) -> Result<UserProfile> {
    let store = store.as_ref();
    let created_at = now();
    let row = UserProfile {
        id: new_id(),
        name: new.name,
        description: new.description,
        created_at,
        updated_at: created_at,
        user_id: caller.user_id.clone(),
    };
    store.insert_user_profile(&row).await?;
    Ok(row)
}

pub async fn get_profile(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<UserProfile> {
    let store = store.as_ref();
    store.user_profile(&caller.user_id, id).await?.ok_or_else(|| Error::not_found("user profile", id))
}

pub async fn list_profiles(
    store: &impl AsRef<Store>,
    caller: &Caller,
    page: &PageRequest,
) -> Result<Page<UserProfile>> {
    let store = store.as_ref();
    Ok(store.list_user_profiles(&caller.user_id, page).await?)
}

pub async fn update_profile(
    store: &impl AsRef<Store>,
    caller: &Caller,
    id: &str,
    changes: UserProfileChanges,
) -> Result<UserProfile> {
    let store = store.as_ref();
    let changes = UserProfileChanges { updated_at: Some(now()), ..changes };
    store.update_user_profile(&caller.user_id, id, &changes).await?.ok_or_else(|| Error::not_found("user profile", id))
}

pub async fn delete_profile(store: &impl AsRef<Store>, caller: &Caller, id: &str) -> Result<()> {
    let store = store.as_ref();
    deleted("user profile", id, store.delete_user_profile(&caller.user_id, id).await?)
}

fn deleted(what: &'static str, id: &str, outcome: DeleteOutcome) -> Result<()> {
    match outcome {
        DeleteOutcome::Deleted => Ok(()),
        DeleteOutcome::NotFound => Err(Error::not_found(what, id)),
        DeleteOutcome::InUse => Err(Error::InUse { what, id: id.to_owned() }),
    }
}
