//! Bit packing for the codecs: a 64-bit accumulator writer and reader, in either bit order.
//!
//! T.4 codes are defined as bit sequences in transmission order. TIFF FillOrder 1 (and T.6 in
//! memory) packs them most significant bit first; fax modems and TIFF FillOrder 2 put the first
//! bit in the least significant position (T.4 §2.1 / T.30 transmission order). Both are handled
//! here, once per 32 or 64 bits, so that the coders never think about it.

/// Where the first bit of the code stream sits in each byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitOrder {
    /// First bit in the most significant position (TIFF FillOrder 1).
    #[default]
    MsbFirst,
    /// First bit in the least significant position (TIFF FillOrder 2; what a fax modem sends
    /// and receives, T.4 transmission order with LSB-first UART framing).
    LsbFirst,
}

/// Reverses the bit order inside every byte of `data` (FillOrder 1 ⇄ 2).
pub fn reverse_bits_in_place(data: &mut [u8]) {
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        c.copy_from_slice(&w.reverse_bits().to_be_bytes());
    }
    for b in chunks.into_remainder() {
        *b = b.reverse_bits();
    }
}

/// Appends codes to a `Vec<u8>`; the partial last byte stays inside until [`BitWriter::flush`].
#[derive(Debug, Clone)]
pub struct BitWriter {
    /// Pending bits, left-aligned.
    acc: u64,
    /// How many bits of `acc` are pending (always < 32 between calls).
    n: u32,
    /// Bits written in total (for fill/alignment arithmetic).
    total: u64,
    order: BitOrder,
}

impl BitWriter {
    /// A writer producing `order`.
    pub fn new(order: BitOrder) -> BitWriter {
        BitWriter {
            acc: 0,
            n: 0,
            total: 0,
            order,
        }
    }

    /// Bits written so far (including those still pending).
    #[inline]
    pub fn bit_count(&self) -> u64 {
        self.total
    }

    /// Appends the low `len` bits of `code` (len ≤ 32).
    #[inline]
    pub fn put(&mut self, code: u32, len: u32, out: &mut Vec<u8>) {
        debug_assert!(len <= 32);
        if len == 0 {
            return;
        }
        let v = u64::from(code) & (u64::MAX >> (64 - len));
        self.acc |= v << (64 - self.n - len);
        self.n += len;
        self.total += u64::from(len);
        if self.n >= 32 {
            let word = (self.acc >> 32) as u32;
            let word = match self.order {
                BitOrder::MsbFirst => word,
                BitOrder::LsbFirst => word.reverse_bits().swap_bytes(),
            };
            out.extend_from_slice(&word.to_be_bytes());
            self.acc <<= 32;
            self.n -= 32;
        }
    }

    /// Appends `count` zero bits (fill).
    pub fn zeros(&mut self, mut count: u64, out: &mut Vec<u8>) {
        while count > 0 {
            let k = count.min(32) as u32;
            self.put(0, k, out);
            count -= u64::from(k);
        }
    }

    /// Writes out the pending bits, padding the last byte with zeros.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        let pad = (8 - self.n % 8) % 8;
        self.total += u64::from(pad);
        let bytes = (self.n + pad) / 8;
        for i in 0..bytes {
            let b = (self.acc >> (56 - 8 * i)) as u8;
            out.push(match self.order {
                BitOrder::MsbFirst => b,
                BitOrder::LsbFirst => b.reverse_bits(),
            });
        }
        self.acc = 0;
        self.n = 0;
    }
}

/// Reads codes from a byte slice. Past the end, reads see zero bits; [`BitReader::overrun`]
/// tells when a consumed code reached into them.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load.
    pos: usize,
    /// Bits, left-aligned; bits past `n` are either zero or the stream's next bits.
    acc: u64,
    /// Valid bits in `acc`.
    n: u32,
    /// Bits consumed past the end of the data.
    over: u32,
    order: BitOrder,
}

