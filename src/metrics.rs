//! Prometheus metrics: what the gateway counts while it runs, and their exposition at
//! `GET /metrics` ([`encode`]).
//!
//! Counters and histograms live in one registry for the process ([`OnceLock`]: the daemon is
//! one process). The places where things happen record them with the free functions below, one
//! line each: the SMTP listener ([`smtp_connection`], [`smtp_reply`], [`smtp_accepted`]), the
//! fax attempts and the answer paths ([`fax_started`], [`fax_ended`]), mail delivery
//! ([`mail_attempt`]) and the two latencies ([`accepted_to_dial`], [`hangup_to_mail`]).
//!
//! What the daemon already keeps in memory — the dispatcher's queue counts, the lines' states on
//! the modem board — is not copied here: the console hands it to [`encode`] at each scrape
//! ([`Scrape`]), so a scrape never walks the spool and always agrees with `faxgate status`.
//!
//! Labels take values from fixed sets (directions, cause classes, refusal reasons) as
//! `&'static str`, so that no client can make a series; the one exception is the line name,
//! which is the operator's (`[[modem]] name`, or `loopback`), at most [`MAX_LINES`] of them.
//!
//! Formats: the registry writes OpenMetrics 1.0 text, served as such to a scraper that asks for
//! it (`Accept: application/openmetrics-text`, as Prometheus does); anyone else gets the classic
//! Prometheus text format 0.0.4 ([`classic`]), where a counter's family is named like its
//! `_total` sample and there is no `# EOF` line.
//!
//! This module imports only the job vocabulary ([`crate::job`]): everything else uses it.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::job::{CauseClass, JobKind};

/// Calls remembered per line for its failure ratio (the "last 32 calls").
pub const RING_CALLS: u32 = 32;
/// Lines whose calls are remembered at most (ours): line names come from the configuration,
/// this only bounds the map should that ever change.
pub const MAX_LINES: usize = 256;
/// Content type of the OpenMetrics exposition.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text exposition.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency histograms' buckets, seconds (ours): a loopback call and a
/// Maildir take milliseconds, a queue waiting for a busy line minutes, a relay that is down
/// hours (the fax kill time is 3 h by default; anything longer lands in `+Inf`).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    10800.0,
];

/// Every job kind, for a queue depth series per kind even when none is queued.
pub const JOB_KINDS: [JobKind; 4] = [
    JobKind::Message,
    JobKind::FaxOut,
    JobKind::FaxIn,
    JobKind::MailOut,
];

/// Which way a fax went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received: a call answered on a line.
    In,
    /// Sent: a fax job's attempt on a line.
    Out,
}

impl Direction {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// The label value of a cause class (the names job records use).
pub fn class_label(c: CauseClass) -> &'static str {
    match c {
        CauseClass::Done => "done",
        CauseClass::Busy => "busy",
        CauseClass::NoAnswer => "no-answer",
        CauseClass::ProtocolError => "protocol-error",
        CauseClass::Fatal => "fatal",
        CauseClass::Interrupted => "interrupted",
        CauseClass::RelayTemporary => "relay-temporary",
        CauseClass::RelayPermanent => "relay-permanent",
        CauseClass::LocalTemporary => "local-temporary",
    }
}

/// The classes a fax session can fail with (pre-made series, so that each starts at 0).
const FAX_FAILURES: [CauseClass; 6] = [
    CauseClass::Busy,
    CauseClass::NoAnswer,
    CauseClass::ProtocolError,
    CauseClass::Fatal,
    CauseClass::Interrupted,
    CauseClass::LocalTemporary,
];

/// Why the SMTP listener refused mail: the fixed label set of
/// `faxgate_smtp_messages_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpRefusal {
    /// MAIL with a sender address that does not parse (`553 5.1.7`).
    Sender,
    /// RCPT with an address that is no fax address or a number that does not exist
    /// (`550`/`553 5.1.x`).
    Recipient,
    /// Not allowed: relaying, a number the dial plan refuses, a client network or sender not
    /// allowed to send faxes, the null sender (`550 5.7.1`).
    Policy,
    /// MAIL before the STARTTLS or AUTH the policy requires (`530 5.7.0`).
    AuthRequired,
    /// RCPT past `smtp.max_recipients` (`452 4.5.3`).
    TooManyRecipients,
    /// DATA without an accepted recipient (`554 5.5.1`).
    NoValidRecipients,
    /// Larger than `smtp.max_message_size`, announced or sent (`552 5.3.4`).
    TooBig,
    /// The spool is short of space (`452 4.3.1`).
    NoSpace,
    /// The message could not be stored (`451 4.3.0`, `554 5.3.0`).
    LocalError,
    /// A per-address limit: messages per minute, or failed logins (`421 4.7.0`).
    RateLimit,
}

