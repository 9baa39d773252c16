//! RFC 5321 §4.5.1 in the offramp: a committed `Message` with postmaster recipients becomes a
//! `MailOut` job carrying the message unchanged to `gateway.admin` (child `Child::Postmaster`,
//! once however often the split runs); fax recipients of the same message still get their fax
//! jobs, and a message only for the postmaster is never rendered.

use std::cell::Cell;

use faxgate::config::Config;
use faxgate::delivery::mail_out::{self, Purpose};
use faxgate::job::{Child, JobData};
use faxgate::mail::address::{AddressForm, Number};
use faxgate::mail::dialplan::Destination;
use faxgate::offramp::causes::Cause;
use faxgate::offramp::document::Prepared;
use faxgate::offramp::jobs::{self, MessageData, Split};
use faxgate::offramp::options::SenderOptions;
use faxgate::smtp::session::{ClientInfo, Envelope, Recipient};
use faxgate::spool::{Area, JobId, JobKind, NewJob, Spool, SpoolOptions};

const EML: &[u8] = b"Received: from client.example ([127.0.0.1])\r\n\tby gw (faxgate) with ESMTP id Q1\r\n\
From: alice@example.org\r\nTo: postmaster@fax.example\r\nSubject: Your gateway\r\n\r\nHello postmaster.\r\n";

fn fax(n: &str) -> Recipient {
    Recipient {
        address: format!("FAX=+{n}@fax.example"),
        number: Number::Global(n.into()),
        form: AddressForm::Rfc3192,
        subaddress: None,
        destination: Destination {
            e164: format!("+{n}"),
            dial: n.into(),
            international: false,
        },
        notify: None,
        orcpt: None,
    }
}

fn envelope(recipients: Vec<Recipient>, postmaster: &[&str]) -> Envelope {
    Envelope {
        mail_from: "alice@example.org".into(),
        size: None,
        body: None,
        ret: None,
        envid: Some("E-7".into()),
        mail_auth: None,
        recipients,
        postmaster: postmaster.iter().map(|s| s.to_string()).collect(),
        client: ClientInfo {
            ip: "127.0.0.1".parse().unwrap(),
            port: 1,
            helo: "client.example".into(),
            esmtp: true,
        },
        auth_user: None,
        tls: None,
    }
}

fn config() -> Config {
    let mut c = Config::default();
    c.gateway.admin = "ops@example.net".into();
    c.gateway.hostname = "GW".into();
    c
}

fn commit(spool: &Spool, env: Envelope) -> JobId {
    commit_bytes(spool, env, EML)
}

fn commit_bytes(spool: &Spool, env: Envelope, eml: &[u8]) -> JobId {
    let mut inc = spool.begin(JobKind::Message).unwrap();
    inc.write_file(jobs::MESSAGE_FILE, eml).unwrap();
    let data = MessageData {
        envelope: env,
        file: jobs::MESSAGE_FILE.into(),
        size: eml.len() as u64,
        received: "2026-11-29T00:00:00Z".into(),
    };
    inc.commit(NewJob::new(JobData::from(data.clone())))
        .unwrap()
        .id
}

/// The forwarded job is a `MailOut` the delivery worker reads: to the admin, from the original
/// sender, the message byte for byte.
fn assert_forward(spool: &Spool, msg: &JobId, job: &JobId) {
    assert_eq!(job, &msg.child(Child::Postmaster.number()).unwrap());
    let (area, rec) = spool.get(job).unwrap();
    assert_eq!(area, Area::Queue);
    assert_eq!(rec.kind, JobKind::MailOut);
    assert_eq!(rec.parent.as_ref(), Some(msg));
    let data = mail_out::data_of(&rec).unwrap();
    assert_eq!(data.envelope.to, ["ops@example.net"]);
    assert_eq!(data.envelope.from, "alice@example.org");
    assert_eq!(data.envelope.envid.as_deref(), Some("E-7"));
    assert_eq!(data.purpose, Purpose::AdminNotice);
    assert_eq!(data.subject, "Your gateway");
    let bytes = std::fs::read(spool.payload_path(job, &data.file).unwrap()).unwrap();
    assert_eq!(bytes, EML);
}

fn mail_outs(spool: &Spool) -> usize {
    spool
        .load()
        .unwrap()
        .jobs
        .iter()
        .filter(|j| j.kind == JobKind::MailOut)
        .count()
}

#[test]
fn postmaster_only_is_forwarded_without_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let cfg = config();
    let id = commit(
        &spool,
        envelope(vec![], &["postmaster", "Postmaster@fax.example"]),
    );
    let renders = Cell::new(0);
    let check = |_: &[u8], _: &SenderOptions| -> Result<Prepared, Cause> {
        renders.set(renders.get() + 1);
        Ok(one_page())
    };
    let s = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    let Split::Forwarded { job } = &s else {
        panic!("{s:?}")
    };
    assert_forward(&spool, &id, job);
    assert_eq!(renders.get(), 0, "nothing to fax: nothing rendered");
    assert_eq!(spool.get(&id).unwrap().0, Area::Done);
    assert_eq!(
        mail_outs(&spool),
        1,
        "one copy for two postmaster recipients"
    );
    // After a crash the split runs again: the same job, no second copy.
    let again = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    assert_eq!(again, s);
    assert_eq!(mail_outs(&spool), 1);
}

