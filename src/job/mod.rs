//! PURE leaf: the job vocabulary every other part of the gateway speaks — what a job is
//! ([`JobId`], [`JobKind`], [`JobState`]), how its attempts went ([`Attempt`], [`Outcome`],
//! [`CauseClass`]), what happens next ([`Decision`], [`GiveUp`], the retry [`Policy`]), when
//! ([`Timestamp`]), how a job relates to the jobs made from it ([`Child`]), and what each kind
//! of job carries ([`JobData`], in [`data`]).
//!
//! It imports nothing else of the crate: the spool stores records of it, the scheduler decides
//! with it, the workers report in it, so none of them needs another's types (no import
//! circles). Time is always an argument; nothing here reads the clock.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod data;

pub use data::{
    AddressForm, BadData, Body, ClientInfo, Completion, Destination, Envelope, FaxAttemptOptions,
    FaxInData, FaxOutData, FaxResult, JobData, MailEnvelope, MailOutData, MessageData, Notify,
    Number, PageResult, Purpose, Reception, Recipient, ReportKind, Resolution, Ret, SenderOptions,
    Source, TlsInfo,
};

/// A point in time: milliseconds since the Unix epoch (UTC). Ours; stored in job records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `self + d`, saturating at the end of time.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Whole seconds since the epoch.
    pub fn unix_secs(self) -> u64 {
        self.0 / 1000
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = i64::try_from(self.0 / 1000).unwrap_or(i64::MAX);
        match chrono::DateTime::from_timestamp(secs, 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S UTC")),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

/// What an attempt's outcome means for the job: the classes the fax and mail engines map their
/// own completion causes onto (cf. HylaFAX's status registry, spandsp's T30_ERR_* codes).
/// Ours; the fine-grained cause travels alongside as text in [`Attempt::detail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CauseClass {
    /// The job's work is complete (fax confirmed by MCF after the last page, mail accepted 2xx).
    Done,
    /// Line busy: retry after [`Policy::busy`].
    Busy,
    /// No answer, no carrier, no dial tone, or a voice/data answer: retry after
    /// [`Policy::no_answer`].
    NoAnswer,
    /// A fax machine answered but T.30 failed (training, no MCF, DCN mid-page): retry after
    /// [`Policy::protocol_error`]; counts against [`Policy::max_tries`].
    ProtocolError,
    /// Never worth retrying: number blocked by the dial plan, invalid number, incompatible
    /// remote, document that cannot be rendered.
    Fatal,
    /// The process died while the attempt was in progress (recorded at restart): retried at
    /// once, counted as a dial (at-least-once delivery).
    Interrupted,
    /// Relay said 4xx, was unreachable or timed out: exponential backoff.
    RelayTemporary,
    /// Relay said 5xx: the mail is dead-lettered.
    RelayPermanent,
    /// Our own transient trouble (spool full, modem gone): exponential backoff, not a dial.
    LocalTemporary,
}

impl CauseClass {
    /// True for the classes that end a job successfully.
    pub fn is_done(self) -> bool {
        self == CauseClass::Done
    }

    /// True when the attempt placed a call (HylaFAX `totdials`): every fax outcome except our
    /// own local trouble.
    pub fn is_dial(self) -> bool {
        !matches!(self, CauseClass::LocalTemporary)
    }
}

/// `[retry]` as the scheduler uses it. The keys are `[retry]` in `faxgate.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// HylaFAX `JobReqBusy`: 180 s.
    pub busy: Duration,
    /// HylaFAX `JobReqNoAnswer`: 300 s.
    pub no_answer: Duration,
    /// HylaFAX `JobReqProto`: 60 s.
    pub protocol_error: Duration,
    /// HylaFAX `MaxDials`: 12.
    pub max_dials: u32,
    /// HylaFAX `MaxTries`: 3 calls that reached a fax machine.
    pub max_tries: u32,
    /// HylaFAX kill time (`-k 3h` default of sendfax): a fax job older than this is failed.
    pub kill_after: Duration,
    /// First backoff after a relay / local temporary failure; doubles each time.
    pub relay_initial: Duration,
    /// Cap on that backoff (1 h).
    pub relay_max: Duration,
    /// Mail (and local work) older than this is failed (5 days, RFC 5321 §4.5.4.1).
    pub relay_give_up: Duration,
}

