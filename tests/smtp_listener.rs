//! Real SMTP clients against a running `faxgate run` on 127.0.0.1: swaks (attachment,
//! STARTTLS, AUTH), Python smtplib, lettre; relay attempts; connection caps; graceful
//! shutdown; SIGKILL right after `250` (the message must be in the queue after restart).
//! Issue 18: the null sender's recipient callout (swaks), BDAT over a raw socket (neither
//! swaks nor smtplib speaks CHUNKING), SMTPUTF8 (smtplib), subject addressing; end to end on
//! the loopback fax line, a BDAT message, an SMTPUTF8 sender and a subject-addressed mail each
//! become a fax and a report, and a report to a UTF-8 sender through an aiosmtpd relay with
//! and without SMTPUTF8.
//!
//! Debian packages: swaks, python3, openssl (test CA and leaf certificate), python3-aiosmtpd
//! (the test relay).

mod common;
#[path = "onramp_common/mod.rs"]
mod onramp_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use faxgate::smtp::MessageData;
use faxgate::spool::{Area, JobKind, Spool, SpoolOptions};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";

/// A `faxgate run` child on a free loopback port, with its own data directory.
struct Gateway {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    child: Option<Child>,
    extra: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Gateway {
    fn start(extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Gateway {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            dir,
            child: None,
            extra: extra.to_owned(),
        };
        g.spawn();
        g
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spawn(&mut self) {
        let cfg = format!(
            "[gateway]\nhostname = \"gw.fax.test\"\ndomains = [\"fax.test\", \"localhost\"]\ndata_dir = \"{}\"\n\
             [log]\nfilter = \"warn\"\n[smtp]\nlisten = \"{}\"\n{}\n",
            self.path("data").display(),
            self.addr,
            self.extra
        );
        std::fs::write(self.path("faxgate.toml"), cfg).unwrap();
        let log = std::fs::File::create(self.path("gateway.log")).unwrap();
        let child = common::faxgate(self.dir.path())
            .args(["-c", "faxgate.toml", "run"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Bounded wait for the greeting.
        for _ in 0..200 {
            if let Ok(s) = TcpStream::connect(self.addr) {
                let mut r = BufReader::new(s);
                let mut line = String::new();
                if r.read_line(&mut line).is_ok() && line.starts_with("220 ") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not start: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("gateway.log")).unwrap_or_default()
    }

    fn signal(&mut self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    fn wait(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    fn spool(&self) -> Spool {
        Spool::attach(&self.path("data/spool"), SpoolOptions::default()).unwrap()
    }

    /// Committed message jobs with their message bytes.
    /// Every message the listener committed. `faxgate run` goes on to split each into fax
    /// jobs (the `Message` job then moves to `done/` with its payload), so all areas are
    /// read — queue first, so that a job moving meanwhile is seen at least once — and only
    /// `Message` jobs are taken.
    fn messages(&self) -> Vec<(MessageData, Vec<u8>)> {
        let s = self.spool();
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let recs = [Area::Queue, Area::Done, Area::Failed]
            .into_iter()
            .flat_map(|a| s.list(a).unwrap().jobs);
        for rec in recs {
            if rec.kind != JobKind::Message || !seen.insert(rec.id.clone()) {
                continue;
            }
            let faxgate::job::JobData::Message(job) = rec.data.clone() else {
                panic!("{:?}", rec.data)
            };
            let body = std::fs::read(s.payload_path(&rec.id, &job.file).unwrap()).unwrap();
            assert_eq!(body.len() as u64, job.size);
            out.push((job, body));
        }
        out
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal line client for dialogues the real clients cannot be made to send.
struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let g = r.reply();
        assert!(g.starts_with("220 "), "{g}");
        r
    }

    /// One whole (possibly multi-line) reply.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }
}

fn hash(p: &str) -> String {
    let a = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 2, 1, None).unwrap(),
    );
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).unwrap();
    a.hash_password(p.as_bytes(), &SaltString::encode_b64(&salt).unwrap())
        .unwrap()
        .to_string()
}

/// A gateway with STARTTLS and AUTH, loopback not trusted (so AUTH is what lets a client in).
fn secure_gateway() -> (Gateway, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    common::make_test_certs(certs.path());
    let users = certs.path().join("users");
    std::fs::write(&users, format!("# test users\n{USER}:{}\n", hash(PASSWORD))).unwrap();
    let extra = format!(
        "client_networks = []\ntls_cert = \"{}\"\ntls_key = \"{}\"\nusers_file = \"{}\"\n",
        certs.path().join("leaf.pem").display(),
        certs.path().join("leaf.key").display(),
        users.display()
    );
    (Gateway::start(&extra), certs)
}

fn swaks(args: &[&str]) -> (bool, String) {
    let bin = common::require_tool("swaks", "swaks");
    let o = Command::new(bin).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[test]
fn swaks_with_attachment() {
    let g = Gateway::start("");
    let att = g.path("page.tif");
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&att, &payload).unwrap();
    let server = g.addr.to_string();
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--ehlo",
        "client.test",
        "--from",
        "sender@example.org",
        "--to",
        "FAX=+1-212-555-0142/T33S=77@fax.test,\"FAX=+12125550100\"@fax.test",
        "--attach-type",
        "image/tiff",
        "--attach",
        &att.to_string_lossy(),
        "--add-header",
        "X-Test: swaks",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("250 2.0.0 Ok: queued as "), "{out}");
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1);
    let (job, body) = &msgs[0];
    let env = &job.envelope;
    assert_eq!(env.mail_from, "sender@example.org");
    assert_eq!(env.client.helo, "client.test");
    assert_eq!(env.recipients.len(), 2);
    assert_eq!(env.recipients[0].destination.e164, "+12125550142");
    assert_eq!(env.recipients[0].subaddress.as_deref(), Some("77"));
    assert_eq!(env.recipients[1].address, "\"FAX=+12125550100\"@fax.test");
    assert!(env.recipients.iter().all(|r| r.notify.is_none()));
    let text = String::from_utf8_lossy(body);
    assert!(
        text.starts_with(
            "Received: from client.test ([127.0.0.1])\r\n\tby gw.fax.test (faxgate) with ESMTP id "
        ),
        "{text}"
    );
    assert!(text.contains("X-Test: swaks\r\n"));
    // The attachment survives byte for byte (base64 as swaks wrote it).
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
    let flat: String = text.split("\r\n").collect();
    assert!(flat.contains(&b64), "attachment not intact");
}

#[test]
fn swaks_starttls_and_auth() {
    let (g, _certs) = secure_gateway();
    let server = g.addr.to_string();
    // Without TLS: AUTH is not even offered, and the untrusted client may not send.
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--from",
        "a@example.org",
        "--to",
        "FAX=+12125550142@fax.test",
        "--quit-after",
        "MAIL",
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("530 5.7.0 Authentication required"), "{out}");
    // STARTTLS + AUTH PLAIN with a wrong password, then the right one.
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        USER,
        "--auth-password",
        "wrong",
        "--from",
        "a@example.org",
        "--to",
        "FAX=+12125550142@fax.test",
    ]);
    assert!(!ok && out.contains("535 5.7.8"), "{out}");
    for mech in ["PLAIN", "LOGIN"] {
        let (ok, out) = swaks(&[
            "--server",
            &server,
            "--tls",
            "--auth",
            mech,
            "--auth-user",
            USER,
            "--auth-password",
            PASSWORD,
            "--from",
            "a@example.org",
            "--to",
            "FAX=+12125550142@fax.test",
        ]);
        assert!(ok, "{mech}: {out}");
        assert!(out.contains("235 2.7.0"), "{out}");
        assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
    }
    let msgs = g.messages();
    assert_eq!(msgs.len(), 2);
    for (job, body) in &msgs {
        assert_eq!(job.envelope.auth_user.as_deref(), Some(USER));
        let tls = job.envelope.tls.as_ref().expect("TLS recorded");
        assert!(tls.protocol.starts_with("TLSv1."), "{tls:?}");
        assert!(String::from_utf8_lossy(body).contains("with ESMTPSA id"));
    }
}

