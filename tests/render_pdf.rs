//! PDF rendering against poppler: a multi-page PDF with text (embedded and standard fonts),
//! vector lines and an embedded JPEG photo, made here with Ghostscript from PostScript we
//! write, rendered by faxgate at 204×196 and by `pdftoppm -mono -rx 204 -ry 196`; black-pixel
//! intersection-over-union on every page after aligning to the same canvas: ≥ 0.95 strict
//! (pixel for pixel; 0.96–0.99 is measured, so one lost line of text fails it) outside the
//! photos, whose dither is compared by tone instead. Both with the fonts embedded and with
//! the standard 14 left out (then both renderers draw the URW base-35 outlines from
//! fonts-urw-base35).
//!
//! Needs ghostscript (`gs`), poppler-utils (`pdftoppm`) and fonts-urw-base35.

mod common;

/// Strict line-art IoU every page must reach against poppler.
const STRICT_IOU_FLOOR: f64 = 0.95;

use std::path::Path;
use std::process::Command;

use faxgate::image::Page;
use faxgate::image::render::{Bilevel, Kind, Options, Unlimited, render_part};

/// A synthetic gray "photo": smooth shading, a dark disc, fine ripples — the full gray range.
fn photo_hex(w: usize, h: usize) -> String {
    let mut s = String::with_capacity(w * h * 2 + h);
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f64, y as f64);
            let mut v = 128.0
                + 100.0 * (xf / 23.0).sin() * (yf / 17.0).cos()
                + 20.0 * ((xf + yf) / 7.0).sin();
            let d = ((xf - 90.0).powi(2) + (yf - 80.0).powi(2)).sqrt();
            if d < 40.0 {
                v = 30.0 + d;
            }
            s.push_str(&format!("{:02x}", v.clamp(0.0, 255.0) as u8));
        }
        s.push('\n');
    }
    s
}

/// A 3-page PostScript document: text + photo; vector drawing + monospace text; a page of
/// mixed text sizes and a smaller photo.
pub fn document_ps() -> String {
    let (w, h) = (256, 192);
    let img = |x: u32, y: u32, sx: u32, sy: u32| {
        format!(
            "gsave {x} {y} translate {sx} {sy} scale\n{w} {h} 8 [{w} 0 0 -{h} 0 {h}] \
             {{currentfile {w} string readhexstring pop}} image\n{}grestore\n",
            photo_hex(w, h)
        )
    };
    let mut ps = String::from("%!PS-Adobe-3.0\n%%Pages: 3\n");
    ps += "%%Page: 1 1\n<< /PageSize [595 842] >> setpagedevice\n";
    ps += "/Helvetica-Bold findfont 24 scalefont setfont\n72 770 moveto (Quarterly report: fax rendering) show\n";
    ps += "/Times-Roman findfont 11 scalefont setfont\n";
    for i in 0..20 {
        ps += &format!(
            "72 {} moveto (Line {}: The quick brown fox jumps over the lazy dog, 0123456789 times.) show\n",
            740 - i * 14,
            i + 1
        );
    }
    ps += &img(72, 200, 300, 225);
    ps += "2 setlinewidth 72 180 moveto 523 180 lineto stroke\nshowpage\n";
    ps += "%%Page: 2 2\n<< /PageSize [595 842] >> setpagedevice\n0.5 setlinewidth\n";
    for i in 0..11 {
        ps += &format!("{x} 400 moveto {x} 760 lineto stroke\n", x = 72 + i * 40);
    }
    for i in 0..10 {
        ps += &format!("72 {y} moveto 472 {y} lineto stroke\n", y = 400 + i * 40);
    }
    ps +=
        "3 setlinewidth newpath 300 250 100 0 360 arc stroke\nnewpath 150 250 50 0 360 arc fill\n";
    ps += "/Courier findfont 10 scalefont setfont\n";
    for i in 0..6 {
        ps += &format!(
            "72 {} moveto (Courier {i}: int main(void) {{ return 0; }} /* vector page */) show\n",
            120 - i * 12
        );
    }
    ps += "showpage\n%%Page: 3 3\n<< /PageSize [595 842] >> setpagedevice\n";
    for (i, size) in [8, 10, 14, 18, 28].iter().enumerate() {
        ps += &format!(
            "/Helvetica findfont {size} scalefont setfont 60 {} moveto (Size {size}: Fax pages stay legible.) show\n",
            780 - i as u32 * 60
        );
    }
    ps += &img(300, 80, 200, 150);
    ps +=
        "1 setlinewidth 60 60 moveto 535 60 lineto 535 470 lineto 60 470 lineto closepath stroke\n";
    ps += "showpage\n%%EOF\n";
    ps
}

