//! The dispatcher: one task runs every kind of job — `Message` splits, `FaxOut` calls, `FaxIn`
//! routing, `MailOut` deliveries — through the pure [`Scheduler`] (modem leases, relay
//! connections, local workers, priorities, due times).
//!
//! It keeps the queue in memory and is woken by events, never by polling:
//!
//! - **a record changed** — the spool tells its observer ([`Spool::observe`]) of every job this
//!   process commits or changes (the SMTP listener's 250, a reception committed at hang-up, an
//!   inbox file, a worker's attempt ending, a report queued): the entry is added, moved or
//!   removed at once;
//! - **a worker finished** — its resource is free again;
//! - **a timer** — the scheduler's [`Scheduler::poll_at`] (the next due retry);
//! - **shutdown**.
//!
//! Two things are handed in, so that tests run the real dispatcher on paused time with fake
//! workers (`tests/dispatch.rs`): the [`Clock`] every due time is compared with, and the
//! [`JobRunner`] that does the work ([`Workers`], the gateway's own, in production).
//!
//! The spool is read once, at start-up, one record at a time. [`Live`] holds the queue counts
//! and the most recent finished jobs for `faxgate status` and systemd's `STATUS=`, so a status
//! request never walks the spool either. Changes made by another process (`faxgate queue
//! retry|cancel`) reach the dispatcher through the control socket's `changed` request, which
//! the CLI sends after its change.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::control;
use super::runner::{self, Shared};
use super::status::{self, KindCounts, RecentJob};
use crate::daemon::Shutdown;
use crate::onramp::service::Onramp;
use crate::scheduler::{Dispatch, Entry, GiveUp, Limits, Resource, Scheduler, Timestamp};
use crate::spool::{Area, Final, JobId, JobKind, JobRecord, JobState, Spool};

/// A job whose worker failed for a reason of ours, and whose record could not say when to
/// try again (the spool itself failed), is left alone this long.
pub const HOLD_AFTER_ERROR: Duration = Duration::from_secs(30);

/// What the dispatcher learns of a job: enough to schedule and count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The job.
    pub id: JobId,
    /// Its kind.
    pub kind: JobKind,
    /// Its state now.
    pub state: JobState,
    /// Its priority.
    pub priority: u8,
    /// When it is due next (queued jobs).
    pub due: Timestamp,
    /// Its line in the "recent" list, once final.
    pub recent: Option<RecentJob>,
    /// An operator cancelled it (console, API or `faxgate queue cancel`).
    pub cancelled: bool,
}

impl Change {
    /// The change a record stands for.
    pub fn of(rec: &JobRecord) -> Change {
        Change {
            id: rec.id.clone(),
            kind: rec.kind,
            state: rec.state,
            priority: rec.priority,
            due: rec.next_due,
            recent: rec
                .state
                .is_final()
                .then(|| status::recent(vec![rec.clone()], 1).pop())
                .flatten(),
            cancelled: rec.failure == Some(GiveUp::Cancelled),
        }
    }
}

/// Events that wake the dispatcher.
#[derive(Debug)]
pub enum Event {
    /// A job's record changed (or was committed) in this process.
    Changed(Change),
    /// Another process changed job `id` (the CLI): read its record again.
    Reread(JobId),
}

/// The sending side of the dispatcher's event channel.
pub type Events = mpsc::UnboundedSender<Event>;

