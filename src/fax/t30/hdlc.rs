//! HDLC framing for T.30 (T.30 §5.3.1 and Annex A): the FCS (CRC-16 ITU, ISO 3309) and the
//! bit-level framing (flags, zero-bit insertion) a Class 1 host performs itself for ECM frames sent
//! at high speed (`AT+FTM`), where the modem only moves raw bits.
//!
//! Bits go on the line least significant bit first (T.30 §5.3.1, ISO 3309), and the bytes here are
//! in that order: the first byte of a T.30 frame is the address `0xFF`, then the control field
//! (`0x03`, or `0x13` with the final bit, T.30 §5.3.5).

/// The HDLC flag `0111 1110` that opens and closes every frame.
pub const FLAG: u8 = 0x7E;

/// Largest frame (address .. FIF, without FCS) accepted from anywhere. ECM frames are the
/// largest T.30 frames: address, control, FCF, frame number and 256 octets (T.30 Annex A.3.4);
/// V.21 control frames are far shorter. Ours: a little headroom for NSF.
pub const MAX_FRAME: usize = 264;

/// CRC-16 ITU-T (polynomial x^16 + x^12 + x^5 + 1, reflected, preset all ones, result
/// complemented): the frame check sequence of T.30 §5.3.7 / ISO 3309.
pub fn fcs(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `frame` followed by its two FCS octets, low octet first (as transmitted).
pub fn with_fcs(frame: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(frame.len() + 2);
    v.extend_from_slice(frame);
    let f = fcs(frame);
    v.push((f & 0xFF) as u8);
    v.push((f >> 8) as u8);
    v
}

/// Checks and strips the FCS: `Some(frame)` when the last two octets are the FCS of the rest.
pub fn check_fcs(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < 3 {
        return None;
    }
    let (body, tail) = bytes.split_at(bytes.len() - 2);
    let got = u16::from(tail[0]) | (u16::from(tail[1]) << 8);
    (fcs(body) == got).then_some(body)
}

/// Bit-level HDLC encoder: flags, the frame, its FCS, zero-bit insertion after five ones.
///
/// Output bytes are packed LSB first, the order a Class 1 modem shifts them out in `+FTM` mode.
#[derive(Debug, Default)]
pub struct Encoder {
    out: Vec<u8>,
    acc: u8,
    nbits: u8,
    ones: u8,
}

impl Encoder {
    /// A new encoder with an empty output.
    pub fn new() -> Self {
        Self::default()
    }

    fn bit(&mut self, b: bool) {
        if b {
            self.acc |= 1 << self.nbits;
        }
        self.nbits += 1;
        if self.nbits == 8 {
            self.out.push(self.acc);
            self.acc = 0;
            self.nbits = 0;
        }
    }

    /// Appends `n` flags (the preamble, or the closing flag of a frame).
    pub fn flags(&mut self, n: usize) {
        for _ in 0..n {
            for i in 0..8 {
                self.bit(FLAG >> i & 1 != 0);
            }
        }
        self.ones = 0;
    }

    /// Appends one frame with its FCS and a closing flag (zero-bit insertion applied).
    pub fn frame(&mut self, frame: &[u8]) {
        for &byte in &with_fcs(frame) {
            for i in 0..8 {
                let b = byte >> i & 1 != 0;
                self.bit(b);
                if b {
                    self.ones += 1;
                    if self.ones == 5 {
                        self.bit(false);
                        self.ones = 0;
                    }
                } else {
                    self.ones = 0;
                }
            }
        }
        self.flags(1);
    }

    /// The encoded bits so far, padded with flag bits to a whole byte.
    pub fn finish(mut self) -> Vec<u8> {
        let mut i = 0;
        while self.nbits != 0 {
            self.bit(FLAG >> (i % 8) & 1 != 0);
            i += 1;
        }
        self.out
    }
}

/// What the bit-level decoder found between two flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A frame whose FCS checked (FCS stripped).
    Frame(Vec<u8>),
    /// A frame whose FCS failed, or that was longer than [`MAX_FRAME`], or not a whole number
    /// of octets: the receiver counts it as lost (T.30 Annex A: PPR asks for it again).
    Bad,
}

/// Bit-level HDLC decoder: finds flags, removes inserted zeros, checks the FCS.
///
/// Feed it any bytes (LSB first); it never panics and holds at most [`MAX_FRAME`] + 2 octets.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    acc: u8,
    nbits: u8,
    ones: u8,
    in_frame: bool,
    overflow: bool,
}

