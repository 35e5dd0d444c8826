//! What an incoming call becomes (`[calls]`): one respond.io `message` event from the caller's
//! number with `calls.text` ("Missed call"), so agents see it in the conversation, and
//! optionally `calls.auto_reply` sent back by SMS, at most once per caller per hour (reported
//! to respond.io as an echo, like `smsgate send`). A withheld number is logged and counted by
//! the driver; nothing is sent for it.
//!
//! The driver recognises calls and hangs up (`crate::modem`); this file only commits what a
//! call leads to. "Once an hour" is read from the outbox (was this reply queued for this caller
//! in the last hour?), so it holds across restarts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::config::{CallsConfig, Config};
use crate::phone::{E164, mask, normalise_sender};
use crate::store::{NewOutbound, Source, Store, StoreError};
use crate::wire::Event;

/// How long a caller who got the auto-reply gets no other.
pub const AUTO_REPLY_EVERY: Duration = Duration::from_secs(3600);

/// The calls of every modem of the gateway.
pub struct Calls {
    store: Store,
    config: CallsConfig,
    country: String,
    smart_encoding: bool,
    /// Held while one call decides on its reply, so two quick calls send one.
    replying: Mutex<()>,
    sequence: AtomicU64,
}

impl Calls {
    pub fn from_config(store: Store, config: &Config) -> Self {
        Self {
            store,
            config: config.calls.clone(),
            country: config.sms.default_country.clone(),
            smart_encoding: config.sms.smart_encoding,
            replying: Mutex::new(()),
            sequence: AtomicU64::new(0),
        }
    }

    /// One call from `number` (as `+CLIP` gave it; `None`: withheld): its event and reply.
    pub async fn on_call(&self, number: Option<&str>) -> Result<(), StoreError> {
        let Some(number) = number else {
            return Ok(());
        };
        let caller = if number.starts_with('+') {
            E164::parse(number).ok()
        } else {
            normalise_sender(number, &self.country)
        };
        let Some(caller) = caller else {
            tracing::info!(
                caller = number,
                "a call from a number that is not a phone number (a short code?); nothing sent"
            );
            return Ok(());
        };
        let now_ms = crate::clock::now_ms();
        if self.config.notify {
            let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
            let m_id = format!("call-{now_ms}-{sequence}");
            let event = Event::message(m_id, now_ms, self.config.text.clone());
            self.store
                .enqueue_event(caller.as_str(), event, now_ms)
                .await?;
            tracing::info!(caller = %mask(caller.as_str()), "missed call queued for respond.io");
        }
        if let Some(reply) = &self.config.auto_reply {
            self.auto_reply(&caller, reply, now_ms).await?;
        }
        Ok(())
    }

    async fn auto_reply(&self, caller: &E164, reply: &str, now_ms: i64) -> Result<(), StoreError> {
        let _one_at_a_time = self.replying.lock().await;
        let plan = crate::pdu::plan(reply, self.smart_encoding, false);
        let hour_ago = now_ms - AUTO_REPLY_EVERY.as_millis() as i64;
        if self
            .store
            .sent_by_smsgate_since(caller.as_str(), &plan.text, hour_ago)
            .await?
        {
            tracing::debug!(caller = %mask(caller.as_str()), "auto-reply already sent this hour");
            return Ok(());
        }
        self.store
            .enqueue_outbound(NewOutbound {
                contact_id: caller.to_string(),
                text: plan.text,
                parts: plan.parts,
                encoding: plan.encoding,
                source: Source::Cli,
                quick_replies: None,
                now_ms,
            })
            .await?;
        tracing::info!(caller = %mask(caller.as_str()), "auto-reply to a call queued");
        Ok(())
    }
}
