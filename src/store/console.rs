//! Read-only queries for the operator's dashboard (`crate::admin`): the latest messages each
//! way (with a search by number), dead webhook events, parts sent in sliding windows, the
//! send pace behind the time-to-drain estimate, and messages per hour for the chart.
//!
//! Nothing here writes: re-driving dead events is [`Store::retry_dead_events`], the same
//! call `smsgate status --retry-dead` makes, and a test SMS is [`Store::enqueue_outbound`].

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError};

const HOUR_MS: i64 = 3_600_000;

/// Parts the modem accepted (`+CMGS: <mr>`) in the last minute, hour and day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SentCounts {
    pub last_minute: u64,
    pub last_hour: u64,
    pub last_day: u64,
}

/// One outbound message as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboundRow {
    pub m_id: String,
    /// When it was accepted.
    pub at_ms: i64,
    pub contact_id: String,
    pub parts: u32,
    /// `queued`, `sending`, `unknown`, `sent`, `delivered` or `failed`.
    pub state: String,
    /// `respond` (`POST /message`) or `cli` (`smsgate send`, the dashboard's test SMS).
    pub source: String,
    pub attempts: u32,
    /// Why it failed, or the error it is retrying after, in words.
    pub reason: Option<String>,
    pub updated_ms: i64,
}

/// One inbound message (or an SMS that could not be decoded) as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundRow {
    pub m_id: Option<String>,
    /// When its first part arrived.
    pub at_ms: i64,
    /// `None` when the sender could not be read.
    pub contact_id: Option<String>,
    pub parts: u32,
    pub parts_received: u32,
    /// `assembling`, `complete`, `partial` (forwarded with a gap) or `unreadable`.
    pub state: String,
    /// Sent to respond.io (not kept locally by the alphanumeric-sender rule).
    pub forwarded: bool,
    pub reason: Option<String>,
}

/// A dead webhook event, waiting for a re-drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadEvent {
    pub id: i64,
    pub contact_id: String,
    /// The event's `type` (`message`, `message_status`, `message_echo`).
    pub kind: String,
    /// The status value of a `message_status` (`sent`, `delivered`, `failed`).
    pub status: Option<String>,
    pub m_id: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    pub created_ms: i64,
}

/// Messages per hour, for the chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HourBucket {
    /// The hour's start, Unix ms (aligned to whole hours).
    pub start_ms: i64,
    /// Messages whose every part the modem accepted in this hour.
    pub sent: u64,
    /// Messages whose first part arrived in this hour.
    pub received: u64,
    /// Messages that failed in this hour (before or after sending).
    pub failed: u64,
}

/// Only digits, letters and `+` of a search: enough for numbers and alphanumeric senders, and
/// nothing `LIKE` gives a meaning to.
fn pattern(search: Option<&str>) -> Option<String> {
    let kept: String = search?
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
        .take(32)
        .collect();
    (!kept.is_empty()).then(|| format!("%{kept}%"))
}

fn count_since(conn: &Connection, since_ms: i64) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM outbound_part INDEXED BY outbound_part_accepted
         WHERE mr IS NOT NULL AND submitted_ms >= ?1",
        [since_ms],
        |r| r.get(0),
    )?;
    Ok(count as u64)
}

impl Store {
    /// Parts the modem accepted in the last minute, hour and day before `now_ms`.
    pub async fn console_sent(&self, now_ms: i64) -> Result<SentCounts, StoreError> {
        self.call(move |conn| {
            Ok(SentCounts {
                last_minute: count_since(conn, now_ms - 60_000)?,
                last_hour: count_since(conn, now_ms - HOUR_MS)?,
                last_day: count_since(conn, now_ms - 24 * HOUR_MS)?,
            })
        })
        .await
    }

