-- The SIM balance each modem last read by USSD (balance_ussd): the operator's answer as
-- decoded, the amount balance_pattern found in it (NULL when it found none), and when.
CREATE TABLE sim_balance (
    modem   TEXT PRIMARY KEY,
    text    TEXT NOT NULL,
    amount  REAL,
    read_ms INTEGER NOT NULL
) STRICT;
