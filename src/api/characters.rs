//! roleplay.v1.CharacterService.

use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    pb::{self, character_service_server::CharacterService},
    validate::{self, DESCRIPTION_MAX_CHARS, Listing, NAME_MAX_CHARS, PROMPT_MAX_CHARS},
};
use serde_json::{Map, Value};

use crate::{
    cards::CardFormat,
    character_cards::{self, ExportFormat, TAG_MAX_CHARS},
    characters::{self, CharacterChanges, NewCharacter, json_list},
    samplers::Samplers,
    state::AppState,
    store::CharacterFilter,
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
        let pb::CreateCharacterRequest {
            name,
            description,
            system_prompt,
            post_history_instructions,
            first_message,
            personality,
            scenario,
            mes_example,
            alternate_greetings,
            tags,
            creator,
            creator_notes,
            character_version,
            extensions_json,
            samplers,
        } = request.into_inner();
        let samplers = validate::samplers("samplers", samplers)?;
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
            personality: validate::at_most("personality", personality, DESCRIPTION_MAX_CHARS)?,
            scenario: validate::at_most("scenario", scenario, DESCRIPTION_MAX_CHARS)?,
            mes_example: validate::at_most("mes_example", mes_example, PROMPT_MAX_CHARS)?,
            alternate_greetings: greetings(alternate_greetings)?,
            tags: tag_list(tags)?,
            creator: validate::at_most("creator", creator, NAME_MAX_CHARS)?,
            creator_notes: validate::at_most("creator_notes", creator_notes, DESCRIPTION_MAX_CHARS)?,
            character_version: validate::at_most("character_version", character_version, NAME_MAX_CHARS)?,
            extensions: extensions(&extensions_json)?,
            samplers,
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
        let pb::ListCharactersRequest { page_size, page_token, tag, name_contains } = request.into_inner();
        let filter = CharacterFilter {
            tag: Some(validate::at_most("tag", tag, TAG_MAX_CHARS)?).filter(|t| !t.is_empty()),
            name_contains: Some(validate::at_most("name_contains", name_contains, NAME_MAX_CHARS)?)
                .filter(|t| !t.is_empty()),
        };
        // Tokens are bound to the filter, so a page of one search cannot
        // continue another.
        let scope = format!(
            "{PAGE_SCOPE}:{}:{}",
            filter.tag.as_deref().unwrap_or(""),
            filter.name_contains.as_deref().unwrap_or("")
        );
        let listing = Listing::new(scope, page_size, &page_token)?;
        let rows = characters::list(&self.state, &caller, &filter, &listing.page).await?;
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
            personality,
            scenario,
            mes_example,
            alternate_greetings,
            set_alternate_greetings,
            tags,
            set_tags,
            creator,
            creator_notes,
            character_version,
            extensions_json,
            samplers,
        } = request.into_inner();
        let id = validate::id("id", &id)?;
        let samplers = samplers.map(|s| validate::samplers("samplers", Some(s))).transpose()?;
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
            personality: validate::optional_at_most("personality", personality, DESCRIPTION_MAX_CHARS)?,
            scenario: validate::optional_at_most("scenario", scenario, DESCRIPTION_MAX_CHARS)?,
            mes_example: validate::optional_at_most("mes_example", mes_example, PROMPT_MAX_CHARS)?,
            alternate_greetings: set_alternate_greetings
                .then(|| greetings(alternate_greetings).map(|g| json_list(&g)))
                .transpose()?,
            tags: set_tags.then(|| tag_list(tags).map(|t| json_list(&t))).transpose()?,
            creator: validate::optional_at_most("creator", creator, NAME_MAX_CHARS)?,
            creator_notes: validate::optional_at_most("creator_notes", creator_notes, DESCRIPTION_MAX_CHARS)?,
            character_version: validate::optional_at_most("character_version", character_version, NAME_MAX_CHARS)?,
            extensions: extensions_json
                .map(|e| extensions(&e).map(|map| Value::Object(map).to_string()))
                .transpose()?,
            avatar_hash: None,
            samplers: samplers.as_ref().map(Samplers::to_stored),
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

    async fn import_character(
        &self,
        request: Request<pb::ImportCharacterRequest>,
    ) -> Result<Response<pb::ImportCharacterResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ImportCharacterRequest { data, filename } = request.into_inner();
        let filename = validate::at_most("filename", filename, NAME_MAX_CHARS)?;
        let (character, format) = character_cards::import(&self.state, &caller, &data, &filename).await?;
        Ok(Response::new(pb::ImportCharacterResponse {
            character: Some(character.into()),
            format: card_format(format).into(),
        }))
    }

    async fn export_character(
        &self,
        request: Request<pb::ExportCharacterRequest>,
    ) -> Result<Response<pb::ExportCharacterResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ExportCharacterRequest { id, format } = request.into_inner();
        let id = validate::id("id", &id)?;
        let format = match pb::ExportFormat::try_from(format) {
            Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::Json) => ExportFormat::Json,
            Ok(pb::ExportFormat::Png) => ExportFormat::Png,
            Err(_) => return Err(Status::invalid_argument(format!("format {format} is not an ExportFormat"))),
        };
        let exported = character_cards::export(&self.state, &caller, &id, format).await?;
        Ok(Response::new(pb::ExportCharacterResponse {
            data: exported.data,
            content_type: exported.content_type.into(),
            filename: exported.filename,
        }))
    }

    async fn set_character_avatar(
        &self,
        request: Request<pb::SetCharacterAvatarRequest>,
    ) -> Result<Response<pb::Character>, Status> {
        let caller = caller(&request)?;
        let pb::SetCharacterAvatarRequest { id, data } = request.into_inner();
        let id = validate::id("id", &id)?;
        Ok(Response::new(character_cards::set_avatar(&self.state, &caller, &id, &data).await?.into()))
    }
}

/// Alternate greetings, as many and as long as a character may have.
fn greetings(items: Vec<String>) -> Result<Vec<String>, Status> {
    character_cards::check_list("alternate_greetings", &items, DESCRIPTION_MAX_CHARS)?;
    Ok(items)
}

/// Tags, trimmed, without empty ones or repeats.
fn tag_list(items: Vec<String>) -> Result<Vec<String>, Status> {
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for tag in items.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        if !tags.iter().any(|seen| seen.eq_ignore_ascii_case(&tag)) {
            tags.push(tag);
        }
    }
    character_cards::check_list("tags", &tags, TAG_MAX_CHARS)?;
    Ok(tags)
}

/// A JSON object given as text; empty is none.
fn extensions(json: &str) -> Result<Map<String, Value>, Status> {
    if json.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Status::invalid_argument("extensions_json must be a JSON object")),
        Err(err) => Err(Status::invalid_argument(format!("extensions_json is not valid JSON: {err}"))),
    }
}

fn card_format(format: CardFormat) -> pb::CardFormat {
    match format {
        CardFormat::V1Json => pb::CardFormat::V1Json,
        CardFormat::V2Json => pb::CardFormat::V2Json,
        CardFormat::V3Json => pb::CardFormat::V3Json,
        CardFormat::V2Png => pb::CardFormat::PngV2,
        CardFormat::V3Png => pb::CardFormat::PngV3,
        CardFormat::Charx => pb::CardFormat::Charx,
    }
}
