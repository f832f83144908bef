//! roleplay.v1.CharacterService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, character_service_server::CharacterService},
    validate::{self, DESCRIPTION_MAX_CHARS, NAME_MAX_CHARS, PROMPT_MAX_CHARS},
};
use crate::{
    error::Error,
    state::AppState,
    store::{
        DeleteOutcome,
        models::{Character, CharacterChanges},
        new_id, now,
    },
};

const PAGE_SCOPE: &str = "characters";

pub struct CharacterApi {
    state: AppState,
}

impl CharacterApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn found(row: Option<Character>, id: &str) -> Result<Response<pb::Character>, Status> {
    row.map(|c| Response::new(c.into())).ok_or_else(|| Error::not_found("character", id).into())
}

#[tonic::async_trait]
impl CharacterService for CharacterApi {
    async fn create_character(
        &self,
        request: Request<pb::CreateCharacterRequest>,
    ) -> Result<Response<pb::Character>, Status> {
        let caller = caller(&request)?;
        let pb::CreateCharacterRequest { name, description, system_prompt, post_history_instructions, first_message } =
            request.into_inner();
        let created_at = now();
        let row = Character {
            id: new_id(),
            name: validate::required("name", name, NAME_MAX_CHARS)?,
            description: validate::at_most("description", description, DESCRIPTION_MAX_CHARS)?,
            system_prompt: validate::optional_at_most("system_prompt", system_prompt, PROMPT_MAX_CHARS)?
                .filter(|s| !s.is_empty()),
            post_history_instructions: validate::optional_at_most(
                "post_history_instructions",
                post_history_instructions,
                PROMPT_MAX_CHARS,
            )?
            .filter(|s| !s.is_empty()),
            first_message: validate::optional_at_most("first_message", first_message, DESCRIPTION_MAX_CHARS)?
                .filter(|s| !s.is_empty()),
            created_at,
            updated_at: created_at,
            user_id: caller.user_id,
        };
        self.state.store.insert_character(&row).await.map_err(Error::from)?;
        Ok(Response::new(row.into()))
    }

    async fn get_character(
        &self,
        request: Request<pb::GetCharacterRequest>,
    ) -> Result<Response<pb::Character>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        found(self.state.store.character(&caller.user_id, &id).await.map_err(Error::from)?, &id)
    }

    async fn list_characters(
        &self,
        request: Request<pb::ListCharactersRequest>,
    ) -> Result<Response<pb::ListCharactersResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListCharactersRequest { page_size, page_token } = request.into_inner();
        let page = validate::page(PAGE_SCOPE, page_size, &page_token)?;
        let rows = self.state.store.list_characters(&caller.user_id, &page).await.map_err(Error::from)?;
        let next_page_token =
            validate::next_page_token(PAGE_SCOPE, rows.has_more, rows.items.last().map(|c| c.id.as_str()));
        Ok(Response::new(pb::ListCharactersResponse {
            characters: rows.items.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn update_character(
        &self,
        request: Request<pb::UpdateCharacterRequest>,
    ) -> Result<Response<pb::Character>, Status> {
        let caller = caller(&request)?;
        let pb::UpdateCharacterRequest {
            id,
            name,
            description,
            system_prompt,
            post_history_instructions,
            first_message,
        } = request.into_inner();
        let id = validate::id("id", &id)?;
        let changes = CharacterChanges {
            name: name.map(|n| validate::required("name", n, NAME_MAX_CHARS)).transpose()?,
            description: validate::optional_at_most("description", description, DESCRIPTION_MAX_CHARS)?,
            system_prompt: system_prompt
                .map(|s| validate::clearable("system_prompt", s, PROMPT_MAX_CHARS))
                .transpose()?,
            post_history_instructions: post_history_instructions
                .map(|s| validate::clearable("post_history_instructions", s, PROMPT_MAX_CHARS))
                .transpose()?,
            first_message: first_message
                .map(|s| validate::clearable("first_message", s, DESCRIPTION_MAX_CHARS))
                .transpose()?,
            updated_at: Some(now()),
        };
        found(self.state.store.update_character(&caller.user_id, &id, &changes).await.map_err(Error::from)?, &id)
    }

    async fn delete_character(
        &self,
        request: Request<pb::DeleteCharacterRequest>,
    ) -> Result<Response<pb::DeleteCharacterResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        match self.state.store.delete_character(&caller.user_id, &id).await.map_err(Error::from)? {
            DeleteOutcome::Deleted => Ok(Response::new(pb::DeleteCharacterResponse {})),
            DeleteOutcome::NotFound => Err(Error::not_found("character", id).into()),
            DeleteOutcome::InUse => Err(Status::failed_precondition(format!(
                "character {id} is used by chat sessions; delete those chat sessions first"
            ))),
        }
    }
}
