//! Whether the database can still keep what smsgate accepts: write failures, the database file
//! replaced or deleted under the running daemon, and the free space left on its volume.
//!
//! The store thread reports the outcome of every write group here ([`StoreHealth::record`]);
//! the file identity (device and inode, taken at open) and the free space are checked on demand
//! with `stat` and `statvfs`, which cost microseconds, so `POST /message` can ask before every
//! commit. `/health`, the systemd watchdog and `POST /message` read the result
//! ([`StoreStatus`]).
//!
//! This file decides nothing about HTTP status codes or the watchdog's grace period; it only
//! says what is wrong, in words an operator can act on.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What the store's health reports about a database file.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    /// The database file; `None` for an in-memory database.
    path: Option<PathBuf>,
    /// (device, inode) of the file when it was opened.
    identity: OnceLock<(u64, u64)>,
    writes: Mutex<WriteState>,
    /// Set once the file was found replaced or deleted: sticky, because the open handle keeps
    /// writing to the old file until the daemon restarts.
    file_problem: Mutex<Option<String>>,
    /// `store.min_free_space`, bytes.
    min_free_space: AtomicU64,
    /// Whether the last free-space check was below the floor (to log transitions only).
    low_space: Mutex<bool>,
}

/// How long after its last failed write a failing database counts as writable again, once a
/// write succeeds.
///
/// A full volume fails some writes and not others: an update in place fits in the write-ahead
/// log's existing pages and commits, a new message does not. Without this window the periodic
/// write probe's success would declare such a disk healthy between two refused messages, and
/// `/health` and the systemd watchdog would flicker instead of saying what is true.
pub(crate) const WRITE_RECOVERY_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct WriteState {
    /// Since when writes fail: the first failure of an episode, which ends with a success once
    /// no write has failed for [`WRITE_RECOVERY_WINDOW`].
    failing_since: Option<Instant>,
    /// The episode's last failure.
    last_failure: Option<Instant>,
    /// Whether the most recent write failed.
    last_failed: bool,
    last_error: Option<String>,
    failures: u64,
}

/// The store's health at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// How long writes have been failing, when they are (some of them: see
    /// [`WRITE_RECOVERY_WINDOW`]).
    pub write_failing_for: Option<Duration>,
    /// The last write error, while writes fail.
    pub write_error: Option<String>,
    /// The most recent write failed: a new message would most likely fail too.
    pub last_write_failed: bool,
    /// Write failures since start.
    pub write_failures: u64,
    /// The database file was replaced or deleted under the daemon, in words.
    pub file_problem: Option<String>,
    /// Bytes available on the database's volume (to smsgate's user), when known.
    pub free_bytes: Option<u64>,
    /// `store.min_free_space`.
    pub min_free_bytes: u64,
}

impl StoreStatus {
    /// The free space is known and below `store.min_free_space`.
    pub fn low_on_space(&self) -> bool {
        self.free_bytes
            .is_some_and(|free| free < self.min_free_bytes)
    }
}

