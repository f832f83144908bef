//! Avatar images, stored once per content hash.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{Store, StoreResult, models::Avatar, schema::avatars, with_conn};

impl Store {
    /// Stores the image unless the same bytes are stored already.
    pub async fn insert_avatar(&self, avatar: &Avatar) -> StoreResult<()> {
        with_conn!(self, conn => diesel::insert_into(avatars::table)
            .values(avatar)
            .on_conflict(avatars::hash)
            .do_nothing()
            .execute(conn)
            .await?);
        Ok(())
    }

    pub async fn avatar(&self, hash: &str) -> StoreResult<Option<Avatar>> {
        Ok(with_conn!(self, conn => avatars::table
            .find(hash)
            .select(Avatar::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }
}
