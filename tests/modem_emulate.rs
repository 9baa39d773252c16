//! `faxgate modem emulate` against independent Class 2.0 software, on the rig: mgetty's
//! `sendfax` (Debian `mgetty-fax`) sends two fine pages (G3 files made by mgetty's `pbm2g3`)
//! through the emulated Class 2.0 modem; the emulator carries the call out through the Class 1
//! soft modem A; `efax` answers on soft modem B and must receive exactly the pages sent.
//!
//! Receiving, the other way round: `efax` sends two fine pages from soft modem B; the emulator
//! answers on A and hands the pages to `faxgate receive` driving the emulated modem with the
//! Class 2.0 profile (`firmware-config/modems/generic-class2.0.toml`): this proves the
//! emulator's receive half and faxgate's Class 2.0 driver together. Then the same under T.30
//! Annex A: faxgate sends from B with ECM and MMR, and the pages must arrive pixel for pixel.
//! And to independent receiving software: HylaFAX's `faxgetty` (Debian `hylafax-server`) on the
//! emulated modem answers efax's call and must file exactly the pages sent.
//!
//! Needs the Debian packages mgetty-fax, iaxmodem, efax, iproute2, util-linux, and
//! hylafax-server unpacked beside mgetty-fax (tests/run.sh; see tests/faxgetty/mod.rs).
//! sendfax and faxgetty only take devices under /dev, so the pty is linked at
//! /dev/ttyFGemu<pid> / /dev/ttyFGhfx<pid> (the rig runs as root).

mod common;
#[path = "rig/rig.rs"]
mod rig;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faxgate::image::{Page, Resolution};

const FINE_ROWS: u32 = 2156;

/// A light test page: a frame, `n` bars and a diagonal.
fn test_page(n: u32) -> Page {
    let rows = FINE_ROWS;
    let mut p = Page::new(1728, rows, Resolution::FINE).unwrap();
    let mut rect = |x0: u32, y0: u32, x1: u32, y1: u32| {
        for y in y0..y1 {
            for x in x0..x1 {
                p.set(x, y, true);
            }
        }
    };
    rect(100, 100, 1628, 106);
    rect(100, rows - 106, 1628, rows - 100);
    rect(100, 100, 106, rows - 100);
    rect(1622, 100, 1628, rows - 100);
    for i in 0..n {
        rect(200 + i * 60, 200, 230 + i * 60, 400);
    }
    for y in 106..rows - 106 {
        let x = 106 + (y - 106) * 1500 / (rows - 212);
        p.set(x, y, true);
    }
    p
}

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

