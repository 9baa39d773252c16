//! The row-at-a-time decoder (T.4 §4.1, §4.2; T.6 §2), strict or for received lines.

use thiserror::Error;

use super::bits::{BitOrder, BitReader, HotBits};
use super::runs::changes_to_row;
use super::tables::{
    BLACK_BITS, BLACK_DECODE, BLACK_WHITE_PAIRS, MODE_PAIR_BITS, MODE_PAIRS, ModeOp, PAIR_BITS,
    RunEntry, RunKind, WHITE_BITS, WHITE_BLACK_PAIRS, WHITE_DECODE,
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
    /// Changing elements of the row being decoded: `cur[..cur_n]`, then the end mark. A
    /// fixed power-of-two array (see [`LIST`]) so that the hot loops index it without bounds
    /// checks or a length in a register.
    cur: Box<[u32; LIST]>,
    /// Elements in `cur` (without the end mark).
    cur_n: usize,
    /// Reference line (previous row's changes, then at least four `width` sentinels so that
    /// b1 and b2 always exist), like `cur`.
    reference: Box<[u32; LIST]>,
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

/// Length of the changing-element arrays: a power of two above [`MAX_WIDTH`] + 8, so that
/// an index masked with `LIST − 1` is in bounds by construction. The decoders' lists are
/// strictly increasing positions below the width (plus the end mark and sentinels), so the
/// mask never changes an index; it only lets the compiler drop the bounds checks.
const LIST: usize = 32_768;
const _: () = assert!(LIST.is_power_of_two() && LIST >= MAX_WIDTH as usize + 8);

/// A zeroed list on the heap (zero pages, so only the used part costs memory), with the
/// [`BEFORE_LINE`] element at the end.
fn zeroed_list() -> Box<[u32; LIST]> {
    let mut l: Box<[u32; LIST]> = vec![0u32; LIST]
        .into_boxed_slice()
        .try_into()
        .expect("length is LIST");
    l[LIST - 1] = BEFORE_LINE;
    l
}

/// The last entry of both lists, never written (positions stay below [`MAX_WIDTH`] + 8): an
/// element before the line (−1 as `i32`, at or before every a0). Index `LIST − 1` is where
/// `j − 1` lands (wrapping, masked) when a vertical mode flips the colour at `j = 0`, so the
/// 2-D loop needs no test for that case: the search steps over it to index 1.
const BEFORE_LINE: u32 = u32::MAX;

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
        let len = width as usize + 8;
        // T.4 §4.2.1.3.1: the line before the first is an imaginary white line. Only the
        // first `len` entries are ever used; the rest stay untouched zero pages.
        let mut reference = zeroed_list();
        reference[..len].fill(width);
        Ok(Decoder {
            r: BitReader::new(data, opts.bit_order),
            width,
            opts,
            cur: zeroed_list(),
            cur_n: 0,
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
        // The end mark is at `cur_n` already (`finish_line`); three more sentinels.
        let n = self.cur_n;
        self.reference[n + 1..n + 4].fill(self.width);
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

    /// Writes the row from the changing elements found and checks that the line did not
    /// run past the data. After an error the row is left white: the caller replaces it
    /// (received mode) or drops the page (strict mode).
    fn finish_line(
        &mut self,
        res: Result<usize, DecodeErrorKind>,
        row: &mut [u8],
    ) -> Result<(), DecodeErrorKind> {
        let w = self.width;
        let n = match res {
            Ok(n) => n,
            Err(kind) => {
                row.fill(0);
                return Err(kind);
            }
        };
        changes_to_row(&self.cur[..n], w, row);
        if self.r.overrun() {
            return Err(DecodeErrorKind::Truncated);
        }
        self.cur[n] = w;
        self.cur_n = n;
        Ok(())
    }

    /// T.4 §4.1: alternating white and black runs, white first, adding up to the width.
    fn line_1d(&mut self, row: &mut [u8]) -> Result<(), DecodeErrorKind> {
        let r = &mut self.r;
        let res = if r.lsb_first() {
            decode_1d::<true>(r, self.width, &mut self.cur)
        } else {
            decode_1d::<false>(r, self.width, &mut self.cur)
        };
        self.finish_line(res, row)
    }

    /// T.4 §4.2.1.3 / T.6 §2.2: pass, horizontal and vertical modes against the reference.
    fn line_2d(&mut self, row: &mut [u8]) -> Result<(), DecodeErrorKind> {
        let r = &mut self.r;
        let res = if r.lsb_first() {
            decode_2d::<true>(r, self.width, &self.reference, &mut self.cur)
        } else {
            decode_2d::<false>(r, self.width, &self.reference, &mut self.cur)
        };
        self.finish_line(res, row)
    }
}

/// Reads one run of a colour: make-ups, then a terminating code. Stops with `LongLine` once
/// the run passes `room`. The colour is a constant, so each instance has its table fixed.
#[inline(always)]
fn read_run<'a, const BLACK: bool, const LSB: bool>(
    h: &mut HotBits<'a>,
    r: &mut BitReader<'a>,
    room: u32,
) -> Result<u32, DecodeErrorKind> {
    h.fill_as::<LSB>(r);
    let e = run_entry::<BLACK>(h);
    if e.kind == RunKind::Term {
        // Most runs are one terminating code: a test and a shift, nothing else.
        h.consume(u32::from(e.len));
        return Ok(u32::from(e.run));
    }
    // Out of the straight path (a photo's runs are short), and with the kinds told apart
    // by a chain of tests rather than merged with the one above into a jump table, which
    // would cost the common case an indirect jump.
    std::hint::cold_path();
    read_long_run::<BLACK, LSB>(h, r, e, room)
}

/// The next code's entry in the table of the colour.
#[inline(always)]
fn run_entry<const BLACK: bool>(h: &HotBits<'_>) -> RunEntry {
    if BLACK {
        BLACK_DECODE[h.peek(BLACK_BITS) as usize]
    } else {
        WHITE_DECODE[h.peek(WHITE_BITS) as usize]
    }
}

/// [`read_run`] from a code that is not a terminating one: make-ups up to the terminating
/// code, or the error the code means.
#[inline(always)]
fn read_long_run<'a, const BLACK: bool, const LSB: bool>(
    h: &mut HotBits<'a>,
    r: &mut BitReader<'a>,
    mut e: RunEntry,
    room: u32,
) -> Result<u32, DecodeErrorKind> {
    let mut total = 0u32;
    loop {
        // (An EOL or invalid code stays unconsumed: the error position and resynchronisation
        // start at it.)
        match e.kind {
            RunKind::Term => {
                h.consume(u32::from(e.len));
                return Ok(total + u32::from(e.run));
            }
            RunKind::MakeUp => {
                h.consume(u32::from(e.len));
                total += u32::from(e.run);
                if total > room {
                    return Err(DecodeErrorKind::LongLine);
                }
            }
            RunKind::Eol => return Err(DecodeErrorKind::ShortLine),
            RunKind::Invalid => return Err(invalid_code(r, *h)),
        }
        h.fill_as::<LSB>(r);
        e = run_entry::<BLACK>(h);
    }
}