impl SmtpRefusal {
    /// Every reason.
    pub const ALL: [SmtpRefusal; 10] = [
        SmtpRefusal::Sender,
        SmtpRefusal::Recipient,
        SmtpRefusal::Policy,
        SmtpRefusal::AuthRequired,
        SmtpRefusal::TooManyRecipients,
        SmtpRefusal::NoValidRecipients,
        SmtpRefusal::TooBig,
        SmtpRefusal::NoSpace,
        SmtpRefusal::LocalError,
        SmtpRefusal::RateLimit,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            SmtpRefusal::Sender => "sender",
            SmtpRefusal::Recipient => "recipient",
            SmtpRefusal::Policy => "policy",
            SmtpRefusal::AuthRequired => "auth-required",
            SmtpRefusal::TooManyRecipients => "too-many-recipients",
            SmtpRefusal::NoValidRecipients => "no-valid-recipients",
            SmtpRefusal::TooBig => "too-big",
            SmtpRefusal::NoSpace => "no-space",
            SmtpRefusal::LocalError => "local-error",
            SmtpRefusal::RateLimit => "rate-limit",
        }
    }

    /// PURE: the refusal a reply of the SMTP session stands for, read from its code and
    /// RFC 3463 enhanced status code only (never its text, which may quote the client).
    /// `None` for every other reply: success, syntax and sequence errors (`50x`), AUTH
    /// verdicts, time-outs and shutdown (`421 4.4.2`, `421 4.3.2`).
    pub fn of_reply(reply: &str) -> Option<SmtpRefusal> {
        let code = reply.get(..3)?;
        let enhanced = reply.get(4..)?.split([' ', '\r']).next()?;
        Some(match (code, enhanced) {
            ("553", "5.1.7") => SmtpRefusal::Sender,
            ("550" | "553", e) if e.starts_with("5.1.") => SmtpRefusal::Recipient,
            ("550", "5.7.1") => SmtpRefusal::Policy,
            ("530", "5.7.0") => SmtpRefusal::AuthRequired,
            ("452", "4.5.3") => SmtpRefusal::TooManyRecipients,
            ("554", "5.5.1") => SmtpRefusal::NoValidRecipients,
            ("552", "5.3.4") => SmtpRefusal::TooBig,
            ("452", "4.3.1") => SmtpRefusal::NoSpace,
            ("451", "4.3.0") | ("554", "5.3.0") => SmtpRefusal::LocalError,
            ("421", "4.7.0") => SmtpRefusal::RateLimit,
            _ => return None,
        })
    }
}

/// PURE: whether each of a line's last [`RING_CALLS`] calls failed, newest in the lowest bit
/// (a 32-entry ring in one word: a new call shifts the oldest out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ring {
    failed: u32,
    calls: u32,
}

impl Ring {
    /// Remembers one more call, forgetting the oldest once [`RING_CALLS`] are held.
    pub fn push(&mut self, failed: bool) {
        self.failed = (self.failed << 1) | u32::from(failed);
        self.calls = (self.calls + 1).min(RING_CALLS);
    }

    /// Calls remembered (at most [`RING_CALLS`]).
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// Failed calls among them.
    pub fn failures(&self) -> u32 {
        self.failed.count_ones()
    }

