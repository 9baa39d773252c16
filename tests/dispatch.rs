//! The one dispatcher (`faxgate::app::dispatch`) on paused time (issue 15).
//!
//! Each test runs the real dispatcher — the pure scheduler, the spool's observer events, the
//! kill-time check — against a real spool in a temporary directory, with fake workers in place
//! of modems, the relay and the renderer. The clock is tokio's, paused: it moves only when
//! every task waits on a timer, and then exactly to the next one. So a retry due in 180 s runs
//! at exactly 180 s, a job woken by an event runs at the time of the event (a dispatcher that
//! polled would run it at its next poll), and nothing here sleeps on the wall clock.
//!
//! The fakes do what a worker does to the spool: open an attempt, hold their resource for a
//! planned time (a fake call of 60 s is 60 s of paused time), and end the attempt with a planned
//! cause class, so the spool's `decide` under the configured retry policy chooses the retry.
//! They record what ran, when, and on which resource, and note any lease overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use faxgate::app::dispatch::{self, Clock, Event, Events, JobRunner, Live};
use faxgate::daemon::Shutdown;
use faxgate::job::{CauseClass, GiveUp, Policy, Timestamp};
use faxgate::scheduler::{Dispatch, Limits, Resource, Scheduler};
use faxgate::spool::{
    Area, JobId, JobKind, JobRecord, JobState, NewJob, Outcome, Spool, SpoolOptions,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The fake clock's start (2027-01-15 08:00 UTC).
const T0: Timestamp = Timestamp(1_800_000_000_000);

/// `s` seconds after [`T0`].
fn at(s: u64) -> Timestamp {
    T0.plus(Duration::from_secs(s))
}

/// Longest any test waits for something on the fake clock before it fails (the longest
/// schedule here spans 4 h).
const PATIENCE: Duration = Duration::from_secs(86_400);

/// What a fake worker does with one attempt.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// How long it holds its resource (paused time).
    hold: Duration,
    /// The class it ends the attempt with.
    cause: CauseClass,
    /// A fax machine answered (counts as a try).
    connected: bool,
    /// Our own trouble before the attempt could start (the spool refused): the worker
    /// touches nothing and reports false, so the dispatcher holds the job off.
    refuse: bool,
}

impl Plan {
    fn done(hold: u64) -> Plan {
        Plan {
            hold: Duration::from_secs(hold),
            cause: CauseClass::Done,
            connected: true,
            refuse: false,
        }
    }
}

/// Chooses the plan for a job's `n`-th run (0-based).
type Script = Arc<dyn Fn(&Dispatch, usize) -> Plan + Send + Sync>;

/// One run of a fake worker.
#[derive(Debug, Clone)]
struct Ran {
    id: JobId,
    kind: JobKind,
    resource: Resource,
    start: Timestamp,
    end: Option<Timestamp>,
    /// The dispatcher's shutdown signal was set when the run ended.
    saw_shutdown: bool,
}

/// What the fakes saw, shared with the test.
#[derive(Debug, Default)]
struct Seen {
    runs: Vec<Ran>,
    given_up: Vec<(JobId, Timestamp)>,
    /// Lines leased to a run right now.
    lines_busy: BTreeSet<String>,
    /// Runs in progress per resource class ("modem", "relay", "local"), and the most at once.
    running: BTreeMap<&'static str, usize>,
    most: BTreeMap<&'static str, usize>,
    /// Leases broken: a line given to a second call, a resource of the wrong class.
    violations: Vec<String>,
}

impl Seen {
    fn started(&self, id: &JobId) -> Vec<Timestamp> {
        self.runs
            .iter()
            .filter(|r| &r.id == id)
            .map(|r| r.start)
            .collect()
    }

    fn ended(&self) -> usize {
        self.runs.iter().filter(|r| r.end.is_some()).count()
    }
}

fn class(r: &Resource) -> &'static str {
    match r {
        Resource::Modem(_) => "modem",
        Resource::Relay => "relay",
        Resource::Local => "local",
    }
}

/// The fake workers: every kind, on a real spool, on the fake clock.
#[derive(Clone)]
struct Fake {
    spool: Spool,
    clock: Clock,
    script: Script,
    seen: Arc<Mutex<Seen>>,
    /// Bumped after every change to `seen`.
    bump: Arc<watch::Sender<u64>>,
}

