//! The status page as served: rendered in the background, gzip-compressed once per rendering,
//! and tagged (ETag) so a reader who has it gets `304 Not Modified`.
//!
//! A fault trial ran 200 concurrent readers against `/` (1 MB at 10,000 probes): rendering per
//! request halved the daemon's check rate and multiplied its schedule lag by forty. Now a view
//! costs a copy of a reference-counted buffer. One task renders, on the blocking pool, only
//! while someone looks: a view of a page older than [`FRESH_FOR`] asks for a new one and waits
//! for it (briefly, [`FRESH_WAIT`]; then it gets the old one), and renderings are at least
//! [`FRESH_FOR`] apart, or [`DUTY_FACTOR`] times as long as the last took, so readers, however
//! many, cost at most a few percent of a core. May use the rest of `api::http`.

use std::{
    hash::{Hash, Hasher},
    io::Write as _,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// A rendering younger than this is served as it is.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// Longest a view waits for a newer rendering than the one there is.
pub const FRESH_WAIT: Duration = Duration::from_secs(2);
/// Longest the first view (no rendering yet: the figures may be being computed) waits.
pub const FIRST_WAIT: Duration = Duration::from_secs(15);
/// The pause after a rendering, in multiples of its duration (rendering and compressing), when
/// that is longer than [`FRESH_FOR`].
const DUTY_FACTOR: u32 = 50;
/// A rendering nobody viewed for this long is dropped (at 10,000 probes it takes over 1 MB).
const DROP_AFTER: Duration = Duration::from_secs(600);

/// One rendering of the page, in both encodings, with its tags.
#[derive(Debug)]
pub struct RenderedPage {
    /// The HTML.
    pub html: Bytes,
    /// The HTML, gzip-compressed.
    pub gzip: Bytes,
    /// The strong ETag of `html` (quoted); `gzip`'s is [`RenderedPage::gzip_etag`].
    pub etag: String,
    /// When rendered.
    pub at: Instant,
}

impl RenderedPage {
    /// Compresses and tags `html`, rendered `at`.
    pub fn new(html: String, at: Instant) -> RenderedPage {
        let mut hasher = rustc_hash::FxHasher::default();
        html.hash(&mut hasher);
        let etag = format!("\"{:016x}\"", hasher.finish());
        let mut encoder = GzEncoder::new(Vec::with_capacity(html.len() / 6), Compression::new(6));
        // Writing to a Vec cannot fail; an empty body would only cost the compression.
        let gzip = match encoder.write_all(html.as_bytes()) {
            Ok(()) => encoder.finish().unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        RenderedPage {
            html: Bytes::from(html),
            gzip: Bytes::from(gzip),
            etag,
            at,
        }
    }

    /// The strong ETag of the gzip encoding (a different representation, so another tag).
    pub fn gzip_etag(&self) -> String {
        format!("{}-gz\"", self.etag.trim_end_matches('"'))
    }
}

/// Paces full page bodies to [`PagePace::per_second`]: sending the page (hundreds of KiB even
/// compressed, at 10,000 probes) costs the daemon more than rendering it once did, so readers
/// past that pace wait their turn, which costs nothing, or, when the wait would exceed
/// [`PagePace::MAX_WAIT`], are told to come back (`503`). A `304` is not paced.
#[derive(Debug)]
pub struct PagePace {
    interval: Duration,
    next: std::sync::Mutex<Instant>,
}

impl PagePace {
    /// Longest a reader waits for its turn.
    pub const MAX_WAIT: Duration = Duration::from_secs(2);

    /// At most `per_second` full pages a second.
    pub fn per_second(per_second: u32) -> PagePace {
        PagePace {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this reader's turn; `false` when it would wait longer than [`Self::MAX_WAIT`].
    pub async fn turn(&self) -> bool {
        let now = Instant::now();
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(now);
            if slot.duration_since(now) > Self::MAX_WAIT {
                return false;
            }
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }
}

/// The latest rendering, renewed while someone looks.
#[derive(Debug)]
pub struct PageCache {
    page: watch::Sender<Option<Arc<RenderedPage>>>,
    /// Told whenever a view wants a fresher page than there is.
    wanted: tokio::sync::Notify,
}

impl Default for PageCache {
    fn default() -> Self {
        PageCache {
            page: watch::Sender::new(None),
            wanted: tokio::sync::Notify::new(),
        }
    }
}

impl PageCache {
    /// The page: the current rendering when it is fresh; otherwise asks for a new one and waits
    /// for it ([`FRESH_WAIT`], or [`FIRST_WAIT`] when there is none yet). `None` only when there
    /// has never been one within that wait.
    pub async fn view(&self) -> Option<Arc<RenderedPage>> {
        let mut updates = self.page.subscribe();
        let current = updates.borrow_and_update().clone();
        let wait = match &current {
            Some(page) if page.at.elapsed() < FRESH_FOR => return current,
            Some(_) => FRESH_WAIT,
            None => FIRST_WAIT,
        };
        self.wanted.notify_one();
        match tokio::time::timeout(wait, updates.changed()).await {
            Ok(Ok(())) => updates.borrow().clone().or(current),
            _ => current,
        }
    }

    /// Renders and compresses until `cancel`, whenever a view wants it, but no sooner than
    /// [`FRESH_FOR`] (or [`DUTY_FACTOR`] times the last rendering's duration) after the last.
    /// `prepare` gathers what the page needs (waiting, perhaps, for figures) and returns the
    /// rendering itself, which runs on a blocking thread. Drops the rendering after
    /// [`DROP_AFTER`] without a view.
    pub async fn render_forever<F, P, R>(&self, prepare: F, cancel: CancellationToken)
    where
        F: Fn() -> P,
        P: Future<Output = R>,
        R: FnOnce() -> String + Send + 'static,
    {
        loop {
            let wanted = tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wanted.notified() => true,
                () = tokio::time::sleep(DROP_AFTER) => false,
            };
            if !wanted {
                self.page.send_replace(None);
                continue;
            }
            let render = tokio::select! {
                () = cancel.cancelled() => return,
                render = prepare() => render,
            };
            let started = Instant::now();
            let rendered = tokio::task::spawn_blocking(move || {
                let html = render();
                RenderedPage::new(html, started)
            });
            match rendered.await {
                Ok(page) => {
                    self.page.send_replace(Some(Arc::new(page)));
                }
                Err(e) => {
                    warn!(error = %e, "status page rendering failed");
                    // Views waiting get the old page rather than waiting on.
                    self.page.send_modify(|_| {});
                }
            }
            let pause = (started.elapsed() * DUTY_FACTOR).max(FRESH_FOR);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Read as _,
        sync::atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[test]
    fn the_gzip_encoding_holds_the_html_and_tags_differ() {
        let html = "<p>all up</p>".repeat(1_000);
        let page = RenderedPage::new(html.clone(), Instant::now());
        let mut unpacked = String::new();
        flate2::read::GzDecoder::new(&page.gzip[..])
            .read_to_string(&mut unpacked)
            .expect("gzip");
        assert_eq!(unpacked, html);
        assert!(page.gzip.len() < html.len() / 10);
        assert!(page.etag.starts_with('"') && page.etag.ends_with('"'));
        assert_ne!(page.etag, page.gzip_etag());
        let again = RenderedPage::new(html, Instant::now());
        assert_eq!(page.etag, again.etag);
        let other = RenderedPage::new("<p>down</p>".into(), Instant::now());
        assert_ne!(page.etag, other.etag);
    }

    #[tokio::test(start_paused = true)]
    async fn full_pages_are_paced_and_the_excess_sent_away() {
        let pace = Arc::new(PagePace::per_second(20));
        let started = Instant::now();
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let pace = Arc::clone(&pace);
            readers.spawn(async move { pace.turn().await.then(Instant::now) });
        }
        let served: Vec<Instant> = readers.join_all().await.into_iter().flatten().collect();
        // 2 s of waiting at 20 a second: 41 served (one at once), the rest sent away.
        assert_eq!(served.len(), 41);
        let last = served.iter().max().expect("served");
        assert_eq!(last.duration_since(started), PagePace::MAX_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn many_views_cost_one_rendering_per_interval() {
        let cache = Arc::new(PageCache::default());
        let renders = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let render = {
            let renders = Arc::clone(&renders);
            move || {
                let n = renders.fetch_add(1, Ordering::SeqCst);
                async move { move || format!("page {n}") }
            }
        };
        let renderer = Arc::clone(&cache);
        let stop = cancel.clone();
        tokio::spawn(async move { renderer.render_forever(render, stop).await });

        assert_eq!(renders.load(Ordering::SeqCst), 0, "nobody looked yet");
        // 200 readers, each viewing ten times a second for a minute.
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let cache = Arc::clone(&cache);
            readers.spawn(async move {
                let mut seen = 0;
                for _ in 0..600 {
                    seen += usize::from(cache.view().await.is_some());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                seen
            });
        }
        let seen: usize = readers.join_all().await.into_iter().sum();
        assert_eq!(seen, 200 * 600, "every view got a page");
        let rendered = renders.load(Ordering::SeqCst);
        // One rendering per FRESH_FOR (5 s) at most: 60 s / 5 s, and the first.
        assert!((10..=13).contains(&rendered), "{rendered} renderings");

        // A view after a quiet spell gets a fresh page, not the old one.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let page = cache.view().await.expect("a page");
        assert!(page.at.elapsed() < FRESH_FOR);
        cancel.cancel();
    }
}
