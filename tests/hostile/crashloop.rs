//! One message must never crash-loop the daemon: the process dies (SIGKILL, as the kernel's OOM
//! killer or a stack overflow would end it) while a message is being split into fax jobs; on
//! restart the message is quarantined — not parsed or rendered again — and the sender gets a
//! failure report that says so. The daemon then keeps serving.
//!
//! The message is a PDF whose one page holds two million line segments (an 88 KB "render bomb"
//! once compressed), so the split is still rendering when the kill comes.
//!
//! Debian packages: python3.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::common::{self, daemon::Daemon};

/// Builds the render-bomb PDF (FlateDecode content stream of `segments` line segments) and
/// sends it to `FAX=+12125550123@localhost` from `you@example.org` (failure reports only).
const SEND_BOMB_PY: &str = r#"import smtplib, sys, zlib, email.message as e
n = int(sys.argv[2])
content = zlib.compress(b"0.1 w\n" + b"72 72 m 523 770 l\n" * n + b"S\n", 9)
objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream"]
pdf = bytearray(b"%PDF-1.4\n")
offs = []
for i, o in enumerate(objs):
    offs.append(len(pdf))
    pdf += b"%d 0 obj\n" % (i + 1) + o + b"\nendobj\n"
xref = len(pdf)
pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    pdf += b"%010d 00000 n \n" % o
pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
m = e.EmailMessage()
m['From'] = 'you@example.org'; m['To'] = 'FAX=+12125550123@localhost'; m['Subject'] = 'bomb'
m.add_attachment(bytes(pdf), 'application', 'pdf', filename='bomb.pdf')
smtplib.SMTP('127.0.0.1', int(sys.argv[1])).send_message(m)
"#;

/// The spool's queued records whose text contains every one of `needles`.
fn queued_with(data: &Path, needles: &[&str]) -> usize {
    let queue = data.join("spool").join("queue");
    let mut n = 0;
    for bucket in std::fs::read_dir(&queue).into_iter().flatten().flatten() {
        for job in std::fs::read_dir(bucket.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let rec = std::fs::read_to_string(job.path().join("job.json")).unwrap_or_default();
            if needles.iter().all(|w| rec.contains(w)) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn crashloop_message_that_kills_the_split_is_quarantined_with_a_report() {
    let py = common::require_tool("python3", "python3");
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[]);
    let out = Command::new(py)
        .args(["-c", SEND_BOMB_PY, &d.port.to_string(), "2000000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Kill the daemon while the message's split attempt is open (state running).
    let running = (0..1500).any(|_| {
        let hit = queued_with(
            &d.data(),
            &["\"kind\": \"message\"", "\"state\": \"running\""],
        );
        if hit == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        hit == 1
    });
    assert!(running, "the split never started:\n{}", d.log());
    d.signal(libc::SIGKILL);

    // Restart: the message is quarantined at once, never split again, and reported.
    d.start(&[]);
    let mails = d.wait_mail("the quarantine report", |m| !m.is_empty());
    let report = String::from_utf8_lossy(&mails[0]).into_owned();
    assert!(report.contains("To: you@example.org"), "{report}");
    assert!(report.contains("multipart/report"), "{report}");
    assert!(report.contains("Status: 5.6.0"), "{report}");
    assert!(
        report.contains("set aside for the administrator"),
        "{report}"
    );
    assert!(d.log().contains("message quarantined"), "{}", d.log());
    assert_eq!(queued_with(&d.data(), &["\"kind\": \"message\""]), 0);
    // It waits in failed/ for the operator, and the daemon is still up and serving.
    let status = d.status(false);
    assert!(!status.is_empty());
    assert_eq!(d.signal(libc::SIGTERM).code(), Some(0), "{}", d.log());
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(d.mails().len(), 1, "exactly one report");
}