impl Decoder {
    /// A new decoder, hunting for a flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes`, appending everything found to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Decoded>) {
        for &byte in bytes {
            for i in 0..8 {
                self.bit(byte >> i & 1 != 0, out);
            }
        }
    }

    fn bit(&mut self, b: bool, out: &mut Vec<Decoded>) {
        if b {
            // Saturating: idle line noise can be any number of ones (found by the fuzz
            // target: 255 of them overflowed a plain `+= 1`), and past seven the count no
            // longer matters.
            self.ones = self.ones.saturating_add(1);
            if self.ones > 6 {
                // Abort / idle ones: drop whatever was being collected.
                self.reset_frame();
                self.in_frame = false;
            }
            self.data_bit(true);
            return;
        }
        match self.ones {
            5 => {
                // Inserted zero: skip it.
                self.ones = 0;
            }
            6 => {
                // A flag. The flag's first seven bits (0111111) went into data; undo them.
                self.ones = 0;
                self.close(out);
                self.in_frame = true;
            }
            _ => {
                self.ones = 0;
                self.data_bit(false);
            }
        }
    }

    fn data_bit(&mut self, b: bool) {
        if !self.in_frame {
            return;
        }
        if b {
            self.acc |= 1 << self.nbits;
        }
        self.nbits += 1;
        if self.nbits == 8 {
            if self.buf.len() < MAX_FRAME + 2 {
                self.buf.push(self.acc);
            } else {
                self.overflow = true;
            }
            self.acc = 0;
            self.nbits = 0;
        }
    }

    fn close(&mut self, out: &mut Vec<Decoded>) {
        if self.in_frame {
            // The flag 0111 1110 arrives LSB first as 0,1,1,1,1,1,1,0: its leading 0 and six ones
            // were taken as data bits; seven bits to take back.
            let mut bits = u32::from(self.nbits) + 8 * self.buf.len() as u32;
            let total_before = bits;
            bits = bits.saturating_sub(7);
            let whole = bits.is_multiple_of(8);
            if total_before >= 7 && (bits > 0 || self.overflow) {
                let octets = (bits / 8) as usize;
                if !whole || self.overflow || octets < 3 {
                    out.push(Decoded::Bad);
                } else {
                    self.buf.truncate(octets);
                    match check_fcs(&self.buf) {
                        Some(body) => out.push(Decoded::Frame(body.to_vec())),
                        None => out.push(Decoded::Bad),
                    }
                }
            }
        }
        self.reset_frame();
    }

    fn reset_frame(&mut self) {
        self.buf.clear();
        self.acc = 0;
        self.nbits = 0;
        self.overflow = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_idle_ones_then_a_frame() {
        // A line idling in ones far longer than 255 bits (found by the fuzz target: the count
        // of ones overflowed), then a frame: the frame still comes through.
        let mut e = Encoder::new();
        e.flags(2);
        e.frame(&[0xFF, 0x13, 0x80, 0x00]);
        let mut bits = vec![0xFF; 100];
        bits.extend(e.finish());
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.push(&bits, &mut out);
        assert_eq!(out, vec![Decoded::Frame(vec![0xFF, 0x13, 0x80, 0x00])]);
    }

    #[test]
    fn fcs_of_a_frame_captured_on_the_rig() {
        // DIS as received from iaxmodem after AT+FRH=3, FCS octets 'c' '/' included.
        let frame = [
            0xff, 0x13, 0x80, 0x00, 0xce, 0xf4, 0x80, 0x80, 0x81, 0x80, 0x80, 0x80, 0x18,
        ];
        assert_eq!(fcs(&frame).to_le_bytes(), [b'c', b'/']);
    }

    #[test]
    fn fcs_check_value() {
        // ISO 3309 / X.25 check: CRC-16/IBM-SDLC of "123456789" is 0x906E.
        assert_eq!(fcs(b"123456789"), 0x906E);
        let f = with_fcs(b"123456789");
        assert_eq!(check_fcs(&f), Some(&b"123456789"[..]));
        let mut g = f.clone();
        g[3] ^= 0x10;
        assert_eq!(check_fcs(&g), None);
    }

    #[test]
    fn bit_stuffing_round_trip_with_flag_like_data() {
        let frames: Vec<Vec<u8>> = vec![
            vec![0xFF, 0x13, 0x80, 0x7E, 0x7E, 0xFF, 0xFF],
            vec![0xFF, 0x03, 0x06, 0x00, 0x3F, 0xFC],
        ];
        let mut e = Encoder::new();
        e.flags(3);
        for f in &frames {
            e.frame(f);
        }
        e.flags(2);
        let bits = e.finish();
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.push(&bits, &mut out);
        let got: Vec<_> = out
            .into_iter()
            .filter_map(|x| match x {
                Decoded::Frame(f) => Some(f),
                Decoded::Bad => None,
            })
            .collect();
        assert_eq!(got, frames);
    }

    proptest! {
        #[test]
        fn encode_decode(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 3..40), 1..5)) {
            let mut e = Encoder::new();
            e.flags(2);
            for f in &frames { e.frame(f); }
            let bits = e.finish();
            let mut d = Decoder::new();
            let mut out = Vec::new();
            d.push(&bits, &mut out);
            let want: Vec<Decoded> = frames.iter().cloned().map(Decoded::Frame).collect();
            prop_assert_eq!(out, want);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            d.push(&bytes, &mut out);
            for x in out {
                if let Decoded::Frame(f) = x { prop_assert!(f.len() <= MAX_FRAME); }
            }
        }
    }
}
