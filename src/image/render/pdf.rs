//! PDF to fax pages with hayro (pure-Rust PDF rasterizer), in-process, no Ghostscript.
//!
//! PURE: bytes in, pages out. Each page is rendered at true size at the fax density (an A4
//! page is 1686 columns at 204 dpi), centred on the 1728-column scan line, shrunk only when it
//! would not fit (Letter is 1734 columns wide); landscape pages are turned a quarter turn
//! counter-clockwise. Vector content and text are rendered without anti-aliasing (what a
//! bilevel device wants: crisp edges and no mid-tones to classify), images keep their gray
//! levels for the threshold/dither choice.
//!
//! Known hayro traps (shared/CRATES.md): a truncated PDF renders blank with no error — we
//! refuse a file without `%%EOF` near its end and flag a page that renders blank although its
//! content stream draws something; a font or image hayro cannot load is reported through its
//! warning sink — we print a visible notice on that page rather than send it silently
//! incomplete.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use hayro::hayro_interpret::util::TransformExt;
use std::sync::mpsc;

use hayro::hayro_interpret::{InterpreterCache, InterpreterSettings, InterpreterWarning};
use hayro::hayro_syntax::page::Page as HayroPage;
use hayro::hayro_syntax::{LoadPdfError, Pdf};
use hayro::kurbo::Affine;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::vello_cpu::{Pixmap, RasterizerSettings, RenderContext, Resources, TargetInit};
use hayro::{RenderCache, RenderSettings};

use crate::image::Page;

use super::bilevel::{self, Bilevel};
use super::budget::{Meter, units};
use super::faxdev;
use super::font::{Pen, pt_to_px};
use super::geometry::{Layout, SCAN_LINE, fit_physical};
use super::pdf_fonts::PdfFonts;
use super::{Budget, ErrorKind, Limits};

/// How far from the end `%%EOF` must appear (PDF 1.7 §7.5.5 puts it on the last line; we allow
/// trailing junk some producers append).
const EOF_WINDOW: usize = 4096;

/// Anti-aliasing off: a pixel is painted when a fill covers more than half of it.
const ALIASING_THRESHOLD: u8 = 128;

/// One rendered PDF document.
pub struct Rendered {
    /// Pages in document order.
    pub pages: Vec<Page>,
    /// Visible degradations, one line per affected page ("page 3: a font could not be loaded").
    pub notes: Vec<String>,
}

/// Checks the PDF's structure and page count without rendering: returns the number of pages.
pub fn page_count(bytes: &[u8], limits: &Limits) -> Result<usize, ErrorKind> {
    let pdf = open(bytes)?;
    let n = pdf.pages().len();
    check_count(n, limits)?;
    Ok(n)
}

fn check_count(n: usize, limits: &Limits) -> Result<(), ErrorKind> {
    if n == 0 {
        return Err(ErrorKind::Empty);
    }
    if n > limits.max_pdf_pages as usize {
        return Err(ErrorKind::PdfTooManyPages {
            pages: n,
            limit: limits.max_pdf_pages,
        });
    }
    if n > limits.max_pages as usize {
        return Err(ErrorKind::TooManyPages {
            limit: limits.max_pages,
        });
    }
    Ok(())
}

fn open(bytes: &[u8]) -> Result<Pdf, ErrorKind> {
    let tail = &bytes[bytes.len().saturating_sub(EOF_WINDOW)..];
    if !tail.windows(5).any(|w| w == b"%%EOF") {
        return Err(ErrorKind::PdfTruncated);
    }
    let data = bytes.to_vec();
    match std::panic::catch_unwind(move || Pdf::new(data)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(LoadPdfError::Decryption(e))) => Err(ErrorKind::PdfEncrypted(format!("{e:?}"))),
        Ok(Err(LoadPdfError::Invalid)) => Err(ErrorKind::Invalid("not a readable PDF".into())),
        Err(_) => Err(ErrorKind::RendererFault),
    }
}

/// Pages rendered at once, at most (each worker holds one gray page buffer, 4 MB at fine A4).
const MAX_WORKERS: usize = 8;

/// One page's result.
struct PageOut {
    page: Page,
    /// The visible notice printed on the page, if any.
    note: Option<String>,
    /// Blank although its content stream draws something.
    blank_with_content: bool,
}

/// A finished page as it waits for the rest of the document: its packed rows as a bitmap of
/// which 8-byte words hold ink, plus those words. A text page is mostly white words (≈ 0.5 MB
/// packed at fine A4, a few tens of KB squeezed), and a document's pages all wait until the
/// last one is done, so holding them squeezed keeps a long document's pages from outweighing
/// everything else while the workers' page buffers are still alive. Squeezing and expanding
/// run at memory speed (far below the cost of drawing the page), unlike a real fax coding.
struct Squeezed {
    width: u32,
    height: u32,
    res: crate::image::Resolution,
    /// Packed length in bytes.
    len: usize,
    /// Bit k set: word k (bytes 8k..8k+8) holds ink and is next in `words`.
    mask: Vec<u64>,
    words: Vec<u64>,
}

