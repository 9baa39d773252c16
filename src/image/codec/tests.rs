//! Codec round trips, edge pages, received-mode behaviour, and hayro-ccitt as an independent
//! decoder of our output.

use super::*;
use proptest::prelude::*;

/// A deterministic test page: `kind` 0 white, 1 black, 2 checkerboard, 3 black last column,
/// 4 text-like noise, 5 dense noise.
pub(crate) fn make_page(width: u32, height: u32, kind: u32, seed: u64) -> Vec<u8> {
    let stride = width.div_ceil(8) as usize;
    let mut data = vec![0u8; stride * height as usize];
    let mut s = seed | 1;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for y in 0..height as usize {
        let row = &mut data[y * stride..(y + 1) * stride];
        match kind {
            0 => {}
            1 => row.fill(0xff),
            2 => row.fill(if y % 2 == 0 { 0xaa } else { 0x55 }),
            3 => {
                let x = width - 1;
                row[(x / 8) as usize] |= 0x80 >> (x % 8);
            }
            4 => {
                // Runs of random length, mostly white, similar rows in bands.
                let mut x = 0u32;
                let mut black = false;
                let band = (y / 7) as u64;
                let mut t = band.wrapping_mul(0x9e3779b97f4a7c15) | 1;
                while x < width {
                    t ^= t << 13;
                    t ^= t >> 7;
                    t ^= t << 17;
                    let len = if black { 1 + t % 6 } else { 1 + t % 90 } as u32;
                    if black {
                        for p in x..(x + len).min(width) {
                            row[(p / 8) as usize] |= 0x80 >> (p % 8);
                        }
                    }
                    x += len;
                    black = !black;
                }
                if rnd() % 5 == 0 {
                    let p = (rnd() % u64::from(width)) as u32;
                    row[(p / 8) as usize] ^= 0x80 >> (p % 8);
                }
            }
            _ => row.iter_mut().for_each(|b| *b = rnd() as u8),
        }
        if !width.is_multiple_of(8) {
            row[stride - 1] &= 0xff << (8 - width % 8);
        }
    }
    data
}

pub(crate) fn encode(data: &[u8], width: u32, opts: EncodeOptions) -> Vec<u8> {
    let stride = width.div_ceil(8) as usize;
    let mut e = Encoder::new(width, opts).unwrap();
    let mut out = Vec::new();
    for row in data.chunks_exact(stride) {
        e.encode_row(row, &mut out).unwrap();
    }
    e.finish(&mut out);
    out
}

pub(crate) fn decode_all(
    coded: &[u8],
    width: u32,
    opts: DecodeOptions,
) -> Result<(Vec<u8>, CopyQuality, Option<PageEnd>), DecodeError> {
    let stride = width.div_ceil(8) as usize;
    let mut d = Decoder::new(coded, width, opts)?;
    let mut out = Vec::new();
    let mut row = vec![0u8; stride];
    while d.next_row(&mut row)?.is_some() {
        out.extend_from_slice(&row);
    }
    Ok((out, d.quality(), d.end()))
}

fn all_codings() -> [Coding; 5] {
    [
        Coding::Mh,
        Coding::Mr { k: 2 },
        Coding::Mr { k: 4 },
        Coding::Mr { k: 0 },
        Coding::Mmr,
    ]
}

fn hayro(coded: &[u8], width: u32, height: u32, coding: Coding, order: BitOrder) -> Vec<u8> {
    use hayro_ccitt::{DecodeSettings, DecoderContext, EncodingMode};
    struct Sink {
        width: u32,
        out: Vec<u8>,
    }
    impl hayro_ccitt::Decoder for Sink {
        fn push_row(&mut self, changes: &[u32]) {
            let mut row = vec![0u8; self.width.div_ceil(8) as usize];
            let mut c: Vec<u32> = changes.to_vec();
            c.push(self.width);
            runs::changes_to_row(&c, self.width, &mut row);
            self.out.extend_from_slice(&row);
        }
    }
    let mut data = coded.to_vec();
    if order == BitOrder::LsbFirst {
        reverse_bits_in_place(&mut data);
    }
    let settings = DecodeSettings {
        columns: width,
        rows: height,
        end_of_block: true,
        end_of_line: coding != Coding::Mmr,
        rows_are_byte_aligned: false,
        encoding: match coding {
            Coding::Mh => EncodingMode::Group3_1D,
            Coding::Mr { .. } => EncodingMode::Group3_2D,
            Coding::Mmr => EncodingMode::Group4,
        },
        strict: true,
    };
    let mut ctx = DecoderContext::new(settings);
    let mut sink = Sink {
        width,
        out: Vec::new(),
    };
    hayro_ccitt::decode(&data, &mut sink, &mut ctx).expect("hayro-ccitt decodes our output");
    sink.out
}

