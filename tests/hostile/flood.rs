//! A flood cannot exhaust the spool: with `[spool] max_queued` jobs waiting, new mail is
//! refused with `452 4.3.1` (RFC 3463 "mail system full": the client keeps it and tries
//! later) until the queue drains — here, until the operator cancels a job with the CLI, which
//! tells the running daemon.
//!
//! The gateway has no line to send on (loopback off, no modem), so every fax job stays queued.
//!
//! Debian packages: python3.

use std::process::Command;

use super::common::{self, daemon::Daemon};

/// Sends one fax mail; prints `250` or the refusing reply's code and text.
const SEND_ONE_PY: &str = r#"import smtplib, sys, email.message as e
m = e.EmailMessage()
m['From'] = 'you@example.org'; m['To'] = 'FAX=+12125550123@localhost'; m['Subject'] = 'flood'
m.set_content('one more page\n')
try:
    smtplib.SMTP('127.0.0.1', int(sys.argv[1])).send_message(m)
    print(250)
except smtplib.SMTPResponseException as x:
    print(x.smtp_code, x.smtp_error.decode())
"#;

fn send_one(port: u16) -> String {
    let py = common::require_tool("python3", "python3");
    let out = Command::new(py)
        .args(["-c", SEND_ONE_PY, &port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn queued_ids(d: &Daemon) -> Vec<String> {
    let out = d.cmd().args(["queue", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn flood_stops_at_the_high_water_mark_with_452_and_resumes_when_the_queue_drains() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[
        ("FAXGATE_LOOPBACK__ENABLED", "false"),
        ("FAXGATE_SPOOL__MAX_QUEUED", "3"),
    ]);
    let mut replies = Vec::new();
    for _ in 0..8 {
        let r = send_one(d.port);
        let refused = r != "250";
        replies.push(r);
        if refused {
            break;
        }
    }
    let last = replies.last().unwrap();
    assert!(
        last.starts_with("452 4.3.1"),
        "expected a 452 4.3.1 refusal, got {replies:?}\n{}",
        d.log()
    );
    assert!(replies.len() <= 4, "{replies:?}");
    let ids = queued_ids(&d);
    assert!(ids.len() <= 3, "the queue stays at the mark: {ids:?}");

    // The operator cancels one queued fax; the daemon hears of it and accepts mail again.
    let out = d.cmd().args(["queue", "cancel", &ids[0]]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut again = String::new();
    for _ in 0..50 {
        again = send_one(d.port);
        if again == "250" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(again, "250", "{}", d.log());
    assert!(d.signal(libc::SIGTERM).success());
}
