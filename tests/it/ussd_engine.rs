//! The AT engine and USSD answers over several lines: an operator menu's `+CUSD:` text goes on
//! after its first line end, and the engine hands it over as one URC; a URC inside an answer
//! that never closes cuts it short without swallowing the URC.

use std::time::Duration;

use smsgate::at::{self, AtConfig, Urc};
use tokio::io::AsyncWriteExt;

async fn urcs_for(written: &str) -> Vec<Urc> {
    let (ours, mut theirs) = tokio::io::duplex(4096);
    let (_at, mut urcs, _task) = at::spawn(ours, AtConfig::default());
    theirs.write_all(written.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    while let Ok(Some(urc)) = tokio::time::timeout(Duration::from_secs(2), urcs.recv()).await {
        got.push(urc);
    }
    drop(theirs);
    got
}

#[tokio::test]
async fn a_menu_over_several_lines_is_one_urc() {
    let urcs = urcs_for(
        "\r\n+CUSD: 1,\"Balance: 3.40 USD\r\n1. Buy data\r\n2. Offers\",15\r\n\
         \r\n+CMTI: \"SM\",3\r\n",
    )
    .await;
    let lines: Vec<&str> = urcs.iter().map(|urc| urc.line.as_str()).collect();
    assert_eq!(
        lines,
        vec![
            "+CUSD: 1,\"Balance: 3.40 USD\n1. Buy data\n2. Offers\",15",
            "+CMTI: \"SM\",3",
        ]
    );
    let answer = at::ussd::parse(lines[0]).expect("parses");
    assert_eq!(
        answer.text.as_deref(),
        Some("Balance: 3.40 USD\n1. Buy data\n2. Offers")
    );
    assert_eq!(answer.dcs, Some(15));
}

#[tokio::test]
async fn an_answer_cut_short_by_a_urc_leaves_the_urc_alone() {
    let urcs =
        urcs_for("\r\n+CUSD: 0,\"Balance 3.40\r\n+CMTI: \"SM\",4\r\n\r\n+CSQ: 9,99\r\n").await;
    let lines: Vec<&str> = urcs.iter().map(|urc| urc.line.as_str()).collect();
    assert_eq!(lines[0], "+CUSD: 0,\"Balance 3.40");
    assert_eq!(lines[1], "+CMTI: \"SM\",4");
    // A one-line answer is handed over at once, as before.
    let urcs = urcs_for("\r\n+CUSD: 0,\"Your balance is 1.00\",15\r\n").await;
    assert_eq!(urcs.len(), 1);
    assert_eq!(urcs[0].line, "+CUSD: 0,\"Your balance is 1.00\",15");
}
