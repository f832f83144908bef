//! Import → export → import is the identity for both formats, on realistic
//! samples with fields nobody modelled.

use serde_json::{Value, json};

use super::*;

/// A character book as SillyTavern exports it inside a V2/V3 card, plus
/// fields from other tools.
fn card_book_sample() -> Value {
    json!({
        "name": "Eldoria",
        "description": "The kingdom and its people",
        "scan_depth": 6,
        "token_budget": 1024,
        "recursive_scanning": true,
        "extensions": {"chub": {"id": 1234}},
        "x_tool_version": "2.1",
        "entries": [
            {
                "id": 0,
                "keys": ["Eldoria", "kingdom"],
                "secondary_keys": ["capital"],
                "comment": "The kingdom",
                "content": "Eldoria is a river kingdom.",
                "constant": false,
                "selective": true,
                "insertion_order": 100,
                "enabled": true,
                "position": "before_char",
                "use_regex": false,
                "extensions": {
                    "position": 0, "exclude_recursion": false, "display_index": 0,
                    "probability": 100, "useProbability": true, "depth": 4, "role": 0,
                    "selectiveLogic": 3, "group": "", "match_whole_words": null,
                    "case_sensitive": null, "sticky": 0, "automation_id": ""
                }
            },
            {
                "id": 1,
                "keys": ["/queen (mira|miraen)/i"],
                "content": "Queen Miraen rules from the river throne.",
                "name": "Queen",
                "priority": 10,
                "case_sensitive": true,
                "insertion_order": 50,
                "enabled": false,
                "position": "after_char",
                "extensions": {"position": 4, "depth": 2, "role": 1, "probability": 40, "useProbability": true},
                "x_editor_color": "#ff0000"
            },
            {
                "keys": ["bridge"],
                "content": "The old bridge.",
                "insertion_order": 5,
                "extensions": {"position": 6, "probability": 70, "useProbability": false, "match_whole_words": true}
            }
        ]
    })
}

/// A SillyTavern world-info file, as its UI saves one.
fn world_info_sample() -> Value {
    json!({
        "name": "Eldoria lore",
        "originalData": {"name": "Eldoria", "entries": []},
        "entries": {
            "0": {
                "uid": 0, "key": ["Eldoria"], "keysecondary": [], "comment": "Kingdom",
                "content": "A river kingdom.", "constant": true, "vectorized": false, "selective": true,
                "selectiveLogic": 0, "addMemo": true, "order": 100, "position": 0, "disable": false,
                "excludeRecursion": false, "preventRecursion": false, "delayUntilRecursion": false,
                "probability": 100, "useProbability": true, "depth": 4, "group": "", "groupOverride": false,
                "groupWeight": 100, "scanDepth": null, "caseSensitive": null, "matchWholeWords": null,
                "useGroupScoring": null, "automationId": "", "role": null, "sticky": 0, "cooldown": 0,
                "delay": 0, "displayIndex": 0
            },
            "2": {
                "uid": 2, "key": ["Miraen", "queen"], "keysecondary": ["throne", "crown"], "comment": "Queen",
                "content": "Queen Miraen.", "constant": false, "selective": true, "selectiveLogic": 2,
                "order": 20, "position": 4, "disable": true, "probability": 25, "useProbability": true,
                "depth": 3, "role": 2, "caseSensitive": true, "matchWholeWords": false, "displayIndex": 1
            },
            "10": {
                "uid": 10, "key": "bridge", "keysecondary": [], "comment": "", "content": "The bridge.",
                "constant": false, "selective": false, "selectiveLogic": 1, "order": 1, "position": 5,
                "disable": false, "probability": 60, "useProbability": false, "depth": 4, "role": 0,
                "caseSensitive": false, "matchWholeWords": true
            }
        }
    })
}

#[test]
fn card_book_import_reads_spec_and_sillytavern_fields() {
    let book = card_book::from_value(card_book_sample()).expect("sample imports");
    assert_eq!(book.name, "Eldoria");
    assert_eq!((book.scan_depth, book.token_budget, book.recursive_scanning), (Some(6), Some(1024), true));
    assert_eq!(book.extensions["chub"], json!({"id": 1234}));
    assert_eq!(book.extensions[card_book::UNKNOWN_FIELDS_KEY], json!({"x_tool_version": "2.1"}));

    let [kingdom, queen, bridge] = &book.entries[..] else { panic!("three entries") };
    assert_eq!(kingdom.selective_logic, SelectiveLogic::AndAll);
    assert_eq!(kingdom.probability, Some(100));
    assert_eq!(kingdom.position, Position::BeforeCharacter);
    // depth/role of a non-depth entry are not modelled, so they stay.
    assert_eq!(kingdom.extensions["depth"], json!(4));
    assert_eq!(kingdom.extensions["display_index"], json!(0));
    assert!(!kingdom.extensions.contains_key("selectiveLogic"));

    assert_eq!(queen.position, Position::AtDepth { depth: 2, role: Role::User });
    assert_eq!((queen.enabled, queen.case_sensitive, queen.priority), (false, Some(true), Some(10)));
    assert_eq!(queen.probability, Some(40));
    assert_eq!(queen.extensions[card_book::UNKNOWN_FIELDS_KEY], json!({"x_editor_color": "#ff0000"}));

    assert_eq!(bridge.id, None);
    assert_eq!(bridge.position, Position::ExamplesBottom);
    assert_eq!(bridge.probability, None);
    assert_eq!(bridge.extensions["probability"], json!(70));
    assert_eq!(bridge.match_whole_words, Some(true));
}

