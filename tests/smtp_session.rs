//! Transcript tests of the pure SMTP session (`faxgate::smtp::session`): every command and
//! extension, sequencing, pipelining, limits, SIZE, SMTP smuggling, AUTH and STARTTLS flows,
//! the null sender's callouts, SMTPUTF8, CHUNKING/BDAT and subject addressing.
//! No sockets: bytes in, replies and effects out, time passed in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use faxgate::config::Config;
use faxgate::mail::address::Number;
use faxgate::smtp::session::{
    AuthVerdict, CommitFailure, Envelope, Notify, Output, Policy, Ret, Session, TlsInfo,
    received_header,
};

const DOMAIN: &str = "fax.example";

fn config() -> Config {
    let mut c = Config::default();
    c.gateway.hostname = "gw.fax.example".into();
    c.gateway.domains = vec![DOMAIN.into(), "fax2.example".into()];
    c
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// What happens to commits in a transcript.
#[derive(Clone, Copy)]
enum Commit {
    Ok,
    Manual,
}

/// A session driven like the listener would, with effects carried out in memory.
struct T {
    s: Session,
    now: Instant,
    commit: Commit,
    current: Option<(Envelope, Vec<u8>)>,
    committed: Vec<(Envelope, Vec<u8>)>,
    aborted: usize,
    pending_commit: bool,
    closed: bool,
    tls_started: bool,
    auth_checks: usize,
    lock_auth: bool,
}

impl T {
    fn with(policy: Policy, peer: &str) -> T {
        let now = Instant::now();
        let addr: SocketAddr = peer.parse().unwrap();
        let mut t = T {
            s: Session::new(Arc::new(policy), addr, now),
            now,
            commit: Commit::Ok,
            current: None,
            committed: Vec::new(),
            aborted: 0,
            pending_commit: false,
            closed: false,
            tls_started: false,
            auth_checks: 0,
            lock_auth: false,
        };
        let g = t.drain();
        assert_eq!(g, "220 gw.fax.example ESMTP faxgate ready\r\n");
        t
    }

    fn new() -> T {
        T::with(Policy::from_config(&config(), false), "127.0.0.1:40000")
    }

    fn policy(f: impl FnOnce(&mut Config), tls: bool, peer: &str) -> T {
        let mut c = config();
        f(&mut c);
        T::with(Policy::from_config(&c, tls), peer)
    }

    /// Carries out every queued effect; returns the reply text written.
    fn drain(&mut self) -> String {
        let mut replies = String::new();
        while let Some(o) = self.s.poll_output() {
            match o {
                Output::Reply(r) => replies.push_str(&r),
                Output::StartTls => {
                    self.tls_started = true;
                    self.s.tls_established(
                        self.now,
                        TlsInfo {
                            protocol: "TLSv1.3".into(),
                            cipher: "TLS13_AES_128_GCM_SHA256".into(),
                        },
                    );
                }
                Output::Authenticate { user, password } => {
                    self.auth_checks += 1;
                    let v = if self.lock_auth {
                        AuthVerdict::Locked
                    } else if user == "alice" && password == "s3cret pass" {
                        AuthVerdict::Accepted
                    } else {
                        AuthVerdict::Rejected
                    };
                    self.s.auth_verdict(self.now, v);
                }
                Output::MessageStart(env) => {
                    assert!(self.current.is_none(), "message started twice");
                    self.current = Some((*env, Vec::new()));
                }
                Output::MessageData(d) => self
                    .current
                    .as_mut()
                    .expect("data without start")
                    .1
                    .extend_from_slice(&d),
                Output::MessageEnd => {
                    let m = self.current.take().expect("end without start");
                    self.committed.push(m);
                    match self.commit {
                        Commit::Ok => {
                            let id = format!("Q{}", self.committed.len());
                            self.s.commit_result(self.now, Ok(id));
                        }
                        Commit::Manual => self.pending_commit = true,
                    }
                }
                Output::MessageAbort => {
                    self.current = None;
                    self.aborted += 1;
                }
                Output::Close => self.closed = true,
            }
        }
        replies
    }

    fn send(&mut self, bytes: &str) -> String {
        self.send_bytes(bytes.as_bytes())
    }

    fn send_bytes(&mut self, bytes: &[u8]) -> String {
        self.s.feed(self.now, bytes);
        self.drain()
    }

    /// One command, one reply that starts with `want`.
    fn cmd(&mut self, line: &str, want: &str) -> String {
        let r = self.send(&format!("{line}\r\n"));
        assert!(r.starts_with(want), "{line:?}: got {r:?}, want {want:?}");
        assert_eq!(r.matches("\r\n").count(), r.lines().count());
        assert_enhanced(&r);
        r
    }

    fn hello(&mut self) {
        self.cmd(
            "EHLO client.example",
            "250-gw.fax.example Hello client.example [",
        );
    }

    fn envelope(&mut self) {
        self.hello();
        self.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
        self.cmd("RCPT TO:<FAX=+1-212-555-0142@fax.example>", "250 2.1.5");
    }
}

/// RFC 2034 §3: every 2xx/4xx/5xx reply carries an enhanced code, except the greeting and the
/// HELO/EHLO replies; 3xx replies carry none.
fn assert_enhanced(r: &str) {
    for line in r.lines() {
        let code = &line[..3];
        if line.contains(" Hello ") || line.starts_with("250-") || code.starts_with('3') {
            continue;
        }
        if line == "250 gw.fax.example" || line.starts_with("250 HELP") {
            continue;
        }
        let enh = line[4..].split(' ').next().unwrap();
        let parts: Vec<&str> = enh.split('.').collect();
        assert!(
            parts.len() == 3
                && parts[0] == &code[..1]
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
            "no enhanced code in {line:?}"
        );
    }
}

#[test]
fn ehlo_advertises_extensions() {
    let mut t = T::new();
    let r = t.send("EHLO client.example\r\n");
    assert_eq!(
        r,
        "250-gw.fax.example Hello client.example [127.0.0.1]\r\n250-PIPELINING\r\n\
         250-SIZE 26214400\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n\
         250-SMTPUTF8\r\n250-CHUNKING\r\n250 HELP\r\n"
    );
    // HELO: no extensions.
    assert_eq!(t.send("HELO client.example\r\n"), "250 gw.fax.example\r\n");
    // With a certificate and users: STARTTLS offered, AUTH only after TLS.
    let mut t = T::policy(
        |c| c.smtp.users_file = Some("users".into()),
        true,
        "127.0.0.1:1",
    );
    let r = t.send("ehlo client.example\r\n");
    assert!(r.contains("250-STARTTLS\r\n") && !r.contains("AUTH"), "{r}");
    t.cmd("STARTTLS", "220 2.0.0");
    let r = t.send("EHLO client.example\r\n");
    assert!(
        !r.contains("STARTTLS") && r.contains("250-AUTH PLAIN LOGIN\r\n"),
        "{r}"
    );
    // auth_without_tls: AUTH offered in the clear.
    let mut t = T::policy(
        |c| {
            c.smtp.users_file = Some("users".into());
            c.smtp.auth_without_tls = true;
        },
        false,
        "127.0.0.1:1",
    );
    assert!(t.send("EHLO x\r\n").contains("250-AUTH PLAIN LOGIN\r\n"));
}

#[test]
fn sequence_errors_get_503() {
    let mut t = T::new();
    t.cmd(
        "MAIL FROM:<alice@example.org>",
        "503 5.5.1 Send hello first",
    );
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fax.example>",
        "503 5.5.1 Send hello first",
    );
    t.cmd("DATA", "503 5.5.1 Send hello first");
    t.hello();
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fax.example>",
        "503 5.5.1 Need MAIL",
    );
    t.cmd("DATA", "503 5.5.1 Need MAIL");
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd(
        "MAIL FROM:<alice@example.org>",
        "503 5.5.1 Sender already specified",
    );
    t.cmd("DATA", "554 5.5.1 No valid recipients");
    t.cmd("RSET", "250 2.0.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "503 5.5.1");
    // EHLO inside a transaction resets it (RFC 5321 §4.1.4).
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.hello();
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fax.example>",
        "503 5.5.1 Need MAIL",
    );
}

