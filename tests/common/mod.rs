//! Helpers shared by the integration tests (each test file does `mod common;`).
//!
//! Tests talk to real peers (libtiff, poppler, swaks, efax, …). A test that needs a missing tool
//! fails and names the Debian package to install; it never skips silently. The README test
//! command installs all of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Path of `bin` on `PATH`, or a panic naming the Debian package that provides it.
pub fn require_tool(bin: &str, package: &str) -> PathBuf {
    if let Some(p) = which(bin) {
        return p;
    }
    panic!(
        "this test needs `{bin}` from the Debian package `{package}`: \
         run `apt-get install -y {package}` (the README test command does)"
    );
}

/// Path of `bin` on `PATH`, if any.
pub fn which(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        let p = PathBuf::from(bin);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}

/// The `faxgate` binary built for this test run.
pub fn faxgate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faxgate"))
}

/// A `faxgate` command with a clean environment for config (no stray `FAXGATE_*`), run in `dir`.
pub fn faxgate(dir: &Path) -> Command {
    let mut c = Command::new(faxgate_bin());
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("FAXGATE_") || k == "NOTIFY_SOCKET" || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}
