//! The console in a real browser (issue 16's acceptance): headless Chromium driven by Selenium
//! (`tests/fixtures/console/browser.py`) logs in, sends a PDF from the send page, watches the
//! dashboard show the call in progress and the job done on the loopback line (paced so that a
//! person could watch it), opens the job and sees page thumbnails, opens the received fax and
//! downloads its PDF. Screenshots of every step are kept in `target/tmp/console-browser/`.
//!
//! Debian packages: chromium, chromium-driver, python3-selenium (Debian's /usr/bin/python3),
//! ghostscript (the test PDF), poppler-utils (pdfinfo checks the download).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::daemon::Daemon;

/// Debian's python3, which has python3-selenium (the pyenv `python3` on PATH may not).
const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/console/browser.py"
);
const ARTIFACTS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/console-browser");

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

/// A users-file line for `user` with `role`, hashed by `faxgate hash-password`.
fn user_line(d: &Daemon, user: &str, password: &str, role: &str) -> String {
    let mut c = d
        .cmd()
        .args(["hash-password", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{password}").unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("{}:{role}", String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn a_person_logs_in_sends_a_pdf_watches_the_call_and_downloads_the_received_fax() {
    require_browser();
    let d = tempfile::tempdir().unwrap();
    let mut gw = Daemon::new(d.path());
    let users = d.path().join("console-users");
    std::fs::write(
        &users,
        user_line(&gw, "ann", "correct horse", "admin") + "\n",
    )
    .unwrap();
    let pdf = common::gs_pdf(
        d.path(),
        "order.pdf",
        "/Helvetica findfont 28 scalefont setfont 72 700 moveto (Purchase order 4711) show \
         72 640 moveto (sent from the console) show 72 300 200 120 rectfill showpage",
    );
    gw.start(&[
        ("FAXGATE_HTTP__USERS_FILE", users.to_str().unwrap()),
        // A tenth of real line time: a one-page call lasts seconds, long enough to watch.
        ("FAXGATE_LOOPBACK__PACE", "0.1"),
    ]);
    let _ = std::fs::remove_dir_all(ARTIFACTS);
    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let out = Command::new(PYTHON)
        .arg(SCRIPT)
        .args([&base, "ann", "correct horse"])
        .arg(&pdf)
        .args(["+12125550123", ARTIFACTS])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "browser run failed (screenshots in {ARTIFACTS}):\n{said}\n--- daemon log:\n{}",
        gw.log()
    );
    let ok = said
        .lines()
        .find(|l| l.starts_with("OK "))
        .expect("OK line");
    let download = ok.rsplit(' ').next().unwrap();
    let pdfinfo = common::require_tool("pdfinfo", "poppler-utils");
    let info = Command::new(pdfinfo).arg(download).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(str::trim);
    assert_eq!(pages, Some("1"), "{info}");
    // The screenshots a person would look at.
    let shots = std::fs::read_dir(ARTIFACTS)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert!(shots >= 8, "{shots} screenshots");
    // The daemon logged the login and the send under the user's name.
    let status = gw.signal(libc::SIGTERM);
    assert!(status.success(), "{}", gw.log());
    assert!(gw.log().contains("console login"), "{}", gw.log());
}
