//! `faxgate render`: the I/O shell around [`crate::image::render`] for people — files in, a
//! TIFF-F fax file out (and PNG previews to look at).
//!
//! This shell reads the input files, reads the clock (for the header's date and time and for
//! the rendering time limit) and writes the outputs; everything else happens in the pure
//! renderer.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use thiserror::Error;

use crate::image::codec::Coding;
use crate::image::render::{
    self, Bilevel, ErrorKind, Fields, Kind, Options, Paper, RenderError, Rendered, Template, cover,
    header,
};
use crate::image::tiff::{EncodedPage, Profile, TiffError, Writer};
use crate::image::{Page, Resolution};
use crate::offramp::budget::{Cancel, Deadline};

/// Arguments of `faxgate render`.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// Documents to render, in order: PDF, TIFF, PNG/JPEG/GIF/BMP/WebP, .txt, .html.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output TIFF-F file (MH, RFC 3949 Profile S; superfine is written as Profile F).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// standard (98 lpi), fine (196 lpi) or superfine (391 lpi).
    #[arg(long, default_value = "fine")]
    pub resolution: String,
    /// a4, letter or auto (as long as the content).
    #[arg(long, default_value = "a4")]
    pub paper: String,
    /// auto (per page), threshold or dither.
    #[arg(long, default_value = "auto")]
    pub bilevel: String,
    /// Header line template; fields {date} {time} {station} {sender} {page} {pages}
    /// {recipient}. Default: the `[offramp] header` default. `--header ''` prints none.
    #[arg(long, value_name = "TEMPLATE")]
    pub header: Option<String>,
    /// Sender name for {sender}.
    #[arg(long, default_value = "faxgate")]
    pub sender: String,
    /// Station ID for {station}.
    #[arg(long, default_value = "")]
    pub station: String,
    /// Recipient number for {recipient}.
    #[arg(long, default_value = "")]
    pub to: String,
    /// Add a cover page (built-in template) with this subject.
    #[arg(long, value_name = "SUBJECT")]
    pub cover: Option<String>,
    /// Pages per document at most.
    #[arg(long, default_value_t = 100)]
    pub max_pages: u32,
    /// Give up when rendering one input takes longer than this (e.g. `30s`; `0s`: no limit),
    /// as `[offramp] render_time_limit` does for a message.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub time_limit: Duration,
    /// Give up on a page that needs more work units than this (`0`: no limit), as
    /// `[offramp] render_work_limit`.
    #[arg(long, default_value_t = crate::image::render::budget::DEFAULT_PAGE_WORK)]
    pub work_limit: u64,
    /// Also write one PNG per page into this directory (page-001.png, …) for a person to look
    /// at; fax pixels are not square, so the previews are stretched to square pixels.
    #[arg(long, value_name = "DIR")]
    pub png: Option<PathBuf>,
    /// Directory of URW base-35 fonts for PDFs that use a standard font without embedding it
    /// (as `[offramp] pdf_font_dir`); `''` uses the renderer's built-in substitutes only.
    #[arg(long, value_name = "DIR", default_value = crate::image::render::pdf_fonts::DEFAULT_DIR)]
    pub pdf_font_dir: String,
}

/// Why `faxgate render` failed.
#[derive(Debug, Error)]
pub enum RenderCmdError {
    /// A command-line value is wrong (the user's fault).
    #[error("{0}")]
    Usage(String),
    /// An input file cannot be read.
    #[error("cannot read {path}: {err}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// An input could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing the TIFF failed.
    #[error("cannot write {path}: {err}")]
    Tiff {
        /// The file.
        path: PathBuf,
        /// Why.
        err: TiffError,
    },
    /// Writing a PNG preview failed.
    #[error("cannot write preview {path}: {err}")]
    Png {
        /// The file.
        path: PathBuf,
        /// Why.
        err: String,
    },
}

/// What `render` produced.
#[derive(Debug)]
pub struct Summary {
    /// Pages written.
    pub pages: usize,
    /// Degradation notes per input.
    pub notes: Vec<String>,
}

