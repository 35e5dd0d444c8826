-- The operator's dashboard counts parts the modem accepted in sliding windows (the last minute,
-- hour and day) and per hour for its chart: by the time each part was accepted.
CREATE INDEX outbound_part_accepted ON outbound_part (submitted_ms) WHERE mr IS NOT NULL;
