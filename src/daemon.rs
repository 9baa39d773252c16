//! The long-running process's plumbing, used by `faxgate run` ([`crate::app`]).
//!
//! Owns the shutdown signal that every service listens to ([`Shutdown`]), SIGTERM/SIGINT
//! handling ([`termination_handler`]) and systemd notification ([`Notifier`]); creating the
//! data directory, starting the services and deciding when to notify is [`crate::app`]'s.
//! With `NOTIFY_SOCKET` set (`Type=notify`) the notifier sends `READY=1`, `STATUS=` lines,
//! `WATCHDOG=1` (its interval is half of `WATCHDOG_USEC`) and `STOPPING=1` when told to.
//! Without `NOTIFY_SOCKET` notification is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tracing::warn;

/// Tells services to stop. Cloned receivers see the change; `stopped()` resolves once.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A pair: the trigger (send `true` to stop) and the first receiver.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// True once shutdown was requested.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown is requested (at once if it already was).
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which also means: stop.
        let _ = self.0.wait_for(|v| *v).await;
    }
}

/// systemd notification, silent when not running under `Type=notify`.
#[derive(Clone, Debug)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` from the environment.
    pub fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some_and(|v| !v.is_empty()),
        }
    }

    fn send(&self, state: &[NotifyState<'_>]) {
        if self.enabled
            && let Err(e) = sd_notify::notify(state)
        {
            warn!("systemd notification failed: {e}");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `STATUS=…`: a live one-line summary shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// Half of `WATCHDOG_USEC` when systemd asked for keep-alives (sd_watchdog_enabled(3)
    /// recommends pinging at half the interval).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Some(pid) = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            && pid != std::process::id()
        {
            return None;
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }
}

/// Installs the SIGTERM/SIGINT handlers now and returns a task that resolves with the name
/// of the first of them to arrive. Installing before `READY` means a stop request right after
/// start-up is never lost.
pub fn termination_handler()
-> std::io::Result<tokio::task::JoinHandle<std::io::Result<&'static str>>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        Ok(tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_resolves_for_every_clone() {
        let (tx, a) = Shutdown::new();
        let mut b = a.clone();
        assert!(!a.is_stopping());
        tx.send(true).unwrap();
        b.stopped().await;
        assert!(a.is_stopping());
    }
}
