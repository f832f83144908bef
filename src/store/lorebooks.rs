//! Lorebooks, always scoped to their owner, and their attachments.
//!
//! A book is one JSON document (`book`), read and written whole. Writes that
//! change part of it (an entry) are read-modify-write: they replace the
//! document only if it is still the one that was read (compare-and-swap), so
//! two concurrent edits cannot silently drop one another, on either backend
//! and without holding a lock across the edit.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Page, PageRequest, Store, StoreError, StoreResult,
    models::LorebookRow,
    schema::{character_lorebooks, characters, chat_lorebooks, lorebooks},
    with_conn,
};

/// Who uses some books, as (lorebook id, character or chat id) pairs, each
/// list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LorebookLinks {
    /// Characters the book is attached to, and characters whose card's own
    /// book it is (`characters.lorebook_id`).
    pub characters: Vec<(String, String)>,
    pub chats: Vec<(String, String)>,
}

impl Store {
    pub async fn lorebook(&self, owner: &str, id: &str) -> StoreResult<Option<LorebookRow>> {
        Ok(with_conn!(self, conn => lorebooks::table
            .find(id)
            .filter(lorebooks::user_id.eq(owner))
            .select(LorebookRow::as_select())
            .get_result(conn)
            .await
            .optional()?))
    }

    pub async fn insert_lorebook(&self, row: &LorebookRow) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::insert_into(lorebooks::table).values(row).execute(conn).await?;
        });
        Ok(())
    }

    /// Oldest first.
    pub async fn list_lorebooks(&self, owner: &str, page: &PageRequest) -> StoreResult<Page<LorebookRow>> {
        let rows = with_conn!(self, conn => {
            let mut query = lorebooks::table.filter(lorebooks::user_id.eq(owner)).select(LorebookRow::as_select()).order(lorebooks::id.asc()).into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(lorebooks::id.gt(after.clone()));
            }
            query.limit(page.fetch_limit()).load(conn).await?
        });
        Ok(page.finish(rows))
    }

    /// Replaces the book's name and document, only if its document is still
    /// `seen_book`. `None`: the book is gone or was changed meanwhile.
    pub async fn replace_lorebook_if_unchanged(
        &self,
        owner: &str,
        id: &str,
        seen_book: &str,
        name: &str,
        book: &str,
        updated_at: NaiveDateTime,
    ) -> StoreResult<Option<LorebookRow>> {
        Ok(with_conn!(self, conn => diesel::update(
                lorebooks::table.find(id).filter(lorebooks::user_id.eq(owner)).filter(lorebooks::book.eq(seen_book)),
            )
            .set((lorebooks::name.eq(name), lorebooks::book.eq(book), lorebooks::updated_at.eq(updated_at)))
            .returning(LorebookRow::as_returning())
            .get_result(conn)
            .await
            .optional()?))
    }

    /// Deletes the book; its attachments go with it (ON DELETE CASCADE), and
    /// characters whose card's book it was no longer point at it. `false`
    /// when the owner has no such book.
    pub async fn delete_lorebook(&self, owner: &str, id: &str, at: NaiveDateTime) -> StoreResult<bool> {
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                diesel::update(characters::table.filter(characters::user_id.eq(owner)).filter(characters::lorebook_id.eq(id)))
                    .set((characters::lorebook_id.eq(None::<String>), characters::updated_at.eq(at)))
                    .execute(conn)
                    .await?;
                let deleted = diesel::delete(lorebooks::table.find(id).filter(lorebooks::user_id.eq(owner))).execute(conn).await?;
                Ok(deleted > 0)
            })
            .await)
    }

    /// Who uses each of `ids` (books of `owner`'s).
    pub async fn lorebook_links(&self, owner: &str, ids: &[String]) -> StoreResult<LorebookLinks> {
        if ids.is_empty() {
            return Ok(LorebookLinks::default());
        }
        let (attached, own, chats) = with_conn!(self, conn => {
            let attached: Vec<(String, String)> = character_lorebooks::table
                .filter(character_lorebooks::lorebook_id.eq_any(ids))
                .select((character_lorebooks::lorebook_id, character_lorebooks::character_id))
                .load(conn)
                .await?;
            let own: Vec<(Option<String>, String)> = characters::table
                .filter(characters::user_id.eq(owner))
                .filter(characters::lorebook_id.eq_any(ids))
                .select((characters::lorebook_id, characters::id))
                .load(conn)
                .await?;
            let chats: Vec<(String, String)> = chat_lorebooks::table
                .filter(chat_lorebooks::lorebook_id.eq_any(ids))
                .select((chat_lorebooks::lorebook_id, chat_lorebooks::chat_session_id))
                .load(conn)
                .await?;
            (attached, own, chats)
        });
        let mut characters: Vec<(String, String)> = attached
            .into_iter()
            .chain(own.into_iter().filter_map(|(book, character)| Some((book?, character))))
            .collect();
        characters.sort();
        characters.dedup();
        let mut chats = chats;
        chats.sort();
        Ok(LorebookLinks { characters, chats })
    }

    /// Attaches the book to the character; attaching twice is one attachment.
    pub async fn attach_lorebook_to_character(&self, lorebook_id: &str, character_id: &str) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::insert_into(character_lorebooks::table)
                .values((character_lorebooks::character_id.eq(character_id), character_lorebooks::lorebook_id.eq(lorebook_id)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Attaches the book to the chat; attaching twice is one attachment.
    pub async fn attach_lorebook_to_chat(&self, lorebook_id: &str, chat_session_id: &str) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::insert_into(chat_lorebooks::table)
                .values((chat_lorebooks::chat_session_id.eq(chat_session_id), chat_lorebooks::lorebook_id.eq(lorebook_id)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Detaches the book from the character, both kinds of link: an
    /// attachment, and the book being the character's card's own.
    pub async fn detach_lorebook_from_character(
        &self,
        lorebook_id: &str,
        character_id: &str,
        at: NaiveDateTime,
    ) -> StoreResult<()> {
        with_conn!(self, conn => conn
            .transaction::<_, StoreError, _>(async |conn| {
                diesel::delete(
                    character_lorebooks::table
                        .filter(character_lorebooks::character_id.eq(character_id))
                        .filter(character_lorebooks::lorebook_id.eq(lorebook_id)),
                )
                .execute(conn)
                .await?;
                diesel::update(characters::table.find(character_id).filter(characters::lorebook_id.eq(lorebook_id)))
                    .set((characters::lorebook_id.eq(None::<String>), characters::updated_at.eq(at)))
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await)
    }

    pub async fn detach_lorebook_from_chat(&self, lorebook_id: &str, chat_session_id: &str) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::delete(
                chat_lorebooks::table
                    .filter(chat_lorebooks::chat_session_id.eq(chat_session_id))
                    .filter(chat_lorebooks::lorebook_id.eq(lorebook_id)),
            )
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}
