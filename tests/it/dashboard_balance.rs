//! The SIM balance on the dashboard page, in a real browser (headless Chromium, as
//! `dashboard.rs`; without it the test prints a notice and passes unless
//! `SMSGATE_REQUIRE_BROWSER=1`): the operator's answer, when it was read, and a low balance
//! marked and named in the page's "needs attention" line.

use std::time::Duration;

use fantoccini::Locator;
use smsgate::sim::SimOptions;

use crate::dashboard::{DEADLINE, PASSWORD, browser};
use crate::harness::{Harness, free_port, wait_until};

#[tokio::test]
async fn the_page_shows_the_balance_and_marks_it_low() {
    let Some(browser) = browser((1280, 900)).await else {
        return;
    };
    let admin_port = free_port();
    let mut h = Harness::new(
        SimOptions {
            ussd: vec![("*100#".into(), "Your balance is 3.20 USD.".into())],
            ussd_delay: Duration::from_millis(100),
            ..SimOptions::default()
        },
        &format!(
            "[modem]\nbalance_ussd = \"*100#\"\nlow_balance = 5\n\
             [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n"
        ),
    )
    .await;
    h.config.admin.password = Some(PASSWORD.to_owned());
    let gw = h.start().await;
    wait_until(DEADLINE, "the dashboard listens", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", admin_port))
            .await
            .is_ok()
    })
    .await;
    browser
        .log_in(&format!("http://127.0.0.1:{admin_port}"), PASSWORD)
        .await;
    let shown = browser
        .wait_text(
            "[data-modem=\"modem\"] .m-balance",
            "the balance is shown",
            |text| text.starts_with("Your balance is 3.20 USD."),
        )
        .await;
    assert!(shown.contains("(read "), "{shown}");
    let class = browser
        .client
        .find(Locator::Css("[data-modem=\"modem\"] .m-balance"))
        .await
        .expect("the balance")
        .attr("class")
        .await
        .expect("class");
    assert!(
        class.is_some_and(|c| c.contains("bad-text")),
        "a low balance is marked"
    );
    browser
        .wait_text("#problem", "the low balance is named", |text| {
            text.contains("the SIM's balance is low (3.2)")
        })
        .await;
    browser.close().await;
    gw.stop().await;
}
