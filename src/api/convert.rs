//! Rows and domain events to protobuf. Each conversion destructures the whole
//! source, so a new field fails the build until it is handled here.

use chrono::{NaiveDateTime, SubsecRound};
use prost_types::Timestamp;

use super::pb;
use crate::{
    catalog::CatalogView,
    next_prompt::NextPrompt,
    prompt::Source,
    provider::{ModelInfo, Usage},
    samplers::{Reasoning, Samplers},
    settings::{self, ApiKey, Fallback, KeyOwner, Settings},
    store::models::{Character, ChatSession, Message, MessageStatus, Role, UsageRecord, User, UserProfile},
    stream::follower::Event,
    stream::registry::{CancelReason, ChatChangeKind, FailureCode, Outcome, ReplyKind},
    stream::watching::StreamStatus,
    usage::UsageTotal,
};

pub fn timestamp(at: NaiveDateTime) -> Option<Timestamp> {
    let utc = at.and_utc();
    Some(Timestamp { seconds: utc.timestamp(), nanos: i32::try_from(utc.timestamp_subsec_nanos()).unwrap_or(0) })
}

fn token_count(value: Option<i32>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

impl From<Character> for pb::Character {
    fn from(row: Character) -> Self {
        let avatar_url = row.avatar_path().unwrap_or_default();
        let (alternate_greetings, tags) = (row.alternate_greetings(), row.tags());
        let Character {
            id,
            name,
            description,
            system_prompt,
            post_history_instructions,
            first_message,
            created_at,
            updated_at,
            user_id: _,
            personality,
            scenario,
            mes_example,
            alternate_greetings: _,
            tags: _,
            creator,
            creator_notes,
            character_version,
            extensions,
            // Written back on export only.
            card_extra: _,
            avatar_hash: _,
            lorebook_id,
            samplers,
        } = row;
        Self {
            id,
            name,
            description,
            system_prompt,
            post_history_instructions,
            first_message,
            created_at: timestamp(created_at),
            updated_at: timestamp(updated_at),
            personality,
            scenario,
            mes_example,
            alternate_greetings,
            tags,
            creator,
            creator_notes,
            character_version,
            extensions_json: extensions,
            avatar_url,
            lorebook_id,
            samplers: Some(samplers_out(Samplers::from_stored(&samplers))),
        }
    }
}

/// A composed prompt as PromptPreview shows it.
pub fn prompt_preview(next: NextPrompt) -> pb::PromptPreview {
    let NextPrompt { composed, unknown_model, .. } = next;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let fitted = composed.fitted;
    let messages = fitted
        .messages
        .into_iter()
        .map(|(message, tokens)| {
            let (source, message_id) = match message.source {
                Source::System => (pb::PromptSource::System, String::new()),
                Source::Example => (pb::PromptSource::Example, String::new()),
                Source::History(id) => (pb::PromptSource::History, id),
                Source::Lore => (pb::PromptSource::Lore, String::new()),
                Source::AuthorsNote => (pb::PromptSource::AuthorsNote, String::new()),
                Source::PostHistory => (pb::PromptSource::PostHistory, String::new()),
                Source::NewMessage => (pb::PromptSource::NewMessage, String::new()),
                Source::ContinuedReply => (pb::PromptSource::ContinuedReply, String::new()),
            };
            pb::PromptMessage {
                role: message.role.as_str().to_owned(),
                content: message.content,
                source: source.into(),
                message_id,
                tokens: count(tokens),
            }
        })
        .collect();
    let warning = if unknown_model {
        format!("model {} is not in the provider's model list; sending will still try it", composed.model)
    } else {
        String::new()
    };
    pb::PromptPreview {
        messages,
        prompt_tokens: count(fitted.prompt_tokens),
        context_tokens: composed.budget.context_tokens,
        reply_tokens: composed.budget.reply_tokens,
        history_included: count(fitted.history_included),
        history_omitted: count(fitted.omitted.len()),
        omitted_message_ids: fitted.omitted,
        model: composed.model,
        tokenizer: composed.tokenizer,
        warning,
        activated_entries: composed
            .lore
            .into_iter()
            .map(|lore| pb::ActivatedEntry {
                lorebook: lore.source.book,
                entry: lore.source.entry,
                reason: lore.source.reason,
                content: lore.content,
            })
            .collect(),
    }
}

/// The catalog as ListModels shows it.
pub fn model_list(view: CatalogView) -> pb::ListModelsResponse {
    let models = view
        .models
        .iter()
        .cloned()
        .map(|model| {
            let ModelInfo {
                id,
                name,
                context_length,
                max_completion_tokens,
                prompt_price,
                completion_price,
                supported_parameters,
            } = model;
            pb::ModelInfo {
                id,
                name,
                context_length: context_length.unwrap_or(0),
                max_completion_tokens: max_completion_tokens.unwrap_or(0),
                prompt_price,
                completion_price,
                supported_parameters,
            }
        })
        .collect();
    pb::ListModelsResponse {
        models,
        fetched_at: view.fetched_at.and_then(|at| timestamp(at.naive_utc())),
        refresh_error: view.refresh_error.unwrap_or_default(),
    }
}

/// Samplers as the API carries them (empty `stop` is unset).
pub fn samplers_in(value: pb::Samplers) -> Samplers {
    let pb::Samplers {
        temperature,
        top_p,
        top_k,
        min_p,
        top_a,
        frequency_penalty,
        presence_penalty,
        repetition_penalty,
        seed,
        stop,
        max_tokens,
        reasoning,
    } = value;
    Samplers {
        temperature,
        top_p,
        top_k,
        min_p,
        top_a,
        frequency_penalty,
        presence_penalty,
        repetition_penalty,
        seed,
        stop,
        max_tokens,
        reasoning: reasoning.map(|pb::Reasoning { effort, max_tokens, exclude, enabled }| Reasoning {
            effort,
            max_tokens,
            exclude,
            enabled,
        }),
    }
}

pub fn samplers_out(value: Samplers) -> pb::Samplers {
    let Samplers {
        temperature,
        top_p,
        top_k,
        min_p,
        top_a,
        frequency_penalty,
        presence_penalty,
        repetition_penalty,
        seed,
        stop,
        max_tokens,
        reasoning,
    } = value;
    pb::Samplers {
        temperature,
        top_p,
        top_k,
        min_p,
        top_a,
        frequency_penalty,
        presence_penalty,
        repetition_penalty,
        seed,
        stop,
        max_tokens,
        reasoning: reasoning.map(|Reasoning { effort, max_tokens, exclude, enabled }| pb::Reasoning {
            effort,
            max_tokens,
            exclude,
            enabled,
        }),
    }
}

impl From<UserProfile> for pb::UserProfile {
    fn from(row: UserProfile) -> Self {
        let UserProfile { id, name, description, created_at, updated_at, user_id: _ } = row;
        Self { id, name, description, created_at: timestamp(created_at), updated_at: timestamp(updated_at) }
    }
}

impl From<ChatSession> for pb::ChatSession {
    fn from(row: ChatSession) -> Self {
        let own_samplers = row.samplers();
        let ChatSession {
            id,
            character_id,
            user_profile_id,
            title,
            model,
            temperature,
            max_tokens,
            created_at,
            updated_at,
            user_id: _,
            samplers: _,
            context_tokens,
            authors_note,
            authors_note_depth,
        } = row;
        Self {
            id,
            character_id,
            user_profile_id,
            title,
            model,
            temperature,
            max_tokens: token_count(max_tokens),
            created_at: timestamp(created_at),
            updated_at: timestamp(updated_at),
            samplers: Some(samplers_out(own_samplers)),
            context_tokens: token_count(context_tokens),
            authors_note,
            authors_note_depth: u32::try_from(authors_note_depth).unwrap_or(0),
        }
    }
}

fn role(role: Role) -> pb::Role {
    match role {
        Role::User => pb::Role::User,
        Role::Assistant => pb::Role::Assistant,
        Role::System => pb::Role::System,
        Role::Unknown => pb::Role::Unspecified,
    }
}

fn status(status: MessageStatus) -> pb::MessageStatus {
    match status {
        MessageStatus::Completed => pb::MessageStatus::Completed,
        MessageStatus::Streaming => pb::MessageStatus::Streaming,
        MessageStatus::Failed => pb::MessageStatus::Failed,
        MessageStatus::Cancelled => pb::MessageStatus::Cancelled,
        MessageStatus::Interrupted => pb::MessageStatus::Interrupted,
        MessageStatus::Unknown => pb::MessageStatus::Unspecified,
    }
}

impl From<Message> for pb::Message {
    fn from(row: Message) -> Self {
        let role = role(row.role());
        let status = status(row.status());
        let Message {
            id,
            chat_session_id,
            role: _,
            content,
            status: _,
            model,
            prompt_tokens,
            completion_tokens,
            error,
            stream_id,
            finish_reason,
            duration_ms,
            created_at,
            updated_at,
            provider,
            alternative_index,
            alternative_count,
            edited_at,
        } = row;
        Self {
            id,
            chat_session_id,
            role: role.into(),
            content,
            status: status.into(),
            model,
            prompt_tokens: token_count(prompt_tokens),
            completion_tokens: token_count(completion_tokens),
            error,
            created_at: timestamp(created_at),
            stream_id,
            duration_ms: duration_ms.and_then(|d| u64::try_from(d).ok()),
            provider,
            alternative_index: u32::try_from(alternative_index).unwrap_or(0),
            alternative_count: u32::try_from(alternative_count).unwrap_or(1),
            edited_at: edited_at.and_then(timestamp),
            finish_reason,
            updated_at: timestamp(updated_at),
            // Set by ListMessages, which knows the chat's character.
            avatar_url: String::new(),
        }
    }
}

/// The settings as a caller sees them: key hints (the first and last
/// characters) are for admins only; everyone sees their own key's state.
/// Each key's problem is judged against the origin it would be sent to.
pub fn settings_view(settings: Settings, own_key: &ApiKey, admin: bool) -> pb::Settings {
    let origin = settings.provider_origin();
    let Settings { prompts, default_model, provider_base_url, api_key, fallbacks, prompt_defaults } = settings;
    let hint = |key: &ApiKey| if admin { key.hint() } else { String::new() };
    pb::Settings {
        api_key_set: api_key.is_set(),
        api_key_hint: hint(&api_key),
        api_key_problem: api_key.problem(&origin, KeyOwner::Global),
        fallback_providers: fallbacks
            .into_iter()
            .map(|Fallback { name, base_url, model, api_key }| pb::FallbackProvider {
                api_key_set: api_key.is_set(),
                api_key_hint: hint(&api_key),
                api_key_problem: api_key.problem(&settings::origin(&base_url), KeyOwner::Fallback),
                name,
                base_url,
                model,
            })
            .collect(),
        pre_system_prompt: prompts.pre_system_prompt,
        system_prompt: prompts.system_prompt,
        post_system_prompt: prompts.post_system_prompt,
        default_model,
        provider_base_url,
        user_api_key_set: own_key.is_set(),
        user_api_key_hint: own_key.hint(),
        user_api_key_problem: own_key.problem(&origin, KeyOwner::User),
        default_samplers: Some(samplers_out(prompt_defaults.samplers)),
        default_context_tokens: prompt_defaults.context_tokens,
        default_reply_tokens: prompt_defaults.reply_tokens,
    }
}

impl From<User> for pb::User {
    fn from(row: User) -> Self {
        let active = row.is_active();
        let User { id, name, is_admin, token_lookup: _, token_hash: _, created_at, revoked_at } = row;
        Self {
            id,
            name,
            admin: is_admin,
            active,
            created_at: timestamp(created_at),
            revoked_at: revoked_at.and_then(timestamp),
        }
    }
}

impl From<UsageRecord> for pb::UsageRecord {
    fn from(row: UsageRecord) -> Self {
        let UsageRecord {
            id,
            user_id,
            chat_session_id,
            stream_id,
            model,
            provider,
            prompt_tokens,
            completion_tokens,
            cost,
            ttft_ms,
            duration_ms,
            outcome,
            detail,
            day: _,
            created_at,
        } = row;
        Self {
            id,
            user_id,
            chat_session_id,
            stream_id,
            model,
            provider: provider.unwrap_or_default(),
            prompt_tokens: prompt_tokens.into(),
            completion_tokens: completion_tokens.into(),
            cost,
            time_to_first_token_ms: ttft_ms,
            duration_ms,
            outcome,
            detail,
            created_at: timestamp(created_at),
        }
    }
}

impl From<UsageTotal> for pb::UsageTotal {
    fn from(total: UsageTotal) -> Self {
        let UsageTotal { key, generations, completed, prompt_tokens, completion_tokens, cost } = total;
        Self { key, generations, completed, prompt_tokens, completion_tokens, cost }
    }
}

/// A protobuf timestamp as stored (UTC, microseconds).
pub fn naive_time(field: &str, at: Option<Timestamp>) -> crate::error::Result<Option<NaiveDateTime>> {
    at.map(|Timestamp { seconds, nanos }| {
        u32::try_from(nanos)
            .ok()
            .and_then(|nanos| chrono::DateTime::from_timestamp(seconds, nanos))
            .map(|at| at.naive_utc().trunc_subsecs(6))
            .ok_or_else(|| crate::error::Error::invalid(field, "is not a valid timestamp"))
    })
    .transpose()
}

impl From<StreamStatus> for pb::StreamStatus {
    fn from(status: StreamStatus) -> Self {
        let StreamStatus { streaming, stream_id, text_length, watchers, started_at } = status;
        Self {
            streaming,
            stream_id,
            text_length: text_length as u64,
            watchers: u32::try_from(watchers).unwrap_or(u32::MAX),
            started_at: started_at.and_then(timestamp),
        }
    }
}

fn usage(usage: &Usage) -> pb::Usage {
    let Usage { prompt_tokens, completion_tokens, total_tokens, cost } = *usage;
    pb::Usage { prompt_tokens, completion_tokens, total_tokens, cost }
}

fn failure_code(code: FailureCode) -> pb::FailureCode {
    match code {
        FailureCode::UpstreamError => pb::FailureCode::UpstreamError,
        FailureCode::UpstreamTimeout => pb::FailureCode::UpstreamTimeout,
        FailureCode::UpstreamUnavailable => pb::FailureCode::UpstreamUnavailable,
        FailureCode::KeyRejected => pb::FailureCode::KeyRejected,
        FailureCode::OutOfCredits => pb::FailureCode::OutOfCredits,
        FailureCode::Storage => pb::FailureCode::Storage,
        FailureCode::Interrupted => pb::FailureCode::Interrupted,
    }
}

fn cancel_reason(reason: CancelReason) -> pb::CancelReason {
    match reason {
        CancelReason::Requested => pb::CancelReason::Requested,
        CancelReason::IdleTimeout => pb::CancelReason::IdleTimeout,
        CancelReason::Shutdown => pb::CancelReason::Shutdown,
    }
}

fn reply_kind(kind: ReplyKind) -> pb::ReplyKind {
    match kind {
        ReplyKind::Send => pb::ReplyKind::Send,
        ReplyKind::Regenerate => pb::ReplyKind::Regenerate,
        ReplyKind::Continue => pb::ReplyKind::Continue,
    }
}

fn change_kind(kind: ChatChangeKind) -> pb::ChatChangeKind {
    match kind {
        ChatChangeKind::Edited => pb::ChatChangeKind::Edited,
        ChatChangeKind::Deleted => pb::ChatChangeKind::Deleted,
        ChatChangeKind::Selected => pb::ChatChangeKind::Selected,
        ChatChangeKind::Rewound => pb::ChatChangeKind::Rewound,
        ChatChangeKind::Resync => pb::ChatChangeKind::Unspecified,
    }
}

impl From<Event> for pb::GenerationEvent {
    fn from(event: Event) -> Self {
        use pb::generation_event::Event as E;
        let event = match event {
            Event::Started(generation) => {
                let info = &generation.info;
                E::Started(pb::Started {
                    stream_id: info.stream_id.clone(),
                    chat_session_id: info.chat_session_id.clone(),
                    user_message_id: info.user_message_id.clone(),
                    assistant_message_id: info.assistant_message_id.clone(),
                    model: info.model.clone(),
                    started_at: timestamp(info.started_at),
                    kind: reply_kind(info.kind).into(),
                    alternative_index: info.alternative_index,
                    alternative_count: info.alternative_count,
                    continues_from: info.continues_from as u64,
                    prompt_tokens: info.prompt_tokens,
                    history_included: info.history_included,
                    history_omitted: info.history_omitted,
                })
            }
            Event::Delta { generation, offset, text } => {
                E::Delta(pb::Delta { stream_id: generation.info.stream_id.clone(), offset: offset as u64, text })
            }
            Event::Heartbeat => E::Heartbeat(pb::Heartbeat {}),
            Event::ChatChanged(change) => E::ChatChanged(pb::ChatChanged {
                chat_session_id: change.chat_session_id.clone(),
                kind: change_kind(change.kind).into(),
                message_ids: change.message_ids.clone(),
            }),
            Event::Ended { generation, partial_length, outcome } => {
                let stream_id = generation.info.stream_id.clone();
                let partial_length = partial_length as u64;
                match &*outcome {
                    Outcome::Completed { reply, finish_reason, usage: reported } => E::Completed(pb::Completed {
                        stream_id,
                        message: Some(reply.to_message(generation.text()).into()),
                        finish_reason: finish_reason.clone(),
                        usage: Some(usage(reported)),
                    }),
                    Outcome::Failed { code, message } => E::Failed(pb::Failed {
                        stream_id,
                        code: failure_code(*code).into(),
                        message: message.clone(),
                        partial_length,
                    }),
                    Outcome::Cancelled { reason } => {
                        E::Cancelled(pb::Cancelled { stream_id, partial_length, reason: cancel_reason(*reason).into() })
                    }
                }
            }
        };
        Self { event: Some(event) }
    }
}