/// How far back the console's failure figures reach (its dashboard: "failures of the last
/// 24 h").
pub const FAILURE_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Failed jobs listed with their details at most (ours: the dashboard's list).
pub const FAILURES_LISTED: usize = 20;
/// Failure times kept at most (ours: 80 KB); past it the count reads "at least" this many.
pub const FAILURES_COUNTED: usize = 10_000;

/// Queue figures kept up to date by the dispatcher, read by `faxgate status` and the console.
#[derive(Debug, Default)]
pub struct Figures {
    /// Kind and state of every job in `queue/`.
    jobs: HashMap<JobId, (JobKind, JobState)>,
    /// Counts by kind name.
    counts: BTreeMap<String, KindCounts>,
    /// The most recently finished jobs, newest first.
    recent: VecDeque<RecentJob>,
    /// Failed jobs of the last [`FAILURE_WINDOW`] (as far as the newest failure tells; the
    /// reader cuts at its own `now`), newest first, at most [`FAILURES_LISTED`].
    failed: VecDeque<RecentJob>,
    /// When each failure of that window happened, oldest first, at most [`FAILURES_COUNTED`].
    failure_times: VecDeque<Timestamp>,
    /// Job directories whose record could not be read at start-up.
    pub damaged: usize,
}

/// The failures of the last [`FAILURE_WINDOW`] before some `now` ([`Figures::failures`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    /// How many.
    pub count: usize,
    /// True when more failed than [`FAILURES_COUNTED`]: `count` is a lower bound.
    pub more: bool,
    /// The newest, newest first, at most [`FAILURES_LISTED`].
    pub latest: Vec<RecentJob>,
}

impl Figures {
    /// Notes failed job `r` (finished at `r.finished`). Failures arrive about in time order
    /// (the start-up scan does not): the window is kept sorted, and trimmed to
    /// [`FAILURE_WINDOW`] before its newest entry, so memory stays flat under any backlog.
    pub fn note_failure(&mut self, r: &RecentJob) {
        let t = r.finished;
        let at = self.failure_times.partition_point(|x| *x <= t);
        self.failure_times.insert(at, t);
        if let Some(newest) = self.failure_times.back().copied() {
            while self
                .failure_times
                .front()
                .is_some_and(|f| newest.since(*f) > FAILURE_WINDOW)
            {
                self.failure_times.pop_front();
            }
        }
        while self.failure_times.len() > FAILURES_COUNTED {
            self.failure_times.pop_front();
        }
        self.failed.retain(|x| x.id != r.id);
        let at = self
            .failed
            .partition_point(|x| (x.finished, &x.id) > (r.finished, &r.id));
        self.failed.insert(at, r.clone());
        self.failed.truncate(FAILURES_LISTED);
    }

    /// The failures of the [`FAILURE_WINDOW`] before `now`.
    pub fn failures(&self, now: Timestamp) -> Failures {
        let recent = |t: Timestamp| now.since(t) <= FAILURE_WINDOW;
        let count = self.failure_times.iter().filter(|t| recent(**t)).count();
        Failures {
            count,
            more: count >= FAILURES_COUNTED,
            latest: self
                .failed
                .iter()
                .filter(|r| recent(r.finished))
                .cloned()
                .collect(),
        }
    }

    fn count(&mut self, kind: JobKind, state: JobState, add: bool) {
        let c = self.counts.entry(kind.name().to_string()).or_default();
        let slot = match state {
            JobState::Running => &mut c.running,
            _ => &mut c.queued,
        };
        *slot = if add {
            *slot + 1
        } else {
            slot.saturating_sub(1)
        };
        if c.queued == 0 && c.running == 0 {
            self.counts.remove(kind.name());
        }
    }

    /// Applies a change.
    pub fn apply(&mut self, c: &Change) {
        if let Some((k, s)) = self.jobs.remove(&c.id) {
            self.count(k, s, false);
        }
        if c.state.is_final() {
            if let Some(r) = &c.recent {
                self.recent.retain(|x| x.id != r.id);
                self.recent.push_front(r.clone());
                self.recent.truncate(status::RECENT_JOBS);
                if c.state == JobState::Failed {
                    self.note_failure(r);
                }
            }
        } else {
            self.jobs.insert(c.id.clone(), (c.kind, c.state));
            self.count(c.kind, c.state, true);
        }
    }

    /// Queue counts by kind.
    pub fn counts(&self) -> BTreeMap<String, KindCounts> {
        self.counts.clone()
    }

    /// Jobs in `queue/`.
    pub fn queued(&self) -> usize {
        self.jobs.len()
    }