fn kind_for(path: &Path, bytes: &[u8]) -> Option<Kind> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let mime = match ext.as_deref() {
        Some("html" | "htm") => Some("text/html"),
        Some("txt" | "text" | "asc") => Some("text/plain"),
        _ => None,
    };
    // An explicit .html wins over content sniffing (HTML can mention %PDF- in its text).
    if mime == Some("text/html") {
        return Some(Kind::Html);
    }
    Kind::sniff(bytes, mime.or(Some("text/plain")))
}

/// Renders the inputs into `args.output` (and previews). Returns the page count.
pub fn render(args: &RenderArgs) -> Result<Summary, RenderCmdError> {
    let resolution = match args.resolution.to_ascii_lowercase().as_str() {
        "standard" | "normal" => Resolution::STANDARD,
        "fine" => Resolution::FINE,
        "superfine" => Resolution::SUPERFINE,
        r => {
            return Err(RenderCmdError::Usage(format!(
                "--resolution {r}: use standard, fine or superfine"
            )));
        }
    };
    let paper: Paper = args.paper.parse().map_err(RenderCmdError::Usage)?;
    let bilevel: Bilevel = args.bilevel.parse().map_err(RenderCmdError::Usage)?;
    let mut opts = Options {
        resolution,
        paper,
        bilevel,
        pdf_fonts: crate::image::render::PdfFonts::from_config(&args.pdf_font_dir),
        ..Options::default()
    };
    opts.limits.max_pages = args.max_pages;
    opts.limits.max_pdf_pages = args.max_pages;

    let header_src = args
        .header
        .clone()
        .unwrap_or_else(|| crate::config::Offramp::default().header);
    let header_tpl = if header_src.is_empty() {
        None
    } else {
        Some(
            Template::parse(&header_src, header::HEADER_FIELDS)
                .map_err(|e| RenderCmdError::Usage(format!("--header: {e}")))?,
        )
    };
    let fields = Fields {
        when: Some(chrono::Local::now().naive_local()),
        station: args.station.clone(),
        sender: args.sender.clone(),
        recipient: args.to.clone(),
        from: args.sender.clone(),
        to: args.to.clone(),
        subject: args.cover.clone().unwrap_or_default(),
        note: String::new(),
    };
    let cover_tpl = match &args.cover {
        Some(_) => Some(cover::template("").map_err(|e| RenderCmdError::Usage(e.to_string()))?),
        None => None,
    };

    let mut parts: Vec<Rendered> = Vec::new();
    let mut notes = Vec::new();
    for (i, path) in args.inputs.iter().enumerate() {
        let bytes = crate::read_limit::read(path, super::MAX_INPUT_BYTES).map_err(|e| {
            RenderCmdError::Read {
                path: path.clone(),
                err: e.into(),
            }
        })?;
        let name = format!("input {} ({})", i + 1, path.display());
        let kind = kind_for(path, &bytes).ok_or_else(|| {
            RenderCmdError::Render(RenderError {
                part: name.clone(),
                kind: ErrorKind::Unsupported("not a PDF, TIFF, picture, text or HTML".into()),
            })
        })?;
        // The clock and the work limit: the shell's half of the renderer's budget (no cancel
        // flag: an interrupted command simply ends).
        let mut budget = Deadline::start(args.time_limit, &Cancel::new()).budget(args.work_limit);
        let r = render::render_part(&name, &bytes, kind, &opts, &mut budget)?;
        notes.extend(r.notes.iter().map(|n| format!("{name}: {n}")));
        parts.push(r);
    }
    let pages = render::assemble(
        parts,
        cover_tpl.as_ref().map(|t| (t, &fields)),
        header_tpl.as_ref().map(|t| (t, &fields)),
        &opts,
    )?;

    write_tiff(&args.output, &pages, resolution)?;
    if let Some(dir) = &args.png {
        write_pngs(dir, &pages)?;
    }
    Ok(Summary {
        pages: pages.len(),
        notes,
    })
}

