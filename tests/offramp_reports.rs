//! Offramp reports end to end through the real spool and scheduler: a message with several
//! recipients, fax jobs that succeed and fail, ONE report listing each, parsed by Python's
//! `email` package (Debian `python3`) as RFC 3464 `multipart/report`.

mod common;

use std::path::Path;
use std::process::Command;

use faxgate::config::Config;
use faxgate::job::{Child, JobData, MailOutData, Purpose};
use faxgate::mail::address::{AddressForm, Number};
use faxgate::mail::dialplan::Destination;
use faxgate::offramp::jobs::{self, FaxResult, MessageData, Reported};
use faxgate::offramp::options::SenderOptions;
use faxgate::scheduler::{CauseClass, Decision, Policy, Timestamp};
use faxgate::smtp::session::{ClientInfo, Envelope, Notify, Recipient, Ret};
use faxgate::spool::{JobId, JobKind, NewJob, Outcome, Spool, SpoolOptions};

pub const T0: Timestamp = Timestamp(1_795_000_000_000);

pub fn recipient(n: &str, notify: Option<Vec<Notify>>, orcpt: Option<&str>) -> Recipient {
    Recipient {
        address: format!("FAX=+{n}@fax.example.org"),
        number: Number::Global(n.into()),
        form: AddressForm::Rfc3192,
        subaddress: None,
        destination: Destination {
            e164: format!("+{n}"),
            dial: n.into(),
            international: false,
        },
        notify,
        orcpt: orcpt.map(str::to_string),
    }
}

pub fn envelope(recipients: Vec<Recipient>, envid: Option<&str>, ret: Option<Ret>) -> Envelope {
    Envelope {
        mail_from: "alice@example.org".into(),
        size: None,
        body: None,
        ret,
        envid: envid.map(str::to_string),
        mail_auth: None,
        recipients,
        postmaster: Vec::new(),
        client: ClientInfo {
            ip: "127.0.0.1".parse().unwrap(),
            port: 40000,
            helo: "client.example.org".into(),
            esmtp: true,
        },
        auth_user: None,
        tls: None,
    }
}

pub fn commit_message(spool: &Spool, env: Envelope, eml: &[u8]) -> JobId {
    let mut inc = spool.begin(JobKind::Message).unwrap();
    inc.write_file(jobs::MESSAGE_FILE, eml).unwrap();
    let data = MessageData {
        envelope: env,
        file: jobs::MESSAGE_FILE.into(),
        size: 0,
        received: "2026-11-28T10:00:00Z".into(),
    };
    inc.commit_at(NewJob::new(JobData::from(data.clone())), T0)
        .unwrap()
        .id
}

