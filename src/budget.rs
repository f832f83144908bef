//! The context budget: which of a prompt's messages fit the model's context.
//!
//! Budget = context length − the reply's reserve − a small margin. Every part
//! that is not stored history always goes in (system layers, examples, lore,
//! the author's note, post-history instructions, the new message); history
//! fills what is left, newest first, whole messages only. Pure.

use crate::{
    error::{Error, Result},
    prompt::{PromptMessage, Source},
    tokens::{ModelTokens, PER_PROMPT},
};

/// Tokens kept free beyond the reply's reserve: counts of other tokenizers
/// and provider-side wrapping differ by a few.
pub const MARGIN_TOKENS: usize = 32;

/// The room a prompt has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub context_tokens: u32,
    pub reply_tokens: u32,
}

impl Budget {
    /// Tokens the prompt may take.
    pub fn prompt_limit(self) -> usize {
        (self.context_tokens as usize).saturating_sub(self.reply_tokens as usize).saturating_sub(MARGIN_TOKENS)
    }
}

/// A prompt cut to its budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fitted {
    /// The messages sent, each with its token count.
    pub messages: Vec<(PromptMessage, usize)>,
    pub prompt_tokens: usize,
    pub history_included: usize,
    /// The stored messages left out, oldest first.
    pub omitted: Vec<String>,
}

/// Keeps every required message and as much history as fits, newest first.
pub fn fit(messages: Vec<PromptMessage>, tokens: &ModelTokens, budget: Budget) -> Result<Fitted> {
    let counted: Vec<(PromptMessage, usize)> = messages
        .into_iter()
        .map(|message| {
            let n = tokens.message(&message.content);
            (message, n)
        })
        .collect();
    let is_history = |m: &PromptMessage| matches!(m.source, Source::History(_));
    let required: usize = PER_PROMPT + counted.iter().filter(|(m, _)| !is_history(m)).map(|(_, n)| n).sum::<usize>();
    let limit = budget.prompt_limit();
    if required > limit {
        return Err(Error::PromptTooLong {
            needs: required,
            allows: limit,
            context: budget.context_tokens,
            reply: budget.reply_tokens,
        });
    }
    // Newest history first, while it fits; the first that does not fit ends
    // it (an older, shorter one would leave a gap in the story).
    let mut room = limit - required;
    let mut keep = vec![true; counted.len()];
    let mut cut = false;
    for (i, (message, n)) in counted.iter().enumerate().rev() {
        if !is_history(message) {
            continue;
        }
        if cut || *n > room {
            cut = true;
            keep[i] = false;
        } else {
            room -= n;
        }
    }
    let mut fitted = Fitted {
        messages: Vec::with_capacity(counted.len()),
        prompt_tokens: PER_PROMPT,
        history_included: 0,
        omitted: Vec::new(),
    };
    for ((message, n), kept) in counted.into_iter().zip(keep) {
        match (&message.source, kept) {
            (Source::History(id), false) => fitted.omitted.push(id.clone()),
            (source, true) => {
                fitted.history_included += usize::from(matches!(source, Source::History(_)));
                fitted.prompt_tokens += n;
                fitted.messages.push((message, n));
            }
            (_, false) => {}
        }
    }
    Ok(fitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{store::models::Role, tokens::TokenCounter};

    fn history(id: &str, words: usize) -> PromptMessage {
        PromptMessage { role: Role::User, content: "word ".repeat(words), source: Source::History(id.into()) }
    }

    #[test]
    fn history_fills_newest_first_and_required_parts_always_go_in() {
        let tokens = TokenCounter::new(&[]).expect("counter").for_model("m");
        let system = PromptMessage { role: Role::System, content: "rules ".repeat(20), source: Source::System };
        let new = PromptMessage { role: Role::User, content: "hello".into(), source: Source::NewMessage };
        let messages = vec![system.clone(), history("1", 50), history("2", 50), history("3", 10), new.clone()];
        let budget = Budget { context_tokens: 200, reply_tokens: 50 };
        let fitted = fit(messages.clone(), &tokens, budget).expect("fits");
        assert_eq!(fitted.omitted, ["1"], "the oldest goes first");
        assert_eq!(fitted.history_included, 2);
        let sources: Vec<&Source> = fitted.messages.iter().map(|(m, _)| &m.source).collect();
        let kept = [&Source::System, &Source::History("2".into()), &Source::History("3".into()), &Source::NewMessage];
        assert_eq!(sources, kept);
        // A short old message does not jump a long newer one that did not fit.
        let gap = vec![system.clone(), history("1", 2), history("2", 90), history("3", 10), new.clone()];
        assert_eq!(fit(gap, &tokens, budget).expect("fits").omitted, ["1", "2"], "no gaps in the story");
        assert!(fitted.prompt_tokens <= budget.prompt_limit());
        assert_eq!(fitted.prompt_tokens, PER_PROMPT + fitted.messages.iter().map(|(_, n)| n).sum::<usize>());

        let tight = Budget { context_tokens: 60, reply_tokens: 50 };
        let Err(Error::PromptTooLong { needs, allows, .. }) = fit(messages, &tokens, tight) else {
            panic!("the required parts do not fit");
        };
        assert!(needs > allows);
    }
}
