//! Fixture emails shaped the way real clients write them (`tests/fixtures/eml/`) become the
//! expected number of fax pages, or the expected failure naming the bad part; a message that
//! fails gets a report that Python's `email` package (Debian `python3`) parses as RFC 3464.

mod common;

use std::path::PathBuf;

use faxgate::config::{BodyText, Config, Offramp, Resolution};
use faxgate::image::render;
use faxgate::job::{Child, JobData};
use faxgate::offramp::causes::Cause;
use faxgate::offramp::document::{self, Options, Stamp};
use faxgate::offramp::jobs::{self, MessageData, Split};
use faxgate::offramp::options::{self, SenderOptions};
use faxgate::smtp::session::{ClientInfo, Envelope, Notify, Recipient, Ret};
use faxgate::spool::{JobKind, NewJob, Spool, SpoolOptions};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eml")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn opts(cover: bool) -> SenderOptions {
    SenderOptions {
        resolution: Resolution::Fine,
        cover_page: cover,
        subject: "s".into(),
    }
}

fn pages(name: &str, body: BodyText, cover: bool) -> Result<u32, Cause> {
    // No office converter: the .docx fixture is refused the way a gateway without
    // LibreOffice refuses it (tests/offramp_office.rs converts real ones).
    let cfg = Offramp {
        body_text: body,
        office_converter: "off".into(),
        ..Offramp::default()
    };
    document::page_count(&fixture(name), &Options::from(&cfg), &opts(cover))
}

#[test]
fn fixture_page_counts() {
    use BodyText::*;
    let table: &[(&str, BodyText, bool, u32)] = &[
        // Thunderbird: the PDF has 2 pages; the short body adds one page when included.
        ("thunderbird-pdf.eml", IfNoAttachment, false, 2),
        ("thunderbird-pdf.eml", Include, false, 3),
        ("thunderbird-pdf.eml", Omit, true, 3),
        // Outlook: the logo is skipped, the JPEG is one page.
        ("outlook-related-logo-jpeg.eml", IfNoAttachment, false, 1),
        ("outlook-related-logo-jpeg.eml", Include, false, 2),
        // Apple Mail: the inline photo is one page.
        ("applemail-inline-image.eml", IfNoAttachment, false, 1),
        ("applemail-inline-image.eml", Include, false, 2),
        // Latin-1 text: one page of text.
        ("latin1-quoted-printable.eml", IfNoAttachment, false, 1),
        ("latin1-quoted-printable.eml", Include, true, 2),
        // Profile S TIFF: 2 pages.
        ("profile-s-tiff.eml", IfNoAttachment, false, 2),
        // PDF sent as application/octet-stream: 1 page.
        ("octet-stream-pdf.eml", IfNoAttachment, false, 1),
    ];
    for (name, body, cover, want) in table {
        assert_eq!(
            pages(name, *body, *cover),
            Ok(*want),
            "{name} body={body:?} cover={cover}"
        );
    }
}

#[test]
fn docx_fails_naming_the_part() {
    let c = pages("docx-attachment.eml", BodyText::Include, false).unwrap_err();
    let Cause::UnsupportedAttachment { part, what } = &c else {
        panic!("{c:?}")
    };
    assert!(part.contains("report.docx"), "{part}");
    assert!(what.contains("Word document"), "{what}");
    assert!(what.contains("office_converter"), "{what}");
}

#[test]
fn nothing_to_fax() {
    // Text only, but the site omits body text.
    assert_eq!(
        pages("latin1-quoted-printable.eml", BodyText::Omit, false),
        Err(Cause::NothingToFax)
    );
}