#[test]
fn python_smtplib() {
    let python = common::require_tool("python3", "python3");
    let (g, certs) = secure_gateway();
    let script = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
port, cafile, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
s = smtplib.SMTP("localhost", port, local_hostname="py.test", timeout=30)
s.ehlo()
assert s.has_extn("starttls") and not s.has_extn("auth"), s.esmtp_features
s.starttls(context=ctx)
s.ehlo()
assert s.has_extn("auth") and s.has_extn("dsn") and s.has_extn("pipelining"), s.esmtp_features
s.login(user, pw)
m = EmailMessage()
m["From"] = "py@example.org"
m["To"] = "FAX=+12125550142@fax.test"
m["Subject"] = "smtplib"
m.set_content("line one\n.line with a leading dot\n.\nend\n")
refused = s.send_message(m, to_addrs=["FAX=+12125550142@fax.test", "FAX=+13125550000@fax.test"],
                         mail_options=["BODY=8BITMIME", "RET=FULL"],
                         rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;FAX+3D+2B12125550142@fax.test"])
assert refused == {}, refused
try:
    s.sendmail("py@example.org", ["someone@elsewhere.test"], "Subject: x\r\n\r\nx\r\n")
    raise SystemExit("relay accepted")
except smtplib.SMTPRecipientsRefused as e:
    code, msg = e.recipients["someone@elsewhere.test"]
    assert code == 550 and msg.startswith(b"5.7.1"), (code, msg)
s.quit()
print("OK")
"#;
    let o = Command::new(python)
        .args(["-c", script, &g.addr.port().to_string()])
        .arg(certs.path().join("ca.pem"))
        .args([USER, PASSWORD])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && out.contains("OK"),
        "{out}\n{}",
        g.log()
    );
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1);
    let (job, body) = &msgs[0];
    let env = &job.envelope;
    assert_eq!(env.client.helo, "py.test");
    assert_eq!(env.recipients.len(), 2);
    assert_eq!(env.recipients[1].destination.dial, "13125550000");
    assert_eq!(
        env.recipients[0].orcpt.as_deref(),
        Some("rfc822;FAX=+12125550142@fax.test")
    );
    assert_eq!(env.ret, Some(faxgate::smtp::session::Ret::Full));
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("\r\n.line with a leading dot\r\n.\r\nend\r\n"),
        "{text}"
    );
}