fn log_of(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn sendfax_through_the_emulator_to_efax() {
    let sendfax = common::require_tool("sendfax", "mgetty-fax");
    let pbm2g3 = common::require_tool("pbm2g3", "mgetty-fax");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pages: Vec<Page> = (1..=2).map(test_page).collect();
    let mut g3 = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        let mut pbm = format!("P4\n{} {}\n", p.width(), p.height()).into_bytes();
        for y in 0..p.height() {
            pbm.extend_from_slice(p.row(y));
        }
        let pbm_path = w.join(format!("p{i}.pbm"));
        std::fs::write(&pbm_path, pbm).unwrap();
        let out = Command::new(&pbm2g3).arg(&pbm_path).output().unwrap();
        assert!(out.status.success(), "pbm2g3: {out:?}");
        let f = w.join(format!("p{i}.g3"));
        std::fs::write(&f, out.stdout).unwrap();
        g3.push(f);
    }

    // efax answers on B.
    let rx = w.join("rx");
    std::fs::create_dir(&rx).unwrap();
    let mut efax_rx = efax_answer(&line.b, &rx);
    let efax_log = rx.join("efax.log");

    // The emulator on A.
    let tty = format!("ttyFGemu{}", std::process::id());
    let dev = Path::new("/dev").join(&tty);
    let emu_log = w.join("emulate.log");
    let mut emu = emulator(w, &line.a, &dev, &emu_log);
    // efax's ATZ on B refuses calls for a while; the link appears meanwhile.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    assert!(dev.exists(), "emulator pty: {}", log_of(&emu_log));

    let t = Instant::now();
    let mut sf = Command::new(sendfax)
        .args(["-v", "-x", "5", "-l"])
        .arg(&tty)
        .arg("5550002")
        .args(&g3)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sf_status = wait_child(&mut sf, Duration::from_secs(150));
    let sf_out = sf.wait_with_output().unwrap();
    let efax_status = wait_child(&mut efax_rx, Duration::from_secs(20));
    let _ = emu.kill();
    let _ = emu.wait();
    let _ = std::fs::remove_file(&dev);
    eprintln!(
        "sendfax -> emulator -> efax: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let logs = format!(
        "sendfax: {}{}\nemulator: {}\nefax: {}",
        String::from_utf8_lossy(&sf_out.stdout),
        String::from_utf8_lossy(&sf_out.stderr),
        log_of(&emu_log),
        log_of(&efax_log)
    );
    assert!(
        sf_status.is_some_and(|s| s.success()),
        "sendfax failed\n{logs}"
    );
    assert!(
        efax_status.is_some_and(|s| s.success()),
        "efax failed\n{logs}"
    );
    for (i, sent) in pages.iter().enumerate() {
        let f = rx.join(format!("fax.{:03}", i + 1));
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}\n{logs}", f.display()));
        let got = faxgate::image::tiff::read_bytes(&bytes, Default::default()).unwrap();
        assert_eq!(got.len(), 1, "page {}", i + 1);
        let g = &got[0];
        assert_eq!(
            (g.width(), g.height()),
            (sent.width(), sent.height()),
            "page {}",
            i + 1
        );
        for y in 0..sent.height() {
            assert_eq!(sent.row(y), g.row(y), "page {} row {y}\n{logs}", i + 1);
        }
    }
    assert!(!rx.join("fax.003").exists(), "exactly two pages");
}

/// Pages as TIFF G3 files made by efix (the efax package's converter), one file per page.
fn efix_pages(dir: &Path, pages: &[Page]) -> Vec<std::path::PathBuf> {
    let efix = common::require_tool("efix", "efax");
    let mut pbms = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        let mut pbm = format!("P4\n{} {}\n", p.width(), p.height()).into_bytes();
        for y in 0..p.height() {
            pbm.extend_from_slice(p.row(y));
        }
        let f = dir.join(format!("efax{i}.pbm"));
        std::fs::write(&f, pbm).unwrap();
        pbms.push(f);
    }
    let out = Command::new(efix)
        .args([
            "-i", "pbm", "-o", "tiffg3", "-R", "204x196", "-r", "204x196", "-n",
        ])
        .arg(dir.join("efax.%03d"))
        .args(&pbms)
        .output()
        .unwrap();
    assert!(out.status.success(), "efix: {out:?}");
    (1..=pages.len())
        .map(|i| dir.join(format!("efax.{i:03}")))
        .collect()
}

/// `got` is `sent` exactly, below the blank band efax puts on top of each page it sends (its
/// header, set to a blank line here): some `band` rows, all white, then every row of `sent`,
/// then nothing but white.
fn assert_exact_below_band(sent: &Page, got: &Page, what: &str) {
    assert_eq!(got.width(), sent.width(), "{what}: width");
    let white = |p: &Page, y: u32| p.row(y).iter().all(|b| *b == 0);
    let band = (0..got.height().min(80))
        .find(|&s| {
            s + sent.height() <= got.height()
                && (0..sent.height()).all(|y| sent.row(y) == got.row(y + s))
        })
        .unwrap_or_else(|| {
            panic!(
                "{what}: the sent page is not in the received one at any shift up to 80 rows \
                 (sent {}x{}, got {}x{})",
                sent.width(),
                sent.height(),
                got.width(),
                got.height()
            )
        });
    assert!(
        (0..band).all(|y| white(got, y)),
        "{what}: the {band}-row top band is blank"
    );
    assert!(
        (band + sent.height()..got.height()).all(|y| white(got, y)),
        "{what}: nothing below the page"
    );
}

