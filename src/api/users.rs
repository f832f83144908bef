//! roleplay.v1.UserService.

use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

use super::{
    auth::{admin, caller},
    pb::{self, user_service_server::UserService},
    validate::Listing,
};
use crate::{
    state::AppState,
    users::{self, IssuedToken},
};

const PAGE_SCOPE: &str = "users";

pub struct UserApi {
    state: AppState,
}

impl UserApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

const ADMIN_ACTION: &str = "manage users";

fn issued(IssuedToken { user, token }: IssuedToken) -> Response<pb::IssuedToken> {
    Response::new(pb::IssuedToken { user: Some(user.into()), token: token.expose_secret().to_owned() })
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(users::find(&self.state, &caller.user_id).await?.into()))
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Result<Response<pb::IssuedToken>, Status> {
        admin(&request, ADMIN_ACTION)?;
        let pb::CreateUserRequest { name, admin } = request.into_inner();
        let created = users::create(&self.state, Some(&self.state.auth), &name, admin).await?;
        tracing::info!(user = %created.user.id, admin, "user created");
        Ok(issued(created))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        admin(&request, ADMIN_ACTION)?;
        let pb::ListUsersRequest { page_size, page_token } = request.into_inner();
        let listing = Listing::new(PAGE_SCOPE, page_size, &page_token)?;
        let rows = users::list(&self.state, &listing.page).await?;
        let (users, next_page_token) = listing.finish(rows, |u| &u.id);
        Ok(Response::new(pb::ListUsersResponse { users, next_page_token }))
    }

    async fn issue_token(&self, request: Request<pb::IssueTokenRequest>) -> Result<Response<pb::IssuedToken>, Status> {
        admin(&request, ADMIN_ACTION)?;
        let user = request.into_inner().user;
        let issued_token = users::issue_token(&self.state, Some(&self.state.auth), &user).await?;
        tracing::info!(user = %issued_token.user.id, "token issued");
        Ok(issued(issued_token))
    }

    async fn revoke_user(&self, request: Request<pb::RevokeUserRequest>) -> Result<Response<pb::User>, Status> {
        admin(&request, ADMIN_ACTION)?;
        let user = users::revoke(&self.state, &request.into_inner().user).await?;
        tracing::info!(user = %user.id, "user revoked");
        Ok(Response::new(user.into()))
    }
}
