//! PURE: one ESMTP server session, bytes in → replies and effects out.
//!
//! Owns the RFC 5321 command sequence and every decision that can be made from the bytes the
//! client sent: syntax, sequencing (`503`), the RCPT policy (RFC 3192 address, our domains only,
//! dial plan; `<postmaster>` and `postmaster@` our domains accepted outside the dial plan, RFC
//! 5321 §4.5.1, and kept apart in [`Envelope::postmaster`]), who may send (client network, AUTH, allowed senders, TLS/AUTH requirements),
//! `SIZE`, recipient and line limits, the client's message rate (a MAIL before the hold the
//! listener sets, [`Session::hold_mail_until`], gets `421 4.7.0`), DATA dot-unstuffing and
//! end-of-data detection, and the
//! reply texts with their RFC 3463 enhanced codes. It never touches a socket, a file or the
//! clock: the listener feeds bytes and `now`, executes the [`Output`]s (write replies, start TLS,
//! verify a password, stream data to the spool, commit), and reports each outcome back
//! ([`Session::tls_established`], [`Session::auth_verdict`], [`Session::commit_result`]).
//!
//! Enhanced codes (RFC 2034 §3): on every 2xx/4xx/5xx reply except the greeting and the
//! HELO/EHLO replies, which the RFC exempts because their text starts with our host name.
//! `334` AUTH challenges and the `354` go-ahead are 3xx and carry none.
//!
//! Extensions beyond RFC 5321 and what each changes here:
//! - The null reverse-path `MAIL FROM:<>` (RFC 5321 §4.5.5) is accepted and its RCPTs are
//!   checked as any others, so an MTA's recipient verification callout (`MAIL FROM:<>`,
//!   `RCPT TO:<FAX=…>`, `QUIT`) gets its answer; its DATA or BDAT is refused, because a fax job
//!   must report its outcome to somebody.
//! - SMTPUTF8 (RFC 6531): `MAIL … SMTPUTF8` allows UTF-8 in the reverse-path (local part and
//!   domain) and in the message's header; without it a non-ASCII address gets `553 5.6.7`
//!   (RFC 6531 §3.5). Fax recipients stay ASCII (a number at one of our domains).
//! - CHUNKING (RFC 3030): `BDAT n [LAST]`; exactly `n` octets follow each command and are
//!   always read, even when the chunk is refused, so a refused chunk's octets are never taken
//!   for commands. No dot-stuffing; bare CR and LF are stored as CRLF as with DATA. BINARYMIME
//!   is not offered (a fax renders text and MIME parts, and binary bodies would need a
//!   binary-clean relay for the reports that quote them).
//! - Subject addressing ([`Policy::subject_address`]): mail to that fixed local part at one
//!   of our domains takes its number from the start of the Subject ([`crate::mail::subject`]),
//!   through [`Policy::fax_recipient`]'s dial plan; the number is read once the header is in,
//!   and a Subject without a usable number is refused at the end of the data (`550`).

pub use crate::job::{Body, ClientInfo, Envelope, Notify, Recipient, Ret, TlsInfo};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ipnet::IpNet;

use crate::logging::Untrusted;
use crate::mail::address::{self, FaxAddress};
use crate::mail::dialplan::DialPlan;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF. RFC 1869 §4.1.2
/// lets each extension add to that (SIZE 14, DSN RET/ENVID/NOTIFY/ORCPT ~630, AUTH= 500), so the
/// limit for MAIL/RCPT lines is raised to this (ours).
pub const MAX_COMMAND_LINE: usize = 2048;
/// RFC 4954 §4: an AUTH command or continuation line may be up to 12 288 octets.
pub const MAX_AUTH_LINE: usize = 12_288;
/// RFC 3461 §4.4: ENVID at most 100 characters.
pub const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: ORCPT at most 500 characters.
pub const MAX_ORCPT: usize = 500;
/// Message data is handed to the shell in chunks of about this size (ours).
pub const DATA_CHUNK: usize = 64 * 1024;
/// Characters of (escaped) reply text after the codes (ours): with the cut marker, a reply
/// line stays under RFC 5321 §4.5.3.1.5's 512 octets.
pub const MAX_REPLY_TEXT: usize = 440;
/// Input bytes buffered before the session stops asking for more (ours): pipelined commands
/// beyond this wait in the socket.
pub const MAX_BUFFERED_INPUT: usize = 64 * 1024;
/// Header octets held back, for a Subject-addressed message, while its header is read (ours):
/// the Subject is looked for in at most this much; the message is spooled only once its
/// recipient is known.
pub const MAX_SUBJECT_HEAD: usize = 64 * 1024;
/// Digits in a `BDAT` chunk size (ours): 20 digits hold any `u64`; more is not a size.
const MAX_CHUNK_DIGITS: usize = 20;

/// Everything the session needs to decide, built once by the shell from the config.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Our host name (greeting, `Received:`).
    pub hostname: String,
    /// Domains we accept fax mail for.
    pub domains: Vec<String>,
    /// RFC 1870 `SIZE` limit, octets.
    pub max_message_size: u64,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Clients allowed without AUTH.
    pub client_networks: Vec<IpNet>,
    /// `user@domain` or `@domain` senders allowed; empty: any.
    pub allowed_senders: Vec<String>,
    /// MAIL refused before STARTTLS.
    pub require_tls: bool,
    /// MAIL refused before AUTH.
    pub require_auth: bool,
    /// AUTH offered without TLS.
    pub auth_without_tls: bool,
    /// A users file is configured, so AUTH can succeed.
    pub auth_available: bool,
    /// A certificate is loaded, so STARTTLS is offered.
    pub tls_available: bool,
    /// Site forms of fax addresses (`smtp.accept_plain_digits`).
    pub site_forms: bool,
    /// Failed AUTH attempts before the connection is closed.
    pub max_auth_failures: u32,
    /// RFC 5321 §4.5.3.2.7: waiting for a command.
    pub command_timeout: Duration,
    /// RFC 5321 §4.5.3.2.5: waiting for a data block.
    pub data_timeout: Duration,
    /// Longest the whole session may last (ours: the per-read timeouts alone let a client
    /// trickling a byte at a time hold the connection forever).
    pub max_session: Duration,
    /// The dial plan.
    pub dialplan: DialPlan,
    /// `[offramp] subject_address`: the fixed local part (at any of our domains) whose mail
    /// takes its fax number from the Subject; empty: off.
    pub subject_address: String,
}

/// Why a mailbox of ours is not a fax recipient we may dial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    /// The local part is not a fax number form (RFC 3192 or an enabled site form).
    #[error(transparent)]
    Address(address::AddressError),
    /// The dial plan refuses the number (toll-fraud policy, numbering structure).
    #[error(transparent)]
    Dial(crate::mail::dialplan::DialError),
}

impl Policy {
    /// The fax recipient for `mb`, a mailbox already known to be in one of our domains
    /// (`path` is its forward-path as given): the local part's number form, then the dial
    /// plan. The one recipient check of RCPT TO and of the console's send API, so both refuse
    /// the same numbers for the same reasons.
    pub fn fax_recipient(
        &self,
        path: &str,
        mb: &address::Mailbox,
    ) -> Result<Recipient, RecipientError> {
        let fax =
            FaxAddress::from_local_part(mb, self.site_forms).map_err(RecipientError::Address)?;
        let dest = self
            .dialplan
            .resolve(&fax.number)
            .map_err(RecipientError::Dial)?;
        Ok(Recipient {
            address: path.to_owned(),
            number: fax.number,
            form: fax.form,
            subaddress: fax.subaddress,
            destination: dest,
            notify: None,
            orcpt: None,
        })
    }

    /// The fax recipient for mail to the subject address `path` (see
    /// [`Policy::subject_address`]) with this Subject: the number at its start
    /// ([`crate::mail::subject`]), then the same dial plan as [`Policy::fax_recipient`].
    pub fn subject_recipient(
        &self,
        path: &str,
        subject: &str,
    ) -> Result<Recipient, RecipientError> {
        let (fax, _) = crate::mail::subject::number_from_subject(subject, self.site_forms)
            .map_err(RecipientError::Address)?;
        let dest = self
            .dialplan
            .resolve(&fax.number)
            .map_err(RecipientError::Dial)?;
        Ok(Recipient {
            address: path.to_owned(),
            number: fax.number,
            form: fax.form,
            subaddress: None,
            destination: dest,
            notify: None,
            orcpt: None,
        })
    }

    /// True when `mb` (a mailbox at one of our domains) is the subject address.
    fn is_subject_address(&self, mb: &address::Mailbox) -> bool {
        !self.subject_address.is_empty()
            && !mb.quoted
            && mb.local.eq_ignore_ascii_case(&self.subject_address)
    }
}