#[test]
fn efax_through_the_emulator_to_faxgate_receive_class2() {
    let efax = common::require_tool("efax", "efax");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pages: Vec<Page> = (1..=2).map(test_page).collect();
    let files = efix_pages(w, &pages);

    // The emulator on A: it answers when faxgate (its host) says ATA.
    let pty = w.join("ttyFGrcv");
    let emu_log = w.join("emulate.log");
    let mut emu = start_emulator(w, &line.a, &pty, &emu_log);

    // faxgate receive drives the emulated modem as Class 2.0.
    let rx = w.join("rx");
    let rx_log = w.join("receive.log");
    let trace = w.join("receive.trace");
    let mut receiver = class2_receiver(w, &pty, &rx, &rx_log, Some(&trace));
    // The emulator's ATZ on A refuses calls for a while.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));

    let t = Instant::now();
    let efax_log = w.join("efax.log");
    let mut sender = Command::new(efax)
        .arg("-d")
        .arg(&line.b)
        .args(["-o1", "-iZ", "-kZ", "-l", "+1 555 0002", "-h", " "])
        .args(["-v", "ewinrt", "-t", "5550001"])
        .args(&files)
        .stdout(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
        .spawn()
        .unwrap();
    let efax_status = wait_child(&mut sender, Duration::from_secs(150));
    let rx_status = wait_child(&mut receiver, Duration::from_secs(30));
    let _ = emu.kill();
    let _ = emu.wait();
    eprintln!(
        "efax -> emulator -> faxgate receive (Class 2.0): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let logs = format!(
        "efax: {}\nemulator: {}\nfaxgate receive: {}{}\ntrace: {}",
        log_of(&efax_log),
        log_of(&emu_log),
        log_of(&rx_log),
        log_of(&w.join("receive.err")),
        log_of(&trace).chars().take(6000).collect::<String>()
    );
    assert!(
        efax_status.is_some_and(|s| s.success()),
        "efax failed\n{logs}"
    );
    assert!(
        rx_status.is_some_and(|s| s.success()),
        "faxgate receive failed\n{logs}"
    );
    let report = log_of(&rx_log);
    assert!(
        report.contains("remote-id: +1 555 0002"),
        "the caller's TSI came through +FTI\n{logs}"
    );
    let bytes =
        std::fs::read(rx.join("fax.tif")).unwrap_or_else(|e| panic!("fax.tif: {e}\n{logs}"));
    let got = faxgate::image::tiff::read_bytes(&bytes, Default::default()).unwrap();
    assert_eq!(got.len(), 2, "exactly two pages\n{logs}");
    for (i, (s, g)) in pages.iter().zip(&got).enumerate() {
        assert!(
            g.resolution().y_dpi > 150.0,
            "page {}: fine resolution kept",
            i + 1
        );
        assert_exact_below_band(s, g, &format!("page {}", i + 1));
    }
}

/// `faxgate receive` driving the emulated modem at `pty` with the Class 2.0 profile, writing
/// into `rx`; stdout to `log`, stderr to `w/receive.err`, its AT trace to `trace` if given.
fn class2_receiver(w: &Path, pty: &Path, rx: &Path, log: &Path, trace: Option<&Path>) -> Child {
    let mut c = common::faxgate(w);
    c.args(["receive", "--modem"])
        .arg(pty)
        .arg("--out")
        .arg(rx)
        .arg("--profile")
        .arg(class2_profile())
        .args(["--local-id", "+1 555 0001", "--wait", "120"]);
    if let Some(t) = trace {
        c.arg("--trace").arg(t);
    }
    c.stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(w.join("receive.err")).unwrap(),
        ))
        .spawn()
        .unwrap()
}

/// The emulator on `line` at `pty`, logging to `log`.
fn start_emulator(w: &Path, line: &Path, pty: &Path, log: &Path) -> Child {
    let emu = emulator(w, line, pty, log);
    assert!(
        wait_link(pty, Duration::from_secs(10)),
        "emulator pty: {}",
        log_of(log)
    );
    emu
}

