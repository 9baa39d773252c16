//! A large backlog, printed (never asserted): a spool pre-filled with N queued `FaxOut` jobs
//! (default 100 000) whose lines fail at once, for this build and, when given, another
//! build's `faxgate` in the same run:
//!
//! - **start-up**: from `faxgate run` to the first `faxgate status` answered by the daemon
//!   (`"live": true`);
//! - **status**: how long `faxgate status --json` takes under the backlog (10 calls, p50/max,
//!   the CLI's own start included);
//! - **RSS**: the daemon's `VmRSS` when it first answered and its `VmHWM` at the end;
//! - **dispatch rate**: fax attempts started per second through the scheduler during a
//!   window after start-up (default 30 s), from the first to the last attempt started in it,
//!   read from the job records afterwards.
//!
//! The lines are `[[modem]]`s on a device path that does not exist: the modem cannot be opened,
//! so every attempt ends at once with a local temporary failure (`modem … is not available`)
//! and the job is queued for its retry. Each attempt still prepares its one page first (the
//! attempt makes its pages before it takes the line), so the figure includes that.
//!
//! The spool is written directly in the on-disk format, without an fsync per job: 500
//! finished `Message` jobs in `done/` with 200 recipients each, and their `FaxOut` children in
//! `queue/`, as each build's split leaves them — for this build, records of its version with
//! the page rendered once (`pages.tif`); for the other build, version-1 records (untyped data)
//! each with its copy of the message, which that build renders at every attempt.
//!
//! `cargo run --release --example backlog_bench -- [N] [OTHER_FAXGATE_BINARY [OTHER_N]]`;
//! `BACKLOG_LINES` (default 4) lines, `BACKLOG_WINDOW` seconds (default 30),
//! `BACKLOG_STARTUP_LIMIT` seconds to wait for the first answer (default 300).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faxgate::job::{Child as Relation, JobData, JobId, JobKind, JobState, Timestamp};
use faxgate::offramp::document;
use faxgate::spool::{JobRecord, RECORD_VERSION};

/// Recipients per message (below the split's limit of 299).
const PER_MESSAGE: u32 = 200;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn mkdir(p: &Path) {
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p);
}

/// xorshift64*: ids only need to be distinct.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn record(
    id: &JobId,
    kind: JobKind,
    state: JobState,
    at: u64,
    parent: Option<&JobId>,
    data: JobData,
) -> JobRecord {
    JobRecord {
        version: RECORD_VERSION,
        id: id.clone(),
        kind,
        state,
        created: Timestamp(at),
        epoch: Timestamp(at),
        next_due: Timestamp(at),
        priority: 127,
        attempts: Vec::new(),
        counted_from: 0,
        failure: None,
        finished: state.is_final().then_some(Timestamp(at)),
        parent: parent.cloned(),
        child: parent
            .and(id.child_number())
            .and_then(|n| Relation::of_v1(kind, n)),
        data,
    }
}

