//! The engine's page source and sink over [`crate::image`]: [`Page`] bitmaps coded with the
//! T.4/T.6 codecs in the parameters the DCS fixed, and received data decoded row by row into
//! pages with their copy-quality figures.

use super::dis::{Coding, VResolution, Wanted, Width};
use super::page::{PageCoding, PageQuality, PageSink, PageSource, SinkError, SourceError};
use crate::image::codec::{
    self, BitOrder, DecodeMode, DecodeOptions, Decoder, EncodeOptions, Encoder,
};
use crate::image::{Page, Resolution};
use std::sync::{Arc, Mutex};

/// The vertical resolution a page was made at (by its y dpi: ≥ 300 superfine, ≥ 150 fine).
pub fn page_resolution(p: &Page) -> VResolution {
    resolution_class(p.resolution())
}

/// The T.30 vertical resolution class of `r`.
fn resolution_class(r: Resolution) -> VResolution {
    let y = r.y_dpi;
    if y >= 300.0 {
        VResolution::Superfine
    } else if y >= 150.0 {
        VResolution::Fine
    } else {
        VResolution::Standard
    }
}

/// The narrowest T.4 width that holds `pels`.
pub fn width_for(pels: u32) -> Width {
    if pels <= 1728 {
        Width::A4
    } else if pels <= 2048 {
        Width::B4
    } else {
        Width::A3
    }
}

fn resolution_of(v: VResolution) -> Resolution {
    match v {
        VResolution::Standard => Resolution::STANDARD,
        VResolution::Fine => Resolution::FINE,
        VResolution::Superfine => Resolution::SUPERFINE,
    }
}

fn codec_coding(c: &PageCoding) -> codec::Coding {
    match c.coding {
        Coding::Mh => codec::Coding::Mh,
        Coding::Mr => codec::Coding::Mr { k: c.k },
        Coding::Mmr => codec::Coding::Mmr,
    }
}

/// Lines per T.4 row at each resolution, relative to standard.
fn factor(v: VResolution) -> usize {
    match v {
        VResolution::Standard => 1,
        VResolution::Fine => 2,
        VResolution::Superfine => 4,
    }
}

/// Where a [`PagesSource`] gets its pages: all in memory, or made one at a time (a long
/// document read from disk page by page, so memory stays flat however long the fax is).
pub trait PageProvider: Send {
    /// Pages in all.
    fn count(&self) -> usize;
    /// The width (pels) and resolution page `page` will have, without making it. A provider
    /// that cannot tell before making the page answers for the pages it has made, and for
    /// later ones as the last (our documents are made in one layout).
    fn shape(&self, page: usize) -> Option<(u32, Resolution)>;
    /// Makes page `page`. The engine asks in order and may ask for the same page again
    /// (retrain, RTN); asking for an earlier page is allowed but may be slow.
    fn page(&mut self, page: usize) -> Result<Page, String>;
}

/// Pages held in memory.
struct InMemory(Vec<Page>);

impl PageProvider for InMemory {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn shape(&self, page: usize) -> Option<(u32, Resolution)> {
        self.0.get(page).map(|p| (p.width(), p.resolution()))
    }

    fn page(&mut self, page: usize) -> Result<Page, String> {
        self.0
            .get(page)
            .cloned()
            .ok_or_else(|| "no such page".into())
    }
}

/// Pages to send, grouped in documents (EOM between documents).
pub struct PagesSource {
    pages: Box<dyn PageProvider>,
    ends: Vec<bool>,
    /// The page last made, kept for the engine asking again (retrain, RTN, ECM repeats).
    current: Option<(usize, Page)>,
}

impl PagesSource {
    /// The documents, each a list of pages, in order. Empty documents are skipped.
    pub fn new(documents: Vec<Vec<Page>>) -> PagesSource {
        let mut pages = Vec::new();
        let mut ends = Vec::new();
        for doc in documents {
            let n = doc.len();
            for (i, p) in doc.into_iter().enumerate() {
                pages.push(p);
                ends.push(i + 1 == n);
            }
        }
        PagesSource {
            pages: Box::new(InMemory(pages)),
            ends,
            current: None,
        }
    }

    /// One document whose pages `provider` makes one at a time.
    pub fn one_at_a_time(provider: Box<dyn PageProvider>) -> PagesSource {
        let n = provider.count();
        PagesSource {
            ends: (0..n).map(|i| i + 1 == n).collect(),
            pages: provider,
            current: None,
        }
    }
}

impl PageSource for PagesSource {
    fn page_count(&self) -> usize {
        self.pages.count()
    }

    fn ends_document(&self, page: usize) -> bool {
        self.ends.get(page).copied().unwrap_or(true)
    }

    fn wanted(&self, page: usize) -> Wanted {
        match self.pages.shape(page) {
            Some((width, res)) => Wanted {
                resolution: resolution_class(res),
                width: width_for(width),
            },
            None => Wanted {
                resolution: VResolution::Standard,
                width: Width::A4,
            },
        }
    }

