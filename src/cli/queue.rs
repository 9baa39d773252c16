//! `faxgate queue …`: look at and steer the spool, with the daemon stopped or running.
//!
//! Owns the queue subcommands. They attach to the spool without owning it
//! ([`Spool::attach`]): no purge, no recovery, and every change is one of the spool's locked,
//! atomic record operations, so they are as safe while the daemon runs as when it is stopped.
//! (After a `retry` or `cancel` the running daemon is told over its control socket
//! ([`crate::app::control::tell_changed`]) and reads the job again; a `cancel` of a job in
//! progress lets the call finish but its outcome is no longer recorded.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use crate::job::{CauseClass, Policy};
use crate::spool::{
    Area, Final, JobId, JobKind, JobRecord, JobState, NewJob, Outcome, Spool, SpoolError,
    SpoolOptions,
};

/// `faxgate queue` arguments.
#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    /// Spool directory (default: `spool.dir` of the configuration).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: QueueCommand,
}

/// The queue subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum QueueCommand {
    /// List queued jobs (with --all also done and failed ones).
    List {
        /// Include `done/` and `failed/`.
        #[arg(long)]
        all: bool,
    },
    /// Print a job's record (JSON) and payload files.
    Show {
        /// Job id.
        id: String,
    },
    /// Make a queued job due now, or bring a failed one back; its limits start afresh.
    Retry {
        /// Job id.
        id: String,
    },
    /// Give a queued job up (it moves to `failed/` as cancelled).
    Cancel {
        /// Job id.
        id: String,
    },
    /// Remove archived jobs past their retention (`spool.keep_done`, `spool.keep_failed`).
    Purge {
        /// Remove every archived job, whatever its age.
        #[arg(long)]
        all: bool,
    },
    /// Test helper: own the spool and create, commit, update and finish jobs in a loop,
    /// printing each acknowledged step, until killed (the crash test SIGKILLs it).
    #[command(hide = true)]
    CrashChild {
        /// Seed of the action sequence.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop after this many actions (bounded loop).
        #[arg(long, default_value_t = 100_000)]
        actions: u64,
    },
}