#[test]
fn simple_commands() {
    let mut t = T::new();
    t.cmd("NOOP", "250 2.0.0");
    t.cmd("noop", "250 2.0.0");
    t.cmd("RSET", "250 2.0.0");
    t.cmd("RSET x", "501 5.5.4");
    t.cmd("VRFY alice", "252 2.0.0");
    t.cmd("EXPN list", "502 5.5.1");
    // A BDAT's octets are read whatever the answer (RFC 3030 §2): these 3 are not a command.
    t.send("BDAT 3\r\n");
    assert_eq!(t.send("FOO"), "503 5.5.1 Send hello first\r\n");
    t.cmd("FOO bar", "500 5.5.2 Command unrecognized");
    t.cmd("", "500 5.5.2");
    t.cmd("EHLO", "501 5.5.4");
    t.cmd("HELO a b", "501 5.5.4");
    t.cmd("STARTTLS", "502 5.5.1 STARTTLS not available");
    t.cmd("AUTH PLAIN", "503 5.5.1 Send hello first");
    t.hello();
    t.cmd("AUTH PLAIN", "502 5.5.1 AUTH not available");
    let r = t.cmd("HELP", "214-2.0.0");
    assert!(r.ends_with("214 2.0.0 End of HELP info\r\n"));
    t.cmd("QUIT", "221 2.0.0 gw.fax.example Bye");
    assert!(t.closed && t.s.is_closed());
    assert_eq!(t.send("NOOP\r\n"), "", "nothing after QUIT");
}

#[test]
fn full_transaction_keeps_envelope_and_unstuffs() {
    let mut t = T::new();
    t.hello();
    t.cmd(
        "mail from:<alice@example.org> SIZE=120 BODY=8BITMIME RET=HDRS ENVID=QQ+2Bid",
        "250 2.1.0",
    );
    t.cmd(
        "Rcpt To:<FAX=+1-212-555-0142/T33S=42@fax.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;FAX+3D+2B12125550142@fax.example",
        "250 2.1.5 Recipient <FAX=+1-212-555-0142/T33S=42@fax.example> ok: fax to +12125550142",
    );
    t.cmd(
        "RCPT TO: <12125550100@FAX2.example.> NOTIFY=NEVER",
        "250 2.1.5",
    );
    t.cmd("DATA", "354 ");
    assert!(t.current.is_some(), "message started at 354");
    let r = t.send("Subject: hi\r\n\r\n..leading dot\r\n..\r\nx\r\n...\r\n");
    assert_eq!(r, "");
    let r = t.send(".\r\n");
    assert_eq!(r, "250 2.0.0 Ok: queued as Q1\r\n");
    let (env, body) = &t.committed[0];
    assert_eq!(
        String::from_utf8_lossy(body),
        "Subject: hi\r\n\r\n.leading dot\r\n.\r\nx\r\n..\r\n"
    );
    assert_eq!(env.mail_from, "alice@example.org");
    assert_eq!(env.size, Some(120));
    assert_eq!(env.ret, Some(Ret::Hdrs));
    assert_eq!(env.envid.as_deref(), Some("QQ+id"));
    assert_eq!(env.client.helo, "client.example");
    assert!(env.client.esmtp);
    assert_eq!(env.recipients.len(), 2);
    let r0 = &env.recipients[0];
    assert_eq!(r0.number, Number::Global("12125550142".into()));
    assert_eq!(r0.subaddress.as_deref(), Some("42"));
    assert_eq!(r0.destination.dial, "12125550142");
    assert_eq!(r0.notify, Some(vec![Notify::Success, Notify::Failure]));
    assert_eq!(
        r0.orcpt.as_deref(),
        Some("rfc822;FAX=+12125550142@fax.example")
    );
    let r1 = &env.recipients[1];
    assert_eq!(r1.number, Number::Site("12125550100".into()));
    assert_eq!(r1.destination.e164, "+12125550100");
    assert_eq!(r1.notify, Some(vec![Notify::Never]));
    // The envelope serialises for the spool record and comes back intact.
    let json = serde_json::to_value(env).unwrap();
    let back: Envelope = serde_json::from_value(json).unwrap();
    assert_eq!(&back, env);
    // A second transaction on the same connection.
    t.cmd("MAIL FROM:<bob@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125551213@fax.example>", "250 2.1.5");
    t.cmd("DATA", "354");
    assert_eq!(t.send(".\r\n"), "250 2.0.0 Ok: queued as Q2\r\n");
    assert_eq!(t.committed[1].1, b"");
}

#[test]
fn mail_and_rcpt_parameters_checked() {
    let mut t = T::new();
    t.hello();
    t.cmd("MAIL FROM:alice@example.org", "501 5.5.4");
    t.cmd("MAIL TO:<alice@example.org>", "501 5.5.4");
    t.cmd("MAIL FROM:<alice@example.org>X", "501 5.5.4");
    t.cmd("MAIL FROM:<alice>", "553 5.1.7");
    t.cmd("MAIL FROM:<alice@example.org> SMTPUTF8=yes", "501 5.5.4");
    t.cmd("MAIL FROM:<ålice@example.org>", "553 5.6.7");
    t.cmd("MAIL FROM:<alice@example.org> SIZE=abc", "501 5.5.4");
    t.cmd("MAIL FROM:<alice@example.org> SIZE=1 SIZE=2", "501 5.5.4");
    t.cmd("MAIL FROM:<alice@example.org> BODY=BINARYMIME", "501 5.5.4");
    t.cmd("MAIL FROM:<alice@example.org> RET=ALL", "501 5.5.4");
    t.cmd("MAIL FROM:<alice@example.org> ENVID=a=b", "501 5.5.4");
    let long = "x".repeat(101);
    t.cmd(
        &format!("MAIL FROM:<alice@example.org> ENVID={long}"),
        "501 5.5.4",
    );
    t.cmd(
        "MAIL FROM:<@relay.example:alice@example.org> AUTH=<>",
        "250 2.1.0",
    );
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fax.example> NOTIFY=NEVER,SUCCESS",
        "501 5.5.4",
    );
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fax.example> NOTIFY=SOMETIMES",
        "501 5.5.4",
    );
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fax.example> ORCPT=rfc822",
        "501 5.5.4",
    );
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example> FOO=1", "555 5.5.4");
    t.cmd("RCPT TO:FAX=+12125550142@fax.example", "501 5.5.4");
    t.cmd(
        "RCPT TO:<alice@fax.example>",
        "550 5.1.1 <alice@fax.example>: not a fax address",
    );
    t.cmd("RCPT TO:<FAX=+1-800-FLOWERS@fax.example>", "550 5.1.1");
    t.cmd("RCPT TO:<a b@fax.example>", "553 5.1.3");
}

