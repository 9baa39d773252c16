//! Mail delivery against a real SMTP relay (aiosmtpd): retry while the relay is down, exactly
//! one delivery once it is up, dead letter on 550 with the message (and fax) intact, DSN
//! parameters when the relay offers DSN, and per-recipient refusals.

mod common;
mod onramp_common;

use std::time::Duration;

use faxgate::config::{Config, RelayMode, RelaySecurity};
use faxgate::delivery::mail_out::{self, MailOutData, Notices, Purpose};
use faxgate::delivery::{Delivery, MailEnvelope as Envelope};
use faxgate::scheduler::{CauseClass, Decision, Policy};
use faxgate::spool::{Area, JobKind, JobState, Spool, SpoolOptions};
use onramp_common::{Relay, free_port};

fn config(port: u16) -> Config {
    let mut c = Config::default();
    c.relay.mode = RelayMode::Smtp;
    c.relay.host = "127.0.0.1".into();
    c.relay.port = port;
    c.relay.security = RelaySecurity::Opportunistic;
    c.relay.timeout = Duration::from_secs(20);
    c.gateway.hostname = "gw.example.com".into();
    c.gateway.admin = "postmaster@example.com".into();
    c
}

fn message() -> Vec<u8> {
    // A fax-sized binary attachment: the test checks it comes back byte for byte.
    let tiff: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    faxgate::delivery::message::build(&faxgate::delivery::message::FaxMail {
        from: "Fax Gateway <fax-gateway@example.com>".into(),
        to: vec!["sales@example.com".into()],
        cc: vec![],
        subject: "Fax from +1 212 555 0123 (1 pages)".into(),
        body: "A fax was received.\n".into(),
        date: 1_796_000_000,
        message_id: "test.1@gw.example.com".into(),
        attachment: Some(faxgate::delivery::message::Attachment::Tiff {
            file_name: "fax".into(),
            bytes: tiff,
        }),
    })
    .unwrap()
}

fn data(to: &[&str]) -> MailOutData {
    MailOutData {
        envelope: Envelope {
            from: "fax-gateway@example.com".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            envid: Some("faxgate-test-1".into()),
        },
        purpose: Purpose::Fax { fax_job: None },
        subject: "Fax from +1 212 555 0123 (1 pages)".into(),
        file: mail_out::MESSAGE_FILE.into(),
    }
}

/// Byte-for-byte equality without printing megabytes on failure.
fn same_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "bytes differ at {at} (lengths {} vs {}): got {:?} want {:?}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[at.saturating_sub(20)..(at + 20).min(got.len())]),
            String::from_utf8_lossy(&want[at.saturating_sub(20)..(at + 20).min(want.len())]),
        );
    }
}

