//! Spool unit tests: commit, updates, archives, recovery, limits, damaged input.

use super::*;
use crate::job::data::sample;
use crate::scheduler::{CauseClass, GiveUp, Policy};
use proptest::prelude::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs * 1000)
}

fn opts() -> SpoolOptions {
    SpoolOptions {
        min_free_bytes: 0,
        ..SpoolOptions::default()
    }
}

fn fresh() -> (tempfile::TempDir, Spool) {
    let d = tempfile::tempdir().unwrap();
    let s = Spool::open_at(d.path(), opts(), T0).unwrap();
    (d, s)
}

fn commit(s: &Spool, kind: JobKind, body: &[u8]) -> JobRecord {
    let mut inc = s.begin(kind).unwrap();
    inc.write_file("message.eml", body).unwrap();
    inc.commit_at(NewJob::new(sample(kind, &body.len().to_string())), T0)
        .unwrap()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

fn busy() -> Outcome {
    Outcome {
        cause: CauseClass::Busy,
        detail: "BUSY".into(),
        pages_sent: 0,
        connected: false,
    }
}

#[test]
fn commit_then_load_finds_job_and_payload() {
    let (d, s) = fresh();
    let r = commit(&s, JobKind::Message, b"hello");
    assert_eq!(r.state, JobState::Queued);
    assert_eq!(r.next_due, T0);
    assert_eq!(count(&d.path().join("incoming")), 0);
    let l = s.load().unwrap();
    assert_eq!(l.jobs, vec![r.clone()]);
    assert!(l.damaged.is_empty());
    let p = s.payload_path(&r.id, "message.eml").unwrap();
    assert!(p.starts_with(d.path().join("queue").join(r.id.bucket())));
    assert_eq!(fs::read(p).unwrap(), b"hello");
    // A fresh owner (after the first is gone) loads the same.
    drop(s);
    let s2 = Spool::open_at(d.path(), opts(), T0).unwrap();
    assert_eq!(s2.load().unwrap().jobs, vec![r]);
}

#[test]
fn dropped_incoming_leaves_nothing() {
    let (d, s) = fresh();
    let mut inc = s.begin(JobKind::FaxIn).unwrap();
    inc.write_file("fax.tif", b"II*\0").unwrap();
    assert_eq!(count(&d.path().join("incoming")), 1);
    drop(inc);
    assert_eq!(count(&d.path().join("incoming")), 0);
    assert!(s.load().unwrap().jobs.is_empty());
}

#[test]
fn incoming_leftovers_are_purged_at_open() {
    let d = tempfile::tempdir().unwrap();
    let s = Spool::open_at(d.path(), opts(), T0).unwrap();
    // As if the process died while writing (a leaked Incoming would keep the lock, so lay
    // the leftover down by hand).
    let half = d.path().join("incoming").join("6b0b58f1d49fa751bc16-1-0");
    fs::create_dir(&half).unwrap();
    fs::write(half.join("message.eml"), b"half").unwrap();
    drop(s);
    assert_eq!(count(&d.path().join("incoming")), 1);
    let s = Spool::open_at(d.path(), opts(), T0).unwrap();
    assert_eq!(count(&d.path().join("incoming")), 0);
    assert!(s.load().unwrap().jobs.is_empty());
}

#[test]
fn reserve_refuses_with_temporary_error() {
    let d = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        min_free_bytes: u64::MAX,
        ..SpoolOptions::default()
    };
    let s = Spool::open_at(d.path(), o, T0).unwrap();
    let e = s.begin(JobKind::Message).unwrap_err();
    assert!(matches!(e, SpoolError::NoSpace { .. }), "{e}");
    assert!(e.is_temporary() && e.is_out_of_space());
    assert_eq!(count(&d.path().join("incoming")), 0);
}

#[test]
fn owner_lock_is_exclusive() {
    let (d, s) = fresh();
    let e = Spool::open_at(d.path(), opts(), T0).unwrap_err();
    assert!(matches!(e, SpoolError::Locked(_)), "{e}");
    // The CLI's attach works beside the owner.
    let c = Spool::attach(d.path(), opts()).unwrap();
    let r = commit(&s, JobKind::MailOut, b"x");
    assert_eq!(c.get(&r.id).unwrap().0, Area::Queue);
}

