//! Rendering: whatever people attach — TIFF, PDF, PNG/JPEG/GIF/BMP/WebP, text/plain, simple
//! text/html — becomes bilevel fax [`Page`]s, with the page header line and an optional cover
//! page.
//!
//! PURE: bytes in, pages out. No file, socket or clock: the header's date and time are passed
//! in as [`header::Fields::when`], and the time budget is a [`Budget`] the caller implements
//! (it measures time; this module counts work and asks it as it goes, see [`budget`]).
//!
//! Geometry (T.4 §2.2): every page is 1728 pixels wide at 204 dpi, standard (98 lpi), fine
//! (196 lpi) or superfine (391 lpi), A4 or Letter length or as long as the content
//! ([`Paper::Auto`]). Documents with a physical size (PDF, TIFF with a resolution) are placed
//! at true size and shrunk only if they do not fit; pictures without one are fitted to the
//! printable width keeping their aspect; landscape pages are turned to portrait.
//!
//! Every untrusted input has a limit ([`Limits`]) and every error names the part it came from
//! ([`RenderError`]).

pub mod bilevel;
pub mod budget;
pub mod cover;
pub mod faxdev;
pub mod font;
pub mod geometry;
pub mod gray;
pub mod header;
pub mod html;
pub mod pdf;
pub mod pdf_fonts;
pub mod raster;
pub mod text;

use thiserror::Error;

use crate::image::{Page, PageError, Resolution};

pub use bilevel::Bilevel;
pub use budget::{Budget, Meter, Unlimited};
pub use geometry::{Layout, Paper, SCAN_LINE};
pub use header::{Fields, Template};
pub use pdf_fonts::PdfFonts;

/// What went wrong with one part. All of them are the sender's document's fault (too big,
/// damaged, of a kind we do not render) except [`ErrorKind::RendererFault`], which is ours;
/// either way the message cannot be faxed as sent and the sender is told (RFC 3965 §5.2.1).
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum ErrorKind {
    /// More pages than allowed per document.
    #[error("more than {limit} pages")]
    TooManyPages {
        /// Pages allowed.
        limit: u32,
    },
    /// A PDF with more pages than allowed (checked before rendering any).
    #[error("the PDF has {pages} pages, more than the {limit} allowed")]
    PdfTooManyPages {
        /// Pages in the file.
        pages: usize,
        /// Pages allowed.
        limit: u32,
    },
    /// A picture larger than the decoding limit.
    #[error("a {width}×{height} picture is larger than the {limit}-pixel limit")]
    SourceTooLarge {
        /// Width in the file.
        width: u32,
        /// Height in the file.
        height: u32,
        /// Pixels allowed.
        limit: u64,
    },
    /// An output page longer than the page limit.
    #[error("a page of {rows} rows is longer than the {limit}-row limit")]
    PageTooLong {
        /// Rows the page would have.
        rows: u32,
        /// Rows allowed.
        limit: u32,
    },
    /// The caller's time budget ran out while this page was rendered (or before it).
    #[error("rendering took longer than the time allowed (stopped at page {page})")]
    TimeBudget {
        /// Page (1-based) being rendered.
        page: u32,
    },
    /// The page needs more work than one page may take ([`budget::Budget::page_work`]).
    #[error("page {page} is too complex to render (more than {limit} work units)")]
    WorkBudget {
        /// Page (1-based).
        page: u32,
        /// Units one page may take.
        limit: u64,
    },
    /// The caller cancelled rendering (the gateway is stopping): nothing is wrong with the
    /// document.
    #[error("rendering was cancelled at page {page}")]
    Cancelled {
        /// Page (1-based) being rendered.
        page: u32,
    },
    /// The PDF does not end with `%%EOF`: cut short in transit.
    #[error("the PDF is truncated (no %%EOF at its end)")]
    PdfTruncated,
    /// Every page of the PDF rendered blank although they draw something.
    #[error("the PDF renders blank: it is damaged")]
    PdfBlank,
    /// The PDF is encrypted and cannot be opened without a password.
    #[error("the PDF is encrypted: {0}")]
    PdfEncrypted(String),
    /// The bytes are not a valid file of their type.
    #[error("cannot be read: {0}")]
    Invalid(String),
    /// A valid file of a kind or variant we do not render.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The document has no pages.
    #[error("the document has no pages")]
    Empty,
    /// The PDF library failed (a bug there or here, not in the document).
    #[error("the PDF renderer failed on this file")]
    RendererFault,
    /// The PDF library failed on one page.
    #[error("the PDF renderer failed on page {page}")]
    RendererFaultOnPage {
        /// The page (1-based).
        page: u32,
    },
}

