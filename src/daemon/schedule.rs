//! When each probe runs: fixed-rate ticks at a stable per-probe phase, missed ticks skipped, a
//! global cap on checks in flight.
//!
//! Every probe has its own task that sleeps until its next deadline (tokio's timer wheel keeps
//! 10,000 sleeping tasks cheap). Deadlines sit on a grid anchored to wall-clock time plus a
//! phase derived from the probe's name, so 10,000 probes with the same interval spread evenly,
//! and a probe keeps its phase across reloads and restarts. The next deadline is computed from
//! the *planned* start, never from when the check finished, so check duration causes no drift.

use std::{future::Future, sync::Arc, time::Duration};

use jiff::Timestamp;
use tokio::{
    sync::{Semaphore, mpsc},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    model::{CheckResult, ProbeKind},
    probe::Checker,
};

/// Something that can run one check; the real [`Checker`], or a fake in tests.
pub trait Check: Send + Sync + 'static {
    /// Runs one check. Must end within the probe's timeout.
    fn check(&self) -> impl Future<Output = CheckResult> + Send;
}

impl Check for Checker {
    fn check(&self) -> impl Future<Output = CheckResult> + Send {
        Checker::check(self)
    }
}

/// A check result with its schedule: when it was due and when it really started.
#[derive(Debug)]
pub struct Scheduled {
    /// The result.
    pub result: CheckResult,
    /// The planned start.
    pub planned: Instant,
    /// The actual start (after waiting for a concurrency permit).
    pub started: Instant,
}

/// Phases are multiples of a *slot*, so probes due within the same slot start on one timer
/// wakeup: at 1,000 checks/s, about 250 checks per wakeup instead of one each. A wakeup (timer,
/// context switch, cold caches) costs the host as much as a loopback connect, so batching them
/// is the cheapest way to spend less CPU per check; no check starts later than planned.
///
/// Measured on loopback, CPU per TCP check at 1,000 checks/s: a C client that connects once per
/// millisecond spends 56 µs, in bursts of 20 36 µs, of 100 32 µs, of 250 28 µs, of 1,000
/// 26 µs; upledger with 20 ms slots 53 µs, with 100 ms 40 µs, with 250 ms 38 µs (means of
/// three runs). A burst of 250 checks takes about 10 ms (TCP) to 25 ms (HTTP) of one core,
/// which bounds the schedule lag it adds.
pub const PHASE_SLOT: Duration = Duration::from_millis(250);

/// The slot of HTTP probes. An HTTP check holds about 25 KiB while in flight (client
/// buffers, connection task): bursts of 250 raised the peak memory of 1,000 probes from 23 to
/// 29 MiB, and of 100 to 24-25 MiB once the allocator keeps what bursts free (`main.rs`), so
/// HTTP bursts are kept to 50 ms.
pub const HTTP_PHASE_SLOT: Duration = Duration::from_millis(50);

/// The phase slot of probes of `kind`.
pub fn phase_slot(kind: ProbeKind) -> Duration {
    match kind {
        ProbeKind::Http => HTTP_PHASE_SLOT,
        ProbeKind::Tcp | ProbeKind::Dns => PHASE_SLOT,
    }
}

/// The stable phase of a probe within its interval, from its name (FNV-1a), so it survives
/// reloads and restarts and spreads probes evenly; a multiple of `slot`.
pub fn phase_offset(name: &str, interval: Duration, slot: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let interval_us = u64::try_from(interval.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let slot_us = u64::try_from(slot.as_micros()).unwrap_or(u64::MAX).max(1);
    let phase_us = hash % interval_us;
    Duration::from_micros(phase_us - phase_us % slot_us)
}

/// The first deadline at or after `now` on the probe's grid: wall-clock instants `t` with
/// `t ≡ phase (mod interval)`, mapped onto the monotonic clock.
pub fn first_due(
    now_wall: Timestamp,
    now: Instant,
    interval: Duration,
    phase: Duration,
) -> Instant {
    let interval_us = i128::try_from(interval.as_micros())
        .unwrap_or(i128::MAX)
        .max(1);
    let phase_us = i128::try_from(phase.as_micros()).unwrap_or(0);
    let now_us = now_wall.as_microsecond() as i128;
    let wait_us = (phase_us - now_us).rem_euclid(interval_us);
    now + Duration::from_micros(u64::try_from(wait_us).unwrap_or(0))
}

/// The deadline after `planned`: one interval later, or, when the check or the machine fell
/// behind, the first grid point still in the future (missed ticks are skipped, not bunched).
pub fn next_due(planned: Instant, interval: Duration, now: Instant) -> Instant {
    let next = planned + interval;
    if next > now {
        return next;
    }
    let behind = now.duration_since(planned);
    let interval_ns = interval.as_nanos().max(1);
    let skipped = behind.as_nanos() / interval_ns + 1;
    let skipped = u32::try_from(skipped).unwrap_or(u32::MAX);
    planned + interval.saturating_mul(skipped)
}

/// How one probe is scheduled.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Time between planned starts.
    pub interval: Duration,
    /// Position within the interval.
    pub phase: Duration,
}

