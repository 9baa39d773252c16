//! PURE: when each spooled job runs next, on which resource, and when it is given up.
//!
//! This module owns the retry policy ([`Policy`], built by the shell from `[retry]`), the small cause-class
//! vocabulary ([`CauseClass`]) that the fax and mail workers map their own completion causes
//! onto, the decision taken after each attempt ([`decide`]), and the dispatcher
//! ([`Scheduler`]) that picks the next due job by priority within the resource limits (one call
//! per modem, `relay.max_connections` relay sessions, a few local workers).
//!
//! Nothing here opens a file or reads the clock: `now` is always an argument, and
//! [`Scheduler::poll_at`] reports when the caller should look again. Storage of the decisions is
//! the spool's business (`crate::spool`), carrying them out is the workers'.
//!
//! Defaults follow HylaFAX's `faxq`/`faxsend` (`JobReqBusy` 180 s, `JobReqNoAnswer` 300 s,
//! `JobReqProto` 60 s, `MaxDials` 12, `MaxTries` 3, kill time 3 h) and, for mail, common MTA
//! practice (exponential backoff capped at 1 h, bounce after 5 days, RFC 5321 §4.5.4.1 asks for
//! "at least 4–5 days").

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::spool::{JobId, JobKind, JobRecord};

pub use crate::job::{CauseClass, Decision, GiveUp, Policy, Timestamp};

/// The attempts that count towards the limits: those since the last operator retry.
fn counted(rec: &JobRecord) -> &[crate::spool::Attempt] {
    let from = rec.counted_from.min(rec.attempts.len());
    &rec.attempts[from..]
}

/// Exponential backoff: `initial · 2^(n−1)` capped at `max`, for the `n`-th consecutive failure.
pub fn backoff(initial: Duration, max: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

/// Decide a job's fate from its record, whose last attempt has just ended (its `cause` set),
/// at time `now`. Fax jobs follow HylaFAX's rules, everything else the mail rules.
pub fn decide(policy: &Policy, rec: &JobRecord, now: Timestamp) -> Decision {
    let attempts = counted(rec);
    let Some(last) = attempts.last().and_then(|a| a.cause) else {
        // No finished attempt yet: nothing to decide but "run it now".
        return Decision::RetryAt(now);
    };
    match last {
        CauseClass::Done => return Decision::Done,
        CauseClass::Fatal | CauseClass::RelayPermanent => return Decision::Fail(GiveUp::Fatal),
        _ => {}
    }
    let age = now.since(rec.epoch);
    match rec.kind {
        JobKind::FaxOut => {
            if age >= policy.kill_after {
                return Decision::Fail(GiveUp::KillTime);
            }
            let dials = attempts
                .iter()
                .filter(|a| a.cause.is_some_and(CauseClass::is_dial))
                .count();
            let tries = attempts.iter().filter(|a| a.connected).count();
            if dials >= policy.max_dials as usize {
                return Decision::Fail(GiveUp::TooManyDials);
            }
            if tries >= policy.max_tries as usize {
                return Decision::Fail(GiveUp::TooManyTries);
            }
            let delay = match last {
                CauseClass::Busy => policy.busy,
                CauseClass::NoAnswer => policy.no_answer,
                CauseClass::ProtocolError => policy.protocol_error,
                CauseClass::Interrupted => Duration::ZERO,
                _ => backoff(
                    policy.relay_initial,
                    policy.relay_max,
                    consecutive_failures(attempts),
                ),
            };
            let at = now.plus(delay);
            if at >= rec.epoch.plus(policy.kill_after) {
                return Decision::Fail(GiveUp::KillTime);
            }
            Decision::RetryAt(at)
        }
        JobKind::MailOut | JobKind::Message | JobKind::FaxIn => {
            if age >= policy.relay_give_up {
                return Decision::Fail(GiveUp::Expired);
            }
            let delay = if last == CauseClass::Interrupted {
                Duration::ZERO
            } else {
                backoff(
                    policy.relay_initial,
                    policy.relay_max,
                    consecutive_failures(attempts),
                )
            };
            // The last try happens at the give-up time itself, as MTAs do.
            Decision::RetryAt(now.plus(delay).min(rec.epoch.plus(policy.relay_give_up)))
        }
    }
}

/// Failures since the last success (or ever), excluding interruptions (which are not the
/// peer's fault and must not stretch the backoff).
fn consecutive_failures(attempts: &[crate::spool::Attempt]) -> u32 {
    let n = attempts
        .iter()
        .rev()
        .take_while(|a| a.cause != Some(CauseClass::Done))
        .filter(|a| a.cause.is_some_and(|c| c != CauseClass::Interrupted))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What a job needs while it runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// A modem able to send (one call per modem).
    Modem(String),
    /// One of the `relay.max_connections` relay sessions.
    Relay,
    /// One of the local workers (splitting, rendering, routing: CPU work).
    Local,
}

/// The scheduler's view of a waiting job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The job.
    pub id: JobId,
    /// Its kind, which decides the resource it needs.
    pub kind: JobKind,
    /// HylaFAX convention: lower runs first; 127 is normal.
    pub priority: u8,
    /// Not before this time.
    pub due: Timestamp,
}