/// Why a job was given up (ours). Its `Display` is the line reported to the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GiveUp {
    /// The last attempt's class is never retried.
    Fatal,
    /// HylaFAX `MaxDials` reached.
    TooManyDials,
    /// HylaFAX `MaxTries` reached.
    TooManyTries,
    /// Fax kill time passed (or the next retry would fall after it).
    KillTime,
    /// Mail give-up time passed.
    Expired,
    /// Cancelled by the operator (`faxgate queue cancel`).
    Cancelled,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GiveUp::Fatal => "permanent failure",
            GiveUp::TooManyDials => "too many dial attempts",
            GiveUp::TooManyTries => "too many attempts to send",
            GiveUp::KillTime => "job kill time reached",
            GiveUp::Expired => "could not be delivered before the give-up time",
            GiveUp::Cancelled => "cancelled by the operator",
        })
    }
}

/// What happens to a job after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Finished: into `done/`.
    Done,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Give up: into `failed/`, the sender is told.
    Fail(GiveUp),
}

/// A job id: 8 hex digits of creation time (seconds) then 12 random hex digits, optionally
/// `.N` (1–9999) for a child job derived from a parent (one fax job per recipient of a
/// message). Ids sort by creation time and are safe as file names.
///
/// Held inline (26 bytes, no heap): the dispatcher keeps every queued job's id in memory,
/// several times over in its indexes, and a backlog of 100 000 jobs must stay small. Zero
/// padding sorts before every id character, so the derived order is the text's order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId {
    text: [u8; JobId::MAX_LEN],
    len: u8,
}

/// A string that is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a job id: {0:?} (expected 20 hex digits, optionally .N)")]
pub struct BadJobId(pub String);

impl JobId {
    /// Length of the base id.
    pub const BASE_LEN: usize = 20;
    /// Longest id: the base, a dot and four digits.
    const MAX_LEN: usize = Self::BASE_LEN + 5;

    /// An id of text already checked (ASCII, at most [`JobId::MAX_LEN`] bytes).
    fn inline(s: &str) -> JobId {
        let mut text = [0u8; Self::MAX_LEN];
        let n = s.len().min(Self::MAX_LEN);
        text[..n].copy_from_slice(&s.as_bytes()[..n]);
        JobId { text, len: n as u8 }
    }

    /// A new id from the creation time and 48 random bits.
    pub fn new(created: Timestamp, random: u64) -> JobId {
        let secs = u32::try_from(created.unix_secs()).unwrap_or(u32::MAX);
        JobId::inline(&format!("{secs:08x}{:012x}", random & 0xffff_ffff_ffff))
    }

    /// The `n`-th child of this id (deterministic, so that splitting a message into fax jobs
    /// can be repeated after a crash without duplicating jobs).
    pub fn child(&self, n: u16) -> Result<JobId, BadJobId> {
        format!("{}.{n}", self.base()).parse()
    }

    /// The `N` of a child id `base.N`; `None` for a base id.
    pub fn child_number(&self) -> Option<u16> {
        self.as_str().get(Self::BASE_LEN + 1..)?.parse().ok()
    }

    /// The id without any child suffix.
    pub fn base(&self) -> &str {
        self.as_str().get(..Self::BASE_LEN).unwrap_or_default()
    }

