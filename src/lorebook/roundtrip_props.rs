//! Property: any book the model can hold survives export and import in both
//! formats, and mangled JSON never makes import panic.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é/]{0,12}"
}

/// Unknown fields: names no format uses, values of every JSON kind but floats
/// (which are not the point here).
fn unknown_fields() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        prop::collection::vec(text(), 0..3).prop_map(Value::from),
    ];
    prop::collection::btree_map("x_[a-z]{1,6}", value, 0..3).prop_map(|m| m.into_iter().collect())
}

fn position() -> impl Strategy<Value = Position> {
    prop_oneof![
        Just(Position::BeforeCharacter),
        Just(Position::AfterCharacter),
        Just(Position::AuthorsNoteTop),
        Just(Position::AuthorsNoteBottom),
        Just(Position::ExamplesTop),
        Just(Position::ExamplesBottom),
        (0..50u32, prop_oneof![Just(Role::System), Just(Role::User), Just(Role::Assistant)])
            .prop_map(|(depth, role)| Position::AtDepth { depth, role }),
    ]
}

fn logic() -> impl Strategy<Value = SelectiveLogic> {
    prop_oneof![
        Just(SelectiveLogic::AndAny),
        Just(SelectiveLogic::AndAll),
        Just(SelectiveLogic::NotAny),
        Just(SelectiveLogic::NotAll)
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let keys = (prop::collection::vec(text(), 0..3), prop::collection::vec(text(), 0..3), any::<bool>(), logic());
    let texts = (text(), text(), text());
    let flags = (any::<bool>(), any::<bool>(), any::<Option<bool>>(), any::<Option<bool>>(), any::<bool>());
    let order = (any::<Option<i64>>(), any::<i64>(), any::<Option<i64>>(), position(), prop::option::of(0..=100u32));
    (keys, texts, flags, order, unknown_fields()).prop_map(
        |(
            (keys, secondary_keys, selective, selective_logic),
            (content, name, comment),
            (constant, enabled, case_sensitive, match_whole_words, use_regex),
            (id, insertion_order, priority, position, probability),
            extensions,
        )| Entry {
            id,
            keys,
            secondary_keys,
            selective,
            selective_logic,
            content,
            name,
            comment,
            constant,
            enabled,
            case_sensitive,
            match_whole_words,
            use_regex,
            insertion_order,
            priority,
            position,
            probability,
            extensions,
        },
    )
}

fn book() -> impl Strategy<Value = Lorebook> {
    let settings = (text(), text(), any::<Option<u32>>(), any::<Option<u32>>(), any::<bool>());
    (settings, unknown_fields(), prop::collection::vec(entry(), 0..5)).prop_map(
        |((name, description, scan_depth, token_budget, recursive_scanning), extensions, entries)| Lorebook {
            name,
            description,
            scan_depth,
            token_budget,
            recursive_scanning,
            extensions,
            entries,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_book_survives_the_card_format(book in book()) {
        prop_assert_eq!(card_book::from_json(&card_book::to_json(&book)), Ok(book));
    }

    #[test]
    fn any_book_with_ordered_ids_survives_world_info(mut book in book()) {
        // World info keys entries by uid and reads them back in uid order.
        for (i, entry) in book.entries.iter_mut().enumerate() {
            entry.id = Some(i as i64 * 3);
        }
        prop_assert_eq!(world_info::from_json(&world_info::to_json(&book)), Ok(book));
    }

    #[test]
    fn mangled_json_never_panics(book in book(), cut in any::<usize>(), flip in any::<(usize, u8)>()) {
        for mut data in [card_book::to_json(&book), world_info::to_json(&book)] {
            let i = flip.0 % data.len();
            data[i] ^= flip.1;
            data.truncate(cut % (data.len() + 1));
            let _ = card_book::from_json(&data);
            let _ = world_info::from_json(&data);
        }
    }
}