/// What the RCPT policy accepted a forward-path as.
#[derive(Debug)]
enum Accepted {
    /// A fax number that passed the dial plan.
    Fax(Recipient),
    /// Our postmaster (RFC 5321 §4.5.1).
    Postmaster,
    /// The subject address: the number is in the Subject, read after the header.
    BySubject,
}

/// What the listener must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these reply bytes (one complete reply, CRLF included).
    Reply(String),
    /// Flush replies, then run the TLS handshake and call [`Session::tls_established`].
    StartTls,
    /// Check credentials and call [`Session::auth_verdict`].
    Authenticate {
        /// Authentication identity (the user).
        user: String,
        /// The password (never logged).
        password: String,
    },
    /// Open a new spooled message for this envelope.
    MessageStart(Box<Envelope>),
    /// Append these (already dot-unstuffed) bytes to the message; every line ends in CRLF
    /// (bare CR and LF were made CRLF).
    MessageData(Vec<u8>),
    /// The message is complete: commit it and call [`Session::commit_result`].
    MessageEnd,
    /// Discard the message being spooled (too big, timeout, client gone).
    MessageAbort,
    /// Flush replies and close the connection.
    Close,
}

/// The listener's answer to [`Output::Authenticate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    /// Credentials are right.
    Accepted,
    /// Wrong user or password.
    Rejected,
    /// Too many failures (or checks in progress) from this client recently (rate limit): try
    /// later.
    Locked,
    /// Too many password checks in progress in the whole listener: try later (nothing was
    /// checked).
    Busy,
    /// The users file could not be read: a local problem.
    Unavailable,
}

/// Why the spool could not commit a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFailure {
    /// Temporary (disk full, I/O error): the client should retry (451/452).
    pub temporary: bool,
    /// Out of space specifically (452 4.3.1).
    pub no_space: bool,
    /// For the reply text; never includes paths.
    pub reason: String,
}

/// Where dot-unstuffing and end-of-data detection are (RFC 5321 §4.1.1.4, §4.5.2).
///
/// Only CRLF ends a line, and only CRLF `.` CRLF ends the data. Every bare CR and bare LF is
/// stored as CRLF (as Postfix's `smtpd_forbid_bare_newline = normalize` does), so nothing
/// in the spool can carry a line end that another server reads differently: a message
/// relayed on (the postmaster copy, a DSN with `RET=FULL`) is dot-stuffed line by line by
/// the relay client and can never smuggle `\n.\r\n`, `\n.\n` or `\r.\r\n` past our relay
/// (CVE-2023-51764 class). A dot after a bare CR or LF is data, not stuffing: that line
/// did not start with CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DotState {
    /// Just after CRLF (or at the start of data): a `.` here is special.
    LineStart,
    /// Inside a line.
    Mid,
    /// Saw CR inside a line; not yet written (CRLF, or a bare CR written as CRLF).
    Cr,
    /// Saw `.` at line start.
    Dot,
    /// Saw CRLF `.` CR: only LF now ends the data.
    DotCr,
}

/// A message being received by DATA: its dot-unstuffing state and what is stored of it.
#[derive(Debug)]
struct DataPhase {
    dots: DotState,
    body: Incoming,
}

/// A recipient at the subject address, waiting for the Subject (RFC 3461 parameters kept).
#[derive(Debug)]
struct SubjectRcpt {
    path: String,
    notify: Option<Vec<Notify>>,
    orcpt: Option<String>,
}

/// The message being received, by DATA or BDAT: what is stored of it so far. Every byte
/// goes through [`Incoming::push`], so the size limit, the held-back header of a
/// subject-addressed message and the data handed to the shell are the same for both.
#[derive(Debug)]
struct Incoming {
    /// The envelope until [`Output::MessageStart`] is sent: at once, or for a
    /// subject-addressed message once its header is in and the number resolved.
    unstarted: Option<Box<Envelope>>,
    /// The subject address among the recipients.
    by_subject: Option<SubjectRcpt>,
    /// Stored octets so far (after line-end normalisation).
    size: u64,
    /// Past `max_message_size`: the rest is drained, then `552`.
    too_big: bool,
    /// The Subject gave no usable number: the rest is drained, then this reply.
    refused: Option<Refusal>,
    /// Octets not yet handed to the shell (the held-back header, until started).
    chunk: Vec<u8>,
    /// Where to look on for the end of the header in `chunk`.
    head_scan: usize,
}

impl Incoming {
    /// A message for `env`; started now unless a recipient waits for the Subject.
    fn new(env: Envelope, by_subject: Option<SubjectRcpt>, out: &mut VecDeque<Output>) -> Self {
        let mut unstarted = Some(Box::new(env));
        if by_subject.is_none()
            && let Some(env) = unstarted.take()
        {
            out.push_back(Output::MessageStart(env));
        }
        Incoming {
            unstarted,
            by_subject,
            size: 0,
            too_big: false,
            refused: None,
            chunk: Vec::new(),
            head_scan: 0,
        }
    }

    /// True once the shell has an open message for it.
    fn started(&self) -> bool {
        self.unstarted.is_none() && self.refused.is_none()
    }

    /// Stores `bytes` (already unstuffed and normalised), within the size limit (RFC 1870 §6.3:
    /// past it, keep reading to the end, then `552`).
    fn push(&mut self, policy: &Policy, out: &mut VecDeque<Output>, bytes: &[u8]) {
        if self.too_big || self.refused.is_some() {
            return;
        }
        self.size += bytes.len() as u64;
        if self.size > policy.max_message_size {
            self.too_big = true;
            self.chunk = Vec::new();
            self.unstarted = None;
            // Announced once, when the limit is first crossed; the rest is drained.
            if self.by_subject.take().is_none() {
                out.push_back(Output::MessageAbort);
            }
            return;
        }
        self.chunk.extend_from_slice(bytes);
        if self.unstarted.is_some() {
            let from = self.head_scan.saturating_sub(3);
            let end = self.chunk[from..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| from + i + 4);
            self.head_scan = self.chunk.len();
            if let Some(end) = end {
                self.resolve(policy, out, end);
            } else if self.chunk.len() >= MAX_SUBJECT_HEAD {
                self.resolve(policy, out, self.chunk.len());
            }
        } else if self.chunk.len() >= DATA_CHUNK {
            out.push_back(Output::MessageData(std::mem::take(&mut self.chunk)));
        }
    }

    /// The header (`chunk[..head]`) is in: the subject recipient's number, then start the
    /// message, or refuse it at its end.
    fn resolve(&mut self, policy: &Policy, out: &mut VecDeque<Output>, head: usize) {
        let (Some(mut env), Some(rcpt)) = (self.unstarted.take(), self.by_subject.take()) else {
            return;
        };
        let subject = mail_parser::MessageParser::new()
            .parse_headers(&self.chunk[..head])
            .and_then(|m| m.subject().map(str::to_owned))
            .unwrap_or_default();
        let path = rcpt.path;
        match policy.subject_recipient(&path, &subject) {
            Ok(mut r) => {
                r.notify = rcpt.notify;
                r.orcpt = rcpt.orcpt;
                env.recipients.push(r);
                out.push_back(Output::MessageStart(env));
            }
            Err(RecipientError::Address(e)) => {
                self.chunk = Vec::new();
                self.refused = Some((
                    550,
                    "5.1.1",
                    format!("<{path}>: no fax number in the Subject: {e}"),
                ));
            }
            Err(RecipientError::Dial(e)) => {
                self.chunk = Vec::new();
                self.refused = Some((
                    550,
                    e.enhanced_code(),
                    format!("<{path}>: the number in the Subject: {e}"),
                ));
            }
        }
    }

    /// Hands what is held to the shell, if the message is open.
    fn flush(&mut self, out: &mut VecDeque<Output>) {
        if self.started() && !self.too_big && !self.chunk.is_empty() {
            out.push_back(Output::MessageData(std::mem::take(&mut self.chunk)));
        }
    }
}

/// One mail transaction (RFC 5321 §3.3), from MAIL to end of data.
#[derive(Debug)]
struct Transaction {
    env: Envelope,
    /// `MAIL … SMTPUTF8` (RFC 6531 §3.4): UTF-8 allowed in the addresses.
    smtputf8: bool,
    /// The subject address, when it was a recipient.
    by_subject: Option<SubjectRcpt>,
}

impl Transaction {
    fn recipient_count(&self) -> usize {
        self.env.recipients.len()
            + self.env.postmaster.len()
            + usize::from(self.by_subject.is_some())
    }
}

