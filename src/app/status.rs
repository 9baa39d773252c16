//! PURE: what `faxgate status` and systemd's `STATUS=` line show — the modems (state, last
//! call, last error), the queue counts per job kind, and the most recent finished jobs — and
//! how it is printed. The daemon keeps a [`ModemStatus`] per line up to date; the queue part is
//! computed from spool records handed in. Nothing here reads files or the clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::fax::modem::probe::ModemInfo;
use crate::fax::t30::{Activity, Progress};
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

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// We called (a fax job being sent).
    Out,
    /// We answered (a fax being received).
    In,
}

impl Direction {
    /// The word shown (as in [`LastCall::direction`]).
    pub fn word(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

/// The step a call in progress is at, in plain words (the serialized form is the word shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallPhase {
    /// Placing the call (and, before it, making the pages): T.30 phase A.
    #[serde(rename = "dialling")]
    Dialling,
    /// Answering a ringing line: T.30 phase A.
    #[serde(rename = "answering")]
    Answering,
    /// Identification and capabilities (DIS/CSI): T.30 phase B.
    #[serde(rename = "negotiating")]
    Negotiating,
    /// DCS, TCF and CFR/FTT: the line checked at the chosen speed (phase B).
    #[serde(rename = "training")]
    Training,
    /// Page data going out: T.30 phase C.
    #[serde(rename = "sending page")]
    SendingPage,
    /// Page data coming in: T.30 phase C.
    #[serde(rename = "receiving page")]
    ReceivingPage,
    /// The page's confirmation (MCF/RTN, PPS/PPR): T.30 phase D.
    #[serde(rename = "confirming page")]
    Confirming,
    /// Releasing the line (DCN): T.30 phase E.
    #[serde(rename = "hanging up")]
    HangingUp,
}

impl CallPhase {
    /// The words shown.
    pub fn word(self) -> &'static str {
        match self {
            CallPhase::Dialling => "dialling",
            CallPhase::Answering => "answering",
            CallPhase::Negotiating => "negotiating",
            CallPhase::Training => "training",
            CallPhase::SendingPage => "sending page",
            CallPhase::ReceivingPage => "receiving page",
            CallPhase::Confirming => "confirming page",
            CallPhase::HangingUp => "hanging up",
        }
    }

    /// The phase an engine's activity shows as; `None` before the engine started (the
    /// phase set by the line — dialling or answering — stays).
    pub fn of(a: Activity) -> Option<CallPhase> {
        Some(match a {
            Activity::Starting => return None,
            Activity::Negotiating => CallPhase::Negotiating,
            Activity::Training => CallPhase::Training,
            Activity::SendingPage => CallPhase::SendingPage,
            Activity::ReceivingPage => CallPhase::ReceivingPage,
            Activity::Confirming => CallPhase::Confirming,
            Activity::Releasing | Activity::Finished => CallPhase::HangingUp,
        })
    }
}

/// The call a line is carrying now, kept up to date at each change of phase or page (never
/// per byte) by the line's driver through [`CallProgress::update`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallProgress {
    /// `out` (sending a job) or `in` (receiving).
    pub direction: Direction,
    /// The step it is at.
    pub phase: CallPhase,
    /// The page being sent or received, 1-based, once the first one began.
    #[serde(default)]
    pub page: Option<u32>,
    /// Pages in all, when known (sending).
    #[serde(default)]
    pub pages_total: Option<u32>,
    /// The signalling rate of the DCS in force, bit/s.
    #[serde(default)]
    pub speed_bps: Option<u32>,
    /// The remote's CSI (we called) or TSI (we answered), once heard.
    #[serde(default)]
    pub remote_id: Option<String>,
    /// The number dialled (out) or the caller's number (in), when known.
    #[serde(default)]
    pub number: String,
    /// The fax job (out).
    #[serde(default)]
    pub job: Option<String>,
}

/// Longest caller number kept for display (ours: E.164 is 15 digits; caller ID adds little).
pub const MAX_SHOWN_NUMBER: usize = 32;

impl CallProgress {
    /// A call being placed for `job` (empty: none) to `number`.
    pub fn dialling(job: &str, number: &str) -> CallProgress {
        let job = (!job.is_empty()).then(|| job.to_owned());
        CallProgress::new(Direction::Out, CallPhase::Dialling, number, job)
    }