/// `rec` as a version-1 record (what builds before typed job data wrote and read): the
/// kind's fields as untyped data, no relation, none of the fields added since.
fn version_1(rec: &JobRecord) -> Vec<u8> {
    let mut v = serde_json::to_value(rec).unwrap_or_default();
    let inner = v["data"]
        .as_object()
        .and_then(|o| o.values().next().cloned())
        .unwrap_or_default();
    v["data"] = inner;
    v["version"] = 1.into();
    if let Some(o) = v.as_object_mut() {
        o.remove("child");
    }
    if let Some(d) = v["data"].as_object_mut() {
        d.remove("pages");
        d.remove("from");
    }
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Writes job `rec` with its payload files (`(name, bytes)`), natively or as version 1.
fn write_job(
    spool: &Path,
    area: &str,
    rec: &JobRecord,
    v1: bool,
    files: &[(&str, &[u8])],
) -> std::io::Result<()> {
    let dir = spool.join(area).join(rec.id.bucket()).join(rec.id.as_str());
    mkdir(&dir);
    let bytes = if v1 { version_1(rec) } else { rec.to_bytes() };
    std::fs::write(dir.join("job.json"), bytes)?;
    for (name, data) in files {
        std::fs::write(dir.join(name), data)?;
    }
    Ok(())
}

/// N queued fax jobs as a split leaves them (see the module doc): natively, or as version-1
/// records for a build before typed job data.
fn prefill(spool: &Path, n: u32, v1: bool) -> std::io::Result<()> {
    for a in ["incoming", "queue", "done", "failed"] {
        mkdir(&spool.join(a));
    }
    let at = now_ms();
    let mut rng = Rng(at | 1);
    let message =
        b"Received: from [127.0.0.1] ([127.0.0.1])\r\n\tby localhost (faxgate) with ESMTP; \
        Thu, 3 Dec 2026 12:00:00 +0000\r\nFrom: bench@example.org\r\nTo: backlog\r\n\
        Subject: backlog\r\n\r\nOne page in a large backlog.\r\n";
    // The page every fax carries, rendered once as this build's split does.
    let opts = faxgate::offramp::options::SenderOptions {
        resolution: faxgate::job::Resolution::Fine,
        cover_page: false,
        subject: "backlog".into(),
    };
    let doc_opts = document::Options::from(&faxgate::config::Offramp::default());
    let prepared = document::prepare(message, &doc_opts, &opts)
        .map_err(|e| std::io::Error::other(e.words()))?;
    let bad = |e: faxgate::job::BadData| std::io::Error::other(e.to_string());
    let mut made = 0;
    while made < n {
        let count = PER_MESSAGE.min(n - made);
        let parent = JobId::new(Timestamp(at), rng.next());
        let number = |i: u32| format!("+1212555{:04}", (made + i) % 10_000);
        let recipients: Vec<_> = (1..=count)
            .map(|i| {
                let e164 = number(i);
                serde_json::json!({
                    "address": format!("FAX={e164}@localhost"),
                    "destination": {"dial": &e164[1..], "e164": e164, "international": false},
                    "form": "rfc3192", "notify": null,
                    "number": {"digits": &e164[1..], "kind": "global"},
                    "orcpt": null, "subaddress": null
                })
            })
            .collect();
        let data = JobData::from_v1(JobKind::Message, serde_json::json!({
            "envelope": {
                "auth_user": null, "body": null,
                "client": {"esmtp": true, "helo": "[127.0.0.1]", "ip": "127.0.0.1", "port": 40000},
                "envid": null, "mail_auth": null, "mail_from": "bench@example.org",
                "postmaster": [], "recipients": recipients, "ret": null,
                "size": message.len(), "tls": null
            },
            "file": "message.eml",
            "received": "2026-12-03T12:00:00Z",
            "size": message.len()
        }))
        .map_err(bad)?;
        let m = record(&parent, JobKind::Message, JobState::Done, at, None, data);
        write_job(spool, "done", &m, v1, &[("message.eml", message)])?;
        for i in 1..=count {
            let id = parent
                .child(i as u16)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let e164 = number(i);
            let mut data = JobData::from_v1(
                JobKind::FaxOut,
                serde_json::json!({
                    "dial": &e164[1..], "e164": e164, "message": parent,
                    "options": {"cover_page": false, "resolution": "fine", "subject": "backlog"},
                    "pages_total": 1, "rcpt": format!("FAX={e164}@localhost"), "recipient": i,
                    "result": null, "subaddress": null
                }),
            )
            .map_err(bad)?;
            if let (false, JobData::FaxOut(f)) = (v1, &mut data) {
                f.pages = Some("pages.tif".into());
                f.from = prepared.from.clone();
            }
            let r = record(
                &id,
                JobKind::FaxOut,
                JobState::Queued,
                at,
                Some(&parent),
                data,
            );
            if v1 {
                write_job(spool, "queue", &r, v1, &[("message.eml", message)])?;
            } else {
                write_job(spool, "queue", &r, v1, &[("pages.tif", &prepared.body)])?;
            }
        }
        made += count;
    }
    Ok(())
}

/// `faxgate status --json` with a time limit; `Some((live, took))` when it answered.
fn status(bin: &Path, dir: &Path, limit: Duration) -> Option<(bool, Duration)> {
    let t = Instant::now();
    let mut c = Command::new(bin)
        .args(["-c", "faxgate.toml", "status", "--json"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    loop {
        match c.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if t.elapsed() < limit => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
        }
    }
    let took = t.elapsed();
    let out = c.wait_with_output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["live"] == true, took))
}

fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

struct Figures {
    startup: Option<Duration>,
    status_p50: Duration,
    status_max: Duration,
    rss_up_kib: u64,
    hwm_kib: u64,
    attempts_in_window: usize,
    jobs_tried: usize,
    window: Duration,
}

fn config(dir: &Path, lines: u32) -> String {
    let mut c = format!(
        "[gateway]\ndata_dir = \"{}\"\n[smtp]\nlisten = \"127.0.0.1:{}\"\n[relay]\nmode = \"maildir\"\n\
         [loopback]\nenabled = false\n[http]\nenabled = false\n[log]\nfilter = \"warn\"\n",
        dir.join("data").display(),
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(2525)
    );
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems");
    for i in 0..lines {
        c.push_str(&format!(
            "[[modem]]\nname = \"dead{i}\"\ndevice = \"{}/no-such-modem{i}\"\n\
             profile = \"generic-class1\"\nprofiles_dir = \"{}\"\nrole = \"send\"\n",
            dir.display(),
            profiles.display()
        ));
    }
    c
}

