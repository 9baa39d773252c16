//! The header line and a page whose content reaches the top edge (issue 18): a PDF made by
//! Ghostscript with its title touching the top of the page, rendered by faxgate, stamped by
//! the offramp's finisher (what a call sends) and by `render::assemble` (what `faxgate
//! render` writes). With `header_placement = "shift"` every title pixel is still on the page,
//! below the header band (checked pixel by pixel against the unstamped rendering scaled the
//! same way); with `"overlay"` the band covers the title as fax machines do.
//!
//! Needs ghostscript (`gs`).

mod common;

use faxgate::config::Config;
use faxgate::image::Page;
use faxgate::image::render::header::{self, HEADER_FIELDS, Placement};
use faxgate::image::render::{Fields, Kind, Options, Template, Unlimited, assemble, render_part};
use faxgate::offramp::document::{self, Finisher, Stamp};
use faxgate::offramp::options::SenderOptions;

/// A4 with a 34 pt bold title whose caps reach 841.6 of 842 pt, a rule under it, body text.
const PS: &str = "/Helvetica-Bold findfont 44 scalefont setfont 60 810 moveto (QUARTERLY REPORT) show \
                  4 setlinewidth 60 790 moveto 535 790 lineto stroke \
                  /Helvetica findfont 14 scalefont setfont 60 700 moveto (Body text of the page.) show \
                  showpage";

/// The unstamped page 1 of the title PDF.
fn title_page() -> (Page, Options) {
    let dir = tempfile::tempdir().unwrap();
    let pdf = common::gs_pdf(dir.path(), "title.pdf", PS);
    let bytes = std::fs::read(pdf).unwrap();
    let opts = Options::default();
    let r = render_part("title.pdf", &bytes, Kind::Pdf, &opts, &mut Unlimited).unwrap();
    assert_eq!(r.pages.len(), 1);
    (r.pages[0].clone(), opts)
}

fn fields() -> Fields {
    Fields {
        when: chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(20, 0, 0),
        station: "+1 555 0100".into(),
        sender: "faxgate".into(),
        recipient: "+12125550123".into(),
        ..Fields::default()
    }
}

fn black_in_rows(p: &Page, rows: std::ops::Range<u32>) -> u64 {
    rows.map(|y| {
        p.row(y)
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum::<u64>()
    })
    .sum()
}

/// The page as the offramp's finisher makes it for the line (header stamped at send time).
fn finished(body: &Page, placement: Placement) -> Page {
    let mut cfg = Config::default();
    cfg.offramp.header_placement = placement;
    let doc_opts = document::Options::from(&cfg.offramp);
    let sender = SenderOptions {
        resolution: faxgate::job::Resolution::Fine,
        cover_page: false,
        subject: String::new(),
    };
    let stamp = Stamp {
        when: fields().when,
        station: "+1 555 0100".into(),
        recipient: "+12125550123".into(),
    };
    let f = Finisher::new(1, "a@example.org", &doc_opts, &sender, &stamp).unwrap();
    f.page(0, &mut |_| Ok(body.clone())).unwrap()
}

/// Checks `stamped` against `plain` for `placement`; returns the band height.
fn check(plain: &Page, stamped: &Page, opts: &Options, placement: Placement) -> u32 {
    let band = header::band_rows(&opts.layout());
    let (w, h) = (plain.width(), plain.height());
    assert_eq!((stamped.width(), stamped.height()), (w, h));
    // The PDF's title reaches into the band: this is the case the option is about.
    let title_in_band = black_in_rows(plain, 0..band);
    assert!(
        title_in_band > 500,
        "title pixels in the band: {title_in_band}"
    );
    // The header line itself is printed in the band either way.
    assert!(black_in_rows(stamped, 0..band) > 100);
    match placement {
        Placement::Shift => {
            // Below the band: exactly the unstamped page scaled the same way.
            let fitted = header::fit_below(plain, band);
            assert_eq!(black_in_rows(&fitted, 0..band), 0);
            for y in band..h {
                assert_eq!(stamped.row(y), fitted.row(y), "row {y} differs");
            }
            // Every title pixel (everything above the rule) lands on a black pixel below the
            // band: the scaling is computed here on its own, from the documented rule.
            let avail = h - band;
            let nw = (u64::from(w) * u64::from(avail) / u64::from(h)) as u32;
            let left = (w - nw) / 2;
            let mut title = 0u64;
            for y in 0..band * 3 {
                for x in 0..w {
                    if plain.get(x, y) {
                        title += 1;
                        let tx = left + (u64::from(x) * u64::from(nw) / u64::from(w)) as u32;
                        let ty = band + (u64::from(y) * u64::from(avail) / u64::from(h)) as u32;
                        assert!(ty >= band);
                        assert!(stamped.get(tx, ty), "title pixel ({x},{y}) lost");
                    }
                }
            }
            assert!(title > title_in_band);
        }
        Placement::Overlay => {
            // Below the band: untouched; in it: the title is covered.
            for y in band..h {
                assert_eq!(stamped.row(y), plain.row(y), "row {y} differs");
            }
            let kept = (0..band)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .filter(|&(x, y)| plain.get(x, y) && stamped.get(x, y))
                .count() as u64;
            assert!(
                kept < title_in_band / 2,
                "overlay kept {kept} of {title_in_band} title pixels in the band"
            );
        }
    }
    band
}

#[test]
fn header_shift_keeps_a_top_edge_title_whole() {
    let (plain, opts) = title_page();
    let stamped = finished(&plain, Placement::Shift);
    let band = check(&plain, &stamped, &opts, Placement::Shift);
    eprintln!("band {band} rows; title rows in band moved below it");
    // The default is shift.
    assert_eq!(Config::default().offramp.header_placement, Placement::Shift);

    // `faxgate render`'s path (render::assemble) places it the same way.
    let tpl = Template::parse(&Config::default().offramp.header, HEADER_FIELDS).unwrap();
    let part = render_part(
        "title.pdf",
        &std::fs::read(common::gs_pdf(
            tempfile::tempdir().unwrap().path(),
            "t.pdf",
            PS,
        ))
        .unwrap(),
        Kind::Pdf,
        &opts,
        &mut Unlimited,
    )
    .unwrap();
    let pages = assemble(vec![part], None, Some((&tpl, &fields())), &opts).unwrap();
    check(&plain, &pages[0], &opts, Placement::Shift);
}

#[test]
fn header_overlay_covers_the_top_as_before() {
    let (plain, opts) = title_page();
    let stamped = finished(&plain, Placement::Overlay);
    check(&plain, &stamped, &opts, Placement::Overlay);
}

#[test]
fn header_placement_is_validated_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("faxgate.toml");
    std::fs::write(&f, "[offramp]\nheader_placement = \"top\"\n").unwrap();
    let e = faxgate::config::load(Some(&f), Vec::new()).unwrap_err();
    let text = e.to_string();
    assert!(
        e.0.iter()
            .any(|e| e.key.contains("offramp.header_placement")
                || (e.key.contains("offramp") && e.message.contains("header_placement"))),
        "{text}"
    );
    std::fs::write(&f, "[offramp]\nheader_placement = \"overlay\"\n").unwrap();
    let c = faxgate::config::load(Some(&f), Vec::new()).unwrap();
    assert_eq!(c.config.offramp.header_placement, Placement::Overlay);
}
