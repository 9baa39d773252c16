//! Robustness: no input bytes make the renderer panic — random bytes as every kind, and
//! mutations (byte flips, truncation, insertion) of small valid PDF, PNG, GIF, BMP and TIFF
//! files. Errors are fine; a panic or hang is not. Limits are kept small so each case is quick.
//!
//! The mutations leave each file's magic header alone, and every mutated case is checked to
//! still sniff as its type, so the cases reach the decoders rather than stopping at type
//! sniffing. Every case runs in its own thread under a deadline (`FAXGATE_FUZZ_TIMEOUT_MS`,
//! default 60 000 in this debug-friendly target) and fails with its input in hex when it
//! overruns. `FAXGATE_FUZZ_CASES` sets the cases per property (default 48); a long run:
//! `FAXGATE_FUZZ_CASES=20000 cargo test --release --test render_fuzz`.

use proptest::prelude::*;

use faxgate::image::Resolution;
use faxgate::image::render::{Kind, Limits, Options, Paper, Unlimited, render_part};

fn opts() -> Options {
    Options {
        // Standard resolution, A4: the smallest real page, so cases stay fast in debug builds.
        resolution: Resolution::STANDARD,
        paper: Paper::A4,
        limits: Limits {
            max_pages: 3,
            max_pdf_pages: 3,
            max_source_pixels: 1 << 20,
            max_page_rows: 4000,
        },
        ..Options::default()
    }
}

/// A small hand-written PDF: text, a filled rectangle, a stroked line.
fn small_pdf() -> Vec<u8> {
    build_pdf(
        &[(
            "0 0 595 842",
            b"BT /F1 24 Tf 72 720 Td (Fuzz me) Tj ET 72 600 200 50 re f 2 w 72 500 m 500 500 l S",
        )],
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    )
}

