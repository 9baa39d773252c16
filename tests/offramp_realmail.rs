//! Mail as real clients write it (issue 18, `tests/fixtures/mail/`, made by
//! `make-fixtures.py` there) becomes the fax its sender meant, page for page and pixel for
//! pixel against a reference rendering made another way:
//!
//! - a forwarded message (Outlook's forward-as-attachment, mutt's inline MIME forward of a
//!   forward, `message/global`) is faxed as a header block with its From, Date, To and
//!   Subject, then its text — the pages equal the text renderer's pages of that block written
//!   out here by hand — then its attachments, whose pages equal the attachment rendered
//!   alone (decoded here from the fixture's base64, not by the offramp);
//! - a `format=flowed` body renders as the same paragraphs written as one long line each;
//! - Gmail's forward takes the plain alternative, Thunderbird's inline forward its flowed
//!   text and re-attached PDF;
//! - an HTML-only message (html5ever) gives its table in columns and its list indented, its
//!   `cid:` picture on a page of its own between the text before and after it;
//! - end to end: Outlook's forward sent to the running daemon over SMTP to the loopback line
//!   comes back as a received fax of the expected pages, with a success report.
//!
//! Debian packages: python3 (smtplib, the SMTP client of the end-to-end test).

mod common;

use std::path::PathBuf;

use base64::Engine as _;
use common::daemon::Daemon;
use faxgate::config::{BodyText, Offramp, Resolution};
use faxgate::image::Page;
use faxgate::image::render::{self, Kind};
use faxgate::offramp::document::{self, Options, Stamp};
use faxgate::offramp::options::SenderOptions;
use mail_parser::{MessageParser, MimeHeaders};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mail")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sender() -> SenderOptions {
    SenderOptions {
        resolution: Resolution::Fine,
        cover_page: false,
        subject: "s".into(),
    }
}

fn options(body: BodyText) -> Options {
    Options::from(&Offramp {
        body_text: body,
        ..Offramp::default()
    })
}

/// The fax of a fixture, as the offramp makes it (no header line: no time of sending).
fn fax(name: &str, body: BodyText) -> Vec<Page> {
    document::build(
        &fixture(name),
        &options(body),
        &sender(),
        &Stamp::default(),
        &mut render::Unlimited,
    )
    .unwrap_or_else(|c| panic!("{name}: {c:?}"))
    .pages
}

/// `bytes` rendered alone as `kind`, with the same options.
fn alone(bytes: &[u8], kind: Kind) -> Vec<Page> {
    let ropts = document::render_options(&options(BodyText::Include), &sender());
    render::render_part("reference", bytes, kind, &ropts, &mut render::Unlimited)
        .unwrap()
        .pages
}

fn text(t: &str) -> Vec<Page> {
    alone(t.as_bytes(), Kind::Text)
}

/// The base64 body of the fixture's part whose headers contain `marker`, decoded here.
fn b64_part(raw: &[u8], marker: &str) -> Vec<u8> {
    let s = String::from_utf8_lossy(raw);
    let at = s.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let body = at + s[at..].find("\r\n\r\n").unwrap() + 4;
    let end = body + s[body..].find("\r\n--").unwrap();
    let clean: String = s[body..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .unwrap()
}

fn same(got: &[Page], want: &[Page], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: page count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(w.black_pixels() > 0, "{what}: reference page {i} is blank");
        assert!(g == w, "{what}: page {} differs from the reference", i + 1);
    }
}

const OUTLOOK_BLOCK: &str = "---------- Forwarded message ----------
From:    Accounts <accounts@supplier.example.net>
Date:    Mon, 30 Nov 2026 16:40:11 +0000
To:      Dana Smith <dana.smith@example.com>
Subject: Invoice 2026-117

Dear Dana,

please find our invoice 2026-117 attached, due within 30 days.

Kind regards,
Accounts
";

