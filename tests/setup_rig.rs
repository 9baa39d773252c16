//! `faxgate setup` scripted against the rig (issue 19): it probes soft modem A (iaxmodem) and
//! finds a fax modem, writes a config from the commented appliance config that `check-config`
//! passes, refuses to replace it without `--force`, and with that config `faxgate run` sends a
//! PDF mailed to it (swaks) through modem A to efax answering on modem B.
//!
//! Debian packages: iaxmodem, efax, iproute2, util-linux, coreutils, swaks, ghostscript,
//! python3-aiosmtpd. About a minute: a real call takes real time.

mod common;
mod onramp_common;
#[path = "rig/rig.rs"]
mod rig;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
fn setup_on_the_rig_writes_a_config_that_checks_and_sends_a_fax_to_efax() {
    let swaks = common::require_tool("swaks", "swaks");
    let efax = common::require_tool("efax", "efax");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let relay_out = w.join("relay");
    std::fs::create_dir(&relay_out).unwrap();
    let relay = onramp_common::Relay::start(onramp_common::free_port(), &relay_out, &[]);
    let smtp_port = onramp_common::free_port();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems");

    let setup = |admin: &str, extra: &[&str]| {
        common::faxgate(w)
            .args(["-c", "faxgate.toml", "setup", "--yes"])
            .args(["--mail-domain", "fax.site.test"])
            .args(["--relay", &format!("127.0.0.1:{}", relay.port)])
            .args(["--relay-security", "none"])
            .args(["--admin", admin])
            .args(["--hostname", "gw.site.test"])
            .arg("--device")
            .arg(&line.a)
            .args(["--profile", "iaxmodem", "--profiles-dir"])
            .arg(&profiles)
            .args(["--local-id", "+1 555 0001"])
            .args(["--listen", &format!("127.0.0.1:{smtp_port}")])
            .arg("--data-dir")
            .arg(w.join("data"))
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = setup("ops@example.org", &[]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "setup: {said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("fax modem:"),
        "the probe found no modem: {said}"
    );
    assert!(said.contains("next steps:"), "{said}");
    let cfg = std::fs::read_to_string(w.join("faxgate.toml")).unwrap();
    assert!(
        cfg.contains(&format!("device = \"{}\"", line.a.display())),
        "{cfg}"
    );
    assert!(
        cfg.contains("# Mail domains this gateway serves."),
        "comments kept"
    );
    let check = common::faxgate(w)
        .args(["check-config", "faxgate.toml"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check-config: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // A second, different run is refused without --force and leaves the file alone.
    let again = setup("other@example.org", &[]);
    let again_said = String::from_utf8_lossy(&again.stdout);
    assert!(!again.status.success(), "{again_said}");
    assert!(
        again_said.contains("admin = \"other@example.org\"") && again_said.contains("--force"),
        "the change is shown and refused: {again_said}"
    );
    assert_eq!(
        std::fs::read_to_string(w.join("faxgate.toml")).unwrap(),
        cfg
    );

    // `faxgate run` with that config sends a fax to efax on modem B.
    let log = w.join("faxgate.log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut gw = common::faxgate(w)
        .args(["-c", "faxgate.toml", "run"])
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !up {
        let _ = gw.kill();
        let _ = gw.wait();
        panic!("faxgate run did not come up: {}", log_of(&log));
    }
    let rx_dir = w.join("efax-rx");
    std::fs::create_dir(&rx_dir).unwrap();
    let efax_log = rx_dir.join("efax.log");
    let mut efax_rx = Command::new(&efax)
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
        .arg(rx_dir.join("fax"))
        .args(["-v", "ewinrt"])
        .stdout(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // efax's ATZ on the answering modem: iaxmodem refuses calls for 5 s.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let pdf = common::gs_pdf(
        w,
        "doc.pdf",
        "/Helvetica findfont 28 scalefont setfont 72 700 moveto (Setup rig test) show \
         72 300 200 120 rectfill showpage",
    );
    let sent = Command::new(&swaks)
        .args(["--server", &format!("127.0.0.1:{smtp_port}")])
        .args([
            "--from",
            "ops@example.org",
            "--to",
            "FAX=+12125550002@fax.site.test",
        ])
        .args(["--attach-type", "application/pdf", "--attach"])
        .arg(format!("@{}", pdf.display()))
        .output()
        .unwrap();
    let st = wait_child(&mut efax_rx, Duration::from_secs(120));
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&gw),
        rustix::process::Signal::TERM,
    );
    let stopped = wait_child(&mut gw, Duration::from_secs(30));
    assert!(
        sent.status.success(),
        "swaks: {}\nfaxgate: {}",
        String::from_utf8_lossy(&sent.stdout),
        log_of(&log)
    );
    assert!(
        st.is_some_and(|s| s.success()),
        "efax: {}\nfaxgate: {}",
        log_of(&efax_log),
        log_of(&log)
    );
    let got = std::fs::read(rx_dir.join("fax.001")).unwrap();
    let pages = faxgate::image::tiff::read_bytes(&got, Default::default()).unwrap();
    assert_eq!(pages.len(), 1, "efax received one page");
    assert!(stopped.is_some_and(|s| s.success()), "{}", log_of(&log));
}
