//! Builds the messages sent to the model: pure, so every layering rule is
//! unit-tested without a server.
//!
//! 1. One system message: the non-empty parts of [global pre_system_prompt,
//!    character.system_prompt or else the global system_prompt,
//!    character.description, user_profile.description], joined by "\n---\n".
//! 2. The chat's history, oldest first: completed messages, and cancelled or
//!    interrupted replies with the partial text the user saw. Failed replies
//!    are left out.
//! 3. character.post_history_instructions or else the global
//!    post_system_prompt, as a system message, when non-empty.
//! 4. The turn the reply answers: the new user message (a send, or the user
//!    message whose reply is regenerated), or, to continue a reply, that
//!    reply's text as the final assistant message, which the model goes on
//!    from. A regenerated reply with no user message before it has none.
//!
//! `{{char}}` and `{{user}}` become the character's and the profile's names in
//! every system layer.

use serde::Serialize;

use crate::{
    settings::PromptSettings,
    store::models::{Character, Message, MessageStatus, Role, UserProfile},
};

const LAYER_SEPARATOR: &str = "\n---\n";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

impl ChatMessage {
    fn new(role: Role, content: String) -> Self {
        Self { role: role.as_str(), content }
    }
}

pub struct PromptInput<'a> {
    pub settings: &'a PromptSettings,
    pub character: &'a Character,
    pub profile: &'a UserProfile,
    pub history: &'a [Message],
    pub turn: Turn<'a>,
}

/// What the prompt ends with, after the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn<'a> {
    /// A user message to answer.
    User(&'a str),
    /// A reply to go on from.
    Continue(&'a str),
    /// Nothing: the model speaks next (regenerating a greeting).
    None,
}

pub fn build(input: &PromptInput<'_>) -> Vec<ChatMessage> {
    let names = Names { character: &input.character.name, user: &input.profile.name };
    let character_system = input.character.system_prompt.as_deref().filter(|s| !s.trim().is_empty());
    let layers = [
        input.settings.pre_system_prompt.as_str(),
        character_system.unwrap_or(&input.settings.system_prompt),
        &input.character.description,
        &input.profile.description,
    ];
    let system = layers
        .iter()
        .filter(|layer| !layer.trim().is_empty())
        .map(|layer| names.substitute(layer))
        .collect::<Vec<_>>()
        .join(LAYER_SEPARATOR);

    let mut messages = Vec::with_capacity(input.history.len() + 3);
    if !system.is_empty() {
        messages.push(ChatMessage::new(Role::System, system));
    }
    messages.extend(
        input.history.iter().filter(|m| belongs_in_history(m)).map(|m| ChatMessage::new(m.role(), m.content.clone())),
    );
    let post = input
        .character
        .post_history_instructions
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&input.settings.post_system_prompt);
    if !post.trim().is_empty() {
        messages.push(ChatMessage::new(Role::System, names.substitute(post)));
    }
    match input.turn {
        Turn::User(text) => messages.push(ChatMessage::new(Role::User, text.to_owned())),
        Turn::Continue(text) => messages.push(ChatMessage::new(Role::Assistant, text.to_owned())),
        Turn::None => {}
    }
    messages
}

fn belongs_in_history(message: &Message) -> bool {
    if matches!(message.role(), Role::Unknown) || message.content.is_empty() {
        return false;
    }
    match message.status() {
        MessageStatus::Completed => true,
        MessageStatus::Cancelled | MessageStatus::Interrupted => message.role() == Role::Assistant,
        MessageStatus::Failed | MessageStatus::Streaming | MessageStatus::Unknown => false,
    }
}

struct Names<'a> {
    character: &'a str,
    user: &'a str,
}

impl Names<'_> {
    fn substitute(&self, text: &str) -> String {
        substitute_names(text, self.character, self.user)
    }
}

