//! The console's gate under attack (`src/app/console/mod.rs`): a web page on another site, a
//! DNS name rebound to 127.0.0.1, a password guesser, a connection flood. Each is refused with
//! the answer the gate promises, and the console goes on serving.
//!
//! Debian packages: none (raw HTTP/1.1 over loopback TCP).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use super::common::daemon::Daemon;

/// Sends one raw request and returns the whole answer (the server closes: `Connection: close`).
fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

fn get(port: u16, path: &str, host: &str) -> String {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

fn post(port: u16, path: &str, headers: &str, body: &str) -> String {
    http(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{headers}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn users_file(gw: &Daemon, dir: &std::path::Path) -> std::path::PathBuf {
    let mut c = gw
        .cmd()
        .args(["hash-password", "ann"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "correct horse").unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    let p = dir.join("console-users");
    let line = String::from_utf8(out.stdout).unwrap();
    std::fs::write(&p, format!("{}:admin\n", line.trim())).unwrap();
    p
}

#[test]
fn http_a_rebound_dns_name_gets_nothing_from_the_open_console() {
    let d = tempfile::tempdir().unwrap();
    let mut gw = Daemon::new(d.path());
    gw.start(&[]);
    let p = gw.http_port;
    for host in [
        format!("evil.example:{p}"),
        "127.0.0.1.nip.io".into(),
        String::new(),
    ] {
        let a = get(p, "/login", &host);
        assert_eq!(status(&a), 421, "Host {host:?}: {a}");
    }
    // The address itself is served (the login page sends an open console's user home).
    assert_eq!(status(&get(p, "/login", &format!("127.0.0.1:{p}"))), 303);
    assert_eq!(status(&get(p, "/login", &format!("localhost:{p}"))), 303);
    assert!(gw.signal(libc::SIGTERM).success());
}

#[test]
fn http_a_change_posted_from_another_site_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut gw = Daemon::new(d.path());
    gw.start(&[]);
    let p = gw.http_port;
    for origin in [
        "http://evil.example",
        "null",
        &format!("https://127.0.0.1:{p}"),
    ] {
        let a = post(p, "/logout", &format!("Origin: {origin}\r\n"), "");
        assert_eq!(status(&a), 403, "Origin {origin}: {a}");
        assert!(a.contains("another site"), "{a}");
    }
    // A form of the console itself without its CSRF token is refused too.
    let a = post(
        p,
        "/logout",
        &format!("Origin: http://127.0.0.1:{p}\r\n"),
        "",
    );
    assert_eq!(status(&a), 403, "{a}");
    assert!(a.contains("stale"), "{a}");
    assert!(gw.signal(libc::SIGTERM).success());
}

#[test]
fn http_password_guessing_locks_the_address_out() {
    let d = tempfile::tempdir().unwrap();
    let mut gw = Daemon::new(d.path());
    let users = users_file(&gw, d.path());
    gw.start(&[("FAXGATE_HTTP__USERS_FILE", users.to_str().unwrap())]);
    let p = gw.http_port;
    // With users, nothing is served to a stranger: pages send to the login form, the API and
    // metrics want a token, a bad token is named.
    let a = post(p, "/logout", "", "");
    assert_eq!(status(&a), 303, "{a}");
    assert!(a.to_ascii_lowercase().contains("location: /login"), "{a}");
    let a = http(
        p,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nAuthorization: Bearer fgt_guess\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    assert_eq!(status(&a), 401, "{a}");
    assert!(a.contains("\"bad-token\""), "{a}");

    for i in 0..10 {
        let a = post(p, "/login", "", &format!("user=ann&password=guess{i}"));
        assert_eq!(status(&a), 401, "attempt {i}: {a}");
    }
    // Locked out now, even with the right password.
    let a = post(p, "/login", "", "user=ann&password=correct+horse");
    assert_eq!(status(&a), 429, "{a}");
    assert!(
        a.contains("Retry-After") || a.contains("retry-after"),
        "{a}"
    );
    assert!(gw.log().contains("too many failures"), "{}", gw.log());
    // A login form the size of a flood is refused without a password check.
    let big = format!("user=ann&password={}", "x".repeat(100_000));
    assert_eq!(status(&post(p, "/login", "", &big)), 400);
    assert!(gw.signal(libc::SIGTERM).success());
}

#[test]
fn http_the_right_password_opens_a_session_with_a_strict_cookie() {
    let d = tempfile::tempdir().unwrap();
    let mut gw = Daemon::new(d.path());
    let users = users_file(&gw, d.path());
    gw.start(&[("FAXGATE_HTTP__USERS_FILE", users.to_str().unwrap())]);
    let p = gw.http_port;
    let a = post(p, "/login", "", "user=ann&password=correct+horse");
    assert_eq!(status(&a), 303, "{a}");
    let cookie = a
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {a}"));
    for attr in ["faxgate_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    let id = cookie
        .split("faxgate_session=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    // The session logs out only with its CSRF token; the logout ends it.
    let a = post(
        p,
        "/logout",
        &format!("Cookie: faxgate_session={id}\r\n"),
        "",
    );
    assert_eq!(status(&a), 403, "{a}");
    assert!(gw.log().contains("console login"), "{}", gw.log());
    assert!(gw.signal(libc::SIGTERM).success());
}

#[test]
fn http_a_connection_flood_waits_its_turn_and_the_console_recovers() {
    let d = tempfile::tempdir().unwrap();
    let mut gw = Daemon::new(d.path());
    gw.start(&[("FAXGATE_HTTP__MAX_CONNECTIONS", "4")]);
    let p = gw.http_port;
    // Four idle connections take every slot.
    let hogs: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", p)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut fifth = TcpStream::connect(("127.0.0.1", p)).unwrap();
    fifth
        .write_all(
            format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        fifth.read(&mut buf).is_err(),
        "a fifth connection must wait while four hold every slot"
    );
    // The hogs leave: the waiting request is answered.
    drop(hogs);
    fifth
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut out = Vec::new();
    let _ = fifth.read_to_end(&mut out);
    assert_eq!(status(&String::from_utf8_lossy(&out)), 303);
    // SMTP was never affected.
    assert!(TcpStream::connect(("127.0.0.1", gw.port)).is_ok());
    assert!(gw.signal(libc::SIGTERM).success());
}