impl Entry {
    /// The entry for a queued record.
    pub fn of(rec: &JobRecord) -> Entry {
        Entry {
            id: rec.id.clone(),
            kind: rec.kind,
            priority: rec.priority,
            due: rec.next_due,
        }
    }
}

/// A job handed to a worker, with the resource it holds until [`Scheduler::finished`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The job to run.
    pub id: JobId,
    /// The resource leased to it.
    pub resource: Resource,
    /// Its entry as it waited (kind, priority, due).
    pub entry: Entry,
}

/// Resource limits (ours; from `[[modem]]`, `relay.max_connections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Names of the modems that may place calls; each carries one call at a time.
    pub modems: Vec<String>,
    /// Simultaneous relay sessions.
    pub relay_connections: usize,
    /// Simultaneous local jobs (message splitting, routing of received faxes).
    pub local_workers: usize,
}

/// Local workers when built from a config (ours): rendering and routing are CPU work, and the
/// appliance has few cores.
pub const LOCAL_WORKERS: usize = 2;

/// The dispatcher's pure core: waiting jobs, running jobs, and the resources they hold.
///
/// Built for a large backlog (100 000 queued jobs on a small box): waiting jobs are indexed
/// twice — those not yet due by due time, those due by (priority, due, id) per resource class —
/// so [`Scheduler::next`] and [`Scheduler::poll_at`] cost O(log n), not a scan of the queue.
#[derive(Debug, Clone)]
pub struct Scheduler {
    limits: Limits,
    /// Every waiting job's entry.
    waiting: BTreeMap<JobId, Entry>,
    /// Waiting jobs not yet due, by due time.
    later: BTreeSet<(Timestamp, JobId)>,
    /// Due jobs per resource class, in dispatch order.
    ready: [BTreeSet<(u8, Timestamp, JobId)>; 3],
    running: BTreeMap<JobId, Resource>,
    /// Entries received for a running job (its record changed during the attempt): they
    /// become waiting when it finishes.
    deferred: BTreeMap<JobId, Entry>,
    /// Modems taken out of service (offline, failed reset); they get no calls.
    offline: Vec<String>,
    /// The latest `now` seen by [`Scheduler::next`]: entries due by then are ready.
    now: Timestamp,
}

/// The class of resource a kind of job needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Modem = 0,
    Relay = 1,
    Local = 2,
}

const NEEDS: [Need; 3] = [Need::Modem, Need::Relay, Need::Local];

fn need(kind: JobKind) -> Need {
    match kind {
        JobKind::FaxOut => Need::Modem,
        JobKind::MailOut => Need::Relay,
        JobKind::Message | JobKind::FaxIn => Need::Local,
    }
}

impl Scheduler {
    /// An empty scheduler with these limits.
    pub fn new(limits: Limits) -> Scheduler {
        Scheduler {
            limits,
            waiting: BTreeMap::new(),
            later: BTreeSet::new(),
            ready: Default::default(),
            running: BTreeMap::new(),
            deferred: BTreeMap::new(),
            offline: Vec::new(),
            now: Timestamp(0),
        }
    }

    fn index(&mut self, e: &Entry) {
        if e.due <= self.now {
            self.ready[need(e.kind) as usize].insert((e.priority, e.due, e.id.clone()));
        } else {
            self.later.insert((e.due, e.id.clone()));
        }
    }