impl StoreHealth {
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            identity: OnceLock::new(),
            writes: Mutex::default(),
            file_problem: Mutex::new(None),
            min_free_space: AtomicU64::new(0),
            low_space: Mutex::new(false),
        }
    }

    /// Remembers which file was opened (called once the database exists on disk).
    pub(crate) fn opened(&self) {
        if let Some(path) = &self.path {
            if let Ok(meta) = std::fs::metadata(path) {
                let _ = self.identity.set((meta.dev(), meta.ino()));
            }
        }
    }

    /// Records the outcome of one write group: `Some(error)` when a write or its commit failed
    /// for a reason of the database or the disk (not a caller's mistake).
    pub(crate) fn record(&self, fault: Option<&str>) {
        self.record_at(fault, Instant::now());
    }

    fn record_at(&self, fault: Option<&str>, now: Instant) {
        let mut writes = lock(&self.writes);
        writes.last_failed = fault.is_some();
        match fault {
            None => {
                let settled = writes
                    .last_failure
                    .is_none_or(|last| now.duration_since(last) >= WRITE_RECOVERY_WINDOW);
                if !settled {
                    return;
                }
                if let Some(since) = writes.failing_since.take() {
                    tracing::info!(
                        after_s = now.duration_since(since).as_secs(),
                        "database writes succeed again"
                    );
                }
                writes.last_failure = None;
                writes.last_error = None;
            }
            Some(error) => {
                writes.failures += 1;
                writes.last_failure = Some(now);
                if writes.failing_since.is_none() {
                    writes.failing_since = Some(now);
                    tracing::error!(
                        %error,
                        "a database write failed: nothing new can be kept until writes succeed \
                         again (check the disk: full, read-only, or failing)"
                    );
                }
                writes.last_error = Some(error.to_owned());
            }
        }
    }

    /// Checks that the path still names the file that was opened. Logs (once) and remembers
    /// a file found replaced or deleted; returns the problem, if any.
    pub(crate) fn check_file(&self) -> Option<String> {
        if let Some(problem) = lock(&self.file_problem).clone() {
            return Some(problem);
        }
        let (path, &(dev, ino)) = (self.path.as_ref()?, self.identity.get()?);
        let problem = match std::fs::metadata(path) {
            Ok(meta) if (meta.dev(), meta.ino()) == (dev, ino) => return None,
            Ok(_) => format!(
                "the database file {} was replaced while smsgate runs (its inode changed); \
                 smsgate keeps writing to the file it opened, which is no longer at that path",
                path.display()
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => format!(
                "the database file {} was deleted while smsgate runs; what smsgate still holds \
                 would be lost at the next restart",
                path.display()
            ),
            // Cannot tell (a permission problem on the directory, say): not a verdict.
            Err(_) => return None,
        };
        let mut slot = lock(&self.file_problem);
        if slot.is_none() {
            tracing::error!(
                "{problem}; no longer accepting messages (POST /message answers 503) until \
                 smsgate is restarted with the right file in place"
            );
            *slot = Some(problem.clone());
        }
        slot.clone()
    }

    pub(crate) fn set_min_free_space(&self, bytes: u64) {
        self.min_free_space.store(bytes, Ordering::Relaxed);
    }

    /// Bytes available to smsgate on the database's volume.
    pub(crate) fn free_bytes(&self) -> Option<u64> {
        let path = self.path.as_ref()?;
        free_bytes(path)
    }

    /// The health now (runs the file and space checks).
    pub(crate) fn status(&self) -> StoreStatus {
        let file_problem = self.check_file();
        let writes = lock(&self.writes);
        let mut status = StoreStatus {
            write_failing_for: writes.failing_since.map(|since| since.elapsed()),
            write_error: writes.last_error.clone(),
            last_write_failed: writes.last_failed,
            write_failures: writes.failures,
            file_problem,
            free_bytes: None,
            min_free_bytes: self.min_free_space.load(Ordering::Relaxed),
        };
        drop(writes);
        status.free_bytes = self.free_bytes();
        self.note_space(&status);
        status
    }

    /// Logs the moments the free space crosses the floor.
    fn note_space(&self, status: &StoreStatus) {
        let low = status.low_on_space();
        let mut was_low = lock(&self.low_space);
        if low && !*was_low {
            tracing::warn!(
                "{}; POST /message answers 507 until space is freed",
                space_text(status)
            );
        } else if !low && *was_low {
            tracing::info!(
                "free space on the database's volume is back above store.min_free_space"
            );
        }
        *was_low = low;
    }
}

/// The free space in words, e.g. "1.2 MiB free on the database's volume, below
/// store.min_free_space (16 MiB)".
pub fn space_text(status: &StoreStatus) -> String {
    format!(
        "{} free on the database's volume, below store.min_free_space ({})",
        status
            .free_bytes
            .map_or_else(|| "?".to_owned(), human_bytes),
        human_bytes(status.min_free_bytes)
    )
}

