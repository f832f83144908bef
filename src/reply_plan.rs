//! What a reply request does to a chat: the rows it writes, what the prompt
//! ends with, and how the reply is announced. Pure apart from [`ReplyPlan::store`],
//! so every case (send, regenerate, answer, continue) is unit-tested without
//! a server; [`crate::stream::generation`] runs them all through one streaming path.

use crate::{
    budget::Fitted,
    error::{Error, Result},
    prompt::Turn,
    store::{
        Fence, Store, StoreResult,
        models::{Message, MessageStatus, Role},
    },
    stream::generation::ReplyRequest,
    stream::registry::{ReplyKind, StreamInfo},
};

/// One reply about to start, planned from the chat's history.
#[derive(Debug)]
pub struct ReplyPlan {
    /// The history the prompt holds before its final turn.
    pub history: Vec<Message>,
    /// Continuations: the text the reply appends to (it starts the
    /// generation's text, so offsets count from the message's start).
    pub prefix: String,
    /// A user message the prompt ends with, when there is one.
    user_turn: Option<String>,
    write: Write,
    kind: ReplyKind,
    /// The user message the reply answers, or empty.
    user_message_id: String,
    /// The reply's row as it starts (streaming).
    reply: Message,
}

/// How the start of the reply is stored.
#[derive(Debug)]
enum Write {
    /// New rows: the reply, after a new user message when there is one.
    Exchange { user: Option<Box<Message>> },
    /// The turn's selected alternative is put aside for a new one.
    Alternative { current: Box<Message> },
    /// The message streams again under the new stream, keeping its text.
    Continuation { prior_completion_tokens: Option<i32> },
}

impl ReplyPlan {
    pub fn new(
        request: ReplyRequest,
        mut history: Vec<Message>,
        chat_id: &str,
        stream_id: &str,
        model: &str,
    ) -> Result<Self> {
        // Made when needed: ids are time-ordered, so a reply made before its
        // user message would sort before it.
        let new_reply = || Message {
            model: Some(model.to_owned()),
            stream_id: Some(stream_id.to_owned()),
            ..Message::new(chat_id, Role::Assistant, String::new(), MessageStatus::Streaming)
        };
        let last_role = history.last().map(Message::role);
        let plan = match (request, last_role) {
            (ReplyRequest::Send(content), _) => {
                let user = Message::new(chat_id, Role::User, content.clone(), MessageStatus::Completed);
                Self {
                    history,
                    prefix: String::new(),
                    user_turn: Some(content),
                    kind: ReplyKind::Send,
                    user_message_id: user.id.clone(),
                    write: Write::Exchange { user: Some(Box::new(user)) },
                    reply: new_reply(),
                }
            }
            (ReplyRequest::Regenerate, Some(Role::Assistant)) => {
                let current = history.pop().expect("the history ends with this assistant message");
                let mut reply = new_reply();
                reply.id.clone_from(&current.id);
                reply.alternative_index = current.alternative_count;
                reply.alternative_count = current.alternative_count.saturating_add(1);
                let (user_turn, user_message_id) = take_user_turn(&mut history);
                Self {
                    history,
                    prefix: String::new(),
                    user_turn,
                    kind: ReplyKind::Regenerate,
                    user_message_id,
                    write: Write::Alternative { current: Box::new(current) },
                    reply,
                }
            }
            (ReplyRequest::Regenerate, Some(Role::User)) => {
                let (user_turn, user_message_id) = take_user_turn(&mut history);
                Self {
                    history,
                    prefix: String::new(),
                    user_turn,
                    kind: ReplyKind::Regenerate,
                    user_message_id,
                    write: Write::Exchange { user: None },
                    reply: new_reply(),
                }
            }
            (ReplyRequest::Regenerate, _) => {
                return Err(Error::History("this chat has no message to answer yet; send one first"));
            }
            (ReplyRequest::Continue, Some(Role::Assistant)) => {
                let last = history.pop().expect("the history ends with this assistant message");
                if last.content.is_empty() {
                    return Err(Error::History("the chat's last reply has no text to continue; regenerate it instead"));
                }
                let user_message_id =
                    history.iter().rev().find(|m| m.role() == Role::User).map(|m| m.id.clone()).unwrap_or_default();
                let prior_completion_tokens = last.completion_tokens;
                let reply = new_reply();
                let continued = Message {
                    status: reply.status,
                    model: reply.model,
                    stream_id: reply.stream_id,
                    error: None,
                    finish_reason: None,
                    ..last
                };
                Self {
                    history,
                    prefix: continued.content.clone(),
                    user_turn: None,
                    kind: ReplyKind::Continue,
                    user_message_id,
                    write: Write::Continuation { prior_completion_tokens },
                    reply: continued,
                }
            }
            (ReplyRequest::Continue, _) => {
                return Err(Error::History(
                    "the chat's last message is not an assistant reply, so there is nothing to continue",
                ));
            }
        };
        Ok(plan)
    }