#[test]
fn truncated_pdf_fails_naming_it() {
    // Cut the PDF inside the file but on a base64 group boundary, so that the transfer
    // encoding is intact and only the document is damaged: the renderer must notice.
    let raw = String::from_utf8(fixture("octet-stream-pdf.eml")).unwrap();
    let start = raw.find("JVBERi0").unwrap();
    let end = raw[start..].find("\r\n--==boundary").unwrap() + start;
    let b64: String = raw[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let keep = (b64.len() / 2) / 4 * 4;
    let cut = &b64[..keep];
    let broken = format!("{}{}{}", &raw[..start], cut, &raw[end..]);
    let c = document::page_count(
        broken.as_bytes(),
        &Options::from(&Offramp::default()),
        &opts(false),
    )
    .unwrap_err();
    let Cause::DamagedAttachment { part, .. } = &c else {
        panic!("{c:?}")
    };
    assert!(part.contains("scan0001.pdf"), "{part}");
}

#[test]
fn header_line_and_resolution_reach_the_pages() {
    let cfg = Offramp::default();
    let raw = fixture("octet-stream-pdf.eml");
    let stamp = Stamp {
        when: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).and_then(|d| d.and_hms_opt(12, 0, 0)),
        station: "+1 212 555 0100".into(),
        recipient: "+12125550123".into(),
    };
    let std = SenderOptions {
        resolution: Resolution::Standard,
        ..opts(false)
    };
    let plain = document::build(
        &raw,
        &Options::from(&cfg),
        &std,
        &Stamp::default(),
        &mut render::Unlimited,
    )
    .unwrap();
    let stamped = document::build(
        &raw,
        &Options::from(&cfg),
        &std,
        &stamp,
        &mut render::Unlimited,
    )
    .unwrap();
    assert_eq!(plain.pages.len(), 1);
    assert_eq!(plain.pages[0].width(), 1728);
    let fine = document::build(
        &raw,
        &Options::from(&cfg),
        &opts(false),
        &stamp,
        &mut render::Unlimited,
    )
    .unwrap();
    // Fine has twice the rows of standard (T.4 §2.2: 7.7 vs 3.85 lines/mm).
    let (s, f) = (plain.pages[0].height(), fine.pages[0].height());
    assert!(f > s * 19 / 10 && f < s * 21 / 10, "standard {s}, fine {f}");
    assert_ne!(plain.pages[0], stamped.pages[0], "header line printed");
}

#[test]
fn subject_keyword_chooses_resolution() {
    let o = options::parse(
        Some("Scan [standard]"),
        None,
        options::Defaults::from(&Offramp::default()),
    );
    assert_eq!(o.resolution, Resolution::Standard);
    assert_eq!(o.subject, "Scan");
}

fn envelope(n: &str) -> Envelope {
    use faxgate::mail::address::{AddressForm, Number};
    use faxgate::mail::dialplan::Destination;
    Envelope {
        mail_from: "alice@example.org".into(),
        size: None,
        body: None,
        ret: Some(Ret::Full),
        envid: Some("T-42".into()),
        mail_auth: None,
        recipients: vec![
            Recipient {
                address: format!("FAX=+{n}@fax.example.org"),
                number: Number::Global(n.into()),
                form: AddressForm::Rfc3192,
                subaddress: None,
                destination: Destination {
                    e164: format!("+{n}"),
                    dial: n.into(),
                    international: false,
                },
                notify: Some(vec![Notify::Failure]),
                orcpt: Some(format!("rfc822;FAX=+{n}@fax.example.org")),
            },
            Recipient {
                address: "FAX=+12125550999@fax.example.org".into(),
                number: Number::Global("12125550999".into()),
                form: AddressForm::Rfc3192,
                subaddress: None,
                destination: Destination {
                    e164: "+12125550999".into(),
                    dial: "12125550999".into(),
                    international: false,
                },
                notify: None,
                orcpt: None,
            },
        ],
        postmaster: Vec::new(),
        client: ClientInfo {
            ip: "127.0.0.1".parse().unwrap(),
            port: 1,
            helo: "h".into(),
            esmtp: true,
        },
        auth_user: None,
        tls: None,
    }
}

fn split(name: &str) -> (tempfile::TempDir, Spool, faxgate::spool::JobId, Split) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let mut cfg = Config::default();
    cfg.offramp.office_converter = "off".into();
    let mut inc = spool.begin(JobKind::Message).unwrap();
    inc.write_file(jobs::MESSAGE_FILE, &fixture(name)).unwrap();
    let data = MessageData {
        envelope: envelope("12125550123"),
        file: jobs::MESSAGE_FILE.into(),
        size: 0,
        received: "2026-11-28T09:00:00Z".into(),
    };
    let id = inc
        .commit(NewJob::new(JobData::from(data.clone())))
        .unwrap()
        .id;
    let doc_opts = Options::from(&cfg.offramp);
    let check = |raw: &[u8], o: &SenderOptions| document::prepare(raw, &doc_opts, o);
    let s = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    (dir, spool, id, s)
}

