//! Hot statements written out with a fixed text, so that each connection
//! prepares them once and then only binds and runs them.
//!
//! diesel keeps a statement prepared only when its text cannot vary, and it
//! counts every UPDATE and every `ON CONFLICT .. DO UPDATE` as varying
//! (their changesets may skip fields). SQLite then parsed and planned these
//! again at every run: the checkpoint's upsert ran for every piece of every
//! running reply, and a send touched its chat. The ones here have one text
//! and a static query id.

use chrono::NaiveDateTime;
use diesel::{
    QueryResult,
    backend::Backend,
    query_builder::{AstPass, QueryFragment, QueryId},
    serialize::ToSql,
    sql_types::{BigInt, Text, Timestamp},
};

/// Stores a piece of a running reply's text, or replaces the piece at the
/// same offset (a checkpoint retried after a commit that was in doubt).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpsertPiece<'a> {
    pub message_id: &'a str,
    pub from: i64,
    pub piece: &'a str,
}

impl QueryId for UpsertPiece<'_> {
    type QueryId = UpsertPiece<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for UpsertPiece<'_>
where
    DB: Backend,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO reply_fragments (message_id, byte_offset, piece) VALUES (");
        out.push_bind_param::<Text, _>(self.message_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.from)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.piece)?;
        out.push_sql(") ON CONFLICT (message_id, byte_offset) DO UPDATE SET piece = excluded.piece");
        Ok(())
    }
}

impl<Conn> diesel::RunQueryDsl<Conn> for UpsertPiece<'_> {}

/// Sets a chat's last activity (chats are listed by it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TouchChat<'a> {
    pub chat_session_id: &'a str,
    pub at: &'a NaiveDateTime,
}

impl QueryId for TouchChat<'_> {
    type QueryId = TouchChat<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for TouchChat<'_>
where
    DB: Backend,
    str: ToSql<Text, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE chat_sessions SET updated_at = ");
        out.push_bind_param::<Timestamp, _>(self.at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.chat_session_id)?;
        Ok(())
    }
}

impl<Conn> diesel::RunQueryDsl<Conn> for TouchChat<'_> {}
