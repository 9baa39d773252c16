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

/// Reads codes from a byte slice. Past the end, reads see zero bits (the accumulator is
/// topped up with "virtual" zeros, so that consuming never has to check for the end);
/// [`BitReader::overrun`] tells when a consumed code reached into them.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load.
    pos: usize,
    /// Bits, left-aligned; bits past `n` are either zero or the stream's next bits.
    acc: u64,
    /// Valid bits in `acc` (real or virtual zeros past the end).
    n: u32,
    /// Virtual zero bits loaded past the end of the data.
    virt: u64,
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
            virt: 0,
            order,
        };
        r.refill();
        r
    }

    /// Tops the accumulator up to more than 56 bits.
    #[inline]
    fn refill(&mut self) {
        if self.n > 56 {
            return;
        }
        if self.lsb_first() {
            self.load::<true>();
        } else {
            self.load::<false>();
        }
    }

    /// Loads as many whole bytes as fit below 64 bits (`n` ≤ 56), eight at a time while
    /// eight remain; the bit order is a constant so that each instance has no branch on it.
    #[inline(always)]
    fn load<const LSB: bool>(&mut self) {
        if let Some(b) = self.data.get(self.pos..self.pos + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let w = if LSB {
                u64::from_le_bytes(a).reverse_bits()
            } else {
                u64::from_be_bytes(a)
            };
            self.acc |= w >> self.n;
            let take = (63 - self.n) / 8;
            self.pos += take as usize;
            self.n += take * 8;
        } else {
            // By value in and out, so that the reader's address never escapes from the hot
            // loops through this rare call. (Measured: no change in the 2-D loop's code; its
            // remaining spill of `n` comes from register pressure, not from this call.)
            *self = self.clone().refill_tail();
        }
    }

    /// The last bytes, then virtual zeros: every bit of `acc` past the real data is zero
    /// already, so the zeros only need counting.
    #[cold]
    #[inline(never)]
    fn refill_tail(mut self) -> Self {
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
        if self.pos >= self.data.len() {
            self.virt += u64::from(64 - self.n);
            self.n = 64;
        }
        self
    }

    /// True when the stream is LSB first (for callers that specialise on the order, see
    /// [`BitReader::fill_as`]).
    #[inline]
    pub fn lsb_first(&self) -> bool {
        self.order == BitOrder::LsbFirst
    }

    /// [`BitReader::fill`] for a reader whose order the caller knows at compile time
    /// (`LSB` must equal [`BitReader::lsb_first`]): the hot loops then keep no register for
    /// the order and carry no bit-reversal code.
    #[inline(always)]
    pub fn fill_as<const LSB: bool>(&mut self) {
        debug_assert_eq!(LSB, self.lsb_first());
        if self.n < 32 {
            self.load::<LSB>();
        }
    }

    /// Makes at least 32 bits available (past the end: virtual zeros), so that
    /// [`BitReader::peek_fast`] and [`BitReader::consume_fast`] can be used for codes up to
    /// 32 bits.
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

    /// Consumes `k` bits (k ≤ 32) that [`BitReader::fill`] made available: a shift and a
    /// subtraction, no test for the end (see [`BitReader::overrun`]).
    #[inline(always)]
    pub fn consume_fast(&mut self, k: u32) {
        debug_assert!(k <= self.n && k < 64);
        self.acc <<= k;
        self.n -= k;
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
        self.fill();
        self.consume_fast(k);
    }

    /// The hot part of the reader as a plain value, for a decoding loop to keep in registers
    /// (see [`HotBits`]); [`BitReader::set_hot`] puts it back.
    #[inline(always)]
    pub fn hot(&self) -> HotBits<'a> {
        HotBits {
            acc: self.acc,
            n: self.n,
            rest: &self.data[self.pos.min(self.data.len())..],
        }
    }

    /// Takes back the state a [`HotBits`] (from [`BitReader::hot`] of this reader) advanced.
    #[inline(always)]
    pub fn set_hot(&mut self, h: HotBits<'a>) {
        self.acc = h.acc;
        self.n = h.n;
        // `rest` is always a suffix of `data`.
        self.pos = self.data.len() - h.rest.len();
    }

    /// The last bytes and the virtual zeros past them, for [`HotBits::fill_as`]: the reader
    /// itself counts the virtual zeros, so the hot state needs no register for them.
    #[cold]
    #[inline(never)]
    fn hot_tail(&mut self, h: HotBits<'a>) -> HotBits<'a> {
        self.set_hot(h);
        self.refill();
        self.hot()
    }

    /// Bits of the data in total.
    #[inline]
    fn total_bits(&self) -> u64 {
        8 * self.data.len() as u64
    }

    /// True once a consumed code reached past the end of the data.
    #[inline]
    pub fn overrun(&self) -> bool {
        self.bit_position() > self.total_bits()
    }

    /// True when every bit of the data has been consumed.
    pub fn at_end(&self) -> bool {
        self.bit_position() >= self.total_bits()
    }

    /// Bits left unread.
    pub fn remaining_bits(&self) -> u64 {
        self.total_bits().saturating_sub(self.bit_position())
    }

    /// Bits consumed so far (for positions in error reports); past the end this counts the
    /// virtual zeros consumed too.
    pub fn bit_position(&self) -> u64 {
        (self.pos as u64) * 8 + self.virt - u64::from(self.n)
    }

    /// Skips to the next byte boundary (T.4 fill, TIFF Compression 2 row alignment).
    pub fn align_to_byte(&mut self) {
        let k = ((8 - self.bit_position() % 8) % 8) as u32;
        self.consume(k);
    }

    /// Skips zero bits; returns how many (stops at the first one bit or the end of the data).
    pub fn skip_zeros(&mut self) -> u64 {
        let mut skipped = 0u64;
        loop {
            self.fill();
            let rem = self.remaining_bits();
            if rem == 0 {
                return skipped;
            }
            // At most 32 at a time keeps the shift in range; `fill` made 32 available.
            let lz = self.acc.leading_zeros().min(32);
            let lz = u64::from(lz).min(rem) as u32;
            self.consume_fast(lz);
            skipped += u64::from(lz);
            if self.acc >> 63 == 1 {
                return skipped;
            }
        }
    }
}