#[test]
fn lettre_over_starttls_with_auth() {
    use lettre::address::Envelope;
    use lettre::transport::smtp::authentication::{Credentials, Mechanism};
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let (g, certs) = secure_gateway();
    let ca = std::fs::read(certs.path().join("ca.pem")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let tls = TlsParameters::builder("localhost".into())
            .add_root_certificate(Certificate::from_pem(&ca).unwrap())
            .build_rustls()
            .unwrap();
        let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("localhost")
            .port(g.addr.port())
            .tls(Tls::Required(tls))
            .credentials(Credentials::new(USER.into(), PASSWORD.into()))
            .authentication(vec![Mechanism::Plain])
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let env = Envelope::new(
            Some("lettre@example.org".parse().unwrap()),
            vec!["FAX=+12125550142@fax.test".parse().unwrap()],
        )
        .unwrap();
        let msg = b"From: lettre@example.org\r\nSubject: lettre\r\n\r\nhello from lettre\r\n";
        // lettre's own timeout covers only the connect: bound the whole send.
        let r = tokio::time::timeout(Duration::from_secs(30), t.send_raw(&env, msg))
            .await
            .expect("send timed out")
            .expect("send failed");
        r.message().collect::<Vec<_>>().join(" ")
    });
    assert!(id.contains("queued as"), "{id}");
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1);
    assert!(id.contains(&msgs[0].0.envelope.mail_from) || id.contains("Ok"));
    assert_eq!(msgs[0].0.envelope.auth_user.as_deref(), Some(USER));
    let text = String::from_utf8_lossy(&msgs[0].1);
    // lettre always sends CRLF . CRLF after the body, so the body gains one CRLF.
    assert!(text.contains("\r\n\r\nhello from lettre\r\n"), "{text:?}");
}

#[test]
fn relay_attempts_refused() {
    let g = Gateway::start("");
    let mut c = Raw::connect(g.addr);
    assert!(c.cmd("EHLO relay.test").starts_with("250-"));
    assert!(c.cmd("MAIL FROM:<spammer@example.org>").starts_with("250 "));
    for rcpt in [
        "<someone@elsewhere.test>",
        "<FAX=+12125550142@elsewhere.test>",
        "<user%elsewhere.test@fax.test>",
        "<@fax.test,@elsewhere.test:user@elsewhere.test>",
        "<\"user@elsewhere.test\"@fax.test>",
        "<FAX=+12125550142@[127.0.0.1]>",
        "<elsewhere.test!user@fax.test>",
    ] {
        let r = c.cmd(&format!("RCPT TO:{rcpt}"));
        assert!(r.starts_with("550 5.7.1 "), "{rcpt}: {r}");
    }
    assert!(c.cmd("DATA").starts_with("554 5.5.1"));
    assert!(c.cmd("QUIT").starts_with("221 "));
    assert!(g.messages().is_empty());
}

#[test]
fn sigkill_after_250_keeps_the_message() {
    let mut g = Gateway::start("");
    let mut c = Raw::connect(g.addr);
    c.cmd("EHLO crash.test");
    c.cmd("MAIL FROM:<durable@example.org>");
    assert!(
        c.cmd("RCPT TO:<FAX=+12125550142@fax.test>")
            .starts_with("250 ")
    );
    assert!(c.cmd("DATA").starts_with("354 "));
    let r = c.cmd("Subject: durable\r\n\r\nmust survive\r\n.");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let id = r.trim_end().rsplit(' ').next().unwrap().to_owned();
    // The client saw 250: kill at once, no chance to flush anything more.
    g.signal(libc::SIGKILL);
    g.wait();
    g.spawn();
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1, "{}", g.log());
    assert_eq!(msgs[0].0.envelope.mail_from, "durable@example.org");
    assert!(String::from_utf8_lossy(&msgs[0].1).ends_with("\r\n\r\nmust survive\r\n"));
    // The job the client was told about (in queue/, or in done/ once `faxgate run` split it).
    let (_, rec) = g
        .spool()
        .get(&id.parse::<faxgate::spool::JobId>().unwrap())
        .unwrap();
    assert_eq!(rec.kind, JobKind::Message);
}