/// The ESMTP parameter replies byte for byte, for MAIL and RCPT alike (one parameter walker
/// serves both): keywords are case-insensitive, a repeat is refused when it is reached (an
/// earlier bad value is reported first), an unknown keyword gets 555.
#[test]
fn esmtp_parameter_replies_exact() {
    let mut t = T::new();
    t.hello();
    let mail = |t: &mut T, p: &str| t.send(&format!("MAIL FROM:<alice@example.org> {p}\r\n"));
    assert_eq!(
        mail(&mut t, "SIZE=1 size=2"),
        "501 5.5.4 Duplicate parameter SIZE\r\n"
    );
    assert_eq!(
        mail(&mut t, "SIZE=x SIZE=2"),
        "501 5.5.4 Bad SIZE value\r\n"
    );
    assert_eq!(
        mail(&mut t, "body=8bitmime Binarymime"),
        "555 5.5.4 Unsupported parameter BINARYMIME\r\n"
    );
    assert_eq!(mail(&mut t, "BODY"), "501 5.5.4 Bad BODY value\r\n");
    assert_eq!(
        mail(&mut t, "SIZE=999999999999"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(
        mail(&mut t, "RET=hdrs  ENVID=abc+2B"),
        "250 2.1.0 Sender <alice@example.org> ok\r\n"
    );
    let rcpt =
        |t: &mut T, p: &str| t.send(&format!("RCPT TO:<FAX=+12125550142@fax.example> {p}\r\n"));
    assert_eq!(
        rcpt(&mut t, "NOTIFY=NEVER notify=DELAY"),
        "501 5.5.4 Duplicate parameter NOTIFY\r\n"
    );
    assert_eq!(
        rcpt(&mut t, "ORCPT=x ORCPT=rfc822;a@b"),
        "501 5.5.4 Bad ORCPT value\r\n"
    );
    assert_eq!(
        rcpt(&mut t, "SIZE=1"),
        "555 5.5.4 Unsupported parameter SIZE\r\n"
    );
    assert_eq!(
        rcpt(
            &mut t,
            "NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob+40example.org"
        ),
        "250 2.1.5 Recipient <FAX=+12125550142@fax.example> ok: fax to +12125550142\r\n"
    );
}

/// The listener's message-rate hold: a MAIL before the instant gets `421 4.7.0` and the
/// session closes; other commands are served; at the instant itself MAIL is accepted.
#[test]
fn message_rate_hold_refuses_mail_with_421() {
    let mut t = T::new();
    let until = t.now + Duration::from_secs(1);
    t.s.hold_mail_until(Some(until));
    t.cmd(
        "MAIL FROM:<alice@example.org>",
        "503 5.5.1 Send hello first",
    );
    t.hello();
    t.cmd("NOOP", "250 2.0.0");
    assert_eq!(
        t.send("MAIL FROM:<alice@example.org>\r\nNOOP\r\n"),
        "421 4.7.0 gw.fax.example Too many messages from your address, try again later\r\n"
    );
    assert!(t.closed && t.s.is_closed());
    assert!(t.committed.is_empty());

    let mut t = T::new();
    t.hello();
    t.s.hold_mail_until(Some(t.now));
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.s.hold_mail_until(None);
    t.cmd("RSET", "250 2.0.0");
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
}

#[test]
fn relay_attempts_refused_at_rcpt() {
    let mut t = T::new();
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    for rcpt in [
        "FAX=+12125550142@other.example",
        "FAX=+12125550142@fax.example.evil.example",
        "user%other.example@fax.example",
        "FAX=+12125550142%other.example@fax.example",
        "@a.example,@b.example:FAX=+12125550142@fax.example",
        "@fax.example:user@other.example",
        "\"user@other.example\"@fax.example",
        "\"FAX=+12125550142@other.example\"@fax.example",
        "FAX=+12125550142@[127.0.0.1]",
        "FAX=+12125550142@[IPv6:::1]",
        "other!user@fax.example",
    ] {
        let r = t.cmd(&format!("RCPT TO:<{rcpt}>"), "550 5.7.1 ");
        assert!(
            r.contains("relay") || r.contains("source route") || r.contains("IP-literal"),
            "{rcpt}: {r}"
        );
    }
    t.cmd("DATA", "554 5.5.1");
}

#[test]
fn dial_plan_refusals_say_why() {
    let mut t = T::new();
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    let r = t.cmd("RCPT TO:<FAX=+1-900-555-0142@fax.example>", "550 5.7.1");
    assert!(r.contains("premium-rate"), "{r}");
    let r = t.cmd("RCPT TO:<FAX=+44-20-7946-0000@fax.example>", "550 5.7.1");
    assert!(r.contains("international"), "{r}");
    let r = t.cmd("RCPT TO:<FAX=+1212@fax.example>", "550 5.1.1");
    assert!(r.contains("not a valid"), "{r}");
    let mut t = T::policy(
        |c| c.dialplan.deny = vec!["+1212555*".into()],
        false,
        "127.0.0.1:1",
    );
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    let r = t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "550 5.7.1");
    assert!(r.contains("denied by the dial plan"), "{r}");
    // Site forms off: plain digits are not fax addresses.
    let mut t = T::policy(|c| c.smtp.accept_plain_digits = false, false, "127.0.0.1:1");
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<12125550142@fax.example>", "550 5.1.1");
    t.cmd("RCPT TO:<fax=+12125550142@fax.example>", "250 2.1.5");
}

#[test]
fn recipient_limit() {
    let mut t = T::policy(|c| c.smtp.max_recipients = 3, false, "127.0.0.1:1");
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    for i in 0..3 {
        t.cmd(
            &format!("RCPT TO:<FAX=+1212555120{i}@fax.example>"),
            "250 2.1.5",
        );
    }
    t.cmd(
        "RCPT TO:<FAX=+12125551209@fax.example>",
        "452 4.5.3 Too many recipients",
    );
    t.cmd("DATA", "354");
    t.send("x\r\n.\r\n");
    assert_eq!(t.committed[0].0.recipients.len(), 3);
}

#[test]
fn pipelined_batch_gets_replies_in_order() {
    let mut t = T::new();
    let r = t.send(
        "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<FAX=+12125550142@fax.example>\r\n\
         RCPT TO:<nobody@other.example>\r\nRCPT TO:<FAX=+12125551213@fax.example>\r\nDATA\r\n\
         Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<FAX=+12125551214@fax.example>\r\n\
         DATA\r\nsecond\r\n.\r\nQUIT\r\n",
    );
    let codes: Vec<&str> = r
        .lines()
        .filter(|l| !l.starts_with("250-"))
        .map(|l| &l[..3])
        .collect();
    assert_eq!(
        codes,
        [
            "250", "250", "250", "550", "250", "354", "250", "250", "250", "354", "250", "221"
        ],
        "{r}"
    );
    assert_eq!(t.committed.len(), 2);
    assert_eq!(t.committed[0].0.recipients.len(), 2);
    assert_eq!(t.committed[1].1, b"second\r\n");
    assert!(t.closed);
}

#[test]
fn replies_wait_for_the_commit() {
    let mut t = T::new();
    t.commit = Commit::Manual;
    t.envelope();
    t.cmd("DATA", "354");
    // End of data and a pipelined NOOP: nothing is answered before the commit.
    assert_eq!(t.send("hello\r\n.\r\nNOOP\r\n"), "");
    assert!(t.pending_commit);
    assert!(
        !t.s.wants_input(),
        "input waits while the commit is pending"
    );
    assert_eq!(t.s.poll_at(), None);
    t.s.commit_result(t.now, Ok("ABC123".into()));
    assert_eq!(
        t.drain(),
        "250 2.0.0 Ok: queued as ABC123\r\n250 2.0.0 Ok\r\n"
    );
    // Spool failures: 451, 452 for space, 554 for a permanent refusal.
    for (f, want) in [
        (
            CommitFailure {
                temporary: true,
                no_space: false,
                reason: "I/O error".into(),
            },
            "451 4.3.0",
        ),
        (
            CommitFailure {
                temporary: true,
                no_space: true,
                reason: "disk full".into(),
            },
            "452 4.3.1",
        ),
        (
            CommitFailure {
                temporary: false,
                no_space: false,
                reason: "bad".into(),
            },
            "554 5.3.0",
        ),
    ] {
        t.cmd("MAIL FROM:<alice@example.org>", "250");
        t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250");
        t.cmd("DATA", "354");
        assert_eq!(t.send("x\r\n.\r\n"), "");
        t.s.commit_result(t.now, Err(f));
        let r = t.drain();
        assert!(r.starts_with(want), "{r}");
    }
}

#[test]
fn smuggling_variants_are_not_end_of_data() {
    // Each of these would end data on a lax server; here they are message content.
    for fake in [
        "\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\rX", "\n.\r\nX",
    ] {
        let mut t = T::new();
        t.envelope();
        t.cmd("DATA", "354");
        let smuggled = format!(
            "a{fake}MAIL FROM:<evil@example.org>\r\nRCPT TO:<FAX=+19005550000@fax.example>\r\nDATA\r\n"
        );
        assert_eq!(t.send(&smuggled), "", "{fake:?} ended the data");
        assert!(t.s.in_data(), "{fake:?}");
        assert_eq!(
            t.send(".\r\n"),
            "250 2.0.0 Ok: queued as Q1\r\n",
            "{fake:?}"
        );
        assert_eq!(t.committed.len(), 1);
        let body = String::from_utf8(t.committed[0].1.clone()).unwrap();
        assert!(
            body.contains("MAIL FROM:<evil@example.org>"),
            "{fake:?}: {body:?}"
        );
        // Stored with CRLF line ends only (bare CR and LF normalised).
        let b = body.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            assert!(
                c != b'\n' || (i > 0 && b[i - 1] == b'\r'),
                "{fake:?}: {body:?}"
            );
            assert!(
                c != b'\r' || b.get(i + 1) == Some(&b'\n'),
                "{fake:?}: {body:?}"
            );
        }
        assert_eq!(t.committed[0].0.recipients.len(), 1);
    }
}

