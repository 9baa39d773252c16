//! Attacks on the offramp listener and the intake paths (issue 21): an AUTH flood, SMTP
//! smuggling relayed outward, forged log lines and replies, slow sessions, spool file modes,
//! inbox sidecars and plain text. Each test replays one attack class against the real
//! listener (in process, on loopback) or the daemon, and asserts the outcome.
//!
//! Debian packages: python3-aiosmtpd (the test relay), swaks.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use faxgate::config::Config;
use faxgate::daemon::Shutdown;
use faxgate::smtp::AuthStats;
use faxgate::smtp::auth::LOCKOUT_FAILURES;
use faxgate::spool::{Spool, SpoolOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::{common, onramp_common};

/// Hang guard on every read (not an assertion on speed).
const READ_GUARD: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A PHC hash with small argon2 parameters (the in-process tests count checks, not memory).
fn cheap_hash(p: &str) -> String {
    let a = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).unwrap(),
    );
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).unwrap();
    a.hash_password(p.as_bytes(), &SaltString::encode_b64(&salt).unwrap())
        .unwrap()
        .to_string()
}

/// The listener in this process on 127.0.0.1, with its spool and AUTH counters.
struct Listener {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    stats: Arc<AuthStats>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    done: Option<tokio::task::JoinHandle<()>>,
    /// The committed messages.
    spool: Spool,
    _dir: tempfile::TempDir,
}

impl Listener {
    /// `tune` adjusts the test config (loopback trusted, AUTH over plain text with one user
    /// `alice` / `secret`) before binding.
    fn start(tune: impl FnOnce(&mut Config)) -> Listener {
        Listener::start_with_hash(&cheap_hash("secret"), tune)
    }

    /// [`Listener::start`] with `alice`'s password hash given.
    fn start_with_hash(hash: &str, tune: impl FnOnce(&mut Config)) -> Listener {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, format!("alice:{hash}\n")).unwrap();
        let mut c = Config::default();
        c.gateway.hostname = "gw.fax.test".into();
        c.gateway.domains = vec!["fax.test".into()];
        c.gateway.data_dir = dir.path().join("data");
        c.smtp.listen = vec!["127.0.0.1:0".parse().unwrap()];
        c.smtp.users_file = Some(users);
        c.smtp.auth_without_tls = true;
        c.smtp.max_connections = 256;
        c.smtp.max_connections_per_ip = 128;
        tune(&mut c);
        let rt = runtime();
        let spool = Spool::open(&dir.path().join("spool"), SpoolOptions::default()).unwrap();
        let server = rt.block_on(faxgate::smtp::bind(&c, spool.clone())).unwrap();
        let addr = server.local_addrs()[0];
        let stats = server.auth_stats();
        let (stop, shutdown) = Shutdown::new();
        let done = rt.spawn(server.run(shutdown));
        Listener {
            rt,
            addr,
            stats,
            stop: Some(stop),
            done: Some(done),
            spool,
            _dir: dir,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(d) = self.done.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(30), d).await });
        }
    }
}

/// An SMTP client connection from a chosen loopback address.
struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Client {
    async fn connect_from(from: IpAddr, to: SocketAddr) -> Client {
        let s = match from {
            IpAddr::V4(_) => TcpSocket::new_v4(),
            IpAddr::V6(_) => TcpSocket::new_v6(),
        }
        .unwrap();
        s.bind(SocketAddr::new(from, 0)).unwrap();
        let s = s.connect(to).await.unwrap();
        let (r, w) = s.into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
        };
        let g = c.reply().await;
        assert!(g.starts_with("220 "), "greeting: {g:?}");
        c
    }

    async fn connect(to: SocketAddr) -> Client {
        Client::connect_from([127, 0, 0, 1].into(), to).await
    }

    /// One whole (possibly multi-line) reply, raw; empty at end of stream.
    async fn reply(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(READ_GUARD, self.r.read_until(b'\n', &mut line))
                .await
                .expect("no reply within the hang guard")
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            all.extend_from_slice(&line);
            if line.get(3) != Some(&b'-') {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }
}