fn spool(dir: &std::path::Path) -> Spool {
    Spool::open(&dir.join("spool"), SpoolOptions::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_then_up_delivers_exactly_once() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = config(port);
    let sp = spool(d.path());
    let msg = message();
    let rec = mail_out::queue(&sp, &data(&["sales@example.com"]), &msg, None).unwrap();
    let delivery = Delivery::from_config(&c).unwrap();
    let policy = Policy::from(&c.retry);
    let notices = Notices::from_config(&c);

    // Relay down: a temporary failure, retried with backoff (relay_initial = 60 s).
    let (r, dec) = mail_out::attempt(&sp, &delivery, &policy, &notices, &rec.id)
        .await
        .unwrap();
    assert!(matches!(dec, Decision::RetryAt(_)), "{dec:?}");
    assert_eq!(r.attempts[0].cause, Some(CauseClass::RelayTemporary));
    assert_eq!(r.state, JobState::Queued);

    // Relay up: delivered, job done.
    let relay = Relay::start(port, &d.path().join("relay"), &[]);
    let (r, dec) = mail_out::attempt(&sp, &delivery, &policy, &notices, &rec.id)
        .await
        .unwrap();
    assert_eq!(dec, Decision::Done);
    assert_eq!(r.state, JobState::Done);
    assert_eq!(sp.get(&rec.id).unwrap().0, Area::Done);

    // The job cannot run again: no second copy, ever.
    assert!(
        mail_out::attempt(&sp, &delivery, &policy, &notices, &rec.id)
            .await
            .is_err()
    );
    let got = relay.messages();
    assert_eq!(got.len(), 1, "delivered exactly once");
    same_bytes(&got[0].1, &msg);
    assert_eq!(got[0].0["mail_from"], "fax-gateway@example.com");
    assert_eq!(
        got[0].0["rcpt_tos"],
        serde_json::json!(["sales@example.com"])
    );
    // No DSN asked for by default, and none offered by this relay.
    assert_eq!(got[0].0["mail_options"], serde_json::json!([]));
    assert!(sp.load().unwrap().jobs.is_empty(), "nothing left queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_550_dead_letters_with_the_fax_intact() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay = Relay::start(
        port,
        &d.path().join("relay"),
        &["--data-reply", "550 5.7.1 faxes are not welcome here"],
    );
    let c = config(port);
    let sp = spool(d.path());
    let msg = message();
    let rec = mail_out::queue(&sp, &data(&["sales@example.com"]), &msg, None).unwrap();
    let delivery = Delivery::from_config(&c).unwrap();
    let (r, dec) = mail_out::attempt(
        &sp,
        &delivery,
        &Policy::from(&c.retry),
        &Notices::from_config(&c),
        &rec.id,
    )
    .await
    .unwrap();
    assert!(matches!(dec, Decision::Fail(_)), "{dec:?}");
    assert_eq!(r.state, JobState::Failed);
    assert!(
        r.attempts[0].detail.contains("550"),
        "{}",
        r.attempts[0].detail
    );
    assert_eq!(r.attempts[0].cause, Some(CauseClass::RelayPermanent));

    // Dead letter: the job directory in failed/ still holds the whole message.
    assert_eq!(sp.get(&rec.id).unwrap().0, Area::Failed);
    let kept = std::fs::read(sp.payload_path(&rec.id, mail_out::MESSAGE_FILE).unwrap()).unwrap();
    same_bytes(&kept, &msg);
    assert!(relay.messages().is_empty());

    // The operator is told, through a mail job of its own.
    let queued = sp.load().unwrap().jobs;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].kind, JobKind::MailOut);
    let nd = mail_out::data_of(&queued[0]).unwrap();
    assert_eq!(nd.purpose, Purpose::AdminNotice);
    assert_eq!(nd.envelope.to, vec!["postmaster@example.com"]);
    let raw = std::fs::read(
        sp.payload_path(&queued[0].id, mail_out::MESSAGE_FILE)
            .unwrap(),
    )
    .unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let notice = parsed.body_text(0).unwrap().into_owned();
    assert!(notice.contains(rec.id.as_str()), "{notice}");
    assert!(
        notice.contains("(550): 5.7.1 faxes are not welcome"),
        "{notice}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsn_parameters_and_refused_recipients() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay = Relay::start(
        port,
        &d.path().join("relay"),
        &[
            "--dsn",
            "--reject",
            "gone@example.com=550 5.1.1 no such user",
            "--reject",
            "busy@example.com=452 4.2.2 mailbox full",
        ],
    );
    let mut c = config(port);
    c.relay.request_dsn = true;
    let sp = spool(d.path());
    let msg = message();
    let rec = mail_out::queue(
        &sp,
        &data(&["sales@example.com", "gone@example.com", "busy@example.com"]),
        &msg,
        None,
    )
    .unwrap();
    let delivery = Delivery::from_config(&c).unwrap();
    let (_, dec) = mail_out::attempt(
        &sp,
        &delivery,
        &Policy::from(&c.retry),
        &Notices::from_config(&c),
        &rec.id,
    )
    .await
    .unwrap();
    assert_eq!(dec, Decision::Done);
    let got = relay.messages();
    assert_eq!(got.len(), 1);
    let env = &got[0].0;
    assert_eq!(env["rcpt_tos"], serde_json::json!(["sales@example.com"]));
    let mail_opts: Vec<String> = serde_json::from_value(env["mail_options"].clone()).unwrap();
    assert!(mail_opts.contains(&"RET=HDRS".to_string()), "{mail_opts:?}");
    assert!(
        mail_opts.contains(&"ENVID=FAXGATE-TEST-1".to_string()),
        "{mail_opts:?}"
    );
    let rcpt_opts: Vec<Vec<String>> = serde_json::from_value(env["rcpt_options"].clone()).unwrap();
    assert!(
        rcpt_opts[0].contains(&"NOTIFY=SUCCESS,FAILURE".to_string()),
        "{rcpt_opts:?}"
    );
    assert!(
        rcpt_opts[0].contains(&"ORCPT=RFC822;SALES@EXAMPLE.COM".to_string()),
        "{rcpt_opts:?}"
    );

    // The temporarily refused recipient gets a job of its own; the permanently refused one is
    // reported to the operator.
    let queued = sp.load().unwrap().jobs;
    let datas: Vec<MailOutData> = queued
        .iter()
        .map(|r| mail_out::data_of(r).unwrap())
        .collect();
    assert_eq!(datas.len(), 2, "{datas:?}");
    assert!(
        datas
            .iter()
            .any(|x| x.envelope.to == vec!["busy@example.com"]
                && matches!(x.purpose, Purpose::Fax { .. }))
    );
    assert!(datas.iter().any(|x| x.purpose == Purpose::AdminNotice));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_but_not_offered_is_temporary() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay = Relay::start(port, &d.path().join("relay"), &[]);
    let mut c = config(port);
    c.relay.security = RelaySecurity::Starttls;
    let delivery = Delivery::from_config(&c).unwrap();
    let env = data(&["sales@example.com"]).envelope;
    let e = delivery.deliver(&env, &message()).await.unwrap_err();
    assert_eq!(e.class(), CauseClass::RelayTemporary, "{e}");
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    assert!(relay.messages().is_empty());
}

