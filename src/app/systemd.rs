//! The daemon's side of systemd's notify protocol (`Type=notify`, `WatchdogSec=`): readiness once
//! the store is open and the HTTP server listens, `WATCHDOG=1` only while the gateway is healthy,
//! `STOPPING=1` on shutdown. Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells systemd the gateway is ready, with a one-line status for `systemctl status`.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the status line shown by `systemctl status`.
pub fn status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

/// Tells systemd the gateway is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Pets the watchdog.
pub fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

/// How often to pet the watchdog: half of `WatchdogSec=`, or `None` when systemd does not watch.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2))
}

fn notify(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