/// Writes `ps` and converts it with Ghostscript's pdfwrite; `embed` embeds even the standard
/// 14 fonts (so that both renderers draw the same glyph outlines).
pub fn make_pdf(dir: &Path, ps: &str, embed: bool) -> Vec<u8> {
    let gs = common::require_tool("gs", "ghostscript");
    std::fs::write(dir.join("doc.ps"), ps).unwrap();
    let mut c = Command::new(gs);
    c.args(["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite"])
        .arg("-o")
        .arg(dir.join("doc.pdf"));
    if embed {
        c.args([
            "-dEmbedAllFonts=true",
            "-c",
            "<< /NeverEmbed [ ] >> setdistillerparams",
            "-f",
        ]);
    }
    c.arg(dir.join("doc.ps"));
    let st = c.status().unwrap();
    assert!(st.success(), "gs pdfwrite failed");
    std::fs::read(dir.join("doc.pdf")).unwrap()
}

/// A PBM (P4) file to (width, height, rows of bools, true = black).
fn read_pbm(bytes: &[u8]) -> (usize, usize, Vec<bool>) {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 3 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let s = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[s..i]).to_string());
    }
    i += 1;
    assert_eq!(fields[0], "P4");
    let w: usize = fields[1].parse().unwrap();
    let h: usize = fields[2].parse().unwrap();
    let stride = w.div_ceil(8);
    let mut px = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            px[y * w + x] = bytes[i + y * stride + x / 8] & (0x80 >> (x % 8)) != 0;
        }
    }
    (w, h, px)
}

/// A bitmap on the fax canvas: `w × h`, true = black.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<bool>,
}

impl Canvas {
    fn of_page(p: &Page) -> Canvas {
        let (w, h) = (p.width() as usize, p.height() as usize);
        let mut px = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                px[y * w + x] = p.get(x as u32, y as u32);
            }
        }
        Canvas { w, h, px }
    }

    /// The reference placed on a `w × h` canvas with its left edge at `x0`, moved by (dx, dy).
    fn place(
        r: &(usize, usize, Vec<bool>),
        w: usize,
        h: usize,
        x0: i64,
        dx: i64,
        dy: i64,
    ) -> Canvas {
        let (rw, rh, rpx) = (r.0, r.1, &r.2);
        let mut px = vec![false; w * h];
        for y in 0..h as i64 {
            let ry = y - dy;
            if ry < 0 || ry >= rh as i64 {
                continue;
            }
            for x in 0..w as i64 {
                let rx = x - x0 - dx;
                if rx >= 0 && (rx as usize) < rw {
                    px[y as usize * w + x as usize] = rpx[ry as usize * rw + rx as usize];
                }
            }
        }
        Canvas { w, h, px }
    }

    fn get(&self, x: i64, y: i64) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < self.w
            && (y as usize) < self.h
            && self.px[y as usize * self.w + x as usize]
    }
}

/// Black-pixel intersection over union of two canvases, over pixels where `keep` is true.
fn iou(a: &Canvas, b: &Canvas, keep: &dyn Fn(usize, usize) -> bool) -> f64 {
    iou_rows(a, b, keep, 1)
}

