//! Per-route and per-retry fax options (issue 17) end to end, on the loopback line of
//! `faxgate run` (the embedded defaults, plus a config file with only the keys under test):
//!
//! - a `[[fax_route]]` for the destination forces `ecm = false` and `max_speed = 9600`: the
//!   call goes at 9600 bit/s without ECM, as the job's figures (`faxgate queue show`) and the
//!   far end's email say, and the attempt keeps the options with the route that set them;
//! - `[fax_options] disable_ecm_after_retry = 1`: the first attempt (ECM on) is hung up by a
//!   stop in the middle of its paced call, and the second, after the restart, goes without ECM,
//!   with the reason in the attempt and in the log.
//!
//! Debian packages: python3, ghostscript (the test PDF).

mod common;

use common::daemon::Daemon;

use std::path::Path;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};

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

fn text_of(m: &[u8]) -> String {
    let p = MessageParser::default().parse(m).unwrap();
    p.body_text(0).map(|t| t.into_owned()).unwrap_or_default()
}

/// The config file the daemon reads through `FAXGATE_CONFIG` (the rest stays default).
fn config(dir: &Path, toml: &str) -> String {
    let p = dir.join("faxgate.toml");
    std::fs::write(&p, toml).unwrap();
    p.to_string_lossy().into_owned()
}

/// `faxgate queue show ID`: the job's record (the JSON after the `#` lines).
fn record(d: &Daemon, id: &str, cfg: &str) -> serde_json::Value {
    let out = d
        .cmd()
        .env("FAXGATE_CONFIG", cfg)
        .args(["queue", "show", id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let json: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The one fax-out job of the spool (from `faxgate queue list --all`).
fn fax_job(d: &Daemon, cfg: &str) -> String {
    let out = d
        .cmd()
        .env("FAXGATE_CONFIG", cfg)
        .args(["queue", "list", "--all"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let jobs: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("fax-out"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(jobs.len(), 1, "{text}");
    jobs[0].to_string()
}

/// Waits (bounded) until the queue is empty.
fn settle(d: &Daemon) {
    for _ in 0..200 {
        let s: serde_json::Value = serde_json::from_str(&d.status(true)).unwrap();
        if s["queue"].as_object().is_some_and(|q| q.is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the queue never emptied:\n{}", d.log());
}

#[test]
fn fax_route_forces_no_ecm_and_9600_on_the_loopback_line() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = common::pages_pdf(tmp.path(), 2);
    let cfg = config(
        tmp.path(),
        "[[fax_route]]\nname = 'old-machines'\nnumbers = ['+1212555XXXX']\n\
         ecm = false\nmax_speed = 9600\n\n\
         [[fax_route]]\nname = 'never-reached'\nnumbers = ['+1*']\necm = true\n",
    );
    let mut d = Daemon::new(tmp.path());
    d.start(&[("FAXGATE_CONFIG", &cfg)]);
    d.send_pdf(&pdf);
    let mails = d.wait_mail("the fax email and the report", |m| {
        m.iter().any(|x| is_fax_mail(x)) && m.iter().any(|x| is_report(x))
    });
    settle(&d);
    // The far end saw the speed too (the onramp's `Speed:` line).
    let fax = mails.iter().find(|m| is_fax_mail(m)).unwrap();
    let text = text_of(fax);
    assert!(text.contains("Speed: 9600"), "{text}");
    assert!(d.signal(libc::SIGTERM).success());

    let id = fax_job(&d, &cfg);
    let rec = record(&d, &id, &cfg);
    assert_eq!(rec["state"], "done", "{rec:#}");
    let result = &rec["data"]["fax-out"]["result"];
    assert_eq!(result["ecm"], false, "{rec:#}");
    assert_eq!(result["speed_bps"], 9600, "{rec:#}");
    assert_eq!(result["modulation"], "V.17 9600", "{rec:#}");
    assert_eq!(result["pages_sent"], 2, "{rec:#}");
    let attempts = rec["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{rec:#}");
    let o = &attempts[0]["fax_options"];
    assert_eq!(o["attempt"], 1, "{rec:#}");
    assert_eq!(o["ecm"], false, "{rec:#}");
    assert_eq!(o["max_bps"], 9600, "{rec:#}");
    assert_eq!(o["v17"], true, "{rec:#}");
    assert_eq!(o["route"], "old-machines", "{rec:#}");
    let why = o["why"].as_str().unwrap();
    assert!(
        why.contains("[[fax_route]] `old-machines` ecm = false")
            && why.contains("[[fax_route]] `old-machines` max_speed = 9600"),
        "{why}"
    );
    let log = d.log();
    assert!(
        log.contains("fax attempt options") && log.contains("ECM off, at most 9600 bit/s"),
        "{log}"
    );
}

#[test]
fn disable_ecm_after_retry_sends_the_second_attempt_without_ecm() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = common::pages_pdf(tmp.path(), 2);
    let cfg = config(tmp.path(), "[fax_options]\ndisable_ecm_after_retry = 1\n");
    let mut d = Daemon::new(tmp.path());
    // A paced line: the call lasts seconds, so a stop in its middle hangs it up (attempt 1
    // ends interrupted and the job is sent again at the next start).
    d.start(&[("FAXGATE_CONFIG", &cfg), ("FAXGATE_LOOPBACK__PACE", "0.5")]);
    d.send_pdf(&pdf);
    let mut job = None;
    for _ in 0..400 {
        let s: serde_json::Value = serde_json::from_str(&d.status(true)).unwrap();
        let line = &s["modems"][0];
        if line["state"] == "sending" {
            job = line["job"].as_str().map(str::to_string);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let job = job.unwrap_or_else(|| panic!("never saw the line sending:\n{}", d.log()));
    assert!(d.signal(libc::SIGTERM).success(), "{}", d.log());
    assert!(d.mails().is_empty(), "the first attempt was hung up");
    let rec = record(&d, &job, &cfg);
    let attempts = rec["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{rec:#}");
    assert_eq!(attempts[0]["cause"], "interrupted", "{rec:#}");
    assert_eq!(attempts[0]["fax_options"]["attempt"], 1, "{rec:#}");
    assert_eq!(attempts[0]["fax_options"]["ecm"], true, "{rec:#}");

    // Attempt 2, at full speed: without ECM, and it says why.
    d.start(&[("FAXGATE_CONFIG", &cfg)]);
    d.wait_mail("the fax email and the report", |m| {
        m.iter().any(|x| is_fax_mail(x)) && m.iter().any(|x| is_report(x))
    });
    settle(&d);
    assert!(d.signal(libc::SIGTERM).success());
    let rec = record(&d, &job, &cfg);
    assert_eq!(rec["state"], "done", "{rec:#}");
    let attempts = rec["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{rec:#}");
    let o = &attempts[1]["fax_options"];
    assert_eq!(o["attempt"], 2, "{rec:#}");
    assert_eq!(o["ecm"], false, "{rec:#}");
    assert_eq!(o["max_bps"], 14400, "{rec:#}");
    let why = o["why"].as_str().unwrap();
    assert!(
        why.contains("ECM off: attempt 2 is past [fax_options] disable_ecm_after_retry = 1"),
        "{why}"
    );
    let result = &rec["data"]["fax-out"]["result"];
    assert_eq!(result["ecm"], false, "{rec:#}");
    assert_eq!(result["modulation"], "V.17 14400", "{rec:#}");
    let log = d.log();
    assert!(
        log.contains("disable_ecm_after_retry = 1") && log.contains("ECM off, at most 14400"),
        "{log}"
    );
}
