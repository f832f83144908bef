//! Limits on sending messages: per user and per chat per minute (governor's
//! GCRA, which allows a burst of the whole minute's allowance and then one
//! message per 1/N minute), concurrent generations per user, and admission:
//! how many replies may be starting at once in the whole server.
//!
//! Refusals are [`Error::RateLimited`]: RESOURCE_EXHAUSTED with a RetryInfo
//! saying when a retry would be accepted.

use std::{
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

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
    /// Replies that may be starting at once in the whole server (reading the
    /// chat, storing the message, up to `Started`); more are refused at once
    /// with RESOURCE_EXHAUSTED and a RetryInfo rather than queued behind the
    /// database (0: no limit).
    #[arg(long, env = "ROLEPLAY_MAX_PENDING_STARTS", default_value_t = DEFAULT_MAX_PENDING_STARTS, global = true)]
    pub max_pending_starts: usize,
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
        max_pending_starts: 0,
        window: Duration::from_secs(60),
    };
}

/// See [`LimitOptions::max_pending_starts`]; chosen with roleplay-bench's
/// burst scenario (BENCHMARKS.md).
pub const DEFAULT_MAX_PENDING_STARTS: usize = 128;

/// A start that takes longer than this (the server is short of CPU or
/// database connections) lowers how many may be starting at once; faster
/// ones raise it again, up to the configured bound. Well above a start's
/// usual time under load, so a passing hiccup does not refuse sends.
const ADMISSION_TARGET: Duration = Duration::from_millis(250);
/// Never fewer starts than this at once.
const ADMISSION_FLOOR: usize = 16;

/// The retry delay of a refused start stays within these bounds.
const ADMISSION_RETRY_MIN: Duration = Duration::from_millis(10);
const ADMISSION_RETRY_MAX: Duration = Duration::from_secs(5);

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
    max_pending_starts: usize,
    /// The bound in force: lowered by slow starts, raised by fast ones
    /// (additive increase, multiplicative decrease), at most the maximum.
    allowed_starts: AtomicUsize,
    pending_starts: AtomicUsize,
    /// How many times the bound has been lowered. A start admitted before
    /// the latest cut ran under the bound that cut replaced, so its
    /// slowness is old news: only starts admitted since may cut again (one
    /// cut per round of starts, as TCP cuts once per window). Otherwise a
    /// burst slowed by one cause (a cold cache, one stalled commit) would
    /// count as a hundred signals and take the bound to its floor.
    cuts: AtomicU64,
    /// How long a start takes, smoothed (µs): the basis of the retry delay.
    start_micros: AtomicU64,
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
            max_pending_starts: options.max_pending_starts,
            allowed_starts: AtomicUsize::new(options.max_pending_starts),
            pending_starts: AtomicUsize::new(0),
            cuts: AtomicU64::new(0),
            start_micros: AtomicU64::new(1_000),
        }
    }

    /// Admits one reply start, held until the ticket is dropped; refused
    /// when as many are starting as the bound in force allows (at most
    /// [`LimitOptions::max_pending_starts`], fewer while starts are slow),
    /// with a delay from how long starts take now, spread so that the
    /// refused do not all come back in the same instant.
    pub fn admit_start(self: &Arc<Self>) -> Result<StartTicket> {
        let max = self.allowed_starts.load(Ordering::Relaxed);
        let admitted = self
            .pending_starts
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (max == 0 || n < max).then_some(n + 1));
        match admitted {
            Ok(_) => Ok(StartTicket {
                limits: Arc::clone(self),
                began: Instant::now(),
                cuts_when_admitted: self.cuts.load(Ordering::Acquire),
            }),
            Err(pending) => {
                crate::observe::limit_refused("starts");
                let start = Duration::from_micros(self.start_micros.load(Ordering::Relaxed));
                // Waiting for the queue ahead to drain, times a spread of
                // 0.5 to 1.5 picked from the clock's nanoseconds.
                let spread = 0.5 + f64::from(clock_nanos() % 1_000) / 1_000.0;
                let retry_after = start
                    .mul_f64(spread * (1.0 + pending as f64 / max as f64))
                    .clamp(ADMISSION_RETRY_MIN, ADMISSION_RETRY_MAX);
                Err(Error::RateLimited {
                    message: format!(
                        "the server is starting {pending} replies already; try again in {:.2} s",
                        retry_after.as_secs_f64()
                    ),
                    retry_after,
                })
            }
        }
    }

    /// Replies being started now.
    pub fn pending_starts(&self) -> usize {
        self.pending_starts.load(Ordering::Relaxed)
    }

    /// How many may be starting at once now.
    pub fn allowed_starts(&self) -> usize {
        self.allowed_starts.load(Ordering::Relaxed)
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

/// One admitted start; dropping it (the reply started, or was refused)
/// frees its place.
pub struct StartTicket {
    limits: Arc<Limits>,
    began: Instant,
    /// [`Limits::cuts`] when this start was admitted.
    cuts_when_admitted: u64,
}

impl Drop for StartTicket {
    fn drop(&mut self) {
        let limits = &self.limits;
        limits.pending_starts.fetch_sub(1, Ordering::AcqRel);
        let elapsed = self.began.elapsed();
        // An exponential average over about the last eight starts.
        let took = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let _ = limits
            .start_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| Some(avg - avg / 8 + took / 8));
        if limits.max_pending_starts == 0 {
            return;
        }
        if elapsed <= ADMISSION_TARGET {
            let _ = limits.allowed_starts.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |allowed| {
                Some((allowed + 1).min(limits.max_pending_starts))
            });
            return;
        }
        // The first slow start of its round cuts; the rest of the round
        // finds the count moved on and leaves the bound alone.
        let cut = limits.cuts.compare_exchange(
            self.cuts_when_admitted,
            self.cuts_when_admitted + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if cut.is_ok() {
            let floor = ADMISSION_FLOOR.min(limits.max_pending_starts);
            let _ = limits.allowed_starts.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |allowed| {
                Some((allowed - allowed.div_ceil(8)).max(floor))
            });
        }
    }
}

