//! The pool's rows: which SIM serves each contact (sticky routing), which SIM each queued
//! message is routed to, failover of a SIM's contacts, and the append-only send history the
//! per-SIM caps count from (issue 11, "Precisely").
//!
//! Every decision that must not race is one transaction on the store's single writer: routing a
//! burst for a new contact binds the contact with its first message, so the rest follow it; an
//! inbound SMS binds its sender and moves their queued messages in the transaction that stores
//! it; failover moves only messages still `queued` (no part handed to a modem), so a message is
//! never sent by two SIMs. This file knows nothing of modems or clocks: the pool
//! ([`crate::pool`]) passes in what each SIM can do ([`RouteCandidate`]) and the time.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};
use crate::pacing::{DAY_MS, Sent};

/// What the router knows of one SIM of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCandidate {
    /// The modem's name (`[[modems]] name`).
    pub modem: String,
    /// Healthy and registered: a contact new to the pool may be bound to it.
    pub usable: bool,
    /// When its pacing lets its next message start (Unix ms; ≤ now: at once).
    pub ready_at_ms: i64,
    /// About how long one message takes on it (send time, interval, caps): a queue of `n`
    /// messages ahead means the next one starts about `n ×` this later.
    pub per_message_ms: i64,
}

/// Why a contact is bound to a SIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindReason {
    /// Their first message was routed to it.
    Routed,
    /// They wrote in on it.
    Inbound,
    /// Their SIM was unusable for `failover_after`; their queue moved here.
    Failover,
}

impl BindReason {
    fn as_str(self) -> &'static str {
        match self {
            BindReason::Routed => "routed",
            BindReason::Inbound => "inbound",
            BindReason::Failover => "failover",
        }
    }
}

/// One routing decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub m_id: String,
    pub contact_id: String,
    pub modem: String,
    /// `true`: the contact was already bound to this SIM.
    pub sticky: bool,
}

/// A contact failover moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub contact_id: String,
    pub from: String,
    pub to: String,
    /// Their queued messages that moved with them.
    pub messages: u64,
}

/// The next message a SIM's sender would claim, for pacing before the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOnModem {
    pub id: i64,
    pub contact_id: String,
    /// Parts as planned at acceptance.
    pub parts: u32,
}

/// A stable 64-bit hash (FNV-1a) of a contact and a modem name: ties between equally good SIMs
/// are broken the same way on every run and every machine.
pub fn stable_hash(contact_id: &str, modem: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in contact_id.bytes().chain([0]).chain(modem.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Binds `contact_id` to `modem`. Their messages routed elsewhere that no SIM has started
/// (`queued`, and not pinned by an earlier attempt that may have gone out) move along;
/// `sending`, `unknown` and pinned ones stay with their SIM. Returns how many moved.
pub(super) fn bind(
    tx: &Connection,
    contact_id: &str,
    modem: &str,
    reason: BindReason,
    now_ms: i64,
) -> Result<u64, StoreError> {
    tx.execute(
        "INSERT INTO contact_modem (contact_id, modem, bound_ms, reason) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (contact_id) DO UPDATE SET modem = excluded.modem,
             bound_ms = excluded.bound_ms, reason = excluded.reason
         WHERE contact_modem.modem <> excluded.modem",
        params![contact_id, modem, now_ms, reason.as_str()],
    )?;
    let moved = tx.execute(
        "UPDATE outbound SET modem = ?2, updated_ms = ?3
         WHERE contact_id = ?1 AND state = 'queued' AND modem IS NOT NULL AND modem <> ?2
           AND pinned = 0",
        params![contact_id, modem, now_ms],
    )?;
    Ok(moved as u64)
}

/// The best candidate for `contact_id`: usable, soonest start given its queue, ties by
/// [`stable_hash`]. `ahead` holds each candidate's queue length (updated by the caller).
fn best<'a>(
    contact_id: &str,
    candidates: &'a [RouteCandidate],
    ahead: &[i64],
    now_ms: i64,
    exclude: Option<&str>,
) -> Option<(usize, &'a RouteCandidate)> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.usable && Some(c.modem.as_str()) != exclude)
        .min_by_key(|(i, c)| {
            let start = c
                .ready_at_ms
                .max(now_ms)
                .saturating_add(ahead[*i].saturating_mul(c.per_message_ms.max(1)));
            (start, stable_hash(contact_id, &c.modem))
        })
}

/// Each candidate's queue: messages routed to it and not finished.
fn queue_lengths(tx: &Connection, candidates: &[RouteCandidate]) -> Result<Vec<i64>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT count(*) FROM outbound WHERE modem = ?1 AND state IN ('queued', 'sending')",
    )?;
    candidates
        .iter()
        .map(|c| Ok(statement.query_row([&c.modem], |r| r.get(0))?))
        .collect()
}