/// Replaces `{{char}}` and `{{user}}` with the given names.
pub fn substitute_names(text: &str, character: &str, user: &str) -> String {
    text.replace("{{char}}", character).replace("{{user}}", user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;

    fn character(system_prompt: Option<&str>, post: Option<&str>) -> Character {
        Character {
            description: "{{char}} is a bard who teases {{user}}.".into(),
            system_prompt: system_prompt.map(Into::into),
            post_history_instructions: post.map(Into::into),
            ..Character::new("u", "Aria".into())
        }
    }

    fn profile(description: &str) -> UserProfile {
        UserProfile {
            id: "p".into(),
            name: "Sam".into(),
            description: description.into(),
            created_at: now(),
            updated_at: now(),
            user_id: "u".into(),
        }
    }

    fn message(role: Role, status: MessageStatus, content: &str) -> Message {
        Message::new("chat", role, content.into(), status)
    }

    #[test]
    fn layers_in_order_with_overrides_and_names() {
        let settings = PromptSettings {
            pre_system_prompt: "Pre for {{user}}".into(),
            system_prompt: "Global system".into(),
            post_system_prompt: "Global post".into(),
        };
        let character = character(Some("You are {{char}}."), Some("Stay as {{char}}."));
        let profile = profile("{{user}} is a traveller.");
        let history = [
            message(Role::Assistant, MessageStatus::Completed, "Hello, {{user}}!"),
            message(Role::User, MessageStatus::Completed, "hi"),
            message(Role::Assistant, MessageStatus::Failed, "broken"),
            message(Role::User, MessageStatus::Completed, "again"),
            message(Role::Assistant, MessageStatus::Cancelled, "partial"),
            message(Role::Assistant, MessageStatus::Cancelled, ""),
        ];
        let messages = build(&PromptInput {
            settings: &settings,
            character: &character,
            profile: &profile,
            history: &history,
            turn: Turn::User("new {{char}}"),
        });
        let got: Vec<(&str, &str)> = messages.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (
                    "system",
                    "Pre for Sam\n---\nYou are Aria.\n---\nAria is a bard who teases Sam.\n---\nSam is a traveller."
                ),
                ("assistant", "Hello, {{user}}!"),
                ("user", "hi"),
                ("user", "again"),
                ("assistant", "partial"),
                ("system", "Stay as Aria."),
                ("user", "new {{char}}"),
            ]
        );
    }

    #[test]
    fn empty_layers_are_skipped_and_globals_fill_in() {
        let settings = PromptSettings { system_prompt: "Global system".into(), ..Default::default() };
        let mut character = character(None, None);
        character.description = "   ".into();
        let messages = build(&PromptInput {
            settings: &settings,
            character: &character,
            profile: &profile(""),
            history: &[],
            turn: Turn::User("hello"),
        });
        let got: Vec<(&str, &str)> = messages.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(got, vec![("system", "Global system"), ("user", "hello")]);
    }

    #[test]
    fn nothing_but_the_user_message_when_every_layer_is_empty() {
        let settings = PromptSettings::default();
        let mut character = character(None, None);
        character.description.clear();
        let messages = build(&PromptInput {
            settings: &settings,
            character: &character,
            profile: &profile(""),
            history: &[],
            turn: Turn::User("hello"),
        });
        assert_eq!(messages, vec![ChatMessage { role: "user", content: "hello".into() }]);
    }

    #[test]
    fn a_continuation_ends_with_the_reply_to_go_on_from() {
        let settings = PromptSettings { post_system_prompt: "Post".into(), ..Default::default() };
        let mut character = character(None, None);
        character.description.clear();
        let (profile, history) = (profile(""), [message(Role::User, MessageStatus::Completed, "hi")]);
        let got = |turn| {
            let input = PromptInput { settings: &settings, character: &character, profile: &profile, history: &history, turn };
            build(&input).into_iter().map(|m| (m.role, m.content)).collect::<Vec<_>>()
        };
        assert_eq!(
            got(Turn::Continue("Once upon")),
            vec![("user", "hi".into()), ("system", "Post".into()), ("assistant", "Once upon".into())]
        );
        assert_eq!(got(Turn::None), vec![("user", "hi".into()), ("system", "Post".into())]);
    }
}
