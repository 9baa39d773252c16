//! `faxgate onramp …`: the onramp's command line.
//!
//! `faxgate onramp submit FILE... [--to ADDR]...` commits each file (TIFF, PDF, pictures,
//! text) as a received fax, exactly as the inbox folder would, with an optional sidecar
//! `FILE.meta` read the same way. `--to` replaces the route's recipients. The running daemon
//! routes and delivers the jobs; without one they wait in the spool (`faxgate queue list`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::onramp::{Source, inbox};
use crate::spool::{Spool, SpoolError, SpoolOptions};

/// `faxgate onramp` arguments.
#[derive(Args, Debug, Clone)]
pub struct OnrampArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OnrampCommand,
}

/// The onramp subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum OnrampCommand {
    /// Queue files as received faxes (routed and mailed by the running daemon).
    Submit {
        /// Files to send on: TIFF, PDF, PNG/JPEG/GIF/BMP/WebP/PNM, text.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Recipient replacing the route's (repeatable).
        #[arg(long, value_name = "ADDR")]
        to: Vec<String>,
    },
}

/// Runs `faxgate onramp …` with `config`, reporting to `out` / `err`. Returns the exit code.
pub fn run(config: &Config, args: &OnrampArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match &args.command {
        OnrampCommand::Submit { files, to } => {
            if let Some(bad) = to.iter().find(|a| !crate::config::is_address(a)) {
                let _ = writeln!(err, "faxgate: --to `{bad}` is not a mail address");
                return 2;
            }
            let dir = crate::spool::spool_dir(config);
            let opts = SpoolOptions::from_config(config);
            let spool = match Spool::attach(&dir, opts.clone()) {
                Ok(s) => s,
                // No spool yet (the daemon never ran here): create it.
                Err(SpoolError::Io { .. }) => match Spool::open(&dir, opts.clone()).and_then(|s| {
                    drop(s);
                    Spool::attach(&dir, opts)
                }) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = writeln!(err, "faxgate: spool {}: {e}", dir.display());
                        return 1;
                    }
                },
                Err(e) => {
                    let _ = writeln!(err, "faxgate: spool {}: {e}", dir.display());
                    return 1;
                }
            };
            let mut code = 0;
            for f in files {
                let opts = crate::image::render::Options::from_config(&config.offramp);
                match inbox::ingest_with(&spool, f, crate::spool::now(), Source::Submit, to, &opts)
                {
                    Ok(rec) => {
                        let _ = writeln!(out, "{}: queued as fax job {}", f.display(), rec.id);
                    }
                    Err(e) => {
                        let _ = writeln!(err, "faxgate: {}: {e}", f.display());
                        code = 1;
                    }
                }
            }
            code
        }
    }
}

/// `faxgate onramp …`: load the configuration, then [`run`] on stdout and stderr.
pub fn main(config: Option<&Path>, args: &OnrampArgs) -> ExitCode {
    match super::load(config) {
        Ok(l) => ExitCode::from(run(
            &l.config,
            args,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Err(errs) => {
            eprintln!(
                "faxgate: configuration has {} error(s):\n{errs}",
                errs.0.len()
            );
            ExitCode::FAILURE
        }
    }
}
