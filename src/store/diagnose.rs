//! Explains, in one line an operator can act on, why a database file could not be opened or
//! checked: the directory is missing, the path is a directory, permissions, not an SQLite file,
//! damaged pages, a full or read-only disk.
//!
//! SQLite's own messages are short and repeat the path ("unable to open database file"); these
//! add the cause and the fix. It only words errors; [`super::prepare`] decides when to check.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// The SQLite error code of `error`, when it has one.
pub(crate) fn code(error: &rusqlite::Error) -> Option<ErrorCode> {
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    }
}

/// SQLite's own message, without the SQL text some errors carry (a migration's whole script).
pub(crate) fn message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqliteFailure(failure, None) => failure.to_string(),
        other => other.to_string(),
    }
}

/// Why opening (or first using) the database at `path` failed, and what to do. The callers'
/// context names the path, so the text does not repeat it.
pub(crate) fn open_failure(path: &Path, error: &rusqlite::Error) -> String {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match code(error) {
        Some(ErrorCode::CannotOpen) if path.is_dir() => format!(
            "it is a directory; store.path must name the database file, e.g. {}",
            path.join("smsgate.db").display()
        ),
        Some(ErrorCode::CannotOpen) if !parent.is_dir() => format!(
            "the directory {} does not exist; create it (owned by the user smsgate runs as) or \
             correct store.path",
            parent.display()
        ),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly)
            if not_writable(path, parent).is_some() =>
        {
            not_writable(path, parent).unwrap_or_default()
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => format!(
            "{}; the file and its directory {} must be readable and writable by the user \
             smsgate runs as",
            message(error),
            parent.display()
        ),
        Some(ErrorCode::NotADatabase) => "it is not an SQLite database (or its header is \
             damaged); restore a backup, or move the file away and let smsgate create a new one"
            .to_owned(),
        Some(ErrorCode::DatabaseCorrupt) => damaged(path, &message(error)),
        Some(ErrorCode::ReadOnly) => format!(
            "it is read-only ({}); smsgate must write its database: check the file's \
             permissions and that its filesystem is mounted read-write",
            message(error)
        ),
        Some(ErrorCode::DiskFull) => "its disk is full; free some space (the database needs \
             a little room for its write-ahead log) and start smsgate again"
            .to_owned(),
        Some(ErrorCode::SystemIoFailure) => format!(
            "its disk fails to read or write ({}); check the SD card or disk (dmesg), then \
             restore a backup if the file is damaged",
            message(error)
        ),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "it is locked by another program ({}); stop the other smsgate (or sqlite3 session) \
             using it",
            message(error)
        ),
        _ => message(error),
    }
}

/// A database SQLite opened read-only: why, and what to do.
pub(crate) fn read_only(path: &Path) -> String {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    not_writable(path, parent).unwrap_or_else(|| {
        "it can only be opened read-only; smsgate must write its database: check the file's \
         permissions and that its filesystem is mounted read-write"
            .to_owned()
    })
}

/// Why the database or its directory cannot be written (SQLite needs both: the write-ahead
/// log and its index are files beside the database), when that is the cause.
fn not_writable(path: &Path, parent: &Path) -> Option<String> {
    use nix::errno::Errno;
    use nix::unistd::{AccessFlags, access};
    let file = path.exists().then_some(path);
    for target in [Some(parent), file].into_iter().flatten() {
        match access(target, AccessFlags::W_OK) {
            Ok(()) => {}
            Err(Errno::EROFS) => {
                return Some(
                    "its filesystem is mounted read-only; remount it read-write or move \
                     store.path to a writable disk (an SD card that turned read-only by itself \
                     is failing: check dmesg)"
                        .to_owned(),
                );
            }
            Err(Errno::EACCES | Errno::EPERM) => {
                return Some(format!(
                    "{} is read-only for the user smsgate runs as; the database and its \
                     directory must be writable by it (the .deb gives /var/lib/smsgate to user \
                     smsgate)",
                    target.display()
                ));
            }
            Err(_) => {}
        }
    }
    None
}

/// A write-ahead log left where the database file is missing: the database was deleted or
/// moved while it was open. SQLite would replay the stray log into a new, empty file and make
/// a damaged one, so the daemon does not start on it.
pub(crate) fn orphaned_log(path: &Path) -> Option<String> {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    (!path.exists() && wal.exists()).then(|| {
        format!(
            "it does not exist, but its write-ahead log {} does: the database was deleted or \
             moved while smsgate had it open. Put it back (a {}.rescued-… copy beside it, or a \
             backup), deleting the -wal and -shm files first, or delete them to start with an \
             empty database",
            wal.display(),
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        )
    })
}

/// A damaged database: what was found, and how to recover.
pub(crate) fn damaged(path: &Path, found: &str) -> String {
    let shown = path.display();
    format!(
        "it is damaged ({found}) and smsgate will not run on it; stop smsgate, keep a copy of \
         it and its -wal and -shm files, then restore a backup or salvage what is readable: \
         sqlite3 {shown} .recover | sqlite3 {shown}.recovered && mv {shown}.recovered {shown}"
    )
}

/// Whether a write failed for a reason of the database file or the disk (as opposed to a
/// constraint the caller broke, or an application error).
pub(crate) fn is_storage_fault(error: &rusqlite::Error) -> bool {
    matches!(
        code(error),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::OutOfMemory
                | ErrorCode::FileLockingProtocolFailed
        )
    )
}
