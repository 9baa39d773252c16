//! Rendering bombs: small PDFs that cost minutes or hours to draw (issue 21: "an 88 KB one-page
//! PDF with 2 million line segments renders for 79 s; a 100-page variant ~2 h"). Each is refused
//! by the rendering budget, naming the page, and the sender's report says why in plain words.
//! Assertions are on the error kind and page, never on elapsed time.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use faxgate::config::{Config, Offramp};
use faxgate::image::render::budget::{self, Budget, DEFAULT_PAGE_WORK, Limited, Recording};
use faxgate::image::render::{ErrorKind, Kind, Options, render_part};
use faxgate::job::{Child, JobData};
use faxgate::offramp::budget::{Cancel, Deadline, for_message};
use faxgate::offramp::causes::Cause;
use faxgate::offramp::document::{self, Stamp};
use faxgate::offramp::options::SenderOptions;

use super::{common, corpus};

/// A PDF file of `objs` (object 1 the catalog), with a correct cross-reference table (ISO
/// 32000-1 §7.5.4) and `%%EOF`.
fn write_pdf(objs: &[Vec<u8>]) -> Vec<u8> {
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

fn stream(body: &str) -> Vec<u8> {
    format!("<< /Length {} >>\nstream\n{body}\nendstream", body.len()).into_bytes()
}

/// Segments in one repeated content stream piece.
const PIECE: usize = 2_000;

/// The bomb: `pages` US-Letter pages, each ONE stroked path of `PIECE × repeats` thin
/// line segments. Every page's `/Contents` is one array naming the same small stream `repeats`
/// times (ISO 32000-1 §7.8.2: the streams are one content stream, so the path goes on across
/// them): the file stays a few tens of KB however many segments it draws.
fn segments_pdf(pages: usize, repeats: usize) -> Vec<u8> {
    // Objects: 1 catalog, 2 pages, 3 "0.1 w 0 G 40 400 m", 4 the piece, 5 "S", 6 the contents
    // array, then the pages.
    let mut piece = String::with_capacity(PIECE * 12);
    for i in 0..PIECE {
        // A zigzag across the page: short segments a few rows tall.
        let x = 40 + (i * 7) % 530;
        let y = 380 + (i * 13) % 40;
        piece.push_str(&format!("{x} {y} l\n"));
    }
    let contents: Vec<String> = std::iter::once("3 0 R".to_string())
        .chain(std::iter::repeat_n("4 0 R".to_string(), repeats))
        .chain(std::iter::once("5 0 R".to_string()))
        .collect();
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 7 + i)).collect();
    let mut objs = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            kids.join(" ")
        )
        .into_bytes(),
        stream("0.1 w 0 G 40 400 m"),
        stream(&piece),
        stream("S"),
        format!("[{}]", contents.join(" ")).into_bytes(),
    ];
    for _ in 0..pages {
        objs.push(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R >>".to_vec(),
        );
    }
    write_pdf(&objs)
}

/// One page that paints a form XObject of `PIECE` long thin diagonal strokes `uses` times:
/// few operators, a great deal of drawing (each stroke crosses most of the page's rows), all
/// of it done by our own rasterizer — the page to stop while it is being drawn.
fn drawing_pdf(uses: usize) -> Vec<u8> {
    let mut form = String::from("0.1 w 0 G\n");
    for i in 0..PIECE {
        let x = 40 + (i * 7) % 530;
        form.push_str(&format!("{x} 40 m {} 750 l S\n", 570 - (i * 11) % 530));
    }
    let page = "/F Do\n".repeat(uses);
    let objs = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
           /Resources << /XObject << /F 5 0 R >> >> >>"
            .to_vec(),
        stream(&page),
        format!(
            "<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << >> \
             /Length {} >>\nstream\n{form}\nendstream",
            form.len()
        )
        .into_bytes(),
    ];
    write_pdf(&objs)
}

fn render_pdf(pdf: &[u8], budget: &mut dyn Budget) -> Result<usize, ErrorKind> {
    render_part("doc.pdf", pdf, Kind::Pdf, &Options::default(), budget)
        .map(|r| r.pages.len())
        .map_err(|e| e.kind)
}