#[test]
fn split_makes_one_fax_job_per_recipient() {
    let (_d, spool, id, s) = split("thunderbird-pdf.eml");
    let Split::Faxes {
        pages,
        jobs: ids,
        forwarded: None,
    } = s
    else {
        panic!("{s:?}")
    };
    assert_eq!(pages, 2);
    assert_eq!(ids, [id.child(1).unwrap(), id.child(2).unwrap()]);
    for (i, j) in ids.iter().enumerate() {
        let (_, rec) = spool.get(j).unwrap();
        assert_eq!(rec.kind, JobKind::FaxOut);
        assert_eq!(rec.parent.as_ref(), Some(&id));
        let fj = rec.data.as_fax_out().unwrap().clone();
        assert_eq!(fj.recipient as usize, i + 1);
        assert_eq!(fj.pages_total, 2);
        assert_eq!(
            rec.child,
            Some(faxgate::job::Child::Recipient(i as u16 + 1))
        );
        // Rendered once, at split: the fax job keeps the body pages, which are exactly what
        // the document renders to without header line (and no cover page was asked for);
        // the worker draws only the cover page and the header line at send.
        assert_eq!(fj.pages.as_deref(), Some(jobs::PAGES_FILE));
        let kept = std::fs::read(spool.payload_path(j, jobs::PAGES_FILE).unwrap()).unwrap();
        let kept = faxgate::image::tiff::read_bytes(&kept, Default::default()).unwrap();
        let raw = fixture("thunderbird-pdf.eml");
        let want = document::build(
            &raw,
            &Options::from(&Offramp::default()),
            &fj.options,
            &Stamp::default(),
            &mut render::Unlimited,
        )
        .unwrap()
        .pages;
        assert_eq!(kept, want);
        assert!(
            !spool.payload_path(j, jobs::MESSAGE_FILE).unwrap().exists(),
            "no copy of the message per recipient"
        );
    }
    let (area, _) = spool.get(&id).unwrap();
    assert_eq!(area, faxgate::spool::Area::Done);
}

#[test]
fn docx_message_fails_with_one_report_naming_the_part() {
    let (_d, spool, id, s) = split("docx-attachment.eml");
    let Split::Failed {
        cause,
        report,
        forwarded: None,
    } = s
    else {
        panic!("{s:?}")
    };
    assert!(matches!(cause, Cause::UnsupportedAttachment { .. }));
    let rid = report.expect("a failure is reported");
    assert_eq!(rid, id.child(Child::Report.number()).unwrap());
    let (_, rec) = spool.get(&rid).unwrap();
    let data = rec.data.as_mail_out().unwrap().clone();
    assert_eq!(data.envelope.from, "");
    let mail = std::fs::read(spool.payload_path(&rid, &data.file).unwrap()).unwrap();
    let py = common::require_tool("python3", "python3");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.eml");
    std::fs::write(&f, &mail).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/offramp/check_report.py");
    let out = std::process::Command::new(py)
        .arg(&script)
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["per_message"]["Original-Envelope-Id"], "T-42");
    let r = p["recipients"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    for x in r {
        assert_eq!(x["Action"], "failed");
        assert_eq!(x["Status"], "5.6.1");
        let d = x["Diagnostic-Code"].as_str().unwrap();
        assert!(d.starts_with("X-Fax; unsupported-attachment;"), "{d}");
        assert!(d.contains("report.docx"), "{d}");
    }
    assert_eq!(
        r[0]["Original-Recipient"],
        "rfc822; FAX=+12125550123@fax.example.org"
    );
    // RET=FULL with a failure: the whole message comes back.
    assert_eq!(p["parts"][2], "message/rfc822");
    assert_eq!(p["returned_subject"], "Quarterly report");
    assert!(
        p["summary"]
            .as_str()
            .unwrap()
            .contains("Attachment type not supported")
    );
    let (area, _) = spool.get(&id).unwrap();
    assert_eq!(area, faxgate::spool::Area::Failed);
    // Running the split again (after a crash) makes no second report.
    let mut cfg = Config::default();
    cfg.offramp.office_converter = "off".into();
    let doc_opts = Options::from(&cfg.offramp);
    let check = |raw: &[u8], o: &SenderOptions| document::prepare(raw, &doc_opts, o);
    let again = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    assert!(matches!(again, Split::Failed { .. }));
    let mails = spool
        .load()
        .unwrap()
        .jobs
        .into_iter()
        .filter(|j| j.kind == JobKind::MailOut)
        .count();
    assert_eq!(mails, 1);
}

