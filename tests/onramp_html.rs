//! A received fax is readable on every client (issue 18): the onramp's email carries an HTML
//! alternative showing the pages as inline PNGs. A two-page fax (a Ghostscript PDF rendered
//! to fax pages) is composed into its email as the onramp does; Python's `email` package
//! checks the MIME structure, and its HTML part — saved with the `cid:` images resolved to
//! files, as a mail client shows it — is opened in headless Chromium
//! (`tests/fixtures/onramp/html_preview.py`): the first page picture is loaded and a
//! screenshot is dark where it is. The Profile S attachment and the text part are the same
//! bytes as without the HTML version (RFC 3965 simple mode).
//!
//! Debian packages: chromium, chromium-driver, python3-selenium (Debian's /usr/bin/python3),
//! ghostscript (the test PDF).

mod common;

use std::process::Command;

use faxgate::config::{AttachFormat, Config, Route};
use faxgate::image::render::{Kind, Options, Unlimited, render_part};
use faxgate::image::tiff::{self, Profile};
use faxgate::onramp::compose::{self, Pages, Settings};
use faxgate::onramp::route::RouteTable;
use faxgate::onramp::{Completion, Reception, Source};

/// Debian's python3, which has python3-selenium (the pyenv `python3` on PATH may not).
const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/onramp/html_preview.py"
);
const ARTIFACTS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/onramp-html");

fn require_browser() {
    common::require_tool("/usr/bin/chromium", "chromium");
    common::require_tool("/usr/bin/chromedriver", "chromium-driver");
    common::require_tool(PYTHON, "python3");
    let ok = Command::new(PYTHON)
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs Selenium for /usr/bin/python3 from the Debian package \
         `python3-selenium`: run `apt-get install -y python3-selenium`"
    );
}

fn reception() -> Reception {
    Reception {
        source: Source::Modem,
        line: Some("line1".into()),
        did: None,
        caller: Some("+12125550123".into()),
        remote_id: Some("ACME SALES".into()),
        subaddress: None,
        pages: 2,
        duration_secs: 61,
        speed: Some(14400),
        resolution: Some((204, 196)),
        bad_lines: 0,
        received: 1_796_000_000,
        completion: Completion::Complete,
    }
}

/// The email of the two-page fax with `previews` pages shown.
fn email(pages: &[faxgate::image::Page], original: &[u8], previews: u32) -> Vec<u8> {
    let mut c = Config::default();
    c.gateway.hostname = "gw.example.com".into();
    c.onramp.html_previews = previews;
    let mut r = Route::default_route();
    r.to = vec!["Sales <sales@example.com>".into()];
    r.format = AttachFormat::Tiff;
    let routes = RouteTable::new(&[r]).unwrap();
    let p = Pages::Decoded {
        pages,
        original,
        original_is_profile_s: true,
    };
    let o = compose::compose(
        &Settings::from_config(&c).unwrap(),
        &routes,
        &reception(),
        &p,
        "6b0b5a000000000000ab",
        None,
    )
    .unwrap();
    o.message
}

#[test]
fn received_fax_email_shows_its_pages_in_a_browser() {
    require_browser();
    let d = tempfile::tempdir().unwrap();
    let pdf = common::gs_pdf(
        d.path(),
        "fax.pdf",
        "/Helvetica-Bold findfont 36 scalefont setfont 72 740 moveto (Delivery note 118) show \
         72 380 300 260 rectfill \
         /Helvetica findfont 14 scalefont setfont 72 340 moveto (Signed: A. Person) show showpage \
         /Helvetica findfont 14 scalefont setfont 72 700 moveto (Terms and conditions) show showpage",
    );
    let r = render_part(
        "fax.pdf",
        &std::fs::read(&pdf).unwrap(),
        Kind::Pdf,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap();
    assert_eq!(r.pages.len(), 2);
    let original = compose::write_tiff(&r.pages, Profile::S).unwrap();

    let with_html = email(&r.pages, &original, 10);
    let _ = std::fs::remove_dir_all(ARTIFACTS);
    std::fs::create_dir_all(ARTIFACTS).unwrap();
    let eml = std::path::Path::new(ARTIFACTS).join("fax.eml");
    std::fs::write(&eml, &with_html).unwrap();
    let out = Command::new(PYTHON)
        .arg(SCRIPT)
        .arg(&eml)
        .arg(ARTIFACTS)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "browser run failed (files in {ARTIFACTS}):\n{said}"
    );
    let v: serde_json::Value = serde_json::from_str(said.lines().last().unwrap()).unwrap();
    eprintln!("{v}");
    // Both pages as pictures, each small; the fax file the one attachment, still faxbw.
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{v}");
    for im in images {
        let bytes = im[1].as_u64().unwrap();
        assert!(bytes < 60_000, "a preview of {bytes} bytes");
    }
    assert_eq!(v["attachments"], serde_json::json!(["image/tiff"]));
    assert_eq!(v["attachment_application"], "faxbw");
    // 600 px wide with the page's proportions (A4 at 204 × 196 dpi).
    let want_h = (2292.0 * 204.0 / 196.0 * 600.0 / 1728.0_f64).round() as u64;
    assert_eq!(v["natural"], serde_json::json!([600, want_h]));
    // The browser shows the picture: dark pixels where it is (the block, the title), and the
    // facts of the text part below the pages.
    let dark = v["dark_inside"].as_u64().unwrap();
    assert!(dark > 20_000, "only {dark} dark pixels on the picture: {v}");
    let shown = v["html_text"].as_str().unwrap();
    assert!(shown.contains("Page 1 of 2"), "{shown}");
    assert!(shown.contains("From: ACME SALES"), "{shown}");
    assert!(v["text"].as_str().unwrap().contains("Pages: 2"));

    // RFC 3965: the fax file and the text part are what they are without the HTML version.
    let plain = email(&r.pages, &original, 0);
    let a = mail_parser::MessageParser::default()
        .parse(&with_html)
        .unwrap();
    let b = mail_parser::MessageParser::default().parse(&plain).unwrap();
    assert_eq!(a.body_text(0), b.body_text(0));
    assert!(b.body_html(0).is_none_or(|h| !h.contains("<img")));
    let tif = |m: &mail_parser::Message<'_>| {
        use mail_parser::MimeHeaders as _;
        m.attachments()
            .filter(|p| {
                p.content_type()
                    .is_some_and(|c| c.c_subtype.as_deref() == Some("tiff"))
            })
            .map(|p| p.contents().to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(tif(&a), vec![original.clone()]);
    assert_eq!(tif(&b), vec![original.clone()]);
    assert!(tiff::check(&original, Profile::S).is_empty());
    assert_eq!(b.attachments().count(), 1, "no previews when off");
}

#[test]
fn html_previews_is_validated_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("faxgate.toml");
    std::fs::write(&f, "[onramp]\nhtml_previews = 51\n").unwrap();
    let e = faxgate::config::load(Some(&f), Vec::new()).unwrap_err();
    assert!(e.0.iter().any(|e| e.key == "onramp.html_previews"), "{e}");
    assert_eq!(Config::default().onramp.html_previews, 10);
}