fn plain(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

/// `n` connections from `from`, each authenticating once with a wrong password at the same
/// moment (a barrier after EHLO); returns the replies.
async fn auth_burst(to: SocketAddr, from: Vec<IpAddr>) -> Vec<String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(from.len()));
    let mut tasks = Vec::new();
    for (i, ip) in from.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect_from(ip, to).await;
            let e = c.cmd("EHLO attacker.test").await;
            assert!(e.contains("AUTH PLAIN"), "{e}");
            barrier.wait().await;
            c.cmd(&format!(
                "AUTH PLAIN {}",
                plain("alice", &format!("guess{i}"))
            ))
            .await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// 64 wrong passwords at once from one address: only LOCKOUT_FAILURES (10) are ever checked
/// — attempts in progress count toward the lockout — the others get `454 4.7.0` without a
/// check, and no more than `auth_max_concurrent` checks ran at once.
#[test]
fn smtp_auth_flood_one_address_counts_attempts_in_flight() {
    let l = Listener::start(|c| c.smtp.auth_max_concurrent = 2);
    let replies =
        l.rt.block_on(auth_burst(l.addr, vec![IpAddr::from([127, 0, 0, 1]); 64]));
    let refused = replies
        .iter()
        .filter(|r| r.starts_with("535 5.7.8 "))
        .count();
    let locked = replies
        .iter()
        .filter(|r| r.starts_with("454 4.7.0 ") && r.contains("too many failures"))
        .count();
    assert_eq!(refused, LOCKOUT_FAILURES, "{replies:#?}");
    assert_eq!(locked, 64 - LOCKOUT_FAILURES, "{replies:#?}");
    let s = l.stats.snapshot();
    assert_eq!(s.verified, LOCKOUT_FAILURES, "{s:?}");
    assert_eq!(s.locked, 64 - LOCKOUT_FAILURES, "{s:?}");
    assert!(s.peak >= 1 && s.peak <= 2, "checks at once: {s:?}");
    assert_eq!((s.verifying, s.waiting), (0, 0), "{s:?}");
    // The lockout holds afterwards, also for the right password.
    let r = l.rt.block_on(async {
        let mut c = Client::connect(l.addr).await;
        c.cmd("EHLO a.test").await;
        c.cmd(&format!("AUTH PLAIN {}", plain("alice", "secret")))
            .await
    });
    assert!(r.starts_with("454 4.7.0 "), "{r}");
}

/// 64 attempts at once from 8 addresses (none locked out) against one check slot: at most one
/// check ran at a time, at most 9 (the slot and its queue) were admitted at once, the rest
/// got `454 4.7.0` without a check; every attempt got exactly one of the two answers.
#[test]
fn smtp_auth_flood_many_addresses_is_capped() {
    // Real (default) argon2 parameters: each check takes long enough that the burst of 64
    // arrives while the first ones run, so the queue fills.
    let hash = faxgate::smtp::auth::hash_password("secret").unwrap();
    let l = Listener::start_with_hash(&hash, |c| c.smtp.auth_max_concurrent = 1);
    let from: Vec<IpAddr> = (0..64u8)
        .map(|i| IpAddr::from([127, 0, 0, 1 + i % 8]))
        .collect();
    let replies = l.rt.block_on(auth_burst(l.addr, from));
    let refused = replies.iter().filter(|r| r.starts_with("535 ")).count();
    let busy = replies
        .iter()
        .filter(|r| r.starts_with("454 4.7.0 ") && r.contains("in progress"))
        .count();
    assert_eq!(refused + busy, 64, "{replies:#?}");
    let s = l.stats.snapshot();
    eprintln!("AUTH flood from 8 addresses, 1 slot: {s:?}");
    assert_eq!(s.peak, 1, "{s:?}");
    assert_eq!((s.verified, s.busy, s.locked), (refused, busy, 0), "{s:?}");
    assert!(
        busy > 0,
        "a flood of 64 against a queue of 9 must be turned away: {s:?}"
    );
}

