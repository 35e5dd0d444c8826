//! A modem on another machine: a real ser2net (Debian's `ser2net` 4.x, raw TCP mode, its YAML
//! written here) in front of the simulator's pty, reached as `tcp://127.0.0.1:PORT` through
//! `modem::endpoint`. AT commands, an SMS sent with `AT+CMGS` and one received as a `+CMTI`
//! URC go through it; ser2net killed reads as a closed port, and once it is started again a
//! reopen works; a modem missing behind a running ser2net reads as a closed port too.
//!
//! Without ser2net installed the tests print a notice and pass, unless
//! `SMSGATE_REQUIRE_SER2NET=1` (CI sets it), which makes them fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use smsgate::at::{self, AtConfig, AtError, AtHandle, Command, Urc};
use smsgate::modem::endpoint::{self, Endpoint, TcpOptions, Transport};
use smsgate::pdu::{self, Address, Pdu, SubmitOptions};
use smsgate::sim::{SimHandle, SimOptions};
use tokio::sync::mpsc;

const REQUIRE: &str = "SMSGATE_REQUIRE_SER2NET";
const SENDER: &str = "+60123456789";
const RECIPIENT: &str = "+60198765432";
/// Generous: the machine may be running several builds at once.
const DEADLINE: Duration = Duration::from_secs(30);

/// The ser2net binary (Debian installs it in /usr/sbin, often not on a user's PATH), or `None`
/// after a notice when it is missing and not required.
pub(crate) fn ser2net_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("ser2net"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var(REQUIRE).as_deref() != Ok("1"),
            "{REQUIRE}=1 but ser2net is not installed: apt-get install ser2net"
        );
        eprintln!(
            "notice: ser2net is not installed, skipping the remote-modem test \
             (apt-get install ser2net; CI sets {REQUIRE}=1 to require it)"
        );
    }
    found
}