#[test]
fn realmail_outlook_forward_as_attachment() {
    let raw = fixture("outlook-forward-as-attachment.eml");
    let pdf = b64_part(&raw, "filename=\"Invoice-2026-117.pdf\"");
    let pdf_pages = alone(&pdf, Kind::Pdf);
    assert_eq!(pdf_pages.len(), 2);
    // By default (body text only without attachments) the forwarded message is the fax.
    let got = fax(
        "outlook-forward-as-attachment.eml",
        BodyText::IfNoAttachment,
    );
    let mut want = text(OUTLOOK_BLOCK);
    want.extend(pdf_pages.clone());
    same(&got, &want, "Outlook forward");
    // With the body text: the sender's own words first.
    let got = fax("outlook-forward-as-attachment.eml", BodyText::Include);
    let mut want = text("Please fax the attached invoice.\n\nDana");
    want.extend(text(OUTLOOK_BLOCK));
    want.extend(pdf_pages);
    same(&got, &want, "Outlook forward, body included");
}

#[test]
fn realmail_forward_block_changes_the_pixels() {
    // The reference can fail: the block without its Date line is another page.
    let without_date: String = OUTLOOK_BLOCK
        .lines()
        .filter(|l| !l.starts_with("Date:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let got = fax(
        "outlook-forward-as-attachment.eml",
        BodyText::IfNoAttachment,
    );
    assert!(got[0] != text(&without_date)[0]);
    // And the header rows are inked where the text renderer puts the five block lines.
    let page = &got[0];
    let inked: Vec<bool> = (0..page.height())
        .map(|y| page.row(y).iter().any(|b| *b != 0))
        .collect();
    let bands = inked.windows(2).filter(|w| !w[0] && w[1]).count();
    assert!(bands >= 8, "{bands} text lines");
}

#[test]
fn realmail_mutt_nested_forward_with_message_global() {
    let got = fax("mutt-nested-forward.eml", BodyText::IfNoAttachment);
    let mut want = text(
        "---------- Forwarded message ----------
From:    Sam Ortiz <sam@example.net>
Date:    Wed, 2 Dec 2026 18:00:00 +0100
To:      Alex Moreau <alex@example.org>
Subject: Fwd: Lieferschein

Forwarding the delivery note from Jürgen.
",
    );
    want.extend(text(
        "---------- Forwarded message ----------
From:    Jürgen Müller <jürgen@müller.example>
Date:    Wed, 2 Dec 2026 09:15:00 +0100
To:      Sam Ortiz <sam@example.net>
Subject: Lieferschein Nr. 88

Grüße aus Köln: 3 Paletten, geliefert am Dienstag.
",
    ));
    same(&got, &want, "mutt nested forward");
}

#[test]
fn realmail_thunderbird_inline_forward() {
    let raw = fixture("thunderbird-inline-forward.eml");
    let pdf = b64_part(&raw, "filename=\"site-plan.pdf\"");
    let got = fax("thunderbird-inline-forward.eml", BodyText::Include);
    // Thunderbird's header table keeps its tabs; the flowed paragraph is one line again.
    let mut want = text(
        "\n\n\n-------- Forwarded Message --------
Subject: \tSite plan for Monday
Date: \tTue, 1 Dec 2026 17:20:03 +0100
From: \tLee Novak <lee@example.net>
To: \tKim Berger <kim@example.org>



Hi Kim,

here is the site plan for Monday. The crane arrives at seven, so please make sure the gate is open and the access road is clear of parked cars before then.

Lee",
    );
    want.extend(alone(&pdf, Kind::Pdf));
    same(&got, &want, "Thunderbird inline forward");
}

#[test]
fn realmail_gmail_forward_takes_the_plain_alternative() {
    let got = fax("gmail-forward.eml", BodyText::IfNoAttachment);
    let want = text(
        "---------- Forwarded message ---------
From: Warehouse <warehouse@example.net>
Date: Tue, Dec 1, 2026 at 8:05 AM
Subject: Delivery note
To: <robin.hart@example.com>


Delivery note 5531: 12 boxes of fax paper, 2 toner cartridges.
Delivered to gate 3.",
    );
    same(&got, &want, "Gmail forward");
}

#[test]
fn realmail_flowed_paragraph_is_one_line() {
    let got = fax("flowed.eml", BodyText::IfNoAttachment);
    let want = text(
        "Dear neighbours,

over the holidays the office is open from nine to twelve on weekdays only, and closed on the twenty-fourth, the twenty-fifth and the thirty-first of December. Urgent deliveries can be left with the caretaker at the back entrance, who will sign for them.

Best wishes,
Kim",
    );
    same(&got, &want, "flowed text");
    // As sent (hard breaks at 72 columns) it would be other pixels.
    let raw = String::from_utf8(fixture("flowed.eml")).unwrap();
    let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
    assert!(got[0] != text(body)[0]);
}

#[test]
fn realmail_html_table_list_and_cid_picture() {
    let raw = fixture("html-table-list-cid.eml");
    let png = b64_part(&raw, "Content-Id: <part1.");
    let got = fax("html-table-list-cid.eml", BodyText::IfNoAttachment);
    let mut want = text(
        "Stock report for December:

Item       Boxes
----------------
Fax paper  12
Toner      2

To order:

  * more paper
  * one drum unit
",
    );
    want.extend(alone(&png, Kind::Image));
    want.extend(text("Kim\n"));
    same(&got, &want, "HTML with table, list and cid: picture");
}

#[test]
fn realmail_forward_end_to_end_through_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("fwd.eml");
    std::fs::write(&eml, fixture("outlook-forward-as-attachment.eml")).unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[]);
    // The fixture as it is, its own envelope on loopback (smtplib's sendmail sends the
    // octets unchanged).
    let py = common::require_tool("python3", "python3");
    let script = "import smtplib, sys
