//! The durable spool: every job faxgate has accepted lives here until it is done or given up.
//!
//! This module owns the on-disk queue and its one commit point per job, after OpenSMTPD's
//! queue (DESIGN.md). Layout under the spool directory:
//!
//! ```text
//! owner.lock                 flock held by the running daemon (the CLI never takes it)
//! incoming/<id>/             a job being written; purged at start-up (never acknowledged)
//! receiving/<id>/            a fax being received, pages appended as they are confirmed; kept
//!                            at start-up and committed as a partial fax (see below)
//! queue/<bb>/<id>/job.json   committed jobs (bb = last two hex digits of the id), + payload
//! done/<bb>/<id>/            finished jobs, kept `spool.keep_done`
//! failed/<bb>/<id>/          given-up jobs, kept `spool.keep_failed`
//! trash/                     archives on their way out (renamed first so no half job shows)
//! ```
//!
//! * **Commit** ([`Incoming::commit`]): write `job.json`, fsync it and the payload files,
//!   rename the job directory into `queue/<bb>/` (`RENAME_NOREPLACE`), fsync that bucket. The rename is the single commit point: before it the job does not exist, after it
//!   it exists whole. Only when `commit` returns may the caller acknowledge (SMTP `250`).
//! * **Record updates** ([`Spool::update`]): under an `flock` on the job directory (so the
//!   CLI and the daemon can both change records), write `job.json.tmp`, fsync, rename over
//!   `job.json`, fsync the directory.
//! * **Attempts** ([`Spool::start_attempt`] … [`Spool::end_attempt`]): the start is written as
//!   any update. A fax attempt instead *opens* its attempt with [`Spool::open_attempt`], which
//!   renames the record in without the two fsyncs, and makes it durable with
//!   [`Spool::attempt_durable`] once its line is held, before anything is dialled: a line that
//!   fails at once then costs one durable write (the end), not two. A power cut before
//!   `attempt_durable` finds either record (the rename is atomic), and either is right, since
//!   nothing left the gateway.
//! * **Finishing** ([`Spool::finish`]): record the final state, then rename the directory into
//!   `done/` or `failed/`. A final-state record still in `queue/` (the process died between the
//!   two steps) is moved at start-up.
//! * **Start-up** ([`Spool::open`]): take the owner lock, create the directories, purge
//!   `incoming/` and `trash/`, and recover: a job whose last attempt never ended (the process
//!   died during it) gets that attempt closed as [`CauseClass::Interrupted`] and counted, and
//!   is retried (at-least-once delivery: a fax may be sent twice, never lost).
//! * **Receptions** ([`Spool::begin_reception`]): a fax being received lives in
//!   `receiving/<id>/`, which start-up does *not* purge: every page confirmed to the sender
//!   (MCF) was appended and fsynced there, so a crash or power cut mid-call keeps it. The
//!   owner adopts what is left with [`Spool::unfinished_receptions`] and commits it like any
//!   job — the rename into `queue/` is still the one commit point, so it is delivered once.
//! * **Free space**: [`Spool::begin`] refuses with a temporary [`SpoolError::NoSpace`] when
//!   less than `spool.min_free_bytes` is free; a write that hits ENOSPC/EDQUOT is a temporary
//!   [`SpoolError::DiskFull`]; either way the half-written job is removed.
//!
//! Group commit is left to the file system: concurrent commits from many threads have their
//! fsyncs merged into shared ext4/XFS journal commits. `tests/bench/spool_bench.rs` (`cargo run --release --example spool_bench`) measures
//! commits/s at 1/10/50 writers beside the one-fsync-per-message anchor. Measured and
//! rejected: an explicit leader/follower batch of the bucket fsyncs (no gain at 10 writers,
//! slower at 50: the leader fsyncs up to 50 distinct buckets in a row) and replacing the
//! file fsyncs by `sync_file_range` waits (2× slower: no journal merging). Each commit still
//! needs two journal commits in sequence (files, then the rename); taking the rename off the
//! critical path would need a different commit point. All calls block: async callers use
//! `tokio::task::spawn_blocking`.

mod record;

pub use crate::job::{Child, JobData};
pub use record::{
    Attempt, BadJobId, JobId, JobKind, JobRecord, JobState, MAX_RECORD_BYTES, NewJob, Outcome,
    RECORD_VERSION, RecordError,
};

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rustix::fs::{FlockOperation, RenameFlags};

use crate::job::{CauseClass, Decision, GiveUp, Policy, Timestamp};
use crate::private_fs;

/// Name of the record file in each job directory.
pub const RECORD_FILE: &str = "job.json";
const RECORD_TMP: &str = "job.json.tmp";
const OWNER_LOCK: &str = "owner.lock";
/// Area of receptions in progress (kept across restarts).
const RECEIVING: &str = "receiving";

/// The current time as a [`Timestamp`] (the spool is an I/O shell and may read the clock).
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How a job's fate is decided after an attempt: the retry policy's function (the scheduler's
/// `decide`), handed in so that the spool stores decisions without making them.
pub type Decide = fn(&Policy, &JobRecord, Timestamp) -> Decision;

/// Spool settings (from `[spool]` and `[retry]`; built by `crate::scheduler`, which owns the
/// decision function).
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// `spool.min_free_bytes`: below this much free space new jobs get a temporary error.
    pub min_free_bytes: u64,
    /// `spool.keep_done`.
    pub keep_done: Duration,
    /// `spool.keep_failed`.
    pub keep_failed: Duration,
    /// `spool.max_queued`: [`Spool::begin`] refuses new jobs with this many queued.
    pub max_queued: usize,
    /// `[retry]`: what [`SpoolOptions::decide`] decides with.
    pub policy: Policy,
    /// Decides the fate of a job whose attempt ended ([`Spool::end_attempt`]) or was cut
    /// short by a crash (start-up).
    pub decide: Decide,
}