/// Parse a report with Python's email package; returns its JSON description.
pub fn python_parse(bytes: &[u8]) -> serde_json::Value {
    let py = common::require_tool("python3", "python3");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("report.eml");
    std::fs::write(&f, bytes).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/offramp/check_report.py");
    let out = Command::new(py).arg(&script).arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "python rejected the report: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(bytes)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The report job of a message: its data and its mail.
pub fn report_job(spool: &Spool, msg: &JobId) -> (MailOutData, Vec<u8>) {
    let id = msg.child(Child::Report.number()).unwrap();
    let (_, rec) = spool.get(&id).unwrap();
    assert_eq!(rec.kind, JobKind::MailOut);
    let data = rec.data.as_mail_out().unwrap().clone();
    let mail = std::fs::read(spool.payload_path(&id, &data.file).unwrap()).unwrap();
    (data, mail)
}

/// Run one attempt of a fax job with the real spool and scheduler.
fn attempt(spool: &Spool, id: &JobId, now: Timestamp, cause: CauseClass, pages: u32) -> Decision {
    let policy = Policy {
        max_dials: 3,
        ..Policy::default()
    };
    spool.start_attempt(id, now, Some("modem0")).unwrap();
    let (_, d) = spool
        .end_attempt(
            id,
            now,
            Outcome {
                cause,
                detail: format!("{cause:?}"),
                pages_sent: pages,
                connected: matches!(cause, CauseClass::Done | CauseClass::ProtocolError),
            },
            &policy,
        )
        .unwrap();
    d
}

fn set_result(spool: &Spool, id: &JobId, r: FaxResult) {
    spool
        .update(id, |rec| {
            let JobData::FaxOut(j) = &mut rec.data else {
                panic!("{:?}", rec.data)
            };
            j.result = Some(r);
            Ok(())
        })
        .unwrap();
}

#[test]
fn mixed_outcomes_give_one_report_listing_each() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open_at(dir.path(), SpoolOptions::default(), T0).unwrap();
    let cfg = Config::default();
    let env = envelope(
        vec![
            // Fails busy; NOTIFY absent: failures are reported.
            recipient("12125550101", None, None),
            // Delivered; asked for success and failure; ORCPT given.
            recipient(
                "12125550102",
                Some(vec![Notify::Success, Notify::Failure]),
                Some("rfc822;fax-desk@example.org"),
            ),
            // Refused our coding; asked for nothing.
            recipient("12125550103", Some(vec![Notify::Never]), None),
            // Line failed on page 2 twice, then gave up; asked for failures.
            recipient("12125550104", Some(vec![Notify::Failure]), None),
        ],
        Some("QQ314159"),
        Some(Ret::Hdrs),
    );
    let eml = b"From: Alice <alice@example.org>\r\nSubject: Contract\r\nMessage-ID: <m1@example.org>\r\n\r\nPlease fax.\r\n";
    let msg = commit_message(&spool, env.clone(), eml);
    let opts = SenderOptions {
        resolution: faxgate::config::Resolution::Fine,
        cover_page: false,
        subject: "Contract".into(),
    };
    let mut ids = Vec::new();
    for j in jobs::fax_jobs(&msg, &env, &opts, 3) {
        let mut inc = spool
            .begin_child(JobKind::FaxOut, &msg, Child::Recipient(j.recipient))
            .unwrap();
        inc.write_file(jobs::MESSAGE_FILE, eml).unwrap();
        let rec = inc
            .commit_at(NewJob::new(JobData::from(j.clone())), T0)
            .unwrap();
        ids.push(rec.id);
    }
    spool.finish(&msg, T0, faxgate::spool::Final::Done).unwrap();

    let mut now = T0;
    // Recipient 2: delivered on the first call.
    now = now.plus(std::time::Duration::from_secs(60));
    set_result(
        &spool,
        &ids[1],
        FaxResult {
            t30_cause: Some(0),
            pages_sent: 3,
            remote_id: Some("+1 212 555 0102".into()),
            speed_bps: Some(14400),
            duration_ms: Some(95_000),
            ..FaxResult::default()
        },
    );
    assert_eq!(
        attempt(&spool, &ids[1], now, CauseClass::Done, 3),
        Decision::Done
    );
    assert_eq!(
        jobs::on_fax_final(&spool, &ids[1], &cfg, now).unwrap(),
        Reported::Pending
    );
    // Recipient 1: busy until the dial limit.
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries <= 3, "scheduler never gave up");
        now = now.plus(std::time::Duration::from_secs(600));
        match attempt(&spool, &ids[0], now, CauseClass::Busy, 0) {
            Decision::RetryAt(_) => continue,
            Decision::Fail(_) => break,
            Decision::Done => panic!("busy cannot succeed"),
        }
    }
    assert_eq!(
        jobs::on_fax_final(&spool, &ids[0], &cfg, now).unwrap(),
        Reported::Pending
    );
    // Recipient 3: incompatible receiver (T.30 cause 7), never retried.
    set_result(
        &spool,
        &ids[2],
        FaxResult {
            t30_cause: Some(7),
            ..FaxResult::default()
        },
    );
    assert!(matches!(
        attempt(&spool, &ids[2], now, CauseClass::Fatal, 0),
        Decision::Fail(_)
    ));
    // Recipient 4: line failure after one page, twice, then the operator-free give-up.
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries <= 12, "scheduler never gave up");
        now = now.plus(std::time::Duration::from_secs(600));
        set_result(
            &spool,
            &ids[3],
            FaxResult {
                t30_cause: Some(10),
                pages_sent: 1,
                ..FaxResult::default()
            },
        );
        if let Decision::Fail(_) = attempt(&spool, &ids[3], now, CauseClass::ProtocolError, 1) {
            break;
        }
    }
    let Reported::Done {
        outcomes, report, ..
    } = jobs::on_fax_final(&spool, &ids[3], &cfg, now).unwrap()
    else {
        panic!("all recipients are final");
    };
    assert_eq!(outcomes.len(), 4);
    assert_eq!(report, Some(msg.child(Child::Report.number()).unwrap()));
    // A second call (e.g. another worker finishing at the same time) makes no second report.
    jobs::on_fax_final(&spool, &ids[2], &cfg, now).unwrap();
    let all = spool.load().unwrap();
    assert_eq!(
        all.jobs
            .iter()
            .filter(|j| j.kind == JobKind::MailOut)
            .count(),
        1
    );

    let (data, mail) = report_job(&spool, &msg);
    assert_eq!(data.envelope.from, "", "reports go from the null sender");
    assert_eq!(data.envelope.to, ["alice@example.org"]);
    if std::env::var_os("SHOW_REPORT").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&mail));
    }
    let p = python_parse(&mail);
    assert_eq!(p["report_type"], "delivery-status");
    assert_eq!(
        p["parts"],
        serde_json::json!([
            "text/plain",
            "message/delivery-status",
            "text/rfc822-headers"
        ])
    );
    assert_eq!(p["per_message"]["Original-Envelope-Id"], "QQ314159");
    assert_eq!(p["per_message"]["Reporting-MTA"], "dns; localhost");
    let r = p["recipients"].as_array().unwrap();
    // Recipient 3 said NOTIFY=NEVER: not listed.
    assert_eq!(r.len(), 3, "{p}");
    assert_eq!(
        r[0]["Final-Recipient"],
        "rfc822; FAX=+12125550101@fax.example.org"
    );
    assert_eq!(r[0]["Action"], "failed");
    assert_eq!(r[0]["Status"], "5.4.1");
    assert!(
        r[0]["Diagnostic-Code"]
            .as_str()
            .unwrap()
            .starts_with("X-Fax; busy;")
    );
    assert!(r[0].get("Original-Recipient").is_none());
    assert_eq!(
        r[1]["Final-Recipient"],
        "rfc822; FAX=+12125550102@fax.example.org"
    );
    assert_eq!(r[1]["Original-Recipient"], "rfc822; fax-desk@example.org");
    assert_eq!(r[1]["Action"], "delivered");
    assert_eq!(r[1]["Status"], "2.0.0");
    assert_eq!(r[1]["X-Fax-Pages"], "3/3");
    assert_eq!(r[2]["Action"], "failed");
    assert_eq!(r[2]["Status"], "5.4.2");
    assert!(
        r[2]["Diagnostic-Code"].as_str().unwrap().contains("page 2"),
        "{}",
        r[2]
    );
    let summary = p["summary"].as_str().unwrap();
    assert!(
        summary.contains("The line was busy after 3 tries."),
        "{summary}"
    );
    assert!(summary.contains("Pages sent:   3 of 3"), "{summary}");
    assert!(
        summary.contains("Remote ID:    +1 212 555 0102"),
        "{summary}"
    );
    assert!(summary.contains("Speed:        14400 bit/s"), "{summary}");
    assert!(summary.contains("Duration:     1 min 35 s"), "{summary}");
    assert!(
        !summary.contains("12125550103"),
        "NOTIFY=NEVER recipient listed"
    );
    assert!(
        p["returned_headers"]
            .as_str()
            .unwrap()
            .contains("Subject: Contract")
    );
    assert!(p["subject"].as_str().unwrap().contains("partly failed"));
}

