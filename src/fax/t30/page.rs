//! The engine's page source and sink: how T.30 asks for a page coded with the negotiated
//! parameters, and hands received page data to a decoder that judges copy quality.
//!
//! The engine never codes or decodes images itself: the T.4/T.6 codecs live in
//! [`crate::image`]. A source codes a page in the coding, width, K factor and minimum scan line
//! length the DCS fixed; a sink decodes row by row as bytes arrive and reports how many rows were
//! bad, which the engine turns into MCF / RTP / RTN (T.30 §5.3.6.1.5 leaves the thresholds open;
//! ours are [`QualityThresholds`]).

use super::dis::{Coding, VResolution, Wanted, Width};
use super::fcf::Fcf;

/// How a page must be (or was) coded on this call: fixed by the DCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCoding {
    /// MH, MR or MMR.
    pub coding: Coding,
    /// Vertical resolution; horizontal is 8 pels/mm.
    pub resolution: VResolution,
    /// Line width.
    pub width: Width,
    /// T.4 §4.2.1.3.1: an MR line is coded one-dimensionally at least every K lines (2 at
    /// standard, 4 at fine, 8 ours at superfine). Meaningless for MH and MMR.
    pub k: u32,
    /// T.4 §4.1.2 / T.30 Table 2 bits 21–23: each coded line (EOL included) must take at least
    /// this many bits, padded with fill before the EOL. 0 under ECM (T.30 Annex A.1).
    pub min_line_bits: u32,
    /// Annex A: the data travels in ECM frames (then no RTC; T.4 §4.1.4 / T.6 EOFB instead).
    pub ecm: bool,
}

impl PageCoding {
    /// K factor for MR at `res` (T.4 §4.2.1.3.1).
    pub fn k_for(res: VResolution) -> u32 {
        match res {
            VResolution::Standard => 2,
            VResolution::Fine => 4,
            VResolution::Superfine => 8,
        }
    }
}

/// Why the source could not supply a page: the document is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("page {page} could not be coded: {reason}")]
pub struct SourceError {
    /// Zero-based page index.
    pub page: usize,
    /// What went wrong.
    pub reason: String,
}

/// Pages to send. Pages are numbered from 0 across all documents of the call; a document
/// boundary (EOM, T.30 §5.3.6.1.4) falls after each page for which
/// [`PageSource::ends_document`] is true.
pub trait PageSource {
    /// Number of pages in the whole call.
    fn page_count(&self) -> usize;
    /// Whether page `page` is the last of its document (the last page of the call always is).
    fn ends_document(&self, page: usize) -> bool;
    /// Resolution and width the document of page `page` was made for. The engine may negotiate
    /// a lower resolution; the source must then re-sample (a standard-only receiver exists).
    fn wanted(&self, page: usize) -> Wanted;
    /// The page coded as `coding` says, ready for the line: for non-ECM, T.4 lines with fill
    /// and RTC (T.4 §4.1.4); for ECM, the coded page as one byte stream the engine cuts into
    /// frames.
    fn encode(&mut self, page: usize, coding: &PageCoding) -> Result<Vec<u8>, SourceError>;
}

/// What the decoder found in one page (the copy-quality figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageQuality {
    /// Rows decoded (good and bad).
    pub rows: u32,
    /// Rows that failed to decode and were replaced (e.g. by the previous row).
    pub bad_rows: u32,
    /// Longest run of consecutive bad rows.
    pub longest_bad_run: u32,
}

/// Why a sink could not take a page: local trouble (disk, limits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("received page could not be stored: {0}")]
pub struct SinkError(pub String);

/// Where received pages go. Call order for each page: `start_page`, `data`*, `end_page`, then
/// `finish_page` with the engine's verdict. After RTN the same page arrives again from the start.
pub trait PageSink {
    /// Annex A flow control: `false` makes the engine answer RNR (receive not ready) until the
    /// sink catches up. Sinks that never fall behind keep the default.
    fn ready(&mut self) -> bool {
        true
    }
    /// A page begins, coded as given.
    fn start_page(&mut self, coding: &PageCoding);
    /// Page data in order, as it arrives (non-ECM) or as each ECM block completes.
    fn data(&mut self, bytes: &[u8]);
    /// The page data ended (non-ECM: carrier dropped after RTC; ECM: the last block of the
    /// page is complete). Returns the copy-quality figures.
    fn end_page(&mut self) -> PageQuality;
    /// The verdict: `true` when the page was accepted (MCF/RTP) and is kept, `false` when it
    /// was refused (RTN) and will be sent again or lost. An error refuses the page and ends the
    /// call with [`super::Cause::SinkError`].
    fn finish_page(&mut self, accepted: bool) -> Result<(), SinkError>;
    /// The engine's verdict on a page and the post-message command that ended it (MPS, EOM,
    /// EOP or their PRI-Q forms, T.30 §5.3.6.1.4), before the answer goes out: called after
    /// `end_page`, before `finish_page`, which gets the verdict returned. A sink that stands
    /// for a Class 2.0 host (`faxgate modem emulate`, where T.32 §8.3.4 holds the post-page
    /// response until the host's `+FDR` and lets `+FPS=n` overrule it) may change it; the
    /// others keep the default. Under ECM the page is complete by construction (Annex A has no
    /// RTN): a `Bad` answer there is not taken.
    fn review(&mut self, _post: Fcf, verdict: Verdict) -> Verdict {
        verdict
    }
}

/// Copy-quality thresholds for the receive verdict. T.30 gives none; these are ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityThresholds {
    /// RTN when more than this per mille of rows are bad.
    pub rtn_bad_per_mille: u32,
    /// RTN when a run of bad rows is longer than this.
    pub rtn_longest_run: u32,
    /// RTP (accepted, but retrain) when more than this per mille are bad.
    pub rtp_bad_per_mille: u32,
}

impl Default for QualityThresholds {
    /// 5 % bad rows or 20 consecutive bad rows (about 2.6 mm at fine) refuses the page; more
    /// than 1 % asks for a retrain.
    fn default() -> Self {
        QualityThresholds {
            rtn_bad_per_mille: 50,
            rtn_longest_run: 20,
            rtp_bad_per_mille: 10,
        }
    }
}

/// The receiver's verdict on a non-ECM page (T.30 §5.3.6.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// MCF: page good.
    Good,
    /// RTP: page acceptable, retrain before continuing.
    Retrain,
    /// RTN: page not acceptable.
    Bad,
}

impl QualityThresholds {
    /// Judges a page.
    pub fn judge(&self, q: &PageQuality) -> Verdict {
        if q.rows == 0 {
            return Verdict::Bad;
        }
        let per_mille = u64::from(q.bad_rows) * 1000 / u64::from(q.rows);
        if per_mille > u64::from(self.rtn_bad_per_mille) || q.longest_bad_run > self.rtn_longest_run
        {
            Verdict::Bad
        } else if per_mille > u64::from(self.rtp_bad_per_mille) {
            Verdict::Retrain
        } else {
            Verdict::Good
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_judge() {
        let t = QualityThresholds::default();
        let q = |rows, bad, run| PageQuality {
            rows,
            bad_rows: bad,
            longest_bad_run: run,
        };
        assert_eq!(t.judge(&q(1000, 0, 0)), Verdict::Good);
        assert_eq!(t.judge(&q(1000, 20, 2)), Verdict::Retrain);
        assert_eq!(t.judge(&q(1000, 60, 2)), Verdict::Bad);
        assert_eq!(t.judge(&q(1000, 21, 21)), Verdict::Bad);
        assert_eq!(t.judge(&q(0, 0, 0)), Verdict::Bad);
    }
}
