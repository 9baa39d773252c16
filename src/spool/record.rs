//! Job records: what the spool stores about each job besides its payload files.
//!
//! PURE data and (de)serialisation: ids, kinds, states, attempt history. A record is one JSON
//! file (`job.json`) in the job's directory; it is read with a size limit and every field is
//! checked, so a damaged file is reported as [`RecordError`], never a panic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::scheduler::{CauseClass, GiveUp, Timestamp};

/// Largest record file read back (ours). Real records are a few KB; the cap keeps a damaged or
/// planted file from being read whole into memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Record format version written into every record (ours).
pub const RECORD_VERSION: u32 = 1;

/// A job id: 8 hex digits of creation time (seconds) then 12 random hex digits, optionally
/// `.N` (1–9999) for a child job derived from a parent (one fax job per recipient of a
/// message). Ids sort by creation time and are safe as file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

/// A string that is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a job id: {0:?} (expected 20 hex digits, optionally .N)")]
pub struct BadJobId(pub String);

impl JobId {
    /// Length of the base id.
    pub const BASE_LEN: usize = 20;

    /// A new id from the creation time and 48 random bits.
    pub fn new(created: Timestamp, random: u64) -> JobId {
        let secs = u32::try_from(created.unix_secs()).unwrap_or(u32::MAX);
        JobId(format!("{secs:08x}{:012x}", random & 0xffff_ffff_ffff))
    }

    /// The `n`-th child of this id (deterministic, so that splitting a message into fax jobs
    /// can be repeated after a crash without duplicating jobs).
    pub fn child(&self, n: u16) -> Result<JobId, BadJobId> {
        format!("{}.{n}", self.base()).parse()
    }

    /// The id without any child suffix.
    pub fn base(&self) -> &str {
        &self.0[..Self::BASE_LEN]
    }

    /// The bucket directory name: the last two hex digits of the random part, which spread
    /// jobs evenly over 256 directories (OpenSMTPD does the same with its message ids).
    pub fn bucket(&self) -> &str {
        &self.0[Self::BASE_LEN - 2..Self::BASE_LEN]
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
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
        Ok(JobId(s.to_string()))
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
        id.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    /// Given up; the reason is in [`JobRecord::failure`].
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

/// What the spool stores about a job (`job.json`). The owning module's own typed data lives in
/// `data` (the spool is storage, not policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub version: u32,
    /// The job id (equals its directory name).
    pub id: JobId,
    /// What the job is.
    pub kind: JobKind,
    /// Where it is in its life.
    pub state: JobState,
    /// When it was committed.
    pub created: Timestamp,
    /// When the current round of tries began: `created`, or the time of an operator retry. Kill
    /// time and give-up time count from here.
    pub epoch: Timestamp,
    /// Not to run before this time.
    pub next_due: Timestamp,
    /// Lower runs first (HylaFAX convention; 127 is normal).
    pub priority: u8,
    /// Attempt history, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Attempts before this index do not count towards the limits (operator retry).
    #[serde(default)]
    pub counted_from: usize,
    /// Why the job was given up, once `Failed`.
    #[serde(default)]
    pub failure: Option<GiveUp>,
    /// When it reached `Done` or `Failed`.
    #[serde(default)]
    pub finished: Option<Timestamp>,
    /// The parent job this one was derived from, if any.
    #[serde(default)]
    pub parent: Option<JobId>,
    /// The owning module's typed data (envelope, number, routing, …) as JSON.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What a caller provides when committing a job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Lower runs first; 127 is normal.
    pub priority: u8,
    /// Not before this time (`None`: at once).
    pub due: Option<Timestamp>,
    /// The owning module's data.
    pub data: serde_json::Value,
}

impl NewJob {
    /// A job with normal priority, due at once, carrying `data`.
    pub fn new(data: serde_json::Value) -> NewJob {
        NewJob {
            priority: 127,
            due: None,
            data,
        }
    }
}

/// A record that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Over [`MAX_RECORD_BYTES`].
    #[error("record is {0} bytes, over the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON of the record's shape.
    #[error("record does not parse: {0}")]
    Syntax(String),
    /// A version we do not know.
    #[error("record version {0} is not supported (this build writes {RECORD_VERSION})")]
    Version(u32),
    /// The id inside does not match the directory.
    #[error("record id {inside} does not match its directory {dir}")]
    IdMismatch {
        /// The id in the file.
        inside: String,
        /// The directory name.
        dir: String,
    },
}

impl JobRecord {
    /// Encode as pretty JSON (records are read by people too, via `faxgate queue show`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Decode and check a record read from the directory of job `expect`.
    pub fn from_bytes(bytes: &[u8], expect: Option<&JobId>) -> Result<JobRecord, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        let rec: JobRecord =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Syntax(e.to_string()))?;
        if rec.version != RECORD_VERSION {
            return Err(RecordError::Version(rec.version));
        }
        if let Some(id) = expect
            && *id != rec.id
        {
            return Err(RecordError::IdMismatch {
                inside: rec.id.to_string(),
                dir: id.to_string(),
            });
        }
        Ok(rec)
    }

    /// Dials and tries counted so far (for display): attempts since `counted_from` that placed
    /// a call, and those that reached a fax machine.
    pub fn dials_and_tries(&self) -> (usize, usize) {
        let a = &self.attempts[self.counted_from.min(self.attempts.len())..];
        (
            a.iter()
                .filter(|x| x.cause.is_none_or(CauseClass::is_dial))
                .count(),
            a.iter().filter(|x| x.connected).count(),
        )
    }
}