/// `faxgate queue …`: load the configuration (for the spool directory and retention), run
/// the subcommand and tell a running daemon of each job it changed.
pub fn main(config: Option<&Path>, args: &QueueArgs) -> ExitCode {
    let cfg = match super::load(config) {
        Ok(l) => l.config,
        Err(errs) => {
            eprintln!(
                "faxgate: configuration has {} error(s):\n{errs}",
                errs.0.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let dir = args
        .spool
        .clone()
        .unwrap_or_else(|| crate::spool::spool_dir(&cfg));
    let opts = SpoolOptions::from_config(&cfg);
    let sock = crate::app::control::socket_path(&cfg);
    let tell = |id: &JobId| crate::app::control::tell_changed(&sock, id);
    match run(&dir, opts, &args.command, &mut std::io::stdout(), &tell) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("faxgate: {}", super::chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Run a queue subcommand against `dir`, printing to `out`. Returns the process exit status:
/// 0 on success, 1 when the job was not found or the operation does not apply. `changed` is
/// told of each job whose record this command changed (the binary tells a running daemon).
pub fn run(
    dir: &Path,
    opts: SpoolOptions,
    cmd: &QueueCommand,
    out: &mut dyn Write,
    changed: &dyn Fn(&JobId),
) -> Result<u8, SpoolError> {
    if let QueueCommand::CrashChild { seed, actions } = cmd {
        crash_child(dir, opts, *seed, *actions, out)?;
        return Ok(0);
    }
    let spool = Spool::attach(dir, opts)?;
    let now = crate::spool::now();
    let parse = |s: &str| s.parse::<JobId>();
    let w = |out: &mut dyn Write, s: String| -> Result<(), SpoolError> {
        writeln!(out, "{s}").map_err(|e| SpoolError::io(Path::new("<stdout>"), e))
    };
    let outcome = |r: Result<JobRecord, SpoolError>, out: &mut dyn Write, verb: &str| match r {
        Ok(rec) => {
            w(out, format!("{} {verb}: now {}", rec.id, rec.state))?;
            Ok(0)
        }
        Err(e @ (SpoolError::NotFound(_) | SpoolError::WrongState { .. })) => {
            w(out, format!("faxgate: {e}"))?;
            Ok(1)
        }
        Err(e) => Err(e),
    };
    match cmd {
        QueueCommand::List { all } => {
            let mut areas = vec![Area::Queue];
            if *all {
                areas.extend([Area::Done, Area::Failed]);
            }
            w(
                out,
                format!(
                    "{:<25} {:<9} {:<8} {:>3} {:>5} {:<23} detail",
                    "id", "kind", "state", "pri", "tries", "next due / finished"
                ),
            )?;
            for area in areas {
                let l = spool.list(area)?;
                for r in &l.jobs {
                    let (dials, _) = r.dials_and_tries();
                    let when = match r.state {
                        JobState::Done | JobState::Failed => r.finished.unwrap_or(r.created),
                        _ => r.next_due,
                    };
                    let detail = match (&r.failure, r.attempts.last()) {
                        (Some(g), _) => g.to_string(),
                        (None, Some(a)) => a.detail.clone(),
                        (None, None) => String::new(),
                    };
                    w(
                        out,
                        format!(
                            "{:<25} {:<9} {:<8} {:>3} {:>5} {:<23} {}",
                            r.id,
                            r.kind.name(),
                            r.state.name(),
                            r.priority,
                            dials,
                            when.to_string(),
                            detail
                        ),
                    )?;
                }
                for d in &l.damaged {
                    w(out, format!("DAMAGED {}: {}", d.path.display(), d.reason))?;
                }
            }
            Ok(0)
        }
        QueueCommand::Show { id } => {
            let Ok(id) = parse(id) else {
                w(out, format!("faxgate: not a job id: {id:?}"))?;
                return Ok(1);
            };
            match spool.get(&id) {
                Ok((area, rec)) => {
                    let dir = spool.job_dir(area, &id);
                    w(out, format!("# {}", dir.display()))?;
                    let mut names: Vec<_> = std::fs::read_dir(&dir)
                        .map_err(|e| SpoolError::io(&dir, e))?
                        .filter_map(|e| e.ok())
                        .map(|e| (e.file_name(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                        .collect();
                    names.sort();
                    for (n, len) in names {
                        w(out, format!("# file {} ({len} bytes)", n.to_string_lossy()))?;
                    }
                    w(
                        out,
                        String::from_utf8_lossy(&rec.to_bytes()).trim_end().into(),
                    )?;
                    Ok(0)
                }
                Err(e @ SpoolError::NotFound(_)) => {
                    w(out, format!("faxgate: {e}"))?;
                    Ok(1)
                }
                Err(e) => Err(e),
            }
        }
        QueueCommand::Retry { id } | QueueCommand::Cancel { id } => {
            let Ok(id) = parse(id) else {
                w(out, format!("faxgate: not a job id: {id:?}"))?;
                return Ok(1);
            };
            let done = if matches!(cmd, QueueCommand::Retry { .. }) {
                outcome(spool.retry(&id, now), out, "retried")
            } else {
                outcome(spool.cancel(&id, now), out, "cancelled")
            };
            if matches!(done, Ok(0)) {
                changed(&id);
            }
            done
        }
        QueueCommand::Purge { all } => {
            let n = spool.purge_archives(now, *all)?;
            w(out, format!("purged {n} archived job(s)"))?;
            Ok(0)
        }
        QueueCommand::CrashChild { .. } => Ok(0),
    }
}

/// A small deterministic generator for the crash child (xorshift64*): the test wants varied
/// but reproducible action sequences; quality beyond that is irrelevant.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The crash test's child: owns the spool and loops over random actions, printing a line
/// after each one returns (that is the acknowledgement the test holds the spool to):
/// `C id sha256` after a commit, `S id n` after an attempt start (n = attempts in the
/// record), `E id n` after an attempt end that requeued the job, `D id` after a finish.
/// Payload bytes are random; the record's data holds their SHA-256 so any job found can be
/// checked, acknowledged or not.
fn crash_child(
    dir: &Path,
    opts: SpoolOptions,
    seed: u64,
    actions: u64,
    out: &mut dyn Write,
) -> Result<(), SpoolError> {
    let spool = Spool::open(dir, opts)?;
    let mut rng = Rng(seed | 1);
    let mut ids: Vec<JobId> = spool.load()?.jobs.into_iter().map(|r| r.id).collect();
    let mut running: Vec<JobId> = Vec::new();
    let policy = Policy {
        max_dials: u32::MAX,
        max_tries: u32::MAX,
        ..Policy::default()
    };
    let say = |out: &mut dyn Write, s: String| {
        // The line goes out in one write; the test ignores a last line without newline.
        let _ = out.write_all(format!("{s}\n").as_bytes());
        let _ = out.flush();
    };
    for _ in 0..actions {
        let now = crate::spool::now();
        // Ending a started attempt is as likely as anything else, so that each short-lived
        // child gets to it.
        let pick = if !running.is_empty() && rng.below(3) == 0 {
            7
        } else {
            rng.below(10)
        };
        match pick {
            0..=4 => {
                let mut inc = spool.begin(JobKind::MailOut)?;
                let len = rng.below(16 * 1024) as usize;
                let mut payload = vec![0u8; len];
                for chunk in payload.chunks_mut(8) {
                    let v = rng.next().to_le_bytes();
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
                let sha = hex(&Sha256::digest(&payload));
                // Written in two pieces so a kill can land between them.
                let mut f = inc.create_file("fax.tif")?;
                f.write_bytes(&payload[..len / 2])?;
                f.write_bytes(&payload[len / 2..])?;
                drop(f);
                if rng.below(8) == 0 {
                    inc.abandon();
                    continue;
                }
                // The payload's digest rides in the subject, where the checker reads it back.
                let data = crate::job::MailOutData {
                    envelope: crate::job::MailEnvelope {
                        from: String::new(),
                        to: Vec::new(),
                        envid: None,
                    },
                    purpose: crate::job::Purpose::AdminNotice,
                    subject: sha.clone(),
                    file: "fax.tif".into(),
                };
                let rec = inc.commit_at(NewJob::new(crate::job::JobData::MailOut(data)), now)?;
                say(out, format!("C {} {sha}", rec.id));
                ids.push(rec.id);
            }
            5..=6 if !ids.is_empty() => {
                let id = ids[rng.below(ids.len() as u64) as usize].clone();
                match spool.start_attempt(&id, now, Some("m0")) {
                    Ok(r) => {
                        say(out, format!("S {id} {}", r.attempts.len()));
                        running.push(id);
                    }
                    Err(SpoolError::WrongState { .. } | SpoolError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            7..=8 if !running.is_empty() => {
                let id = running.swap_remove(rng.below(running.len() as u64) as usize);
                let outcome = Outcome {
                    cause: CauseClass::Busy,
                    detail: "busy".into(),
                    pages_sent: 0,
                    connected: false,
                };
                match spool.end_attempt(&id, now, outcome, &policy) {
                    Ok((r, _)) => say(out, format!("E {id} {}", r.attempts.len())),
                    Err(SpoolError::WrongState { .. } | SpoolError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            9 if !ids.is_empty() => {
                let i = rng.below(ids.len() as u64) as usize;
                let id = ids.swap_remove(i);
                match spool.finish(&id, now, Final::Done) {
                    Ok(_) => say(out, format!("D {id}")),
                    Err(SpoolError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
