//! PURE: what `faxgate status` and systemd's `STATUS=` line show — the modems (state, last
//! call, last error), the queue counts per job kind, and the most recent finished jobs — and
//! how it is printed. The daemon keeps a [`ModemStatus`] per line up to date; the queue part is
//! computed from spool records handed in. Nothing here reads files or the clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scheduler::Timestamp;
use crate::spool::{JobKind, JobRecord, JobState};

/// Jobs listed under "recent" at most (ours).
pub const RECENT_JOBS: usize = 10;

/// What a line (modem) is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModemState {
    /// Free: waits for RING (receive/both) or for a job to send (send/both).
    Idle,
    /// Placing or carrying an outgoing call.
    Sending,
    /// Answering or carrying an incoming call.
    Receiving,
    /// Out of service (device missing, failed reset); retried in the background.
    Offline,
    /// The daemon is not running: nothing is known about the line now.
    Stopped,
}

impl ModemState {
    /// The word shown.
    pub fn word(self) -> &'static str {
        match self {
            ModemState::Idle => "idle",
            ModemState::Sending => "sending",
            ModemState::Receiving => "receiving",
            ModemState::Offline => "offline",
            ModemState::Stopped => "stopped",
        }
    }
}

/// The last call a line carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCall {
    /// When it ended.
    pub ended: Timestamp,
    /// `out` or `in`.
    pub direction: String,
    /// The job it belonged to.
    pub job: String,
    /// The number dialled (out) or the caller (in).
    pub number: String,
    /// Pages confirmed (out) or received (in).
    pub pages: u32,
    /// The completion cause, in words, with its number.
    pub cause: String,
}

/// One line of the modem pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemStatus {
    /// `[[modem]] name`, or `loopback`.
    pub name: String,
    /// `send`, `receive` or `both`.
    pub role: String,
    /// What it does now.
    pub state: ModemState,
    /// The job on it while sending.
    #[serde(default)]
    pub job: Option<String>,
    /// The last call it carried.
    #[serde(default)]
    pub last_call: Option<LastCall>,
    /// The last error (call failure or device trouble), with its time.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Waiting and running jobs of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCounts {
    /// Waiting for their due time or a resource.
    pub queued: usize,
    /// An attempt in progress.
    pub running: usize,
}

/// A finished job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentJob {
    /// Its id.
    pub id: String,
    /// `fax-out`, `mail-out`, ….
    pub kind: String,
    /// `done` or `failed`.
    pub state: String,
    /// When it finished.
    pub finished: Timestamp,
    /// The last attempt's detail, or why it was given up.
    pub detail: String,
}

/// Everything `faxgate status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// True when it came from the running daemon; false when read from the spool alone.
    pub live: bool,
    /// The daemon's process id (live only).
    #[serde(default)]
    pub pid: Option<u32>,
    /// When the daemon started (live only).
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// The lines.
    pub modems: Vec<ModemStatus>,
    /// Queue counts by job kind (`message`, `fax-out`, `mail-out`, `fax-in`).
    pub queue: BTreeMap<String, KindCounts>,
    /// The most recently finished jobs, newest first.
    pub recent: Vec<RecentJob>,
    /// Job directories whose record cannot be read.
    #[serde(default)]
    pub damaged: usize,
}

/// The last call of each line, as the spool remembers it: the most recent ended attempt of
/// any `FaxOut` record that names the line (received faxes are not attempts and do not show).
pub fn last_calls(records: &[JobRecord]) -> BTreeMap<String, LastCall> {
    let mut m: BTreeMap<String, LastCall> = BTreeMap::new();
    for r in records {
        note_calls(&mut m, r);
    }
    m
}

/// Folds the calls of record `r` into `m`, the last call of each line ([`last_calls`] one
/// record at a time, for a scan of the spool in flat memory).
pub fn note_calls(m: &mut BTreeMap<String, LastCall>, r: &JobRecord) {
    if r.kind == JobKind::FaxOut {
        for a in &r.attempts {
            let (Some(line), Some(ended)) = (&a.modem, a.ended) else {
                continue;
            };
            if m.get(line).is_some_and(|c| c.ended >= ended) {
                continue;
            }
            let number = match &r.data {
                crate::job::JobData::FaxOut(j) => j.e164.clone(),
                _ => String::new(),
            };
            m.insert(
                line.clone(),
                LastCall {
                    ended,
                    direction: "out".into(),
                    job: r.id.to_string(),
                    number,
                    pages: a.pages_sent,
                    cause: a.detail.clone(),
                },
            );
        }
    }
}

