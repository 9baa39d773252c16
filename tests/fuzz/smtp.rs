//! SMTP session: arbitrary bytes in arbitrary chunks, driven as the listener drives it (reads
//! only while the session wants input, answers verdicts, commits and handshakes at once).
//!
//! Properties, checked against a model of the byte stream that knows only RFC 5321:
//! - exactly one reply per complete command line outside DATA, in order (an AUTH response
//!   line is a line; bytes pipelined after an accepted STARTTLS are discarded, RFC 3207 §4.2);
//! - no reply inside DATA; exactly one when the data ends, and the data ends where
//!   RFC 5321 §4.1.1.4 says: at the first `CRLF . CRLF` (the DATA line's CRLF counts);
//! - a `BDAT n` line (RFC 3030) is answered once, only after its `n` octets, which are never
//!   taken for commands; a `BDAT` whose size cannot be read is answered and the session ends;
//! - nothing after the connection is closed;
//! - the session's input buffer holds at most one partial line ([`MAX_AUTH_LINE`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use proptest::prelude::*;

use faxgate::config::Config;
use faxgate::smtp::session::{AuthVerdict, MAX_AUTH_LINE, Output, Policy, Session, TlsInfo};

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r.\r\n",
    b".",
    b"EHLO a\r\n",
    b"HELO a\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"MAIL FROM:<> SIZE=100 BODY=8BITMIME RET=FULL ENVID=x\r\n",
    b"RCPT TO:<FAX=+12125550123@fax.example>\r\n",
    b"RCPT TO:<FAX=+12125550123@fax.example> NOTIFY=FAILURE ORCPT=rfc822;a@b\r\n",
    b"RCPT TO:<postmaster>\r\n",
    b"DATA\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AGEAYg==\r\n",
    b"AUTH LOGIN\r\n",
    b"YQ==\r\n",
    b"*\r\n",
    b"BDAT 10 LAST\r\n",
    b"BDAT 3\r\n",
    b"BDAT 0 LAST\r\n",
    b"MAIL FROM:<j\xc3\xbcrgen@example.org> SMTPUTF8\r\n",
    b"VRFY a\r\n",
    b"\0",
    b"\xff\xfe",
];

fn policy() -> Policy {
    let mut c = Config::default();
    c.gateway.hostname = "gw.fax.example".into();
    c.gateway.domains = vec!["fax.example".into()];
    let mut p = Policy::from_config(&c, true);
    // Small limits so the too-big and AUTH paths are reached by short inputs.
    p.max_message_size = 300;
    p.auth_available = true;
    p.auth_without_tls = true;
    p.max_auth_failures = 3;
    p
}

/// Where the model is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Command lines; each gets one reply.
    Command,
    /// Message data from this offset; the next reply answers its end.
    Data(usize),
    /// The session closed the connection.
    Closed,
}

/// RFC 5321 §4.1.1.4: the data starting at `start` ends after the first `CRLF . CRLF`, the
/// CRLF that ended the DATA line included. Returns the offset after it.
fn data_end(fed: &[u8], start: usize) -> Option<usize> {
    let d = &fed[start..];
    if d.starts_with(b".\r\n") {
        return Some(start + 3);
    }
    d.windows(5)
        .position(|w| w == b"\r\n.\r\n")
        .map(|p| start + p + 5)
}

struct Model {
    fed: Vec<u8>,
    pos: usize,
    phase: Phase,
    replies: usize,
    /// The last reply was a `334` AUTH challenge: the next line is a response, no command.
    auth_response: bool,
}

/// The chunk size of a `BDAT` command line as RFC 3030 §2 writes it (`BDAT` SP 1*DIGIT
/// [SP `LAST`]), or `None` when the line is no BDAT with a readable size.
fn chunk_len(line: &[u8]) -> Option<u64> {
    let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
    let (verb, arg) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line.as_str(), ""),
    };
    if !verb.eq_ignore_ascii_case("BDAT") {
        return None;
    }
    let mut w = arg.split_ascii_whitespace();
    let n = w
        .next()
        .filter(|n| n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    match (w.next(), w.next()) {
        (None, _) => Some(n),
        (Some(l), None) if l.eq_ignore_ascii_case("LAST") => Some(n),
        _ => None,
    }
}

impl Model {
    /// One reply from the session: it must answer the next line (or the data's end).
    fn reply(&mut self, r: &str) {
        match self.phase {
            Phase::Closed => panic!("reply after close: {r:?}"),
            Phase::Data(start) => {
                let end = data_end(&self.fed, start)
                    .unwrap_or_else(|| panic!("reply inside DATA: {r:?}"));
                self.pos = end;
                self.phase = Phase::Command;
            }
            Phase::Command => {
                let rest = &self.fed[self.pos..];
                let i = rest.iter().position(|&b| b == b'\n').unwrap_or_else(|| {
                    panic!(
                        "reply {r:?} without a complete line (pending {:?})",
                        String::from_utf8_lossy(rest)
                    )
                });
                let line = &rest[..i];
                self.pos += i + 1;
                let is_response = std::mem::replace(&mut self.auth_response, r.starts_with("334"));
                if !is_response
                    && line.len() < faxgate::smtp::session::MAX_COMMAND_LINE
                    && let Some(n) = chunk_len(line)
                {
                    let end = self.pos as u64 + n;
                    assert!(
                        self.fed.len() as u64 >= end,
                        "reply {r:?} before the BDAT chunk's {n} octets were in"
                    );
                    self.pos = end as usize;
                }
                if r.starts_with("354") {
                    self.phase = Phase::Data(self.pos);
                }
            }
        }
        self.replies += 1;
    }