#[test]
fn bad_payload_names_refused() {
    let (_d, s) = fresh();
    let mut inc = s.begin(JobKind::Message).unwrap();
    for bad in [
        "",
        "job.json",
        "jobx",
        "../x",
        "a/b",
        ".hidden",
        "a b",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(inc.create_file(bad), Err(SpoolError::BadName(_))),
            "{bad:?}"
        );
    }
    inc.write_file("fax-1.tif", b"").unwrap();
    assert!(matches!(
        inc.create_file("fax-1.tif"),
        Err(SpoolError::BadName(_))
    ));
}

#[test]
fn attempts_requeue_then_done_moves_to_done() {
    let (d, s) = fresh();
    let p = Policy::default();
    let r = commit(&s, JobKind::FaxOut, b"page");
    let r1 = s.start_attempt(&r.id, at(0), Some("m0")).unwrap();
    assert_eq!(r1.state, JobState::Running);
    assert!(matches!(
        s.start_attempt(&r.id, at(0), None),
        Err(SpoolError::WrongState { .. })
    ));
    let (r2, dec) = s.end_attempt(&r.id, at(30), busy(), &p).unwrap();
    assert_eq!(dec, Decision::RetryAt(at(210)));
    assert_eq!((r2.state, r2.next_due), (JobState::Queued, at(210)));
    assert_eq!(r2.attempts[0].modem.as_deref(), Some("m0"));
    assert!(matches!(
        s.end_attempt(&r.id, at(31), busy(), &p),
        Err(SpoolError::WrongState { .. })
    ));
    s.start_attempt(&r.id, at(210), Some("m1")).unwrap();
    let done = Outcome {
        cause: CauseClass::Done,
        detail: "MCF".into(),
        pages_sent: 1,
        connected: true,
    };
    let (r3, dec) = s.end_attempt(&r.id, at(260), done, &p).unwrap();
    assert_eq!(dec, Decision::Done);
    assert_eq!((r3.state, r3.finished), (JobState::Done, Some(at(260))));
    assert!(s.load().unwrap().jobs.is_empty());
    assert_eq!(s.get(&r.id).unwrap(), (Area::Done, r3));
    assert_eq!(
        fs::read(
            d.path()
                .join("done")
                .join(r.id.bucket())
                .join(r.id.as_str())
                .join("message.eml")
        )
        .unwrap(),
        b"page"
    );
    assert!(matches!(
        s.start_attempt(&r.id, at(300), None),
        Err(SpoolError::NotFound(_))
    ));
}

#[test]
fn interrupted_attempt_is_counted_and_retried_after_restart() {
    let d = tempfile::tempdir().unwrap();
    let s = Spool::open_at(d.path(), opts(), T0).unwrap();
    let r = commit(&s, JobKind::FaxOut, b"page");
    s.start_attempt(&r.id, at(5), Some("m0")).unwrap();
    drop(s); // the daemon dies mid-call
    let s = Spool::open_at(d.path(), opts(), at(100)).unwrap();
    let (_, r) = s.get(&r.id).unwrap();
    assert_eq!(r.state, JobState::Queued);
    assert_eq!(r.next_due, at(100));
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].cause, Some(CauseClass::Interrupted));
    assert_eq!(r.attempts[0].ended, Some(at(100)));
    assert_eq!(r.dials_and_tries(), (1, 0));
}

#[test]
fn interrupted_attempt_past_limits_fails() {
    let d = tempfile::tempdir().unwrap();
    let s = Spool::open_at(d.path(), opts(), T0).unwrap();
    let r = commit(&s, JobKind::FaxOut, b"page");
    s.start_attempt(&r.id, at(5), Some("m0")).unwrap();
    drop(s);
    // Restarted after the kill time: the job fails instead of dialling again.
    let s = Spool::open_at(d.path(), opts(), at(4 * 3600)).unwrap();
    let (area, r) = s.get(&r.id).unwrap();
    assert_eq!(area, Area::Failed);
    assert_eq!(r.failure, Some(GiveUp::KillTime));
}