#[test]
fn success_report_only_when_asked_or_by_default() {
    for (notify, default, want) in [
        (None, false, false),
        (None, true, true),
        (Some(vec![Notify::Success]), false, true),
        (Some(vec![Notify::Never]), true, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open_at(dir.path(), SpoolOptions::default(), T0).unwrap();
        let mut cfg = Config::default();
        cfg.offramp.notify_success_by_default = default;
        let env = envelope(
            vec![recipient("442071234567", notify.clone(), None)],
            None,
            None,
        );
        let eml = b"From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n";
        let msg = commit_message(&spool, env.clone(), eml);
        let opts = SenderOptions {
            resolution: faxgate::config::Resolution::Fine,
            cover_page: false,
            subject: "x".into(),
        };
        let j = &jobs::fax_jobs(&msg, &env, &opts, 1)[0];
        let mut inc = spool
            .begin_child(JobKind::FaxOut, &msg, Child::Recipient(1))
            .unwrap();
        inc.write_file(jobs::MESSAGE_FILE, eml).unwrap();
        let id = inc
            .commit_at(NewJob::new(JobData::from(j.clone())), T0)
            .unwrap()
            .id;
        attempt(&spool, &id, T0, CauseClass::Done, 1);
        let Reported::Done { report, .. } = jobs::on_fax_final(&spool, &id, &cfg, T0).unwrap()
        else {
            panic!("final")
        };
        assert_eq!(report.is_some(), want, "{notify:?} default={default}");
        if want {
            let (data, mail) = report_job(&spool, &msg);
            assert_eq!(data.envelope.from, "");
            let p = python_parse(&mail);
            let r = &p["recipients"][0];
            assert_eq!(r["Action"], "delivered");
            assert_eq!(r["Status"], "2.0.0");
            assert!(
                p.get("per_message")
                    .unwrap()
                    .get("Original-Envelope-Id")
                    .is_none()
            );
        }
    }
}

/// A 3-page fine A4 body whose first page has a black block in its upper left quarter.
fn block_pages() -> Vec<faxgate::image::Page> {
    (0..3)
        .map(|k| {
            let mut p =
                faxgate::image::Page::new(1728, 2292, faxgate::image::Resolution::FINE).unwrap();
            let (x0, y0) = if k == 0 { (200, 300) } else { (900, 1500) };
            for y in y0..y0 + 500 {
                for x in x0..x0 + 600 {
                    p.set(x, y, true);
                }
            }
            p
        })
        .collect()
}

/// Two recipients of a 3-page fax whose pages are stored: one confirmed every page (page 2
/// after an RTN), the other lost the line during page 3. Returns the report as Python parsed it.
fn report_with_pages(cfg: &Config) -> serde_json::Value {
    use faxgate::job::PageResult;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open_at(dir.path(), SpoolOptions::default(), T0).unwrap();
    let both = Some(vec![Notify::Success, Notify::Failure]);
    let env = envelope(
        vec![
            recipient("12125550111", both.clone(), None),
            recipient("12125550112", both, None),
        ],
        None,
        None,
    );
    let eml = b"From: Alice <alice@example.org>\r\nSubject: Plans\r\n\r\nsee attached\r\n";
    let msg = commit_message(&spool, env.clone(), eml);
    let opts = SenderOptions {
        resolution: faxgate::config::Resolution::Fine,
        cover_page: false,
        subject: "Plans".into(),
    };
    let tif =
        faxgate::onramp::compose::write_tiff(&block_pages(), faxgate::image::tiff::Profile::S)
            .unwrap();
    let mut ids = Vec::new();
    for mut j in jobs::fax_jobs(&msg, &env, &opts, 3) {
        j.pages = Some(jobs::PAGES_FILE.into());
        let mut inc = spool
            .begin_child(JobKind::FaxOut, &msg, Child::Recipient(j.recipient))
            .unwrap();
        inc.write_file(jobs::MESSAGE_FILE, eml).unwrap();
        inc.write_file(jobs::PAGES_FILE, &tif).unwrap();
        ids.push(inc.commit_at(NewJob::new(JobData::from(j)), T0).unwrap().id);
    }
    spool.finish(&msg, T0, faxgate::spool::Final::Done).unwrap();
    let now = T0.plus(std::time::Duration::from_secs(60));
    // Recipient 1: all three confirmed, page 2 after one RTN.
    set_result(
        &spool,
        &ids[0],
        FaxResult {
            t30_cause: Some(0),
            pages_sent: 3,
            page_results: vec![
                PageResult::Confirmed,
                PageResult::Retransmitted,
                PageResult::Confirmed,
            ],
            ..FaxResult::default()
        },
    );
    attempt(&spool, &ids[0], now, CauseClass::Done, 3);
    assert_eq!(
        jobs::on_fax_final(&spool, &ids[0], cfg, now).unwrap(),
        Reported::Pending
    );
    // Recipient 2: the line broke during page 3 (cause 10), given up after one call.
    set_result(
        &spool,
        &ids[1],
        FaxResult {
            t30_cause: Some(10),
            pages_sent: 2,
            page_results: vec![
                PageResult::Confirmed,
                PageResult::Confirmed,
                PageResult::Interrupted,
            ],
            ..FaxResult::default()
        },
    );
    spool.start_attempt(&ids[1], now, Some("modem0")).unwrap();
    spool
        .end_attempt(
            &ids[1],
            now,
            Outcome {
                cause: CauseClass::Fatal,
                detail: "line".into(),
                pages_sent: 2,
                connected: true,
            },
            &Policy::default(),
        )
        .unwrap();
    let Reported::Done { report, .. } = jobs::on_fax_final(&spool, &ids[1], cfg, now).unwrap()
    else {
        panic!("all final")
    };
    assert!(report.is_some());
    let (_, mail) = report_job(&spool, &msg);
    if std::env::var_os("SHOW_REPORT").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&mail));
    }
    python_parse(&mail)
}

