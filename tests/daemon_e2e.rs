//! `faxgate run` end to end, out of the box: the embedded default (no config file, no modem,
//! no mail server) with only `FAXGATE_DATA` and the SMTP port set.
//!
//! - An email with a PDF to `FAX=+12125550123@localhost`, sent the way README shows (Python
//!   smtplib, `NOTIFY=SUCCESS`), comes back in the Maildir as a fax email whose TIFF pixels
//!   equal the rendered PDF (below the header line, which carries the time of sending), plus
//!   one success report (RFC 3464 DSN). libtiff (`tiffinfo -D`) decodes the TIFF too.
//! - `faxgate status` shows the loopback line sending and the queue while a (paced) call runs.
//! - SIGKILL in the middle of that call: after a restart the job is retried, completes, and
//!   exactly one success report goes out. SIGTERM stops the daemon with exit status 0.
//!
//! Debian packages: python3, ghostscript (the test PDF), libtiff-tools (`tiffinfo`).

mod common;

use common::daemon::Daemon;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use faxgate::config::Config;
use faxgate::image::Page;
use faxgate::image::render::{self, Kind, Options};
use mail_parser::{MessageParser, MimeHeaders};

fn make_pdf(dir: &Path) -> PathBuf {
    let ps = "/Helvetica findfont 28 scalefont setfont 72 700 moveto (Purchase order 4711) show \
              72 640 moveto (12 boxes of fax paper) show 72 300 200 120 rectfill \
              0.5 setgray 320 300 200 120 rectfill showpage";
    common::gs_pdf(dir, "doc.pdf", ps)
}

fn is_fax_mail(m: &[u8]) -> bool {
    let p = MessageParser::default().parse(m).unwrap();
    p.attachments().any(|a| {
        a.content_type()
            .is_some_and(|c| c.c_type == "image" && c.subtype() == Some("tiff"))
    })
}

fn is_report(m: &[u8]) -> bool {
    let p = MessageParser::default().parse(m).unwrap();
    p.content_type()
        .is_some_and(|c| c.c_type == "multipart" && c.subtype() == Some("report"))
}

fn tiff_of(m: &[u8]) -> Vec<u8> {
    let p = MessageParser::default().parse(m).unwrap();
    let a = p
        .attachments()
        .find(|a| {
            a.content_type()
                .is_some_and(|c| c.subtype() == Some("tiff"))
        })
        .unwrap();
    a.contents().to_vec()
}

/// The PDF rendered the way the offramp renders it by default.
fn rendered(pdf: &Path) -> Vec<Page> {
    let opts = Options::from_config(&Config::default().offramp);
    render::render_part(
        "doc.pdf",
        &std::fs::read(pdf).unwrap(),
        Kind::Pdf,
        &opts,
        &mut render::Unlimited,
    )
    .unwrap()
    .pages
}