/// A PDF with the given pages (media box, content stream), all sharing font `/F1` = `font`
/// (object 3) and an optional object 4 (a font file stream for broken-font cases).
fn build_pdf(pages: &[(&str, &[u8])], font: &str) -> Vec<u8> {
    let n = pages.len();
    let mut objs: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            (0..n)
                .map(|i| format!("{} 0 R", 5 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .into_bytes(),
        font.as_bytes().to_vec(),
        b"<< /Length 16 >>\nstream\nnot a font file\nendstream".to_vec(),
    ];
    for (i, (media, content)) in pages.iter().enumerate() {
        objs.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [{media}] /Contents {} 0 R /Resources << /Font << /F1 3 0 R >> >> >>",
                6 + 2 * i
            )
            .into_bytes(),
        );
        objs.push(
            [
                format!("<< /Length {} >>\nstream\n", content.len()).into_bytes(),
                content.to_vec(),
                b"\nendstream".to_vec(),
            ]
            .concat(),
        );
    }
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(o);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn ink_bbox(p: &faxgate::image::Page) -> (u32, u32, u32, u32) {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for y in 0..p.height() {
        for x in 0..p.width() {
            if p.get(x, y) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    (x0, y0, x1, y1)
}

#[test]
fn landscape_pdf_page_is_turned_to_portrait() {
    // A landscape page with one long horizontal bar across its top.
    let pdf = build_pdf(
        &[("0 0 842 595", b"40 540 762 20 re f")],
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    );
    let r = render_part(
        "wide.pdf",
        &pdf,
        Kind::Pdf,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap();
    let p = &r.pages[0];
    assert_eq!((p.width(), p.height()), (1728, 2292));
    let (x0, y0, x1, y1) = ink_bbox(p);
    // The bar now runs down the page near its left edge (top of landscape = left of portrait).
    assert!(y1 - y0 > 2000 && x1 - x0 < 80, "{x0},{y0} {x1},{y1}");
    // 35 pt from the landscape top edge = 99 columns from the portrait page's left edge,
    // which starts at column 21 (A4 is 1686 of the 1728 columns, centred).
    assert!((115..=125).contains(&x0), "near the left edge: {x0}");
}

#[test]
fn pdf_problems_degrade_visibly() {
    // Page 1 draws only white; page 2 uses a font whose embedded file is garbage.
    let font = "<< /Type /Font /Subtype /TrueType /BaseFont /Broken /FirstChar 32 /LastChar 126 \
                /FontDescriptor << /Type /FontDescriptor /FontName /Broken /Flags 32 \
                /FontBBox [0 0 1000 1000] /ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 \
                /StemV 80 /FontFile2 4 0 R >> >>";
    let pdf = build_pdf(
        &[
            ("0 0 595 842", b"1 g 0 0 595 842 re f"),
            (
                "0 0 595 842",
                b"BT /F1 24 Tf 72 720 Td (Broken font) Tj ET 72 600 200 50 re f",
            ),
        ],
        font,
    );
    let r = render_part(
        "odd.pdf",
        &pdf,
        Kind::Pdf,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap();
    assert_eq!(r.pages.len(), 2);
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("page 1:") && n.contains("blank")),
        "{:?}",
        r.notes
    );
    // The notice is printed on the page: it is no longer blank.
    assert!(r.pages[0].black_pixels() > 500);
    println!("notes: {:?}", r.notes);

    // Every page blank although they draw: refused, not faxed as white paper.
    let white = build_pdf(
        &[("0 0 595 842", b"1 g 0 0 595 842 re f")],
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    );
    let e = render_part(
        "white.pdf",
        &white,
        Kind::Pdf,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap_err();
    assert_eq!(e.kind, faxgate::image::render::ErrorKind::PdfBlank);
}

#[test]
fn pdf_page_limit_is_checked_before_rendering() {
    let page: (&str, &[u8]) = ("0 0 595 842", b"0 0 10 10 re f");
    let pdf = build_pdf(
        &[page; 5],
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    );
    let e = render_part("five.pdf", &pdf, Kind::Pdf, &opts(), &mut |_| {
        panic!("no page may be rendered")
    })
    .unwrap_err();
    assert_eq!(
        e.kind,
        faxgate::image::render::ErrorKind::PdfTooManyPages { pages: 5, limit: 3 }
    );
}

fn small_image(format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 30, |x, y| {
        let v = ((x * 7 + y * 3) % 256) as u8;
        image::Rgb([v, v / 2, 255 - v])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
    ]
}

/// Applies `muts` to the octets after the first `keep` (the file's magic header), so that
/// the result is still recognised as its type.
fn mutate(mut v: Vec<u8>, muts: &[Mutation], keep: usize) -> Vec<u8> {
    for m in muts {
        if v.len() <= keep {
            break;
        }
        let n = v.len() - keep;
        match m {
            Mutation::Flip(i, b) => v[keep + i % n] ^= b | 1,
            Mutation::Truncate(i) => v.truncate(keep + 1 + i % n),
            Mutation::Insert(i, bytes) => {
                let at = keep + i % n;
                v.splice(at..at, bytes.iter().copied());
            }
        }
    }
    v
}

fn cases() -> u32 {
    std::env::var("FAXGATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn deadline() -> std::time::Duration {
    std::time::Duration::from_millis(
        std::env::var("FAXGATE_FUZZ_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60_000),
    )
}

/// Renders `bytes` as `kind` in its own thread under [`deadline`]; a hang or a panic fails
/// with the input in hex.
fn no_panic(bytes: &[u8], kind: Kind) {
    let data = bytes.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = render_part("fuzz", &data, kind, &opts(), &mut Unlimited);
        let _ = tx.send(());
    });
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match rx.recv_timeout(deadline()) {
        Ok(()) => {
            let _ = handle.join();
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{kind:?}: not rendered within {:?}: {hex}", deadline())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{kind:?}: the renderer panicked on: {hex}")
        }
    }
}

/// A mutated file of `kind` with its magic header kept: it must still sniff as `kind`.
fn mutated_past_sniffing(file: Vec<u8>, keep: usize, muts: &[Mutation], kind: Kind) {
    let m = mutate(file, muts, keep);
    assert_eq!(
        Kind::sniff(&m, None),
        Some(kind),
        "the mutation reached the header"
    );
    no_panic(&m, kind);
}

#[test]
fn the_small_pdf_renders() {
    let r = render_part(
        "small.pdf",
        &small_pdf(),
        Kind::Pdf,
        &opts(),
        &mut Unlimited,
    )
    .unwrap();
    assert_eq!(r.pages.len(), 1);
    assert!(r.pages[0].black_pixels() > 10_000);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for kind in [Kind::Pdf, Kind::Tiff, Kind::Image, Kind::Text, Kind::Html] {
            no_panic(&bytes, kind);
        }
        let _ = Kind::sniff(&bytes, Some("text/plain"));
    }

    #[test]
    fn mutated_pdf_never_panics(muts in proptest::collection::vec(mutation(), 1..4)) {
        // `%PDF-1.4` stays: the PDF parser, not the sniffer, meets the damage.
        mutated_past_sniffing(small_pdf(), 8, &muts, Kind::Pdf);
    }

    #[test]
    fn mutated_pictures_never_panic(muts in proptest::collection::vec(mutation(), 1..4)) {
        // Magic numbers kept: PNG 8 octets, GIF 6, BMP 2, TIFF 4.
        for (f, keep) in [
            (image::ImageFormat::Png, 8),
            (image::ImageFormat::Gif, 6),
            (image::ImageFormat::Bmp, 2),
        ] {
            mutated_past_sniffing(small_image(f), keep, &muts, Kind::Image);
        }
        mutated_past_sniffing(small_image(image::ImageFormat::Tiff), 4, &muts, Kind::Tiff);
    }

    #[test]
    fn any_text_and_html_never_panic(s in "\\PC{0,300}", t in "[<>&;#a-z/ \"'=\\n\\t\\x0c!-]{0,300}") {
        no_panic(s.as_bytes(), Kind::Text);
        no_panic(s.as_bytes(), Kind::Html);
        no_panic(t.as_bytes(), Kind::Html);
    }
}

#[test]
fn page_limits_hold_for_text() {
    let many = "x\u{c}".repeat(10);
    let e = render_part(
        "many.txt",
        many.as_bytes(),
        Kind::Text,
        &opts(),
        &mut Unlimited,
    )
    .unwrap_err();
    assert_eq!(
        e.kind,
        faxgate::image::render::ErrorKind::TooManyPages { limit: 3 }
    );
    assert_eq!(e.part, "many.txt");
}
