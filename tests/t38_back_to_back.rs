//! Two faxgate engines over T.38 (IFP in UDPTL): first on a simulated network (the pure
//! `Endpoint` of `fax::t38::session`, simulated time, deterministic loss), then through the
//! real session shell on two loopback UDP sockets, directly and through a lossy relay.
//! 3 pages, ECM on and off, fine and standard; pages must arrive pixel-exact.

use faxgate::fax::t30::pages::{PagesSink, PagesSource, ReceivedPage};
use faxgate::fax::t30::{Cause, Engine, EngineConfig, VResolution};
use faxgate::fax::t38::session::{Endpoint, Media, run_call};
use faxgate::fax::t38::{T38Params, UdpEc};
use faxgate::image::{Page, Resolution};
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A deterministic test page (as in tests/t30_back_to_back.rs): about 5 cm of A4.
fn test_page(res: VResolution, seed: u32) -> Page {
    let (r, rows) = match res {
        VResolution::Standard => (Resolution::STANDARD, 200),
        VResolution::Fine => (Resolution::FINE, 400),
        VResolution::Superfine => (Resolution::SUPERFINE, 800),
    };
    let mut p = Page::new(1728, rows, r).unwrap();
    let mut x: u32 = 0x9E37_79B9 ^ seed.wrapping_mul(0x85EB_CA6B);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..300 {
        let y0 = next() % (rows - 10);
        let x0 = next() % 1600;
        let w = 2 + next() % 60;
        let h = 1 + next() % 8;
        for y in y0..y0 + h {
            for xx in x0..(x0 + w).min(1728) {
                p.set(xx, y, true);
            }
        }
    }
    for y in 0..rows {
        p.set(5, y, true);
        p.set(1722, y, true);
        p.set((y * 3 + seed) % 1728, y, true);
    }
    p
}

fn config(id: &str, ecm: bool) -> EngineConfig {
    EngineConfig {
        local_id: id.into(),
        ecm,
        ..EngineConfig::default()
    }
}

struct Pair {
    sender: Engine,
    receiver: Engine,
    sent: Vec<Page>,
    received: Arc<Mutex<Vec<ReceivedPage>>>,
}

fn pair(ecm: bool, res: VResolution) -> Pair {
    let pages: Vec<Page> = (1..=3).map(|i| test_page(res, i)).collect();
    let sink = PagesSink::new();
    let received = sink.pages();
    Pair {
        sender: Engine::sender(
            config("+1 555 0199", ecm),
            Box::new(PagesSource::new(vec![pages.clone()])),
        ),
        receiver: Engine::receiver(config("+1 555 0100", ecm), Box::new(sink)),
        sent: pages,
        received,
    }
}

fn check(p: &Pair, ecm: bool, what: &str) {
    let a = p.sender.report();
    let b = p.receiver.report();
    assert_eq!(a.cause, Some(Cause::Ok), "{what}: sender {a:?}");
    assert_eq!(b.cause, Some(Cause::Ok), "{what}: receiver {b:?}");
    assert_eq!(a.ecm, ecm, "{what}");
    assert_eq!(a.pages_confirmed(), 3, "{what}");
    assert_eq!(b.pages_confirmed(), 3, "{what}");
    let got = p.received.lock().unwrap();
    assert_eq!(got.len(), 3, "{what}");
    for (i, (g, s)) in got.iter().zip(&p.sent).enumerate() {
        assert_eq!(g.quality.bad_rows, 0, "{what}: page {i}");
        assert!(g.page == *s, "{what}: page {i} differs");
    }
}

/// Simulated network: both endpoints, one clock, 20 ms one-way latency; `drop(n)` decides
/// the fate of the n-th datagram (both directions counted together). Returns the datagrams
/// sent and dropped.
fn simulate(p: &mut Pair, params: &T38Params, drop: &dyn Fn(u64) -> bool) -> (u64, u64) {
    let mut ends = [Endpoint::new(params), Endpoint::new(params)];
    // In flight: (arrival µs, serial) → (to side, bytes).
    let mut flight: BTreeMap<(u128, u64), (usize, Vec<u8>)> = BTreeMap::new();
    let mut now = Duration::ZERO;
    let (mut sent, mut dropped) = (0u64, 0u64);
    p.sender.start(now);
    p.receiver.start(now);
    let mut out = Vec::new();
    for _ in 0..2_000_000 {
        for (side, end) in ends.iter_mut().enumerate() {
            let engine = if side == 0 {
                &mut p.sender
            } else {
                &mut p.receiver
            };
            end.step(engine, now, &mut out);
            for d in out.drain(..) {
                sent += 1;
                if drop(sent) {
                    dropped += 1;
                    continue;
                }
                let at = (now + Duration::from_millis(20)).as_micros();
                flight.insert((at, sent), (1 - side, d));
            }
        }
        if ends.iter().all(Endpoint::finished) {
            return (sent, dropped);
        }
        // Deliver what has arrived.
        while let Some(entry) = flight.first_entry() {
            if entry.key().0 > now.as_micros() {
                break;
            }
            let (to, d) = entry.remove();
            ends[to].datagram(&d, now);
        }
        let wake = [
            ends[0].next_wake(&p.sender),
            ends[1].next_wake(&p.receiver),
            flight
                .keys()
                .next()
                .map(|(t, _)| Duration::from_micros(*t as u64)),
        ]
        .into_iter()
        .flatten()
        .min();
        match wake {
            Some(w) if w > now => now = w,
            Some(_) => now += Duration::from_millis(1),
            None => panic!("deadlock at {now:?}"),
        }
    }
    panic!("no end");
}

