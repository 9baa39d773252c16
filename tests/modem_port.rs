//! The serial port shell on a pty (no modem control lines, like the rig): a scripted fake modem
//! on the master side; the device vanishing mid-use and coming back under the same path.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use faxgate::fax::modem::Profile;
use faxgate::fax::modem::port::{Modem, ModemError, PortError};
use serialport::{SerialPort, TTYPort};

/// A fake Class 1 modem answering on the master side of a pty until `stop` or the slave
/// side's end. It replies to each CR-terminated command; `RING` is sent when it sees `ATS0=0`
/// so tests can check unsolicited results interleaving with commands.
fn fake_modem(mut master: TTYPort, stop: Arc<AtomicBool>) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        master.set_timeout(Duration::from_millis(20)).unwrap();
        let mut seen = Vec::new();
        let mut line = Vec::new();
        let mut buf = [0u8; 256];
        while !stop.load(Ordering::Relaxed) {
            let n = match master.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                // EIO while no one has the slave open (before the test opens it): keep waiting.
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            for &b in &buf[..n] {
                if b != b'\r' {
                    line.push(b);
                    continue;
                }
                let cmd = String::from_utf8_lossy(&line).trim().to_string();
                line.clear();
                if cmd.is_empty() {
                    continue;
                }
                let reply: &[u8] = match cmd.as_str() {
                    "ATI" => b"\r\nfakemodem 1.0\r\n\r\nOK\r\n",
                    "AT+FCLASS=?" => b"\r\n0,1,2.0\r\n\r\nOK\r\n",
                    "AT+FTM=?" => b"\r\n24,48,72,96\r\n\r\nOK\r\n",
                    // This modem receives less than it sends.
                    "AT+FRM=?" => b"\r\n24,48\r\n\r\nOK\r\n",
                    "AT+FTH=?" => b"\r\n3\r\n\r\nOK\r\n",
                    "AT+VCID=1" => b"\r\nERROR\r\n",
                    "ATS0=0" => b"\r\nRING\r\n\r\nOK\r\n",
                    _ => b"\r\nOK\r\n",
                };
                seen.push(cmd);
                if master.write_all(reply).is_err() {
                    return seen;
                }
            }
        }
        seen
    })
}

fn profile() -> Profile {
    Profile::from_toml_chain(&[(
        "test",
        "init = [\"ATZ\", \"ATE0V1Q0\", \"ATS0=0\"]\ncaller_id = \"AT+VCID=1\"\nflow_control = \"none\"\n",
    )])
    .unwrap()
}

/// A pty pair whose slave is reachable at `link` (a symlink, like a udev name).
fn pty_at(link: &Path) -> TTYPort {
    let (master, slave) = TTYPort::pair().expect("pty pair");
    let name = slave.name().expect("slave name");
    drop(slave);
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(name, link).unwrap();
    master
}

#[test]
fn probe_on_a_pty_and_survive_the_device_vanishing() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("faxmodem0");
    let stop = Arc::new(AtomicBool::new(false));
    let fake = fake_modem(pty_at(&link), stop.clone());

    let mut m = Modem::open(&link, profile()).unwrap();
    // Init tolerates ERROR to the caller-ID command; the RING that arrives mid-init is counted.
    m.init().unwrap();
    assert_eq!(m.rings(), 1);
    let info = m.probe().unwrap();
    assert_eq!(info.identity, "fakemodem 1.0");
    assert!(info.class1());
    assert_eq!(info.max_rate(), 4800, "{info:?}");
    assert!(!info.v17());

    // The device goes away (USB unplug): the master side closes.
    stop.store(true, Ordering::Relaxed);
    let seen = fake.join().unwrap();
    assert!(seen.iter().any(|c| c == "AT+FCLASS=1"), "{seen:?}");
    match m.command("AT") {
        Err(ModemError::Port(PortError::Gone { .. })) => {}
        other => panic!("expected the port to be gone, got {other:?}"),
    }
    assert!(!m.port().is_open());

    // It is not back yet: reopening fails after its bounded attempts.
    std::fs::remove_file(&link).unwrap();
    assert!(matches!(
        m.recover(2),
        Err(ModemError::Port(PortError::Open { .. }))
    ));

    // It comes back under the same name: recover reopens and re-initialises.
    let stop2 = Arc::new(AtomicBool::new(false));
    let fake2 = fake_modem(pty_at(&link), stop2.clone());
    m.recover(5).unwrap();
    assert!(m.command("AT").is_ok());
    stop2.store(true, Ordering::Relaxed);
    let seen2 = fake2.join().unwrap();
    assert_eq!(seen2.first().map(String::as_str), Some("ATZ"), "{seen2:?}");
    // The trace recorded both directions.
    let text = m.trace.to_text();
    assert!(text.contains("> AT<CR>"), "{text}");
    assert!(text.contains("< <CR><LF>OK<CR><LF>"), "{text}");
}

#[test]
fn missing_device_is_an_open_error() {
    let e = Modem::open(Path::new("/nonexistent/faxmodem9"), profile()).unwrap_err();
    assert!(matches!(e, ModemError::Port(PortError::Open { .. })), "{e}");
}