#[test]
fn report_shows_the_first_page_and_each_page_result() {
    let cfg = Config::default();
    assert!(cfg.offramp.report_thumbnail, "on by default");
    let p = report_with_pages(&cfg);
    assert_eq!(p["report_type"], "delivery-status");
    assert_eq!(
        p["parts"],
        serde_json::json!([
            "multipart/alternative",
            "message/delivery-status",
            "text/rfc822-headers"
        ])
    );
    let pic = &p["picture"];
    assert!(pic["html"].as_str().unwrap().contains("First page as sent"));
    let images = pic["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let im = &images[0];
    // 300 px wide, the page's real proportions: 2292 rows at 196 lpi against 1728 columns at
    // 204 dpi.
    let want_h = (2292.0 * 204.0 / 196.0 * 300.0 / 1728.0_f64).round() as u64;
    assert_eq!(im["width"], 300);
    assert_eq!(im["height"].as_u64().unwrap(), want_h);
    assert!(im["bytes"].as_u64().unwrap() < 30_000, "{}", im["bytes"]);
    // Page 1's block (columns 200–800, rows 300–800 of the page) is dark in the picture, the
    // lower right (where only pages 2 and 3 have theirs) is white: it is the first page.
    let rows: Vec<Vec<u64>> = serde_json::from_value(im["rows"].clone()).unwrap();
    let (sx, sy) = (300.0 / 1728.0, want_h as f64 / 2292.0);
    let px = |x: f64, y: f64| rows[(y * sy) as usize][(x * sx) as usize];
    assert!(px(500.0, 550.0) < 40, "block centre {}", px(500.0, 550.0));
    assert!(px(1200.0, 1750.0) > 215, "page 2's block shows");
    // The header line was stamped on the page sent: dark pixels in the top rows.
    assert!(rows[..4].iter().flatten().any(|&v| v < 128));
    // Each page's result, per recipient, in the text (and in the HTML version).
    let summary = p["summary"].as_str().unwrap().replace("\r\n", "\n");
    for line in [
        "    page 1    sent, confirmed by the receiver\n    page 2    sent again after the receiver refused it, then confirmed\n    page 3    sent, confirmed by the receiver\n",
        "    page 1    sent, confirmed by the receiver\n    page 2    sent, confirmed by the receiver\n    page 3    FAILED: the call ended while it was being sent\n",
    ] {
        assert!(summary.contains(line), "{summary}");
    }
    assert!(
        pic["html"]
            .as_str()
            .unwrap()
            .contains("FAILED: the call ended while it was being sent")
    );
    // And for machines, in the delivery-status fields (RFC 3464 §2.4 extension field).
    let r = p["recipients"].as_array().unwrap();
    assert_eq!(
        r[0]["X-Fax-Page-Results"],
        "1=confirmed 2=retransmitted 3=confirmed"
    );
    assert_eq!(
        r[1]["X-Fax-Page-Results"],
        "1=confirmed 2=confirmed 3=interrupted"
    );

    // With the option off: the plain report, page lines still there.
    let mut off = cfg.clone();
    off.offramp.report_thumbnail = false;
    let p = report_with_pages(&off);
    assert_eq!(p["parts"][0], "text/plain");
    assert!(p["picture"].is_null());
    assert!(
        p["summary"]
            .as_str()
            .unwrap()
            .contains("page 3    FAILED: the call ended")
    );
}

#[test]
fn delay_report_once_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open_at(dir.path(), SpoolOptions::default(), T0).unwrap();
    let cfg = Config::default(); // delay_report_after 30 min
    let env = envelope(
        vec![
            recipient(
                "33142685300",
                Some(vec![Notify::Delay, Notify::Failure]),
                None,
            ),
            recipient("33142685301", None, None),
        ],
        Some("ENV-7"),
        Some(Ret::Full),
    );
    let eml = b"From: a@example.org\r\nSubject: Devis\r\n\r\nbonjour\r\n";
    let msg = commit_message(&spool, env.clone(), eml);
    let opts = SenderOptions {
        resolution: faxgate::config::Resolution::Standard,
        cover_page: false,
        subject: "Devis".into(),
    };
    let mut ids = Vec::new();
    for j in jobs::fax_jobs(&msg, &env, &opts, 2) {
        let mut inc = spool
            .begin_child(JobKind::FaxOut, &msg, Child::Recipient(j.recipient))
            .unwrap();
        inc.write_file(jobs::MESSAGE_FILE, eml).unwrap();
        ids.push(
            inc.commit_at(NewJob::new(JobData::from(j.clone())), T0)
                .unwrap()
                .id,
        );
    }
    let early = T0.plus(std::time::Duration::from_secs(60));
    assert!(matches!(
        attempt(&spool, &ids[0], early, CauseClass::Busy, 0),
        Decision::RetryAt(_)
    ));
    assert_eq!(
        jobs::on_fax_retry(&spool, &ids[0], &cfg, early).unwrap(),
        None,
        "too early"
    );
    let later = T0.plus(std::time::Duration::from_secs(31 * 60));
    assert!(matches!(
        attempt(&spool, &ids[0], later, CauseClass::NoAnswer, 0),
        Decision::RetryAt(_)
    ));
    let rep = jobs::on_fax_retry(&spool, &ids[0], &cfg, later)
        .unwrap()
        .expect("delay report");
    assert_eq!(rep, msg.child(Child::DelayNotice(1).number()).unwrap());
    // Only once.
    assert_eq!(
        jobs::on_fax_retry(&spool, &ids[0], &cfg, later).unwrap(),
        None
    );
    // The other recipient did not ask for delay reports.
    assert!(matches!(
        attempt(&spool, &ids[1], later, CauseClass::Busy, 0),
        Decision::RetryAt(_)
    ));
    assert_eq!(
        jobs::on_fax_retry(&spool, &ids[1], &cfg, later).unwrap(),
        None
    );

    let (_, rec) = spool.get(&rep).unwrap();
    let data = rec.data.as_mail_out().unwrap().clone();
    assert_eq!(data.envelope.from, "");
    assert!(matches!(
        data.purpose,
        Purpose::Report {
            report: jobs::ReportKind::Delay,
            ..
        }
    ));
    let mail = std::fs::read(spool.payload_path(&rep, &data.file).unwrap()).unwrap();
    let p = python_parse(&mail);
    assert_eq!(p["per_message"]["Original-Envelope-Id"], "ENV-7");
    let r = p["recipients"].as_array().unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["Action"], "delayed");
    assert_eq!(r[0]["Status"], "4.4.1");
    assert_eq!(
        r[0]["Final-Recipient"],
        "rfc822; FAX=+33142685300@fax.example.org"
    );
    // RET=FULL is not honoured for a delay notice: headers only.
    assert_eq!(p["parts"][2], "text/rfc822-headers");
    assert!(p["summary"].as_str().unwrap().contains("NOT YET SENT"));
}

