-- A pool of modems behind one channel (issue 11). Rows written before this migration have no
-- modem (NULL): they were sent or received by the one modem of the time, and pair with any.

-- The SIM a queued message is routed to (NULL: not routed yet), and the SIM each part of the
-- current attempt went out on.
ALTER TABLE outbound ADD COLUMN modem TEXT;
-- 1: an earlier attempt may have gone out on `modem` (a part was accepted or left in doubt), so
-- the message stays with that SIM: failover and an inbound SMS never move it to another.
ALTER TABLE outbound ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbound_part ADD COLUMN modem TEXT;
CREATE INDEX outbound_modem ON outbound (modem, state, id);

-- The SIM each inbound part arrived on, and the SIM a parked status report came from (TP-MR
-- counters are per SIM, so a report pairs only with parts its own SIM sent).
ALTER TABLE inbound_part ADD COLUMN modem TEXT;
ALTER TABLE parked_report ADD COLUMN modem TEXT;

-- Sticky contacts: the SIM that serves each contact. Written when a contact's first message is
-- routed, when they write in (the SIM it arrived on), and when failover moves them.
-- reason: routed | inbound | failover
CREATE TABLE contact_modem (
    contact_id TEXT PRIMARY KEY,
    modem      TEXT NOT NULL,
    bound_ms   INTEGER NOT NULL,
    reason     TEXT NOT NULL
) STRICT;
CREATE INDEX contact_modem_modem ON contact_modem (modem);

-- Append-only send history, one row per part, written in the transaction that marks the part
-- submitting (just before its AT+CMGS). The per-SIM caps count from it, so they hold across
-- restarts and across attempts whose parts outbound_part no longer keeps. Pruned after 24 h
-- (the longest window), except each SIM's latest row (min_interval spaces from it).
CREATE TABLE modem_send (
    id             INTEGER PRIMARY KEY,
    modem          TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    recipient      TEXT NOT NULL,
    starts_message INTEGER NOT NULL
) STRICT;
CREATE INDEX modem_send_at ON modem_send (modem, at_ms);
