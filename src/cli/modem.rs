//! `faxgate modem probe`, `faxgate send` and `faxgate receive`: thin wrappers that open a
//! modem ([`crate::fax::modem::port`]), run, and report as text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::fax::modem::port::{Modem, ModemError};
use crate::fax::modem::profile::{Profile, ProfileError};
use crate::fax::modem::session;

/// `faxgate modem …`.
#[derive(Subcommand, Debug)]
pub enum ModemCommand {
    /// Initialise the modem on DEV and print what it offers (identity, classes, speeds).
    Probe {
        /// Serial device, e.g. /dev/ttyACM0.
        dev: PathBuf,
        /// Modem profile file (default: the built-in generic Class 1 profile).
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
    },
}

/// Options of `send` and `receive`.
#[derive(clap::Args, Debug, Clone)]
pub struct CallArgs {
    /// Modem profile file (default: the built-in generic Class 1 profile).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Our station ID (TSI/CSI), up to 20 characters.
    #[arg(long, default_value = "")]
    pub local_id: String,
    /// Highest rate, bit/s.
    #[arg(long, default_value_t = 14400)]
    pub max_rate: u32,
    /// Do not use error correction (T.30 Annex A).
    #[arg(long)]
    pub no_ecm: bool,
    /// Write the call's raw trace (AT traffic and decoded frames) to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

/// Why a CLI modem command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The profile file is unusable (the operator's file).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The modem or its device failed.
    #[error(transparent)]
    Modem(#[from] ModemError),
}

/// `faxgate modem probe DEV`: initialise the modem with `profile` (the generic Class 1
/// profile when `None`) and report what it offers.
pub fn probe(dev: &Path, profile: Option<&Path>) -> Result<String, CliError> {
    let profile = match profile {
        Some(p) => Profile::load(p)?,
        None => Profile::default(),
    };
    let mut m = Modem::open(dev, profile)?;
    m.init()?;
    let info = m.probe()?;
    let mut s = String::new();
    let codes = |v: &[(crate::fax::t30::Modulation, crate::fax::t30::Training)]| {
        v.iter()
            .map(|&(m, t)| m.class1_code(t).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let _ = writeln!(s, "device: {}", dev.display());
    let _ = writeln!(s, "identity: {}", info.identity);
    let _ = writeln!(s, "classes: {}", info.classes.join(","));
    let _ = writeln!(s, "class1: {}", if info.class1() { "yes" } else { "no" });
    let _ = writeln!(
        s,
        "class2.0: {}",
        if info.class2_0() { "yes" } else { "no" }
    );
    let _ = writeln!(
        s,
        "best-class: {}",
        info.best_class().map_or("none", |c| c.name())
    );
    let _ = writeln!(s, "v21-hdlc: {}", if info.v21_hdlc { "yes" } else { "no" });
    let _ = writeln!(s, "transmit: {}", codes(&info.transmit));
    let _ = writeln!(s, "receive: {}", codes(&info.receive));
    let _ = writeln!(s, "v17: {}", if info.v17() { "yes" } else { "no" });
    let _ = writeln!(s, "max-rate: {}", info.max_rate());
    Ok(s)
}

/// Why a call from the CLI failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Profile, modem or port trouble.
    #[error(transparent)]
    Cli(#[from] CliError),
    /// An input file could not be read as pages (the file's fault).
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The received fax could not be written.
    #[error("cannot write {path}: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The call happened but did not succeed; the text is the call summary.
    #[error("the fax call failed\n{0}")]
    Failed(String),
}

impl From<ModemError> for CallError {
    fn from(e: ModemError) -> Self {
        CallError::Cli(CliError::Modem(e))
    }
}

fn open_for_call(
    dev: &Path,
    s: &CallArgs,
) -> Result<(Modem, crate::fax::t30::EngineConfig), CallError> {
    let profile = match &s.profile {
        Some(p) => Profile::load(p).map_err(CliError::from)?,
        None => Profile::default(),
    };
    let mut m = Modem::open(dev, profile)?;
    m.init()?;
    let info = m.probe()?;
    let mut cfg = crate::fax::t30::EngineConfig {
        local_id: s.local_id.clone(),
        max_bps: s.max_rate,
        ecm: !s.no_ecm,
        ..Default::default()
    };
    // Offer in DIS/DCS only what the modem can modulate (T.31 +FTM=?/+FRM=?).
    if info.max_rate() > 0 {
        cfg.max_bps = cfg.max_bps.min(info.max_rate());
    }
    // A Class 2.0 modem runs T.30 itself: it gets our ID and capabilities as +FLI/+FCC.
    m.set_station(&cfg);
    Ok((m, cfg))
}

/// Pages of the files to send. Bilevel TIFF (any compression the TIFF reader takes) for now;
/// other formats arrive with the renderer.
pub fn read_pages(files: &[PathBuf]) -> Result<Vec<crate::image::Page>, CallError> {
    use crate::image::render;
    let mut pages = Vec::new();
    for f in files {
        let bytes =
            crate::read_limit::read(f, super::MAX_INPUT_BYTES).map_err(|e| CallError::Input {
                path: f.clone(),
                message: std::io::Error::from(e).to_string(),
            })?;
        // A fax TIFF (1728-pel bilevel pages) is sent pixel for pixel; anything else — PDF,
        // pictures, text, other TIFFs — goes through the renderer, as the offramp does.
        if let Ok(p) = crate::image::tiff::read_bytes(&bytes, crate::image::tiff::Limits::default())
            && !p.is_empty()
            && p.iter().all(|pg| pg.width() == 1728)
        {
            pages.extend(p);
            continue;
        }
        let name = f.display().to_string();
        let mime = match f.extension().and_then(|e| e.to_str()) {
            Some("txt") => Some("text/plain"),
            Some("html" | "htm") => Some("text/html"),
            _ => None,
        };
        let kind = render::Kind::sniff(&bytes, mime).ok_or_else(|| CallError::Input {
            path: f.clone(),
            message: "not a TIFF, PDF, picture or text file".into(),
        })?;
        let r = render::render_part(
            &name,
            &bytes,
            kind,
            &render::Options::default(),
            // The offramp's default limits: a test call is no reason to render forever.
            &mut crate::offramp::budget::for_message(
                &crate::config::Offramp::default(),
                &crate::offramp::budget::Cancel::new(),
            ),
        )
        .map_err(|e| CallError::Input {
            path: f.clone(),
            message: e.to_string(),
        })?;
        pages.extend(r.pages);
    }
    if pages.is_empty() {
        return Err(CallError::Input {
            path: files.first().cloned().unwrap_or_default(),
            message: "no pages".into(),
        });
    }
    Ok(pages)
}

/// `faxgate send --modem DEV NUMBER FILE...`: one fax call; the summary on success.
pub fn send(
    dev: &Path,
    number: &str,
    files: &[PathBuf],
    s: &CallArgs,
) -> Result<String, CallError> {
    use crate::fax::t30::{CauseClass, Engine, pages::PagesSource};
    let pages = read_pages(files)?;
    let n = pages.len();
    let (mut m, cfg) = open_for_call(dev, s)?;
    m.clear_call();
    m.dial(number)?;
    let mut engine = Engine::sender(cfg, Box::new(PagesSource::new(vec![pages])));
    let r = session::run_call(&mut m, &mut engine);
    finish_call(&mut m, s)?;
    let mut text = session::summary(engine.report());
    let _ = writeln!(text, "pages-offered: {n}");
    r?;
    match engine.report().cause.map(|c| c.class()) {
        Some(CauseClass::Done) => Ok(text),
        _ => Err(CallError::Failed(text)),
    }
}

/// `faxgate receive --modem DEV --out DIR`: answer one call and write `DIR/fax.tif`
/// (RFC 3949 Profile S when the pages allow, else Profile F MH).
///
/// A fax is never lost to a write error: `DIR` is created and checked writable before the
/// call is answered (a caller is not kept on the line for a fax that cannot be kept), and if
/// writing `DIR/fax.tif` fails all the same (disk full, `DIR` removed), the pages are kept in
/// `failed/` of the data directory `data_dir` and the message says where.
pub fn receive(
    dev: &Path,
    out: &Path,
    data_dir: &Path,
    rings: u32,
    wait: std::time::Duration,
    s: &CallArgs,
) -> Result<String, CallError> {
    use crate::fax::t30::{Engine, pages::PagesSink};
    prepare_out(out)?;
    let (mut m, cfg) = open_for_call(dev, s)?;
    m.clear_call();
    m.wait_and_answer(rings, wait)?;
    let caller = m.caller().clone();
    let sink = PagesSink::new();
    let pages = sink.pages();
    let mut engine = Engine::receiver(cfg, Box::new(sink));
    let r = session::run_call(&mut m, &mut engine);
    finish_call(&mut m, s)?;
    let mut text = session::summary(engine.report());
    let _ = writeln!(text, "caller: {}", caller.number.as_deref().unwrap_or(""));
    let _ = writeln!(text, "did: {}", caller.did.as_deref().unwrap_or(""));
    let received: Vec<crate::image::Page> = pages
        .lock()
        .map(|v| v.iter().map(|p| p.page.clone()).collect())
        .unwrap_or_default();
    if !received.is_empty() {
        let path = out.join("fax.tif");
        match keep_received(&path, data_dir, &received) {
            Kept::Written => {
                let _ = writeln!(text, "file: {}", path.display());
            }
            Kept::Failed { error, kept } => {
                let _ = writeln!(text, "file: {}", kept.display());
                return Err(CallError::Output {
                    path,
                    message: format!("{error}; the fax is kept in {}\n{text}", kept.display()),
                });
            }
            Kept::Lost { error, failed } => {
                return Err(CallError::Output {
                    path,
                    message: format!(
                        "{error}; it could not be kept in {} either ({failed})\n{text}",
                        data_dir.join(FAILED_DIR).display()
                    ),
                });
            }
        }
    }
    r?;
    if received.is_empty() {
        return Err(CallError::Failed(text));
    }
    Ok(text)
}

/// Where in the data directory a received fax that could not be written is kept.
pub const FAILED_DIR: &str = "failed";

/// Creates `out` (and its parents) and checks that a file can be made in it, before a call
/// is answered.
fn prepare_out(out: &Path) -> Result<(), CallError> {
    let err = |e: std::io::Error| CallError::Output {
        path: out.to_path_buf(),
        message: format!("{e} (checked before answering: no call was taken)"),
    };
    crate::private_fs::create_dir_all(out).map_err(err)?;
    let probe = out.join(format!(".faxgate-write-check-{}", std::process::id()));
    crate::private_fs::options()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

/// What became of the received pages.
#[derive(Debug)]
enum Kept {
    /// In the file asked for.
    Written,
    /// Not there (`error`), but in `kept`.
    Failed { error: String, kept: PathBuf },
    /// Neither there nor in the data directory's `failed/`.
    Lost { error: String, failed: String },
}

/// Writes `pages` to `path`, else into `data_dir/failed/` under a name of its own.
fn keep_received(path: &Path, data_dir: &Path, pages: &[crate::image::Page]) -> Kept {
    let error = match write_tiff(path, pages) {
        Ok(()) => return Kept::Written,
        Err(e) => e.to_string(),
    };
    let dir = data_dir.join(FAILED_DIR);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let kept = dir.join(format!("received-{stamp}-{}.tif", std::process::id()));
    match crate::private_fs::create_dir_all(&dir)
        .map_err(|e| CallError::Output {
            path: dir.clone(),
            message: e.to_string(),
        })
        .and_then(|()| write_tiff(&kept, pages))
    {
        Ok(()) => Kept::Failed { error, kept },
        Err(e) => Kept::Lost {
            error,
            failed: e.to_string(),
        },
    }
}

/// After a call: reset the modem, keep the trace if asked.
fn finish_call(m: &mut Modem, s: &CallArgs) -> Result<(), CallError> {
    let _ = m.reset();
    if let Some(path) = &s.trace {
        std::fs::write(path, m.trace.to_text()).map_err(|e| CallError::Output {
            path: path.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

fn write_tiff(path: &Path, pages: &[crate::image::Page]) -> Result<(), CallError> {
    use crate::image::codec::Coding;
    use crate::image::tiff::{Profile as TiffProfile, Writer};
    let err = |e: String| CallError::Output {
        path: path.to_path_buf(),
        message: e,
    };
    let write = |profile: TiffProfile| -> Result<(), String> {
        let tmp = path.with_extension("tif.part");
        let f = crate::private_fs::create(&tmp).map_err(|e| e.to_string())?;
        let mut w = Writer::new(std::io::BufWriter::new(f), profile).map_err(|e| e.to_string())?;
        for p in pages {
            w.write_page(p).map_err(|e| e.to_string())?;
        }
        let f = w.finish().map_err(|e| e.to_string())?;
        let f = f.into_inner().map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    };
    // Profile S needs 1728-wide pages at 98/196 lpi; anything else goes out as Profile F.
    write(TiffProfile::S)
        .or_else(|_| write(TiffProfile::F(Coding::Mh)))
        .map_err(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fax_that_cannot_be_written_is_kept_in_failed() {
        let d = tempfile::tempdir().unwrap();
        let mut page = Page::new(1728, 20, Resolution::FINE).unwrap();
        page.set(5, 5, true);
        // The output's parent is a file: even root cannot write there.
        std::fs::write(d.path().join("afile"), b"x").unwrap();
        let bad = d.path().join("afile/fax.tif");
        let data = d.path().join("data");
        let Kept::Failed { error, kept } = keep_received(&bad, &data, &[page.clone()]) else {
            panic!("not kept")
        };
        assert!(error.contains("afile"), "{error}");
        assert!(
            kept.starts_with(data.join(FAILED_DIR)),
            "{}",
            kept.display()
        );
        let back =
            crate::image::tiff::read_bytes(&std::fs::read(&kept).unwrap(), Default::default())
                .unwrap();
        assert_eq!(back, vec![page.clone()]);
        // A data directory that cannot hold it either: said, not hidden.
        let r = keep_received(&bad, &d.path().join("afile/data"), &[page]);
        assert!(matches!(r, Kept::Lost { .. }), "{r:?}");
    }

    #[test]
    fn the_output_directory_is_made_and_checked_before_answering() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("not/yet/there");
        prepare_out(&out).unwrap();
        assert!(out.is_dir());
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "probe removed");
        std::fs::write(d.path().join("afile"), b"x").unwrap();
        let e = prepare_out(&d.path().join("afile/out")).unwrap_err();
        assert!(e.to_string().contains("no call was taken"), "{e}");
    }

    use super::*;
    use crate::image::{Page, Resolution};

    #[test]
    fn read_pages_keeps_fax_tiffs_exact_and_renders_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let mut page = Page::new(1728, 40, Resolution::FINE).unwrap();
        for x in (0..1728).step_by(3) {
            page.set(x, 7, true);
        }
        let mut tif = std::io::Cursor::new(Vec::new());
        let mut w =
            crate::image::tiff::Writer::new(&mut tif, crate::image::tiff::Profile::S).unwrap();
        w.write_page(&page).unwrap();
        w.finish().unwrap();
        let tif_path = d.path().join("fax.tif");
        std::fs::write(&tif_path, tif.into_inner()).unwrap();
        let txt_path = d.path().join("note.txt");
        std::fs::write(&txt_path, "Hello fax\nsecond line\n").unwrap();

        let pages = read_pages(&[tif_path, txt_path]).unwrap();
        assert!(pages.len() >= 2);
        assert_eq!(pages[0], page, "a fax TIFF is sent pixel for pixel");
        assert_eq!(pages[1].width(), 1728);
        assert!(pages[1].black_pixels() > 0, "the text was rendered");

        let junk = d.path().join("junk.bin");
        std::fs::write(&junk, [0u8, 1, 2, 3]).unwrap();
        assert!(matches!(read_pages(&[junk]), Err(CallError::Input { .. })));
    }
}
