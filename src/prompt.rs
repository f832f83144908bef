//! Builds the messages sent to the model: pure, so every layering rule is
//! unit-tested without a server.
//!
//! 1. One system message: the non-empty parts of, in order,
//!    - the global pre_system_prompt;
//!    - character.system_prompt (where `{{original}}` stands for the global
//!      one), or else the global system_prompt;
//!    - lorebook entries placed before the character;
//!    - character.description, "{{char}}'s personality: …", "Scenario: …";
//!    - lorebook entries placed after the character;
//!    - user_profile.description;
//!    - lorebook entries placed at the author's note (top, then bottom);
//!
//!    joined by "\n---\n".
//! 2. Example dialogues: lorebook entries placed before the examples, each
//!    `<START>` block of character.mes_example, entries placed after them,
//!    each as a system message.
//! 3. The chat's history, oldest first: completed messages, and cancelled or
//!    interrupted replies with the partial text the user saw. Failed replies
//!    are left out. Lorebook entries placed at depth d go in d messages from
//!    the newest, with their role.
//! 4. character.post_history_instructions or else the global
//!    post_system_prompt, as a system message, when non-empty.
//! 5. The turn the reply answers: the new user message (a send, or the user
//!    message whose reply is regenerated), or, to continue a reply, that
//!    reply's text as the final assistant message, which the model goes on
//!    from. A regenerated reply with no user message before it has none.
//!
//! `{{char}}` and `{{user}}` become the character's and the profile's names in
//! every system layer, example and lorebook entry.

use serde::Serialize;

use crate::{
    lorebook::{self, Position},
    macros::Macros,
    settings::PromptSettings,
    store::models::{Character, Message, MessageStatus, Role, UserProfile},
};

const LAYER_SEPARATOR: &str = "\n---\n";

/// A message as sent upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

/// Where a prompt message comes from (shown by PromptPreview; the budget
/// leaves out only [`Source::History`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    System,
    Example,
    /// A stored message, by id.
    History(String),
    Lore,
    AuthorsNote,
    PostHistory,
    NewMessage,
    ContinuedReply,
}

/// One message of a prompt, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: String,
    pub source: Source,
}

impl PromptMessage {
    fn new(role: Role, content: String, source: Source) -> Self {
        Self { role, content, source }
    }

    pub fn to_chat(&self) -> ChatMessage {
        ChatMessage { role: self.role.as_str(), content: self.content.clone() }
    }
}

pub struct PromptInput<'a> {
    pub settings: &'a PromptSettings,
    pub character: &'a Character,
    pub profile: &'a UserProfile,
    pub history: &'a [Message],
    pub turn: Turn<'a>,
    /// Lorebook entries activated for this reply, in insertion order.
    pub lore: &'a [LoreInsert],
    /// The chat's author's note and how many messages from the end of the
    /// history it goes (0: after the last one).
    pub authors_note: (&'a str, u32),
    pub macros: &'a Macros<'a>,
    /// The id of the user message the turn is (fixes its `{{random}}`s).
    pub turn_key: &'a str,
}

/// An activated lorebook entry's text and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoreInsert {
    pub position: Position,
    pub content: String,
    /// Which book and entry, and why it activated, for PromptPreview.
    pub source: LoreSource,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoreSource {
    pub book: String,
    /// The entry's comment or name, else its id.
    pub entry: String,
    /// "constant", "key \"dragon\"", or "key \"x\" in entry \"y\"".
    pub reason: String,
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

impl<'a> Turn<'a> {
    /// The turn's text ("" for none): what lorebook keys are matched in first.
    pub fn text(self) -> &'a str {
        match self {
            Self::User(text) | Self::Continue(text) => text,
            Self::None => "",
        }
    }
}

