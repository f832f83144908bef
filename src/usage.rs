//! Usage: what each generation used and cost, recorded with its outcome, and
//! the totals GetUsage reports.

use chrono::{Duration as ChronoDuration, NaiveDateTime};

pub use crate::store::UsageGrouping;
use crate::{
    error::{Error, Result},
    store::{
        Page, PageRequest, Store, UsageGroupRow, UsageQuery,
        models::{MessageStatus, UsageRecord},
    },
    users::Caller,
};

/// The range GetUsage covers when `from` is not given.
const DEFAULT_RANGE_DAYS: i64 = 30;

/// Totals of one group (or of all of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageTotal {
    pub key: String,
    pub generations: i64,
    pub completed: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
}

impl UsageTotal {
    fn add(&mut self, row: &UsageGroupRow) {
        self.generations += row.generations;
        if MessageStatus::parse(&row.outcome) == MessageStatus::Completed {
            self.completed += row.generations;
        }
        self.prompt_tokens += row.prompt_tokens;
        self.completion_tokens += row.completion_tokens;
        self.cost += row.cost;
    }
}

/// Whose usage, over which time: the caller's own unless an admin names
/// another user.
pub async fn query(
    store: &impl AsRef<Store>,
    caller: &Caller,
    user_id: Option<String>,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> Result<UsageQuery> {
    let store = store.as_ref();
    let user_id = match user_id {
        None => caller.user_id.clone(),
        Some(id) if id == caller.user_id => id,
        Some(id) => {
            caller.require_admin("read another user's usage")?;
            store.find_user(&id).await?.ok_or_else(|| Error::not_found("user", &id))?.id
        }
    };
    let to = to.unwrap_or_else(crate::store::now);
    let from = from.unwrap_or(to - ChronoDuration::days(DEFAULT_RANGE_DAYS));
    if from >= to {
        return Err(Error::invalid(format!("from ({from})"), format!("must be before to ({to})")));
    }
    Ok(UsageQuery { user_id, from, to })
}

/// Totals per group, in key order, and overall.
pub async fn totals(
    store: &impl AsRef<Store>,
    query: &UsageQuery,
    grouping: UsageGrouping,
) -> Result<(Vec<UsageTotal>, UsageTotal)> {
    let store = store.as_ref();
    let rows = store.usage_totals(query, grouping).await?;
    let mut groups: Vec<UsageTotal> = Vec::new();
    let mut overall = UsageTotal::default();
    for row in &rows {
        // Rows come ordered by key, so a group's rows are adjacent.
        match groups.last_mut() {
            Some(group) if group.key == row.key => group.add(row),
            _ => {
                let mut group = UsageTotal { key: row.key.clone(), ..UsageTotal::default() };
                group.add(row);
                groups.push(group);
            }
        }
        overall.add(row);
    }
    Ok((groups, overall))
}

pub async fn records(store: &impl AsRef<Store>, query: &UsageQuery, page: &PageRequest) -> Result<Page<UsageRecord>> {
    let store = store.as_ref();
    Ok(store.list_usage_records(query, page).await?)
}