    /// When the latest `limit` accepted parts were accepted, newest first (the send pace).
    pub async fn console_part_times(&self, limit: u32) -> Result<Vec<i64>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT submitted_ms FROM outbound_part INDEXED BY outbound_part_accepted
                 WHERE mr IS NOT NULL ORDER BY submitted_ms DESC LIMIT ?1",
            )?;
            let times = stmt
                .query_map([limit], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(times)
        })
        .await
    }

    /// Parts still to send: every part of waiting messages, less those a message being sent
    /// has already had accepted.
    pub async fn console_parts_waiting(&self) -> Result<u64, StoreError> {
        self.call(|conn| {
            let waiting: i64 = conn.query_row(
                "SELECT coalesce(sum(parts), 0)
                   - (SELECT count(*) FROM outbound_part p JOIN outbound o ON o.id = p.message_id
                      WHERE o.state IN ('sending', 'unknown') AND p.state = 'accepted')
                 FROM outbound WHERE state IN ('queued', 'sending', 'unknown')",
                [],
                |r| r.get(0),
            )?;
            Ok(waiting.max(0) as u64)
        })
        .await
    }

    /// The latest `limit` outbound messages, newest first, whose number contains `search`.
    pub async fn console_outbound(
        &self,
        search: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboundRow>, StoreError> {
        let pattern = pattern(search);
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT m_id, created_ms, contact_id, parts, state, source, attempts,
                        CASE WHEN state = 'failed' THEN status_message ELSE last_error END,
                        updated_ms
                 FROM outbound WHERE ?1 IS NULL OR contact_id LIKE ?1
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![pattern, limit], |r| {
                    Ok(OutboundRow {
                        m_id: r.get(0)?,
                        at_ms: r.get(1)?,
                        contact_id: r.get(2)?,
                        parts: r.get(3)?,
                        state: r.get(4)?,
                        source: r.get(5)?,
                        attempts: r.get(6)?,
                        reason: r.get(7)?,
                        updated_ms: r.get(8)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// The latest `limit` inbound messages and undecodable SMS, newest first, whose number
    /// contains `search`.
    pub async fn console_inbound(
        &self,
        search: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InboundRow>, StoreError> {
        let pattern = pattern(search);
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT i.m_id, i.first_part_ms, i.contact_id, i.total,
                        (SELECT count(*) FROM inbound_part p WHERE p.message_id = i.id),
                        i.state, i.forward
                 FROM inbound i WHERE ?1 IS NULL OR i.contact_id LIKE ?1
                 ORDER BY i.id DESC LIMIT ?2",
            )?;
            let mut rows: Vec<InboundRow> = stmt
                .query_map(params![pattern, limit], |r| {
                    let state: String = r.get(5)?;
                    let (total, received): (u32, u32) = (r.get(3)?, r.get(4)?);
                    let reason = (state == "partial").then(|| {
                        format!(
                            "only {received} of {total} parts arrived in time; forwarded with \
                             a gap marker"
                        )
                    });
                    Ok(InboundRow {
                        m_id: r.get(0)?,
                        at_ms: r.get(1)?,
                        contact_id: r.get(2)?,
                        parts: total,
                        parts_received: received,
                        state,
                        forwarded: r.get(6)?,
                        reason,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut stmt = conn.prepare(
                "SELECT m_id, received_ms, contact_id, reason, forwarded FROM unreadable
                 WHERE kind = 'sms' AND (?1 IS NULL OR contact_id LIKE ?1)
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let unreadable = stmt.query_map(params![pattern, limit], |r| {
                let reason: String = r.get(3)?;
                Ok(InboundRow {
                    m_id: r.get(0)?,
                    at_ms: r.get(1)?,
                    contact_id: r.get(2)?,
                    parts: 1,
                    parts_received: 1,
                    state: "unreadable".to_owned(),
                    forwarded: r.get(4)?,
                    reason: Some(format!("could not be decoded ({reason}); kept raw")),
                })
            })?;
            for row in unreadable {
                rows.push(row?);
            }
            rows.sort_by_key(|row| std::cmp::Reverse(row.at_ms));
            rows.truncate(limit as usize);
            Ok(rows)
        })
        .await
    }

    /// Dead webhook events, oldest first, and how many there are in all.
    pub async fn console_dead_events(
        &self,
        limit: u32,
    ) -> Result<(u64, Vec<DeadEvent>), StoreError> {
        self.call(move |conn| {
            let total: i64 =
                conn.query_row("SELECT count(*) FROM event WHERE state = 'dead'", [], |r| {
                    r.get(0)
                })?;
            let mut stmt = conn.prepare(
                "SELECT id, contact_id, body, last_error, attempts, created_ms FROM event
                 WHERE state = 'dead' ORDER BY id LIMIT ?1",
            )?;
            let events = stmt
                .query_map([limit], |r| {
                    let body: String = r.get(2)?;
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let text = |value: &Value| value.as_str().map(str::to_owned);
                    Ok(DeadEvent {
                        id: r.get(0)?,
                        contact_id: r.get(1)?,
                        kind: text(&body["type"]).unwrap_or_else(|| "unknown".to_owned()),
                        status: text(&body["status"]["value"]),
                        m_id: text(&body["mId"]),
                        error: r.get(3)?,
                        attempts: r.get(4)?,
                        created_ms: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok((total as u64, events))
        })
        .await
    }

    /// Messages sent, received and failed in each of the last `hours` whole hours (the
    /// current one included), oldest first.
    pub async fn console_hourly(
        &self,
        now_ms: i64,
        hours: u32,
    ) -> Result<Vec<HourBucket>, StoreError> {
        let hours = i64::from(hours.clamp(1, 24 * 7));
        let first = (now_ms.div_euclid(HOUR_MS) - (hours - 1)) * HOUR_MS;
        self.call(move |conn| {
            let mut buckets: Vec<HourBucket> = (0..hours)
                .map(|hour| HourBucket {
                    start_ms: first + hour * HOUR_MS,
                    ..HourBucket::default()
                })
                .collect();
            let mut add = |sql: &str, field: fn(&mut HourBucket) -> &mut u64| {
                let mut stmt = conn.prepare(sql)?;
                let rows = stmt.query_map([first], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
                for row in rows {
                    let (hour, count): (i64, i64) = row?;
                    if let Some(bucket) = usize::try_from(hour - first.div_euclid(HOUR_MS))
                        .ok()
                        .and_then(|at| buckets.get_mut(at))
                    {
                        *field(bucket) += count as u64;
                    }
                }
                Ok::<(), StoreError>(())
            };
            // Sent: the hour its last part was accepted in.
            add(
                "SELECT t / 3600000, count(*) FROM (
                     SELECT max(submitted_ms) AS t FROM outbound_part
                     INDEXED BY outbound_part_accepted
                     WHERE mr IS NOT NULL AND submitted_ms >= ?1 GROUP BY message_id)
                 GROUP BY t / 3600000",
                |b| &mut b.sent,
            )?;
            add(
                "SELECT finished_ms / 3600000, count(*) FROM outbound
                 WHERE state = 'failed' AND finished_ms >= ?1 GROUP BY finished_ms / 3600000",
                |b| &mut b.failed,
            )?;
            add(
                "SELECT first_part_ms / 3600000, count(*) FROM inbound
                 WHERE state IN ('assembling', 'complete', 'partial') AND first_part_ms >= ?1
                 GROUP BY first_part_ms / 3600000",
                |b| &mut b.received,
            )?;
            add(
                "SELECT received_ms / 3600000, count(*) FROM unreadable
                 WHERE kind = 'sms' AND received_ms >= ?1 GROUP BY received_ms / 3600000",
                |b| &mut b.received,
            )?;
            Ok(buckets)
        })
        .await
    }

    /// Makes the dead events in `ids` pending again (the per-event "send again"); returns how
    /// many were dead.
    pub async fn retry_dead_event_ids(
        &self,
        ids: Vec<i64>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let count = self
            .write(move |tx| {
                let mut count = 0;
                for id in ids {
                    count += tx.execute(
                        "UPDATE event SET state = 'pending', attempts = 0, next_attempt_ms = ?2,
                         enqueued_ms = ?2 WHERE id = ?1 AND state = 'dead'",
                        params![id, now_ms],
                    )? as u64;
                }
                Ok(count)
            })
            .await?;
        if count > 0 {
            self.signals.events.notify_one();
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::Encoding;
    use crate::store::{NewOutbound, Source};
    use crate::wire::{Event, StatusValue};

    async fn outbound(store: &Store, contact: &str, parts: usize, now_ms: i64) -> String {
        store
            .enqueue_outbound(NewOutbound {
                contact_id: contact.to_owned(),
                text: "hello".to_owned(),
                parts,
                encoding: Encoding::Gsm7,
                source: Source::Respond,
                quick_replies: None,
                now_ms,
            })
            .await
            .expect("enqueue")
    }

    fn policy() -> crate::store::OutboxPolicy {
        crate::store::OutboxPolicy {
            max_attempts: 3,
            expiry_ms: 86_400_000,
            unknown_policy: crate::config::UnknownPolicy::Resend,
            unknown_window_ms: 600_000,
        }
    }

    /// Claims the next message and has each of its parts accepted at `at_ms`.
    async fn send_next(store: &Store, parts: u32, at_ms: i64) {
        let claimed = store
            .claim_outbound(at_ms, policy())
            .await
            .expect("claim")
            .expect("a message");
        for seq in 1..=parts {
            store
                .part_submitting(claimed.id, seq, &claimed.contact_id, at_ms)
                .await
                .expect("submitting");
            store
                .part_accepted(claimed.id, seq, seq as u8, parts as usize, at_ms)
                .await
                .expect("accepted");
        }
    }

    #[tokio::test]
    async fn windows_pace_and_waiting_parts() {
        let store = Store::open_in_memory().await.expect("open");
        let now = 100 * HOUR_MS;
        outbound(&store, "+60111111111", 2, now - 2 * HOUR_MS).await;
        outbound(&store, "+60122222222", 1, now - 30_000).await;
        outbound(&store, "+60133333333", 3, now - 20_000).await;
        send_next(&store, 2, now - 2 * HOUR_MS).await;
        send_next(&store, 1, now - 30_000).await;
        let sent = store.console_sent(now).await.expect("counts");
        assert_eq!(
            sent,
            SentCounts {
                last_minute: 1,
                last_hour: 1,
                last_day: 3
            }
        );
        assert_eq!(store.console_parts_waiting().await.expect("waiting"), 3);
        let times = store.console_part_times(10).await.expect("times");
        assert_eq!(times, [now - 30_000, now - 2 * HOUR_MS, now - 2 * HOUR_MS]);
        let hourly = store.console_hourly(now, 24).await.expect("hourly");
        assert_eq!(hourly.len(), 24);
        assert_eq!(hourly[23].start_ms, now - HOUR_MS + HOUR_MS);
        assert_eq!(
            hourly[22].sent, 1,
            "the last minute's message, in the hour before now"
        );
        assert_eq!(hourly[21].sent, 1);
        assert_eq!(hourly.iter().map(|b| b.sent).sum::<u64>(), 2);
    }

    #[tokio::test]
    async fn latest_messages_with_a_search_and_reasons() {
        let store = Store::open_in_memory().await.expect("open");
        for n in 0..5 {
            outbound(&store, &format!("+6012345670{n}"), 1, 1_000 + n).await;
        }
        let m_id = outbound(&store, "+447700900123", 1, 2_000).await;
        let all = store.console_outbound(None, 50).await.expect("rows");
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].m_id, m_id, "newest first");
        assert_eq!(all[0].state, "queued");
        let found = store
            .console_outbound(Some("7700 900"), 50)
            .await
            .expect("rows");
        assert_eq!(found.len(), 1);
        let found = store.console_outbound(Some("%"), 50).await.expect("rows");
        assert_eq!(
            found.len(),
            6,
            "a search with nothing searchable lists everything"
        );
        let limited = store.console_outbound(Some("+601"), 3).await.expect("rows");
        assert_eq!(limited.len(), 3);
        // A permanent failure has its reason in words.
        let claimed = store
            .claim_outbound(3_000, policy())
            .await
            .expect("claim")
            .expect("one");
        store
            .attempt_failed(
                claimed.id,
                crate::store::AttemptEnd::Permanent,
                "+CMS ERROR 21: the network rejected the message",
                3_000,
                policy(),
            )
            .await
            .expect("failed");
        let rows = store.console_outbound(None, 50).await.expect("rows");
        let failed = rows.iter().find(|r| r.m_id == claimed.m_id).expect("row");
        assert_eq!(failed.state, "failed");
        assert!(
            failed
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("rejected"))
        );
        let hourly = store.console_hourly(3_000, 1).await.expect("hourly");
        assert_eq!(hourly[0].failed, 1);
    }

    #[tokio::test]
    async fn dead_events_are_listed_and_redriven_one_by_one() {
        let store = Store::open_in_memory().await.expect("open");
        let mut ids = Vec::new();
        for value in [StatusValue::Sent, StatusValue::Delivered] {
            let event = Event::status("m1", 1, value);
            ids.push(
                store
                    .enqueue_event("+60123456789", event, 10)
                    .await
                    .expect("event"),
            );
        }
        store
            .events_dead(
                &ids,
                "respond.io rejected the events (HTTP 400: bad payload)",
            )
            .await
            .expect("dead");
        let (total, dead) = store.console_dead_events(10).await.expect("dead");
        assert_eq!(total, 2);
        assert_eq!(dead[0].kind, "message_status");
        assert_eq!(dead[1].status.as_deref(), Some("delivered"));
        assert!(
            dead[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("HTTP 400"))
        );
        assert_eq!(
            store
                .retry_dead_event_ids(vec![ids[1], 999], 20)
                .await
                .expect("redrive"),
            1
        );
        assert_eq!(store.console_dead_events(10).await.expect("dead").0, 1);
        assert_eq!(
            store
                .retry_dead_event_ids(vec![ids[1]], 20)
                .await
                .expect("again"),
            0
        );
    }
}
