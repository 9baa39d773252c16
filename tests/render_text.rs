//! text/plain rendering: UTF-8 with accented Latin, Greek, Cyrillic and box drawing renders with
//! no missing-glyph boxes, and every character's ink sits where the font's own metrics
//! (fontdue, independent of our pen) put it in its line and column. Plus the header line on
//! every page with the right page numbers.

use chrono::NaiveDate;

use faxgate::image::Page;
use faxgate::image::render::font::font;
use faxgate::image::render::geometry::{Layout, Paper};
use faxgate::image::render::header::{self, Fields, HEADER_FIELDS, Template};
use faxgate::image::render::text::Grid;
use faxgate::image::render::{Kind, Options, Unlimited, assemble, render_part};
use faxgate::image::{Page as _P, Resolution};

const SAMPLE: &str = "\
Zoë Brontë, café naïve, Ærøskøbing, Łódź, Œuvre, ß, ñ, Ångström
Καλημέρα κόσμε: ΑΒΓΔ αβγδ ωψχ
Съешь же ещё этих мягких французских булок, да выпей чаю. ЖЯЩ
┌──────┬──────┐
│ left │ right│
├──────┼──────┤
│ ═══ ║ ╔╗╚╝ │
└──────┴──────┘
\ttab\tstops
";

/// Bounding box (x0, y0, x1, y1), inclusive, of black pixels of `p` inside the rectangle.
fn ink_box(p: &Page, x0: i64, y0: i64, x1: i64, y1: i64) -> Option<(i64, i64, i64, i64)> {
    let mut b: Option<(i64, i64, i64, i64)> = None;
    for y in y0.max(0)..y1.min(i64::from(p.height())) {
        for x in x0.max(0)..x1.min(i64::from(p.width())) {
            if p.get(x as u32, y as u32) {
                b = Some(match b {
                    None => (x, y, x, y),
                    Some((a, c, d, e)) => (a.min(x), c.min(y), d.max(x), e.max(y)),
                });
            }
        }
    }
    b
}

fn check_layout(res: Resolution) {
    let opts = Options {
        resolution: res,
        ..Options::default()
    };
    let r = render_part(
        "sample.txt",
        SAMPLE.as_bytes(),
        Kind::Text,
        &opts,
        &mut Unlimited,
    )
    .unwrap();
    assert!(r.notes.is_empty(), "missing glyphs reported: {:?}", r.notes);
    assert_eq!(r.pages.len(), 1);
    // Box-drawing glyphs reach past the line's ascent and descent to join the lines above and
    // below, so each line is also rendered alone (at its own line position) to check its
    // glyphs without ink from its neighbours; the full rendering must be their union.
    let lines: Vec<&str> = SAMPLE.lines().collect();
    let alone: Vec<Page> = (0..lines.len())
        .map(|i| {
            let t = format!("{}{}\n", "\n".repeat(i), lines[i]);
            let r =
                render_part("line.txt", t.as_bytes(), Kind::Text, &opts, &mut Unlimited).unwrap();
            r.pages.into_iter().next().unwrap()
        })
        .collect();
    for (y, row) in r.pages[0].rows().enumerate() {
        let mut union = vec![0u8; row.len()];
        for p in &alone {
            for (u, b) in union.iter_mut().zip(p.row(y as u32)) {
                *u |= b;
            }
        }
        assert_eq!(
            row,
            &union[..],
            "row {y}: the full page is not the union of its lines"
        );
    }
    let layout = Layout {
        res,
        paper: Paper::A4,
    };
    let grid = Grid::new(&layout);
    let aspect = f64::from(res.y_dpi) / f64::from(res.x_dpi);
    let f = font();
    // Rows between baselines: the font's line height scaled to the fax's row density.
    let lm = f.horizontal_line_metrics(grid.px).unwrap();
    assert_eq!(
        grid.line_rows,
        (f64::from(lm.new_line_size) * aspect).ceil() as u32
    );
    let (mut checked, mut blank_cells) = (0, 0);
    for (line_no, line) in SAMPLE.lines().enumerate() {
        let page = &alone[line_no];
        let mut col = 0u32;
        for c in line.chars() {
            if c == '\t' {
                col = (col / 8 + 1) * 8;
                continue;
            }
            assert!(f.has_glyph(c), "{c:?} is not in the bundled font");
            let x = grid.x(col);
            let base = grid.baseline(line_no as u32);
            // The cell: one advance wide, one line high.
            let (cx0, cx1) = (x, grid.x(col + 1));
            let asc = (f64::from(lm.ascent) * aspect).ceil() as i64;
            let (cy0, cy1) = (base - asc, base - asc + i64::from(grid.line_rows));
            let got = ink_box(page, cx0, cy0, cx1, cy1);
            let m = f.metrics(c, grid.px);
            if m.width == 0 || c == ' ' {
                // Box-drawing neighbours reach the cell edge and may round a pixel over it.
                let inner = ink_box(page, cx0 + 2, cy0, cx1 - 2, cy1);
                let _ = got;
                assert!(inner.is_none(), "ink in the blank cell {line_no}:{col}");
                blank_cells += 1;
            } else {
                let (gx0, gy0, gx1, gy1) =
                    got.unwrap_or_else(|| panic!("no ink for {c:?} at {line_no}:{col}"));
                // Where the font's metrics put the glyph's bitmap, clipped to the cell.
                let ex0 = (x + i64::from(m.xmin)).max(cx0);
                let ex1 = (x + i64::from(m.xmin) + m.width as i64 - 1).min(cx1 - 1);
                let ey0 = (base - ((f64::from(m.ymin) + m.height as f64) * aspect).round() as i64)
                    .max(cy0);
                let ey1 = (base - (f64::from(m.ymin) * aspect).round() as i64).min(cy1 - 1);
                let tol = 2;
                assert!(
                    (gx0 - ex0).abs() <= tol
                        && (gx1 - ex1).abs() <= tol
                        && (gy0 - ey0).abs() <= tol
                        && (gy1 - ey1).abs() <= tol,
                    "{c:?} at {line_no}:{col}: ink {:?} vs metrics {:?}",
                    (gx0, gy0, gx1, gy1),
                    (ex0, ey0, ex1, ey1)
                );
                checked += 1;
            }
            col += 1;
        }
    }
    assert!(checked > 150 && blank_cells > 10, "{checked} {blank_cells}");
}