impl From<PageError> for ErrorKind {
    fn from(e: PageError) -> Self {
        match e {
            PageError::BadSize {
                width,
                height,
                limit,
            } => ErrorKind::SourceTooLarge {
                width,
                height,
                limit,
            },
            PageError::BadLength { .. } => ErrorKind::Invalid(e.to_string()),
        }
    }
}

/// A part that could not be rendered, and which part it was.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[error("{part}: {kind}")]
pub struct RenderError {
    /// The part as the sender would recognise it: file name and type, e.g.
    /// `part 2 "report.pdf" (application/pdf)`.
    pub part: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// Limits for untrusted documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Pages per document (`[offramp] max_pages`).
    pub max_pages: u32,
    /// Pages a PDF may declare; checked before rendering any.
    pub max_pdf_pages: u32,
    /// Pixels of a decoded source picture (width × height).
    pub max_source_pixels: u64,
    /// Rows of one output page (auto-length pages; A4 superfine is 4583).
    pub max_page_rows: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pages: 100,
            max_pdf_pages: 100,
            // A 600 dpi A4 scan is 35 Mpx; 64 Mpx decodes in ~256 MB of RGBA at most.
            max_source_pixels: 64 * 1024 * 1024,
            // 1 m at superfine.
            max_page_rows: 16_000,
        }
    }
}

impl Limits {
    fn check_source(&self, width: u32, height: u32) -> Result<(), ErrorKind> {
        let px = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 {
            return Err(ErrorKind::Invalid("picture of zero size".into()));
        }
        if px > self.max_source_pixels {
            return Err(ErrorKind::SourceTooLarge {
                width,
                height,
                limit: self.max_source_pixels,
            });
        }
        Ok(())
    }

    fn check_page(&self, rows: u32) -> Result<(), ErrorKind> {
        let limit = self
            .max_page_rows
            .min((crate::image::page::MAX_PIXELS / u64::from(SCAN_LINE)) as u32);
        if rows > limit {
            return Err(ErrorKind::PageTooLong { rows, limit });
        }
        Ok(())
    }

    fn new_page(&self, layout: &Layout, rows: u32) -> Result<Page, ErrorKind> {
        self.check_page(rows)?;
        Ok(Page::new(SCAN_LINE, rows.max(1), layout.res)?)
    }
}

/// What kind of document a part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// application/pdf.
    Pdf,
    /// image/tiff, every page.
    Tiff,
    /// image/png, jpeg, gif, bmp, webp, x-portable-anymap.
    Image,
    /// text/plain, UTF-8 (invalid sequences shown as `?`).
    Text,
    /// text/html, reduced to text.
    Html,
}

impl Kind {
    /// The kind from the content itself (magic bytes), else from the declared MIME type, else
    /// `None`. Content wins: a PDF sent as `application/octet-stream` is still a PDF, and a
    /// "PDF" that is really a JPEG renders as the JPEG it is.
    pub fn sniff(bytes: &[u8], mime: Option<&str>) -> Option<Kind> {
        let head = &bytes[..bytes.len().min(1024)];
        if head.windows(5).any(|w| w == b"%PDF-") {
            return Some(Kind::Pdf);
        }
        if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
            return Some(Kind::Tiff);
        }
        if image::guess_format(bytes).is_ok() {
            return Some(Kind::Image);
        }
        let mime = mime?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "text/html" => Some(Kind::Html),
            m if m.starts_with("text/") => Some(Kind::Text),
            _ => None,
        }
    }
}

/// How to render (the shell builds them from `[offramp]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Pixel density.
    pub resolution: Resolution,
    /// Paper.
    pub paper: Paper,
    /// Bilevel conversion (Auto chooses per page).
    pub bilevel: Bilevel,
    /// Limits.
    pub limits: Limits,
    /// Fonts for PDFs that name a standard font without embedding it.
    pub pdf_fonts: PdfFonts,
    /// Where the header line goes ([`assemble`], and the offramp's finisher).
    pub header_placement: header::Placement,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            resolution: Resolution::FINE,
            paper: Paper::A4,
            bilevel: Bilevel::Auto,
            limits: Limits::default(),
            pdf_fonts: PdfFonts::default(),
            header_placement: header::Placement::default(),
        }
    }
}

impl Options {
    /// The page geometry these options render to.
    pub fn layout(&self) -> Layout {
        Layout {
            res: self.resolution,
            paper: self.paper,
        }
    }
}

/// One rendered part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Its pages.
    pub pages: Vec<Page>,
    /// Visible degradations, one line each ("page 2: a font could not be loaded"; "3
    /// characters not in the font were printed as ?").
    pub notes: Vec<String>,
}

