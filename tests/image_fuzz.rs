//! Robustness: bit errors in received MH/MR page data, and property-based fuzzing (proptest,
//! stable Rust) of every decoder, the TIFF reader and the checker. Inputs that ever crashed
//! one of them are kept under `tests/fixtures/fuzz/<kind>/` and replayed here.
//!
//! `FAXGATE_FUZZ_CASES=N` raises the number of fuzz cases (default 256 per property; run
//! `FAXGATE_FUZZ_CASES=200000 cargo test --release --test image_fuzz` for a long session).

mod common;
mod corpus;

use std::io::Cursor;
use std::path::Path;

use faxgate::image::codec::{
    BitOrder, Coding, DecodeMode, DecodeOptions, Decoder, EncodeOptions, Encoder, PageEnd,
};
use faxgate::image::tiff::{self, Limits, Profile, Writer};
use faxgate::image::{Page, Resolution};
use proptest::prelude::*;

const CODINGS: [Coding; 3] = [Coding::Mh, Coding::Mr { k: 4 }, Coding::Mmr];

fn cases() -> u32 {
    std::env::var("FAXGATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Modem-style page data: EOLs aligned, RTC/EOFB, LSB first.
fn modem_data(page: &Page, coding: Coding) -> Vec<u8> {
    let mut e = Encoder::new(
        page.width(),
        EncodeOptions {
            coding,
            align_eol: true,
            min_bits_per_line: 0,
            end_marker: true,
            bit_order: BitOrder::LsbFirst,
        },
    )
    .unwrap();
    let mut out = Vec::new();
    for r in page.rows() {
        e.encode_row(r, &mut out).unwrap();
    }
    e.finish(&mut out);
    out
}

/// Decodes everything a decoder gives, in any mode; returns (rows, decoder).
fn drain(
    data: &[u8],
    width: u32,
    opts: DecodeOptions,
) -> Option<(Vec<u8>, faxgate::image::codec::CopyQuality, Option<PageEnd>)> {
    let mut d = Decoder::new(data, width, opts).ok()?;
    let mut row = vec![0u8; width.div_ceil(8) as usize];
    let mut out = Vec::new();
    while let Ok(Some(_)) = d.next_row(&mut row) {
        out.extend_from_slice(&row);
    }
    Some((out, d.quality(), d.end()))
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn bit_flips_decode_to_a_full_page_with_bad_lines_counted() {
    let dir = corpus::corpus();
    let text = tiff::read_bytes(
        &std::fs::read(dir.join("text-fine-raw.tif")).unwrap(),
        Limits::default(),
    )
    .unwrap();
    let page = &text[0];
    let h = page.height();
    let stride = page.stride();
    for coding in [Coding::Mh, Coding::Mr { k: 4 }] {
        let clean = modem_data(page, coding);
        let mut opts = DecodeOptions::new(coding);
        opts.mode = DecodeMode::Received;
        opts.bit_order = BitOrder::LsbFirst;
        let (rows, q, end) = drain(&clean, page.width(), opts).unwrap();
        assert_eq!((q.rows, q.bad_rows, end), (h, 0, Some(PageEnd::Rtc)));
        assert_eq!(rows, page.data());
        let mut seed = 0x5eed_u64;
        let mut total_bad = 0;
        let mut exact_height = 0;
        for trial in 0..40 {
            let flips = 1 + trial % 4;
            let mut data = clean.clone();
            // Flip bits in the page body (not in the final RTC, whose loss is a different
            // test: the page then simply ends at the end of the data).
            for _ in 0..flips {
                let bit = xorshift(&mut seed) % ((data.len() as u64 - 12) * 8);
                data[(bit / 8) as usize] ^= 1 << (bit % 8);
            }
            let (rows, q, end) = drain(&data, page.width(), opts).unwrap();
            assert_eq!(rows.len(), q.rows as usize * stride);
            assert!(
                matches!(end, Some(PageEnd::Rtc)),
                "{coding:?} trial {trial}: ended {end:?}"
            );
            // Each flipped bit costs a line or two at most (a broken EOL merges two lines; a
            // false EOL splits one).
            let slack = 2 * flips;
            assert!(
                q.rows.abs_diff(h) <= slack,
                "{coding:?} trial {trial}: {} rows of {h}",
                q.rows
            );
            assert!(
                q.bad_rows >= 1 || rows == page.data(),
                "{coding:?} trial {trial}: damage went unnoticed"
            );
            assert!(q.longest_bad_run <= q.bad_rows);
            if coding == Coding::Mh {
                assert!(q.bad_rows <= 3 * flips, "MH trial {trial}: {q:?}");
            }
            total_bad += q.bad_rows;
            exact_height += u32::from(q.rows == h);
            // Rows decoded as good before the first flip are the source's.
            let good_prefix = rows
                .iter()
                .zip(page.data())
                .take_while(|(a, b)| a == b)
                .count()
                / stride;
            assert!(good_prefix > 0 || q.bad_rows > 0);
        }
        assert!(total_bad > 0);
        // Most damaged pages keep their exact height (the EOLs resynchronise).
        assert!(
            exact_height >= 20,
            "{coding:?}: only {exact_height}/40 kept the height"
        );
    }
}

fn small_tiffs() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut s = 99u64;
    for (i, coding) in CODINGS.iter().enumerate() {
        let w = [1728u32, 2048, 1728][i];
        let mut data = vec![0u8; (w as usize / 8) * 12];
        for b in data.iter_mut() {
            let r = xorshift(&mut s);
            *b = if r.is_multiple_of(3) { r as u8 } else { 0 };
        }
        let page = Page::from_packed(w, 12, Resolution::FINE, data).unwrap();
        let mut wr = Writer::new(Cursor::new(Vec::new()), Profile::F(*coding)).unwrap();
        wr.write_page(&page).unwrap();
        wr.write_page(&page).unwrap();
        v.push(wr.finish().unwrap().into_inner());
    }
    v
}

/// Everything one input can be fed to.
fn exercise_all(data: &[u8], width: u32) {
    for coding in CODINGS {
        for mode in [DecodeMode::Strict, DecodeMode::Received] {
            for order in [BitOrder::MsbFirst, BitOrder::LsbFirst] {
                let mut o = DecodeOptions::new(coding);
                o.mode = mode;
                o.bit_order = order;
                o.max_rows = 3000;
                let _ = drain(data, width, o);
            }
        }
    }
    let mut o = DecodeOptions::new(Coding::Mh);
    o.rows_byte_aligned = true;
    o.max_rows = 3000;
    let _ = drain(data, width, o);
    let limits = Limits {
        max_pages: 50,
        ..Limits::default()
    };
    let _ = tiff::read_bytes(data, limits);
    let _ = tiff::check(data, Profile::S);
}

fn mutate(base: &[u8], edits: &[(u32, u8, u8)]) -> Vec<u8> {
    let mut d = base.to_vec();
    for &(pos, val, op) in edits {
        if d.is_empty() {
            d.push(val);
            continue;
        }
        let p = pos as usize % d.len();
        match op % 5 {
            0 => d[p] ^= 1 << (val % 8),
            1 => d[p] = val,
            2 => d.truncate(p),
            3 => d.insert(p, val),
            _ => {
                // Small integers where TIFF fields live make counts and offsets interesting.
                d[p] = val % 4;
            }
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoders_survive_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000), width in 1u32..3000) {
        exercise_all(&data, width);
    }

    #[test]
    fn decoders_survive_mutated_streams(ci in 0usize..3, edits in proptest::collection::vec((any::<u32>(), any::<u8>(), any::<u8>()), 1..8)) {
        let mut s = 7u64;
        let mut data = vec![0u8; 216 * 20];
        for b in data.iter_mut() { let r = xorshift(&mut s); *b = if r.is_multiple_of(4) { r as u8 } else { 0 }; }
        let page = Page::from_packed(1728, 20, Resolution::FINE, data).unwrap();
        let coded = modem_data(&page, CODINGS[ci]);
        exercise_all(&mutate(&coded, &edits), 1728);
    }

    #[test]
    fn tiff_reader_and_checker_survive_mutated_files(which in 0usize..3, edits in proptest::collection::vec((any::<u32>(), any::<u8>(), any::<u8>()), 1..6)) {
        let files = small_tiffs();
        let bad = mutate(&files[which], &edits);
        let _ = tiff::read_bytes(&bad, Limits::default());
        let _ = tiff::check(&bad, Profile::S);
        let _ = tiff::check(&bad, Profile::F(Coding::Mmr));
    }
}

#[test]
fn fuzz_regressions_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut n = 0;
    for kind in std::fs::read_dir(&root).unwrap() {
        let kind = kind.unwrap().path();
        if !kind.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&kind).unwrap() {
            let f = f.unwrap().path();
            let data = std::fs::read(&f).unwrap();
            for width in [1728, 13, 2432] {
                exercise_all(&data, width);
            }
            if kind
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("tiff")
            {
                // Every one of these is malformed: the reader must say so.
                assert!(
                    tiff::read_bytes(&data, Limits::default()).is_err(),
                    "{} read as valid",
                    f.display()
                );
                assert!(!tiff::check(&data, Profile::S).is_empty());
            }
            n += 1;
        }
    }
    assert!(n > 0, "no fixtures under {}", root.display());
}