    /// The bucket directory name: the last two hex digits of the random part, which spread
    /// jobs evenly over 256 directories (OpenSMTPD does the same with its message ids).
    pub fn bucket(&self) -> &str {
        self.as_str()
            .get(Self::BASE_LEN - 2..Self::BASE_LEN)
            .unwrap_or_default()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only checked ASCII is ever stored.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl FromStr for JobId {
    type Err = BadJobId;
    fn from_str(s: &str) -> Result<JobId, BadJobId> {
        let bad = || BadJobId(s.chars().take(64).collect());
        let (base, child) = match s.split_once('.') {
            Some((b, c)) => (b, Some(c)),
            None => (s, None),
        };
        if base.len() != Self::BASE_LEN
            || !base
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        if let Some(c) = child {
            let ok = !c.is_empty()
                && c.len() <= 4
                && c.bytes().all(|b| b.is_ascii_digit())
                && !c.starts_with('0');
            if !ok {
                return Err(bad());
            }
        }
        Ok(JobId::inline(s))
    }
}

impl TryFrom<String> for JobId {
    type Error = BadJobId;
    fn try_from(s: String) -> Result<JobId, BadJobId> {
        s.parse()
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.as_str().to_owned()
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({:?})", self.as_str())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// An offramp email as accepted over SMTP, with its envelope, before it is split into
    /// fax jobs (payload `message.eml`).
    Message,
    /// One outgoing fax to one recipient number.
    FaxOut,
    /// An email to deliver through the relay: a received fax, or a report (DSN) to a sender.
    MailOut,
    /// A received fax awaiting routing (payload `fax.tif`).
    FaxIn,
}

impl JobKind {
    /// The name used in records and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Message => "message",
            JobKind::FaxOut => "fax-out",
            JobKind::MailOut => "mail-out",
            JobKind::FaxIn => "fax-in",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a job is in its life. `Queued`/`Running` live in `queue/`, `Done` in `done/`,
/// `Failed` in `failed/` (a record found in `queue/` with a final state is moved at start-up:
/// the process died between the two steps of finishing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Waiting for its due time and a resource.
    Queued,
    /// An attempt is in progress (its last attempt has no end yet).
    Running,
    /// Finished successfully.
    Done,
    /// Given up; the reason is in the record's `failure`.
    Failed,
}

impl JobState {
    /// True for `Done` and `Failed`.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }

    /// The name used in records and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One attempt at a job: a dial, a relay session, a local processing run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it started.
    pub started: Timestamp,
    /// When it ended; `None` while it runs (or if the process died during it).
    #[serde(default)]
    pub ended: Option<Timestamp>,
    /// Its outcome class; `None` while it runs.
    #[serde(default)]
    pub cause: Option<CauseClass>,
    /// The worker's own cause in words or codes (e.g. "T.30: no response to DCS", "451 4.3.0").
    #[serde(default)]
    pub detail: String,
    /// Pages confirmed by the receiver during this attempt.
    #[serde(default)]
    pub pages_sent: u32,
    /// The modem used, for fax attempts.
    #[serde(default)]
    pub modem: Option<String>,
    /// A fax machine answered (HylaFAX counts these as "tries").
    #[serde(default)]
    pub connected: bool,
    /// The T.30 options a fax attempt was sent with (`[fax_options]`, `[[fax_route]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fax_options: Option<FaxAttemptOptions>,
}

/// How an attempt ended, as reported by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The class that drives the retry decision.
    pub cause: CauseClass,
    /// The worker's own cause text.
    pub detail: String,
    /// Pages confirmed during the attempt.
    pub pages_sent: u32,
    /// A fax machine answered.
    pub connected: bool,
}

/// What a child job is to its parent (ours). A child's id is its parent's id with `.N`, and
/// `N` is fixed by the relation, so repeating a step after a crash cannot make a job twice
/// (the spool refuses an id that exists). This is the one place those numbers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "role", content = "n")]
pub enum Child {
    /// The fax job of the message's `n`-th recipient (1-based; `.n`).
    Recipient(u16),
    /// The one delivery report (RFC 3464 DSN) of a message (`.9000`).
    Report,
    /// The MDN (RFC 8098) for recipient `n` (`.9100+n`).
    Mdn(u16),
    /// The delay notice for recipient `n` (`.9400+n`).
    DelayNotice(u16),
    /// The copy of postmaster mail forwarded to `gateway.admin` (`.9700`).
    Postmaster,
    /// The email of a received fax, or a notice to the operator about a job (`.1`, `.2`, …:
    /// jobs that have only this kind of child).
    Mail(u16),
}

impl Child {
    /// Recipients per message at most, so that the number ranges stay apart (the MDN range
    /// starts at 9100, the delay range at 9400, the postmaster copy is 9700).
    pub const MAX_RECIPIENTS: u16 = 299;
    const REPORT: u16 = 9000;
    const MDN: u16 = 9100;
    const DELAY: u16 = 9400;
    const POSTMASTER: u16 = 9700;

    /// The child number `N` of the id `parent.N`.
    pub const fn number(self) -> u16 {
        match self {
            Child::Recipient(n) | Child::Mail(n) => n,
            Child::Report => Self::REPORT,
            Child::Mdn(n) => Self::MDN + n,
            Child::DelayNotice(n) => Self::DELAY + n,
            Child::Postmaster => Self::POSTMASTER,
        }
    }

    /// The relation a child number of a `Message` job's child stands for (records written
    /// before relations were typed carry only the number).
    pub fn of_message_child(n: u16) -> Option<Child> {
        match n {
            1..=Self::MAX_RECIPIENTS => Some(Child::Recipient(n)),
            Self::REPORT => Some(Child::Report),
            x if x > Self::MDN && x <= Self::MDN + Self::MAX_RECIPIENTS => {
                Some(Child::Mdn(x - Self::MDN))
            }
            x if x > Self::DELAY && x <= Self::DELAY + Self::MAX_RECIPIENTS => {
                Some(Child::DelayNotice(x - Self::DELAY))
            }
            Self::POSTMASTER => Some(Child::Postmaster),
            _ => None,
        }
    }

    /// The relation of a child job of kind `kind` numbered `n` in a record written before
    /// relations were stored (version 1): a fax job is a message's recipient; mail numbered in
    /// the report ranges is that report, any other mail is a plain `Mail` child (a received
    /// fax's email, an operator notice).
    pub fn of_v1(kind: JobKind, n: u16) -> Option<Child> {
        match kind {
            JobKind::FaxOut => (1..=Self::MAX_RECIPIENTS)
                .contains(&n)
                .then_some(Child::Recipient(n)),
            JobKind::MailOut => match Child::of_message_child(n) {
                Some(Child::Recipient(_)) | None => Some(Child::Mail(n)),
                relation => relation,
            },
            JobKind::Message | JobKind::FaxIn => None,
        }
    }

    /// The id of this child of `parent`.
    pub fn id_of(self, parent: &JobId) -> Result<JobId, BadJobId> {
        parent.child(self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_small_and_sort_as_their_text() {
        assert!(std::mem::size_of::<JobId>() <= 26);
        let texts = [
            "6b0b5a000000000000ab",
            "6b0b5a000000000000aa.9",
            "6b0b5a000000000000aa.10",
            "6b0b5a000000000000aa",
            "6b0b5a000000000000aa.9999",
            "6b0b59ffffffffffffff.1",
        ];
        let mut by_text = texts.to_vec();
        by_text.sort();
        let mut ids: Vec<JobId> = texts.iter().map(|t| t.parse().unwrap()).collect();
        ids.sort();
        let back: Vec<&str> = ids.iter().map(JobId::as_str).collect();
        assert_eq!(back, by_text);
        let id: JobId = "6b0b5a000000000000aa.9999".parse().unwrap();
        assert_eq!(
            (id.base(), id.bucket(), id.child_number()),
            ("6b0b5a000000000000aa", "aa", Some(9999))
        );
        assert_eq!(
            format!("{id} {id:?}"),
            format!("{0} JobId({0:?})", id.as_str())
        );
    }

    #[test]
    fn child_numbers_round_trip_and_never_collide() {
        let mut seen = std::collections::BTreeSet::new();
        let mut all = vec![Child::Report, Child::Postmaster];
        for n in 1..=Child::MAX_RECIPIENTS {
            all.extend([Child::Recipient(n), Child::Mdn(n), Child::DelayNotice(n)]);
        }
        for c in all {
            assert!(seen.insert(c.number()), "{c:?} collides");
            assert_eq!(Child::of_message_child(c.number()), Some(c));
            let parent: JobId = "6b0b5a000000000000aa".parse().unwrap();
            assert_eq!(
                c.id_of(&parent).unwrap().as_str(),
                format!("{parent}.{}", c.number())
            );
        }
        assert_eq!(Child::of_message_child(0), None);
        assert_eq!(Child::of_message_child(9999), None);
    }
}
