//! The T.4 code tables (ITU-T T.4 §4.1.2 Tables 2 and 3, §4.2.1.3.3 Table 4) as `(code, length)`
//! pairs for the encoders and as one-level lookup tables for the decoders.
//!
//! The tables are written as the bit strings the standard prints, and turned into numbers at
//! compile time, so that a typo cannot hide behind hand-converted hex. A unit test proves every
//! set prefix-free and the decode tables the exact inverse of the encode tables.

/// One code: its bits right-aligned in `code`, `len` bits long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The bits, right-aligned.
    pub code: u16,
    /// Number of bits.
    pub len: u8,
}

const fn parse(s: &str) -> Code {
    let b = s.as_bytes();
    let mut code: u16 = 0;
    let mut i = 0;
    while i < b.len() {
        code = (code << 1) | (b[i] - b'0') as u16;
        i += 1;
    }
    Code {
        code,
        len: b.len() as u8,
    }
}

const fn parse_all<const N: usize>(s: [&str; N]) -> [Code; N] {
    let mut out = [Code { code: 0, len: 0 }; N];
    let mut i = 0;
    while i < N {
        out[i] = parse(s[i]);
        i += 1;
    }
    out
}

/// T.4 Table 2: white terminating codes, run lengths 0..=63.
pub const WHITE_TERM: [Code; 64] = parse_all([
    "00110101", "000111", "0111", "1000", "1011", "1100", "1110", "1111", "10011", "10100",
    "00111", "01000", "001000", "000011", "110100", "110101", "101010", "101011", "0100111",
    "0001100", "0001000", "0010111", "0000011", "0000100", "0101000", "0101011", "0010011",
    "0100100", "0011000", "00000010", "00000011", "00011010", "00011011", "00010010", "00010011",
    "00010100", "00010101", "00010110", "00010111", "00101000", "00101001", "00101010", "00101011",
    "00101100", "00101101", "00000100", "00000101", "00001010", "00001011", "01010010", "01010011",
    "01010100", "01010101", "00100100", "00100101", "01011000", "01011001", "01011010", "01011011",
    "01001010", "01001011", "00110010", "00110011", "00110100",
]);

/// T.4 Table 2: black terminating codes, run lengths 0..=63.
pub const BLACK_TERM: [Code; 64] = parse_all([
    "0000110111",
    "010",
    "11",
    "10",
    "011",
    "0011",
    "0010",
    "00011",
    "000101",
    "000100",
    "0000100",
    "0000101",
    "0000111",
    "00000100",
    "00000111",
    "000011000",
    "0000010111",
    "0000011000",
    "0000001000",
    "00001100111",
    "00001101000",
    "00001101100",
    "00000110111",
    "00000101000",
    "00000010111",
    "00000011000",
    "000011001010",
    "000011001011",
    "000011001100",
    "000011001101",
    "000001101000",
    "000001101001",
    "000001101010",
    "000001101011",
    "000011010010",
    "000011010011",
    "000011010100",
    "000011010101",
    "000011010110",
    "000011010111",
    "000001101100",
    "000001101101",
    "000011011010",
    "000011011011",
    "000001010100",
    "000001010101",
    "000001010110",
    "000001010111",
    "000001100100",
    "000001100101",
    "000001010010",
    "000001010011",
    "000000100100",
    "000000110111",
    "000000111000",
    "000000100111",
    "000000101000",
    "000001011000",
    "000001011001",
    "000000101011",
    "000000101100",
    "000001011010",
    "000001100110",
    "000001100111",
]);

/// T.4 Table 3a: make-up codes, index `n` codes run `64 × n` (index 0 unused), white,
/// 64..=1728, followed by the extended make-up codes 1792..=2560 (T.4 Table 3b), shared by
/// both colours.
pub const WHITE_MAKEUP: [Code; 41] = parse_all([
    "",
    "11011",
    "10010",
    "010111",
    "0110111",
    "00110110",
    "00110111",
    "01100100",
    "01100101",
    "01101000",
    "01100111",
    "011001100",
    "011001101",
    "011010010",
    "011010011",
    "011010100",
    "011010101",
    "011010110",
    "011010111",
    "011011000",
    "011011001",
    "011011010",
    "011011011",
    "010011000",
    "010011001",
    "010011010",
    "011000",
    "010011011",
    EXT[0],
    EXT[1],
    EXT[2],
    EXT[3],
    EXT[4],
    EXT[5],
    EXT[6],
    EXT[7],
    EXT[8],
    EXT[9],
    EXT[10],
    EXT[11],
    EXT[12],
]);