#[test]
fn pdf_mail_comes_back_as_a_fax_email_with_a_success_report() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = make_pdf(tmp.path());
    let mut d = Daemon::new(tmp.path());
    d.start(&[]);
    d.send_pdf(&pdf);
    let mails = d.wait_mail("the fax email and the report", |m| {
        m.iter().any(|x| is_fax_mail(x)) && m.iter().any(|x| is_report(x))
    });

    // The fax email: its TIFF is what the far end received over T.30.
    let fax = mails.iter().find(|m| is_fax_mail(m)).unwrap();
    let text = String::from_utf8_lossy(fax);
    assert!(text.contains("fax@localhost"), "{text}");
    let tiff = tiff_of(fax);
    let tif_path = tmp.path().join("fax.tif");
    std::fs::write(&tif_path, &tiff).unwrap();
    let tiffinfo = common::require_tool("tiffinfo", "libtiff-tools");
    let out = Command::new(tiffinfo)
        .arg("-D")
        .arg(&tif_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "libtiff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("rror"),
        "libtiff: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let got = faxgate::image::tiff::read_bytes(&tiff, Default::default()).unwrap();
    let want = rendered(&pdf);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g.width(), g.height()), (w.width(), w.height()));
        assert_eq!(g.resolution(), w.resolution());
        let band = render::header::band_rows(&render::Layout {
            res: w.resolution(),
            paper: render::Paper::A4,
        });
        for y in band..w.height() {
            assert_eq!(g.row(y), w.row(y), "row {y} differs");
        }
        assert!(w.black_pixels() > 10_000, "the test PDF rendered blank");
        // The header line was printed in the band.
        assert!((0..band).any(|y| g.row(y).iter().any(|b| *b != 0)));
    }

    // Exactly one report, a success DSN to the sender.
    let reports: Vec<_> = mails.iter().filter(|m| is_report(m)).collect();
    assert_eq!(reports.len(), 1);
    let r = String::from_utf8_lossy(reports[0]);
    assert!(r.contains("Action: delivered"), "{r}");
    assert!(r.contains("you@example.org"), "{r}");

    // Status while running: the line and the finished jobs.
    let s = d.status(false);
    assert!(s.contains("faxgate: running"), "{s}");
    assert!(s.contains("loopback") && s.contains("idle"), "{s}");
    assert!(s.contains("fax-out") && s.contains("done"), "{s}");

    // SIGTERM: clean stop, exit 0; status then reads the spool.
    let st = d.signal(libc::SIGTERM);
    assert!(st.success(), "exit status {st:?}\n{}", d.log());
    let s = d.status(false);
    assert!(s.contains("not running"), "{s}");
    // The spool remembers the line's last call.
    assert!(
        s.contains("last call: ") && s.contains("out +12125550123"),
        "{s}"
    );
}