/// The spool directory a configuration names (`spool.dir`, relative to `gateway.data_dir`).
pub fn spool_dir(c: &crate::config::Config) -> PathBuf {
    c.gateway.data_dir.join(&c.spool.dir)
}

/// What went wrong, and whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The queue holds `spool.max_queued` jobs (back-pressure; temporary).
    #[error("the queue is full: {queued} jobs waiting, {max} at most")]
    QueueFull {
        /// Jobs in `queue/`.
        queued: usize,
        /// `spool.max_queued`.
        max: usize,
    },
    /// Free space is below the reserve (environment; temporary).
    #[error("spool is short of space: {available} bytes free, {reserve} kept in reserve")]
    NoSpace {
        /// Bytes available to us.
        available: u64,
        /// `spool.min_free_bytes`.
        reserve: u64,
    },
    /// The disk filled up (or a quota was hit) while writing (environment; temporary).
    #[error("spool disk full at {path}: {source}")]
    DiskFull {
        /// File or directory being written.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another I/O failure (local system; temporary: the caller answers 451 / retries).
    #[error("spool I/O error at {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another process owns the spool (a second daemon).
    #[error("spool {0} is in use by another faxgate process")]
    Locked(PathBuf),
    /// No such job in the queue (or the archive, where that was searched) (caller).
    #[error("no job {0}")]
    NotFound(JobId),
    /// A job with this id exists already (caller: an id reused).
    #[error("job {0} exists already")]
    Exists(JobId),
    /// The operation does not apply to the job's state (caller).
    #[error("job {id} is {state}: cannot {op}")]
    WrongState {
        /// The job.
        id: JobId,
        /// Its state.
        state: JobState,
        /// What was asked.
        op: &'static str,
    },
    /// The data committed is of another kind than the job was begun as (caller).
    #[error("job {id} is a {kind} job: cannot commit {data} data")]
    WrongKind {
        /// The job.
        id: JobId,
        /// Its kind.
        kind: &'static str,
        /// The data's kind.
        data: &'static str,
    },
    /// A payload file name that is not allowed (caller).
    #[error("bad payload file name {0:?}")]
    BadName(String),
    /// A record that cannot be read back (disk contents damaged, or written by a newer build).
    #[error("job record {path} is damaged: {source}")]
    Damaged {
        /// The record file.
        path: PathBuf,
        /// What is wrong with it.
        source: RecordError,
    },
}

impl SpoolError {
    /// True when trying again later may succeed (SMTP: answer `451`/`452`, not `550`).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            SpoolError::NoSpace { .. }
                | SpoolError::QueueFull { .. }
                | SpoolError::DiskFull { .. }
                | SpoolError::Io { .. }
                | SpoolError::Locked(_)
        )
    }

    /// True for the out-of-space errors, a full queue included (SMTP `452 4.3.1`,
    /// RFC 3463 "mail system full").
    pub fn is_out_of_space(&self) -> bool {
        matches!(
            self,
            SpoolError::NoSpace { .. } | SpoolError::DiskFull { .. } | SpoolError::QueueFull { .. }
        )
    }

    /// Classify an OS error met at `path`.
    pub fn io(path: &Path, source: io::Error) -> SpoolError {
        let full = matches!(
            source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        );
        let path = path.to_path_buf();
        if full {
            SpoolError::DiskFull { path, source }
        } else {
            SpoolError::Io { path, source }
        }
    }
}

type Result<T, E = SpoolError> = std::result::Result<T, E>;

trait Ctx<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> Ctx<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| SpoolError::io(path, e))
    }
}

impl<T> Ctx<T> for rustix::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| SpoolError::io(path, io::Error::from(e)))
    }
}

/// Where a job directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `queue/`: committed, not finished.
    Queue,
    /// `done/`.
    Done,
    /// `failed/`.
    Failed,
}

impl Area {
    fn dir(self) -> &'static str {
        match self {
            Area::Queue => "queue",
            Area::Done => "done",
            Area::Failed => "failed",
        }
    }

    fn of(state: JobState) -> Area {
        match state {
            JobState::Queued | JobState::Running => Area::Queue,
            JobState::Done => Area::Done,
            JobState::Failed => Area::Failed,
        }
    }
}

/// How a job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// Into `done/`.
    Done,
    /// Into `failed/`, with the reason.
    Failed(GiveUp),
}

/// A record directory that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The job directory.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// The jobs found in one or more areas, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Readable records.
    pub jobs: Vec<JobRecord>,
    /// Directories whose record could not be read (left in place for the operator).
    pub damaged: Vec<Damaged>,
}

/// A handle on the spool directory; cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    opts: SpoolOptions,
    /// Held open for the `flock` when we own the spool.
    _owner: Option<File>,
    /// Makes `incoming/` names unique within this process even if the random source repeats.
    seq: AtomicU64,
    /// Told of every record this process commits or changes (see [`Spool::observe`]).
    observer: std::sync::OnceLock<Watch>,
    /// Jobs in `queue/` as this process knows them (the owner counts at start-up and on
    /// every commit and archive move; the CLI does not count).
    queued: AtomicUsize,
}

/// The observer, behind a `Debug` that says only whether one is set.
struct Watch(Observer);

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("observer")
    }
}

/// A function told of every record the spool commits or changes, after the change is durable.
pub type Observer = Arc<dyn Fn(&JobRecord) + Send + Sync>;

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // getrandom only fails where there is no entropy source at all; the sequence counter in
    // the incoming name still keeps ids unique within the process then.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).at(path)
}

/// Ask the kernel to start writing `f`'s dirty pages now (`sync_file_range(2)` with
/// `SYNC_FILE_RANGE_WRITE`); durability still comes from the `fsync` that follows.
fn start_writeback(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is valid for the duration of the call (borrowed from `f`), and
    // sync_file_range reads no memory of ours.
    let r = unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn valid_payload_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !name.starts_with("job")
}

