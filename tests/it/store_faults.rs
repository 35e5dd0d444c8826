//! A broken database and a small disk, against the real daemon: a damaged file refused at
//! start, the file deleted or replaced under the running daemon, every write failing (the
//! volume remounted read-only) with `/health` and the systemd watchdog, the write-ahead log
//! kept small under a burst, and a 2 MiB volume with its free-space floor (507).
//!
//! The volume tests mount a tmpfs, which needs root (CI runs as root); elsewhere they say they
//! were skipped.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use smsgate::sim::SimOptions;
use smsgate::store::{NewOutbound, Source, Store};

use crate::daemon::{Daemon, Tmpfs, can_mount, check, configure, health};
use crate::harness::{CHANNEL, CONTACT, Harness, wait_until};

fn work_dir(harness: &Harness) -> PathBuf {
    harness.config_path.parent().expect("config dir").to_owned()
}

/// A database with some thousands of rows, closed cleanly, then damaged in the middle: the
/// header of a B-tree page overwritten, as a failing SD card leaves it.
fn damaged_database(path: &Path) {
    {
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch(
            "CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
             CREATE INDEX filler_body ON filler (body);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 4000)
             INSERT INTO filler (body) SELECT printf('row %d %s', i, hex(randomblob(40))) FROM n;",
        )
        .expect("fill");
    }
    let mut bytes = std::fs::read(path).expect("read");
    let pages = bytes.len() / 4096;
    assert!(pages > 20, "{pages} pages");
    for page in [pages / 2, pages / 2 + 1] {
        bytes[page * 4096..page * 4096 + 8].copy_from_slice(&[0xff; 8]);
    }
    std::fs::write(path, bytes).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_a_damaged_database_is_refused_at_start_with_the_fix() {
    let h = Harness::new(SimOptions::default(), "").await;
    damaged_database(&h.config.store.path);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(&h.config_path)
        .env("RUST_LOG", "smsgate=warn")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the daemon refuses within a minute instead of running")
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("smsgate: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    for words in ["is damaged", ".recover", "restore a backup"] {
        assert!(line.contains(words), "{words:?} missing from {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_a_file_deleted_under_the_daemon_stops_accepting_and_says_why() {
    let h = Harness::new(SimOptions::default(), "").await;
    let dir = work_dir(&h);
    let daemon = Daemon::start(&h, &dir.join("daemon.log"), &[]).await;
    let kept = h
        .send_text(daemon.address, CONTACT, "before the deletion")
        .await;

    std::fs::remove_file(&h.config.store.path).expect("delete the database");
    let (status, body) = h.post_text(daemon.address, CONTACT, "after").await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("was deleted"), "{message}");
    let (status, body) = health(&h.client, daemon.address).await;
    assert_eq!(status, 503, "{body}");
    let (ok, detail) = check(&body, "database").expect("database check");
    assert!(!ok && detail.contains("was deleted"), "{detail}");
    let metrics = h
        .client
        .get(format!("http://{}/metrics", daemon.address))
        .bearer_auth(crate::harness::TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("\nsmsgate_database_ok 0\n"), "{metrics}");
    daemon
        .wait_for_log("no longer accepting messages", Duration::from_secs(30))
        .await;

    // What the daemon still held is written beside the lost file, with the accepted message.
    daemon
        .wait_for_log("wrote a copy of the database", Duration::from_secs(30))
        .await;
    let copy = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().contains(".rescued-"))
        .expect("a rescue copy");
    let conn = rusqlite::Connection::open(&copy).expect("open the copy");
    let found: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbound WHERE m_id = ?1",
            [&kept],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(found, 1, "the accepted message is in {}", copy.display());
    daemon.stop().await;

    // The old file's write-ahead log is left at the path: a restart refuses to replay it into
    // a new, empty database, and says how to put the copy back.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(&h.config_path)
        .env("RUST_LOG", "off")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("its write-ahead log") && stderr.contains(".rescued-"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_a_file_replaced_under_the_daemon_stops_accepting() {
    let h = Harness::new(SimOptions::default(), "").await;
    let dir = work_dir(&h);
    let daemon = Daemon::start(&h, &dir.join("daemon.log"), &[]).await;
    h.send_text(daemon.address, CONTACT, "before").await;
    // A "restore" copied over the live file by renaming, as cp --remove-destination or an
    // rsync would.
    let other = dir.join("restored.db");
    std::fs::copy(&h.config.store.path, &other).expect("copy");
    std::fs::rename(&other, &h.config.store.path).expect("replace");
    let (status, body) = h.post_text(daemon.address, CONTACT, "after").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("was replaced")),
        "{body}"
    );
    daemon.stop().await;
}

/// Datagrams the daemon sent to a notify socket.
fn drain(socket: &UnixDatagram) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    seen
}

