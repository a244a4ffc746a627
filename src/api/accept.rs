//! The accept loop both listeners share: a cap on the connections held at once, and a failed
//! `accept` that backs off and is logged at most once per [`LOG_EVERY`] with a count.
//!
//! A fault trial ran the admin socket out of descriptors: its loop retried a failing `accept`
//! at once, forever, and wrote 7.4 million warnings (596 MB) in 20 s. Here, a full cap stops
//! accepting (new connections wait in the kernel's backlog, costing the daemon nothing) and a
//! failure pauses the loop, from [`FIRST_PAUSE`] doubling up to [`LONGEST_PAUSE`]. May use
//! tokio only.

use std::{future::Future, io, sync::Arc, time::Duration};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The pause after the first of a series of failed accepts.
pub const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two accepts that fail.
pub const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// At most one warning per listener this often, whatever fails in between.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A listener the loop can take connections from.
pub trait Acceptor {
    /// One accepted connection.
    type Stream: Send + 'static;

    /// The next connection.
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Acceptor for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept_one(&self) -> io::Result<Self::Stream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

impl Acceptor for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;

    async fn accept_one(&self) -> io::Result<Self::Stream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

/// Accepts connections from `listener` until `shutdown`, at most `cap` held at once, and hands
/// each to `serve` with the permit that counts it (dropping the permit frees the place).
/// `name` names the listener in the log ("HTTP", "admin socket").
pub async fn accept_until<A, F>(
    listener: &A,
    name: &'static str,
    cap: usize,
    shutdown: &CancellationToken,
    mut serve: F,
) where
    A: Acceptor + Sync,
    F: FnMut(A::Stream, OwnedSemaphorePermit),
{
    let places = Arc::new(Semaphore::new(cap));
    let mut failures = FailedAccepts::new(name);
    let mut full = RateLimitedNote::default();
    loop {
        let permit = match Arc::clone(&places).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if full.due(Instant::now()) {
                    warn!(
                        listener = name,
                        cap, "connection cap reached: new connections wait until one closes"
                    );
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    permit = Arc::clone(&places).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        // Never closed; if it were, there is nothing left to serve.
                        Err(_) => return,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept_one() => accepted,
        };
        match accepted {
            Ok(stream) => {
                failures.succeeded();
                serve(stream, permit);
            }
            Err(error) => {
                let pause = failures.failed(&error, Instant::now());
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// The state of a series of failed accepts: how long to pause, and what to log.
#[derive(Debug)]
struct FailedAccepts {
    name: &'static str,
    /// Failures since the last success.
    in_a_row: u64,
    /// Failures not yet logged.
    unlogged: u64,
    next_pause: Duration,
    note: RateLimitedNote,
}

impl FailedAccepts {
    fn new(name: &'static str) -> Self {
        FailedAccepts {
            name,
            in_a_row: 0,
            unlogged: 0,
            next_pause: FIRST_PAUSE,
            note: RateLimitedNote::default(),
        }
    }

    /// Records a failure at `now`, logs it if a warning is due, and says how long to pause.
    fn failed(&mut self, error: &io::Error, now: Instant) -> Duration {
        self.in_a_row += 1;
        self.unlogged += 1;
        if self.note.due(now) {
            warn!(
                listener = self.name,
                error = %error,
                failures = self.unlogged,
                in_a_row = self.in_a_row,
                "cannot accept connections; pausing (at most one such warning per {}s)",
                LOG_EVERY.as_secs()
            );
            self.unlogged = 0;
        }
        let pause = self.next_pause;
        self.next_pause = (pause * 2).min(LONGEST_PAUSE);
        pause
    }

    /// Records an accepted connection; ends a series of failures (saying so once).
    fn succeeded(&mut self) {
        if self.in_a_row > 0 {
            info!(
                listener = self.name,
                failures = self.in_a_row,
                "accepting connections again"
            );
        }
        self.in_a_row = 0;
        self.unlogged = 0;
        self.next_pause = FIRST_PAUSE;
        self.note = RateLimitedNote::default();
    }
}

/// Says whether a note is due: the first time, then at most once per [`LOG_EVERY`].
#[derive(Debug, Default)]
struct RateLimitedNote {
    last: Option<Instant>,
}

impl RateLimitedNote {
    fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= LOG_EVERY);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A listener whose accepts fail with EMFILE `failing` times, then succeed.
    struct Flaky {
        failing: u64,
        calls: AtomicU64,
    }

    impl Acceptor for Flaky {
        type Stream = u64;

        async fn accept_one(&self) -> io::Result<u64> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failing {
                Err(io::Error::from_raw_os_error(24))
            } else {
                // Connections arrive every 10 ms once the failures are over.
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(call)
            }
        }
    }

    #[test]
    fn failures_back_off_and_are_logged_once_per_interval() {
        let start = Instant::now();
        let mut failures = FailedAccepts::new("test");
        let error = io::Error::from_raw_os_error(24);
        let mut now = start;
        let mut logged = 0;
        let mut pauses = Vec::new();
        // 60 s of failing accepts.
        while now < start + Duration::from_secs(60) {
            let due = failures.note.last.is_none_or(|l| now - l >= LOG_EVERY);
            logged += u32::from(due);
            let pause = failures.failed(&error, now);
            pauses.push(pause);
            now += pause;
        }
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert!(pauses.iter().all(|p| *p <= LONGEST_PAUSE));
        // About 67 accepts in a minute, not millions; six or seven warnings.
        assert!(pauses.len() < 80, "{} accepts", pauses.len());
        assert!((6..=7).contains(&logged), "{logged} warnings");
        failures.succeeded();
        assert_eq!(failures.failed(&error, now), FIRST_PAUSE, "a new series");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_listener_does_not_spin_and_recovers() {
        let listener = Flaky {
            failing: 1_000,
            calls: AtomicU64::new(0),
        };
        let shutdown = CancellationToken::new();
        let served = Arc::new(AtomicU64::new(0));
        let stop = shutdown.clone();
        let count = Arc::clone(&served);
        let started = Instant::now();
        tokio::select! {
            () = accept_until(&listener, "test", 4, &shutdown, move |_, permit| {
                count.fetch_add(1, Ordering::SeqCst);
                drop(permit);
            }) => {}
            () = async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                stop.cancel();
            } => {}
        }
        // 30 s of failures: a few dozen attempts, not a spin.
        let attempts = listener.calls.load(Ordering::SeqCst);
        assert!(attempts < 50, "{attempts} accepts in 30 s");
        assert_eq!(served.load(Ordering::SeqCst), 0);
        assert!(started.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cap_stops_accepting_until_a_place_frees() {
        let listener = Flaky {
            failing: 0,
            calls: AtomicU64::new(0),
        };
        let shutdown = CancellationToken::new();
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        let run = {
            let shutdown = shutdown.clone();
            async move {
                accept_until(&listener, "test", 3, &shutdown, move |_, permit| {
                    keep.lock().expect("lock").push(permit);
                })
                .await;
                listener.calls.load(Ordering::SeqCst)
            }
        };
        let task = tokio::spawn(run);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(held.lock().expect("lock").len(), 3, "three held, no more");
        held.lock().expect("lock").pop();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            held.lock().expect("lock").len(),
            3,
            "the freed place is taken"
        );
        shutdown.cancel();
        // Three connections and one more after the place freed: no accept while full.
        assert_eq!(task.await.expect("task"), 4);
    }
}