/// Writes the pages as one MH TIFF-F (Profile S; Profile F with MH for superfine, which
/// Profile S does not allow).
///
/// Coding is most of the work, and pages code independently: they are coded on worker
/// threads (one per core) while this thread appends the finished ones in page order. The file
/// is byte for byte what [`Writer::write_page`] page after page gives.
pub fn write_tiff(path: &Path, pages: &[Page], res: Resolution) -> Result<(), RenderCmdError> {
    let terr = |err| RenderCmdError::Tiff {
        path: path.to_path_buf(),
        err,
    };
    let profile = if res == Resolution::SUPERFINE {
        Profile::F(Coding::Mh)
    } else {
        Profile::S
    };
    let file = std::fs::File::create(path).map_err(|e| terr(TiffError::Io(e)))?;
    let mut w = Writer::new(BufWriter::new(file), profile).map_err(terr)?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(pages.len());
    if workers <= 1 {
        for p in pages {
            w.write_page(p).map_err(terr)?;
        }
    } else {
        encode_in_parallel(&mut w, pages, profile, workers).map_err(terr)?;
    }
    let buf = w.finish().map_err(terr)?;
    let file = buf
        .into_inner()
        .map_err(|e| terr(TiffError::Io(e.into_error())))?;
    file.sync_all().map_err(|e| terr(TiffError::Io(e)))?;
    Ok(())
}

/// Codes `pages` on `workers` threads and appends them to `w` in order. Workers take the next
/// uncoded page from a shared counter, so a slow page holds up no other worker; coded pages
/// are a small fraction of the bitmaps already in memory, so finished pages simply wait for
/// their turn.
fn encode_in_parallel<W: std::io::Write + std::io::Seek>(
    w: &mut Writer<W>,
    pages: &[Page],
    profile: Profile,
    workers: usize,
) -> Result<(), TiffError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;

    let next = AtomicUsize::new(0);
    // Set when the writer fails, so workers stop coding pages nobody will write.
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<EncodedPage, TiffError>)>();
        for _ in 0..workers {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= pages.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if tx
                        .send((i, EncodedPage::encode(&pages[i], profile)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut done: Vec<Option<EncodedPage>> = (0..pages.len()).map(|_| None).collect();
        let mut written = 0;
        let result = (|| {
            for (i, r) in &rx {
                done[i] = Some(r?);
                while let Some(p) = done.get_mut(written).and_then(Option::take) {
                    w.write_encoded(&p)?;
                    written += 1;
                }
            }
            Ok(())
        })();
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        result
    })
}

/// One PNG per page, stretched vertically to square pixels so that a person sees the page's
/// true proportions.
pub fn write_pngs(dir: &Path, pages: &[Page]) -> Result<(), RenderCmdError> {
    let perr = |path: &Path, err: String| RenderCmdError::Png {
        path: path.to_path_buf(),
        err,
    };
    std::fs::create_dir_all(dir).map_err(|e| perr(dir, e.to_string()))?;
    for (i, p) in pages.iter().enumerate() {
        let path = dir.join(format!("page-{:03}.png", i + 1));
        let img = preview(p);
        img.save_with_format(&path, image::ImageFormat::Png)
            .map_err(|e| perr(&path, e.to_string()))?;
    }
    Ok(())
}

/// A page as an 8-bit gray picture with square pixels (rows repeated or dropped).
pub fn preview(p: &Page) -> image::GrayImage {
    let r = p.resolution();
    let rows =
        ((f64::from(p.height()) * f64::from(r.x_dpi) / f64::from(r.y_dpi)).round() as u32).max(1);
    image::GrayImage::from_fn(p.width(), rows, |x, y| {
        let sy = ((u64::from(y) * u64::from(p.height())) / u64::from(rows)) as u32;
        if p.get(x, sy) {
            image::Luma([0])
        } else {
            image::Luma([255])
        }
    })
}

/// `faxgate render` entry point: prints a one-line summary, or the error, and the exit code.
pub fn render_main(args: &RenderArgs) -> ExitCode {
    match render(args) {
        Ok(s) => {
            for n in &s.notes {
                eprintln!("faxgate render: warning: {n}");
            }
            println!("{}: {} pages", args.output.display(), s.pages);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faxgate render: {e}");
            ExitCode::FAILURE
        }
    }
}
