//! Usage records: written with each reply's outcome (see
//! [`Store::finish_reply`]), read back as totals or as a list.

use chrono::NaiveDateTime;
use diesel::{
    dsl::{count_star, sum},
    prelude::*,
};
use diesel_async::RunQueryDsl;

use super::{Page, PageRequest, Store, StoreResult, models::UsageRecord, schema::usage_records, with_conn};

/// Whose records, and the time range `[from, to)`.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub user_id: String,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGrouping {
    Day,
    Model,
}

/// Totals of one group and one outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageGroupRow {
    pub key: String,
    pub outcome: String,
    pub generations: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
}

type GroupTuple = (String, String, i64, Option<i64>, Option<i64>, Option<f64>);

/// The filtered, grouped totals query; `$key` is the grouping column.
macro_rules! totals_by {
    ($store:expr, $query:expr, $key:expr) => {
        with_conn!($store, conn => usage_records::table
            .filter(usage_records::user_id.eq(&$query.user_id))
            .filter(usage_records::created_at.ge($query.from))
            .filter(usage_records::created_at.lt($query.to))
            .group_by(($key, usage_records::outcome))
            .select((
                $key,
                usage_records::outcome,
                count_star(),
                sum(usage_records::prompt_tokens),
                sum(usage_records::completion_tokens),
                sum(usage_records::cost),
            ))
            .order_by($key)
            .load::<GroupTuple>(conn)
            .await?)
    };
}

impl Store {
    /// Totals per group and outcome, in key order, summed by the database.
    pub async fn usage_totals(&self, query: &UsageQuery, grouping: UsageGrouping) -> StoreResult<Vec<UsageGroupRow>> {
        let rows: Vec<GroupTuple> = match grouping {
            UsageGrouping::Day => totals_by!(self, query, usage_records::day),
            UsageGrouping::Model => totals_by!(self, query, usage_records::model),
        };
        Ok(rows
            .into_iter()
            .map(|(key, outcome, generations, prompt, completion, cost)| UsageGroupRow {
                key,
                outcome,
                generations,
                prompt_tokens: prompt.unwrap_or(0),
                completion_tokens: completion.unwrap_or(0),
                cost: cost.unwrap_or(0.0),
            })
            .collect())
    }

    /// Newest first.
    pub async fn list_usage_records(&self, query: &UsageQuery, page: &PageRequest) -> StoreResult<Page<UsageRecord>> {
        let rows = with_conn!(self, conn => {
            let mut select = usage_records::table
                .filter(usage_records::user_id.eq(&query.user_id))
                .filter(usage_records::created_at.ge(query.from))
                .filter(usage_records::created_at.lt(query.to))
                .select(UsageRecord::as_select())
                .order(usage_records::id.desc())
                .into_boxed();
            if let Some(before) = &page.after {
                select = select.filter(usage_records::id.lt(before.clone()));
            }
            select.limit(page.fetch_limit()).load(conn).await?
        });
        Ok(page.finish(rows))
    }
}