impl Squeezed {
    /// The squeezed page, or `None` when its words would take more than `limit` bytes.
    fn new(page: &Page, limit: usize) -> Option<Squeezed> {
        let data = page.data();
        let word = |c: &[u8]| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            u64::from_ne_bytes(b)
        };
        // Count first, so that a page that does not squeeze allocates nothing and one that
        // does allocates exactly once.
        let inked = data.chunks(8).filter(|c| word(c) != 0).count();
        if inked * 8 > limit {
            return None;
        }
        let mut mask = vec![0u64; data.len().div_ceil(8).div_ceil(64)];
        let mut words = Vec::with_capacity(inked);
        for (k, c) in data.chunks(8).enumerate() {
            let w = word(c);
            if w != 0 {
                mask[k / 64] |= 1 << (k % 64);
                words.push(w);
            }
        }
        Some(Squeezed {
            width: page.width(),
            height: page.height(),
            res: page.resolution(),
            len: data.len(),
            mask,
            words,
        })
    }

    /// Bytes held.
    #[cfg(test)]
    fn size(&self) -> usize {
        (self.mask.len() + self.words.len()) * 8
    }

    fn expand(&self) -> Result<Page, ErrorKind> {
        let mut data = vec![0u8; self.len];
        let mut words = self.words.iter();
        for (k, out) in data.chunks_mut(8).enumerate() {
            if self
                .mask
                .get(k / 64)
                .is_some_and(|m| m & (1 << (k % 64)) != 0)
            {
                let w = words.next().ok_or(ErrorKind::RendererFault)?;
                out.copy_from_slice(&w.to_ne_bytes()[..out.len()]);
            }
        }
        if words.next().is_some() {
            return Err(ErrorKind::RendererFault);
        }
        Ok(Page::from_packed(self.width, self.height, self.res, data)?)
    }
}

/// A page as it waits: squeezed when that saves at least half (text, line art), as drawn
/// otherwise (a dithered photo page has few white bytes to squeeze out).
enum Held {
    Plain(Page),
    Squeezed(Squeezed),
}

impl Held {
    fn new(page: Page) -> Held {
        match Squeezed::new(&page, page.data().len() / 2) {
            Some(s) => Held::Squeezed(s),
            None => Held::Plain(page),
        }
    }

    fn expand(self) -> Result<Page, ErrorKind> {
        match self {
            Held::Plain(p) => Ok(p),
            Held::Squeezed(s) => s.expand(),
        }
    }
}

/// A rendered page on its way back to the document.
struct Finished {
    page: Held,
    note: Option<String>,
    blank_with_content: bool,
}

impl From<PageOut> for Finished {
    fn from(p: PageOut) -> Finished {
        Finished {
            page: Held::new(p.page),
            note: p.note,
            blank_with_content: p.blank_with_content,
        }
    }
}

/// What one rendering thread keeps from page to page: hayro's caches (not shareable between
/// threads), the fast device's glyph cache, and — only once a page needs it — the general
/// renderer with its RGBA buffer.
struct Worker<'a> {
    cache: InterpreterCache<'a>,
    settings: InterpreterSettings,
    warnings: Arc<Mutex<Vec<InterpreterWarning>>>,
    reuse: faxdev::Reuse,
    general: Option<General<'a>>,
}

/// hayro's own renderer (vello_cpu), for pages the fast device cannot draw exactly.
struct General<'a> {
    cache: RenderCache<'a>,
    ctx: RenderContext,
    pixmap: Pixmap,
    resources: Resources,
}

impl<'a> Worker<'a> {
    fn new(fonts: &PdfFonts, images: &Arc<faxdev::ImageSlot>) -> Worker<'a> {
        let warnings: Arc<Mutex<Vec<InterpreterWarning>>> = Arc::default();
        let sink = warnings.clone();
        let settings = InterpreterSettings {
            warning_sink: Arc::new(move |w| {
                if let Ok(mut v) = sink.lock() {
                    v.push(w);
                }
            }),
            font_resolver: fonts.resolver(),
            ..Default::default()
        };
        Worker {
            cache: InterpreterCache::new(),
            settings,
            warnings,
            reuse: faxdev::Reuse::sharing(images),
            general: None,
        }
    }
}

/// Renders every page of the PDF in `bytes`.
///
/// Pages are rendered on up to [`std::thread::available_parallelism`] threads (each with its
/// own caches and page buffer; images are decoded and drawn one at a time across them, see
/// [`faxdev::ImageSlot`]) and come back in document order. `budget` is asked before each page
/// is handed to a thread, in page order, so an exhausted budget stops the document at the same
/// page boundary as a one-thread loop would; inside a page, each thread meters its page's work
/// against the budget's page limit and asks the budget as it goes ([`super::budget`]), so a page
/// under way stops too.
pub fn render(
    bytes: &[u8],
    layout: &Layout,
    mode: Bilevel,
    limits: &Limits,
    fonts: &PdfFonts,
    budget: &mut dyn Budget,
) -> Result<Rendered, ErrorKind> {
    let mut pages = Vec::new();
    let notes = render_each(bytes, layout, mode, limits, fonts, budget, &mut |p| {
        pages.push(p);
        Ok(())
    })?;
    Ok(Rendered { pages, notes })
}