#[test]
fn final_record_left_in_queue_is_moved_and_tmp_removed_at_open() {
    let d = tempfile::tempdir().unwrap();
    let s = Spool::open_at(d.path(), opts(), T0).unwrap();
    let r = commit(&s, JobKind::MailOut, b"m");
    let dir = s.job_dir(Area::Queue, &r.id);
    let mut fin = r.clone();
    fin.state = JobState::Done;
    fin.finished = Some(at(1));
    Spool::write_record_as(&dir, &fin, true).unwrap();
    fs::write(dir.join(RECORD_TMP), b"{half").unwrap();
    drop(s);
    let s = Spool::open_at(d.path(), opts(), at(2)).unwrap();
    let (area, got) = s.get(&r.id).unwrap();
    assert_eq!((area, got.state), (Area::Done, JobState::Done));
    assert!(!s.job_dir(Area::Done, &r.id).join(RECORD_TMP).exists());
}

#[test]
fn cancel_retry_and_purge() {
    let (d, s) = fresh();
    let r = commit(&s, JobKind::FaxOut, b"p");
    let c = s.cancel(&r.id, at(10)).unwrap();
    assert_eq!(c.failure, Some(GiveUp::Cancelled));
    assert_eq!(s.get(&r.id).unwrap().0, Area::Failed);
    assert!(matches!(
        s.cancel(&r.id, at(11)),
        Err(SpoolError::NotFound(_))
    ));
    let back = s.retry(&r.id, at(20)).unwrap();
    assert_eq!(
        (back.state, back.next_due, back.epoch, back.failure.clone()),
        (JobState::Queued, at(20), at(20), None)
    );
    assert_eq!(s.get(&r.id).unwrap().0, Area::Queue);
    // Retry of a queued job makes it due now.
    let later = s.update(&r.id, |x| {
        x.next_due = at(9999);
        Ok(())
    });
    assert_eq!(later.unwrap().next_due, at(9999));
    assert_eq!(s.retry(&r.id, at(30)).unwrap().next_due, at(30));
    // Retention: done kept 7 days, failed 30 days by default.
    s.finish(&r.id, at(40), Final::Done).unwrap();
    let f = commit(&s, JobKind::MailOut, b"q");
    s.finish(&f.id, at(40), Final::Failed(GiveUp::Fatal))
        .unwrap();
    assert_eq!(s.purge_archives(at(40 + 7 * 86400 - 1), false).unwrap(), 0);
    assert_eq!(s.purge_archives(at(40 + 7 * 86400), false).unwrap(), 1);
    assert!(matches!(s.get(&r.id), Err(SpoolError::NotFound(_))));
    assert_eq!(s.get(&f.id).unwrap().0, Area::Failed);
    assert_eq!(s.purge_archives(at(50), true).unwrap(), 1);
    assert!(matches!(s.get(&f.id), Err(SpoolError::NotFound(_))));
    assert_eq!(count(&d.path().join("trash")), 0);
}

#[test]
fn child_jobs_are_idempotent() {
    let (_d, s) = fresh();
    let parent = commit(&s, JobKind::Message, b"msg");
    let mk = |n| {
        let mut inc = s
            .begin_child(JobKind::FaxOut, &parent.id, Child::Recipient(n))
            .unwrap();
        inc.write_file("fax.tif", b"t").unwrap();
        inc.commit_at(NewJob::new(sample(JobKind::FaxOut, "")), T0)
    };
    let c1 = mk(1).unwrap();
    assert_eq!(c1.id.as_str(), format!("{}.1", parent.id));
    assert_eq!(c1.parent.as_ref(), Some(&parent.id));
    assert_eq!(c1.child, Some(Child::Recipient(1)));
    // The relation survives the round trip through the record file.
    assert_eq!(s.get(&c1.id).unwrap().1.child, Some(Child::Recipient(1)));
    assert_eq!(c1.id.bucket(), parent.id.bucket());
    assert!(matches!(mk(1), Err(SpoolError::Exists(_))));
    s.finish(&c1.id, at(1), Final::Done).unwrap();
    assert!(matches!(mk(1), Err(SpoolError::Exists(_))));
    assert!(mk(2).is_ok());
    assert_eq!(s.load().unwrap().jobs.len(), 2);
    assert_eq!(count(&s.root().join("incoming")), 0);
}

