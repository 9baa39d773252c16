//! `faxgate modem emulate` against independent Class 2.0 software, on the rig: mgetty's
//! `sendfax` (Debian `mgetty-fax`) sends two fine pages (G3 files made by mgetty's `pbm2g3`)
//! through the emulated Class 2.0 modem; the emulator carries the call out through the Class 1
//! soft modem A; `efax` answers on soft modem B and must receive exactly the pages sent.
//!
//! Needs the Debian packages mgetty-fax, iaxmodem, efax, iproute2, util-linux. sendfax only
//! takes devices under /dev, so the pty is linked at /dev/ttyFGemu<pid> (the rig runs as root).

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
    let efax = common::require_tool("efax", "efax");
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
    let efax_log = rx.join("efax.log");
    let mut efax_rx = Command::new(efax)
        .arg("-d")
        .arg(&line.b)
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
        .arg(rx.join("fax"))
        .args(["-v", "ewinrt"])
        .stdout(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
        .spawn()
        .unwrap();

    // The emulator on A.
    let tty = format!("ttyFGemu{}", std::process::id());
    let dev = Path::new("/dev").join(&tty);
    let emu_log = w.join("emulate.log");
    let mut emu = common::faxgate(w)
        .args(["modem", "emulate", "--class", "2.0", "--line"])
        .arg(&line.a)
        .arg("--pty")
        .arg(&dev)
        .arg("--profile")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml"))
        .stdout(Stdio::from(std::fs::File::create(&emu_log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&emu_log).unwrap()))
        .spawn()
        .unwrap();
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