impl Fake {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().expect("fake state")
    }

    fn changed(&self) {
        self.bump.send_modify(|n| *n += 1);
    }
}

impl JobRunner for Fake {
    async fn run(&self, job: Dispatch, shutdown: Shutdown) -> bool {
        let start = self.clock.now();
        let modem = match &job.resource {
            Resource::Modem(l) => Some(l.as_str()),
            _ => None,
        };
        let n = self.seen().started(&job.id).len();
        let plan = (self.script)(&job, n);
        let c = class(&job.resource);
        if plan.refuse {
            self.seen().runs.push(Ran {
                id: job.id.clone(),
                kind: job.entry.kind,
                resource: job.resource.clone(),
                start,
                end: Some(start),
                saw_shutdown: shutdown.is_stopping(),
            });
            self.changed();
            return false;
        }
        self.spool
            .start_attempt(&job.id, start, modem)
            .expect("the dispatcher runs queued jobs only");
        {
            let mut s = self.seen();
            let wanted = match job.entry.kind {
                JobKind::FaxOut => "modem",
                JobKind::MailOut => "relay",
                JobKind::Message | JobKind::FaxIn => "local",
            };
            if wanted != c {
                s.violations.push(format!(
                    "{} ({:?}) ran on {:?}",
                    job.id, job.entry.kind, job.resource
                ));
            }
            if let Resource::Modem(l) = &job.resource
                && !s.lines_busy.insert(l.clone())
            {
                s.violations
                    .push(format!("line {l} leased to {} during another call", job.id));
            }
            let now = s.running.entry(c).or_default();
            *now += 1;
            let now = *now;
            let most = s.most.entry(c).or_default();
            *most = (*most).max(now);
            s.runs.push(Ran {
                id: job.id.clone(),
                kind: job.entry.kind,
                resource: job.resource.clone(),
                start,
                end: None,
                saw_shutdown: false,
            });
        }
        self.changed();

        tokio::time::sleep(plan.hold).await;

        let end = self.clock.now();
        {
            let mut s = self.seen();
            if let Resource::Modem(l) = &job.resource {
                s.lines_busy.remove(l);
            }
            *s.running.entry(c).or_default() -= 1;
            let r = s
                .runs
                .iter_mut()
                .rev()
                .find(|r| r.id == job.id)
                .expect("the run started");
            r.end = Some(end);
            r.saw_shutdown = shutdown.is_stopping();
        }
        let outcome = Outcome {
            cause: plan.cause,
            detail: format!("fake {:?}", plan.cause),
            pages_sent: 0,
            connected: plan.connected,
        };
        let policy = self.spool.options().policy.clone();
        self.spool
            .end_attempt(&job.id, end, outcome, &policy)
            .expect("end the attempt");
        self.changed();
        true
    }

    async fn given_up(&self, id: JobId, now: Timestamp) {
        self.seen().given_up.push((id, now));
        self.changed();
    }
}

/// A spool on the fake clock, and (once started) the dispatcher running over it.
struct Rig {
    dir: tempfile::TempDir,
    spool: Spool,
    opts: SpoolOptions,
    clock: Clock,
    fake: Fake,
    bumps: watch::Receiver<u64>,
    running: Option<Running>,
}

