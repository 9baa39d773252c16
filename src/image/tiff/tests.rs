//! Writer → reader → checker round trips and hand-made profile violations.

use std::io::Cursor;

use super::*;
use crate::image::codec::tests::make_page;
use crate::image::{Page, Resolution};

fn page(width: u32, height: u32, kind: u32, res: Resolution) -> Page {
    Page::from_packed(width, height, res, make_page(width, height, kind, 11)).unwrap()
}

fn write(pages: &[Page], profile: Profile) -> Vec<u8> {
    let mut w = Writer::new(Cursor::new(Vec::new()), profile).unwrap();
    for p in pages {
        w.write_page(p).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Position of the value bytes of `tag` in the first IFD of one of our files.
fn entry_at(file: &[u8], t: u16) -> usize {
    let n = u16::from_le_bytes([file[8], file[9]]) as usize;
    (0..n)
        .map(|i| 10 + 12 * i)
        .find(|&e| u16::from_le_bytes([file[e], file[e + 1]]) == t)
        .unwrap()
}

#[test]
fn profile_s_round_trip_and_checks_clean() {
    let pages = vec![
        page(1728, 40, 4, Resolution::FINE),
        page(1728, 20, 0, Resolution::STANDARD),
        page(1728, 10, 2, Resolution::FINE),
    ];
    let file = write(&pages, Profile::S);
    assert_eq!(&file[..8], &[b'I', b'I', 42, 0, 8, 0, 0, 0]);
    assert_eq!(read_bytes(&file, Limits::default()).unwrap(), pages);
    assert_eq!(check(&file, Profile::S), vec![]);
    assert_eq!(
        check(&file, Profile::F(crate::image::codec::Coding::Mh)),
        vec![]
    );
}

#[test]
fn profile_f_codings_and_widths() {
    use crate::image::codec::Coding;
    for coding in [Coding::Mh, Coding::Mr { k: 4 }, Coding::Mmr] {
        for width in [1728, 2048, 2432] {
            let pages = vec![
                page(width, 30, 4, Resolution::SUPERFINE),
                page(width, 5, 1, Resolution::FINE),
            ];
            let file = write(&pages, Profile::F(coding));
            assert_eq!(read_bytes(&file, Limits::default()).unwrap(), pages);
            assert_eq!(
                check(&file, Profile::F(coding)),
                vec![],
                "{coding:?} {width}"
            );
        }
    }
    let mut w = Writer::new(Cursor::new(Vec::new()), Profile::S).unwrap();
    assert!(matches!(
        w.begin_page(2048, Resolution::FINE),
        Err(TiffError::Profile(_))
    ));
    assert!(matches!(
        w.begin_page(1728, Resolution::SUPERFINE),
        Err(TiffError::Profile(_))
    ));
}

#[test]
fn streaming_pages_are_linked_only_when_complete() {
    let p = page(1728, 25, 4, Resolution::FINE);
    let mut w = Writer::new(Cursor::new(Vec::new()), Profile::S).unwrap();
    w.write_page(&p).unwrap();
    w.begin_page(1728, Resolution::FINE).unwrap();
    w.write_row(p.row(0)).unwrap();
    // Mid-page, the file holds exactly the first page.
    let snapshot = w.get_ref().get_ref().clone();
    assert_eq!(
        read_bytes(&snapshot, Limits::default()).unwrap(),
        vec![p.clone()]
    );
    for y in 1..p.height() {
        w.write_row(p.row(y)).unwrap();
    }
    w.end_page().unwrap();
    let file = w.finish().unwrap().into_inner();
    assert_eq!(
        read_bytes(&file, Limits::default()).unwrap(),
        vec![p.clone(), p]
    );
}

#[test]
fn hand_made_violations_are_named() {
    let file = write(&[page(1728, 8, 4, Resolution::FINE)], Profile::S);
    let fields = |f: &[u8]| {
        check(f, Profile::S)
            .into_iter()
            .map(|v| v.field)
            .collect::<Vec<_>>()
    };

    let mut bad = file.clone();
    let at = entry_at(&bad, ifd::tag::FILL_ORDER);
    bad[at + 8] = 1;
    assert!(
        fields(&bad).contains(&"FillOrder"),
        "{:?}",
        check(&bad, Profile::S)
    );

    let mut bad = file.clone();
    let at = entry_at(&bad, ifd::tag::PAGE_NUMBER);
    bad[at] = 0x2a; // tag 297 → 298, still in ascending order
    assert!(fields(&bad).contains(&"PageNumber"));

    let wide = write(
        &[page(2048, 8, 4, Resolution::FINE)],
        Profile::F(crate::image::codec::Coding::Mh),
    );
    assert_eq!(fields(&wide), vec!["ImageWidth"]);
}

#[test]
fn limits_and_garbage() {
    let file = write(&[page(1728, 40, 4, Resolution::FINE)], Profile::S);
    let l = Limits {
        max_height: 39,
        ..Limits::default()
    };
    assert!(matches!(
        read_bytes(&file, l),
        Err(TiffError::Limit { what: "height", .. })
    ));
    let l = Limits {
        max_strip_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        read_bytes(&file, l),
        Err(TiffError::Limit {
            what: "strip bytes",
            ..
        })
    ));
    for cut in [0, 7, 20, 100, file.len() - 5] {
        assert!(
            read_bytes(&file[..cut], Limits::default()).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn pre_encoded_pages_give_the_same_bytes_as_write_page() {
    use crate::image::codec::Coding;
    let cases = [
        (Profile::S, 1728, Resolution::FINE),
        (Profile::S, 1728, Resolution::STANDARD),
        (Profile::F(Coding::Mh), 1728, Resolution::SUPERFINE),
        (Profile::F(Coding::Mr { k: 4 }), 2048, Resolution::FINE),
        (Profile::F(Coding::Mmr), 2432, Resolution::SUPERFINE),
    ];
    for (profile, width, res) in cases {
        // Odd heights make some strips end mid-word, which moves the next IFD's alignment.
        let pages: Vec<Page> = (0..5)
            .map(|k| page(width, 7 + 13 * k, k % 5, res))
            .collect();
        let expected = write(&pages, profile);
        let mut w = Writer::new(Cursor::new(Vec::new()), profile).unwrap();
        for p in &pages {
            let e = EncodedPage::encode(p, profile).unwrap();
            assert_eq!(e.rows(), p.height());
            w.write_encoded(&e).unwrap();
        }
        assert_eq!(w.finish().unwrap().into_inner(), expected, "{profile:?}");
        // Mixing the two ways in one file also gives the same bytes.
        let mut w = Writer::new(Cursor::new(Vec::new()), profile).unwrap();
        for (i, p) in pages.iter().enumerate() {
            if i % 2 == 0 {
                w.write_page(p).unwrap();
            } else {
                w.write_encoded(&EncodedPage::encode(p, profile).unwrap())
                    .unwrap();
            }
        }
        assert_eq!(
            w.finish().unwrap().into_inner(),
            expected,
            "{profile:?} mixed"
        );
    }
}

#[test]
fn pre_encoded_page_checks_profile() {
    let p = page(2048, 4, 1, Resolution::FINE);
    assert!(matches!(
        EncodedPage::encode(&p, Profile::S),
        Err(TiffError::Profile(_))
    ));
    let p = page(1728, 4, 1, Resolution::FINE);
    let e = EncodedPage::encode(&p, Profile::F(crate::image::codec::Coding::Mmr)).unwrap();
    let mut w = Writer::new(Cursor::new(Vec::new()), Profile::S).unwrap();
    assert!(matches!(w.write_encoded(&e), Err(TiffError::Misuse(_))));
}
