//! roleplay.v1.LorebookService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, lorebook_service_server::LorebookService},
    validate::{self, Listing, MAX_TOKENS_MAX},
};
use crate::{
    error::Error,
    lorebooks::{self, DESCRIPTION_MAX_CHARS, EntryInput, LorebookChanges, NAME_MAX_CHARS, NewLorebook, Target},
    state::AppState,
};

const PAGE_SCOPE: &str = "lorebooks";
/// History messages a book may scan: SillyTavern's own maximum.
const SCAN_DEPTH_MAX: u32 = 1_000;

pub struct LorebookApi {
    state: AppState,
}

impl LorebookApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl LorebookService for LorebookApi {
    async fn create_lorebook(
        &self,
        request: Request<pb::CreateLorebookRequest>,
    ) -> Result<Response<pb::Lorebook>, Status> {
        let caller = caller(&request)?;
        let pb::CreateLorebookRequest { name, description, scan_depth, token_budget, recursive_scanning } =
            request.into_inner();
        let new = NewLorebook {
            name: validate::required("name", name, NAME_MAX_CHARS)?,
            description: validate::at_most("description", description, DESCRIPTION_MAX_CHARS)?,
            scan_depth: checked_scan_depth(scan_depth)?,
            token_budget: checked_token_budget(token_budget)?,
            recursive_scanning,
        };
        Ok(Response::new(lorebooks::create(&self.state, &caller, new).await?.into()))
    }

