-- What a SIM may still send while recipients_per_day holds a message to a new contact back:
-- its due messages to recipients it has written to in the last 24 h
-- (Store::next_known_on_modem looks them up by modem, recipient and time).
CREATE INDEX modem_send_recipient ON modem_send (modem, recipient, at_ms);
