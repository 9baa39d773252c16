//! faxgate's T.38 (engine + `fax::t38` session over UDPTL) against the independent peer:
//! spandsp's T.38 terminal behind the harness's own UDPTL (`tests/common/t38peer.rs`), on
//! loopback, for what `tests/t38_spandsp.rs` (version 0 at 0/2/10 % loss, with a watchdog)
//! does not cover: T.38 version 3 at 2 % loss both ways, local TCF both ways, and a peer that
//! vanishes after one page. 3 pages, fine and standard, ECM on and off; pages compared pixel
//! by pixel.
//!
//! Debian packages: libspandsp-dev, libtiff-dev, pkg-config, gcc (the peer is built from C).

#[path = "common/t38peer.rs"]
mod t38peer;
#[path = "common/udptl_relay.rs"]
mod udptl_relay;

use faxgate::fax::t30::pages::{PagesSink, PagesSource};
use faxgate::fax::t30::{Cause, Engine, EngineConfig};
use faxgate::fax::t38::session::{Media, run_call};
use faxgate::fax::t38::{RateManagement, T38Params};
use faxgate::image::tiff::{Limits, Profile, Writer, read_bytes};
use faxgate::image::{Page, Resolution};
use std::net::UdpSocket;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use t38peer::{PeerBuilder, PeerResult, free_udp_addr};
use udptl_relay::{Loss, Relay};

const PAGES: u32 = 3;

/// A deterministic test page about 4 cm tall (bars, a frame, a diagonal) varied by `seed`.
fn test_page(fine: bool, seed: u32) -> Page {
    let (res, rows) = if fine {
        (Resolution::FINE, 320)
    } else {
        (Resolution::STANDARD, 160)
    };
    let mut p = Page::new(1728, rows, res).unwrap();
    let mut x: u32 = 0x7F4A_7C15 ^ seed.wrapping_mul(0x9E37_79B9);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..200 {
        let y0 = next() % (rows - 8);
        let x0 = next() % 1600;
        let w = 2 + next() % 80;
        let h = 1 + next() % 6;
        for y in y0..y0 + h {
            for xx in x0..(x0 + w).min(1728) {
                p.set(xx, y, true);
            }
        }
    }
    for y in 0..rows {
        p.set(8, y, true);
        p.set(1719, y, true);
        p.set((y * 5 + seed * 97) % 1728, y, true);
    }
    p
}

fn document(fine: bool, seed: u32) -> Vec<Page> {
    (0..PAGES).map(|i| test_page(fine, seed * 10 + i)).collect()
}

fn assert_pages_exact(what: &str, sent: &[Page], got: &[Page]) {
    assert_eq!(got.len(), sent.len(), "{what}: page count");
    for (i, (s, g)) in sent.iter().zip(got).enumerate() {
        assert_eq!(
            (g.width(), g.height()),
            (s.width(), s.height()),
            "{what}: page {i} size"
        );
        let differing = (0..s.height()).filter(|&y| s.row(y) != g.row(y)).count();
        assert_eq!(differing, 0, "{what}: page {i}: {differing} rows differ");
    }
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    fine: bool,
    ecm: bool,
    version: u8,
    loss: u32,
    /// Local TCF (T.38 §8.4) instead of transferred.
    local_tcf: bool,
}

fn media(socket: UdpSocket, remote: std::net::SocketAddr, s: Setup) -> Media {
    Media {
        socket,
        remote,
        params: T38Params {
            version: s.version,
            rate_management: if s.local_tcf {
                RateManagement::LocalTcf
            } else {
                RateManagement::TransferredTcf
            },
            ..T38Params::default()
        },
        hangup: Arc::new(AtomicBool::new(false)),
    }
}

fn peer_rate(s: Setup) -> t38peer::RateManagement {
    if s.local_tcf {
        t38peer::RateManagement::Local
    } else {
        t38peer::RateManagement::Transferred
    }
}