    async fn get_lorebook(&self, request: Request<pb::GetLorebookRequest>) -> Result<Response<pb::Lorebook>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        Ok(Response::new(lorebooks::get(&self.state, &caller, &id).await?.into()))
    }

    async fn list_lorebooks(
        &self,
        request: Request<pb::ListLorebooksRequest>,
    ) -> Result<Response<pb::ListLorebooksResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListLorebooksRequest { page_size, page_token } = request.into_inner();
        let listing = Listing::new(PAGE_SCOPE, page_size, &page_token)?;
        let books = lorebooks::list(&self.state, &caller, &listing.page).await?;
        let (lorebooks, next_page_token) = listing.finish(books, |b| &b.id);
        Ok(Response::new(pb::ListLorebooksResponse { lorebooks, next_page_token }))
    }

    async fn update_lorebook(
        &self,
        request: Request<pb::UpdateLorebookRequest>,
    ) -> Result<Response<pb::Lorebook>, Status> {
        let caller = caller(&request)?;
        let pb::UpdateLorebookRequest { id, name, description, scan_depth, token_budget, recursive_scanning } =
            request.into_inner();
        let id = validate::id("id", &id)?;
        let changes = LorebookChanges {
            name: name.map(|n| validate::required("name", n, NAME_MAX_CHARS)).transpose()?,
            description: validate::optional_at_most("description", description, DESCRIPTION_MAX_CHARS)?,
            scan_depth: checked_scan_depth(scan_depth)?,
            token_budget: checked_token_budget(token_budget)?,
            recursive_scanning,
        };
        Ok(Response::new(lorebooks::update(&self.state, &caller, &id, changes).await?.into()))
    }

    async fn delete_lorebook(
        &self,
        request: Request<pb::DeleteLorebookRequest>,
    ) -> Result<Response<pb::DeleteLorebookResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        lorebooks::delete(&self.state, &caller, &id).await?;
        Ok(Response::new(pb::DeleteLorebookResponse {}))
    }

    async fn create_lorebook_entry(
        &self,
        request: Request<pb::CreateLorebookEntryRequest>,
    ) -> Result<Response<pb::LorebookEntry>, Status> {
        let caller = caller(&request)?;
        let pb::CreateLorebookEntryRequest { lorebook_id, entry } = request.into_inner();
        let lorebook_id = validate::id("lorebook_id", &lorebook_id)?;
        let input = entry_input(entry)?;
        Ok(Response::new(lorebooks::create_entry(&self.state, &caller, &lorebook_id, input).await?.into()))
    }

    async fn update_lorebook_entry(
        &self,
        request: Request<pb::UpdateLorebookEntryRequest>,
    ) -> Result<Response<pb::LorebookEntry>, Status> {
        let caller = caller(&request)?;
        let pb::UpdateLorebookEntryRequest { lorebook_id, entry_id, entry } = request.into_inner();
        let lorebook_id = validate::id("lorebook_id", &lorebook_id)?;
        let input = entry_input(entry)?;
        Ok(Response::new(lorebooks::update_entry(&self.state, &caller, &lorebook_id, entry_id, input).await?.into()))
    }

    async fn delete_lorebook_entry(
        &self,
        request: Request<pb::DeleteLorebookEntryRequest>,
    ) -> Result<Response<pb::DeleteLorebookEntryResponse>, Status> {
        let caller = caller(&request)?;
        let pb::DeleteLorebookEntryRequest { lorebook_id, entry_id } = request.into_inner();
        let lorebook_id = validate::id("lorebook_id", &lorebook_id)?;
        lorebooks::delete_entry(&self.state, &caller, &lorebook_id, entry_id).await?;
        Ok(Response::new(pb::DeleteLorebookEntryResponse {}))
    }

    async fn import_lorebook(
        &self,
        request: Request<pb::ImportLorebookRequest>,
    ) -> Result<Response<pb::Lorebook>, Status> {
        let caller = caller(&request)?;
        let pb::ImportLorebookRequest { data, filename } = request.into_inner();
        let filename = validate::at_most("filename", filename, NAME_MAX_CHARS)?;
        Ok(Response::new(lorebooks::import(&self.state, &caller, &data, &filename).await?.into()))
    }

    async fn export_lorebook(
        &self,
        request: Request<pb::ExportLorebookRequest>,
    ) -> Result<Response<pb::ExportLorebookResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        let exported = lorebooks::export(&self.state, &caller, &id).await?;
        Ok(Response::new(pb::ExportLorebookResponse { data: exported.data, filename: exported.filename }))
    }

    async fn attach_lorebook(
        &self,
        request: Request<pb::AttachLorebookRequest>,
    ) -> Result<Response<pb::Lorebook>, Status> {
        use pb::attach_lorebook_request::Target as T;
        let caller = caller(&request)?;
        let pb::AttachLorebookRequest { lorebook_id, target } = request.into_inner();
        let lorebook_id = validate::id("lorebook_id", &lorebook_id)?;
        let target = checked_target(target.map(|t| match t {
            T::CharacterId(id) => Target::Character(id),
            T::ChatSessionId(id) => Target::ChatSession(id),
        }))?;
        Ok(Response::new(lorebooks::attach(&self.state, &caller, &lorebook_id, &target).await?.into()))
    }

    async fn detach_lorebook(
        &self,
        request: Request<pb::DetachLorebookRequest>,
    ) -> Result<Response<pb::Lorebook>, Status> {
        use pb::detach_lorebook_request::Target as T;
        let caller = caller(&request)?;
        let pb::DetachLorebookRequest { lorebook_id, target } = request.into_inner();
        let lorebook_id = validate::id("lorebook_id", &lorebook_id)?;
        let target = checked_target(target.map(|t| match t {
            T::CharacterId(id) => Target::Character(id),
            T::ChatSessionId(id) => Target::ChatSession(id),
        }))?;
        Ok(Response::new(lorebooks::detach(&self.state, &caller, &lorebook_id, &target).await?.into()))
    }
}

fn entry_input(entry: Option<pb::LorebookEntry>) -> Result<EntryInput, Status> {
    let entry = entry.ok_or_else(|| Error::invalid("entry", "is required"))?;
    Ok(EntryInput::try_from(entry)?)
}

/// The target oneof, which must be set, with a well-formed id.
fn checked_target(target: Option<Target>) -> Result<Target, Status> {
    match target {
        Some(Target::Character(id)) => Ok(Target::Character(validate::id("character_id", &id)?)),
        Some(Target::ChatSession(id)) => Ok(Target::ChatSession(validate::id("chat_session_id", &id)?)),
        None => Err(Error::invalid("target", "is required: set character_id or chat_session_id").into()),
    }
}

fn checked_scan_depth(value: Option<u32>) -> Result<Option<u32>, Status> {
    match value {
        Some(n) if n > SCAN_DEPTH_MAX => {
            Err(Error::invalid("scan_depth", format!("must be at most {SCAN_DEPTH_MAX}, got {n}")).into())
        }
        other => Ok(other),
    }
}

fn checked_token_budget(value: Option<u32>) -> Result<Option<u32>, Status> {
    match value {
        Some(n) if n > MAX_TOKENS_MAX => {
            Err(Error::invalid("token_budget", format!("must be at most {MAX_TOKENS_MAX}, got {n}")).into())
        }
        other => Ok(other),
    }
}
