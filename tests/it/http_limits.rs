//! The HTTP port as the internet sees it, against the real daemon: slow clients that never
//! finish their headers cannot lock out a real `POST /message` (connection limit, header
//! timeout, file descriptors bounded), a client sending headers too slowly is cut off, an idle
//! connection is closed; and the malformed requests refused with a 400 in respond.io's shape:
//! two `Authorization` headers, duplicate JSON keys, `Transfer-Encoding` with `Content-Length`,
//! and a text over 7,000 UTF-16 units.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smsgate::sim::SimOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::daemon::{Daemon, configure, health, raw_exchange};
use crate::harness::{CHANNEL, CONTACT, Harness, TOKEN, wait_until};

fn work_dir(harness: &Harness) -> std::path::PathBuf {
    harness.config_path.parent().expect("config dir").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_slow_clients_do_not_lock_out_a_real_post_and_hold_few_descriptors() {
    let h = Harness::new(SimOptions::default(), "").await;
    let dir = work_dir(&h);
    configure(
        &h,
        None,
        "max_connections = 64\nheader_timeout = \"3s\"\nidle_timeout = \"5s\"",
        "",
    );
    let daemon = Daemon::start(&h, &dir.join("daemon.log"), &[]).await;
    // The baseline once the modem is open and the daemon settled, not while it starts.
    wait_until(Duration::from_secs(60), "the daemon is healthy", || async {
        health(&h.client, daemon.address).await.0 == 200
    })
    .await;
    let (fds_before, rss_before) = (daemon.open_fds(), daemon.rss_kib());

    // 500 clients that start a request and never finish its headers.
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut stream = TcpStream::connect(daemon.address).await.expect("connect");
        let _ = stream
            .write_all(b"POST /message HTTP/1.1\r\nHost: smsgate\r\n")
            .await;
        slow.push(stream);
    }
    daemon
        .wait_for_log("HTTP connection limit reached", Duration::from_secs(30))
        .await;
    let (fds_during, rss_during) = (daemon.open_fds(), daemon.rss_kib());
    eprintln!(
        "500 slow clients: fds {fds_before} -> {fds_during}, RSS {rss_before} -> {rss_during} KiB"
    );
    assert!(
        fds_during <= fds_before + 64 + 8,
        "the daemon holds {fds_during} descriptors (was {fds_before})"
    );

    // A real request, on a new connection, is answered.
    let started = Instant::now();
    let m_id = tokio::time::timeout(
        Duration::from_secs(90),
        h.send_text(daemon.address, CONTACT, "through the crowd"),
    )
    .await
    .expect("a real POST /message is answered while slow clients wait");
    eprintln!(
        "real POST answered after {:.1} s: {m_id}",
        started.elapsed().as_secs_f64()
    );
    drop(slow);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_headers_sent_too_slowly_and_idle_connections_are_closed() {
    let h = Harness::new(SimOptions::default(), "").await;
    let dir = work_dir(&h);
    configure(
        &h,
        None,
        "header_timeout = \"2s\"\nidle_timeout = \"3s\"",
        "",
    );
    let daemon = Daemon::start(&h, &dir.join("daemon.log"), &[]).await;

    // One byte every 200 ms: the whole head would take about 20 s.
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: smsgate\r\nAuthorization: Bearer {TOKEN}\r\n\
         X-Padding: {}\r\n\r\n",
        "p".repeat(20)
    );
    let mut stream = TcpStream::connect(daemon.address).await.expect("connect");
    let started = Instant::now();
    let mut sent = 0;
    for byte in head.as_bytes() {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        let mut probe = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => panic!(
                "answered a request whose headers took {:.1} s: {}",
                started.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&probe[..n])
            ),
            Err(_) => {}
        }
    }
    assert!(
        sent < head.len(),
        "the whole head ({} bytes over {:.1} s) was accepted",
        head.len(),
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "slow head cut off after {sent} bytes, {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // A connection that sends nothing is closed after the idle timeout.
    let mut idle = TcpStream::connect(daemon.address).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf))
        .await
        .expect("an idle connection is closed within 30 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // A keep-alive client that goes on sending requests is served throughout.
    for i in 0..3 {
        h.send_text(daemon.address, CONTACT, &format!("keep-alive {i}"))
            .await;
    }
    daemon.stop().await;
}

fn error_message(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body.trim()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_two_authorization_headers_duplicate_keys_and_smuggling_are_400() {
    let h = Harness::new(SimOptions::default(), "[sms]\nmax_parts = 255").await;
    let dir = work_dir(&h);
    let daemon = Daemon::start(&h, &dir.join("daemon.log"), &[]).await;
    let address = daemon.address;
    let hello = json!({"channelId": CHANNEL, "contactId": CONTACT,
        "message": {"type": "text", "text": "hello"}})
    .to_string();

    // Two Authorization headers, even if one of them is right.
    let answer = raw_exchange(
        address,
        format!(
            "POST /message HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Authorization: Bearer other\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{hello}",
            hello.len()
        )
        .as_bytes(),
        Duration::from_secs(20),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let message = error_message(&answer)["error"]["message"].clone();
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("2 Authorization headers")),
        "{answer}"
    );

    // Duplicate JSON keys: the text that would be sent is not the one a log would show.
    let duplicated = format!(
        r#"{{"channelId":"{CHANNEL}","contactId":"{CONTACT}","message":{{"type":"text","text":"shown","text":"sent"}}}}"#
    );
    let response = h
        .client
        .post(format!("http://{address}/message"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(duplicated)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"message.text\" appears twice")),
        "{body}"
    );

    // Transfer-Encoding with Content-Length: refused, the connection closed, and the request
    // hidden behind it is never served.
    let smuggled = format!(
        "POST /message HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 4\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let answer = raw_exchange(address, smuggled.as_bytes(), Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let message = error_message(&answer)["error"]["message"].clone();
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("both Transfer-Encoding and Content-Length")),
        "{answer}"
    );
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "only one answer: {answer}"
    );

    // Nor does a head padded past what the framing watch reads get through.
    let padded = format!(
        "POST /message HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 4\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "p".repeat(70 * 1024)
    );
    let answer = raw_exchange(address, padded.as_bytes(), Duration::from_secs(20)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    // 3,501 emoji are 3,501 characters but 7,002 UTF-16 units: over respond.io's limit.
    let (status, body) = h
        .post_text(address, CONTACT, &"\u{1F600}".repeat(3_501))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("UTF-16")),
        "{body}"
    );
    h.send_text(address, CONTACT, &"\u{1F600}".repeat(3_500))
        .await;

    // And ordinary requests still work, with and without keep-alive and chunked bodies.
    let answer = raw_exchange(
        address,
        format!(
            "POST /message HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{hello}\r\n0\r\n\r\n",
            hello.len()
        )
        .as_bytes(),
        Duration::from_secs(20),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    wait_until(
        Duration::from_secs(5),
        "the daemon still listens",
        || async { TcpStream::connect(address).await.is_ok() },
    )
    .await;
    daemon.stop().await;
}