/// Two runs of horizontal mode (T.4 §4.2.1.3.2 b): a0's colour first.
#[inline(always)]
fn read_pair<'a, const LSB: bool>(
    h: &mut HotBits<'a>,
    r: &mut BitReader<'a>,
    black: bool,
    room: u32,
) -> Result<(u32, u32), DecodeErrorKind> {
    let r1 = if black {
        read_run::<true, LSB>(h, r, room)?
    } else {
        read_run::<false, LSB>(h, r, room)?
    };
    // An overlong first run is the error, whatever follows.
    let Some(left) = room.checked_sub(r1) else {
        return Err(DecodeErrorKind::LongLine);
    };
    let r2 = if black {
        read_run::<false, LSB>(h, r, left)?
    } else {
        read_run::<true, LSB>(h, r, left)?
    };
    Ok((r1, r2))
}

/// What bits that are no code mean: the end of the data, an EOL too early, or garbage.
/// Works on a copy of the reader, so that the hot loops' state is only read here.
#[cold]
#[inline(never)]
fn invalid_code<'a>(r: &BitReader<'a>, h: HotBits<'a>) -> DecodeErrorKind {
    let mut r = r.clone();
    r.set_hot(h);
    if r.overrun() || r.at_end() {
        DecodeErrorKind::Truncated
    } else if r.peek(11) == 0 {
        DecodeErrorKind::ShortLine
    } else {
        DecodeErrorKind::InvalidCode
    }
}

/// Appends changing element `x` to `cur[..*n]`; one equal to the last cancels it (a
/// zero-length run: the colour toggles twice at the same place).
#[inline(always)]
fn push_change(cur: &mut [u32; LIST], n: &mut usize, x: u32) {
    if *n > 0 && cur[(*n - 1) & (LIST - 1)] == x {
        *n -= 1;
        return;
    }
    push(cur, n, x);
}