/// Holds `n` sessions that got a `220` (bounded retries: the start-up probe's slot is released
/// only once the server saw its EOF).
fn hold(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..200 {
        if held.len() == n {
            break;
        }
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with("220 ") {
            held.push(s);
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(held.len(), n);
    held
}

fn refused_with(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn connection_caps() {
    // Per client address.
    let g = Gateway::start("max_connections = 3\nmax_connections_per_ip = 2\n");
    let held = hold(g.addr, 2);
    let text = refused_with(g.addr);
    assert!(
        text.starts_with("421 4.7.0 gw.fax.test Too many connections from your address"),
        "{text}"
    );
    drop(held);
    // Slots come back when connections end.
    let again = hold(g.addr, 2);
    drop(again);
    // In all.
    let g = Gateway::start("max_connections = 2\nmax_connections_per_ip = 2\n");
    let held = hold(g.addr, 2);
    let text = refused_with(g.addr);
    assert!(
        text.starts_with("421 4.3.2 gw.fax.test Too many connections"),
        "{text}"
    );
    drop(held);
}

#[test]
fn idle_client_times_out() {
    // RFC 5321 §4.5.3.2.7 says 5 minutes; 1 s here so the test is quick.
    let g = Gateway::start("command_timeout = \"1s\"\n");
    let mut c = Raw::connect(g.addr);
    assert!(c.cmd("EHLO slow.test").starts_with("250-"));
    let r = c.reply();
    assert!(
        r.starts_with("421 4.4.2 gw.fax.test Error: timeout exceeded"),
        "{r}"
    );
    assert_eq!(c.reply(), "", "closed after the 421");
}

#[test]
fn graceful_shutdown_says_421() {
    let mut g = Gateway::start("");
    let mut idle = Raw::connect(g.addr);
    assert!(idle.cmd("EHLO idle.test").starts_with("250-"));
    let mut busy = Raw::connect(g.addr);
    busy.cmd("EHLO busy.test");
    busy.cmd("MAIL FROM:<a@example.org>");
    busy.cmd("RCPT TO:<FAX=+12125550142@fax.test>");
    assert!(busy.cmd("DATA").starts_with("354"));
    busy.w
        .write_all(b"Subject: in flight\r\n\r\nfirst half\r\n")
        .unwrap();
    g.signal(libc::SIGTERM);
    let r = idle.reply();
    assert!(
        r.starts_with("421 4.3.2 gw.fax.test Service shutting down"),
        "{r}"
    );
    // The message in flight is finished and committed before the process exits.
    let r = busy.cmd("second half\r\n.");
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    assert!(busy.reply().starts_with("421 4.3.2"));
    g.wait();
    assert_eq!(g.messages().len(), 1);
}

/// True when a STARTTLS handshake with the gateway verifies against `cafile` (Python `ssl`).
fn handshake_verifies(port: u16, cafile: &Path) -> bool {
    let python = common::require_tool("python3", "python3");
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = smtplib.SMTP("localhost", int(sys.argv[1]), timeout=30)
try:
    s.starttls(context=ctx)
    print("VERIFIED")
except ssl.SSLError as e:
    print("REFUSED", e)
"#;
    let o = Command::new(python)
        .args(["-c", script, &port.to_string()])
        .arg(cafile)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("VERIFIED") || out.contains("REFUSED"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.contains("VERIFIED")
}

#[test]
fn sighup_reloads_certificate() {
    let (mut g, certs) = secure_gateway();
    let next = tempfile::tempdir().unwrap();
    common::make_test_certs(next.path());
    let (old_ca, new_ca) = (certs.path().join("ca.pem"), next.path().join("ca.pem"));
    assert!(handshake_verifies(g.addr.port(), &old_ca));
    assert!(!handshake_verifies(g.addr.port(), &new_ca));
    for f in ["leaf.pem", "leaf.key"] {
        std::fs::copy(next.path().join(f), certs.path().join(f)).unwrap();
    }
    g.signal(libc::SIGHUP);
    let mut reloaded = false;
    for _ in 0..100 {
        if handshake_verifies(g.addr.port(), &new_ca) {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reloaded, "{}", g.log());
    assert!(!handshake_verifies(g.addr.port(), &old_ca));
    // A broken file on the next SIGHUP keeps the working certificate.
    std::fs::write(certs.path().join("leaf.pem"), "not a certificate").unwrap();
    g.signal(libc::SIGHUP);
    let mut refused = false;
    for _ in 0..200 {
        if g.log()
            .contains("TLS certificate not reloaded, keeping the old one")
        {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(refused, "{}", g.log());
    assert!(handshake_verifies(g.addr.port(), &new_ca), "{}", g.log());
}

#[test]
fn hash_password_command_makes_a_working_users_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::faxgate(dir.path())
        .args(["hash-password", "carol"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pa55 word\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("carol:$argon2id$"), "{line}");
    let users = faxgate::smtp::auth::Users::parse(&line).unwrap();
    assert!(users.verify("carol", "pa55 word"));
    assert!(!users.verify("carol", "pa55 word\n"));
}

#[test]
fn large_messages_stream_and_size_is_enforced() {
    let g = Gateway::start("max_message_size = 300000\n");
    let mut c = Raw::connect(g.addr);
    c.cmd("EHLO big.test");
    // Over the limit, streamed past the in-memory block: drained, then 552, nothing kept.
    c.cmd("MAIL FROM:<big@example.org>");
    c.cmd("RCPT TO:<FAX=+12125550142@fax.test>");
    assert!(c.cmd("DATA").starts_with("354"));
    let line = format!("{}\r\n", "x".repeat(998));
    for _ in 0..400 {
        c.w.write_all(line.as_bytes()).unwrap();
    }
    let r = c.cmd(".");
    assert!(r.starts_with("552 5.3.4"), "{r}");
    // Under the limit and bigger than one stream block (128 KiB): committed byte for byte,
    // dot-stuffed lines unstuffed.
    c.cmd("MAIL FROM:<big@example.org>");
    c.cmd("RCPT TO:<FAX=+12125550142@fax.test>");
    assert!(c.cmd("DATA").starts_with("354"));
    let mut sent = Vec::new();
    c.w.write_all(b"Subject: big\r\n\r\n").unwrap();
    sent.extend_from_slice(b"Subject: big\r\n\r\n");
    for i in 0..250 {
        let l = format!("..{i:04} {}\r\n", "y".repeat(990));
        c.w.write_all(l.as_bytes()).unwrap();
        sent.extend_from_slice(&l.as_bytes()[1..]);
    }
    let r = c.cmd(".");
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    c.cmd("QUIT");
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1);
    let body = &msgs[0].1;
    assert!(body.ends_with(&sent), "message differs from what was sent");
    let incoming = std::fs::read_dir(g.path("data/spool/incoming"))
        .unwrap()
        .count();
    assert_eq!(incoming, 0, "the refused message left nothing in incoming/");
}

/// Files delivered into the gateway's default Maildir (`relay.mode = maildir`), waiting a
/// bounded while for `n` of them.
fn maildir_messages(g: &Gateway, n: usize) -> Vec<String> {
    let new = g.path("data/maildir/new");
    for _ in 0..400 {
        let files: Vec<String> = std::fs::read_dir(&new)
            .map(|d| {
                d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if files.len() >= n {
            return files;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{n} mails not delivered to the Maildir: {}", g.log());
}

/// RFC 5321 §4.5.1 end to end: swaks to `postmaster@localhost` and smtplib to the bare
/// `<postmaster>` are accepted, listed as postmaster recipients, and `faxgate run` forwards
/// each message unchanged to `gateway.admin` (here the default Maildir).
#[test]
fn postmaster_is_accepted_and_forwarded_to_the_admin() {
    let python = common::require_tool("python3", "python3");
    let g = Gateway::start("");
    let server = g.addr.to_string();
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--ehlo",
        "client.test",
        "--from",
        "sender@example.org",
        "--to",
        "postmaster@localhost",
        "--add-header",
        "X-Test: swaks-postmaster",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("250 2.1.5 Recipient <postmaster@localhost> ok: postmaster"),
        "{out}"
    );
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.test", timeout=30)
refused = s.sendmail("py@example.org", ["postmaster", "PostMaster@fax.test"],
                     "Subject: smtplib-postmaster\r\nX-Test: smtplib-postmaster\r\n\r\nhello\r\n")
assert refused == {}, refused
s.quit()
print("OK")
"#;
    let o = Command::new(python)
        .args(["-c", script, &g.addr.port().to_string()])
        .output()
        .unwrap();
    let py = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && py.contains("OK"), "{py}\n{}", g.log());
    let mut msgs = g.messages();
    msgs.sort_by_key(|(j, _)| j.envelope.client.helo.clone());
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].0.envelope.client.helo, "client.test");
    assert_eq!(msgs[0].0.envelope.postmaster, ["postmaster@localhost"]);
    assert!(msgs[0].0.envelope.recipients.is_empty());
    assert_eq!(
        msgs[1].0.envelope.postmaster,
        ["postmaster", "PostMaster@fax.test"]
    );
    // Each forwarded copy is the committed message, byte for byte.
    let mails = maildir_messages(&g, 2);
    assert_eq!(mails.len(), 2, "one copy per message");
    for (_, body) in &msgs {
        let body = String::from_utf8_lossy(body);
        assert!(
            mails.iter().any(|m| m.ends_with(body.as_ref())),
            "not forwarded: {body}\n{mails:?}"
        );
    }
    assert!(
        mails
            .iter()
            .any(|m| m.contains("X-Test: swaks-postmaster\r\n"))
    );
    assert!(
        mails
            .iter()
            .any(|m| m.contains("X-Test: smtplib-postmaster\r\n"))
    );
}

// ---- issue 18: SMTP as MTAs speak it ----

/// A Postfix-style recipient verification callout with swaks (`--from '<>'`, stopping after
/// RCPT) gets its 250s; the same null sender sending a message is refused at DATA with a
/// reply that says why, and nothing is queued.
#[test]
fn swaks_null_sender_callout_and_refused_data() {
    let g = Gateway::start("");
    let server = g.addr.to_string();
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--from",
        "<>",
        "--to",
        "FAX=+12125550142@fax.test",
        "--quit-after",
        "RCPT",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("<-  250 2.1.0 Sender <> ok"), "{out}");
    assert!(
        out.contains("<-  250 2.1.5 Recipient <FAX=+12125550142@fax.test> ok"),
        "{out}"
    );
    assert!(out.contains("<-  221 2.0.0"), "{out}");
    // A callout for an address that is not a fax number gets its 550, as any sender would.
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--from",
        "<>",
        "--to",
        "alice@fax.test",
        "--quit-after",
        "RCPT",
    ]);
    assert!(
        !ok && out.contains("<** 550 5.1.1 <alice@fax.test>: not a fax address"),
        "{out}"
    );
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--from",
        "<>",
        "--to",
        "FAX=+12125550142@fax.test",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("<** 550 5.7.1 The null sender <> cannot send a fax: the fax's outcome would have no one to be reported to"),
        "{out}"
    );
    assert!(g.messages().is_empty());
}

/// The BDAT exchange written over a raw socket (swaks and smtplib speak no CHUNKING), all
/// pipelined in one write as Exchange does: chunk replies in order, the message spooled byte
/// for byte (no dot-unstuffing); then the size limit across chunks, and the chunks pipelined
/// after the refused one discarded.
#[test]
fn bdat_over_a_raw_socket() {
    let g = Gateway::start("max_message_size = 200000\n");
    let mut c = Raw::connect(g.addr);
    let ehlo = c.cmd("EHLO exchange.test");
    assert!(
        ehlo.contains("250-CHUNKING\r\n") && ehlo.contains("250-PIPELINING\r\n"),
        "{ehlo}"
    );
    let c1 = format!(
        "Subject: chunked\r\n\r\n..first\r\n{}\r\n",
        "a".repeat(150_000)
    );
    let c2 = ".\r\nlast line\r\n";
    let batch = format!(
        "MAIL FROM:<ex@example.org>\r\nRCPT TO:<FAX=+12125550142@fax.test>\r\nBDAT {}\r\n{c1}BDAT {} LAST\r\n{c2}",
        c1.len(),
        c2.len()
    );
    c.w.write_all(batch.as_bytes()).unwrap();
    assert!(c.reply().starts_with("250 2.1.0"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert_eq!(
        c.reply(),
        format!("250 2.0.0 {} octets received\r\n", c1.len())
    );
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    // Past the limit over two chunks: 552 for the second, 503 for the one behind it, and the
    // session carries on.
    let x = "x".repeat(120_000);
    let batch = format!(
        "MAIL FROM:<ex@example.org>\r\nRCPT TO:<FAX=+12125550142@fax.test>\r\nBDAT 120000\r\n{x}BDAT 120000\r\n{x}BDAT 3 LAST\r\nabcNOOP\r\n"
    );
    c.w.write_all(batch.as_bytes()).unwrap();
    assert!(c.reply().starts_with("250 2.1.0"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert_eq!(c.reply(), "250 2.0.0 120000 octets received\r\n");
    assert!(c.reply().starts_with("552 5.3.4"));
    assert!(c.reply().starts_with("503 5.5.1 No mail transaction"));
    assert_eq!(c.reply(), "250 2.0.0 Ok\r\n");
    assert!(c.cmd("QUIT").starts_with("221"));
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1, "{}", g.log());
    let body = &msgs[0].1;
    assert!(
        body.ends_with(format!("{c1}{c2}").as_bytes()),
        "message differs"
    );
    let incoming = std::fs::read_dir(g.path("data/spool/incoming"))
        .unwrap()
        .count();
    assert_eq!(incoming, 0, "the refused message left nothing in incoming/");
}

/// Python's smtplib with `mail_options=['SMTPUTF8']` (it checks the server advertises it)
/// sends a UTF-8 sender and header; without SMTPUTF8 the same sender is refused 553 5.6.7.
#[test]
fn python_smtplib_smtputf8() {
    let python = common::require_tool("python3", "python3");
    let g = Gateway::start("");
    let script = r#"
import smtplib, sys
port = int(sys.argv[1])
msg = ("From: Jürgen <jürgen@bücher.example>\r\nTo: FAX=+12125550142@fax.test\r\n"
       "Subject: Grüße aus Köln\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\nÄrger mit der Bestellung\r\n").encode()
s = smtplib.SMTP("127.0.0.1", port, local_hostname="py.test", timeout=30)
s.ehlo()
assert s.has_extn("smtputf8"), s.esmtp_features
refused = s.sendmail("jürgen@bücher.example", ["FAX=+12125550142@fax.test"], msg,
                     mail_options=["SMTPUTF8", "BODY=8BITMIME"])
assert refused == {}, refused
s.command_encoding = "utf-8"
code, text = s.docmd("MAIL", "FROM:<jürgen@bücher.example>")
assert code == 553 and text.startswith(b"5.6.7"), (code, text)
s.quit()
print("OK")
"#;
    let o = Command::new(python)
        .args(["-c", script, &g.addr.port().to_string()])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && out.contains("OK"),
        "{out}\n{}",
        g.log()
    );
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1);
    let (job, body) = &msgs[0];
    assert_eq!(job.envelope.mail_from, "jürgen@bücher.example");
    let text = String::from_utf8(body.clone()).expect("UTF-8 kept");
    assert!(text.contains("\r\nSubject: Grüße aus Köln\r\n"), "{text}");
}

/// `[offramp] subject_address`: smtplib sends to `fax@fax.test` with the number in the
/// Subject; a Subject without one is refused at the end of data, naming the problem.
#[test]
fn subject_addressing_with_smtplib() {
    let python = common::require_tool("python3", "python3");
    let g = Gateway::start("[offramp]\nsubject_address = \"fax\"\n");
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
m = EmailMessage()
m["From"] = "py@example.org"; m["To"] = "fax@fax.test"; m["Subject"] = "Fax: +1 212 555 0142 - Invoice 42"
m.set_content("Please find the invoice.\n")
assert s.send_message(m) == {}
m.replace_header("Subject", "Invoice 42")
try:
    s.send_message(m)
    raise SystemExit("accepted without a number")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 550 and b"no fax number in the Subject" in e.smtp_error, e
s.quit()
print("OK")
"#;
    let o = Command::new(python)
        .args(["-c", script, &g.addr.port().to_string()])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && out.contains("OK"),
        "{out}\n{}",
        g.log()
    );
    let msgs = g.messages();
    assert_eq!(msgs.len(), 1);
    let r = &msgs[0].0.envelope.recipients;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].address, "fax@fax.test");
    assert_eq!(r[0].destination.e164, "+12125550142");
}

