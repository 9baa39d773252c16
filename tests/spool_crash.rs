//! Crash test (issue 5 acceptance): a child process creates, commits, updates and finishes
//! jobs in a loop (`faxgate queue crash-child`, printing a line after each step returns); we
//! SIGKILL it at random moments, 200 times. After each kill a fresh load must find every job
//! the child acknowledged, its payload's SHA-256 intact, no half-present job (nothing left in
//! `incoming/` after start-up, no job in two places), and no unreadable record.
//!
//! SIGKILL leaves the page cache alone, so this proves the protocol's atomicity (rename as the
//! commit point, temp → rename for records, start-up recovery), not fsync placement; the
//! latter follows the file systems' documented rules (see `src/spool/mod.rs`).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use faxgate::spool::{Area, Final, JobId, JobState, Spool, SpoolOptions};
use sha2::{Digest, Sha256};

/// What the child acknowledged about a job.
#[derive(Debug, Default, Clone)]
struct Acked {
    sha: String,
    /// Empty when the commit itself was not acknowledged (a later child picked the job up).
    /// Attempts the record had at the last acknowledged step (it never has fewer later).
    attempts: usize,
    done: bool,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn opts() -> SpoolOptions {
    SpoolOptions {
        min_free_bytes: 0,
        ..SpoolOptions::default()
    }
}

/// Parse the child's complete lines into `acked`.
fn absorb(out: &str, acked: &mut HashMap<JobId, Acked>, steps: &mut HashMap<String, usize>) {
    // A kill can cut the last line short: only lines ending in '\n' were acknowledged.
    let complete = match out.rfind('\n') {
        Some(i) => &out[..=i],
        None => "",
    };
    for line in complete.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        *steps.entry(f[0].to_string()).or_default() += 1;
        let id: JobId = f[1]
            .parse()
            .unwrap_or_else(|e| panic!("child line {line:?}: {e}"));
        match f[0] {
            "C" => {
                let prev = acked.insert(
                    id,
                    Acked {
                        sha: f[2].to_string(),
                        ..Acked::default()
                    },
                );
                assert!(prev.is_none(), "id committed twice: {line}");
            }
            "S" | "E" => {
                // A job committed by an earlier child that was killed before it could say so.
                let a = acked.entry(id).or_default();
                a.attempts = a.attempts.max(f[2].parse().unwrap());
            }
            "D" => acked.entry(id).or_default().done = true,
            other => panic!("unexpected child line {other:?}"),
        }
    }
}

