//! The foundation's acceptance checks, run against the built binary: `check-config` on the
//! appliance config and on broken files, environment overrides, secret redaction, the systemd unit
//! (`systemd-analyze verify`), and systemd notification from `faxgate run`.

mod common;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{faxgate, require_tool};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    p
}

#[test]
fn appliance_config_is_valid() {
    // As shipped it names the site's secrets and certificate, which a fresh box lacks: the
    // check says so (so the package does not start a daemon that cannot), key by key.
    let out = faxgate(&repo())
        .args(["check-config", "firmware-config/faxgate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "smtp.users_file: /etc/faxgate/users:",
        "smtp.tls_cert: /etc/faxgate/tls/cert.pem:",
        "smtp.tls_key: /etc/faxgate/tls/key.pem:",
        "relay.password_file: /etc/faxgate/relay-password:",
    ] {
        assert!(err.contains(key), "{key} not in:\n{err}");
    }
    assert!(err.contains("faxgate setup"), "{err}");
    // With those files in place it checks.
    let d = tempfile::tempdir().unwrap();
    let mut cmd = faxgate(&repo());
    cmd.args(["check-config", "firmware-config/faxgate.toml"]);
    for key in [
        "SMTP__USERS_FILE",
        "SMTP__TLS_CERT",
        "SMTP__TLS_KEY",
        "RELAY__PASSWORD_FILE",
    ] {
        let f = d.path().join(key);
        std::fs::write(&f, b"x\n").unwrap();
        cmd.env(format!("FAXGATE_{key}"), &f);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("[smtp]") && stdout.contains("/dev/faxmodem0"),
        "{stdout}"
    );
}

#[test]
fn misspelt_key_and_bad_cidr_name_key_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "bad.toml",
        "[gateway]\ndomains = [\"fax.example.com\"]\n\n[smtp]\nclient_networks = [\n  \"10.0.0.0/8\",\n  \"192.168.1.0/40\",\n]\n\n[retry]\nbusyy = \"3m\"\n",
    );
    let out = faxgate(d.path())
        .args(["check-config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = f.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:11: key `retry.busyy`: unknown key `busyy`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:7: key `smtp.client_networks.1`")),
        "{err}"
    );
}

#[test]
fn validation_errors_all_reported_with_lines() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "bad.toml",
        "[[modem]]\nname = \"line1\"\ndevice = \"ttyACM0\"\nrings = 99\n\n[dialplan]\ndeny = [\"1900*\"]\n",
    );
    let out = faxgate(d.path())
        .args(["check-config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = f.display().to_string();
    for want in [
        format!("{file}:3: key `modem.0.device`"),
        format!("{file}:4: key `modem.0.rings`"),
        format!("{file}:7: key `dialplan.deny.0`"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn env_override_visible_and_named_and_secrets_redacted() {
    let d = tempfile::tempdir().unwrap();
    let pw = write(d.path(), "relay-pw", "file-secret-xyzzy\n");
    let f = write(
        d.path(),
        "c.toml",
        &format!(
            "[relay]\nmode = \"smtp\"\nhost = \"mail.example.com\"\nusername = \"fax\"\npassword_file = \"{}\"\n",
            pw.display()
        ),
    );
    let out = faxgate(d.path())
        .args(["check-config", f.to_str().unwrap()])
        .env("FAXGATE_SMTP__LISTEN", "127.0.0.1:2526")
        .env("FAXGATE_RETRY__MAX_DIALS", "7")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"127.0.0.1:2526\""), "{stdout}");
    assert!(stdout.contains("max_dials = 7"), "{stdout}");
    assert!(!stdout.contains("xyzzy"));

    // A password given inline (here through the environment) is printed redacted.
    let out = faxgate(d.path())
        .args(["check-config", f.to_str().unwrap()])
        .env("FAXGATE_RELAY__PASSWORD_FILE", "")
        .output()
        .unwrap();
    assert!(!out.status.success(), "empty path must be refused");
    let cfg2 = write(
        d.path(),
        "c2.toml",
        "[relay]\nmode = \"smtp\"\nhost = \"mail.example.com\"\nusername = \"fax\"\npassword = \"inline-secret-plugh\"\n",
    );
    let out = faxgate(d.path())
        .args(["check-config", cfg2.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!stdout.contains("plugh"), "{stdout}");
    assert!(stdout.contains("<redacted>"), "{stdout}");

    // A bad value from the environment names the variable.
    let out = faxgate(d.path())
        .args(["check-config"])
        .env("FAXGATE_SMTP__MAX_RECIPIENTS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment variable FAXGATE_SMTP__MAX_RECIPIENTS"),
        "{err}"
    );
}

#[test]
fn systemd_unit_verifies() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let d = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo().join("systemd/faxgate.service")).unwrap();
    let bin = common::faxgate_bin();
    assert!(unit.contains("ExecStart=/usr/bin/faxgate "));
    let unit = unit.replace("/usr/bin/faxgate", bin.to_str().unwrap());
    let path = write(d.path(), "faxgate.service", &unit);
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify said:\n{said}"
    );
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "SupplementaryGroups=dialout",
        "StateDirectory=faxgate",
        "ConfigurationDirectory=faxgate",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "DevicePolicy=closed",
        "DeviceAllow=char-ttyUSB rw",
    ] {
        assert!(unit.contains(key), "unit lacks {key}");
    }
}