    /// Failed share of the calls remembered; `None` before the first call.
    pub fn ratio(&self) -> Option<f64> {
        (self.calls > 0).then(|| f64::from(self.failures()) / f64::from(self.calls))
    }
}

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// The process's counters and histograms.
struct Metrics {
    registry: Registry,
    sessions_started: Family<Labels1, Counter>,
    sessions_completed: Family<Labels1, Counter>,
    sessions_failed: Family<Labels2, Counter>,
    pages_sent: Counter,
    pages_received: Counter,
    smtp_connections: Counter,
    smtp_accepted: Counter,
    smtp_rejected: Family<Labels1, Counter>,
    mail_delivered: Counter,
    mail_failed: Family<Labels1, Counter>,
    hangup_to_mail: Histogram,
    accepted_to_dial: Histogram,
    lines: Mutex<BTreeMap<String, Ring>>,
}

fn direction(d: Direction) -> Labels1 {
    [("direction", d.label())]
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            sessions_started: Family::default(),
            sessions_completed: Family::default(),
            sessions_failed: Family::default(),
            pages_sent: Counter::default(),
            pages_received: Counter::default(),
            smtp_connections: Counter::default(),
            smtp_accepted: Counter::default(),
            smtp_rejected: Family::default(),
            mail_delivered: Counter::default(),
            mail_failed: Family::default(),
            hangup_to_mail: Histogram::new(LATENCY_BUCKETS),
            accepted_to_dial: Histogram::new(LATENCY_BUCKETS),
            lines: Mutex::new(BTreeMap::new()),
        };
        // Every series of a fixed label set exists from the start at 0, so that a rate over
        // the first event is right and a dashboard shows 0 rather than nothing.
        for d in [Direction::In, Direction::Out] {
            let _ = m.sessions_started.get_or_create(&direction(d));
            let _ = m.sessions_completed.get_or_create(&direction(d));
            for c in FAX_FAILURES {
                let _ = m
                    .sessions_failed
                    .get_or_create(&[("direction", d.label()), ("cause_class", class_label(c))]);
            }
        }
        for r in SmtpRefusal::ALL {
            let _ = m.smtp_rejected.get_or_create(&[("reason", r.label())]);
        }
        for f in ["temporary", "permanent"] {
            let _ = m.mail_failed.get_or_create(&[("failure", f)]);
        }
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "faxgate_build",
            "The faxgate build: its version in the label, value always 1",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        r.register(
            "faxgate_fax_sessions_started",
            "Fax sessions started: attempts of fax jobs on a line (out) and calls answered whose \
             pages could be stored (in)",
            self.sessions_started.clone(),
        );
        r.register(
            "faxgate_fax_sessions_completed",
            "Fax sessions that ended with cause class done: every page confirmed (out), the \
             call's T.30 outcome in the registry's done class (in)",
            self.sessions_completed.clone(),
        );
        r.register(
            "faxgate_fax_sessions_failed",
            "Fax sessions that ended otherwise, by the cause class that decides the job's retry",
            self.sessions_failed.clone(),
        );
        r.register(
            "faxgate_fax_pages_sent",
            "Pages the far end confirmed (MCF) on outgoing fax sessions",
            self.pages_sent.clone(),
        );
        r.register(
            "faxgate_fax_pages_received",
            "Pages received and stored in the spool on incoming fax sessions",
            self.pages_received.clone(),
        );
        r.register(
            "faxgate_smtp_connections_accepted",
            "TCP connections accepted by the SMTP listener, before its connection limits",
            self.smtp_connections.clone(),
        );
        r.register(
            "faxgate_smtp_messages_accepted",
            "Messages committed to the spool and answered 250 by the SMTP listener",
            self.smtp_accepted.clone(),
        );
        r.register(
            "faxgate_smtp_messages_rejected",
            "SMTP replies refusing a sender, a recipient or a message, one per refusing reply \
             (a recipient refused counts even when others were accepted), by reason; syntax and \
             sequence errors are not counted",
            self.smtp_rejected.clone(),
        );
        r.register(
            "faxgate_mail_deliveries",
            "Mail-out attempts the relay or the Maildir accepted (received faxes, reports, \
             notices)",
            self.mail_delivered.clone(),
        );
        r.register(
            "faxgate_mail_delivery_failures",
            "Mail-out attempts that failed, temporary (retried: 4xx, relay unreachable, local \
             trouble) or permanent (5xx)",
            self.mail_failed.clone(),
        );
        r.register_with_unit(
            "faxgate_fax_hangup_to_mail",
            "Time from the hang-up of a received fax (its fax-in job's commit) to the relay or \
             Maildir accepting its mail, per mail",
            Unit::Seconds,
            self.hangup_to_mail.clone(),
        );
        r.register_with_unit(
            "faxgate_fax_accepted_to_dial",
            "Time from a message's commit (the SMTP 250) to the first attempt of each of its fax \
             jobs on a line",
            Unit::Seconds,
            self.accepted_to_dial.clone(),
        );
        self
    }
}

fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// A fax session started (an outgoing attempt on a line, or a call answered).
pub fn fax_started(d: Direction) {
    global().sessions_started.get_or_create(&direction(d)).inc();
}

/// A fax session on `line` ended with `class` after `pages` pages (confirmed out, stored in):
/// counted as completed or failed, and remembered in the line's ring.
pub fn fax_ended(d: Direction, line: &str, class: CauseClass, pages: u32) {
    let m = global();
    if class.is_done() {
        m.sessions_completed.get_or_create(&direction(d)).inc();
    } else {
        m.sessions_failed
            .get_or_create(&[
                ("direction", d.label()),
                ("cause_class", class_label(class)),
            ])
            .inc();
    }
    match d {
        Direction::In => m.pages_received.inc_by(u64::from(pages)),
        Direction::Out => m.pages_sent.inc_by(u64::from(pages)),
    };
    let mut lines = m.lines.lock().unwrap_or_else(|p| p.into_inner());
    if lines.len() < MAX_LINES || lines.contains_key(line) {
        lines
            .entry(line.to_owned())
            .or_default()
            .push(!class.is_done());
    }
}

/// The SMTP listener accepted a connection.
pub fn smtp_connection() {
    global().smtp_connections.inc();
}

/// The SMTP listener committed a message (its `250` follows).
pub fn smtp_accepted() {
    global().smtp_accepted.inc();
}

/// The SMTP session is sending `reply`: a refusal is counted by its reason.
pub fn smtp_reply(reply: &str) {
    if let Some(r) = SmtpRefusal::of_reply(reply) {
        global()
            .smtp_rejected
            .get_or_create(&[("reason", r.label())])
            .inc();
    }
}

/// A mail-out attempt ended with `class`.
pub fn mail_attempt(class: CauseClass) {
    let m = global();
    match class {
        CauseClass::Done => {
            m.mail_delivered.inc();
        }
        c => {
            let f = match c {
                CauseClass::RelayPermanent | CauseClass::Fatal => "permanent",
                _ => "temporary",
            };
            m.mail_failed.get_or_create(&[("failure", f)]).inc();
        }
    }
}

/// A received fax's mail was accepted `d` after the hang-up.
pub fn hangup_to_mail(d: Duration) {
    global().hangup_to_mail.observe(d.as_secs_f64());
}

/// A fax job's first attempt started `d` after its message's `250`.
pub fn accepted_to_dial(d: Duration) {
    global().accepted_to_dial.observe(d.as_secs_f64());
}

/// What the daemon knows at scrape time, from memory.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Waiting and running jobs by kind name (`fax-out`, …): the dispatcher's figures. A kind
    /// not named has none.
    pub queue: BTreeMap<String, (usize, usize)>,
    /// Each line's name and the word of its state now (the modem board).
    pub lines: Vec<(String, &'static str)>,
    /// Every state a line can be in, so that each line has a series per state.
    pub line_states: Vec<&'static str>,
}

