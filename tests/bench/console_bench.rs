//! The console under a backlog, printed (never asserted): `faxgate run` on a spool
//! pre-filled with N queued `FaxOut` jobs (default 10 000) beside the same with 10, and the
//! idle daemon of the embedded default:
//!
//! - **p50/p99 response time** of `GET /` (the dashboard), `GET /queue` (first page) and
//!   `GET /received`, each asked `CONSOLE_REQUESTS` times (default 300) one after another on a
//!   fresh connection (the connect is included: what a browser without keep-alive sees);
//! - **RSS**: the daemon's `VmRSS` after the requests and its `VmHWM` (peak);
//! - **idle RSS** of `faxgate run` on the embedded default (loopback line, console on
//!   127.0.0.1) a few seconds after start, with nothing sent: the goal is ≤ 12 MB.
//!
//! The backlog has no line to go out on (loopback off, no `[[modem]]`), so every job stays
//! queued while the pages are asked for: the queue page always has a full first page, and
//! nothing else runs meanwhile. The records are written directly in the on-disk format,
//! without an fsync per job.
//!
//! `cargo run --release --example console_bench -- [N]`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faxgate::job::{JobData, JobId, JobKind, JobState, Timestamp};
use faxgate::spool::{JobRecord, RECORD_VERSION};

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// N queued fax jobs, each to its own number, as children of messages of 200 recipients.
fn prefill(spool: &Path, n: u32) -> std::io::Result<()> {
    for a in ["incoming", "queue", "done", "failed"] {
        mkdir(&spool.join(a));
    }
    let at = now_ms();
    let mut seed = at | 1;
    let mut rnd = || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut parent = JobId::new(Timestamp(at), rnd());
    for i in 0..n {
        if i % 200 == 0 {
            parent = JobId::new(Timestamp(at), rnd());
        }
        let id = parent
            .child((i % 200 + 1) as u16)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut data = faxgate::job::data::sample(JobKind::FaxOut, "bench");
        if let JobData::FaxOut(f) = &mut data {
            f.message = parent.clone();
            f.recipient = (i % 200 + 1) as u16;
            f.e164 = format!("+1212555{:04}", i % 10_000);
            f.dial = f.e164[1..].to_owned();
            f.rcpt = format!("FAX={}@localhost", f.e164);
        }
        let rec = JobRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            kind: JobKind::FaxOut,
            state: JobState::Queued,
            created: Timestamp(at),
            epoch: Timestamp(at),
            next_due: Timestamp(at),
            priority: 127,
            attempts: Vec::new(),
            counted_from: 0,
            failure: None,
            finished: None,
            parent: Some(parent.clone()),
            child: Some(faxgate::job::Child::Recipient((i % 200 + 1) as u16)),
            data,
        };
        let dir = spool.join("queue").join(id.bucket()).join(id.as_str());
        mkdir(&dir);
        std::fs::write(dir.join("job.json"), rec.to_bytes())?;
    }
    Ok(())
}

/// One GET on a fresh connection; the status and the time to the last byte.
fn get(port: u16, path: &str) -> Option<(u16, Duration)> {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let took = t.elapsed();
    let status = String::from_utf8_lossy(raw.get(..12)?)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, took))
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

fn stop(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    for _ in 0..300 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits (bounded) until the console answers `path` with 200.
fn wait_up(child: &mut Child, port: u16, path: &str, limit: Duration) -> Result<(), String> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("the daemon exited: {st}"));
        }
        if let Some((200, _)) = get(port, path) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no 200 for {path} within {} s", limit.as_secs()))
}

