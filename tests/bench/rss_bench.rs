//! Memory while receiving a long fax, printed (never asserted): the daemon's peak resident
//! set (`VmHWM`) on the embedded default's loopback line for a 1-page and a long (default
//! 200-page) fax, for this build and, when given, another build's `faxgate` in the same run.
//!
//! On the loopback line both ends of the call live in the daemon, and the sending side holds
//! its rendered pages (about 0.5 MB each at fine resolution) for the whole call, so the
//! daemon's peak grows with the page count whatever the receiving side does. What receiving
//! costs on its own is read where a build shows its reception on disk (`spool/receiving/`,
//! pages appended as they are confirmed): `VmRSS` is sampled every few milliseconds, and the
//! growth is the highest sample while a reception entry exists minus the first one then (the
//! pages to send are rendered before the call starts). A build that keeps receptions in
//! memory has no such entry and shows `-` there.
//!
//! `cargo run --release --example rss_bench -- [PAGES] [OTHER_FAXGATE_BINARY]`. The fax is a
//! text/plain mail, one page per form feed; the line is paced (`loopback.pace`, default 0.01 of
//! real line time, `RSS_BENCH_PACE`) so that a reception lasts long enough to be sampled.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(2525)
}

/// A text/plain body of `pages` pages (form feeds between them), a few lines of ink each.
fn body(pages: u32) -> String {
    let mut b = String::new();
    for i in 1..=pages {
        if i > 1 {
            b.push('\u{c}');
        }
        b.push_str(&format!("Page {i} of {pages}\r\n\r\n"));
        for l in 0..20 {
            b.push_str(&format!(
                "Line {l:2}: the quick brown fox jumps over the lazy dog {i}/{l}.\r\n"
            ));
        }
    }
    b
}

fn send(port: u16, pages: u32) -> std::io::Result<()> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let mut expect = |w: &mut TcpStream, cmd: &str, code: &str| -> std::io::Result<()> {
        if !cmd.is_empty() {
            w.write_all(cmd.as_bytes())?;
        }
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            if line.len() < 4 || !line.starts_with(code) {
                return Err(std::io::Error::other(format!("{cmd:.40?}: {line:?}")));
            }
            if line.as_bytes()[3] == b' ' {
                return Ok(());
            }
        }
    };
    expect(&mut w, "", "220")?;
    expect(&mut w, "EHLO bench\r\n", "250")?;
    expect(&mut w, "MAIL FROM:<bench@example.org>\r\n", "250")?;
    expect(&mut w, "RCPT TO:<FAX=+12125550123@localhost>\r\n", "250")?;
    expect(&mut w, "DATA\r\n", "354")?;
    let msg = format!(
        "From: bench@example.org\r\nTo: FAX=+12125550123@localhost\r\nSubject: rss {pages}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n{}.\r\n",
        body(pages)
    );
    expect(&mut w, &msg, "250")?;
    expect(&mut w, "QUIT\r\n", "221")
}

/// A field of `/proc/PID/status`, in KiB.
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Figures {
    /// Lifetime peak after the fax email is in the Maildir.
    hwm_kib: u64,
    /// Growth of VmRSS while a reception entry existed.
    call_growth_kib: Option<u64>,
    /// Looks that saw a reception entry.
    busy_seen: usize,
    wall: Duration,
}

fn run(bin: &Path, pages: u32, pace: &str) -> Result<Figures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    let port = free_port();
    let mut child: Child = Command::new(bin)
        .current_dir(dir.path())
        .env("FAXGATE_DATA", &data)
        .env("FAXGATE_SMTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("FAXGATE_LOG__FILTER", "warn")
        // The console would take the fixed default port, which a test may hold.
        .env("FAXGATE_HTTP__ENABLED", "false")
        .env("FAXGATE_LOOPBACK__PACE", pace)
        .env("FAXGATE_OFFRAMP__MAX_PAGES", (pages + 10).to_string())
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let pid = child.id();
    let up = (0..400).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        let _ = child.kill();
        return Err("the daemon did not come up".into());
    }
    // VmRSS sampler: (time, KiB) every 5 ms until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut v = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(k) = proc_kib(pid, "VmRSS:") {
                    v.push((Instant::now(), k));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            v
        })
    };
    let started = Instant::now();
    let sender = std::thread::spawn(move || send(port, pages));
    // The reception entries, looked at as often as possible, until the email is in.
    let maildir = data.join("maildir").join("new");
    let receiving = data.join("spool").join("receiving");
    let mut busy: Vec<Instant> = Vec::new();
    let deadline = started + Duration::from_secs(900);
    let mut arrived = false;
    while Instant::now() < deadline {
        if std::fs::read_dir(&receiving).is_ok_and(|mut d| d.next().is_some()) {
            busy.push(Instant::now());
        }
        if std::fs::read_dir(&maildir).is_ok_and(|d| d.count() > 0) {
            arrived = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = started.elapsed();
    let hwm = proc_kib(pid, "VmHWM:").unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    match sender.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("SMTP: {e}")),
        Err(_) => return Err("the SMTP client panicked".into()),
    }
    if !arrived {
        return Err("the fax email never arrived".into());
    }
    let growth = match (busy.first(), busy.last()) {
        (Some(first), Some(last)) => {
            let in_call: Vec<u64> = samples
                .iter()
                .filter(|(t, _)| t >= first && t <= last)
                .map(|(_, k)| *k)
                .collect();
            match (in_call.first(), in_call.iter().max()) {
                (Some(a), Some(m)) => Some(m.saturating_sub(*a)),
                _ => None,
            }
        }
        _ => None,
    };
    Ok(Figures {
        hwm_kib: hwm,
        call_growth_kib: growth,
        busy_seen: busy.len(),
        wall,
    })
}

fn mib(k: u64) -> String {
    format!("{:.1}", k as f64 / 1024.0)
}

fn mib_or_dash(k: Option<u64>) -> String {
    k.map(mib).unwrap_or_else(|| "-".into())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let pages: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let other = args.next().map(PathBuf::from);
    let pace = std::env::var("RSS_BENCH_PACE").unwrap_or_else(|_| "0.01".into());
    let ours = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("faxgate")))
        .unwrap_or_else(|| PathBuf::from("target/release/faxgate"));
    println!(
        "daemon memory receiving a fax on the loopback line (pace {pace}), 1 page vs {pages} pages"
    );
    println!(
        "{:<34} {:>6} {:>12} {:>16} {:>10} {:>8}",
        "binary", "pages", "VmHWM MiB", "receiving +MiB", "looks", "wall s"
    );
    let mut bins = vec![ours];
    bins.extend(other);
    for bin in bins {
        let mut got = Vec::new();
        for n in [1, pages] {
            match run(&bin, n, &pace) {
                Ok(f) => {
                    println!(
                        "{:<34} {:>6} {:>12} {:>16} {:>10} {:>8.1}",
                        bin.display().to_string(),
                        n,
                        mib(f.hwm_kib),
                        mib_or_dash(f.call_growth_kib),
                        f.busy_seen,
                        f.wall.as_secs_f64()
                    );
                    got.push(f);
                }
                Err(e) => println!("{:<34} {n:>6} failed: {e}", bin.display().to_string()),
            }
        }
        if let [one, many] = &got[..] {
            println!(
                "{:<34} {:>6} {:>12} {:>16}",
                "  difference",
                "",
                mib(many.hwm_kib.saturating_sub(one.hwm_kib)),
                mib_or_dash(
                    many.call_growth_kib
                        .zip(one.call_growth_kib)
                        .map(|(m, o)| m.saturating_sub(o))
                )
            );
        }
    }
}
