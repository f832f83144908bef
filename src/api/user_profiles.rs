//! roleplay.v1.UserProfileService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, user_profile_service_server::UserProfileService},
    validate::{self, DESCRIPTION_MAX_CHARS, NAME_MAX_CHARS},
};
use crate::{
    error::Error,
    state::AppState,
    store::{
        DeleteOutcome,
        models::{UserProfile, UserProfileChanges},
        new_id, now,
    },
};

const PAGE_SCOPE: &str = "user_profiles";

pub struct UserProfileApi {
    state: AppState,
}

impl UserProfileApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn found(row: Option<UserProfile>, id: &str) -> Result<Response<pb::UserProfile>, Status> {
    row.map(|p| Response::new(p.into())).ok_or_else(|| Error::not_found("user profile", id).into())
}

#[tonic::async_trait]
impl UserProfileService for UserProfileApi {
    async fn create_user_profile(
        &self,
        request: Request<pb::CreateUserProfileRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let pb::CreateUserProfileRequest { name, description } = request.into_inner();
        let created_at = now();
        let row = UserProfile {
            id: new_id(),
            name: validate::required("name", name, NAME_MAX_CHARS)?,
            description: validate::at_most("description", description, DESCRIPTION_MAX_CHARS)?,
            created_at,
            updated_at: created_at,
            user_id: caller.user_id,
        };
        self.state.store.insert_user_profile(&row).await.map_err(Error::from)?;
        Ok(Response::new(row.into()))
    }

    async fn get_user_profile(
        &self,
        request: Request<pb::GetUserProfileRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        found(self.state.store.user_profile(&caller.user_id, &id).await.map_err(Error::from)?, &id)
    }

    async fn list_user_profiles(
        &self,
        request: Request<pb::ListUserProfilesRequest>,
    ) -> Result<Response<pb::ListUserProfilesResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListUserProfilesRequest { page_size, page_token } = request.into_inner();
        let page = validate::page(PAGE_SCOPE, page_size, &page_token)?;
        let rows = self.state.store.list_user_profiles(&caller.user_id, &page).await.map_err(Error::from)?;
        let next_page_token =
            validate::next_page_token(PAGE_SCOPE, rows.has_more, rows.items.last().map(|p| p.id.as_str()));
        Ok(Response::new(pb::ListUserProfilesResponse {
            user_profiles: rows.items.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn update_user_profile(
        &self,
        request: Request<pb::UpdateUserProfileRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let pb::UpdateUserProfileRequest { id, name, description } = request.into_inner();
        let id = validate::id("id", &id)?;
        let changes = UserProfileChanges {
            name: name.map(|n| validate::required("name", n, NAME_MAX_CHARS)).transpose()?,
            description: validate::optional_at_most("description", description, DESCRIPTION_MAX_CHARS)?,
            updated_at: Some(now()),
        };
        found(self.state.store.update_user_profile(&caller.user_id, &id, &changes).await.map_err(Error::from)?, &id)
    }

    async fn delete_user_profile(
        &self,
        request: Request<pb::DeleteUserProfileRequest>,
    ) -> Result<Response<pb::DeleteUserProfileResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        match self.state.store.delete_user_profile(&caller.user_id, &id).await.map_err(Error::from)? {
            DeleteOutcome::Deleted => Ok(Response::new(pb::DeleteUserProfileResponse {})),
            DeleteOutcome::NotFound => Err(Error::not_found("user profile", id).into()),
            DeleteOutcome::InUse => Err(Status::failed_precondition(format!(
                "user profile {id} is used by chat sessions; delete those chat sessions first"
            ))),
        }
    }
}
