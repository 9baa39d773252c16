//! Packed rows ⇄ changing elements (T.4 §4.2.1.3.1: "a changing element is an element whose
//! colour is different from that of the previous element along the same scan line").
//!
//! Both codecs work on the list of changing-element positions, never on pixels: a row becomes
//! `[c0, c1, …, width]` where even entries start black runs and odd entries start white runs.
//! Finding them scans 64 bits at a time with a leading-zero count; writing them sets whole
//! bytes, so no loop in this module runs per pixel.

/// Appends the changing elements of `row` (packed MSB first, 1 = black, `width` pixels) to
/// `out`: strictly increasing positions below `width`, then `width` itself as the end mark.
/// `out` is cleared first. Bits past `width` are ignored.
pub fn row_to_changes(row: &[u8], width: u32, out: &mut Vec<u32>) {
    out.clear();
    let width_bits = (width as usize).min(row.len() * 8);
    // Scan a 64-bit word at a time; within a word, each change costs one leading-zero count.
    // `flip` is the colour so far: XOR with it turns "pixel differs" into "bit set".
    let mut flip: u64 = 0;
    let mut base = 0usize;
    'words: while base < width_bits {
        let raw = load_be(row, base / 8);
        let mut skip = 0u32;
        loop {
            let w = (raw ^ flip) & (u64::MAX >> skip);
            if w == 0 {
                break;
            }
            let lz = w.leading_zeros();
            let pos = base + lz as usize;
            if pos >= width_bits {
                break 'words;
            }
            out.push(pos as u32);
            flip = !flip;
            skip = lz;
        }
        base += 64;
    }
    out.push(width);
}

/// Eight bytes from `row[i..]`, big-endian, zero past the end.
#[inline]
fn load_be(row: &[u8], i: usize) -> u64 {
    if i + 8 <= row.len() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&row[i..i + 8]);
        u64::from_be_bytes(b)
    } else {
        let mut b = [0u8; 8];
        let n = row.len() - i;
        b[..n].copy_from_slice(&row[i..]);
        u64::from_be_bytes(b)
    }
}

/// Writes the row described by `changes` (as made by [`row_to_changes`] or a decoder:
/// non-decreasing positions; the colour toggles at each, starting white; anything at or past
/// `width` ends the row) into `row`. Every byte of `row` is written.
///
/// The row is produced 64 pixels at a time in a register: a run costs a mask, not a call to
/// `memset` and not a loop over its pixels.
pub fn changes_to_row(changes: &[u32], width: u32, row: &mut [u8]) {
    let limit = width.min((row.len() * 8) as u32);
    let mut w = WordOut::new(row);
    let mut x = 0u32;
    let mut black = false;
    for &c in changes {
        let c = c.min(limit);
        if c > x {
            w.run(c - x, black);
            x = c;
        }
        black = !black;
        if x >= limit {
            break;
        }
    }
    if x < limit {
        // An odd count ended black (a decoder that stopped early); white otherwise.
        w.run(limit - x, black);
    }
    w.finish();
}

/// A packed row written a 64-bit word at a time, MSB first: runs go in with
/// [`WordOut::run`], and [`WordOut::finish`] writes the rest of the row (white).
pub(crate) struct WordOut<'a> {
    row: &'a mut [u8],
    /// Byte index of the word being built.
    at: usize,
    word: u64,
    /// Pixels already in `word`.
    bits: u32,
}

impl<'a> WordOut<'a> {
    /// A writer at the start of `row`.
    #[inline(always)]
    pub(crate) fn new(row: &'a mut [u8]) -> WordOut<'a> {
        WordOut {
            row,
            at: 0,
            word: 0,
            bits: 0,
        }
    }

    /// Appends `len` pixels of one colour (a zero length is a no-op).
    #[inline(always)]
    pub(crate) fn run(&mut self, mut len: u32, black: bool) {
        let end = self.bits + len;
        if end < 64 {
            // The common case: the run ends inside the current word.
            if black {
                self.word |= (u64::MAX >> self.bits) & !(u64::MAX >> end);
            }
            self.bits = end;
            return;
        }
        while len > 0 {
            let take = len.min(64 - self.bits);
            if black {
                let end = self.bits + take;
                let tail = if end >= 64 { 0 } else { u64::MAX >> end };
                self.word |= (u64::MAX >> self.bits) & !tail;
            }
            self.bits += take;
            len -= take;
            if self.bits == 64 {
                self.store();
            }
        }
    }

    #[inline(always)]
    fn store(&mut self) {
        let bytes = self.word.to_be_bytes();
        if let Some(dst) = self.row.get_mut(self.at..self.at + 8) {
            dst.copy_from_slice(&bytes);
            self.at += 8;
        } else {
            let n = self.row.len().saturating_sub(self.at).min(8);
            self.row[self.at..self.at + n].copy_from_slice(&bytes[..n]);
            self.at += n;
        }
        self.word = 0;
        self.bits = 0;
    }

    /// Writes the partial word and clears the rest of the row.
    pub(crate) fn finish(mut self) {
        if self.bits > 0 && self.at < self.row.len() {
            self.store();
        }
        let at = self.at.min(self.row.len());
        self.row[at..].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(row: &[u8], width: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut colour = false;
        for x in 0..width {
            let b = row[(x / 8) as usize] & (0x80 >> (x % 8)) != 0;
            if b != colour {
                out.push(x);
                colour = b;
            }
        }
        out.push(width);
        out
    }

    #[test]
    fn simple_rows() {
        let mut v = Vec::new();
        row_to_changes(&[0x00, 0x00], 16, &mut v);
        assert_eq!(v, [16]);
        row_to_changes(&[0xff, 0xff], 16, &mut v);
        assert_eq!(v, [0, 16]);
        row_to_changes(&[0x0f, 0xf0], 12, &mut v);
        assert_eq!(v, [4, 12]);
        row_to_changes(&[0x0f, 0xff], 12, &mut v);
        assert_eq!(v, [4, 12], "pad bits ignored");
        let mut r = [0u8; 2];
        changes_to_row(&[4, 12], 12, &mut r);
        assert_eq!(r, [0x0f, 0xf0]);
    }

    proptest! {
        #[test]
        fn changes_round_trip(width in 1u32..300, seed in any::<u64>(), density in 0u32..4) {
            let stride = width.div_ceil(8) as usize;
            let mut s = seed | 1;
            let mut row: Vec<u8> = (0..stride).map(|_| {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                match density { 0 => (s as u8) & (s >> 8) as u8 & (s >> 16) as u8, 1 => s as u8, 2 => 0xff, _ => (s >> 3) as u8 | 0x81 }
            }).collect();
            if width % 8 != 0 { let m = 0xffu8 << (8 - width % 8); *row.last_mut().unwrap() &= m; }
            let mut v = Vec::new();
            row_to_changes(&row, width, &mut v);
            prop_assert_eq!(&v, &naive(&row, width));
            let mut back = vec![0u8; stride];
            changes_to_row(&v, width, &mut back);
            prop_assert_eq!(back, row);
        }
    }
}
