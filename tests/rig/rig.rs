//! The project's phone-line rig for integration tests: `tests/rig/line-up.sh` starts two
//! iaxmodem soft modems back to back in a private network namespace; [`Rig`] brings a line up
//! in its own temporary directory and always takes it down again (on drop, panics included).
//! One line at a time per test binary ([`Rig::up`] holds a lock): real calls take real time
//! and the 2-core CI box should not run several.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

static ONE_LINE: Mutex<()> = Mutex::new(());

/// iaxmodem refuses calls for 5 s after the answering side went on hook (ATZ, ATH, end of a
/// call) — measured on the rig; wait a little longer than that between calls.
pub const IAXMODEM_BUSY_OUT: Duration = Duration::from_millis(5600);

/// A running line: modem A and modem B devices.
pub struct Rig {
    pub a: PathBuf,
    pub b: PathBuf,
    dir: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rig")
        .join(name)
}

impl Rig {
    /// Bring a line up (fails, naming the package, when a tool is missing).
    pub fn up() -> Rig {
        let lock = ONE_LINE.lock().unwrap_or_else(|e| e.into_inner());
        super::common::require_tool("iaxmodem", "iaxmodem");
        super::common::require_tool("unshare", "util-linux");
        super::common::require_tool("ip", "iproute2");
        super::common::require_tool("stty", "coreutils");
        // Short path: iaxmodem limits the device path to 63 characters.
        let dir = tempfile::Builder::new()
            .prefix("fgline")
            .tempdir_in("/tmp")
            .expect("rig dir");
        let out = Command::new("sh")
            .arg(script("line-up.sh"))
            .env("RIG_RUN", dir.path())
            .output()
            .expect("run line-up.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(PathBuf::from)
        };
        let (a, b) = (get("MODEM_A="), get("MODEM_B="));
        let rig_dir = dir.path().to_path_buf();
        match (out.status.success(), a, b) {
            (true, Some(a), Some(b)) => Rig {
                a,
                b,
                dir,
                _lock: lock,
            },
            _ => {
                down(&rig_dir);
                panic!(
                    "line-up.sh failed: {}\n{}",
                    text,
                    String::from_utf8_lossy(&out.stderr)
                )
            }
        }
    }

    /// The rig's state directory (logs under `log/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn down(dir: &Path) {
    let _ = Command::new("sh")
        .arg(script("line-down.sh"))
        .env("RIG_RUN", dir)
        .output();
}

impl Drop for Rig {
    fn drop(&mut self) {
        down(self.dir.path());
    }
}
