//! Start-up errors as an operator reads them in `journalctl -u smsgate`: `smsgate run` with a
//! bad configuration, an unreadable file, a database it cannot use, an occupied port … Each
//! must fail with exactly one line that says what happened and what to do, without repeating
//! its cause and without SQL.

use std::path::Path;
use std::process::Command;

use crate::harness::free_port;

fn config(dir: &Path, db: &Path, port: u16, extra_respond: &str) -> std::path::PathBuf {
    let path = dir.join(format!("smsgate-{}.toml", rand_suffix()));
    std::fs::write(
        &path,
        format!(
            "[respond]\nchannel_id = \"c\"\n{extra_respond}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
             [modem]\nport = {:?}\n[store]\npath = {:?}\n",
            dir.join("no-modem").display().to_string(),
            db.display().to_string()
        ),
    )
    .expect("write config");
    path
}

fn rand_suffix() -> u32 {
    rand::random()
}

/// Runs `smsgate run -c config`; returns its error line after checking the rules.
fn error_line(config: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(config)
        .env("RUST_LOG", "off")
        .env_remove(smsgate::config::TOKEN_ENV)
        .output()
        .expect("runs");
    assert!(!output.status.success(), "{config:?} started");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line:\n{stderr}");
    let line = lines[0];
    assert!(line.starts_with("smsgate: "), "{line}");
    assert!(!line.contains("CREATE TABLE"), "SQL in {line}");
    // No clause said twice: split at ": " and "; ", every piece of 12+ characters once.
    let pieces: Vec<&str> = line
        .split([':', ';'])
        .map(str::trim)
        .filter(|p| p.len() >= 12)
        .collect();
    for (i, piece) in pieces.iter().enumerate() {
        assert!(
            !pieces[i + 1..].contains(piece),
            "{piece:?} repeated in {line}"
        );
    }
    line.to_owned()
}

#[test]
fn startup_errors_are_one_line_each_saying_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let token = "api_token = \"t\"";
    let port = free_port();
    let good_db = d.join("ok.db");

    let mut cases: Vec<(String, std::path::PathBuf, &[&str])> = Vec::new();
    cases.push((
        "missing config".into(),
        d.join("nowhere.toml"),
        &["pass the file with -c"],
    ));
    let bad = d.join("bad.toml");
    std::fs::write(&bad, "[respond\nchannel_id = 1\n").expect("write");
    cases.push(("unparsable config".into(), bad, &["line 1, column"]));
    cases.push((
        "missing token file".into(),
        config(d, &good_db, port, "api_token_file = \"/nonexistent/token\""),
        &[
            "API token file",
            "create it or correct respond.api_token_file",
        ],
    ));
    cases.push((
        "missing database directory".into(),
        config(d, &d.join("no/such/dir/smsgate.db"), port, token),
        &["does not exist", "correct store.path"],
    ));
    std::fs::create_dir(d.join("adir")).expect("mkdir");
    cases.push((
        "database path is a directory".into(),
        config(d, &d.join("adir"), port, token),
        &["is a directory", "store.path must name the database file"],
    ));
    let garbage = d.join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).expect("write");
    cases.push((
        "not a database".into(),
        config(d, &garbage, port, token),
        &["not an SQLite database", "restore a backup"],
    ));
    let newer = d.join("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).expect("open");
        conn.pragma_update(None, "user_version", 99)
            .expect("version");
    }
    cases.push((
        "database from a newer smsgate".into(),
        config(d, &newer, port, token),
        &[
            "newer than this smsgate understands",
            "run the newer smsgate",
        ],
    ));
    let foreign = d.join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).expect("open");
        conn.execute_batch("CREATE TABLE outbound (x)")
            .expect("table");
    }
    cases.push((
        "another program's database (the migration fails)".into(),
        config(d, &foreign, port, token),
        &[
            "migration 0001_initial failed",
            "table outbound already exists",
        ],
    ));
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = occupied.local_addr().expect("address").port();
    cases.push((
        "port in use".into(),
        config(d, &d.join("port.db"), taken, token),
        &[
            "cannot listen on",
            "another program already listens there",
            "http.listen",
        ],
    ));

    for (what, path, words) in &cases {
        let line = error_line(path);
        for word in *words {
            assert!(line.contains(word), "{what}: {word:?} missing from {line}");
        }
        eprintln!("{what}: {line}");
    }
    drop(occupied);
}
