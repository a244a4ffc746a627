//! systemd notification (`Type=notify`): READY, RELOADING, STOPPING, STATUS and watchdog pings.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing; a failed notification is
//! logged at debug level and never stops the daemon.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "systemd notification failed");
    }
}

/// Every probe is scheduled (or a reload finished).
pub(super) fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload started.
pub(super) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// Shutdown started.
pub(super) fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// A one-line status for `systemctl status`.
pub(super) fn status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

/// The main loop is alive.
pub(super) fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

/// Half the watchdog timeout systemd asked for, if it asked.
pub(super) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|timeout| !timeout.is_zero())
        .map(|timeout| timeout / 2)
}