#[test]
fn edge_pages_round_trip_and_hayro_agrees() {
    for width in [1728u32, 2048, 2432, 8, 13, 1] {
        for kind in 0..6 {
            let height = 9;
            let page = make_page(width, height, kind, 7);
            for coding in all_codings() {
                for (align, end, order) in [
                    (false, false, BitOrder::MsbFirst),
                    (true, true, BitOrder::LsbFirst),
                ] {
                    let opts = EncodeOptions {
                        coding,
                        align_eol: align,
                        min_bits_per_line: 0,
                        end_marker: end,
                        bit_order: order,
                    };
                    let coded = encode(&page, width, opts);
                    let mut d = DecodeOptions::new(coding);
                    d.bit_order = order;
                    let (back, q, _) = decode_all(&coded, width, d).unwrap();
                    assert_eq!(back, page, "{width} kind {kind} {coding:?} {opts:?}");
                    assert_eq!(q.rows, height);
                    let h = hayro(&coded, width, height, coding, order);
                    assert_eq!(h, page, "hayro: {width} kind {kind} {coding:?} {opts:?}");
                }
            }
        }
    }
}

#[test]
fn alignment_and_min_bits() {
    let width = 1728;
    let page = make_page(width, 20, 4, 3);
    for coding in [Coding::Mh, Coding::Mr { k: 4 }] {
        let opts = EncodeOptions {
            coding,
            align_eol: true,
            min_bits_per_line: 1500,
            end_marker: true,
            bit_order: BitOrder::MsbFirst,
        };
        let coded = encode(&page, width, opts);
        // Every EOL ends on a byte boundary: find `…0000 0001` at byte ends, and lines are at
        // least 1500 bits apart.
        let mut eols = Vec::new();
        let mut zeros = 0u32;
        for (i, b) in coded.iter().enumerate() {
            for k in 0..8 {
                let bit = b & (0x80 >> k) != 0;
                if bit && zeros >= 11 {
                    eols.push(i * 8 + k);
                }
                zeros = if bit { 0 } else { zeros + 1 };
            }
        }
        assert_eq!(eols.len(), 20 + 6);
        for e in &eols[..21] {
            assert_eq!(e % 8, 7, "EOL ends at a byte end");
        }
        for w in eols[..21].windows(2) {
            assert!(w[1] - w[0] >= 1500, "{coding:?}: {} bits", w[1] - w[0]);
        }
        let (back, q, end) = decode_all(&coded, width, DecodeOptions::new(coding)).unwrap();
        assert_eq!((back, q.rows, end), (page.clone(), 20, Some(PageEnd::Rtc)));
    }
}

#[test]
fn mmr_eofb_and_end_of_data() {
    let width = 1728;
    let page = make_page(width, 5, 4, 1);
    let mut opts = EncodeOptions::new(Coding::Mmr);
    opts.end_marker = true;
    let (_, _, end) = decode_all(
        &encode(&page, width, opts),
        width,
        DecodeOptions::new(Coding::Mmr),
    )
    .unwrap();
    assert_eq!(end, Some(PageEnd::Eofb));
    opts.end_marker = false;
    let (back, _, end) = decode_all(
        &encode(&page, width, opts),
        width,
        DecodeOptions::new(Coding::Mmr),
    )
    .unwrap();
    assert_eq!((back, end), (page, Some(PageEnd::EndOfData)));
}

#[test]
fn strict_mode_names_the_row() {
    let width = 1728;
    let page = make_page(width, 10, 4, 9);
    let mut coded = encode(&page, width, EncodeOptions::new(Coding::Mh));
    // Cut the data in the middle of a line.
    coded.truncate(coded.len() / 2);
    let err = decode_all(&coded, width, DecodeOptions::new(Coding::Mh)).unwrap_err();
    assert!(err.row > 0 && err.row < 10, "{err}");
}