pub fn build(input: &PromptInput<'_>) -> Vec<PromptMessage> {
    let macros = input.macros;
    let character = input.character;
    let lore = |wanted: fn(&Position) -> bool| {
        input.lore.iter().filter(move |l| wanted(&l.position)).map(|l| l.content.clone())
    };
    let (note, note_depth) = input.authors_note;
    let has_note = !note.trim().is_empty();
    let character_system = character.system_prompt.as_deref().filter(|s| !s.trim().is_empty());
    let system_prompt = match character_system {
        Some(own) => own.replace("{{original}}", &input.settings.system_prompt).trim().to_owned(),
        None => input.settings.system_prompt.clone(),
    };
    let labelled =
        |label: &str, text: &str| if text.trim().is_empty() { String::new() } else { format!("{label}{text}") };
    let mut layers = vec![input.settings.pre_system_prompt.clone(), system_prompt];
    layers.extend(lore(|p| *p == Position::BeforeCharacter));
    layers.push(character.description.clone());
    layers.push(labelled("{{char}}'s personality: ", &character.personality));
    layers.push(labelled("Scenario: ", &character.scenario));
    layers.extend(lore(|p| *p == Position::AfterCharacter));
    layers.push(input.profile.description.clone());
    if !has_note {
        // With no author's note, its entries stay with the definitions.
        layers.extend(lore(|p| matches!(p, Position::AuthorsNoteTop | Position::AuthorsNoteBottom)));
    }
    let system = layers
        .iter()
        .filter(|layer| !layer.trim().is_empty())
        .map(|layer| macros.apply(layer, "system"))
        .collect::<Vec<_>>()
        .join(LAYER_SEPARATOR);

    let mut messages = Vec::with_capacity(input.history.len() + 5);
    if !system.is_empty() {
        messages.push(PromptMessage::new(Role::System, system, Source::System));
    }
    let examples = lore(|p| *p == Position::ExamplesTop)
        .chain(example_dialogues(&character.mes_example).map(str::to_owned))
        .chain(lore(|p| *p == Position::ExamplesBottom));
    messages.extend(examples.filter(|text| !text.trim().is_empty()).enumerate().map(|(i, text)| {
        PromptMessage::new(Role::System, macros.apply(&text, &format!("example {i}")), Source::Example)
    }));

    let mut history: Vec<PromptMessage> = input
        .history
        .iter()
        .filter(|m| belongs_in_history(m))
        .map(|m| PromptMessage::new(m.role(), macros.apply(&m.content, &m.id), Source::History(m.id.clone())))
        .collect();
    let mut at_depth: Vec<(u32, PromptMessage)> = input
        .lore
        .iter()
        .filter_map(|l| match l.position {
            Position::AtDepth { depth, role } => {
                Some((depth, PromptMessage::new(chat_role(role), macros.apply(&l.content, "lore"), Source::Lore)))
            }
            _ => None,
        })
        .collect();
    if has_note {
        let note = lore(|p| *p == Position::AuthorsNoteTop)
            .chain([note.to_owned()])
            .chain(lore(|p| *p == Position::AuthorsNoteBottom))
            .collect::<Vec<_>>()
            .join("\n");
        at_depth.push((
            note_depth,
            PromptMessage::new(Role::System, macros.apply(&note, "authors note"), Source::AuthorsNote),
        ));
    }
    insert_at_depths(&mut history, at_depth);
    messages.extend(history);

    let post = character
        .post_history_instructions
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&input.settings.post_system_prompt);
    if !post.trim().is_empty() {
        messages.push(PromptMessage::new(Role::System, macros.apply(post, "post"), Source::PostHistory));
    }
    match input.turn {
        Turn::User(text) => {
            // Keyed as it will be once stored, so it reads the same then.
            let text = macros.apply(text, input.turn_key);
            messages.push(PromptMessage::new(Role::User, text, Source::NewMessage));
        }
        Turn::Continue(text) => {
            messages.push(PromptMessage::new(Role::Assistant, text.to_owned(), Source::ContinuedReply));
        }
        Turn::None => {}
    }
    messages
}

/// Puts each message `depth` messages from the end of `history` (0: after
/// the last; deeper than the history: before the first). Deepest first, so
/// each depth counts stored messages, not other insertions; equal depths
/// keep their order.
fn insert_at_depths(history: &mut Vec<PromptMessage>, mut inserts: Vec<(u32, PromptMessage)>) {
    inserts.sort_by_key(|(depth, _)| std::cmp::Reverse(*depth));
    let newest = history.len();
    for (inserted, (depth, message)) in inserts.into_iter().enumerate() {
        let at = newest.saturating_sub(depth as usize);
        history.insert(at + inserted, message);
    }
}

/// The `<START>`-separated blocks of a character's example dialogues.
fn example_dialogues(text: &str) -> impl Iterator<Item = &str> {
    text.split("<START>").map(str::trim).filter(|block| !block.is_empty())
}

