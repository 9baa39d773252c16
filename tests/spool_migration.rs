//! Old spools still load: `tests/fixtures/spool-v1/` is a spool written by the build before
//! job data was typed (record version 1: untyped JSON data, child relations only in the ids;
//! its README says how it was made). This build reads every record of it as typed data with
//! its relation, writes version 2 when it changes one, and a daemon started on it finishes the
//! work that was waiting.
//!
//! Debian packages: python3 is not needed; the daemon runs on the embedded default (loopback
//! line, Maildir).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::daemon::Daemon;
use faxgate::job::{Child, JobData, Purpose, ReportKind, Source};
use faxgate::spool::{Area, JobId, JobRecord, Spool, SpoolOptions};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/spool-v1");

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else if e.file_name() != "README.md" {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// The record fields that hold a time (milliseconds since the epoch), top level and per attempt.
const TIMES: [&str; 4] = ["created", "epoch", "next_due", "finished"];
const ATTEMPT_TIMES: [&str; 2] = ["started", "ended"];

/// Copies the fixture with every record's times moved so that its newest one lies ten minutes
/// ago: the spool looks as if its daemon stopped ten minutes before this one starts, whatever
/// day the test runs. Copied as written, the fixture's jobs would pass their kill time (3 h)
/// and relay give-up time a few hours after the fixture was made, and the daemon would rightly
/// fail them instead of finishing them.
fn copy_tree_as_if_recent(from: &Path, to: &Path) {
    copy_tree(from, to);
    let mut records = Vec::new();
    collect_records(to, &mut records);
    let mut newest = 0u64;
    let mut parsed = Vec::new();
    for path in records {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for_each_time(&v, &mut |t| newest = newest.max(t));
        parsed.push((path, v));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let shift = (now - 600_000).saturating_sub(newest);
    for (path, mut v) in parsed {
        shift_times(&mut v, shift);
        std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
}

fn collect_records(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            collect_records(&e.path(), out);
        } else if e.file_name() == "job.json" {
            out.push(e.path());
        }
    }
}

fn for_each_time(v: &serde_json::Value, f: &mut impl FnMut(u64)) {
    for k in TIMES {
        if let Some(t) = v[k].as_u64() {
            f(t);
        }
    }
    for a in v["attempts"].as_array().into_iter().flatten() {
        for k in ATTEMPT_TIMES {
            if let Some(t) = a[k].as_u64() {
                f(t);
            }
        }
    }
}

fn shift_times(v: &mut serde_json::Value, by: u64) {
    for k in TIMES {
        if let Some(t) = v[k].as_u64() {
            v[k] = (t + by).into();
        }
    }
    for a in v["attempts"].as_array_mut().into_iter().flatten() {
        for k in ATTEMPT_TIMES {
            if let Some(t) = a[k].as_u64() {
                a[k] = (t + by).into();
            }
        }
    }
}

fn id(s: &str) -> JobId {
    s.parse().unwrap()
}

fn all(spool: &Spool) -> BTreeMap<String, (Area, JobRecord)> {
    let mut out = BTreeMap::new();
    for area in [Area::Queue, Area::Done, Area::Failed] {
        let damaged = spool
            .scan(area, &mut |r| {
                out.insert(r.id.to_string(), (area, r));
            })
            .unwrap();
        assert!(damaged.is_empty(), "{area:?}: {damaged:?}");
    }
    out
}

#[test]
fn every_version_1_record_loads_typed_with_its_relation() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("spool");
    copy_tree(Path::new(FIXTURE), &root);
    let opts = SpoolOptions {
        min_free_bytes: 0,
        ..SpoolOptions::default()
    };
    let spool = Spool::open(&root, opts).unwrap();
    let jobs = all(&spool);
    assert_eq!(jobs.len(), 18, "{:?}", jobs.keys());

    // Every record is typed as its kind, and children know what they are to their parent.
    for (key, (_, r)) in &jobs {
        assert_eq!(r.data.kind(), r.kind, "{key}");
        assert_eq!(r.child.is_some(), r.parent.is_some(), "{key}");
        if let (Some(p), Some(c)) = (&r.parent, r.child) {
            assert_eq!(c.id_of(p).unwrap(), r.id, "{key}: relation and id agree");
        }
    }
    let get = |s: &str| &jobs[s].1;

    // The message that was faxed, its recipient's fax job and its success report.
    let msg = get("6b11674fc9023053ef9a");
    let JobData::Message(m) = &msg.data else {
        panic!("{:?}", msg.data)
    };
    assert_eq!(m.envelope.mail_from, "alice@example.org");
    assert_eq!(m.envelope.recipients[0].destination.e164, "+12125550123");
    let fax = get("6b11674fc9023053ef9a.1");
    assert_eq!(fax.child, Some(Child::Recipient(1)));
    let f = fax.data.as_fax_out().unwrap();
    assert_eq!((f.message.clone(), f.recipient), (msg.id.clone(), 1));
    assert_eq!(f.result.as_ref().unwrap().pages_sent, 1);
    assert_eq!(
        f.pages, None,
        "split before pages were stored: rendered at send"
    );
    let report = get("6b11674fc9023053ef9a.9000");
    assert_eq!(report.child, Some(Child::Report));
    let rm = report.data.as_mail_out().unwrap();
    assert_eq!(
        rm.purpose,
        Purpose::Report {
            report: ReportKind::Dsn,
            message: Some(msg.id.clone())
        }
    );
    assert_eq!(
        (rm.envelope.from.as_str(), rm.file.as_str()),
        ("", "mail.eml")
    );

    // Mail to the postmaster: forwarded to the operator.
    let pm = get("6b11674fb19915a21304.9700");
    assert_eq!(pm.child, Some(Child::Postmaster));
    assert_eq!(pm.data.as_mail_out().unwrap().purpose, Purpose::AdminNotice);

    // A received fax and its email.
    let fin = get("6b11674f9f45e62e26d7");
    assert_eq!(
        fin.data.as_fax_in().unwrap().reception.source,
        Source::Modem
    );
    let mail = get("6b11674f9f45e62e26d7.1");
    assert_eq!(mail.child, Some(Child::Mail(1)));
    assert_eq!(
        mail.data.as_mail_out().unwrap().purpose,
        Purpose::Fax {
            fax_job: Some(fin.id.clone())
        }
    );

    // What waits: two faxes, a submitted fax, an email of a received fax, a report.
    let queued: Vec<&str> = jobs
        .iter()
        .filter(|(_, (a, _))| *a == Area::Queue)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        queued,
        [
            "6b116754b818cb880297.1",
            "6b116754f4c52902c35d.9000",
            "6b116758f0a0a9e01590.1",
            "6b116758f0a0a9e01590.2",
            "6b11675fcb4176822cce"
        ]
    );
    assert_eq!(
        get("6b11675fcb4176822cce").data.as_fax_in().unwrap().to,
        ["bob@example.org"]
    );
    assert_eq!(jobs["6b116750328a3c7aee7a"].0, Area::Failed);

    // A change writes the record as version 2; it reads back the same.
    let waiting = id("6b116758f0a0a9e01590.2");
    let before = spool.get(&waiting).unwrap().1;
    spool
        .update(&waiting, |r| {
            r.priority = 100;
            Ok(())
        })
        .unwrap();
    let path = spool
        .payload_path(&waiting, "message.eml")
        .unwrap()
        .with_file_name("job.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    assert!(text.contains("\"fax-out\": {"), "typed data: {text}");
    let after = spool.get(&waiting).unwrap().1;
    assert_eq!(after.data, before.data);
    assert_eq!(after.child, Some(Child::Recipient(2)));
    assert_eq!(after.priority, 100);
}

