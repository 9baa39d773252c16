//! The `faxgate` command line: every verb's arguments (clap) and its I/O shell, in one place.
//!
//! The binary (`src/main.rs`) only calls [`main`]. Each verb group has its file here; they read
//! files and the configuration, print, and set the exit status, and hand everything else to the
//! pure cores and services where they live:
//!
//! | file | verbs |
//! |---|---|
//! | this file | the verb table, `run`, `check-config` |
//! | [`status`] | `status [--json]`: the daemon's snapshot, or the spool's when it is stopped |
//! | [`queue`] | `queue list|show|retry|cancel|purge` over [`crate::spool`] |
//! | [`onramp`] | `onramp submit FILE... [--to ADDR]` over [`crate::onramp::inbox`] |
//! | [`offramp_check`] | `offramp-check FILE.eml [--out FAX.tif]` over [`crate::offramp`] |
//! | [`render`] | `render INPUT... -o FAX.tif [--png DIR]` over [`crate::image::render`] |
//! | [`tiff`] | `convert` and `tiff-check` over [`crate::image::tiff`] |
//! | [`modem`] | `modem probe`, `send`, `receive` over [`crate::fax::modem`] |
//! | [`password`] | `hash-password USER` over [`crate::smtp::auth`] |
//! | [`token`] | `token create USER` over [`crate::app::console::auth::Tokens`] |
//! | [`setup`] | `setup`: first-run configuration (modem probe, questions, checked write) |
//! | [`docs`] | `generate-docs DIR`: man pages and completions for the package |
//!
//! Library errors are typed; here they become one line on stderr with their causes joined by
//! `: ` ([`chain`]) and a non-zero exit status.

pub mod docs;
pub mod modem;
pub mod offramp_check;
pub mod onramp;
pub mod password;
pub mod queue;
pub mod render;
pub mod setup;
pub mod status;
pub mod tiff;
pub mod token;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;

/// T.37 store-and-forward fax ⇄ email gateway.
#[derive(Parser, Debug)]
#[command(name = "faxgate", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the
    /// embedded default).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway until SIGTERM or SIGINT.
    Run,
    /// Show the modems (state, last call, last error), the queue and recent jobs: from the
    /// running daemon (control socket), or from the spool when it is stopped.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a config file (or the effective one): print it with secrets redacted, or every
    /// error with its key and origin, and every file it names that cannot be read (users,
    /// TLS, relay password). Exit 0 when `faxgate run` would start with it, 1 otherwise.
    CheckConfig {
        /// File to check (default: the one `run` would use).
        file: Option<PathBuf>,
    },
    /// Fax modem tools.
    Modem {
        /// What to do.
        #[command(subcommand)]
        command: modem::ModemCommand,
    },
    /// Send one fax through a Class 1 or Class 2.0 modem (the profile's `class`): dial NUMBER,
    /// send the pages of FILEs (TIFF).
    Send {
        /// Serial device of the modem.
        #[arg(long, value_name = "DEV")]
        modem: PathBuf,
        /// Profile, station ID, rate, ECM, trace.
        #[command(flatten)]
        call: modem::CallArgs,
        /// Dial string (digits and the V.250 modifiers `*#,W@!PT`).
        number: String,
        /// Files to send.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Answer one fax call on a Class 1 or Class 2.0 modem (the profile's `class`) and write the
    /// pages to DIR/fax.tif.
    Receive {
        /// Serial device of the modem.
        #[arg(long, value_name = "DEV")]
        modem: PathBuf,
        /// Directory for the received fax: created when missing and checked writable before
        /// the call is answered; if writing there fails all the same, the fax is kept in the
        /// data directory's `failed/` and the path printed.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Answer after this many rings.
        #[arg(long, default_value_t = 1)]
        rings: u32,
        /// Give up when no call comes within this many seconds.
        #[arg(long, default_value_t = 300)]
        wait: u64,
        /// Profile, station ID, rate, ECM, trace.
        #[command(flatten)]
        call: modem::CallArgs,
    },
    /// Convert a bilevel TIFF to TIFF-F (MH = Profile S, MR/MMR = Profile F), resampling when
    /// the resolution changes.
    Convert(tiff::ConvertArgs),
    /// Check TIFF files against RFC 3949 Profile S (or F): every violation with page and field;
    /// exit 1 on any.
    TiffCheck(tiff::CheckArgs),
    /// Look at and steer the spool: list, show, retry, cancel, purge.
    Queue(queue::QueueArgs),
    /// The onramp: `submit FILE... [--to ADDR]` queues files as received faxes.
    Onramp(onramp::OnrampArgs),
    /// Print a `smtp.users_file` line for USER; the password is read from standard input.
    HashPassword {
        /// The AUTH user name.
        user: String,
    },
    /// REST API tokens: `create USER` prints a new token once and keeps only its hash in
    /// `http.tokens_file`.
    Token {
        /// What to do.
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Show what would be faxed for an email (parts taken and skipped, options, page count or
    /// the failure the sender would be told); optionally write the pages as TIFF-F.
    OfframpCheck(offramp_check::CheckArgs),
    /// Render PDF, TIFF, pictures, text and HTML into fax pages: a TIFF-F (and PNG previews).
    Render(Box<render::RenderArgs>),
    /// First run: find the fax modems, ask for the mail domain, relay and admin address, and
    /// write a checked configuration to /etc/faxgate/faxgate.toml (or --config FILE), shown as
    /// a diff and never replaced without a yes.
    Setup(Box<setup::SetupArgs>),
    /// Write the man pages and the bash/zsh/fish completions under DIR (the Debian package's
    /// are made with `generate-docs systemd/debian`).
    GenerateDocs {
        /// Output directory.
        dir: PathBuf,
    },
}

/// Largest input file a verb reads whole (ours): a document to render or send, a TIFF to
/// check. Far above any real fax or document, and a limit all the same, so that a wrong file
/// named by mistake (a disk image, a log) is refused instead of filling memory.
pub const MAX_INPUT_BYTES: u64 = 512 << 20;

/// Parses the command line and runs the verb; the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    match cli.command {
        Command::Convert(a) => tiff::convert_main(&a),
        Command::TiffCheck(a) => tiff::tiff_check_main(&a),
        Command::HashPassword { user } => password::main(&user),
        Command::OfframpCheck(a) => offramp_check::main(&a, config),
        Command::Render(a) => render::render_main(&a),
        Command::CheckConfig { file } => check_config(file.as_deref().or(config)),
        Command::Status { json } => status::main(config, json),
        Command::Modem {
            command: modem::ModemCommand::Probe { dev, profile },
        } => report(modem::probe(&dev, profile.as_deref())),
        Command::Modem {
            command:
                modem::ModemCommand::Emulate {
                    class: _,
                    line,
                    pty,
                    call,
                },
        } => report(modem::emulate(&line, &pty, &call)),
        Command::Send {
            modem,
            call,
            number,
            files,
        } => report(modem::send(&modem, &number, &files, &call)),
        Command::Receive {
            modem,
            out,
            rings,
            wait,
            call,
        } => report(modem::receive(
            &modem,
            &out,
            &load(config).map_or_else(
                |_| config::Gateway::default().data_dir,
                |l| l.config.gateway.data_dir,
            ),
            rings,
            std::time::Duration::from_secs(wait),
            &call,
        )),
        Command::Queue(args) => queue::main(config, &args),
        Command::Token { command } => token::main(config, &command),
        Command::Onramp(args) => onramp::main(config, &args),
        Command::Run => run(config),
        Command::Setup(args) => setup::main(config, &args),
        Command::GenerateDocs { dir } => docs::main(&dir),
    }
}