/// One page painting a form XObject of one `PIECE`-segment path `uses` times: the segments in
/// many paths our own rasterizer draws (not one path it leaves to hayro).
fn form_segments_pdf(uses: usize) -> Vec<u8> {
    let mut form = String::from("0.1 w 0 G 40 400 m\n");
    for i in 0..PIECE {
        form.push_str(&format!(
            "{} {} l\n",
            40 + (i * 7) % 530,
            380 + (i * 13) % 40
        ));
    }
    form.push_str("S\n");
    let objs = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
           /Resources << /XObject << /F 5 0 R >> >> >>"
            .to_vec(),
        stream(&"/F Do\n".repeat(uses)),
        format!(
            "<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << >> \
             /Length {} >>\nstream\n{form}\nendstream",
            form.len()
        )
        .into_bytes(),
    ];
    write_pdf(&objs)
}

#[test]
fn render_two_million_segment_page_is_refused_by_the_default_budget() {
    // As one path (the issue's: our rasterizer leaves it to hayro, which took 79 s), and as a
    // thousand paths of 2000 (drawn by our rasterizer).
    for pdf in [segments_pdf(1, 1_000), form_segments_pdf(1_000)] {
        assert!(pdf.len() < 100_000, "{} bytes", pdf.len());
        // The daemon's budget as configured by default.
        let mut b = for_message(&Offramp::default(), &Cancel::new());
        assert_eq!(b.page_work(), DEFAULT_PAGE_WORK);
        assert_eq!(
            render_pdf(&pdf, &mut b),
            Err(ErrorKind::WorkBudget {
                page: 1,
                limit: DEFAULT_PAGE_WORK
            })
        );
    }
    // Every segment costs at least 4 units (operator, segment, a row): a million and a half
    // segments cannot fit either way.
    let mut m = Recording::new(u32::MAX, u64::MAX);
    assert_eq!(render_pdf(&form_segments_pdf(10), &mut m), Ok(1));
    assert!(m.max_page_work() >= 4 * 10 * PIECE as u64, "{:?}", m.work());
}

#[test]
fn render_hundred_page_variant_is_refused_at_its_first_page() {
    let pdf = segments_pdf(100, 1_000);
    assert!(pdf.len() < 100_000, "{} bytes", pdf.len());
    // A small configured limit keeps the test fast: the operator count alone passes it.
    let cfg = Offramp {
        render_work_limit: 200_000,
        ..Offramp::default()
    };
    let mut b = for_message(&cfg, &Cancel::new());
    assert_eq!(
        render_pdf(&pdf, &mut b),
        Err(ErrorKind::WorkBudget {
            page: 1,
            limit: 200_000
        })
    );
}

#[test]
fn render_work_inside_a_page_is_metered_not_only_its_operators() {
    // Few operators (one form painted 40 times), much drawing: refused while drawing.
    let pdf = drawing_pdf(40);
    let ops_only = 40 * (2 * PIECE as u64 + 1) + 40;
    let limit = 50 * ops_only;
    let mut b = Limited::work(limit);
    assert_eq!(
        render_pdf(&pdf, &mut b),
        Err(ErrorKind::WorkBudget { page: 1, limit })
    );
    // The same page painting the form once fits, and its cost is mostly drawing.
    let one = drawing_pdf(1);
    let mut m = Recording::measuring();
    assert_eq!(render_pdf(&one, &mut m), Ok(1));
    assert!(
        m.max_page_work() > 20 * (2 * PIECE as u64),
        "{:?}",
        m.work()
    );
}

#[test]
fn render_time_limit_names_the_page() {
    // A limit that has passed by the first check (no sleeping, no timing assertion).
    let d = Deadline::start(Duration::from_nanos(1), &Cancel::new());
    std::thread::sleep(Duration::from_millis(2));
    let mut b = d.budget(0);
    assert_eq!(
        render_pdf(&segments_pdf(3, 10), &mut b),
        Err(ErrorKind::TimeBudget { page: 1 })
    );
}

/// The shell's budget, noting when the renderer first asks from inside a page (not before it):
/// the page is then being drawn.
struct Watched {
    inner: Limited,
    drawing: Arc<AtomicBool>,
}

impl Budget for Watched {
    fn page_work(&self) -> u64 {
        self.inner.page_work()
    }
    fn check(&self, page: u32) -> Result<(), ErrorKind> {
        self.drawing.store(true, Ordering::SeqCst);
        self.inner.check(page)
    }
    fn before_page(&self, page: u32) -> Result<(), ErrorKind> {
        self.inner.check(page)
    }
}