#[test]
fn sigkill_mid_call_then_restart_sends_once_and_reports_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = make_pdf(tmp.path());
    let mut d = Daemon::new(tmp.path());
    // A paced line: the call takes half its real line time (several seconds), long enough to
    // watch it and to kill the daemon in the middle of it.
    d.start(&[("FAXGATE_LOOPBACK__PACE", "0.5")]);
    d.send_pdf(&pdf);

    let mut job = None;
    for _ in 0..400 {
        let s: serde_json::Value = serde_json::from_str(&d.status(true)).unwrap();
        let line = &s["modems"][0];
        if line["state"] == "sending" {
            assert_eq!(line["name"], "loopback");
            assert_eq!(s["live"], true);
            assert_eq!(s["queue"]["fax-out"]["running"], 1, "{s}");
            job = line["job"].as_str().map(str::to_string);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let job = job.unwrap_or_else(|| panic!("never saw the line sending:\n{}", d.log()));
    let text = d.status(false);
    assert!(text.contains("sending") && text.contains(&job), "{text}");

    let st = d.signal(libc::SIGKILL);
    assert!(!st.success());
    assert!(
        d.mails().is_empty(),
        "nothing may be delivered before the call ended"
    );

    // Restart at full speed: the interrupted attempt is closed, the fax is sent again.
    d.start(&[]);
    let mails = d.wait_mail("the fax email and the report", |m| {
        m.iter().any(|x| is_fax_mail(x)) && m.iter().any(|x| is_report(x))
    });
    // Let the daemon settle: nothing left in the queue.
    for _ in 0..200 {
        let s: serde_json::Value = serde_json::from_str(&d.status(true)).unwrap();
        if s["queue"].as_object().is_some_and(|q| q.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mails = {
        let again = d.mails();
        assert!(again.len() >= mails.len());
        again
    };
    assert_eq!(
        mails.iter().filter(|m| is_report(m)).count(),
        1,
        "{}",
        d.log()
    );
    assert_eq!(mails.iter().filter(|m| is_fax_mail(m)).count(), 1);

    // The job's record shows the interrupted attempt and the successful one.
    let st = d.signal(libc::SIGTERM);
    assert!(st.success());
    let out = d.cmd().args(["queue", "show", &job]).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("interrupted"), "{shown}");
    assert!(shown.contains("done"), "{shown}");
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut d = Daemon::new(tmp.path());
    let notify = sock_path.to_string_lossy().into_owned();
    // WATCHDOG_PID is left unset: sd_watchdog_enabled(3) then applies to any process.
    d.start(&[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "400000")]);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let have = |seen: &str| {
        seen.contains("READY=1")
            && seen.contains("STATUS=1 modem idle, 0 jobs queued")
            && seen.contains("WATCHDOG=1")
    };
    for _ in 0..100 {
        if have(&seen) {
            break;
        }
        let n = sock.recv(&mut buf).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(have(&seen), "{seen}");
    let st = d.signal(libc::SIGTERM);
    assert!(st.success());
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while let Ok(n) = sock.recv(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(seen.contains("STOPPING=1"), "{seen}");
}

/// Whole pages in the reception files the daemon has in `receiving/` (the TIFF reader follows
/// only linked pages, as recovery does).
fn pages_on_disk(data: &Path) -> usize {
    let dir = data.join("spool").join("receiving");
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(bytes) = std::fs::read(e.path().join("fax.part.tif")) else {
            continue;
        };
        let Ok(mut r) = faxgate::image::tiff::Reader::new(
            std::io::Cursor::new(bytes),
            faxgate::image::tiff::Limits::default(),
        ) else {
            continue;
        };
        while let Ok(Some(_)) = r.next_page() {
            n += 1;
        }
    }
    n
}

fn text_of(m: &[u8]) -> String {
    let p = MessageParser::default().parse(m).unwrap();
    p.body_text(0).map(|t| t.into_owned()).unwrap_or_default()
}

/// Issue 15: each received page is on disk once its MCF is sent. SIGKILL in the middle of
/// receiving a 10-page fax on the (paced) loopback line: after the restart exactly one email
/// carries the confirmed pages with a partial-fax notice; the sender's side is retried and
/// the whole fax arrives too, with one report.
#[test]
fn sigkill_mid_reception_delivers_the_confirmed_pages_once_as_a_partial_fax() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = common::pages_pdf(tmp.path(), 10);
    let mut d = Daemon::new(tmp.path());
    d.start(&[("FAXGATE_LOOPBACK__PACE", "0.3")]);
    d.send_pdf(&pdf);

    let seen = (0..1200).any(|_| {
        let n = pages_on_disk(&d.data());
        if n < 2 {
            std::thread::sleep(Duration::from_millis(50));
        }
        n >= 2
    });
    assert!(seen, "never saw two pages on disk:\n{}", d.log());
    assert!(!d.signal(libc::SIGKILL).success());
    let kept = pages_on_disk(&d.data());
    assert!((2..10).contains(&kept), "{kept} pages on disk at the kill");
    assert!(d.mails().is_empty(), "nothing delivered before the kill");

    d.start(&[]);
    let mails = d.wait_mail("the partial fax, the whole fax and the report", |m| {
        m.iter().filter(|x| is_fax_mail(x)).count() == 2 && m.iter().any(|x| is_report(x))
    });
    let faxes: Vec<&Vec<u8>> = mails.iter().filter(|m| is_fax_mail(m)).collect();
    let pages = |m: &[u8]| {
        faxgate::image::tiff::read_bytes(&tiff_of(m), faxgate::image::tiff::Limits::default())
            .unwrap()
            .len()
    };
    let partial: Vec<_> = faxes
        .iter()
        .filter(|m| text_of(m).contains("partial reception"))
        .collect();
    assert_eq!(partial.len(), 1, "exactly one partial fax:\n{}", d.log());
    assert_eq!(
        pages(partial[0]),
        kept,
        "the partial fax holds the confirmed pages"
    );
    let text = text_of(partial[0]);
    assert!(
        text.contains("the call broke off after page") && text.contains("crash or power cut"),
        "{text}"
    );
    let whole: Vec<_> = faxes.iter().filter(|m| pages(m) == 10).collect();
    assert_eq!(whole.len(), 1, "the retried call delivers all 10 pages");
    assert_eq!(mails.iter().filter(|m| is_report(m)).count(), 1);
    assert!(d.signal(libc::SIGTERM).success());
    assert_eq!(pages_on_disk(&d.data()), 0, "nothing left in receiving/");
}