/// Kills and reaps the child when the test ends, however it ends.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn recv_until(sock: &UnixDatagram, want: &str, deadline: Instant) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                let hit = msg.lines().any(|l| l == want);
                seen.push(msg);
                if hit {
                    return seen;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    panic!("no {want} within the deadline; got {seen:?}");
}

#[test]
fn run_notifies_systemd_and_stops_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let sock_path = d.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Reap(
        faxgate(d.path())
            .arg("run")
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "400000")
            .env("FAXGATE_DATA", d.path().join("data"))
            .env("FAXGATE_SMTP__LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    recv_until(&sock, "READY=1", deadline);
    // WATCHDOG_USEC=0.4 s: keep-alives come every 0.2 s.
    recv_until(&sock, "WATCHDOG=1", deadline);
    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    recv_until(&sock, "STOPPING=1", deadline);
    let mut status = None;
    while Instant::now() < deadline {
        if let Some(s) = child.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.expect("faxgate did not exit after SIGTERM");
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "exit {status:?}; stderr:\n{err}");
    assert!(d.path().join("data").is_dir(), "data dir created");
}

/// The pure cores (bytes, options and `now` in; decisions out) that take plain options built by
/// the shell (`src/app/cores.rs`), never a `config` type (issue 15: "no pure module imports
/// `config`"). Listed one by one: a new pure core is added here.
const PURE_CORES: [&str; 17] = [
    "src/mail/fax_options.rs",
    "src/job/data.rs",
    "src/mail/address.rs",
    "src/offramp/dsn.rs",
    "src/fax/t30/engine.rs",
    "src/offramp/options.rs",
    "src/mail/template.rs",
    "src/job/mod.rs",
    "src/smtp/session.rs",
    "src/smtp/rate.rs",
    "src/mail/dialplan.rs",
    "src/image/render/mod.rs",
    "src/image/render/header.rs",
    "src/scheduler.rs",
    "src/offramp/mime.rs",
    "src/offramp/document.rs",
    "src/offramp/budget.rs",
];

/// The lines of `src` (comments left out) that reach the config module: a path through
/// `crate::` or `super::`, or `config` named inside a `use crate::{…}` group.
fn config_imports(src: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut in_group = false;
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("");
        let t = code.trim();
        if t.starts_with("use crate::{") {
            in_group = true;
        }
        let names_config = t
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == "config");
        if t.contains("crate::config")
            || t.contains("super::config")
            || t.contains("faxgate::config")
            || (in_group && names_config)
        {
            hits.push(line.trim().to_string());
        }
        if in_group && t.contains("};") {
            in_group = false;
        }
    }
    hits
}

#[test]
fn pure_cores_do_not_import_config() {
    // The checker sees each way of importing config (so this test can fail).
    for bad in [
        "use crate::config;",
        "use crate::config::Config;",
        "    let c = crate::config::Offramp::default();",
        "use crate::{\n    config,\n    job::Policy,\n};",
        "use super::super::config::DialPlan;",
    ] {
        assert!(!config_imports(bad).is_empty(), "not seen: {bad:?}");
    }
    assert!(
        config_imports("// see crate::config\nuse crate::job;\n/// the config says").is_empty()
    );
    let mut found = Vec::new();
    for f in PURE_CORES {
        let src = std::fs::read_to_string(repo().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        for l in config_imports(&src) {
            found.push(format!("{f}: {l}"));
        }
    }
    assert!(
        found.is_empty(),
        "pure cores must take plain options, not config types:\n{}",
        found.join("\n")
    );
}