#[test]
fn simulated_three_pages_ecm_and_not_fine_and_standard() {
    let params = T38Params::default();
    for ecm in [true, false] {
        for res in [VResolution::Fine, VResolution::Standard] {
            let mut p = pair(ecm, res);
            simulate(&mut p, &params, &|_| false);
            check(&p, ecm, &format!("ecm {ecm} {res:?}"));
        }
    }
}

#[test]
fn simulated_every_version_and_no_error_correction() {
    for version in 0..=3 {
        let params = T38Params {
            version,
            udp_ec: if version == 2 {
                UdpEc::None
            } else {
                UdpEc::Redundancy
            },
            ..T38Params::default()
        };
        let mut p = pair(version % 2 == 0, VResolution::Fine);
        simulate(&mut p, &params, &|_| false);
        check(&p, version % 2 == 0, &format!("version {version}"));
    }
}

#[test]
fn simulated_two_percent_loss_is_recovered_by_redundancy() {
    // Every 50th datagram lost (2 %), in both directions: redundancy (depth 3) rebuilds each.
    for ecm in [true, false] {
        let mut p = pair(ecm, VResolution::Fine);
        let (sent, dropped) = simulate(&mut p, &T38Params::default(), &|n| n % 50 == 7);
        check(&p, ecm, &format!("lossy ecm {ecm}"));
        assert!(dropped * 50 >= sent - 50, "{dropped} of {sent}");
        // Nothing was lost for good: no page needed a retransmission.
        let r = p.receiver.report();
        assert!(
            r.pages
                .iter()
                .all(|pg| pg.outcome == faxgate::fax::t30::PageOutcome::Confirmed),
            "{r:?}"
        );
    }
}

fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("loopback UDP socket")
}

/// Runs both engines over real loopback sockets; `relay` (if any) sits between them.
fn udp_call(ecm: bool, res: VResolution, drop_every: Option<u64>) {
    let Pair {
        mut sender,
        mut receiver,
        sent,
        received,
    } = pair(ecm, res);
    let (sa, sb) = (socket(), socket());
    let (addr_a, addr_b) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    // With a relay, each side talks to the relay's socket for it.
    let (to_b, to_a, relay) = match drop_every {
        None => (addr_b, addr_a, None),
        Some(n) => {
            let (ra, rb) = (socket(), socket());
            let (ra_addr, rb_addr) = (ra.local_addr().unwrap(), rb.local_addr().unwrap());
            let done = Arc::new(AtomicBool::new(false));
            let d2 = done.clone();
            let h = std::thread::spawn(move || relay_loop(ra, rb, addr_a, addr_b, n, &d2));
            (ra_addr, rb_addr, Some((h, done)))
        }
    };
    let params = T38Params::default();
    let mut ma = Media {
        socket: sa,
        remote: to_b,
        params: params.clone(),
        hangup: Arc::new(AtomicBool::new(false)),
    };
    let mut mb = Media {
        socket: sb,
        remote: to_a,
        params,
        hangup: Arc::new(AtomicBool::new(false)),
    };
    let hb = std::thread::spawn(move || {
        run_call(&mut mb, &mut receiver).unwrap();
        receiver
    });
    run_call(&mut ma, &mut sender).unwrap();
    let receiver = hb.join().unwrap();
    let relay_counts = relay.map(|(h, done)| {
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap()
    });
    let p = Pair {
        sender,
        receiver,
        sent,
        received,
    };
    check(
        &p,
        ecm,
        &format!("udp ecm {ecm} {res:?} drop {drop_every:?}"),
    );
    if let Some((fwd, dropped)) = relay_counts {
        assert!(dropped > 0 && dropped * 60 >= fwd, "{dropped} of {fwd}");
    }
}

/// Relays datagrams between `a` (arriving on `ra`) and `b` (on `rb`), dropping every n-th.
/// Returns (datagrams seen, dropped).
fn relay_loop(
    ra: UdpSocket,
    rb: UdpSocket,
    a: SocketAddr,
    b: SocketAddr,
    n: u64,
    done: &AtomicBool,
) -> (u64, u64) {
    ra.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    rb.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut buf = vec![0u8; 65536];
    let (mut seen, mut dropped) = (0u64, 0u64);
    // Bounded by the test's own call time (the calls end; `done` is then set).
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        for (from_sock, to_sock, from, to) in [(&ra, &rb, a, b), (&rb, &ra, b, a)] {
            while let Ok((len, src)) = from_sock.recv_from(&mut buf) {
                if src != from {
                    continue;
                }
                seen += 1;
                if seen % n == 3 {
                    dropped += 1;
                    continue;
                }
                let _ = to_sock.send_to(&buf[..len], to);
            }
        }
    }
    (seen, dropped)
}

#[test]
fn udp_ecm_fine() {
    udp_call(true, VResolution::Fine, None);
}

#[test]
fn udp_non_ecm_standard() {
    udp_call(false, VResolution::Standard, None);
}

#[test]
fn udp_ecm_standard_and_non_ecm_fine() {
    udp_call(true, VResolution::Standard, None);
    udp_call(false, VResolution::Fine, None);
}

#[test]
fn udp_relay_dropping_two_percent() {
    udp_call(true, VResolution::Fine, Some(50));
}

/// Issue 17's load goal: 30 calls at once on this box (60 faxgate endpoints, one process,
/// 3 fine pages each, ECM on for even calls): every one delivers its pages exactly. (CPU is
/// measured outside the test: `/usr/bin/time` on this test alone; see the README.)
#[test]
fn udp_thirty_concurrent_calls() {
    let calls: Vec<_> = (0..30)
        .map(|k| std::thread::spawn(move || udp_call(k % 2 == 0, VResolution::Fine, None)))
        .collect();
    for c in calls {
        c.join().unwrap();
    }
}
