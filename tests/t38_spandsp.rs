//! T.38 over UDPTL against an independent peer (issue 17): spandsp's T.38 terminal behind the
//! test harness's own UDPTL (`tests/fixtures/t38/spandsp_t38.c`), through a loopback relay that
//! drops an exact fraction of the datagrams.
//!
//! spandsp ↔ spandsp first: 3 pages, fine and standard, ECM on and off, at 0 %, 2 % and 10 %
//! loss. That proves the harness and its UDPTL (redundancy on send, recovery on receive) before
//! it is used to judge faxgate's. Pages are compared pixel by pixel after decoding both TIFFs.

#[path = "common/t38peer.rs"]
mod t38peer;
#[path = "common/udptl_relay.rs"]
mod udptl_relay;

use faxgate::image::tiff::{Limits, Profile, Writer, read_bytes};
use faxgate::image::{Page, Resolution};
use std::path::Path;
use std::time::Duration;
use t38peer::{PeerBuilder, PeerResult, free_udp_addr};
use udptl_relay::{Loss, Relay, RelayStats};

/// Pages per test fax.
const PAGES: u32 = 3;

/// A deterministic test page about 4 cm tall: text-like bars, a frame and a diagonal, varied
/// by `seed`, so every page codes differently and a lost row shows.
fn test_page(fine: bool, seed: u32) -> Page {
    let (res, rows) = if fine {
        (Resolution::FINE, 320)
    } else {
        (Resolution::STANDARD, 160)
    };
    let mut p = Page::new(1728, rows, res).unwrap();
    let mut x: u32 = 0x2545_F491 ^ seed.wrapping_mul(0x9E37_79B9);
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

/// The test document: `PAGES` pages at one resolution.
fn document(fine: bool, seed: u32) -> Vec<Page> {
    (0..PAGES).map(|i| test_page(fine, seed * 10 + i)).collect()
}

/// Writes pages as an RFC 3949 Profile S TIFF (MH), what faxgate sends.
fn write_tiff(path: &Path, pages: &[Page]) {
    let mut w = Writer::new(std::io::Cursor::new(Vec::new()), Profile::S).unwrap();
    for p in pages {
        w.write_page(p).unwrap();
    }
    std::fs::write(path, w.finish().unwrap().into_inner()).unwrap();
}

/// Decodes every page of a TIFF with the project's reader (any bilevel coding spandsp writes).
fn read_tiff(path: &Path) -> Vec<Page> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_bytes(&data, Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every page arrived, pixel for pixel, at its resolution.
fn assert_pages_exact(sent: &[Page], received: &Path) {
    let got = read_tiff(received);
    assert_eq!(
        got.len(),
        sent.len(),
        "page count of {}",
        received.display()
    );
    for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
        assert_eq!(
            (g.width(), g.height()),
            (s.width(), s.height()),
            "page {} size",
            i + 1
        );
        assert_eq!(
            g.resolution().y_dpi.round(),
            s.resolution().y_dpi.round(),
            "page {} vertical resolution",
            i + 1
        );
        let differing = (0..s.height()).filter(|&y| s.row(y) != g.row(y)).count();
        assert_eq!(differing, 0, "page {}: {differing} rows differ", i + 1);
    }
}

/// One fax spandsp → spandsp through the relay.
struct PairRun {
    tx: PeerResult,
    rx: PeerResult,
    relay: RelayStats,
    /// The datagrams each side sent (sender's, receiver's), as the relay saw them.
    captured: (Vec<Vec<u8>>, Vec<Vec<u8>>),
}

/// How one spandsp ↔ spandsp call is set up.
#[derive(Debug, Clone, Copy)]
struct Setup {
    fine: bool,
    ecm: bool,
    loss: u32,
    redundancy: u8,
    version: u8,
}

impl Setup {
    fn new(fine: bool, ecm: bool, loss: u32) -> Setup {
        Setup {
            fine,
            ecm,
            loss,
            redundancy: 3,
            version: 0,
        }
    }
}

fn spandsp_pair(dir: &Path, name: &str, setup: Setup, seed: u64) -> PairRun {
    let Setup {
        fine,
        ecm,
        loss,
        redundancy,
        version,
    } = setup;
    let sent = document(fine, seed as u32);
    let input = dir.join(format!("{name}-in.tif"));
    let output = dir.join(format!("{name}-out.tif"));
    write_tiff(&input, &sent);
    let tx_addr = free_udp_addr();
    let rx_addr = free_udp_addr();
    let relay = Relay::start(
        tx_addr,
        rx_addr,
        Loss::both(loss),
        seed,
        Duration::from_secs(200),
    );
    let rx = PeerBuilder::receive(&output, rx_addr, relay.for_b())
        .ecm(ecm)
        .ident("spandsp rx")
        .redundancy(redundancy)
        .version(version)
        .max_seconds(150)
        .spawn();
    let tx = PeerBuilder::send(&input, tx_addr, relay.for_a())
        .ecm(ecm)
        .ident("spandsp tx")
        .redundancy(redundancy)
        .version(version)
        .max_seconds(150)
        .spawn();
    let tx = tx.wait();
    let rx = rx.wait();
    let run = PairRun {
        tx,
        rx,
        relay: relay.stats(),
        captured: relay.captured(),
    };
    eprintln!(
        "{name}: tx {}\n{name}: rx {}\n{name}: relay {:?}",
        run.tx, run.rx, run.relay
    );
    run
}

/// The four calls of one loss rate (ECM on/off × fine/standard) at once: each is paced in
/// real time (≈ 30 s) and needs little CPU, so they run side by side.
fn matrix(loss: u32) -> Vec<(String, bool, PairRun, Vec<Page>, std::path::PathBuf)> {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.keep();
    let mut handles = Vec::new();
    for (k, (fine, ecm)) in [(true, true), (false, true), (true, false), (false, false)]
        .into_iter()
        .enumerate()
    {
        let dir = dir.clone();
        handles.push(std::thread::spawn(move || {
            let name = format!(
                "loss{loss}-{}-{}",
                if fine { "fine" } else { "standard" },
                if ecm { "ecm" } else { "noecm" }
            );
            let seed = 1000 + u64::from(loss) * 10 + k as u64;
            let run = spandsp_pair(&dir, &name, Setup::new(fine, ecm, loss), seed);
            let sent = document(fine, seed as u32);
            let out = dir.join(format!("{name}-out.tif"));
            (name, ecm, run, sent, out)
        }));
    }
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Both ends report success with every page, the negotiated ECM, each other's ident; the
/// pages are exact.
fn assert_clean(name: &str, ecm: bool, run: &PairRun, sent: &[Page], out: &Path) {
    for (side, r) in [("sender", &run.tx), ("receiver", &run.rx)] {
        assert!(
            r.result == "ok" && r.exit_ok && r.code == 0,
            "{name}: {side}: {r}"
        );
        assert_eq!(r.ecm, ecm, "{name}: {side}: ECM");
        assert_eq!(
            r.bit_rate, 14_400,
            "{name}: {side}: V.17 14 400 on a clean line"
        );
    }
    assert_eq!(run.tx.pages_tx, PAGES, "{name}");
    assert_eq!(run.rx.pages_rx, PAGES, "{name}");
    assert_eq!(run.tx.remote_ident, "spandsp rx", "{name}");
    assert_eq!(run.rx.remote_ident, "spandsp tx", "{name}");
    assert_pages_exact(sent, out);
}

#[test]
fn spandsp_to_spandsp_without_loss() {
    for (name, ecm, run, sent, out) in matrix(0) {
        assert_clean(&name, ecm, &run, &sent, &out);
        assert_eq!(run.relay.a_to_b_dropped + run.relay.b_to_a_dropped, 0);
        for r in [&run.tx, &run.rx] {
            assert_eq!((r.lost, r.bad, r.foreign), (0, 0, 0), "{name}: {r}");
        }
        // The harness numbers its datagrams consecutively from 0 (T.38 §9.1 seq-number); a
        // repeat spandsp asks for is the same datagram, number and all.
        for sent in [&run.captured.0, &run.captured.1] {
            let mut expected = 0u16;
            let mut last: Option<&Vec<u8>> = None;
            for d in sent {
                let seq = u16::from_be_bytes([d[0], d[1]]);
                if Some(seq) == expected.checked_sub(1) {
                    assert_eq!(Some(d), last, "{name}: a repeat differs");
                } else {
                    assert_eq!(seq, expected, "{name}: sequence numbers");
                    expected += 1;
                }
                last = Some(d);
            }
            assert!(expected > 50, "{name}: only {expected} packets");
        }
    }
}

#[test]
fn spandsp_to_spandsp_two_percent_loss_is_recovered_by_redundancy() {
    for (name, ecm, run, sent, out) in matrix(2) {
        let s = run.relay;
        assert!(
            s.a_to_b_dropped > 0 && s.b_to_a_dropped > 0,
            "{name}: the relay dropped nothing: {s:?}"
        );
        // Redundancy 3 recovers every isolated loss: nothing reaches spandsp missing.
        assert!(
            run.tx.recovered + run.rx.recovered > 0,
            "{name}: nothing recovered"
        );
        assert_eq!(run.rx.lost + run.tx.lost, 0, "{name}: IFP packets lost");
        assert_clean(&name, ecm, &run, &sent, &out);
    }
}

#[test]
fn spandsp_to_spandsp_ten_percent_loss_ends_cleanly() {
    for (name, ecm, run, sent, out) in matrix(10) {
        let s = run.relay;
        let total = s.a_to_b_forwarded + s.a_to_b_dropped;
        assert!(
            s.a_to_b_dropped * 100 >= total * 9,
            "{name}: relay fraction {s:?}"
        );
        assert!(
            run.tx.recovered + run.rx.recovered > 0,
            "{name}: nothing recovered"
        );
        // A bounded end by the T.30 procedure (never the harness's --max-seconds backstop).
        for r in [&run.tx, &run.rx] {
            assert_ne!(r.result, "timeout", "{name}: {r}");
        }
        if run.tx.lost + run.rx.lost == 0 {
            // Redundancy hid every loss: the fax must be as clean as on a perfect line.
            assert_clean(&name, ecm, &run, &sent, &out);
        } else if run.tx.result == "ok" && run.rx.result == "ok" {
            // A packet got through neither as primary nor as secondary. With ECM the lost
            // frames are asked for again (PPR) and the pages are exact; without, spandsp's
            // copy-quality check accepted the pages.
            if ecm {
                assert_clean(&name, ecm, &run, &sent, &out);
            }
        } else {
            // A failed call names its cause on both ends.
            assert!(
                run.tx.code > 0 || run.rx.code > 0,
                "{name}: failed without a cause: {} / {}",
                run.tx,
                run.rx
            );
        }
    }
}

/// Without redundancy loss reaches spandsp's T.30 (the counters prove the relay and the
/// UDPTL bookkeeping are live): T.30 repeats commands, ECM asks for lost frames again (PPR),
/// and the pages arrive exact — or the call ends by a named cause, never by the backstop.
#[test]
fn spandsp_to_spandsp_five_percent_loss_without_redundancy() {
    let dir = tempfile::tempdir().unwrap().keep();
    let name = "loss5-red0-fine-ecm";
    let setup = Setup {
        redundancy: 0,
        ..Setup::new(true, true, 5)
    };
    let seed = 77;
    let run = spandsp_pair(&dir, name, setup, seed);
    assert_eq!(
        run.tx.recovered + run.rx.recovered,
        0,
        "no secondaries to recover from"
    );
    assert!(
        run.rx.lost + run.tx.lost > 0,
        "no loss seen: {} / {}",
        run.tx,
        run.rx
    );
    for r in [&run.tx, &run.rx] {
        assert_ne!(r.result, "timeout", "{name}: {r}");
    }
    if run.tx.result == "ok" {
        assert_clean(
            name,
            true,
            &run,
            &document(true, seed as u32),
            &dir.join(format!("{name}-out.tif")),
        );
    } else {
        assert!(
            run.tx.code > 0,
            "{name}: failed without a cause: {}",
            run.tx
        );
    }
}

#[test]
fn result_line_parses() {
    let r = t38peer::parse_result(
        r#"T38PEER result=ok code=0 pages_tx=3 pages_rx=0 pages_in_file=3 ecm=1 bit_rate=14400 rx_datagrams=103 recovered=1 lost=0 bad=0 foreign=0 tx_datagrams=309 remote_ident="a \"b\" c" text="OK""#,
    )
    .unwrap();
    assert_eq!(r.remote_ident, "a \"b\" c");
    assert_eq!(
        (r.pages_tx, r.code, r.ecm, r.text.as_str()),
        (3, 0, true, "OK")
    );
    assert!(t38peer::parse_result("T38PEER result=ok code=zero").is_none());
}
