//! Polling a seldom-ready future only after it has woken the task.
//!
//! `tokio::select!` polls every branch each time its task runs. The reply
//! loop and each follower run once per chunk, and their cancel and idle
//! futures (a cancellation token, a watch channel) take a lock at every
//! poll, though each is ready at most once in a reply's life. Wrapped in
//! [`Quiet`], such a future is polled the first time, and after that only
//! once its own waker has fired: a future that returned `Pending` has
//! arranged to wake its task when it can make progress, so polling it before
//! that would find it pending again.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::task::AtomicWaker;

/// A future polled only when it woke (see the module doc).
pub struct Quiet<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// Wakes `signal`: the waker `inner` is polled with, made once.
    waker: Waker,
}

/// Whether the inner future woke since it was last polled, and the task to
/// wake when it does.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Quiet<F> {
    pub fn new(inner: F) -> Self {
        // Woken at first, so the first poll polls the inner future.
        let signal = Arc::new(Signal { woken: AtomicBool::new(true), task: AtomicWaker::new() });
        let waker = Waker::from(Arc::clone(&signal));
        Self { inner: Box::pin(inner), signal, waker }
    }
}

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before the flag is read: a wake after the read still
        // reaches this task.
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner.as_mut().poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::Quiet;

    #[tokio::test]
    async fn a_quiet_future_completes_when_its_inner_one_wakes() {
        let token = CancellationToken::new();
        let mut cancelled = Quiet::new(token.clone().cancelled_owned());
        // Pending at first, and again on later polls that nothing woke.
        for _ in 0..3 {
            tokio::select! {
                biased;
                () = &mut cancelled => panic!("not cancelled yet"),
                () = tokio::task::yield_now() => {}
            }
        }
        let cancel = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            token.cancel();
        });
        tokio::time::timeout(Duration::from_secs(5), &mut cancelled).await.expect("woken by the cancel");
        cancel.await.expect("cancel task");
    }

    #[tokio::test]
    async fn a_quiet_future_ready_at_once_is_ready_at_the_first_poll() {
        let mut ready = Quiet::new(std::future::ready(7));
        assert_eq!((&mut ready).await, 7);
    }
}