/// The daemon with real argon2 parameters (19 MiB per check) and 64 simultaneous wrong logins
/// from 8 addresses: its peak resident memory stays under 128 MB (the issue's acceptance
/// asks for 256 MB; unbounded, the checks took 1.2 GB more).
#[test]
fn smtp_auth_flood_daemon_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let hash = faxgate::smtp::auth::hash_password("secret").unwrap();
    assert!(hash.contains("m=19456"), "default parameters: {hash}");
    std::fs::write(&users, format!("alice:{hash}\n")).unwrap();
    let d = Daemon::start(
        dir,
        &format!(
            "users_file = \"{}\"\nauth_without_tls = true\nmax_connections_per_ip = 64\n",
            users.display()
        ),
        "",
    );
    let idle = d.peak_rss_kib();
    let rt = runtime();
    let from: Vec<IpAddr> = (0..64u8)
        .map(|i| IpAddr::from([127, 0, 0, 1 + i % 8]))
        .collect();
    let replies = rt.block_on(auth_burst(d.addr, from));
    assert!(
        replies
            .iter()
            .all(|r| r.starts_with("535 ") || r.starts_with("454 4.7.0 ")),
        "{replies:#?}"
    );
    let hwm = d.peak_rss_kib();
    eprintln!("daemon peak RSS: idle {idle} KiB, after the AUTH flood {hwm} KiB");
    // Idle ~30 MB plus two reused 19 MiB scratch buffers; unbounded it was ~280 MB here (and
    // 1.69 GB in the issue's measurement).
    assert!(
        hwm < 128 * 1024,
        "daemon peak RSS {hwm} KiB after an AUTH flood; log:\n{}",
        d.log()
    );
}

/// A `faxgate run` child on a free loopback port with its own data directory.
struct Daemon {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    child: std::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    /// `smtp` lines go under `[smtp]`, `rest` after it (other sections).
    fn start(dir: tempfile::TempDir, smtp: &str, rest: &str) -> Daemon {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let cfg = format!(
            "[gateway]\nhostname = \"gw.fax.test\"\ndomains = [\"fax.test\"]\n\
             data_dir = \"{}\"\nadmin = \"ops@site.test\"\n[log]\nfilter = \"info\"\n\
             [smtp]\nlisten = \"{addr}\"\n{smtp}\n{rest}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("faxgate.toml"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let mut cmd = common::faxgate(dir.path());
        // The README quick start's usual umask: the daemon must not rely on a tighter one.
        // SAFETY: umask(2) is async-signal-safe and touches only the child.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::umask(0o022);
                Ok(())
            });
        }
        let child = cmd
            .args(["-c", "faxgate.toml", "run"])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Daemon { dir, addr, child };
        for _ in 0..400 {
            if let Ok(s) = std::net::TcpStream::connect(addr) {
                use std::io::BufRead;
                let mut line = String::new();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                if std::io::BufReader::new(s).read_line(&mut line).is_ok()
                    && line.starts_with("220 ")
                {
                    return d;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not start: {}", d.log());
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("gateway.log")).unwrap_or_default()
    }

    /// The daemon's peak resident set (VmHWM), KiB.
    fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when every LF follows a CR and every CR precedes an LF.
fn crlf_only(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| match c {
        b'\n' => i > 0 && b[i - 1] == b'\r',
        b'\r' => b.get(i + 1) == Some(&b'\n'),
        _ => true,
    })
}

/// The end-of-data forms that lax receivers take (CVE-2023-51764 and relatives).
const SMUGGLING: [&str; 3] = ["\n.\r\n", "\n.\n", "\r.\r\n"];

/// A second transaction hidden after a fake end of data.
fn smuggled_tail(v: &str) -> String {
    format!(
        "hello{v}MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n\
         Subject: smuggled\r\n\r\nSmuggled\r\n"
    )
}

/// Sends one message through `c` (already past EHLO); returns the reply to the data.
async fn send_message(c: &mut Client, mail: &str, rcpt: &str, data: &str) -> String {
    let r = c.cmd(mail).await;
    assert!(r.starts_with("250 "), "{mail}: {r}");
    let r = c.cmd(rcpt).await;
    assert!(r.starts_with("250 "), "{rcpt}: {r}");
    let r = c.cmd("DATA").await;
    assert!(r.starts_with("354 "), "{r}");
    c.send(data.as_bytes()).await;
    c.send(b"\r\n.\r\n").await;
    c.reply().await
}