/// A message arriving in BDAT chunks (RFC 3030): what is stored, and a CR at the end of the
/// last chunk that may yet be the first half of a CRLF.
#[derive(Debug)]
struct Chunked {
    body: Incoming,
    cr: bool,
}

impl Chunked {
    /// Stores chunk octets with every bare CR and bare LF made CRLF, as DATA does (see
    /// [`DotState`]), across chunk boundaries.
    fn push(&mut self, policy: &Policy, out: &mut VecDeque<Output>, bytes: &[u8]) {
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if self.cr {
                // The pending CR, with its LF or bare: stored as CRLF either way.
                self.cr = false;
                self.body.push(policy, out, b"\r\n");
                if b == b'\n' {
                    start = i + 1;
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.body.push(policy, out, &bytes[start..i]);
                    self.cr = true;
                    start = i + 1;
                }
                b'\n' => {
                    self.body.push(policy, out, &bytes[start..i]);
                    self.body.push(policy, out, b"\r\n");
                    start = i + 1;
                }
                _ => {}
            }
        }
        self.body.push(policy, out, &bytes[start..]);
    }
}

/// What happens to the octets of one `BDAT` chunk.
#[derive(Debug)]
enum ChunkFate {
    /// Part of the message.
    Keep(Box<Chunked>),
    /// Refused: read and dropped, then this reply and this state.
    Discard(Refusal, Box<State>),
}

/// A `BDAT` chunk being read (RFC 3030 §2).
#[derive(Debug)]
struct Chunk {
    /// Octets still to read.
    left: u64,
    /// Octets announced.
    octets: u64,
    /// `LAST` given.
    last: bool,
    fate: ChunkFate,
}

/// Progress of an AUTH exchange (RFC 4954 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthStep {
    /// `AUTH PLAIN` sent without initial response: expecting the base64 line.
    PlainResponse,
    /// `AUTH LOGIN`: expecting the user name.
    LoginUser,
    /// `AUTH LOGIN`: expecting the password for this user.
    LoginPassword(String),
}

/// Session states, named after what the server expects next (RFC 5321 §4.1.4 sequencing).
#[derive(Debug)]
enum State {
    /// Greeting sent; HELO/EHLO needed before a transaction.
    ExpectHello,
    /// Hello done, no transaction: MAIL (or AUTH, STARTTLS, …).
    ExpectMail,
    /// MAIL accepted: RCPT, then DATA.
    /// (Boxed: the envelope is large and the other states are small.)
    ExpectRcpt(Box<Transaction>),
    /// After `354`: message data until CRLF.CRLF.
    ExpectDataEnd(DataPhase),
    /// After `BDAT n`: its `n` octets (RFC 3030 §2).
    ExpectChunk(Box<Chunk>),
    /// Between the chunks of a BDAT message: `BDAT` (or RSET, NOOP, QUIT).
    ExpectBdat(Box<Chunked>),
    /// End of data seen; waiting for the spool commit.
    ExpectCommit,
    /// AUTH exchange: waiting for the client's next base64 line.
    ExpectAuthResponse(AuthStep),
    /// Waiting for the listener's verdict on credentials.
    ExpectAuthVerdict(String),
    /// `220` to STARTTLS sent; waiting for the handshake.
    ExpectTlsHandshake,
    /// Connection is over.
    Closed,
}

/// One SMTP server session.
#[derive(Debug)]
pub struct Session {
    policy: Arc<Policy>,
    client: SocketAddr,
    state: State,
    helo: Option<(String, bool)>,
    tls: Option<TlsInfo>,
    auth_user: Option<String>,
    auth_failures: u32,
    inbuf: Vec<u8>,
    discarding: bool,
    out: VecDeque<Output>,
    last_activity: Instant,
    started: Instant,
    stopping: bool,
    /// A MAIL before this instant gets `421 4.7.0` ([`Session::hold_mail_until`]).
    mail_hold: Option<Instant>,
}

impl Session {
    /// A new session for a connection from `client`; queues the `220` greeting.
    pub fn new(policy: Arc<Policy>, client: SocketAddr, now: Instant) -> Session {
        let mut s = Session {
            policy,
            client,
            state: State::ExpectHello,
            helo: None,
            tls: None,
            auth_user: None,
            auth_failures: 0,
            inbuf: Vec::new(),
            discarding: false,
            out: VecDeque::new(),
            last_activity: now,
            started: now,
            stopping: false,
            mail_hold: None,
        };
        let g = format!("220 {} ESMTP faxgate ready\r\n", s.policy.hostname);
        s.out.push_back(Output::Reply(g));
        s
    }

    /// Next effect for the listener, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// True when the listener should read more bytes now. False while waiting for a verdict
    /// (the client's pipelined bytes wait in the socket), when enough is buffered, or closed.
    pub fn wants_input(&self) -> bool {
        !self.awaiting() && self.inbuf.len() < MAX_BUFFERED_INPUT
    }

    /// Octets of client input held, not yet answered. Once the listener has answered what the
    /// session asked (verdict, commit, handshake), that is at most one partial command line
    /// ([`MAX_COMMAND_LINE`], or [`MAX_AUTH_LINE`] for an AUTH response): complete lines are
    /// answered and an over-long one is dropped as it arrives. The fuzz target checks this.
    pub fn buffered(&self) -> usize {
        self.inbuf.len()
    }

    /// True once the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True while message data is being received (the data timeout applies).
    pub fn in_data(&self) -> bool {
        matches!(self.state, State::ExpectDataEnd(..) | State::ExpectChunk(_))
    }

    /// True while the shell holds an open message ([`Output::MessageStart`] sent, neither
    /// ended nor aborted).
    fn message_open(&self) -> bool {
        match &self.state {
            State::ExpectDataEnd(d) => d.body.started() && !d.body.too_big,
            State::ExpectChunk(c) => match &c.fate {
                ChunkFate::Keep(k) => k.body.started() && !k.body.too_big,
                ChunkFate::Discard(..) => false,
            },
            State::ExpectBdat(k) => k.body.started() && !k.body.too_big,
            _ => false,
        }
    }

    /// Drops the message in progress, if any (the shell discards its spool job).
    fn abandon_message(&mut self) {
        if self.message_open() {
            self.out.push_back(Output::MessageAbort);
        }
        if matches!(
            self.state,
            State::ExpectDataEnd(_) | State::ExpectChunk(_) | State::ExpectBdat(_)
        ) {
            self.state = State::ExpectMail;
        }
    }

    /// When the session times out unless more input arrives: RFC 5321 §4.5.3.2.7 (command,
    /// 5 min) or §4.5.3.2.5 (data block, 3 min) after the last input, and at the latest
    /// when the session has lasted [`Policy::max_session`]. `None` while the listener owes a
    /// verdict.
    pub fn poll_at(&self) -> Option<Instant> {
        let end = self.started + self.policy.max_session;
        self.idle_deadline().map(|t| t.min(end))
    }

    fn idle_deadline(&self) -> Option<Instant> {
        match self.state {
            State::ExpectDataEnd(..) | State::ExpectChunk(_) => {
                Some(self.last_activity + self.policy.data_timeout)
            }
            State::ExpectHello
            | State::ExpectMail
            | State::ExpectRcpt(_)
            | State::ExpectBdat(_)
            | State::ExpectAuthResponse(_) => {
                Some(self.last_activity + self.policy.command_timeout)
            }
            _ => None,
        }
    }

    /// Called when `poll_at` has passed: `421` and close (RFC 5321 §4.5.3.2).
    pub fn on_timeout(&mut self, now: Instant) {
        match self.poll_at() {
            Some(t) if now >= t => {
                self.abandon_message();
                let h = self.policy.hostname.clone();
                let why = if now >= self.started + self.policy.max_session {
                    "session time limit exceeded"
                } else {
                    "timeout exceeded"
                };
                self.close_with(421, "4.4.2", &format!("{h} Error: {why}"));
            }
            _ => {}
        }
    }

    /// The client closed its side: abort any message in progress and close.
    pub fn eof(&mut self) {
        self.abandon_message();
        if !self.is_closed() {
            self.state = State::Closed;
            self.out.push_back(Output::Close);
        }
    }

    /// Graceful shutdown: idle sessions get `421 4.3.2` now; a message being received or
    /// committed is finished first and the next command gets the `421`.
    pub fn shutdown(&mut self) {
        self.stopping = true;
        match self.state {
            State::ExpectHello | State::ExpectMail | State::ExpectRcpt(_) => {
                self.close_shutting_down()
            }
            State::ExpectAuthResponse(_) => self.close_shutting_down(),
            // Between BDAT chunks nothing says when the rest will come: the message is
            // dropped (the client gets the 421 and sends it again later).
            State::ExpectBdat(_) => self.close_shutting_down(),
            _ => {}
        }
    }