/// Names of the lines that may place calls (role `send` or `both`), for the scheduler.
pub fn sending_lines(modems: &[ModemStatus]) -> Vec<String> {
    modems
        .iter()
        .filter(|m| m.role == "send" || m.role == "both")
        .map(|m| m.name.clone())
        .collect()
}

/// Counts the unfinished jobs in `queue` by kind and state.
pub fn queue_counts(queue: &[JobRecord]) -> BTreeMap<String, KindCounts> {
    let mut m: BTreeMap<String, KindCounts> = BTreeMap::new();
    for r in queue {
        let c = m.entry(r.kind.name().to_string()).or_default();
        match r.state {
            JobState::Running => c.running += 1,
            _ => c.queued += 1,
        }
    }
    m
}

/// The `n` most recently finished of `archived` jobs, newest first.
pub fn recent(mut archived: Vec<JobRecord>, n: usize) -> Vec<RecentJob> {
    archived.sort_by_key(|r| std::cmp::Reverse((r.finished.unwrap_or(r.created), r.id.clone())));
    archived
        .into_iter()
        .take(n)
        .map(|r| {
            let detail = match (&r.failure, r.attempts.last()) {
                (Some(g), Some(a)) if !a.detail.is_empty() => format!("{g}: {}", a.detail),
                (Some(g), _) => g.to_string(),
                (None, Some(a)) => a.detail.clone(),
                (None, None) => String::new(),
            };
            RecentJob {
                id: r.id.to_string(),
                kind: r.kind.name().into(),
                state: r.state.name().into(),
                finished: r.finished.unwrap_or(r.created),
                detail,
            }
        })
        .collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line summary for systemd's `STATUS=`: e.g. "2 modems idle, 1 sending, 3 jobs
/// queued".
pub fn summary(modems: &[ModemStatus], queue: &BTreeMap<String, KindCounts>) -> String {
    let count = |s: ModemState| modems.iter().filter(|m| m.state == s).count();
    let idle = count(ModemState::Idle);
    let mut parts = vec![format!("{} idle", plural(idle, "modem", "modems"))];
    for s in [
        ModemState::Sending,
        ModemState::Receiving,
        ModemState::Offline,
    ] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {}", s.word()));
        }
    }
    let queued: usize = queue.values().map(|c| c.queued).sum();
    let running: usize = queue.values().map(|c| c.running).sum();
    parts.push(format!("{} queued", plural(queued, "job", "jobs")));
    if running > 0 {
        parts.push(format!("{running} running"));
    }
    parts.join(", ")
}

