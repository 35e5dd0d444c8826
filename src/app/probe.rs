//! The modem's health as the HTTP API shows it: [`crate::modem::Health`] (the driver's watch
//! channel) mapped to [`crate::http::ModemSnapshot`], so `http` need not know the driver.

use tokio::sync::watch;

use crate::http::{ModemProbe, ModemSnapshot};
use crate::modem::Health;

/// Reads the driver's latest health on every `/health` or `/metrics` request.
pub struct HealthProbe {
    health: watch::Receiver<Health>,
}

impl HealthProbe {
    pub fn new(health: watch::Receiver<Health>) -> Self {
        Self { health }
    }
}

impl ModemProbe for HealthProbe {
    fn snapshot(&self) -> ModemSnapshot {
        snapshot(&self.health.borrow())
    }
}

/// The mapping itself.
pub fn snapshot(health: &Health) -> ModemSnapshot {
    ModemSnapshot {
        state: format!("{:?}", health.state).to_lowercase(),
        healthy: health.healthy,
        sim_ready: health.sim.eq_ignore_ascii_case("READY"),
        sim: health.sim.clone(),
        registered: health.registered,
        registration: health.registration.clone(),
        operator: health.operator.clone(),
        signal_dbm: health.signal_dbm,
        resets: health.resets,
        reopens: health.reopens,
        timeouts: health.timeouts,
        last_error: health.last_error.clone(),
    }
}