/// The effective configuration: `explicit`, else the usual places, else the embedded default;
/// then the `FAXGATE_*` environment.
pub fn load(explicit: Option<&Path>) -> Result<config::Loaded, config::ConfigErrors> {
    let file = config::find_config_file(explicit);
    config::load(file.as_deref(), std::env::vars())
}

/// An error and its causes on one line, joined by `: ` (outermost first): what an operator
/// needs to act on, e.g. `cannot open /dev/ttyACM0: Permission denied (os error 13)`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    // A cause chain is finite, but a buggy `source()` could loop: bounded all the same.
    for _ in 0..64 {
        let Some(c) = cause else { break };
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// `faxgate check-config [FILE]`: the effective configuration with secrets redacted, or every
/// error with its key and origin.
fn check_config(explicit: Option<&Path>) -> ExitCode {
    match load(explicit) {
        Ok(l) => {
            let unreadable = crate::config::unreadable_files(&l.config);
            if !unreadable.is_empty() {
                eprintln!(
                    "faxgate: configuration names {} file(s) `faxgate run` cannot read:",
                    unreadable.len()
                );
                for (key, problem) in &unreadable {
                    eprintln!("  {key}: {problem}");
                }
                eprintln!("  (create them, or run `faxgate setup` to leave them out)");
                return ExitCode::FAILURE;
            }
            match &l.file {
                Some(f) => {
                    println!("# effective configuration: {} + environment", f.display())
                }
                None => {
                    println!("# effective configuration: embedded default + environment")
                }
            }
            print!("{}", l.config.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Err(errs) => {
            eprintln!("faxgate: configuration has {} error(s):", errs.0.len());
            eprintln!("{errs}");
            ExitCode::FAILURE
        }
    }
}

/// `faxgate run`: logging, the tokio runtime, then [`crate::app::run`] until shutdown.
fn run(config: Option<&Path>) -> ExitCode {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(errs) => {
            eprintln!("faxgate: configuration has {} error(s):", errs.0.len());
            eprintln!("{errs}");
            return ExitCode::FAILURE;
        }
    };
    crate::logging::init(&loaded.config.log);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faxgate: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crate::app::run(loaded.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = chain(&e);
            tracing::error!("{e}");
            eprintln!("faxgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a subcommand's text report, or its error.
fn report<E: std::error::Error>(r: Result<String, E>) -> ExitCode {
    match r {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faxgate: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn chain_joins_every_cause_outermost_first() {
        let e = Outer(Middle(std::io::Error::other("inner")));
        assert_eq!(chain(&e), "outer: middle: inner");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }

    #[test]
    fn the_verb_table_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