    /// What the prompt ends with, after [`Self::history`].
    pub fn turn(&self) -> Turn<'_> {
        match (&self.user_turn, self.kind) {
            (_, ReplyKind::Continue) => Turn::Continue(&self.prefix),
            (Some(text), _) => Turn::User(text),
            (None, _) => Turn::None,
        }
    }

    /// How the reply is announced in `Started`.
    pub fn stream_info(&self, stream_id: String, model: String, prompt: &Fitted) -> StreamInfo {
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        StreamInfo {
            stream_id,
            chat_session_id: self.reply.chat_session_id.clone(),
            user_message_id: self.user_message_id.clone(),
            assistant_message_id: self.reply.id.clone(),
            model,
            started_at: self.reply.created_at,
            kind: self.kind,
            alternative_index: count(self.reply.alternative_index),
            alternative_count: count(self.reply.alternative_count),
            continues_from: self.prefix.len(),
            prompt_tokens: u32::try_from(prompt.prompt_tokens).unwrap_or(u32::MAX),
            history_included: u32::try_from(prompt.history_included).unwrap_or(u32::MAX),
            history_omitted: u32::try_from(prompt.omitted.len()).unwrap_or(u32::MAX),
        }
    }

    /// Stores the start of the reply: after this, `Started` may be sent.
    /// With a `fence` (replicas), nothing is stored once another replica
    /// took the chat over ([`crate::store::StoreError::Fenced`]).
    pub async fn store(&self, store: &Store, fence: Option<&Fence>) -> StoreResult<()> {
        match &self.write {
            Write::Exchange { user } => store.insert_exchange(user.as_deref(), &self.reply, fence).await,
            Write::Alternative { current } => store.start_alternative(current, &self.reply, fence).await,
            Write::Continuation { .. } => {
                let (stream_id, model) = (self.reply.stream_id.as_deref(), self.reply.model.as_deref());
                let (stream_id, model) = (stream_id.unwrap_or_default(), model.unwrap_or_default());
                store.start_continuation(&self.reply.id, stream_id, model, fence).await
            }
        }
    }

    /// The user message the reply answers, or "" when none.
    pub fn user_message_id(&self) -> &str {
        &self.user_message_id
    }

    /// Continuations: the completion tokens the message had before.
    pub fn prior_completion_tokens(&self) -> Option<i32> {
        match self.write {
            Write::Continuation { prior_completion_tokens } => prior_completion_tokens,
            _ => None,
        }
    }
}

/// Takes the user message that ends the history, if one does, as the turn
/// a regenerated reply answers.
fn take_user_turn(history: &mut Vec<Message>) -> (Option<String>, String) {
    match history.last() {
        Some(last) if last.role() == Role::User => {
            let user = history.pop().expect("checked just above");
            (Some(user.content), user.id)
        }
        _ => (None, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, content: &str) -> Message {
        Message::new("chat", role, content.into(), MessageStatus::Completed)
    }

    fn plan(request: ReplyRequest, history: &[Message]) -> Result<ReplyPlan> {
        ReplyPlan::new(request, history.to_vec(), "chat", "stream", "model")
    }

    fn contents(plan: &ReplyPlan) -> Vec<&str> {
        plan.history.iter().map(|m| m.content.as_str()).collect()
    }

    #[test]
    fn a_send_keeps_the_history_and_ends_with_the_new_message() {
        let history = [message(Role::User, "hi"), message(Role::Assistant, "hello")];
        let plan = plan(ReplyRequest::Send("more".into()), &history).expect("plan");
        assert_eq!(contents(&plan), ["hi", "hello"]);
        assert_eq!(plan.turn(), Turn::User("more"));
        let Write::Exchange { user: Some(user) } = &plan.write else { panic!("a new user message") };
        assert_eq!(user.content, "more");
        assert!(plan.reply.id > user.id, "the reply sorts after the message it answers");
    }

    #[test]
    fn regenerating_replaces_the_last_reply_and_answers_its_user_message_again() {
        let mut last = message(Role::Assistant, "second take");
        last.alternative_index = 1;
        last.alternative_count = 2;
        let history = [message(Role::User, "hi"), message(Role::Assistant, "hello"), message(Role::User, "go"), last];
        let plan = plan(ReplyRequest::Regenerate, &history).expect("plan");
        assert_eq!(contents(&plan), ["hi", "hello"]);
        assert_eq!(plan.turn(), Turn::User("go"));
        let info = plan.stream_info("s".into(), "m".into(), &Fitted::default());
        assert_eq!((info.alternative_index, info.alternative_count), (2, 3));
        assert_eq!(info.assistant_message_id, history[3].id);
        assert_eq!(info.user_message_id, history[2].id);
    }

    #[test]
    fn regenerating_after_an_unanswered_user_message_answers_it_once() {
        let history = [message(Role::User, "hi")];
        let plan = plan(ReplyRequest::Regenerate, &history).expect("plan");
        assert!(plan.history.is_empty());
        assert_eq!(plan.turn(), Turn::User("hi"));
        assert!(matches!(plan.write, Write::Exchange { user: None }));
    }

    #[test]
    fn regenerating_a_greeting_has_no_user_turn() {
        let plan = plan(ReplyRequest::Regenerate, &[message(Role::Assistant, "Welcome")]).expect("plan");
        assert_eq!(plan.turn(), Turn::None);
        assert!(plan.history.is_empty());
    }

    #[test]
    fn continuing_ends_with_the_reply_and_counts_offsets_from_its_start() {
        let history = [message(Role::User, "hi"), message(Role::Assistant, "Once upon")];
        let plan = plan(ReplyRequest::Continue, &history).expect("plan");
        assert_eq!(contents(&plan), ["hi"]);
        assert_eq!(plan.turn(), Turn::Continue("Once upon"));
        let info = plan.stream_info("s".into(), "m".into(), &Fitted::default());
        assert_eq!(info.continues_from, "Once upon".len());
        assert_eq!(info.assistant_message_id, history[1].id);
        assert_eq!(info.user_message_id, history[0].id);
    }

    #[test]
    fn what_cannot_be_answered_or_continued_is_refused() {
        assert!(matches!(plan(ReplyRequest::Regenerate, &[]), Err(Error::History(_))));
        assert!(matches!(plan(ReplyRequest::Continue, &[message(Role::User, "hi")]), Err(Error::History(_))));
        assert!(matches!(plan(ReplyRequest::Continue, &[message(Role::Assistant, "")]), Err(Error::History(_))));
    }
}
