//! One client cannot flood the queue faster than `[smtp] max_messages_per_minute`: past its
//! burst, its next MAIL gets `421 4.7.0` and the connection closes (RFC 5321 §3.8), on this
//! connection and on a new one; every message accepted before it is kept; another client
//! (another loopback address) is still served.
//!
//! The gateway has no line to send on (loopback off, no modem), so every fax job made from an
//! accepted message stays queued, where `faxgate queue list` counts it.
//!
//! Debian packages: python3.

use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{self, daemon::Daemon};

/// Messages per minute in this test: burst of 3, then one every 20 s.
const LIMIT: usize = 3;

/// From source address argv[2], sends up to argv[3] messages on one connection to port
/// argv[1]; prints one line per reply that ended a message (`250 …queued as ID` or the
/// refusal), then `closed` if the server hung up after a refusal.
const FLOOD_PY: &str = r#"import smtplib, sys
port, src, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
msg = (b'From: you@example.org\r\nTo: FAX=+12125550123@localhost\r\n'
       b'Subject: flood\r\n\r\none more page\r\n')
s = smtplib.SMTP('127.0.0.1', port, source_address=(src, 0), timeout=120)
s.ehlo('flood.test')
for i in range(n):
    code, resp = s.mail('you@example.org')
    if code == 250:
        code, resp = s.rcpt('FAX=+12125550123@localhost')
    if code == 250:
        code, resp = s.data(msg)
    print(code, resp.decode())
    if code != 250:
        try:
            s.noop()
            print('open')
        except smtplib.SMTPServerDisconnected:
            print('closed')
        break
"#;

fn flood(port: u16, from: &str, n: usize) -> Vec<String> {
    let py = common::require_tool("python3", "python3");
    let out = Command::new(py)
        .args(["-c", FLOOD_PY, &port.to_string(), from, &n.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Outgoing fax jobs queued (one per accepted message, once the daemon has split it).
fn queued(d: &Daemon) -> usize {
    let out = d.cmd().args(["queue", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some("fax-out"))
        .count()
}

/// Waits (bounded: 60 s, the split is slow on a loaded machine) until `want` fax jobs are
/// queued; returns the count last seen.
fn wait_queued(d: &Daemon, want: usize) -> usize {
    let mut n = 0;
    for _ in 0..1200 {
        n = queued(d);
        if n >= want {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    n
}

#[test]
fn ratelimit_one_client_gets_421_past_its_rate_and_keeps_what_was_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[
        ("FAXGATE_LOOPBACK__ENABLED", "false"),
        ("FAXGATE_SMTP__MAX_MESSAGES_PER_MINUTE", &LIMIT.to_string()),
    ]);
    let started = Instant::now();
    let replies = flood(d.port, "127.0.0.1", 10);
    // The bucket refills one message per 20 s: on a slow machine the flood may have earned
    // one more (never 10).
    let earned = (started.elapsed().as_secs() / 20) as usize;
    let accepted: Vec<&String> = replies.iter().filter(|r| r.starts_with("250 ")).collect();
    assert!(
        accepted.len() >= LIMIT && accepted.len() <= LIMIT + earned,
        "{replies:#?}\n{}",
        d.log()
    );
    let n = accepted.len();
    assert!(
        accepted.iter().all(|r| r.contains("queued as")),
        "{replies:#?}"
    );
    assert!(
        replies[n].starts_with("421 4.7.0 ") && replies[n].contains("Too many messages"),
        "{replies:#?}"
    );
    assert_eq!(replies[n + 1], "closed", "{replies:#?}");
    assert_eq!(replies.len(), n + 2, "{replies:#?}");

    // Nothing accepted is lost: one queued fax per 250.
    assert_eq!(wait_queued(&d, n), n, "{}", d.log());

    // A new connection from the same client is refused at MAIL too (one bucket per client).
    let again = flood(d.port, "127.0.0.1", 1);
    let earned = (started.elapsed().as_secs() / 20) as usize;
    if n + 1 > LIMIT + earned {
        assert!(again[0].starts_with("421 4.7.0 "), "{again:#?}");
        assert_eq!(again[1], "closed", "{again:#?}");
    }

    // Another client is served at once.
    let other = flood(d.port, "127.0.0.2", 1);
    assert_eq!(other.len(), 1, "{other:#?}");
    assert!(other[0].starts_with("250 "), "{other:#?}");
    let accepted_again = usize::from(again[0].starts_with("250 "));
    let want = n + accepted_again + 1;
    assert_eq!(wait_queued(&d, want), want, "{}", d.log());
    assert!(d.log().contains("message queued"), "{}", d.log());
}

/// POSTs a one-line text fax to the console's API from 127.0.0.1 with curl; returns the
/// status code and the body.
fn api_send(port: u16, note: &std::path::Path) -> (u16, String) {
    let curl = common::require_tool("curl", "curl");
    let out = Command::new(curl)
        .args([
            "-s",
            "--noproxy",
            "*",
            "-w",
            "\n%{http_code}",
            "-F",
            "to=+12125550123",
        ])
        .arg("-F")
        .arg(format!("file=@{};type=text/plain", note.display()))
        .arg(format!("http://127.0.0.1:{port}/api/v1/faxes"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn ratelimit_a_console_client_gets_429_past_the_same_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let note = tmp.path().join("note.txt");
    std::fs::write(&note, "one more page\n").unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[
        ("FAXGATE_LOOPBACK__ENABLED", "false"),
        ("FAXGATE_SMTP__MAX_MESSAGES_PER_MINUTE", &LIMIT.to_string()),
    ]);
    let started = Instant::now();
    let answers: Vec<(u16, String)> = (0..LIMIT + 3)
        .map(|_| api_send(d.http_port, &note))
        .collect();
    let earned = (started.elapsed().as_secs() / 20) as usize;
    let sent = answers.iter().filter(|(c, _)| *c == 201).count();
    assert!(
        sent >= LIMIT && sent <= LIMIT + earned,
        "{answers:#?}\n{}",
        d.log()
    );
    // Past the rate: 429 with the stable code, and nothing queued for it.
    let (code, body) = &answers[sent];
    assert_eq!(*code, 429, "{answers:#?}");
    assert!(body.contains("\"rate-limit\""), "{body}");
    assert!(
        answers[sent..].iter().all(|(c, _)| *c == 429),
        "{answers:#?}"
    );
    assert_eq!(wait_queued(&d, sent), sent, "{}", d.log());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(queued(&d), sent, "nothing queued past the rate");
    // Mail is counted apart: the same client's SMTP message is still taken.
    let mail = flood(d.port, "127.0.0.1", 1);
    assert!(mail[0].starts_with("250 "), "{mail:#?}");
}