/// faxgate sends `PAGES` pages to spandsp. Returns spandsp's result and faxgate's engine.
fn faxgate_to_spandsp(dir: &Path, name: &str, s: Setup, seed: u32) -> (PeerResult, Engine) {
    let sent = document(s.fine, seed);
    let out = dir.join(format!("{name}-out.tif"));
    let fg_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fg_addr = fg_sock.local_addr().unwrap();
    let peer_addr = free_udp_addr();
    let relay = Relay::start(
        fg_addr,
        peer_addr,
        Loss::both(s.loss),
        u64::from(seed),
        Duration::from_secs(200),
    );
    let peer = PeerBuilder::receive(&out, peer_addr, relay.for_b())
        .ecm(s.ecm)
        .ident("spandsp rx")
        .version(s.version)
        .rate_management(peer_rate(s))
        .log(if std::env::var_os("T38_PEER_LOG").is_some() {
            6
        } else {
            0
        })
        .max_seconds(150)
        .log(if std::env::var_os("T38_PEER_LOG").is_some() {
            6
        } else {
            0
        })
        .spawn();
    let mut m = media(fg_sock, relay.for_a(), s);
    let mut engine = Engine::sender(
        EngineConfig {
            local_id: "faxgate tx".into(),
            ecm: s.ecm,
            ..EngineConfig::default()
        },
        Box::new(PagesSource::new(vec![sent.clone()])),
    );
    let start = Instant::now();
    run_call(&mut m, &mut engine).unwrap();
    let took = start.elapsed();
    let r = peer.wait();
    eprintln!(
        "{name}: faxgate {:?} in {took:?}; spandsp {r}; relay {:?}",
        engine.report().cause,
        relay.stats()
    );
    if r.result == "ok" {
        let data = std::fs::read(&out).unwrap();
        let got = read_bytes(&data, Limits::default()).unwrap();
        assert_pages_exact(name, &sent, &got);
    }
    (r, engine)
}

/// spandsp sends `PAGES` pages to faxgate.
fn spandsp_to_faxgate(dir: &Path, name: &str, s: Setup, seed: u32) -> (PeerResult, Engine) {
    let sent = document(s.fine, seed);
    let input = dir.join(format!("{name}-in.tif"));
    let mut w = Writer::new(std::io::Cursor::new(Vec::new()), Profile::S).unwrap();
    for p in &sent {
        w.write_page(p).unwrap();
    }
    std::fs::write(&input, w.finish().unwrap().into_inner()).unwrap();
    let fg_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fg_addr = fg_sock.local_addr().unwrap();
    let peer_addr = free_udp_addr();
    let relay = Relay::start(
        peer_addr,
        fg_addr,
        Loss::both(s.loss),
        u64::from(seed),
        Duration::from_secs(200),
    );
    let sink = PagesSink::new();
    let got = sink.pages();
    let mut engine = Engine::receiver(
        EngineConfig {
            local_id: "faxgate rx".into(),
            ecm: s.ecm,
            ..EngineConfig::default()
        },
        Box::new(sink),
    );
    let mut m = media(fg_sock, relay.for_b(), s);
    let peer = PeerBuilder::send(&input, peer_addr, relay.for_a())
        .ecm(s.ecm)
        .ident("spandsp tx")
        .version(s.version)
        .rate_management(peer_rate(s))
        .log(if std::env::var_os("T38_PEER_LOG").is_some() {
            6
        } else {
            0
        })
        .max_seconds(150)
        .spawn();
    run_call(&mut m, &mut engine).unwrap();
    let r = peer.wait();
    eprintln!(
        "{name}: faxgate {:?}; spandsp {r}; relay {:?}",
        engine.report().cause,
        relay.stats()
    );
    if engine.report().cause == Some(Cause::Ok) {
        let got: Vec<Page> = got.lock().unwrap().iter().map(|p| p.page.clone()).collect();
        assert_pages_exact(name, &sent, &got);
    }
    (r, engine)
}

fn assert_ok(name: &str, r: &PeerResult, e: &Engine, ecm: bool) {
    assert!(
        r.result == "ok" && r.code == 0,
        "{name}: spandsp {r}\n{}",
        t38peer::tail(&r.log)
    );
    assert_eq!(
        e.report().cause,
        Some(Cause::Ok),
        "{name}: {:?}",
        e.report()
    );
    assert_eq!(e.report().pages_confirmed(), PAGES as usize, "{name}");
    assert_eq!(e.report().ecm, ecm, "{name}");
    assert_eq!(r.ecm, ecm, "{name}");
}

