//! Wiring, supervision and shutdown of the daemon: opens the store, starts the modem, the HTTP
//! server and the workers, tells systemd when it is ready and pets its watchdog only while the
//! gateway is healthy.

pub mod signals;
pub mod standin;
pub mod systemd;
