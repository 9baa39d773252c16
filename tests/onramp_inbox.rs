//! The onramp end to end with real peers: a multi-page TIFF written by ImageMagick is dropped
//! into the inbox folder by temp + rename (with a sidecar), the onramp service routes it and
//! delivers one email to a real SMTP server (aiosmtpd); Python's `email` parses the message;
//! the attached TIFF passes our RFC 3949 Profile S check and `tiffinfo -D`, and its pixels —
//! decoded by libtiff through ImageMagick and by our reader — equal the input's. A second
//! route sends the same fax as a G4 PDF, which `pdfinfo` opens and `pdftoppm -mono` renders
//! to the same pixels; a third sends a notice only. Last, a PDF made by Ghostscript is dropped:
//! its email carries a Profile S TIFF whose pixels equal faxgate's rendering of that PDF.

mod common;
mod onramp_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use faxgate::config::{AttachFormat, Config, RelayMode, RelaySecurity, Route};
use faxgate::daemon::Shutdown;
use faxgate::image::render::{Kind, Options as RenderOptions, Unlimited, render_part};
use faxgate::image::tiff::{self, Limits, Profile};
use faxgate::image::{Page, Resolution};
use faxgate::onramp::service::OnrampService;
use faxgate::spool::{Spool, SpoolOptions};
use onramp_common::{PYTHON, Relay, free_port, python_email};

const CONVERT: &str = "/usr/bin/convert";

/// A 2-page PostScript letter: a heading, body text, a rule and a box.
fn document_ps() -> String {
    let mut ps = String::from("%!PS-Adobe-3.0\n%%Pages: 2\n");
    for page in 1..=2 {
        ps += &format!("%%Page: {page} {page}\n<< /PageSize [595 842] >> setpagedevice\n");
        ps +=
            "/Helvetica-Bold findfont 22 scalefont setfont\n72 760 moveto (Purchase order) show\n";
        ps += "/Times-Roman findfont 12 scalefont setfont\n";
        for i in 0..30 {
            ps += &format!(
                "72 {} moveto (Page {page}, line {}: 12 boxes of fax paper, item 0042-{i:03}.) show\n",
                720 - i * 16,
                i + 1
            );
        }
        ps += "2 setlinewidth 72 220 moveto 523 220 lineto stroke\n";
        ps += "72 100 200 80 rectstroke\nshowpage\n";
    }
    ps + "%%EOF\n"
}

/// Deterministic test pages: stripes, blocks and single-pixel detail, different per page.
fn pages(n: u32, height: u32) -> Vec<Page> {
    (0..n)
        .map(|k| {
            let mut p = Page::new(1728, height, Resolution::FINE).unwrap();
            let mut s: u32 = 0x1234_5678 ^ (k + 1).wrapping_mul(0x9e37_79b9);
            for y in 0..height {
                for x in 0..1728 {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    let block = ((x / (16 + 8 * k)) + (y / 24)) % 3 == 0;
                    let stripe = y % 40 < 2;
                    let speck = s.is_multiple_of(997);
                    if block ^ stripe ^ speck {
                        p.set(x, y, true);
                    }
                }
            }
            p
        })
        .collect()
}

fn write_pbm(path: &Path, p: &Page) {
    let mut b = format!("P4\n{} {}\n", p.width(), p.height()).into_bytes();
    b.extend_from_slice(p.data());
    std::fs::write(path, b).unwrap();
}

/// Reads a binary PBM (P4), as ImageMagick and pdftoppm write it.
fn read_pbm(path: &Path) -> (u32, u32, Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 3 {
        while b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i] == b'#' {
            while b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !b[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8(b[start..i].to_vec()).unwrap());
    }
    assert_eq!(fields[0], "P4", "{}", path.display());
    (
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        b[i + 1..].to_vec(),
    )
}

fn assert_same_page(got: (u32, u32, Vec<u8>), want: &Page, what: &str) {
    assert_eq!(
        (got.0, got.1),
        (want.width(), want.height()),
        "{what}: size"
    );
    if got.2 != want.data() {
        let stride = want.stride();
        let row = got
            .2
            .chunks(stride)
            .zip(want.data().chunks(stride))
            .position(|(a, b)| a != b)
            .unwrap();
        panic!("{what}: pixels differ first in row {row}");
    }
}