/// Intake: each smuggling variant is one message (one `250`), stored with CRLF line ends
/// only, the would-be second transaction inside it as text.
#[test]
fn intake_bare_line_ends_are_stored_as_crlf() {
    let l = Listener::start(|_| {});
    for v in SMUGGLING {
        let replies = l.rt.block_on(async {
            let mut c = Client::connect(l.addr).await;
            c.cmd("EHLO client.test").await;
            let r = send_message(
                &mut c,
                "MAIL FROM:<alice@example.org>",
                "RCPT TO:<postmaster@fax.test>",
                &format!("Subject: x\r\n\r\n{}", smuggled_tail(v)),
            )
            .await;
            (r, c.cmd("QUIT").await)
        });
        assert!(
            replies.0.starts_with("250 2.0.0 Ok: queued as "),
            "{v:?}: {replies:?}"
        );
        assert!(replies.1.starts_with("221 "), "{v:?}: {replies:?}");
    }
    let jobs = l.spool.load().unwrap().jobs;
    assert_eq!(jobs.len(), SMUGGLING.len());
    for rec in jobs {
        let job = rec.data.as_message().unwrap().clone();
        let body = std::fs::read(l.spool.payload_path(&rec.id, &job.file).unwrap()).unwrap();
        assert!(crlf_only(&body), "{:?}", String::from_utf8_lossy(&body));
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("\r\n.\r\nMAIL FROM:<evil@example.org>\r\n"),
            "{text:?}"
        );
        assert_eq!(job.envelope.postmaster, ["postmaster@fax.test"]);
    }
}

/// Outbound: the postmaster copy and a DSN with `RET=FULL` of each smuggling variant reach
/// the site's relay (aiosmtpd) as exactly one message each, to the right recipient, with
/// CRLF line ends only — so the relay client's dot-stuffing covers the fake end of data and
/// no relay, however lax, can read a second message out of it.
#[test]
fn smtp_smuggling_is_not_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relay");
    std::fs::create_dir(&out).unwrap();
    let relay = onramp_common::Relay::start(onramp_common::free_port(), &out, &["--dsn"]);
    let d = Daemon::start(
        dir,
        "",
        &format!(
            "[relay]\nmode = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
            relay.port
        ),
    );
    let rt = runtime();
    rt.block_on(async {
        let mut c = Client::connect(d.addr).await;
        c.cmd("EHLO client.test").await;
        for v in SMUGGLING {
            // To the postmaster: forwarded to gateway.admin as it is.
            let r = send_message(
                &mut c,
                "MAIL FROM:<alice@example.org>",
                "RCPT TO:<postmaster@fax.test>",
                &format!(
                    "From: alice@example.org\r\nSubject: to the postmaster\r\n\r\n{}",
                    smuggled_tail(v)
                ),
            )
            .await;
            assert!(r.starts_with("250 "), "{v:?}: {r}");
            // A fax that cannot be rendered: the failure DSN returns the whole message.
            let r = send_message(
                &mut c,
                "MAIL FROM:<alice@example.org> RET=FULL",
                "RCPT TO:<FAX=+12125550142@fax.test> NOTIFY=FAILURE",
                &format!(
                    "From: alice@example.org\r\nSubject: unfaxable\r\nMIME-Version: 1.0\r\n\
                     Content-Type: application/x-smuggle\r\n\r\n{}",
                    smuggled_tail(v)
                ),
            )
            .await;
            assert!(r.starts_with("250 "), "{v:?}: {r}");
        }
        c.cmd("QUIT").await;
    });
    let want = 2 * SMUGGLING.len();
    let mut got = Vec::new();
    for _ in 0..1200 {
        got = relay.messages();
        if got.len() >= want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got.len(), want, "messages at the relay; log:\n{}", d.log());
    let (mut forwards, mut reports) = (0, 0);
    for (env, eml) in &got {
        let rcpts: Vec<&str> = env["rcpt_tos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let text = String::from_utf8_lossy(eml);
        assert!(crlf_only(eml), "bare CR or LF relayed: {text:?}");
        assert!(
            text.contains("MAIL FROM:<evil@example.org>\r\n"),
            "the smuggled part stays inside: {text:?}"
        );
        match rcpts[..] {
            ["ops@site.test"] => forwards += 1,
            ["alice@example.org"] => {
                assert!(text.contains("message/rfc822"), "RET=FULL: {text:?}");
                reports += 1;
            }
            _ => panic!("unexpected recipients {rcpts:?}: {text:?}"),
        }
    }
    assert_eq!((forwards, reports), (SMUGGLING.len(), SMUGGLING.len()));
}