/// Under T.30 Annex A the emulator hands the host each page as its ECM blocks complete and
/// holds the MCF to the last PPS for the host's `+FDR`: faxgate (Class 1, ECM and MMR) sends
/// two fine pages from B; faxgate receive (Class 2.0) on the emulator must get them exactly.
#[test]
fn ecm_mmr_through_the_emulator_to_faxgate_receive_class2() {
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pages: Vec<Page> = (1..=2).map(test_page).collect();
    let files = efix_pages(w, &pages);
    let pty = w.join("ttyFGecm");
    let emu_log = w.join("emulate.log");
    let mut emu = start_emulator(w, &line.a, &pty, &emu_log);
    let rx = w.join("rx");
    let rx_log = w.join("receive.log");
    let mut receiver = class2_receiver(w, &pty, &rx, &rx_log, None);
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let sent = common::faxgate(w)
        .arg("send")
        .arg("--modem")
        .arg(&line.b)
        .arg("--profile")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml"))
        .args(["--local-id", "+1 555 0002", "5550001"])
        .args(&files)
        .output()
        .unwrap();
    let rx_status = wait_child(&mut receiver, Duration::from_secs(30));
    let _ = emu.kill();
    let _ = emu.wait();
    let logs = format!(
        "faxgate send: {}{}\nemulator: {}\nfaxgate receive: {}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr),
        log_of(&emu_log),
        log_of(&rx_log),
        log_of(&w.join("receive.err"))
    );
    assert!(sent.status.success(), "faxgate send failed\n{logs}");
    assert!(
        rx_status.is_some_and(|s| s.success()),
        "faxgate receive failed\n{logs}"
    );
    let report = log_of(&rx_log);
    assert!(report.contains("ecm: yes"), "ECM was used\n{logs}");
    let bytes =
        std::fs::read(rx.join("fax.tif")).unwrap_or_else(|e| panic!("fax.tif: {e}\n{logs}"));
    let got = faxgate::image::tiff::read_bytes(&bytes, Default::default()).unwrap();
    assert_eq!(got.len(), 2, "exactly two pages\n{logs}");
    for (i, (s, g)) in pages.iter().zip(&got).enumerate() {
        assert_eq!(
            s,
            g,
            "page {} is what was sent, pixel for pixel\n{logs}",
            i + 1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// HylaFAX faxgetty on the emulator (issue 20: "efax sends to a HylaFAX faxgetty configured for
// Class 2.0 on the emulator, and HylaFAX receives the exact pages"). faxgetty (Debian
// `hylafax-server`) runs on a private spool (tests/faxgetty/mod.rs); it, too, only takes devices
// under /dev, so the pty is linked at /dev/ttyFGhfx<pid>.
// ---------------------------------------------------------------------------------------------

#[path = "faxgetty/mod.rs"]
mod faxgetty;

/// Wait (bounded) for the emulator's pty link to appear.
fn wait_link(dev: &Path, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if dev.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// efax (line B) sends two fine pages; the emulator on line A reports RING to faxgetty, which
/// answers (ATA), receives with +FDR/<DC2> and writes the fax into its spool's recvq: two pages,
/// each exactly the page sent below the blank band efax puts on top of every page it sends
/// (efax(1), HEADERS: the header is set to a blank line). On the way, faxgetty's whole Class 2.0
/// set-up of the modem (reset, +FCLASS=?, identity and capability queries, +FCC, +FLI, +FCR …)
/// must bring it to "Running and idle".
#[test]
fn efax_sends_to_hylafax_faxgetty_on_the_emulator() {
    faxgetty::faxgetty_bin();
    let efax = common::require_tool("efax", "efax");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pages: Vec<Page> = (1..=2).map(test_page).collect();
    let files = efix_pages(w, &pages);

    let devid = format!("ttyFGhfx{}", std::process::id());
    let dev = Path::new("/dev").join(&devid);
    let emu_log = w.join("emulate.log");
    let mut emu = emulator(w, &line.a, &dev, &emu_log);
    let linked = wait_link(&dev, Duration::from_secs(20));
    let mut fg = linked.then(|| faxgetty::Faxgetty::start(w, &devid, "+1 555 0001"));
    let ready = fg
        .as_mut()
        .is_some_and(|f| f.wait_status("Running and idle", Duration::from_secs(60)));
    let t = Instant::now();
    let mut sent = None;
    let mut received = Vec::new();
    let efax_log = w.join("efax-send.log");
    if ready && let Some(f) = fg.as_mut() {
        // A modem reset on A (the emulator's or faxgetty's) refuses calls for a while.
        std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
        let mut tx = Command::new(&efax)
            .arg("-d")
            .arg(&line.b)
            .args([
                "-o1",
                "-iZ",
                "-kZ",
                "-l",
                "+1 555 0002",
                // efax always adds a header band (20 rows at fine resolution) on top of each
                // page; a blank header keeps it white, so the whole page is known.
                "-h",
                " ",
                "-v",
                "ewinrt",
                "-t",
                "5550001",
            ])
            .args(&files)
            .stdout(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
            .spawn()
            .unwrap();
        sent = wait_child(&mut tx, Duration::from_secs(150));
        // faxgetty files the fax and goes back to waiting for calls.
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            received = f.received();
            if !received.is_empty() && f.status() == "Running and idle" {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    eprintln!(
        "efax -> emulator -> faxgetty: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let fg_logs = fg.as_ref().map(|f| f.logs()).unwrap_or_default();
    drop(fg);
    let _ = emu.kill();
    let _ = emu.wait();
    let _ = std::fs::remove_file(&dev);
    let logs = format!(
        "efax: {}\nemulator: {}\n{fg_logs}",
        log_of(&efax_log),
        log_of(&emu_log)
    );
    assert!(linked, "emulator pty: {}", log_of(&emu_log));
    assert!(ready, "faxgetty did not get the modem ready\n{logs}");
    assert!(sent.is_some_and(|s| s.success()), "efax failed\n{logs}");
    assert_eq!(received.len(), 1, "one fax in recvq\n{logs}");
    // The caller's TSI reached HylaFAX through the emulator's +FTI (its session log).
    assert!(
        fg_logs.contains("REMOTE TSI \"+1 555 0002\""),
        "efax's TSI in faxgetty's session log\n{logs}"
    );
    let bytes = std::fs::read(&received[0]).unwrap();
    let got = faxgate::image::tiff::read_bytes(&bytes, Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}\n{logs}", received[0].display()));
    assert_eq!(got.len(), 2, "two pages\n{logs}");
    for (i, (s, g)) in pages.iter().zip(&got).enumerate() {
        assert!(
            g.resolution().y_dpi > 150.0,
            "page {}: fine resolution kept",
            i + 1
        );
        assert_exact_below_band(s, g, &format!("HylaFAX page {}", i + 1));
    }
}

// ---------------------------------------------------------------------------------------------
// faxgate's own Class 2.0 driver against the emulator (helper `send2`): `faxgate send` and
// `faxgate run` with a Class 2.0 profile on the emulator's pty → Class 1 modem A → rig →
// efax on modem B. Debian packages: iaxmodem, efax, iproute2, util-linux, python3-aiosmtpd.
// ---------------------------------------------------------------------------------------------

/// efax answering on the rig's modem B, writing `dir/fax.001`, … (its log in `dir/efax.log`).
fn efax_answer(b: &Path, dir: &Path) -> Child {
    let efax = common::require_tool("efax", "efax");
    let log = dir.join("efax.log");
    Command::new(efax)
        .arg("-d")
        .arg(b)
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
        .arg(dir.join("fax"))
        .args(["-v", "ewinrt"])
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap()
}

/// `faxgate modem emulate --class 2.0` on modem A, its pty linked at `pty`.
fn emulator(w: &Path, a: &Path, pty: &Path, log: &Path) -> Child {
    common::faxgate(w)
        .args(["modem", "emulate", "--class", "2.0", "--line"])
        .arg(a)
        .arg("--pty")
        .arg(pty)
        .arg("--profile")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml"))
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap()
}

/// The shipped profile for any Class 2.0 modem.
fn class2_profile() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/generic-class2.0.toml")
}

/// `pages` as a TIFF-F file (RFC 3949 §4 Profile F, MR coded).
fn tiff_f(path: &Path, pages: &[Page]) {
    use faxgate::image::tiff::{Profile as TiffProfile, Writer};
    let mut w = Writer::new(
        std::fs::File::create(path).unwrap(),
        TiffProfile::F(faxgate::image::codec::Coding::Mr { k: 4 }),
    )
    .unwrap();
    for p in pages {
        w.write_page(p).unwrap();
    }
    w.finish().unwrap();
}

/// efax's received files `dir/fax.001`, … must be exactly `sent`, one page each, no more.
fn assert_efax_pages(dir: &Path, sent: &[Page], logs: &str) {
    for (i, sent) in sent.iter().enumerate() {
        let f = dir.join(format!("fax.{:03}", i + 1));
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}\n{logs}", f.display()));
        let got = faxgate::image::tiff::read_bytes(&bytes, Default::default()).unwrap();
        assert_eq!(got.len(), 1, "page {}", i + 1);
        let g = &got[0];
        assert_eq!(
            (g.width(), g.height()),
            (sent.width(), sent.height()),
            "page {}\n{logs}",
            i + 1
        );
        for y in 0..sent.height() {
            assert_eq!(sent.row(y), g.row(y), "page {} row {y}\n{logs}", i + 1);
        }
    }
    let extra = dir.join(format!("fax.{:03}", sent.len() + 1));
    assert!(!extra.exists(), "exactly {} pages\n{logs}", sent.len());
}

#[test]
fn faxgate_send_class2_through_the_emulator_to_efax() {
    common::require_tool("efax", "efax");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pages: Vec<Page> = (3..=4).map(test_page).collect();
    let doc = w.join("two.tif");
    tiff_f(&doc, &pages);

    let rx = w.join("rx");
    std::fs::create_dir(&rx).unwrap();
    let mut efax_rx = efax_answer(&line.b, &rx);
    let pty = w.join("class2modem");
    let emu_log = w.join("emulate.log");
    let mut emu = emulator(w, &line.a, &pty, &emu_log);
    // efax's ATZ on B refuses calls for a while; the link appears meanwhile.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    assert!(pty.exists(), "emulator pty: {}", log_of(&emu_log));

    let t = Instant::now();
    let trace = w.join("send.trace");
    let out = common::faxgate(w)
        .args(["send", "--modem"])
        .arg(&pty)
        .arg("--profile")
        .arg(class2_profile())
        .arg("--trace")
        .arg(&trace)
        .args(["--local-id", "+1 555 0001", "5550002"])
        .arg(&doc)
        .output()
        .unwrap();
    let efax_status = wait_child(&mut efax_rx, Duration::from_secs(30));
    let _ = emu.kill();
    let _ = emu.wait();
    eprintln!(
        "faxgate send (Class 2.0) -> emulator -> efax: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let logs = format!(
        "faxgate send: {text}\ntrace: {}\nemulator: {}\nefax: {}",
        log_of(&trace),
        log_of(&emu_log),
        log_of(&rx.join("efax.log"))
    );
    assert!(out.status.success(), "faxgate send failed\n{logs}");
    eprintln!("{text}");
    // The report is the Class 2.0 modem's view of the call: efax's CSI, both pages confirmed.
    assert!(
        text.contains("cause: all pages transferred and confirmed (0)"),
        "{logs}"
    );
    assert!(text.contains("pages: 2\n"), "{logs}");
    assert!(text.contains("pages-offered: 2"), "{logs}");
    assert!(text.contains("remote-id: +1 555 0002"), "{logs}");
    assert!(!text.contains("modulation: -"), "{logs}");
    assert!(
        efax_status.is_some_and(|s| s.success()),
        "efax failed\n{logs}"
    );
    assert_efax_pages(&rx, &pages, &logs);
}

mod onramp_common;

#[test]
fn faxgate_run_with_a_class2_line_sends_an_email_as_a_fax() {
    let swaks = common::require_tool("swaks", "swaks");
    common::require_tool("efax", "efax");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // A TIFF-F attachment of two known pages; no header line, so the pages go out as they are.
    let pages: Vec<Page> = (5..=6).map(test_page).collect();
    let doc = w.join("order.tif");
    tiff_f(&doc, &pages);
    let mut offramp = faxgate::config::Config::default().offramp;
    offramp.header = String::new();
    let want = faxgate::image::render::render_part(
        "order.tif",
        &std::fs::read(&doc).unwrap(),
        faxgate::image::render::Kind::Tiff,
        &faxgate::image::render::Options::from_config(&offramp),
        &mut faxgate::image::render::Unlimited,
    )
    .unwrap()
    .pages;
    assert_eq!(want, pages, "a fine A4 TIFF page is faxed as it is");

    let relay_out = w.join("relay");
    std::fs::create_dir(&relay_out).unwrap();
    let relay = onramp_common::Relay::start(onramp_common::free_port(), &relay_out, &[]);
    let rx = w.join("rx");
    std::fs::create_dir(&rx).unwrap();
    let mut efax_rx = efax_answer(&line.b, &rx);
    let pty = w.join("class2modem");
    let emu_log = w.join("emulate.log");
    let mut emu = emulator(w, &line.a, &pty, &emu_log);
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    assert!(pty.exists(), "emulator pty: {}", log_of(&emu_log));

    // One Class 2.0 line (the shipped generic profile) on the emulator's pty; the embedded
    // default for everything else (./faxgate.toml is merged over it). The emulator speaks
    // only Class 2.0 (`+FCLASS=1` is an error there): a fax that arrives went through the
    // Class 2.0 driver.
    let dir = w.join("gw");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("faxgate.toml"),
        format!(
            "[relay]\nmode = \"smtp\"\nhost = \"127.0.0.1\"\nport = {relay}\nsecurity = \"none\"\n\
             [loopback]\nenabled = false\n\
             [offramp]\nnotify_success_by_default = true\nheader = \"\"\n\
             [[modem]]\nname = \"c2\"\ndevice = \"{dev}\"\nprofile = \"generic-class2.0\"\n\
             profiles_dir = \"{profiles}\"\nclass = \"2.0\"\nlocal_id = \"+1 555 0001\"\n\
             role = \"send\"\n",
            relay = relay.port,
            dev = pty.display(),
            profiles = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("firmware-config/modems")
                .display(),
        ),
    )
    .unwrap();
    let mut gw = common::daemon::Daemon::new(&dir);
    gw.start(&[]);
    let t = Instant::now();
    let out = Command::new(&swaks)
        .args(["--server", &format!("127.0.0.1:{}", gw.port)])
        .args([
            "--from",
            "you@example.org",
            "--to",
            "FAX=+12125550002@localhost",
        ])
        .args(["--attach-type", "image/tiff", "--attach"])
        .arg(format!("@{}", doc.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let efax_status = wait_child(&mut efax_rx, Duration::from_secs(150));
    // The success report (RFC 3464 DSN) reaches the sender through the relay.
    let mut report = None;
    for _ in 0..300 {
        report = relay.messages().into_iter().find(|(env, eml)| {
            env.to_string().contains("you@example.org")
                && String::from_utf8_lossy(eml).contains("Action: delivered")
        });
        if report.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "email -> faxgate run (Class 2.0) -> emulator -> efax: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let stopped = gw.signal(libc::SIGTERM);
    let _ = emu.kill();
    let _ = emu.wait();
    let logs = format!(
        "faxgate run: {}\nemulator: {}\nefax: {}",
        gw.log(),
        log_of(&emu_log),
        log_of(&rx.join("efax.log"))
    );
    assert!(
        efax_status.is_some_and(|s| s.success()),
        "efax failed\n{logs}"
    );
    assert_efax_pages(&rx, &want, &logs);
    assert!(stopped.success(), "faxgate run stops cleanly\n{logs}");
    let (_, dsn) = report.unwrap_or_else(|| panic!("no success report at the relay\n{logs}"));
    let dsn = String::from_utf8_lossy(&dsn);
    assert!(dsn.contains("Status: 2."), "{dsn}");
}