#[test]
fn a_daemon_started_on_a_version_1_spool_finishes_its_work() {
    let d = tempfile::tempdir().unwrap();
    let mut gw = Daemon::new(d.path());
    copy_tree_as_if_recent(Path::new(FIXTURE), &gw.data().join("spool"));
    gw.start(&[]);
    // Two faxes go out over the loopback line and come back as two received faxes' emails;
    // the submitted fax becomes an email to bob; the waiting fax email and report go out.
    let mails = gw.wait_mail("the five mails the old spool owed", |m| m.len() >= 5);
    let text: Vec<String> = mails
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let count = |needle: &str| text.iter().filter(|t| t.contains(needle)).count();
    assert_eq!(count("To: bob@example.org"), 1, "{text:#?}");
    assert_eq!(count("Content-Type: multipart/report"), 1, "one report");
    assert_eq!(count("image/tiff"), 4, "four fax emails");
    // Nothing is left waiting.
    let status = gw.status(false);
    assert!(status.contains(" 0 jobs queued"), "{status}");
    let spool_list = gw.cmd().args(["queue", "list"]).output().unwrap();
    let out = String::from_utf8_lossy(&spool_list.stdout);
    assert_eq!(out.lines().count(), 1, "only the header line: {out}");
    let status = gw.signal(libc::SIGTERM);
    assert!(status.success(), "{}", gw.log());
    assert_eq!(gw.mails().len(), 5, "exactly five");
}