    fn unindex(&mut self, e: &Entry) {
        self.later.remove(&(e.due, e.id.clone()));
        self.ready[need(e.kind) as usize].remove(&(e.priority, e.due, e.id.clone()));
    }

    /// Add or replace a waiting job. The entry of a job that is running is kept aside and
    /// becomes waiting when [`Scheduler::finished`] frees its resource (a worker records its
    /// retry time before it lets go of the line).
    pub fn upsert(&mut self, entry: Entry) {
        if self.running.contains_key(&entry.id) {
            self.deferred.insert(entry.id.clone(), entry);
            return;
        }
        if let Some(old) = self.waiting.remove(&entry.id) {
            self.unindex(&old);
        }
        self.index(&entry);
        self.waiting.insert(entry.id.clone(), entry);
    }

    /// Forget a job (finished, cancelled): it is no longer waiting, and a running job's
    /// entry kept aside is dropped.
    pub fn remove(&mut self, id: &JobId) {
        if let Some(old) = self.waiting.remove(id) {
            self.unindex(&old);
        }
        self.deferred.remove(id);
    }

    /// Number of waiting and running jobs.
    pub fn counts(&self) -> (usize, usize) {
        (self.waiting.len(), self.running.len())
    }

    /// True when `id` is running.
    pub fn is_running(&self, id: &JobId) -> bool {
        self.running.contains_key(id)
    }

    /// Mark a modem in or out of service.
    pub fn set_modem_online(&mut self, name: &str, online: bool) {
        self.offline.retain(|m| m != name);
        if !online {
            self.offline.push(name.to_string());
        }
    }

    /// Replace the sending lines (a line came or went); running calls keep theirs.
    pub fn set_modems(&mut self, modems: Vec<String>) {
        self.limits.modems = modems;
    }

    fn free_modem(&self) -> Option<&String> {
        self.limits.modems.iter().find(|m| {
            !self.offline.contains(m)
                && !self
                    .running
                    .values()
                    .any(|r| matches!(r, Resource::Modem(x) if x == *m))
        })
    }

    fn in_use(&self, n: Need) -> usize {
        self.running
            .values()
            .filter(|r| {
                matches!(
                    (n, r),
                    (Need::Relay, Resource::Relay) | (Need::Local, Resource::Local)
                )
            })
            .count()
    }

    fn available(&self, n: Need) -> Option<Resource> {
        match n {
            Need::Modem => self.free_modem().cloned().map(Resource::Modem),
            Need::Relay => (self.in_use(Need::Relay) < self.limits.relay_connections)
                .then_some(Resource::Relay),
            Need::Local => {
                (self.in_use(Need::Local) < self.limits.local_workers).then_some(Resource::Local)
            }
        }
    }

    /// Moves the entries due by `now` from the time index to their class's ready set.
    fn advance(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        while let Some((due, _)) = self.later.first()
            && *due <= self.now
        {
            let Some((_, id)) = self.later.pop_first() else {
                break;
            };
            if let Some(e) = self.waiting.get(&id) {
                let key = (e.priority, e.due, id);
                self.ready[need(e.kind) as usize].insert(key);
            }
        }
    }

    /// The next job to run at `now`: among due jobs whose resource is free, the lowest priority
    /// value, then the earliest due time, then the oldest id. The job moves to running and
    /// holds its resource until [`Scheduler::finished`].
    pub fn next(&mut self, now: Timestamp) -> Option<Dispatch> {
        self.advance(now);
        let mut best: Option<((u8, Timestamp, JobId), Resource)> = None;
        for n in NEEDS {
            let Some(first) = self.ready[n as usize].first() else {
                continue;
            };
            if best.as_ref().is_some_and(|(b, _)| b <= first) {
                continue;
            }
            if let Some(r) = self.available(n) {
                best = Some((first.clone(), r));
            }
        }
        let ((_, _, id), resource) = best?;
        let entry = self.waiting.remove(&id)?;
        self.unindex(&entry);
        self.running.insert(id.clone(), resource.clone());
        Some(Dispatch {
            id,
            resource,
            entry,
        })
    }

    /// A running job ended (whatever its outcome): its resource is free again, and the entry
    /// its worker recorded meanwhile (its retry) becomes waiting.
    pub fn finished(&mut self, id: &JobId) {
        self.running.remove(id);
        if let Some(e) = self.deferred.remove(id) {
            self.upsert(e);
        }
    }

