//! The row-at-a-time decoder (T.4 §4.1, §4.2; T.6 §2), strict or for received lines.

use thiserror::Error;

use super::bits::{BitOrder, BitReader};
use super::runs::WordOut;
use super::tables::{
    BLACK_BITS, BLACK_DECODE, MODE_DECODE, Mode, RunKind, WHITE_BITS, WHITE_DECODE,
};
use super::{Coding, MAX_WIDTH};

/// How errors in the data are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeMode {
    /// For files: the first coding error is a [`DecodeError`] naming the row.
    Strict,
    /// For page data received from a modem without ECM (T.4 §4.1.2 "the EOL … may be used for
    /// resynchronisation after an error"): a corrupt line is replaced by the previous good line,
    /// decoding resumes at the next EOL (for MR: at the next 1-D line), and the bad lines are
    /// counted in [`CopyQuality`].
    Received,
}

/// What to decode and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// MH, MR (K is not needed: the tag bits say) or MMR.
    pub coding: Coding,
    /// Strict or received-line.
    pub mode: DecodeMode,
    /// Bit order of the input bytes.
    pub bit_order: BitOrder,
    /// TIFF Compression 2 (CCITT RLE): MH rows with no EOLs, each starting on a byte boundary.
    pub rows_byte_aligned: bool,
    /// Most rows one page may have; decoding ends with [`PageEnd::RowLimit`] there (the limit
    /// on untrusted page length).
    pub max_rows: u32,
}

impl DecodeOptions {
    /// Strict decoding of `coding`, MSB first, rows limited to 65 535.
    pub fn new(coding: Coding) -> DecodeOptions {
        DecodeOptions {
            coding,
            mode: DecodeMode::Strict,
            bit_order: BitOrder::MsbFirst,
            rows_byte_aligned: false,
            max_rows: 65_535,
        }
    }
}

/// What went wrong in the coded data (the sender's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Bits that are no code of the table in use.
    InvalidCode,
    /// An EOL (or EOFB) before the line reached its width: a short line.
    ShortLine,
    /// Runs adding up past the width: an overlong line.
    LongLine,
    /// A line that reached its width but was not followed by an EOL (received mode only).
    MissingEol,
    /// A vertical or pass mode pointing outside the line or backwards.
    BadPosition,
    /// The T.4 §4.2.1.3.4 uncompressed-mode extension, which no faxgate DIS offers.
    Uncompressed,
    /// The data ended in the middle of a line.
    Truncated,
    /// The page ended (RTC/EOFB/end of data) before the rows the caller asked for.
    PageTooShort,
    /// The width asked for is zero or above [`MAX_WIDTH`] (the caller's fault).
    BadWidth,
    /// The row buffer given is shorter than the width needs (the caller's fault).
    ShortBuffer,
}

/// A strict-mode decoding failure: what and in which row (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("coded data is corrupt at row {row} (bit {bit}): {kind:?}")]
pub struct DecodeError {
    /// Row being decoded.
    pub row: u32,
    /// Bit offset in the data where the error was seen.
    pub bit: u64,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// Why a page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEnd {
    /// T.4 §4.1.4 return to control (6 × EOL).
    Rtc,
    /// T.6 §2.4.3 end of facsimile block.
    Eofb,
    /// The data simply ended.
    EndOfData,
    /// [`DecodeOptions::max_rows`] reached.
    RowLimit,
    /// MMR data corrupt in received mode: there is no EOL to resynchronise at.
    Corrupt,
}

/// How a row came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// Decoded as sent.
    Good,
    /// Corrupt: replaced by the previous row (received mode).
    Replaced,
}

/// Copy quality of a received page (the figures T.30 §5.3.6.2 leaves to the receiver for
/// choosing MCF, RTP or RTN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyQuality {
    /// Rows produced.
    pub rows: u32,
    /// Rows that were corrupt and replaced.
    pub bad_rows: u32,
    /// Longest run of consecutive bad rows.
    pub longest_bad_run: u32,
}