    /// The recent finished jobs, newest first.
    pub fn recent(&self) -> Vec<RecentJob> {
        self.recent.iter().cloned().collect()
    }

    /// The jobs in `queue/` that `keep` accepts, in id order (oldest first): how many there
    /// are, and `limit` of them from `offset` on — for the console's queue page, which then
    /// reads only those records (a page of a large backlog costs one page of reads).
    pub fn queued_page(
        &self,
        keep: impl Fn(JobKind, JobState) -> bool,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<(JobId, JobKind, JobState)>) {
        let mut ids: Vec<(&JobId, JobKind, JobState)> = self
            .jobs
            .iter()
            .filter(|(_, (k, s))| keep(*k, *s))
            .map(|(id, (k, s))| (id, *k, *s))
            .collect();
        let total = ids.len();
        // Only the page's ids need their order: the rest stay partitioned around them.
        let end = offset.saturating_add(limit).min(total);
        if offset >= total || limit == 0 {
            return (total, Vec::new());
        }
        ids.select_nth_unstable_by(end - 1, |a, b| a.0.cmp(b.0));
        let head = &mut ids[..end];
        if offset > 0 {
            head.select_nth_unstable_by(offset, |a, b| a.0.cmp(b.0));
        }
        let mut page: Vec<_> = head[offset..]
            .iter()
            .map(|(id, k, s)| ((*id).clone(), *k, *s))
            .collect();
        page.sort_by(|a, b| a.0.cmp(&b.0));
        (total, page)
    }
}

/// The figures, shared between the dispatcher and the control socket.
pub type Live = Arc<Mutex<Figures>>;

fn lock(live: &Live) -> std::sync::MutexGuard<'_, Figures> {
    match live.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Connects the spool to the dispatcher: every record change becomes an event. Returns the
/// receiving end for [`run`].
pub fn connect(spool: &Spool) -> (Events, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = tx.clone();
    spool.observe(Arc::new(move |rec: &JobRecord| {
        let _ = t.send(Event::Changed(Change::of(rec)));
    }));
    (tx, rx)
}

/// Reads the spool once (blocking; one record in memory at a time): the queue into the
/// scheduler and the figures, the archives for the recent list.
pub fn load(
    spool: &Spool,
    sched: &mut Scheduler,
    live: &Live,
) -> Result<(), crate::spool::SpoolError> {
    let mut figures = Figures::default();
    let mut damaged = spool.scan(Area::Queue, &mut |r| {
        let c = Change::of(&r);
        if r.state == JobState::Queued {
            sched.upsert(entry(&c));
        }
        figures.apply(&c);
    })?;
    let mut recent: Vec<RecentJob> = Vec::new();
    for area in [Area::Done, Area::Failed] {
        damaged.extend(spool.scan(area, &mut |r| {
            // Keep only the newest few while scanning (flat memory over any archive).
            let line = status::recent(vec![r], 1);
            if area == Area::Failed
                && let Some(f) = line.first()
            {
                figures.note_failure(f);
            }
            recent.extend(line);
            if recent.len() > 4 * status::RECENT_JOBS {
                recent.sort_by(|a, b| (b.finished, &b.id).cmp(&(a.finished, &a.id)));
                recent.truncate(status::RECENT_JOBS);
            }
        })?);
    }
    recent.sort_by(|a, b| (b.finished, &b.id).cmp(&(a.finished, &a.id)));
    recent.truncate(status::RECENT_JOBS);
    figures.recent = recent.into();
    figures.damaged = damaged.len();
    *lock(live) = figures;
    Ok(())
}

fn entry(c: &Change) -> Entry {
    Entry {
        id: c.id.clone(),
        kind: c.kind,
        priority: c.priority,
        due: c.due,
    }
}

