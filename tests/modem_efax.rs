//! Real fax calls on the rig against an independent fax machine: `efax` (the Debian package)
//! on the other soft modem. faxgate (T.30 engine + Class 1 driver + codecs) receives two fine
//! pages from efax, sends two fine pages to efax, and sends a standard-resolution page; each
//! side's pages must equal what was sent (efax stamps a header line on pages it sends: compared
//! below a top band, allowing the vertical shift it causes). Then faxgate calls faxgate: the
//! same two pages with T.30 Annex A error correction and MMR, which efax does not speak.
//!
//! Needs the Debian packages iaxmodem, efax, iproute2, util-linux, coreutils, libtiff-tools.
//! About three minutes: real calls take real time (negotiation ~10 s, then the pages at 14 400
//! bit/s); the pages are kept light so the calls stay short.

mod common;
#[path = "rig/rig.rs"]
mod rig;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faxgate::image::{Page, Resolution};

const FINE_ROWS: u32 = 2156; // A4 at 7.7 lines/mm, as efax makes them
const STANDARD_ROWS: u32 = 1078;

/// A test page: frame, diagonals, filled blocks, a bar code of the page number, and a small
/// checkerboard (single-pixel detail) — light enough to send in a few seconds.
fn test_page(n: u32, rows: u32, res: Resolution) -> Page {
    let mut p = Page::new(1728, rows, res).unwrap();
    let mut rect = |x0: u32, y0: u32, x1: u32, y1: u32| {
        for y in y0..y1.min(rows) {
            for x in x0..x1.min(1728) {
                p.set(x, y, true);
            }
        }
    };
    // Frame, 6 px, inside a margin that efax's header band (top ~40 rows) does not reach.
    let (t, b) = (rows / 20 + 60, rows - rows / 20);
    rect(100, t, 1628, t + 6);
    rect(100, b - 6, 1628, b);
    rect(100, t, 106, b);
    rect(1622, t, 1628, b);
    // Page number as n thick bars.
    for i in 0..n {
        rect(200 + i * 60, t + 60, 230 + i * 60, t + 260);
    }
    // Blocks and a checkerboard patch.
    rect(800, t + 100, 1400, t + 160);
    rect(1000, rows / 2, 1100, rows / 2 + rows / 8);
    for y in 0..64 {
        for x in 0..256 {
            if (x + y) % 2 == 0 {
                p.set(300 + x, rows / 2 + y, true);
            }
        }
    }
    // A diagonal, 3 px wide.
    for y in t..b {
        let x = 106 + (y - t) * (1622 - 106) / (b - t);
        for dx in 0..3 {
            p.set((x + dx).min(1727), y, true);
        }
    }
    p
}

/// Write `page` as a binary PBM (P4: rows MSB first, 1 = black — the Page layout).
fn write_pbm(page: &Page, path: &Path) {
    let mut v = format!("P4\n{} {}\n", page.width(), page.height()).into_bytes();
    for y in 0..page.height() {
        v.extend_from_slice(page.row(y));
    }
    std::fs::write(path, v).unwrap();
}

/// Pages as TIFF G3 files made by efix (the efax package's converter), one file per page.
fn efix_pages(dir: &Path, name: &str, pages: &[Page], res: &str) -> Vec<PathBuf> {
    let efix = common::require_tool("efix", "efax");
    let mut pbms = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        let f = dir.join(format!("{name}{i}.pbm"));
        write_pbm(p, &f);
        pbms.push(f);
    }
    let pattern = dir.join(format!("{name}.%03d"));
    let out = Command::new(efix)
        .args(["-i", "pbm", "-o", "tiffg3", "-R", res, "-r", res, "-n"])
        .arg(&pattern)
        .args(&pbms)
        .output()
        .unwrap();
    assert!(out.status.success(), "efix: {out:?}");
    (1..=pages.len())
        .map(|i| dir.join(format!("{name}.{i:03}")))
        .collect()
}

