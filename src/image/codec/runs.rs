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
    let width_bits = width as usize;
    let mut x: usize = 0;
    let mut colour_mask: u64 = 0; // 0: looking for black (currently white); !0: for white
    while x < width_bits {
        let mut bi = x / 8;
        let mut skip = (x % 8) as u32;
        let next = loop {
            if bi >= row.len() {
                break width_bits;
            }
            let w = load_be(row, bi) ^ colour_mask;
            let w = w & (u64::MAX >> skip);
            if w != 0 {
                break (bi * 8 + w.leading_zeros() as usize).min(width_bits);
            }
            bi += 8;
            skip = 0;
            if bi * 8 >= width_bits {
                break width_bits;
            }
        };
        out.push(next as u32);
        x = next;
        colour_mask = !colour_mask;
    }
    if out.last() != Some(&width) {
        out.push(width);
    }
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
/// non-decreasing positions; anything at or past `width` ends the row) into `row`, clearing it
/// first. An unpaired last change means black to the end of the row.
pub fn changes_to_row(changes: &[u32], width: u32, row: &mut [u8]) {
    row.fill(0);
    let limit = width.min((row.len() * 8) as u32);
    let mut i = 0;
    while i + 1 < changes.len() {
        set_span(row, changes[i].min(limit), changes[i + 1].min(limit));
        i += 2;
    }
    if i < changes.len() {
        // An odd count: black to the end of the row (a decoder that stopped early).
        set_span(row, changes[i].min(limit), limit);
    }
}

/// Sets bits `[s, e)` of `row`.
#[inline]
fn set_span(row: &mut [u8], s: u32, e: u32) {
    if s >= e {
        return;
    }
    let (s, e) = (s as usize, e as usize);
    let (sb, eb) = (s / 8, e / 8);
    let head = 0xffu8 >> (s % 8);
    if sb == eb {
        row[sb] |= head & !(0xffu8 >> (e % 8));
        return;
    }
    row[sb] |= head;
    row[sb + 1..eb].fill(0xff);
    if e % 8 != 0 {
        row[eb] |= !(0xffu8 >> (e % 8));
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
