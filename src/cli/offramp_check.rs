//! `faxgate offramp-check FILE.eml [--out FAX.tif]`: what the gateway would fax for an email,
//! without sending anything. The I/O shell over [`crate::offramp::mime`],
//! [`crate::offramp::options`] and [`crate::offramp::document`]: it reads the file, prints the parts taken and skipped, the sender's
//! options and the page count (or the cause the sender would be told), and can write the pages
//! as an RFC 3949 TIFF-F (Profile S at standard or fine, Profile F MMR otherwise).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::image::codec::Coding;
use crate::image::tiff::{Profile, Writer};
use crate::read_limit;

use crate::offramp::document::{self, Stamp};
use crate::offramp::{budget, causes, mime, options};

/// Arguments of `faxgate offramp-check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The email (RFC 5322, as it would arrive over SMTP).
    pub file: PathBuf,
    /// Write the fax pages to this TIFF file.
    #[arg(long, value_name = "FAX.tif")]
    pub out: Option<PathBuf>,
}

/// `faxgate offramp-check`: load the effective configuration (`--config`, else the usual
/// places), then [`run`].
pub fn main(args: &CheckArgs, config: Option<&std::path::Path>) -> ExitCode {
    match super::load(config) {
        Ok(l) => run(args, &l.config),
        Err(errs) => {
            eprintln!("faxgate: configuration has {} error(s):", errs.0.len());
            eprintln!("{errs}");
            ExitCode::from(2)
        }
    }
}

/// Run `offramp-check` with the configuration `cfg`. Exit 0 when the message can be faxed,
/// 1 when the sender would get a failure report, 2 on a local error.
pub fn run(args: &CheckArgs, cfg: &Config) -> ExitCode {
    // The daemon's own ceiling for a stored message.
    let raw = match read_limit::read(&args.file, crate::offramp::jobs::MAX_MESSAGE_BYTES) {
        Ok(raw) => raw,
        Err(e) => {
            let e = std::io::Error::from(e);
            eprintln!("faxgate: cannot read {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    match mime::extract(&raw, &mime::Policy::from_config(&cfg.offramp)) {
        Ok(x) => {
            for p in &x.parts {
                println!("take  {} as {} ({:?})", p.name, p.kind.label(), p.role);
            }
            for s in &x.skipped {
                println!("skip  {}: {}", s.name, s.reason.words());
            }
        }
        Err(e) => println!("error {e}"),
    }
    let headers = mime::headers(&raw);
    let opts = options::parse(
        headers.subject.as_deref(),
        headers.fax_resolution.as_deref(),
        options::Defaults::from(&cfg.offramp),
    );
    println!(
        "options: resolution {:?}, cover page {}, subject {:?}",
        opts.resolution, opts.cover_page, opts.subject
    );
    let stamp = Stamp {
        when: Some(chrono::Local::now().naive_local()),
        station: cfg.gateway.hostname.clone(),
        recipient: "(recipient)".into(),
    };
    // The daemon's limits, so that the check says what the gateway would do.
    let doc_opts = document::Options::from(&cfg.offramp);
    let mut budget = budget::for_message(doc_opts.budget, &budget::Cancel::new());
    let doc = match document::build(&raw, &doc_opts, &opts, &stamp, &mut budget) {
        Ok(d) => d,
        Err(cause) => {
            println!("FAIL  {}", cause.words());
            println!(
                "      status {} ({})",
                cause.status(causes::Action::Failed),
                cause.keyword()
            );
            return ExitCode::FAILURE;
        }
    };
    for n in &doc.notes {
        println!("note  {n}");
    }
    println!("pages: {}", doc.pages.len());
    if let Some(out) = &args.out {
        let profile = match opts.resolution {
            crate::config::Resolution::Superfine => Profile::F(Coding::Mmr),
            _ => Profile::S,
        };
        let written = std::fs::File::create(out)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                let mut w =
                    Writer::new(std::io::BufWriter::new(f), profile).map_err(|e| e.to_string())?;
                for p in &doc.pages {
                    w.write_page(p).map_err(|e| e.to_string())?;
                }
                let mut f = w.finish().map_err(|e| e.to_string())?;
                std::io::Write::flush(&mut f).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            eprintln!("faxgate: cannot write {}: {e}", out.display());
            return ExitCode::from(2);
        }
        println!("wrote {}", out.display());
    }
    ExitCode::SUCCESS
}
