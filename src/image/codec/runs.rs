//! Packed rows ⇄ changing elements (T.4 §4.2.1.3.1: "a changing element is an element whose
//! colour is different from that of the previous element along the same scan line").
//!
//! Both codecs work on the list of changing-element positions, never on pixels: a row becomes
//! `[c0, c1, …, width]` where even entries start black runs and odd entries start white runs.
//! Finding them scans 64 bits at a time with a leading-zero count; writing them toggles bits
//! in a register word and turns toggles into colours 64 pixels at a time, so no loop in this
//! module runs per pixel.

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
/// `width` ends the row) into `row`. Every byte of `row` is written; bits past `width` are 0.
///
/// Each change costs one XOR of a bit into a register word ("the colour toggles here");
/// each 64-pixel word then becomes pixels with a prefix XOR (six shifts), carrying the
/// colour into the next word. No branch depends on the colour or the run lengths, which is
/// what made dithered (photo) rows slow when written run by run.
pub fn changes_to_row(changes: &[u32], width: u32, row: &mut [u8]) {
    let limit = width.min((row.len() * 8) as u32);
    if limit as usize <= STACK_WORDS * 64 {
        if changes.len() >= DENSE {
            marks_in_lanes(changes, limit, row);
        } else {
            marks_in_array(changes, limit, row);
        }
    } else {
        marks_in_register(changes, limit, row);
    }
    // Clear everything from `limit` on: the partial byte, then whole bytes.
    let full = limit as usize / 8;
    let rest = if !limit.is_multiple_of(8) {
        row[full] &= 0xffu8 << (8 - limit % 8);
        full + 1
    } else {
        full
    };
    row[rest..].fill(0);
}

/// Rows up to `64 × STACK_WORDS` = 4 096 pixels gather their toggle marks in a word array
/// on the stack: every T.4 §2.2 width up to B4 at 16 pels/mm (1 728 … 4 096); only A3 at
/// 16 pels/mm (4 864) takes the register writer.
const STACK_WORDS: usize = 64;

/// Toggle marks into a zeroed word array: the current word's marks are stored after every
/// change whether or not the next change lies in another word, and kept or dropped with a
/// mask, so that a change crossing into a new word (about one in ten on a dithered photo
/// row) costs no mispredicted branch. A second pass turns each word into pixels.
fn marks_in_array(changes: &[u32], limit: u32, row: &mut [u8]) {
    const M: usize = STACK_WORDS - 1;
    let mut words = [0u64; STACK_WORDS];
    let mut marks = 0u64;
    let mut at = 0usize;
    for &c in changes {
        if c >= limit {
            break;
        }
        let wi = (c >> 6) as usize;
        // `at` < limit / 64 ≤ STACK_WORDS: the mask never changes it (no bounds check).
        words[at & M] = marks;
        let keep = 0u64.wrapping_sub(u64::from(wi == at));
        marks = (marks & keep) ^ ((1u64 << 63) >> (c & 63));
        at = wi;
    }
    words[at & M] = marks;
    let mut carry = 0u64;
    for (i, &m) in words.iter().take((limit as usize).div_ceil(64)).enumerate() {
        let word = prefix_xor(m) ^ carry;
        put_word(row, i, word);
        // All ones when the word ended black.
        carry = 0u64.wrapping_sub(word & 1);
    }
}

/// From this many changes on (a dithered photo row has hundreds, a text row tens), rows
/// take [`marks_in_lanes`].
const DENSE: usize = 96;

/// Independent mark words per pixel word in [`marks_in_lanes`].
const LANES: usize = 8;

