//! Pacing: worked cases, then property tests that simulate long schedules (with restarts that
//! rebuild the history from its rows) and check every sliding window, then the drain of a
//! broadcast over four SIMs in simulated time.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

/// An arbitrary but realistic "now": 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const SECOND: i64 = 1_000;

fn cap(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

fn per_minute(n: u32) -> Limits {
    Limits {
        per_minute: cap(n),
        ..Limits::default()
    }
}

#[test]
fn without_limits_everything_goes_at_once_and_together() {
    let mut pacer = Pacer::new(Limits::default());
    assert!(pacer.limits().is_unlimited());
    for i in 0..100 {
        pacer.record(T0 + i, "+60123456789", true);
    }
    let slot = pacer.next_message(T0 + 100, 7, "+60123456789", Duration::ZERO);
    assert_eq!(
        slot,
        Slot {
            at_ms: T0 + 100,
            together: 7
        }
    );
    assert_eq!(pacer.burst(T0 + 100, 7, "+60111111111"), 7);
}

#[test]
fn min_interval_and_jitter_separate_message_starts_not_parts() {
    let limits = Limits {
        min_interval: Duration::from_secs(4),
        jitter: Duration::from_secs(2),
        ..Limits::default()
    };
    let mut pacer = Pacer::new(limits);
    assert_eq!(
        pacer
            .next_message(T0, 1, "a", Duration::from_millis(1500))
            .at_ms,
        T0,
        "the first message waits for nothing"
    );
    pacer.record(T0, "a", true);
    pacer.record(T0 + 3 * SECOND, "a", false);
    let slot = pacer.next_message(T0 + 3 * SECOND, 1, "b", Duration::from_millis(1500));
    assert_eq!(
        slot.at_ms,
        T0 + 5_500,
        "4 s + the 1.5 s sample after the start"
    );
    // A sample above the configured jitter is clamped to it.
    let slot = pacer.next_message(T0 + 3 * SECOND, 1, "b", Duration::from_secs(60));
    assert_eq!(slot.at_ms, T0 + 6 * SECOND);
    // Inside a message there is no interval.
    assert_eq!(
        pacer.next_part(T0 + 3 * SECOND, 1, "a").at_ms,
        T0 + 3 * SECOND
    );
    assert_eq!(limits.jitter_sample(0.25), Duration::from_millis(500));
    assert_eq!(limits.jitter_sample(7.0), Duration::from_secs(2));
    assert_eq!(limits.jitter_sample(f64::NAN), Duration::ZERO);
}

#[test]
fn a_minute_cap_lets_the_first_sends_go_at_once_and_the_rest_when_the_window_allows() {
    let mut pacer = Pacer::new(per_minute(10));
    let mut now = T0;
    for _ in 0..10 {
        let slot = pacer.next_message(now, 1, "a", Duration::ZERO);
        assert_eq!(slot.at_ms, now, "under the cap: at once");
        pacer.record(now, "a", true);
        now += 2 * SECOND;
    }
    // The 11th waits until the first has left the window: exactly 60 s after it.
    let slot = pacer.next_message(now, 1, "a", Duration::ZERO);
    assert_eq!(slot.at_ms, T0 + MINUTE_MS);
    assert_eq!(pacer.burst(T0 + MINUTE_MS - 1, 1, "a"), 0);
    assert_eq!(pacer.burst(T0 + MINUTE_MS, 1, "a"), 1);
    assert_eq!(pacer.usage(T0 + 30 * SECOND).last_minute, 10);
    assert_eq!(pacer.usage(T0 + MINUTE_MS).last_minute, 9);
}

#[test]
fn a_multipart_message_waits_for_room_for_all_its_parts() {
    let mut pacer = Pacer::new(per_minute(5));
    for i in 0..3 {
        pacer.record(T0 + i * SECOND, "a", true);
    }
    // Two places left in the minute; a 3-part message does not start with two of them.
    let slot = pacer.next_message(T0 + 10 * SECOND, 3, "b", Duration::ZERO);
    assert_eq!(
        slot,
        Slot {
            at_ms: T0 + MINUTE_MS,
            together: 3
        }
    );
    // A 2-part message fits now.
    let slot = pacer.next_message(T0 + 10 * SECOND, 2, "b", Duration::ZERO);
    assert_eq!(
        slot,
        Slot {
            at_ms: T0 + 10 * SECOND,
            together: 2
        }
    );
    assert_eq!(pacer.burst(T0 + 10 * SECOND, 3, "b"), 2);
}

#[test]
fn a_message_larger_than_a_cap_goes_a_cap_at_a_time() {
    let mut pacer = Pacer::new(per_minute(4));
    pacer.record(T0, "x", true);
    // 6 parts, 4 a minute: it waits for a whole empty minute, sends 4, then 2.
    let slot = pacer.next_message(T0 + SECOND, 6, "a", Duration::ZERO);
    assert_eq!(
        slot,
        Slot {
            at_ms: T0 + MINUTE_MS,
            together: 4
        }
    );
    let mut now = slot.at_ms;
    for seq in 0..4 {
        pacer.record(now, "a", seq == 0);
        now += SECOND;
    }
    // Two more fit once the parts sent at 60 s and 61 s have left the minute.
    let rest = pacer.next_part(now, 2, "a");
    assert_eq!(
        rest,
        Slot {
            at_ms: T0 + 2 * MINUTE_MS + SECOND,
            together: 2
        }
    );
    assert_eq!(per_minute(4).smallest_part_cap(), Some(4));
}

#[test]
fn the_tightest_window_decides() {
    let limits = Limits {
        per_minute: cap(10),
        per_hour: cap(12),
        per_day: cap(100),
        ..Limits::default()
    };
    let mut pacer = Pacer::new(limits);
    for i in 0..12 {
        pacer.record(T0 + i * 10 * SECOND, "a", true);
    }
    // The minute has room long before the hour does.
    let slot = pacer.next_message(T0 + 200 * SECOND, 1, "a", Duration::ZERO);
    assert_eq!(slot.at_ms, T0 + HOUR_MS);
    let usage = pacer.usage(T0 + 200 * SECOND);
    assert_eq!(
        (usage.last_minute, usage.last_hour, usage.last_day),
        (0, 12, 12)
    );
}

#[test]
fn recipients_already_counted_today_do_not_count_again() {
    let limits = Limits {
        recipients_per_day: cap(2),
        ..Limits::default()
    };
    let mut pacer = Pacer::new(limits);
    pacer.record(T0, "a", true);
    pacer.record(T0 + HOUR_MS, "b", true);
    let now = T0 + 2 * HOUR_MS;
    // a and b are counted: both may have more, at once.
    assert_eq!(pacer.next_message(now, 1, "a", Duration::ZERO).at_ms, now);
    assert_eq!(pacer.burst(now, 3, "b"), 3);
    // c would be a third: it waits until a's last send has left the 24 h window.
    assert_eq!(pacer.burst(now, 1, "c"), 0);
    assert_eq!(
        pacer.next_message(now, 1, "c", Duration::ZERO).at_ms,
        T0 + DAY_MS
    );
    // Sending to a again moves a's window on; then c waits for b instead.
    pacer.record(now, "a", true);
    assert_eq!(
        pacer.next_message(now, 1, "c", Duration::ZERO).at_ms,
        T0 + HOUR_MS + DAY_MS
    );
    assert_eq!(pacer.usage(now).recipients_last_day, 2);
}

#[test]
fn the_recipient_rule_is_checked_where_the_other_caps_put_the_start() {
    // A history from before recipients_per_day was lowered to 1: a and b both in the last day.
    // a may have more now (already counted), but the minute cap pushes the start past the
    // moment a leaves the 24 h window, and there a is new while b still fills the cap.
    let limits = Limits {
        per_minute: cap(1),
        recipients_per_day: cap(1),
        ..Limits::default()
    };
    let mut pacer = Pacer::new(limits);
    pacer.record(T0, "a", true);
    pacer.record(T0 + DAY_MS - 30 * SECOND, "b", true);
    let now = T0 + DAY_MS - 20 * SECOND;
    let without_the_minute_cap = Pacer::with_log(
        Limits {
            per_minute: None,
            ..limits
        },
        pacer.log().clone(),
    );
    assert_eq!(without_the_minute_cap.burst(now, 1, "a"), 1);
    assert_eq!(pacer.burst(now, 1, "a"), 0, "the minute is full");
    let slot = pacer.next_message(now, 1, "a", Duration::ZERO);
    assert_eq!(
        slot.at_ms,
        T0 + 2 * DAY_MS - 30 * SECOND,
        "when b leaves the day"
    );
    assert_eq!(pacer.burst(slot.at_ms, 1, "a"), 1);
    assert_eq!(pacer.burst(slot.at_ms - 1, 1, "a"), 0);
}

#[test]
fn the_history_rebuilt_from_rows_gives_the_same_answers() {
    let limits = Limits {
        min_interval: Duration::from_secs(5),
        per_minute: cap(3),
        per_hour: cap(20),
        recipients_per_day: cap(4),
        ..Limits::default()
    };
    let mut live = Pacer::new(limits);
    let mut rows = Vec::new();
    let mut now = T0;
    for i in 0..40u32 {
        let recipient = format!("+6012345{}", i % 6);
        let slot = live.next_message(now, 1 + i % 3, &recipient, Duration::ZERO);
        now = slot.at_ms;
        for seq in 0..slot.together {
            live.record(now, &recipient, seq == 0);
            rows.push(Sent {
                at_ms: now,
                recipient: recipient.clone(),
                starts_message: seq == 0,
            });
            now += 1_500;
        }
    }
    // Stored rows come back in any order, older ones included.
    rows.reverse();
    let restored = Pacer::with_log(limits, SendLog::from_rows(rows, now));
    assert_eq!(restored.log().len(), live.log().len());
    assert_eq!(restored.log().last_start_ms(), live.log().last_start_ms());
    for (parts, recipient) in [(1, "+60123450"), (3, "+60123459"), (2, "+60123452")] {
        assert_eq!(
            restored.next_message(now, parts, recipient, Duration::ZERO),
            live.next_message(now, parts, recipient, Duration::ZERO)
        );
        assert_eq!(
            restored.burst(now, parts, recipient),
            live.burst(now, parts, recipient)
        );
    }
    assert_eq!(restored.usage(now), live.usage(now));
}

#[test]
fn pruning_forgets_what_no_window_can_hold() {
    let mut log = SendLog::new();
    log.record(Sent {
        at_ms: T0,
        recipient: "a".into(),
        starts_message: true,
    });
    log.record(Sent {
        at_ms: T0 + HOUR_MS,
        recipient: "b".into(),
        starts_message: true,
    });
    log.prune(T0 + DAY_MS);
    assert_eq!(
        log.len(),
        1,
        "the part exactly 24 h old is out of every window"
    );
    assert_eq!(log.recipients_after(T0 - 1), 1);
    assert_eq!(log.last_start_ms(), Some(T0 + HOUR_MS));
    log.prune(T0 + HOUR_MS + DAY_MS);
    assert!(log.is_empty());
    assert_eq!(
        log.last_start_ms(),
        Some(T0 + HOUR_MS),
        "kept for min_interval"
    );
}

#[test]
fn parts_stamped_after_now_count_until_their_time_has_passed() {
    // The clock went back an hour (or a Pi booted with an old time) after these were sent.
    let mut pacer = Pacer::new(per_minute(2));
    pacer.record(T0 + HOUR_MS, "a", true);
    pacer.record(T0 + HOUR_MS + SECOND, "a", false);
    let slot = pacer.next_message(T0, 1, "a", Duration::ZERO);
    assert_eq!(slot.at_ms, T0 + HOUR_MS + MINUTE_MS);
    assert_eq!(pacer.burst(T0, 1, "a"), 0);
}

// ---------------------------------------------------------------------------------------------
// Property tests: simulate a SIM the way the pool drives it, then check every window.

/// One message of a schedule: its parts, its recipient, the idle time before it is queued,
/// the jitter unit, the time each part's `AT+CMGS` takes (the network's delay), how late the
/// sender wakes after a slot, whether it first asks if the message may go at once, and whether
/// the daemon restarts before it.
#[derive(Debug, Clone)]
struct Message {
    parts: u32,
    recipient: u8,
    idle_ms: i64,
    jitter_unit: f64,
    send_ms: i64,
    late_ms: i64,
    eager: bool,
    restart_before: bool,
}

fn limits_strategy() -> impl Strategy<Value = Limits> {
    (
        0u64..6_000,
        0u64..3_000,
        proptest::option::of(1u32..8),
        proptest::option::of(1u32..40),
        proptest::option::of(1u32..120),
        proptest::option::of(1u32..12),
    )
        .prop_map(|(interval, jitter, minute, hour, day, recipients)| Limits {
            min_interval: Duration::from_millis(interval),
            jitter: Duration::from_millis(jitter),
            per_minute: minute.and_then(NonZeroU32::new),
            per_hour: hour.and_then(NonZeroU32::new),
            per_day: day.and_then(NonZeroU32::new),
            recipients_per_day: recipients.and_then(NonZeroU32::new),
        })
}

fn message_strategy() -> impl Strategy<Value = Message> {
    (
        (1u32..6, 0u8..16),
        prop_oneof![
            8 => Just(0i64),
            3 => 0i64..120_000,
            1 => 0i64..(6 * HOUR_MS),
        ],
        0.0f64..1.0,
        0i64..4_000,
        prop_oneof![3 => Just(0i64), 1 => 0i64..2_000],
        proptest::bool::weighted(0.5),
        proptest::bool::weighted(0.03),
    )
        .prop_map(
            |(
                (parts, recipient),
                idle_ms,
                jitter_unit,
                send_ms,
                late_ms,
                eager,
                restart_before,
            )| Message {
                parts,
                recipient,
                idle_ms,
                jitter_unit,
                send_ms,
                late_ms,
                eager,
                restart_before,
            },
        )
}

/// What the simulation saw: every part sent, and every message's start and spacing.
#[derive(Default)]
struct Schedule {
    parts: Vec<Sent>,
    /// (start, required spacing from the previous start) per message.
    starts: Vec<(i64, i64)>,
    /// Messages that fitted every cap but did not go in one burst.
    split_needlessly: u32,
}

/// One SIM driven the way the pool drives it: a message either goes at once (an eager sender
/// that finds the spacing kept and room for it) or at the slot [`Pacer::next_message`] gives,
/// woken up to `late_ms` after it; each burst is confirmed with [`Pacer::burst`]; parts take
/// `send_ms` each; the rest of a message split by a cap waits for [`Pacer::next_part`].
fn simulate(limits: Limits, messages: &[Message]) -> Schedule {
    let mut pacer = Pacer::new(limits);
    let mut schedule = Schedule::default();
    let mut now = T0;
    let smallest_cap = limits.smallest_part_cap().unwrap_or(u32::MAX);
    for message in messages {
        now += message.idle_ms;
        if message.restart_before {
            // A restart: the history comes back from the stored rows, nothing else survives.
            pacer = Pacer::with_log(limits, SendLog::from_rows(schedule.parts.clone(), now));
        }
        let recipient = format!("+6011{:03}", message.recipient);
        let jitter = limits.jitter_sample(message.jitter_unit);
        let spacing = millis(limits.min_interval + jitter);
        let spaced = schedule
            .starts
            .last()
            .is_none_or(|&(start, _)| now - start >= spacing);
        let wanted = message.parts.min(smallest_cap);
        let mut burst = 0;
        if message.eager && spaced {
            burst = pacer.burst(now, message.parts, &recipient);
            if burst < wanted {
                burst = 0;
            }
        }
        if burst == 0 {
            let slot = pacer.next_message(now, message.parts, &recipient, jitter);
            assert!(slot.at_ms >= now, "a slot is never in the past");
            now = slot.at_ms + message.late_ms;
            burst = pacer.burst(now, message.parts, &recipient);
            assert!(
                burst >= slot.together,
                "the slot promised room for {} parts, found {burst}",
                slot.together
            );
        }
        if message.parts <= smallest_cap && burst < message.parts {
            schedule.split_needlessly += 1;
        }
        schedule.starts.push((now, spacing));
        let mut left = message.parts;
        let mut first = true;
        loop {
            for _ in 0..burst {
                pacer.record(now, &recipient, first);
                schedule.parts.push(Sent {
                    at_ms: now,
                    recipient: recipient.clone(),
                    starts_message: first,
                });
                first = false;
                now += message.send_ms;
            }
            left -= burst;
            if left == 0 {
                break;
            }
            let slot = pacer.next_part(now, left, &recipient);
            assert!(slot.at_ms >= now);
            now = slot.at_ms + message.late_ms;
            burst = pacer.burst(now, left, &recipient);
            assert!(burst >= slot.together, "the rest's slot had room");
        }
    }
    schedule
}

/// Every window of `length` that starts at a part holds at most `cap` parts (the fullest
/// window of any position starts at some part).
fn check_part_window(times: &[i64], length: i64, cap: u32) -> Result<(), TestCaseError> {
    let cap = cap as usize;
    for (i, pair) in times.windows(cap + 1).enumerate() {
        prop_assert!(
            pair[cap] - pair[0] >= length,
            "{} parts within {} ms from part {i}: {:?}",
            cap + 1,
            length,
            pair
        );
    }
    Ok(())
}

fn check_recipient_window(parts: &[Sent], cap: u32) -> Result<(), TestCaseError> {
    for (i, first) in parts.iter().enumerate() {
        let distinct: HashSet<&str> = parts[i..]
            .iter()
            .take_while(|part| part.at_ms < first.at_ms + DAY_MS)
            .map(|part| part.recipient.as_str())
            .collect();
        prop_assert!(
            distinct.len() <= cap as usize,
            "{} recipients in the 24 h from part {i}",
            distinct.len()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn caps_hold_in_every_sliding_window(
        limits in limits_strategy(),
        messages in proptest::collection::vec(message_strategy(), 1..400),
    ) {
        let schedule = simulate(limits, &messages);
        let times: Vec<i64> = schedule.parts.iter().map(|part| part.at_ms).collect();
        prop_assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "parts go one after another");
        let total: u32 = messages.iter().map(|message| message.parts).sum();
        prop_assert_eq!(times.len(), total as usize, "every part was sent");
        for (length, cap) in limits.windows() {
            check_part_window(&times, length, cap)?;
        }
        if let Some(cap) = limits.recipients_per_day {
            check_recipient_window(&schedule.parts, cap.get())?;
        }
        for pair in schedule.starts.windows(2) {
            let ((previous, _), (start, spacing)) = (pair[0], pair[1]);
            prop_assert!(start - previous >= spacing, "starts {previous} and {start} closer than {spacing} ms");
        }
        prop_assert_eq!(schedule.split_needlessly, 0, "a message that fits every cap goes in one burst");
    }

    #[test]
    fn slots_are_the_earliest_moment_the_caps_allow(
        limits in limits_strategy(),
        messages in proptest::collection::vec(message_strategy(), 1..120),
        parts in 1u32..6,
        recipient in 0u8..16,
        probe in 0i64..(2 * HOUR_MS),
    ) {
        // Whatever the history: at the slot every cap has room for the message (or for a
        // cap's worth of it) and the recipient fits; one millisecond earlier they do not.
        let schedule = simulate(limits, &messages);
        let now = schedule.parts.last().map_or(T0, |part| part.at_ms) + probe;
        let pacer = Pacer::with_log(limits, SendLog::from_rows(schedule.parts, now));
        let recipient = format!("+6011{recipient:03}");
        let slot = pacer.next_part(now, parts, &recipient);
        prop_assert!(slot.at_ms >= now);
        prop_assert!(fits(&pacer, slot.at_ms, parts, &recipient));
        if slot.at_ms > now {
            prop_assert!(!fits(&pacer, slot.at_ms - 1, parts, &recipient));
        }
    }
}

/// Every cap has room for `parts` (or its own worth) at `at`, and `recipient` fits.
fn fits(pacer: &Pacer, at: i64, parts: u32, recipient: &str) -> bool {
    let windows_fit = pacer.limits().windows().all(|(length, cap)| {
        let used = pacer.log().parts_after(at - length);
        cap.saturating_sub(used) >= parts.min(cap)
    });
    windows_fit && pacer.burst(at, 1, recipient) == 1
}

// ---------------------------------------------------------------------------------------------
// The drain of a broadcast, in simulated time.

/// Four SIMs with `per_minute = 10` and 1,000 single-part messages to 1,000 contacts, each
/// `AT+CMGS` taking 1.5 s (a network 1–2 s away): each message goes to the SIM that can send
/// it soonest. 40 parts a minute in all, so the outbox drains in about 25 minutes (the last
/// minute's ten parts start at 24:00), and no SIM's minute ever holds more than ten.
#[test]
fn four_sims_at_ten_a_minute_drain_a_thousand_messages_in_about_25_minutes() {
    const SIMS: usize = 4;
    const SEND_MS: i64 = 1_500;
    let limits = per_minute(10);
    let mut pacers = vec![Pacer::new(limits); SIMS];
    let mut free_at = [T0; SIMS];
    let mut sent: Vec<Vec<i64>> = vec![Vec::new(); SIMS];
    for message in 0..1_000 {
        let recipient = format!("+601{message:07}");
        let (sim, at) = (0..SIMS)
            .map(|sim| {
                let slot = pacers[sim].next_message(free_at[sim], 1, &recipient, Duration::ZERO);
                (sim, slot.at_ms)
            })
            .min_by_key(|&(sim, at)| (at, sim))
            .expect("four SIMs");
        assert_eq!(pacers[sim].burst(at, 1, &recipient), 1);
        pacers[sim].record(at, &recipient, true);
        sent[sim].push(at);
        free_at[sim] = at + SEND_MS;
    }
    let drained_ms = free_at.iter().max().expect("four SIMs") - T0;
    let minutes = drained_ms as f64 / MINUTE_MS as f64;
    println!("1,000 messages on 4 SIMs at per_minute = 10: drained in {minutes:.2} minutes");
    assert!(
        (23.5..=26.0).contains(&minutes),
        "drained in {minutes:.2} minutes"
    );
    for times in &sent {
        assert_eq!(times.len(), 250, "the SIMs share the work evenly");
        for ten_later in times.windows(11) {
            assert!(ten_later[10] - ten_later[0] >= MINUTE_MS, "{ten_later:?}");
        }
    }
}

#[test]
fn a_restamped_part_counts_from_when_the_modem_answered() {
    let limits = Limits {
        per_minute: NonZeroU32::new(1),
        min_interval: Duration::from_secs(5),
        ..Limits::default()
    };
    let mut pacer = Pacer::new(limits);
    pacer.record(1_000, "+1", true);
    pacer.restamp(1_000, 4_000, "+1");
    assert_eq!(pacer.log().len(), 1);
    assert_eq!(pacer.log().last_start_ms(), Some(4_000));
    // The minute runs from the answer, and min_interval from the (moved) start.
    assert_eq!(pacer.burst(61_000, 1, "+2"), 0);
    assert_eq!(pacer.burst(64_001, 1, "+2"), 1);
    assert_eq!(
        pacer.next_message(61_000, 1, "+2", Duration::ZERO).at_ms,
        64_000
    );
    // Earlier, or a part that is not there: nothing changes.
    pacer.restamp(4_000, 3_000, "+1");
    pacer.restamp(9_999, 20_000, "+1");
    assert_eq!(pacer.log().last_start_ms(), Some(4_000));
    assert_eq!(pacer.log().parts_after(3_999), 1);
}