/// p50 and p99 of `path` over `n` requests, and the statuses seen.
fn measure(port: u16, path: &str, n: usize) -> (Duration, Duration, Vec<u16>) {
    let mut took = Vec::with_capacity(n);
    let mut statuses = Vec::new();
    for _ in 0..n {
        if let Some((st, d)) = get(port, path) {
            took.push(d);
            if !statuses.contains(&st) {
                statuses.push(st);
            }
        }
    }
    took.sort();
    let at = |q: f64| {
        took.get(((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (at(0.50), at(0.99), statuses)
}

struct Row {
    jobs: u32,
    pages: Vec<(Duration, Duration, Vec<u16>)>,
    rss_kib: u64,
    hwm_kib: u64,
}

const PATHS: [&str; 3] = ["/", "/queue", "/received"];

fn backlog(bin: &Path, n: u32, requests: usize) -> Result<Row, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path();
    let http = free_port();
    let cfg = format!(
        "[gateway]\ndata_dir = \"{}\"\n[smtp]\nlisten = \"127.0.0.1:{}\"\n[relay]\nmode = \"maildir\"\n\
         [loopback]\nenabled = false\n[http]\nlisten = \"127.0.0.1:{http}\"\n[log]\nfilter = \"warn\"\n",
        dir.join("data").display(),
        free_port()
    );
    std::fs::write(dir.join("faxgate.toml"), cfg).map_err(|e| e.to_string())?;
    let t = Instant::now();
    prefill(&dir.join("data").join("spool"), n).map_err(|e| format!("prefill: {e}"))?;
    let _ = Command::new("sync").status();
    eprintln!("  {n} jobs written in {:.1} s", t.elapsed().as_secs_f64());
    let log = std::fs::File::create(dir.join("run.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .args(["-c", "faxgate.toml", "run"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let pid = child.id();
    let up = wait_up(&mut child, http, "/queue", Duration::from_secs(300));
    if let Err(e) = up {
        stop(child);
        return Err(e);
    }
    // The spool is read once at start-up: wait until the queue page counts every job.
    let want = format!("{n} job(s) waiting");
    let loaded = Instant::now();
    while loaded.elapsed() < Duration::from_secs(300) {
        let page = TcpStream::connect(("127.0.0.1", http))
            .ok()
            .and_then(|mut s| {
                write!(
                    s,
                    "GET /queue HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                .ok()?;
                let mut b = String::new();
                s.read_to_string(&mut b).ok()?;
                Some(b)
            });
        if page.is_some_and(|p| p.contains(&want)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pages = PATHS.iter().map(|p| measure(http, p, requests)).collect();
    let row = Row {
        jobs: n,
        pages,
        rss_kib: proc_kib(pid, "VmRSS:"),
        hwm_kib: proc_kib(pid, "VmHWM:"),
    };
    stop(child);
    Ok(row)
}

/// `VmRSS` of `faxgate run` on the embedded default, idle, `after` its console answered.
fn idle(bin: &Path, after: Duration) -> Result<u64, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let http = free_port();
    let log = std::fs::File::create(tmp.path().join("run.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .arg("run")
        .current_dir(tmp.path())
        .env("FAXGATE_DATA", tmp.path().join("data"))
        .env("FAXGATE_SMTP__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("FAXGATE_HTTP__LISTEN", format!("127.0.0.1:{http}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let pid = child.id();
    if let Err(e) = wait_up(&mut child, http, "/queue", Duration::from_secs(60)) {
        stop(child);
        return Err(e);
    }
    std::thread::sleep(after);
    let rss = proc_kib(pid, "VmRSS:");
    stop(child);
    Ok(rss)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let requests: usize = std::env::var("CONSOLE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let bin: PathBuf = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("faxgate")))
        .unwrap_or_else(|| PathBuf::from("target/release/faxgate"));
    println!(
        "console response times ({requests} requests per page, fresh connection each) and RSS, {}",
        bin.display()
    );
    let mut head = format!("{:>7}", "jobs");
    for p in PATHS {
        head.push_str(&format!(
            " {:>12} {:>12}",
            format!("{p} p50 ms"),
            format!("{p} p99 ms")
        ));
    }
    head.push_str(&format!(" {:>9} {:>9}", "RSS MiB", "HWM MiB"));
    println!("{head}");
    for jobs in [10, n] {
        match backlog(&bin, jobs, requests) {
            Ok(r) => {
                let mut line = format!("{:>7}", r.jobs);
                for (p50, p99, st) in &r.pages {
                    let flag = if st.iter().all(|s| *s == 200) {
                        ""
                    } else {
                        "!"
                    };
                    line.push_str(&format!(
                        " {:>12} {:>12}",
                        ms(*p50),
                        format!("{}{flag}", ms(*p99))
                    ));
                }
                line.push_str(&format!(
                    " {:>9.1} {:>9.1}",
                    r.rss_kib as f64 / 1024.0,
                    r.hwm_kib as f64 / 1024.0
                ));
                println!("{line}");
                for (p, (_, _, st)) in PATHS.iter().zip(&r.pages) {
                    if st.iter().any(|s| *s != 200) {
                        println!("        ! {p} answered {st:?}");
                    }
                }
            }
            Err(e) => println!("{jobs:>7} failed: {e}"),
        }
    }
    match idle(&bin, Duration::from_secs(3)) {
        Ok(kib) => println!(
            "idle `faxgate run` (embedded default, console on): VmRSS {:.1} MiB (goal <= 12 MB)",
            kib as f64 / 1024.0
        ),
        Err(e) => println!("idle run failed: {e}"),
    }
}
