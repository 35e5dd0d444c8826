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
//! | [`wire`]  | respond.io's wire types (`POST /message` bodies, webhook events) and its text rules: serde only |
//! | [`clock`] | the one clock (Unix milliseconds) every layer reads, replaceable in tests |
//! | [`store`] | the SQLite outbox/inbox/webhook queue, on its own thread behind a handle |
//! | [`outbox`] | the sender worker: queued messages → modem parts, status reports → receipts |
//! | [`inbox`] | what a received message becomes: its text, mId, quick-reply answer, events |
//! | [`intake`] | the inbound pipeline of one modem: commit what it read, then release the modem's copy |
//! | [`calls`] | what an incoming call becomes: the missed-call event, the auto-reply |
//! | [`respond`] | the webhook client and its worker (lanes, rate, retries, pauses) |
//! | [`http`]  | the axum router: `POST /message`, `GET /health`, `GET /metrics` |
//! | [`admin`] | the operator's dashboard on its own listener: one embedded page over `/api/…` |
//! | [`config`] | the TOML configuration file, with the pool of modems ([`config::Config::pool`]) |
//! | [`phone`] | E.164 phone numbers: checking them and normalising national ones |
//! | [`pacing`] | carrier-safe pacing of one SIM (interval, jitter, sliding-window caps): pure code, no I/O |
//! | [`pool`]  | the SIMs behind the one channel: sticky routing of contacts, failover, one outbox lane per SIM |
//! | [`app`]   | wiring, supervision and shutdown of the daemon |
//! | [`cmd`]   | one function per `smsgate` subcommand |
//!
//! # Follow a message
//! **Outbound** (respond.io → a phone), in the order a message passes through the files:
//! 1. `http/message.rs` — `POST /message`: token (`http/auth.rs`), body rules and rendering
//!    (`http/message/body.rs`, text caps from `wire.rs`), planning into parts (`pdu/split.rs`);
//! 2. `store/outbound.rs` — committed as *queued*, then `200 {"mId"}`;
//! 3. `pool.rs` → `store/pool.rs` — the router gives it a SIM (the contact's sticky one, or the
//!    usable SIM that can send soonest); that SIM's sender (`outbox/mod.rs` with its
//!    `outbox/lane.rs`) waits for its pacing, takes it, marks each part *submitting* and appends
//!    it to the SIM's send history;
//! 4. `outbox/modem.rs` → `modem/mod.rs` (`ModemHandle`) → `modem/driver.rs` → `modem/send.rs`
//!    (`AT+CMGS`, PDU from `pdu/submit.rs`) → `modem/connection.rs` → `at/engine.rs` → the port;
//! 5. `store/outbound.rs` — *accepted* with its TP-MR, and the `sent` event queued
//!    (`store/events.rs`, built by `wire::Event`);
//! 6. the status report comes back inbound (below) and `outbox/report.rs` pairs it: the
//!    `delivered` or `failed` event is queued;
//! 7. `respond/worker.rs` → `respond/client.rs` posts the events to respond.io's webhook.
//!
//! **Inbound** (a phone → respond.io):
//! 1. the port → `at/engine.rs` (a URC: `+CMTI`, `+CMT`, `+CDS`…) → `modem/receive.rs` (read
//!    with `AT+CMGR`, decoded by `pdu/deliver.rs` or `pdu/status_report.rs`);
//! 2. `intake.rs` (one per SIM) — commits the part (`inbox/mod.rs` → `store/inbound.rs`, which
//!    binds the sender to the SIM it arrived on; a completed message
//!    is finished by `inbox/finish.rs`, split by `inbox/split.rs`, its `message` events queued),
//!    or the status report (`outbox/report.rs`), and only then releases the modem's copy
//!    (`AT+CMGD` or `AT+CNMA`, `modem/receive.rs`);
//! 3. `respond/worker.rs` → `respond/client.rs` posts the `message` event.
//!
//! **A call** (a phone rings the SIM): `at/engine.rs` (`RING`, `+CLIP`) → `modem/calls.rs` (one
//! event per call, the hang-up) → `intake.rs` → `calls.rs` (the `message` event, the
//! auto-reply through `store/outbound.rs`).
//!
//! **The balance**: `modem/ussd.rs` asks on its schedule (`AT+CUSD`, the answer a `+CUSD` URC
//! joined by `at/engine.rs`, decoded by `pdu/ussd.rs`) and publishes it with the modem's health;
//! `app/balance.rs` stores it (`store/balance.rs`); `/health`, `/metrics` (`http/health.rs`) and
//! `/api/modems` (`admin/api.rs`) show it.
//!
//! `app/gateway.rs` wires these together and supervises them; it holds no rule of its own.
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

#![warn(unreachable_pub)]

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
pub mod pool;
pub mod respond;
pub mod sim;
pub mod store;
pub mod wire;