/// Forged log lines: an unauthenticated AUTH user name with a newline, and an inbox file name
/// with one, are logged escaped — no line of the daemon's log starts with the forged text,
/// and the escaped form is there.
#[test]
fn smtp_forged_log_lines_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("alice:{}\n", cheap_hash("secret"))).unwrap();
    let d = Daemon::start(
        dir,
        &format!(
            "users_file = \"{}\"\nauth_without_tls = true\n",
            users.display()
        ),
        "[onramp]\ninbox_settle = \"1s\"\n",
    );
    let forged = "x\nINFO faxgate::smtp::server: AUTH ok ip=127.0.0.1 user=admin";
    let r = runtime().block_on(async {
        let mut c = Client::connect(d.addr).await;
        c.cmd("EHLO a.test").await;
        c.cmd(&format!("AUTH PLAIN {}", plain(forged, "guess")))
            .await
    });
    assert!(r.starts_with("535 5.7.8 "), "{r}");
    // A dropped file whose name carries a forged line and a bidi override.
    let inbox = d.path("data/inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let name = "scan\nERROR forged: spool destroyed\u{202e}fdp.txt";
    std::fs::write(inbox.join(name), [0u8, 1, 2, 3, 0xff]).unwrap();
    let mut log = String::new();
    for _ in 0..600 {
        log = d.log();
        if log.contains("inbox: file cannot be faxed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(log.contains("inbox: file cannot be faxed"), "{log}");
    assert!(log.contains("AUTH failed"), "{log}");
    assert!(
        log.contains(r"x\nINFO faxgate::smtp::server: AUTH ok"),
        "{log}"
    );
    assert!(
        log.contains(r"scan\nERROR forged: spool destroyed\u{202e}fdp.txt"),
        "{log}"
    );
    for line in log.lines() {
        assert!(!line.starts_with("INFO faxgate"), "forged line: {line}");
        assert!(!line.starts_with("ERROR forged"), "forged line: {line}");
        assert!(!line.contains('\u{202e}'), "raw bidi override: {line}");
    }
}

/// Replies never echo raw CR, NUL, bidi or other non-ASCII client bytes: each reply is one
/// printable-ASCII line (the refused address or parameter shown escaped).
#[test]
fn smtp_replies_do_not_echo_raw_controls() {
    let l = Listener::start(|_| {});
    let replies = l.rt.block_on(async {
        let mut c = Client::connect(l.addr).await;
        let mut out = vec![c.cmd("EHLO bad\rname\u{0}\u{202e}").await];
        c.cmd("EHLO client.test").await;
        out.push(c.cmd("MAIL FROM:<alice@example.org>").await);
        c.send(b"RCPT TO:<FAX=+1212\r555\x001212\xe2\x80\xae@fax.test>\r\n")
            .await;
        out.push(c.reply().await);
        c.send(b"RCPT TO:<a\rb@evil.test\xe2\x80\xae>\r\n").await;
        out.push(c.reply().await);
        c.send(b"RCPT TO:<FAX=+12125550142@fax.test> X\x00Y\x1b[2J=1\r\n")
            .await;
        out.push(c.reply().await);
        out.push(
            c.cmd(&format!("RCPT TO:<{}@fax.test>", "\u{202e}".repeat(600)))
                .await,
        );
        out
    });
    for r in &replies {
        let body = r.strip_suffix("\r\n").unwrap_or_else(|| panic!("{r:?}"));
        for line in body.split("\r\n") {
            assert!(
                line.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "raw byte in reply {r:?}"
            );
            assert!(line.len() + 2 <= 512, "reply line too long: {}", line.len());
        }
    }
    assert!(replies[0].starts_with("501 "), "{:?}", replies[0]);
    assert!(replies[1].starts_with("250 "), "{:?}", replies[1]);
    assert!(replies[2].starts_with("55"), "{:?}", replies[2]);
    assert!(
        replies[3].contains(r"\r") && replies[3].contains(r"\u{202e}"),
        "{:?}",
        replies[3]
    );
    assert!(
        replies[4].starts_with("555 5.5.4 ") && replies[4].contains(r"X\0Y\x1b[2J"),
        "{:?}",
        replies[4]
    );
    assert!(replies[5].starts_with("55"), "{:?}", replies[5]);
}

/// A DSN's diagnostic quotes the attachment name: its bidi override (which would show
/// `invoice\u{202e}fdp.exe` as `invoiceexe.pdf`) arrives escaped, the RFC 3464 fields are
/// ASCII, and the readable part has no raw bidi character either (the returned original
/// headers are the sender's own, returned as they came).
#[test]
fn smtp_dsn_diagnostics_escape_bidi() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relay");
    std::fs::create_dir(&out).unwrap();
    let relay = onramp_common::Relay::start(onramp_common::free_port(), &out, &[]);
    let d = Daemon::start(
        dir,
        "",
        &format!(
            "[relay]\nmode = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
            relay.port
        ),
    );
    let r = runtime().block_on(async {
        let mut c = Client::connect(d.addr).await;
        c.cmd("EHLO client.test").await;
        send_message(
            &mut c,
            "MAIL FROM:<alice@example.org> BODY=8BITMIME",
            "RCPT TO:<FAX=+12125550142@fax.test>",
            "From: alice@example.org\r\nSubject: invoice\u{202e}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
             Content-Type: application/x-evil; name=\"invoice\u{202e}fdp.exe\"\r\n\
             Content-Disposition: attachment; filename=\"invoice\u{202e}fdp.exe\"\r\n\r\n\
             MZ\r\n--b--",
        )
        .await
    });
    assert!(r.starts_with("250 "), "{r}");
    let mut got = Vec::new();
    for _ in 0..1200 {
        got = relay.messages();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got.len(), 1, "the failure report; log:\n{}", d.log());
    let eml = &got[0].1;
    let all = String::from_utf8_lossy(eml);
    let text = all
        .split("Content-Type: text/rfc822-headers")
        .next()
        .unwrap();
    assert!(
        !text.contains('\u{202e}'),
        "raw bidi override in the DSN: {all}"
    );
    assert!(text.contains("invoice\\u{202e}"), "{text}");
    let status = text
        .split("Content-Type: message/delivery-status")
        .nth(1)
        .expect("a delivery-status part");
    let status = status.split("\r\n--").next().unwrap();
    assert!(status.is_ascii(), "{status}");
    assert!(
        status.contains(r"invoice\u{202e}fdp.exe"),
        "the diagnostic names the attachment escaped: {status}"
    );
}

/// Spool files under a umask of 022: every file the daemon wrote under its data directory
/// (spool records and payloads, the owner lock, the Maildir copy) is 0600 and every
/// directory 0700 — no other local user can read a queued message. (The inbox is the
/// droppers' directory and keeps its own mode.)
#[test]
fn intake_spool_files_are_private_under_umask_022() {
    use std::os::unix::fs::MetadataExt;
    let d = Daemon::start(tempfile::tempdir().unwrap(), "", "");
    let r = runtime().block_on(async {
        let mut c = Client::connect(d.addr).await;
        c.cmd("EHLO client.test").await;
        send_message(
            &mut c,
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<postmaster@fax.test>",
            "Subject: private\r\n\r\nsecret\r\n",
        )
        .await
    });
    assert!(r.starts_with("250 "), "{r}");
    let data = d.path("data");
    let maildir_new = data.join("maildir/new");
    for _ in 0..600 {
        if std::fs::read_dir(&maildir_new).is_ok_and(|mut r| r.next().is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut files = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        let m = std::fs::metadata(&dir).unwrap();
        assert_eq!(m.mode() & 0o777, 0o700, "{dir:?}");
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let ft = e.file_type().unwrap();
            if p == data.join("inbox") {
                continue;
            }
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                files += 1;
                let mode = e.metadata().unwrap().mode() & 0o777;
                assert_eq!(mode, 0o600, "{p:?}");
            }
        }
    }
    assert!(
        std::fs::read_dir(&maildir_new).unwrap().count() == 1,
        "the forwarded copy; log:\n{}",
        d.log()
    );
    assert!(
        files >= 4,
        "spool records, payloads and the mail were checked ({files})"
    );
}

