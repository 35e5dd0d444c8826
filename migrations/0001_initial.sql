-- smsgate schema, version 1. Append-only: never edit a migration that has shipped; add a new file.
-- All times are Unix milliseconds.

-- Counters that must survive restarts (e.g. the next concatenation reference).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

-- One row per outbound message (POST /message or `smsgate send`).
-- state: queued | sending | unknown | sent | delivered | failed
CREATE TABLE outbound (
    id               INTEGER PRIMARY KEY,
    m_id             TEXT NOT NULL UNIQUE,
    contact_id       TEXT NOT NULL,
    text             TEXT NOT NULL,
    parts            INTEGER NOT NULL,
    encoding         TEXT NOT NULL,
    source           TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    concat_reference INTEGER,
    last_error       TEXT,
    status_message   TEXT,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    unknown_since_ms INTEGER,
    finished_ms      INTEGER
) STRICT;
CREATE INDEX outbound_due ON outbound (state, next_attempt_ms, id);
CREATE INDEX outbound_contact ON outbound (contact_id, state, id);
CREATE INDEX outbound_finished ON outbound (finished_ms) WHERE finished_ms IS NOT NULL;

-- The parts of the current attempt of an outbound message.
-- state: submitting | unknown | accepted | delivered | failed
CREATE TABLE outbound_part (
    message_id     INTEGER NOT NULL REFERENCES outbound (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    state          TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    mr             INTEGER,
    submitted_ms   INTEGER NOT NULL,
    report_status  INTEGER,
    report_ms      INTEGER,
    PRIMARY KEY (message_id, seq)
) STRICT;
CREATE INDEX outbound_part_report ON outbound_part (mr, recipient, submitted_ms);

-- Inbound messages, single or reassembled. state: assembling | complete | partial
-- forward = 0: kept locally (the alphanumeric-sender rule), never sent to respond.io.
CREATE TABLE inbound (
    id            INTEGER PRIMARY KEY,
    m_id          TEXT UNIQUE,
    contact_id    TEXT NOT NULL,
    forward       INTEGER NOT NULL,
    group_key     TEXT,
    total         INTEGER NOT NULL,
    state         TEXT NOT NULL,
    text          TEXT,
    timestamp_ms  INTEGER,
    first_part_ms INTEGER NOT NULL,
    finished_ms   INTEGER
) STRICT;
CREATE INDEX inbound_assembling ON inbound (group_key, state);
CREATE INDEX inbound_open ON inbound (state, first_part_ms);
CREATE INDEX inbound_finished ON inbound (finished_ms) WHERE finished_ms IS NOT NULL;

-- Every received part, committed before the SIM copy is deleted; part_key deduplicates re-reads.
CREATE TABLE inbound_part (
    part_key     TEXT PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES inbound (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    text         TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    pdu          BLOB NOT NULL,
    received_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX inbound_part_message ON inbound_part (message_id, seq);

-- The respond.io webhook queue. state: pending | delivered | dead
CREATE TABLE event (
    id              INTEGER PRIMARY KEY,
    contact_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    enqueued_ms     INTEGER NOT NULL,
    last_error      TEXT,
    error_seq       INTEGER NOT NULL DEFAULT 0, -- orders errors: the latest has the highest
    finished_ms     INTEGER
) STRICT;
CREATE INDEX event_pending ON event (state, contact_id, id);
CREATE INDEX event_finished ON event (finished_ms) WHERE finished_ms IS NOT NULL;

-- The last quick-reply menu sent to each contact, for mapping a bare-number answer.
CREATE TABLE quick_reply_menu (
    contact_id TEXT PRIMARY KEY,
    replies    TEXT NOT NULL,
    sent_ms    INTEGER NOT NULL
) STRICT;