/// [`render`], handing each page to `sink` in order as soon as it is whole (the pages drawn
/// meanwhile wait compressed); returns the notes. A document refused after some pages were
/// handed out (every page blank: [`ErrorKind::PdfBlank`]) still fails: the caller discards
/// what it got.
pub fn render_each(
    bytes: &[u8],
    layout: &Layout,
    mode: Bilevel,
    limits: &Limits,
    fonts: &PdfFonts,
    budget: &mut dyn Budget,
    sink: &mut dyn FnMut(Page) -> Result<(), ErrorKind>,
) -> Result<Vec<String>, ErrorKind> {
    let pdf = open(bytes)?;
    let pages = pdf.pages();
    let n = pages.len();
    check_count(n, limits)?;
    let budget: &dyn Budget = &*budget;

    let workers = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, MAX_WORKERS)
        .min(n);
    let mut results: Vec<Option<Result<Finished, ErrorKind>>> = (0..n).map(|_| None).collect();
    let mut stopped: Option<ErrorKind> = None;
    // A rendezvous channel: a page is handed out only when a worker is free, so at most
    // `workers` pages are in memory being drawn.
    let (job_tx, job_rx) = mpsc::sync_channel::<usize>(0);
    // One decoded image at a time across the workers (faxdev::ImageSlot).
    let images = Arc::default();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|s| {
        let (res_tx, res_rx) = mpsc::channel::<(usize, Result<Finished, ErrorKind>)>();
        for _ in 0..workers {
            let (job_rx, res_tx, images) = (&job_rx, res_tx.clone(), &images);
            s.spawn(move || {
                let mut worker = Worker::new(fonts, images);
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok(i) = job else { break };
                    let mut meter = Meter::new(budget, i as u32 + 1);
                    let r = render_one(
                        &pages[i],
                        i as u32 + 1,
                        layout,
                        mode,
                        limits,
                        &mut worker,
                        &mut meter,
                    )
                    .map(Finished::from);
                    if res_tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        let mut failed = false;
        for i in 0..n {
            if let Err(e) = budget.before_page(i as u32 + 1) {
                stopped = Some(e);
                break;
            }
            if job_tx.send(i).is_err() {
                break;
            }
            // Stop handing out pages once one has failed: the document fails anyway.
            while let Ok((j, r)) = res_rx.try_recv() {
                failed |= r.is_err();
                results[j] = Some(r);
            }
            if failed {
                break;
            }
        }
        drop(job_tx);
        for (j, r) in res_rx {
            results[j] = Some(r);
        }
    });

    let mut made = 0usize;
    let mut notes = Vec::new();
    let mut blank_with_content = 0usize;
    for r in results {
        match r {
            Some(Ok(p)) => {
                blank_with_content += usize::from(p.blank_with_content);
                notes.extend(p.note);
                sink(p.page.expand()?)?;
                made += 1;
            }
            Some(Err(e)) => return Err(e),
            // Not handed out: the budget ran out (or an earlier page failed, returned above).
            None => return Err(stopped.unwrap_or(ErrorKind::RendererFault)),
        }
    }
    if blank_with_content == made {
        // Every page blank although they draw: the file is damaged in a way hayro repaired
        // silently (CRATES.md trap). Refuse rather than fax white paper.
        return Err(ErrorKind::PdfBlank);
    }
    Ok(notes)
}

/// Renders page `no` (1-based): the fast device first, hayro's general renderer when the page
/// uses something the fast device does not draw. `meter` counts the page's work: the fast
/// device charges as it draws and stops when refused; hayro's renderer cannot be interrupted,
/// so it is charged beforehand what the fast device saw on the page (its estimate) and the
/// budget is asked again when it returns.
#[allow(clippy::too_many_arguments)]
fn render_one<'a>(
    page: &'a HayroPage<'a>,
    no: u32,
    layout: &Layout,
    mode: Bilevel,
    limits: &Limits,
    w: &mut Worker<'a>,
    meter: &mut Meter<'_>,
) -> Result<PageOut, ErrorKind> {
    if let Ok(mut v) = w.warnings.lock() {
        v.clear();
    }

    let (w_pt, h_pt) = page.render_dimensions();
    let (w_pt, h_pt) = (f64::from(w_pt), f64::from(h_pt));
    let landscape = w_pt > h_pt;
    let (pw, ph) = if landscape {
        (h_pt, w_pt)
    } else {
        (w_pt, h_pt)
    };
    let (cw, ch, s) = fit_physical(layout, pw / 72.0, ph / 72.0, SCAN_LINE, layout.page_rows());
    let rows = layout.page_rows().unwrap_or(ch);
    limits.check_page(rows)?;
    let height = u16::try_from(rows).map_err(|_| ErrorKind::PageTooLong {
        rows,
        limit: u32::from(u16::MAX),
    })?;
    let kx = s * f64::from(layout.res.x_dpi) / 72.0;
    let ky = s * f64::from(layout.res.y_dpi) / 72.0;
    let x_off = f64::from((SCAN_LINE - cw) / 2);
    let place = if landscape {
        // Landscape point (X, Y) (Y down) to portrait pixel: top edge to the left edge.
        // x = kx·Y + x_off, y = ch − ky·X.
        Affine::new([0.0, -ky, kx, 0.0, x_off, f64::from(ch)])
    } else {
        Affine::new([kx, 0.0, 0.0, ky, x_off, 0.0])
    };
    let transform = place * page.initial_transform(true).to_kurbo();
    // Wiping, thresholding (and perhaps dithering) the page buffer.
    meter.charge(units::pixels(u64::from(SCAN_LINE) * u64::from(height)))?;

    let fast = std::panic::catch_unwind(AssertUnwindSafe(|| {
        faxdev::render_page(
            page,
            transform,
            (SCAN_LINE, u32::from(height)),
            &w.cache,
            &w.settings,
            &mut w.reuse,
            meter,
        )
    }))
    .map_err(|_| ErrorKind::RendererFaultOnPage { page: no })?;
    let mut fax = match fast {
        faxdev::Outcome::Drawn => gray_to_bilevel(w.reuse.canvas(), mode, layout)?,
        faxdev::Outcome::Stopped(e) => return Err(e),
        faxdev::Outcome::Unsupported { work, .. } => {
            meter.charge(work)?;
            meter.check()?;
            if let Ok(mut v) = w.warnings.lock() {
                v.clear();
            }
            let g = w.general.get_or_insert_with(|| General {
                cache: RenderCache::new(),
                ctx: RenderContext::new(1, 1),
                pixmap: Pixmap::new(1, 1),
                resources: Resources::default(),
            });
            g.ctx.reset_and_resize(SCAN_LINE as u16, height);
            g.pixmap.resize(SCAN_LINE as u16, height);
            let render_settings = RenderSettings {
                aliasing_threshold: Some(ALIASING_THRESHOLD),
                ..Default::default()
            };
            let drawn = std::panic::catch_unwind(AssertUnwindSafe(|| {
                hayro::render_into(
                    page,
                    &g.cache,
                    &w.settings,
                    &render_settings,
                    &mut g.ctx,
                    transform,
                );
                g.ctx.flush();
                g.ctx.render_with(
                    &mut g.pixmap,
                    &mut g.resources,
                    RasterizerSettings {
                        target_init: TargetInit::Clear(WHITE),
                        ..Default::default()
                    },
                );
            }));
            if drawn.is_err() {
                return Err(ErrorKind::RendererFaultOnPage { page: no });
            }
            // The time it took is known only now.
            meter.check()?;
            to_bilevel(&g.pixmap, mode, layout)?
        }
    };

    let mut problems: Vec<&str> = Vec::new();
    if let Ok(warnings) = w.warnings.lock() {
        for w in warnings.iter() {
            let what = match w {
                InterpreterWarning::UnsupportedFont => "a font could not be loaded",
                InterpreterWarning::ImageDecodeFailure => "an image could not be decoded",
                InterpreterWarning::UnresolvedAnnotationAppearance => {
                    "an annotation could not be drawn"
                }
                _ => "a feature is not supported",
            };
            if !problems.contains(&what) {
                problems.push(what);
            }
        }
    }
    let has_content = page
        .page_stream()
        .is_some_and(|s| s.iter().any(|b| !b.is_ascii_whitespace()));
    // Any black byte will do (found early on a page with content).
    let blank_with_content = has_content && fax.data().iter().all(|&b| b == 0);
    if blank_with_content {
        problems.push("the page rendered blank although it has content");
    }
    let mut note = None;
    if !problems.is_empty() {
        let msg = format!("page {no}: {}", problems.join("; "));
        stamp_notice(&mut fax, layout, &format!("[faxgate: {msg}]"));
        note = Some(msg);
    }
    Ok(PageOut {
        page: fax,
        note,
        blank_with_content,
    })
}

