//! TIFF reader: `image::tiff::read_bytes` and the RFC 3949 Profile S checker on mutated TIFFs
//! — files from the real writer (Profile S MH, Profile F MR and MMR, two pages) and the
//! hand-made hostile files under `tests/fixtures/fuzz/tiff-*`.
//!
//! Properties: no panic, hang or unbounded heap (the reader's `Limits` bound the pages it may
//! build); every page read is within those limits.

use std::io::Cursor;

use proptest::prelude::*;

use faxgate::image::codec::Coding;
use faxgate::image::tiff::{self, Limits, Profile, Writer};
use faxgate::image::{Page, Resolution};

const TOKENS: &[&[u8]] = &[
    b"II*\0",
    b"MM\0*",
    b"\x08\0\0\0",
    b"\0\x01\x03\0\x01\0\0\0",
    b"\x01\x01\x04\0\x01\0\0\0",
    b"\x03\x01\x03\0\x01\0\0\0\x04\0",
    b"\x11\x01\x04\0",
    b"\x16\x01\x04\0",
    b"\x17\x01\x04\0",
    b"\xff\xff\xff\xff",
    b"\0\0\0\0",
];

fn limits() -> Limits {
    Limits {
        max_width: 4864,
        max_height: 3000,
        max_pages: 4,
        max_strip_bytes: 1 << 20,
        max_pixels: 4864 * 3000,
    }
}

fn written() -> Vec<Vec<u8>> {
    let mut page = Page::new(1728, 120, Resolution::STANDARD).unwrap();
    for y in 0..120 {
        for x in (y * 7 % 50..1728).step_by(61) {
            for dx in 0..(y % 9 + 1) {
                page.set((x + dx).min(1727), y, true);
            }
        }
    }
    let mut out = Vec::new();
    for (profile, pages) in [
        (Profile::S, 1),
        (Profile::F(Coding::Mr { k: 4 }), 1),
        (Profile::F(Coding::Mmr), 2),
    ] {
        let mut w = Writer::new(Cursor::new(Vec::new()), profile).unwrap();
        for _ in 0..pages {
            w.write_page(&page).unwrap();
        }
        out.push(w.finish().unwrap().into_inner());
    }
    out
}

fn seeds() -> std::sync::Arc<Vec<Vec<u8>>> {
    let mut v = crate::files_under("fuzz/tiff-limits");
    v.extend(crate::files_under("fuzz/tiff-ifd-loop"));
    v.extend(crate::files_under("fuzz/tiff"));
    v.extend(written());
    std::sync::Arc::new(v)
}

fn check(data: &[u8]) {
    let l = limits();
    if let Ok(pages) = tiff::read_bytes(data, l) {
        assert!(pages.len() <= l.max_pages as usize, "{} pages", pages.len());
        for p in &pages {
            assert!(p.width() <= l.max_width && p.height() <= l.max_height);
        }
    }
    let _ = tiff::check(data, Profile::S);
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn tiff_mutated_files_never_panic_within_limits(data in crate::mutated(seeds(), TOKENS)) {
        // Four pages of 4864 × 3000 bits at most, plus a strip.
        crate::run_case("tiff", data, 24 << 20, check);
    }
}

#[test]
fn tiff_seeds_replay() {
    let seeds = seeds();
    assert!(seeds.len() >= 8);
    for s in seeds.iter() {
        crate::run_case("tiff", s.clone(), 24 << 20, check);
    }
    // The writer's files read back.
    for w in written() {
        assert!(!tiff::read_bytes(&w, limits()).unwrap().is_empty());
    }
}