fn clock_nanos() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
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
    fn starts_beyond_the_bound_are_refused_at_once_with_a_bounded_delay() {
        let limits = Arc::new(Limits::new(LimitOptions { max_pending_starts: 2, ..LimitOptions::UNLIMITED }));
        let a = limits.admit_start().expect("first");
        let _b = limits.admit_start().expect("second");
        let Err(Error::RateLimited { retry_after, message }) = limits.admit_start() else { panic!("third refused") };
        assert!((ADMISSION_RETRY_MIN..=ADMISSION_RETRY_MAX).contains(&retry_after), "{retry_after:?}");
        assert!(message.contains("starting 2 replies"), "{message}");
        assert_eq!(limits.pending_starts(), 2, "a refusal takes no place");
        drop(a);
        let _c = limits.admit_start().expect("a place is free again");
        let unbounded = Arc::new(Limits::new(LimitOptions::UNLIMITED));
        let _many: Vec<_> = (0..1000).map(|_| unbounded.admit_start().expect("no bound")).collect();
    }

    #[test]
    fn a_round_of_slow_starts_lowers_the_bound_once() {
        let limits = Arc::new(Limits::new(LimitOptions { max_pending_starts: 128, ..LimitOptions::UNLIMITED }));
        let round: Vec<_> = (0..100).map(|_| limits.admit_start().expect("within the bound")).collect();
        for mut slow in round {
            slow.began -= ADMISSION_TARGET * 2;
        }
        assert_eq!(limits.allowed_starts(), 112, "one cut of an eighth for the whole round");
        let next_round: Vec<_> = (0..100).map(|_| limits.admit_start().expect("still within the bound")).collect();
        let mut iter = next_round.into_iter();
        let mut first = iter.next().expect("a start");
        first.began -= ADMISSION_TARGET * 2;
        drop(first);
        assert_eq!(limits.allowed_starts(), 98, "a slow start admitted after the cut cuts again");
        for mut slow in iter {
            slow.began -= ADMISSION_TARGET * 2;
        }
        assert_eq!(limits.allowed_starts(), 98, "but only once for its round");
    }

    #[test]
    fn slow_starts_lower_the_bound_and_fast_ones_raise_it_again() {
        let limits = Arc::new(Limits::new(LimitOptions { max_pending_starts: 64, ..LimitOptions::UNLIMITED }));
        for _ in 0..40 {
            let mut slow = limits.admit_start().expect("admitted");
            slow.began -= ADMISSION_TARGET * 2;
        }
        assert_eq!(limits.allowed_starts(), ADMISSION_FLOOR, "slow starts bring it down to the floor");
        let held: Vec<_> = (0..ADMISSION_FLOOR).map(|_| limits.admit_start().expect("within")).collect();
        assert!(limits.admit_start().is_err(), "the lowered bound is enforced");
        drop(held);
        for _ in 0..100 {
            drop(limits.admit_start().expect("admitted"));
        }
        assert_eq!(limits.allowed_starts(), 64, "fast starts raise it back, never above the maximum");
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