#[test]
fn render_cancellation_stops_a_render_in_progress() {
    // Without limits this page draws for minutes (a thousand uses of 2000 page-tall strokes).
    let pdf = drawing_pdf(1_000);
    let cancel = Cancel::new();
    let drawing = Arc::new(AtomicBool::new(false));
    let mut b = Watched {
        inner: Deadline::start(Duration::ZERO, &cancel).budget(0),
        drawing: drawing.clone(),
    };
    let worker = std::thread::spawn(move || render_pdf(&pdf, &mut b));
    // Bounded wait for the first check from inside the page (a guard, not a measurement).
    for _ in 0..6_000 {
        if drawing.load(Ordering::SeqCst) || worker.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(drawing.load(Ordering::SeqCst), "the page never started");
    assert!(
        !worker.is_finished(),
        "the page finished before it was cancelled"
    );
    cancel.cancel();
    assert_eq!(
        worker.join().unwrap(),
        Err(ErrorKind::Cancelled { page: 1 })
    );
}

fn opts() -> SenderOptions {
    SenderOptions {
        resolution: faxgate::config::Resolution::Fine,
        cover_page: false,
        subject: "plan".into(),
    }
}

/// A message from `alice@example.org` with `pdf` attached as `name`.
fn message_with_pdf(name: &str, pdf: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
    let mut body = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(chunk).unwrap());
        body.push_str("\r\n");
    }
    format!(
        "From: Alice <alice@example.org>\r\nTo: FAX=+12125550123@fax.example.org\r\n\
         Subject: plan\r\nMessage-ID: <bomb@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: application/pdf; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}--b--\r\n"
    )
    .into_bytes()
}

#[test]
fn render_sender_report_names_the_budget() {
    let raw = message_with_pdf("plan.pdf", &segments_pdf(1, 1_000));
    let cfg = Offramp {
        render_work_limit: 100_000,
        ..Offramp::default()
    };
    let mut b = for_message(&cfg, &Cancel::new());
    let cause = document::build(
        &raw,
        &document::Options::from(&cfg),
        &opts(),
        &Stamp::default(),
        &mut b,
    )
    .unwrap_err();
    let Cause::TooComplex { part, page, limit } = &cause else {
        panic!("{cause:?}")
    };
    assert_eq!((*page, *limit), (1, 100_000));
    assert!(part.contains("plan.pdf"), "{part}");
    let words = cause.words();
    assert!(
        words.starts_with("Page 1 of ") && words.contains("plan.pdf"),
        "{words}"
    );
    assert!(words.contains("too complex to render"), "{words}");
    assert!(words.contains("the fax was not sent"), "{words}");
    assert_eq!(cause.keyword(), "too-complex");
    assert_eq!(
        cause.status(faxgate::offramp::causes::Action::Failed),
        "5.3.4"
    );

    // The time limit in the same words, with its seconds.
    let slow = Offramp {
        render_time_limit: Duration::from_secs(60),
        ..Offramp::default()
    };
    let mut t = Limited::new(0, Box::new(|| Some(budget::Interrupt::Time)));
    let cause = document::build(
        &raw,
        &document::Options::from(&slow),
        &opts(),
        &Stamp::default(),
        &mut t,
    )
    .unwrap_err();
    let words = cause.words();
    assert!(
        words.starts_with("Page 1 of ") && words.contains("needs more than 60 s to render"),
        "{words}"
    );
    assert!(words.contains("the fax was not sent"), "{words}");

    // Cancellation is no failure of the sender's: the caller keeps the message.
    let mut c = Limited::new(0, Box::new(|| Some(budget::Interrupt::Cancelled)));
    assert_eq!(
        document::build(
            &raw,
            &document::Options::from(&cfg),
            &opts(),
            &Stamp::default(),
            &mut c
        )
        .unwrap_err(),
        Cause::Interrupted
    );
}

