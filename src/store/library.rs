//! Characters and user profiles: the things a chat is made of. Every
//! query is scoped to the owning user: another user's row is simply absent.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Page, PageRequest, Store, StoreResult,
    models::{Character, CharacterChanges, UserProfile, UserProfileChanges},
    schema::{characters, user_profiles},
    with_conn,
};

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
            .first(conn)
            .await
            .optional()?))
    }

    pub async fn list_characters(&self, owner: &str, page: &PageRequest) -> StoreResult<Page<Character>> {
        let rows = with_conn!(self, conn => {
            let mut query = characters::table.filter(characters::user_id.eq(owner)).select(Character::as_select()).order(characters::id.asc()).into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(characters::id.gt(after.clone()));
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
            .first(conn)
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
