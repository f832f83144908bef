//! Taking and giving back a chat's lease: for a new reply (with the send
//! limits checked and counted across replicas, all in one script) or for a
//! change to the chat's history.

use std::time::Duration;

use redis::Value;

use super::{Claim, Held, LIVE, RedisShared, holder_stream, live_member, millis, scripts, unavailable};
use crate::error::{Error, Result};

impl RedisShared {
    /// Takes the chat for a new reply, with the send limits checked and
    /// counted across replicas.
    pub async fn claim(&self, chat_id: &str, stream_id: &str, user_id: &str) -> Result<Claim> {
        let holder = format!("{}|{stream_id}|{user_id}", self.replica);
        let limits = &self.limits;
        let interval =
            |per_window: u32| if per_window == 0 { 0 } else { millis(limits.window) / u64::from(per_window) };
        let answer: Vec<String> = self
            .scripts
            .claim
            .key(scripts::lease(chat_id))
            .key(scripts::running(user_id))
            .key(LIVE)
            .key(scripts::user_rate(user_id))
            .key(scripts::chat_rate(chat_id))
            .arg(&holder)
            .arg(millis(self.lease))
            .arg(limits.generations_per_user)
            .arg(live_member(chat_id, stream_id))
            .arg(stream_id)
            .arg(interval(limits.messages_per_minute_per_user))
            .arg(limits.messages_per_minute_per_user)
            .arg(interval(limits.messages_per_minute_per_chat))
            .arg(limits.messages_per_minute_per_chat)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|err| unavailable(&err))?;
        let detail = answer.get(1).map_or("", String::as_str);
        let retry_after = Duration::from_millis(detail.parse::<u64>().unwrap_or(1000));
        match answer.first().map(String::as_str) {
            Some("ok") => {
                let held = Held {
                    chat_id: chat_id.to_owned(),
                    user_id: user_id.to_owned(),
                    holder: holder.clone(),
                    generation: None,
                    info_json: None,
                };
                self.held.insert(stream_id.to_owned(), held);
                Ok(Claim { holder })
            }
            Some("busy") => Err(Error::ChatBusy { stream_id: holder_stream(detail).unwrap_or(detail).to_owned() }),
            Some("running") => {
                crate::observe::limit_refused("concurrent");
                Err(Error::RateLimited {
                    message: format!(
                        "you already have {detail} replies being generated; wait for one to finish or cancel one"
                    ),
                    retry_after: Duration::from_secs(1),
                })
            }
            Some("user_rate") => {
                crate::observe::limit_refused("user_rate");
                Err(Error::RateLimited {
                    message: format!(
                        "you have sent too many messages this minute; try again in {:.1} s",
                        retry_after.as_secs_f64()
                    ),
                    retry_after,
                })
            }
            Some("chat_rate") => {
                crate::observe::limit_refused("chat_rate");
                Err(Error::RateLimited {
                    message: format!(
                        "too many messages were sent in this chat this minute; try again in {:.1} s",
                        retry_after.as_secs_f64()
                    ),
                    retry_after,
                })
            }
            _ => Err(Error::SharedRegistryUnavailable),
        }
    }

    /// Gives a claim back when its reply did not start.
    pub async fn release(&self, chat_id: &str, stream_id: &str, user_id: &str, holder: &str) {
        self.held.remove(stream_id);
        let mut pipe = redis::pipe();
        pipe.invoke_script(self.scripts.release.key(scripts::lease(chat_id)).arg(holder))
            .zrem(LIVE, live_member(chat_id, stream_id))
            .zrem(scripts::running(user_id), stream_id);
        if let Err(err) = self.run_scripts::<Value>(&pipe).await {
            tracing::warn!(error = %err, "a chat's lease could not be released; it lapses by itself");
        }
    }

    /// Takes the chat's lease for a history change (no reply may start
    /// anywhere meanwhile); give it back with [`Self::release_change`].
    pub async fn hold_for_change(&self, chat_id: &str) -> Result<String> {
        let holder = format!("{}|changing", self.replica);
        let answer: Vec<String> = self
            .scripts
            .hold_for_change
            .key(scripts::lease(chat_id))
            .arg(&holder)
            .arg(millis(self.lease))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|err| unavailable(&err))?;
        match (answer.first().map(String::as_str), answer.get(1)) {
            (Some("ok"), _) => Ok(holder),
            (_, Some(other)) if other.ends_with("|changing") => Err(Error::ChatChanging),
            (_, Some(other)) => Err(Error::ChatBusy { stream_id: holder_stream(other).unwrap_or_default().to_owned() }),
            _ => Err(Error::SharedRegistryUnavailable),
        }
    }

    pub async fn release_change(&self, chat_id: &str, holder: &str) {
        let released: redis::RedisResult<i64> =
            self.scripts.release.key(scripts::lease(chat_id)).arg(holder).invoke_async(&mut self.conn()).await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "a chat's change lease could not be released; it lapses by itself");
        }
    }
}