#[test]
fn fax_and_postmaster_recipients_get_both() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let cfg = config();
    let id = commit(
        &spool,
        envelope(vec![fax("12125550123")], &["POSTMASTER@fax.example"]),
    );
    let check = |_: &[u8], _: &SenderOptions| -> Result<Prepared, Cause> { Ok(one_page()) };
    let s = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    let Split::Faxes {
        pages: 1,
        jobs: faxes,
        forwarded: Some(job),
    } = &s
    else {
        panic!("{s:?}")
    };
    assert_eq!(faxes, &[id.child(1).unwrap()]);
    let (_, rec) = spool.get(&faxes[0]).unwrap();
    assert_eq!(rec.kind, JobKind::FaxOut);
    assert_forward(&spool, &id, job);
    let again = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    assert_eq!(again, s);
    assert_eq!(mail_outs(&spool), 1);
}

#[test]
fn postmaster_copy_goes_even_when_the_fax_fails() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let cfg = config();
    let id = commit(&spool, envelope(vec![fax("12125550123")], &["postmaster"]));
    let check = |_: &[u8], _: &SenderOptions| -> Result<Prepared, Cause> {
        Err(Cause::GatewayError {
            detail: "test: cannot render".into(),
        })
    };
    let s = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    let Split::Failed {
        forwarded: Some(job),
        report,
        ..
    } = &s
    else {
        panic!("{s:?}")
    };
    assert_forward(&spool, &id, job);
    // The failure report (if the sender gets one) is a different child.
    assert_ne!(report.as_ref(), Some(job));
    assert_eq!(spool.get(&id).unwrap().0, Area::Failed);
}

#[test]
fn no_postmaster_no_copy() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let cfg = config();
    let id = commit(&spool, envelope(vec![fax("12125550123")], &[]));
    let check = |_: &[u8], _: &SenderOptions| -> Result<Prepared, Cause> { Ok(one_page()) };
    let s = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    assert!(
        matches!(
            s,
            Split::Faxes {
                forwarded: None,
                ..
            }
        ),
        "{s:?}"
    );
    assert_eq!(mail_outs(&spool), 0);
}

/// An envelope stored before postmaster recipients existed still parses (no `postmaster`).
#[test]
fn old_envelopes_parse() {
    let mut v = serde_json::to_value(envelope(vec![fax("12125550123")], &[])).unwrap();
    v.as_object_mut().unwrap().remove("postmaster");
    let env: Envelope = serde_json::from_value(v).unwrap();
    assert!(env.postmaster.is_empty());
}

/// RFC 5321 §6.3: the copy came back (our Received twice): not forwarded again; the
/// postmaster-only message is an error for the operator, a mixed one still faxes.
#[test]
fn a_returning_copy_is_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let cfg = config();
    let mut looped =
        b"Received: from gw ([127.0.0.1])\r\n\tby gw (faxgate) with ESMTP id Q2\r\n".to_vec();
    looped.extend_from_slice(EML);
    assert_eq!(jobs::passes_through_us(EML, "gw"), 1);
    assert_eq!(jobs::passes_through_us(&looped, "GW"), 2);
    assert_eq!(jobs::passes_through_us(&looped, "other"), 0);
    // Only the header counts.
    assert_eq!(
        jobs::passes_through_us(b"Subject: x\r\n\r\nReceived: by gw (faxgate)\r\n", "gw"),
        0
    );
    let check = |_: &[u8], _: &SenderOptions| -> Result<Prepared, Cause> { Ok(one_page()) };
    let id = commit_bytes(&spool, envelope(vec![], &["postmaster"]), &looped);
    let e = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap_err();
    assert!(matches!(e, jobs::JobsError::MailLoop(_)), "{e}");
    let id = commit_bytes(
        &spool,
        envelope(vec![fax("12125550123")], &["postmaster"]),
        &looped,
    );
    let s = jobs::split_message(&spool, &id, &cfg, &check, faxgate::spool::now()).unwrap();
    assert!(
        matches!(
            s,
            Split::Faxes {
                forwarded: None,
                ..
            }
        ),
        "{s:?}"
    );
    assert_eq!(mail_outs(&spool), 0);
}

proptest::proptest! {
    /// Loop detection reads untrusted message bytes: never panics.
    #[test]
    fn loop_scan_never_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
        let n = jobs::passes_through_us(&raw, "gw");
        proptest::prop_assert!(n <= raw.len());
    }
}

/// What the split keeps of a one-page document (a blank A4 page).
fn one_page() -> Prepared {
    let page = faxgate::image::Page::new(1728, 1143, faxgate::image::Resolution::FINE).unwrap();
    let mut w = faxgate::image::tiff::Writer::new(
        std::io::Cursor::new(Vec::new()),
        faxgate::image::tiff::Profile::F(faxgate::image::codec::Coding::Mmr),
    )
    .unwrap();
    w.write_page(&page).unwrap();
    Prepared {
        pages_total: 1,
        body: w.finish().unwrap().into_inner(),
        from: String::new(),
    }
}