// ---- end to end on the loopback fax line (the embedded default) ----

fn is_report(m: &[u8]) -> bool {
    use mail_parser::MimeHeaders;
    let p = mail_parser::MessageParser::default().parse(m).unwrap();
    p.content_type()
        .is_some_and(|c| c.c_type == "multipart" && c.subtype() == Some("report"))
}

fn is_fax_mail(m: &[u8]) -> bool {
    use mail_parser::MimeHeaders;
    let p = mail_parser::MessageParser::default().parse(m).unwrap();
    p.attachments().any(|a| {
        a.content_type()
            .is_some_and(|c| c.c_type == "image" && c.subtype() == Some("tiff"))
    })
}

/// Waits for one received fax and one report; returns the report as text.
fn fax_and_report(d: &common::daemon::Daemon) -> String {
    let mails = d.wait_mail("the fax email and the report", |m| {
        m.iter().any(|x| is_fax_mail(x)) && m.iter().any(|x| is_report(x))
    });
    assert_eq!(mails.iter().filter(|m| is_fax_mail(m)).count(), 1);
    let reports: Vec<_> = mails.iter().filter(|m| is_report(m)).collect();
    assert_eq!(reports.len(), 1);
    String::from_utf8_lossy(reports[0]).into_owned()
}

/// A BDAT transfer (as Exchange sends it) becomes a fax on the loopback line and a success
/// report (RFC 3464 `Action: delivered`) to the sender.
#[test]
fn bdat_message_becomes_a_fax_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = common::daemon::Daemon::new(dir.path());
    d.start(&[]);
    let addr: SocketAddr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let mut c = Raw::connect(addr);
    assert!(c.cmd("EHLO exchange.test").contains("250-CHUNKING"));
    let c1 =
        "From: ex@example.org\r\nTo: FAX=+12125550123@localhost\r\nSubject: chunked order\r\n\r\n";
    let c2 = "Purchase order 4711\r\n12 boxes of fax paper\r\n";
    let batch = format!(
        "MAIL FROM:<ex@example.org>\r\nRCPT TO:<FAX=+12125550123@localhost> NOTIFY=SUCCESS\r\n\
         BDAT {}\r\n{c1}BDAT {} LAST\r\n{c2}QUIT\r\n",
        c1.len(),
        c2.len()
    );
    c.w.write_all(batch.as_bytes()).unwrap();
    let mut replies = String::new();
    for _ in 0..5 {
        replies.push_str(&c.reply());
    }
    assert!(
        replies.contains("250 2.0.0 Ok: queued as ") && replies.contains("\r\n221 2.0.0 "),
        "{replies}"
    );
    let report = fax_and_report(&d);
    assert!(report.contains("Action: delivered"), "{report}");
    assert!(
        report.contains("To: ex@example.org") || report.contains("To: <ex@example.org>"),
        "{report}"
    );
}