struct Running {
    events: Events,
    live: Live,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Rig {
    /// Opens the spool at [`T0`]; `policy` is the `[retry]` its `decide` uses.
    fn new(policy: Policy, script: Script) -> Rig {
        let clock = Clock::tokio(T0);
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = SpoolOptions {
            policy,
            ..SpoolOptions::default()
        };
        let spool =
            Spool::open_at(&dir.path().join("spool"), opts.clone(), clock.now()).expect("spool");
        let (tx, bumps) = watch::channel(0);
        let fake = Fake {
            spool: spool.clone(),
            clock,
            script,
            seen: Default::default(),
            bump: Arc::new(tx),
        };
        Rig {
            dir,
            spool,
            opts,
            clock,
            fake,
            bumps,
            running: None,
        }
    }

    fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Starts the dispatcher as `faxgate run` does: observer first, then the queue read once.
    fn start(&mut self, limits: Limits) {
        let (events, rx) = dispatch::connect(&self.spool);
        let live: Live = Default::default();
        let mut sched = Scheduler::new(limits);
        dispatch::load(&self.spool, &mut sched, &live).expect("load the queue");
        let (stop, shutdown) = Shutdown::new();
        let task = tokio::spawn(dispatch::run(
            self.fake.clone(),
            self.clock,
            self.spool.clone(),
            sched,
            rx,
            live.clone(),
            shutdown,
        ));
        self.running = Some(Running {
            events,
            live,
            stop,
            task,
        });
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("dispatcher started")
    }

    /// Commits a job of `kind` now, due at `due` (now when `None`).
    fn commit(&self, kind: JobKind, due: Option<Timestamp>) -> JobId {
        commit(&self.spool, kind, due, self.clock.now())
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.fake.seen()
    }

    /// Waits (on the fake clock, at most [`PATIENCE`]) until `cond` holds for what the fakes
    /// saw. Woken by the fakes, so it does not move the clock itself.
    async fn until(&mut self, what: &str, cond: impl Fn(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if cond(&self.seen()) {
                return;
            }
            match tokio::time::timeout_at(deadline, self.bumps.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("fakes gone while waiting for {what}"),
                Err(_) => panic!("not within {PATIENCE:?} of fake time: {what}"),
            }
        }
    }

    fn record(&self, id: &JobId) -> (Area, JobRecord) {
        self.spool.get(id).expect("job record")
    }

    /// Stops the dispatcher and waits for it (bounded); returns the time it returned.
    async fn stop(&mut self) -> Timestamp {
        let r = self.running.take().expect("dispatcher started");
        let _ = r.stop.send(true);
        tokio::time::timeout(PATIENCE, r.task)
            .await
            .expect("the dispatcher stops")
            .expect("the dispatcher task");
        self.clock.now()
    }
}

/// Commits a job of `kind` at `now`. Its data is a minimal sample: the fakes do not read it.
fn commit(spool: &Spool, kind: JobKind, due: Option<Timestamp>, now: Timestamp) -> JobId {
    commit_job(spool, kind, 127, due, now)
}

/// Commits a job of `kind` with `priority`, due at once.
fn commit_with(spool: &Spool, kind: JobKind, priority: u8, now: Timestamp) -> JobId {
    commit_job(spool, kind, priority, None, now)
}

fn commit_job(
    spool: &Spool,
    kind: JobKind,
    priority: u8,
    due: Option<Timestamp>,
    now: Timestamp,
) -> JobId {
    let job = NewJob {
        priority,
        due,
        data: faxgate::job::data::sample(kind, ""),
    };
    let inc = spool.begin(kind).expect("begin a job");
    inc.commit_at(job, now).expect("commit the job").id
}

fn limits(lines: &[&str], relay: usize) -> Limits {
    Limits {
        modems: lines.iter().map(|s| s.to_string()).collect(),
        relay_connections: relay,
        local_workers: faxgate::scheduler::LOCAL_WORKERS,
    }
}

fn script(f: impl Fn(&Dispatch, usize) -> Plan + Send + Sync + 'static) -> Script {
    Arc::new(f)
}

fn starts(seen: &Seen) -> Vec<Timestamp> {
    let mut v: Vec<_> = seen.runs.iter().map(|r| r.start).collect();
    v.sort();
    v
}

fn ats(secs: &[u64]) -> Vec<Timestamp> {
    secs.iter().map(|&s| at(s)).collect()
}

/// (a) A fax job's attempts follow `[retry]`: each retry starts exactly the policy's delay for
/// the last cause after the attempt ended (busy 180 s, no answer 300 s, protocol error 60 s),
/// and the job is failed at the third connected try (`max_tries`), with nothing after.
#[tokio::test(start_paused = true)]
async fn retry_schedule_of_a_fax_follows_the_policy_and_stops_at_max_tries() {
    let policy = Policy::default();
    assert_eq!(
        (
            policy.busy,
            policy.no_answer,
            policy.protocol_error,
            policy.max_tries
        ),
        (
            Duration::from_secs(180),
            Duration::from_secs(300),
            Duration::from_secs(60),
            3
        ),
        "the times below are HylaFAX's defaults"
    );
    let plans = [
        (CauseClass::Busy, false),
        (CauseClass::NoAnswer, false),
        (CauseClass::ProtocolError, true),
        (CauseClass::ProtocolError, true),
        (CauseClass::ProtocolError, true),
    ];
    let mut rig = Rig::new(
        policy,
        script(move |_, n| {
            let (cause, connected) = plans[n.min(plans.len() - 1)];
            Plan {
                hold: Duration::from_secs(30),
                cause,
                connected,
                refuse: false,
            }
        }),
    );
    rig.start(limits(&["a"], 1));
    let id = rig.commit(JobKind::FaxOut, None);
    rig.until("the job is final", |s| s.ended() == 5).await;
    // Let a day pass: a sixth attempt would show here.
    tokio::time::sleep(Duration::from_secs(86_400)).await;

    // Each call lasts 30 s; then busy +180, no answer +300, protocol error +60, +60.
    assert_eq!(rig.seen().started(&id), ats(&[0, 210, 540, 630, 720]));
    assert_eq!(rig.seen().runs.len(), 5);
    let (area, rec) = rig.record(&id);
    assert_eq!(area, Area::Failed);
    assert_eq!(rec.failure, Some(GiveUp::TooManyTries));
    assert_eq!(rec.finished, Some(at(750)));
    assert!(
        rig.seen().violations.is_empty(),
        "{:?}",
        rig.seen().violations
    );
    rig.stop().await;
}

/// (a) Twelve busy dials, 180 s apart after each 30 s call, then the job is failed
/// (`max_dials`).
#[tokio::test(start_paused = true)]
async fn retry_schedule_of_a_busy_fax_stops_at_max_dials() {
    let policy = Policy::default();
    assert_eq!(policy.max_dials, 12);
    let mut rig = Rig::new(
        policy,
        script(|_, _| Plan {
            hold: Duration::from_secs(30),
            cause: CauseClass::Busy,
            connected: false,
            refuse: false,
        }),
    );
    rig.start(limits(&["a"], 1));
    let id = rig.commit(JobKind::FaxOut, None);
    rig.until("twelve dials", |s| s.ended() == 12).await;
    tokio::time::sleep(Duration::from_secs(86_400)).await;

    let want: Vec<u64> = (0..12).map(|k| k * 210).collect();
    assert_eq!(rig.seen().started(&id), ats(&want));
    let (area, rec) = rig.record(&id);
    assert_eq!(area, Area::Failed);
    assert_eq!(rec.failure, Some(GiveUp::TooManyDials));
    assert_eq!(rec.finished, Some(at(11 * 210 + 30)));
    rig.stop().await;
}

/// (a) A mail job backs off exponentially (60 s doubling, capped at 600 s here) and has its
/// last try at the give-up time itself, then fails as expired.
#[tokio::test(start_paused = true)]
async fn retry_schedule_of_mail_backs_off_until_the_give_up_time() {
    let policy = Policy {
        relay_initial: Duration::from_secs(60),
        relay_max: Duration::from_secs(600),
        relay_give_up: Duration::from_secs(3600),
        ..Policy::default()
    };
    let mut rig = Rig::new(
        policy,
        script(|_, _| Plan {
            hold: Duration::ZERO,
            cause: CauseClass::RelayTemporary,
            connected: false,
            refuse: false,
        }),
    );
    rig.start(limits(&[], 1));
    let id = rig.commit(JobKind::MailOut, None);
    rig.until("ten relay attempts", |s| s.ended() == 10).await;
    tokio::time::sleep(Duration::from_secs(86_400)).await;

    assert_eq!(
        rig.seen().started(&id),
        ats(&[0, 60, 180, 420, 900, 1500, 2100, 2700, 3300, 3600])
    );
    let (area, rec) = rig.record(&id);
    assert_eq!(area, Area::Failed);
    assert_eq!(rec.failure, Some(GiveUp::Expired));
    rig.stop().await;
}

/// (b) A fax job that waited for the only line past its kill time (3 h) is failed when the
/// line frees, without a call; the line then takes the next job at once.
#[tokio::test(start_paused = true)]
async fn kill_time_passed_while_waiting_for_a_line_fails_the_job_without_a_call() {
    let long = Duration::from_secs(4 * 3600);
    let mut rig = Rig::new(
        Policy::default(),
        script(move |d, _| Plan {
            hold: if d.entry.due == T0 {
                long
            } else {
                Duration::from_secs(60)
            },
            ..Plan::done(0)
        }),
    );
    assert_eq!(rig.opts.policy.kill_after, Duration::from_secs(3 * 3600));
    rig.start(limits(&["a"], 1));
    let first = rig.commit(JobKind::FaxOut, None);
    rig.until("the first call started", |s| s.runs.len() == 1)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let late = rig.commit(JobKind::FaxOut, None);
    rig.until("the late job given up", |s| !s.given_up.is_empty())
        .await;

    assert_eq!(rig.seen().given_up, vec![(late.clone(), at(4 * 3600))]);
    assert!(
        rig.seen().started(&late).is_empty(),
        "no call for the late job"
    );
    let (area, rec) = rig.record(&late);
    assert_eq!(area, Area::Failed);
    assert_eq!(rec.failure, Some(GiveUp::KillTime));
    assert_eq!(rec.finished, Some(at(4 * 3600)));
    assert!(rec.attempts.is_empty());
    assert_eq!(rig.record(&first).0, Area::Done);

    // The line is not held by the job given up: a new job runs at once.
    let now = rig.clock.now();
    let next = rig.commit(JobKind::FaxOut, None);
    rig.until("the next call", |s| s.runs.len() == 2).await;
    assert_eq!(rig.seen().started(&next), vec![now]);
    rig.stop().await;
}

/// (b) Fax jobs whose kill time passed while the gateway was down are failed at start-up
/// without a call; a mail job as old is still tried (its give-up time is later), and a fax
/// job not yet at its kill time is sent.
#[tokio::test(start_paused = true)]
async fn kill_time_passed_while_the_gateway_was_down() {
    let mut rig = Rig::new(Policy::default(), script(|_, _| Plan::done(10)));
    let old_fax = rig.commit(JobKind::FaxOut, None);
    let old_mail = rig.commit(JobKind::MailOut, None);
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    let young_fax = rig.commit(JobKind::FaxOut, None);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    // Now 3 h after the first commits: the old fax is at its kill time.
    rig.start(limits(&["a"], 1));
    rig.until("the old fax given up, the others run", |s| {
        s.given_up.len() == 1 && s.ended() == 2
    })
    .await;

    assert_eq!(rig.seen().given_up, vec![(old_fax.clone(), at(3 * 3600))]);
    assert!(rig.seen().started(&old_fax).is_empty());
    assert_eq!(rig.record(&old_fax).1.failure, Some(GiveUp::KillTime));
    assert_eq!(rig.seen().started(&old_mail), vec![at(3 * 3600)]);
    assert_eq!(rig.record(&old_mail).0, Area::Done);
    assert_eq!(rig.record(&young_fax).0, Area::Done);
    rig.stop().await;
}

/// Our own trouble (the worker could not even open an attempt, so the record says nothing):
/// the job is held off for `HOLD_AFTER_ERROR` and then runs, and its line is not held
/// meanwhile.
#[tokio::test(start_paused = true)]
async fn our_own_trouble_holds_the_job_off_then_it_runs() {
    let hold = dispatch::HOLD_AFTER_ERROR.as_secs();
    assert_eq!(hold, 30);
    let mut rig = Rig::new(
        Policy::default(),
        script(|d, n| Plan {
            refuse: n == 0 && d.entry.priority == 127,
            ..Plan::done(10)
        }),
    );
    rig.start(limits(&["a"], 1));
    let troubled = rig.commit(JobKind::FaxOut, None);
    rig.until("the first run refused", |s| s.runs.len() == 1)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Another job gets the line at once.
    let other = commit_with(&rig.spool, JobKind::FaxOut, 100, rig.clock.now());
    rig.until("both jobs done", |s| s.ended() == 3).await;

    assert_eq!(rig.seen().started(&troubled), ats(&[0, hold]));
    assert_eq!(rig.seen().started(&other), ats(&[1]));
    assert_eq!(rig.record(&troubled).0, Area::Done);
    assert_eq!(rig.record(&troubled).1.attempts.len(), 1);
    rig.stop().await;
}

/// (c) Two sending lines, five faxes of 60 s: two calls at a time, each line carrying one
/// call at a time, every freed line taking the next job at once (no poll delay).
#[tokio::test(start_paused = true)]
async fn modem_leases_two_lines_carry_five_faxes_two_at_a_time() {
    let mut rig = Rig::new(Policy::default(), script(|_, _| Plan::done(60)));
    let ids: Vec<JobId> = (0..5).map(|_| rig.commit(JobKind::FaxOut, None)).collect();
    rig.start(limits(&["a", "b"], 4));
    rig.until("five calls", |s| s.ended() == 5).await;

    {
        let seen = rig.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert_eq!(seen.most.get("modem"), Some(&2));
        assert_eq!(starts(&seen), ats(&[0, 0, 60, 60, 120]));
        // Per line, calls do not overlap; both lines are used.
        for line in ["a", "b"] {
            let mut calls: Vec<(Timestamp, Timestamp)> = seen
                .runs
                .iter()
                .filter(|r| r.resource == Resource::Modem(line.into()))
                .map(|r| (r.start, r.end.expect("ended")))
                .collect();
            calls.sort();
            assert!(!calls.is_empty(), "line {line} unused");
            for w in calls.windows(2) {
                assert!(w[0].1 <= w[1].0, "line {line} overlaps: {calls:?}");
            }
        }
    }
    for id in &ids {
        assert_eq!(rig.record(id).0, Area::Done);
    }
    rig.stop().await;
}

/// (c) With one sending line (`b`), the same five faxes run one after the other, all on it.
#[tokio::test(start_paused = true)]
async fn modem_leases_one_line_runs_faxes_one_after_the_other() {
    let mut rig = Rig::new(Policy::default(), script(|_, _| Plan::done(60)));
    for _ in 0..5 {
        rig.commit(JobKind::FaxOut, None);
    }
    rig.start(limits(&["b"], 4));
    rig.until("five calls", |s| s.ended() == 5).await;
    {
        let seen = rig.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert_eq!(seen.most.get("modem"), Some(&1));
        assert!(
            seen.runs
                .iter()
                .all(|r| r.resource == Resource::Modem("b".into()))
        );
        assert_eq!(starts(&seen), ats(&[0, 60, 120, 180, 240]));
    }
    rig.stop().await;
}

/// (d) Mail jobs never exceed `relay_connections` sessions, and do not wait for the modems,
/// which are busy with a long fax meanwhile.
#[tokio::test(start_paused = true)]
async fn relay_limits_mail_out_never_exceeds_relay_connections() {
    let mut rig = Rig::new(
        Policy::default(),
        script(|d, _| match d.entry.kind {
            JobKind::FaxOut => Plan::done(600),
            _ => Plan::done(30),
        }),
    );
    rig.commit(JobKind::FaxOut, None);
    let mails: Vec<JobId> = (0..5).map(|_| rig.commit(JobKind::MailOut, None)).collect();
    rig.start(limits(&["a"], 2));
    rig.until("all six jobs", |s| s.ended() == 6).await;

    {
        let seen = rig.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert_eq!(seen.most.get("relay"), Some(&2));
        let mut mail_starts: Vec<Timestamp> = seen
            .runs
            .iter()
            .filter(|r| r.kind == JobKind::MailOut)
            .map(|r| r.start)
            .collect();
        mail_starts.sort();
        assert_eq!(mail_starts, ats(&[0, 0, 30, 30, 60]));
    }
    for id in &mails {
        assert_eq!(rig.record(id).0, Area::Done);
    }
    rig.stop().await;
}

/// (e) All four kinds run through the one dispatcher, each on its resource class, and a job
/// committed while it sleeps (its next timer an hour away) runs at the time of the commit:
/// the spool's event woke it.
#[tokio::test(start_paused = true)]
async fn all_four_kinds_run_and_a_commit_wakes_the_dispatcher_at_once() {
    let mut rig = Rig::new(Policy::default(), script(|_, _| Plan::done(5)));
    rig.start(limits(&["a"], 1));
    // The dispatcher has nothing to do: it waits; the fake clock runs on to 100.007 s (off
    // any round period a polling loop would wake at).
    let idle = Duration::from_millis(100_007);
    tokio::time::sleep(idle).await;
    let committed = T0.plus(idle);
    let kinds = [
        JobKind::Message,
        JobKind::FaxOut,
        JobKind::FaxIn,
        JobKind::MailOut,
    ];
    let ids: Vec<JobId> = kinds.iter().map(|&k| rig.commit(k, None)).collect();
    rig.until("four jobs", |s| s.ended() == 4).await;

    {
        let seen = rig.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        for (id, kind) in ids.iter().zip(kinds) {
            assert_eq!(seen.started(id), vec![committed], "{kind:?} ran late");
        }
        let ran: BTreeSet<String> = seen.runs.iter().map(|r| r.kind.to_string()).collect();
        assert_eq!(ran.len(), 4);
    }
    for id in &ids {
        assert_eq!(rig.record(id).0, Area::Done);
    }
    // The figures follow the events: nothing queued, four recent jobs.
    let live = rig.running().live.clone();
    {
        let figures = live.lock().expect("figures");
        assert_eq!(figures.queued(), 0);
        assert_eq!(figures.recent().len(), 4);
    }
    rig.stop().await;
}

/// (f) The CLI changes jobs from another process (no observer there): the dispatcher does
/// not see a retry until told with `Reread`, then runs the job at once; a job cancelled the
/// same way never runs, and the queue count is corrected.
#[tokio::test(start_paused = true)]
async fn reread_after_a_cli_change_is_honoured() {
    let mut rig = Rig::new(Policy::default(), script(|_, _| Plan::done(10)));
    let tomorrow = Some(at(86_400));
    let retried = rig.commit(JobKind::FaxOut, tomorrow);
    let cancelled = rig.commit(JobKind::FaxOut, tomorrow);
    rig.start(limits(&["a"], 1));
    tokio::time::sleep(Duration::from_secs(50)).await;

    // `faxgate queue retry` and `cancel`: another handle on the same spool.
    let cli = Spool::attach(&rig.spool_dir(), rig.opts.clone()).expect("attach");
    cli.retry(&retried, rig.clock.now()).expect("retry");
    cli.cancel(&cancelled, rig.clock.now()).expect("cancel");
    // Unannounced, the change is not seen: nothing runs.
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert!(rig.seen().runs.is_empty());

    let events = rig.running().events.clone();
    let told = rig.clock.now();
    assert_eq!(told, at(100));
    events.send(Event::Reread(retried.clone())).expect("send");
    events.send(Event::Reread(cancelled.clone())).expect("send");
    rig.until("the retried job ran", |s| s.ended() == 1).await;
    assert_eq!(rig.seen().started(&retried), vec![told]);

    // Past the old due time: the cancelled job never ran.
    tokio::time::sleep(Duration::from_secs(2 * 86_400)).await;
    assert!(rig.seen().started(&cancelled).is_empty());
    assert_eq!(rig.record(&cancelled).0, Area::Failed);
    assert_eq!(rig.record(&retried).0, Area::Done);
    let live = rig.running().live.clone();
    assert_eq!(live.lock().expect("figures").queued(), 0);
    assert_eq!(rig.spool.queued(), 0);
    rig.stop().await;
}

/// (g) Shutdown starts nothing new and waits for the call in progress, which is told of it
/// and recorded; the waiting job stays queued for the next start.
#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_job_in_progress() {
    let mut rig = Rig::new(Policy::default(), script(|_, _| Plan::done(600)));
    let first = rig.commit(JobKind::FaxOut, None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = rig.commit(JobKind::FaxOut, None);
    rig.start(limits(&["a"], 1));
    rig.until("the first call", |s| s.runs.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(10)).await;

    let returned = rig.stop().await;
    assert_eq!(returned, at(1 + 600), "returned when the call ended");
    {
        let seen = rig.seen();
        assert_eq!(seen.runs.len(), 1);
        assert_eq!(seen.runs[0].id, first);
        assert_eq!(seen.runs[0].end, Some(at(1 + 600)));
        assert!(seen.runs[0].saw_shutdown, "the worker was told to stop");
    }
    assert_eq!(rig.record(&first).0, Area::Done);
    let (area, rec) = rig.record(&second);
    assert_eq!((area, rec.state), (Area::Queue, JobState::Queued));
    assert!(rec.attempts.is_empty());
}