/// The whole onramp service: a received fax, the relay down for a while (the mail is retried
/// on the backoff the scheduler sets), then up — delivered exactly once, however many passes
/// follow; and `run` stops on shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_retries_while_relay_down_and_delivers_once() {
    use faxgate::image::tiff::Profile;
    use faxgate::image::{Page, Resolution};
    use faxgate::onramp::fax_in::{FaxInData, queue_fax};
    use faxgate::onramp::service::OnrampService;
    use faxgate::onramp::{Completion, Reception, Source};

    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut c = config(port);
    c.gateway.data_dir = d.path().join("data");
    c.retry.relay_initial = Duration::from_millis(300);
    c.retry.relay_max = Duration::from_secs(1);
    let sp = Spool::open(
        &faxgate::spool::spool_dir(&c),
        SpoolOptions::from_config(&c),
    )
    .unwrap();
    let mut page = Page::new(1728, 30, Resolution::STANDARD).unwrap();
    page.set(864, 15, true);
    let tif = faxgate::onramp::compose::write_tiff(&[page], Profile::S).unwrap();
    let reception = Reception {
        source: Source::Modem,
        line: Some("line1".into()),
        did: None,
        caller: None,
        remote_id: None,
        subaddress: None,
        pages: 1,
        duration_secs: 40,
        speed: Some(9600),
        resolution: Some((204, 98)),
        bad_lines: 0,
        received: 1_796_000_000,
        completion: Completion::Complete,
    };
    queue_fax(
        &sp,
        &FaxInData {
            reception,
            to: vec![],
        },
        &tif,
    )
    .unwrap();

    let mut svc = OnrampService::new(&c, sp.clone()).unwrap();
    svc.pass().await;
    let queued = sp.load().unwrap().jobs;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].kind, JobKind::MailOut);
    assert_eq!(
        queued[0].attempts[0].cause,
        Some(CauseClass::RelayTemporary)
    );
    // A second failure while still down.
    for _ in 0..100 {
        svc.pass().await;
        if sp.load().unwrap().jobs[0].attempts.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sp.load().unwrap().jobs[0].attempts.len(), 2);

    let relay = Relay::start(port, &d.path().join("relay"), &[]);
    for _ in 0..200 {
        svc.pass().await;
        if !relay.messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..5 {
        svc.pass().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(relay.messages().len(), 1, "delivered exactly once");
    assert!(sp.load().unwrap().jobs.is_empty());

    // `run` returns once shutdown is requested.
    let (stop, shutdown) = faxgate::daemon::Shutdown::new();
    let task = tokio::spawn(svc.run(shutdown));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("service stops")
        .unwrap();
    assert_eq!(relay.messages().len(), 1);
}

/// A report job shaped the way the offramp writes it (`file: "mail.eml"`, no purpose, extra
/// fields) is delivered by the same path, from the null sender, without DSN parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offramp_report_jobs_use_the_same_delivery() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay = Relay::start(port, &d.path().join("relay"), &["--dsn"]);
    let mut c = config(port);
    c.relay.request_dsn = true;
    let sp = spool(d.path());
    let report = b"From: Mail Delivery System <MAILER-DAEMON@gw.example.com>\r\n\
        To: sender@example.com\r\nSubject: Fax delivery report\r\n\
        Message-ID: <r.1@gw.example.com>\r\nDate: Mon, 30 Nov 2026 00:53:20 +0000\r\n\r\nsent\r\n";
    let mut inc = sp.begin(JobKind::MailOut).unwrap();
    inc.write_file("mail.eml", report).unwrap();
    let rec = inc
        .commit(faxgate::spool::NewJob::new(faxgate::job::JobData::MailOut(
            faxgate::job::MailOutData {
                envelope: Envelope {
                    from: String::new(),
                    to: vec!["sender@example.com".into()],
                    envid: None,
                },
                purpose: faxgate::job::Purpose::Report {
                    report: faxgate::job::ReportKind::Dsn,
                    message: "6b0b5a000000000000aa".parse().ok(),
                },
                subject: String::new(),
                file: "mail.eml".into(),
            },
        )))
        .unwrap();
    let delivery = Delivery::from_config(&c).unwrap();
    let (_, dec) = mail_out::attempt(
        &sp,
        &delivery,
        &Policy::from(&c.retry),
        &Notices::from_config(&c),
        &rec.id,
    )
    .await
    .unwrap();
    assert_eq!(dec, Decision::Done);
    let got = relay.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["mail_from"], "<>", "null sender");
    assert_eq!(got[0].0["mail_options"], serde_json::json!([]));
    assert_eq!(got[0].0["rcpt_options"], serde_json::json!([[]]));
    same_bytes(&got[0].1, report);
}
