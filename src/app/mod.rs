//! `faxgate run`: the whole gateway as one process, wired from the configuration.
//!
//! This module owns the wiring and the process's life, not the pieces:
//!
//! | file | owns |
//! |---|---|
//! | [`mod@self`] | start-up order, the services, SIGTERM, systemd `READY`/`STATUS`/`WATCHDOG`/`STOPPING` |
//! | [`dispatch`] | the one dispatcher: every kind of job through the pure scheduler, woken by events (spool changes, finished workers, timers) |
//! | [`runner`] | the offramp's workers: `Message` → `FaxOut` jobs, fax attempts on the leased lines |
//! | [`send_pages`] | the pages of one attempt, read from the fax job's `pages.tif` one at a time for the line |
//! | [`cores`] | the pure cores' plain options built from the config (the one place config becomes them) |
//! | [`loopback`] | PURE: one call on the built-in loopback line (two of our T.30 engines back to back) |
//! | [`modems`] | the real modems of the pool (`[[modem]]`): Class 1 with our T.30 engine; RING answering, leased for sending |
//! | [`rtp`] | the audio leg of a SIP call before T.38: RTP with G.711 silence (answering) or CNG (calling) |
//! | [`sip_line`] | the SIP lines (`[[sip]]`): T.38 calls through the trunk, leased in slots of one call each |
//! | [`status`] | PURE: the status model, the `STATUS=` summary and the `faxgate status` text |
//! | [`control`] | the control socket (`control.sock` in the data directory): the server, and the client calls of `faxgate status` and `faxgate queue` ([`crate::cli`]) |
//!
//! Start-up: data directory → spool (owner lock, recovery of interrupted jobs) → onramp service
//! (routes, templates, relay settings are checked here, so a bad configuration fails the start)
//! → SMTP listener bound → control socket → missing reports recovered → job runner and onramp
//! service started → `READY=1`. Stop (SIGTERM/SIGINT): `STOPPING=1`; the listener stops
//! accepting and finishes the message in flight; the runner starts nothing new and lets a call
//! in progress end (or hangs up a paced loopback call and requeues its job); the onramp
//! finishes its delivery pass; then the process exits 0.
//!
//! The **embedded default** (no file): data under `./faxgate-data` (or `$FAXGATE_DATA`), SMTP
//! on 127.0.0.1:2525 for `localhost`, the loopback line whose far end is this gateway's own
//! onramp, the inbox at `inbox/`, all mail into the Maildir `maildir/` under the data dir.

pub mod console;
pub mod control;
pub mod cores;
pub mod dispatch;
pub mod loopback;
pub mod modems;
pub mod rtp;
pub mod runner;
pub mod send_pages;
pub mod sip_line;
pub mod status;

use std::sync::{Arc, Mutex};

use thiserror::Error;

use tracing::{error, info};

use crate::config::{Config, ModemRole};
use crate::daemon::{Notifier, Shutdown};
use crate::scheduler::{Policy, Scheduler};
use crate::spool::{Spool, SpoolError, SpoolOptions};
use modems::Stored;
use status::ModemStatus;