/// `pages` pages of dense text as PostScript: 66 lines of 9.5 pt Times a page, each line
/// about as full as the corpus' text pages (tests/corpus/make-corpus.sh), with a bold heading.
fn text_ps(pages: u32) -> String {
    let words = [
        "agreement",
        "party",
        "delivery",
        "payment",
        "invoice",
        "notice",
        "terms",
        "liability",
        "warranty",
        "confidential",
        "information",
        "rights",
        "termination",
        "breach",
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "for",
        "with",
        "on",
        "by",
        "schedule",
        "clause",
    ];
    let mut ps = String::from("%!PS\n");
    let mut k = 7usize;
    for p in 1..=pages {
        ps += "<< /PageSize [595 842] >> setpagedevice\n";
        ps += &format!(
            "/Helvetica-Bold findfont 14 scalefont setfont 40 800 moveto (Page {p}) show\n"
        );
        ps += "/Times-Roman findfont 9.5 scalefont setfont\n";
        for l in 0..66 {
            let mut line = String::new();
            while line.len() < 110 {
                k = (k * 31 + 17) % 1009;
                line.push_str(words[k % words.len()]);
                line.push(' ');
            }
            ps += &format!("40 {} moveto ({line}) show\n", 780 - l * 11);
        }
        ps += "showpage\n";
    }
    ps
}

/// Ghostscript's pdfwrite on `ps` (the PDF producer most real documents resemble).
fn gs_pdf(dir: &std::path::Path, name: &str, ps_text: &str) -> Vec<u8> {
    let gs = common::require_tool("gs", "ghostscript");
    let ps = dir.join(format!("{name}.ps"));
    std::fs::write(&ps, ps_text).unwrap();
    let out = dir.join(name);
    let st = Command::new(gs)
        .args([
            "-q",
            "-dNOPAUSE",
            "-dBATCH",
            "-dSAFER",
            "-sDEVICE=pdfwrite",
            "-o",
        ])
        .arg(&out)
        .arg(&ps)
        .status()
        .expect("run gs");
    assert!(st.success(), "gs pdfwrite {}", ps.display());
    std::fs::read(&out).unwrap()
}

/// A one-page PDF with a full-page gray photograph (`w × h` JPEG) drawn over the page.
fn photo_pdf(w: u32, h: u32) -> Vec<u8> {
    let px: Vec<u8> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            ((x * 7 + y * 3 + (x * y) % 97) % 256) as u8
        })
        .collect();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode(&px, w, h, image::ExtendedColorType::L8)
        .unwrap();
    let draw = "q 595 0 0 842 0 0 cm /Im0 Do Q";
    let objs = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
           /Resources << /XObject << /Im0 5 0 R >> >> >>"
            .to_vec(),
        stream(draw),
        [
            format!(
                "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace \
                 /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
                jpeg.len()
            )
            .as_bytes(),
            &jpeg,
            b"\nendstream",
        ]
        .concat(),
    ];
    write_pdf(&objs)
}

#[test]
fn render_real_documents_fit_the_default_budget() {
    let corpus = corpus::corpus();
    let dir = tempfile::tempdir().unwrap();
    let mut docs: Vec<(String, Vec<u8>, Kind)> = vec![
        // Dense 9.5 pt text pages through Ghostscript's pdfwrite.
        (
            "3-page text PDF".into(),
            gs_pdf(dir.path(), "text.pdf", &text_ps(3)),
            Kind::Pdf,
        ),
        // A 300 dpi A4 scan as a PDF.
        (
            "A4 photo at 300 dpi".into(),
            photo_pdf(2480, 3508),
            Kind::Pdf,
        ),
    ];
    for f in ["text-fine-mmr.tif", "photo-fine-mmr.tif", "edge-mmr.tif"] {
        let p: PathBuf = corpus.join(f);
        docs.push((f.into(), std::fs::read(&p).unwrap(), Kind::Tiff));
    }
    let mut worst = 0;
    for (name, bytes, kind) in &docs {
        let mut m = Recording::measuring();
        let r = render_part(name, bytes, *kind, &Options::default(), &mut m);
        assert!(r.is_ok(), "{name}: {r:?}");
        let w = m.max_page_work();
        println!(
            "{name}: {} pages, at most {w} work units a page",
            m.work().len()
        );
        worst = worst.max(w);
    }
    // The fixture emails, as the offramp renders them (text, JPEG, PDF, TIFF parts).
    let eml = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml");
    for f in [
        "thunderbird-pdf.eml",
        "outlook-related-logo-jpeg.eml",
        "applemail-inline-image.eml",
        "latin1-quoted-printable.eml",
        "profile-s-tiff.eml",
        "octet-stream-pdf.eml",
    ] {
        let raw = std::fs::read(eml.join(f)).unwrap();
        let mut m = Recording::measuring();
        let cfg = Config::default().offramp;
        document::build(
            &raw,
            &document::Options::from(&cfg),
            &opts(),
            &Stamp::default(),
            &mut m,
        )
        .unwrap_or_else(|c| panic!("{f}: {c}"));
        println!("{f}: at most {} work units a page", m.max_page_work());
        worst = worst.max(m.max_page_work());
    }
    // Room to spare: a real page takes well under a quarter of the default.
    assert!(worst > 0);
    assert!(worst < DEFAULT_PAGE_WORK / 4, "{worst}");
}

