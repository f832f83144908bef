//! A property of editing, through the real server on both databases: any
//! sequence of sends, regenerations, continuations, selections, edits,
//! deletes and rewinds leaves the chat (ListMessages) and the history the
//! model is sent equal to a plain in-memory model of the chat.

mod common;

use common::{Db, Reply, TestServer, collect, terminal};
use proptest::prelude::*;
use roleplay_server::api::pb::{self, generation_event::Event};

#[derive(Debug, Clone)]
enum Op {
    Send,
    Regenerate,
    Continue,
    /// Which assistant turn (modulo their number) and which alternative.
    Select(usize, usize),
    /// Which turn (modulo the number of turns).
    Edit(usize),
    Delete(usize),
    Rewind(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Send),
        3 => Just(Op::Regenerate),
        1 => Just(Op::Continue),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(t, i)| Op::Select(t, i)),
        1 => any::<usize>().prop_map(Op::Edit),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::Rewind),
    ]
}

/// One message as the model of the chat holds it.
#[derive(Debug, Clone)]
struct Turn {
    id: String,
    user: bool,
    alternatives: Vec<String>,
    selected: usize,
}

impl Turn {
    fn shown(&self) -> (bool, String) {
        (self.user, self.alternatives[self.selected].clone())
    }
}

/// Runs `ops` against a new chat and the model side by side.
async fn check(server: &TestServer, ops: &[Op]) -> Result<(), TestCaseError> {
    let chat = server.chat().await;
    let mut model: Vec<Turn> = Vec::new();
    let mut counter = 0;
    for op in ops {
        counter += 1;
        let reply = format!("r{counter}");
        // Scripted only when the op generates, so replies never fall out of
        // step with the requests that take them.
        let generates = match op {
            Op::Send => true,
            Op::Regenerate => !model.is_empty(),
            Op::Continue => model.last().is_some_and(|last| !last.user),
            _ => false,
        };
        if generates {
            server.upstream.push(Reply::chunks([reply.clone()]));
        }
        let messages = server.messages();
        match op {
            Op::Send => {
                let text = format!("u{counter}");
                collect(&mut server.send(&chat.id, &text).await.expect("send")).await;
                model.push(Turn { id: String::new(), user: true, alternatives: vec![text], selected: 0 });
                model.push(Turn { id: String::new(), user: false, alternatives: vec![reply], selected: 0 });
            }
            Op::Regenerate => {
                let request = pb::RegenerateReplyRequest { chat_session_id: chat.id.clone() };
                let result = messages.clone().regenerate_reply(request).await;
                match model.last_mut() {
                    None => {
                        prop_assert_eq!(result.expect_err("nothing to answer").code(), tonic::Code::FailedPrecondition);
                    }
                    Some(last) => {
                        let events = collect(&mut result.expect("regenerate").into_inner()).await;
                        prop_assert!(matches!(terminal(&events), Event::Completed(_)));
                        if last.user {
                            model.push(Turn { id: String::new(), user: false, alternatives: vec![reply], selected: 0 });
                        } else {
                            last.alternatives.push(reply);
                            last.selected = last.alternatives.len() - 1;
                        }
                    }
                }
            }
            Op::Continue => {
                let request = pb::ContinueReplyRequest { chat_session_id: chat.id.clone() };
                let result = messages.clone().continue_reply(request).await;
                match model.last_mut() {
                    Some(last) if !last.user => {
                        collect(&mut result.expect("continue").into_inner()).await;
                        last.alternatives[last.selected].push_str(&reply);
                    }
                    _ => prop_assert_eq!(
                        result.expect_err("nothing to continue").code(),
                        tonic::Code::FailedPrecondition
                    ),
                }
            }
            Op::Select(turn, index) => {
                let replies: Vec<usize> = (0..model.len()).filter(|&i| !model[i].user).collect();
                if !replies.is_empty() {
                    let target = &mut model[replies[turn % replies.len()]];
                    let index = index % target.alternatives.len();
                    let request = pb::SelectAlternativeRequest { message_id: target.id.clone(), index: index as u32 };
                    messages.clone().select_alternative(request).await.expect("select");
                    target.selected = index;
                }
            }
            Op::Edit(turn) if !model.is_empty() => {
                let len = model.len();
                let target = &mut model[turn % len];
                let text = format!("e{counter}");
                let request = pb::EditMessageRequest { message_id: target.id.clone(), content: text.clone() };
                messages.clone().edit_message(request).await.expect("edit");
                let selected = target.selected;
                target.alternatives[selected] = text;
            }
            Op::Delete(turn) if !model.is_empty() => {
                let index = turn % model.len();
                let request = pb::DeleteMessageRequest { message_id: model[index].id.clone() };
                messages.clone().delete_message(request).await.expect("delete");
                model.remove(index);
            }
            Op::Rewind(turn) if !model.is_empty() => {
                let index = turn % model.len();
                let request = pb::RewindChatSessionRequest {
                    chat_session_id: chat.id.clone(),
                    message_id: model[index].id.clone(),
                };
                messages.clone().rewind_chat_session(request).await.expect("rewind");
                model.truncate(index + 1);
            }
            Op::Edit(_) | Op::Delete(_) | Op::Rewind(_) => {}
        }
        // The chat as listed is the model's view; take the ids of new turns.
        let listed = server.messages_of(&chat.id).await;
        let listed_view: Vec<(bool, String)> =
            listed.iter().map(|m| (m.role == pb::Role::User as i32, m.content.clone())).collect();
        let model_view: Vec<(bool, String)> = model.iter().map(Turn::shown).collect();
        prop_assert_eq!(&listed_view, &model_view, "after {:?}", op);
        for (turn, message) in model.iter_mut().zip(&listed) {
            turn.id.clone_from(&message.id);
            prop_assert_eq!(message.alternative_count as usize, turn.alternatives.len());
            prop_assert_eq!(message.alternative_index as usize, turn.selected);
        }
    }
    // What the model is sent next: exactly the selected history.
    server.upstream.push(Reply::chunks(["end"]));
    collect(&mut server.send(&chat.id, "final").await.expect("send")).await;
    let requests = server.upstream.requests();
    let sent: Vec<(bool, String)> = requests.last().expect("a request").body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| (m["role"] == "user", m["content"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let mut expected: Vec<(bool, String)> = model.iter().map(Turn::shown).collect();
    expected.push((true, "final".into()));
    prop_assert_eq!(sent, expected);
    Ok(())
}

fn property(db: Db) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server = runtime.block_on(TestServer::start(db));
    let config = ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..12))| {
        runtime.block_on(check(&server, &ops))?;
    });
    drop(server);
}

#[test]
fn sqlite_history_matches_a_model_of_the_chat() {
    property(Db::Sqlite);
}

#[test]
fn postgres_history_matches_a_model_of_the_chat() {
    property(Db::Postgres);
}