/// Why the gateway could not start (or stopped with an error). Each names what is at fault.
#[derive(Debug, Error)]
pub enum AppError {
    /// The data directory cannot be created (permissions, disk): the operator's environment.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The spool cannot be opened (another daemon owns it, permissions, damage).
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    /// The SMTP listener cannot start (address in use, certificate).
    #[error("SMTP listener: {0}")]
    Smtp(#[from] crate::smtp::SmtpError),
    /// The onramp's configuration (routes, templates, relay) is unusable.
    #[error("onramp: {0}")]
    Onramp(#[from] crate::onramp::service::ServiceError),
    /// The control socket cannot be created.
    #[error("control socket {path}: {source}")]
    Control {
        /// The socket path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The signal handlers cannot be installed.
    #[error("signal handlers: {0}")]
    Signals(std::io::Error),
    /// The console cannot start (address in use, certificate, users file).
    #[error("console: {0}")]
    Console(#[from] console::ConsoleError),
    /// A SIP line cannot start (its address in use, its password file).
    #[error("{0}")]
    Sip(#[from] sip_line::SipLineError),
}

/// The lines of the pool as configured, all idle: the loopback line (when enabled), one per
/// `[[modem]]`, and each `[[sip]]` line's call slots.
pub fn pool_lines(config: &Config) -> Vec<ModemStatus> {
    let mut v = Vec::new();
    if config.loopback.enabled {
        v.push(ModemStatus::idle(loopback::LINE_NAME, "send"));
    }
    for m in &config.modems {
        let role = match m.role {
            ModemRole::Send => "send",
            ModemRole::Receive => "receive",
            ModemRole::Both => "both",
        };
        v.push(ModemStatus::idle(&m.name, role));
    }
    for s in &config.sips {
        for slot in sip_line::slot_names(s) {
            v.push(ModemStatus::idle(&slot, sip_line::role_word(s.role)));
        }
    }
    v
}

/// Runs the gateway until SIGTERM/SIGINT. Returns once every service stopped.
pub async fn run(config: Config) -> Result<(), AppError> {
    let notifier = Notifier::from_env();
    let data_dir = config.gateway.data_dir.clone();
    // Created 0700 when missing (an existing one keeps its mode: systemd's StateDirectory
    // sets its own).
    crate::private_fs::create_dir_all(&data_dir).map_err(|source| AppError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let (stop_tx, shutdown) = Shutdown::new();
    // Installed before READY so a stop request right after start-up is never lost.
    let signals = crate::daemon::termination_handler().map_err(AppError::Signals)?;

    let watchdog = notifier.watchdog_interval().map(|every| {
        let n = notifier.clone();
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => n.watchdog(),
                    _ = sd.stopped() => break,
                }
            }
        })
    });

    let since = crate::spool::now();
    let spool = Spool::open(
        &crate::spool::spool_dir(&config),
        SpoolOptions::from_config(&config),
    )?;
    // Before anything commits: every job change from here on reaches the dispatcher.
    let (events, events_rx) = dispatch::connect(&spool);
    let live: dispatch::Live = Default::default();
    let onramp = crate::onramp::service::OnrampService::new(&config, spool.clone())?;
    // The offramp listener: bound before READY so a port problem fails the start.
    let smtp = crate::smtp::bind(&config, spool.clone()).await?;
    let addrs = smtp.local_addrs();
    // The console likewise: bound now, served once the rest is up.
    let http = console::bind(&config).await?;
    let http_addrs = http.as_ref().map(|b| b.local_addrs()).unwrap_or_default();

    let board = {
        let sp = spool.clone();
        let calls = tokio::task::spawn_blocking(move || control::remembered_calls(&sp))
            .await
            .unwrap_or_default();
        let mut lines = pool_lines(&config);
        for l in &mut lines {
            l.last_call = calls.get(&l.name).cloned();
        }
        Arc::new(Mutex::new(lines))
    };
    let sock = control::socket_path(&config);
    let control_task = {
        // Bind synchronously so a failure is reported now, then serve in the background.
        let _ = std::fs::remove_file(&sock);
        let probe = tokio::net::UnixListener::bind(&sock).map_err(|source| AppError::Control {
            path: sock.clone(),
            source,
        })?;
        drop(probe);
        tokio::spawn(control::serve(
            sock.clone(),
            board.clone(),
            live.clone(),
            events.clone(),
            since,
            shutdown.clone(),
        ))
    };

    let config = Arc::new(config);
    let mut lines: std::collections::HashMap<String, runner::Line> = config
        .modems
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                runner::Line::Modem(modems::ModemLine::new(m.clone(), board.clone())),
            )
        })
        .collect();
    // SIP lines: bound and registering before READY (an address in use fails the start).
    let mut sip_lines = Vec::new();
    for s in &config.sips {
        // A relative password file is under the data directory, as `check-config` reads it.
        let mut cfg = s.clone();
        cfg.password_file = cfg.password_file.map(|p| config.data_path(&p));
        let line = sip_line::SipLine::start(cfg, board.clone(), shutdown.clone()).await?;
        for slot in sip_line::slot_names(s) {
            lines.insert(slot, runner::Line::Sip(line.clone()));
        }
        sip_lines.push(line);
    }
    let shared = runner::Shared {
        cfg: config.clone(),
        spool: spool.clone(),
        policy: Policy::from(&config.retry),
        board: board.clone(),
        notifier: notifier.clone(),
        lines: Arc::new(lines),
        render_cancel: Default::default(),
    };
    {
        let sh = shared.clone();
        match tokio::task::spawn_blocking(move || runner::recover(&sh)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!("start-up report recovery: {e}"),
            Err(e) => error!("start-up report recovery task: {e}"),
        }
    }
    // The queue, read once; from here on the dispatcher follows the spool's events.
    let sched = {
        let (sp, lv, mut sched) = (
            spool.clone(),
            live.clone(),
            Scheduler::new(dispatch::limits(&shared)),
        );
        match tokio::task::spawn_blocking(move || {
            dispatch::load(&sp, &mut sched, &lv).map(|()| sched)
        })
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => {
                error!("start-up queue load task: {e}");
                Scheduler::new(dispatch::limits(&shared))
            }
        }
    };

    let smtp_task = tokio::spawn(smtp.run(shutdown.clone()));
    let workers = dispatch::Workers {
        shared: shared.clone(),
        onramp: onramp.workers(),
    };
    let runner_task = tokio::spawn(dispatch::run(
        workers,
        dispatch::Clock::System,
        spool.clone(),
        sched,
        events_rx,
        live.clone(),
        shutdown.clone(),
    ));
    let onramp_task = tokio::spawn(onramp.run(shutdown.clone()));
    let console_task = http.map(|bound| {
        let state = console::state(
            &bound,
            config.clone(),
            spool.clone(),
            board.clone(),
            live.clone(),
            since,
            shutdown.clone(),
        );
        tokio::spawn(console::serve(bound, state, shutdown.clone()))
    });
    // Receiving lines wait for RING on blocking threads (serial I/O).
    let answerers: Vec<_> = config
        .modems
        .iter()
        .filter(|m| matches!(m.role, ModemRole::Receive | ModemRole::Both))
        .filter_map(|m| match shared.lines.get(&m.name) {
            Some(runner::Line::Modem(l)) => Some(l.clone()),
            _ => None,
        })
        .map(|line| {
            let (sh, sd) = (shared.clone(), shutdown.clone());
            tokio::task::spawn_blocking(move || {
                line.answer_loop(sd, &sh.spool, &|l, stored| match stored {
                    Stored::Fax { job, pages } => {
                        info!(job = %job, modem = l.name(), "received a fax of {pages} page(s)");
                    }
                    Stored::NoPages => info!(modem = l.name(), "incoming call without pages"),
                    Stored::Kept(e) => error!(
                        modem = l.name(),
                        "received fax kept in the spool, to be delivered at the next start: {e}"
                    ),
                })
            })
        })
        .collect();

    // Receiving SIP lines take incoming calls as tasks (each call on a blocking thread).
    let sip_answerers: Vec<_> = sip_lines
        .iter()
        .filter(|l| matches!(l.role(), ModemRole::Receive | ModemRole::Both))
        .map(|line| {
            let on_fax: sip_line::OnFax = Arc::new(|l, stored| match stored {
                Stored::Fax { job, pages } => {
                    info!(job = %job, line = l.name(), "received a fax of {pages} page(s)");
                }
                Stored::NoPages => info!(line = l.name(), "incoming call without pages"),
                Stored::Kept(e) => error!(
                    line = l.name(),
                    "received fax kept in the spool, to be delivered at the next start: {e}"
                ),
            });
            tokio::spawn(line.clone().serve(shutdown.clone(), spool.clone(), on_fax))
        })
        .collect();

    info!(
        data_dir = %data_dir.display(),
        listen = ?addrs,
        console = ?http_addrs,
        control = %sock.display(),
        "faxgate {} started",
        env!("CARGO_PKG_VERSION")
    );
    let summary = status::summary(&control::modems_now(&board), &Default::default());
    notifier.ready(&summary);

    let why = match signals.await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return Err(AppError::Signals(e)),
        Err(e) => return Err(AppError::Signals(std::io::Error::other(e))),
    };
    info!("{why} received: stopping");
    notifier.stopping();
    let _ = stop_tx.send(true);
    // Renderings in progress (blocking threads) do not watch `shutdown`: stop them too.
    shared.render_cancel.cancel();
    let _ = smtp_task.await;
    let _ = runner_task.await;
    let _ = onramp_task.await;
    for a in answerers {
        let _ = a.await;
    }
    for a in sip_answerers {
        let _ = a.await;
    }
    drop(sip_lines);
    let _ = control_task.await;
    if let Some(c) = console_task {
        let _ = c.await;
    }
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    info!("stopped");
    Ok(())
}