/// [`iou`] over every `step`-th row (to search alignments quickly).
fn iou_rows(a: &Canvas, b: &Canvas, keep: &dyn Fn(usize, usize) -> bool, step: usize) -> f64 {
    let (mut inter, mut union) = (0u64, 0u64);
    for y in (0..a.h).step_by(step) {
        for x in 0..a.w {
            if !keep(x, y) {
                continue;
            }
            let (p, q) = (a.px[y * a.w + x], b.px[y * b.w + x]);
            inter += u64::from(p && q);
            union += u64::from(p || q);
        }
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Black-pixel IoU with a one-pixel tolerance: a black pixel of one image counts as matched
/// when the other has black within its 3×3 neighbourhood. Two renderers place stroke edges
/// differently by up to a pixel (FreeType's monochrome hinting and poppler's stroke
/// adjustment against hayro's outlines), which halves strict IoU on 2-pixel strokes without a
/// visible difference; a missing or misplaced glyph or line still counts fully.
fn iou_tolerant(a: &Canvas, b: &Canvas, keep: &dyn Fn(usize, usize) -> bool) -> f64 {
    let near = |c: &Canvas, x: usize, y: usize| {
        let (x, y) = (x as i64, y as i64);
        (-1..=1).any(|dy| (-1..=1).any(|dx| c.get(x + dx, y + dy)))
    };
    let (mut na, mut nb, mut ma, mut mb) = (0u64, 0u64, 0u64, 0u64);
    for y in 0..a.h {
        for x in 0..a.w {
            if !keep(x, y) {
                continue;
            }
            if a.px[y * a.w + x] {
                na += 1;
                ma += u64::from(near(b, x, y));
            }
            if b.px[y * b.w + x] {
                nb += 1;
                mb += u64::from(near(a, x, y));
            }
        }
    }
    let matched = (ma + mb) as f64 / 2.0;
    let union = (na + nb) as f64 - matched;
    if union == 0.0 { 1.0 } else { matched / union }
}

/// Mean absolute difference of the black fraction over 8×8 blocks inside `rect` (x0, y0, x1, y1).
fn block_mean_diff(a: &Canvas, b: &Canvas, rect: (usize, usize, usize, usize)) -> f64 {
    let (x0, y0, x1, y1) = rect;
    let (mut sum, mut n) = (0.0, 0u32);
    for by in (y0..y1.saturating_sub(8)).step_by(8) {
        for bx in (x0..x1.saturating_sub(8)).step_by(8) {
            let (mut ca, mut cb) = (0u32, 0u32);
            for y in by..by + 8 {
                for x in bx..bx + 8 {
                    ca += u32::from(a.px[y * a.w + x]);
                    cb += u32::from(b.px[y * b.w + x]);
                }
            }
            sum += (f64::from(ca) - f64::from(cb)).abs() / 64.0;
            n += 1;
        }
    }
    sum / f64::from(n.max(1))
}

fn compare_with_poppler(embed: bool) {
    let pdftoppm = common::require_tool("pdftoppm", "poppler-utils");
    let dir = tempfile::tempdir().unwrap();
    let pdf = make_pdf(dir.path(), &document_ps(), embed);
    let urw = Path::new(faxgate::image::render::pdf_fonts::DEFAULT_DIR);
    assert!(
        embed || urw.join("NimbusSans-Regular.otf").is_file(),
        "this test needs {} from the Debian package `fonts-urw-base35`: \
         run `apt-get install -y fonts-urw-base35`",
        urw.display()
    );

    let st = Command::new(pdftoppm)
        .args(["-mono", "-rx", "204", "-ry", "196"])
        .arg(dir.path().join("doc.pdf"))
        .arg(dir.path().join("ref"))
        .status()
        .unwrap();
    assert!(st.success());

    let gs = common::require_tool("gs", "ghostscript");
    let st = Command::new(gs)
        .args([
            "-q",
            "-dNOPAUSE",
            "-dBATCH",
            "-dSAFER",
            "-sDEVICE=pbmraw",
            "-r204x196",
        ])
        .arg(format!(
            "-sOutputFile={}",
            dir.path().join("gs-%d.pbm").display()
        ))
        .arg(dir.path().join("doc.pdf"))
        .status()
        .unwrap();
    assert!(st.success());

    let opts = Options::default();
    let r = render_part("doc.pdf", &pdf, Kind::Pdf, &opts, &mut Unlimited).unwrap();
    assert_eq!(r.pages.len(), 3);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    // Photo rectangles per page, in PDF points (x0, y0, x1, y1), y up: where dithering is.
    let photos: [&[(f64, f64, f64, f64)]; 3] = [
        &[(72.0, 200.0, 372.0, 425.0)],
        &[],
        &[(300.0, 80.0, 500.0, 230.0)],
    ];
    let mut failures = Vec::new();
    for (i, page) in r.pages.iter().enumerate() {
        assert_eq!((page.width(), page.height()), (1728, 2292));
        let pbm = std::fs::read(dir.path().join(format!("ref-{}.pbm", i + 1))).unwrap();
        let reference = read_pbm(&pbm);
        let rw = reference.0;
        let ours = Canvas::of_page(page);
        let x0 = (ours.w as i64 - rw as i64) / 2;
        let rects: Vec<(usize, usize, usize, usize)> = photos[i]
            .iter()
            .map(|&(a, b, c, d)| {
                let px = |v: f64| (v * 204.0 / 72.0) as i64 + x0;
                let py = |v: f64| ((842.0 - v) * 196.0 / 72.0) as i64;
                (
                    px(a) as usize,
                    py(d) as usize,
                    px(c) as usize,
                    py(b) as usize,
                )
            })
            .collect();
        let line_art = |x: usize, y: usize| {
            !rects
                .iter()
                .any(|&(a, b, c, d)| x + 4 >= a && x <= c + 4 && y + 4 >= b && y <= d + 4)
        };
        let mut best = (
            f64::MIN,
            Canvas::place(&reference, ours.w, ours.h, x0, 0, 0),
        );
        for dy in -2..=2 {
            for dx in -2..=2 {
                let refc = Canvas::place(&reference, ours.w, ours.h, x0, dx, dy);
                let s = iou_rows(&ours, &refc, &line_art, 4);
                if s > best.0 {
                    best = (s, refc);
                }
            }
        }
        let refc = best.1;
        let art = iou(&ours, &refc, &line_art);
        let whole = iou(&ours, &refc, &|_, _| true);
        let tolerant = iou_tolerant(&ours, &refc, &line_art);
        // Anchor: Ghostscript against the same poppler reference, same alignment rules.
        let gs_pbm = std::fs::read(dir.path().join(format!("gs-{}.pbm", i + 1))).unwrap();
        let gsr = read_pbm(&gs_pbm);
        let gw = gsr.0;
        let gx0 = (ours.w as i64 - gw as i64) / 2;
        let mut gs_best = (f64::MIN, (0, 0));
        for dy in -2..=2 {
            for dx in -2..=2 {
                let gc = Canvas::place(&gsr, ours.w, ours.h, gx0, dx, dy);
                let s = iou_rows(&gc, &refc, &line_art, 4);
                if s > gs_best.0 {
                    gs_best = (s, (dx, dy));
                }
            }
        }
        let gc = Canvas::place(&gsr, ours.w, ours.h, gx0, gs_best.1.0, gs_best.1.1);
        let gs_art = iou(&gc, &refc, &line_art);
        let gs_tol = iou_tolerant(&gc, &refc, &line_art);
        let tone: Vec<f64> = rects
            .iter()
            .map(|&r| block_mean_diff(&ours, &refc, r))
            .collect();
        println!(
            "embed={embed} page {}: line art IoU strict {art:.4} (gs {gs_art:.4}), 1-px tolerant {tolerant:.4} (gs {gs_tol:.4}); whole page strict {whole:.4}; photo 8×8 block-mean difference {tone:.3?}",
            i + 1
        );
        if let Some(d) = std::env::var_os("FAXGATE_TEST_DUMP") {
            let d = std::path::PathBuf::from(d);
            std::fs::write(d.join(format!("ref-{}.pbm", i + 1)), &pbm).unwrap();
            let mut out = format!("P4\n{} {}\n", page.width(), page.height()).into_bytes();
            out.extend_from_slice(page.data());
            std::fs::write(d.join(format!("ours-{}.pbm", i + 1)), out).unwrap();
        }
        let _ = ours.get(0, 0);
        // Strict IoU: both renderers draw the same outlines (embedded, or the URW fonts for
        // the standard 14 — poppler through fontconfig, we through `[offramp] pdf_font_dir`),
        // and ours follows Splash's monochrome rules (glyph bitmaps at floored origins,
        // any-coverage fills, stroke adjustment, thin strokes), so it must match poppler at
        // 0.95 pixel for pixel (0.96–0.99 is measured; a lost line of text on a page costs
        // more than the margin). Ghostscript's score is printed as the anchor.
        if art < STRICT_IOU_FLOOR {
            failures.push(format!("page {}: strict line-art IoU {art:.4}", i + 1));
        }
        if art < gs_art - 0.05 {
            failures.push(format!(
                "page {}: strict IoU {art:.4} below Ghostscript's {gs_art:.4}",
                i + 1
            ));
        }
        if tolerant < 0.90 {
            failures.push(format!("page {}: line-art IoU {tolerant:.4}", i + 1));
        }
        for t in tone {
            if t > 0.1 {
                failures.push(format!("page {}: photo tone differs by {t:.3}", i + 1));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn pdf_matches_poppler_embedded_fonts() {
    compare_with_poppler(true);
}

#[test]
fn pdf_matches_poppler_standard_fonts() {
    compare_with_poppler(false);
}

#[test]
fn dithering_is_chosen_for_photo_pages_only() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = make_pdf(dir.path(), &document_ps(), true);
    let thr = Options {
        bilevel: Bilevel::Threshold,
        ..Options::default()
    };
    let auto = render_part(
        "doc.pdf",
        &pdf,
        Kind::Pdf,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap();
    let forced = render_part("doc.pdf", &pdf, Kind::Pdf, &thr, &mut Unlimited).unwrap();
    // Page 2 has no photo: auto thresholds it, identical to forced threshold.
    assert_eq!(auto.pages[1], forced.pages[1]);
    // Page 1 has one: auto dithers it, which differs from thresholding.
    assert_ne!(auto.pages[0], forced.pages[0]);
}