/// One ser2net process serving `device` on `127.0.0.1:port`, raw TCP.
pub(crate) struct Ser2net {
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl Ser2net {
    pub(crate) fn new(binary: PathBuf, dir: &Path, device: &Path) -> Self {
        let port = free_port();
        // ser2net.yaml(5), 4.x syntax: a raw `tcp` accepter (no telnet, no RFC 2217), the
        // serial line 115200 8N1 ignoring modem control lines (`local`), and a new client
        // taking over from a stale one (`kickolduser`).
        let config = dir.join(format!("ser2net-{port}.yaml"));
        std::fs::write(
            &config,
            format!(
                "%YAML 1.1\n---\nconnection: &modem\n    accepter: tcp,127.0.0.1,{port}\n    \
                 enable: on\n    options:\n      kickolduser: true\n    connector: \
                 serialdev,{},115200n81,local\n",
                device.display()
            ),
        )
        .expect("write the ser2net configuration");
        Self {
            binary,
            config,
            log: dir.join(format!("ser2net-{port}.log")),
            port,
            child: None,
        }
    }

    /// Starts ser2net in the foreground (`-n`), logging to a file, without UUCP lock files
    /// (`-u`: the test may run as any user).
    pub(crate) fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the ser2net log");
        let child = std::process::Command::new(&self.binary)
            .args(["-n", "-d", "-u", "-c"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("ser2net starts");
        self.child = Some(child);
    }

    /// SIGKILL, as a crash or the machine losing power would end it, and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill ser2net");
            child.wait().expect("reap ser2net");
        }
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&format!("tcp://127.0.0.1:{}", self.port)).expect("a tcp endpoint")
    }

    /// Connects once ser2net listens (it takes a moment to start).
    async fn connect(&self) -> Transport {
        let options = TcpOptions {
            connect_timeout: Duration::from_secs(5),
            ..TcpOptions::default()
        };
        let started = Instant::now();
        loop {
            match endpoint::open(&self.endpoint(), 115_200, &options).await {
                Ok(transport) => return transport,
                Err(_) if started.elapsed() < DEADLINE => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("ser2net never listened: {error}\n{}", self.log_text()),
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Ser2net {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The AT engine on a transport, with the modem set up as the driver sets it up for SMS:
/// no echo, PDU mode, `+CMTI` for new messages.
async fn engine(
    transport: Transport,
) -> (
    AtHandle,
    mpsc::Receiver<Urc>,
    tokio::task::JoinHandle<AtError>,
) {
    let (at, urcs, task) = at::spawn(transport, AtConfig::default());
    for command in ["AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0"] {
        at.command(command, Duration::from_secs(10))
            .await
            .unwrap_or_else(|error| panic!("{command} through ser2net: {error}"));
    }
    (at, urcs, task)
}

/// Injects an SMS into the simulator and reads it back through ser2net: `+CMTI`, `AT+CMGR`,
/// the PDU decoded, `AT+CMGD`.
async fn receive(sim: &SimHandle, at: &AtHandle, urcs: &mut mpsc::Receiver<Urc>, text: &str) {
    sim.inject_sms(SENDER, text).await.expect("inject");
    let urc = tokio::time::timeout(DEADLINE, async {
        loop {
            let urc = urcs.recv().await.expect("URCs flow");
            if urc.line.starts_with("+CMTI:") {
                return urc;
            }
        }
    })
    .await
    .expect("+CMTI arrives through ser2net");
    let index: u32 = urc
        .line
        .rsplit(',')
        .next()
        .and_then(|index| index.trim().parse().ok())
        .unwrap_or_else(|| panic!("an index in {:?}", urc.line));
    let response = at
        .command(&format!("AT+CMGR={index}"), Duration::from_secs(10))
        .await
        .expect("AT+CMGR");
    let hex = response
        .lines
        .iter()
        .find(|line| !line.starts_with('+') && !line.is_empty())
        .unwrap_or_else(|| panic!("a PDU line in {response:?}"));
    let Ok(Pdu::Deliver(deliver)) = pdu::decode_hex(hex, true) else {
        panic!("an SMS-DELIVER: {hex}");
    };
    assert_eq!(deliver.user_data.text, text);
    assert!(
        deliver.sender.value.ends_with(&SENDER[1..]),
        "{:?}",
        deliver.sender
    );
    at.command(&format!("AT+CMGD={index}"), Duration::from_secs(10))
        .await
        .expect("AT+CMGD");
}

/// Sends one SMS with `AT+CMGS` (the `> ` prompt and the PDU through ser2net) and checks the
/// simulated network got it.
async fn send(sim: &SimHandle, at: &AtHandle, text: &str) {
    let recipient = Address::parse(RECIPIENT).expect("recipient");
    let parts = pdu::encode_submit(&recipient, text, &SubmitOptions::default()).expect("encodes");
    let [part] = parts.as_slice() else {
        panic!("one part");
    };
    let before = sim.submitted().await.len();
    let response = at
        .run(
            Command::new(format!("AT+CMGS={}", part.tpdu_length))
                .payload(part.hex())
                .timeout(Duration::from_secs(30)),
        )
        .await
        .expect("AT+CMGS through ser2net");
    assert!(response.value("+CMGS:").is_some(), "{response:?}");
    let submitted = sim.submitted().await;
    assert_eq!(submitted.len(), before + 1);
    let last = submitted.last().expect("one submitted");
    assert_eq!(last.submit.user_data.text, text);
    assert!(last.submit.recipient.value.ends_with(&RECIPIENT[1..]));
}

/// Waits for the engine task to end and says how.
async fn ended(task: tokio::task::JoinHandle<AtError>) -> AtError {
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the engine notices the connection is gone")
        .expect("the engine task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_behind_ser2net_sends_receives_and_comes_back_after_ser2net_restarts() {
    let Some(binary) = ser2net_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = smsgate::sim::spawn(SimOptions {
        link: Some(dir.path().join("modem")),
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let mut ser2net = Ser2net::new(binary, dir.path(), &sim.path());
    ser2net.start();

    let transport = ser2net.connect().await;
    assert!(transport.is_remote());
    let (at, mut urcs, task) = engine(transport).await;
    let identity = at
        .command("AT+CGMI", Duration::from_secs(10))
        .await
        .expect("AT+CGMI");
    assert_eq!(identity.text(), Some("smsgate"), "{identity:?}");
    send(&sim, &at, "out through ser2net").await;
    receive(&sim, &at, &mut urcs, "in through ser2net").await;

    // ser2net dies: the connection reads as a closed port, as an unplugged modem does.
    ser2net.kill();
    let reason = ended(task).await;
    assert!(
        matches!(reason, AtError::Closed | AtError::Io(_)),
        "{reason:?}"
    );
    assert!(reason.is_fatal(), "the driver reopens on this: {reason:?}");
    let after = at.command("AT", Duration::from_secs(5)).await;
    assert!(matches!(after, Err(AtError::Closed)), "{after:?}");

    // Started again on the same port: a reopen works, both ways.
    ser2net.start();
    let (at, mut urcs, _task) = engine(ser2net.connect().await).await;
    send(&sim, &at, "after the restart").await;
    receive(&sim, &at, &mut urcs, "back through ser2net").await;
    assert!(
        sim.stored_count().await == 0,
        "every SMS read was deleted through ser2net"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_missing_behind_ser2net_reads_as_a_closed_port() {
    let Some(binary) = ser2net_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The other Pi's modem is unplugged: ser2net accepts, says it cannot open the device, and
    // hangs up.
    let mut ser2net = Ser2net::new(binary, dir.path(), &dir.path().join("unplugged"));
    ser2net.start();
    let transport = ser2net.connect().await;
    let (at, _urcs, task) = at::spawn(transport, AtConfig::default());
    let reason = ended(task).await;
    assert!(
        matches!(reason, AtError::Closed | AtError::Io(_)),
        "{reason:?}"
    );
    let after = at.command("AT", Duration::from_secs(5)).await;
    assert!(matches!(after, Err(AtError::Closed)), "{after:?}");
}