raw = open(sys.argv[2], 'rb').read()
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.sendmail('dana.smith@example.com', ['FAX=+12125550123@localhost'], raw, rcpt_options=['NOTIFY=SUCCESS'])
s.quit()
";
    let out = std::process::Command::new(py)
        .args(["-c", script, &d.port.to_string()])
        .arg(&eml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let is_fax = |m: &[u8]| {
        MessageParser::default().parse(m).is_some_and(|p| {
            p.attachments().any(|a| {
                a.content_type()
                    .is_some_and(|c| c.c_type == "image" && c.subtype() == Some("tiff"))
            })
        })
    };
    let is_report = |m: &[u8]| {
        MessageParser::default().parse(m).is_some_and(|p| {
            p.content_type()
                .is_some_and(|c| c.c_type == "multipart" && c.subtype() == Some("report"))
        })
    };
    let mails = d.wait_mail("the received fax and the report", |m| {
        m.iter().any(|x| is_fax(x)) && m.iter().any(|x| is_report(x))
    });
    let fax_mail = mails.iter().find(|m| is_fax(m)).unwrap();
    let p = MessageParser::default().parse(fax_mail).unwrap();
    let tiff = p
        .attachments()
        .find(|a| {
            a.content_type()
                .is_some_and(|c| c.subtype() == Some("tiff"))
        })
        .unwrap()
        .contents()
        .to_vec();
    let pages = faxgate::image::tiff::read_bytes(&tiff, Default::default()).unwrap();
    // The forwarded message's block page and the invoice's two pages.
    assert_eq!(pages.len(), 3);
    let reports: Vec<_> = mails.iter().filter(|m| is_report(m)).collect();
    assert_eq!(reports.len(), 1);
    let r = String::from_utf8_lossy(reports[0]);
    assert!(r.contains("Action: delivered"), "{r}");
    assert!(r.contains("dana.smith@example.com"), "{r}");
}