/// An SMTPUTF8 sender (Python smtplib) gets its fax sent on the loopback line and its
/// success report, addressed to its UTF-8 address.
#[test]
fn smtputf8_sender_gets_its_fax_and_report() {
    let python = common::require_tool("python3", "python3");
    let dir = tempfile::tempdir().unwrap();
    let mut d = common::daemon::Daemon::new(dir.path());
    d.start(&[]);
    let script = r#"
import smtplib, sys
msg = ("From: Jürgen <jürgen@bücher.example>\r\nTo: FAX=+12125550123@localhost\r\n"
       "Subject: Bestellung für Köln\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\nSehr geehrte Damen und Herren,\r\n"
       "anbei die Bestellung: 12 Kartons Faxpapier.\r\n").encode()
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
assert s.sendmail("jürgen@bücher.example", ["FAX=+12125550123@localhost"], msg,
                  mail_options=["SMTPUTF8", "BODY=8BITMIME"], rcpt_options=["NOTIFY=SUCCESS"]) == {}
s.quit()
print("OK")
"#;
    let o = Command::new(python)
        .args(["-c", script, &d.port.to_string()])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && out.contains("OK"),
        "{out}\n{}",
        d.log()
    );
    let report = fax_and_report(&d);
    assert!(report.contains("Action: delivered"), "{report}");
    assert!(report.contains("jürgen@bücher.example"), "{report}");
}