/// Where the dispatcher reads the time: every due time, retry and kill time it compares is
/// measured on this clock.
///
/// Production reads the system clock. Tests use [`Clock::tokio`], which moves only with
/// tokio's time: under `tokio::time::pause` it stands still while work is done and jumps
/// exactly as far as the dispatcher's (or a fake worker's) `sleep` when the runtime is idle,
/// so a day of retries runs in milliseconds and every time it reports is exact.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock ([`crate::spool::now`]).
    System,
    /// `start`, plus the tokio time elapsed since `origin`.
    Tokio {
        /// The time `origin` stands for.
        start: Timestamp,
        /// The tokio instant the clock was made at.
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock on tokio's time that reads `start` now.
    pub fn tokio(start: Timestamp) -> Clock {
        Clock::Tokio {
            start,
            origin: tokio::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(self) -> Timestamp {
        match self {
            Clock::System => crate::spool::now(),
            Clock::Tokio { start, origin } => {
                start.plus(tokio::time::Instant::now().duration_since(origin))
            }
        }
    }
}

/// The workers the dispatcher hands jobs to: the gateway's own ([`Workers`]) in production,
/// fakes in the dispatcher's tests (`tests/dispatch.rs`).
///
/// A worker records what it did in the spool itself (`start_attempt` … `end_attempt` or
/// `finish`); the spool's observer tells the dispatcher, which is how a retry's due time
/// reaches the queue. The dispatcher only learns when the worker is done with its resource.
pub trait JobRunner: Clone + Send + Sync + 'static {
    /// Runs job `job.id` on the resource the scheduler leased to it (`job.resource`: a
    /// modem for `FaxOut`, a relay session for `MailOut`, a local worker otherwise), which
    /// is free again when this returns. `shutdown` asks a long call to end early. Returns
    /// false when the job should be held off for [`HOLD_AFTER_ERROR`]: our own trouble that
    /// its record could not take.
    fn run(&self, job: Dispatch, shutdown: Shutdown) -> impl Future<Output = bool> + Send;

    /// `FaxOut` job `id` ended at `now` without its worker: the dispatcher gave it up (its
    /// kill time had passed while it waited) or an operator cancelled it; it is in `failed/`
    /// now. Tell whoever waits for it (the message's report).
    fn given_up(&self, id: JobId, now: Timestamp) -> impl Future<Output = ()> + Send;

    /// The line for systemd's `STATUS=` given the queue counts; `None` when there is none
    /// to publish.
    fn status_line(&self, _counts: &BTreeMap<String, KindCounts>) -> Option<String> {
        None
    }

    /// Publishes a status line that differs from the last one published.
    fn publish_status(&self, _line: &str) {}
}

/// Everything the dispatcher runs jobs with.
#[derive(Clone)]
pub struct Workers {
    /// The offramp side and the lines.
    pub shared: Shared,
    /// The onramp side.
    pub onramp: Onramp,
}

impl JobRunner for Workers {
    async fn run(&self, job: Dispatch, shutdown: Shutdown) -> bool {
        let id = &job.id;
        match (job.entry.kind, job.resource) {
            (JobKind::FaxOut, Resource::Modem(line)) => {
                runner::fax_out(&self.shared, id, &line, shutdown).await
            }
            (JobKind::Message, _) => runner::split(&self.shared, id).await,
            (JobKind::FaxIn, _) => self.onramp.fax_in(id).await,
            (JobKind::MailOut, _) => self.onramp.mail_out(id).await,
            (k, r) => {
                error!(job = %id, "no worker for {k:?} on {r:?}");
                true
            }
        }
    }

    async fn given_up(&self, id: JobId, now: Timestamp) {
        // The message's one report lists this recipient as expired once every recipient
        // is final (the same step a fax attempt that ends the job takes).
        let (sp, cfg, id2) = (
            self.shared.spool.clone(),
            self.shared.cfg.clone(),
            id.clone(),
        );
        match tokio::task::spawn_blocking(move || {
            crate::offramp::jobs::on_fax_final(&sp, &id2, &cfg, now)
        })
        .await
        {
            Ok(Ok(_)) => {}
            // The report is queued at the next start-up (`runner::recover`).
            Ok(Err(e)) => error!(job = %id, "report: {e}"),
            Err(e) => error!(job = %id, "report task: {e}"),
        }
    }

    fn status_line(&self, counts: &BTreeMap<String, KindCounts>) -> Option<String> {
        Some(status::summary(
            &control::modems_now(&self.shared.board),
            counts,
        ))
    }

    fn publish_status(&self, line: &str) {
        self.shared.notifier.status(line);
    }
}

/// The limits the dispatcher schedules within.
pub fn limits(sh: &Shared) -> Limits {
    Limits {
        modems: status::sending_lines(&control::modems_now(&sh.board)),
        relay_connections: sh.cfg.relay.max_connections.max(1),
        local_workers: crate::scheduler::LOCAL_WORKERS,
    }
}

fn apply(sched: &mut Scheduler, live: &Live, c: &Change) {
    match c.state {
        JobState::Queued => sched.upsert(entry(c)),
        // The worker that started the attempt holds it; nothing to schedule.
        JobState::Running => {}
        JobState::Done | JobState::Failed => sched.remove(&c.id),
    }
    lock(live).apply(c);
}

/// Runs until shutdown, reading the time from `clock` and handing jobs to `runner`; jobs in
/// progress are finished (or, for paced loopback calls, hung up and requeued) before it
/// returns.
///
/// A `FaxOut` job whose kill time (`retry.kill_after` after its epoch) has passed by the time
/// the scheduler hands it out is failed as [`GiveUp::KillTime`] without a call (HylaFAX's
/// kill time: a job waiting for a line, or one whose gateway was down, does not dial late).
/// Jobs of the other kinds keep their last try at the give-up time, as the policy's
/// `decide` plans it (MTA practice, RFC 5321 §4.5.4.1).
pub async fn run<R: JobRunner>(
    runner: R,
    clock: Clock,
    spool: Spool,
    mut sched: Scheduler,
    mut events: mpsc::UnboundedReceiver<Event>,
    live: Live,
    mut shutdown: Shutdown,
) {
    let mut workers: JoinSet<(JobId, Entry, bool)> = JoinSet::new();
    let mut last_status = String::new();
    loop {
        if shutdown.is_stopping() {
            break;
        }
        // Everything that happened since the last turn.
        while let Ok(ev) = events.try_recv() {
            if let Some(id) = handle(&spool, &mut sched, &live, ev).await {
                runner.given_up(id, clock.now()).await;
            }
        }
        let now = clock.now();
        while let Some(d) = sched.next(now) {
            let (r, sd, sp) = (runner.clone(), shutdown.clone(), spool.clone());
            workers.spawn(async move {
                let (id, e) = (d.id.clone(), d.entry.clone());
                let ok = match kill_if_due(&sp, &d, now).await {
                    Fate::Run => r.run(d, sd).await,
                    Fate::Killed => {
                        info!(job = %id, "fax job given up: its kill time passed while it waited");
                        r.given_up(id.clone(), now).await;
                        true
                    }
                    Fate::Gone => true,
                    Fate::Hold => false,
                };
                (id, e, ok)
            });
        }

        if let Some(line) = runner.status_line(&lock(&live).counts())
            && line != last_status
        {
            runner.publish_status(&line);
            last_status = line;
        }

        let wait = match sched.poll_at() {
            Some(t) => t.since(clock.now()),
            // Nothing waits on time: sleep until an event.
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some(ev) = events.recv() => {
                if let Some(id) = handle(&spool, &mut sched, &live, ev).await {
                    runner.given_up(id, clock.now()).await;
                }
            }
            Some(res) = workers.join_next(), if !workers.is_empty() => {
                finished(&mut sched, res, clock);
            }
            _ = shutdown.stopped() => break,
        }
    }
    if !workers.is_empty() {
        info!("waiting for {} job(s) in progress", workers.len());
    }
    while let Some(res) = workers.join_next().await {
        finished(&mut sched, res, clock);
    }
}

/// What the dispatcher does with a job the scheduler handed out.
enum Fate {
    /// Give it to its worker.
    Run,
    /// Its kill time had passed: it is in `failed/` now.
    Killed,
    /// It left the queue meanwhile (cancelled by the operator): nothing to do.
    Gone,
    /// Its record cannot be read or written now: try again later.
    Hold,
}

/// Fails `FaxOut` job `d` at `now` if its kill time has passed. Reads its record (the epoch
/// is not kept in memory: one small read per call placed, none for the other kinds).
///
/// An operator retry landing between the read and the write would be lost (the job fails
/// with its old epoch); the operator sees it in `failed/` and can retry again.
async fn kill_if_due(spool: &Spool, d: &Dispatch, now: Timestamp) -> Fate {
    if d.entry.kind != JobKind::FaxOut {
        return Fate::Run;
    }
    let (sp, id) = (spool.clone(), d.id.clone());
    let res = tokio::task::spawn_blocking(move || {
        let (_, rec) = sp.get(&id)?;
        let kill = rec.epoch.plus(sp.options().policy.kill_after);
        if rec.state != JobState::Queued || now < kill {
            return Ok(Fate::Run);
        }
        sp.finish(&id, now, Final::Failed(GiveUp::KillTime))
            .map(|_| Fate::Killed)
    })
    .await;
    match res {
        Ok(Ok(f)) => f,
        Ok(Err(crate::spool::SpoolError::NotFound(_))) => Fate::Gone,
        Ok(Err(e)) => {
            warn!(job = %d.id, "cannot check the job's kill time: {e}");
            Fate::Hold
        }
        Err(e) => {
            warn!(job = %d.id, "kill time check task: {e}");
            Fate::Hold
        }
    }
}

fn finished(
    sched: &mut Scheduler,
    res: Result<(JobId, Entry, bool), tokio::task::JoinError>,
    clock: Clock,
) {
    match res {
        Ok((id, mut e, ok)) => {
            sched.finished(&id);
            if !ok {
                // Our own trouble the record could not take: try again later.
                e.due = clock.now().plus(HOLD_AFTER_ERROR);
                sched.upsert(e);
            }
        }
        Err(e) => error!("job worker failed: {e}"),
    }
}

/// Applies one event. Returns the id of a `FaxOut` job an operator cancelled: its message's
/// report is the dispatcher's to queue (the fax worker queues it when a job ends by itself;
/// a cancel from the console, the API or `faxgate queue cancel` ends it elsewhere).
async fn handle(spool: &Spool, sched: &mut Scheduler, live: &Live, ev: Event) -> Option<JobId> {
    let c = match ev {
        Event::Changed(c) => {
            apply(sched, live, &c);
            c
        }
        Event::Reread(id) => {
            let c = reread(spool, sched, live, id).await;
            // The CLI moved a job in or out of queue/ behind the spool's back: the figures
            // know the true count, which the high-water mark uses.
            spool.set_queued(lock(live).queued());
            c?
        }
    };
    (c.kind == JobKind::FaxOut && c.cancelled).then_some(c.id)
}

async fn reread(spool: &Spool, sched: &mut Scheduler, live: &Live, id: JobId) -> Option<Change> {
    let sp = spool.clone();
    let id2 = id.clone();
    match tokio::task::spawn_blocking(move || sp.get(&id2)).await {
        Ok(Ok((_, rec))) => {
            if sched.is_running(&rec.id) && rec.state == JobState::Running {
                return None;
            }
            let c = Change::of(&rec);
            apply(sched, live, &c);
            return Some(c);
        }
        Ok(Err(crate::spool::SpoolError::NotFound(_))) => sched.remove(&id),
        Ok(Err(e)) => warn!(job = %id, "cannot read the changed job: {e}"),
        Err(e) => warn!(job = %id, "job read task: {e}"),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u64, kind: JobKind, state: JobState) -> Change {
        Change {
            id: JobId::new(Timestamp(n * 1000), n),
            kind,
            state,
            priority: 127,
            due: Timestamp(0),
            recent: None,
            cancelled: false,
        }
    }

    /// Pages of the queue come out in id order, whatever the map's order, and the filter
    /// counts in the total.
    #[test]
    fn queued_pages_are_in_id_order_and_filtered() {
        let mut f = Figures::default();
        for n in (1..=250).rev() {
            let kind = if n % 5 == 0 {
                JobKind::MailOut
            } else {
                JobKind::FaxOut
            };
            f.apply(&change(n, kind, JobState::Queued));
        }
        f.apply(&change(7, JobKind::FaxOut, JobState::Done));
        let all: Vec<JobId> = (1..=250)
            .filter(|n| *n != 7)
            .map(|n| JobId::new(Timestamp(n * 1000), n))
            .collect();
        let (total, page) = f.queued_page(|_, _| true, 100, 100);
        assert_eq!(total, 249);
        let ids: Vec<JobId> = page.into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, all[100..200]);
        let (_, last) = f.queued_page(|_, _| true, 200, 100);
        assert_eq!(last.len(), 49);
        assert!(f.queued_page(|_, _| true, 300, 100).1.is_empty());
        assert!(f.queued_page(|_, _| true, 0, 0).1.is_empty());
        let (faxes, first) = f.queued_page(|k, _| k == JobKind::FaxOut, 0, 3);
        assert_eq!(faxes, 199);
        let want: Vec<JobId> = [1, 2, 3]
            .iter()
            .map(|n| JobId::new(Timestamp(n * 1000), *n))
            .collect();
        assert_eq!(
            first.into_iter().map(|(id, _, _)| id).collect::<Vec<_>>(),
            want
        );
    }

    const HOUR: u64 = 3600 * 1000;

    fn failed(n: u64, at: u64) -> Change {
        Change {
            id: JobId::new(Timestamp(n), n),
            kind: JobKind::FaxOut,
            state: JobState::Failed,
            priority: 127,
            due: Timestamp(at),
            recent: Some(RecentJob {
                id: JobId::new(Timestamp(n), n).to_string(),
                kind: "fax-out".into(),
                state: "failed".into(),
                finished: Timestamp(at),
                detail: format!("cause {n}"),
            }),
            cancelled: false,
        }
    }

    #[test]
    fn failures_of_the_last_day_are_counted_and_listed_newest_first() {
        let mut f = Figures::default();
        let day0 = 100 * 24 * HOUR;
        // Out of order, as the start-up scan finds them; one done job that is no failure.
        for (n, at) in [(1, day0), (2, day0 + 30 * HOUR), (3, day0 + 20 * HOUR)] {
            f.apply(&failed(n, at));
        }
        let mut done = failed(4, day0 + 31 * HOUR);
        done.state = JobState::Done;
        f.apply(&done);
        let now = Timestamp(day0 + 31 * HOUR);
        let got = f.failures(now);
        assert_eq!(got.count, 2, "the one 31 h ago is out of the window");
        assert!(!got.more);
        let ids: Vec<&str> = got.latest.iter().map(|r| r.detail.as_str()).collect();
        assert_eq!(ids, ["cause 2", "cause 3"]);
        // A day later they are all out of the window.
        assert_eq!(f.failures(now.plus(FAILURE_WINDOW)).count, 0);
        assert!(f.failures(now.plus(FAILURE_WINDOW)).latest.is_empty());
        // The same job failing again (an operator retry) is listed once.
        f.apply(&failed(2, day0 + 31 * HOUR));
        assert_eq!(f.failures(now).latest.len(), 2);
    }

    #[test]
    fn a_failure_storm_keeps_memory_flat_and_says_at_least() {
        let mut f = Figures::default();
        let n = FAILURES_COUNTED as u64 + 500;
        for i in 0..n {
            f.note_failure(&failed(i, 1_000 + i).recent.unwrap());
        }
        let got = f.failures(Timestamp(1_000 + n));
        assert_eq!(got.count, FAILURES_COUNTED);
        assert!(got.more);
        assert_eq!(got.latest.len(), FAILURES_LISTED);
        assert_eq!(got.latest[0].finished, Timestamp(1_000 + n - 1));
        assert!(f.failure_times.len() <= FAILURES_COUNTED);
    }
}