/// T.4 Table 3a: black make-up codes 64..=1728, then the shared extended codes (see
/// [`WHITE_MAKEUP`]).
pub const BLACK_MAKEUP: [Code; 41] = parse_all([
    "",
    "0000001111",
    "000011001000",
    "000011001001",
    "000001011011",
    "000000110011",
    "000000110100",
    "000000110101",
    "0000001101100",
    "0000001101101",
    "0000001001010",
    "0000001001011",
    "0000001001100",
    "0000001001101",
    "0000001110010",
    "0000001110011",
    "0000001110100",
    "0000001110101",
    "0000001110110",
    "0000001110111",
    "0000001010010",
    "0000001010011",
    "0000001010100",
    "0000001010101",
    "0000001011010",
    "0000001011011",
    "0000001100100",
    "0000001100101",
    EXT[0],
    EXT[1],
    EXT[2],
    EXT[3],
    EXT[4],
    EXT[5],
    EXT[6],
    EXT[7],
    EXT[8],
    EXT[9],
    EXT[10],
    EXT[11],
    EXT[12],
]);

/// T.4 Table 3b: extended make-up codes 1792..=2560 (step 64), both colours.
const EXT: [&str; 13] = [
    "00000001000",
    "00000001100",
    "00000001101",
    "000000010010",
    "000000010011",
    "000000010100",
    "000000010101",
    "000000010110",
    "000000010111",
    "000000011100",
    "000000011101",
    "000000011110",
    "000000011111",
];

/// T.4 §4.1.2: EOL, `0000 0000 0001`.
pub const EOL: Code = parse("000000000001");

/// Longest run one make-up code covers (T.4 Table 3b: 2560).
pub const MAX_MAKEUP: u32 = 2560;

/// Two-dimensional mode codes (T.4 §4.2.1.3.3 Table 4).
pub mod mode {
    use super::{Code, parse};
    /// Pass mode `0001`.
    pub const P: Code = parse("0001");
    /// Horizontal mode `001`.
    pub const H: Code = parse("001");
    /// Vertical modes indexed by `a1 − b1 + 3`: VL3, VL2, VL1, V0, VR1, VR2, VR3.
    pub const V: [Code; 7] = [
        parse("0000010"),
        parse("000010"),
        parse("010"),
        parse("1"),
        parse("011"),
        parse("000011"),
        parse("0000011"),
    ];
}

/// What a run-length decode table entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// A terminating code: the run ends here.
    Term,
    /// A make-up code: more follows.
    MakeUp,
    /// The 12-bit EOL.
    Eol,
    /// No valid code starts with these bits (or they are all zero: fill or a broken EOL).
    Invalid,
}

/// A run-length decode table entry: `len` bits, `kind`, run length `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEntry {
    /// Bits the code occupies.
    pub len: u8,
    /// What the code is.
    pub kind: RunKind,
    /// Run length for `Term`/`MakeUp`.
    pub run: u16,
}

/// White codes are at most 12 bits: the table is indexed by the next 12 bits.
pub const WHITE_BITS: u32 = 12;
/// Black codes are at most 13 bits: the table is indexed by the next 13 bits.
pub const BLACK_BITS: u32 = 13;

const INVALID: RunEntry = RunEntry {
    len: 0,
    kind: RunKind::Invalid,
    run: 0,
};

const fn fill<const N: usize>(
    mut t: [RunEntry; N],
    bits: u32,
    c: Code,
    kind: RunKind,
    run: u16,
) -> [RunEntry; N] {
    let shift = bits - c.len as u32;
    let base = (c.code as usize) << shift;
    let mut i = 0;
    while i < (1usize << shift) {
        t[base + i] = RunEntry {
            len: c.len,
            kind,
            run,
        };
        i += 1;
    }
    t
}

const fn build<const N: usize>(bits: u32, term: &[Code; 64], makeup: &[Code; 41]) -> [RunEntry; N] {
    let mut t = [INVALID; N];
    let mut i = 0;
    while i < 64 {
        t = fill(t, bits, term[i], RunKind::Term, i as u16);
        i += 1;
    }
    let mut m = 1;
    while m < 41 {
        t = fill(t, bits, makeup[m], RunKind::MakeUp, (m * 64) as u16);
        m += 1;
    }
    fill(t, bits, EOL, RunKind::Eol, 0)
}