/// Renders one part. `part` names it in errors (file name and type).
pub fn render_part(
    part: &str,
    bytes: &[u8],
    kind: Kind,
    opts: &Options,
    budget: &mut dyn Budget,
) -> Result<Rendered, RenderError> {
    let mut pages = Vec::new();
    let notes = render_part_each(part, bytes, kind, opts, budget, &mut |p| {
        pages.push(p);
        Ok(())
    })?;
    Ok(Rendered { pages, notes })
}

/// [`render_part`], handing each page to `sink` in order as soon as it is made, so that a
/// long document need not be held whole (text and PDF pages come one at a time; a TIFF or a
/// picture is made whole first); returns the notes. When this fails, pages handed out
/// before belong to a part that failed.
pub fn render_part_each(
    part: &str,
    bytes: &[u8],
    kind: Kind,
    opts: &Options,
    budget: &mut dyn Budget,
    sink: &mut dyn FnMut(Page) -> Result<(), ErrorKind>,
) -> Result<Vec<String>, RenderError> {
    render_kind_each(bytes, kind, opts, budget, sink).map_err(|kind| RenderError {
        part: part.to_string(),
        kind,
    })
}

fn render_kind_each(
    bytes: &[u8],
    kind: Kind,
    opts: &Options,
    budget: &mut dyn Budget,
    sink: &mut dyn FnMut(Page) -> Result<(), ErrorKind>,
) -> Result<Vec<String>, ErrorKind> {
    let layout = opts.layout();
    let limits = &opts.limits;
    let mut count = 0usize;
    let mut counted = |p: Page| {
        count += 1;
        sink(p)
    };
    let text_notes = |missing: u64| {
        if missing > 0 {
            vec![format!(
                "{missing} characters not in the font were printed as ?"
            )]
        } else {
            Vec::new()
        }
    };
    let notes = match kind {
        Kind::Pdf => pdf::render_each(
            bytes,
            &layout,
            opts.bilevel,
            limits,
            &opts.pdf_fonts,
            budget,
            &mut counted,
        )?,
        Kind::Tiff => {
            for p in raster::tiff_pages(bytes, &layout, opts.bilevel, limits, budget)? {
                counted(p)?;
            }
            Vec::new()
        }
        Kind::Image => {
            let mut meter = Meter::new(&*budget, 1);
            meter.next_page(1)?;
            let s = raster::decode_image(bytes, limits)?;
            // Decoded already (its size was checked against the limits first); placing it is
            // the rest of the page's work.
            raster::charge_source(&mut meter, &s.gray)?;
            counted(raster::place(&s, &layout, opts.bilevel, limits)?)?;
            Vec::new()
        }
        Kind::Text => {
            let mut meter = Meter::new(&*budget, 1);
            meter.next_page(1)?;
            let text = String::from_utf8_lossy(bytes);
            text_notes(text::render_str_each(
                &text,
                &layout,
                limits,
                &mut meter,
                &mut counted,
            )?)
        }
        Kind::Html => {
            let mut meter = Meter::new(&*budget, 1);
            meter.next_page(1)?;
            let t = html::to_text(&String::from_utf8_lossy(bytes));
            text_notes(text::render_str_each(
                &t,
                &layout,
                limits,
                &mut meter,
                &mut counted,
            )?)
        }
    };
    if count == 0 {
        return Err(ErrorKind::Empty);
    }
    Ok(notes)
}

/// Puts a fax together: the optional cover page first, then every part's pages, then the
/// header line on each page with "page n of m" counting the cover.
pub fn assemble(
    parts: Vec<Rendered>,
    cover: Option<(&Template, &Fields)>,
    header: Option<(&Template, &Fields)>,
    opts: &Options,
) -> Result<Vec<Page>, RenderError> {
    let layout = opts.layout();
    let body: usize = parts.iter().map(|p| p.pages.len()).sum();
    let total = body + usize::from(cover.is_some());
    if total > opts.limits.max_pages as usize {
        return Err(RenderError {
            part: "the fax".into(),
            kind: ErrorKind::TooManyPages {
                limit: opts.limits.max_pages,
            },
        });
    }
    let mut pages = Vec::with_capacity(total);
    if let Some((tpl, fields)) = cover {
        let p =
            cover::render(tpl, fields, total as u32, &layout, &opts.limits).map_err(|kind| {
                RenderError {
                    part: "the cover page".into(),
                    kind,
                }
            })?;
        pages.push(p);
    }
    for p in parts {
        pages.extend(p.pages);
    }
    if let Some((tpl, fields)) = header {
        header::stamp(&mut pages, &layout, tpl, fields, opts.header_placement);
    }
    Ok(pages)
}
