-- Lanes of the webhook queue, so that what a person wrote is not held up by broadcast receipts:
-- lane 0 is an inbound `message`, 1 a `message_echo`, 2 a `message_status` (and anything else).
-- Lanes only choose which contact goes next; one contact's events still leave in id order.
ALTER TABLE event ADD COLUMN lane INTEGER NOT NULL DEFAULT 2;
UPDATE event SET lane = CASE
    WHEN NOT json_valid(body) THEN 2
    WHEN json_extract(body, '$.type') = 'message' THEN 0
    WHEN json_extract(body, '$.type') = 'message_echo' THEN 1
    ELSE 2 END;
-- Finding the next contact walks pending events lane by lane, oldest first.
CREATE INDEX event_lane ON event (state, lane, id);