fn payload_sha(dir: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(dir.join("fax.tif")).unwrap()))
}

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let spool_dir = tmp.path().join("spool");
    let seed: u64 = std::env::var("FAXGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (set FAXGATE_CRASH_SEED to repeat)");
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };

    let mut acked: HashMap<JobId, Acked> = HashMap::new();
    // Payloads already hashed where they are now (payloads are never rewritten).
    let mut verified: HashSet<(JobId, &'static str)> = HashSet::new();
    // Jobs this test removed itself (to keep the spool small).
    let mut removed: HashSet<JobId> = HashSet::new();
    let mut kills_mid_work = 0;
    // Acknowledged steps by kind: C commit, S attempt start, E attempt end, D finish.
    let mut steps: HashMap<String, usize> = HashMap::new();
    const ROUNDS: usize = 200;

    for round in 0..ROUNDS {
        let mut child = common::faxgate(tmp.path())
            .args(["queue", "--spool"])
            .arg(&spool_dir)
            .args(["crash-child", "--seed", &next().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn faxgate");
        // Read the child's output as it comes, noting when it has acknowledged something.
        let mut stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        all.extend_from_slice(&buf[..n]);
                        let _ = first_tx.send(());
                    }
                }
            }
            String::from_utf8(all).unwrap()
        });
        // A random moment: one round in five from spawn (start-up, recovery), the others
        // after the child's first acknowledgement, into the middle of its work.
        if next() % 5 != 0 {
            let _ = first_rx.recv_timeout(Duration::from_secs(20));
            std::thread::sleep(Duration::from_micros(next() % 80_000));
        } else {
            std::thread::sleep(Duration::from_micros(next() % 30_000));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let out = reader.join().unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child ended by itself ({status}): {err}"
        );
        if !out.is_empty() {
            kills_mid_work += 1;
        }
        absorb(&out, &mut acked, &mut steps);
        if !spool_dir.join("queue").exists() {
            continue; // killed before it created the spool
        }

        // 1. As found right after the kill (before any recovery): every record readable.
        let raw = Spool::attach(&spool_dir, opts()).unwrap();
        for area in [Area::Queue, Area::Done, Area::Failed] {
            let l = raw.list(area).unwrap();
            assert!(l.damaged.is_empty(), "round {round}: {:?}", l.damaged);
        }
        drop(raw);

        // 2. A fresh start-up: recovery, then the invariants.
        let spool = Spool::open(&spool_dir, opts()).unwrap();
        assert_eq!(
            std::fs::read_dir(spool_dir.join("incoming"))
                .unwrap()
                .count(),
            0,
            "round {round}: incoming/ not purged"
        );
        let mut seen: HashMap<JobId, Area> = HashMap::new();
        for area in [Area::Queue, Area::Done, Area::Failed] {
            let l = spool.list(area).unwrap();
            assert!(l.damaged.is_empty(), "round {round}: {:?}", l.damaged);
            for r in l.jobs {
                let want_state = match area {
                    Area::Queue => JobState::Queued,
                    Area::Done => JobState::Done,
                    Area::Failed => JobState::Failed,
                };
                assert_eq!(r.state, want_state, "round {round}: {} in {area:?}", r.id);
                assert!(
                    r.attempts.iter().all(|a| a.cause.is_some()),
                    "round {round}: {} has an open attempt after recovery",
                    r.id
                );
                let prev = seen.insert(r.id.clone(), area);
                assert!(prev.is_none(), "round {round}: {} in two places", r.id);
                // Every job present, acknowledged or not, is whole.
                let key = (r.id.clone(), area_name(area));
                if !verified.contains(&key) {
                    let dir = spool.payload_path(&r.id, "fax.tif").unwrap();
                    let sha = payload_sha(dir.parent().unwrap());
                    assert_eq!(
                        subject(&r),
                        Some(sha.as_str()),
                        "round {round}: {} payload damaged",
                        r.id
                    );
                    verified.insert(key);
                }
                if let Some(a) = acked.get(&r.id) {
                    if !a.sha.is_empty() {
                        assert_eq!(subject(&r), Some(a.sha.as_str()));
                    }
                    assert!(
                        r.attempts.len() >= a.attempts,
                        "round {round}: {} lost an acknowledged attempt",
                        r.id
                    );
                    if a.done {
                        assert_eq!(area, Area::Done, "round {round}: {} not done", r.id);
                    }
                }
            }
        }
        for id in acked.keys() {
            assert!(
                seen.contains_key(id) || removed.contains(id),
                "round {round}: acknowledged job {id} is missing"
            );
        }

        // Keep the spool small so each round stays fast: finish the oldest queued jobs and
        // empty the archives (the child may pick a finished id: it then gets NotFound, which
        // it does not acknowledge).
        let mut queued: Vec<&JobId> = seen
            .iter()
            .filter(|(_, a)| **a == Area::Queue)
            .map(|(id, _)| id)
            .collect();
        queued.sort();
        let excess = queued.len().saturating_sub(60);
        for id in queued.into_iter().take(excess) {
            spool
                .finish(id, faxgate::spool::now(), Final::Done)
                .unwrap();
        }
        spool.purge_archives(faxgate::spool::now(), true).unwrap();
        for id in seen.keys() {
            if spool.get(id).is_err() {
                removed.insert(id.clone());
            }
        }
    }
    eprintln!(
        "{ROUNDS} kills, {kills_mid_work} after the child had acknowledged work; steps {steps:?}"
    );
    assert!(
        kills_mid_work >= ROUNDS * 3 / 5,
        "most kills must land mid-work (only {kills_mid_work} did)"
    );
    // Every kind of step was exercised, many times.
    for (k, min) in [("C", 50), ("S", 10), ("E", 10), ("D", 10)] {
        let n = steps.get(k).copied().unwrap_or(0);
        assert!(n >= min, "only {n} acknowledged {k} steps: {steps:?}");
    }
}

fn area_name(a: Area) -> &'static str {
    match a {
        Area::Queue => "queue",
        Area::Done => "done",
        Area::Failed => "failed",
    }
}

/// The torture writes each payload's SHA-256 into its mail job's subject.
fn subject(r: &faxgate::spool::JobRecord) -> Option<&str> {
    match &r.data {
        faxgate::job::JobData::MailOut(m) => Some(&m.subject),
        _ => None,
    }
}
