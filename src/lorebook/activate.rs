//! Which entries a new message switches on, across several books.
//!
//! Per book: scan the new message and the book's last `scan_depth` history
//! messages; activate constant entries and those whose keys match (with the
//! secondary-key logic); optionally scan the activated entries' content for
//! more keys, a bounded number of rounds; then admit entries by priority
//! until the book's token budget is spent. Everything is a pure function of
//! the inputs and `seed`, so a regenerated reply sees the same world info.

use super::matching::{KeyMatcher, ScanText};
use super::types::{Entry, Lorebook, Position, SelectiveLogic};
use super::{DEFAULT_MAX_RECURSION, DEFAULT_SCAN_DEPTH};

/// Everything activation looks at.
pub struct ActivationInput<'a> {
    pub books: &'a [Lorebook],
    /// The message being answered; always scanned.
    pub message: &'a str,
    /// Earlier messages, newest first.
    pub history_newest_first: &'a [&'a str],
    /// Counts tokens the way the prompt's model does.
    pub count_tokens: &'a dyn Fn(&str) -> usize,
    /// Seeds the probability rolls; same seed, same rolls.
    pub seed: u64,
    /// Rounds of recursive scanning at most ([`DEFAULT_MAX_RECURSION`] is usual).
    pub max_recursion: u32,
}

impl<'a> ActivationInput<'a> {
    /// Input with the default recursion bound and seed 0.
    pub fn new(
        books: &'a [Lorebook],
        message: &'a str,
        history_newest_first: &'a [&'a str],
        count_tokens: &'a dyn Fn(&str) -> usize,
    ) -> Self {
        ActivationInput {
            books,
            message,
            history_newest_first,
            count_tokens,
            seed: 0,
            max_recursion: DEFAULT_MAX_RECURSION,
        }
    }
}

/// One activated entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    /// Index into [`ActivationInput::books`].
    pub book: usize,
    /// Index into that book's entries.
    pub entry: usize,
    pub reason: Reason,
    pub position: Position,
    pub insertion_order: i64,
    pub tokens: usize,
}

/// Why an entry activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Constant,
    /// This primary key matched the message or history.
    Key(String),
    /// This primary key matched the content of entry `via` of the same book.
    Recursive {
        key: String,
        via: usize,
    },
}

/// Runs activation; the result is sorted by insertion order (then book, entry).
pub fn activate(input: &ActivationInput<'_>) -> Vec<Activated> {
    let mut out: Vec<Activated> =
        input.books.iter().enumerate().flat_map(|(i, book)| activate_book(input, i, book)).collect();
    out.sort_by_key(|a| (a.insertion_order, a.book, a.entry));
    out
}