/// Toggle marks XORed straight into memory, change `i` into lane `i mod LANES` of its word,
/// then the lanes XORed together. Each change is then a handful of instructions with no
/// test for crossing into another word; consecutive changes (about 30 per word on a photo
/// row) go to different lanes, so that no change waits for the previous one's store.
fn marks_in_lanes(changes: &[u32], limit: u32, row: &mut [u8]) {
    const M: usize = STACK_WORDS - 1;
    // The caller checked limit ≤ 64 × STACK_WORDS.
    let used = (limit as usize).div_ceil(64);
    let mut marks = [[0u64; LANES]; STACK_WORDS];
    let mut chunks = changes.chunks_exact(LANES);
    'marks: {
        for chunk in &mut chunks {
            for (lane, &c) in chunk.iter().enumerate() {
                if c >= limit {
                    break 'marks;
                }
                // c < limit ≤ 64 × STACK_WORDS: the mask never changes the index.
                marks[(c >> 6) as usize & M][lane] ^= (1u64 << 63) >> (c & 63);
            }
        }
        for (lane, &c) in chunks.remainder().iter().enumerate() {
            if c >= limit {
                break 'marks;
            }
            marks[(c >> 6) as usize & M][lane] ^= (1u64 << 63) >> (c & 63);
        }
    }
    let mut carry = 0u64;
    for (i, m) in marks.iter().take(used).enumerate() {
        let word = prefix_xor(m.iter().fold(0, |a, &b| a ^ b)) ^ carry;
        put_word(row, i, word);
        // All ones when the word ended black.
        carry = 0u64.wrapping_sub(word & 1);
    }
}

/// Wider rows: the marks of one word in a register, written out when a change lands in
/// another word (a branch per change, but no width limit).
fn marks_in_register(changes: &[u32], limit: u32, row: &mut [u8]) {
    let mut carry = 0u64;
    let mut marks = 0u64;
    let mut at = 0usize;
    for &c in changes {
        if c >= limit {
            break;
        }
        let wi = (c >> 6) as usize;
        if wi != at {
            let word = prefix_xor(marks) ^ carry;
            put_word(row, at, word);
            // All ones when the word ended black.
            carry = 0u64.wrapping_sub(word & 1);
            for i in at + 1..wi {
                put_word(row, i, carry);
            }
            at = wi;
            marks = 0;
        }
        marks ^= (1u64 << 63) >> (c & 63);
    }
    let word = prefix_xor(marks) ^ carry;
    put_word(row, at, word);
    let carry = 0u64.wrapping_sub(word & 1);
    for i in at + 1..(limit as usize).div_ceil(64) {
        put_word(row, i, carry);
    }
}

/// Bit i (from the MSB) becomes the XOR of bits 0..=i: toggle marks become colours.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x >> 1;
    x ^= x >> 2;
    x ^= x >> 4;
    x ^= x >> 8;
    x ^= x >> 16;
    x ^= x >> 32;
    x
}

/// Stores 64 pixels at word `i` of `row`, big-endian, cut short at the end of the row.
#[inline(always)]
fn put_word(row: &mut [u8], i: usize, word: u64) {
    let bytes = word.to_be_bytes();
    let at = i * 8;
    if let Some(dst) = row.get_mut(at..at + 8) {
        dst.copy_from_slice(&bytes);
    } else if at < row.len() {
        let n = row.len() - at;
        row[at..].copy_from_slice(&bytes[..n]);
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

        /// Any non-decreasing list (repeats cancel, elements at or past the width end the
        /// row, an odd count ends black), any row length: the same pixels as toggling one
        /// pixel at a time, and every byte written.
        #[test]
        fn changes_to_row_matches_pixels(
            width in 0u32..400,
            extra in 0usize..3,
            mut changes in proptest::collection::vec(0u32..420, 0..80),
            // Shifted past the stack array's 4 096 pixels, into the register writer.
            wide in any::<bool>(),
        ) {
            let shift = if wide { 3_900 } else { 0 };
            let width = width + shift;
            for c in &mut changes {
                *c += shift;
            }
            changes.sort_unstable();
            let stride = width.div_ceil(8) as usize + extra;
            let limit = width.min(stride as u32 * 8);
            let mut want = vec![0u8; stride];
            let mut next = 0;
            let mut black = false;
            for x in 0..limit {
                while next < changes.len() && changes[next] <= x {
                    black = !black;
                    next += 1;
                }
                if black {
                    want[(x / 8) as usize] |= 0x80 >> (x % 8);
                }
            }
            let mut row = vec![0xa5u8; stride];
            changes_to_row(&changes, width, &mut row);
            prop_assert_eq!(row, want);
        }
    }
}