/// White run decode table, indexed by the next [`WHITE_BITS`] bits.
pub static WHITE_DECODE: [RunEntry; 1 << WHITE_BITS] =
    build(WHITE_BITS, &WHITE_TERM, &WHITE_MAKEUP);
/// Black run decode table, indexed by the next [`BLACK_BITS`] bits.
pub static BLACK_DECODE: [RunEntry; 1 << BLACK_BITS] =
    build(BLACK_BITS, &BLACK_TERM, &BLACK_MAKEUP);

/// Bits [`WHITE_BLACK_PAIRS`] and [`BLACK_WHITE_PAIRS`] are indexed by.
pub const PAIR_BITS: u32 = 11;

/// Two terminating codes of alternate colours read by one table probe (a dithered photo's
/// runs are a few pixels, so two codes together are mostly 5 to 9 bits): the chain of
/// dependent lookups per run halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPair {
    /// Bits of both codes together.
    pub len: u8,
    /// The first run (1..=63).
    pub first: u8,
    /// Both runs together (2..=126), or [`RunPair::NONE`] when the bits do not start with
    /// two such codes within [`PAIR_BITS`].
    pub sum: u16,
}

impl RunPair {
    /// `sum` of an entry that is no pair: above every width, so that "a0 + sum < width"
    /// is the only test the decoder needs.
    pub const NONE: u16 = u16::MAX;
}

/// A white then a black run (1-D lines; horizontal mode from a white a0), indexed by the
/// next [`PAIR_BITS`] bits. Zero-length runs are left out (the decoders' general paths
/// handle their cancelling), as are make-ups and longer codes.
pub static WHITE_BLACK_PAIRS: [RunPair; 1 << PAIR_BITS] = build_pairs(false);

/// A black then a white run (horizontal mode from a black a0), like [`WHITE_BLACK_PAIRS`].
pub static BLACK_WHITE_PAIRS: [RunPair; 1 << PAIR_BITS] = build_pairs(true);

const fn build_pairs(black_first: bool) -> [RunPair; 1 << PAIR_BITS] {
    const NONE: RunPair = RunPair {
        len: 0,
        first: 0,
        sum: RunPair::NONE,
    };
    let white: [RunEntry; 1 << WHITE_BITS] = build(WHITE_BITS, &WHITE_TERM, &WHITE_MAKEUP);
    let black: [RunEntry; 1 << BLACK_BITS] = build(BLACK_BITS, &BLACK_TERM, &BLACK_MAKEUP);
    let mut t = [NONE; 1 << PAIR_BITS];
    let mut i = 0;
    while i < (1 << PAIR_BITS) {
        let a = if black_first {
            black[i << (BLACK_BITS - PAIR_BITS)]
        } else {
            white[i << (WHITE_BITS - PAIR_BITS)]
        };
        if matches!(a.kind, RunKind::Term) && a.run > 0 && (a.len as u32) < PAIR_BITS {
            // The bits after the first code, left-aligned; those past PAIR_BITS are zero,
            // so the second entry found is right only if its code ends within PAIR_BITS.
            let rest = (i << a.len) & ((1 << PAIR_BITS) - 1);
            let b = if black_first {
                white[rest << (WHITE_BITS - PAIR_BITS)]
            } else {
                black[rest << (BLACK_BITS - PAIR_BITS)]
            };
            if matches!(b.kind, RunKind::Term)
                && b.run > 0
                && (a.len as u32 + b.len as u32) <= PAIR_BITS
            {
                t[i] = RunPair {
                    len: a.len + b.len,
                    first: a.run as u8,
                    sum: a.run + b.run,
                };
            }
        }
        i += 1;
    }
    t
}

/// Bits [`MODE_PAIRS`] is indexed by.
pub const MODE_PAIR_BITS: u32 = 11;

/// A mode code, and when it is a vertical or pass mode followed by another within
/// [`MODE_PAIR_BITS`], that second one too: on a dithered photo most codes are 1 to 4 bits
/// long, so one table probe mostly serves two modes. The second mode's fields are bytes of
/// their own, so that reading them costs no unpacking in the decoder's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModePair {
    /// The first mode (as [`MODE_OPS`] has it).
    pub first: ModeOp,
    /// The second mode's code length; 0 when there is no second mode.
    second_bits: u8,
    /// 1 when the second mode is a pass, 0 when vertical.
    second_pass: u8,
    /// The second mode's `a1 − b1` (0 for a pass).
    second_offset: i8,
}

