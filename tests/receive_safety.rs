//! Nothing received is lost to a write error (issue 18).
//!
//! - `faxgate receive --out DIR` with a DIR that does not exist yet, on the rig (efax sends a
//!   page from the other soft modem): DIR is made before answering, the fax is kept there and
//!   its path printed.
//! - `receive --out` where DIR can never be made (under a file): refused before any call is
//!   answered, saying so.
//! - The daemon's onramp with its Maildir unwritable: the received fax is parked (its mail job
//!   stays queued in the spool, the fax inside), the log says so at error naming the Maildir,
//!   and once the Maildir is fixed `faxgate queue retry` delivers it.
//!
//! Debian packages: iaxmodem, efax, iproute2, util-linux, coreutils (the rig); python3,
//! ghostscript (the daemon test's PDF).

mod common;
#[path = "rig/rig.rs"]
mod rig;

use common::daemon::Daemon;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faxgate::image::{Page, Resolution};

fn profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml")
}

/// A light standard-resolution page: a frame and a few blocks.
fn page() -> Page {
    let mut p = Page::new(1728, 1078, Resolution::STANDARD).unwrap();
    for x in 0..1728 {
        for y in [0, 1, 1076, 1077] {
            p.set(x, y, true);
        }
    }
    for y in 100..300 {
        for x in 200..600 {
            p.set(x, y, true);
        }
    }
    p
}

/// The page as a TIFF G3 file made by efix (efax's converter).
fn efix_page(dir: &Path) -> PathBuf {
    let efix = common::require_tool("efix", "efax");
    let p = page();
    let mut v = format!("P4\n{} {}\n", p.width(), p.height()).into_bytes();
    for y in 0..p.height() {
        v.extend_from_slice(p.row(y));
    }
    let pbm = dir.join("page.pbm");
    std::fs::write(&pbm, v).unwrap();
    let out = dir.join("page.tif");
    let r = Command::new(efix)
        .args([
            "-i", "pbm", "-o", "tiffg3", "-R", "204x98", "-r", "204x98", "-n",
        ])
        .arg(&out)
        .arg(&pbm)
        .output()
        .unwrap();
    assert!(r.status.success(), "efix: {r:?}");
    out
}

fn wait_child(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(s) = c.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

#[test]
fn receive_out_to_a_missing_directory_keeps_the_fax_on_the_rig() {
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let tif = efix_page(w);
    let out_dir = w.join("nonexistent/dir");
    let mut receiver = common::faxgate(w)
        .env("FAXGATE_DATA", w.join("data"))
        .arg("receive")
        .arg("--modem")
        .arg(&line.b)
        .arg("--out")
        .arg(&out_dir)
        .arg("--profile")
        .arg(profile())
        .args(["--local-id", "+1 555 0002", "--wait", "90"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // faxgate's ATZ makes iaxmodem refuse calls for a few seconds.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let efax = common::require_tool("efax", "efax");
    let sender = Command::new(&efax)
        .arg("-d")
        .arg(&line.a)
        .args([
            "-o1",
            "-iZ",
            "-kZ",
            "-l",
            "+1 555 0001",
            "-v",
            "ewinrt",
            "-t",
            "5550002",
        ])
        .arg(&tif)
        .output()
        .unwrap();
    let status = wait_child(&mut receiver, Duration::from_secs(60));
    let out = receiver.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        sender.status.success() && status.is_some_and(|s| s.success()),
        "efax: {}\n{}\nfaxgate: {report}\n{}",
        String::from_utf8_lossy(&sender.stdout),
        String::from_utf8_lossy(&sender.stderr),
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = out_dir.join("fax.tif");
    assert!(
        report.contains(&format!("file: {}", kept.display())),
        "{report}"
    );
    let got = faxgate::image::tiff::read_bytes(&std::fs::read(&kept).unwrap(), Default::default())
        .unwrap();
    assert_eq!(got.len(), 1, "{report}");
    // The page's filled block arrived (efax stamps a header line on top: not compared).
    let want = page();
    let (g, w) = (&got[0], &want);
    let block_rows = (150..250).filter(|y| g.row(*y) == w.row(*y)).count();
    assert!(block_rows > 90, "{block_rows} of 100 block rows equal");
}

#[test]
fn receive_out_that_cannot_be_made_is_refused_before_answering() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("afile"), b"x").unwrap();
    // No modem is touched: the check comes first (a device that is not a modem shows it).
    let out = common::faxgate(w)
        .env("FAXGATE_DATA", w.join("data"))
        .args(["receive", "--modem", "/dev/null", "--wait", "1", "--out"])
        .arg(w.join("afile/dir"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("afile/dir"), "{err}");
    assert!(err.contains("no call was taken"), "{err}");
}

fn is_fax_mail(m: &[u8]) -> bool {
    let s = String::from_utf8_lossy(m);
    s.contains("image/tiff")
}

#[test]
fn onramp_with_an_unwritable_maildir_parks_the_fax_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pdf = common::gs_pdf(
        dir,
        "doc.pdf",
        "/Helvetica findfont 28 scalefont setfont 72 700 moveto (Parked fax) show \
         72 300 200 120 rectfill showpage",
    );
    // The Maildir's parent is a file: no one can create it (not even root).
    let blocker = dir.join("blocked");
    std::fs::write(&blocker, b"x").unwrap();
    let maildir = blocker.join("maildir");
    let mut d = Daemon::new(dir);
    d.start(&[("FAXGATE_RELAY__MAILDIR", maildir.to_str().unwrap())]);
    d.send_pdf(&pdf);
    // The alert: at error, naming the Maildir and the parked job.
    let mut log = String::new();
    for _ in 0..600 {
        log = d.log();
        if log.contains("a received fax could not be delivered") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = log
        .lines()
        .find(|l| l.contains("a received fax could not be delivered"))
        .unwrap_or_else(|| panic!("no alert:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(maildir.to_str().unwrap()), "{line}");
    assert!(line.contains("parked"), "{line}");
    // The fax is in the spool: a queued mail job holding it.
    let list = d.cmd().args(["queue", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    // The fax's mail and the sender's report (same Maildir) both wait, neither dropped.
    let ids: Vec<String> = list
        .lines()
        .filter(|l| l.contains("mail-out") && l.contains("queued"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(!ids.is_empty(), "no queued mail job:\n{list}");
    // Fixed: the Maildir can be made now; a retry delivers the fax.
    std::fs::remove_file(&blocker).unwrap();
    for id in &ids {
        let retry = d.cmd().args(["queue", "retry", id]).output().unwrap();
        assert!(
            retry.status.success(),
            "{}",
            String::from_utf8_lossy(&retry.stderr)
        );
    }
    let dir_new = maildir.join("new");
    for _ in 0..600 {
        let found = std::fs::read_dir(&dir_new)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .any(|e| std::fs::read(e.path()).is_ok_and(|m| is_fax_mail(&m)))
            })
            .unwrap_or(false);
        if found {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the parked fax was never delivered:\n{}", d.log());
}