impl Store {
    /// Whether some queued message waits to be routed (a cheap read before
    /// [`Store::route_outbound`]).
    pub async fn has_unrouted(&self, modems: Vec<String>) -> Result<bool, StoreError> {
        self.call(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT modem FROM outbound WHERE state = 'queued' GROUP BY modem",
            )?;
            let routed: Vec<Option<String>> = statement
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(routed
                .iter()
                .any(|modem| modem.as_ref().is_none_or(|m| !modems.contains(m))))
        })
        .await
    }

    /// Routes every queued message that has no SIM (or a SIM no longer in the pool), oldest
    /// first. With `sticky`, a bound contact keeps their SIM (usable or not: a cap or an outage
    /// never moves a contact here; failover does), and a contact new to the pool is bound to the
    /// usable SIM that can send soonest with its first message, so a burst to them follows it.
    /// Without `sticky` each message goes to the SIM that can send it soonest. A message with no
    /// usable SIM waits unrouted.
    pub async fn route_outbound(
        &self,
        candidates: Vec<RouteCandidate>,
        sticky: bool,
        now_ms: i64,
    ) -> Result<Vec<Routed>, StoreError> {
        let routed = self
            .write(move |tx| {
                let names: Vec<&str> = candidates.iter().map(|c| c.modem.as_str()).collect();
                let orphaned: Vec<i64> = tx
                    .prepare("SELECT id, modem FROM outbound WHERE state = 'queued' AND modem IS NOT NULL")?
                    .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                    .filter_map(|row| match row {
                        Ok((id, modem)) if !names.contains(&modem.as_str()) => Some(Ok(id)),
                        Ok(_) => None,
                        Err(error) => Some(Err(error)),
                    })
                    .collect::<Result<_, _>>()?;
                for id in orphaned {
                    tx.execute("UPDATE outbound SET modem = NULL WHERE id = ?1", [id])?;
                }
                let waiting: Vec<(i64, String, String)> = tx
                    .prepare(
                        "SELECT id, m_id, contact_id FROM outbound
                         WHERE state = 'queued' AND modem IS NULL ORDER BY id",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                let mut ahead = queue_lengths(tx, &candidates)?;
                let mut routed = Vec::new();
                for (id, m_id, contact_id) in waiting {
                    let bound: Option<String> = if sticky {
                        tx.query_row(
                            "SELECT modem FROM contact_modem WHERE contact_id = ?1",
                            [&contact_id],
                            |r| r.get(0),
                        )
                        .optional()?
                        .filter(|modem: &String| names.contains(&modem.as_str()))
                    } else {
                        None
                    };
                    let (index, modem, was_bound) = match bound {
                        Some(modem) => {
                            let index = names
                                .iter()
                                .position(|n| *n == modem)
                                .expect("filtered to the pool's names");
                            (index, modem, true)
                        }
                        None => match best(&contact_id, &candidates, &ahead, now_ms, None) {
                            Some((index, candidate)) => (index, candidate.modem.clone(), false),
                            None => continue,
                        },
                    };
                    if sticky && !was_bound {
                        bind(tx, &contact_id, &modem, BindReason::Routed, now_ms)?;
                    }
                    tx.execute(
                        "UPDATE outbound SET modem = ?2 WHERE id = ?1",
                        params![id, modem],
                    )?;
                    ahead[index] += 1;
                    routed.push(Routed {
                        m_id,
                        contact_id,
                        modem,
                        sticky: was_bound,
                    });
                }
                Ok(routed)
            })
            .await?;
        Ok(routed)
    }

    /// Moves the contacts of `from` that have messages waiting (`queued`) to the best other
    /// usable SIM, with those messages; they stay sticky there. Messages being sent or in doubt
    /// stay with `from` until settled, and so does a message resent after an attempt that may
    /// have gone out on `from` (pinned). Without `sticky`, the waiting messages are just routed
    /// again one by one.
    pub async fn fail_over(
        &self,
        from: String,
        candidates: Vec<RouteCandidate>,
        sticky: bool,
        now_ms: i64,
    ) -> Result<Vec<Moved>, StoreError> {
        self.write(move |tx| {
            let contacts: Vec<String> = tx
                .prepare(
                    "SELECT contact_id FROM outbound
                     WHERE modem = ?1 AND state = 'queued' AND pinned = 0
                     GROUP BY contact_id ORDER BY min(id)",
                )?
                .query_map([&from], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut ahead = queue_lengths(tx, &candidates)?;
            let mut moved = Vec::new();
            for contact_id in contacts {
                let Some((index, to)) = best(&contact_id, &candidates, &ahead, now_ms, Some(&from))
                else {
                    break;
                };
                let to = to.modem.clone();
                let messages = if sticky {
                    tx.execute(
                        "UPDATE outbound SET modem = ?3, updated_ms = ?4
                         WHERE contact_id = ?1 AND modem = ?2 AND state = 'queued'
                           AND pinned = 0",
                        params![contact_id, from, to, now_ms],
                    )? as u64
                } else {
                    tx.execute(
                        "UPDATE outbound SET modem = NULL, updated_ms = ?3
                         WHERE contact_id = ?1 AND modem = ?2 AND state = 'queued'
                           AND pinned = 0",
                        params![contact_id, from, now_ms],
                    )? as u64
                };
                if sticky {
                    bind(tx, &contact_id, &to, BindReason::Failover, now_ms)?;
                }
                ahead[index] += messages as i64;
                moved.push(Moved {
                    contact_id,
                    from: from.clone(),
                    to,
                    messages,
                });
            }
            Ok(moved)
        })
        .await
    }

    /// Gives back a message claimed (`sending`) before any part of it went to a modem: it is
    /// `queued` again and the attempt does not count.
    pub async fn release_claim(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.write(move |tx| {
            let parts: i64 = tx.query_row(
                "SELECT count(*) FROM outbound_part WHERE message_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            if parts == 0 {
                tx.execute(
                    "UPDATE outbound SET state = 'queued', attempts = max(attempts - 1, 0),
                     updated_ms = ?2 WHERE id = ?1 AND state = 'sending'",
                    params![id, now_ms],
                )?;
            }
            Ok(())
        })
        .await?;
        self.signals.outbound.notify_one();
        Ok(())
    }

    /// Moves `modem`'s latest history row stamped `from_ms` to `to_ms`, the moment the modem
    /// answered its `AT+CMGS` (see [`crate::pacing::SendLog::restamp`]).
    pub async fn restamp_send(
        &self,
        modem: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(), StoreError> {
        let modem = modem.to_owned();
        self.write(move |tx| {
            tx.execute(
                "UPDATE modem_send SET at_ms = ?3 WHERE id = (
                     SELECT max(id) FROM modem_send WHERE modem = ?1 AND at_ms = ?2)
                   AND ?3 > ?2",
                params![modem, from_ms, to_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// When the sender of `modem` next has something to do without being woken: the earliest
    /// retry time after `now_ms` of a message routed to it, or the end of an unknown window.
    /// Messages due now but not claimable (behind an older one of their contact) are left to
    /// the wake-ups: counting them would make the sender spin.
    pub async fn next_wakeup_on(
        &self,
        modem: &str,
        unknown_window_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let modem = modem.to_owned();
        self.call(move |conn| {
            Ok(conn.query_row(
                "SELECT min(t) FROM (
                    SELECT min(next_attempt_ms) AS t FROM outbound
                    WHERE state = 'queued' AND modem = ?1 AND next_attempt_ms > ?3
                    UNION ALL
                    SELECT min(unknown_since_ms) + ?2 FROM outbound WHERE state = 'unknown')",
                params![modem, unknown_window_ms, now_ms],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// The SIM `contact_id` is bound to, if any.
    pub async fn contact_modem(&self, contact_id: &str) -> Result<Option<String>, StoreError> {
        let contact_id = contact_id.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT modem FROM contact_modem WHERE contact_id = ?1",
                    [contact_id],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// The SIM message `m_id` is routed to, and the SIMs its current attempt's parts went out
    /// on (in part order).
    pub async fn outbound_modems(
        &self,
        m_id: &str,
    ) -> Result<Option<(Option<String>, Vec<Option<String>>)>, StoreError> {
        let m_id = m_id.to_owned();
        self.call(move |conn| {
            let Some((id, modem)): Option<(i64, Option<String>)> = conn
                .query_row(
                    "SELECT id, modem FROM outbound WHERE m_id = ?1",
                    [m_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let parts = conn
                .prepare("SELECT modem FROM outbound_part WHERE message_id = ?1 ORDER BY seq")?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(Some((modem, parts)))
        })
        .await
    }

    /// The next message the sender of `modem` would claim at `now_ms` (see
    /// [`Store::claim_outbound_on`]), without claiming it.
    pub async fn next_on_modem(
        &self,
        modem: &str,
        now_ms: i64,
    ) -> Result<Option<NextOnModem>, StoreError> {
        self.next_due_on(modem, now_ms, None).await
    }

    /// The first message `modem` may send now to a recipient it has sent to since `since_ms`:
    /// what may go while `recipients_per_day` holds the queue's first message (to a new
    /// recipient) back, so a SIM that reached its new contacts for the day still answers the
    /// ones it already has.
    pub async fn next_known_on_modem(
        &self,
        modem: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<Option<NextOnModem>, StoreError> {
        self.next_due_on(modem, now_ms, Some(since_ms)).await
    }

    async fn next_due_on(
        &self,
        modem: &str,
        now_ms: i64,
        known_since_ms: Option<i64>,
    ) -> Result<Option<NextOnModem>, StoreError> {
        let modem = modem.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT o.id, o.contact_id, o.parts {}
                           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM modem_send s
                               WHERE s.modem = ?2 AND s.recipient = o.contact_id
                                 AND s.at_ms > ?3))
                         ORDER BY o.id LIMIT 1",
                        super::outbound::DUE_WHERE
                    ),
                    params![now_ms, modem, known_since_ms],
                    |r| {
                        Ok(NextOnModem {
                            id: r.get(0)?,
                            contact_id: r.get(1)?,
                            parts: r.get::<_, i64>(2)?.clamp(1, 255) as u32,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Contacts bound to each SIM, by modem name.
    pub async fn contacts_by_modem(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.call(|conn| {
            Ok(conn
                .prepare("SELECT modem, count(*) FROM contact_modem GROUP BY modem ORDER BY modem")?
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Messages routed to each SIM and not finished (queued or being sent), by modem name.
    pub async fn queued_by_modem(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.call(|conn| {
            Ok(conn
                .prepare(
                    "SELECT modem, count(*) FROM outbound
                     WHERE state IN ('queued', 'sending') AND modem IS NOT NULL
                     GROUP BY modem ORDER BY modem",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    /// `modem`'s send history since `since_ms`, plus its latest row whatever its age (for
    /// `min_interval`), oldest first: what its pacer is rebuilt from at start-up.
    pub async fn send_history(&self, modem: &str, since_ms: i64) -> Result<Vec<Sent>, StoreError> {
        let modem = modem.to_owned();
        self.call(move |conn| {
            Ok(conn
                .prepare(
                    "SELECT at_ms, recipient, starts_message FROM modem_send
                     WHERE modem = ?1 AND (at_ms >= ?2
                         OR id = (SELECT max(id) FROM modem_send WHERE modem = ?1))
                     ORDER BY at_ms, id",
                )?
                .query_map(params![modem, since_ms], |r| {
                    Ok(Sent {
                        at_ms: r.get(0)?,
                        recipient: r.get(1)?,
                        starts_message: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// Appends one part to `modem`'s send history, and prunes its rows older than the longest
/// window (keeping its latest). Part of the transaction that marks the part `submitting`.
pub(super) fn record_send(tx: &Connection, modem: &str, sent: &Sent) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO modem_send (modem, at_ms, recipient, starts_message) VALUES (?1, ?2, ?3, ?4)",
        params![modem, sent.at_ms, sent.recipient, sent.starts_message],
    )?;
    tx.execute(
        "DELETE FROM modem_send WHERE modem = ?1 AND at_ms < ?2",
        params![modem, sent.at_ms.saturating_sub(DAY_MS)],
    )?;
    Ok(())
}
