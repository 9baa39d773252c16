//! Helpers shared by the integration tests (each test file does `mod common;`).
//!
//! Tests talk to real peers (libtiff, poppler, swaks, efax, …). A test that needs a missing tool
//! fails and names the Debian package to install; it never skips silently. The README test
//! command installs all of them.
#![allow(dead_code)]

pub mod daemon;

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
    // Each test daemon gets its own console port (tests run in parallel); a test of the
    // console sets its own.
    c.env("FAXGATE_HTTP__LISTEN", "127.0.0.1:0");
    c
}

/// A PDF written by Ghostscript from PostScript `ps` (A4), as `dir/name`: the test documents
/// come from an independent PDF writer.
pub fn gs_pdf(dir: &Path, name: &str, ps: &str) -> PathBuf {
    let gs = require_tool("gs", "ghostscript");
    let pdf = dir.join(name);
    let out = Command::new(gs)
        .args(["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite"])
        .arg("-sPAPERSIZE=a4")
        .arg(format!("-sOutputFile={}", pdf.display()))
        .args(["-c", ps])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pdf
}

/// A PDF of `n` pages, each with its number in large type.
pub fn pages_pdf(dir: &Path, n: u32) -> PathBuf {
    let ps: String = (1..=n)
        .map(|i| {
            format!(
                "/Helvetica findfont 40 scalefont setfont 72 700 moveto (Page {i} of {n}) show \
                 72 {} 300 80 rectfill showpage ",
                100 + 40 * i
            )
        })
        .collect();
    gs_pdf(dir, "pages.pdf", &ps)
}

/// A test CA and a leaf for `localhost`/127.0.0.1 signed by it, made with the openssl CLI in
/// `dir`; returns (CA, leaf certificate, leaf key). rustls refuses a lone self-signed
/// certificate, so the tests need a CA plus a leaf.
pub fn make_test_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    require_tool("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=faxgate test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&a);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}