fn config(dir: &Path, port: u16) -> Config {
    let mut c = Config::default();
    c.gateway.data_dir = dir.to_path_buf();
    c.gateway.hostname = "gw.example.com".into();
    c.gateway.admin = "postmaster@example.com".into();
    c.onramp.from = "Fax Gateway <fax-gateway@example.com>".into();
    c.onramp.inbox_settle = Duration::from_secs(2);
    c.relay.mode = RelayMode::Smtp;
    c.relay.host = "127.0.0.1".into();
    c.relay.port = port;
    c.relay.security = RelaySecurity::Opportunistic;
    c.relay.timeout = Duration::from_secs(30);
    let mut pdf = Route::default_route();
    pdf.name = "pharmacy".into();
    pdf.did = Some("5550150".into());
    pdf.to = vec!["pharmacy@example.com".into()];
    pdf.format = AttachFormat::Pdf;
    let mut notice = Route::default_route();
    notice.name = "hr".into();
    notice.caller = Some("+1646XXX*".into());
    notice.to = vec!["hr@example.com".into()];
    notice.format = AttachFormat::None;
    notice.subject = "Confidential fax from {caller}, {pages} pages".into();
    let mut default = Route::default_route();
    default.to = vec!["Sales <sales@example.com>".into()];
    c.routes = vec![pdf, notice, default];
    c
}

/// Drops `tif` into the inbox as NAME via a temp name and rename, with `sidecar` first.
fn drop_file(inbox: &Path, name: &str, tif: &Path, sidecar: &str) {
    std::fs::create_dir_all(inbox).unwrap();
    std::fs::write(inbox.join(format!("{name}.meta")), sidecar).unwrap();
    let tmp = inbox.join(format!(".{name}.part"));
    std::fs::copy(tif, &tmp).unwrap();
    std::fs::rename(&tmp, inbox.join(name)).unwrap();
}