fn read_tiff(path: &Path) -> Vec<Page> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    faxgate::image::tiff::read_bytes(&bytes, Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `got` equals `sent` below `band` rows, for some downward shift of `got` up to `max_shift`.
fn assert_same_page(sent: &Page, got: &Page, band: u32, max_shift: u32, what: &str) {
    assert_eq!(got.width(), sent.width(), "{what}: width");
    let mut best = (u64::MAX, 0);
    for shift in 0..=max_shift {
        let mut diff = 0u64;
        for y in band..sent.height() {
            let g = y + shift;
            if g >= got.height() {
                diff += u64::from(sent.width());
                continue;
            }
            diff += sent
                .row(y)
                .iter()
                .zip(got.row(g))
                .map(|(a, b)| u64::from((a ^ b).count_ones()))
                .sum::<u64>();
        }
        if diff < best.0 {
            best = (diff, shift);
        }
    }
    assert_eq!(
        best.0,
        0,
        "{what}: {} pixels differ at the best shift {} (sent {}x{}, got {}x{}); rows {:?}",
        best.0,
        best.1,
        sent.width(),
        sent.height(),
        got.width(),
        got.height(),
        (band..sent.height())
            .filter(|&y| y + best.1 >= got.height() || sent.row(y) != got.row(y + best.1))
            .take(12)
            .collect::<Vec<_>>()
    );
}

fn profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml")
}

/// Wait for a child up to `limit`, then kill it (it is ours); its exit status if it ended.
fn wait_child(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(s) = c.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

fn efax_receiver(dev: &Path, out: &Path, log: &Path) -> Child {
    let efax = common::require_tool("efax", "efax");
    Command::new(efax)
        .arg("-d")
        .arg(dev)
        .args([
            "-o1",
            "-iZ",
            "-kZ",
            "-jS0=1",
            "-w",
            "-l",
            "+1 555 0002",
            "-r",
        ])
        .arg(out.join("fax"))
        .args(["-v", "ewinrt"])
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(log.with_extension("err")).unwrap(),
        ))
        .spawn()
        .unwrap()
}

fn faxgate_send(dir: &Path, dev: &Path, files: &[PathBuf]) -> std::process::Output {
    common::faxgate(dir)
        .arg("send")
        .arg("--modem")
        .arg(dev)
        .arg("--profile")
        .arg(profile())
        .args(["--local-id", "+1 555 0001", "5550002"])
        .args(files)
        .output()
        .unwrap()
}

fn log_of(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
        + &std::fs::read_to_string(p.with_extension("err")).unwrap_or_default()
}

