//! respond.io: the webhook client, and the worker that drains the durable webhook queue to
//! respond.io in per-contact order, at a bounded rate, retrying failures with backoff and
//! parking what cannot be delivered.
//!
//! This module does not build or store events (the store does, from the wire types in
//! [`crate::wire`]) nor serve `POST /message` (`http` does).

pub(crate) mod client;
pub(crate) mod metrics;
pub(crate) mod ratelimit;
pub mod retry;
mod store;
pub(crate) mod worker;

pub use client::{ClientOptions, WebhookClient};
pub use metrics::WebhookMetrics;
pub use ratelimit::RateLimiter;
pub use retry::RetryPolicy;
pub use worker::{EventQueue, PostOutcome, Worker, WorkerOptions};

/// What can go wrong in this module.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// A setting cannot be used (bad URL, unusable token).
    #[error("{0}")]
    Config(String),
    /// The webhook queue (the store) failed.
    #[error("webhook queue: {0}")]
    Queue(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl RespondError {
    fn queue(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Queue(Box::new(error))
    }
}
