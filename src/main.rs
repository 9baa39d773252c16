//! The `faxgate` command line. Library errors become `anyhow` reports here and only here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use faxgate::config;

/// T.37 store-and-forward fax ⇄ email gateway.
#[derive(Parser, Debug)]
#[command(name = "faxgate", version, about, long_about = None)]
struct Cli {
    /// Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the
    /// embedded default).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    /// error with its key and origin. Exit 0 when valid, 1 otherwise.
    CheckConfig {
        /// File to check (default: the one `run` would use).
        file: Option<PathBuf>,
    },
    /// Fax modem tools.
    Modem {
        #[command(subcommand)]
        command: ModemCommand,
    },
    /// Send one fax through a Class 1 modem: dial NUMBER, send the pages of FILEs (TIFF).
    Send {
        /// Serial device of the modem.
        #[arg(long, value_name = "DEV")]
        modem: PathBuf,
        #[command(flatten)]
        call: CallArgs,
        /// Dial string (digits and the V.250 modifiers `*#,W@!PT`).
        number: String,
        /// Files to send.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Answer one fax call on a Class 1 modem and write the pages to DIR/fax.tif.
    Receive {
        /// Serial device of the modem.
        #[arg(long, value_name = "DEV")]
        modem: PathBuf,
        /// Directory for the received fax.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Answer after this many rings.
        #[arg(long, default_value_t = 1)]
        rings: u32,
        /// Give up when no call comes within this many seconds.
        #[arg(long, default_value_t = 300)]
        wait: u64,
        #[command(flatten)]
        call: CallArgs,
    },
    /// Convert a bilevel TIFF to TIFF-F (MH = Profile S, MR/MMR = Profile F), resampling when
    /// the resolution changes.
    Convert(faxgate::image_tools::ConvertArgs),
    /// Check TIFF files against RFC 3949 Profile S (or F): every violation with page and field;
    /// exit 1 on any.
    TiffCheck(faxgate::image_tools::CheckArgs),
    /// Look at and steer the spool: list, show, retry, cancel, purge.
    Queue(faxgate::spool::cli::QueueArgs),
    /// The onramp: `submit FILE... [--to ADDR]` queues files as received faxes.
    Onramp(faxgate::onramp::cli::OnrampArgs),
    /// Print a `smtp.users_file` line for USER; the password is read from standard input.
    HashPassword {
        /// The AUTH user name.
        user: String,
    },
    /// Show what would be faxed for an email (parts taken and skipped, options, page count or
    /// the failure the sender would be told); optionally write the pages as TIFF-F.
    OfframpCheck(faxgate::offramp::cli::CheckArgs),
    /// Render PDF, TIFF, pictures, text and HTML into fax pages: a TIFF-F (and PNG previews).
    Render(Box<faxgate::render_cmd::RenderArgs>),
}

/// Options of `send` and `receive`.
#[derive(clap::Args, Debug)]
struct CallArgs {
    /// Modem profile file (default: the built-in generic Class 1 profile).
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Our station ID (TSI/CSI), up to 20 characters.
    #[arg(long, default_value = "")]
    local_id: String,
    /// Highest rate, bit/s.
    #[arg(long, default_value_t = 14400)]
    max_rate: u32,
    /// Do not use error correction (T.30 Annex A).
    #[arg(long)]
    no_ecm: bool,
    /// Write the call's raw trace (AT traffic and decoded frames) to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

impl CallArgs {
    fn settings(&self) -> faxgate::fax::modem::cli::CallSettings {
        faxgate::fax::modem::cli::CallSettings {
            profile: self.profile.clone(),
            local_id: self.local_id.clone(),
            max_rate: self.max_rate,
            ecm: !self.no_ecm,
            trace: self.trace.clone(),
        }
    }
}

/// `faxgate modem …`.
#[derive(Subcommand, Debug)]
enum ModemCommand {
    /// Initialise the modem on DEV and print what it offers (identity, classes, speeds).
    Probe {
        /// Serial device, e.g. /dev/ttyACM0.
        dev: PathBuf,
        /// Modem profile file (default: the built-in generic Class 1 profile).
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
    },
}

fn load(explicit: Option<&std::path::Path>) -> Result<config::Loaded, config::ConfigErrors> {
    let file = config::find_config_file(explicit);
    config::load(file.as_deref(), std::env::vars())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Convert(a) => faxgate::image_tools::convert_main(&a),
        Command::TiffCheck(a) => faxgate::image_tools::tiff_check_main(&a),
        Command::HashPassword { user } => faxgate::smtp::auth::hash_password_main(&user),
        Command::OfframpCheck(a) => faxgate::offramp::cli::main(&a, cli.config.as_deref()),
        Command::Render(a) => faxgate::render_cmd::render_main(&a),
        Command::CheckConfig { file } => {
            let explicit = file.or(cli.config);
            match load(explicit.as_deref()) {
                Ok(l) => {
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
        Command::Status { json } => match load(cli.config.as_deref()) {
            Ok(l) => faxgate::app::control::status_main(&l.config, json),
            Err(errs) => {
                eprintln!(
                    "faxgate: configuration has {} error(s):\n{errs}",
                    errs.0.len()
                );
                ExitCode::FAILURE
            }
        },
        Command::Modem {
            command: ModemCommand::Probe { dev, profile },
        } => report(faxgate::fax::modem::cli::probe(&dev, profile.as_deref())),
        Command::Send {
            modem,
            call,
            number,
            files,
        } => report(faxgate::fax::modem::cli::send(
            &modem,
            &number,
            &files,
            &call.settings(),
        )),
        Command::Receive {
            modem,
            out,
            rings,
            wait,
            call,
        } => report(faxgate::fax::modem::cli::receive(
            &modem,
            &out,
            rings,
            std::time::Duration::from_secs(wait),
            &call.settings(),
        )),
        Command::Queue(args) => queue(cli.config.as_deref(), &args),
        Command::Onramp(args) => match load(cli.config.as_deref()) {
            Ok(l) => faxgate::onramp::cli::main(&l.config, &args),
            Err(errs) => {
                eprintln!(
                    "faxgate: configuration has {} error(s):\n{errs}",
                    errs.0.len()
                );
                ExitCode::FAILURE
            }
        },
        Command::Run => {
            let loaded = match load(cli.config.as_deref()) {
                Ok(l) => l,
                Err(errs) => {
                    eprintln!("faxgate: configuration has {} error(s):", errs.0.len());
                    eprintln!("{errs}");
                    return ExitCode::FAILURE;
                }
            };
            faxgate::logging::init(&loaded.config.log);
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
            match rt.block_on(faxgate::app::run(loaded.config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let e = anyhow::Error::from(e);
                    tracing::error!("{e:#}");
                    eprintln!("faxgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Print a subcommand's text report, or its error.
fn report<E: std::error::Error + Send + Sync + 'static>(r: Result<String, E>) -> ExitCode {
    match r.map_err(anyhow::Error::from) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faxgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `faxgate queue …`: load the config (for the spool dir and retention), then hand over.
fn queue(config: Option<&std::path::Path>, args: &faxgate::spool::cli::QueueArgs) -> ExitCode {
    let cfg = match load(config) {
        Ok(l) => l.config,
        Err(errs) => {
            eprintln!(
                "faxgate: configuration has {} error(s):\n{errs}",
                errs.0.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let dir = args
        .spool
        .clone()
        .unwrap_or_else(|| faxgate::spool::spool_dir(&cfg));
    let opts = faxgate::spool::SpoolOptions::from_config(&cfg);
    let sock = faxgate::app::control::socket_path(&cfg);
    let tell = |id: &faxgate::spool::JobId| faxgate::app::control::tell_changed(&sock, id);
    match faxgate::spool::cli::run(&dir, opts, &args.command, &mut std::io::stdout(), &tell) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("faxgate: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
