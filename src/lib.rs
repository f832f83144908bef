//! roleplay-server: a gRPC service for roleplay chat with LLMs.
//!
//! # Layout
//!
//! - [`api`]: the gRPC edge, one module per service in proto/roleplay/v1;
//!   validation and protobuf conversion live here, nothing else.
//! - [`characters`]: characters and user profiles, owned by their user.
//! - [`character_cards`]: characters in and out as cards, with their
//!   lorebooks and avatars.
//! - [`chats`]: chat sessions, and the ownership check every chat operation
//!   goes through.
//! - [`stream`]: the streaming core: starting a reply, the task that streams
//!   it, the registry of live replies (in memory, or shared by replicas
//!   through Redis), following and resuming by byte offset, the backlog of
//!   missed replies and checkpoints.
//! - [`reply_plan`]: what each kind of reply writes and what its prompt ends
//!   with; pure.
//! - [`editing`]: swipes, edits, deletions, rewinds and forks, under the
//!   chat's lock and announced to its watchers.
//! - [`prompt`]: the layered prompt, pure.
//! - [`next_prompt`]: a chat's next prompt, loaded, planned and composed.
//! - [`compose`]: a reply's prompt from its parts, settings resolved and
//!   the budget applied (shared by replies and PromptPreview).
//! - [`budget`]: which of a prompt's messages fit the model's context.
//! - [`macros`]: `{{char}}`, `{{time}}`, `{{random:…}}`... in prompt text.
//! - [`samplers`]: sampler settings, resolved chat → character → global.
//! - [`tokens`]: token counts with the model's tokenizer, cached.
//! - [`lore`]: which lorebook entries a reply's prompt gets.
//! - [`lorebook`]: world info: the model, its two file formats and which
//!   entries a message activates; pure.
//! - [`lorebooks`]: the user's lorebooks: books and entries, world-info files
//!   in and out, attaching books to characters and chats.
//! - [`cards`]: character cards as shared (V1/V2/V3 JSON, PNG, CHARX), bytes
//!   in and bytes out; pure.
//! - [`catalog`]: the provider's models, refreshed in the background.
//! - [`provider`]: the provider trait, the OpenAI/OpenRouter client and its
//!   SSE parser.
//! - [`users`]: users, API tokens (hashed) and resolving a call to its user.
//! - [`limits`]: messages per minute per user and chat, concurrent
//!   generations per user.
//! - [`usage`]: per-generation usage records and their totals.
//! - [`settings`]: global settings and the encrypted provider keys (global,
//!   per user, per fallback), each bound to the origin it was entered for.
//! - [`secrets`]: master keys, the keyring and the at-rest encryption format.
//! - [`keys`]: which key each stored secret uses; re-encryption on rotation.
//! - [`store`]: diesel-async persistence on SQLite or PostgreSQL.
//! - [`state`]: the shared handles, the settings caches behind them, and the
//!   shutdown lifecycle.
//! - [`observe`]: Prometheus metrics, health and readiness.
//! - [`traces`]: OpenTelemetry traces over OTLP, and W3C trace context in
//!   and out; off unless configured.
//! - [`server`]: wiring services, health and reflection onto a listener.
//! - [`config`]: command line and environment.
//! - [`cli`]: the `users` and `keys` commands.
//! - [`error`]: the domain's errors, the one gRPC code of each, and the HTTP
//!   mapping for the plain HTTP routes.
//! - `text_enum`: enums stored and sent as lowercase text.

pub mod api;
pub mod budget;
pub mod cards;
pub mod catalog;
pub mod character_cards;
pub mod characters;
pub mod chats;
pub mod cli;
pub mod compose;
pub mod config;
pub mod editing;
pub mod error;
pub mod keys;
pub mod limits;
pub mod lore;
pub mod lorebook;
pub mod lorebooks;
pub mod macros;
pub mod next_prompt;
pub mod observe;
pub mod prompt;
pub mod provider;
pub mod reply_plan;
pub mod samplers;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod state;
pub mod store;
pub mod stream;
mod text_enum;
pub mod tokens;
pub mod traces;
pub mod usage;
pub mod users;