    fn close_shutting_down(&mut self) {
        self.abandon_message();
        let h = self.policy.hostname.clone();
        self.close_with(
            421,
            "4.3.2",
            &format!("{h} Service shutting down, try again later"),
        );
    }

    /// The client's message rate, as the listener's per-client bucket
    /// (`smtp.max_messages_per_minute`, [`super::rate`]) stands: a MAIL received before
    /// `until` is answered `421 4.7.0` and the session closes; `None` lifts the hold. The
    /// listener sets it before feeding bytes and after each commit, so the decision itself
    /// stays here, against the `now` of the input.
    pub fn hold_mail_until(&mut self, until: Option<Instant>) {
        self.mail_hold = until;
    }

    /// Bytes from the client.
    pub fn feed(&mut self, now: Instant, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.last_activity = now;
        self.inbuf.extend_from_slice(bytes);
        self.process();
    }

    /// STARTTLS handshake done (RFC 3207 §4.2: the server forgets everything it knew, the
    /// client must EHLO again).
    pub fn tls_established(&mut self, now: Instant, info: TlsInfo) {
        if let State::ExpectTlsHandshake = self.state {
            self.last_activity = now;
            self.tls = Some(info);
            self.helo = None;
            self.auth_user = None;
            self.state = State::ExpectHello;
            self.process();
        }
    }

    /// The listener's verdict on [`Output::Authenticate`].
    pub fn auth_verdict(&mut self, now: Instant, v: AuthVerdict) {
        if let State::ExpectAuthVerdict(_) = self.state {
            self.last_activity = now;
            self.apply_auth_verdict(v);
            self.process();
        }
    }

    fn apply_auth_verdict(&mut self, v: AuthVerdict) {
        let State::ExpectAuthVerdict(user) = std::mem::replace(&mut self.state, State::ExpectMail)
        else {
            return;
        };
        match v {
            AuthVerdict::Accepted => {
                self.auth_user = Some(user);
                self.reply(235, "2.7.0", "Authentication successful");
            }
            AuthVerdict::Locked => {
                self.reply(
                    454,
                    "4.7.0",
                    "Temporary authentication failure: too many failures from your address, try later",
                );
            }
            AuthVerdict::Busy => {
                self.reply(
                    454,
                    "4.7.0",
                    "Temporary authentication failure: too many authentications in progress, try later",
                );
            }
            AuthVerdict::Unavailable => {
                self.reply(454, "4.7.0", "Temporary authentication failure");
            }
            AuthVerdict::Rejected => {
                self.auth_failures += 1;
                if self.auth_failures >= self.policy.max_auth_failures {
                    self.close_with(421, "4.7.0", "Too many failed authentication attempts");
                } else {
                    self.reply(535, "5.7.8", "Authentication credentials invalid");
                }
            }
        }
    }

    /// The spool's answer to [`Output::MessageEnd`]: `250` with the queue id only now.
    pub fn commit_result(&mut self, now: Instant, r: Result<String, CommitFailure>) {
        if !matches!(self.state, State::ExpectCommit) {
            return;
        }
        self.last_activity = now;
        self.state = State::ExpectMail;
        match r {
            Ok(id) => self.reply(250, "2.0.0", &format!("Ok: queued as {id}")),
            Err(f) if f.no_space => self.reply(
                452,
                "4.3.1",
                &format!(
                    "Insufficient system storage, try again later ({})",
                    f.reason
                ),
            ),
            Err(f) if f.temporary => self.reply(
                451,
                "4.3.0",
                &format!("Local error in processing, try again later ({})", f.reason),
            ),
            Err(f) => self.reply(554, "5.3.0", &format!("Message refused ({})", f.reason)),
        }
        self.process();
    }

    /// Queues a one-line reply. The text may quote the client (an address, a parameter):
    /// it is escaped here, for every reply, so that no CR, LF, NUL or non-ASCII byte the
    /// client sent comes back (RFC 5321 §4.2: reply text is printable US-ASCII), and cut to
    /// keep the line under RFC 5321 §4.5.3.1.5's 512 octets.
    fn reply(&mut self, code: u16, enhanced: &str, text: &str) {
        let text = Untrusted::new(text).ascii().max(MAX_REPLY_TEXT);
        self.out
            .push_back(Output::Reply(format!("{code} {enhanced} {text}\r\n")));
    }

    fn close_with(&mut self, code: u16, enhanced: &str, text: &str) {
        self.reply(code, enhanced, text);
        self.state = State::Closed;
        self.out.push_back(Output::Close);
    }

    /// True while the listener owes a verdict (or the session is over): input waits.
    fn awaiting(&self) -> bool {
        matches!(
            self.state,
            State::Closed
                | State::ExpectCommit
                | State::ExpectAuthVerdict(_)
                | State::ExpectTlsHandshake
        )
    }

    fn process(&mut self) {
        let mut pos = 0;
        while pos < self.inbuf.len() && !self.awaiting() {
            if let State::ExpectDataEnd(..) = self.state {
                pos += self.take_data(pos);
                continue;
            }
            if let State::ExpectChunk(_) = self.state {
                pos += self.take_chunk(pos);
                continue;
            }
            let limit = match self.state {
                State::ExpectAuthResponse(_) => MAX_AUTH_LINE,
                _ => MAX_COMMAND_LINE,
            };
            let rest = &self.inbuf[pos..];
            match rest.iter().position(|&b| b == b'\n') {
                None => {
                    if rest.len() > limit {
                        // RFC 5321 §4.5.3.1.4: too long. Drop what we have; answer at its end.
                        self.discarding = true;
                        pos = self.inbuf.len();
                    }
                    break;
                }
                Some(i) => {
                    let line_end = pos + i + 1;
                    let too_long = self.discarding || i + 1 > limit;
                    self.discarding = false;
                    if too_long {
                        pos = line_end;
                        self.reply(500, "5.5.2", "Line too long");
                        continue;
                    }
                    let mut line = &self.inbuf[pos..pos + i];
                    if line.last() == Some(&b'\r') {
                        line = &line[..line.len() - 1];
                    }
                    let line = String::from_utf8_lossy(line).into_owned();
                    pos = line_end;
                    if self.stopping {
                        self.close_shutting_down();
                        break;
                    }
                    let starttls = self.handle_line(&line);
                    if starttls {
                        // RFC 3207 §4.2 (CVE-2011-0411): anything pipelined after STARTTLS
                        // in the clear is discarded, never executed under TLS.
                        pos = self.inbuf.len();
                        break;
                    }
                }
            }
        }
        self.inbuf.drain(..pos.min(self.inbuf.len()));
        if self.stopping
            && matches!(
                self.state,
                State::ExpectHello
                    | State::ExpectMail
                    | State::ExpectRcpt(_)
                    | State::ExpectBdat(_)
                    | State::ExpectAuthResponse(_)
            )
        {
            // Shutting down and back at a command boundary (the message in flight is done;
            // between BDAT chunks the rest could take any time, so it is dropped).
            self.close_shutting_down();
        }
        if self.is_closed() {
            self.inbuf.clear();
        }
        match &mut self.state {
            State::ExpectDataEnd(d) => d.body.flush(&mut self.out),
            State::ExpectChunk(c) => {
                if let ChunkFate::Keep(k) = &mut c.fate {
                    k.body.flush(&mut self.out)
                }
            }
            _ => {}
        }
    }

    /// Consumes chunk octets from `inbuf[pos..]`; returns bytes consumed.
    fn take_chunk(&mut self, pos: usize) -> usize {
        let State::ExpectChunk(c) = &mut self.state else {
            return 0;
        };
        let input = &self.inbuf[pos..];
        let n = usize::try_from(c.left)
            .unwrap_or(usize::MAX)
            .min(input.len());
        if let ChunkFate::Keep(k) = &mut c.fate {
            k.push(&self.policy, &mut self.out, &input[..n]);
        }
        c.left -= n as u64;
        if c.left == 0 {
            self.chunk_done();
        }
        n
    }

    /// All octets of the current chunk are in: answer it (RFC 3030 §2, one reply per BDAT).
    fn chunk_done(&mut self) {
        let State::ExpectChunk(c) = std::mem::replace(&mut self.state, State::ExpectMail) else {
            return;
        };
        let Chunk {
            octets, last, fate, ..
        } = *c;
        let mut k = match fate {
            ChunkFate::Discard((code, enh, text), then) => {
                self.state = *then;
                return self.reply(code, enh, &text);
            }
            ChunkFate::Keep(k) => k,
        };
        if last {
            if k.cr {
                k.body.push(&self.policy, &mut self.out, b"\r\n");
                k.cr = false;
            }
            return self.end_message(k.body);
        }
        if k.body.too_big || k.body.refused.is_some() {
            // RFC 3030 §2: a refused chunk fails the transaction; BDATs the client pipelined
            // behind it are read and answered 503 (no transaction).
            return self.end_message(k.body);
        }
        k.body.flush(&mut self.out);
        self.state = State::ExpectBdat(k);
        self.reply(250, "2.0.0", &format!("{octets} octets received"));
    }