/// Appends `x` (above every element so far, below the width) to `cur[..*n]`. The list is
/// strictly increasing below the width, so `n` stays below the width: no capacity check.
#[inline(always)]
fn push(cur: &mut [u32; LIST], n: &mut usize, x: u32) {
    cur[*n & (LIST - 1)] = x;
    *n += 1;
}

/// One 1-D line into `cur`; returns the number of changing elements. Not inlined into the
/// caller, so that the caller's values do not compete for registers with the loop's.
#[inline(never)]
fn decode_1d<const LSB: bool>(
    r: &mut BitReader<'_>,
    w: u32,
    cur: &mut [u32; LIST],
) -> Result<usize, DecodeErrorKind> {
    let mut h = r.hot();
    let res = runs_1d::<LSB>(&mut h, r, w, cur);
    r.set_hot(h);
    res
}

/// The loop of [`decode_1d`], on the hot state.
#[inline(always)]
fn runs_1d<'a, const LSB: bool>(
    h: &mut HotBits<'a>,
    r: &mut BitReader<'a>,
    w: u32,
    cur: &mut [u32; LIST],
) -> Result<usize, DecodeErrorKind> {
    const M: usize = LIST - 1;
    let mut n = 0usize;
    let mut a0 = 0u32;
    loop {
        // Short white and black codes, both at once: a1 > a0 and a2 > a1 (no zero runs in
        // the table), and a2 below the width, so both are plain pushes.
        h.fill_as::<LSB>(r);
        let p = WHITE_BLACK_PAIRS[h.peek(PAIR_BITS) as usize];
        let a2 = a0 + u32::from(p.sum);
        if a2 < w {
            h.consume(u32::from(p.len));
            cur[n & M] = a0 + u32::from(p.first);
            cur[(n + 1) & M] = a2;
            n += 2;
            a0 = a2;
            continue;
        }
        // Otherwise a white run, then a black one, a code at a time: unrolled so that each
        // table is a constant.
        let run = read_run::<false, LSB>(h, r, w)?;
        if !run_1d(run, w, &mut a0, cur, &mut n)? {
            return Ok(n);
        }
        let run = read_run::<true, LSB>(h, r, w)?;
        if !run_1d(run, w, &mut a0, cur, &mut n)? {
            return Ok(n);
        }
    }
}

/// Adds one 1-D run: false once the line is complete.
#[inline(always)]
fn run_1d(
    run: u32,
    w: u32,
    a0: &mut u32,
    cur: &mut [u32; LIST],
    n: &mut usize,
) -> Result<bool, DecodeErrorKind> {
    *a0 += run;
    if run == 0 || *a0 >= w {
        // The end of the line, or a zero-length run (only here can an element cancel the
        // last one): once a line each at most, off the straight path.
        std::hint::cold_path();
        if *a0 >= w {
            if *a0 > w {
                return Err(DecodeErrorKind::LongLine);
            }
            return Ok(false);
        }
        push_change(cur, n, *a0);
    } else {
        push(cur, n, *a0);
    }
    Ok(true)
}

/// One 2-D line into `cur` against `reference` (strictly increasing elements, then at least
/// four `width` sentinels); returns the number of changing elements.
///
/// b1 is found by a monotonic index `j` whose parity is the colour of a0 (even elements
/// start black runs, so they are the b1 candidates for a white a0): every element of that
/// parity below `j` is at or before a0. After a vertical mode the colour flips and the new
/// candidate is `j − 1` (it may lie between a1 and the old b1 after VL); anything further
/// back is before a0. So the search never scans backwards more than one element.
#[inline(never)]
fn decode_2d<const LSB: bool>(
    r: &mut BitReader<'_>,
    width: u32,
    reference: &[u32; LIST],
    cur: &mut [u32; LIST],
) -> Result<usize, DecodeErrorKind> {
    let mut h = r.hot();
    let res = modes_2d::<LSB>(&mut h, r, width, reference, cur);
    r.set_hot(h);
    res
}