    /// When to call [`Scheduler::next`] again if nothing else happens: now, when a due job's
    /// resource class has room; else the earliest due time of a job not yet due. Jobs waiting
    /// only for a busy resource are woken by [`Scheduler::finished`], so they do not make the
    /// caller spin. May be in the past (then: now).
    pub fn poll_at(&self) -> Option<Timestamp> {
        let ready_now = NEEDS
            .iter()
            .any(|n| !self.ready[*n as usize].is_empty() && self.available(*n).is_some());
        if ready_now {
            return Some(self.now);
        }
        self.later.first().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{Attempt, JobState, RECORD_VERSION};

    const S: u64 = 1000;
    const T0: Timestamp = Timestamp(1_800_000_000_000);

    fn id(n: u64) -> JobId {
        JobId::new(T0, n)
    }

    fn rec(kind: JobKind) -> JobRecord {
        JobRecord {
            version: RECORD_VERSION,
            id: id(1),
            kind,
            state: JobState::Running,
            created: T0,
            epoch: T0,
            next_due: T0,
            priority: 127,
            attempts: Vec::new(),
            counted_from: 0,
            failure: None,
            finished: None,
            parent: None,
            child: None,
            data: crate::job::data::sample(kind, ""),
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp(T0.0 + secs * S)
    }

    /// Run attempts with the given classes, each starting when the previous decision said,
    /// and return the decisions (times in seconds after T0 for retries).
    fn run(kind: JobKind, p: &Policy, classes: &[(CauseClass, bool)]) -> Vec<Decision> {
        let mut r = rec(kind);
        let mut now = T0;
        let mut out = Vec::new();
        for &(c, connected) in classes {
            r.attempts.push(Attempt {
                started: now,
                ended: Some(now),
                cause: Some(c),
                detail: String::new(),
                pages_sent: 0,
                modem: None,
                connected,
                fax_options: None,
            });
            let d = decide(p, &r, now);
            if let Decision::RetryAt(t) = d {
                now = t;
            }
            out.push(d);
        }
        out
    }

    fn secs(d: &Decision) -> Option<u64> {
        match d {
            Decision::RetryAt(t) => Some((t.0 - T0.0) / S),
            _ => None,
        }
    }

    #[test]
    fn hylafax_defaults() {
        let p = Policy::default();
        assert_eq!(p.busy, Duration::from_secs(180));
        assert_eq!(p.no_answer, Duration::from_secs(300));
        assert_eq!(p.protocol_error, Duration::from_secs(60));
        assert_eq!((p.max_dials, p.max_tries), (12, 3));
        assert_eq!(p.kill_after, Duration::from_secs(3 * 3600));
        assert_eq!(p.relay_max, Duration::from_secs(3600));
        assert_eq!(p.relay_give_up, Duration::from_secs(5 * 86400));
    }

    #[test]
    fn fax_delays_per_cause_class() {
        let p = Policy::default();
        let d = run(
            JobKind::FaxOut,
            &p,
            &[
                (CauseClass::Busy, false),
                (CauseClass::NoAnswer, false),
                (CauseClass::ProtocolError, true),
                (CauseClass::Interrupted, false),
                (CauseClass::Busy, false),
            ],
        );
        let t: Vec<_> = d.iter().map(secs).collect();
        assert_eq!(
            t,
            vec![Some(180), Some(480), Some(540), Some(540), Some(720)]
        );
    }

    #[test]
    fn fax_twelve_dials_then_fail() {
        // Busy every 180 s: 12 dials take 33 min, well inside the 3 h kill time.
        let p = Policy::default();
        let d = run(JobKind::FaxOut, &p, &[(CauseClass::Busy, false); 12]);
        assert!(d[..11].iter().all(|x| matches!(x, Decision::RetryAt(_))));
        assert_eq!(d[11], Decision::Fail(GiveUp::TooManyDials));
    }

    #[test]
    fn fax_three_tries_then_fail() {
        let p = Policy::default();
        let d = run(
            JobKind::FaxOut,
            &p,
            &[
                (CauseClass::ProtocolError, true),
                (CauseClass::Busy, false),
                (CauseClass::ProtocolError, true),
                (CauseClass::ProtocolError, true),
            ],
        );
        assert_eq!(secs(&d[0]), Some(60));
        assert_eq!(secs(&d[1]), Some(240));
        assert_eq!(secs(&d[2]), Some(300));
        assert_eq!(d[3], Decision::Fail(GiveUp::TooManyTries));
    }

    #[test]
    fn fax_kill_time() {
        let p = Policy {
            max_dials: 1000,
            ..Policy::default()
        };
        // No answer every 300 s: the retry that would land at or after 3 h is refused.
        let d = run(JobKind::FaxOut, &p, &[(CauseClass::NoAnswer, false); 40]);
        let last_retry = d.iter().filter_map(secs).max().unwrap();
        assert!(last_retry < 3 * 3600, "{last_retry}");
        assert_eq!(d.iter().filter_map(secs).count(), 35);
        assert_eq!(d[35], Decision::Fail(GiveUp::KillTime));
        // And a job whose attempt ends after the kill time is failed outright.
        let mut r = rec(JobKind::FaxOut);
        r.attempts.push(Attempt {
            started: at(3 * 3600 - 10),
            ended: Some(at(3 * 3600 + 5)),
            cause: Some(CauseClass::Busy),
            detail: String::new(),
            pages_sent: 0,
            modem: None,
            connected: false,
            fax_options: None,
        });
        assert_eq!(
            decide(&p, &r, at(3 * 3600 + 5)),
            Decision::Fail(GiveUp::KillTime)
        );
    }

    #[test]
    fn done_and_fatal_end_at_once() {
        let p = Policy::default();
        for kind in [JobKind::FaxOut, JobKind::MailOut] {
            assert_eq!(
                run(
                    kind,
                    &p,
                    &[(CauseClass::Busy, false), (CauseClass::Done, true)]
                )[1],
                Decision::Done
            );
            assert_eq!(
                run(kind, &p, &[(CauseClass::Fatal, false)])[0],
                Decision::Fail(GiveUp::Fatal)
            );
            assert_eq!(
                run(kind, &p, &[(CauseClass::RelayPermanent, false)])[0],
                Decision::Fail(GiveUp::Fatal)
            );
        }
    }

    #[test]
    fn relay_backoff_doubles_to_one_hour_then_gives_up_after_five_days() {
        let p = Policy::default();
        let d = run(
            JobKind::MailOut,
            &p,
            &[(CauseClass::RelayTemporary, false); 200],
        );
        let gaps: Vec<u64> = std::iter::once(0)
            .chain(d.iter().filter_map(secs))
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        assert_eq!(&gaps[..8], &[60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let fail_at = d
            .iter()
            .position(|x| matches!(x, Decision::Fail(_)))
            .unwrap();
        assert_eq!(d[fail_at], Decision::Fail(GiveUp::Expired));
        // The last retry is at exactly 5 days (the final try), the failure right after it.
        assert_eq!(secs(&d[fail_at - 1]), Some(5 * 86400));
        // Interruptions are retried at once and do not stretch the backoff.
        let d = run(
            JobKind::MailOut,
            &p,
            &[
                (CauseClass::RelayTemporary, false),
                (CauseClass::Interrupted, false),
                (CauseClass::RelayTemporary, false),
            ],
        );
        assert_eq!(
            d.iter().map(secs).collect::<Vec<_>>(),
            vec![Some(60), Some(60), Some(180)]
        );
    }

    #[test]
    fn operator_retry_resets_counts_and_epoch() {
        let p = Policy::default();
        let mut r = rec(JobKind::FaxOut);
        for _ in 0..12 {
            r.attempts.push(Attempt {
                started: T0,
                ended: Some(T0),
                cause: Some(CauseClass::Busy),
                detail: String::new(),
                pages_sent: 0,
                modem: None,
                connected: false,
                fax_options: None,
            });
        }
        assert_eq!(
            decide(&p, &r, at(100)),
            Decision::Fail(GiveUp::TooManyDials)
        );
        r.counted_from = 12;
        r.epoch = at(5 * 3600);
        r.attempts.push(r.attempts[0].clone());
        assert_eq!(
            decide(&p, &r, at(5 * 3600)),
            Decision::RetryAt(at(5 * 3600 + 180))
        );
    }

    #[test]
    fn backoff_saturates() {
        let d = backoff(Duration::from_secs(60), Duration::from_secs(3600), 1000);
        assert_eq!(d, Duration::from_secs(3600));
        assert_eq!(
            backoff(Duration::from_secs(60), Duration::from_secs(3600), 0),
            Duration::from_secs(60)
        );
    }

    fn limits() -> Limits {
        Limits {
            modems: vec!["m0".into(), "m1".into()],
            relay_connections: 1,
            local_workers: 1,
        }
    }

    fn entry(n: u64, kind: JobKind, priority: u8, due: u64) -> Entry {
        Entry {
            id: id(n),
            kind,
            priority,
            due: at(due),
        }
    }

    #[test]
    fn priority_then_due_then_id() {
        let mut s = Scheduler::new(Limits {
            modems: vec!["m0".into()],
            ..limits()
        });
        s.upsert(entry(1, JobKind::FaxOut, 127, 0));
        s.upsert(entry(2, JobKind::FaxOut, 100, 50));
        s.upsert(entry(3, JobKind::FaxOut, 100, 10));
        s.upsert(entry(4, JobKind::FaxOut, 0, 500));
        assert_eq!(s.poll_at(), Some(at(0)));
        // At 60 s job 4 (most urgent) is not due yet: 3 (due earlier) before 2, then 1.
        let mut order = Vec::new();
        for _ in 0..3 {
            let d = s.next(at(60)).unwrap();
            assert_eq!(d.resource, Resource::Modem("m0".into()));
            order.push(d.id.clone());
            assert_eq!(s.next(at(60)), None, "one call per modem");
            s.finished(&d.id);
        }
        assert_eq!(order, vec![id(3), id(2), id(1)]);
        assert_eq!(s.next(at(60)), None);
        assert_eq!(s.poll_at(), Some(at(500)));
        assert_eq!(s.next(at(500)).unwrap().id, id(4));
    }

    #[test]
    fn per_modem_and_relay_limits() {
        let mut s = Scheduler::new(limits());
        for n in 1..=3 {
            s.upsert(entry(n, JobKind::FaxOut, 127, 0));
        }
        s.upsert(entry(10, JobKind::MailOut, 127, 0));
        s.upsert(entry(11, JobKind::MailOut, 127, 0));
        s.upsert(entry(20, JobKind::Message, 127, 0));
        let mut got = Vec::new();
        while let Some(d) = s.next(at(0)) {
            got.push(d);
        }
        let modems: Vec<_> = got
            .iter()
            .filter_map(|d| match &d.resource {
                Resource::Modem(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(modems, vec!["m0".to_string(), "m1".to_string()]);
        assert_eq!(
            got.iter().filter(|d| d.resource == Resource::Relay).count(),
            1
        );
        assert_eq!(
            got.iter().filter(|d| d.resource == Resource::Local).count(),
            1
        );
        assert_eq!(s.counts(), (2, 4));
        // Waiting jobs blocked on busy resources do not make the caller spin.
        assert_eq!(s.poll_at(), None);
        let first_fax = got
            .iter()
            .find(|d| d.resource == Resource::Modem("m1".into()))
            .unwrap()
            .id
            .clone();
        s.finished(&first_fax);
        assert_eq!(s.poll_at(), Some(at(0)));
        assert_eq!(
            s.next(at(0)).unwrap().resource,
            Resource::Modem("m1".into())
        );
    }

    fn class(n: u8) -> CauseClass {
        [
            CauseClass::Done,
            CauseClass::Busy,
            CauseClass::NoAnswer,
            CauseClass::ProtocolError,
            CauseClass::Fatal,
            CauseClass::Interrupted,
            CauseClass::RelayTemporary,
            CauseClass::RelayPermanent,
            CauseClass::LocalTemporary,
        ][usize::from(n) % 9]
    }

    proptest::proptest! {
        /// Any history: no panic, a retry is never in the past, never after the job's
        /// deadline, and a fax job never gets more than `max_dials` dials.
        #[test]
        fn decide_is_bounded(
            hist in proptest::collection::vec((0u8..9, proptest::bool::ANY, 0u64..20_000), 0..30),
            fax in proptest::bool::ANY,
        ) {
            let p = Policy::default();
            let kind = if fax { JobKind::FaxOut } else { JobKind::MailOut };
            let mut r = rec(kind);
            let mut now = T0;
            for (c, connected, gap) in hist {
                now = Timestamp(now.0 + gap * S);
                r.attempts.push(Attempt {
                    started: now,
                    ended: Some(now),
                    cause: Some(class(c)),
                    detail: String::new(),
                    pages_sent: 0,
                    modem: None,
                    connected,
                    fax_options: None,
                });
                match decide(&p, &r, now) {
                    Decision::RetryAt(t) => {
                        proptest::prop_assert!(t >= now);
                        let limit = if fax { p.kill_after } else { p.relay_give_up };
                        proptest::prop_assert!(t <= r.epoch.plus(limit));
                        if fax {
                            proptest::prop_assert!(r.dials_and_tries().0 < p.max_dials as usize);
                        }
                    }
                    Decision::Done | Decision::Fail(_) => break,
                }
            }
        }
    }

    #[test]
    fn offline_modem_gets_no_calls() {
        let mut s = Scheduler::new(limits());
        s.set_modem_online("m0", false);
        s.upsert(entry(1, JobKind::FaxOut, 127, 0));
        s.upsert(entry(2, JobKind::FaxOut, 127, 0));
        assert_eq!(
            s.next(at(0)).unwrap().resource,
            Resource::Modem("m1".into())
        );
        assert_eq!(s.next(at(0)), None);
        s.set_modem_online("m0", true);
        assert_eq!(
            s.next(at(0)).unwrap().resource,
            Resource::Modem("m0".into())
        );
    }

    #[test]
    fn entry_recorded_during_a_run_waits_until_the_run_ends() {
        let mut s = Scheduler::new(limits());
        s.upsert(entry(1, JobKind::FaxOut, 127, 0));
        let d = s.next(at(0)).unwrap();
        // The worker records the retry (busy: +180 s) before it lets go of the line.
        s.upsert(entry(1, JobKind::FaxOut, 127, 180));
        assert_eq!(s.counts(), (0, 1));
        assert_eq!(
            s.next(at(200)),
            None,
            "a running job is not dispatched twice"
        );
        s.finished(&d.id);
        assert_eq!(s.counts(), (1, 0));
        assert_eq!(s.poll_at(), Some(at(200)), "due already: now");
        assert_eq!(s.next(at(200)).unwrap().id, id(1));
        // A job finished (final record) while running is forgotten with its kept entry.
        s.upsert(entry(1, JobKind::FaxOut, 127, 400));
        s.remove(&id(1));
        s.finished(&id(1));
        assert_eq!(s.counts(), (0, 0));
        assert_eq!(s.poll_at(), None);
    }

    #[test]
    fn all_four_kinds_share_one_dispatcher_within_their_limits() {
        let mut s = Scheduler::new(limits());
        let kinds = [
            JobKind::Message,
            JobKind::FaxOut,
            JobKind::FaxIn,
            JobKind::MailOut,
        ];
        for (n, k) in kinds.iter().cycle().take(40).enumerate() {
            s.upsert(entry(n as u64, *k, 127, 0));
        }
        let mut got = Vec::new();
        while let Some(d) = s.next(at(0)) {
            got.push(d);
        }
        // 2 modems, 1 relay session, 1 local worker (messages and received faxes share it).
        let count = |r: &Resource| got.iter().filter(|d| &d.resource == r).count();
        assert_eq!(count(&Resource::Modem("m0".into())), 1);
        assert_eq!(count(&Resource::Modem("m1".into())), 1);
        assert_eq!(count(&Resource::Relay), 1);
        assert_eq!(count(&Resource::Local), 1);
        for d in &got {
            assert_eq!(
                need(d.entry.kind),
                match d.resource {
                    Resource::Modem(_) => Need::Modem,
                    Resource::Relay => Need::Relay,
                    Resource::Local => Need::Local,
                }
            );
        }
        // Each finish frees exactly its own resource; everything drains.
        let mut done = 0;
        while let Some(d) = got.pop() {
            s.finished(&d.id);
            done += 1;
            while let Some(n) = s.next(at(0)) {
                got.push(n);
            }
        }
        assert_eq!(done, 40);
        assert_eq!(s.counts(), (0, 0));
    }

    #[test]
    fn a_hundred_thousand_waiting_jobs_dispatch_in_order() {
        let mut s = Scheduler::new(Limits {
            modems: vec!["m0".into()],
            relay_connections: 4,
            local_workers: 2,
        });
        for n in 0..100_000u64 {
            // Due times spread over 1000 s; a few urgent ones.
            let prio = if n % 997 == 0 { 10 } else { 127 };
            s.upsert(entry(n, JobKind::MailOut, prio, n % 1000));
        }
        let mut last = (0u8, Timestamp(0));
        let mut first_urgent_seen = false;
        let mut n = 0;
        while let Some(d) = s.next(at(1000)) {
            let key = (d.entry.priority, d.entry.due);
            assert!(key >= last, "dispatch order");
            last = key;
            if d.entry.priority == 10 {
                first_urgent_seen = true;
            } else {
                assert!(first_urgent_seen);
            }
            s.finished(&d.id);
            n += 1;
        }
        assert_eq!(n, 100_000);
        assert_eq!(s.poll_at(), None);
    }

    /// The old dispatcher: a scan of every waiting job. The indexed one must choose alike.
    fn plain_next(
        waiting: &mut BTreeMap<JobId, Entry>,
        free: &mut [usize; 3],
        now: Timestamp,
    ) -> Option<JobId> {
        let best = waiting
            .values()
            .filter(|e| e.due <= now && free[need(e.kind) as usize] > 0)
            .min_by(|a, b| (a.priority, a.due, &a.id).cmp(&(b.priority, b.due, &b.id)))?
            .clone();
        waiting.remove(&best.id);
        free[need(best.kind) as usize] -= 1;
        Some(best.id)
    }

    proptest::proptest! {
        #[test]
        fn indexed_dispatch_chooses_like_a_plain_scan(
            ops in proptest::collection::vec((0u8..4, 0u64..40, 0u8..4, 0u8..3, 0u64..50), 1..200)
        ) {
            let mut s = Scheduler::new(Limits {
                modems: vec!["m0".into(), "m1".into()],
                relay_connections: 2,
                local_workers: 1,
            });
            let kinds = [JobKind::FaxOut, JobKind::MailOut, JobKind::Message, JobKind::FaxIn];
            // The model: waiting entries, running jobs with their class, entries kept aside.
            let mut waiting = BTreeMap::new();
            let mut running: BTreeMap<JobId, Need> = BTreeMap::new();
            let mut deferred: BTreeMap<JobId, Entry> = BTreeMap::new();
            let mut free = [2usize, 2, 1];
            let mut now = 0u64;
            for (op, n, k, prio, due) in ops {
                let id = id(n);
                match op {
                    0 | 1 => {
                        let e = entry(n, kinds[k as usize], [1, 127, 200][prio as usize], due);
                        s.upsert(e.clone());
                        if running.contains_key(&id) {
                            deferred.insert(id, e);
                        } else {
                            waiting.insert(id, e);
                        }
                    }
                    2 => {
                        now += due % 7;
                        let a = s.next(at(now)).map(|d| d.id);
                        let kind = a.as_ref().and_then(|a| waiting.get(a)).map(|e| need(e.kind));
                        let b = plain_next(&mut waiting, &mut free, at(now));
                        proptest::prop_assert_eq!(&a, &b);
                        if let (Some(a), Some(k)) = (a, kind) {
                            running.insert(a, k);
                        }
                    }
                    _ => {
                        if let Some(r) = running.keys().nth(n as usize % running.len().max(1)).cloned() {
                            let k = running.remove(&r).unwrap_or(Need::Local);
                            free[k as usize] += 1;
                            s.finished(&r);
                            if let Some(e) = deferred.remove(&r) {
                                waiting.insert(r, e);
                            }
                        }
                        s.remove(&id);
                        waiting.remove(&id);
                        deferred.remove(&id);
                    }
                }
                proptest::prop_assert_eq!(&s.waiting, &waiting);
                proptest::prop_assert_eq!(&s.deferred, &deferred);
            }
        }
    }

    #[test]
    fn upsert_of_running_job_is_ignored_and_remove_forgets() {
        let mut s = Scheduler::new(limits());
        s.upsert(entry(1, JobKind::MailOut, 127, 0));
        let d = s.next(at(0)).unwrap();
        s.upsert(entry(1, JobKind::MailOut, 127, 0));
        assert_eq!(s.counts(), (0, 1));
        s.finished(&d.id);
        s.upsert(entry(1, JobKind::MailOut, 127, 100));
        s.remove(&id(1));
        assert_eq!(s.counts(), (0, 0));
        assert_eq!(s.poll_at(), None);
    }
}
