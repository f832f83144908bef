//! roleplay.v1.UserProfileService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, user_profile_service_server::UserProfileService},
    validate::{self, DESCRIPTION_MAX_CHARS, Listing, NAME_MAX_CHARS},
};
use crate::{
    characters::{self, NewProfile, UserProfileChanges},
    state::AppState,
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

#[tonic::async_trait]
impl UserProfileService for UserProfileApi {
    async fn create_user_profile(
        &self,
        request: Request<pb::CreateUserProfileRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let pb::CreateUserProfileRequest { name, description } = request.into_inner();
        let new = NewProfile {
            name: validate::required("name", name, NAME_MAX_CHARS)?,
            description: validate::at_most("description", description, DESCRIPTION_MAX_CHARS)?,
        };
        Ok(Response::new(characters::create_profile(&self.state, &caller, new).await?.into()))
    }

    async fn get_user_profile(
        &self,
        request: Request<pb::GetUserProfileRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        Ok(Response::new(characters::get_profile(&self.state, &caller, &id).await?.into()))
    }

    async fn list_user_profiles(
        &self,
        request: Request<pb::ListUserProfilesRequest>,
    ) -> Result<Response<pb::ListUserProfilesResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListUserProfilesRequest { page_size, page_token } = request.into_inner();
        let listing = Listing::new(PAGE_SCOPE, page_size, &page_token)?;
        let rows = characters::list_profiles(&self.state, &caller, &listing.page).await?;
        let (user_profiles, next_page_token) = listing.finish(rows, |p| &p.id);
        Ok(Response::new(pb::ListUserProfilesResponse { user_profiles, next_page_token }))
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
            updated_at: None,
        };
        Ok(Response::new(characters::update_profile(&self.state, &caller, &id, changes).await?.into()))
    }

    async fn delete_user_profile(
        &self,
        request: Request<pb::DeleteUserProfileRequest>,
    ) -> Result<Response<pb::DeleteUserProfileResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        characters::delete_profile(&self.state, &caller, &id).await?;
        Ok(Response::new(pb::DeleteUserProfileResponse {}))
    }
}