/// Bytes available to unprivileged users on the volume holding `path` (or its directory, when
/// the file does not exist yet).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let probe = if path.exists() {
        path.to_owned()
    } else {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        parent.unwrap_or(Path::new(".")).to_owned()
    };
    let stat = nix::sys::statvfs::statvfs(&probe).ok()?;
    #[allow(clippy::useless_conversion)] // the field types differ between targets
    let (available, fragment) = (
        u64::from(stat.blocks_available()),
        u64::from(stat.fragment_size()),
    );
    Some(available.saturating_mul(fragment))
}

/// `1536` → "1.5 KiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain assignments only; a poisoned lock still holds a whole value.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_words() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(16 * 1024 * 1024), "16 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }

    #[test]
    fn write_failures_are_remembered_until_a_success_after_the_recovery_window() {
        let health = StoreHealth::new(None);
        assert_eq!(health.status().write_failing_for, None);
        let start = Instant::now();
        health.record_at(Some("disk I/O error"), start);
        health.record_at(Some("disk I/O error"), start + Duration::from_secs(1));
        let status = health.status();
        assert!(status.write_failing_for.is_some());
        assert!(status.last_write_failed);
        assert_eq!(status.write_failures, 2);
        assert_eq!(status.write_error.as_deref(), Some("disk I/O error"));
        // A success soon after the last failure (an update in place on a full disk) does not
        // end the episode; it only lets the next message try.
        health.record_at(None, start + Duration::from_secs(2));
        let status = health.status();
        assert!(status.write_failing_for.is_some(), "{status:?}");
        assert!(!status.last_write_failed);
        // Another failure inside the window: still the same episode, from its first failure.
        health.record_at(
            Some("database or disk is full"),
            start + Duration::from_secs(5),
        );
        let since_start = start.elapsed();
        let status = health.status();
        assert!(status.write_failing_for.is_some_and(|d| d >= since_start));
        assert_eq!(
            status.write_error.as_deref(),
            Some("database or disk is full")
        );
        // A success once the window has passed since the last failure ends it.
        health.record_at(None, start + Duration::from_secs(5) + WRITE_RECOVERY_WINDOW);
        let status = health.status();
        assert_eq!((status.write_failing_for, status.write_error), (None, None));
        assert!(!status.last_write_failed);
        assert_eq!(status.write_failures, 3, "a lifetime count");
    }

    #[test]
    fn a_replaced_or_deleted_file_is_found_and_stays_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        std::fs::write(&path, b"x").expect("write");
        let health = StoreHealth::new(Some(path.clone()));
        health.opened();
        assert_eq!(health.check_file(), None);
        // Replaced: a new file renamed over the old one, as a restore would do.
        let other = dir.path().join("other");
        std::fs::write(&other, b"y").expect("write");
        std::fs::rename(&other, &path).expect("rename");
        let problem = health.check_file().expect("replaced");
        assert!(problem.contains("was replaced"), "{problem}");
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(
            health.check_file(),
            Some(problem),
            "the first verdict stays"
        );

        let deleted = StoreHealth::new(Some(dir.path().join("gone")));
        std::fs::write(dir.path().join("gone"), b"x").expect("write");
        deleted.opened();
        std::fs::remove_file(dir.path().join("gone")).expect("remove");
        assert!(
            deleted
                .check_file()
                .expect("deleted")
                .contains("was deleted")
        );
        assert!(deleted.status().file_problem.is_some());
    }

    #[test]
    fn below_the_floor_is_low_on_space() {
        let dir = tempfile::tempdir().expect("tempdir");
        let health = StoreHealth::new(Some(dir.path().join("db")));
        assert!(health.free_bytes().is_some_and(|free| free > 0));
        health.set_min_free_space(u64::MAX);
        let status = health.status();
        assert!(status.low_on_space());
        assert!(space_text(&status).contains("below store.min_free_space"));
        health.set_min_free_space(0);
        assert!(!health.status().low_on_space());
    }
}