#[test]
fn card_book_round_trips() {
    let first = card_book::from_value(card_book_sample()).expect("sample imports");
    let exported = card_book::to_value(&first);
    // Unknown top-level fields come back at the top level.
    assert_eq!(exported["x_tool_version"], json!("2.1"));
    assert_eq!(exported["entries"][1]["x_editor_color"], json!("#ff0000"));
    assert_eq!(exported["entries"][1]["extensions"]["position"], json!(4));
    assert_eq!(exported["entries"][1]["position"], json!("after_char"));
    let second = card_book::from_value(exported).expect("export imports");
    assert_eq!(first, second);
    assert_eq!(card_book::from_json(&card_book::to_json(&second)), Ok(first));
}

#[test]
fn world_info_import_reads_sillytavern_fields() {
    let book = world_info::from_value(world_info_sample()).expect("sample imports");
    assert_eq!(book.name, "Eldoria lore");
    assert!(book.extensions.contains_key("originalData"));
    let ids: Vec<_> = book.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![Some(0), Some(2), Some(10)], "numeric key order");

    let [kingdom, queen, bridge] = &book.entries[..] else { panic!("three entries") };
    assert!(kingdom.constant);
    assert_eq!(kingdom.extensions["addMemo"], json!(true));
    assert_eq!(kingdom.extensions["role"], Value::Null, "role of a non-depth entry stays as it was");
    assert_eq!(kingdom.case_sensitive, None);

    assert_eq!(queen.position, Position::AtDepth { depth: 3, role: Role::Assistant });
    assert_eq!(queen.selective_logic, SelectiveLogic::NotAny);
    assert!(!queen.enabled);
    assert_eq!(queen.probability, Some(25));
    assert_eq!(queen.secondary_keys, vec!["throne", "crown"]);

    assert_eq!(bridge.keys, vec!["bridge"]);
    assert_eq!(bridge.position, Position::ExamplesTop);
    assert_eq!(bridge.selective_logic, SelectiveLogic::NotAll);
    assert_eq!((bridge.case_sensitive, bridge.match_whole_words), (Some(false), Some(true)));
}

#[test]
fn world_info_round_trips() {
    let first = world_info::from_value(world_info_sample()).expect("sample imports");
    let exported = world_info::to_value(&first);
    assert_eq!(exported["entries"]["2"]["displayIndex"], json!(1));
    assert_eq!(exported["entries"]["0"]["groupWeight"], json!(100));
    let second = world_info::from_value(exported).expect("export imports");
    assert_eq!(first, second);
    assert_eq!(world_info::from_json(&world_info::to_json(&second)), Ok(first));
}

#[test]
fn a_book_converts_between_the_formats() {
    let from_st = world_info::from_value(world_info_sample()).expect("sample imports");
    let via_card = card_book::from_value(card_book::to_value(&from_st)).expect("card form imports");
    assert_eq!(from_st, via_card);
}

#[test]
fn errors_name_the_entry_and_field() {
    let bad = json!({"entries": {"3": {"key": ["a"], "position": 9}}});
    let err = world_info::from_value(bad).expect_err("position 9 is unknown");
    assert_eq!(err.to_string(), "lorebook entry 3: `position` must be a position number from 0 to 6");

    let bad = json!({"entries": [{"keys": "a", "extensions": {"selectiveLogic": "x"}}]});
    let err = card_book::from_value(bad).expect_err("selectiveLogic must be a number");
    assert_eq!(err.to_string(), "lorebook entry 0: `extensions.selectiveLogic` must be an integer");

    let err = world_info::from_json(b"{\"entries\": {,}}").expect_err("syntax");
    assert!(matches!(err, LorebookError::InvalidJson { line: 1, column: 14, .. }), "{err}");
    assert!(err.to_string().contains("line 1, column 14"), "{err}");

    assert_eq!(world_info::from_json(b"[]"), Err(LorebookError::NotAnObject));
    assert_eq!(world_info::from_json(b"{}"), Err(LorebookError::MissingEntries));
}
