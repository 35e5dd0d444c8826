//! Wiring, supervision and shutdown of the daemon: opens the store, starts the modem, the HTTP
//! server and the workers, tells systemd when it is ready and pets its watchdog only while the
//! gateway is healthy. Also the local respond.io stand-in that `demo` and the tests use.

mod balance;
mod gateway;
pub(crate) mod signals;
pub mod standin;
pub mod systemd;

pub use gateway::{Gateway, SHUTDOWN_DEADLINE};
