//! Turns SIGTERM and SIGINT into one cancellation token: the HTTP server drains, the modem
//! finishes the command in flight, workers stop between items. A second signal exits at once,
//! for the operator who really means it.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Spawns the task that cancels `shutdown` on the first SIGTERM or SIGINT and exits the process
/// (status 130) on the second.
pub(crate) fn cancel_on_signals(shutdown: CancellationToken) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            received += 1;
            if received == 1 {
                tracing::info!("{name} received: shutting down");
                shutdown.cancel();
            } else {
                tracing::warn!("{name} received again: exiting now");
                std::process::exit(130);
            }
        }
    });
    Ok(())
}