#[test]
fn received_mode_replaces_bad_lines() {
    let width = 1728;
    let page = make_page(width, 40, 4, 5);
    for coding in [Coding::Mh, Coding::Mr { k: 4 }] {
        let mut opts = EncodeOptions::new(coding);
        opts.end_marker = true;
        let mut coded = encode(&page, width, opts);
        // Corrupt a byte in the middle: within a line's data (not touching an EOL).
        let mid = coded.len() / 2;
        coded[mid] ^= 0x5a;
        let mut d = DecodeOptions::new(coding);
        d.mode = DecodeMode::Received;
        let (back, q, end) = decode_all(&coded, width, d).unwrap();
        assert_eq!(end, Some(PageEnd::Rtc), "{coding:?}");
        assert!(q.bad_rows >= 1, "{coding:?} {q:?}");
        assert!(q.longest_bad_run <= q.bad_rows);
        assert!((q.rows as i64 - 40).abs() <= 2, "{coding:?} {q:?}");
        assert_eq!(back.len(), q.rows as usize * 216);
        // Rows before the damage are intact.
        assert_eq!(back[..216 * 5], page[..216 * 5]);
    }
}

#[test]
fn short_and_long_lines_in_received_mode() {
    // Hand-made MH: EOL, a line of 100 white (short for 1728), EOL, a full white line, EOL,
    // a line of 1800 (long), EOL, a full line, RTC.
    use bits::BitWriter;
    let mut w = BitWriter::new(BitOrder::MsbFirst);
    let mut out = Vec::new();
    let put = |w: &mut BitWriter, c: tables::Code, out: &mut Vec<u8>| {
        w.put(u32::from(c.code), u32::from(c.len), out)
    };
    let white = |w: &mut BitWriter, n: u32, out: &mut Vec<u8>| {
        let mut n = n;
        if n >= 64 {
            put(w, tables::WHITE_MAKEUP[(n / 64) as usize], out);
            n %= 64;
        }
        put(w, tables::WHITE_TERM[n as usize], out);
    };
    for len in [100u32, 1728, 1792 + 8, 1728] {
        put(&mut w, tables::EOL, &mut out);
        white(&mut w, len, &mut out);
    }
    for _ in 0..6 {
        put(&mut w, tables::EOL, &mut out);
    }
    w.flush(&mut out);
    let mut d = DecodeOptions::new(Coding::Mh);
    d.mode = DecodeMode::Received;
    let (_, q, end) = decode_all(&out, 1728, d).unwrap();
    assert_eq!(
        (q.rows, q.bad_rows, q.longest_bad_run, end),
        (4, 2, 1, Some(PageEnd::Rtc))
    );
    let err = decode_all(&out, 1728, DecodeOptions::new(Coding::Mh)).unwrap_err();
    assert_eq!((err.row, err.kind), (0, DecodeErrorKind::ShortLine));
}

#[test]
fn row_limit_ends_page() {
    let page = make_page(64, 30, 4, 2);
    let coded = encode(&page, 64, EncodeOptions::new(Coding::Mh));
    let mut d = DecodeOptions::new(Coding::Mh);
    d.max_rows = 10;
    let (_, q, end) = decode_all(&coded, 64, d).unwrap();
    assert_eq!((q.rows, end), (10, Some(PageEnd::RowLimit)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_pages_round_trip(width in 1u32..700, height in 1u32..12, kind in 0u32..6, seed in any::<u64>(), ci in 0usize..5, align in any::<bool>(), end in any::<bool>()) {
        let coding = all_codings()[ci];
        let page = make_page(width, height, kind, seed);
        let opts = EncodeOptions { coding, align_eol: align, min_bits_per_line: 0, end_marker: end, bit_order: BitOrder::MsbFirst };
        let coded = encode(&page, width, opts);
        let (back, q, _) = decode_all(&coded, width, DecodeOptions::new(coding)).unwrap();
        prop_assert_eq!(back, page.clone());
        prop_assert_eq!(q.rows, height);
        prop_assert_eq!(hayro(&coded, width, height, coding, BitOrder::MsbFirst), page);
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), width in 1u32..3000, ci in 0usize..5, received in any::<bool>(), aligned in any::<bool>()) {
        let mut d = DecodeOptions::new(all_codings()[ci]);
        if received { d.mode = DecodeMode::Received; }
        d.rows_byte_aligned = aligned;
        d.max_rows = 2000;
        let _ = decode_all(&data, width, d);
    }
}