#[test]
fn damaged_records_are_reported_not_fatal() {
    let (d, s) = fresh();
    let r = commit(&s, JobKind::MailOut, b"m");
    let dir = s.job_dir(Area::Queue, &r.id);
    fs::write(dir.join(RECORD_FILE), b"{\"version\": 1, \"id\": ").unwrap();
    fs::create_dir_all(d.path().join("queue/zz/not-a-job")).unwrap();
    fs::write(d.path().join("queue/stray-file"), b"x").unwrap();
    let l = s.load().unwrap();
    assert!(l.jobs.is_empty());
    assert_eq!(l.damaged.len(), 3, "{:?}", l.damaged);
    assert!(matches!(s.get(&r.id), Err(SpoolError::Damaged { .. })));
    let big = vec![b' '; MAX_RECORD_BYTES + 10];
    fs::write(dir.join(RECORD_FILE), big).unwrap();
    assert!(matches!(
        s.get(&r.id),
        Err(SpoolError::Damaged {
            source: RecordError::TooLarge(_),
            ..
        })
    ));
}

#[test]
fn job_ids() {
    let id = JobId::new(Timestamp(0x6b0b_58f1 * 1000 + 999), 0xdead_beef_cafe_f00d);
    assert_eq!(id.as_str(), "6b0b58f1beefcafef00d");
    assert_eq!(id.bucket(), "0d");
    for bad in [
        "",
        "xyz",
        "6b0b58f1d49fa751bc1",
        "6b0b58f1d49fa751bc16.0",
        "6b0b58f1d49fa751bc16.",
        "6B0B58F1D49FA751BC16",
        "6b0b58f1d49fa751bc16.12345",
        "6b0b58f1d49fa751bc16/x",
    ] {
        assert!(bad.parse::<JobId>().is_err(), "{bad:?}");
    }
    assert!("6b0b58f1d49fa751bc16.9999".parse::<JobId>().is_ok());
}

fn sample_record() -> JobRecord {
    JobRecord {
        version: RECORD_VERSION,
        id: JobId::new(T0, 42),
        kind: JobKind::FaxOut,
        state: JobState::Queued,
        created: T0,
        epoch: T0,
        next_due: at(60),
        priority: 127,
        attempts: vec![Attempt {
            started: T0,
            ended: Some(at(1)),
            cause: Some(CauseClass::NoAnswer),
            detail: "NO CARRIER".into(),
            pages_sent: 0,
            modem: Some("m0".into()),
            connected: false,
            fax_options: None,
        }],
        counted_from: 0,
        failure: None,
        finished: None,
        parent: None,
        child: None,
        data: sample(JobKind::FaxOut, "FAX=+12125550142@example.org"),
    }
}

proptest! {
    #[test]
    fn record_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = JobRecord::from_bytes(&bytes, None);
    }

    #[test]
    fn record_decoder_survives_mutated_records(
        cut in 0usize..2000, flip in 0usize..2000, byte in any::<u8>()
    ) {
        let r = sample_record();
        let mut b = r.to_bytes();
        if !b.is_empty() {
            let i = flip % b.len();
            b[i] = byte;
            b.truncate(cut.min(b.len()));
        }
        if let Ok(got) = JobRecord::from_bytes(&b, Some(&r.id)) {
            prop_assert_eq!(got.id, r.id);
        }
    }

    #[test]
    fn job_id_parse_never_panics_and_round_trips(s in "[0-9a-f.]{0,30}|\\PC{0,30}") {
        if let Ok(id) = s.parse::<JobId>() {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert_eq!(id.bucket().len(), 2);
        }
    }

}

proptest! {
    // Each case commits to disk (fsyncs): fewer cases.
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn records_round_trip(prio in any::<u8>(), n in 0usize..20, due in any::<u64>()) {
        let (_d, s) = fresh();
        let mut inc = s.begin(JobKind::MailOut).unwrap();
        inc.write_file("m", b"").unwrap();
        let job = NewJob { priority: prio, due: Some(Timestamp(due)), data: sample(JobKind::MailOut, &n.to_string()) };
        let r = inc.commit_at(job, T0).unwrap();
        prop_assert_eq!(JobRecord::from_bytes(&r.to_bytes(), Some(&r.id)).unwrap(), r);
    }
}