impl Spool {
    /// Open the spool as its owner (the daemon; one at a time): take `owner.lock`, create the
    /// directories, purge `incoming/` and `trash/`, recover interrupted and half-finished jobs,
    /// and apply archive retention, all at time `now`.
    pub fn open_at(dir: &Path, opts: SpoolOptions, now: Timestamp) -> Result<Spool> {
        for sub in [
            "", "incoming", RECEIVING, "queue", "done", "failed", "trash",
        ] {
            let p = dir.join(sub);
            private_fs::create_dir_all(&p).at(&p)?;
        }
        // Only the gateway reads the spool, also one made before the modes were explicit
        // (best effort: a spool we may use but not chmod still works).
        let _ = private_fs::restrict_dir(dir);
        let lock_path = dir.join(OWNER_LOCK);
        let lock = private_fs::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(SpoolError::Locked(dir.into())),
            Err(e) => return Err(SpoolError::io(&lock_path, e.into())),
        }
        let spool = Spool {
            inner: Arc::new(Inner {
                root: dir.to_path_buf(),
                opts,
                _owner: Some(lock),
                seq: AtomicU64::new(0),
                observer: std::sync::OnceLock::new(),
                queued: AtomicUsize::new(0),
            }),
        };
        for sub in ["incoming", "trash"] {
            spool.empty_dir(&dir.join(sub))?;
        }
        spool.recover(now)?;
        spool.purge_archives(now, false)?;
        Ok(spool)
    }

    /// [`Spool::open_at`] with the current time.
    pub fn open(dir: &Path, opts: SpoolOptions) -> Result<Spool> {
        Spool::open_at(dir, opts, now())
    }

    /// Use the spool without owning it (the `faxgate queue` CLI, safe while the daemon runs):
    /// no purge, no recovery; every change goes through the same locked, atomic operations.
    pub fn attach(dir: &Path, opts: SpoolOptions) -> Result<Spool> {
        for sub in ["incoming", "queue", "done", "failed", "trash"] {
            let p = dir.join(sub);
            if !p.is_dir() {
                return Err(SpoolError::Io {
                    path: p,
                    source: io::Error::new(io::ErrorKind::NotFound, "not a spool directory"),
                });
            }
        }
        Ok(Spool {
            inner: Arc::new(Inner {
                root: dir.to_path_buf(),
                opts,
                _owner: None,
                seq: AtomicU64::new(0),
                observer: std::sync::OnceLock::new(),
                queued: AtomicUsize::new(0),
            }),
        })
    }

    /// Tell `f` of every record this process commits or changes from now on (once the change
    /// is durable), from whichever thread made it. The daemon's dispatcher keeps its queue in
    /// memory this way instead of re-reading the spool; changes made by another process (the
    /// `faxgate queue` CLI) are not seen. Only the first observer set counts.
    pub fn observe(&self, f: Observer) {
        let _ = self.inner.observer.set(Watch(f));
    }

    fn changed(&self, rec: &JobRecord) {
        if let Some(w) = self.inner.observer.get() {
            (w.0)(rec);
        }
    }

    /// Jobs in `queue/` (as counted by the owning process).
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Corrects the count of queued jobs after another process moved jobs in or out of
    /// `queue/` (the `faxgate queue` CLI): the daemon's dispatcher, which hears of those
    /// changes, knows the true number.
    pub fn set_queued(&self, n: usize) {
        self.inner.queued.store(n, Ordering::Relaxed);
    }

    /// The spool directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The options in force.
    pub fn options(&self) -> &SpoolOptions {
        &self.inner.opts
    }

    /// The directory of job `id` in `area` (whether or not it exists).
    pub fn job_dir(&self, area: Area, id: &JobId) -> PathBuf {
        self.inner
            .root
            .join(area.dir())
            .join(id.bucket())
            .join(id.as_str())
    }

    fn empty_dir(&self, dir: &Path) -> Result<()> {
        for e in fs::read_dir(dir).at(dir)? {
            let p = e.at(dir)?.path();
            let r = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::io(&p, e)),
            }
        }
        Ok(())
    }

    /// Bytes available to us on the spool's file system.
    pub fn free_bytes(&self) -> Result<u64> {
        let st = rustix::fs::statvfs(&self.inner.root).at(&self.inner.root)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn check_reserve(&self) -> Result<()> {
        let reserve = self.inner.opts.min_free_bytes;
        if reserve == 0 {
            return Ok(());
        }
        let available = self.free_bytes()?;
        if available < reserve {
            return Err(SpoolError::NoSpace { available, reserve });
        }
        Ok(())
    }

    /// Start a new job of `kind`: checks the high-water mark (`spool.max_queued`) and the
    /// free-space reserve (temporary errors) and creates its directory in `incoming/`. Jobs
    /// derived from accepted work ([`Spool::begin_child`], [`Spool::begin_reception`]) are
    /// not held to the mark: what was acknowledged must be able to finish.
    pub fn begin(&self, kind: JobKind) -> Result<Incoming> {
        let (queued, max) = (self.queued(), self.inner.opts.max_queued);
        if self.inner._owner.is_some() && queued >= max {
            return Err(SpoolError::QueueFull { queued, max });
        }
        let id = JobId::new(now(), random_u64());
        self.begin_with(kind, id, None)
    }

    /// Start the child job `child` of `parent` (e.g. one fax job per recipient of a message).
    /// Its id is fixed by the relation, so repeating the split after a crash cannot duplicate
    /// a job: committing an id that exists (queued or archived) fails with
    /// [`SpoolError::Exists`]. The record keeps the relation.
    pub fn begin_child(&self, kind: JobKind, parent: &JobId, child: Child) -> Result<Incoming> {
        let id = child
            .id_of(parent)
            .map_err(|_| SpoolError::BadName(format!("child {}", child.number())))?;
        self.begin_with(kind, id, Some((parent.clone(), child)))
    }

    /// Start a job whose payload must survive a crash before it is committed: a fax being
    /// received. Its directory is `receiving/<id>/`, which start-up keeps; the caller appends
    /// to its files and fsyncs them itself (each confirmed page), then commits as usual. A
    /// reception dropped without commit is removed (nothing was confirmed, or it was handed
    /// on); one left by a crash is found by [`Spool::unfinished_receptions`].
    pub fn begin_reception(&self, kind: JobKind) -> Result<Incoming> {
        self.check_reserve()?;
        let id = JobId::new(now(), random_u64());
        let dir = self.inner.root.join(RECEIVING).join(id.as_str());
        private_fs::create_dir(&dir).at(&dir)?;
        // The entry must be durable before the first page is confirmed into it.
        fsync_dir(&self.inner.root.join(RECEIVING))?;
        Ok(Incoming {
            spool: self.clone(),
            id,
            kind,
            parent: None,
            dir,
            files: Vec::new(),
            finished: false,
            retain: false,
        })
    }

    /// The receptions a previous run left in `receiving/` (it died mid-call), adopted as
    /// [`Incoming`] jobs of `kind` with their files, oldest first. Only the spool's owner may
    /// call this (at start-up, before any new reception begins). Entries that are not ours
    /// (bad names) are reported as damaged and left alone.
    pub fn unfinished_receptions(&self, kind: JobKind) -> Result<(Vec<Incoming>, Vec<Damaged>)> {
        let base = self.inner.root.join(RECEIVING);
        let mut found = Vec::new();
        let mut damaged = Vec::new();
        for e in fs::read_dir(&base).at(&base)? {
            let e = e.at(&base)?;
            let path = e.path();
            let Ok(id) = e.file_name().to_string_lossy().parse::<JobId>() else {
                damaged.push(Damaged {
                    path,
                    reason: "not a job directory name".into(),
                });
                continue;
            };
            let mut files = Vec::new();
            for f in fs::read_dir(&path).at(&path)? {
                let name = f.at(&path)?.file_name().to_string_lossy().into_owned();
                if valid_payload_name(&name) {
                    files.push(name);
                }
            }
            files.sort();
            found.push(Incoming {
                spool: self.clone(),
                id,
                kind,
                parent: None,
                dir: path,
                files,
                finished: false,
                retain: false,
            });
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((found, damaged))
    }

    fn begin_with(
        &self,
        kind: JobKind,
        id: JobId,
        parent: Option<(JobId, Child)>,
    ) -> Result<Incoming> {
        self.check_reserve()?;
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .inner
            .root
            .join("incoming")
            .join(format!("{id}-{}-{seq}", std::process::id()));
        private_fs::create_dir(&dir).at(&dir)?;
        Ok(Incoming {
            spool: self.clone(),
            id,
            kind,
            parent,
            dir,
            files: Vec::new(),
            finished: false,
            retain: false,
        })
    }

    fn read_record(&self, dir: &Path, id: &JobId) -> Result<JobRecord> {
        use crate::read_limit::ReadError;
        let path = dir.join(RECORD_FILE);
        let bytes = match crate::read_limit::read(&path, MAX_RECORD_BYTES as u64) {
            Ok(b) => b,
            Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id.clone()));
            }
            // Too large to be ours: damaged, like a record that does not parse.
            Err(ReadError::TooLarge { size, .. }) => {
                return Err(SpoolError::Damaged {
                    path,
                    source: RecordError::TooLarge(usize::try_from(size).unwrap_or(usize::MAX)),
                });
            }
            Err(e) => return Err(SpoolError::io(&path, e.into())),
        };
        JobRecord::from_bytes(&bytes, Some(id))
            .map_err(|source| SpoolError::Damaged { path, source })
    }

    /// Write `rec` as `dir/job.json` atomically (temp → fsync → rename → fsync dir), the
    /// fsyncs only when `durable` (see "Attempts" in the module doc for the one caller that
    /// defers them).
    fn write_record_as(dir: &Path, rec: &JobRecord, durable: bool) -> Result<()> {
        let tmp = dir.join(RECORD_TMP);
        let mut f = private_fs::create(&tmp).at(&tmp)?;
        f.write_all(&rec.to_bytes()).at(&tmp)?;
        if durable {
            f.sync_all().at(&tmp)?;
        }
        drop(f);
        let path = dir.join(RECORD_FILE);
        fs::rename(&tmp, &path).at(&path)?;
        if durable {
            fsync_dir(dir)?;
        }
        Ok(())
    }

    /// Find a job in `queue/`, `done/` or `failed/`.
    pub fn get(&self, id: &JobId) -> Result<(Area, JobRecord)> {
        for area in [Area::Queue, Area::Done, Area::Failed] {
            match self.read_record(&self.job_dir(area, id), id) {
                Ok(r) => return Ok((area, r)),
                Err(SpoolError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SpoolError::NotFound(id.clone()))
    }

    /// Path of a payload file of a job (wherever it is now).
    pub fn payload_path(&self, id: &JobId, name: &str) -> Result<PathBuf> {
        if !valid_payload_name(name) {
            return Err(SpoolError::BadName(name.into()));
        }
        let (area, _) = self.get(id)?;
        Ok(self.job_dir(area, id).join(name))
    }

    /// All jobs in `area`, oldest first, and the directories whose record cannot be read.
    pub fn list(&self, area: Area) -> Result<Loaded> {
        let mut out = Loaded::default();
        let damaged = self.scan(area, &mut |r| out.jobs.push(r))?;
        out.damaged = damaged;
        out.jobs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The ids of every job directory in `area`, without reading any record (directory
    /// order; names that are not job ids are skipped): for lists that read only the records
    /// they show.
    pub fn ids(&self, area: Area) -> Result<Vec<JobId>> {
        let base = self.inner.root.join(area.dir());
        let mut out = Vec::new();
        for b in fs::read_dir(&base).at(&base)?.filter_map(|e| e.ok()) {
            let Ok(entries) = fs::read_dir(b.path()) else {
                continue;
            };
            for e in entries.filter_map(|e| e.ok()) {
                if let Ok(id) = e.file_name().to_string_lossy().parse::<JobId>()
                    && id.bucket() == b.file_name().to_string_lossy()
                {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Every job in `area` handed to `f` one record at a time, in directory order (no more
    /// than one record in memory: a backlog of 100 000 jobs is read in flat memory); returns
    /// the directories whose record cannot be read.
    pub fn scan(&self, area: Area, f: &mut dyn FnMut(JobRecord)) -> Result<Vec<Damaged>> {
        let base = self.inner.root.join(area.dir());
        let mut damaged = Vec::new();
        let mut buckets: Vec<_> = fs::read_dir(&base)
            .at(&base)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        buckets.sort();
        for b in buckets {
            let entries = match fs::read_dir(&b) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    // A stray file (or unreadable directory) among the buckets.
                    damaged.push(Damaged {
                        path: b.clone(),
                        reason: format!("not a readable bucket directory: {e}"),
                    });
                    continue;
                }
            };
            for e in entries.filter_map(|e| e.ok()) {
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                let id = match name.parse::<JobId>() {
                    Ok(id) if id.bucket() == b.file_name().unwrap_or_default() => id,
                    _ => {
                        damaged.push(Damaged {
                            path,
                            reason: "not a job directory name".into(),
                        });
                        continue;
                    }
                };
                match self.read_record(&path, &id) {
                    Ok(r) => f(r),
                    // Moved away (finished, cancelled) while we listed.
                    Err(SpoolError::NotFound(_)) if !path.exists() => {}
                    Err(e) => damaged.push(Damaged {
                        path,
                        reason: e.to_string(),
                    }),
                }
            }
        }
        Ok(damaged)
    }

    /// The committed, unfinished jobs (`queue/`).
    pub fn load(&self) -> Result<Loaded> {
        self.list(Area::Queue)
    }

    /// Lock job `id`'s directory in `area` and return the lock with the record. The lock is
    /// an `flock` on the directory, so the CLI and the daemon serialise their changes; after
    /// taking it we check the directory was not moved meanwhile.
    fn lock(&self, area: Area, id: &JobId) -> Result<(File, PathBuf, JobRecord)> {
        let dir = self.job_dir(area, id);
        let f = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id.clone()));
            }
            Err(e) => return Err(SpoolError::io(&dir, e)),
        };
        rustix::fs::flock(&f, FlockOperation::LockExclusive).at(&dir)?;
        let held = f.metadata().at(&dir)?;
        match fs::metadata(&dir) {
            Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {}
            Ok(_) => return Err(SpoolError::NotFound(id.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id.clone()));
            }
            Err(e) => return Err(SpoolError::io(&dir, e)),
        }
        let rec = self.read_record(&dir, id)?;
        Ok((f, dir, rec))
    }

    /// Rename a job directory between areas and make both directory entries durable.
    fn move_job(&self, id: &JobId, from: Area, to: Area) -> Result<()> {
        let src = self.job_dir(from, id);
        let dst = self.job_dir(to, id);
        let bucket = dst.parent().unwrap_or(&self.inner.root).to_path_buf();
        private_fs::create_dir_all(&bucket).at(&bucket)?;
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &src,
            rustix::fs::CWD,
            &dst,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
                return Err(SpoolError::Exists(id.clone()));
            }
            Err(e) => return Err(SpoolError::io(&dst, e.into())),
        }
        fsync_dir(&bucket)?;
        match (from, to) {
            (Area::Queue, _) => {
                let _ = self
                    .inner
                    .queued
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(1))
                    });
            }
            (_, Area::Queue) => {
                self.inner.queued.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        fsync_dir(src.parent().unwrap_or(&self.inner.root))
    }

    /// Change a queued job's record atomically: `f` edits it, the result is written
    /// temp → fsync → rename. If `f` sets a final state, the job moves to its archive.
    /// `f` may refuse with an error, which is returned and nothing changes.
    pub fn update(
        &self,
        id: &JobId,
        f: impl FnOnce(&mut JobRecord) -> Result<()>,
    ) -> Result<JobRecord> {
        self.update_as(id, true, f)
    }

    /// [`Spool::update`], durable or not (only [`Spool::open_attempt`] defers).
    fn update_as(
        &self,
        id: &JobId,
        durable: bool,
        f: impl FnOnce(&mut JobRecord) -> Result<()>,
    ) -> Result<JobRecord> {
        let (_lock, dir, mut rec) = self.lock(Area::Queue, id)?;
        f(&mut rec)?;
        rec.id = id.clone();
        Self::write_record_as(&dir, &rec, durable || rec.state.is_final())?;
        if rec.state.is_final() {
            self.move_job(id, Area::Queue, Area::of(rec.state))?;
        }
        self.changed(&rec);
        Ok(rec)
    }

    /// Mark a queued job running with a new attempt that starts at `now` (on `modem`, for
    /// fax). If the process dies before [`Spool::end_attempt`], the attempt is closed as
    /// interrupted at the next start-up and counted.
    pub fn start_attempt(
        &self,
        id: &JobId,
        now: Timestamp,
        modem: Option<&str>,
    ) -> Result<JobRecord> {
        self.start_attempt_as(id, now, modem, true)
    }

    /// [`Spool::start_attempt`] without making it durable yet: the caller must call
    /// [`Spool::attempt_durable`] before the attempt does anything outside the gateway
    /// (dialling), and need not if it ends first ("Attempts" in the module doc).
    pub fn open_attempt(
        &self,
        id: &JobId,
        now: Timestamp,
        modem: Option<&str>,
    ) -> Result<JobRecord> {
        self.start_attempt_as(id, now, modem, false)
    }

    /// Makes an attempt opened with [`Spool::open_attempt`] durable: fsync the record and its
    /// directory (the record may since have been replaced by a later, durable write: then
    /// this costs two fsyncs of clean files).
    pub fn attempt_durable(&self, id: &JobId) -> Result<()> {
        let dir = self.job_dir(Area::Queue, id);
        let path = dir.join(RECORD_FILE);
        match File::open(&path) {
            Ok(f) => f.sync_all().at(&path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id.clone()));
            }
            Err(e) => return Err(SpoolError::io(&path, e)),
        }
        fsync_dir(&dir)
    }

    fn start_attempt_as(
        &self,
        id: &JobId,
        now: Timestamp,
        modem: Option<&str>,
        durable: bool,
    ) -> Result<JobRecord> {
        self.update_as(id, durable, |r| {
            if r.state != JobState::Queued {
                return Err(SpoolError::WrongState {
                    id: r.id.clone(),
                    state: r.state,
                    op: "start an attempt",
                });
            }
            r.state = JobState::Running;
            r.attempts.push(Attempt {
                started: now,
                ended: None,
                cause: None,
                detail: String::new(),
                pages_sent: 0,
                modem: modem.map(str::to_string),
                connected: false,
                fax_options: None,
            });
            Ok(())
        })
    }

    /// Close the running attempt with `outcome` at `now`, let the decision function
    /// ([`SpoolOptions::decide`], the scheduler's) choose the job's fate under `policy`, and
    /// store it: requeued with its next due time,
    /// or moved to `done/` / `failed/`. Returns the record and the decision.
    pub fn end_attempt(
        &self,
        id: &JobId,
        now: Timestamp,
        outcome: Outcome,
        policy: &Policy,
    ) -> Result<(JobRecord, Decision)> {
        self.end_attempt_with(id, now, outcome, policy, |_| {})
    }

    /// [`Spool::end_attempt`] that also lets `also` change the record (e.g. store the call's
    /// figures) before the decision, in the same atomic write: one record write per attempt's
    /// end instead of two, which is what bounds the dispatch rate of lines that fail at once.
    pub fn end_attempt_with(
        &self,
        id: &JobId,
        now: Timestamp,
        outcome: Outcome,
        policy: &Policy,
        also: impl FnOnce(&mut JobRecord),
    ) -> Result<(JobRecord, Decision)> {
        let mut decision = Decision::Done;
        let rec = self.update(id, |r| {
            let open = r.attempts.last_mut().filter(|a| a.cause.is_none());
            let (Some(a), JobState::Running) = (open, r.state) else {
                return Err(SpoolError::WrongState {
                    id: r.id.clone(),
                    state: r.state,
                    op: "end an attempt",
                });
            };
            a.ended = Some(now);
            a.cause = Some(outcome.cause);
            a.detail = outcome.detail;
            a.pages_sent = outcome.pages_sent;
            a.connected = outcome.connected;
            also(r);
            decision = (self.inner.opts.decide)(policy, r, now);
            apply(r, &decision, now);
            Ok(())
        })?;
        Ok((rec, decision))
    }

    /// Finish a queued job at `now`: into `done/` or `failed/`.
    /// An attempt still open is closed by what finished the job: the worker's own work
    /// (a message split into fax jobs: [`CauseClass::Done`]; a message that cannot be faxed:
    /// [`CauseClass::Fatal`]), or the operator cancelling it during its call
    /// ([`CauseClass::Interrupted`]: its real outcome can no longer be recorded).
    pub fn finish(&self, id: &JobId, now: Timestamp, how: Final) -> Result<JobRecord> {
        self.update(id, |r| {
            if let Some(a) = r.attempts.last_mut().filter(|a| a.cause.is_none()) {
                a.ended = Some(now);
                let (cause, detail) = match &how {
                    Final::Done => (CauseClass::Done, "finished"),
                    Final::Failed(GiveUp::Cancelled) => (
                        CauseClass::Interrupted,
                        "job cancelled while the attempt was open",
                    ),
                    Final::Failed(_) => (CauseClass::Fatal, "given up"),
                };
                a.cause = Some(cause);
                a.detail = detail.into();
            }
            let d = match how {
                Final::Done => Decision::Done,
                Final::Failed(g) => Decision::Fail(g),
            };
            apply(r, &d, now);
            Ok(())
        })
    }

    /// Operator retry (`faxgate queue retry`): a queued job becomes due now; a failed job is
    /// brought back from `failed/`. Either way the limits start afresh (attempts so far no
    /// longer count, kill time counts from `now`).
    pub fn retry(&self, id: &JobId, now: Timestamp) -> Result<JobRecord> {
        let reset = |r: &mut JobRecord| {
            if r.state == JobState::Running {
                return Err(SpoolError::WrongState {
                    id: r.id.clone(),
                    state: r.state,
                    op: "retry (an attempt is in progress)",
                });
            }
            r.state = JobState::Queued;
            r.next_due = now;
            r.epoch = now;
            r.counted_from = r.attempts.len();
            r.failure = None;
            r.finished = None;
            Ok(())
        };
        match self.update(id, reset) {
            Err(SpoolError::NotFound(_)) => {}
            other => return other,
        }
        // From failed/: move first, then rewrite the record. Dying in between leaves a Failed
        // record in queue/, which start-up moves back: the retry is lost, nothing else.
        let (lock, _, rec) = self.lock(Area::Failed, id)?;
        if rec.state != JobState::Failed {
            return Err(SpoolError::WrongState {
                id: id.clone(),
                state: rec.state,
                op: "retry",
            });
        }
        self.move_job(id, Area::Failed, Area::Queue)?;
        drop(lock);
        self.update(id, reset)
    }

    /// Operator cancel (`faxgate queue cancel`): the job moves to `failed/` as cancelled. A
    /// running attempt is not interrupted, but its outcome can no longer be recorded (the
    /// worker gets [`SpoolError::NotFound`] and drops the job).
    pub fn cancel(&self, id: &JobId, now: Timestamp) -> Result<JobRecord> {
        self.finish(id, now, Final::Failed(GiveUp::Cancelled))
    }

    /// Remove archived jobs whose retention (`keep_done`, `keep_failed`) has passed at `now`,
    /// or all archived jobs with `all`. Each is renamed into `trash/` first so that no half
    /// job is ever visible. Returns how many were removed.
    pub fn purge_archives(&self, now: Timestamp, all: bool) -> Result<usize> {
        let mut n = 0;
        for (area, keep) in [
            (Area::Done, self.inner.opts.keep_done),
            (Area::Failed, self.inner.opts.keep_failed),
        ] {
            // Only the ids to remove are kept while scanning (flat memory over any archive).
            let mut old = Vec::new();
            self.scan(area, &mut |r| {
                let end = r.finished.unwrap_or(r.created);
                if all || end.plus(keep) <= now {
                    old.push(r.id);
                }
            })?;
            for id in old {
                let src = self.job_dir(area, &id);
                let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
                let dst = self.inner.root.join("trash").join(format!(
                    "{}-{}-{seq}",
                    id,
                    std::process::id()
                ));
                match fs::rename(&src, &dst) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(SpoolError::io(&src, e)),
                }
                fs::remove_dir_all(&dst).at(&dst)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Start-up recovery (owner only): finish half-done moves, close interrupted attempts.
    fn recover(&self, now: Timestamp) -> Result<()> {
        // One record in memory at a time: only the few jobs that need repair are remembered.
        let (mut count, mut repair) = (0usize, Vec::new());
        let damaged = self.scan(Area::Queue, &mut |rec| {
            count += 1;
            let open = rec.attempts.last().is_some_and(|a| a.cause.is_none());
            let tmp = self.job_dir(Area::Queue, &rec.id).join(RECORD_TMP);
            if rec.state.is_final() || rec.state == JobState::Running || open || tmp.exists() {
                repair.push((rec.id, rec.state, open));
            }
        })?;
        self.inner.queued.store(count, Ordering::Relaxed);
        for d in &damaged {
            // Left in place for the operator: deleting might destroy the only copy of a
            // message; retrying it blindly is impossible without a record.
            tracing::warn!("spool: damaged job {}: {}", d.path.display(), d.reason);
        }
        for (id, state, open) in repair {
            let dir = self.job_dir(Area::Queue, &id);
            let tmp = dir.join(RECORD_TMP);
            if tmp.exists() {
                fs::remove_file(&tmp).at(&tmp)?;
            }
            if state.is_final() {
                self.move_job(&id, Area::Queue, Area::of(state))?;
                continue;
            }
            if state == JobState::Running || open {
                let rec_id = id.clone();
                let policy = self.inner.opts.policy.clone();
                self.update(&rec_id, |r| {
                    match r.attempts.last_mut().filter(|a| a.cause.is_none()) {
                        Some(a) => {
                            a.ended = Some(now);
                            a.cause = Some(CauseClass::Interrupted);
                            a.detail = "faxgate stopped during the attempt".into();
                        }
                        None => r.attempts.push(Attempt {
                            started: now,
                            ended: Some(now),
                            cause: Some(CauseClass::Interrupted),
                            detail: "faxgate stopped during the attempt".into(),
                            pages_sent: 0,
                            modem: None,
                            connected: false,
                            fax_options: None,
                        }),
                    }
                    let d = (self.inner.opts.decide)(&policy, r, now);
                    apply(r, &d, now);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}

/// Store a decision in a record.
fn apply(r: &mut JobRecord, d: &Decision, now: Timestamp) {
    match d {
        Decision::Done => {
            r.state = JobState::Done;
            r.finished = Some(now);
        }
        Decision::RetryAt(at) => {
            r.state = JobState::Queued;
            r.next_due = *at;
        }
        Decision::Fail(g) => {
            r.state = JobState::Failed;
            r.failure = Some(g.clone());
            r.finished = Some(now);
        }
    }
}

/// A job being written in `incoming/`. Dropping it without [`Incoming::commit`] removes it.
#[derive(Debug)]
pub struct Incoming {
    spool: Spool,
    id: JobId,
    kind: JobKind,
    parent: Option<(JobId, Child)>,
    dir: PathBuf,
    files: Vec<String>,
    finished: bool,
    /// Keep the directory if the commit fails (receptions: see [`Incoming::retain_on_failure`]).
    retain: bool,
}

/// A payload file being written. Writes go straight to the file (wrap it in a `BufWriter`
/// for small writes); [`Incoming::commit`] makes it durable.
#[derive(Debug)]
pub struct PayloadFile {
    file: File,
    path: PathBuf,
}

impl PayloadFile {
    /// Write all of `bytes`, with the spool's error classification (disk full = temporary).
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).at(&self.path)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file (e.g. for `tokio::fs::File::from_std`).
    pub fn into_file(self) -> File {
        self.file
    }
}

impl Write for PayloadFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Incoming {
    /// The id the job will have once committed.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// Its kind.
    pub fn kind(&self) -> JobKind {
        self.kind
    }

    /// Create payload file `name` (letters, digits, `.`, `_`, `-`; not `job…`).
    pub fn create_file(&mut self, name: &str) -> Result<PayloadFile> {
        if !valid_payload_name(name) || self.files.iter().any(|f| f == name) {
            return Err(SpoolError::BadName(name.into()));
        }
        let path = self.dir.join(name);
        let file = private_fs::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        self.files.push(name.to_string());
        Ok(PayloadFile { file, path })
    }

    /// Path of payload file `name` of this job (created or adopted).
    pub fn file_path(&self, name: &str) -> Option<PathBuf> {
        self.files
            .iter()
            .any(|f| f == name)
            .then(|| self.dir.join(name))
    }

    /// Rename payload file `from` to `to` (e.g. a file complete only now gets its final
    /// name). The commit fsyncs it as usual.
    pub fn rename_file(&mut self, from: &str, to: &str) -> Result<()> {
        if !valid_payload_name(to) || self.files.iter().any(|f| f == to) {
            return Err(SpoolError::BadName(to.into()));
        }
        let Some(i) = self.files.iter().position(|f| f == from) else {
            return Err(SpoolError::BadName(from.into()));
        };
        let (src, dst) = (self.dir.join(from), self.dir.join(to));
        fs::rename(&src, &dst).at(&dst)?;
        self.files[i] = to.to_string();
        Ok(())
    }

    /// Remove payload file `name`.
    pub fn remove_file(&mut self, name: &str) -> Result<()> {
        let Some(i) = self.files.iter().position(|f| f == name) else {
            return Err(SpoolError::BadName(name.into()));
        };
        let p = self.dir.join(name);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SpoolError::io(&p, e)),
        }
        self.files.remove(i);
        Ok(())
    }

    /// Keep the job's directory when this value is dropped uncommitted: a reception whose
    /// commit failed (disk full) stays in `receiving/` and is committed at the next start
    /// rather than lost.
    pub fn keep(mut self) {
        self.finished = true;
    }

    /// Keep the job's directory if [`Incoming::commit`] fails (for a reception in
    /// `receiving/`, which the next start commits again: confirmed pages are never deleted).
    pub fn retain_on_failure(&mut self) {
        self.retain = true;
    }

    /// Create payload file `name` holding `bytes`.
    pub fn write_file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.create_file(name)?.write_bytes(bytes)
    }

    /// Commit with the current time. See [`Incoming::commit_at`].
    pub fn commit(self, job: NewJob) -> Result<JobRecord> {
        self.commit_at(job, now())
    }

    /// The single commit point: write the record, fsync it and every payload file, rename the
    /// job directory into `queue/<bb>/`, fsync the bucket. When this returns
    /// `Ok` the job survives a crash or power cut; on `Err` nothing of it is left.
    pub fn commit_at(mut self, job: NewJob, now: Timestamp) -> Result<JobRecord> {
        if job.data.kind() != self.kind {
            return Err(SpoolError::WrongKind {
                id: self.id.clone(),
                kind: self.kind.name(),
                data: job.data.kind().name(),
            });
        }
        let rec = JobRecord {
            version: RECORD_VERSION,
            id: self.id.clone(),
            kind: self.kind,
            state: JobState::Queued,
            created: now,
            epoch: now,
            next_due: job.due.unwrap_or(now),
            priority: job.priority,
            attempts: Vec::new(),
            counted_from: 0,
            failure: None,
            finished: None,
            parent: self.parent.as_ref().map(|p| p.0.clone()),
            child: self.parent.as_ref().map(|p| p.1),
            data: job.data,
        };
        let path = self.dir.join(RECORD_FILE);
        let mut files = Vec::with_capacity(self.files.len() + 1);
        {
            let mut f = private_fs::create(&path).at(&path)?;
            f.write_all(&rec.to_bytes()).at(&path)?;
            files.push((f, path));
        }
        for name in &self.files {
            let p = self.dir.join(name);
            files.push((File::open(&p).at(&p)?, p));
        }
        // Start write-back of every file first, then fsync each: the first fsync's journal
        // commit then carries all of them, and the later ones find little left to do.
        for (f, p) in &files {
            start_writeback(f).at(p)?;
        }
        for (f, p) in &files {
            f.sync_all().at(p)?;
        }
        drop(files);
        // The job directory itself is not fsynced: its entries were created before the rename,
        // and journaling file systems (ext4, XFS) commit metadata in order, so a durable rename
        // implies durable entries (OpenSMTPD's queue relies on the same).
        if self.parent.is_some() {
            // A child id may have been committed and finished before a crash.
            for area in [Area::Done, Area::Failed] {
                if self.spool.job_dir(area, &self.id).exists() {
                    return Err(SpoolError::Exists(self.id.clone()));
                }
            }
        }
        let dst = self.spool.job_dir(Area::Queue, &self.id);
        let bucket = dst.parent().unwrap_or(self.spool.root()).to_path_buf();
        if !bucket.is_dir() {
            private_fs::create_dir_all(&bucket).at(&bucket)?;
            fsync_dir(&self.spool.root().join("queue"))?;
        }
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &self.dir,
            rustix::fs::CWD,
            &dst,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
                return Err(SpoolError::Exists(self.id.clone()));
            }
            Err(e) => return Err(SpoolError::io(&dst, e.into())),
        }
        if let Err(e) = fsync_dir(&bucket) {
            // Not known durable, so not committed: take it back out (Drop removes it).
            if fs::rename(&dst, &self.dir).is_err() {
                // It stays queued; the caller will not acknowledge it, so at worst the
                // sender retries and the message is delivered twice (at-least-once).
                self.finished = true;
            }
            return Err(e);
        }
        self.finished = true;
        self.spool.inner.queued.fetch_add(1, Ordering::Relaxed);
        self.spool.changed(&rec);
        Ok(rec)
    }

    /// Give the job up explicitly (same as dropping it).
    pub fn abandon(self) {}
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.finished && !self.retain {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests;
