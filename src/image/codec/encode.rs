//! The row-at-a-time encoder (T.4 §4.1, §4.2; T.6 §2).

use thiserror::Error;

use super::bits::{BitOrder, BitWriter};
use super::runs::row_to_changes;
use super::tables::{self, BLACK_MAKEUP, BLACK_TERM, Code, EOL, WHITE_MAKEUP, WHITE_TERM};
use super::{Coding, MAX_WIDTH};

/// How to code a page and frame its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// MH, MR (with K) or MMR.
    pub coding: Coding,
    /// Insert fill zeros so that every EOL ends on a byte boundary (TIFF T4Options bit 2; what
    /// most fax modems want). Ignored for MMR, which has no EOLs.
    pub align_eol: bool,
    /// T.4 §4.1.3 / T.30 DCS minimum scan-line time, as bits: fill zeros are added before the
    /// next EOL until the previous line (its EOL, tag bit, data and fill) is at least this long.
    /// 0 for files and ECM. Ignored for MMR.
    pub min_bits_per_line: u32,
    /// End the page with RTC (T.4 §4.1.4: 6 × EOL; MR: 6 × EOL+1) or EOFB (T.6 §2.4.3).
    /// Profile S TIFF files leave RTC out (RFC 3949 §3); modem data needs it.
    pub end_marker: bool,
    /// Bit order of the output bytes.
    pub bit_order: BitOrder,
}

impl EncodeOptions {
    /// `coding` with no fill, no minimum line length, no end marker, MSB first.
    pub fn new(coding: Coding) -> EncodeOptions {
        EncodeOptions {
            coding,
            align_eol: false,
            min_bits_per_line: 0,
            end_marker: false,
            bit_order: BitOrder::MsbFirst,
        }
    }
}

/// A caller passed something the encoder cannot code (a programming error upstream).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    /// Width zero or above [`MAX_WIDTH`].
    #[error("cannot code rows {0} pixels wide (1..={MAX_WIDTH})")]
    BadWidth(u32),
    /// A row shorter than the width needs.
    #[error("row has {got} bytes, width needs {need}")]
    ShortRow {
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
}

/// Codes rows one at a time, appending to a caller's `Vec<u8>`; holds only two rows of
/// changing elements and a 64-bit accumulator.
#[derive(Debug, Clone)]
pub struct Encoder {
    width: u32,
    opts: EncodeOptions,
    w: BitWriter,
    cur: Vec<u32>,
    reference: Vec<u32>,
    rows: u64,
    /// Bit position where the current line's EOL began (for the minimum line length).
    line_start: u64,
}

impl Encoder {
    /// An encoder for rows `width` pixels wide.
    pub fn new(width: u32, opts: EncodeOptions) -> Result<Encoder, EncodeError> {
        if width == 0 || width > MAX_WIDTH {
            return Err(EncodeError::BadWidth(width));
        }
        let cap = width as usize + 4;
        let mut reference = Vec::with_capacity(cap);
        reference.extend_from_slice(&[width; 4]);
        Ok(Encoder {
            width,
            opts,
            w: BitWriter::new(opts.bit_order),
            cur: Vec::with_capacity(cap),
            reference,
            rows: 0,
            line_start: 0,
        })
    }

    /// Rows coded so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The options in force.
    pub fn options(&self) -> &EncodeOptions {
        &self.opts
    }

    /// Codes one packed row (MSB first, 1 = black; bits past the width are ignored).
    pub fn encode_row(&mut self, row: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let need = self.width.div_ceil(8) as usize;
        if row.len() < need {
            return Err(EncodeError::ShortRow {
                got: row.len(),
                need,
            });
        }
        row_to_changes(&row[..need], self.width, &mut self.cur);
        match self.opts.coding {
            Coding::Mh => {
                self.eol(None, out);
                self.code_1d(out);
            }
            Coding::Mr { k } => {
                let one_d = if k == 0 {
                    self.rows == 0
                } else {
                    self.rows.is_multiple_of(u64::from(k))
                };
                self.eol(Some(one_d), out);
                if one_d {
                    self.code_1d(out);
                } else {
                    self.code_2d(out);
                }
            }
            Coding::Mmr => self.code_2d(out),
        }
        // The coded row becomes the next reference line (with end sentinels).
        std::mem::swap(&mut self.cur, &mut self.reference);
        let w = self.width;
        self.reference.extend_from_slice(&[w, w, w]);
        self.rows += 1;
        Ok(())
    }