fn chat_role(role: lorebook::Role) -> Role {
    match role {
        lorebook::Role::System => Role::System,
        lorebook::Role::User => Role::User,
        lorebook::Role::Assistant => Role::Assistant,
    }
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

pub fn substitute_names(text: &str, character: &str, user: &str) -> String {
    text.replace("{{char}}", character).replace("{{user}}", user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;

    fn macros() -> Macros<'static> {
        Macros { character: "Aria", user: "Sam", now: chrono::Utc::now(), last_message_at: None }
    }

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
            lore: &[],
            authors_note: ("", 0),
            macros: &macros(),
            turn_key: "new",
        });
        let got: Vec<(&str, &str)> = messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (
                    "system",
                    "Pre for Sam\n---\nYou are Aria.\n---\nAria is a bard who teases Sam.\n---\nSam is a traveller."
                ),
                ("assistant", "Hello, Sam!"),
                ("user", "hi"),
                ("user", "again"),
                ("assistant", "partial"),
                ("system", "Stay as Aria."),
                ("user", "new Aria"),
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
            lore: &[],
            authors_note: ("", 0),
            macros: &macros(),
            turn_key: "new",
        });
        let got: Vec<(&str, &str)> = messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
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
            lore: &[],
            authors_note: ("", 0),
            macros: &macros(),
            turn_key: "new",
        });
        let sent: Vec<ChatMessage> = messages.iter().map(PromptMessage::to_chat).collect();
        assert_eq!(sent, vec![ChatMessage { role: "user", content: "hello".into() }]);
    }

    #[test]
    fn a_continuation_ends_with_the_reply_to_go_on_from() {
        let settings = PromptSettings { post_system_prompt: "Post".into(), ..Default::default() };
        let mut character = character(None, None);
        character.description.clear();
        let (profile, history) = (profile(""), [message(Role::User, MessageStatus::Completed, "hi")]);
        let macros = macros();
        let got = |turn| {
            let input = PromptInput {
                settings: &settings,
                character: &character,
                profile: &profile,
                history: &history,
                turn,
                lore: &[],
                authors_note: ("", 0),
                macros: &macros,
                turn_key: "new",
            };
            build(&input).into_iter().map(|m| (m.role.as_str(), m.content)).collect::<Vec<_>>()
        };
        assert_eq!(
            got(Turn::Continue("Once upon")),
            vec![("user", "hi".into()), ("system", "Post".into()), ("assistant", "Once upon".into())]
        );
        assert_eq!(got(Turn::None), vec![("user", "hi".into()), ("system", "Post".into())]);
    }

    #[test]
    fn the_whole_card_and_activated_lore_in_their_places() {
        let settings = PromptSettings { system_prompt: "Global".into(), ..Default::default() };
        let character = Character {
            description: "{{char}} sings.".into(),
            system_prompt: Some("{{original}} Stay {{char}}.".into()),
            personality: "cheerful".into(),
            scenario: "a tavern".into(),
            mes_example: "<START>\n{{user}}: hi\n{{char}}: hello\n<START>\n{{char}}: la la".into(),
            ..Character::new("u", "Aria".into())
        };
        let profile = profile("{{user}} travels.");
        let history = [
            message(Role::User, MessageStatus::Completed, "one"),
            message(Role::Assistant, MessageStatus::Completed, "two"),
            message(Role::User, MessageStatus::Completed, "three"),
        ];
        let lore =
            |position, content: &str| LoreInsert { position, content: content.into(), source: LoreSource::default() };
        let lore = [
            lore(Position::BeforeCharacter, "before"),
            lore(Position::AfterCharacter, "after {{char}}"),
            lore(Position::ExamplesTop, "examples top"),
            lore(Position::AtDepth { depth: 1, role: lorebook::Role::System }, "depth 1"),
            lore(Position::AtDepth { depth: 0, role: lorebook::Role::User }, "depth 0"),
            lore(Position::AtDepth { depth: 9, role: lorebook::Role::Assistant }, "deepest"),
        ];
        let messages = build(&PromptInput {
            settings: &settings,
            character: &character,
            profile: &profile,
            history: &history,
            turn: Turn::User("four"),
            lore: &lore,
            authors_note: ("", 0),
            macros: &macros(),
            turn_key: "new",
        });
        let got: Vec<(&str, &str)> = messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (
                    "system",
                    "Global Stay Aria.\n---\nbefore\n---\nAria sings.\n---\nAria's personality: cheerful\n---\n\
                     Scenario: a tavern\n---\nafter Aria\n---\nSam travels."
                ),
                ("system", "examples top"),
                ("system", "Sam: hi\nAria: hello"),
                ("system", "Aria: la la"),
                ("assistant", "deepest"),
                ("user", "one"),
                ("assistant", "two"),
                ("system", "depth 1"),
                ("user", "three"),
                ("user", "depth 0"),
                ("user", "four"),
            ]
        );
    }

    #[test]
    fn the_authors_note_goes_its_depth_from_the_end_with_its_lore() {
        let settings = PromptSettings::default();
        let mut character = character(None, None);
        character.description.clear();
        let profile = profile("");
        let history: Vec<Message> =
            ["a", "b", "c"].iter().map(|t| message(Role::User, MessageStatus::Completed, t)).collect();
        let lore =
            [LoreInsert { position: Position::AuthorsNoteTop, content: "top".into(), source: LoreSource::default() }];
        let macros = macros();
        let at = |depth| {
            let input = PromptInput {
                settings: &settings,
                character: &character,
                profile: &profile,
                history: &history,
                turn: Turn::User("new"),
                lore: &lore,
                authors_note: ("Keep it short, {{user}}.", depth),
                macros: &macros,
                turn_key: "new",
            };
            build(&input).into_iter().map(|m| m.content).collect::<Vec<_>>()
        };
        let note = "top\nKeep it short, Sam.";
        assert_eq!(at(0), ["a", "b", "c", note, "new"]);
        assert_eq!(at(2), ["a", note, "b", "c", "new"]);
        assert_eq!(at(9), [note, "a", "b", "c", "new"], "beyond the history: before its first message");
    }
}