/// The sender's report through an SMTP relay (RFC 6531 §3.2): to a relay that offers
/// SMTPUTF8 it goes with the MAIL parameter to the UTF-8 address; to one that does not, it
/// cannot go as addressed, so it is kept as a dead letter and the admin gets a notice naming
/// the missing extension — never silently lost.
#[test]
fn smtputf8_report_through_a_relay_with_and_without_smtputf8() {
    let python = common::require_tool("python3", "python3");
    let send = r#"
import smtplib, sys
msg = ("From: <jürgen@bücher.example>\r\nTo: FAX=+12125550123@localhost\r\n"
       "Subject: Bestellung\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\n12 Kartons Faxpapier.\r\n").encode()
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
assert s.sendmail("jürgen@bücher.example", ["FAX=+12125550123@localhost"], msg,
                  mail_options=["SMTPUTF8", "BODY=8BITMIME"], rcpt_options=["NOTIFY=SUCCESS"]) == {}
s.quit()
"#;
    for utf8_relay in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let port = onramp_common::free_port();
        let args: &[&str] = if utf8_relay {
            &["--auth", "gateway:relay-secret"]
        } else {
            &["--auth", "gateway:relay-secret", "--no-smtputf8"]
        };
        let relay = onramp_common::Relay::start(port, &dir.path().join("relay"), args);
        let mut d = common::daemon::Daemon::new(dir.path());
        let port_s = port.to_string();
        d.start(&[
            ("FAXGATE_RELAY__MODE", "smtp"),
            ("FAXGATE_RELAY__HOST", "127.0.0.1"),
            ("FAXGATE_RELAY__PORT", &port_s),
            ("FAXGATE_RELAY__SECURITY", "none"),
            // The embedded default logs in to its relay: so does this one.
            ("FAXGATE_RELAY__USERNAME", "gateway"),
            ("FAXGATE_RELAY__PASSWORD", "relay-secret"),
        ]);
        let o = Command::new(&python)
            .args(["-c", send, &d.port.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let want = |m: &[(serde_json::Value, Vec<u8>)]| {
            m.iter().any(|(env, body)| {
                if utf8_relay {
                    env["rcpt_tos"][0] == "jürgen@bücher.example" && is_report(body)
                } else {
                    String::from_utf8_lossy(body).contains("does not offer SMTPUTF8")
                }
            })
        };
        let mut got = Vec::new();
        for _ in 0..600 {
            got = relay.messages();
            if want(&got) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let envs: Vec<_> = got.iter().map(|m| &m.0).collect();
        assert!(
            want(&got),
            "relay smtputf8={utf8_relay}: {envs:?}\n{}",
            d.log()
        );
        if utf8_relay {
            let (env, body) = got
                .iter()
                .find(|(e, _)| e["rcpt_tos"][0] == "jürgen@bücher.example")
                .unwrap();
            let opts = env["mail_options"].to_string();
            assert!(opts.contains("SMTPUTF8"), "{opts}");
            assert_eq!(env["mail_from"], "<>", "reports go from the null sender");
            assert!(String::from_utf8_lossy(body).contains("Action: delivered"));
        } else {
            let (env, body) = got
                .iter()
                .find(|(_, b)| String::from_utf8_lossy(b).contains("does not offer SMTPUTF8"))
                .unwrap();
            assert!(
                !env["rcpt_tos"].to_string().contains("rgen@"),
                "the notice goes to the admin: {env}"
            );
            assert!(String::from_utf8_lossy(body).contains("RFC 6531"));
            assert!(d.log().contains("dead-lettered"), "{}", d.log());
        }
    }
}

/// Subject addressing end to end (`FAXGATE_OFFRAMP__SUBJECT_ADDRESS=fax`): smtplib to
/// `fax@localhost` with `Fax: +1 212 555 0123 - Invoice 42` becomes a fax on the loopback
/// line and a success report; the fax job's subject is what follows the number.
#[test]
fn subject_addressed_mail_becomes_a_fax_with_the_rest_as_its_subject() {
    let python = common::require_tool("python3", "python3");
    let dir = tempfile::tempdir().unwrap();
    let mut d = common::daemon::Daemon::new(dir.path());
    d.start(&[("FAXGATE_OFFRAMP__SUBJECT_ADDRESS", "fax")]);
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "you@example.org"; m["To"] = "fax@localhost"
m["Subject"] = "Fax: +1 212 555 0123 - Invoice 42"
m.set_content("Invoice 42\n12 boxes of fax paper\n")
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
assert s.send_message(m, rcpt_options=["NOTIFY=SUCCESS"]) == {}
s.quit()
"#;
    let o = Command::new(python)
        .args(["-c", script, &d.port.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = fax_and_report(&d);
    assert!(report.contains("Action: delivered"), "{report}");
    assert!(
        report.contains("Final-Recipient: rfc822; fax@localhost"),
        "{report}"
    );
    let spool = Spool::attach(&d.data().join("spool"), SpoolOptions::default()).unwrap();
    let jobs: Vec<_> = [Area::Queue, Area::Done]
        .into_iter()
        .flat_map(|a| spool.list(a).unwrap().jobs)
        .filter_map(|r| match r.data {
            faxgate::job::JobData::FaxOut(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].options.subject, "Invoice 42");
    assert_eq!(jobs[0].e164, "+12125550123");
}