/// Decodes one page, row by row, from a byte slice.
#[derive(Debug)]
pub struct Decoder<'a> {
    r: BitReader<'a>,
    width: u32,
    opts: DecodeOptions,
    /// Changing elements of the row being decoded.
    cur: Vec<u32>,
    /// Reference line (previous row's changes plus end sentinels).
    reference: Vec<u32>,
    /// The last row produced, packed (for replacing bad rows).
    last_row: Vec<u8>,
    quality: CopyQuality,
    bad_run: u32,
    /// MR: the reference line is untrustworthy until the next 1-D line.
    mr_broken: bool,
    end: Option<PageEnd>,
    /// An EOL has been consumed that introduces the next row.
    eol_pending: bool,
    /// MR tag of the pending EOL: the next row is 1-D.
    next_1d: bool,
}

enum Step {
    Row,
    End(PageEnd),
}

impl<'a> Decoder<'a> {
    /// A decoder for rows `width` pixels wide over one page of coded `data`.
    pub fn new(
        data: &'a [u8],
        width: u32,
        opts: DecodeOptions,
    ) -> Result<Decoder<'a>, DecodeError> {
        if width == 0 || width > MAX_WIDTH {
            return Err(DecodeError {
                row: 0,
                bit: 0,
                kind: DecodeErrorKind::BadWidth,
            });
        }
        let cap = width as usize + 8;
        let mut reference = Vec::with_capacity(cap);
        reference.extend_from_slice(&[width; 4]);
        Ok(Decoder {
            r: BitReader::new(data, opts.bit_order),
            width,
            opts,
            cur: Vec::with_capacity(cap),
            reference,
            last_row: vec![0; width.div_ceil(8) as usize],
            quality: CopyQuality::default(),
            bad_run: 0,
            mr_broken: false,
            end: None,
            eol_pending: false,
            next_1d: true,
        })
    }

    /// Copy-quality figures so far.
    pub fn quality(&self) -> CopyQuality {
        self.quality
    }

    /// Why the page ended, once it has.
    pub fn end(&self) -> Option<PageEnd> {
        self.end
    }

    /// Bits consumed so far.
    pub fn bit_position(&self) -> u64 {
        self.r.bit_position()
    }

    /// Decodes the next row into `row` (at least `ceil(width / 8)` bytes; pad bits cleared).
    /// `Ok(None)` at the end of the page (see [`Decoder::end`]); errors only in strict mode.
    pub fn next_row(&mut self, row: &mut [u8]) -> Result<Option<RowKind>, DecodeError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let stride = self.last_row.len();
        if row.len() < stride {
            return Err(self.err(DecodeErrorKind::ShortBuffer));
        }
        let row = &mut row[..stride];
        if self.quality.rows >= self.opts.max_rows {
            self.end = Some(PageEnd::RowLimit);
            return Ok(None);
        }
        match self.decode_line(row) {
            Ok(Step::Row) => {
                if self.opts.mode == DecodeMode::Received {
                    // Kept only where a bad row may need it.
                    self.last_row.copy_from_slice(row);
                }
                self.accept_reference();
                self.quality.rows += 1;
                self.bad_run = 0;
                Ok(Some(RowKind::Good))
            }
            Ok(Step::End(e)) => {
                self.end = Some(e);
                Ok(None)
            }
            Err(kind) => {
                if self.opts.mode == DecodeMode::Strict {
                    self.end = Some(PageEnd::Corrupt);
                    return Err(self.err(kind));
                }
                if self.opts.coding == Coding::Mmr || kind == DecodeErrorKind::Truncated {
                    // Nothing to resynchronise at: the page ends here, this row lost.
                    self.end = Some(if kind == DecodeErrorKind::Truncated {
                        PageEnd::EndOfData
                    } else {
                        PageEnd::Corrupt
                    });
                    if kind == DecodeErrorKind::Truncated {
                        return Ok(None);
                    }
                }
                self.replace(row);
                if self.end.is_none() {
                    self.resync();
                }
                Ok(Some(RowKind::Replaced))
            }
        }
    }

    fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            row: self.quality.rows,
            bit: self.r.bit_position(),
            kind,
        }
    }

    /// Received mode: the bad row becomes a copy of the last one (T.4 Appendix I practice).
    fn replace(&mut self, row: &mut [u8]) {
        row.copy_from_slice(&self.last_row);
        self.quality.rows += 1;
        self.quality.bad_rows += 1;
        self.bad_run += 1;
        self.quality.longest_bad_run = self.quality.longest_bad_run.max(self.bad_run);
        if let Coding::Mr { .. } = self.opts.coding {
            self.mr_broken = true;
        }
    }

    /// Skips to just after the next EOL (≥ 11 zeros then a one), reading the MR tag.
    fn resync(&mut self) {
        self.eol_pending = false;
        loop {
            let z = self.r.skip_zeros();
            if self.r.at_end() {
                return;
            }
            self.r.consume(1);
            if z >= 11 {
                self.after_eol();
                return;
            }
        }
    }

    fn accept_reference(&mut self) {
        std::mem::swap(&mut self.cur, &mut self.reference);
        let w = self.width;
        self.reference.extend_from_slice(&[w, w, w]);
    }

    /// The EOL is consumed: read the MR tag, note the pending row.
    fn after_eol(&mut self) {
        self.eol_pending = true;
        if let Coding::Mr { .. } = self.opts.coding {
            self.next_1d = self.r.peek(1) == 1;
            self.r.consume(1);
        }
    }

    /// True when the next bits are an EOL (with any fill before it); consumes it.
    fn take_eol(&mut self) -> bool {
        let p = self.r.peek(12);
        if p == 1 {
            self.r.consume(12);
            true
        } else if p == 0 {
            let z = self.r.skip_zeros();
            if self.r.at_end() || z < 11 {
                return false;
            }
            self.r.consume(1);
            true
        } else {
            false
        }
    }

    /// Decodes the next line into `row` (and its changing elements into `cur`).
    fn decode_line(&mut self, row: &mut [u8]) -> Result<Step, DecodeErrorKind> {
        match self.opts.coding {
            Coding::Mmr => {
                if self.r.remaining_bits() == 0 {
                    return Ok(Step::End(PageEnd::EndOfData));
                }
                if self.r.peek(24) == 0x001001 {
                    self.r.consume(24);
                    return Ok(Step::End(PageEnd::Eofb));
                }
                if self.r.remaining_bits() < 8 && self.r.peek(self.r.remaining_bits() as u32) == 0 {
                    return Ok(Step::End(PageEnd::EndOfData));
                }
                self.line_2d(row)?;
                Ok(Step::Row)
            }
            Coding::Mh | Coding::Mr { .. } => {
                if self.opts.rows_byte_aligned {
                    self.r.align_to_byte();
                    if self.r.remaining_bits() == 0 {
                        return Ok(Step::End(PageEnd::EndOfData));
                    }
                    self.line_1d(row)?;
                    return Ok(Step::Row);
                }
                if !self.eol_pending {
                    if self.take_eol() {
                        self.after_eol();
                    } else if self.r.at_end() {
                        return Ok(Step::End(PageEnd::EndOfData));
                    } else if self.quality.rows > 0 && self.opts.mode == DecodeMode::Received {
                        return Err(DecodeErrorKind::MissingEol);
                    } else if let Coding::Mr { .. } = self.opts.coding {
                        // No EOL, so no tag: only the first line may be like this (it is 1-D).
                        if self.quality.rows > 0 {
                            return Err(DecodeErrorKind::MissingEol);
                        }
                        self.next_1d = true;
                    }
                }
                self.eol_pending = false;
                // RTC: another EOL right after this one (T.4 §4.1.4, no fill inside RTC).
                let rtc = match self.opts.coding {
                    Coding::Mr { .. } => self.r.peek(13) == 0b11,
                    _ => self.r.peek(12) == 1,
                };
                if rtc {
                    return Ok(Step::End(PageEnd::Rtc));
                }
                if self.r.at_end()
                    || (self.r.remaining_bits() < 12
                        && self.r.peek(self.r.remaining_bits().max(1) as u32) == 0)
                {
                    return Ok(Step::End(PageEnd::EndOfData));
                }
                let one_d = match self.opts.coding {
                    Coding::Mr { .. } => self.next_1d,
                    _ => true,
                };
                if one_d {
                    self.line_1d(row)?;
                    self.mr_broken = false;
                } else {
                    self.line_2d(row)?;
                    if self.mr_broken {
                        // Decodable, but against a substituted reference: still bad.
                        return Err(DecodeErrorKind::BadPosition);
                    }
                }
                if self.opts.mode == DecodeMode::Received {
                    // The line must be followed by an EOL (or the end): else it was not what
                    // it seemed (a bit error that still decoded to the right width).
                    if self.take_eol() {
                        self.after_eol();
                    } else if !self.r.at_end() && self.r.peek(8) != 0 {
                        return Err(DecodeErrorKind::MissingEol);
                    }
                }
                Ok(Step::Row)
            }
        }
    }

    fn finish_line(&mut self) -> Result<(), DecodeErrorKind> {
        if self.r.overrun() {
            return Err(DecodeErrorKind::Truncated);
        }
        self.cur.push(self.width);
        Ok(())
    }

    /// T.4 §4.1: alternating white and black runs, white first, adding up to the width.
    fn line_1d(&mut self, row: &mut [u8]) -> Result<(), DecodeErrorKind> {
        // The reader and the output list are worked on as locals so that the bit buffer stays
        // in registers for the whole line.
        let mut r = self.r.clone();
        let mut cur = std::mem::take(&mut self.cur);
        let mut out = RowOut::new(row);
        // MH never uses a reference line: only MR needs the changing elements kept.
        let keep = self.opts.coding != Coding::Mh;
        let res = decode_1d(&mut r, self.width, &mut cur, &mut out, keep);
        out.finish(self.width);
        self.r = r;
        self.cur = cur;
        res?;
        self.finish_line()
    }

    /// T.4 §4.2.1.3 / T.6 §2.2: pass, horizontal and vertical modes against the reference.
    fn line_2d(&mut self, row: &mut [u8]) -> Result<(), DecodeErrorKind> {
        let mut r = self.r.clone();
        let mut cur = std::mem::take(&mut self.cur);
        let mut out = RowOut::new(row);
        let res = decode_2d(&mut r, self.width, &self.reference, &mut cur, &mut out);
        out.finish(self.width);
        self.r = r;
        self.cur = cur;
        res?;
        self.finish_line()
    }
}