fn run(
    bin: &Path,
    n: u32,
    lines: u32,
    window: Duration,
    limit: Duration,
    v1: bool,
) -> Result<Figures, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path();
    std::fs::write(dir.join("faxgate.toml"), config(dir, lines)).map_err(|e| e.to_string())?;
    let spool = dir.join("data").join("spool");
    let t = Instant::now();
    prefill(&spool, n, v1).map_err(|e| format!("prefill: {e}"))?;
    let _ = Command::new("sync").status();
    eprintln!("  {n} jobs written in {:.1} s", t.elapsed().as_secs_f64());

    let log = std::fs::File::create(dir.join("run.log")).map_err(|e| e.to_string())?;
    let spawned = Instant::now();
    let mut child: Child = Command::new(bin)
        .args(["-c", "faxgate.toml", "run"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let pid = child.id();
    let sock = dir.join("data").join("control.sock");
    let mut startup = None;
    while spawned.elapsed() < limit {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("the daemon exited: {st}"));
        }
        // Until the socket exists `status` would read the spool itself (not the daemon).
        if sock.exists()
            && let Some((true, _)) = status(bin, dir, Duration::from_secs(30))
        {
            startup = Some(spawned.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss_up = proc_kib(pid, "VmRSS:");
    let live_ms = now_ms();
    let mut took = Vec::new();
    if startup.is_some() {
        for _ in 0..10 {
            if let Some((_, d)) = status(bin, dir, Duration::from_secs(30)) {
                took.push(d);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let rest = window.saturating_sub(Duration::from_millis(now_ms() - live_ms));
        std::thread::sleep(rest);
    }
    let end_ms = now_ms();
    let hwm = proc_kib(pid, "VmHWM:");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let stopped = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !stopped {
        let _ = child.kill();
        let _ = child.wait();
    }
    took.sort();
    let (mut in_window, mut tried) = (Vec::new(), 0);
    for area in ["queue", "done", "failed"] {
        for b in std::fs::read_dir(spool.join(area))
            .into_iter()
            .flatten()
            .flatten()
        {
            for j in std::fs::read_dir(b.path()).into_iter().flatten().flatten() {
                let Ok(bytes) = std::fs::read(j.path().join("job.json")) else {
                    continue;
                };
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                    continue;
                };
                if v["kind"] != "fax-out" {
                    continue;
                }
                let starts: Vec<u64> = v["attempts"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x["started"].as_u64()).collect())
                    .unwrap_or_default();
                tried += usize::from(!starts.is_empty());
                in_window.extend(starts.iter().filter(|s| **s >= live_ms && **s < end_ms));
            }
        }
    }
    Ok(Figures {
        startup,
        status_p50: took.get(took.len() / 2).copied().unwrap_or_default(),
        status_max: took.last().copied().unwrap_or_default(),
        rss_up_kib: rss_up,
        hwm_kib: hwm,
        attempts_in_window: in_window.len(),
        jobs_tried: tried,
        // From the first to the last attempt seen: a small backlog may run out before the
        // window does.
        window: Duration::from_millis(
            in_window.iter().max().unwrap_or(&0) - in_window.iter().min().unwrap_or(&0),
        ),
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let other = args.next().map(PathBuf::from);
    let other_n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(n);
    let env_secs = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let lines = env_secs("BACKLOG_LINES", 4) as u32;
    let window = Duration::from_secs(env_secs("BACKLOG_WINDOW", 30));
    let limit = Duration::from_secs(env_secs("BACKLOG_STARTUP_LIMIT", 300));
    let ours = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("faxgate")))
        .unwrap_or_else(|| PathBuf::from("target/release/faxgate"));
    println!(
        "backlog of queued fax jobs, {lines} lines that fail at once, window {} s",
        window.as_secs()
    );
    println!(
        "{:<34} {:>7} {:>10} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "binary",
        "jobs",
        "start s",
        "status p50",
        "status max",
        "RSS MiB",
        "HWM MiB",
        "jobs/s",
        "tried"
    );
    // The other build is taken to be one from before typed job data (version-1 records).
    let mut runs = vec![(ours, n, false)];
    runs.extend(other.map(|o| (o, other_n, true)));
    for (bin, n, v1) in runs {
        let name = bin.display().to_string();
        match run(&bin, n, lines, window, limit, v1) {
            Ok(f) => println!(
                "{:<34} {:>7} {:>10} {:>9} ms {:>9} ms {:>10.1} {:>10.1} {:>10.0} {:>10}",
                name,
                n,
                f.startup
                    .map(|d| format!("{:.2}", d.as_secs_f64()))
                    .unwrap_or_else(|| format!(">{}", limit.as_secs())),
                f.status_p50.as_millis(),
                f.status_max.as_millis(),
                f.rss_up_kib as f64 / 1024.0,
                f.hwm_kib as f64 / 1024.0,
                f.attempts_in_window as f64 / f.window.as_secs_f64().max(0.001),
                f.jobs_tried
            ),
            Err(e) => println!("{name:<34} {n:>7} failed: {e}"),
        }
    }
}
