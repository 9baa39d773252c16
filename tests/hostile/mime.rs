//! MIME structure attacks (issue 21): a message whose tree mail-parser would build too deep or
//! too wide is refused from its raw octets, before the parser builds anything.
//!
//! - `message/rfc822` nested 30 000 deep (1 MB) used to overflow the stack when the parsed
//!   message was dropped, aborting the daemon on every restart;
//! - 3.6 million empty MIME parts (18 MB) used to cost ~730 MB before the 200-part limit;
//! - the same through a digest, a base64-encoded `message/rfc822`, a header-field flood and
//!   boundaries that never occur.
//!
//! Each case runs `offramp::mime::extract` in a thread with a 256 KiB stack (a recursion per
//! level could not survive it) and `faxgate offramp-check` as a child process whose peak RSS
//! (`wait4(2)` `ru_maxrss`) must stay under 256 MB. That figure is an upper bound: the child is
//! spawned by vfork, so it also counts the test process's own RSS at the time (measured
//! alone with `/usr/bin/time`: 26 MB nested, 43 MB parts, 59 MB header flood). The end-to-end test sends the attacks to the
//! real daemon over SMTP on loopback: the sender gets a failure report and the daemon lives on.
//!
//! Debian packages: python3 (smtplib, the SMTP client of the end-to-end test).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use faxgate::config::Config;
use faxgate::offramp::mime::{self, Limits, MimeError, Policy};

use crate::common;

/// The ceiling the issue sets for the daemon's memory throughout the hostile-input target.
const MAX_RSS_KB: i64 = 256 * 1024;

const HEAD: &str = "From: mallory@example.org\r\nTo: FAX=+12125550123@localhost\r\n";

fn policy() -> Policy {
    Policy::from_config(&Config::default().offramp)
}

/// `message/rfc822` nested `levels` deep: each level is nothing but its header section.
fn nested_rfc822(levels: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: nested\r\nMIME-Version: 1.0\r\n").into_bytes();
    for _ in 0..levels {
        m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    m.extend_from_slice(b"Subject: innermost\r\n\r\nhello\r\n");
    m
}

/// A `multipart/mixed` of `n` empty parts (`--B` EOL EOL each).
fn empty_parts(n: usize, eol: &str) -> Vec<u8> {
    let mut m = format!(
        "{HEAD}Subject: parts\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
    )
    .into_bytes();
    let part = format!("--B{eol}{eol}");
    m.reserve(part.len() * n + 8);
    for _ in 0..n {
        m.extend_from_slice(part.as_bytes());
    }
    m.extend_from_slice(b"--B--\r\n");
    m
}

/// Runs `f` in a thread with a 256 KiB stack: the walk must not recurse per level.
fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the MIME walk died in a 256 KiB stack")
}

/// `faxgate offramp-check FILE` as a child: its exit code, its output and its peak RSS in KiB.
///
/// The peak comes from GNU time, not from our own wait4(2): Linux carries the high-water RSS of
/// the memory image a process had before exec(2) into its `ru_maxrss`, so a checker forked
/// straight from this test binary (hundreds of MiB while the other hostile tests run beside it)
/// would report the test's size, not its own. `time` is small, so its child's figure is the
/// checker's.
fn offramp_check(dir: &Path, eml: &[u8]) -> (i32, String, i64) {
    const MARK: &str = "offramp-check-peak-kib ";
    let time = common::require_tool("time", "time");
    let file = dir.join("attack.eml");
    std::fs::write(&file, eml).unwrap();
    let fg = common::faxgate(dir);
    let mut cmd = Command::new(time);
    cmd.arg("-f")
        .arg(format!("{MARK}%M"))
        .arg(fg.get_program())
        .arg("offramp-check")
        .arg(&file)
        .current_dir(dir)
        .env("FAXGATE_DATA", dir.join("data"))
        .stdin(Stdio::null());
    for (k, v) in fg.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let peak = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(MARK)?.trim().parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no peak from time(1):\n{err}"));
    // GNU time exits with its child's status, or 128+N when a signal N ended it.
    let code = out.status.code().expect("time(1) itself was killed");
    assert!(code < 128, "offramp-check died (status {code}):\n{err}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &err;
    (code, text, peak)
}

/// The attack through `offramp-check`: refused as the sender would be told, in bounded memory.
fn assert_refused_by_cli(eml: &[u8], words: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, peak_kb) = offramp_check(tmp.path(), eml);
    eprintln!(
        "offramp-check on {} octets ({words}): peak RSS {peak_kb} KiB",
        eml.len()
    );
    assert_eq!(code, 1, "offramp-check must report a failure:\n{out}");
    assert!(out.contains(words), "expected {words:?} in:\n{out}");
    assert!(
        peak_kb < MAX_RSS_KB,
        "offramp-check peaked at {peak_kb} KiB for a {} octet message",
        eml.len()
    );
}