/// Reads one run of a colour: make-ups, then a terminating code. Stops with `LongLine` once
/// the run passes `room`.
#[inline(always)]
fn read_run(r: &mut BitReader<'_>, black: bool, room: u32) -> Result<u32, DecodeErrorKind> {
    let mut total = 0u32;
    loop {
        r.fill();
        let e = if black {
            BLACK_DECODE[r.peek_fast(BLACK_BITS) as usize]
        } else {
            WHITE_DECODE[r.peek_fast(WHITE_BITS) as usize]
        };
        match e.kind {
            RunKind::Term => {
                r.consume_fast(u32::from(e.len));
                return Ok(total + u32::from(e.run));
            }
            RunKind::MakeUp => {
                r.consume_fast(u32::from(e.len));
                total += u32::from(e.run);
                if total > room {
                    return Err(DecodeErrorKind::LongLine);
                }
            }
            RunKind::Eol => return Err(DecodeErrorKind::ShortLine),
            RunKind::Invalid => return Err(invalid_code(r)),
        }
    }
}

/// What bits that are no code mean: the end of the data, an EOL too early, or garbage.
#[cold]
fn invalid_code(r: &mut BitReader<'_>) -> DecodeErrorKind {
    if r.overrun() || r.at_end() {
        DecodeErrorKind::Truncated
    } else if r.peek(11) == 0 {
        DecodeErrorKind::ShortLine
    } else {
        DecodeErrorKind::InvalidCode
    }
}