    /// The whole message is in (CRLF.CRLF, or the LAST chunk): commit it, or answer why not.
    fn end_message(&mut self, mut body: Incoming) {
        self.state = State::ExpectMail;
        if body.unstarted.is_some() && !body.too_big && body.refused.is_none() {
            // A header without its blank line (or no body): the Subject is what there is.
            let n = body.chunk.len();
            body.resolve(&self.policy, &mut self.out, n);
        }
        if body.too_big {
            return self.reply(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
        }
        if let Some((code, enh, text)) = body.refused.take() {
            return self.reply(code, enh, &text);
        }
        body.flush(&mut self.out);
        self.out.push_back(Output::MessageEnd);
        self.state = State::ExpectCommit;
    }

    /// Consumes message data from `inbuf[pos..]`; returns bytes consumed.
    fn take_data(&mut self, pos: usize) -> usize {
        let State::ExpectDataEnd(d) = &mut self.state else {
            return 0;
        };
        let input = &self.inbuf[pos..];
        let mut ended = None;
        for (i, &b) in input.iter().enumerate() {
            use DotState::*;
            // Bare CR and bare LF are stored as CRLF (see [`DotState`]): at most the pending
            // CR's CRLF plus one byte per input byte.
            let mut emit: [u8; 3] = [0; 3];
            let mut n = 0;
            d.dots = match (d.dots, b) {
                (LineStart, b'.') => Dot,
                (Dot, b'\r') => DotCr,
                (DotCr, b'\n') => {
                    ended = Some(i + 1);
                    break;
                }
                // ".\r" then something else: the dot was stuffing, the CR was bare.
                (DotCr, x) => {
                    emit[..2].copy_from_slice(b"\r\n");
                    n = 2;
                    if x == b'\r' {
                        Cr
                    } else {
                        emit[2] = x;
                        n = 3;
                        Mid
                    }
                }
                // A CR waits for the next byte: CRLF or a bare CR.
                (LineStart | Mid, b'\r') => Cr,
                // A bare LF is stored as CRLF but does not start a line: a dot after it is
                // data (RFC 5321 §4.1.1.4: only CRLF ends a line, so only CRLF.CRLF ends data).
                (Dot | LineStart | Mid, b'\n') => {
                    emit[..2].copy_from_slice(b"\r\n");
                    n = 2;
                    Mid
                }
                // A leading dot followed by anything else is stuffing (RFC 5321 §4.5.2).
                (Dot | LineStart | Mid, x) => {
                    emit[0] = x;
                    n = 1;
                    Mid
                }
                (Cr, b'\n') => {
                    emit[..2].copy_from_slice(b"\r\n");
                    n = 2;
                    LineStart
                }
                // The pending CR was bare.
                (Cr, b'\r') => {
                    emit[..2].copy_from_slice(b"\r\n");
                    n = 2;
                    Cr
                }
                (Cr, x) => {
                    emit[..2].copy_from_slice(b"\r\n");
                    emit[2] = x;
                    n = 3;
                    Mid
                }
            };
            if n > 0 {
                d.body.push(&self.policy, &mut self.out, &emit[..n]);
            }
        }
        let consumed = ended.unwrap_or(input.len());
        if ended.is_some() {
            let State::ExpectDataEnd(d) = std::mem::replace(&mut self.state, State::ExpectMail)
            else {
                unreachable!("checked above")
            };
            self.end_message(d.body);
        }
        consumed
    }

    /// Handles one command line; returns true after an accepted STARTTLS.
    fn handle_line(&mut self, line: &str) -> bool {
        if let State::ExpectAuthResponse(_) = self.state {
            let State::ExpectAuthResponse(step) =
                std::mem::replace(&mut self.state, State::ExpectMail)
            else {
                unreachable!("checked above")
            };
            self.auth_response(step, line);
            return false;
        }
        let (verb, arg) = match line.find(' ') {
            Some(i) => (&line[..i], line[i + 1..].trim()),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.hello(arg, true),
            "HELO" => self.hello(arg, false),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => self.data(arg),
            "RSET" => {
                if !arg.is_empty() {
                    self.reply(501, "5.5.4", "Syntax: RSET");
                } else {
                    self.reset_transaction();
                    self.reply(250, "2.0.0", "Ok");
                }
            }
            "NOOP" => self.reply(250, "2.0.0", "Ok"),
            "QUIT" => {
                self.abandon_message();
                let h = self.policy.hostname.clone();
                self.close_with(221, "2.0.0", &format!("{h} Bye"));
            }
            // RFC 5321 §3.5.3: 252 when we will not verify but would accept a try.
            "VRFY" => self.reply(
                252,
                "2.0.0",
                "Cannot VRFY user, but will accept fax mail for valid numbers",
            ),
            "EXPN" => self.reply(502, "5.5.1", "EXPN not implemented"),
            "HELP" => {
                self.out.push_back(Output::Reply(
                    "214-2.0.0 faxgate: mail to FAX=+<international number>@<our domain>\r\n\
                     214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH\r\n\
                     214 2.0.0 End of HELP info\r\n"
                        .into(),
                ));
            }
            "STARTTLS" => return self.starttls(arg),
            "AUTH" => self.auth(arg),
            "BDAT" => self.bdat(arg),
            _ => self.reply(500, "5.5.2", "Command unrecognized"),
        }
        false
    }

    fn reset_transaction(&mut self) {
        self.abandon_message();
        if let State::ExpectRcpt(_) = self.state {
            self.state = State::ExpectMail;
        }
        if self.helo.is_none() {
            self.state = State::ExpectHello;
        }
    }

    fn hello(&mut self, arg: &str, esmtp: bool) {
        let cmd = if esmtp { "EHLO" } else { "HELO" };
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            self.reply(501, "5.5.4", &format!("Syntax: {cmd} hostname"));
            return;
        }
        // RFC 5321 §4.1.4: EHLO in a transaction resets it.
        self.abandon_message();
        self.helo = Some((printable(arg, 255), esmtp));
        self.state = State::ExpectMail;
        let p = &self.policy;
        if !esmtp {
            let r = format!("250 {}\r\n", p.hostname);
            self.out.push_back(Output::Reply(r));
            return;
        }
        let mut lines = vec![
            format!(
                "{} Hello {} [{}]",
                p.hostname,
                printable(arg, 64),
                self.client.ip()
            ),
            "PIPELINING".into(),
            format!("SIZE {}", p.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "DSN".into(),
            "SMTPUTF8".into(),
            "CHUNKING".into(),
        ];
        if p.tls_available && self.tls.is_none() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() && self.auth_user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("HELP".into());
        let mut r = String::new();
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            r.push_str(&format!("250{sep}{l}\r\n"));
        }
        self.out.push_back(Output::Reply(r));
    }

    fn auth_offered(&self) -> bool {
        self.policy.auth_available && (self.tls.is_some() || self.policy.auth_without_tls)
    }

    fn client_in_networks(&self) -> bool {
        let ip = canonical_ip(self.client.ip());
        self.policy.client_networks.iter().any(|n| n.contains(&ip))
    }