#[test]
fn utf8_text_layout_matches_font_metrics_fine() {
    check_layout(Resolution::FINE);
}

#[test]
fn utf8_text_layout_matches_font_metrics_standard() {
    check_layout(Resolution::STANDARD);
}

#[test]
fn missing_glyph_is_a_question_mark_not_a_box() {
    let r = render_part(
        "cjk.txt",
        "一".as_bytes(),
        Kind::Text,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap();
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    let q = render_part(
        "q.txt",
        b"?",
        Kind::Text,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap();
    assert_eq!(r.pages[0], q.pages[0], "drawn exactly as '?'");
}

#[test]
fn header_on_every_page_with_its_number() {
    // 150 lines: three A4 pages at fine.
    let text: String = (1..=150).map(|i| format!("line {i}\n")).collect();
    let opts = Options::default();
    let part = render_part("t.txt", text.as_bytes(), Kind::Text, &opts, &mut Unlimited).unwrap();
    assert_eq!(part.pages.len(), 3);
    let tpl = Template::parse(
        "{date} {time} FROM {sender} P. {page}/{pages}",
        HEADER_FIELDS,
    )
    .unwrap();
    let fields = Fields {
        when: NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(23, 59, 0),
        sender: "ACME Ltd".into(),
        ..Fields::default()
    };
    let pages = assemble(vec![part], None, Some((&tpl, &fields)), &opts).unwrap();
    let layout = Layout {
        res: opts.resolution,
        paper: opts.paper,
    };
    let band = header::band_rows(&layout);
    // Reference: the header text as this test spells it, drawn alone on a blank page.
    let expect = |n: u32| {
        let mut blank = _P::new(1728, 2292, opts.resolution).unwrap();
        let (mut pen, x, y) = header::pen_and_origin(&layout);
        pen.draw_str(
            &mut blank,
            &format!("2026-11-28 23:59 FROM ACME Ltd P. {n}/3"),
            x,
            y,
        );
        blank
    };
    for (i, p) in pages.iter().enumerate() {
        let n = i as u32 + 1;
        let rows = |q: &Page| (0..band).map(|y| q.row(y).to_vec()).collect::<Vec<_>>();
        assert!(
            rows(p).iter().flatten().any(|&b| b != 0),
            "no header on page {n}"
        );
        assert_eq!(rows(p), rows(&expect(n)), "page {n} header");
        for other in (1..=3).filter(|&o| o != n) {
            assert_ne!(rows(p), rows(&expect(other)), "page {n} says {other}");
        }
    }
    // The body is still there below the band.
    assert!((band..pages[0].height()).any(|y| pages[0].row(y).iter().any(|&b| b != 0)));
}