/// The scrape-time gauges, in a registry of their own made for one scrape.
fn scrape_registry(s: &Scrape) -> Registry {
    let mut r = Registry::default();
    let depth = Family::<[(&'static str, String); 2], Gauge>::default();
    let mut kinds: Vec<String> = JOB_KINDS.iter().map(|k| k.name().to_owned()).collect();
    kinds.extend(
        s.queue
            .keys()
            .filter(|k| !kinds.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
    );
    for k in kinds {
        let (queued, running) = s.queue.get(&k).copied().unwrap_or_default();
        for (state, n) in [("queued", queued), ("running", running)] {
            depth
                .get_or_create(&[("kind", k.clone()), ("state", state.to_owned())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    r.register(
        "faxgate_queue_depth_jobs",
        "Jobs in the queue by kind and state (queued: waiting for their time or a resource; \
         running: an attempt in progress), from the dispatcher's figures in memory",
        depth,
    );

    let state = Family::<[(&'static str, String); 2], Gauge>::default();
    for (line, now) in &s.lines {
        for st in &s.line_states {
            state
                .get_or_create(&[("line", line.clone()), ("state", (*st).to_owned())])
                .set(i64::from(now == st));
        }
    }
    r.register(
        "faxgate_line_state",
        "Each line's state: 1 for the state it is in now, 0 for the others",
        state,
    );

    let ratio = Family::<[(&'static str, String); 1], Gauge<f64, AtomicU64>>::default();
    let calls = Family::<[(&'static str, String); 1], Gauge>::default();
    let lines = global().lines.lock().unwrap_or_else(|p| p.into_inner());
    for (line, ring) in lines.iter() {
        if let Some(x) = ring.ratio() {
            ratio.get_or_create(&[("line", line.clone())]).set(x);
            calls
                .get_or_create(&[("line", line.clone())])
                .set(i64::from(ring.calls()));
        }
    }
    drop(lines);
    r.register(
        "faxgate_line_failure_ratio",
        "Share of each line's last 32 fax sessions (in and out) that did not end done",
        ratio,
    );
    r.register(
        "faxgate_line_recent_calls",
        "Fax sessions the failure ratio is taken over (at most 32)",
        calls,
    );
    r
}

/// The exposition: every metric, with `now`'s figures; OpenMetrics text when `openmetrics`,
/// else the classic Prometheus text format.
pub fn encode(now: &Scrape, openmetrics: bool) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    encode_registry(&mut out, &global().registry)?;
    encode_registry(&mut out, &scrape_registry(now))?;
    encode_eof(&mut out)?;
    Ok(if openmetrics { out } else { classic(&out) })
}

/// True when an `Accept` header asks for OpenMetrics (Prometheus lists it first), with any
/// weight but `q=0` ("not acceptable", RFC 9110 §12.4.2).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let is_om = parts
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/openmetrics-text"));
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q == 0.0)
        });
        is_om && !refused
    })
}

/// PURE: OpenMetrics text as written by `prometheus_client`, in the classic Prometheus text
/// format 0.0.4: a counter family `x` (samples `x_total`) becomes `x_total`, an info family `x`
/// (sample `x_info`) the gauge `x_info`; `# UNIT` and `# EOF` lines go (the classic format has
/// neither). Samples are the same in both formats.
pub fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // `prometheus_client` writes a family's HELP before its TYPE: HELP waits for TYPE to know
    // the family's classic name.
    let mut help: Option<(&str, &str)> = None;
    let flush = |out: &mut String, help: &mut Option<(&str, &str)>| {
        if let Some((name, text)) = help.take() {
            out.push_str(&format!("# HELP {name} {text}\n"));
        }
    };
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush(&mut out, &mut help);
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, typ) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (classic_name, classic_type) = match typ {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" | "gaugehistogram" => (name.to_owned(), "gauge"),
                "unknown" => (name.to_owned(), "untyped"),
                t => (name.to_owned(), t),
            };
            match help.take() {
                Some((h, text)) if h == name => {
                    out.push_str(&format!("# HELP {classic_name} {text}\n"));
                }
                other => flush(&mut out, &mut other.clone()),
            }
            out.push_str(&format!("# TYPE {classic_name} {classic_type}\n"));
        } else if line.starts_with('#') {
            // `# UNIT`, `# EOF`: OpenMetrics only.
        } else {
            flush(&mut out, &mut help);
            out.push_str(line);
            out.push('\n');
        }
    }
    flush(&mut out, &mut help);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_32_calls() {
        let mut r = Ring::default();
        assert_eq!(r.ratio(), None);
        r.push(true);
        assert_eq!((r.calls(), r.failures(), r.ratio()), (1, 1, Some(1.0)));
        r.push(false);
        r.push(false);
        r.push(false);
        assert_eq!(r.ratio(), Some(0.25));
        // 32 good calls push every failure out.
        for _ in 0..RING_CALLS {
            r.push(false);
        }
        assert_eq!((r.calls(), r.failures(), r.ratio()), (32, 0, Some(0.0)));
        // Then 8 failures among the last 32.
        for _ in 0..8 {
            r.push(true);
        }
        assert_eq!((r.calls(), r.failures()), (32, 8));
        assert_eq!(r.ratio(), Some(0.25));
        // 24 more good calls keep the 8 in the window; the 25th pushes the oldest out.
        for _ in 0..24 {
            r.push(false);
        }
        assert_eq!(r.failures(), 8);
        r.push(false);
        assert_eq!(r.failures(), 7);
        assert_eq!(r.ratio(), Some(7.0 / 32.0));
    }

    #[test]
    fn refusals_are_read_from_codes_only() {
        let cases = [
            (
                "553 5.1.7 Bad sender address: x\r\n",
                Some(SmtpRefusal::Sender),
            ),
            (
                "550 5.1.1 <FAX=1@x>: not a number\r\n",
                Some(SmtpRefusal::Recipient),
            ),
            ("553 5.1.3 <a b>: syntax\r\n", Some(SmtpRefusal::Recipient)),
            (
                "550 5.7.1 <a@elsewhere>: relay\r\n",
                Some(SmtpRefusal::Policy),
            ),
            (
                "530 5.7.0 Authentication required\r\n",
                Some(SmtpRefusal::AuthRequired),
            ),
            (
                "452 4.5.3 Too many recipients\r\n",
                Some(SmtpRefusal::TooManyRecipients),
            ),
            (
                "554 5.5.1 No valid recipients\r\n",
                Some(SmtpRefusal::NoValidRecipients),
            ),
            (
                "552 5.3.4 Message size exceeds\r\n",
                Some(SmtpRefusal::TooBig),
            ),
            (
                "452 4.3.1 Insufficient system storage\r\n",
                Some(SmtpRefusal::NoSpace),
            ),
            ("451 4.3.0 Local error\r\n", Some(SmtpRefusal::LocalError)),
            (
                "554 5.3.0 Message refused\r\n",
                Some(SmtpRefusal::LocalError),
            ),
            (
                "421 4.7.0 h Too many messages\r\n",
                Some(SmtpRefusal::RateLimit),
            ),
            // Not refusals of mail.
            ("250 2.0.0 Ok: queued as 1\r\n", None),
            ("503 5.5.1 Send hello first\r\n", None),
            ("501 5.5.4 Syntax: MAIL FROM:<address>\r\n", None),
            ("535 5.7.8 Authentication credentials invalid\r\n", None),
            ("421 4.4.2 h Error: timeout exceeded\r\n", None),
            ("354 End data with <CR><LF>.<CR><LF>\r\n", None),
            // The text cannot make a refusal: only the code and enhanced code are read.
            ("250 2.1.5 Recipient <552 5.3.4@x> ok\r\n", None),
            ("", None),
            ("55", None),
            ("550", None),
            ("550 ", None),
            ("5\u{e9}0 5.7.1 x", None),
        ];
        for (reply, want) in cases {
            assert_eq!(SmtpRefusal::of_reply(reply), want, "{reply:?}");
        }
    }

    #[test]
    fn the_session_s_refusals_are_classified() {
        // The replies the real session writes for a refused MAIL and RCPT.
        use crate::smtp::session::{Output, Policy, Session};
        let mut cfg = crate::config::Config::default();
        cfg.gateway.domains = vec!["localhost".into()];
        cfg.smtp.max_recipients = 1;
        let policy = Policy::from_config(&cfg, false);
        let peer = "127.0.0.1:4000".parse().unwrap();
        let now = std::time::Instant::now();
        let mut s = Session::new(policy.into(), peer, now);
        s.feed(
            now,
            b"EHLO t\r\nMAIL FROM:<bad address>\r\nMAIL FROM:<a@example.org>\r\n\
              RCPT TO:<x@elsewhere.example>\r\nRCPT TO:<FAX=+12125550142@localhost>\r\n\
              RCPT TO:<FAX=+12125550143@localhost>\r\n",
        );
        let mut got = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Reply(r) = o {
                got.push(SmtpRefusal::of_reply(&r));
            }
        }
        let refused: Vec<_> = got.into_iter().flatten().collect();
        assert_eq!(
            refused,
            [
                SmtpRefusal::Sender,
                SmtpRefusal::Policy,
                SmtpRefusal::TooManyRecipients
            ]
        );
    }

    #[test]
    fn classic_names_families_like_their_samples() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total{x=\"1\"} 2\n\
                  # HELP v The build.\n# TYPE v info\nv_info{version=\"1\"} 1\n\
                  # HELP t_seconds Time.\n# TYPE t_seconds histogram\n# UNIT t_seconds seconds\n\
                  t_seconds_sum 0.5\nt_seconds_count 1\nt_seconds_bucket{le=\"+Inf\"} 1\n\
                  # HELP g Now.\n# TYPE g gauge\ng 3\n# EOF\n";
        let want = "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 2\n\
                    # HELP v_info The build.\n# TYPE v_info gauge\nv_info{version=\"1\"} 1\n\
                    # HELP t_seconds Time.\n# TYPE t_seconds histogram\n\
                    t_seconds_sum 0.5\nt_seconds_count 1\nt_seconds_bucket{le=\"+Inf\"} 1\n\
                    # HELP g Now.\n# TYPE g gauge\ng 3\n";
        assert_eq!(classic(om), want);
    }

    #[test]
    fn exposition_has_every_family_and_the_scrape_figures() {
        let mut queue = BTreeMap::new();
        queue.insert("fax-out".to_owned(), (2, 1));
        let now = Scrape {
            queue,
            lines: vec![("loopback".into(), "sending")],
            line_states: vec!["idle", "sending", "receiving", "offline"],
        };
        let om = encode(&now, true).unwrap();
        assert!(om.ends_with("# EOF\n"), "{om}");
        for needle in [
            "faxgate_build_info{version=\"",
            "# TYPE faxgate_fax_sessions_started counter",
            "faxgate_fax_sessions_failed_total{direction=\"out\",cause_class=\"busy\"}",
            "faxgate_smtp_messages_rejected_total{reason=\"too-big\"}",
            "faxgate_mail_delivery_failures_total{failure=\"permanent\"}",
            "# TYPE faxgate_fax_hangup_to_mail_seconds histogram",
            "faxgate_fax_accepted_to_dial_seconds_bucket{le=\"0.05\"}",
            "faxgate_queue_depth_jobs{kind=\"fax-out\",state=\"queued\"} 2",
            "faxgate_queue_depth_jobs{kind=\"fax-out\",state=\"running\"} 1",
            "faxgate_queue_depth_jobs{kind=\"mail-out\",state=\"queued\"} 0",
            "faxgate_line_state{line=\"loopback\",state=\"sending\"} 1",
            "faxgate_line_state{line=\"loopback\",state=\"idle\"} 0",
        ] {
            assert!(om.contains(needle), "{needle} missing:\n{om}");
        }
        let plain = encode(&now, false).unwrap();
        assert!(!plain.contains("# EOF") && !plain.contains("# UNIT"));
        assert!(plain.contains("# TYPE faxgate_fax_sessions_started_total counter"));
        assert!(plain.contains("# TYPE faxgate_build_info gauge"));
    }

    #[test]
    fn a_line_s_ratio_follows_its_calls() {
        // A line name no other test uses: the registry is the process's.
        let line = "metrics-unit-test-line";
        fax_ended(Direction::Out, line, CauseClass::Done, 0);
        fax_ended(Direction::In, line, CauseClass::ProtocolError, 0);
        let om = encode(&Scrape::default(), true).unwrap();
        assert!(
            om.contains(&format!(
                "faxgate_line_failure_ratio{{line=\"{line}\"}} 0.5"
            )),
            "{om}"
        );
        assert!(om.contains(&format!("faxgate_line_recent_calls{{line=\"{line}\"}} 2")));
    }

    #[test]
    fn openmetrics_is_asked_for_by_prometheus_accept_headers() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
        ));
        assert!(!wants_openmetrics("text/plain; version=0.0.4"));
        assert!(!wants_openmetrics("*/*"));
        assert!(wants_openmetrics("Application/OpenMetrics-Text"));
        assert!(!wants_openmetrics(
            "application/openmetrics-text; q=0, text/plain"
        ));
        assert!(!wants_openmetrics("application/openmetrics-textual"));
    }
}
