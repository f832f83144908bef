//! Users and their token hashes.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{Page, PageRequest, Store, StoreResult, models::User, now, schema::users, with_conn};

impl Store {
    pub async fn insert_user(&self, row: &User) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::insert_into(users::table).values(row).execute(conn).await?;
        });
        Ok(())
    }

    /// The user whose token hash starts with `lookup`, revoked or not.
    pub async fn user_by_token_lookup(&self, lookup: &str) -> StoreResult<Option<User>> {
        Ok(with_conn!(self, conn => users::table
            .filter(users::token_lookup.eq(lookup))
            .select(User::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// A user by id or by name.
    pub async fn find_user(&self, id_or_name: &str) -> StoreResult<Option<User>> {
        Ok(with_conn!(self, conn => users::table
            .filter(users::id.eq(id_or_name).or(users::name.eq(id_or_name)))
            .select(User::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// Oldest first.
    pub async fn list_users(&self, page: &PageRequest) -> StoreResult<Page<User>> {
        let rows = with_conn!(self, conn => {
            let mut query = users::table.select(User::as_select()).order(users::id.asc()).into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(users::id.gt(after.clone()));
            }
            query.limit(page.fetch_limit()).load(conn).await?
        });
        Ok(page.finish(rows))
    }

    /// Gives the user a new token hash (the old one stops matching) and
    /// lifts any revocation.
    pub async fn set_user_token(&self, id: &str, lookup: &str, hash: &str) -> StoreResult<Option<User>> {
        Ok(with_conn!(self, conn => diesel::update(users::table.find(id))
            .set((
                users::token_lookup.eq(Some(lookup)),
                users::token_hash.eq(Some(hash)),
                users::revoked_at.eq(None::<chrono::NaiveDateTime>),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// Marks the user revoked; the token hash stays, so a revoked token is
    /// recognised (and refused) rather than unknown, and the server never
    /// falls back to single-user mode.
    pub async fn revoke_user(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(with_conn!(self, conn => diesel::update(users::table.find(id))
            .set(users::revoked_at.eq(Some(now())))
            .returning(User::as_returning())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// Whether any user was ever given a token: from then on every call
    /// needs one.
    pub async fn any_token_issued(&self) -> StoreResult<bool> {
        let issued: i64 = with_conn!(self, conn => users::table
            .filter(users::token_hash.is_not_null())
            .count()
            .get_result(conn)
            .await?);
        Ok(issued > 0)
    }
}