/// Slowloris: one byte at a time, each before the data timeout, with `max_session = 2s`
/// on the real listener: the session is closed with `421 4.4.2 … session time limit` and
/// nothing is queued. (The client's loop is bounded; the limit is 2 s, the bound 30 s.)
#[test]
fn smtp_slow_session_is_closed_at_its_lifetime() {
    let l = Listener::start(|c| c.smtp.max_session = Duration::from_secs(2));
    let (reply, bytes) = l.rt.block_on(async {
        let mut c = Client::connect(l.addr).await;
        c.cmd("EHLO client.test").await;
        assert!(
            c.cmd("MAIL FROM:<alice@example.org>")
                .await
                .starts_with("250 ")
        );
        assert!(
            c.cmd("RCPT TO:<FAX=+12125550142@fax.test>")
                .await
                .starts_with("250 ")
        );
        assert!(c.cmd("DATA").await.starts_with("354 "));
        let mut sent = 0;
        for _ in 0..100 {
            if c.w.write_all(b"x").await.is_err() {
                break;
            }
            sent += 1;
            // Is there an answer (the 421) yet? Wait a little for one, then send on.
            let mut line = Vec::new();
            match tokio::time::timeout(Duration::from_millis(300), c.r.read_until(b'\n', &mut line))
                .await
            {
                Ok(_) => return (String::from_utf8_lossy(&line).into_owned(), sent),
                Err(_) => continue,
            }
        }
        (String::new(), sent)
    });
    assert!(
        reply.starts_with("421 4.4.2 gw.fax.test Error: session time limit exceeded"),
        "after {bytes} bytes: {reply:?}"
    );
    assert!(bytes > 1, "the trickle went on past one byte");
    assert!(l.spool.load().unwrap().jobs.is_empty(), "nothing queued");
}

