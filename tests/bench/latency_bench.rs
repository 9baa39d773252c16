//! Job engine latency, printed (never asserted): how long a fax waits between the steps the
//! gateway controls, on the embedded default (loopback line, Maildir), for N faxes sent one
//! after another over SMTP.
//!
//! - **SMTP 250 → dial**: the `Message` job's commit (just before the `250`) to the start of
//!   its `FaxOut` job's first attempt (the line leased).
//! - **hang-up → Maildir**: the received fax's `FaxIn` commit (at hang-up) to the end of the
//!   `MailOut` attempt that put its email into the Maildir.
//!
//! Both are read from the spool's own records after the run, so any build can be measured the
//! same way: `cargo run --release --example latency_bench -- [N] [OTHER_FAXGATE_BINARY]` runs
//! this build's `faxgate` (next to the example) and, when given, another binary (e.g. a build
//! of an older commit) in the same run, and prints p50 / p99 for each side by side.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(2525)
}

/// A minimal SMTP client for one message (the bench measures the gateway, not a client).
fn send(port: u16, n: usize) -> std::io::Result<()> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
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
                return Err(std::io::Error::other(format!("{cmd:?}: {line:?}")));
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
    let body = format!(
        "From: bench@example.org\r\nTo: FAX=+12125550123@localhost\r\nSubject: latency {n}\r\n\
         Content-Type: text/plain\r\n\r\nLatency probe number {n}.\r\n.\r\n"
    );
    expect(&mut w, &body, "250")?;
    expect(&mut w, "QUIT\r\n", "221")
}

fn records(spool: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for area in ["queue", "done", "failed"] {
        for b in std::fs::read_dir(spool.join(area))
            .into_iter()
            .flatten()
            .flatten()
        {
            for j in std::fs::read_dir(b.path()).into_iter().flatten().flatten() {
                if let Ok(bytes) = std::fs::read(j.path().join("job.json"))
                    && let Ok(v) = serde_json::from_slice(&bytes)
                {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn pct(mut v: Vec<u64>, p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

struct Figures {
    to_dial: Vec<u64>,
    to_maildir: Vec<u64>,
    wall: Duration,
}

fn run(bin: &Path, n: usize) -> Result<Figures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    let port = free_port();
    let mut child: Child = Command::new(bin)
        .arg("run")
        .current_dir(dir.path())
        .env("FAXGATE_DATA", &data)
        .env("FAXGATE_SMTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("FAXGATE_LOG__FILTER", "warn")
        // The console would take the fixed default port, which a test may hold.
        .env("FAXGATE_HTTP__ENABLED", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let up = (0..400).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        let _ = child.kill();
        return Err("the daemon did not come up".into());
    }
    let maildir = data.join("maildir").join("new");
    let started = Instant::now();
    for i in 0..n {
        send(port, i).map_err(|e| e.to_string())?;
        // One fax at a time: wait (bounded) for its email before sending the next.
        let ok = (0..3000).any(|_| {
            let have = std::fs::read_dir(&maildir).map(|d| d.count()).unwrap_or(0);
            if have <= i {
                std::thread::sleep(Duration::from_millis(2));
            }
            have > i
        });
        if !ok {
            let _ = child.kill();
            return Err(format!("fax {i} never arrived"));
        }
    }
    let wall = started.elapsed();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();

    let recs = records(&data.join("spool"));
    let by_id = |id: &str| recs.iter().find(|r| r["id"] == id);
    let ms = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mut to_dial = Vec::new();
    let mut to_maildir = Vec::new();
    for r in &recs {
        match r["kind"].as_str() {
            Some("fax-out") => {
                if let (Some(parent), Some(first)) =
                    (r["parent"].as_str().and_then(by_id), r["attempts"].get(0))
                {
                    to_dial.push(ms(&first["started"]).saturating_sub(ms(&parent["created"])));
                }
            }
            Some("mail-out") => {
                let Some(fax_in) = r["parent"].as_str().and_then(by_id) else {
                    continue;
                };
                if fax_in["kind"] != "fax-in" {
                    continue;
                }
                let ended = r["attempts"]
                    .as_array()
                    .and_then(|a| a.last())
                    .map(|a| ms(&a["ended"]))
                    .unwrap_or(0);
                to_maildir.push(ended.saturating_sub(ms(&fax_in["created"])));
            }
            _ => {}
        }
    }
    Ok(Figures {
        to_dial,
        to_maildir,
        wall,
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let other = args.next().map(PathBuf::from);
    let ours = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("faxgate")))
        .unwrap_or_else(|| PathBuf::from("target/release/faxgate"));
    println!("job engine latency, {n} faxes one after another on the embedded default");
    println!(
        "{:<34} {:>14} {:>14} {:>16} {:>16} {:>8}",
        "binary", "250→dial p50", "250→dial p99", "hang-up→mail p50", "hang-up→mail p99", "wall s"
    );
    let mut bins = vec![ours];
    bins.extend(other);
    for bin in bins {
        match run(&bin, n) {
            Ok(f) => println!(
                "{:<34} {:>11} ms {:>11} ms {:>13} ms {:>13} ms {:>8.1}",
                bin.display().to_string(),
                pct(f.to_dial.clone(), 0.5),
                pct(f.to_dial, 0.99),
                pct(f.to_maildir.clone(), 0.5),
                pct(f.to_maildir, 0.99),
                f.wall.as_secs_f64()
            ),
            Err(e) => println!("{:<34} failed: {e}", bin.display().to_string()),
        }
    }
}