/// A committed `Message` job holding `raw`, for one recipient.
fn queued_message(
    raw: &[u8],
) -> (
    tempfile::TempDir,
    faxgate::spool::Spool,
    faxgate::spool::JobId,
) {
    use faxgate::mail::address::{AddressForm, Number};
    use faxgate::mail::dialplan::Destination;
    use faxgate::offramp::jobs::{self, MessageData};
    use faxgate::smtp::session::{ClientInfo, Envelope, Notify, Recipient, Ret};
    use faxgate::spool::{JobKind, NewJob, Spool, SpoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let n = "12125550123";
    let envelope = Envelope {
        mail_from: "alice@example.org".into(),
        size: None,
        body: None,
        ret: Some(Ret::Hdrs),
        envid: None,
        mail_auth: None,
        recipients: vec![Recipient {
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
            orcpt: None,
        }],
        postmaster: Vec::new(),
        client: ClientInfo {
            ip: "127.0.0.1".parse().unwrap(),
            port: 1,
            helo: "h".into(),
            esmtp: true,
        },
        auth_user: None,
        tls: None,
    };
    let mut inc = spool.begin(JobKind::Message).unwrap();
    inc.write_file(jobs::MESSAGE_FILE, raw).unwrap();
    let data = MessageData {
        envelope,
        file: jobs::MESSAGE_FILE.into(),
        size: 0,
        received: "2026-12-03T09:00:00Z".into(),
    };
    let id = inc
        .commit(NewJob::new(JobData::from(data.clone())))
        .unwrap()
        .id;
    (dir, spool, id)
}

#[test]
fn render_split_refuses_the_bomb_with_a_report_and_keeps_a_cancelled_message() {
    use faxgate::offramp::jobs::{self, JobsError, Split};
    use faxgate::spool::Area;
    let raw = message_with_pdf("plan.pdf", &segments_pdf(1, 1_000));
    let mut cfg = Config::default();
    cfg.offramp.render_work_limit = 100_000;

    // Split as the daemon does: the bomb fails the message with one report naming the page.
    let (_d, spool, id) = queued_message(&raw);
    let cancel = Cancel::new();
    let check = |raw: &[u8], o: &SenderOptions| {
        let mut b = for_message(&cfg.offramp, &cancel);
        document::prepare_within(raw, &document::Options::from(&cfg.offramp), o, &mut b)
    };
    let s = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    let Split::Failed { cause, report, .. } = s else {
        panic!("{s:?}")
    };
    assert!(
        matches!(cause, Cause::TooComplex { page: 1, .. }),
        "{cause:?}"
    );
    let rid = report.expect("the sender is told");
    assert_eq!(rid, id.child(Child::Report.number()).unwrap());
    let (_, rec) = spool.get(&rid).unwrap();
    let data = rec.data.as_mail_out().unwrap().clone();
    let mail = std::fs::read(spool.payload_path(&rid, &data.file).unwrap()).unwrap();
    let mail = String::from_utf8_lossy(&mail);
    assert!(mail.contains("too-complex"), "{mail}");
    assert!(mail.contains("5.3.4"), "{mail}");
    assert!(mail.contains("plan.pdf"), "{mail}");
    assert_eq!(spool.get(&id).unwrap().0, Area::Failed);

    // The same split cancelled (the gateway stopping): no report, the message stays queued.
    let (_d2, spool2, id2) = queued_message(&raw);
    let cancelled = Cancel::new();
    cancelled.cancel();
    let check = |raw: &[u8], o: &SenderOptions| {
        let mut b = for_message(&cfg.offramp, &cancelled);
        document::prepare_within(raw, &document::Options::from(&cfg.offramp), o, &mut b)
    };
    let e = jobs::split_message(&spool2, &id2, &cfg, &check, faxgate::spool::now()).unwrap_err();
    assert!(matches!(e, JobsError::Interrupted(_)), "{e:?}");
    assert_eq!(spool2.get(&id2).unwrap().0, Area::Queue);
    assert!(
        spool2
            .get(&id2.child(Child::Report.number()).unwrap())
            .is_err()
    );
}
