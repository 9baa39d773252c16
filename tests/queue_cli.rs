//! `faxgate queue list | show | retry | cancel | purge`, run as a separate process beside a
//! spool that this test holds open as its owner (the daemon running), and with it closed.

mod common;

use std::path::Path;
use std::process::Output;

use faxgate::scheduler::GiveUp;
use faxgate::spool::{Area, JobData, JobKind, JobRecord, JobState, NewJob, Spool, SpoolOptions};
use serde_json::json;

fn queue(cwd: &Path, spool: &Path, args: &[&str]) -> Output {
    common::faxgate(cwd)
        .arg("queue")
        .arg("--spool")
        .arg(spool)
        .args(args)
        .output()
        .expect("run faxgate")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn commit(s: &Spool, kind: JobKind, body: &[u8]) -> JobRecord {
    let mut inc = s.begin(kind).unwrap();
    inc.write_file("message.eml", body).unwrap();
    inc.commit(NewJob::new(data(kind))).unwrap()
}

/// Minimal data of a fax or mail job (through the version-1 reader, which takes JSON).
fn data(kind: JobKind) -> JobData {
    let v = match kind {
        JobKind::FaxOut => json!({
            "message": "6b0b5ae65504f019e0e3", "recipient": 1, "rcpt": "FAX=+12125550142@h",
            "e164": "+12125550142", "dial": "12125550142", "pages_total": 1,
            "options": {"resolution": "fine", "cover_page": false, "subject": ""},
        }),
        JobKind::FaxIn => json!({
            "reception": {"source": "submit", "pages": 1, "received": 0,
                          "completion": {"result": "complete"}},
        }),
        _ => json!({"envelope": {"from": "", "to": ["b@example.org"]}, "file": "message.eml"}),
    };
    JobData::from_v1(kind, v).unwrap()
}

#[test]
fn queue_commands_beside_a_running_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let opts = SpoolOptions {
        min_free_bytes: 0,
        ..SpoolOptions::default()
    };
    // The "daemon": owns the spool for the whole test.
    let owner = Spool::open(&dir, opts).unwrap();
    let a = commit(&owner, JobKind::FaxOut, b"fax one");
    let b = commit(&owner, JobKind::MailOut, b"mail two");
    owner
        .update(&a.id, |r| {
            r.next_due = faxgate::scheduler::Timestamp(r.next_due.0 + 3_600_000);
            Ok(())
        })
        .unwrap();

    // list
    let o = queue(tmp.path(), &dir, &["list"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("id "), "{out}");
    assert!(out.contains(&format!("{} fax-out   queued", a.id)), "{out}");
    assert!(out.contains(&format!("{} mail-out  queued", b.id)), "{out}");

    // show
    let o = queue(tmp.path(), &dir, &["show", a.id.as_str()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("# file message.eml (7 bytes)"), "{out}");
    assert!(out.contains("# file job.json"), "{out}");
    let json_start = out.find('{').unwrap();
    let shown: JobRecord = serde_json::from_str(&out[json_start..]).unwrap();
    assert_eq!(shown.id, a.id);
    match &shown.data {
        JobData::FaxOut(f) => assert_eq!(f.e164, "+12125550142"),
        other => panic!("{other:?}"),
    }

    // retry: due now (the owner sees the change at once: same files, same locks)
    let o = queue(tmp.path(), &dir, &["retry", a.id.as_str()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("retried: now queued"), "{}", text(&o));
    let (_, r) = owner.get(&a.id).unwrap();
    assert!(r.next_due < a.next_due.plus(std::time::Duration::from_secs(3600)));
    assert!(r.next_due >= a.next_due);

    // cancel: into failed/, listed with --all only
    let o = queue(tmp.path(), &dir, &["cancel", b.id.as_str()]);
    assert!(o.status.success(), "{}", text(&o));
    let (area, r) = owner.get(&b.id).unwrap();
    assert_eq!((area, r.state), (Area::Failed, JobState::Failed));
    assert_eq!(r.failure, Some(GiveUp::Cancelled));
    let out = text(&queue(tmp.path(), &dir, &["list"]));
    assert!(!out.contains(b.id.as_str()), "{out}");
    let out = text(&queue(tmp.path(), &dir, &["list", "--all"]));
    assert!(
        out.contains(&format!("{} mail-out  failed", b.id))
            && out.contains("cancelled by the operator"),
        "{out}"
    );

    // cancel again: not in the queue → exit 1 with a message
    let o = queue(tmp.path(), &dir, &["cancel", b.id.as_str()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("no job {}", b.id)),
        "{}",
        text(&o)
    );

    // retry a failed job: back into the queue
    let o = queue(tmp.path(), &dir, &["retry", b.id.as_str()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(owner.get(&b.id).unwrap().0, Area::Queue);

    // bad and unknown ids
    let o = queue(tmp.path(), &dir, &["show", "../../etc/passwd"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not a job id"), "{}", text(&o));
    let o = queue(tmp.path(), &dir, &["retry", "00000000000000000000"]);
    assert_eq!(o.status.code(), Some(1));

    // purge: retention first (nothing is old), then --all
    owner
        .finish(&a.id, faxgate::spool::now(), faxgate::spool::Final::Done)
        .unwrap();
    let o = queue(tmp.path(), &dir, &["purge"]);
    assert!(
        text(&o).contains("purged 0 archived job(s)"),
        "{}",
        text(&o)
    );
    assert_eq!(owner.get(&a.id).unwrap().0, Area::Done);
    let o = queue(tmp.path(), &dir, &["purge", "--all"]);
    assert!(
        text(&o).contains("purged 1 archived job(s)"),
        "{}",
        text(&o)
    );
    assert!(owner.get(&a.id).is_err());
    // The queued job is untouched by purge.
    assert_eq!(owner.get(&b.id).unwrap().0, Area::Queue);
}

#[test]
fn queue_uses_the_configured_spool_and_needs_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::write(
        tmp.path().join("faxgate.toml"),
        format!(
            "[gateway]\ndata_dir = \"{}\"\n[spool]\ndir = \"q\"\n",
            data.display()
        ),
    )
    .unwrap();
    // No spool there yet: an error naming the directory, not a new empty spool.
    let o = common::faxgate(tmp.path())
        .args(["queue", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not a spool directory"), "{}", text(&o));

    let s = Spool::open(
        &data.join("q"),
        SpoolOptions {
            min_free_bytes: 0,
            ..SpoolOptions::default()
        },
    )
    .unwrap();
    let j = commit(&s, JobKind::FaxIn, b"II*\0");
    drop(s); // daemon stopped
    let o = common::faxgate(tmp.path())
        .args(["queue", "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{} fax-in", j.id)),
        "{}",
        text(&o)
    );
}