fn activate_book(input: &ActivationInput<'_>, book_index: usize, book: &Lorebook) -> Vec<Activated> {
    let depth = book.scan_depth.unwrap_or(DEFAULT_SCAN_DEPTH) as usize;
    let mut text = String::from(input.message);
    for message in input.history_newest_first.iter().take(depth) {
        text.push('\n');
        text.push_str(message);
    }
    let scan = ScanText::new(text);
    // Compiled once per book: recursion matches the same keys against many texts.
    let matchers: Vec<EntryMatchers> = book.entries.iter().map(EntryMatchers::new).collect();

    // An entry is settled once it activated, is disabled, or matched and lost
    // its probability roll: the roll is a function of the seed, so a later
    // recursion round would lose it again.
    let mut settled = vec![false; book.entries.len()];
    let mut found: Vec<(usize, Reason)> = Vec::new();

    for (i, entry) in book.entries.iter().enumerate() {
        if !entry.enabled {
            settled[i] = true;
            continue;
        }
        let reason =
            if entry.constant { Some(Reason::Constant) } else { matchers[i].matching_key(&scan).map(Reason::Key) };
        if let Some(reason) = reason {
            let wins = wins_roll(input.seed, book_index, i, entry.probability);
            settled[i] = true;
            if wins {
                found.push((i, reason));
            }
        }
    }

    if book.recursive_scanning {
        let mut frontier: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
        for _ in 0..input.max_recursion {
            let mut next = Vec::new();
            for &via in &frontier {
                let content = ScanText::new(book.entries[via].content.clone());
                for (i, entry) in book.entries.iter().enumerate() {
                    if settled[i] {
                        continue;
                    }
                    if let Some(key) = matchers[i].matching_key(&content) {
                        let wins = wins_roll(input.seed, book_index, i, entry.probability);
                        settled[i] = true;
                        if wins {
                            found.push((i, Reason::Recursive { key, via }));
                            next.push(i);
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
    }

    admit_within_budget(input, book_index, book, found)
}

/// An entry's keys, compiled with its settings.
struct EntryMatchers<'e> {
    primary: Vec<(&'e str, KeyMatcher)>,
    /// Empty when secondary keys do not apply (not selective, or none given).
    secondary: Vec<KeyMatcher>,
    logic: SelectiveLogic,
}

impl<'e> EntryMatchers<'e> {
    fn new(entry: &'e Entry) -> Self {
        let primary = entry.keys.iter().map(|k| (k.as_str(), KeyMatcher::new(k, entry))).collect();
        let secondary = if entry.selective {
            entry.secondary_keys.iter().filter(|k| !k.trim().is_empty()).map(|k| KeyMatcher::new(k, entry)).collect()
        } else {
            Vec::new()
        };
        EntryMatchers { primary, secondary, logic: entry.selective_logic }
    }

    /// The first primary key that matches, if the secondary keys agree.
    fn matching_key(&self, text: &ScanText) -> Option<String> {
        let (key, _) = self.primary.iter().find(|(_, m)| m.is_match(text))?;
        if self.secondary.is_empty() {
            return Some((*key).to_owned());
        }
        let hits = self.secondary.iter().filter(|m| m.is_match(text)).count();
        let holds = match self.logic {
            SelectiveLogic::AndAny => hits > 0,
            SelectiveLogic::AndAll => hits == self.secondary.len(),
            SelectiveLogic::NotAny => hits == 0,
            SelectiveLogic::NotAll => hits < self.secondary.len(),
        };
        holds.then(|| (*key).to_owned())
    }
}

/// Whether an entry with `probability` percent activates under this seed.
fn wins_roll(seed: u64, book: usize, entry: usize, probability: Option<u32>) -> bool {
    match probability {
        None => true,
        Some(p) if p >= 100 => true,
        Some(p) => roll(seed, book, entry) < u64::from(p),
    }
}

/// A number in 0..100 from (seed, book, entry): splitmix64, which spreads
/// neighbouring inputs evenly, so entries 1 and 2 do not roll alike.
fn roll(seed: u64, book: usize, entry: usize) -> u64 {
    let mut x = seed ^ splitmix64(((book as u64) << 32) ^ entry as u64);
    x = splitmix64(x);
    x % 100
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Constant entries first, then higher priority (default: insertion order),
/// admitted until the next one would overflow the budget. Stopping there (not
/// skipping to smaller entries) keeps a lower priority from ever displacing a
/// higher one.
fn admit_within_budget(
    input: &ActivationInput<'_>,
    book_index: usize,
    book: &Lorebook,
    mut found: Vec<(usize, Reason)>,
) -> Vec<Activated> {
    found.sort_by_key(|(i, reason)| {
        let e = &book.entries[*i];
        (!matches!(reason, Reason::Constant), std::cmp::Reverse(e.priority.unwrap_or(e.insertion_order)), *i)
    });
    let budget = book.token_budget.map(|b| b as usize);
    let mut used = 0usize;
    let mut out = Vec::new();
    for (i, reason) in found {
        let entry = &book.entries[i];
        let tokens = (input.count_tokens)(&entry.content);
        if budget.is_some_and(|b| used.saturating_add(tokens) > b) {
            break;
        }
        used = used.saturating_add(tokens);
        out.push(Activated {
            book: book_index,
            entry: i,
            reason,
            position: entry.position,
            insertion_order: entry.insertion_order,
            tokens,
        });
    }
    out
}

#[cfg(test)]
#[path = "activate_tests.rs"]
mod tests;
