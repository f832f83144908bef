//! Limits on sending messages: per user and per chat per minute (governor's
//! GCRA, which allows a burst of the whole minute's allowance and then one
//! message per 1/N minute), and concurrent generations per user.
//!
//! Refusals are [`Error::RateLimited`]: RESOURCE_EXHAUSTED with a RetryInfo
//! saying when a retry would be accepted.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use dashmap::DashMap;
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::error::{Error, Result};

/// The limits as configured; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct LimitOptions {
    /// Messages a user may send per minute (0: no limit).
    #[arg(long, env = "ROLEPLAY_MESSAGES_PER_MINUTE_PER_USER", default_value_t = 60, global = true)]
    pub messages_per_minute_per_user: u32,
    /// Messages that may be sent in one chat per minute (0: no limit).
    #[arg(long, env = "ROLEPLAY_MESSAGES_PER_MINUTE_PER_CHAT", default_value_t = 20, global = true)]
    pub messages_per_minute_per_chat: u32,
    /// Replies one user may have generating at once (0: no limit).
    #[arg(long, env = "ROLEPLAY_GENERATIONS_PER_USER", default_value_t = 8, global = true)]
    pub generations_per_user: usize,
    /// The "minute" of the message limits: always a minute, except in
    /// tests that must see an allowance refill without waiting one.
    #[arg(skip = Duration::from_secs(60))]
    pub window: Duration,
}

impl Default for LimitOptions {
    fn default() -> Self {
        crate::config::ServerOptions::default().limits
    }
}

impl LimitOptions {
    pub const UNLIMITED: Self = Self {
        messages_per_minute_per_user: 0,
        messages_per_minute_per_chat: 0,
        generations_per_user: 0,
        window: Duration::from_secs(60),
    };
}

/// A generation may not wait on another to finish, so a refused one is told
/// to retry after roughly the time a short reply takes.
const RUNNING_RETRY_AFTER: Duration = Duration::from_secs(5);

pub struct Limits {
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    per_chat: Option<DefaultKeyedRateLimiter<String>>,
    generations_per_user: usize,
    /// Running generations per user; an entry is removed at zero.
    running: DashMap<String, usize>,
    clock: DefaultClock,
}

/// `limit` per `window`, all of it available at once.
fn per_window(limit: u32, window: Duration) -> Option<DefaultKeyedRateLimiter<String>> {
    let burst = NonZeroU32::new(limit)?;
    let quota = Quota::with_period(window / limit)?.allow_burst(burst);
    Some(RateLimiter::keyed(quota))
}

impl Limits {
    pub fn new(options: LimitOptions) -> Self {
        Self {
            per_user: per_window(options.messages_per_minute_per_user, options.window),
            per_chat: per_window(options.messages_per_minute_per_chat, options.window),
            generations_per_user: options.generations_per_user,
            running: DashMap::new(),
            clock: DefaultClock::default(),
        }
    }

    /// Counts a message against the user's allowance.
    pub fn check_user(&self, user_id: &str) -> Result<()> {
        self.check(self.per_user.as_ref(), user_id, "you have sent too many messages this minute")
            .inspect_err(|_| crate::observe::limit_refused("user_rate"))
    }

    /// Counts a message against the chat's allowance.
    pub fn check_chat(&self, chat_id: &str) -> Result<()> {
        self.check(self.per_chat.as_ref(), chat_id, "too many messages were sent in this chat this minute")
            .inspect_err(|_| crate::observe::limit_refused("chat_rate"))
    }

    fn check(&self, limiter: Option<&DefaultKeyedRateLimiter<String>>, key: &str, what: &str) -> Result<()> {
        let Some(limiter) = limiter else { return Ok(()) };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let retry_after = not_until.wait_time_from(self.clock.now());
            Error::RateLimited {
                message: format!("{what}; try again in {:.1} s", retry_after.as_secs_f64()),
                retry_after,
            }
        })
    }

    /// Reserves one of the user's concurrent generations until the permit
    /// is dropped.
    pub fn start_generation(self: &Arc<Self>, user_id: &str) -> Result<RunningPermit> {
        let max = self.generations_per_user;
        let mut running = self.running.entry(user_id.to_owned()).or_insert(0);
        if max > 0 && *running >= max {
            crate::observe::limit_refused("concurrent");
            return Err(Error::RateLimited {
                message: format!(
                    "you already have {max} replies being generated; wait for one to finish or cancel one"
                ),
                retry_after: RUNNING_RETRY_AFTER,
            });
        }
        *running += 1;
        Ok(RunningPermit { limits: Arc::clone(self), user_id: user_id.to_owned() })
    }

    /// Forgets limiter state of users and chats that are back to a full
    /// allowance, so the maps do not grow with every chat ever used.
    pub fn forget_idle(&self) {
        for limiter in [&self.per_user, &self.per_chat].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// One running generation of a user.
pub struct RunningPermit {
    limits: Arc<Limits>,
    user_id: String,
}

impl Drop for RunningPermit {
    fn drop(&mut self) {
        self.limits.running.remove_if_mut(&self.user_id, |_, running| {
            *running = running.saturating_sub(1);
            *running == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_generations_are_counted_per_user_and_released_on_drop() {
        let limits = Arc::new(Limits::new(LimitOptions { generations_per_user: 2, ..LimitOptions::UNLIMITED }));
        let a = limits.start_generation("u1").expect("first");
        let _b = limits.start_generation("u1").expect("second");
        let refused = limits.start_generation("u1").err().expect("third is refused");
        assert!(matches!(refused, Error::RateLimited { .. }));
        let _other = limits.start_generation("u2").expect("another user is not affected");
        drop(a);
        let _c = limits.start_generation("u1").expect("a slot is free again");
    }

    #[test]
    fn the_minute_allowance_is_a_burst_then_refused_with_a_delay() {
        let limits = Limits::new(LimitOptions { messages_per_minute_per_chat: 3, ..LimitOptions::UNLIMITED });
        for _ in 0..3 {
            limits.check_chat("c").expect("within the burst");
        }
        let Err(Error::RateLimited { retry_after, .. }) = limits.check_chat("c") else { panic!("fourth refused") };
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(20));
        limits.check_chat("other").expect("chats are separate");
        limits.check_user("u").expect("user limit off");
    }
}