    /// A call being answered from `caller` (when the line told).
    pub fn answering(caller: Option<&str>) -> CallProgress {
        CallProgress::new(
            Direction::In,
            CallPhase::Answering,
            caller.unwrap_or_default(),
            None,
        )
    }

    fn new(direction: Direction, phase: CallPhase, number: &str, job: Option<String>) -> Self {
        CallProgress {
            direction,
            phase,
            page: None,
            pages_total: None,
            speed_bps: None,
            remote_id: None,
            // Caller ID comes from the line: printable characters only, bounded.
            number: number
                .chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(MAX_SHOWN_NUMBER)
                .collect(),
            job,
        }
    }

    /// Folds the engine's `p` in. Returns true when anything shown changed (the caller then
    /// writes the board; the speed and IDs settle once per call, pages change per page).
    pub fn update(&mut self, p: &Progress) -> bool {
        let before = self.clone();
        if let Some(phase) = CallPhase::of(p.activity) {
            self.phase = phase;
        }
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.page = p.page.map(count);
        self.pages_total = p.pages_total.map(count);
        self.speed_bps = p.modulation.map(|m| m.bps());
        if p.remote_id.as_deref().is_some_and(|r| !r.is_empty()) {
            self.remote_id.clone_from(&p.remote_id);
        }
        *self != before
    }

    /// One line for people: e.g. "sending page 2 of 3, 14400 bit/s, to +12125550123 (remote
    /// +1 212 555 0123), job …".
    pub fn describe(&self) -> String {
        let mut o = self.phase.word().to_string();
        match (self.page, self.pages_total) {
            (Some(n), Some(t)) => {
                let _ = write!(o, ", page {n} of {t}");
            }
            (Some(n), None) => {
                let _ = write!(o, ", page {n}");
            }
            (None, Some(t)) => {
                let _ = write!(o, ", {}", plural(t as usize, "page", "pages"));
            }
            (None, None) => {}
        }
        if let Some(b) = self.speed_bps {
            let _ = write!(o, ", {b} bit/s");
        }
        let way = match self.direction {
            Direction::Out => "to",
            Direction::In => "from",
        };
        if !self.number.is_empty() {
            let _ = write!(o, ", {way} {}", self.number);
        }
        if let Some(r) = &self.remote_id {
            let _ = write!(o, " (remote {r})");
        }
        if let Some(j) = &self.job {
            let _ = write!(o, ", job {j}");
        }
        o
    }
}

/// What the daemon learnt of a modem when it opened it (`ATI`, `AT+FCLASS=?`, `AT+FTM=?`,
/// `AT+FRM=?`, `AT+FTH=?`; T.31 §8), for the console's modems page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemProbe {
    /// When it was probed.
    pub when: Timestamp,
    /// `ATI` text (printable characters only, bounded: it comes from the device).
    pub identity: String,
    /// Service classes offered (`1`, `1.0`, `2.0`…).
    pub classes: Vec<String>,
    /// Highest page-data rate usable both ways, bit/s (0: none).
    pub max_bps: u32,
    /// Page-data rates it can send, bit/s, highest first.
    pub transmit_bps: Vec<u32>,
    /// Page-data rates it can receive, bit/s, highest first.
    pub receive_bps: Vec<u32>,
    /// V.21 HDLC (`+FTH=3`) works: T.30 signalling is possible.
    pub v21_hdlc: bool,
}

/// Longest `ATI` text kept (ours).
pub const MAX_IDENTITY: usize = 200;

impl ModemProbe {
    /// The shown form of what a probe found, at `when`.
    pub fn of(info: &ModemInfo, when: Timestamp) -> ModemProbe {
        let rates = |v: &[(crate::fax::t30::Modulation, crate::fax::t30::Training)]| {
            let mut r: Vec<u32> = v.iter().map(|(m, _)| m.bps()).collect();
            r.sort_unstable_by(|a, b| b.cmp(a));
            r.dedup();
            r
        };
        ModemProbe {
            when,
            identity: info
                .identity
                .chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(MAX_IDENTITY)
                .collect(),
            classes: info.classes.clone(),
            max_bps: info.max_rate(),
            transmit_bps: rates(&info.transmit),
            receive_bps: rates(&info.receive),
            v21_hdlc: info.v21_hdlc,
        }
    }
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
    /// The call in progress, live.
    #[serde(default)]
    pub call: Option<CallProgress>,
    /// What the modem said about itself when last opened (real modems only).
    #[serde(default)]
    pub probe: Option<ModemProbe>,
    /// A SIP line's registration, in words ("registered with … until …", "not registering");
    /// `None` for modems. A refused REGISTER is the line's `last_error` and `offline` state.
    #[serde(default)]
    pub registration: Option<String>,
}

