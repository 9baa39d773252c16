//! Job records: what the spool stores about each job besides its payload files.
//!
//! PURE data and (de)serialisation: ids, kinds, states, attempt history. A record is one JSON
//! file (`job.json`) in the job's directory; it is read with a size limit and every field is
//! checked, so a damaged file is reported as [`RecordError`], never a panic.

use serde::{Deserialize, Serialize};

use crate::job::{CauseClass, Child, GiveUp, JobData, Timestamp};

/// Largest record file read back (ours). Real records are a few KB; the cap keeps a damaged or
/// planted file from being read whole into memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Record format version written into every record (ours). Version 2 stores typed
/// [`JobData`] and the [`Child`] relation; version 1 (untyped `data`, relation only in the id)
/// is still read.
pub const RECORD_VERSION: u32 = 2;

pub use crate::job::{Attempt, BadJobId, JobId, JobKind, JobState, Outcome};

/// What the spool stores about a job (`job.json`): its life (state, times, attempts) and its
/// typed data (the spool is storage, not policy).
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
    /// What this job is to its parent (with `parent`).
    #[serde(default)]
    pub child: Option<Child>,
    /// What the job carries: its kind's data (envelope, number, routing, …).
    pub data: JobData,
}

/// A version-1 record: the same fields, `data` untyped, no `child`.
#[derive(Deserialize)]
struct V1Record {
    id: JobId,
    kind: JobKind,
    state: JobState,
    created: Timestamp,
    epoch: Timestamp,
    next_due: Timestamp,
    priority: u8,
    #[serde(default)]
    attempts: Vec<Attempt>,
    #[serde(default)]
    counted_from: usize,
    #[serde(default)]
    failure: Option<GiveUp>,
    #[serde(default)]
    finished: Option<Timestamp>,
    #[serde(default)]
    parent: Option<JobId>,
    #[serde(default)]
    data: serde_json::Value,
}

impl V1Record {
    fn upgrade(self) -> Result<JobRecord, RecordError> {
        let data = JobData::from_v1(self.kind, self.data)
            .map_err(|e| RecordError::Syntax(e.to_string()))?;
        let child = match (&self.parent, self.id.child_number()) {
            (Some(_), Some(n)) => Child::of_v1(self.kind, n),
            _ => None,
        };
        Ok(JobRecord {
            version: RECORD_VERSION,
            id: self.id,
            kind: self.kind,
            state: self.state,
            created: self.created,
            epoch: self.epoch,
            next_due: self.next_due,
            priority: self.priority,
            attempts: self.attempts,
            counted_from: self.counted_from,
            failure: self.failure,
            finished: self.finished,
            parent: self.parent,
            child,
            data,
        })
    }
}

/// What a caller provides when committing a job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Lower runs first; 127 is normal.
    pub priority: u8,
    /// Not before this time (`None`: at once).
    pub due: Option<Timestamp>,
    /// The job's data; its kind must be the kind the job was begun as.
    pub data: JobData,
}

impl NewJob {
    /// A job with normal priority, due at once, carrying `data`.
    pub fn new(data: JobData) -> NewJob {
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
    /// The data is of another kind than the record says.
    #[error("record of kind {kind} carries {data} data")]
    KindMismatch {
        /// The record's kind.
        kind: &'static str,
        /// The data's kind.
        data: &'static str,
    },
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
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let syntax = |e: serde_json::Error| RecordError::Syntax(e.to_string());
        let rec: JobRecord = match serde_json::from_slice::<Version>(bytes).map_err(syntax)? {
            Version { version: 1 } => serde_json::from_slice::<V1Record>(bytes)
                .map_err(syntax)?
                .upgrade()?,
            Version {
                version: RECORD_VERSION,
            } => serde_json::from_slice(bytes).map_err(syntax)?,
            Version { version } => return Err(RecordError::Version(version)),
        };
        if rec.data.kind() != rec.kind {
            return Err(RecordError::KindMismatch {
                kind: rec.kind.name(),
                data: rec.data.kind().name(),
            });
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