/// Runs the four (fine/standard × ECM on/off) calls of one direction side by side.
fn matrix(to_spandsp: bool, version: u8, loss: u32) {
    matrix_with(to_spandsp, version, loss, false, &assert_ok);
}

type Verdict = dyn Fn(&str, &PeerResult, &Engine, bool) + Sync;

fn matrix_with(
    to_spandsp: bool,
    version: u8,
    loss: u32,
    local_tcf: bool,
    verdict: &'static Verdict,
) {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut hs = Vec::new();
    for (k, (fine, ecm)) in [(true, true), (false, true), (true, false), (false, false)]
        .into_iter()
        .enumerate()
    {
        let dir = dir.clone();
        hs.push(std::thread::spawn(move || {
            let s = Setup {
                fine,
                ecm,
                version,
                loss,
                local_tcf,
            };
            let name = format!(
                "{}-v{version}-loss{loss}{}-{}-{}",
                if to_spandsp { "fg2sp" } else { "sp2fg" },
                if local_tcf { "-localtcf" } else { "" },
                if fine { "fine" } else { "std" },
                if ecm { "ecm" } else { "noecm" }
            );
            let seed = 500 + k as u32 + u32::from(version) * 10 + loss * 100;
            let (r, e) = if to_spandsp {
                faxgate_to_spandsp(&dir, &name, s, seed)
            } else {
                spandsp_to_faxgate(&dir, &name, s, seed)
            };
            verdict(&name, &r, &e, ecm);
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn faxgate_to_spandsp_version_3_with_two_percent_loss() {
    matrix(true, 3, 2);
}

#[test]
fn spandsp_to_faxgate_version_3_with_two_percent_loss() {
    matrix(false, 3, 2);
}

#[test]
fn local_tcf_both_ways() {
    matrix_with(true, 0, 0, true, &assert_ok);
    matrix_with(false, 0, 0, true, &assert_ok);
}

/// spandsp stops dead after its first page (no DCN, as when its side hangs up without a BYE
/// reaching us): faxgate's receiver keeps the confirmed page and ends by its own timers with a
/// named cause, not a hang.
#[test]
fn spandsp_vanishing_after_one_page() {
    let dir = tempfile::tempdir().unwrap().keep();
    let s = Setup {
        fine: false,
        ecm: true,
        version: 0,
        loss: 0,
        local_tcf: false,
    };
    let sent = document(false, 77);
    let input = dir.join("vanish-in.tif");
    let mut w = Writer::new(std::io::Cursor::new(Vec::new()), Profile::S).unwrap();
    for p in &sent {
        w.write_page(p).unwrap();
    }
    std::fs::write(&input, w.finish().unwrap().into_inner()).unwrap();
    let fg_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fg_addr = fg_sock.local_addr().unwrap();
    let peer_addr = free_udp_addr();
    let sink = PagesSink::new();
    let got = sink.pages();
    let mut engine = Engine::receiver(
        EngineConfig {
            local_id: "faxgate rx".into(),
            ..EngineConfig::default()
        },
        Box::new(sink),
    );
    let mut m = media(fg_sock, peer_addr, s);
    let peer = PeerBuilder::send(&input, peer_addr, fg_addr)
        .ident("spandsp tx")
        .bye_after_pages(1)
        .max_seconds(150)
        .spawn();
    run_call(&mut m, &mut engine).unwrap();
    let r = peer.wait();
    let cause = engine.report().cause;
    eprintln!("vanish: faxgate {cause:?}; spandsp {r}");
    assert!(cause.is_some() && cause != Some(Cause::Ok), "{cause:?}");
    let got = got.lock().unwrap();
    assert!(
        !got.is_empty(),
        "the first page was confirmed before the peer vanished"
    );
    assert!(got[0].page == sent[0], "page 1 exact");
}
