//! The console over TLS (`[http] tls_cert`/`tls_key`): the same rustls certificate handling as
//! the SMTP listener, HTTPS only, the session cookie marked `Secure`, and a new certificate
//! taken on SIGHUP without a restart (a bad one keeps the old). Checked with curl against a
//! test CA.
//!
//! Debian packages: curl, openssl.

mod common;

use std::path::Path;
use std::process::Command;

use common::daemon::Daemon;

/// curl with `ca` as the only trusted CA; returns (exit ok, headers and body).
fn curl(ca: &Path, args: &[&str]) -> (bool, String) {
    let curl = common::require_tool("curl", "curl");
    let out = Command::new(curl)
        .args(["-s", "-i", "--max-time", "30", "--noproxy", "*", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_console_speaks_https_with_secure_cookies_and_takes_a_new_certificate_on_sighup() {
    let d = tempfile::tempdir().unwrap();
    let old = d.path().join("old");
    let new = d.path().join("new");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    let (old_ca, cert, key) = common::make_test_certs(&old);
    let (new_ca, new_cert, new_key) = common::make_test_certs(&new);
    // The daemon reads these paths; the test swaps their content later.
    let live_cert = d.path().join("console.crt");
    let live_key = d.path().join("console.key");
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let users = d.path().join("console-users");
    std::fs::write(
        &users,
        format!(
            "ann:{}:admin\n",
            faxgate::smtp::auth::hash_password("ann-secret").unwrap()
        ),
    )
    .unwrap();

    let mut gw = Daemon::new(d.path());
    gw.start(&[
        ("FAXGATE_HTTP__USERS_FILE", users.to_str().unwrap()),
        ("FAXGATE_HTTP__TLS_CERT", live_cert.to_str().unwrap()),
        ("FAXGATE_HTTP__TLS_KEY", live_key.to_str().unwrap()),
    ]);
    let base = format!("https://127.0.0.1:{}", gw.http_port);

    let (ok, page) = curl(&old_ca, &[&format!("{base}/login")]);
    assert!(ok, "{page}");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Password"), "{page}");

    // Logging in over TLS: the cookie is Secure as well as HttpOnly and SameSite=Strict.
    let (ok, answer) = curl(
        &old_ca,
        &[
            "-d",
            "user=ann&password=ann-secret",
            &format!("{base}/login"),
        ],
    );
    assert!(ok, "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {answer}"));
    for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attr), "{cookie}");
    }

    // Plain HTTP on the TLS port gets no page.
    let curl_bin = common::require_tool("curl", "curl");
    let plain = Command::new(&curl_bin)
        .args(["-s", "--max-time", "10", "--noproxy", "*"])
        .arg(format!("http://127.0.0.1:{}/login", gw.http_port))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("Password"),
        "a page over plain HTTP"
    );

    // A new certificate (another CA) in place, then SIGHUP: new handshakes use it.
    std::fs::copy(&new_cert, &live_cert).unwrap();
    std::fs::copy(&new_key, &live_key).unwrap();
    gw.notify(libc::SIGHUP);
    let mut taken = false;
    for _ in 0..100 {
        if curl(&new_ca, &[&format!("{base}/login")]).0 {
            taken = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(taken, "the new certificate was not taken:\n{}", gw.log());
    assert!(
        !curl(&old_ca, &[&format!("{base}/login")]).0,
        "the old one is gone"
    );

    // A broken certificate file and SIGHUP: the one in use stays.
    std::fs::write(&live_cert, "not a certificate").unwrap();
    gw.notify(libc::SIGHUP);
    for _ in 0..100 {
        if gw.log().contains("console TLS certificate not reloaded") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        gw.log().contains("console TLS certificate not reloaded"),
        "{}",
        gw.log()
    );
    assert!(curl(&new_ca, &[&format!("{base}/login")]).0);
    assert!(gw.signal(libc::SIGTERM).success(), "{}", gw.log());
}