/// The fast device's gray page made bilevel: one pass thresholds it and builds the gray
/// histogram at once, only over the columns each row had painted (the rest is paper), eight
/// pixels at a time: a run of white is one 64-bit compare, a run of pure black and white (text
/// and line art) is turned into its bits with one multiply. Only when the histogram says
/// "photograph" (or dithering is forced) is the page read again for error diffusion.
fn gray_to_bilevel(
    c: &faxdev::canvas::Canvas,
    mode: Bilevel,
    layout: &Layout,
) -> Result<Page, ErrorKind> {
    let g = &c.gray;
    if mode == Bilevel::Dither {
        return Ok(bilevel::to_page(g, mode, layout.res)?.0);
    }
    let mut page = Page::new(g.width, g.height, layout.res)?;
    let mut hist = [0u64; 256];
    let mut visited = 0u64;
    for y in 0..g.height {
        let (d0, d1) = c.dirty(y);
        if d0 >= d1 {
            continue;
        }
        // Whole bytes of the bit row covering the painted columns.
        let (b0, b1) = (d0 as usize / 8, (d1 as usize).div_ceil(8));
        let src = &g.row(y)[b0 * 8..(b1 * 8).min(g.width as usize)];
        visited += src.len() as u64;
        let dst = &mut page.row_mut(y)[b0..b1];
        for (out, chunk) in dst.iter_mut().zip(src.chunks(8)) {
            if let Ok(c8) = <[u8; 8]>::try_from(chunk) {
                let v = u64::from_le_bytes(c8);
                if v == u64::MAX {
                    hist[255] += 8;
                    continue;
                }
                let high = v & 0x8080_8080_8080_8080;
                if v == (high >> 7) * 0xFF {
                    // Every byte 0x00 or 0xFF: gather "high bit clear" (black) of byte k
                    // into bit k, then mirror so that pixel 0 is the most significant bit.
                    let black = (!v & 0x8080_8080_8080_8080) >> 7;
                    let bits = (black.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8;
                    let n = u64::from(bits.count_ones());
                    hist[0] += n;
                    hist[255] += 8 - n;
                    *out = bits.reverse_bits();
                    continue;
                }
            }
            let mut byte = 0u8;
            for (i, &l) in chunk.iter().enumerate() {
                hist[l as usize] += 1;
                if l < bilevel::THRESHOLD {
                    byte |= 0x80 >> i;
                }
            }
            *out = byte;
        }
    }
    hist[255] += u64::from(g.width) * u64::from(g.height) - visited;
    if mode == Bilevel::Auto && bilevel::classify_histogram(&hist) == Bilevel::Dither {
        // The thresholded page goes before the dithered one is made: one page buffer per
        // worker at a time, not two.
        drop(page);
        return Ok(bilevel::to_page(g, Bilevel::Dither, layout.res)?.0);
    }
    Ok(page)
}

/// Eight opaque white RGBA pixels.
const WHITE8: &[u8] = &[255; 32];

/// The rendered page made bilevel. One pass over the RGBA buffer thresholds it and builds the
/// gray histogram at once (eight white pixels at a time on the paper, which is most of a text
/// page); only when the histogram says "photograph" (or dithering is forced) is the page read
/// again for error diffusion.
fn to_bilevel(p: &Pixmap, mode: Bilevel, layout: &Layout) -> Result<Page, ErrorKind> {
    if mode == Bilevel::Dither {
        return Ok(bilevel::to_page(&RgbaRows(p), mode, layout.res)?.0);
    }
    let (w, h) = (usize::from(p.width()), usize::from(p.height()));
    let mut page = Page::new(w as u32, h as u32, layout.res)?;
    let bytes = p.data_as_u8_slice();
    let mut hist = [0u64; 256];
    for y in 0..h {
        let src = &bytes[y * w * 4..(y + 1) * w * 4];
        let dst = page.row_mut(y as u32);
        for (out, chunk) in dst.iter_mut().zip(src.chunks(32)) {
            if chunk == WHITE8 {
                hist[255] += 8;
                *out = 0;
                continue;
            }
            let mut byte = 0u8;
            for (i, px) in chunk.chunks_exact(4).enumerate() {
                // Premultiplied over opaque white: the colour channels are the colour.
                let l = ((u32::from(px[0]) * 77 + u32::from(px[1]) * 150 + u32::from(px[2]) * 29)
                    >> 8) as u8;
                hist[l as usize] += 1;
                if l < bilevel::THRESHOLD {
                    byte |= 0x80 >> i;
                }
            }
            *out = byte;
        }
    }
    if mode == Bilevel::Auto && bilevel::classify_histogram(&hist) == Bilevel::Dither {
        drop(page);
        return Ok(bilevel::to_page(&RgbaRows(p), Bilevel::Dither, layout.res)?.0);
    }
    Ok(page)
}

/// The rasterizer's RGBA buffer read as gray rows: premultiplied RGBA over opaque white to
/// luminance (ITU-R BT.601 weights, as poppler), one row at a time, so that no whole-page gray
/// copy is made (4 MB less per fine A4 page).
struct RgbaRows<'p>(&'p Pixmap);