#[test]
fn mdn_only_when_requested_and_enabled() {
    for enabled in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open_at(dir.path(), SpoolOptions::default(), T0).unwrap();
        let mut cfg = Config::default();
        cfg.offramp.mdn = enabled;
        let env = envelope(vec![recipient("61298765432", None, None)], None, None);
        let eml = b"From: Alice <alice@example.org>\r\nSubject: x\r\nMessage-ID: <m9@example.org>\r\nDisposition-Notification-To: Alice <alice@example.org>\r\n\r\nhello\r\n";
        let msg = commit_message(&spool, env.clone(), eml);
        let opts = SenderOptions {
            resolution: faxgate::config::Resolution::Fine,
            cover_page: false,
            subject: "x".into(),
        };
        let j = &jobs::fax_jobs(&msg, &env, &opts, 1)[0];
        let mut inc = spool
            .begin_child(JobKind::FaxOut, &msg, Child::Recipient(1))
            .unwrap();
        inc.write_file(jobs::MESSAGE_FILE, eml).unwrap();
        let id = inc
            .commit_at(NewJob::new(JobData::from(j.clone())), T0)
            .unwrap()
            .id;
        attempt(&spool, &id, T0, CauseClass::Done, 1);
        let Reported::Done { report, mdns, .. } =
            jobs::on_fax_final(&spool, &id, &cfg, T0).unwrap()
        else {
            panic!("final")
        };
        // NOTIFY absent and no success by default: no DSN for a delivered fax.
        assert_eq!(report, None);
        if !enabled {
            assert!(mdns.is_empty());
            continue;
        }
        assert_eq!(mdns, [msg.child(Child::Mdn(1).number()).unwrap()]);
        let (_, rec) = spool.get(&mdns[0]).unwrap();
        let data = rec.data.as_mail_out().unwrap().clone();
        assert_eq!(
            data.envelope.from, "",
            "RFC 8098 §2.1: MDNs go from the null sender"
        );
        assert_eq!(data.envelope.to, ["alice@example.org"]);
        assert!(matches!(
            data.purpose,
            Purpose::Report {
                report: jobs::ReportKind::Mdn,
                ..
            }
        ));
        let mail = std::fs::read(spool.payload_path(&mdns[0], &data.file).unwrap()).unwrap();
        let p = python_parse(&mail);
        assert_eq!(p["report_type"], "disposition-notification");
        assert_eq!(p["mdn"]["Original-Message-ID"], "<m9@example.org>");
        assert_eq!(
            p["mdn"]["Disposition"],
            "automatic-action/MDN-sent-automatically; processed"
        );
    }
}
