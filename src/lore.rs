//! Which lorebook entries a reply's prompt gets: the chat's books scanned
//! against the turn being answered and the recent history (see
//! [`crate::lorebook::activate`](mod@crate::lorebook::activate)), as
//! [`LoreInsert`]s for [`crate::prompt`].

use crate::{
    lorebook::{ActivationInput, Lorebook, Reason, activate},
    prompt::{LoreInsert, LoreSource},
    store::models::Message,
};

/// Tokens in `text`, estimated at four bytes each until the prompt engine
/// counts with the model's tokenizer. Used only for the books' budgets.
fn estimated_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// The entries of `books` that `turn` (the message being answered, or the
/// reply being continued) and `history` (oldest first) activate, in
/// insertion order. `seed` makes probability rolls repeatable per reply.
pub fn for_reply(books: &[Lorebook], turn: &str, history: &[Message], seed: u64) -> Vec<LoreInsert> {
    if books.is_empty() {
        return Vec::new();
    }
    let newest_first: Vec<&str> = history.iter().rev().map(|m| m.content.as_str()).collect();
    let input = ActivationInput { seed, ..ActivationInput::new(books, turn, &newest_first, &estimated_tokens) };
    activate(&input)
        .into_iter()
        .map(|hit| {
            let book = &books[hit.book];
            let entry = &book.entries[hit.entry];
            let reason = match &hit.reason {
                Reason::Constant => "constant".to_owned(),
                Reason::Key(key) => format!("key {key:?}"),
                Reason::Recursive { key, via } => format!("key {key:?} in entry {:?}", label(book, *via)),
            };
            LoreInsert {
                position: hit.position,
                content: entry.content.clone(),
                source: LoreSource { book: book.name.clone(), entry: label(book, hit.entry), reason },
            }
        })
        .collect()
}

/// How an entry is named to people: its comment, its name, or its id.
fn label(book: &Lorebook, index: usize) -> String {
    let entry = &book.entries[index];
    [&entry.comment, &entry.name]
        .into_iter()
        .find(|text| !text.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| entry.id.map_or_else(|| format!("#{index}"), |id| format!("#{id}")))
}

/// A reply's seed for the probability rolls: the same stream rolls the same.
pub fn seed(stream_id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same on every run and every replica.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    stream_id.hash(&mut hasher);
    hasher.finish()
}
