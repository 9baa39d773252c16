//! `faxgate modem probe`, `faxgate send` and `faxgate receive`: thin wrappers that open a
//! modem ([`crate::fax::modem::port`]), run, and report as text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::fax::modem::class2::HangupCode;
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
    /// Be a Class 2.0 (T.32) fax modem on a pseudo-terminal linked at PATH, carrying its
    /// calls through the Class 1 modem on DEV with faxgate's T.30 engine. Host software
    /// (mgetty's sendfax, HylaFAX, faxgate with a Class 2.0 profile) opens PATH as its modem
    /// and sends (ATD, +FDT) or receives: DEV's rings are reported as RING and answered on
    /// ATA (or after ATS0=n rings) when the host has set AT+FCR=1. Runs until killed.
    Emulate {
        /// Fax class to offer: only 2.0.
        #[arg(long, value_name = "CLASS", value_parser = ["2.0"])]
        class: String,
        /// The Class 1 modem that carries the calls, e.g. /dev/ttyACM0.
        #[arg(long, value_name = "DEV")]
        line: PathBuf,
        /// Where to link the pseudo-terminal (replaced if it exists).
        #[arg(long, value_name = "PATH")]
        pty: PathBuf,
        /// Options of the Class 1 calls.
        #[command(flatten)]
        call: CallArgs,
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

/// `faxgate modem emulate --class 2.0 --line DEV --pty PATH`: the I/O shell around
/// [`crate::fax::modem::emulate::Dce`]. The pty's master is polled every 100 ms (10 ms while
/// received page data waits for the host). One line thread owns the Class 1 modem: while no
/// call is up it watches the line for `RING`, and it carries each call the DCE asks for (a
/// blocking Class 1 call, [`session::run_call_observed`]), talking to the DCE through
/// channels. Runs until the process is killed or the pty fails.
pub fn emulate(line: &Path, pty: &Path, s: &CallArgs) -> Result<String, CallError> {
    use crate::fax::modem::emulate::{CallEvent, Dce, Request};
    use serialport::SerialPort as _;
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};

    let port_err = |e: std::io::Error| {
        CallError::from(ModemError::Port(crate::fax::modem::port::PortError::Open {
            path: pty.to_path_buf(),
            message: e.to_string(),
        }))
    };
    let (mut master, slave) =
        serialport::TTYPort::pair().map_err(|e| port_err(std::io::Error::other(e.to_string())))?;
    let name = slave
        .name()
        .ok_or_else(|| port_err(std::io::Error::other("pty without a name")))?;
    // The host opens the slave by name; ours would keep it busy (TIOCEXCL).
    drop(slave);
    let _ = std::fs::remove_file(pty);
    std::os::unix::fs::symlink(&name, pty).map_err(port_err)?;
    let slow = std::time::Duration::from_millis(100);
    let fast = std::time::Duration::from_millis(10);
    master
        .set_timeout(slow)
        .map_err(|e| port_err(std::io::Error::other(e.to_string())))?;
    eprintln!("faxgate: Class 2.0 modem at {} ({name})", pty.display());

    let mut dce = Dce::new();
    let (ev_tx, ev_rx) = mpsc::channel::<CallEvent>();
    let (cmd_tx, cmd_rx) = mpsc::channel::<LineCommand>();
    let abort = Arc::new(AtomicBool::new(false));
    let thread = {
        let (line, args, abort) = (line.to_path_buf(), s.clone(), abort.clone());
        std::thread::spawn(move || line_thread(&line, &args, &cmd_rx, &ev_tx, &abort))
    };
    let mut pages: Option<mpsc::Sender<(Vec<u8>, crate::fax::modem::class2::PostPage)>> = None;
    let mut releases: Option<mpsc::Sender<crate::fax::modem::class2::PageResponse>> = None;
    let mut timeout = slow;
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(n) => dce.on_input(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            // EIO: no host has the pty open; wait for one.
            Err(_) => std::thread::sleep(slow),
        }
        while let Ok(ev) = ev_rx.try_recv() {
            dce.on_call(ev);
        }
        while let Some(r) = dce.poll_request() {
            let call = Station {
                local_id: dce.local_id().to_string(),
                caps: dce.capabilities(),
            };
            let sent = match r {
                Request::Dial(number) => {
                    abort.store(false, Ordering::Relaxed);
                    let (tx, rx) = mpsc::channel();
                    pages = Some(tx);
                    cmd_tx.send(LineCommand::Dial {
                        number,
                        call,
                        pages: rx,
                    })
                }
                Request::Answer => {
                    abort.store(false, Ordering::Relaxed);
                    let (tx, rx) = mpsc::channel();
                    releases = Some(tx);
                    cmd_tx.send(LineCommand::Answer { call, releases: rx })
                }
                Request::SendPage { data, post } => {
                    if let Some(p) = &pages {
                        let _ = p.send((data, post));
                    }
                    Ok(())
                }
                Request::Release(answer) => {
                    if let Some(r) = &releases {
                        let _ = r.send(answer);
                    }
                    Ok(())
                }
                Request::HangUp => {
                    abort.store(true, Ordering::Relaxed);
                    Ok(())
                }
            };
            if sent.is_err() || thread.is_finished() {
                // The line thread returns only when this loop drops its command channel: it
                // ended by panicking, and nothing carries calls any more.
                return Err(CallError::Failed("the line thread ended".into()));
            }
        }
        let out = dce.take_output();
        if !out.is_empty() {
            // A host that went away loses its answers; the next one starts afresh.
            let _ = master.write_all(&out);
        }
        let want = if dce.has_page_data() { fast } else { slow };
        if want != timeout && master.set_timeout(want).is_ok() {
            timeout = want;
        }
    }
}