impl ModePair {
    /// True when a second vertical or pass mode follows the first.
    #[inline(always)]
    pub fn has_second(self) -> bool {
        self.second_bits != 0
    }

    /// The second mode's code length.
    #[inline(always)]
    pub fn second_bits(self) -> u32 {
        u32::from(self.second_bits)
    }

    /// 1 when the second mode is a pass, 0 when vertical.
    #[inline(always)]
    pub fn second_pass(self) -> usize {
        usize::from(self.second_pass)
    }

    /// The second mode's `a1 − b1` (0 for a pass).
    #[inline(always)]
    pub fn second_offset(self) -> i32 {
        i32::from(self.second_offset)
    }
}

/// Mode pair table, indexed by the next [`MODE_PAIR_BITS`] bits.
pub static MODE_PAIRS: [ModePair; 1 << MODE_PAIR_BITS] = build_mode_pairs();

const fn is_vp(kind: u8) -> bool {
    kind == ModeOp::VERTICAL || kind == ModeOp::PASS
}

const fn build_mode_pairs() -> [ModePair; 1 << MODE_PAIR_BITS] {
    let ops = build_mode_ops();
    let mut t = [ModePair {
        first: ModeOp::new(0, ModeOp::ZEROS, 0),
        second_bits: 0,
        second_pass: 0,
        second_offset: 0,
    }; 1 << MODE_PAIR_BITS];
    let shift = MODE_PAIR_BITS - MODE_BITS;
    let mut i = 0;
    while i < (1 << MODE_PAIR_BITS) {
        let a = ops[i >> shift];
        t[i].first = a;
        if is_vp(a.kind) && (a.bits as u32) < MODE_PAIR_BITS {
            // The bits after the first code; past MODE_PAIR_BITS they are zero, so the
            // second code counts only if it ends within MODE_PAIR_BITS.
            let rest = (i << a.bits) & ((1 << MODE_PAIR_BITS) - 1);
            let b = ops[rest >> shift];
            if is_vp(b.kind) && a.bits as u32 + b.bits as u32 <= MODE_PAIR_BITS {
                t[i].second_bits = b.bits;
                t[i].second_pass = (b.kind == ModeOp::PASS) as u8;
                t[i].second_offset = b.offset;
            }
        }
        i += 1;
    }
    t
}

/// A two-dimensional mode (T.4 §4.2.1.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass mode.
    Pass,
    /// Horizontal mode: two runs follow.
    Horizontal,
    /// Vertical mode with `a1 − b1` = the offset (−3..=3).
    Vertical(i8),
    /// `0000001xxx`: the uncompressed-mode extension (T.4 §4.2.1.3.4), which faxgate does not
    /// accept (no DIS bit offers it).
    Extension,
    /// Seven zero bits: an EOL (or EOFB) or garbage; the caller looks further.
    Zeros,
}

/// Mode decode table: indexed by the next 7 bits, `(len, mode)`.
pub static MODE_DECODE: [(u8, Mode); 128] = build_modes();

const fn build_modes() -> [(u8, Mode); 128] {
    let mut t = [(7u8, Mode::Zeros); 128];
    t = fill_mode(t, mode::P, Mode::Pass);
    t = fill_mode(t, mode::H, Mode::Horizontal);
    let mut i = 0;
    while i < 7 {
        t = fill_mode(t, mode::V[i], Mode::Vertical(i as i8 - 3));
        i += 1;
    }
    fill_mode(t, parse("0000001"), Mode::Extension)
}

const fn fill_mode(mut t: [(u8, Mode); 128], c: Code, m: Mode) -> [(u8, Mode); 128] {
    let shift = 7 - c.len as u32;
    let base = (c.code as usize) << shift;
    let mut i = 0;
    while i < (1usize << shift) {
        t[base + i] = (c.len, m);
        i += 1;
    }
    t
}

/// Bits [`MODE_OPS`] is indexed by: the longest mode code (VL3, VR3) is 7 bits.
pub const MODE_BITS: u32 = 7;

/// A 2-D mode decode entry: one aligned 4-byte load gives the kind, the bits to consume and
/// the vertical offset without any unpacking arithmetic in the hot loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(4))]
pub struct ModeOp {
    kind: u8,
    bits: u8,
    offset: i8,
}

