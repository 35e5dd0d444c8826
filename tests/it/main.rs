//! smsgate's integration tests, compiled as one binary (one `mod` per area).
//!
//! They drive the real code end to end: the simulated modem on a real pty, a temporary SQLite
//! file, and a local HTTP stand-in for respond.io. They wait on conditions with deadlines, never
//! on fixed sleeps.

mod at_engine;
mod balance;
mod calls;
mod cli;
mod console_config;
mod daemon;
mod dashboard;
mod dashboard_balance;
mod durability;
mod e2e;
mod harness;
mod http;
mod http_limits;
mod http_store;
mod inbound_long;
mod inbox;
mod lenient;
mod modem;
mod outbox;
mod pdu_cli;
mod pool;
mod pool_config;
mod pool_store;
mod ser2net;
mod sim;
mod startup;
mod store;
mod store_faults;
mod store_fixtures;
mod store_modem;
mod unreadable;
mod ussd_cli;
mod ussd_engine;
mod webhook;
mod webhook_e2e;
