//! The key-value settings table: global settings, and users' own under
//! names starting with `user:`.

use std::collections::HashMap;

use diesel::{prelude::*, upsert::excluded};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{Store, StoreError, StoreResult, now, schema::settings, with_conn};

impl Store {
    /// Every global setting by name (users' own settings, named `user:...`,
    /// are read one user at a time).
    pub async fn settings(&self) -> StoreResult<HashMap<String, String>> {
        let rows: Vec<(String, String)> = with_conn!(self, conn => settings::table
            .filter(settings::name.not_like("user:%"))
            .select((settings::name, settings::value))
            .load(conn)
            .await?);
        Ok(rows.into_iter().collect())
    }

    /// Every stored setting, global and per user (for re-encryption).
    pub async fn all_settings(&self) -> StoreResult<HashMap<String, String>> {
        let rows: Vec<(String, String)> = with_conn!(self, conn => settings::table
            .select((settings::name, settings::value))
            .load(conn)
            .await?);
        Ok(rows.into_iter().collect())
    }

    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(with_conn!(self, conn => settings::table
            .find(name)
            .select(settings::value)
            .get_result(conn)
            .await
            .optional()?))
    }

    /// Writes several settings at once (insert or replace).
    pub async fn put_settings(&self, values: &[(&str, &str)]) -> StoreResult<()> {
        self.change_settings(values, &[]).await
    }

    /// Writes `values` (insert or replace) and deletes `removed`, in one
    /// transaction: a key and the note saying why it went change together.
    pub async fn change_settings(&self, values: &[(&str, &str)], removed: &[&str]) -> StoreResult<()> {
        if values.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let updated_at = now();
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                for (name, value) in values {
                    diesel::insert_into(settings::table)
                        .values((settings::name.eq(*name), settings::value.eq(*value), settings::updated_at.eq(updated_at)))
                        .on_conflict(settings::name)
                        .do_update()
                        .set((settings::value.eq(excluded(settings::value)), settings::updated_at.eq(excluded(settings::updated_at))))
                        .execute(conn)
                        .await?;
                }
                if !removed.is_empty() {
                    diesel::delete(settings::table.filter(settings::name.eq_any(removed))).execute(conn).await?;
                }
                Ok(())
            })
            .await)
    }

    pub async fn delete_setting(&self, name: &str) -> StoreResult<bool> {
        let deleted = with_conn!(self, conn => diesel::delete(settings::table.find(name)).execute(conn).await?);
        Ok(deleted > 0)
    }
}