/// The decoded row as it is produced: each changing element ends a run of the colour so far.
/// A zero-length run writes nothing and toggles the colour, which is exactly what cancelling
/// the last changing element means in the list.
struct RowOut<'a> {
    w: WordOut<'a>,
    last: u32,
    black: bool,
}

impl<'a> RowOut<'a> {
    #[inline(always)]
    fn new(row: &'a mut [u8]) -> RowOut<'a> {
        RowOut {
            w: WordOut::new(row),
            last: 0,
            black: false,
        }
    }

    #[inline(always)]
    fn change(&mut self, x: u32) {
        self.w.run(x.saturating_sub(self.last), self.black);
        self.last = x;
        self.black = !self.black;
    }

    fn finish(mut self, width: u32) {
        if width > self.last {
            self.w.run(width - self.last, self.black);
        }
        self.w.finish();
    }
}

/// Appends a changing element; one equal to the last cancels it (a zero-length run).
#[inline(always)]
fn push_change(
    cur: &mut Vec<u32>,
    out: &mut RowOut<'_>,
    x: u32,
    cap: usize,
) -> Result<(), DecodeErrorKind> {
    out.change(x);
    if cur.last() == Some(&x) {
        cur.pop();
        return Ok(());
    }
    if cur.len() >= cap {
        return Err(DecodeErrorKind::LongLine);
    }
    cur.push(x);
    Ok(())
}

fn decode_1d(
    r: &mut BitReader<'_>,
    w: u32,
    cur: &mut Vec<u32>,
    out: &mut RowOut<'_>,
    keep: bool,
) -> Result<(), DecodeErrorKind> {
    cur.clear();
    let cap = w as usize + 2;
    let mut a0 = 0u32;
    let mut black = false;
    loop {
        let run = read_run(r, black, w)?;
        a0 += run;
        if a0 >= w {
            if a0 > w {
                return Err(DecodeErrorKind::LongLine);
            }
            return Ok(());
        }
        if !keep {
            out.change(a0);
        } else if run == 0 {
            // A zero-length run: only here can an element cancel the last one.
            push_change(cur, out, a0, cap)?;
        } else {
            if cur.len() >= cap {
                return Err(DecodeErrorKind::LongLine);
            }
            out.change(a0);
            cur.push(a0);
        }
        black = !black;
    }
}

fn decode_2d(
    r: &mut BitReader<'_>,
    width: u32,
    reference: &[u32],
    cur: &mut Vec<u32>,
    out: &mut RowOut<'_>,
) -> Result<(), DecodeErrorKind> {
    cur.clear();
    let cap = width as usize + 2;
    let w = i64::from(width);
    let mut a0: i64 = -1;
    let mut colour = 0usize;
    let mut j = 0usize;
    while a0 < w {
        while j > 0 && i64::from(reference[j - 1]) > a0 {
            j -= 1;
        }
        while i64::from(reference[j]) <= a0 {
            j += 1;
        }
        if j & 1 != colour {
            j += 1;
        }
        let b1 = i64::from(reference[j]);
        let b2 = i64::from(reference[j + 1]);
        r.fill();
        let (len, mode) = MODE_DECODE[r.peek_fast(7) as usize];
        match mode {
            Mode::Vertical(d) => {
                r.consume_fast(u32::from(len));
                let a1 = b1 + i64::from(d);
                if a1 <= a0 || a1 > w {
                    return Err(DecodeErrorKind::BadPosition);
                }
                if a1 < w {
                    // a1 > a0 ≥ every element so far: the list stays strictly increasing
                    // below the width, so it can neither cancel nor outgrow its capacity.
                    out.change(a1 as u32);
                    cur.push(a1 as u32);
                }
                a0 = a1;
                colour ^= 1;
            }
            Mode::Horizontal => {
                r.consume_fast(u32::from(len));
                let start = a0.max(0);
                let r1 = read_run(r, colour == 1, (w - start) as u32)?;
                let a1 = start + i64::from(r1);
                if a1 > w {
                    return Err(DecodeErrorKind::LongLine);
                }
                let r2 = read_run(r, colour == 0, (w - a1) as u32)?;
                let a2 = a1 + i64::from(r2);
                if a2 > w {
                    return Err(DecodeErrorKind::LongLine);
                }
                if a1 < w {
                    push_change(cur, out, a1 as u32, cap)?;
                }
                if a2 < w {
                    push_change(cur, out, a2 as u32, cap)?;
                }
                a0 = a2;
            }
            Mode::Pass => {
                r.consume_fast(u32::from(len));
                a0 = b2;
            }
            Mode::Extension => return Err(DecodeErrorKind::Uncompressed),
            Mode::Zeros => {
                return Err(if r.overrun() || r.at_end() {
                    DecodeErrorKind::Truncated
                } else {
                    DecodeErrorKind::ShortLine
                });
            }
        }
    }
    Ok(())
}