/// Parse a raw PBM (P4) as netpbm writes it: header, then rows MSB first, 1 = black.
fn pbm(data: &[u8]) -> (u32, u32, &[u8]) {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 3 {
        while data[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while !data[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(std::str::from_utf8(&data[s..i]).unwrap().to_string());
    }
    assert_eq!(fields[0], "P4");
    (
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        &data[i + 1..],
    )
}

#[test]
fn profile_s_tiff_pages_equal_libtiff_decoding() {
    // netpbm's tifftopnm decodes through libtiff: an independent MH decoder.
    let tifftopnm = common::require_tool("tifftopnm", "netpbm");
    let raw = fixture("profile-s-tiff.eml");
    let doc = document::build(
        &raw,
        &Options::from(&Offramp::default()),
        &opts(false),
        &Stamp::default(),
        &mut render::Unlimited,
    )
    .unwrap();
    assert_eq!(doc.pages.len(), 2);
    let x = faxgate::offramp::mime::extract(
        &raw,
        &faxgate::offramp::mime::Policy::from_config(&Offramp::default()),
    )
    .unwrap();
    let faxgate::offramp::mime::Content::Bytes(tif) = &x.parts[1].content else {
        panic!("tiff bytes")
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("fax.tif");
    std::fs::write(&f, tif).unwrap();
    // tifftopnm writes every page, one PBM after the other.
    let out = std::process::Command::new(&tifftopnm)
        .arg("-quiet")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest: &[u8] = &out.stdout;
    for (n, page) in doc.pages.iter().enumerate() {
        let (w, h, bits) = pbm(rest);
        let len = (w as usize).div_ceil(8) * h as usize;
        assert_eq!((page.width(), page.height()), (w, h), "page {n}");
        let ours: Vec<u8> = page.rows().flatten().copied().collect();
        assert!(
            ours == bits[..len],
            "page {n} pixels differ from libtiff's decoding"
        );
        rest = &bits[len..];
    }
    assert!(rest.is_empty(), "libtiff found more pages");
}

#[test]
fn offramp_check_command() {
    let dir = tempfile::tempdir().unwrap();
    let eml = |n: &str| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/eml")
            .join(n)
    };
    let out = common::faxgate(dir.path())
        .args(["offramp-check"])
        .env("FAXGATE_OFFRAMP__OFFICE_CONVERTER", "off")
        .arg(eml("docx-attachment.eml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL  Attachment type not supported"),
        "{text}"
    );
    assert!(text.contains("report.docx"), "{text}");

    let tif = dir.path().join("fax.tif");
    let out = common::faxgate(dir.path())
        .args(["offramp-check"])
        .arg(eml("outlook-related-logo-jpeg.eml"))
        .arg("--out")
        .arg(&tif)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("skip  part 3 \"image001.png\" (image/png): small inline image"),
        "{text}"
    );
    assert!(text.contains("pages: 1"), "{text}");
    // libtiff reads what we wrote: one Profile S page.
    let tiffinfo = common::require_tool("tiffinfo", "libtiff-tools");
    let info = std::process::Command::new(tiffinfo)
        .arg(&tif)
        .output()
        .unwrap();
    assert!(info.status.success());
    let info = String::from_utf8_lossy(&info.stdout);
    assert_eq!(info.matches("Image Width: 1728").count(), 1, "{info}");
    assert!(info.contains("CCITT Group 3"), "{info}");
}

/// Rendered once at split, finished at send: the pages a line sends are exactly those of a
/// whole render at the time of sending — cover page, body, header line on every page.
#[test]
fn pages_kept_at_split_and_finished_at_send_equal_a_whole_render() {
    let raw = fixture("thunderbird-pdf.eml");
    let cfg = Options::from(&Offramp::default());
    let o = opts(true);
    let stamp = Stamp {
        when: chrono::NaiveDate::from_ymd_opt(2026, 12, 3).and_then(|d| d.and_hms_opt(9, 30, 0)),
        station: "+1 212 555 0100".into(),
        recipient: "+12125550142".into(),
    };
    let whole = document::build(&raw, &cfg, &o, &stamp, &mut render::Unlimited)
        .unwrap()
        .pages;
    let prepared = document::prepare(&raw, &cfg, &o).unwrap();
    assert_eq!(prepared.pages_total as usize, whole.len());
    let body = faxgate::image::tiff::read_bytes(&prepared.body, Default::default()).unwrap();
    assert_eq!(
        body.len() + 1,
        whole.len(),
        "the cover page is drawn at send"
    );
    let sent = document::finish(body, &prepared.from, &cfg, &o, &stamp).unwrap();
    assert_eq!(sent, whole);
}
