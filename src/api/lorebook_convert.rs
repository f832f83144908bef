//! Lorebooks and their entries to and from protobuf. Each conversion
//! destructures the whole source, so a new field fails the build until it is
//! handled here.

use super::{convert::timestamp, pb};
use crate::{
    error::{Error, Result},
    lorebook::{Entry, Lorebook, Position, Role, SelectiveLogic},
    lorebooks::{EntryInput, LorebookView},
};

/// A probability is a percentage.
const PROBABILITY_MAX: u32 = 100;

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<LorebookView> for pb::Lorebook {
    fn from(view: LorebookView) -> Self {
        let LorebookView { id, book, entry_count, character_ids, chat_session_ids, created_at, updated_at } = view;
        let Lorebook {
            name,
            description,
            scan_depth,
            token_budget,
            recursive_scanning,
            // Written back on export only.
            extensions: _,
            entries,
        } = book;
        Self {
            id,
            name,
            description,
            scan_depth,
            token_budget,
            recursive_scanning,
            entries: entries.into_iter().map(pb::LorebookEntry::from).collect(),
            character_ids,
            chat_session_ids,
            created_at: timestamp(created_at),
            updated_at: timestamp(updated_at),
            entry_count: count(entry_count),
        }
    }
}

impl From<Entry> for pb::LorebookEntry {
    fn from(entry: Entry) -> Self {
        let Entry {
            id,
            keys,
            secondary_keys,
            // Not in the API: kept as they are by updates, written on export.
            selective: _,
            name: _,
            use_regex: _,
            priority: _,
            extensions: _,
            selective_logic,
            content,
            comment,
            constant,
            enabled,
            case_sensitive,
            match_whole_words,
            insertion_order,
            position,
            probability,
        } = entry;
        let (position, depth, depth_role) = match position {
            Position::BeforeCharacter => (pb::EntryPosition::BeforeCharacter, 0, Role::System),
            Position::AfterCharacter => (pb::EntryPosition::AfterCharacter, 0, Role::System),
            Position::AuthorsNoteTop => (pb::EntryPosition::AuthorsNoteTop, 0, Role::System),
            Position::AuthorsNoteBottom => (pb::EntryPosition::AuthorsNoteBottom, 0, Role::System),
            Position::ExamplesTop => (pb::EntryPosition::ExamplesTop, 0, Role::System),
            Position::ExamplesBottom => (pb::EntryPosition::ExamplesBottom, 0, Role::System),
            Position::AtDepth { depth, role } => (pb::EntryPosition::AtDepth, depth, role),
        };
        Self {
            // Every stored entry has an id (see lorebooks::read).
            id: id.unwrap_or_default(),
            keys,
            secondary_keys,
            selective_logic: selective_logic_to_pb(selective_logic).into(),
            content,
            comment,
            constant,
            enabled,
            case_sensitive,
            match_whole_words,
            insertion_order,
            position: position.into(),
            depth,
            depth_role: role_to_pb(depth_role).into(),
            probability,
        }
    }
}

/// An entry as a client wrote it; its id is not the client's to choose.
impl TryFrom<pb::LorebookEntry> for EntryInput {
    type Error = Error;

    fn try_from(entry: pb::LorebookEntry) -> Result<Self> {
        let pb::LorebookEntry {
            id: _,
            keys,
            secondary_keys,
            selective_logic,
            content,
            comment,
            constant,
            enabled,
            case_sensitive,
            match_whole_words,
            insertion_order,
            position,
            depth,
            depth_role,
            probability,
        } = entry;
        let selective_logic = match pb::SelectiveLogic::try_from(selective_logic) {
            Ok(pb::SelectiveLogic::AndAny) => SelectiveLogic::AndAny,
            Ok(pb::SelectiveLogic::NotAll) => SelectiveLogic::NotAll,
            Ok(pb::SelectiveLogic::NotAny) => SelectiveLogic::NotAny,
            Ok(pb::SelectiveLogic::AndAll) => SelectiveLogic::AndAll,
            Err(_) => return Err(not_an("entry.selective_logic", selective_logic, "SelectiveLogic")),
        };
        let role = match pb::EntryRole::try_from(depth_role) {
            Ok(pb::EntryRole::System) => Role::System,
            Ok(pb::EntryRole::User) => Role::User,
            Ok(pb::EntryRole::Assistant) => Role::Assistant,
            Err(_) => return Err(not_an("entry.depth_role", depth_role, "EntryRole")),
        };
        let position = match pb::EntryPosition::try_from(position) {
            Ok(pb::EntryPosition::BeforeCharacter) => Position::BeforeCharacter,
            Ok(pb::EntryPosition::AfterCharacter) => Position::AfterCharacter,
            Ok(pb::EntryPosition::AuthorsNoteTop) => Position::AuthorsNoteTop,
            Ok(pb::EntryPosition::AuthorsNoteBottom) => Position::AuthorsNoteBottom,
            Ok(pb::EntryPosition::ExamplesTop) => Position::ExamplesTop,
            Ok(pb::EntryPosition::ExamplesBottom) => Position::ExamplesBottom,
            Ok(pb::EntryPosition::AtDepth) => Position::AtDepth { depth, role },
            Err(_) => return Err(not_an("entry.position", position, "EntryPosition")),
        };
        if let Some(p) = probability.filter(|p| *p > PROBABILITY_MAX) {
            return Err(Error::invalid("entry.probability", format!("is a percentage from 0 to 100, got {p}")));
        }
        Ok(EntryInput {
            keys,
            secondary_keys,
            selective_logic,
            content,
            comment,
            constant,
            enabled,
            case_sensitive,
            match_whole_words,
            insertion_order,
            position,
            probability,
        })
    }
}

fn not_an(field: &str, value: i32, enum_name: &str) -> Error {
    Error::invalid(field, format!("is {value}, not one of the {enum_name} values"))
}

fn selective_logic_to_pb(logic: SelectiveLogic) -> pb::SelectiveLogic {
    match logic {
        SelectiveLogic::AndAny => pb::SelectiveLogic::AndAny,
        SelectiveLogic::NotAll => pb::SelectiveLogic::NotAll,
        SelectiveLogic::NotAny => pb::SelectiveLogic::NotAny,
        SelectiveLogic::AndAll => pb::SelectiveLogic::AndAll,
    }
}

fn role_to_pb(role: Role) -> pb::EntryRole {
    match role {
        Role::System => pb::EntryRole::System,
        Role::User => pb::EntryRole::User,
        Role::Assistant => pb::EntryRole::Assistant,
    }
}