/// Runs service passes until the relay holds `n` messages (bounded: a hang guard, not a
/// timing assertion).
async fn run_until(svc: &mut OnrampService, relay: &Relay, n: usize) {
    for _ in 0..600 {
        svc.pass().await;
        if relay.messages().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("relay got {} of {n} messages", relay.messages().len());
}

/// Python's `email` on the message: prints the headers and parts, saves the attachment.
fn parse_with_python(eml: &Path, save: &Path) -> String {
    python_email(
        eml,
        &format!(
            "print('subject=' + str(msg['subject']))\n\
             print('from=' + str(msg['from']))\n\
             print('to=' + str(msg['to']))\n\
             print('cc=' + str(msg['cc']))\n\
             print('date=' + str(msg['date'] is not None))\n\
             print('message-id=' + str(msg['message-id']))\n\
             print('mime=' + str(msg['mime-version']))\n\
             print('type=' + msg.get_content_type())\n\
             body = msg.get_body(preferencelist=('plain',))\n\
             print('body=' + body.get_content().replace('\\n', '|'))\n\
             atts = list(msg.iter_attachments())\n\
             print('attachments=' + str(len(atts)))\n\
             for a in atts:\n\
             \x20   print('att-type=' + a.get_content_type())\n\
             \x20   print('att-application=' + str(a.get_param('application')))\n\
             \x20   print('att-filename=' + str(a.get_filename()))\n\
             \x20   open({save:?}, 'wb').write(a.get_content())\n",
            save = save.to_str().unwrap()
        ),
    )
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_tiff_becomes_profile_s_email_pdf_and_notice() {
    common::require_tool(CONVERT, "imagemagick");
    common::require_tool("tiffinfo", "libtiff-tools");
    common::require_tool("pdfinfo", "poppler-utils");
    common::require_tool("pdftoppm", "poppler-utils");
    common::require_tool("gs", "ghostscript");
    onramp_common::require_aiosmtpd();
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    // The input: a 3-page fine-resolution fax TIFF made by ImageMagick (G4, MSB-first).
    let want = pages(3, 700);
    let mut pbms = Vec::new();
    for (i, p) in want.iter().enumerate() {
        let f = work.join(format!("in{i}.pbm"));
        write_pbm(&f, p);
        pbms.push(f);
    }
    let input = work.join("input.tif");
    let st = Command::new(CONVERT)
        .args(&pbms)
        .args([
            "-compress",
            "Group4",
            "-units",
            "PixelsPerInch",
            "-density",
            "204x196",
        ])
        .arg(&input)
        .status()
        .unwrap();
    assert!(st.success());

    let port = free_port();
    let relay = Relay::start(port, &d.path().join("relay"), &[]);
    let c = config(&d.path().join("data"), port);
    let spool = Spool::open(
        &faxgate::spool::spool_dir(&c),
        SpoolOptions::from_config(&c),
    )
    .unwrap();
    let mut svc = OnrampService::new(&c, spool.clone()).unwrap();
    let inbox = c.data_path(&c.onramp.inbox);

    // 1. Default route: Profile S TIFF.
    drop_file(
        &inbox,
        "scan.tif",
        &input,
        "caller: +1 212 555 0123\nremote_id: ACME SALES\n",
    );
    run_until(&mut svc, &relay, 1).await;
    assert!(!inbox.join("scan.tif").exists() && !inbox.join("scan.tif.meta").exists());
    let (env, _) = &relay.messages()[0];
    assert_eq!(env["mail_from"], "fax-gateway@example.com");
    assert_eq!(env["rcpt_tos"], serde_json::json!(["sales@example.com"]));
    let att = work.join("att1.tif");
    let out = parse_with_python(&relay.out.join("1.eml"), &att);
    assert_eq!(field(&out, "subject"), "Fax from ACME SALES (3 pages)");
    assert_eq!(field(&out, "from"), "Fax Gateway <fax-gateway@example.com>");
    assert_eq!(field(&out, "to"), "Sales <sales@example.com>");
    assert_eq!(field(&out, "date"), "True");
    assert!(
        field(&out, "message-id").ends_with("@gw.example.com>"),
        "{out}"
    );
    assert_eq!(field(&out, "mime"), "1.0");
    assert_eq!(field(&out, "type"), "multipart/mixed");
    assert!(
        field(&out, "body").contains("Caller: +1 212 555 0123|"),
        "{out}"
    );
    assert!(field(&out, "body").contains("Pages: 3|"), "{out}");
    assert_eq!(field(&out, "attachments"), "1");
    assert_eq!(field(&out, "att-type"), "image/tiff");
    assert_eq!(field(&out, "att-application"), "faxbw");
    assert!(field(&out, "att-filename").ends_with(".tif"), "{out}");

    // The attachment: Profile S by our checker and readable by libtiff.
    let tif = std::fs::read(&att).unwrap();
    let violations = tiff::check(&tif, Profile::S);
    assert!(violations.is_empty(), "{violations:?}");
    let check = common::faxgate(&work)
        .arg("tiff-check")
        .arg(&att)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "faxgate tiff-check: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let ti = Command::new("tiffinfo")
        .arg("-D")
        .arg(&att)
        .output()
        .unwrap();
    let ti_text =
        String::from_utf8_lossy(&ti.stdout).to_string() + &String::from_utf8_lossy(&ti.stderr);
    assert!(ti.status.success(), "{ti_text}");
    assert!(!ti_text.to_lowercase().contains("error"), "{ti_text}");
    assert_eq!(
        ti_text.matches("Compression Scheme: CCITT Group 3").count(),
        3,
        "{ti_text}"
    );
    assert_eq!(ti_text.matches("Image Width: 1728").count(), 3, "{ti_text}");
    // Pixels, decoded by libtiff (ImageMagick) and by our reader, equal the input.
    let st = Command::new(CONVERT)
        .arg(&att)
        .arg(work.join("out%d.pbm"))
        .status()
        .unwrap();
    assert!(st.success());
    for (i, p) in want.iter().enumerate() {
        assert_same_page(
            read_pbm(&work.join(format!("out{i}.pbm"))),
            p,
            &format!("libtiff page {i}"),
        );
    }
    let ours = tiff::read_bytes(&tif, Limits::default()).unwrap();
    assert_eq!(ours, want);

    // 2. The DID route: the same fax as a G4 PDF.
    drop_file(&inbox, "rx.tif", &input, "did: 555-0150\n");
    run_until(&mut svc, &relay, 2).await;
    assert_eq!(
        relay.messages()[1].0["rcpt_tos"],
        serde_json::json!(["pharmacy@example.com"])
    );
    let pdf = work.join("att2.pdf");
    let out = parse_with_python(&relay.out.join("2.eml"), &pdf);
    assert_eq!(field(&out, "att-type"), "application/pdf");
    assert!(field(&out, "att-filename").ends_with(".pdf"), "{out}");
    let info = Command::new("pdfinfo").arg(&pdf).output().unwrap();
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(info_text.contains("Pages:           3"), "{info_text}");
    let st = Command::new("pdftoppm")
        .args(["-mono", "-rx", "204", "-ry", "196"])
        .arg(&pdf)
        .arg(work.join("pdf"))
        .status()
        .unwrap();
    assert!(st.success());
    for (i, p) in want.iter().enumerate() {
        assert_same_page(
            read_pbm(&work.join(format!("pdf-{}.pbm", i + 1))),
            p,
            &format!("pdftoppm page {}", i + 1),
        );
    }
    // Lossless and small: the PDF is about the size of the MMR data, far below raw pixels.
    let pdf_len = std::fs::metadata(&pdf).unwrap().len();
    eprintln!(
        "PDF attachment: {pdf_len} bytes for 3 pages (Profile S TIFF: {} bytes)",
        tif.len()
    );
    assert!(
        pdf_len < tif.len() as u64,
        "G4 PDF should be smaller than the MH TIFF"
    );

    // 3. The caller route: a notice only, no image.
    drop_file(&inbox, "hr.tif", &input, "caller: +1 646 555 0000\n");
    run_until(&mut svc, &relay, 3).await;
    let out = parse_with_python(&relay.out.join("3.eml"), &work.join("none"));
    assert_eq!(field(&out, "attachments"), "0");
    assert_eq!(
        field(&out, "subject"),
        "Confidential fax from +1 646 555 0000, 3 pages"
    );

    // 4. A PDF (made by Ghostscript), rendered into fax pages: the email's Profile S TIFF
    //    holds exactly the rendered pages.
    let ps = work.join("doc.ps");
    std::fs::write(&ps, document_ps()).unwrap();
    let pdf_in = work.join("doc.pdf");
    let st = Command::new("gs")
        .args(["-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite"])
        .arg(format!("-sOutputFile={}", pdf_in.display()))
        .arg(&ps)
        .status()
        .unwrap();
    assert!(st.success());
    let rendered = render_part(
        "doc.pdf",
        &std::fs::read(&pdf_in).unwrap(),
        Kind::Pdf,
        &RenderOptions::from_config(&c.offramp),
        &mut Unlimited,
    )
    .unwrap()
    .pages;
    assert_eq!(rendered.len(), 2);
    drop_file(&inbox, "doc.pdf", &pdf_in, "remote_id: SCANNER 4\n");
    run_until(&mut svc, &relay, 4).await;
    let att = work.join("att4.tif");
    let out = parse_with_python(&relay.out.join("4.eml"), &att);
    assert_eq!(field(&out, "subject"), "Fax from SCANNER 4 (2 pages)");
    assert_eq!(field(&out, "att-type"), "image/tiff");
    assert_eq!(field(&out, "att-application"), "faxbw");
    let tif = std::fs::read(&att).unwrap();
    assert!(tiff::check(&tif, Profile::S).is_empty());
    let ti = Command::new("tiffinfo")
        .arg("-D")
        .arg(&att)
        .output()
        .unwrap();
    assert!(ti.status.success());
    assert!(
        !String::from_utf8_lossy(&ti.stderr)
            .to_lowercase()
            .contains("error")
    );
    assert_eq!(tiff::read_bytes(&tif, Limits::default()).unwrap(), rendered);
    let st = Command::new(CONVERT)
        .arg(&att)
        .arg(work.join("pdfin%d.pbm"))
        .status()
        .unwrap();
    assert!(st.success());
    for (i, p) in rendered.iter().enumerate() {
        assert_same_page(
            read_pbm(&work.join(format!("pdfin{i}.pbm"))),
            p,
            &format!("libtiff, PDF page {i}"),
        );
        assert!(p.black_pixels() > 1000, "page {i} rendered blank");
    }

    // Each fax went out exactly once; the spool holds nothing unfinished.
    assert_eq!(relay.messages().len(), 4);
    assert!(spool.load().unwrap().jobs.is_empty());
    let _ = PYTHON;
    let (_tx, _shutdown) = Shutdown::new();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_inbox_file_is_parked_with_a_note() {
    let d = tempfile::tempdir().unwrap();
    let c = config(&d.path().join("data"), free_port());
    let spool = Spool::open(
        &faxgate::spool::spool_dir(&c),
        SpoolOptions::from_config(&c),
    )
    .unwrap();
    let mut svc = OnrampService::new(&c, spool.clone()).unwrap();
    let inbox = c.data_path(&c.onramp.inbox);
    std::fs::write(inbox.join(".junk.part"), b"II*\0garbage that is not a TIFF").unwrap();
    std::fs::rename(inbox.join(".junk.part"), inbox.join("junk.tif")).unwrap();
    for _ in 0..200 {
        svc.pass().await;
        if inbox.join(".failed/junk.tif.error").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let note = std::fs::read_to_string(inbox.join(".failed/junk.tif.error")).unwrap();
    assert!(note.contains("TIFF"), "{note}");
    assert!(inbox.join(".failed/junk.tif").exists());
    assert!(!inbox.join("junk.tif").exists());
    assert!(spool.load().unwrap().jobs.is_empty());
}