    fn mail(&mut self, arg: &str) {
        match self.state {
            State::ExpectHello => return self.reply(503, "5.5.1", "Send hello first"),
            State::ExpectRcpt(_) | State::ExpectBdat(_) => {
                return self.reply(503, "5.5.1", "Sender already specified");
            }
            _ => {}
        }
        // The message rate is checked at MAIL, not at connect: it counts messages, and one
        // connection may carry any number of them (RFC 5321 §3.3), so only MAIL sees each
        // one; and at MAIL nothing is in flight, so refusing loses nothing (every message
        // before it was committed and answered). RFC 5321 §3.8: a 421 may answer any command,
        // then the server closes; 4.7.0 (RFC 3463 §3.8): a transient policy refusal.
        if self.mail_hold.is_some_and(|t| self.last_activity < t) {
            let h = self.policy.hostname.clone();
            return self.close_with(
                421,
                "4.7.0",
                &format!("{h} Too many messages from your address, try again later"),
            );
        }
        let Some((path, params)) = split_path(arg, "FROM:") else {
            return self.reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
        };
        // RFC 6531 §3.4: SMTPUTF8 is a MAIL parameter, so the path is judged after them.
        let smtputf8 = params
            .split_ascii_whitespace()
            .any(|p| p.eq_ignore_ascii_case("SMTPUTF8"));
        let sender = match parse_reverse_path(path, smtputf8) {
            Ok(s) => s,
            Err(PathError::NeedsUtf8) => {
                return self.reply(553, "5.6.7", &format!("<{path}>: {NON_ASCII}"));
            }
            Err(PathError::Bad(why)) => {
                return self.reply(553, "5.1.7", &format!("Bad sender address: {why}"));
            }
        };
        // Who may send: TLS and AUTH requirements first, then network or AUTH, then sender.
        if self.policy.require_tls && self.tls.is_none() {
            return self.reply(530, "5.7.0", "Must issue a STARTTLS command first");
        }
        if self.policy.require_auth && self.auth_user.is_none() {
            return self.reply(530, "5.7.0", "Authentication required");
        }
        if self.auth_user.is_none() && !self.client_in_networks() {
            let ip = self.client.ip();
            if self.policy.auth_available {
                return self.reply(
                    530,
                    "5.7.0",
                    &format!(
                        "Authentication required: client [{ip}] is not in a network allowed to send fax mail"
                    ),
                );
            }
            return self.reply(
                550,
                "5.7.1",
                &format!("Client [{ip}] is not in a network allowed to send fax mail"),
            );
        }
        // The null sender (RFC 5321 §4.5.5: bounces, and MTAs' recipient callouts) may check
        // recipients; its DATA/BDAT is refused (see [`NULL_SENDER_DATA`]). `allowed_senders`
        // applies to those who may send a fax, so not here.
        if !sender.is_empty() && !sender_allowed(&sender, &self.policy.allowed_senders) {
            return self.reply(
                550,
                "5.7.1",
                &format!("Sender <{sender}> is not allowed to send fax mail"),
            );
        }
        let mut env = Envelope {
            mail_from: sender,
            size: None,
            body: None,
            ret: None,
            envid: None,
            mail_auth: None,
            recipients: Vec::new(),
            postmaster: Vec::new(),
            client: ClientInfo {
                ip: self.client.ip(),
                port: self.client.port(),
                helo: self.helo.as_ref().map(|h| h.0.clone()).unwrap_or_default(),
                esmtp: self.helo.as_ref().is_some_and(|h| h.1),
            },
            auth_user: self.auth_user.clone(),
            tls: self.tls.clone(),
        };
        let max_size = self.policy.max_message_size;
        let trusted = self.auth_user.is_some();
        let r = each_param(params, |k, v| {
            match (k, v) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > max_size => {
                        return Err((
                            552,
                            "5.3.4",
                            "Message size exceeds fixed maximum message size".into(),
                        ));
                    }
                    Ok(n) => env.size = Some(n),
                    Err(_) => return Err((501, "5.5.4", "Bad SIZE value".into())),
                },
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => {
                    env.body = Some(Body::SevenBit)
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                    env.body = Some(Body::EightBitMime)
                }
                ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => env.ret = Some(Ret::Full),
                ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => env.ret = Some(Ret::Hdrs),
                ("ENVID", Some(v)) => match xtext_decode(v) {
                    Some(s) if s.len() <= MAX_ENVID => env.envid = Some(s),
                    _ => return Err((501, "5.5.4", "Bad ENVID value".into())),
                },
                ("AUTH", Some(v)) => match xtext_decode(v) {
                    // RFC 4954 §5: recorded only for an authenticated, trusted client.
                    Some(s) if s.len() <= 500 => {
                        if trusted {
                            env.mail_auth = Some(s)
                        }
                    }
                    _ => return Err((501, "5.5.4", "Bad AUTH value".into())),
                },
                // RFC 6531 §3.4: no value.
                ("SMTPUTF8", None) => {}
                ("BODY" | "RET" | "SMTPUTF8", _) => {
                    return Err((501, "5.5.4", format!("Bad {k} value")));
                }
                _ => return Err(unsupported(k)),
            }
            Ok(())
        });
        if let Err((code, enh, text)) = r {
            return self.reply(code, enh, &text);
        }
        let r = format!("Sender <{}> ok", env.mail_from);
        self.state = State::ExpectRcpt(Box::new(Transaction {
            env,
            smtputf8,
            by_subject: None,
        }));
        self.reply(250, "2.1.0", &r);
    }

    fn rcpt(&mut self, arg: &str) {
        let (count, smtputf8) = match &self.state {
            State::ExpectHello => return self.reply(503, "5.5.1", "Send hello first"),
            State::ExpectRcpt(t) => (t.recipient_count(), t.smtputf8),
            State::ExpectBdat(_) => {
                return self.reply(503, "5.5.1", "RCPT not allowed after BDAT (RFC 3030)");
            }
            _ => return self.reply(503, "5.5.1", "Need MAIL command first"),
        };
        let Some((path, params)) = split_path(arg, "TO:") else {
            return self.reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
        };
        if count >= self.policy.max_recipients {
            // RFC 5321 §4.5.3.1.10: 452 for too many recipients.
            return self.reply(452, "4.5.3", "Too many recipients");
        }
        if !path.is_ascii() {
            // RFC 6531 §3.5: a non-ASCII address without SMTPUTF8 is 553 5.6.7. With it, the
            // address is read but cannot be a fax number (those are ASCII).
            if !smtputf8 {
                return self.reply(553, "5.6.7", &format!("<{path}>: {NON_ASCII}"));
            }
            return self.reply(
                550,
                "5.1.1",
                &format!("<{path}>: not a fax address (use FAX=+<international number>@<domain>)"),
            );
        }
        let accepted = match self.check_recipient(path) {
            Ok(r) => r,
            Err((code, enh, text)) => return self.reply(code, enh, &text),
        };
        // The postmaster takes the same parameters (checked alike) but has no DSN of its own:
        // the forwarded copy is ordinary relayed mail (RFC 3461 §5.2.2 "relayed").
        let (mut notify, mut orcpt) = (None, None);
        let r = each_param(params, |k, v| {
            match (k, v) {
                ("NOTIFY", Some(v)) => match parse_notify(v) {
                    Some(n) => notify = Some(n),
                    None => return Err((501, "5.5.4", "Bad NOTIFY value".into())),
                },
                ("ORCPT", Some(v)) => {
                    let ok = v.split_once(';').and_then(|(t, a)| {
                        let a = xtext_decode(a)?;
                        (!t.is_empty()
                            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            && t.len() + a.len() < MAX_ORCPT)
                            .then(|| format!("{t};{a}"))
                    });
                    match ok {
                        Some(o) => orcpt = Some(o),
                        None => return Err((501, "5.5.4", "Bad ORCPT value".into())),
                    }
                }
                _ => return Err(unsupported(k)),
            }
            Ok(())
        });
        if let Err((code, enh, text)) = r {
            return self.reply(code, enh, &text);
        }
        let State::ExpectRcpt(t) = &mut self.state else {
            unreachable!("checked above")
        };
        let text = match accepted {
            Accepted::Fax(mut rcpt) => {
                rcpt.notify = notify;
                rcpt.orcpt = orcpt;
                let text = format!(
                    "Recipient <{}> ok: fax to {}",
                    rcpt.address, rcpt.destination.e164
                );
                t.env.recipients.push(rcpt);
                text
            }
            Accepted::Postmaster => {
                t.env.postmaster.push(path.to_owned());
                format!("Recipient <{path}> ok: postmaster")
            }
            Accepted::BySubject => {
                // One fax per message from the Subject: the same address twice is one.
                if t.by_subject.is_none() {
                    t.by_subject = Some(SubjectRcpt {
                        path: path.to_owned(),
                        notify,
                        orcpt,
                    });
                }
                format!("Recipient <{path}> ok: fax to the number at the start of the Subject")
            }
        };
        self.reply(250, "2.1.5", &text);
    }

    /// The RCPT policy, decided now (not after DATA): syntax, relaying, postmaster, fax form,
    /// dial plan.
    fn check_recipient(&self, path: &str) -> Result<Accepted, Refusal> {
        // RFC 5321 §4.1.1.3: the bare `<postmaster>` names the server's own postmaster.
        if address::is_bare_postmaster(path) {
            return Ok(Accepted::Postmaster);
        }
        let mb = address::parse_forward_path(path).map_err(|e| addr_reply(path, e))?;
        if !address::is_our_domain(&mb.domain, &self.policy.domains) {
            return Err(addr_reply(
                path,
                address::AddressError::ForeignDomain(mb.domain),
            ));
        }
        // RFC 5321 §4.5.1: every domain we serve has a postmaster, outside the dial plan.
        if mb.is_postmaster() {
            return Ok(Accepted::Postmaster);
        }
        if self.policy.is_subject_address(&mb) {
            return Ok(Accepted::BySubject);
        }
        match self.policy.fax_recipient(path, &mb) {
            Ok(r) => Ok(Accepted::Fax(r)),
            Err(RecipientError::Address(e)) => Err(addr_reply(path, e)),
            Err(RecipientError::Dial(e)) => Err((550, e.enhanced_code(), format!("<{path}>: {e}"))),
        }
    }

    fn data(&mut self, arg: &str) {
        let t = match &self.state {
            State::ExpectHello => return self.reply(503, "5.5.1", "Send hello first"),
            State::ExpectRcpt(t) => t,
            // RFC 3030 §3: DATA and BDAT do not mix in one transaction; the transaction
            // goes on.
            State::ExpectBdat(_) => {
                return self.reply(503, "5.5.1", "DATA not allowed after BDAT (RFC 3030)");
            }
            _ => return self.reply(503, "5.5.1", "Need MAIL command first"),
        };
        if !arg.is_empty() {
            return self.reply(501, "5.5.4", "Syntax: DATA");
        }
        if let Err((code, enh, text)) = transaction_ready(t) {
            return self.reply(code, enh, &text);
        }
        let State::ExpectRcpt(t) = std::mem::replace(&mut self.state, State::ExpectMail) else {
            unreachable!("checked above")
        };
        let t = *t;
        let body = Incoming::new(t.env, t.by_subject, &mut self.out);
        self.out.push_back(Output::Reply(
            "354 End data with <CR><LF>.<CR><LF>\r\n".into(),
        ));
        self.state = State::ExpectDataEnd(DataPhase {
            dots: DotState::LineStart,
            body,
        });
    }

    /// `BDAT n [LAST]` (RFC 3030 §2). Whatever the answer, the `n` octets behind the command
    /// are read before it is given: they are the client's data, never commands.
    fn bdat(&mut self, arg: &str) {
        let mut words = arg.split_ascii_whitespace();
        let size = words.next().filter(|w| {
            !w.is_empty() && w.len() <= MAX_CHUNK_DIGITS && w.bytes().all(|b| b.is_ascii_digit())
        });
        let last = match words.next() {
            None => Some(false),
            Some(w) if w.eq_ignore_ascii_case("LAST") => Some(true),
            Some(_) => None,
        };
        let (Some(octets), Some(last), None) =
            (size.and_then(|w| w.parse::<u64>().ok()), last, words.next())
        else {
            // Without a size the chunk's end is unknown: its octets would be read as
            // commands. Nothing sane can follow, so the session ends.
            return self.close_with(
                501,
                "5.5.4",
                "Syntax: BDAT chunk-size [LAST]; cannot find the end of the chunk, closing",
            );
        };
        let max = self.policy.max_message_size;
        let state = std::mem::replace(&mut self.state, State::ExpectMail);
        let fate = match state {
            State::ExpectHello => {
                ChunkFate::Discard((503, "5.5.1", "Send hello first".into()), Box::new(state))
            }
            State::ExpectRcpt(t) => match transaction_ready(&t) {
                Err(r) => ChunkFate::Discard(r, Box::new(State::ExpectRcpt(t))),
                Ok(()) if octets > max => {
                    ChunkFate::Discard(too_big(), Box::new(State::ExpectMail))
                }
                Ok(()) => {
                    let t = *t;
                    ChunkFate::Keep(Box::new(Chunked {
                        body: Incoming::new(t.env, t.by_subject, &mut self.out),
                        cr: false,
                    }))
                }
            },
            State::ExpectBdat(k) => {
                // Stored octets never shrink (line ends only grow), so a chunk that cannot
                // fit is known to be too big now: refused unread, not spooled and dropped.
                if k.body.size.saturating_add(octets) > max {
                    self.state = State::ExpectBdat(k);
                    self.abandon_message();
                    ChunkFate::Discard(too_big(), Box::new(State::ExpectMail))
                } else {
                    ChunkFate::Keep(k)
                }
            }
            other => {
                // No transaction (never begun, or failed at an earlier chunk): RFC 3030 §2,
                // the octets of BDATs pipelined after a failed one are read and dropped.
                ChunkFate::Discard(
                    (
                        503,
                        "5.5.1",
                        "No mail transaction (chunk discarded): send MAIL first".into(),
                    ),
                    Box::new(other),
                )
            }
        };
        self.state = State::ExpectChunk(Box::new(Chunk {
            left: octets,
            octets,
            last,
            fate,
        }));
        if octets == 0 {
            self.chunk_done();
        }
    }

    fn starttls(&mut self, arg: &str) -> bool {
        if !arg.is_empty() {
            self.reply(501, "5.5.4", "Syntax: STARTTLS");
            return false;
        }
        if !self.policy.tls_available {
            self.reply(502, "5.5.1", "STARTTLS not available");
            return false;
        }
        if self.tls.is_some() {
            self.reply(503, "5.5.1", "TLS already active");
            return false;
        }
        match self.state {
            State::ExpectHello => {
                self.reply(503, "5.5.1", "Send hello first");
                false
            }
            State::ExpectRcpt(_) | State::ExpectBdat(_) => {
                self.reply(503, "5.5.1", "Mail transaction in progress");
                false
            }
            _ => {
                self.reply(220, "2.0.0", "Ready to start TLS");
                self.out.push_back(Output::StartTls);
                self.state = State::ExpectTlsHandshake;
                true
            }
        }
    }

    fn auth(&mut self, arg: &str) {
        match self.state {
            State::ExpectHello => return self.reply(503, "5.5.1", "Send hello first"),
            State::ExpectRcpt(_) | State::ExpectBdat(_) => {
                return self.reply(503, "5.5.1", "AUTH not permitted during a mail transaction");
            }
            _ => {}
        }
        if !self.policy.auth_available {
            return self.reply(502, "5.5.1", "AUTH not available");
        }
        if self.tls.is_none() && !self.policy.auth_without_tls {
            // RFC 4954 §6: 538 when the mechanism needs an encrypted channel.
            return self.reply(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        if self.auth_user.is_some() {
            return self.reply(503, "5.5.1", "Already authenticated");
        }
        let (mech, initial) = match arg.split_once(' ') {
            Some((m, i)) => (m, Some(i.trim())),
            None => (arg, None),
        };
        match (mech.to_ascii_uppercase().as_str(), initial) {
            ("PLAIN", None) => {
                self.out.push_back(Output::Reply("334 \r\n".into()));
                self.state = State::ExpectAuthResponse(AuthStep::PlainResponse);
            }
            ("PLAIN", Some(i)) => self.auth_response(AuthStep::PlainResponse, i),
            ("LOGIN", None) => {
                // base64("Username:")
                self.out
                    .push_back(Output::Reply("334 VXNlcm5hbWU6\r\n".into()));
                self.state = State::ExpectAuthResponse(AuthStep::LoginUser);
            }
            ("LOGIN", Some(i)) => self.auth_response(AuthStep::LoginUser, i),
            ("", _) => self.reply(501, "5.5.4", "Syntax: AUTH mechanism"),
            _ => self.reply(504, "5.5.4", "Unrecognized authentication type"),
        }
    }

    fn auth_response(&mut self, step: AuthStep, line: &str) {
        self.state = State::ExpectMail;
        if line == "*" {
            return self.reply(501, "5.0.0", "Authentication cancelled");
        }
        // RFC 4954 §4: "=" is an empty initial response.
        let decoded = if line == "=" {
            Some(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD.decode(line).ok()
        };
        let Some(bytes) = decoded else {
            return self.reply(501, "5.5.2", "Cannot decode response");
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return self.reply(501, "5.5.2", "Credentials are not UTF-8");
        };
        match step {
            AuthStep::PlainResponse => {
                // RFC 4616 §2: authzid NUL authcid NUL passwd.
                let mut parts = text.splitn(3, '\0');
                let (Some(authz), Some(user), Some(pass)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return self.reply(501, "5.5.2", "Malformed PLAIN response");
                };
                if user.is_empty() || (!authz.is_empty() && authz != user) {
                    // Proxy authorization (authzid ≠ authcid) is not supported: a failure.
                    self.auth_verdict_pending(user.to_owned());
                    return self.apply_auth_verdict(AuthVerdict::Rejected);
                }
                self.auth_verdict_pending(user.to_owned());
                self.out.push_back(Output::Authenticate {
                    user: user.to_owned(),
                    password: pass.to_owned(),
                });
            }
            AuthStep::LoginUser => {
                self.out
                    .push_back(Output::Reply("334 UGFzc3dvcmQ6\r\n".into()));
                self.state = State::ExpectAuthResponse(AuthStep::LoginPassword(text));
            }
            AuthStep::LoginPassword(user) => {
                self.auth_verdict_pending(user.clone());
                self.out.push_back(Output::Authenticate {
                    user,
                    password: text,
                });
            }
        }
    }

    fn auth_verdict_pending(&mut self, user: String) {
        self.state = State::ExpectAuthVerdict(user);
    }
}

/// A refusal: reply code, enhanced code (RFC 3463), text.
type Refusal = (u16, &'static str, String);

/// RFC 6531 §3.5 reply text for a non-ASCII address without `SMTPUTF8` (`553 5.6.7`).
const NON_ASCII: &str =
    "Non-ASCII addresses not permitted for that sender/recipient without SMTPUTF8";

/// Reply text refusing the null sender's DATA or BDAT.
pub const NULL_SENDER_DATA: &str = "The null sender <> cannot send a fax: the fax's outcome \
     would have no one to be reported to (recipients can be checked with MAIL FROM:<>)";

/// RFC 1870 §6.1 / RFC 3030 §2: the message is bigger than `max_message_size`.
fn too_big() -> Refusal {
    (
        552,
        "5.3.4",
        "Message size exceeds fixed maximum message size".into(),
    )
}

/// Whether the transaction may carry a message: a recipient (RFC 5321 §3.3: `554` with
/// none), and a sender to report to.
fn transaction_ready(t: &Transaction) -> Result<(), Refusal> {
    if t.recipient_count() == 0 {
        return Err((554, "5.5.1", "No valid recipients".into()));
    }
    if t.env.mail_from.is_empty() {
        return Err((550, "5.7.1", NULL_SENDER_DATA.into()));
    }
    Ok(())
}

/// Walks the ESMTP parameters of MAIL or RCPT (RFC 5321 §4.1.2: `esmtp-param = esmtp-keyword
/// ["=" esmtp-value]`, separated by spaces), handing each to `each` in order with its keyword
/// upper-cased (keywords are case-insensitive, §2.4) and its value as given. Stops at the
/// first refusal: one from `each`, or `501 5.5.4` for a keyword given twice (ours: which of
/// the two would count is ambiguous), checked when the repeat is reached so that an earlier
/// bad value is the one reported.
fn each_param<'a>(
    params: &'a str,
    mut each: impl FnMut(&str, Option<&'a str>) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    // At most a few parameters fit in a command line: a linear search beats a set.
    let mut seen: Vec<String> = Vec::new();
    for p in params.split_ascii_whitespace() {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        };
        if seen.contains(&k) {
            return Err((501, "5.5.4", format!("Duplicate parameter {k}")));
        }
        each(&k, v)?;
        seen.push(k);
    }
    Ok(())
}

/// `555 5.5.4`: RFC 5321 §4.1.1.11, a parameter we do not implement.
fn unsupported(k: &str) -> Refusal {
    (555, "5.5.4", format!("Unsupported parameter {k}"))
}

fn addr_reply(path: &str, e: address::AddressError) -> Refusal {
    let code = match e {
        address::AddressError::Syntax(_) | address::AddressError::TooLong(_) => 553,
        _ => 550,
    };
    (code, e.enhanced_code(), format!("<{path}>: {e}"))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as IPv4, so `127.0.0.0/8` matches on a dual-stack socket.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Client text for our headers and replies: escaped to printable ASCII by the one helper
/// ([`Untrusted`]), at most `max` characters of it.
fn printable(s: &str, max: usize) -> String {
    Untrusted::new(s).ascii().max(max).to_string()
}

/// `FROM:<path> params` → (`path`, `params`); the keyword is case-insensitive and a space after
/// the colon is tolerated (common client behaviour).
fn split_path<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    // The path ends at the first `>` outside a quoted string.
    let mut quoted = false;
    let mut escape = false;
    for (i, c) in rest.char_indices() {
        match c {
            _ if escape => escape = false,
            '\\' if quoted => escape = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let params = &rest[i + 1..];
                if !params.is_empty() && !params.starts_with(' ') {
                    return None;
                }
                return Some((&rest[..i], params.trim()));
            }
            _ => {}
        }
    }
    None
}

/// Why a reverse-path was refused.
#[derive(Debug, PartialEq, Eq)]
enum PathError {
    /// Malformed (`553 5.1.7`).
    Bad(&'static str),
    /// Non-ASCII without `SMTPUTF8` (RFC 6531 §3.5: `553 5.6.7`).
    NeedsUtf8,
}

/// Reverse-path: `""` for the null sender, else `local@domain`. A source route is dropped
/// (RFC 5321 §4.1.1.2 / Appendix C: servers may ignore it). With `utf8` (RFC 6531 §3.3:
/// `MAIL … SMTPUTF8`), local part and domain may hold UTF-8 beyond ASCII, still without
/// spaces or controls; a byte that was not UTF-8 (read as U+FFFD) is refused.
fn parse_reverse_path(path: &str, utf8: bool) -> Result<String, PathError> {
    if path.is_empty() {
        return Ok(String::new());
    }
    let p = match path.strip_prefix('@') {
        Some(_) => path
            .split_once(':')
            .map(|x| x.1)
            .ok_or(PathError::Bad("bad source route"))?,
        None => path,
    };
    if p.len() > address::MAX_PATH {
        return Err(PathError::Bad("too long"));
    }
    let Some((local, domain)) = p.rsplit_once('@') else {
        return Err(PathError::Bad("user@domain needed"));
    };
    if local.is_empty() || domain.is_empty() {
        return Err(PathError::Bad("user@domain needed"));
    }
    if !p.is_ascii() && !utf8 {
        return Err(PathError::NeedsUtf8);
    }
    let ok = |c: char| {
        ('!'..='~').contains(&c)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace() && c != '\u{FFFD}')
    };
    if !p.chars().all(ok) {
        return Err(PathError::Bad("bad character"));
    }
    Ok(p.to_owned())
}

/// `allowed_senders`: `user@domain` (domain case-insensitive, local part exact) or `@domain`.
fn sender_allowed(sender: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some((local, domain)) = sender.rsplit_once('@') else {
        return false;
    };
    allowed.iter().any(|a| match a.strip_prefix('@') {
        Some(d) => d.eq_ignore_ascii_case(domain),
        None => match a.rsplit_once('@') {
            Some((al, ad)) => al == local && ad.eq_ignore_ascii_case(domain),
            None => false,
        },
    })
}

/// RFC 3461 §4.1: `NEVER` alone, or a comma list of SUCCESS, FAILURE, DELAY.
fn parse_notify(v: &str) -> Option<Vec<Notify>> {
    let mut out = Vec::new();
    for w in v.split(',') {
        let n = match w.to_ascii_uppercase().as_str() {
            "NEVER" => Notify::Never,
            "SUCCESS" => Notify::Success,
            "FAILURE" => Notify::Failure,
            "DELAY" => Notify::Delay,
            _ => return None,
        };
        if out.contains(&n) {
            return None;
        }
        out.push(n);
    }
    if out.contains(&Notify::Never) && out.len() > 1 {
        return None;
    }
    Some(out)
}

/// RFC 3461 §4: xtext, `+XX` hex escapes for `+`, `=` and characters outside 33–126.
pub fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let h = s.get(i + 1..i + 3)?;
                if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'=' => return None,
            c @ 33..=126 => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The `Received:` trace field (RFC 5321 §4.4) the listener prepends, with the RFC 3848
/// protocol (`ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`). `date` is RFC 5322 date-time text.
pub fn received_header(env: &Envelope, hostname: &str, queue_id: &str, date: &str) -> String {
    let proto = match (env.client.esmtp, env.tls.is_some(), env.auth_user.is_some()) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, true, false) => "ESMTPS",
        (true, false, true) => "ESMTPA",
        (true, true, true) => "ESMTPSA",
    };
    let mut h = format!(
        "Received: from {} ([{}])\r\n\tby {} (faxgate) with {} id {}",
        printable(&env.client.helo, 64),
        env.client.ip,
        hostname,
        proto,
        queue_id
    );
    if let Some(t) = &env.tls {
        h.push_str(&format!(
            "\r\n\t(using {} with cipher {})",
            t.protocol, t.cipher
        ));
    }
    let mut all = env
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .chain(env.postmaster.iter().map(String::as_str));
    if let (Some(only), None) = (all.next(), all.next()) {
        h.push_str(&format!("\r\n\tfor <{}>", printable(only, 256)));
    }
    h.push_str(&format!("; {date}\r\n"));
    h
}