impl ModeOp {
    /// Vertical mode (T.4 §4.2.1.3.2 c).
    pub const VERTICAL: u8 = 0;
    /// Horizontal mode: two runs follow.
    pub const HORIZONTAL: u8 = 1;
    /// Pass mode.
    pub const PASS: u8 = 2;
    /// The uncompressed-mode extension `0000001xxx` (T.4 §4.2.1.3.4).
    pub const EXTENSION: u8 = 3;
    /// Seven zeros: EOL, EOFB or garbage.
    pub const ZEROS: u8 = 4;

    const fn new(bits: u8, kind: u8, offset: i8) -> ModeOp {
        ModeOp { kind, bits, offset }
    }

    /// Bits to consume: the code's length, or 0 for [`ModeOp::EXTENSION`] and
    /// [`ModeOp::ZEROS`] (left in the stream for the error path and resynchronisation).
    #[inline(always)]
    pub fn bits(self) -> u32 {
        u32::from(self.bits)
    }

    /// One of the kind constants.
    #[inline(always)]
    pub fn kind(self) -> u8 {
        self.kind
    }

    /// `a1 − b1` of a vertical mode (−3..=3).
    #[inline(always)]
    pub fn offset(self) -> i32 {
        i32::from(self.offset)
    }
}

/// Mode decode table: indexed by the next [`MODE_BITS`] bits.
pub static MODE_OPS: [ModeOp; 1 << MODE_BITS] = build_mode_ops();

