//! Mutated real cards (bytes flipped, inserted, deleted, truncated) never make
//! import panic, and it answers quickly with bounded output.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::samples::{self, bytes};
use super::{MAX_INPUT_BYTES, import};

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    match *m {
        Mutation::Flip(i, x) => {
            let i = i % data.len();
            data[i] ^= x;
        }
        Mutation::Insert(i, b) => data.insert(i % (data.len() + 1), b),
        Mutation::Delete(i) => {
            data.remove(i % data.len());
        }
        Mutation::Truncate(i) => data.truncate(i % data.len()),
    }
}

fn inputs() -> Vec<Vec<u8>> {
    vec![
        bytes(&samples::v3_json()),
        bytes(&samples::v1_json()),
        samples::png(&[("chara", &samples::v2_json()), ("ccv3", &samples::v3_json())]),
        samples::apng(&samples::v2_json()),
        samples::charx(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_cards_never_panic(which in 0..5usize, mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut data = inputs().swap_remove(which);
        for m in &mutations {
            apply(&mut data, m);
        }
        let started = Instant::now();
        let result = import(&data, "fuzz");
        prop_assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        if let Ok(card) = result {
            prop_assert!(!card.card.name.trim().is_empty());
            prop_assert!(card.avatar.map_or(0, |a| a.len()) <= MAX_INPUT_BYTES);
        }
    }
}
