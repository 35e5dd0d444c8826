//! The built `smsgate run` as a child process with its log captured to a file, for tests that
//! read what the daemon says (or count its file descriptors), plus raw-socket HTTP helpers for
//! requests an ordinary client will not send.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Harness, TOKEN, wait_until};

/// A running daemon and the file its log goes to.
pub struct Daemon {
    pub process: tokio::process::Child,
    pub address: SocketAddr,
    pub log: PathBuf,
}

/// Rewrites the harness's configuration file: `store` replaces the database path when given,
/// `http` and `store_keys` are lines added under `[http]` and `[store]`.
pub fn configure(harness: &Harness, db: Option<&Path>, http: &str, store_keys: &str) {
    let text = std::fs::read_to_string(&harness.config_path).expect("read config");
    let mut out = String::new();
    for line in text.lines() {
        if let (Some(db), true) = (db, line.starts_with("path = ")) {
            out.push_str(&format!("path = {:?}\n", db.display().to_string()));
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line == "[http]" {
            out.push_str(http);
            out.push('\n');
        }
        if line == "[store]" {
            out.push_str(store_keys);
            out.push('\n');
        }
    }
    std::fs::write(&harness.config_path, out).expect("write config");
}

impl Daemon {
    /// Starts `smsgate run -c <config>` with `env` added, logging at info to `log`, and waits
    /// until it listens. With `WATCHDOG_USEC` in `env` it also gets `WATCHDOG_PID`, its own
    /// pid, as systemd sets it (a shell sets it, then execs the daemon in its place).
    pub async fn start(harness: &Harness, log: &Path, env: &[(&str, &str)]) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let mut command = tokio::process::Command::new("sh");
        command
            .args(["-c", "export WATCHDOG_PID=$$; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_smsgate"))
            .args(["run", "-c"])
            .arg(&harness.config_path)
            .env("RUST_LOG", "smsgate=info")
            .env_remove(smsgate::config::TOKEN_ENV)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let process = command.spawn().expect("smsgate binary starts");
        let address = harness.config.http.listen;
        let daemon = Self {
            process,
            address,
            log: log.to_owned(),
        };
        wait_until(Duration::from_secs(60), "the binary listens", || async {
            TcpStream::connect(address).await.is_ok()
        })
        .await;
        daemon
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`.
    pub async fn wait_for_log(&self, text: &str, deadline: Duration) {
        wait_until(deadline, &format!("the log says {text:?}"), || async {
            self.log().contains(text)
        })
        .await;
    }

    pub fn pid(&self) -> u32 {
        self.process.id().expect("running")
    }

    /// Open file descriptors of the daemon.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    /// Resident memory of the daemon, KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.process.wait()).await;
    }
}

/// `GET /health` with the token: (status, body).
pub async fn health(client: &reqwest::Client, address: SocketAddr) -> (u16, Value) {
    let response = client
        .get(format!("http://{address}/health"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("health answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The named check of a detailed `/health` body: (ok, detail).
pub fn check<'a>(body: &'a Value, name: &str) -> Option<(bool, &'a str)> {
    body["checks"]
        .as_array()?
        .iter()
        .find(|check| check["name"] == name)
        .map(|check| {
            (
                check["ok"].as_bool().unwrap_or(false),
                check["detail"].as_str().unwrap_or(""),
            )
        })
}

/// Writes `request` on a new connection and reads until the server closes it (or `deadline`);
/// returns what came back.
pub async fn raw_exchange(address: SocketAddr, request: &[u8], deadline: Duration) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(deadline, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), probed once.
pub fn can_mount(dir: &Path) -> bool {
    std::fs::create_dir_all(dir).expect("mount point");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|status| status.success());
    if ok {
        let _ = std::process::Command::new("umount").arg(dir).status();
    }
    ok
}

/// A tmpfs of `size` mounted at `dir` for the life of the value.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount tmpfs at {}", dir.display());
        Self(dir.to_owned())
    }

    /// `mount -o remount,ro|rw`.
    pub fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
