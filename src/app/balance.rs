//! Keeps each modem's balance readings: whenever the driver publishes a new one (its
//! [`crate::modem::Health`]), it is written to the store under the modem's name, so the
//! dashboard still shows it after a restart.
//!
//! It reads nothing from the modem itself; the driver asks the network.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::modem::Health;
use crate::store::{Store, StoredBalance};

/// Runs until `shutdown`: each new reading of `modem`'s balance goes to the store.
pub(super) async fn keep(
    store: Store,
    modem: String,
    mut health: watch::Receiver<Health>,
    shutdown: CancellationToken,
) {
    let mut recorded: Option<i64> = None;
    loop {
        let reading = health.borrow_and_update().balance.clone();
        if let Some(balance) = reading.filter(|b| Some(b.read_ms) != recorded) {
            let stored = StoredBalance {
                modem: modem.clone(),
                text: balance.text,
                amount: balance.amount,
                read_ms: balance.read_ms,
            };
            match store.record_balance(stored).await {
                Ok(()) => recorded = Some(balance.read_ms),
                // The next reading tries again; the live one is on /health meanwhile.
                Err(error) => tracing::warn!(%error, modem, "cannot store the SIM balance"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = health.changed() => if changed.is_err() {
                return;
            },
        }
    }
}
