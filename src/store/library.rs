//! Characters and user profiles: the things a chat is made of. Every
//! query is scoped to the owning user: another user's row is simply absent.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Page, PageRequest, Store, StoreError, StoreResult,
    models::{Character, CharacterChanges, LorebookRow, UserProfile, UserProfileChanges},
    schema::{characters, lorebooks, user_profiles},
    with_conn,
};

diesel::define_sql_function! {
    /// SQL's lower(): the same on both backends for these searches.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Which characters to list (every filter that is set must hold).
#[derive(Debug, Clone, Default)]
pub struct CharacterFilter {
    /// Has this tag (case-insensitive).
    pub tag: Option<String>,
    /// The name contains this text (case-insensitive).
    pub name_contains: Option<String>,
}

/// `text` matched literally by LIKE ... ESCAPE '\'.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// Chat sessions still refer to the row.
    InUse,
}

fn delete_outcome(result: StoreResult<usize>) -> StoreResult<DeleteOutcome> {
    match result {
        Ok(0) => Ok(DeleteOutcome::NotFound),
        Ok(_) => Ok(DeleteOutcome::Deleted),
        Err(err) if err.is_foreign_key_violation() => Ok(DeleteOutcome::InUse),
        Err(err) => Err(err),
    }
}

impl Store {
    pub async fn insert_character(&self, row: &Character) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::insert_into(characters::table).values(row).execute(conn).await?;
        });
        Ok(())
    }

    pub async fn character(&self, owner: &str, id: &str) -> StoreResult<Option<Character>> {
        Ok(with_conn!(self, conn => characters::table
            .find(id)
            .filter(characters::user_id.eq(owner))
            .select(Character::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// Stores an imported character with its card's lorebook, together.
    pub async fn insert_character_with_book(&self, row: &Character, book: Option<&LorebookRow>) -> StoreResult<()> {
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                if let Some(book) = book {
                    diesel::insert_into(lorebooks::table).values(book).execute(conn).await?;
                }
                diesel::insert_into(characters::table).values(row).execute(conn).await?;
                Ok(())
            })
            .await)
    }

    pub async fn list_characters(
        &self,
        owner: &str,
        filter: &CharacterFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Character>> {
        let tag = filter.tag.as_ref().map(|tag| {
            // Tags are a JSON array of strings written by serde_json, so a
            // tag is present exactly when its JSON string is.
            let needle = serde_json::Value::String(tag.to_lowercase()).to_string();
            format!("%{}%", like_escaped(&needle))
        });
        let name = filter.name_contains.as_ref().map(|text| format!("%{}%", like_escaped(&text.to_lowercase())));
        let rows = with_conn!(self, conn => {
            let mut query = characters::table.filter(characters::user_id.eq(owner)).select(Character::as_select()).order(characters::id.asc()).into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(characters::id.gt(after.clone()));
            }
            if let Some(tag) = &tag {
                query = query.filter(lower(characters::tags).like(tag.clone()).escape('\\'));
            }
            if let Some(name) = &name {
                query = query.filter(lower(characters::name).like(name.clone()).escape('\\'));
            }
            query.limit(page.fetch_limit()).load(conn).await?
        });
        Ok(page.finish(rows))
    }

    pub async fn update_character(
        &self,
        owner: &str,
        id: &str,
        changes: &CharacterChanges,
    ) -> StoreResult<Option<Character>> {
        Ok(with_conn!(self, conn => diesel::update(characters::table.find(id).filter(characters::user_id.eq(owner)))
            .set(changes)
            .returning(Character::as_returning())
            .get_result(conn)
            .await
            .optional()?))
    }

    pub async fn delete_character(&self, owner: &str, id: &str) -> StoreResult<DeleteOutcome> {
        let result: StoreResult<usize> =
            async { Ok(with_conn!(self, conn => diesel::delete(characters::table.find(id).filter(characters::user_id.eq(owner))).execute(conn).await?)) }
                .await;
        delete_outcome(result)
    }

    pub async fn insert_user_profile(&self, row: &UserProfile) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::insert_into(user_profiles::table).values(row).execute(conn).await?;
        });
        Ok(())
    }

    pub async fn user_profile(&self, owner: &str, id: &str) -> StoreResult<Option<UserProfile>> {
        Ok(with_conn!(self, conn => user_profiles::table
            .find(id)
            .filter(user_profiles::user_id.eq(owner))
            .select(UserProfile::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }

    pub async fn list_user_profiles(&self, owner: &str, page: &PageRequest) -> StoreResult<Page<UserProfile>> {
        let rows = with_conn!(self, conn => {
            let mut query = user_profiles::table.filter(user_profiles::user_id.eq(owner)).select(UserProfile::as_select()).order(user_profiles::id.asc()).into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(user_profiles::id.gt(after.clone()));
            }
            query.limit(page.fetch_limit()).load(conn).await?
        });
        Ok(page.finish(rows))
    }

    pub async fn update_user_profile(
        &self,
        owner: &str,
        id: &str,
        changes: &UserProfileChanges,
    ) -> StoreResult<Option<UserProfile>> {
        Ok(
            with_conn!(self, conn => diesel::update(user_profiles::table.find(id).filter(user_profiles::user_id.eq(owner)))
            .set(changes)
            .returning(UserProfile::as_returning())
            .get_result(conn)
            .await
            .optional()?),
        )
    }

    pub async fn delete_user_profile(&self, owner: &str, id: &str) -> StoreResult<DeleteOutcome> {
        let result: StoreResult<usize> =
            async { Ok(with_conn!(self, conn => diesel::delete(user_profiles::table.find(id).filter(user_profiles::user_id.eq(owner))).execute(conn).await?)) }
                .await;
        delete_outcome(result)
    }
}