impl ModemStatus {
    /// A line as configured, idle, with nothing known of it yet.
    pub fn idle(name: &str, role: &str) -> ModemStatus {
        ModemStatus {
            name: name.into(),
            role: role.into(),
            state: ModemState::Idle,
            job: None,
            last_call: None,
            last_error: None,
            call: None,
            probe: None,
            registration: None,
        }
    }
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
        if let Some(c) = &m.call {
            let _ = writeln!(o, "    call: {} {}", c.direction.word(), c.describe());
        }
        if let Some(r) = &m.registration {
            let _ = writeln!(o, "    sip: {r}");
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
            state,
            ..ModemStatus::idle("m", "both")
        }
    }

    fn progress(activity: Activity, page: Option<usize>) -> Progress {
        Progress {
            activity,
            page,
            pages_total: Some(3),
            modulation: Some(crate::fax::t30::Modulation::V17_14400),
            remote_id: Some("+1 555".into()),
        }
    }

    #[test]
    fn call_progress_changes_only_when_something_shown_changes() {
        let mut c = CallProgress::dialling("J1", "+12125550123");
        assert_eq!(c.describe(), "dialling, to +12125550123, job J1");
        // The engine not started yet: the line's own phase stays.
        assert!(!c.update(&Progress {
            activity: Activity::Starting,
            page: None,
            pages_total: None,
            modulation: None,
            remote_id: None,
        }));
        assert_eq!(c.phase, CallPhase::Dialling);
        assert!(c.update(&progress(Activity::Training, None)));
        assert!(
            !c.update(&progress(Activity::Training, None)),
            "same view again"
        );
        assert!(c.update(&progress(Activity::SendingPage, Some(1))));
        assert_eq!(
            c.describe(),
            "sending page, page 1 of 3, 14400 bit/s, to +12125550123 (remote +1 555), job J1"
        );
        assert!(c.update(&progress(Activity::SendingPage, Some(2))));
        // A remote ID once heard is kept.
        let mut p = progress(Activity::Confirming, Some(2));
        p.remote_id = None;
        assert!(c.update(&p));
        assert_eq!(c.remote_id.as_deref(), Some("+1 555"));
        assert!(c.update(&progress(Activity::Finished, Some(3))));
        assert_eq!(c.phase.word(), "hanging up");
    }

    #[test]
    fn an_incoming_call_shows_its_caller_cleaned() {
        let mut c = CallProgress::answering(Some("+1 212\x1b[31m\n555"));
        assert_eq!(c.number, "+1 212[31m555");
        assert!(c.update(&Progress {
            activity: Activity::ReceivingPage,
            page: Some(1),
            pages_total: None,
            modulation: None,
            remote_id: Some("+49 30 1".into()),
        }));
        assert_eq!(
            c.describe(),
            "receiving page, page 1, from +1 212[31m555 (remote +49 30 1)"
        );
        assert_eq!(CallProgress::answering(None).describe(), "answering");
    }

    #[test]
    fn a_snapshot_without_calls_or_probes_still_parses() {
        // What a daemon from before the console answered.
        let old = r#"{"live":true,"modems":[{"name":"loopback","role":"send","state":"idle"}],
                      "queue":{},"recent":[]}"#;
        let s: Snapshot = serde_json::from_str(old).unwrap();
        assert_eq!(s.modems[0].call, None);
        assert_eq!(s.modems[0].probe, None);
        let mut m = modem(ModemState::Sending);
        m.call = Some(CallProgress::dialling("J", "+1"));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["call"]["phase"], "dialling");
        assert_eq!(j["call"]["direction"], "out");
        assert_eq!(serde_json::from_value::<ModemStatus>(j).unwrap(), m);
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
            fax_options: None,
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
        m.call = Some(CallProgress::dialling("J1", "+1212"));
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
        assert!(
            t.contains("    call: out dialling, to +1212, job J1\n"),
            "{t}"
        );
    }
}