    /// Ends the page: RTC or EOFB when asked for, then the last partial byte (zero padded).
    /// The encoder is ready for a new page afterwards.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.opts.end_marker {
            match self.opts.coding {
                Coding::Mh => {
                    self.pad_before_eol(out);
                    for _ in 0..6 {
                        self.put(EOL, out);
                    }
                }
                Coding::Mr { .. } => {
                    self.pad_before_eol(out);
                    for _ in 0..6 {
                        self.w.put(u32::from(EOL.code) << 1 | 1, 13, out);
                    }
                }
                Coding::Mmr => {
                    self.put(EOL, out);
                    self.put(EOL, out);
                }
            }
        }
        self.w.flush(out);
        self.rows = 0;
        self.line_start = 0;
        self.w = BitWriter::new(self.opts.bit_order);
        self.reference.clear();
        let w = self.width;
        self.reference.extend_from_slice(&[w; 4]);
    }

    #[inline]
    fn put(&mut self, c: Code, out: &mut Vec<u8>) {
        self.w.put(u32::from(c.code), u32::from(c.len), out);
    }

    /// Fill before an EOL: first the previous line's minimum length (T.4 §4.1.3), then the
    /// alignment that makes the EOL end on a byte boundary (TIFF T4Options bit 2).
    fn pad_before_eol(&mut self, out: &mut Vec<u8>) {
        if self.rows > 0 && self.opts.min_bits_per_line > 0 {
            let used = self.w.bit_count() - self.line_start;
            let min = u64::from(self.opts.min_bits_per_line);
            if used < min {
                self.w.zeros(min - used, out);
            }
        }
        if self.opts.align_eol {
            let pos = self.w.bit_count() + 12;
            let pad = (8 - pos % 8) % 8;
            self.w.zeros(pad, out);
        }
    }

    /// EOL (T.4 §4.1.2), with the MR tag bit (T.4 §4.2.1: 1 = next line 1-D) when given.
    fn eol(&mut self, tag: Option<bool>, out: &mut Vec<u8>) {
        self.pad_before_eol(out);
        self.line_start = self.w.bit_count();
        self.put(EOL, out);
        if let Some(t) = tag {
            self.w.put(u32::from(t), 1, out);
        }
    }

    /// One run of `len` pixels of a colour (see [`put_run`]).
    #[inline(always)]
    fn run(&mut self, len: u32, black: bool, out: &mut Vec<u8>) {
        put_run(&mut self.w, len, black, out);
    }

    /// A row of runs, white first (T.4 §4.1.1), taken a white-black pair at a time: the
    /// colour of each run is then known without a branch, and a pair of short runs (both
    /// below 64, the usual case in text) goes out as one write of both terminating codes
    /// (at most 8 + 12 bits).
    fn code_1d(&mut self, out: &mut Vec<u8>) {
        let Encoder { cur, w, width, .. } = self;
        let width = *width;
        let mut a0 = 0u32;
        let mut i = 0usize;
        while let Some(&c) = cur.get(i) {
            let white = c - a0;
            if c >= width {
                put_run(w, white, false, out);
                break;
            }
            // `c` is below the width, so the end mark (the width) still follows.
            let c2 = cur.get(i + 1).copied().unwrap_or(width);
            let black = c2 - c;
            if white < 64 && black < 64 {
                let (wc, bc) = (WHITE_TERM[white as usize], BLACK_TERM[black as usize]);
                w.put(
                    u32::from(wc.code) << bc.len | u32::from(bc.code),
                    u32::from(wc.len) + u32::from(bc.len),
                    out,
                );
            } else {
                put_run(w, white, false, out);
                put_run(w, black, true, out);
            }
            if c2 >= width {
                break;
            }
            a0 = c2;
            i += 2;
        }
    }

    /// T.4 §4.2.1.3.3 coding procedure, on changing elements.
    fn code_2d(&mut self, out: &mut Vec<u8>) {
        let width = self.width;
        let w = i64::from(width);
        self.cur.extend_from_slice(&[width, width]);
        let mut a0: i64 = -1;
        let mut colour = 0usize; // 0 white, 1 black
        let mut i = 0usize;
        let mut j = 0usize;
        while a0 < w {
            let a1 = i64::from(self.cur[i]);
            let r = &self.reference;
            while j > 0 && i64::from(r[j - 1]) > a0 {
                j -= 1;
            }
            while i64::from(r[j]) <= a0 {
                j += 1;
            }
            if j & 1 != colour {
                j += 1;
            }
            let b1 = i64::from(r[j]);
            let b2 = i64::from(r[j + 1]);
            if b2 < a1 {
                self.put(tables::mode::P, out);
                a0 = b2;
                continue;
            }
            let d = a1 - b1;
            if (-3..=3).contains(&d) {
                self.put(tables::mode::V[(d + 3) as usize], out);
                a0 = a1;
                colour ^= 1;
                i += 1;
            } else {
                let a2 = i64::from(self.cur[i + 1]);
                self.put(tables::mode::H, out);
                let start = a0.max(0);
                self.run((a1 - start) as u32, colour == 1, out);
                self.run((a2 - a1) as u32, colour == 0, out);
                a0 = a2;
                i += 2;
            }
        }
        self.cur.truncate(self.cur.len() - 2);
    }
}

/// One run of `len` pixels of a colour: make-ups (2560 while above 2623), one make-up for the
/// multiple of 64, one terminating code (T.4 §4.1.1, §4.1.2).
#[inline(always)]
fn put_run(w: &mut BitWriter, mut len: u32, black: bool, out: &mut Vec<u8>) {
    let (term, makeup) = if black {
        (&BLACK_TERM, &BLACK_MAKEUP)
    } else {
        (&WHITE_TERM, &WHITE_MAKEUP)
    };
    let put = |w: &mut BitWriter, c: Code, out: &mut Vec<u8>| {
        w.put(u32::from(c.code), u32::from(c.len), out);
    };
    while len > tables::MAX_MAKEUP + 63 {
        put(w, makeup[40], out);
        len -= tables::MAX_MAKEUP;
    }
    if len >= 64 {
        // Make-up and terminating code in one write: at most 13 + 12 bits.
        let (m, t) = (makeup[(len / 64) as usize], term[(len % 64) as usize]);
        w.put(
            u32::from(m.code) << t.len | u32::from(t.code),
            u32::from(m.len) + u32::from(t.len),
            out,
        );
        return;
    }
    put(w, term[len as usize], out);
}
