-- SMS (and status reports) that could not be decoded even leniently, kept as the modem gave
-- them before the SIM copy is deleted, so that nothing is dropped in silence. Rows are never
-- pruned: they are evidence for a bug report, and `smsgate status` lists them.
-- kind: sms | status_report. forwarded = 1: a placeholder message went to respond.io (m_id).
CREATE TABLE unreadable (
    id          INTEGER PRIMARY KEY,
    pdu_key     TEXT NOT NULL UNIQUE, -- deduplicates re-reads of the same PDU
    kind        TEXT NOT NULL,
    pdu         TEXT NOT NULL,        -- the PDU text as the modem printed it, junk included
    sender      TEXT,                 -- TP-OA as the PDU states it, when readable
    contact_id  TEXT,
    slot        TEXT NOT NULL,        -- where it was: "SM:3", "routed"
    reason      TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    forwarded   INTEGER NOT NULL,
    m_id        TEXT UNIQUE
) STRICT;
CREATE INDEX unreadable_received ON unreadable (received_ms);
