//! T.30 frames and HDLC: the bit-level decoder (`fax::t30::hdlc::Decoder`) on mutated bit
//! streams of real frames, and the frame readers (`Frame::parse`, DIS/DTC `Capabilities`,
//! DCS, station identities) on mutated frames — those of the transcripts under
//! `tests/fixtures/t30/` and `tests/fixtures/fuzz/t30/`, and our own DIS/DCS.
//!
//! Regressions: `tests/fixtures/fuzz/t30-hdlc/` (bit streams that once broke the decoder).
//!
//! Properties: no panic, hang or unbounded heap; the decoder never returns a frame longer than
//! `MAX_FRAME`; a frame parsed reads back as the same octets; any frame sent through the
//! encoder comes out of the decoder unchanged, whatever the chunking.

use proptest::prelude::*;

use faxgate::fax::t30::dis::{Capabilities, Dcs};
use faxgate::fax::t30::fcf::{Frame, decode_id};
use faxgate::fax::t30::hdlc::{self, Decoded, Decoder, Encoder, MAX_FRAME};

const TOKENS: &[&[u8]] = &[
    b"\x7e",
    b"\x7e\x7e\x7e",
    b"\xff",
    b"\xff\xff",
    b"\xff\x13",
    b"\xff\x03",
    b"\x80",
    b"\x00",
    b"\x1f",
    b"\xfe",
];

fn hex_line(l: &str) -> Option<Vec<u8>> {
    let v: Option<Vec<u8>> = l
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    v.filter(|v| !v.is_empty())
}

/// Frames (address .. FIF): the seed file, our own DIS and DCS, and the FIFs quoted in the
/// transcripts (`DIS (00 EE FA …)`).
fn frames() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = crate::files_under("fuzz/t30")
        .iter()
        .flat_map(|f| {
            String::from_utf8_lossy(f)
                .lines()
                .filter_map(hex_line)
                .collect::<Vec<_>>()
        })
        .collect();
    let ours = Capabilities::ours(14_400, true);
    let mut dis = vec![0xFF, 0x13, 0x80];
    dis.extend(ours.encode());
    v.push(dis);
    for t in crate::files_under("t30") {
        for l in String::from_utf8_lossy(&t).lines() {
            if let (Some(a), Some(b)) = (l.find(" ("), l.rfind(')'))
                && a < b
                && let Some(fif) = hex_line(&l[a + 2..b])
            {
                let mut f = vec![0xFF, 0x13, 0x80];
                f.extend(fif);
                v.push(f);
            }
        }
    }
    v
}

fn encoded(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.flags(4);
    for f in frames {
        e.frame(f);
    }
    e.flags(2);
    e.finish()
}

fn frame_seeds() -> std::sync::Arc<Vec<Vec<u8>>> {
    std::sync::Arc::new(frames())
}

fn bit_seeds() -> std::sync::Arc<Vec<Vec<u8>>> {
    let f = frames();
    let mut v: Vec<Vec<u8>> = f.iter().map(|x| encoded(std::slice::from_ref(x))).collect();
    v.push(encoded(&f));
    // Bit streams that once broke the decoder.
    v.extend(crate::files_under("fuzz/t30-hdlc"));
    std::sync::Arc::new(v)
}

fn check_frame(data: &[u8]) {
    let _ = hdlc::check_fcs(data);
    if let Ok(f) = Frame::parse(data) {
        assert_eq!(f.bytes(), data);
        let _ = f.fcf();
        let fif = f.fif();
        let _ = Capabilities::decode(fif);
        let _ = Dcs::decode(fif);
        let id = decode_id(fif);
        assert!(id.chars().count() <= fif.len(), "{id:?}");
    }
    let _ = Capabilities::decode(data);
    let _ = Dcs::decode(data);
}

fn check_bits(data: &[u8], cut: usize) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let cut = if data.is_empty() { 0 } else { cut % data.len() };
    d.push(&data[..cut], &mut out);
    d.push(&data[cut..], &mut out);
    for o in &out {
        if let Decoded::Frame(f) = o {
            assert!(f.len() <= MAX_FRAME, "frame of {} octets", f.len());
            check_frame(f);
        }
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn t30_mutated_frames_never_panic(data in crate::mutated(frame_seeds(), TOKENS)) {
        crate::run_case("t30-frame", data, 1 << 20, check_frame);
    }

    #[test]
    fn t30_hdlc_mutated_bits_never_panic(data in crate::mutated(bit_seeds(), TOKENS), cut in any::<usize>()) {
        crate::run_case("t30-hdlc", data, 1 << 20, move |d| check_bits(d, cut));
    }

    #[test]
    fn t30_hdlc_round_trip(
        frame in proptest::collection::vec(any::<u8>(), 3..=MAX_FRAME),
        cut in any::<usize>(),
    ) {
        let bits = encoded(std::slice::from_ref(&frame));
        let cut = cut % bits.len();
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.push(&bits[..cut], &mut out);
        d.push(&bits[cut..], &mut out);
        prop_assert_eq!(out, vec![Decoded::Frame(frame)]);
    }
}

#[test]
fn t30_seeds_replay() {
    let f = frame_seeds();
    assert!(f.len() >= 10, "{} frames", f.len());
    for s in f.iter() {
        crate::run_case("t30-frame", s.clone(), 1 << 20, check_frame);
    }
    for s in bit_seeds().iter() {
        crate::run_case("t30-hdlc", s.clone(), 1 << 20, |d| check_bits(d, 3));
    }
}