#[test]
fn concurrent_updates_from_two_handles_lose_nothing() {
    // The daemon (owner) and the CLI (attached) change the same record at once: the flock on
    // the job directory serialises the read-modify-write cycles.
    let (d, owner) = fresh();
    let r = commit(&owner, JobKind::MailOut, b"m");
    let cli = Spool::attach(d.path(), opts()).unwrap();
    std::thread::scope(|s| {
        for h in [&owner, &cli] {
            let id = r.id.clone();
            s.spawn(move || {
                for _ in 0..25 {
                    h.update(&id, |x| {
                        x.priority = x.priority.wrapping_add(1);
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(owner.get(&r.id).unwrap().1.priority, 127u8.wrapping_add(50));
}

#[test]
fn high_water_mark_refuses_new_jobs_but_not_children() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SpoolOptions {
        max_queued: 2,
        min_free_bytes: 0,
        ..SpoolOptions::default()
    };
    let s = Spool::open(dir.path(), opts).unwrap();
    let a = s
        .begin(JobKind::Message)
        .unwrap()
        .commit(NewJob::new(sample(JobKind::Message, "")))
        .unwrap();
    s.begin(JobKind::Message)
        .unwrap()
        .commit(NewJob::new(sample(JobKind::Message, "")))
        .unwrap();
    assert_eq!(s.queued(), 2);
    match s.begin(JobKind::Message) {
        Err(e @ SpoolError::QueueFull { queued: 2, max: 2 }) => {
            assert!(e.is_temporary() && e.is_out_of_space(), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Work derived from accepted jobs is never refused.
    s.begin_child(JobKind::FaxOut, &a.id, Child::Recipient(1))
        .unwrap()
        .commit(NewJob::new(sample(JobKind::FaxOut, "")))
        .unwrap();
    assert_eq!(s.queued(), 3);
    // Finishing jobs lowers the count; a retried failed job raises it again.
    s.finish(&a.id, now(), Final::Failed(GiveUp::Cancelled))
        .unwrap();
    assert_eq!(s.queued(), 2);
    s.retry(&a.id, now()).unwrap();
    assert_eq!(s.queued(), 3);
    // At start-up the count is read from the queue.
    drop(s);
    let s = Spool::open(
        dir.path(),
        SpoolOptions {
            max_queued: 4,
            min_free_bytes: 0,
            ..SpoolOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s.queued(), 3);
    s.begin(JobKind::Message)
        .unwrap()
        .commit(NewJob::new(sample(JobKind::Message, "")))
        .unwrap();
    assert!(matches!(
        s.begin(JobKind::Message),
        Err(SpoolError::QueueFull { .. })
    ));
}

#[test]
fn an_opened_attempt_is_one_like_any_and_its_figures_go_with_its_end() {
    let (_d, s) = fresh();
    let p = Policy::default();
    let r = commit(&s, JobKind::FaxOut, b"page");
    // Opened without the fsyncs: the record says running all the same, and a second start
    // is refused as for a durable one.
    let r1 = s.open_attempt(&r.id, at(0), Some("m0")).unwrap();
    assert_eq!(r1.state, JobState::Running);
    assert_eq!(s.get(&r.id).unwrap().1.state, JobState::Running);
    assert!(matches!(
        s.open_attempt(&r.id, at(0), None),
        Err(SpoolError::WrongState { .. })
    ));
    s.attempt_durable(&r.id).unwrap();
    // The end and whatever the caller adds are one write, and the decision sees the addition.
    let (r2, dec) = s
        .end_attempt_with(&r.id, at(30), busy(), &p, |rec| rec.priority = 7)
        .unwrap();
    assert_eq!(dec, Decision::RetryAt(at(210)));
    assert_eq!(r2.priority, 7);
    assert_eq!(s.get(&r.id).unwrap(), (Area::Queue, r2));
    // A job gone (cancelled) between the opening and the dial: no call, a clear NotFound.
    s.finish(&r.id, at(40), Final::Failed(GiveUp::Cancelled))
        .unwrap();
    assert!(matches!(
        s.attempt_durable(&r.id),
        Err(SpoolError::NotFound(_))
    ));
}
