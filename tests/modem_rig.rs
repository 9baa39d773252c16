//! The Class 1 driver on a real (soft) phone line: two iaxmodem modems back to back
//! (`tests/rig/`). Probing both modems; dialling a modem that is busy, one that rejects the
//! call, and one that never answers ends with the right cause within the spec's timers,
//! nothing hangs, and both ports take the next command.
//!
//! Needs the Debian packages iaxmodem, iproute2, util-linux, coreutils; runs as root (iaxmodem
//! insists) or with user namespaces.

mod common;
#[path = "rig/rig.rs"]
mod rig;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faxgate::fax::modem::port::{Modem, ModemError};
use faxgate::fax::modem::{LineCause, Profile};

fn iaxmodem_profile() -> Profile {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml");
    Profile::load(&p).expect("iaxmodem profile")
}

fn probe_cli(dev: &Path) -> String {
    let profile: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems/iaxmodem.toml");
    let out = common::faxgate(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["modem", "probe"])
        .arg(dev)
        .arg("--profile")
        .arg(&profile)
        .output()
        .expect("run faxgate modem probe");
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn probe_busy_reject_no_answer_on_the_rig() {
    let line = rig::Rig::up();

    // Both modems probe as Class 1 with every V.27ter/V.29/V.17 speed.
    for dev in [&line.a, &line.b] {
        let text = probe_cli(dev);
        assert!(text.contains("identity: spandsp"), "{text}");
        assert!(text.contains("class1: yes"), "{text}");
        assert!(
            text.contains("transmit: 24,48,72,73,74,96,97,98,121,122,145,146"),
            "{text}"
        );
        assert!(text.contains("max-rate: 14400"), "{text}");
    }

    let mut a = Modem::open(&line.a, iaxmodem_profile()).unwrap();
    let mut b = Modem::open(&line.b, iaxmodem_profile()).unwrap();
    a.init().unwrap();
    b.init().unwrap();
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT);

    // 1. The far end is off hook: iaxmodem refuses the call, the caller's modem says
    //    NO DIALTONE (this rig's form of "line busy"); at once, not after a timer.
    b.command("ATH1").unwrap();
    let t = Instant::now();
    match a.dial("5550002") {
        Err(ModemError::Call(LineCause::NoDialtone)) => {}
        other => panic!("off-hook far end: {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    b.command("ATH0").unwrap();
    a.command("AT").unwrap();
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT);

    // 2. The far end rings and rejects the call: BUSY. The ringing side saw caller ID and
    //    the dialled number (for routing).
    b.clear_call();
    let caller = std::thread::spawn(move || {
        let t = Instant::now();
        let r = a.dial("5550002");
        (a, r, t.elapsed())
    });
    b.wait_for_rings(1, Duration::from_secs(20)).unwrap();
    assert_eq!(
        b.caller().number.as_deref(),
        Some("1001"),
        "{:?}",
        b.caller()
    );
    assert_eq!(b.caller().did.as_deref(), Some("5550002"));
    b.hangup().unwrap();
    let (mut a, r, took) = caller.join().unwrap();
    match r {
        Err(ModemError::Call(LineCause::Busy)) => {}
        other => panic!("rejected call: {other:?}\n{}", a.trace.to_text()),
    }
    assert!(took < Duration::from_secs(20), "{took:?}");
    a.command("AT").unwrap();
    b.command("AT").unwrap();
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT);

    // 3. Our own dial timer ends a call nobody answers: the dial is aborted with a
    //    character, the modem returns to command state, the port takes the next command.
    let mut short = iaxmodem_profile();
    short.dial_timeout_s = 6;
    drop(a);
    let mut a = Modem::open(&line.a, short).unwrap();
    a.init().unwrap();
    let t = Instant::now();
    match a.dial("5550002") {
        Err(ModemError::Call(LineCause::Timeout)) => {}
        other => panic!("dial timer: {other:?}\n{}", a.trace.to_text()),
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(6) + Duration::from_secs(4),
        "{took:?}"
    );
    a.command("AT").unwrap();
    drop(a);

    // 4. Nobody answers: the modem gives up with NO ANSWER before T.30's T0 (60 ± 5 s)
    //    — the dial timer (60 s) is the backstop, not reached.
    let mut a = Modem::open(&line.a, iaxmodem_profile()).unwrap();
    a.init().unwrap();
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT);
    b.clear_call();
    let t = Instant::now();
    match a.dial("5550002") {
        Err(ModemError::Call(LineCause::NoAnswer)) => {}
        other => panic!("unanswered call: {other:?}\n{}", a.trace.to_text()),
    }
    let took = t.elapsed();
    assert!(took < Duration::from_secs(55), "{took:?}");
    eprintln!("NO ANSWER after {took:?}");
    b.wait_for_rings(1, Duration::from_millis(200)).unwrap();
    a.command("AT").unwrap();
    b.command("AT").unwrap();
}