#[test]
fn efax_round_trips_on_the_rig() {
    common::require_tool("tiffinfo", "libtiff-tools");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let fine: Vec<Page> = (1..=2)
        .map(|n| test_page(n, FINE_ROWS, Resolution::FINE))
        .collect();
    let fine_files = efix_pages(w, "fine", &fine, "204x196");
    let standard = vec![test_page(3, STANDARD_ROWS, Resolution::STANDARD)];
    let standard_files = efix_pages(w, "std", &standard, "204x98");

    // 1. efax sends two fine pages; faxgate answers and writes fax.tif.
    let rx = w.join("rx");
    std::fs::create_dir(&rx).unwrap();
    let mut receiver = common::faxgate(w)
        .arg("receive")
        .arg("--modem")
        .arg(&line.b)
        .arg("--out")
        .arg(&rx)
        .arg("--profile")
        .arg(profile())
        .args(["--local-id", "+1 555 0002", "--wait", "90"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // faxgate's ATZ makes iaxmodem refuse calls for 5 s.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let efax = common::require_tool("efax", "efax");
    let t = Instant::now();
    let sender = Command::new(&efax)
        .arg("-d")
        .arg(&line.a)
        .args([
            "-o1",
            "-iZ",
            "-kZ",
            "-l",
            "+1 555 0001",
            "-v",
            "ewinrt",
            "-t",
            "5550002",
        ])
        .args(&fine_files)
        .output()
        .unwrap();
    let status = wait_child(&mut receiver, Duration::from_secs(30));
    let out = receiver.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "efax -> faxgate, {:.1} s:\n{report}",
        t.elapsed().as_secs_f64()
    );
    assert!(
        sender.status.success() && status.is_some_and(|s| s.success()),
        "efax: {}\n{}\nfaxgate: {report}\n{}",
        String::from_utf8_lossy(&sender.stdout),
        String::from_utf8_lossy(&sender.stderr),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("caller: 1001"), "{report}");
    assert!(report.contains("did: 5550002"), "{report}");
    let tif = rx.join("fax.tif");
    let ti = Command::new("tiffinfo").arg(&tif).output().unwrap();
    assert!(ti.status.success(), "tiffinfo: {ti:?}");
    let got = read_tiff(&tif);
    assert_eq!(got.len(), 2, "{report}");
    for (i, (s, g)) in fine.iter().zip(&got).enumerate() {
        // efax's header line: ~20 rows at fine resolution on top of the page.
        assert_same_page(s, g, 40, 40, &format!("efax→faxgate page {}", i + 1));
        assert!(g.resolution().y_dpi > 150.0, "fine resolution kept");
    }
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT);

    // 2. faxgate sends the two fine pages (efix's TIFF files) to efax.
    for (name, files, pages, rows) in [
        ("fine", &fine_files, &fine, FINE_ROWS),
        ("standard", &standard_files, &standard, STANDARD_ROWS),
    ] {
        let dir = w.join(format!("efax-{name}"));
        std::fs::create_dir(&dir).unwrap();
        let log = dir.join("efax.log");
        let mut efax_rx = efax_receiver(&line.b, &dir, &log);
        // efax's ATZ on the answering modem: 5 s of refused calls.
        std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
        let t = Instant::now();
        let out = faxgate_send(w, &line.a, files);
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!(
            "faxgate -> efax ({name}), {:.1} s:\n{report}",
            t.elapsed().as_secs_f64()
        );
        let st = wait_child(&mut efax_rx, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "faxgate send: {report}\n{}\nefax: {}",
            String::from_utf8_lossy(&out.stderr),
            log_of(&log)
        );
        assert!(st.is_some_and(|s| s.success()), "efax: {}", log_of(&log));
        for (i, s) in pages.iter().enumerate() {
            let f = dir.join(format!("fax.{:03}", i + 1));
            let got = read_tiff(&f);
            assert_eq!(got.len(), 1);
            assert!(
                got[0].height() >= rows,
                "{name} page {}: {} rows",
                i + 1,
                got[0].height()
            );
            // We add no header: the page must come out as it went in.
            assert_same_page(
                s,
                &got[0],
                0,
                0,
                &format!("faxgate→efax {name} page {}", i + 1),
            );
        }
        std::thread::sleep(rig::IAXMODEM_BUSY_OUT);
    }
    // 3. faxgate to faxgate: ECM (Annex A) and MMR over the real modems, pixel-exact.
    let ecm = w.join("ecm");
    std::fs::create_dir(&ecm).unwrap();
    let mut receiver = common::faxgate(w)
        .arg("receive")
        .arg("--modem")
        .arg(&line.b)
        .arg("--out")
        .arg(&ecm)
        .arg("--profile")
        .arg(profile())
        .args(["--local-id", "+1 555 0002", "--wait", "90"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let t = Instant::now();
    let trace = w.join("send.trace");
    let mut files = fine_files.clone();
    files.insert(0, PathBuf::from("--trace"));
    files.insert(1, trace.clone());
    let out = faxgate_send(w, &line.a, &files);
    let sent_report = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "faxgate -> faxgate (ECM), {:.1} s:\n{sent_report}",
        t.elapsed().as_secs_f64()
    );
    let status = wait_child(&mut receiver, Duration::from_secs(30));
    let rx_out = receiver.wait_with_output().unwrap();
    let rx_report = String::from_utf8_lossy(&rx_out.stdout).into_owned();
    assert!(
        out.status.success() && status.is_some_and(|s| s.success()),
        "send: {sent_report}\n{}\nreceive: {rx_report}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&rx_out.stderr)
    );
    assert!(sent_report.contains("ecm: yes"), "{sent_report}");
    // The call's trace: AT traffic both ways and the decoded frames.
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(trace.contains("> ATDT5550002<CR>"), "{trace}");
    assert!(
        trace.contains("= frame ff 13 80"),
        "no DIS in the trace:\n{trace}"
    );
    let got = read_tiff(&ecm.join("fax.tif"));
    assert_eq!(got.len(), 2);
    for (i, (s, g)) in fine.iter().zip(&got).enumerate() {
        assert_eq!(g.height(), s.height());
        assert_same_page(s, g, 0, 0, &format!("faxgate→faxgate ECM page {}", i + 1));
    }
}
