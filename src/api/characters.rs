//! roleplay.v1.CharacterService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, character_service_server::CharacterService},
    validate::{self, DESCRIPTION_MAX_CHARS, Listing, NAME_MAX_CHARS, PROMPT_MAX_CHARS},
};
use crate::{
    characters::{self, CharacterChanges, NewCharacter},
    state::AppState,
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

#[tonic::async_trait]
impl CharacterService for CharacterApi {
    async fn create_character(
        &self,
        request: Request<pb::CreateCharacterRequest>,
    ) -> Result<Response<pb::Character>, Status> {
        let caller = caller(&request)?;
        let pb::CreateCharacterRequest { name, description, system_prompt, post_history_instructions, first_message } =
            request.into_inner();
        let new = NewCharacter {
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
        };
        Ok(Response::new(characters::create(&self.state, &caller, new).await?.into()))
    }

    async fn get_character(
        &self,
        request: Request<pb::GetCharacterRequest>,
    ) -> Result<Response<pb::Character>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        Ok(Response::new(characters::get(&self.state, &caller, &id).await?.into()))
    }

    async fn list_characters(
        &self,
        request: Request<pb::ListCharactersRequest>,
    ) -> Result<Response<pb::ListCharactersResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListCharactersRequest { page_size, page_token } = request.into_inner();
        let listing = Listing::new(PAGE_SCOPE, page_size, &page_token)?;
        let rows = characters::list(&self.state, &caller, &listing.page).await?;
        let (characters, next_page_token) = listing.finish(rows, |c| &c.id);
        Ok(Response::new(pb::ListCharactersResponse { characters, next_page_token }))
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
            updated_at: None,
        };
        Ok(Response::new(characters::update(&self.state, &caller, &id, changes).await?.into()))
    }

    async fn delete_character(
        &self,
        request: Request<pb::DeleteCharacterRequest>,
    ) -> Result<Response<pb::DeleteCharacterResponse>, Status> {
        let caller = caller(&request)?;
        let id = validate::id("id", &request.into_inner().id)?;
        characters::delete(&self.state, &caller, &id).await?;
        Ok(Response::new(pb::DeleteCharacterResponse {}))
    }
}