#[test]
fn mime_nested_rfc822_30000_deep_is_refused_without_deep_recursion() {
    let m = nested_rfc822(30_000);
    assert!(m.len() > 900_000 && m.len() < 1_100_000, "{}", m.len());
    let shared = std::sync::Arc::new(m);
    let m2 = shared.clone();
    let (r, subject) = small_stack(move || {
        let r = mime::extract(&m2, &policy());
        (r, mime::headers(&m2).subject)
    });
    assert_eq!(r, Err(MimeError::TooDeep(Limits::default().max_depth)));
    // The report still quotes the subject.
    assert_eq!(subject.as_deref(), Some("nested"));
    assert_refused_by_cli(&shared, "deeper than 16 levels");
}

#[test]
fn mime_digest_entries_nested_deep_are_refused() {
    // RFC 2046 §5.1.5: a digest entry without Content-Type is a message/rfc822, so digests
    // nest messages without naming them.
    let mut m = format!("{HEAD}Subject: digest\r\nMIME-Version: 1.0\r\n").into_bytes();
    for i in 0..20_000 {
        m.extend_from_slice(
            format!("Content-Type: multipart/digest; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n\r\n")
                .as_bytes(),
        );
    }
    let r = small_stack(move || mime::extract(&m, &policy()));
    assert_eq!(r, Err(MimeError::TooDeep(16)));
}

#[test]
fn mime_3_6_million_empty_parts_are_refused_in_bounded_memory() {
    let m = empty_parts(3_600_000, "\n");
    assert!(m.len() > 17_000_000, "{}", m.len());
    let shared = std::sync::Arc::new(m);
    let m2 = shared.clone();
    let r = small_stack(move || mime::extract(&m2, &policy()));
    assert_eq!(r, Err(MimeError::TooManyParts(200)));
    assert_refused_by_cli(&shared, "more than 200 MIME parts");
}

#[test]
fn mime_parts_inside_an_encoded_message_are_counted() {
    // mail-parser decodes a base64 message/rfc822 and parses it again: its parts count too.
    let inner = empty_parts(500_000, "\r\n");
    let enc = base64::engine::general_purpose::STANDARD.encode(&inner);
    let mut m = format!(
        "{HEAD}Subject: wrapped\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"O\"\r\n\r\n--O\r\n\
         Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in enc.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--O--\r\n");
    let r = small_stack(move || mime::extract(&m, &policy()));
    assert_eq!(r, Err(MimeError::TooManyParts(200)));
}

#[test]
fn mime_header_field_flood_is_refused() {
    // 3 octets a field, ~130 octets each in mail-parser: 8 million fields in 24 MB.
    let mut m = format!("{HEAD}Subject: flood\r\n").into_bytes();
    for _ in 0..8_000_000 {
        m.extend_from_slice(b"a:\n");
    }
    m.extend_from_slice(b"\nbody\n");
    let shared = std::sync::Arc::new(m);
    let m2 = shared.clone();
    let (r, subject) =
        small_stack(move || (mime::extract(&m2, &policy()), mime::headers(&m2).subject));
    assert_eq!(
        r,
        Err(MimeError::HeaderTooLong(Limits::default().max_header_bytes))
    );
    assert_eq!(subject.as_deref(), Some("flood"));
    assert_refused_by_cli(&shared, "header sections are longer than");

    // Fields spread over many small parts: the total is what counts.
    let mut m =
        format!("{HEAD}Subject: spread\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n")
            .into_bytes();
    for _ in 0..100 {
        m.extend_from_slice(b"--B\r\n");
        for _ in 0..60 {
            m.extend_from_slice(b"X-A: b\r\n");
        }
        m.extend_from_slice(b"\r\nx\r\n");
    }
    m.extend_from_slice(b"--B--\r\n");
    assert_eq!(
        mime::extract(&m, &policy()),
        Err(MimeError::TooManyHeaderFields(
            Limits::default().max_header_fields
        ))
    );
}

