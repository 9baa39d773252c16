//! Benchmark (not a test): concurrent T.38 calls on this box, beside one Class 1 modem call.
//!
//! Issue 17's measure: the CPU of one concurrent T.38 call and the most concurrent calls the
//! box holds with no page errors (goal ≥ 30), beside the same pages over one Class 1 modem call.
//!
//! - **T.38**: at each level N (2, 10, 30, 60, … up to `MAX`), N calls at once between faxgate
//!   endpoints in this process, each on its own pair of loopback UDP sockets through the real
//!   session shell (`fax::t38::session::run_call`, paced in real time as on a SIP trunk):
//!   3 fine pages, ECM on for even calls. Printed: wall time, process CPU, CPU per call end,
//!   and whether every page of every call arrived exactly. A level whose calls take over 1.5×
//!   the first level's wall time (one call with ECM, one without: the slower one sets the
//!   time) counts as not held: the box no longer keeps up. At the end: the peak RSS.
//! - **Class 1 anchor**: the same 3 pages over one real call on the project's soft-modem line
//!   (`tests/rig`: two iaxmodem soft modems, in a private network namespace; needs root and the
//!   `iaxmodem` package), both ends faxgate's engine over its Class 1 driver. Printed: faxgate's
//!   CPU for the call (both ends) and the soft modems' CPU, which a T.38 call does not need.
//!
//! Run: `cargo run --release --example t38_bench [MAX]` (MAX defaults to 120).

#[path = "../rig/rig.rs"]
mod rig;

/// What the rig needs of the tests' common helpers (which need the test harness's environment).
mod common {
    /// Panics naming the Debian package when `bin` is not on PATH.
    pub fn require_tool(bin: &str, package: &str) {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()));
        assert!(
            found,
            "this benchmark needs `{bin}`: apt-get install -y {package}"
        );
    }
}

use faxgate::fax::modem::Profile;
use faxgate::fax::modem::port::Modem;
use faxgate::fax::modem::session;
use faxgate::fax::t30::pages::{PagesSink, PagesSource, ReceivedPage};
use faxgate::fax::t30::{Cause, Engine, EngineConfig};
use faxgate::fax::t38::T38Params;
use faxgate::fax::t38::session::{Media, run_call};
use faxgate::image::{Page, Resolution};
use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// This process's peak resident set, KiB (`getrusage`).
fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage fills the zeroed, exclusively borrowed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss
}

/// CPU time (user + system) of every running process named `name`, from /proc.
fn cpu_of(name: &str) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0u64;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": utime and stime are fields 14 and 15.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += n(11) + n(12);
    }
    Duration::from_millis(ticks * 1000 / hz)
}

/// A deterministic fine page with text-like marks, about a third of A4 (as the T.38 tests).
fn page(seed: u32) -> Page {
    let rows = 760;
    let mut p = Page::new(1728, rows, Resolution::FINE).expect("page");
    let mut x: u32 = 0x2545_F491 ^ seed.wrapping_mul(0x9E37_79B9);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for line in 0..28 {
        let y0 = 20 + line * 26;
        let mut xx = 100;
        while xx < 1600 {
            let w = 4 + next() % 18;
            if next() % 5 != 0 {
                for y in y0..y0 + 14 {
                    for c in xx..(xx + w).min(1728) {
                        p.set(c, y, true);
                    }
                }
            }
            xx += w + 3 + next() % 10;
        }
    }
    p
}

fn pages() -> Vec<Page> {
    (1..=3).map(page).collect()
}

fn engines(ecm: bool) -> (Engine, Engine, Arc<Mutex<Vec<ReceivedPage>>>) {
    let cfg = |id: &str| EngineConfig {
        local_id: id.into(),
        ecm,
        ..EngineConfig::default()
    };
    let sink = PagesSink::new();
    let received = sink.pages();
    (
        Engine::sender(
            cfg("+1 555 0199"),
            Box::new(PagesSource::new(vec![pages()])),
        ),
        Engine::receiver(cfg("+1 555 0100"), Box::new(sink)),
        received,
    )
}

/// Whether the call ended well with every page exact.
fn exact(sender: &Engine, received: &Mutex<Vec<ReceivedPage>>) -> bool {
    let got = received.lock().unwrap_or_else(|p| p.into_inner());
    sender.report().cause == Some(Cause::Ok)
        && got.len() == 3
        && got.iter().zip(pages()).all(|(r, p)| r.page == p)
}

fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind loopback")
}

