//! Hot statements written out with a fixed text, so that each connection
//! prepares them once and then only binds and runs them.
//!
//! diesel keeps a statement prepared only when its text cannot vary, and it
//! counts every UPDATE and every `ON CONFLICT .. DO UPDATE` as varying
//! (their changesets may skip fields). SQLite then parsed and planned these
//! again at every run: the checkpoint's upsert ran for every piece of every
//! running reply, a send touched its chat, and every reply's outcome was
//! written. The ones here have one text and a static query id.

use chrono::NaiveDateTime;
use diesel::{
    QueryResult,
    backend::Backend,
    query_builder::{AstPass, QueryFragment, QueryId},
    serialize::ToSql,
    sql_types::{BigInt, Bool, HasSqlType, Integer, Nullable, SqlType, Text, Timestamp},
};

use super::models::ReplyOutcome;

/// Gives a statement type a static query id (the key diesel keeps its
/// prepared statement under) and diesel's run methods (`execute`).
macro_rules! fixed_statement {
    ($statement:ident) => {
        impl QueryId for $statement<'_> {
            type QueryId = $statement<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $statement<'_> {}
    };
}

/// Stores a piece of a running reply's text, or replaces the piece at the
/// same offset (a checkpoint retried after a commit that was in doubt).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpsertPiece<'a> {
    pub message_id: &'a str,
    pub from: i64,
    pub piece: &'a str,
}

fixed_statement!(UpsertPiece);

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

/// Sets a chat's last activity (chats are listed by it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TouchChat<'a> {
    pub chat_session_id: &'a str,
    pub at: &'a NaiveDateTime,
}

fixed_statement!(TouchChat);

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

/// Holds a chat's reply epoch for the rest of the transaction if it is
/// still `epoch` (one row changed) and changes nothing otherwise: another
/// replica took the chat over. On PostgreSQL the row stays locked until the
/// commit, so a takeover's epoch bump waits for this transaction and then
/// sees what it wrote (see [`super::Fence`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HoldEpoch<'a> {
    pub chat_session_id: &'a str,
    pub epoch: i64,
}

fixed_statement!(HoldEpoch);

impl<DB> QueryFragment<DB> for HoldEpoch<'_>
where
    DB: Backend,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE reply_epochs SET epoch = epoch WHERE chat_session_id = ");
        out.push_bind_param::<Text, _>(self.chat_session_id)?;
        out.push_sql(" AND epoch = ");
        out.push_bind_param::<BigInt, _>(&self.epoch)?;
        Ok(())
    }
}

/// One column a [`FinishReply`] may set: whether to, and to what.
#[derive(Debug, Clone, Copy)]
struct MaybeSet<T> {
    set: bool,
    value: Option<T>,
}

impl<T> MaybeSet<T> {
    /// A column that is set (to NULL when the value is `None`) or left as
    /// it is, from a changeset's field: `None` leaves it.
    fn nullable(field: Option<Option<T>>) -> Self {
        Self { set: field.is_some(), value: field.flatten() }
    }

    /// A column that is set when the field is `Some`, never to NULL.
    fn value(field: Option<T>) -> Self {
        Self { set: field.is_some(), value: field }
    }
}

/// Writes how a reply ended to its row: a [`ReplyOutcome`] as one fixed
/// statement, each column `CASE WHEN <set> THEN <value> ELSE <column> END`,
/// so that the columns an outcome leaves alone need no other text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinishReply<'a> {
    id: &'a str,
    content: MaybeSet<&'a str>,
    status: MaybeSet<&'a str>,
    model: MaybeSet<&'a str>,
    prompt_tokens: MaybeSet<i32>,
    completion_tokens: MaybeSet<i32>,
    error: MaybeSet<&'a str>,
    finish_reason: MaybeSet<&'a str>,
    duration_ms: MaybeSet<i64>,
    updated_at: MaybeSet<&'a NaiveDateTime>,
    provider: MaybeSet<&'a str>,
}

impl<'a> FinishReply<'a> {
    pub fn new(id: &'a str, outcome: &'a ReplyOutcome) -> Self {
        // Every field named: one added to the outcome must be written here.
        let ReplyOutcome {
            content,
            status,
            model,
            prompt_tokens,
            completion_tokens,
            error,
            finish_reason,
            duration_ms,
            updated_at,
            provider,
        } = outcome;
        let text = |field: &'a Option<Option<String>>| MaybeSet::nullable(field.as_ref().map(Option::as_deref));
        Self {
            id,
            content: MaybeSet::value(content.as_deref()),
            status: MaybeSet::value(status.as_deref()),
            model: MaybeSet::value(model.as_deref()),
            prompt_tokens: MaybeSet::nullable(*prompt_tokens),
            completion_tokens: MaybeSet::nullable(*completion_tokens),
            error: text(error),
            finish_reason: text(finish_reason),
            duration_ms: MaybeSet::nullable(*duration_ms),
            updated_at: MaybeSet::value(updated_at.as_ref()),
            provider: text(provider),
        }
    }
}

fixed_statement!(FinishReply);

/// `column = CASE WHEN <set> THEN <value> ELSE column END`.
fn set_column<'b, DB, ST, T>(out: &mut AstPass<'_, 'b, DB>, column: &str, field: &'b MaybeSet<T>) -> QueryResult<()>
where
    DB: Backend + HasSqlType<ST> + HasSqlType<Bool>,
    ST: SqlType,
    bool: ToSql<Bool, DB>,
    Option<T>: ToSql<Nullable<ST>, DB>,
{
    out.push_sql(column);
    out.push_sql(" = CASE WHEN ");
    out.push_bind_param::<Bool, _>(&field.set)?;
    out.push_sql(" THEN ");
    out.push_bind_param::<Nullable<ST>, _>(&field.value)?;
    out.push_sql(" ELSE ");
    out.push_sql(column);
    out.push_sql(" END");
    Ok(())
}

impl<DB> QueryFragment<DB> for FinishReply<'_>
where
    DB: Backend + HasSqlType<Bool>,
    str: ToSql<Text, DB>,
    bool: ToSql<Bool, DB>,
    i32: ToSql<Integer, DB>,
    i64: ToSql<BigInt, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE messages SET ");
        set_column::<_, Text, _>(&mut out, "content", &self.content)?;
        out.push_sql(", ");
        set_column::<_, Text, _>(&mut out, "status", &self.status)?;
        out.push_sql(", ");
        set_column::<_, Text, _>(&mut out, "model", &self.model)?;
        out.push_sql(", ");
        set_column::<_, Integer, _>(&mut out, "prompt_tokens", &self.prompt_tokens)?;
        out.push_sql(", ");
        set_column::<_, Integer, _>(&mut out, "completion_tokens", &self.completion_tokens)?;
        out.push_sql(", ");
        set_column::<_, Text, _>(&mut out, "error", &self.error)?;
        out.push_sql(", ");
        set_column::<_, Text, _>(&mut out, "finish_reason", &self.finish_reason)?;
        out.push_sql(", ");
        set_column::<_, BigInt, _>(&mut out, "duration_ms", &self.duration_ms)?;
        out.push_sql(", ");
        set_column::<_, Timestamp, _>(&mut out, "updated_at", &self.updated_at)?;
        out.push_sql(", ");
        set_column::<_, Text, _>(&mut out, "provider", &self.provider)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        Ok(())
    }
}