const fn build_mode_ops() -> [ModeOp; 1 << MODE_BITS] {
    let mut t = [ModeOp::new(0, ModeOp::ZEROS, 0); 1 << MODE_BITS];
    let mut m = 0;
    while m < (1 << MODE_BITS) {
        let (len, mode) = MODE_DECODE[m];
        t[m] = match mode {
            Mode::Pass => ModeOp::new(len, ModeOp::PASS, 0),
            Mode::Horizontal => ModeOp::new(len, ModeOp::HORIZONTAL, 0),
            Mode::Vertical(d) => ModeOp::new(len, ModeOp::VERTICAL, d),
            // Not consumed here: the error paths look at these bits.
            Mode::Extension => ModeOp::new(0, ModeOp::EXTENSION, 0),
            Mode::Zeros => ModeOp::new(0, ModeOp::ZEROS, 0),
        };
        m += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix_free(codes: &[Code]) {
        for (i, a) in codes.iter().enumerate() {
            for (j, b) in codes.iter().enumerate() {
                if i == j || a.len > b.len {
                    continue;
                }
                let prefix = b.code >> (b.len - a.len);
                assert!(
                    prefix != a.code,
                    "code {i} {a:?} is a prefix of code {j} {b:?}"
                );
            }
        }
    }

    #[test]
    fn code_sets_are_prefix_free() {
        let mut white: Vec<Code> = WHITE_TERM.to_vec();
        white.extend_from_slice(&WHITE_MAKEUP[1..]);
        white.push(EOL);
        prefix_free(&white);
        let mut black: Vec<Code> = BLACK_TERM.to_vec();
        black.extend_from_slice(&BLACK_MAKEUP[1..]);
        black.push(EOL);
        prefix_free(&black);
        let mut modes = mode::V.to_vec();
        modes.push(mode::P);
        modes.push(mode::H);
        prefix_free(&modes);
    }

    #[test]
    fn packed_mode_ops_match_modes() {
        for (i, &(len, mode)) in MODE_DECODE.iter().enumerate() {
            let op = MODE_OPS[i];
            match mode {
                Mode::Vertical(d) => {
                    assert_eq!(
                        (op.kind(), op.bits(), op.offset()),
                        (ModeOp::VERTICAL, u32::from(len), i32::from(d))
                    );
                }
                Mode::Horizontal => {
                    assert_eq!((op.kind(), op.bits()), (ModeOp::HORIZONTAL, u32::from(len)))
                }
                Mode::Pass => assert_eq!((op.kind(), op.bits()), (ModeOp::PASS, u32::from(len))),
                Mode::Extension => assert_eq!((op.kind(), op.bits()), (ModeOp::EXTENSION, 0)),
                Mode::Zeros => assert_eq!((op.kind(), op.bits()), (ModeOp::ZEROS, 0)),
            }
        }
    }

    /// Every pair entry against the encode tables: each two terminating codes of
    /// alternate colours (runs above zero) that fit together in PAIR_BITS, followed by
    /// every possible tail, give that pair; and nothing else is a pair.
    #[test]
    fn run_pairs_are_exactly_the_short_code_pairs() {
        for (table, first, second) in [
            (&WHITE_BLACK_PAIRS, &WHITE_TERM, &BLACK_TERM),
            (&BLACK_WHITE_PAIRS, &BLACK_TERM, &WHITE_TERM),
        ] {
            let mut want = [None; 1 << PAIR_BITS];
            for (ar, ac) in first.iter().enumerate().skip(1) {
                for (br, bc) in second.iter().enumerate().skip(1) {
                    let len = u32::from(ac.len + bc.len);
                    if len > PAIR_BITS {
                        continue;
                    }
                    let code = (usize::from(ac.code) << bc.len) | usize::from(bc.code);
                    for tail in 0..1usize << (PAIR_BITS - len) {
                        let i = (code << (PAIR_BITS - len)) | tail;
                        assert!(want[i].is_none(), "two pairs at {i:#b}");
                        want[i] = Some((len as u8, ar as u8, (ar + br) as u16));
                    }
                }
            }
            for (i, p) in table.iter().enumerate() {
                match want[i] {
                    Some((len, a, sum)) => assert_eq!((p.len, p.first, p.sum), (len, a, sum)),
                    None => assert_eq!(p.sum, RunPair::NONE, "index {i:#b}"),
                }
            }
        }
    }

    /// Every mode pair entry against the mode codes: the first is MODE_OPS's, and a second
    /// is there exactly when a vertical or pass code follows a vertical or pass code within
    /// MODE_PAIR_BITS.
    #[test]
    fn mode_pairs_match_two_codes() {
        let vp = |m: Mode| matches!(m, Mode::Vertical(_) | Mode::Pass);
        for (i, p) in MODE_PAIRS.iter().enumerate() {
            let first = i >> (MODE_PAIR_BITS - MODE_BITS);
            assert_eq!(p.first, MODE_OPS[first]);
            let (l1, m1) = MODE_DECODE[first];
            let want = if vp(m1) {
                let rest = (i << l1) & ((1 << MODE_PAIR_BITS) - 1);
                let (l2, m2) = MODE_DECODE[rest >> (MODE_PAIR_BITS - MODE_BITS)];
                (vp(m2) && u32::from(l1 + l2) <= MODE_PAIR_BITS).then_some((l2, m2))
            } else {
                None
            };
            match want {
                None => assert!(!p.has_second(), "index {i:#b}"),
                Some((l2, m2)) => {
                    assert!(p.has_second());
                    assert_eq!(p.second_bits(), u32::from(l2));
                    match m2 {
                        Mode::Pass => assert_eq!((p.second_pass(), p.second_offset()), (1, 0)),
                        Mode::Vertical(d) => {
                            assert_eq!((p.second_pass(), p.second_offset()), (0, i32::from(d)))
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }
    }

    #[test]
    fn decode_tables_invert_encode_tables() {
        for (bits, table, term, makeup) in [
            (WHITE_BITS, &WHITE_DECODE[..], &WHITE_TERM, &WHITE_MAKEUP),
            (BLACK_BITS, &BLACK_DECODE[..], &BLACK_TERM, &BLACK_MAKEUP),
        ] {
            for (run, c) in term.iter().enumerate() {
                let e = table[(c.code as usize) << (bits - u32::from(c.len))];
                assert_eq!((e.kind, e.run, e.len), (RunKind::Term, run as u16, c.len));
            }
            for (m, c) in makeup.iter().enumerate().skip(1) {
                let e = table[(c.code as usize) << (bits - u32::from(c.len))];
                assert_eq!(
                    (e.kind, e.run, e.len),
                    (RunKind::MakeUp, m as u16 * 64, c.len)
                );
            }
            assert_eq!(table[0].kind, RunKind::Invalid);
        }
        // Both code spaces are full except below eight leading zeros, where only EOL lives
        // (white: 16 slots of 12 bits, 1 used; black: 32 slots of 13 bits, 2 used) — a check
        // that no code was dropped or mistyped into an overlap.
        let used = WHITE_DECODE
            .iter()
            .filter(|e| e.kind != RunKind::Invalid)
            .count();
        assert_eq!(used, (1 << WHITE_BITS) - 15);
        let used = BLACK_DECODE
            .iter()
            .filter(|e| e.kind != RunKind::Invalid)
            .count();
        assert_eq!(used, (1 << BLACK_BITS) - 30);
    }
}