/// One T.38 call between two faxgate endpoints; true when every page arrived exactly.
fn t38_call(ecm: bool) -> bool {
    let (mut sender, mut receiver, received) = engines(ecm);
    let (sa, sb) = (socket(), socket());
    let (a, b) = (
        sa.local_addr().expect("addr"),
        sb.local_addr().expect("addr"),
    );
    let media = |socket, remote| Media {
        socket,
        remote,
        params: T38Params::default(),
        hangup: Arc::new(AtomicBool::new(false)),
    };
    let (mut ma, mut mb) = (media(sa, b), media(sb, a));
    let rx = std::thread::spawn(move || run_call(&mut mb, &mut receiver).is_ok());
    let sent_ok = run_call(&mut ma, &mut sender).is_ok();
    let rx_ok = rx.join().unwrap_or(false);
    sent_ok && rx_ok && exact(&sender, &received)
}

struct Level {
    calls: usize,
    wall: Duration,
    cpu: Duration,
    exact: usize,
}

fn level(n: usize) -> Level {
    let (t0, c0) = (Instant::now(), cpu_time());
    let calls: Vec<_> = (0..n)
        .map(|k| std::thread::spawn(move || t38_call(k % 2 == 0)))
        .collect();
    let exact = calls
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|&ok| ok)
        .count();
    Level {
        calls: n,
        wall: t0.elapsed(),
        cpu: cpu_time() - c0,
        exact,
    }
}

/// The same pages over one Class 1 call on the soft-modem line: (wall, faxgate CPU, modems' CPU).
fn class1_call() -> Result<(Duration, Duration, Duration, bool), String> {
    let profile = || {
        Profile::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml"),
        )
        .map_err(|e| format!("iaxmodem profile: {e}"))
    };
    let line = rig::Rig::up();
    let mut a = Modem::open(&line.a, profile()?).map_err(|e| e.to_string())?;
    let mut b = Modem::open(&line.b, profile()?).map_err(|e| e.to_string())?;
    a.init().map_err(|e| e.to_string())?;
    b.init().map_err(|e| e.to_string())?;
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT);
    let (mut sender, mut receiver, received) = engines(true);
    let (t0, c0, m0) = (Instant::now(), cpu_time(), cpu_of("iaxmodem"));
    let answer = std::thread::spawn(move || {
        b.wait_and_answer(1, Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        session::run_call(&mut b, &mut receiver).map_err(|e| e.to_string())?;
        Ok::<_, String>(receiver)
    });
    a.dial("5550002").map_err(|e| format!("dial: {e}"))?;
    session::run_call(&mut a, &mut sender).map_err(|e| e.to_string())?;
    let _receiver = answer.join().map_err(|_| "answering thread panicked")??;
    let ok = exact(&sender, &received);
    Ok((
        t0.elapsed(),
        cpu_time() - c0,
        cpu_of("iaxmodem").saturating_sub(m0),
        ok,
    ))
}

fn main() {
    let max: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(120)
        .max(1);
    println!(
        "T.38 over loopback UDP, 3 fine pages per call, both ends faxgate (ECM on even calls)"
    );
    println!(
        "{:>6} {:>9} {:>9} {:>14} {:>12}  held",
        "calls", "wall s", "CPU s", "CPU/call ms", "exact"
    );
    let mut single_wall = None;
    let mut held = 0;
    let mut n = 2.min(max);
    loop {
        let l = level(n);
        let base = *single_wall.get_or_insert(l.wall);
        let ok = l.exact == l.calls && l.wall.as_secs_f64() <= base.as_secs_f64() * 1.5;
        println!(
            "{:>6} {:>9.1} {:>9.2} {:>14.1} {:>7}/{:<4}  {}",
            l.calls,
            l.wall.as_secs_f64(),
            l.cpu.as_secs_f64(),
            l.cpu.as_secs_f64() * 1000.0 / l.calls as f64,
            l.exact,
            l.calls,
            if ok { "yes" } else { "no" }
        );
        if ok {
            held = l.calls;
        } else {
            break;
        }
        if n >= max {
            break;
        }
        n = match n {
            2 => 10,
            10 => 30,
            k => k + 30,
        }
        .min(max);
    }
    println!("most concurrent T.38 calls held with no page errors: {held} (goal ≥ 30)");
    println!("peak RSS of this process: {} MiB", peak_rss_kib() / 1024);
    println!();
    println!("anchor: the same pages over one Class 1 call on the soft-modem line (tests/rig)");
    match class1_call() {
        Ok((wall, cpu, modems, ok)) => println!(
            "class 1: wall {:.1} s, faxgate CPU {:.0} ms (both ends), soft modems' DSP CPU {:.2} s, pages exact: {}",
            wall.as_secs_f64(),
            cpu.as_secs_f64() * 1000.0,
            modems.as_secs_f64(),
            if ok { "yes" } else { "no" }
        ),
        Err(e) => println!("class 1: the rig call failed: {e}"),
    }
}