    /// Codes the page; a page made at a finer resolution than negotiated keeps every 2nd / 4th
    /// row; rows are cut or padded (white) to the negotiated width.
    fn encode(&mut self, page: usize, coding: &PageCoding) -> Result<Vec<u8>, SourceError> {
        let err = |reason: String| SourceError { page, reason };
        if self.current.as_ref().is_none_or(|(n, _)| *n != page) {
            // The page before is let go first: one page in memory at a time.
            self.current = None;
            let made = self.pages.page(page).map_err(err)?;
            self.current = Some((page, made));
        }
        let Some((_, p)) = &self.current else {
            return Err(err("no such page".into()));
        };
        let have = factor(page_resolution(p));
        let want = factor(coding.resolution);
        let step = (have / want).max(1);
        let width = coding.width.pels();
        let opts = EncodeOptions {
            coding: codec_coding(coding),
            align_eol: false,
            min_bits_per_line: coding.min_line_bits,
            end_marker: true,
            bit_order: BitOrder::LsbFirst,
        };
        let mut enc = Encoder::new(width, opts).map_err(|e| err(e.to_string()))?;
        let stride = Page::stride_for(width);
        let mut row = vec![0u8; stride];
        let mut out = Vec::new();
        for y in (0..p.height()).step_by(step) {
            let src = p.row(y);
            row.fill(0);
            let n = src.len().min(stride);
            row[..n].copy_from_slice(&src[..n]);
            if p.width() > width && !width.is_multiple_of(8) {
                row[stride - 1] &= 0xFF << (8 - width % 8);
            }
            enc.encode_row(&row, &mut out)
                .map_err(|e| err(e.to_string()))?;
        }
        enc.finish(&mut out);
        Ok(out)
    }
}

/// A received page, with its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPage {
    /// The decoded bitmap (bad rows replaced by the previous row).
    pub page: Page,
    /// Copy quality.
    pub quality: PageQuality,
}

/// Where a [`PagesSink`] puts each accepted page instead of its in-memory list: the caller's
/// store (the daemon appends it to the reception's file on disk and fsyncs it). An error refuses
/// the page and ends the call with [`super::Cause::SinkError`].
pub type PageStore = Box<dyn FnMut(ReceivedPage) -> Result<(), SinkError> + Send>;

/// Decodes received page data into [`Page`]s. Accepted pages are collected in a shared list
/// ([`PagesSink::pages`]) so the caller can take them while the engine owns the sink, or, for
/// a sink made with [`PagesSink::storing`], handed to a store as each is accepted (memory then
/// stays flat however long the fax is).
pub struct PagesSink {
    current: Option<(PageCoding, Vec<u8>)>,
    decoded: Option<ReceivedPage>,
    accepted: Arc<Mutex<Vec<ReceivedPage>>>,
    store: Option<PageStore>,
    max_rows: u32,
    not_ready: u32,
}

impl Default for PagesSink {
    fn default() -> Self {
        PagesSink::new()
    }
}

impl PagesSink {
    /// A sink with the default row limit (65 535 rows per page, T.4 pages are far shorter).
    pub fn new() -> PagesSink {
        PagesSink {
            current: None,
            decoded: None,
            accepted: Arc::new(Mutex::new(Vec::new())),
            store: None,
            max_rows: 65_535,
            not_ready: 0,
        }
    }

    /// A sink that hands each page to `store` the moment it is accepted — before the engine
    /// answers MCF, so a page the sender was told is received is already stored — and keeps
    /// none in memory ([`PagesSink::pages`] stays empty).
    pub fn storing(store: PageStore) -> PagesSink {
        PagesSink {
            store: Some(store),
            ..PagesSink::new()
        }
    }

    /// Answers "not ready" (Annex A RNR) to the next `n` readiness checks: for testing the
    /// flow control path.
    pub fn with_not_ready(mut self, n: u32) -> PagesSink {
        self.not_ready = n;
        self
    }

    /// The accepted pages, shared.
    pub fn pages(&self) -> Arc<Mutex<Vec<ReceivedPage>>> {
        Arc::clone(&self.accepted)
    }
}

impl PageSink for PagesSink {
    fn ready(&mut self) -> bool {
        if self.not_ready > 0 {
            self.not_ready -= 1;
            false
        } else {
            true
        }
    }

    fn start_page(&mut self, coding: &PageCoding) {
        self.current = Some((*coding, Vec::new()));
        self.decoded = None;
    }

    fn data(&mut self, bytes: &[u8]) {
        if let Some((_, buf)) = self.current.as_mut() {
            buf.extend_from_slice(bytes);
        }
    }

    fn end_page(&mut self) -> PageQuality {
        let Some((coding, data)) = self.current.take() else {
            return PageQuality::default();
        };
        let width = coding.width.pels();
        let opts = DecodeOptions {
            coding: codec_coding(&coding),
            mode: DecodeMode::Received,
            bit_order: BitOrder::LsbFirst,
            rows_byte_aligned: false,
            max_rows: self.max_rows,
        };
        let Ok(mut dec) = Decoder::new(&data, width, opts) else {
            return PageQuality::default();
        };
        let stride = Page::stride_for(width);
        let mut row = vec![0u8; stride];
        let mut rows = Vec::new();
        let mut n = 0u32;
        while let Ok(Some(_)) = dec.next_row(&mut row) {
            rows.extend_from_slice(&row);
            n += 1;
        }
        let q = dec.quality();
        let quality = PageQuality {
            rows: q.rows,
            bad_rows: q.bad_rows,
            longest_bad_run: q.longest_bad_run,
        };
        if n > 0
            && let Ok(page) = Page::from_packed(width, n, resolution_of(coding.resolution), rows)
        {
            self.decoded = Some(ReceivedPage { page, quality });
        }
        quality
    }

    fn finish_page(&mut self, accepted: bool) -> Result<(), SinkError> {
        let (true, Some(p)) = (accepted, self.decoded.take()) else {
            return Ok(());
        };
        if let Some(store) = self.store.as_mut() {
            return store(p);
        }
        self.accepted
            .lock()
            .map_err(|_| SinkError("page list poisoned".into()))?
            .push(p);
        Ok(())
    }
}