impl<'a> BitReader<'a> {
    /// A reader over `data` in `order`.
    pub fn new(data: &'a [u8], order: BitOrder) -> BitReader<'a> {
        let mut r = BitReader {
            data,
            pos: 0,
            acc: 0,
            n: 0,
            over: 0,
            order,
        };
        r.refill();
        r
    }

    #[inline]
    fn refill(&mut self) {
        if self.n > 56 {
            return;
        }
        if self.pos + 8 <= self.data.len() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.data[self.pos..self.pos + 8]);
            let w = match self.order {
                BitOrder::MsbFirst => u64::from_be_bytes(b),
                BitOrder::LsbFirst => u64::from_le_bytes(b).reverse_bits(),
            };
            self.acc |= w >> self.n;
            let take = (63 - self.n) / 8;
            self.pos += take as usize;
            self.n += take * 8;
        } else {
            while self.n <= 56 && self.pos < self.data.len() {
                let b = self.data[self.pos];
                let b = match self.order {
                    BitOrder::MsbFirst => b,
                    BitOrder::LsbFirst => b.reverse_bits(),
                };
                self.acc |= u64::from(b) << (56 - self.n);
                self.pos += 1;
                self.n += 8;
            }
        }
    }

    /// Makes at least 32 bits available (fewer only at the end of the data), so that
    /// [`BitReader::peek_fast`] can be used for codes up to 32 bits.
    #[inline(always)]
    pub fn fill(&mut self) {
        if self.n < 32 {
            self.refill();
        }
    }

    /// The next `k` bits (1 ≤ k ≤ 32) as of the last [`BitReader::fill`]; zeros past the end.
    #[inline(always)]
    pub fn peek_fast(&self, k: u32) -> u32 {
        (self.acc >> (64 - k)) as u32
    }

    /// Consumes `k` bits (1 ≤ k ≤ 32) that [`BitReader::fill`] made available.
    #[inline(always)]
    pub fn consume_fast(&mut self, k: u32) {
        if k <= self.n {
            self.acc <<= k;
            self.n -= k;
        } else {
            self.over += k - self.n;
            self.n = 0;
            self.acc = 0;
        }
    }

    /// The next `k` bits (1 ≤ k ≤ 32) without consuming them; zeros past the end.
    #[inline]
    pub fn peek(&mut self, k: u32) -> u32 {
        if self.n < k {
            self.refill();
        }
        (self.acc >> (64 - k)) as u32
    }

    /// Consumes `k` bits (k ≤ 32).
    #[inline]
    pub fn consume(&mut self, k: u32) {
        if self.n < k {
            self.refill();
        }
        if k > self.n {
            self.over += k - self.n;
            self.n = 0;
            self.acc = 0;
        } else {
            self.acc <<= k;
            self.n -= k;
        }
    }

    /// True once a consumed code reached past the end of the data.
    #[inline]
    pub fn overrun(&self) -> bool {
        self.over > 0
    }

    /// True when every bit of the data has been consumed.
    pub fn at_end(&self) -> bool {
        self.n == 0 && self.pos >= self.data.len()
    }

    /// Bits left unread.
    pub fn remaining_bits(&self) -> u64 {
        u64::from(self.n) + 8 * (self.data.len() - self.pos) as u64
    }

    /// Bits consumed so far (for positions in error reports).
    pub fn bit_position(&self) -> u64 {
        (self.pos as u64) * 8 - u64::from(self.n) + u64::from(self.over)
    }

    /// Skips to the next byte boundary (T.4 fill, TIFF Compression 2 row alignment).
    pub fn align_to_byte(&mut self) {
        let k = self.n % 8;
        self.consume(k);
    }

    /// Skips zero bits; returns how many (stops at the first one bit or the end).
    pub fn skip_zeros(&mut self) -> u64 {
        let mut skipped = 0u64;
        loop {
            if self.n < 32 {
                self.refill();
            }
            if self.n == 0 {
                return skipped;
            }
            let lz = self.acc.leading_zeros().min(self.n);
            self.acc <<= lz;
            self.n -= lz;
            skipped += u64::from(lz);
            if self.n > 0 {
                return skipped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_reader_round_trip_both_orders() {
        for order in [BitOrder::MsbFirst, BitOrder::LsbFirst] {
            let mut w = BitWriter::new(order);
            let mut out = Vec::new();
            let codes: Vec<(u32, u32)> = (1..200u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 7, 1 + i % 13))
                .collect();
            for &(c, l) in &codes {
                w.put(c, l, &mut out);
            }
            w.flush(&mut out);
            let mut r = BitReader::new(&out, order);
            for &(c, l) in &codes {
                assert_eq!(r.peek(l), c & ((1 << l) - 1));
                r.consume(l);
            }
            assert!(!r.overrun());
        }
    }

    #[test]
    fn lsb_first_is_byte_reversed_msb_first() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut wa = BitWriter::new(BitOrder::MsbFirst);
        let mut wb = BitWriter::new(BitOrder::LsbFirst);
        for i in 0..100u32 {
            wa.put(i, 7, &mut a);
            wb.put(i, 7, &mut b);
        }
        wa.flush(&mut a);
        wb.flush(&mut b);
        reverse_bits_in_place(&mut a);
        assert_eq!(a, b);
        assert_eq!(0b0000_0001u8.reverse_bits(), 0x80);
    }

    #[test]
    fn zeros_and_end() {
        let data = [0u8, 0, 0x10];
        let mut r = BitReader::new(&data, BitOrder::MsbFirst);
        assert_eq!(r.skip_zeros(), 19);
        assert_eq!(r.peek(1), 1);
        r.consume(5);
        assert!(r.at_end());
        assert!(!r.overrun());
        r.consume(1);
        assert!(r.overrun());
    }
}
