//! `faxgate status [--json]`: the modems, the queue and recent jobs.
//!
//! Asks the running daemon over its control socket ([`crate::app::control::query`]); when
//! nobody answers (the daemon is stopped) it reads the spool directly and says so (the
//! snapshot's `live` is false and every configured line shows as stopped).

use std::path::Path;
use std::process::ExitCode;

use tracing::debug;

use crate::app::control::{query, remembered_calls, socket_path, spool_figures};
use crate::app::status::{self, ModemState, Snapshot};
use crate::config::Config;
use crate::spool::{Spool, SpoolOptions};

/// The snapshot read from the spool alone, for a stopped daemon: the configured lines are
/// listed as stopped.
pub fn offline(config: &Config) -> Result<Snapshot, crate::spool::SpoolError> {
    let spool = Spool::attach(
        &crate::spool::spool_dir(config),
        SpoolOptions::from_config(config),
    )?;
    let (queue, recent, damaged) = spool_figures(&spool);
    let calls = remembered_calls(&spool);
    Ok(Snapshot {
        live: false,
        pid: None,
        since: None,
        modems: crate::app::pool_lines(config)
            .into_iter()
            .map(|mut m| {
                m.state = ModemState::Stopped;
                m.last_call = calls.get(&m.name).cloned();
                m
            })
            .collect(),
        queue,
        recent,
        damaged,
    })
}

/// `faxgate status [--json]`: load the configuration, then [`run`].
pub fn main(config: Option<&Path>, json: bool) -> ExitCode {
    match super::load(config) {
        Ok(l) => run(&l.config, json),
        Err(errs) => {
            eprintln!(
                "faxgate: configuration has {} error(s):\n{errs}",
                errs.0.len()
            );
            ExitCode::FAILURE
        }
    }
}

/// `faxgate status [--json]` with the configuration `config`: the snapshot as text or JSON.
pub fn run(config: &Config, json: bool) -> ExitCode {
    let path = socket_path(config);
    let snap = match query(&path) {
        Ok(s) => s,
        Err(e) => {
            debug!("control socket {}: {e}", path.display());
            match offline(config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "faxgate: no daemon answers on {} and the spool cannot be read: {e}",
                        path.display()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snap).unwrap_or_default()
        );
    } else {
        print!("{}", status::format(&snap));
    }
    ExitCode::SUCCESS
}
