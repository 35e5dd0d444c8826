-- Finding the next due batch walks pending events in queue order and stops at the first one
-- that heads its contact's queue; this index makes that walk start at the oldest pending event
-- instead of scanning every contact's events.
CREATE INDEX event_queue ON event (state, id);