/// Runs one probe until `cancel` fires: sleep to the deadline, take a permit, check, send the
/// result, repeat. A check already running when `cancel` fires is finished and its result sent,
/// so nothing measured is thrown away.
pub async fn run_probe<C: Check>(
    plan: Plan,
    check: Arc<C>,
    permits: Arc<Semaphore>,
    results: mpsc::Sender<Scheduled>,
    cancel: CancellationToken,
) {
    let mut due = first_due(Timestamp::now(), Instant::now(), plan.interval, plan.phase);
    // One waiter and one timer for the loop's life, re-armed each round: registering and
    // dropping them per check was a measurable part of a check's cost.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    let sleep = tokio::time::sleep_until(due);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            () = &mut cancelled => return,
            () = &mut sleep => {}
        }
        let permit = tokio::select! {
            biased;
            () = &mut cancelled => return,
            permit = Arc::clone(&permits).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        // A queue slot first: then the result is never held across an await, which keeps every
        // idle probe task small (10,000 of them).
        let Ok(slot) = results.reserve().await else {
            return;
        };
        let started = Instant::now();
        // Boxed: a check's future (an HTTP request in flight) is several KiB, and an idle loop
        // should not carry that space between checks.
        let result = Box::pin(check.check()).await;
        drop(permit);
        slot.send(Scheduled {
            result,
            planned: due,
            started,
        });
        due = next_due(due, plan.interval, Instant::now());
        sleep.as_mut().reset(due);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        sync::{
            Mutex,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use super::*;
    use crate::model::{Outcome, ProbeName};

    /// tokio's timers fire on a 1 ms wheel: a deadline can be served up to one tick late.
    const TIMER_TICK: Duration = Duration::from_millis(1);

    #[test]
    fn phases_are_stable_and_within_the_interval() {
        let interval = Duration::from_secs(10);
        let a = phase_offset("api-health", interval, PHASE_SLOT);
        assert_eq!(a, phase_offset("api-health", interval, PHASE_SLOT));
        assert!(a < interval);
        assert!(
            a.as_micros().is_multiple_of(PHASE_SLOT.as_micros()),
            "on the slot grid"
        );
        assert_ne!(a, phase_offset("api-health2", interval, PHASE_SLOT));
        let http = phase_offset("api-health", interval, phase_slot(ProbeKind::Http));
        assert!(http.as_micros().is_multiple_of(HTTP_PHASE_SLOT.as_micros()));
        assert!(
            a <= http && http - a < PHASE_SLOT,
            "the same phase, on a finer grid"
        );
    }

    #[test]
    fn phases_spread_evenly() {
        let interval = Duration::from_secs(10);
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let phase = phase_offset(&format!("probe-{i}"), interval, PHASE_SLOT);
            buckets[phase.as_secs() as usize] += 1;
        }
        // 1,000 expected per second of the interval; allow ±15 %.
        for (second, count) in buckets.iter().enumerate() {
            assert!((850..=1150).contains(count), "second {second}: {count}");
        }
    }

    #[test]
    fn first_due_lands_on_the_grid() {
        let now = Instant::now();
        let interval = Duration::from_secs(60);
        let phase = Duration::from_secs(7);
        let wall = Timestamp::from_second(1_700_000_000).unwrap(); // 1_700_000_000 % 60 == 20
        let due = first_due(wall, now, interval, phase);
        assert_eq!(due - now, Duration::from_secs(47));
        let on_grid = Timestamp::from_second(1_700_000_000 - 20 + 7).unwrap();
        assert_eq!(first_due(on_grid, now, interval, phase), now);
    }

    #[test]
    fn next_due_skips_missed_ticks() {
        let t0 = Instant::now();
        let i = Duration::from_secs(10);
        assert_eq!(next_due(t0, i, t0 + Duration::from_secs(3)), t0 + i);
        // 35 s behind: ticks at 10, 20, 30 are missed; the next is 40, not 10.
        assert_eq!(next_due(t0, i, t0 + Duration::from_secs(35)), t0 + 4 * i);
        assert_eq!(next_due(t0, i, t0 + Duration::from_secs(10)), t0 + 2 * i);
    }

    /// A fake check that takes `duration`, counts concurrency and records start times.
    struct FakeCheck {
        name: ProbeName,
        duration: Duration,
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    impl Check for FakeCheck {
        async fn check(&self) -> CheckResult {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let result = if self.name.as_str() == "hung" {
                // Never answers; ended by the timeout, exactly as `Checker::check` does.
                let never = std::future::pending::<()>();
                let _ = tokio::time::timeout(self.duration, never).await;
                CheckResult::failure(
                    self.name.clone(),
                    Timestamp::now(),
                    self.duration,
                    crate::model::ErrorClass::Timeout,
                    "no answer",
                )
            } else {
                tokio::time::sleep(self.duration).await;
                CheckResult::success(
                    self.name.clone(),
                    Timestamp::now(),
                    self.duration,
                    Outcome::Up,
                )
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            result
        }
    }

    struct Harness {
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
        permits: Arc<Semaphore>,
        tx: mpsc::Sender<Scheduled>,
        rx: mpsc::Receiver<Scheduled>,
        cancel: CancellationToken,
    }

    impl Harness {
        fn new(max_concurrency: usize) -> Self {
            let (tx, rx) = mpsc::channel(100_000);
            Harness {
                running: Arc::default(),
                peak: Arc::default(),
                permits: Arc::new(Semaphore::new(max_concurrency)),
                tx,
                rx,
                cancel: CancellationToken::new(),
            }
        }

        fn spawn(&self, name: &str, interval: Duration, duration: Duration) {
            let check = FakeCheck {
                name: ProbeName::new(name).unwrap(),
                duration,
                running: Arc::clone(&self.running),
                peak: Arc::clone(&self.peak),
            };
            let plan = Plan {
                interval,
                phase: phase_offset(name, interval, PHASE_SLOT),
            };
            tokio::spawn(run_probe(
                plan,
                Arc::new(check),
                Arc::clone(&self.permits),
                self.tx.clone(),
                self.cancel.clone(),
            ));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_ticks_without_drift() {
        let mut h = Harness::new(10);
        let interval = Duration::from_secs(10);
        // Each check takes 3 s: a fixed-delay scheduler would drift by 3 s per tick.
        h.spawn("steady", interval, Duration::from_secs(3));
        let first = h.rx.recv().await.unwrap();
        let mut last = first.planned;
        for tick in 1..1000u32 {
            let s = h.rx.recv().await.unwrap();
            assert_eq!(s.planned - last, interval, "tick {tick}");
            assert!(
                s.started - s.planned < TIMER_TICK,
                "no lag without contention"
            );
            last = s.planned;
        }
        assert_eq!(last - first.planned, interval * 999);
        h.cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_cap_is_respected() {
        let mut h = Harness::new(5);
        // 50 probes with phases spread over a minute (aligned to the wall clock, which the
        // paused clock does not stop), each check taking 20 s: about 16 would overlap without
        // the cap, so it is reached whichever way ties between ends and starts fall.
        for i in 0..50 {
            h.spawn(
                &format!("p{i}"),
                Duration::from_secs(60),
                Duration::from_secs(20),
            );
        }
        let mut seen = 0;
        while seen < 150 {
            h.rx.recv().await.unwrap();
            seen += 1;
        }
        assert_eq!(h.peak.load(Ordering::SeqCst), 5);
        h.cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_check_does_not_delay_other_probes() {
        let mut h = Harness::new(100);
        // A check that never answers, cut by its 9 s timeout, every 10 s.
        h.spawn("hung", Duration::from_secs(10), Duration::from_secs(9));
        h.spawn("quick", Duration::from_secs(1), Duration::from_millis(5));
        let mut quick: Vec<Instant> = Vec::new();
        let mut hung = 0;
        while quick.len() < 100 {
            let s = h.rx.recv().await.unwrap();
            if s.result.probe.as_str() == "quick" {
                assert!(s.started - s.planned < TIMER_TICK);
                quick.push(s.planned);
            } else {
                assert_eq!(
                    s.result.error_class,
                    Some(crate::model::ErrorClass::Timeout)
                );
                hung += 1;
            }
        }
        for pair in quick.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_secs(1));
        }
        assert!(hung >= 8, "the hung probe kept its own schedule: {hung}");
        h.cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_check_skips_missed_ticks_instead_of_bunching() {
        let mut h = Harness::new(10);
        // Longer than the interval (only possible with a broken timeout): ticks are skipped.
        h.spawn("slow", Duration::from_secs(10), Duration::from_secs(25));
        let a = h.rx.recv().await.unwrap();
        let b = h.rx.recv().await.unwrap();
        assert_eq!(b.planned - a.planned, Duration::from_secs(30));
        h.cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn phases_spread_starts_across_the_interval() {
        let mut h = Harness::new(10_000);
        let interval = Duration::from_secs(10);
        for i in 0..1000 {
            h.spawn(&format!("probe-{i}"), interval, Duration::from_millis(1));
        }
        let origin = Instant::now();
        let mut per_second: HashMap<u64, u32> = HashMap::new();
        for _ in 0..1000 {
            let s = h.rx.recv().await.unwrap();
            *per_second
                .entry((s.planned - origin).as_secs())
                .or_default() += 1;
        }
        // 100 per second expected; none of the ten seconds gets more than twice that.
        assert_eq!(per_second.len(), 10, "{per_second:?}");
        assert!(per_second.values().all(|n| *n < 200), "{per_second:?}");
        h.cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_stops_the_loop() {
        let mut h = Harness::new(1);
        h.spawn("x", Duration::from_secs(1), Duration::from_millis(1));
        h.rx.recv().await.unwrap();
        h.cancel.cancel();
        drop(h.tx);
        let leftovers = Arc::new(Mutex::new(0));
        while h.rx.recv().await.is_some() {
            *leftovers.lock().unwrap() += 1;
        }
        assert!(*leftovers.lock().unwrap() <= 1);
    }
}