#[test]
fn mime_boundaries_that_never_occur_cannot_make_the_walk_quadratic() {
    // Each multipart whose boundary is missing makes the parser search the rest of the
    // message; 150 of them over 20 MB would be 3 GB of searching.
    let mut m =
        format!("{HEAD}Subject: rescans\r\nContent-Type: multipart/mixed; boundary=\"O\"\r\n\r\n")
            .into_bytes();
    for i in 0..150 {
        m.extend_from_slice(
            format!("--O\r\nContent-Type: multipart/mixed; boundary=\"never{i}\"\r\n\r\nx\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(&b"y".repeat(20_000_000));
    let r = mime::extract(&m, &policy());
    assert_eq!(r, Err(MimeError::BrokenBoundaries(16)));
}

#[test]
fn mime_real_messages_still_pass_the_guard() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "eml") {
            let raw = std::fs::read(&p).unwrap();
            let shape = faxgate::offramp::mime_guard::check(&raw, &Limits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(shape.parts >= 1 && shape.header_fields >= 3, "{shape:?}");
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} fixtures");
}

// ---- end to end: the real daemon on loopback ----

const SEND_PY: &str = "import smtplib, sys
raw = open(sys.argv[2], 'rb').read()
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=300)
s.sendmail('mallory@example.org', ['FAX=+12125550123@localhost'], raw, rcpt_options=['NOTIFY=FAILURE'])
s.quit()
";

struct Daemon {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Daemon {
    fn data(&self) -> PathBuf {
        self.dir.join("faxgate-data")
    }

    fn start(dir: &Path) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut d = Daemon {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        let log = std::fs::File::create(dir.join("run.log")).unwrap();
        let child = common::faxgate(dir)
            .env("FAXGATE_DATA", d.data())
            .env("FAXGATE_SMTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("FAXGATE_LOG__FILTER", "info")
            .arg("run")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        d.child = Some(child);
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && d.data().join("control.sock").exists()
            {
                return d;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("faxgate run did not come up:\n{}", d.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    fn send(&self, eml: &[u8], name: &str) {
        let py = common::require_tool("python3", "python3");
        let f = self.dir.join(name);
        std::fs::write(&f, eml).unwrap();
        let out = Command::new(py)
            .args(["-c", SEND_PY, &self.port.to_string()])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "send failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn mails(&self) -> Vec<String> {
        let dir = self.data().join("maildir").join("new");
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v.iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect()
    }

    /// The daemon's peak RSS so far (`VmHWM`), KiB.
    fn peak_kb(&self) -> i64 {
        let pid = self.child.as_ref().unwrap().id();
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    fn alive(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn mime_attacks_over_smtp_get_failure_reports_and_the_daemon_lives_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(tmp.path());
    d.send(&nested_rfc822(30_000), "nested.eml");
    d.send(&empty_parts(1_000_000, "\r\n"), "parts.eml");
    let wanted = ["deeper than 16 levels", "more than 200 MIME parts"];
    let mut mails = Vec::new();
    for _ in 0..1200 {
        mails = d.mails();
        if wanted.iter().all(|w| mails.iter().any(|m| m.contains(w))) {
            break;
        }
        assert!(d.alive(), "the daemon died:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    for w in wanted {
        let report = mails
            .iter()
            .find(|m| m.contains(w))
            .unwrap_or_else(|| panic!("no failure report saying {w:?}:\n{}", d.log()));
        assert!(report.contains("Action: failed"), "{report}");
        assert!(report.contains("mallory@example.org"), "{report}");
        assert!(report.contains("multipart/report"), "{report}");
    }
    assert_eq!(mails.len(), 2, "exactly the two reports");
    assert!(d.alive(), "the daemon died:\n{}", d.log());
    let peak = d.peak_kb();
    eprintln!("daemon peak RSS (VmHWM) after both attacks: {peak} KiB");
    assert!(peak < MAX_RSS_KB, "daemon peaked at {peak} KiB");
    // Still serving: the status command reaches it over its control socket.
    let out = common::faxgate(tmp.path())
        .env("FAXGATE_DATA", d.data())
        .arg("status")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("faxgate: running"), "{s}");
}
