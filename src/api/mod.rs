//! The gRPC edge: one file per service. Handlers validate, convert, call the
//! domain and convert back; no SQL, HTTP or locking happens here.

pub mod auth;
pub mod avatars;
pub mod browser;
mod characters;
mod chat_sessions;
pub mod codec;
mod convert;
mod lorebook_convert;
mod lorebooks;
mod messages;
mod settings;
pub mod sse;
mod usage;
mod user_profiles;
mod users;
pub mod validate;
pub mod web_ui;

pub use characters::CharacterApi;
pub use chat_sessions::ChatSessionApi;
pub use lorebooks::LorebookApi;
pub use messages::MessageApi;
pub use settings::SettingsApi;
pub use usage::UsageApi;
pub use user_profiles::UserProfileApi;
pub use users::UserApi;

/// Code generated from proto/roleplay/v1.
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("roleplay.v1");

    /// The encoded descriptors of every roleplay.v1 file, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/roleplay_descriptor.bin"));
}

/// Names of the services, for health reporting.
pub const SERVICE_NAMES: [&str; 8] = [
    "roleplay.v1.CharacterService",
    "roleplay.v1.UserProfileService",
    "roleplay.v1.ChatSessionService",
    "roleplay.v1.MessageService",
    "roleplay.v1.SettingsService",
    "roleplay.v1.UserService",
    "roleplay.v1.UsageService",
    "roleplay.v1.LorebookService",
];