impl bilevel::GrayRows for RgbaRows<'_> {
    fn width(&self) -> u32 {
        u32::from(self.0.width())
    }
    fn height(&self) -> u32 {
        u32::from(self.0.height())
    }
    fn row_into<'a>(&'a self, y: u32, buf: &'a mut [u8]) -> &'a [u8] {
        let w = self.0.width() as usize;
        let row = &self.0.data()[y as usize * w..(y as usize + 1) * w];
        for (d, c) in buf.iter_mut().zip(row) {
            // Most of a text page is paper: skip the arithmetic for pure white.
            *d = if (c.r & c.g & c.b) == 255 {
                255
            } else {
                ((u32::from(c.r) * 77 + u32::from(c.g) * 150 + u32::from(c.b) * 29) >> 8) as u8
            };
        }
        buf
    }
}

/// Prints a one-line notice at the bottom of the page over a white strip, so that what could
/// not be drawn is visible on the fax instead of silently missing.
pub fn stamp_notice(page: &mut Page, layout: &Layout, text: &str) {
    let px = pt_to_px(9.0, layout.res.x_dpi);
    let mut pen = Pen::new(px, layout.aspect());
    let (ascent, line) = pen.line_rows();
    let h = page.height();
    let band = line + layout.mm_y(1.0);
    if h <= band {
        return;
    }
    for y in h - band..h {
        page.row_mut(y).fill(0);
    }
    let max_chars = ((SCAN_LINE - 2 * layout.mm_x(4.0)) as f32 / pen.advance()) as usize;
    let text: String = text.chars().take(max_chars).collect();
    pen.draw_str(
        page,
        &text,
        i64::from(layout.mm_x(4.0)),
        i64::from(h - band + ascent),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Resolution;
    use crate::image::render::Unlimited;
    use crate::image::render::geometry::Paper;
    use hayro::vello_cpu::color::PremulRgba8;

    /// A PDF of US-Letter pages with the given content streams, all sharing an ExtGState
    /// dictionary: /Mul (Multiply blend mode) and /Half (fill opacity 0.5).
    fn tiny_pdf(contents: &[String]) -> Vec<u8> {
        let n = contents.len();
        let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
        let mut objs: Vec<Vec<u8>> = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes(),
            b"<< /Mul << /BM /Multiply >> /Half << /ca 0.5 >> >>".to_vec(),
        ];
        for (i, c) in contents.iter().enumerate() {
            objs.push(
                format!(
                    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
                     /Resources << /ExtGState 3 0 R >> >>",
                    5 + 2 * i
                )
                .into_bytes(),
            );
            objs.push(format!("<< /Length {} >>\nstream\n{c}\nendstream", c.len()).into_bytes());
        }
        write_pdf(&objs)
    }

    /// A PDF file of `objs` (object 1 the catalog), with a correct xref table.
    fn write_pdf(objs: &[Vec<u8>]) -> Vec<u8> {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objs.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            pdf.extend_from_slice(o);
            pdf.extend_from_slice(b"\nendobj\n");
        }
        let xref = pdf.len();
        pdf.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes(),
        );
        for o in offsets {
            pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        pdf.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objs.len() + 1
            )
            .as_bytes(),
        );
        pdf
    }

    fn layout() -> Layout {
        Layout {
            res: Resolution::FINE,
            paper: Paper::A4,
        }
    }

    /// Rows of `p` that have a black pixel.
    fn black_rows(p: &Page) -> Vec<u32> {
        (0..p.height())
            .filter(|&y| p.row(y).iter().any(|&b| b != 0))
            .collect()
    }

    #[test]
    fn squeezed_pages_expand_to_the_same_pixels() {
        let res = crate::image::Resolution::FINE;
        let mut pages = vec![
            Page::new(1728, 40, res).unwrap(),
            Page::new(13, 7, res).unwrap(),
        ];
        let mut black = Page::new(1728, 9, res).unwrap();
        for y in 0..9 {
            black.row_mut(y).fill(0xff);
        }
        pages.push(black);
        // Text-like rows: ink bytes with single and double white bytes between them.
        let mut seed = 0x9e37_79b9_u32;
        let mut text = Page::new(1731, 60, res).unwrap();
        for y in 0..60 {
            for b in text.row_mut(y).iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *b = if seed.is_multiple_of(3) {
                    seed as u8
                } else {
                    0
                };
            }
        }
        text.row_mut(0)[..3].copy_from_slice(&[0, 7, 0]);
        pages.push(Page::from_packed(1731, 60, res, text.data().to_vec()).unwrap());
        for p in &pages {
            let s = Squeezed::new(p, usize::MAX).unwrap();
            assert_eq!(&s.expand().unwrap(), p);
        }
        // A white page squeezes to a few bytes.
        assert!(Squeezed::new(&pages[0], 0).is_some_and(|s| s.size() < 1728 * 40 / 64 + 8));
        // An all-black page does not squeeze below its own size.
        assert!(Squeezed::new(&pages[2], pages[2].data().len() / 2).is_none());
        // Damaged squeezed data is an error, not a panic or a wrong page.
        let mut s = Squeezed::new(&pages[3], usize::MAX).unwrap();
        s.words.pop();
        assert!(s.expand().is_err());
    }

    #[test]
    fn unsupported_features_fall_back_to_hayro_with_the_same_result() {
        let plain = "0 0 0 rg 100 300 200 100 re f".to_string();
        let blended = format!("/Mul gs {plain}");
        let pdf = tiny_pdf(&[plain.clone(), blended.clone()]);
        let doc = open(&pdf).unwrap();
        let pages = doc.pages();
        let mut w = Worker::new(&PdfFonts::default(), &Arc::default());
        let t = Affine::scale(2.0);
        let outcomes: Vec<bool> = pages
            .iter()
            .map(|p| {
                matches!(
                    faxdev::render_page(
                        p,
                        t,
                        (1300, 1600),
                        &w.cache,
                        &w.settings,
                        &mut w.reuse,
                        &mut Meter::unlimited(),
                    ),
                    faxdev::Outcome::Drawn
                )
            })
            .collect();
        assert_eq!(outcomes, vec![true, false]);
        // Both pages come out with the same black rectangle: the second through hayro.
        let r = render(
            &pdf,
            &layout(),
            Bilevel::Auto,
            &Limits::default(),
            &PdfFonts::default(),
            &mut Unlimited,
        )
        .unwrap();
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        let (a, b) = (black_rows(&r.pages[0]), black_rows(&r.pages[1]));
        assert!(a.len() > 250, "{}", a.len());
        assert!(a.len().abs_diff(b.len()) <= 2);
        assert!(a[0].abs_diff(b[0]) <= 1);
    }

    /// A two-page PDF, both pages drawing the same colour JPEG over most of the page; the
    /// second page first sets an (identity) transfer function.
    fn jpeg_pdf(jpeg: &[u8], (w, h): (u32, u32)) -> Vec<u8> {
        let draw = "q 500 0 0 700 50 50 cm /Im0 Do Q";
        let objs: Vec<Vec<u8>> = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [5 0 R 7 0 R] /Count 2 >>".to_vec(),
            b"<< /Id << /TR /Identity >> >>".to_vec(),
            [
                format!(
                    "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace \
                     /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
                    jpeg.len()
                )
                .as_bytes(),
                jpeg,
                b"\nendstream",
            ]
            .concat(),
        ];
        let mut objs = objs;
        for (i, content) in [draw.to_string(), format!("/Id gs {draw}")]
            .iter()
            .enumerate()
        {
            objs.push(
                format!(
                    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
                     /Resources << {} /XObject << /Im0 4 0 R >> >> >>",
                    6 + 2 * i,
                    if i == 0 { "" } else { "/ExtGState 3 0 R" }
                )
                .into_bytes(),
            );
            objs.push(
                format!(
                    "<< /Length {} >>\nstream\n{content}\nendstream",
                    content.len()
                )
                .into_bytes(),
            );
        }
        write_pdf(&objs)
    }

    #[test]
    fn colour_jpeg_is_decoded_to_luma_only_with_hayros_tones() {
        let (iw, ih) = (96u32, 64u32);
        let rgb: Vec<u8> = (0..iw * ih)
            .flat_map(|i| {
                let (x, y) = (i % iw, i / iw);
                [
                    (x * 255 / iw) as u8,
                    (y * 255 / ih) as u8,
                    ((x + y) % 256) as u8,
                ]
            })
            .collect();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode(&rgb, iw, ih, image::ExtendedColorType::Rgb8)
            .unwrap();
        let pdf = jpeg_pdf(&jpeg, (iw, ih));
        let doc = open(&pdf).unwrap();
        let pages = doc.pages();
        let t = Affine::new([1.0, 0.0, 0.0, -1.0, 0.0, 792.0]);
        let draw = |i: usize| {
            let mut w = Worker::new(&PdfFonts::default(), &Arc::default());
            let out = faxdev::render_page(
                &pages[i],
                t,
                (612, 792),
                &w.cache,
                &w.settings,
                &mut w.reuse,
                &mut Meter::unlimited(),
            );
            assert!(matches!(out, faxdev::Outcome::Drawn));
            (w.reuse.canvas().gray.clone(), w.reuse.images().luma_bytes())
        };
        // Page 1: one byte a pixel, not three (hayro's RGB); page 2 (a transfer function in
        // its resources) goes through hayro.
        let (luma, held) = draw(0);
        assert_eq!(held, (iw * ih) as usize);
        let (rgb_path, held) = draw(1);
        assert_eq!(held, 0);
        // The same tones: the JPEG's Y is the BT.601 luminance of its RGB.
        let worst = luma
            .px
            .iter()
            .zip(&rgb_path.px)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 3, "{worst}");
        assert!(luma.px.iter().filter(|&&v| v < 200).count() > 100_000);
    }

    #[test]
    fn constant_opacity_is_blended_on_the_fast_path() {
        // Half-opaque black over white is mid-gray: dithered to about half black.
        let pdf = tiny_pdf(&["/Half gs 0 0 0 rg 0 0 612 792 re f".to_string()]);
        let doc = open(&pdf).unwrap();
        let mut w = Worker::new(&PdfFonts::default(), &Arc::default());
        let page = &doc.pages()[0];
        let drawn = faxdev::render_page(
            page,
            Affine::IDENTITY,
            (612, 792),
            &w.cache,
            &w.settings,
            &mut w.reuse,
            &mut Meter::unlimited(),
        );
        assert!(matches!(drawn, faxdev::Outcome::Drawn));
        assert_eq!(w.reuse.canvas().gray.at(300, 400), 128);
        let r = render(
            &pdf,
            &layout(),
            Bilevel::Auto,
            &Limits::default(),
            &PdfFonts::default(),
            &mut Unlimited,
        )
        .unwrap();
        let p = &r.pages[0];
        let share = p.black_pixels() as f64 / (f64::from(p.width()) * f64::from(p.height()));
        assert!((0.35..0.65).contains(&share), "{share}");
    }

    #[test]
    fn parallel_pages_come_back_in_order_and_the_budget_stops_in_order() {
        // Page i has a bar whose top is 30·i points down the page.
        let contents: Vec<String> = (0..9)
            .map(|i| format!("0 g 100 {} 300 20 re f", 700 - 30 * i))
            .collect();
        let pdf = tiny_pdf(&contents);
        let r = render(
            &pdf,
            &layout(),
            Bilevel::Auto,
            &Limits::default(),
            &PdfFonts::default(),
            &mut Unlimited,
        )
        .unwrap();
        let tops: Vec<u32> = r.pages.iter().map(|p| black_rows(p)[0]).collect();
        assert!(tops.windows(2).all(|w| w[1] > w[0] + 50), "{tops:?}");
        let mut budget = crate::image::render::budget::Recording::new(5, u64::MAX);
        let e = render(
            &pdf,
            &layout(),
            Bilevel::Auto,
            &Limits::default(),
            &PdfFonts::default(),
            &mut budget,
        )
        .err()
        .unwrap();
        assert_eq!(e, ErrorKind::TimeBudget { page: 5 });
        assert_eq!(budget.asked(), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn operators_are_counted_through_forms_once_per_use() {
        // Page: "/F Do" three times and a rectangle; the form: 4 operators.
        let objs = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
               /Resources << /XObject << /F 5 0 R >> >> >>"
                .to_vec(),
            b"<< /Length 29 >>\nstream\n/F Do /F Do /F Do 0 0 9 9 re f\nendstream".to_vec(),
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 9 9] /Resources << >> /Length 22 >>\n\
               stream\n0 g 1 1 5 5 re f n q Q\nendstream"
                .to_vec(),
        ];
        let pdf = write_pdf(&objs);
        let doc = open(&pdf).unwrap();
        let page = &doc.pages()[0];
        // 3 Do + re + f on the page, 6 operators (g re f n q Q) in each of 3 uses.
        assert_eq!(faxdev::operator_count(page, u64::MAX), 5 + 3 * 6);
        // The count stops once it reaches its cap (answering at least the cap).
        let capped = faxdev::operator_count(page, 4);
        assert!((4..5 + 3 * 6).contains(&capped), "{capped}");
    }

    #[test]
    fn a_page_for_hayro_is_charged_its_estimate_before_hayro_runs() {
        // A blend mode sends the page to hayro; its path has 5000 segments.
        let mut path = String::from("/Mul gs 0 G 0.1 w 10 10 m ");
        for i in 0..5000 {
            path.push_str(&format!("{} {} l ", 10 + i % 500, 10 + (i * 7) % 700));
        }
        path.push('S');
        let pdf = tiny_pdf(&[path]);
        let run = |limit: u64| {
            render(
                &pdf,
                &layout(),
                Bilevel::Auto,
                &Limits::default(),
                &PdfFonts::default(),
                &mut crate::image::render::budget::Limited::work(limit),
            )
        };
        // The estimate (5000 × GENERAL_SEGMENT) alone is past this limit: refused with no
        // drawing by hayro (which could not be stopped).
        let limit = 5000 * units::GENERAL_SEGMENT;
        assert_eq!(
            run(limit).err(),
            Some(ErrorKind::WorkBudget { page: 1, limit })
        );
        assert!(run(4 * limit).is_ok());
    }

    #[test]
    fn gray_threshold_matches_the_general_path() {
        use super::faxdev::canvas::{Canvas, Ink};
        use crate::image::render::gray::Gray;
        let layout = Layout {
            res: Resolution::FINE,
            paper: Paper::A4,
        };
        let (w, h) = (61u32, 13u32);
        let mut c = Canvas::new(Gray::white(1, 1));
        c.reset(w, h);
        // Black/white runs (the multiply path), mid-tones (the per-pixel path), untouched
        // rows and columns (skipped).
        for y in 0..h as i32 {
            if y % 4 == 3 {
                continue;
            }
            for x in 0..w as i32 {
                let v = ((x * 37 + y * 11) % 7) as u8;
                let gray = match (y % 3, v) {
                    (0, 0..=3) => 0,
                    (0, _) => 255,
                    (_, v) => v * 40,
                };
                if (x + y) % 5 != 0 {
                    c.span(y, x, x + 1, Ink { gray, alpha: 255 });
                }
            }
        }
        for mode in [Bilevel::Auto, Bilevel::Threshold, Bilevel::Dither] {
            let fast = gray_to_bilevel(&c, mode, &layout).unwrap();
            let (general, _) = bilevel::to_page(&c.gray, mode, layout.res).unwrap();
            assert_eq!(fast, general, "{mode:?}");
        }
    }

    #[test]
    fn fused_threshold_matches_the_general_path() {
        let (w, h) = (37u16, 9u16);
        let mut p = Pixmap::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let v = ((u32::from(x) * 13 + u32::from(y) * 7) % 256) as u8;
                let c = if (x + y) % 3 == 0 { 255 } else { v };
                p.set_pixel(
                    x,
                    y,
                    PremulRgba8 {
                        r: c,
                        g: c / 2,
                        b: 255 - c,
                        a: 255,
                    },
                );
            }
        }
        let layout = Layout {
            res: Resolution::FINE,
            paper: Paper::A4,
        };
        for mode in [Bilevel::Auto, Bilevel::Threshold, Bilevel::Dither] {
            let fused = to_bilevel(&p, mode, &layout).unwrap();
            let (general, _) = bilevel::to_page(&RgbaRows(&p), mode, layout.res).unwrap();
            assert_eq!(fused, general, "{mode:?}");
        }
    }
}