/// The README says the inbox and `faxgate onramp submit` take plain text: `submit` queues a
/// `.txt` file (and a text file without extension) as a fax job of rendered pages, and
/// refuses a binary file with a message — both through the real binary.
#[test]
fn intake_plain_text_is_faxed_by_submit() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("faxgate-data");
    std::fs::write(
        d.path().join("letter.txt"),
        "Dear Sir,\n\nThe order follows.\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("NOTES"),
        "Plain notes without an extension.\n",
    )
    .unwrap();
    std::fs::write(d.path().join("blob.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    let submit = |f: &str| {
        common::faxgate(d.path())
            .env("FAXGATE_DATA", &data)
            .args(["onramp", "submit", f, "--to", "reception@localhost"])
            .output()
            .unwrap()
    };
    for f in ["letter.txt", "NOTES"] {
        let out = submit(f);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("queued as fax job"),
            "{f}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = submit("blob.bin");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a document faxgate renders"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spool = Spool::attach(&data.join("spool"), SpoolOptions::default()).unwrap();
    let jobs = spool.load().unwrap().jobs;
    assert_eq!(jobs.len(), 2, "two fax jobs, nothing for the blob");
    for j in jobs {
        let pages = u64::from(j.data.as_fax_in().unwrap().reception.pages);
        assert!(pages >= 1, "{:?}", j.data);
    }
}

/// The inbox: a dropped `.txt` with a good sidecar is queued; one whose sidecar says
/// `to: a@x;b@evil` (two addresses posing as one) is refused — moved to `.failed/` with a
/// note naming the bad value, nothing queued for it.
#[test]
fn intake_inbox_sidecar_address_list_is_parsed() {
    let d = Daemon::start(
        tempfile::tempdir().unwrap(),
        "",
        "[onramp]\ninbox_settle = \"1s\"\n",
    );
    let inbox = d.path("data/inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    // Sidecars first: the document is taken with whatever sidecar is there when it settles.
    std::fs::write(
        inbox.join("good.txt.meta"),
        "to: Reception <reception@site.test>, b@site.test\n",
    )
    .unwrap();
    std::fs::write(
        inbox.join("evil.txt.meta"),
        "to: a@site.test;b@evil.example\n",
    )
    .unwrap();
    std::fs::write(inbox.join("good.txt"), "A plain text fax.\n").unwrap();
    std::fs::write(inbox.join("evil.txt"), "Another plain text fax.\n").unwrap();
    let note = inbox.join(".failed/evil.txt.error");
    let mut log = String::new();
    for _ in 0..600 {
        log = d.log();
        if note.exists() && log.contains("inbox file queued") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let why = std::fs::read_to_string(&note).unwrap_or_else(|_| panic!("no note; log:\n{log}"));
    assert!(
        why.contains("a@site.test;b@evil.example") && why.contains("not a mail address"),
        "{why}"
    );
    assert!(inbox.join(".failed/evil.txt").exists());
    assert!(
        !inbox.join("good.txt").exists(),
        "the good file was taken; log:\n{log}"
    );
    assert_eq!(
        log.matches("inbox file queued as a received fax").count(),
        1,
        "{log}"
    );
}