/// The human-readable `faxgate status` output.
pub fn format(s: &Snapshot) -> String {
    let mut o = String::new();
    match (s.live, s.pid, s.since) {
        (true, Some(pid), Some(since)) => {
            let _ = writeln!(o, "faxgate: running (pid {pid}, since {since})");
        }
        (true, _, _) => {
            let _ = writeln!(o, "faxgate: running");
        }
        (false, _, _) => {
            let _ = writeln!(o, "faxgate: not running (figures from the spool)");
        }
    }
    let _ = writeln!(o, "{}", summary(&s.modems, &s.queue));
    let _ = writeln!(o, "\nmodems:");
    if s.modems.is_empty() {
        let _ = writeln!(o, "  (none configured)");
    }
    for m in &s.modems {
        let job = m
            .job
            .as_deref()
            .map(|j| format!(" job {j}"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {:<12} {:<8} {:<9}{job}",
            m.name,
            m.role,
            m.state.word()
        );
        match &m.last_call {
            Some(c) => {
                let _ = writeln!(
                    o,
                    "    last call: {} {} {} job {}, {} pages, {}",
                    c.ended, c.direction, c.number, c.job, c.pages, c.cause
                );
            }
            None => {
                let _ = writeln!(o, "    last call: none");
            }
        }
        if let Some(e) = &m.last_error {
            let _ = writeln!(o, "    last error: {e}");
        }
    }
    let _ = writeln!(o, "\nqueue:");
    if s.queue.is_empty() {
        let _ = writeln!(o, "  empty");
    }
    for (kind, c) in &s.queue {
        let _ = writeln!(o, "  {kind:<9} {} queued, {} running", c.queued, c.running);
    }
    if s.damaged > 0 {
        let _ = writeln!(
            o,
            "  {} damaged job directories (see faxgate queue list)",
            s.damaged
        );
    }
    let _ = writeln!(o, "\nrecent jobs:");
    if s.recent.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for r in &s.recent {
        let _ = writeln!(
            o,
            "  {} {:<8} {:<6} {} {}",
            r.finished, r.kind, r.state, r.id, r.detail
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modem(state: ModemState) -> ModemStatus {
        ModemStatus {
            name: "m".into(),
            role: "both".into(),
            state,
            job: None,
            last_call: None,
            last_error: None,
        }
    }

    #[test]
    fn summary_counts_modems_and_jobs() {
        let mut q = BTreeMap::new();
        q.insert(
            "fax-out".to_string(),
            KindCounts {
                queued: 2,
                running: 1,
            },
        );
        q.insert(
            "mail-out".to_string(),
            KindCounts {
                queued: 1,
                running: 0,
            },
        );
        let m = [
            modem(ModemState::Idle),
            modem(ModemState::Idle),
            modem(ModemState::Sending),
        ];
        assert_eq!(
            summary(&m, &q),
            "2 modems idle, 1 sending, 3 jobs queued, 1 running"
        );
        assert_eq!(
            summary(&m[..1], &BTreeMap::new()),
            "1 modem idle, 0 jobs queued"
        );
    }

    #[test]
    fn last_calls_pick_the_latest_ended_attempt_per_line() {
        use crate::spool::{Attempt, JobId, RECORD_VERSION};
        let att = |modem: &str, ended: Option<u64>, detail: &str| Attempt {
            started: Timestamp(1),
            ended: ended.map(Timestamp),
            cause: None,
            detail: detail.into(),
            pages_sent: 2,
            modem: Some(modem.into()),
            connected: true,
        };
        let rec = |n: u64, kind: JobKind, attempts: Vec<Attempt>| JobRecord {
            version: RECORD_VERSION,
            id: JobId::new(Timestamp(n), n),
            kind,
            state: JobState::Done,
            created: Timestamp(n),
            epoch: Timestamp(n),
            next_due: Timestamp(n),
            priority: 127,
            attempts,
            counted_from: 0,
            failure: None,
            finished: None,
            parent: None,
            child: None,
            data: match crate::job::data::sample(kind, "") {
                crate::job::JobData::FaxOut(mut j) => {
                    j.e164 = "+12125550123".into();
                    crate::job::JobData::FaxOut(j)
                }
                other => other,
            },
        };
        let recs = vec![
            rec(
                1,
                JobKind::FaxOut,
                vec![att("a", Some(10), "old"), att("b", Some(5), "b1")],
            ),
            rec(
                2,
                JobKind::FaxOut,
                vec![att("a", Some(20), "new"), att("a", None, "open")],
            ),
            rec(3, JobKind::MailOut, vec![att("a", Some(99), "not a call")]),
        ];
        let m = last_calls(&recs);
        assert_eq!(m["a"].cause, "new");
        assert_eq!(m["a"].number, "+12125550123");
        assert_eq!(m["b"].ended, Timestamp(5));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn snapshot_round_trips_and_prints() {
        let mut m = modem(ModemState::Sending);
        m.job = Some("J1".into());
        m.last_error = Some("x".into());
        m.last_call = Some(LastCall {
            ended: Timestamp(0),
            direction: "out".into(),
            job: "J0".into(),
            number: "+1212".into(),
            pages: 2,
            cause: "0 all pages".into(),
        });
        let s = Snapshot {
            live: true,
            pid: Some(7),
            since: Some(Timestamp(0)),
            modems: vec![m],
            queue: BTreeMap::new(),
            recent: vec![],
            damaged: 0,
        };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Snapshot>(&j).unwrap(), s);
        let t = format(&s);
        assert!(t.contains("running (pid 7"), "{t}");
        assert!(t.contains("sending") && t.contains("job J1"), "{t}");
        assert!(t.contains("last error: x"), "{t}");
    }
}