    /// Lines the session still owes a reply for.
    fn unanswered(&self) -> bool {
        match self.phase {
            Phase::Command => {
                let rest = &self.fed[self.pos..];
                match rest.iter().position(|&b| b == b'\n') {
                    None => false,
                    Some(i) if self.auth_response => i < rest.len(),
                    Some(i) if i + 1 >= faxgate::smtp::session::MAX_COMMAND_LINE => true,
                    Some(i) => match chunk_len(&rest[..i]) {
                        Some(n) => (rest.len() - i - 1) as u64 >= n,
                        None => true,
                    },
                }
            }
            Phase::Data(start) => data_end(&self.fed, start).is_some(),
            Phase::Closed => false,
        }
    }
}

/// Drains the session's outputs, carrying out its effects as the listener would.
fn drain(s: &mut Session, m: &mut Model, now: Instant, verdict_bits: &mut u32) {
    while let Some(o) = s.poll_output() {
        match o {
            Output::Reply(r) => {
                assert!(r.ends_with("\r\n"), "reply not CRLF-terminated: {r:?}");
                assert!(
                    !r[..r.len() - 2].contains(['\r', '\n']) || r.lines().all(|l| l.len() >= 3),
                    "reply with a bare line break: {r:?}"
                );
                // Client text is escaped in replies (issue 21): no control character but the
                // CRLF that ends each line of a (possibly multi-line) reply.
                for line in r.split_terminator("\r\n") {
                    assert!(
                        !line.chars().any(char::is_control),
                        "reply line carries a control character: {r:?}"
                    );
                }
                if m.replies == 0 {
                    assert!(r.starts_with("220 "), "greeting {r:?}");
                    m.replies = 1;
                } else {
                    m.reply(&r);
                }
            }
            Output::StartTls => {
                // Everything the client pipelined after STARTTLS is thrown away.
                m.pos = m.fed.len();
                s.tls_established(
                    now,
                    TlsInfo {
                        protocol: "TLSv1.3".into(),
                        cipher: "TLS13_AES_128_GCM_SHA256".into(),
                    },
                );
            }
            Output::Authenticate { .. } => {
                let v = match *verdict_bits & 3 {
                    0 => AuthVerdict::Accepted,
                    1 => AuthVerdict::Rejected,
                    2 => AuthVerdict::Locked,
                    _ => AuthVerdict::Unavailable,
                };
                *verdict_bits = verdict_bits.rotate_right(2);
                s.auth_verdict(now, v);
            }
            Output::MessageEnd => s.commit_result(now, Ok("Q1".into())),
            Output::Close => m.phase = Phase::Closed,
            Output::MessageStart(_) | Output::MessageData(_) | Output::MessageAbort => {}
        }
    }
}

/// One session over `input`, cut into chunks by the lengths in `cuts`.
fn session(input: &[u8], cuts: &[u16], mut verdict_bits: u32) {
    let now = Instant::now();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut s = Session::new(Arc::new(policy()), peer, now);
    let mut m = Model {
        fed: Vec::new(),
        pos: 0,
        phase: Phase::Command,
        replies: 0,
        auth_response: false,
    };
    drain(&mut s, &mut m, now, &mut verdict_bits);
    let mut at = 0;
    let mut k = 0;
    while at < input.len() && !s.is_closed() {
        assert!(s.wants_input(), "session stopped reading while idle");
        let n = (cuts.get(k).copied().unwrap_or(512) as usize).clamp(1, input.len() - at);
        k += 1;
        let chunk = &input[at..at + n];
        at += n;
        m.fed.extend_from_slice(chunk);
        s.feed(now, chunk);
        drain(&mut s, &mut m, now, &mut verdict_bits);
        assert!(
            s.buffered() <= MAX_AUTH_LINE,
            "input buffer holds {} octets",
            s.buffered()
        );
    }
    assert!(
        !m.unanswered(),
        "lines left unanswered at {} of {} octets",
        m.pos,
        m.fed.len()
    );
}

fn extra_seeds() -> Vec<Vec<u8>> {
    vec![
        TOKENS.concat(),
        b"EHLO a\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<FAX=+12125550123@fax.example>\r\nDATA\r\n\
          Subject: x\r\n\r\nhello\r\n..dot\r\n.\r\nQUIT\r\n"
            .to_vec(),
    ]
}

/// Input plus chunking: a seed-based input, or plain random bytes.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let seeds = crate::corpus("smtp", extra_seeds());
    prop_oneof![
        4 => crate::mutated(seeds, TOKENS),
        1 => proptest::collection::vec(any::<u8>(), 0..4096),
    ]
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn smtp_one_reply_per_line_and_bounded_buffer(
        data in input(),
        cuts in proptest::collection::vec(1u16..3000, 0..64),
        verdicts in any::<u32>(),
    ) {
        crate::run_case("smtp", data, 4 << 20, move |d| session(d, &cuts, verdicts));
    }
}

#[test]
fn smtp_seeds_replay_in_one_chunk_and_byte_by_byte() {
    for seed in crate::corpus("smtp", extra_seeds()).iter() {
        let s = seed.clone();
        crate::run_case("smtp", s, 4 << 20, |d| {
            session(d, &[], 0);
            session(d, &[1; 4096], 1);
        });
    }
}