/// A [`BitReader`]'s accumulator, bit count and unread bytes as three plain values.
///
/// The decoders' inner loops are short of registers. A whole reader inside them carries its
/// virtual-zero count, bit order and data start along (live through the rare end-of-data
/// path, so spilled and reloaded around it); this carries only what every code touches, and
/// the unread data as one slice, so that refilling needs one length test and no position
/// arithmetic. Near the end of the data it hands over to the reader, which keeps the
/// virtual-zero accounting (so [`BitReader::bit_position`] and [`BitReader::overrun`] stay
/// exact once the state is put back with [`BitReader::set_hot`]).
#[derive(Debug, Clone, Copy)]
pub struct HotBits<'a> {
    /// Bits, left-aligned, as in the reader.
    acc: u64,
    /// Valid bits in `acc`.
    n: u32,
    /// The bytes not yet loaded into `acc`: always a suffix of the reader's data.
    rest: &'a [u8],
}

impl<'a> HotBits<'a> {
    /// [`BitReader::fill_as`]: at least 32 bits available afterwards (past the end, virtual
    /// zeros counted by `r`, the reader this state came from).
    #[inline(always)]
    pub fn fill_as<const LSB: bool>(&mut self, r: &mut BitReader<'a>) {
        debug_assert_eq!(LSB, r.lsb_first());
        if self.n < 32 {
            if let Some(b) = self.rest.first_chunk::<8>() {
                let w = if LSB {
                    u64::from_le_bytes(*b).reverse_bits()
                } else {
                    u64::from_be_bytes(*b)
                };
                self.acc |= w >> self.n;
                // 4..=7 whole bytes (n < 32), all inside the 8 just read.
                let take = (63 - self.n) / 8;
                self.rest = &self.rest[take as usize..];
                self.n += take * 8;
            } else {
                *self = r.hot_tail(*self);
            }
        }
    }

    /// The next `k` bits (1 ≤ k ≤ 32) as of the last fill.
    #[inline(always)]
    pub fn peek(&self, k: u32) -> u32 {
        (self.acc >> (64 - k)) as u32
    }

    /// Consumes `k` bits (k ≤ 32) that the last fill made available.
    #[inline(always)]
    pub fn consume(&mut self, k: u32) {
        debug_assert!(k <= self.n && k < 64);
        self.acc <<= k;
        self.n -= k;
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

    /// The reader against a bit-at-a-time model: any sequence of operations on any data, in
    /// either order, gives the same bits, positions and end flags (past the end: zeros).
    mod model {
        use super::*;
        use proptest::prelude::*;

        fn bit(data: &[u8], order: BitOrder, i: u64) -> u32 {
            let Some(&b) = data.get((i / 8) as usize) else {
                return 0;
            };
            let s = match order {
                BitOrder::MsbFirst => 7 - i % 8,
                BitOrder::LsbFirst => i % 8,
            };
            u32::from(b >> s) & 1
        }

        proptest! {
            #[test]
            fn reader_matches_model(
                data in proptest::collection::vec(any::<u8>(), 0..40),
                lsb in any::<bool>(),
                ops in proptest::collection::vec((0u8..5, 1u32..=32), 0..60),
            ) {
                let order = if lsb { BitOrder::LsbFirst } else { BitOrder::MsbFirst };
                // Sparse data too, so that skip_zeros meets long zero runs.
                let data: Vec<u8> = data.iter().map(|&b| if b < 160 { 0 } else { b }).collect();
                let total = 8 * data.len() as u64;
                let mut r = BitReader::new(&data, order);
                let mut pos = 0u64;
                for (op, k) in ops {
                    match op {
                        0 => {
                            let want = (0..u64::from(k)).fold(0, |v, i| v << 1 | bit(&data, order, pos + i));
                            prop_assert_eq!(r.peek(k), want);
                        }
                        1 => { r.consume(k); pos += u64::from(k); }
                        2 => {
                            // The order-specialised fill the decoders' hot loops use.
                            if lsb { r.fill_as::<true>() } else { r.fill_as::<false>() }
                            let want = (0..u64::from(k)).fold(0, |v, i| v << 1 | bit(&data, order, pos + i));
                            prop_assert_eq!(r.peek_fast(k), want);
                            r.consume_fast(k);
                            pos += u64::from(k);
                        }
                        3 => {
                            let mut z = 0;
                            while pos < total && bit(&data, order, pos) == 0 { pos += 1; z += 1; }
                            prop_assert_eq!(r.skip_zeros(), z);
                        }
                        _ => { r.align_to_byte(); pos = pos.div_ceil(8) * 8; }
                    }
                    prop_assert_eq!(r.bit_position(), pos);
                    prop_assert_eq!(r.at_end(), pos >= total);
                    prop_assert_eq!(r.overrun(), pos > total);
                    prop_assert_eq!(r.remaining_bits(), total.saturating_sub(pos));
                }
            }
        }
    }
}
