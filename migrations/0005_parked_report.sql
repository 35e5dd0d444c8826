-- Status reports that matched no part when they arrived, kept until a part with the same TP-MR
-- and recipient is accepted or found in doubt (a report can overtake the commit of its own
-- `+CMGS: <mr>` answer, or arrive while that commit keeps failing), or until the report window
-- has passed. Kept here, the report can be deleted from the modem (or acknowledged to the
-- network) at once without being lost to a crash.
CREATE TABLE parked_report (
    id          INTEGER PRIMARY KEY,
    mr          INTEGER NOT NULL,
    recipient   TEXT NOT NULL,
    status      INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX parked_report_key ON parked_report (recipient, received_ms);
