//! One test per activation rule.

use super::*;
use crate::lorebook::types::Role;

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn entry(keys: &[&str], content: &str) -> Entry {
    Entry { keys: keys.iter().map(|k| k.to_string()).collect(), content: content.to_owned(), ..Entry::default() }
}

fn book(entries: Vec<Entry>) -> Lorebook {
    Lorebook { entries, ..Lorebook::default() }
}

fn run(books: &[Lorebook], message: &str, history: &[&str]) -> Vec<Activated> {
    activate(&ActivationInput::new(books, message, history, &words))
}

fn ids(out: &[Activated]) -> Vec<(usize, usize)> {
    out.iter().map(|a| (a.book, a.entry)).collect()
}

#[test]
fn a_matching_key_activates_and_reports_itself() {
    let books = [book(vec![entry(&["dragon", "wyrm"], "Dragons breathe fire."), entry(&["elf"], "Elves.")])];
    let out = run(&books, "A WYRM lands.", &[]);
    assert_eq!(ids(&out), vec![(0, 0)]);
    assert_eq!(out[0].reason, Reason::Key("wyrm".into()));
    assert_eq!(out[0].tokens, 3);
    assert_eq!(out[0].position, Position::BeforeCharacter);
}

#[test]
fn constant_entries_always_activate_and_disabled_ones_never() {
    let constant = Entry { constant: true, ..entry(&[], "Always.") };
    let disabled = Entry { enabled: false, constant: true, ..entry(&["dragon"], "Never.") };
    let books = [book(vec![constant, disabled])];
    let out = run(&books, "dragon", &[]);
    assert_eq!(ids(&out), vec![(0, 0)]);
    assert_eq!(out[0].reason, Reason::Constant);
}

#[test]
fn scan_depth_limits_the_history_scanned() {
    let mut b = book(vec![entry(&["dragon"], "x")]);
    b.scan_depth = Some(2);
    let books = [b];
    assert_eq!(run(&books, "hi", &["a", "dragon"]).len(), 1);
    assert!(run(&books, "hi", &["a", "b", "dragon"]).is_empty());
    // The default depth is 4.
    let books = [book(vec![entry(&["dragon"], "x")])];
    assert_eq!(run(&books, "hi", &["a", "b", "c", "dragon"]).len(), 1);
    assert!(run(&books, "hi", &["a", "b", "c", "d", "dragon"]).is_empty());
}

#[test]
fn secondary_logic_all_four_ways() {
    let with = |logic| Entry {
        selective: true,
        selective_logic: logic,
        secondary_keys: vec!["red".into(), "big".into()],
        ..entry(&["dragon"], "x")
    };
    let cases = [
        (SelectiveLogic::AndAny, [false, true, true]),
        (SelectiveLogic::AndAll, [false, false, true]),
        (SelectiveLogic::NotAny, [true, false, false]),
        (SelectiveLogic::NotAll, [true, true, false]),
    ];
    for (logic, expected) in cases {
        let books = [book(vec![with(logic)])];
        for (text, want) in ["a dragon", "a red dragon", "a big red dragon"].into_iter().zip(expected) {
            assert_eq!(run(&books, text, &[]).len() == 1, want, "{logic:?} on {text:?}");
        }
    }
    // Without `selective`, secondary keys are ignored.
    let off = Entry { selective: false, ..with(SelectiveLogic::AndAll) };
    assert_eq!(run(&[book(vec![off])], "a dragon", &[]).len(), 1);
}

#[test]
fn case_whole_words_and_regex_keys_follow_the_entry() {
    let cs = Entry { case_sensitive: Some(true), ..entry(&["Ann"], "x") };
    let ww = Entry { match_whole_words: Some(true), ..entry(&["ann"], "y") };
    let re = entry(&["/\\bbo+b\\b/i"], "z");
    let books = [book(vec![cs, ww, re])];
    assert_eq!(ids(&run(&books, "ANN met BOOOB", &[])), vec![(0, 1), (0, 2)]);
    assert_eq!(ids(&run(&books, "Annabel", &[])), vec![(0, 0)]);
}

#[test]
fn recursion_follows_content_up_to_the_bound() {
    // a -> b -> c -> d: each entry's content names the next one's key.
    let chain = vec![
        entry(&["alpha"], "see beta"),
        entry(&["beta"], "see gamma"),
        entry(&["gamma"], "see delta"),
        entry(&["delta"], "end"),
    ];
    let mut b = book(chain);
    b.recursive_scanning = true;
    let books = [b.clone()];
    let out = run(&books, "alpha", &[]);
    assert_eq!(ids(&out), vec![(0, 0), (0, 1), (0, 2), (0, 3)]);
    assert_eq!(out[1].reason, Reason::Recursive { key: "beta".into(), via: 0 });
    assert_eq!(out[3].reason, Reason::Recursive { key: "delta".into(), via: 2 });

    let bounded = activate(&ActivationInput { max_recursion: 1, ..ActivationInput::new(&books, "alpha", &[], &words) });
    assert_eq!(ids(&bounded), vec![(0, 0), (0, 1)]);

    b.recursive_scanning = false;
    assert_eq!(ids(&run(&[b], "alpha", &[])), vec![(0, 0)]);
}

#[test]
fn probability_rolls_are_deterministic_and_roughly_fair() {
    let entries: Vec<Entry> = (0..200).map(|_| Entry { probability: Some(30), ..entry(&["x"], "c") }).collect();
    let books = [book(entries)];
    let at = |seed| activate(&ActivationInput { seed, ..ActivationInput::new(&books, "x", &[], &words) });
    assert_eq!(at(7), at(7));
    assert_ne!(ids(&at(7)), ids(&at(8)));
    let n = at(7).len();
    assert!((30..=90).contains(&n), "{n} of 200 at 30%");

    let never = Entry { probability: Some(0), ..entry(&["x"], "c") };
    let always = Entry { probability: Some(100), ..entry(&["x"], "c") };
    assert_eq!(ids(&run(&[book(vec![never, always])], "x", &[])), vec![(0, 1)]);
}

#[test]
fn budget_admits_constants_then_priority_and_stops_at_overflow() {
    let mut b = book(vec![
        Entry { insertion_order: 1, ..entry(&["x"], "one two three") },
        Entry { insertion_order: 2, priority: Some(50), ..entry(&["x"], "four five") },
        Entry { insertion_order: 3, constant: true, ..entry(&[], "six") },
        Entry { insertion_order: 4, ..entry(&["x"], "seven") },
    ]);
    b.token_budget = Some(6);
    let out = run(&[b], "x", &[]);
    // Constant (1 token), then priority 50 (2), then priority 4 (1); the entry
    // with priority 1 (3 tokens) would make 7 > 6. Output is in insertion order.
    assert_eq!(ids(&out), vec![(0, 1), (0, 2), (0, 3)]);
    assert_eq!(out.iter().map(|a| a.tokens).sum::<usize>(), 4);
}

#[test]
fn books_are_independent_and_output_is_in_insertion_order() {
    let a = book(vec![Entry { insertion_order: 20, ..entry(&["x"], "a") }]);
    let mut b = book(vec![Entry {
        insertion_order: 10,
        position: Position::AtDepth { depth: 2, role: Role::User },
        ..entry(&["x"], "b")
    }]);
    b.scan_depth = Some(0);
    let out = run(&[a, b], "x", &[]);
    assert_eq!(ids(&out), vec![(1, 0), (0, 0)]);
    assert_eq!(out[0].position, Position::AtDepth { depth: 2, role: Role::User });
}
