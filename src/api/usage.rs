//! roleplay.v1.UsageService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    convert::naive_time,
    pb::{self, usage_service_server::UsageService},
    validate::{self, Listing},
};
use crate::{
    error::Error,
    state::AppState,
    usage::{self, UsageGrouping, UsageTotal},
};

pub struct UsageApi {
    state: AppState,
}

impl UsageApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn user_filter(user_id: String) -> Result<Option<String>, Status> {
    if user_id.is_empty() { Ok(None) } else { Ok(Some(validate::id("user_id", &user_id)?)) }
}

#[tonic::async_trait]
impl UsageService for UsageApi {
    async fn get_usage(&self, request: Request<pb::GetUsageRequest>) -> Result<Response<pb::GetUsageResponse>, Status> {
        let caller = caller(&request)?;
        let pb::GetUsageRequest { from, to, group_by, user_id } = request.into_inner();
        let grouping = match pb::UsageGrouping::try_from(group_by) {
            Ok(pb::UsageGrouping::Unspecified | pb::UsageGrouping::Day) => UsageGrouping::Day,
            Ok(pb::UsageGrouping::Model) => UsageGrouping::Model,
            Err(_) => return Err(Error::invalid(format!("group_by {group_by}"), "is not a known grouping").into()),
        };
        let state = &self.state;
        let query =
            usage::query(state, &caller, user_filter(user_id)?, naive_time("from", from)?, naive_time("to", to)?)
                .await?;
        let (totals, overall) = usage::totals(state, &query, grouping).await?;
        Ok(Response::new(pb::GetUsageResponse {
            totals: totals.into_iter().map(Into::into).collect(),
            overall: Some(UsageTotal::into(overall)),
        }))
    }

    async fn list_usage_records(
        &self,
        request: Request<pb::ListUsageRecordsRequest>,
    ) -> Result<Response<pb::ListUsageRecordsResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListUsageRecordsRequest { from, to, user_id, page_size, page_token } = request.into_inner();
        let state = &self.state;
        let query =
            usage::query(state, &caller, user_filter(user_id)?, naive_time("from", from)?, naive_time("to", to)?)
                .await?;
        // Tokens are bound to the user they page, so they cannot cross over.
        let listing = Listing::new(format!("usage:{}", query.user_id), page_size, &page_token)?;
        let rows = usage::records(state, &query, &listing.page).await?;
        let (records, next_page_token) = listing.finish(rows, |r| &r.id);
        Ok(Response::new(pb::ListUsageRecordsResponse { records, next_page_token }))
    }
}