/// Fills the volume holding `dir` to the last byte.
fn fill_up(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.write_all(&block[..4096]);
    while file.write_all(&[0]).is_ok() {}
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_every_write_failing_degrades_health_and_stops_the_watchdog_then_recovers() {
    let h = Harness::new(SimOptions::default(), "").await;
    let dir = work_dir(&h);
    if !can_mount(&dir.join("probe")) {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let volume = Tmpfs::mount(&dir.join("vol"), "8m");
    configure(
        &h,
        Some(&dir.join("vol/smsgate.db")),
        "",
        // No free-space floor: the writes themselves must fail and be noticed.
        "min_free_space = 0\nwrite_failure_grace = \"3s\"",
    );
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket.set_nonblocking(true).expect("nonblocking");
    let socket_env = socket_path.display().to_string();
    let daemon = Daemon::start(
        &h,
        &dir.join("daemon.log"),
        &[("NOTIFY_SOCKET", &socket_env), ("WATCHDOG_USEC", "1000000")],
    )
    .await;
    wait_until(Duration::from_secs(60), "the watchdog is petted", || {
        let petted = drain(&socket).iter().any(|n| n.contains("WATCHDOG=1"));
        async move { petted }
    })
    .await;
    h.send_text(daemon.address, CONTACT, "while the disk works")
        .await;

    // Every commit fails: the volume is full to the last byte. Messages are refused with 503
    // (never a 500, never a 200 that was not kept) once the write-ahead log must grow.
    let filler = fill_up(&dir.join("vol"));
    let mut refused = None;
    for i in 0..2_000 {
        let (status, body) = h
            .post_text(daemon.address, CONTACT, &format!("full {i}"))
            .await;
        match status {
            200 => continue,
            503 => {
                refused = Some(body);
                break;
            }
            other => panic!("POST /message answered {other}: {body}"),
        }
    }
    let refused = refused.expect("writes fail on a full volume");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("cannot write its database"), "{message}");
    let (status, body) = health(&h.client, daemon.address).await;
    assert_eq!(status, 503, "{body}");
    let (ok, detail) = check(&body, "database").expect("database check");
    assert!(!ok && detail.contains("writes failing"), "{detail}");
    daemon
        .wait_for_log(
            "no longer petting the systemd watchdog",
            Duration::from_secs(60),
        )
        .await;
    drain(&socket);
    // Two seconds (four pet intervals of a healthy daemon) without a pet, while respond.io
    // keeps posting. Updates in place still commit on a full volume (the write probe's may),
    // so the disk is not declared healthy between two messages it cannot keep.
    let quiet_since = Instant::now();
    let mut i = 0;
    while quiet_since.elapsed() < Duration::from_secs(2) {
        i += 1;
        let (status, body) = h
            .post_text(daemon.address, CONTACT, &format!("still full {i}"))
            .await;
        assert!(
            matches!(status, 200 | 503),
            "POST /message answered {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pets: Vec<String> = drain(&socket)
        .into_iter()
        .filter(|n| n.contains("WATCHDOG=1"))
        .collect();
    assert!(pets.is_empty(), "still petted: {pets:?}");

    // Space comes back: the write probe notices, health and the watchdog recover.
    std::fs::remove_file(&filler).expect("free the volume");
    wait_until(
        Duration::from_secs(60),
        "the database check recovers",
        || async {
            check(&health(&h.client, daemon.address).await.1, "database").is_some_and(|(ok, _)| ok)
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "the watchdog is petted again",
        || {
            let petted = drain(&socket).iter().any(|n| n.contains("WATCHDOG=1"));
            async move { petted }
        },
    )
    .await;
    h.send_text(daemon.address, CONTACT, "after the disk came back")
        .await;
    daemon.stop().await;

    // Read-only files: the daemon refuses to start and says so, rather than running with
    // every commit failing. Twice: SQLite fails to open the file when the write-ahead log's
    // index (-shm) must be created, and opens it read-only when one is left beside it.
    let db = dir.join("vol/smsgate.db");
    let refused = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args(["run", "-c"])
            .arg(&h.config_path)
            .env("RUST_LOG", "off")
            .output()
            .expect("runs");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("mounted read-only"), "{stderr}");
    };
    volume.remount("ro");
    refused();
    volume.remount("rw");
    {
        // A live -wal and -shm, copied aside while a connection holds them and put back after
        // it closed (closing deletes them), as a crash leaves them.
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; UPDATE meta SET value = value;")
            .expect("write");
        for suffix in ["-wal", "-shm"] {
            std::fs::copy(
                format!("{}{suffix}", db.display()),
                dir.join(format!("vol/kept{suffix}")),
            )
            .expect("copy");
        }
        drop(conn);
        for suffix in ["-wal", "-shm"] {
            std::fs::rename(
                dir.join(format!("vol/kept{suffix}")),
                format!("{}{suffix}", db.display()),
            )
            .expect("put back");
        }
    }
    volume.remount("ro");
    refused();
    volume.remount("rw");
}

/// The largest size the write-ahead log reaches while `burst` messages are committed by
/// concurrent writers, sampled after every group of commits.
async fn wal_peak(path: &Path, burst: usize) -> u64 {
    let store = Store::open(path).await.expect("open");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let mut peak = 0;
    for batch in 0..burst / 50 {
        let mut writes = Vec::new();
        for i in 0..50 {
            let store = store.clone();
            writes.push(tokio::spawn(async move {
                store
                    .enqueue_outbound(NewOutbound {
                        contact_id: format!("+6012345{:04}", i),
                        text: format!("burst message {batch}/{i} with some ordinary length text"),
                        parts: 1,
                        encoding: smsgate::pdu::Encoding::Gsm7,
                        source: Source::Respond,
                        quick_replies: None,
                        now_ms: 1_700_000_000_000 + (batch * 50 + i) as i64,
                    })
                    .await
                    .expect("committed")
            }));
        }
        for write in writes {
            write.await.expect("task");
        }
        peak = peak.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_stays_small_under_a_burst() {
    let dir = tempfile::tempdir().expect("tempdir");
    let peak = wal_peak(&dir.path().join("db.sqlite"), 3_000).await;
    eprintln!("WAL peak over a 3,000-message burst: {peak} bytes");
    // SQLite's defaults let it reach about 4 MiB (1,000 pages) before the first checkpoint.
    assert!(
        peak <= smsgate::store::JOURNAL_SIZE_LIMIT + 256 * 1024,
        "the WAL reached {peak} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_a_2mib_volume_starts_takes_a_burst_and_answers_507_below_the_floor() {
    let h = Harness::new(SimOptions::default(), "").await;
    let dir = work_dir(&h);
    if !can_mount(&dir.join("probe")) {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let _volume = Tmpfs::mount(&dir.join("vol"), "2m");
    let db = dir.join("vol/smsgate.db");
    configure(&h, Some(&db), "", "min_free_space = \"256KiB\"");
    let daemon = Daemon::start(&h, &dir.join("daemon.log"), &[]).await;

    // A burst: every message is either kept (200) or refused for space (507), never a 500.
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut wal_peak = 0;
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    for round in 0..60 {
        let mut posts = Vec::new();
        for i in 0..20 {
            let (client, address) = (h.client.clone(), daemon.address);
            posts.push(tokio::spawn(async move {
                let body = json!({"channelId": CHANNEL, "contactId": CONTACT,
                    "message": {"type": "text", "text": format!("small disk {round}/{i}")}});
                client
                    .post(format!("http://{address}/message"))
                    .bearer_auth(crate::harness::TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .expect("answered")
                    .status()
                    .as_u16()
            }));
        }
        for post in posts {
            *statuses.entry(post.await.expect("task")).or_default() += 1;
        }
        wal_peak = wal_peak.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    eprintln!("2 MiB volume, 1,200 messages: {statuses:?}, WAL peak {wal_peak} bytes");
    assert!(
        statuses.keys().all(|status| [200, 507].contains(status)),
        "{statuses:?}"
    );
    assert!(statuses.get(&200).copied().unwrap_or(0) > 0, "{statuses:?}");

    // Fill the volume below the floor: 507 saying why, /health names the disk.
    let filler = dir.join("vol/filler");
    let free = smsgate::store::free_bytes(&db).expect("free space");
    std::fs::write(&filler, vec![0u8; free.saturating_sub(64 * 1024) as usize]).expect("fill");
    let (status, body) = h.post_text(daemon.address, CONTACT, "no room").await;
    assert_eq!(status, 507, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("store.min_free_space"), "{message}");
    let (status, body) = health(&h.client, daemon.address).await;
    assert_eq!(status, 503, "{body}");
    assert!(check(&body, "disk").is_some_and(|(ok, _)| !ok), "{body}");
    daemon
        .wait_for_log("below store.min_free_space", Duration::from_secs(10))
        .await;
    let check_config = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["check-config", "-c"])
        .arg(&h.config_path)
        .output()
        .expect("check-config runs");
    assert!(check_config.status.success());
    let warning = String::from_utf8_lossy(&check_config.stdout);
    assert!(
        warning.contains("warning:") && warning.contains("507"),
        "{warning}"
    );

    // Space freed: accepted again; and the daemon restarts on the small volume.
    std::fs::remove_file(&filler).expect("free");
    h.send_text(daemon.address, CONTACT, "room again").await;
    daemon.stop().await;
    let daemon = Daemon::start(&h, &dir.join("daemon2.log"), &[]).await;
    h.send_text(daemon.address, CONTACT, "after a restart on 2 MiB")
        .await;
    daemon.stop().await;
}