/// The loop of [`decode_2d`], on the hot state.
#[inline(always)]
fn modes_2d<'a, const LSB: bool>(
    h: &mut HotBits<'a>,
    r: &mut BitReader<'a>,
    width: u32,
    reference: &[u32; LIST],
    cur: &mut [u32; LIST],
) -> Result<usize, DecodeErrorKind> {
    const M: usize = LIST - 1;
    // Widths are at most MAX_WIDTH, so positions fit an i32 with room for a0 = −1 (the
    // imaginary element before the line, T.4 §4.2.1.3.1).
    let w = width as i32;
    let mut n = 0usize;
    let mut a0: i32 = -1;
    // The colour of a0 is the parity of `j` (odd: black), which saves a register.
    let mut j = 0usize;
    // b1: the first element of a0's colour parity past a0. `j` is kept masked (it never
    // reaches LIST − 1 from below: positions stay below MAX_WIDTH + 8), which also makes its
    // update no plain induction variable: LLVM would otherwise carry three offset copies of
    // it through this loop, three more registers and instructions per step.
    macro_rules! find_b1 {
        () => {
            while reference[j & M] as i32 <= a0 {
                j = (j + 2) & M;
            }
        };
    }
    // A vertical mode (`pass` 0) or a pass mode (`pass` 1, offset 0) from b1: one path, so
    // that their mix costs no mispredicted branch (pass is "a1 = b2, no change, same
    // colour"). Returns at the end of the line or on a bad position.
    macro_rules! vertical_or_pass {
        ($pass:expr, $offset:expr) => {
            let pass: usize = $pass;
            let a1 = reference[(j + pass) & M] as i32 + $offset;
            if a1 <= a0 || a1 > w {
                return Err(DecodeErrorKind::BadPosition);
            }
            if a1 == w {
                return Ok(n);
            }
            // a1 > a0 ≥ every element so far: the list stays strictly increasing below the
            // width, so it can neither cancel nor outgrow its capacity. After a pass the
            // element written is not counted, and the next push overwrites it.
            cur[n & M] = a1 as u32;
            n += 1 - pass;
            a0 = a1;
            // Vertical: the colour flips, and the candidate of the other parity is the one
            // just before the old b1. Pass: the colour stays, b1 is searched on from b1.
            // (At j = 0 that is index LIST − 1, see [`BEFORE_LINE`].)
            j = (j + pass).wrapping_sub(1) & M;
        };
    }
    loop {
        find_b1!();
        h.fill_as::<LSB>(r);
        let p = MODE_PAIRS[h.peek(MODE_PAIR_BITS) as usize];
        let op = p.first;
        h.consume(op.bits());
        if op.kind() & !ModeOp::PASS == 0 {
            vertical_or_pass!(usize::from(op.kind() >> 1), op.offset());
            if p.has_second() {
                // The next code is a vertical or pass mode too, already decoded; its bits
                // are taken only now that the line goes on after the first.
                h.consume(p.second_bits());
                find_b1!();
                vertical_or_pass!(p.second_pass(), p.second_offset());
            }
            continue;
        }
        match op.kind() {
            ModeOp::HORIZONTAL => {
                let start = a0.max(0);
                // Two short codes at once, as in 1-D lines: runs above zero, so a1 is past
                // a0 (at or past every element so far) and a2 past a1; a2 inside the line.
                h.fill_as::<LSB>(r);
                let p = if j & 1 == 1 {
                    BLACK_WHITE_PAIRS[h.peek(PAIR_BITS) as usize]
                } else {
                    WHITE_BLACK_PAIRS[h.peek(PAIR_BITS) as usize]
                };
                let a2 = start + i32::from(p.sum);
                if a2 < w {
                    h.consume(u32::from(p.len));
                    cur[n & M] = (start + i32::from(p.first)) as u32;
                    cur[(n + 1) & M] = a2 as u32;
                    n += 2;
                    a0 = a2;
                    continue;
                }
                let (r1, r2) = read_pair::<LSB>(h, r, j & 1 == 1, (w - start) as u32)?;
                let a1 = start + r1 as i32;
                let a2 = a1 + r2 as i32;
                if a2 > w {
                    return Err(DecodeErrorKind::LongLine);
                }
                if a1 < w {
                    push_change(cur, &mut n, a1 as u32);
                }
                if a2 >= w {
                    return Ok(n);
                }
                push_change(cur, &mut n, a2 as u32);
                a0 = a2;
            }
            ModeOp::EXTENSION => return Err(DecodeErrorKind::Uncompressed),
            _ => {
                return Err(match invalid_code(r, *h) {
                    DecodeErrorKind::Truncated => DecodeErrorKind::Truncated,
                    _ => DecodeErrorKind::ShortLine,
                });
            }
        }
    }
}
