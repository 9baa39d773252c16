//! Helpers for the onramp integration tests: a real SMTP relay (Debian's aiosmtpd, driven by
//! `tests/fixtures/onramp/relay.py`) on a loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Debian's python3, which has python3-aiosmtpd (the pyenv `python3` on PATH may not).
pub const PYTHON: &str = "/usr/bin/python3";

/// Fails (never skips) naming the Debian packages when the relay cannot run here.
pub fn require_aiosmtpd() {
    super::common::require_tool(PYTHON, "python3");
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs aiosmtpd for /usr/bin/python3 from the Debian package \
         `python3-aiosmtpd`: run `apt-get install -y python3-aiosmtpd`"
    );
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running test relay; killed when dropped.
pub struct Relay {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where it writes `N.eml` / `N.json`.
    pub out: PathBuf,
}

impl Relay {
    /// Starts the relay on `port`, writing into `out`, with extra `args` (see relay.py).
    pub fn start(port: u16, out: &Path, args: &[&str]) -> Relay {
        require_aiosmtpd();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onramp/relay.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--out")
            .arg(out)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start relay.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            panic!("relay.py did not start (said {line:?})");
        }
        Relay {
            child,
            port,
            out: out.to_path_buf(),
        }
    }

    /// Messages received so far, in order: (envelope JSON, DATA bytes).
    pub fn messages(&self) -> Vec<(serde_json::Value, Vec<u8>)> {
        messages_in(&self.out)
    }
}

/// The messages a relay wrote into `out`, in order.
pub fn messages_in(out: &Path) -> Vec<(serde_json::Value, Vec<u8>)> {
    let mut v = Vec::new();
    for n in 1.. {
        let eml = out.join(format!("{n}.eml"));
        let env = out.join(format!("{n}.json"));
        if !eml.exists() {
            break;
        }
        let env: serde_json::Value = serde_json::from_slice(&std::fs::read(env).unwrap()).unwrap();
        v.push((env, std::fs::read(eml).unwrap()));
    }
    v
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs Python's `email` package on `eml` with `script` (which sees `msg`), returning stdout.
/// Fails the test when Python fails.
pub fn python_email(eml: &Path, script: &str) -> String {
    let prog = format!(
        "import sys, email, email.policy\n\
         msg = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
         {script}\n"
    );
    let out = Command::new(PYTHON)
        .args(["-c", &prog])
        .arg(eml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python email failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