#[test]
fn data_split_at_every_byte_is_the_same() {
    let msg = "A: b\r\n\r\n..x\r\n.\rq\r\nlast\r\r\n\n.\nz\r\n.\r\n";
    let mut whole = T::new();
    whole.envelope();
    whole.cmd("DATA", "354");
    whole.send(msg);
    for cut in 0..msg.len() {
        let mut t = T::new();
        t.envelope();
        t.cmd("DATA", "354");
        t.send(&msg[..cut]);
        t.send(&msg[cut..]);
        assert_eq!(t.committed[0].1, whole.committed[0].1, "cut at {cut}");
    }
    // Bare CRs and LFs are stored as CRLF; the dot after a bare LF is data, not stuffing.
    assert_eq!(
        whole.committed[0].1,
        b"A: b\r\n\r\n.x\r\n\r\nq\r\nlast\r\n\r\n\r\n.\r\nz\r\n"
    );
}

#[test]
fn size_declared_and_streamed() {
    let mut t = T::policy(|c| c.smtp.max_message_size = 1024, false, "127.0.0.1:1");
    let r = t.send("EHLO x\r\n");
    assert!(r.contains("250-SIZE 1024\r\n"));
    t.cmd("MAIL FROM:<alice@example.org> SIZE=1025", "552 5.3.4");
    t.cmd("MAIL FROM:<alice@example.org> SIZE=1024", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250");
    t.cmd("DATA", "354");
    let line = format!("{}\r\n", "y".repeat(98));
    for _ in 0..20 {
        assert_eq!(t.send(&line), "");
    }
    assert_eq!(t.aborted, 1, "spooled data discarded once over the limit");
    assert!(t.current.is_none());
    // Drained to the end, then 552; the session goes on.
    assert_eq!(
        t.send(".\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(t.committed.is_empty());
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250");
    t.cmd("DATA", "354");
    let exact = "z".repeat(1022) + "\r\n";
    assert_eq!(
        t.send(&format!("{exact}.\r\n")),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
    assert_eq!(t.committed[0].1.len(), 1024);
}

#[test]
fn line_length_limits() {
    let mut t = T::new();
    t.hello();
    // Just under the limit is parsed; over it is refused, and the session continues.
    let long = format!("NOOP {}", "x".repeat(2000));
    t.cmd(&long, "250 2.0.0");
    let too_long = format!("NOOP {}", "x".repeat(5000));
    t.cmd(&too_long, "500 5.5.2 Line too long");
    // Far over the limit without a line end: buffered input stays bounded.
    for _ in 0..100 {
        assert_eq!(t.send(&"y".repeat(10_000)), "");
        assert!(t.s.wants_input());
    }
    assert_eq!(t.send("\r\n"), "500 5.5.2 Line too long\r\n");
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    // Text lines over 1000 octets are accepted in DATA (STANDARDS: never crash).
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250");
    t.cmd("DATA", "354");
    let big = "w".repeat(100_000);
    t.send(&format!("{big}\r\n.\r\n"));
    assert_eq!(t.committed[0].1.len(), 100_002);
}

#[test]
fn auth_plain_and_login() {
    let users = |c: &mut Config| c.smtp.users_file = Some("users".into());
    // Without TLS and without auth_without_tls: 538.
    let mut t = T::policy(users, true, "192.0.2.7:1");
    t.hello();
    t.cmd("AUTH PLAIN", "538 5.7.11");
    // After STARTTLS.
    t.cmd("STARTTLS", "220 2.0.0");
    t.cmd(
        "MAIL FROM:<alice@example.org>",
        "503 5.5.1 Send hello first",
    );
    t.hello();
    // Not in client_networks, not authenticated: 530 says why.
    let r = t.cmd(
        "MAIL FROM:<alice@example.org>",
        "530 5.7.0 Authentication required",
    );
    assert!(r.contains("[192.0.2.7]"), "{r}");
    t.cmd("AUTH CRAM-MD5", "504 5.5.4");
    t.cmd("AUTH", "501 5.5.4");
    t.cmd("AUTH PLAIN !!!", "501 5.5.2");
    t.cmd("AUTH PLAIN", "334 ");
    t.cmd("*", "501 5.0.0 Authentication cancelled");
    t.cmd(
        &format!("AUTH PLAIN {}", b64("\0alice\0wrong")),
        "535 5.7.8",
    );
    t.cmd(
        &format!("AUTH PLAIN {}", b64("bob\0alice\0s3cret pass")),
        "535 5.7.8",
    );
    t.cmd("AUTH PLAIN", "334 ");
    t.cmd(&b64("alice\0alice\0s3cret pass"), "235 2.7.0");
    t.cmd("AUTH PLAIN", "503 5.5.1 Already authenticated");
    t.cmd(
        "MAIL FROM:<alice@example.org> AUTH=alice@example.org",
        "250 2.1.0",
    );
    t.cmd("AUTH LOGIN", "503 5.5.1");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250");
    t.cmd("DATA", "354");
    t.send("x\r\n.\r\n");
    let env = &t.committed[0].0;
    assert_eq!(env.auth_user.as_deref(), Some("alice"));
    assert_eq!(env.mail_auth.as_deref(), Some("alice@example.org"));
    assert_eq!(env.tls.as_ref().unwrap().protocol, "TLSv1.3");
    assert_eq!(
        t.auth_checks, 2,
        "malformed and proxy-authz exchanges never reach the password check"
    );

    // LOGIN, with and without initial response.
    let mut t = T::policy(
        |c| {
            users(c);
            c.smtp.auth_without_tls = true;
        },
        false,
        "192.0.2.7:1",
    );
    t.hello();
    assert_eq!(t.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        t.send(&format!("{}\r\n", b64("alice"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    t.cmd(&b64("s3cret pass"), "235 2.7.0");
    let mut t = T::policy(
        |c| {
            users(c);
            c.smtp.auth_without_tls = true;
        },
        false,
        "192.0.2.7:1",
    );
    t.hello();
    assert_eq!(
        t.send(&format!("AUTH LOGIN {}\r\n", b64("alice"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    t.cmd(&b64("nope"), "535 5.7.8");
}

#[test]
fn auth_failures_close_and_lockout() {
    let mut t = T::policy(
        |c| {
            c.smtp.users_file = Some("users".into());
            c.smtp.auth_without_tls = true;
            c.smtp.max_auth_failures = 2;
        },
        false,
        "192.0.2.7:1",
    );
    t.hello();
    t.cmd(&format!("AUTH PLAIN {}", b64("\0alice\0x")), "535 5.7.8");
    t.cmd(&format!("AUTH PLAIN {}", b64("\0alice\0y")), "421 4.7.0");
    assert!(t.closed);
    let mut t = T::policy(
        |c| {
            c.smtp.users_file = Some("users".into());
            c.smtp.auth_without_tls = true;
        },
        false,
        "192.0.2.7:1",
    );
    t.lock_auth = true;
    t.hello();
    t.cmd(
        &format!("AUTH PLAIN {}", b64("\0alice\0s3cret pass")),
        "454 4.7.0",
    );
    assert!(!t.closed);
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    let mut t = T::policy(|_| {}, true, "127.0.0.1:1");
    t.cmd("STARTTLS", "503 5.5.1 Send hello first");
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250");
    t.cmd("STARTTLS", "503 5.5.1 Mail transaction in progress");
    t.cmd("RSET", "250");
    t.cmd("STARTTLS x", "501 5.5.4");
    // CVE-2011-0411: commands injected after STARTTLS in the clear are never executed.
    let r = t.send("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n");
    assert_eq!(r, "220 2.0.0 Ready to start TLS\r\n");
    assert!(t.tls_started);
    t.cmd(
        "MAIL FROM:<alice@example.org>",
        "503 5.5.1 Send hello first",
    );
    t.hello();
    t.cmd("STARTTLS", "503 5.5.1 TLS already active");
    t.cmd("MAIL FROM:<alice@example.org>", "250");
}

#[test]
fn who_may_send() {
    // require_tls
    let mut t = T::policy(|c| c.smtp.require_tls = true, true, "127.0.0.1:1");
    t.hello();
    t.cmd(
        "MAIL FROM:<alice@example.org>",
        "530 5.7.0 Must issue a STARTTLS command first",
    );
    // require_auth, even from a trusted network
    let mut t = T::policy(
        |c| {
            c.smtp.require_auth = true;
            c.smtp.users_file = Some("u".into());
        },
        true,
        "127.0.0.1:1",
    );
    t.hello();
    t.cmd(
        "MAIL FROM:<alice@example.org>",
        "530 5.7.0 Authentication required",
    );
    // A foreign network with no AUTH configured: 550 saying why.
    let mut t = T::policy(|_| {}, false, "198.51.100.9:1");
    t.hello();
    let r = t.cmd(
        "MAIL FROM:<alice@example.org>",
        "550 5.7.1 Client [198.51.100.9]",
    );
    assert!(r.contains("not in a network allowed"), "{r}");
    // IPv4-mapped IPv6 loopback counts as 127.0.0.1.
    let mut t = T::policy(|_| {}, false, "[::ffff:127.0.0.1]:1");
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250");
    // allowed_senders: address or @domain.
    let mut t = T::policy(
        |c| c.smtp.allowed_senders = vec!["alice@example.org".into(), "@corp.example".into()],
        false,
        "127.0.0.1:1",
    );
    t.hello();
    t.cmd("MAIL FROM:<alice@EXAMPLE.org>", "250");
    t.cmd("RSET", "250");
    t.cmd("MAIL FROM:<anyone@Corp.Example>", "250");
    t.cmd("RSET", "250");
    let r = t.cmd(
        "MAIL FROM:<mallory@example.org>",
        "550 5.7.1 Sender <mallory@example.org>",
    );
    assert!(r.contains("not allowed"), "{r}");
}

#[test]
fn timeouts_follow_rfc5321() {
    let mut t = T::new();
    let start = t.now;
    assert_eq!(t.s.poll_at(), Some(start + Duration::from_secs(300)));
    t.s.on_timeout(start + Duration::from_secs(299));
    assert_eq!(t.drain(), "");
    t.envelope();
    t.cmd("DATA", "354");
    assert_eq!(t.s.poll_at(), Some(start + Duration::from_secs(180)));
    t.s.on_timeout(start + Duration::from_secs(180));
    let r = t.drain();
    assert_eq!(r, "421 4.4.2 gw.fax.example Error: timeout exceeded\r\n");
    assert_eq!(t.aborted, 1);
    assert!(t.closed);
    assert_eq!(t.s.poll_at(), None);
}

/// A client that sends a byte before every timeout is still closed when the session has
/// lasted `smtp.max_session` (time is an input: no clock involved).
#[test]
fn session_lifetime_is_capped() {
    let mut t = T::policy(
        |c| c.smtp.max_session = Duration::from_secs(600),
        false,
        "127.0.0.1:40000",
    );
    let start = t.now;
    t.envelope();
    t.cmd("DATA", "354");
    // One byte every 170 s: under the 180 s data timeout each time.
    for i in 1..=2u64 {
        t.now = start + Duration::from_secs(170 * i);
        assert_eq!(t.send("x"), "");
        assert_eq!(
            t.s.poll_at(),
            Some(t.now + Duration::from_secs(180)),
            "byte {i}"
        );
    }
    // The third byte keeps the data timeout alive past the lifetime: the lifetime wins.
    t.now = start + Duration::from_secs(170 * 3);
    t.send("x");
    assert_eq!(t.s.poll_at(), Some(start + Duration::from_secs(600)));
    t.s.on_timeout(start + Duration::from_secs(599));
    assert_eq!(t.drain(), "");
    t.s.on_timeout(start + Duration::from_secs(600));
    let r = t.drain();
    assert_eq!(
        r,
        "421 4.4.2 gw.fax.example Error: session time limit exceeded\r\n"
    );
    assert_eq!(t.aborted, 1);
    assert!(t.committed.is_empty());
    assert!(t.closed);
}

#[test]
fn graceful_shutdown() {
    let mut t = T::new();
    t.hello();
    t.s.shutdown();
    assert!(t.drain().starts_with("421 4.3.2"));
    assert!(t.closed);
    // A message being received is finished first.
    let mut t = T::new();
    t.envelope();
    t.cmd("DATA", "354");
    t.send("part one\r\n");
    t.s.shutdown();
    assert_eq!(t.drain(), "");
    let r = t.send("part two\r\n.\r\nMAIL FROM:<a@example.org>\r\n");
    assert_eq!(
        r,
        "250 2.0.0 Ok: queued as Q1\r\n421 4.3.2 gw.fax.example Service shutting down, try again later\r\n"
    );
    assert_eq!(t.committed[0].1, b"part one\r\npart two\r\n");
    assert!(t.closed);
}

#[test]
fn client_eof_aborts_message() {
    let mut t = T::new();
    t.envelope();
    t.cmd("DATA", "354");
    t.send("partial");
    t.s.eof();
    t.drain();
    assert_eq!(t.aborted, 1);
    assert!(t.committed.is_empty() && t.closed);
}

#[test]
fn received_header_names_client_protocol_and_id() {
    let mut t = T::new();
    t.envelope();
    t.cmd("DATA", "354");
    t.send(".\r\n");
    let h = received_header(
        &t.committed[0].0,
        "gw.fax.example",
        "Q1",
        "Sat, 28 Nov 2026 22:00:00 +0000",
    );
    assert_eq!(
        h,
        "Received: from client.example ([127.0.0.1])\r\n\tby gw.fax.example (faxgate) with ESMTP id Q1\r\n\
         \tfor <FAX=+1-212-555-0142@fax.example>; Sat, 28 Nov 2026 22:00:00 +0000\r\n"
    );
}

/// RFC 5321 §4.5.1: postmaster is accepted in the bare form and at each of our domains, any
/// case, with the usual RCPT parameters, outside the fax dial plan; marked as such in the
/// envelope.
#[test]
fn postmaster_accepted_in_every_form() {
    let mut t = T::new();
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd(
        "RCPT TO:<postmaster>",
        "250 2.1.5 Recipient <postmaster> ok: postmaster",
    );
    t.cmd("rcpt to:<PostMaster>", "250 2.1.5");
    t.cmd(
        "RCPT TO:<POSTMASTER@fax.example> NOTIFY=FAILURE ORCPT=rfc822;postmaster@fax.example",
        "250 2.1.5 Recipient <POSTMASTER@fax.example> ok: postmaster",
    );
    t.cmd("RCPT TO:<postmaster@FAX2.example.>", "250 2.1.5");
    t.cmd("RCPT TO:<\"Postmaster\"@fax.example>", "250 2.1.5");
    t.cmd(
        "RCPT TO:<FAX=+1-212-555-0142@fax.example>",
        "250 2.1.5 Recipient <FAX=+1-212-555-0142@fax.example> ok: fax to +12125550142",
    );
    // Parameters are checked as for any recipient.
    t.cmd("RCPT TO:<postmaster> NOTIFY=SOMETIMES", "501 5.5.4");
    t.cmd("RCPT TO:<postmaster> XYZZY=1", "555 5.5.4");
    t.cmd("DATA", "354");
    t.send("Subject: hello postmaster\r\n\r\nhi\r\n.\r\n");
    let env = &t.committed[0].0;
    assert_eq!(
        env.postmaster,
        [
            "postmaster",
            "PostMaster",
            "POSTMASTER@fax.example",
            "postmaster@FAX2.example.",
            "\"Postmaster\"@fax.example"
        ]
    );
    assert_eq!(env.recipients.len(), 1);
    assert_eq!(env.recipients[0].destination.e164, "+12125550142");
}

/// Only the postmaster: DATA is accepted (there is a valid recipient) and the Received
/// header names it.
#[test]
fn postmaster_alone_is_a_valid_message() {
    let mut t = T::new();
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<Postmaster@fax.example>", "250 2.1.5");
    t.cmd("DATA", "354");
    assert_eq!(t.send("x\r\n.\r\n"), "250 2.0.0 Ok: queued as Q1\r\n");
    let env = &t.committed[0].0;
    assert!(env.recipients.is_empty());
    let h = received_header(
        env,
        "gw.fax.example",
        "Q1",
        "Sat, 28 Nov 2026 22:00:00 +0000",
    );
    assert!(h.contains("\tfor <Postmaster@fax.example>;"), "{h}");
}

/// The postmaster of somebody else is still relaying; near misses are not the postmaster;
/// the sender rules and the recipient cap apply to the postmaster too.
#[test]
fn postmaster_is_ours_only_and_follows_the_rules() {
    let mut t = T::policy(|c| c.smtp.max_recipients = 2, false, "127.0.0.1:1");
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    for rcpt in [
        "postmaster@other.example",
        "postmaster%other.example@fax.example",
        "@fax.example:postmaster@other.example",
        "@a.example:postmaster@fax.example",
        "\"postmaster@other.example\"@fax.example",
        "postmaster@[127.0.0.1]",
    ] {
        t.cmd(&format!("RCPT TO:<{rcpt}>"), "550 5.7.1 ");
    }
    for rcpt in [
        "postmasters@fax.example",
        "post.master@fax.example",
        "\"postmaster \"@fax.example",
    ] {
        t.cmd(&format!("RCPT TO:<{rcpt}>"), "550 5.1.1 ");
    }
    t.cmd("RCPT TO:<postmaster >", "553 5.1.3");
    t.cmd("RCPT TO:<postmaster>", "250 2.1.5");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    t.cmd(
        "RCPT TO:<postmaster@fax.example>",
        "452 4.5.3 Too many recipients",
    );
    // A client outside the allowed networks cannot reach the postmaster either (MAIL refused).
    let mut t = T::policy(|_| {}, false, "198.51.100.9:1");
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "550 5.7.1");
    t.cmd("RCPT TO:<postmaster>", "503 5.5.1");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes, any chunking: no panic, one reply per complete command line at most,
    /// buffered input bounded.
    #[test]
    fn arbitrary_input_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..20)) {
        let mut t = T::policy(|c| { c.smtp.users_file = Some("u".into()); c.smtp.auth_without_tls = true; }, true, "127.0.0.1:1");
        for c in &chunks {
            t.s.feed(t.now, c);
            t.drain();
        }
        t.s.on_timeout(t.now + Duration::from_secs(3600));
        t.drain();
        proptest::prop_assert!(t.s.is_closed() || t.s.poll_at().is_none());
    }

    /// Command-shaped noise: verbs the session knows, random arguments.
    #[test]
    fn command_noise_never_panics(lines in proptest::collection::vec(
        ("(EHLO|HELO|MAIL FROM:|RCPT TO:|DATA|RSET|AUTH PLAIN|AUTH LOGIN|STARTTLS|\\.|NOOP)", "[ <>@\"%!:,=+a-zA-Z0-9./\\\\-]{0,60}"), 0..30)) {
        let mut t = T::policy(|c| { c.smtp.users_file = Some("u".into()); c.smtp.auth_without_tls = true; }, true, "127.0.0.1:1");
        for (v, a) in &lines {
            t.send(&format!("{v}{a}\r\n"));
        }
    }
}

// ---- MAIL FROM:<> (RFC 5321 §4.5.5): recipient callouts answered, no fax without a sender ----

/// A Postfix-style recipient verification callout (`MAIL FROM:<>`, `RCPT TO:`, `QUIT`) gets
/// the same RCPT answers as any sender; the null sender's DATA and BDAT are refused with a
/// reply that says why, the BDAT's octets read (not taken for commands), nothing spooled.
#[test]
fn null_sender_callout_answered_and_its_data_refused() {
    let mut t = T::policy(
        |c| c.smtp.allowed_senders = vec!["@example.org".into()],
        false,
        "127.0.0.1:1",
    );
    t.hello();
    t.cmd("MAIL FROM:<>", "250 2.1.0 Sender <> ok");
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fax.example>",
        "250 2.1.5 Recipient <FAX=+12125550142@fax.example> ok: fax to +12125550142",
    );
    t.cmd(
        "RCPT TO:<alice@fax.example>",
        "550 5.1.1 <alice@fax.example>: not a fax address",
    );
    t.cmd("RCPT TO:<FAX=+12125550142@elsewhere.example>", "550 5.7.1");
    t.cmd("RCPT TO:<postmaster>", "250 2.1.5");
    assert_eq!(
        t.send("DATA\r\n"),
        "550 5.7.1 The null sender <> cannot send a fax: the fax's outcome would have no one \
         to be reported to (recipients can be checked with MAIL FROM:<>)\r\n"
    );
    let r = t.send("BDAT 6 LAST\r\nRSET\r\n");
    assert!(
        r.starts_with("550 5.7.1 The null sender <> cannot send a fax"),
        "{r}"
    );
    assert_eq!(r.lines().count(), 1, "the 6 octets were the chunk: {r}");
    t.cmd("NOOP", "250 2.0.0");
    assert!(t.current.is_none() && t.committed.is_empty() && t.aborted == 0);
    t.cmd("QUIT", "221 2.0.0");
    // Pipelined, as an MTA's callout is sent.
    let mut t = T::new();
    let r = t.send(
        "EHLO mta.example\r\nMAIL FROM:<>\r\nRCPT TO:<FAX=+12125550142@fax.example>\r\nQUIT\r\n",
    );
    let codes: Vec<&str> = r
        .lines()
        .map(|l| &l[..4])
        .filter(|c| c.ends_with(' '))
        .collect();
    assert_eq!(codes, ["250 ", "250 ", "250 ", "221 "], "{r}");
}

// ---- SMTPUTF8 (RFC 6531) ----

#[test]
fn smtputf8_sender_and_header_accepted() {
    let mut t = T::new();
    let r = t.send("EHLO client.example\r\n");
    assert!(r.contains("250-SMTPUTF8\r\n"), "{r}");
    // RFC 6531 §3.5: non-ASCII without SMTPUTF8 is 553 5.6.7.
    assert_eq!(
        t.send("MAIL FROM:<jürgen@bücher.example>\r\n"),
        "553 5.6.7 <j\\u{00fc}rgen@b\\u{00fc}cher.example>: Non-ASCII addresses not permitted \
         for that sender/recipient without SMTPUTF8\r\n"
    );
    t.cmd(
        "MAIL FROM:<jürgen@bücher.example> SMTPUTF8 BODY=8BITMIME",
        "250 2.1.0",
    );
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    // A UTF-8 forward-path is read (SMTPUTF8) but is no fax number.
    t.cmd(
        "RCPT TO:<FAX=+12125550142@fäx.example>",
        "550 5.1.1 <FAX=+12125550142@f\\u{00e4}x.example>: not a fax address",
    );
    t.cmd("DATA", "354");
    let msg = "From: Jürgen <jürgen@bücher.example>\r\nSubject: Grüße\r\n\r\nÄrger\r\n";
    assert_eq!(
        t.send(&format!("{msg}.\r\n")),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
    let (env, body) = &t.committed[0];
    assert_eq!(env.mail_from, "jürgen@bücher.example");
    assert_eq!(
        body.as_slice(),
        msg.as_bytes(),
        "UTF-8 header stored as sent"
    );
    // The next transaction without SMTPUTF8: a non-ASCII RCPT is 553 5.6.7.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fäx.example>", "553 5.6.7");
    // The reply never echoes non-ASCII (RFC 5321 §4.2): it is escaped.
    let mut t = T::new();
    t.hello();
    let r = t.send("MAIL FROM:<ümlaut\u{0085}@example.org> SMTPUTF8\r\n");
    assert!(r.starts_with("553 5.1.7 Bad sender address: bad character") && r.is_ascii());
}

/// Bytes that are not UTF-8 in an SMTPUTF8 address are refused, never stored.
#[test]
fn smtputf8_refuses_bytes_that_are_not_utf8() {
    let mut t = T::new();
    t.hello();
    let r = t.send_bytes(b"MAIL FROM:<j\xfcrgen@example.org> SMTPUTF8\r\n");
    assert_eq!(r, "553 5.1.7 Bad sender address: bad character\r\n");
    let r = t.send_bytes(b"MAIL FROM:<j\xc3rgen@b\xff.example> SMTPUTF8\r\n");
    assert!(r.starts_with("553 5.1.7"), "{r}");
    t.cmd("MAIL FROM:<jürgen@example.org> SMTPUTF8", "250 2.1.0");
}

// ---- CHUNKING / BDAT (RFC 3030) ----

fn bdat_ready(f: impl FnOnce(&mut Config)) -> T {
    let mut t = T::policy(f, false, "127.0.0.1:1");
    let r = t.send("EHLO client.example\r\n");
    assert!(
        r.contains("250-CHUNKING\r\n") && !r.contains("BINARYMIME"),
        "{r}"
    );
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    t
}

#[test]
fn bdat_chunks_make_the_message_exactly() {
    let mut t = bdat_ready(|_| {});
    // No dot-stuffing in BDAT: ".." and "." lines are data. A CR at the end of one chunk and
    // the LF at the start of the next are one CRLF; bare LF and bare CR become CRLF.
    let c1 = "Subject: chunks\r\n\r\n..two dots\r\n.\r";
    let c2 = "\nbare lf\nbare cr\rend";
    assert_eq!(
        t.send(&format!("BDAT {}\r\n{c1}", c1.len())),
        format!("250 2.0.0 {} octets received\r\n", c1.len())
    );
    assert!(t.current.is_some(), "message started at the first chunk");
    assert_eq!(
        t.send(&format!("BDAT {} LAST\r\n{c2}", c2.len())),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&t.committed[0].1),
        "Subject: chunks\r\n\r\n..two dots\r\n.\r\nbare lf\r\nbare cr\r\nend"
    );
    // BDAT 0 LAST ends a message; a trailing CR is stored as a line end.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    assert_eq!(t.send("BDAT 3\r\nab\r"), "250 2.0.0 3 octets received\r\n");
    assert_eq!(t.send("bdat 0 last\r\n"), "250 2.0.0 Ok: queued as Q2\r\n");
    assert_eq!(t.committed[1].1, b"ab\r\n");
}

/// The whole exchange pipelined in one write, and the same bytes fed one at a time: the
/// same replies, the same message.
#[test]
fn bdat_pipelined_and_split_at_every_byte_is_the_same() {
    let body = "Subject: p\r\n\r\nline one\r\nline two\r\n";
    let (a, b) = body.split_at(11);
    let input = format!(
        "EHLO c\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<FAX=+12125550142@fax.example>\r\n\
         BDAT {}\r\n{a}BDAT {} LAST\r\n{b}NOOP\r\n",
        a.len(),
        b.len()
    );
    let mut whole = T::new();
    let r1 = whole.send(&input);
    let mut bytes = T::new();
    let mut r2 = String::new();
    for c in input.as_bytes() {
        r2.push_str(&bytes.send_bytes(&[*c]));
    }
    assert_eq!(r1, r2);
    assert!(
        r1.ends_with(
            "250 2.0.0 11 octets received\r\n250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok\r\n"
        ),
        "{r1}"
    );
    assert_eq!(whole.committed[0].1, body.as_bytes());
    assert_eq!(bytes.committed[0].1, body.as_bytes());
}

/// RFC 3030 §2 with RFC 1870: the size limit holds across chunks; a chunk that cannot fit is
/// refused (its octets read, not stored); BDATs pipelined behind a failed one are read and
/// answered 503; the session goes on.
#[test]
fn bdat_size_limit_across_chunks() {
    let mut t = bdat_ready(|c| c.smtp.max_message_size = 50);
    let x30 = "x".repeat(30);
    assert_eq!(
        t.send(&format!("BDAT 30\r\n{x30}")),
        "250 2.0.0 30 octets received\r\n"
    );
    let r = t.send(&format!("BDAT 30\r\n{x30}BDAT 5 LAST\r\nhelloNOOP\r\n"));
    assert_eq!(
        r,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n\
         503 5.5.1 No mail transaction (chunk discarded): send MAIL first\r\n250 2.0.0 Ok\r\n"
    );
    assert_eq!(t.aborted, 1);
    assert!(t.current.is_none() && t.committed.is_empty());
    // One chunk bigger than the whole limit: refused before anything is spooled.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    let x60 = "y".repeat(60);
    assert_eq!(
        t.send(&format!("BDAT 60 LAST\r\n{x60}")),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(t.current.is_none() && t.committed.is_empty());
    // Bare LFs grow the stored size: the limit counts what is stored, as for DATA.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    let lfs = "\n".repeat(40);
    assert_eq!(
        t.send(&format!("BDAT 40 LAST\r\n{lfs}")),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(t.aborted, 2);
    // Exactly at the limit is fine.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    let x50 = "z".repeat(50);
    assert_eq!(
        t.send(&format!("BDAT 50 LAST\r\n{x50}")),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
}

#[test]
fn bdat_sequencing() {
    let mut t = T::new();
    t.hello();
    // No transaction: refused, octets read all the same.
    assert_eq!(
        t.send("BDAT 4 LAST\r\nQUIT"),
        "503 5.5.1 No mail transaction (chunk discarded): send MAIL first\r\n"
    );
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    assert_eq!(
        t.send("BDAT 4 LAST\r\nQUIT"),
        "554 5.5.1 No valid recipients\r\n"
    );
    t.cmd("RCPT TO:<FAX=+12125550142@fax.example>", "250 2.1.5");
    assert_eq!(t.send("BDAT 2\r\nab"), "250 2.0.0 2 octets received\r\n");
    // RFC 3030 §3: no DATA in a BDAT transaction; RCPT, MAIL, STARTTLS, AUTH neither. The
    // transaction goes on.
    t.cmd("DATA", "503 5.5.1 DATA not allowed after BDAT");
    t.cmd("RCPT TO:<FAX=+12125550143@fax.example>", "503 5.5.1");
    t.cmd(
        "MAIL FROM:<bob@example.org>",
        "503 5.5.1 Sender already specified",
    );
    t.cmd("NOOP", "250 2.0.0");
    assert_eq!(
        t.send("BDAT 2 LAST\r\ncd"),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
    assert_eq!(t.committed[0].1, b"abcd");
    assert_eq!(t.committed[0].0.recipients.len(), 1);
    // DATA transactions are unchanged, and BDAT text inside DATA is data.
    t.envelope();
    t.cmd("DATA", "354");
    assert_eq!(t.send("BDAT 3\r\n.\r\n"), "250 2.0.0 Ok: queued as Q2\r\n");
    assert_eq!(t.committed[1].1, b"BDAT 3\r\n");
    // RSET between chunks drops the message.
    t.envelope();
    assert_eq!(t.send("BDAT 1\r\nz"), "250 2.0.0 1 octets received\r\n");
    t.cmd("RSET", "250 2.0.0");
    assert_eq!(t.aborted, 1);
    t.cmd("DATA", "503 5.5.1 Need MAIL");
    // EHLO between chunks too.
    t.envelope();
    assert_eq!(t.send("BDAT 1\r\nz"), "250 2.0.0 1 octets received\r\n");
    t.hello();
    assert_eq!(t.aborted, 2);
    assert!(t.current.is_none());
}

/// A BDAT whose size cannot be read leaves no way to find the chunk's end: 501 and the
/// session ends (its octets must never run as commands).
#[test]
fn bdat_bad_size_closes() {
    for bad in [
        "BDAT",
        "BDAT x",
        "BDAT -1",
        "BDAT 1.5",
        "BDAT 123456789012345678901",
        "BDAT 99999999999999999999",
        "BDAT 5 FIRST",
        "BDAT 5 LAST more",
    ] {
        let mut t = bdat_ready(|_| {});
        let r = t.send(&format!("{bad}\r\nRSET\r\n"));
        assert_eq!(
            r,
            "501 5.5.4 Syntax: BDAT chunk-size [LAST]; cannot find the end of the chunk, \
             closing\r\n",
            "{bad}"
        );
        assert!(t.closed, "{bad}");
    }
}

#[test]
fn bdat_timeout_eof_and_shutdown_drop_the_message() {
    let mut t = bdat_ready(|_| {});
    t.send("BDAT 10\r\nabc");
    assert!(t.s.in_data(), "inside a chunk the data timeout applies");
    let at = t.s.poll_at().unwrap();
    t.now = at;
    t.s.on_timeout(at);
    let r = t.drain();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert_eq!(t.aborted, 1);
    let mut t = bdat_ready(|_| {});
    t.send("BDAT 3\r\nabc");
    assert!(!t.s.in_data(), "between chunks: a command is awaited");
    t.s.eof();
    t.drain();
    assert_eq!(t.aborted, 1);
    let mut t = bdat_ready(|_| {});
    t.send("BDAT 3\r\nabc");
    t.s.shutdown();
    assert!(t.drain().starts_with("421 4.3.2"));
    assert_eq!(t.aborted, 1);
    assert!(t.closed && t.committed.is_empty());
}

// ---- Subject addressing ([offramp] subject_address) ----

fn subject_policy(c: &mut Config) {
    c.offramp.subject_address = "fax".into();
}

fn subject_message(t: &mut T, subject: &str) -> String {
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd(
        "RCPT TO:<Fax@fax.example> NOTIFY=SUCCESS",
        "250 2.1.5 Recipient <Fax@fax.example> ok: fax to the number at the start of the Subject",
    );
    t.cmd("DATA", "354");
    t.send(&format!(
        "From: a@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n.\r\n"
    ))
}

#[test]
fn subject_address_takes_the_number_from_the_subject() {
    let mut t = T::policy(subject_policy, false, "127.0.0.1:1");
    t.hello();
    let r = subject_message(&mut t, "Fax: +1 212 555 0142 - Invoice 42");
    assert_eq!(r, "250 2.0.0 Ok: queued as Q1\r\n");
    let (env, body) = &t.committed[0];
    assert_eq!(env.recipients.len(), 1);
    let rc = &env.recipients[0];
    assert_eq!(rc.address, "Fax@fax.example");
    assert_eq!(rc.destination.e164, "+12125550142");
    assert_eq!(rc.form, faxgate::mail::address::AddressForm::Subject);
    assert_eq!(rc.notify, Some(vec![Notify::Success]));
    assert!(body.starts_with(b"From: a@example.org\r\nSubject: Fax: +1 212"));
    // An RFC 2047 encoded Subject is decoded first.
    let r = subject_message(&mut t, "=?UTF-8?Q?+12125550143_R=C3=A9sum=C3=A9?=");
    assert_eq!(r, "250 2.0.0 Ok: queued as Q2\r\n");
    assert_eq!(
        t.committed[1].0.recipients[0].destination.e164,
        "+12125550143"
    );
    // Together with a FAX= recipient: both.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<FAX=+12125550144@fax.example>", "250 2.1.5");
    t.cmd("RCPT TO:<fax@fax2.example>", "250 2.1.5");
    t.cmd("DATA", "354");
    let r = t.send("Subject: +12125550145 x\r\n\r\n.\r\n");
    assert_eq!(r, "250 2.0.0 Ok: queued as Q3\r\n");
    let e164: Vec<&str> = (t.committed[2].0.recipients.iter())
        .map(|r| r.destination.e164.as_str())
        .collect();
    assert_eq!(e164, ["+12125550144", "+12125550145"]);
}

/// A Subject without a usable number: refused at the end of the data, naming the problem;
/// nothing is spooled. The dial plan applies as to `FAX=` recipients.
#[test]
fn subject_address_without_a_number_is_refused_at_end_of_data() {
    let mut t = T::policy(
        |c| {
            subject_policy(c);
            c.smtp.accept_plain_digits = false;
        },
        false,
        "127.0.0.1:1",
    );
    t.hello();
    let r = subject_message(&mut t, "Invoice 42");
    assert_eq!(
        r,
        "550 5.1.1 <Fax@fax.example>: no fax number in the Subject: bad fax number: the \
         Subject must start with the fax number, e.g. \"+12125550123 Invoice\"\r\n"
    );
    let r = subject_message(&mut t, "2125550142 Invoice");
    assert!(r.contains("needs + and the country code"), "{r}");
    let r = subject_message(&mut t, "+1 900 555 0100 premium");
    assert!(
        r.starts_with("550 5.7.1 <Fax@fax.example>: the number in the Subject: "),
        "{r}"
    );
    // No Subject at all; a header that never ends.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<fax@fax.example>", "250 2.1.5");
    t.cmd("DATA", "354");
    assert!(t.send("X: y\r\n.\r\n").starts_with("550 5.1.1"));
    assert!(t.committed.is_empty() && t.current.is_none() && t.aborted == 0);
    // The number at the top of a header bigger than the look-ahead is still found; the
    // message is spooled whole.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<fax@fax.example>", "250 2.1.5");
    t.cmd("DATA", "354");
    let mut head = String::from("Subject: +12125550142\r\n");
    while head.len() < 70_000 {
        head.push_str("X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(
        t.send(&format!("{head}\r\nbody\r\n.\r\n")),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
    assert_eq!(t.committed[0].1.len(), head.len() + 8);
    // Off by default: the same address is no fax address.
    let mut t = T::new();
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<fax@fax.example>", "550 5.1.1");
}

#[test]
fn subject_address_by_bdat() {
    let mut t = T::policy(subject_policy, false, "127.0.0.1:1");
    t.hello();
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<fax@fax.example>", "250 2.1.5");
    // The Subject is split between chunks: nothing is spooled until the header is in.
    assert_eq!(
        t.send("BDAT 12\r\nSubject: +12"),
        "250 2.0.0 12 octets received\r\n"
    );
    assert!(t.current.is_none());
    let rest = "125550142 x\r\n\r\nhi\r\n";
    assert_eq!(
        t.send(&format!("BDAT {} LAST\r\n{rest}", rest.len())),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
    assert_eq!(
        t.committed[0].0.recipients[0].destination.e164,
        "+12125550142"
    );
    assert_eq!(t.committed[0].1, format!("Subject: +12{rest}").as_bytes());
    // Refused at the chunk where the header ended without a number (RFC 3030 §2: any chunk
    // may be refused); pipelined chunks behind it get 503.
    t.cmd("MAIL FROM:<alice@example.org>", "250 2.1.0");
    t.cmd("RCPT TO:<fax@fax.example>", "250 2.1.5");
    let r = t.send("BDAT 16\r\nSubject: hi\r\n\r\nxBDAT 1 LAST\r\ny");
    assert!(
        r.starts_with("550 5.1.1 <fax@fax.example>: no fax number in the Subject"),
        "{r}"
    );
    assert!(
        r.ends_with("503 5.5.1 No mail transaction (chunk discarded): send MAIL first\r\n"),
        "{r}"
    );
    assert_eq!(t.committed.len(), 1);
}
