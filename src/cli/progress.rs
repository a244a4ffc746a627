//! Progress on long work (`import`, `export` to a file, `evidence`, `verify`), drawn on stderr
//! only when stderr is a terminal: a pipe, a file or a journal gets nothing, as with `cp` or
//! `rsync`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress line, or nothing when stderr is not a terminal.
pub(super) struct Progress(ProgressBar);

impl Progress {
    /// Counts `what` (e.g. "lines exported") as they go, without a known total.
    pub(super) fn counter(what: &'static str) -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {human_pos} {msg} ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(bar)
    }

    /// Bytes of `total` sent or read, then `what` while the other side works.
    pub(super) fn bytes(total: u64, what: &'static str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(what);
        Progress(bar)
    }

    /// The stages of evidence work as the library reports them ([`crate::evidence::Progress`]),
    /// one after the other on one line: a bar for a stage of known length, else a spinner.
    pub(super) fn stages() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Progress(bar)
    }

    /// `n` more done.
    pub(super) fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// Turns the line into a spinner saying `what` (the rest is the other side's work).
    pub(super) fn waiting(&self, what: &'static str) {
        self.0.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.0.set_message(what);
        self.0.enable_steady_tick(Duration::from_millis(200));
    }
}

impl crate::evidence::Progress for Progress {
    fn stage(&mut self, what: &'static str, total: u64) {
        if total == 0 {
            self.waiting(what);
            return;
        }
        self.0.disable_steady_tick();
        self.0.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.set_message(what);
    }

    fn advance(&mut self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Progress {
    /// The line goes when the work ends, so the command's own last words stand alone.
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A writer that counts the lines going through it on a progress counter.
pub(super) struct Lines<'p, W> {
    inner: W,
    progress: Option<&'p Progress>,
}

impl<'p, W: std::io::Write> Lines<'p, W> {
    pub(super) fn new(inner: W, progress: Option<&'p Progress>) -> Self {
        Lines { inner, progress }
    }
}

impl<W: std::io::Write> std::io::Write for Lines<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        if let Some(progress) = self.progress {
            let lines = buf[..written].iter().filter(|b| **b == b'\n').count();
            progress.inc(lines as u64);
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