/// The host's `+FLI` and `+FCC`/`+FIS` at the moment it dialled or answered.
struct Station {
    local_id: String,
    caps: crate::fax::modem::class2::SessionParams,
}

/// What the pty side asks of the line thread.
enum LineCommand {
    /// Dial out; pages come from the host one at a time.
    Dial {
        number: String,
        call: Station,
        pages: std::sync::mpsc::Receiver<(Vec<u8>, crate::fax::modem::class2::PostPage)>,
    },
    /// Answer the ringing line; the host's `+FDR` releases each page's answer.
    Answer {
        call: Station,
        releases: std::sync::mpsc::Receiver<crate::fax::modem::class2::PageResponse>,
    },
}

/// The line goes quiet this long after a `RING` before the DCE's ring count starts again
/// (ours; V.250 §6.3.8 counts the rings of one call, and a ring cadence repeats every 6 s).
const RING_GAP: std::time::Duration = std::time::Duration::from_secs(8);

/// How long `ATA` waits for the line to ring when the host answers before any `RING` (ours).
const ANSWER_RING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The line thread: owns the Class 1 modem, reports rings while idle, carries the calls.
fn line_thread(
    line: &Path,
    args: &CallArgs,
    commands: &std::sync::mpsc::Receiver<LineCommand>,
    ev: &std::sync::mpsc::Sender<crate::fax::modem::emulate::CallEvent>,
    abort: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use crate::fax::modem::emulate::{CallEvent, DialFailure};
    use std::sync::mpsc::TryRecvError;
    use std::time::{Duration, Instant};

    let mut modem: Option<(Modem, crate::fax::t30::EngineConfig)> = None;
    let mut last_ring: Option<Instant> = None;
    let mut warned = false;
    loop {
        let open = |modem: &mut Option<_>, warned: &mut bool| {
            if modem.is_none() {
                match open_for_call(line, args) {
                    Ok(v) => {
                        *modem = Some(v);
                        *warned = false;
                    }
                    Err(e) if !*warned => {
                        tracing::warn!(error = %e, "emulate: the line modem cannot be used");
                        *warned = true;
                    }
                    Err(_) => {}
                }
            }
        };
        match commands.try_recv() {
            Ok(cmd) => {
                open(&mut modem, &mut warned);
                let Some((mut m, cfg)) = modem.take() else {
                    let _ = ev.send(match cmd {
                        LineCommand::Dial { .. } => CallEvent::DialFailed(DialFailure::NoDialtone),
                        // T.32 Table 23: 10, unspecified phase A error.
                        LineCommand::Answer { .. } => CallEvent::Ended(HangupCode(0x10)),
                    });
                    continue;
                };
                match cmd {
                    LineCommand::Dial {
                        number,
                        call,
                        pages,
                    } => emulated_call(&mut m, cfg.clone(), &number, &call, pages, abort, ev),
                    LineCommand::Answer { call, releases } => {
                        answered_call(&mut m, cfg.clone(), &call, releases, abort, ev)
                    }
                }
                last_ring = None;
                // Back to watching the line; a modem that does not come back is opened again.
                if m.reset().is_ok() {
                    m.clear_call();
                    modem = Some((m, cfg));
                }
                continue;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => return,
        }
        open(&mut modem, &mut warned);
        let Some((m, _)) = modem.as_mut() else {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        let seen = m.rings();
        match m.wait_for_rings(seen + 1, Duration::from_millis(200)) {
            Ok(()) => {
                last_ring = Some(Instant::now());
                let _ = ev.send(CallEvent::Ring);
            }
            Err(ModemError::NoCall(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "emulate: the line modem failed; opening it again");
                modem = None;
            }
        }
        if last_ring.is_some_and(|t| t.elapsed() > RING_GAP) {
            last_ring = None;
            if let Some((m, _)) = modem.as_mut() {
                m.clear_call();
            }
            let _ = ev.send(CallEvent::RingingStopped);
        }
    }
}

/// The host's `+FLI` and `+FCC`/`+FIS` bound what the engine offers: the host takes (or
/// codes) the pages, so nothing it cannot handle may be negotiated.
fn station_config(
    mut cfg: crate::fax::t30::EngineConfig,
    call: &Station,
) -> crate::fax::t30::EngineConfig {
    use crate::fax::t30::Coding;
    if !call.local_id.is_empty() {
        cfg.local_id = call.local_id.clone();
    }
    let caps = call.caps;
    cfg.max_bps = cfg.max_bps.min((u32::from(caps.br) + 1) * 2400);
    cfg.ecm = cfg.ecm && caps.ec != 0;
    cfg.max_coding = match caps.df {
        0 => Coding::Mh,
        1 => Coding::Mr,
        _ => Coding::Mmr,
    };
    cfg
}

/// Longest the engine holds a received page's answer for the host's `+FDR` (ours): the sender
/// repeats its post-page message after T4 = 3 s (T.30 §5.2), and an answer later than that
/// would collide with the repeat; past it, the DCE's own verdict goes out.
const HOST_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(2500);

/// One answered call: the engine as the called station; pages go to the host as they come.
fn answered_call(
    m: &mut Modem,
    cfg: crate::fax::t30::EngineConfig,
    call: &Station,
    releases: std::sync::mpsc::Receiver<crate::fax::modem::class2::PageResponse>,
    abort: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ev: &std::sync::mpsc::Sender<crate::fax::modem::emulate::CallEvent>,
) {
    use crate::fax::modem::class1::LineCause;
    use crate::fax::modem::emulate::{CallEvent, hangup_for, params_of_dcs};
    use crate::fax::t30::Engine;

    let cfg = station_config(cfg, call);
    if let Err(e) = m.wait_and_answer(1, ANSWER_RING_WAIT) {
        tracing::warn!(error = %e, "emulate: the call could not be answered");
        // T.32 Table 23: 01 ring without a fax handshake, 05 answered without one, 10 other.
        let _ = ev.send(CallEvent::Ended(HangupCode(match e {
            ModemError::NoCall(_) => 0x01,
            ModemError::Call(LineCause::NoCarrier) => 0x05,
            _ => 0x10,
        })));
        return;
    }
    let sink = HostSink {
        decoder: crate::fax::t30::pages::PagesSink::storing(Box::new(|_| Ok(()))),
        quality: Default::default(),
        releases,
        ev: ev.clone(),
        abort: abort.clone(),
    };
    let mut engine = Engine::receiver(cfg, Box::new(sink));
    let mut last = None;
    let r = session::run_call_observed(m, &mut engine, &mut |e| {
        // Each new DCS (the first, after EOM, after a fallback) goes to the host as +FCS.
        if let Some(d) = e.dcs() {
            let p = params_of_dcs(d);
            if last != Some(p) {
                last = Some(p);
                let _ = ev.send(CallEvent::Negotiated {
                    remote_id: e.report().remote_id.clone(),
                    session: p,
                });
            }
        }
    });
    let _ = m.hangup();
    if let Err(e) = r {
        tracing::warn!(error = %e, "emulate: the call ended on a modem error");
    }
    let _ = ev.send(CallEvent::Ended(hangup_for(engine.report().cause)));
}

/// The engine's sink on an answered call: each page's data goes to the host as it comes (the
/// DCE stuffs and paces it); the page is decoded too, for the DCE's own copy-quality verdict
/// (T.32 +FCQ), which the host's `+FDR` releases or its `+FPS=n` overrules.
struct HostSink {
    decoder: crate::fax::t30::pages::PagesSink,
    quality: crate::fax::t30::page::PageQuality,
    releases: std::sync::mpsc::Receiver<crate::fax::modem::class2::PageResponse>,
    ev: std::sync::mpsc::Sender<crate::fax::modem::emulate::CallEvent>,
    abort: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl crate::fax::t30::page::PageSink for HostSink {
    fn start_page(&mut self, coding: &crate::fax::t30::page::PageCoding) {
        self.decoder.start_page(coding);
    }

    fn data(&mut self, bytes: &[u8]) {
        use crate::fax::modem::emulate::CallEvent;
        self.decoder.data(bytes);
        let _ = self.ev.send(CallEvent::PageData(bytes.to_vec()));
    }

    fn end_page(&mut self) -> crate::fax::t30::page::PageQuality {
        self.quality = self.decoder.end_page();
        self.quality
    }

    fn review(
        &mut self,
        post: crate::fax::t30::Fcf,
        verdict: crate::fax::t30::page::Verdict,
    ) -> crate::fax::t30::page::Verdict {
        use crate::fax::modem::class2::{PageResponse, PageStatus, PostPage};
        use crate::fax::modem::emulate::CallEvent;
        use crate::fax::t30::Fcf;
        use crate::fax::t30::page::Verdict;
        use std::sync::mpsc::RecvTimeoutError;
        let post = match post {
            Fcf::Mps | Fcf::PriMps => PostPage::Mps,
            Fcf::Eom | Fcf::PriEom => PostPage::Eom,
            _ => PostPage::Eop,
        };
        let response = match verdict {
            Verdict::Good => PageResponse::Mcf,
            Verdict::Retrain => PageResponse::Rtp,
            Verdict::Bad => PageResponse::Rtn,
        };
        // A release that came too late for the page before is not this page's.
        while self.releases.try_recv().is_ok() {}
        let _ = self.ev.send(CallEvent::PageEnd {
            post,
            status: PageStatus {
                response,
                lines: Some(self.quality.rows),
                bad_lines: Some(self.quality.bad_rows),
            },
        });
        let end = std::time::Instant::now() + HOST_RELEASE_WAIT;
        // Bounded: at most HOST_RELEASE_WAIT in 100 ms steps.
        while std::time::Instant::now() < end
            && !self.abort.load(std::sync::atomic::Ordering::Relaxed)
        {
            match self
                .releases
                .recv_timeout(std::time::Duration::from_millis(100))
            {
                Ok(PageResponse::Mcf | PageResponse::Pip) => return Verdict::Good,
                Ok(PageResponse::Rtp) => return Verdict::Retrain,
                Ok(PageResponse::Rtn | PageResponse::Pin) => return Verdict::Bad,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.abort.load(std::sync::atomic::Ordering::Relaxed) {
            return Verdict::Bad;
        }
        verdict
    }

    fn finish_page(&mut self, accepted: bool) -> Result<(), crate::fax::t30::page::SinkError> {
        if self.abort.load(std::sync::atomic::Ordering::Relaxed) {
            // The host hung up (ATH, +FKS, <CAN>): the engine ends the call (DCN).
            return Err(crate::fax::t30::page::SinkError("the host hung up".into()));
        }
        self.decoder.finish_page(accepted)
    }
}

fn emulated_call(
    m: &mut Modem,
    cfg: crate::fax::t30::EngineConfig,
    number: &str,
    call: &Station,
    pages: std::sync::mpsc::Receiver<(Vec<u8>, crate::fax::modem::class2::PostPage)>,
    abort: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ev: &std::sync::mpsc::Sender<crate::fax::modem::emulate::CallEvent>,
) {
    use crate::fax::modem::class1::LineCause;
    use crate::fax::modem::emulate::{
        CallEvent, DialFailure, hangup_for, params_of_dcs, params_of_dis,
    };
    use crate::fax::t30::{Engine, report::PageOutcome};
    use std::sync::{Arc, Mutex};

    let caps = call.caps;
    let cfg = station_config(cfg, call);
    let abort = abort.clone();
    m.clear_call();
    if let Err(e) = m.dial(number) {
        let _ = ev.send(CallEvent::DialFailed(match e {
            ModemError::Call(LineCause::Busy) => DialFailure::Busy,
            ModemError::Call(LineCause::NoAnswer) => DialFailure::NoAnswer,
            ModemError::Call(LineCause::NoDialtone) => DialFailure::NoDialtone,
            _ => DialFailure::NoCarrier,
        }));
        return;
    }
    let dcs = Arc::new(Mutex::new(None));
    let state = Arc::new(Mutex::new(HostPagesState::default()));
    let source = HostPages {
        state: state.clone(),
        pages: Mutex::new(pages),
        ev: ev.clone(),
        dcs: dcs.clone(),
        abort,
        fine: caps.vr & 1 == 1,
    };
    let mut engine = Engine::sender(cfg, Box::new(source));
    let mut connected = false;
    let observed = state.clone();
    let r = session::run_call_observed(m, &mut engine, &mut |e| {
        if !connected && let Some(c) = e.remote_capabilities() {
            connected = true;
            let _ = ev.send(CallEvent::Connected {
                remote_id: e.report().remote_id.clone(),
                remote: params_of_dis(c),
            });
        }
        if let (Some(d), Ok(mut slot)) = (e.dcs(), dcs.lock()) {
            *slot = Some(params_of_dcs(d));
        }
        if let Ok(mut st) = observed.lock() {
            st.recorded = e.report().pages.len();
            st.last_outcome = e.report().pages.last().map(|p| p.outcome);
        }
    });
    let _ = m.hangup();
    if let Err(e) = r {
        tracing::warn!(error = %e, "emulate: the call ended on a modem error");
    }
    let report = engine.report();
    // The last page's answer (earlier ones went out as the next page began).
    let unreported = state
        .lock()
        .map(|s| s.got.len() > s.reported)
        .unwrap_or(false);
    if unreported && let Some(p) = report.pages.last() {
        use crate::fax::modem::class2::PageResponse;
        let answer = match p.outcome {
            PageOutcome::Confirmed => Some(PageResponse::Mcf),
            PageOutcome::ConfirmedRetrain => Some(PageResponse::Rtp),
            PageOutcome::Rejected => Some(PageResponse::Rtn),
            PageOutcome::Unconfirmed => None,
        };
        if let Some(a) = answer {
            let _ = ev.send(CallEvent::PageResult(a));
        }
    }
    let _ = ev.send(CallEvent::Ended(hangup_for(report.cause)));
}

/// Longest wait for the host's next page once the engine wants it (ours): T.30's receiver
/// waits T2 (6 s) after CFR or MCF; a host slower than that has lost the call anyway.
const HOST_PAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(6);

#[derive(Default)]
struct HostPagesState {
    /// The engine's calls of `page_count` so far.
    counts: usize,
    /// Pages the host gave, with their post-page messages.
    got: Vec<(Vec<u8>, crate::fax::modem::class2::PostPage)>,
    /// Pages whose answer went to the host.
    reported: usize,
    /// Pages the engine has coded (sent or about to be), repeats included.
    encoded: usize,
    /// Pages with an answer in the engine's report, and the last answer, as the observer
    /// last saw them.
    recorded: usize,
    last_outcome: Option<crate::fax::t30::report::PageOutcome>,
}

/// The engine's page source: pages come from the host one at a time, as `+FET` hands them
/// over. The engine asks `page_count` once at its start and once as each page begins
/// (`Engine::start_page`): the second and later asks are where the host is told the page
/// before was confirmed and that the next may come (`+FCS`/`CONNECT`), and where this waits
/// for it — the host's `+FET` says whether more follow.
struct HostPages {
    state: std::sync::Arc<std::sync::Mutex<HostPagesState>>,
    pages:
        std::sync::Mutex<std::sync::mpsc::Receiver<(Vec<u8>, crate::fax::modem::class2::PostPage)>>,
    ev: std::sync::mpsc::Sender<crate::fax::modem::emulate::CallEvent>,
    dcs: std::sync::Arc<std::sync::Mutex<Option<crate::fax::modem::class2::SessionParams>>>,
    abort: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fine: bool,
}

impl crate::fax::t30::page::PageSource for HostPages {
    fn page_count(&self) -> usize {
        use crate::fax::modem::class2::{PageResponse, PostPage};
        use crate::fax::modem::emulate::CallEvent;
        let Ok(mut st) = self.state.lock() else {
            return 0;
        };
        let more = |st: &HostPagesState| {
            st.got.len() + usize::from(st.got.last().is_none_or(|(_, p)| *p != PostPage::Eop))
        };
        st.counts += 1;
        if st.counts == 1 || st.got.last().is_some_and(|(_, p)| *p == PostPage::Eop) {
            return more(&st);
        }
        if st.got.len() > st.reported {
            // A page begins after one the host has no answer for yet. After RTN or RTP the
            // engine retrains (DCS) first, and the observer has seen the answer in its report;
            // straight after MCF it has not: the page before was confirmed.
            use crate::fax::t30::report::PageOutcome;
            let answer = if st.recorded == st.encoded {
                match st.last_outcome {
                    Some(PageOutcome::Rejected) => PageResponse::Rtn,
                    Some(PageOutcome::ConfirmedRetrain) => PageResponse::Rtp,
                    _ => PageResponse::Mcf,
                }
            } else {
                PageResponse::Mcf
            };
            if answer == PageResponse::Rtn {
                // T.32 §8.3.3: after +FPS:2 the host sends the page again (or the next one):
                // whatever it sends next takes the rejected page's place.
                st.got.pop();
            }
            st.reported = st.got.len();
            let _ = self.ev.send(CallEvent::PageResult(answer));
        }
        let dcs = self.dcs.lock().ok().and_then(|d| *d);
        if let Some(p) = dcs {
            let _ = self.ev.send(CallEvent::PageReady(p));
        }
        let Ok(rx) = self.pages.lock() else {
            return st.got.len();
        };
        let deadline = std::time::Instant::now() + HOST_PAGE_WAIT;
        // Bounded: at most HOST_PAGE_WAIT in 100 ms steps.
        while std::time::Instant::now() < deadline
            && !self.abort.load(std::sync::atomic::Ordering::Relaxed)
        {
            match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(page) => {
                    st.got.push(page);
                    return more(&st);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // No page: the engine finds none to code and ends the call (DCN).
        st.got.len() + 1
    }

    fn ends_document(&self, page: usize) -> bool {
        use crate::fax::modem::class2::PostPage;
        self.state
            .lock()
            .ok()
            .and_then(|s| s.got.get(page).map(|(_, p)| *p != PostPage::Mps))
            .unwrap_or(true)
    }

    fn wanted(&self, _page: usize) -> crate::fax::t30::dis::Wanted {
        use crate::fax::t30::{VResolution, Width};
        crate::fax::t30::dis::Wanted {
            resolution: if self.fine {
                VResolution::Fine
            } else {
                VResolution::Standard
            },
            width: Width::A4,
        }
    }

    fn encode(
        &mut self,
        page: usize,
        _coding: &crate::fax::t30::page::PageCoding,
    ) -> Result<Vec<u8>, crate::fax::t30::page::SourceError> {
        // The host coded the page as +FCS told it: it goes to the line as it is.
        self.state
            .lock()
            .ok()
            .and_then(|mut s| {
                s.encoded += 1;
                s.got.get(page).map(|(d, _)| d.clone())
            })
            .ok_or(crate::fax::t30::page::SourceError {
                page,
                reason: "the host sent no page".into(),
            })
    }
}
