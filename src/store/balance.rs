//! The SIM balance each modem last read by USSD, by modem name: written when the driver reads
//! one, read by the dashboard (so a balance read before a restart still shows).
//!
//! It keeps the latest reading only; the amount's history is Prometheus's job
//! (`smsgate_sim_balance`).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// One modem's latest balance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredBalance {
    pub modem: String,
    pub text: String,
    pub amount: Option<f64>,
    pub read_ms: i64,
}

impl Store {
    /// Records `modem`'s balance, replacing the one before (an older reading is ignored).
    pub async fn record_balance(&self, balance: StoredBalance) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO sim_balance (modem, text, amount, read_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (modem) DO UPDATE SET text = excluded.text,
                     amount = excluded.amount, read_ms = excluded.read_ms
                 WHERE excluded.read_ms >= sim_balance.read_ms",
                params![balance.modem, balance.text, balance.amount, balance.read_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// `modem`'s latest balance, if one was ever read.
    pub async fn balance(&self, modem: &str) -> Result<Option<StoredBalance>, StoreError> {
        let modem = modem.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT modem, text, amount, read_ms FROM sim_balance WHERE modem = ?1",
                    params![modem],
                    |row| {
                        Ok(StoredBalance {
                            modem: row.get(0)?,
                            text: row.get(1)?,
                            amount: row.get(2)?,
                            read_ms: row.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(text: &str, amount: Option<f64>, read_ms: i64) -> StoredBalance {
        StoredBalance {
            modem: "sim-a".into(),
            text: text.into(),
            amount,
            read_ms,
        }
    }

    #[tokio::test]
    async fn the_latest_reading_per_modem_is_kept() {
        let store = Store::open_in_memory().await.expect("open");
        assert_eq!(store.balance("sim-a").await.expect("read"), None);
        store
            .record_balance(reading("Balance 12.50", Some(12.5), 10))
            .await
            .expect("first");
        store
            .record_balance(reading("Balance 3.00", Some(3.0), 20))
            .await
            .expect("second");
        // Out of order: an older reading does not replace a newer one.
        store
            .record_balance(reading("Balance 9.00", Some(9.0), 15))
            .await
            .expect("older");
        store
            .record_balance(reading("no amount", None, 30))
            .await
            .expect("no amount");
        let latest = store.balance("sim-a").await.expect("read").expect("some");
        assert_eq!(latest, reading("no amount", None, 30));
        assert_eq!(store.balance("sim-b").await.expect("read"), None);
    }
}
