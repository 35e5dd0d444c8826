//! smsgate: a Raspberry Pi with a SIM card in a GSM/LTE modem, as a respond.io Custom Channel.
//!
//! # Map
//! Each module has one job; the direction of `use` statements shows the layering
//! (lower layers never name higher ones):
//!
//! | module    | job |
//! |-----------|-----|
//! | [`pdu`]   | SMS PDU codec (3GPP TS 23.040 / 23.038): pure code, no I/O |
//! | [`at`]    | AT command framing and the task that owns the serial port; knows nothing of SMS |
//! | [`modem`] | SMS over [`at`]: initialisation, send, read, delete, status reports, recovery; [`modem::endpoint`] opens a serial device or a ser2net TCP port |
//! | [`sim`]   | a simulated modem on a pseudo-terminal, for tests, `demo` and `smsgate sim` |
//! | [`store`] | the SQLite outbox/inbox/webhook queue, on its own thread behind a handle |
//! | [`outbox`] | the sender worker: queued messages → modem parts, status reports → receipts |
//! | [`inbox`] | received parts → committed rows, reassembled messages and `message` events |
//! | [`respond`] | respond.io wire types, the webhook client and its worker |
//! | [`http`]  | the axum router: `POST /message`, `GET /health`, `GET /metrics` |
//! | [`admin`] | the operator's dashboard on its own listener: one embedded page over `/api/…` |
//! | [`config`] | the TOML configuration file, with the pool of modems ([`config::Config::pool`]) |
//! | [`phone`] | E.164 phone numbers: checking them and normalising national ones |
//! | [`pacing`] | carrier-safe pacing of one SIM (interval, jitter, sliding-window caps): pure code, no I/O |
//! | [`app`]   | wiring, supervision and shutdown of the daemon |
//! | [`cmd`]   | one function per `smsgate` subcommand |
//!
//! # Glossary
//! - **DTE / DCE**: the computer (smsgate) and the modem, in the words of ITU-T V.250.
//! - **Final result code**: the line that ends an AT command: `OK`, `ERROR`, `+CME ERROR: n`,
//!   `+CMS ERROR: n`.
//! - **URC**: unsolicited result code, a line the modem sends on its own (`+CMTI`, `+CDS`, `RING`).
//! - **Part vs message**: an SMS *part* is one PDU (at most 140 octets of user data); a *message*
//!   is what a person wrote, one or more parts joined by a concatenation header.
//! - **Outbox entry**: an outbound message accepted by `POST /message` (or `smsgate send`) and
//!   committed to SQLite before it is answered.
//! - **TP-MR**: the one-octet message reference the network gives each submitted part
//!   (`+CMGS: <mr>`); status reports carry it back, so it pairs a receipt with its part.

pub mod admin;
pub mod app;
pub mod at;
pub mod calls;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod http;
pub mod inbox;
pub mod intake;
pub mod modem;
pub mod outbox;
pub mod pacing;
pub mod pdu;
pub mod phone;
pub mod respond;
pub mod sim;
pub mod store;
pub mod wire;
