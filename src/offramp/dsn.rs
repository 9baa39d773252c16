//! Delivery reports: RFC 3464 delivery status notifications and RFC 8098 MDNs.
//!
//! PURE: the outcome of every recipient of one message, the envelope and `now` in; the bytes of
//! one report and its envelope out. The report is an RFC 6522 `multipart/report;
//! report-type=delivery-status` with three parts: a readable summary (pages sent of total,
//! each page's result on the last call, duration, remote station ID, speed, attempts, the
//! cause in plain words), the `message/delivery-status` fields, and the original message or
//! its headers (RET). With a picture of the first page sent ([`Thumbnail`], when a page went)
//! the readable part is `multipart/alternative` of the same text and an HTML version showing
//! it (RFC 6522 §3: the first part "may be in any MIME standards-track content type … Where a
//! description of the error is desired in several languages or several media, a
//! multipart/alternative construct MAY be used").
//!
//! Rules applied here (RFC 3461 §4.1–4.4, §6.2; RFC 3464 §2; RFC 5321 §4.5.5):
//! - a report goes from the null sender `<>` to the envelope's MAIL FROM, and never to a
//!   message that itself came from `<>` (no report loops);
//! - a recipient is listed only if its NOTIFY asks for this kind of outcome: failures unless
//!   `NOTIFY=NEVER`, successes only with `NOTIFY=SUCCESS` (or `offramp.notify_success_by_default`
//!   when the envelope said nothing), delays only with `NOTIFY=DELAY`;
//! - `Original-Envelope-Id` carries ENVID, `Original-Recipient` carries ORCPT (RFC 3461 §4;
//!   the SMTP session stores both already decoded from xtext, so they are used as stored);
//! - the whole original message only with `RET=FULL` and a failure among the listed
//!   recipients (RFC 3461 §4.3: success reports carry headers only), else its headers.

use std::time::Duration;

use crate::logging::Untrusted;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::causes::{Action, Cause};
pub use crate::job::PageResult;

/// Largest original returned whole with `RET=FULL` (ours); a bigger one is returned as headers
/// so that the report itself does not bounce for size.
pub const MAX_RETURNED_MESSAGE: usize = 2 * 1024 * 1024;

/// Longest header block of the original returned (ours).
pub const MAX_RETURNED_HEADERS: usize = 64 * 1024;

/// RFC 3461 §4.1 NOTIFY as the envelope gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Notify {
    /// `NOTIFY=` was present at all (when absent the site default applies).
    pub given: bool,
    /// `SUCCESS` was listed.
    pub success: bool,
    /// `FAILURE` was listed.
    pub failure: bool,
    /// `DELAY` was listed.
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Notify = Notify {
        given: true,
        success: false,
        failure: false,
        delay: false,
    };
    /// No NOTIFY parameter.
    pub const UNSPECIFIED: Notify = Notify {
        given: false,
        success: false,
        failure: false,
        delay: false,
    };

    /// Parse the NOTIFY value (`NEVER` or a comma list of `SUCCESS`, `FAILURE`, `DELAY`).
    pub fn parse(v: &str) -> Option<Notify> {
        let mut n = Notify {
            given: true,
            ..Notify::UNSPECIFIED
        };
        if v.trim().eq_ignore_ascii_case("never") {
            return Some(n);
        }
        for w in v.split(',') {
            match w.trim().to_ascii_uppercase().as_str() {
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => return None,
            }
        }
        Some(n)
    }

    /// Whether an outcome with `action` is to be reported to this recipient's sender.
    pub fn wants(self, action: Action, success_by_default: bool) -> bool {
        if !self.given {
            // RFC 3461 §4.1: absent NOTIFY is FAILURE (or FAILURE,DELAY) at the MTA's choice;
            // we add SUCCESS when the site wants it, since ordinary clients never ask.
            return match action {
                Action::Failed => true,
                Action::Delivered => success_by_default,
                Action::Delayed => false,
            };
        }
        match action {
            Action::Failed => self.failure,
            Action::Delivered => self.success,
            Action::Delayed => self.delay,
        }
    }
}

/// RFC 3461 §4.3 RET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    /// Not given: we return headers.
    #[default]
    Unspecified,
    /// `RET=FULL`.
    Full,
    /// `RET=HDRS`.
    Hdrs,
}

/// What the fax transmitter measured for one recipient (all optional: a message that failed
/// before dialling has none of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxSummary {
    /// The number dialled (E.164).
    pub number: String,
    /// Pages confirmed by the receiver.
    pub pages_sent: u32,
    /// Pages in the document (0 when it was never rendered).
    pub pages_total: u32,
    /// Time on the line of the last call.
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// The receiver's station ID (T.30 CSI).
    pub remote_id: Option<String>,
    /// Signalling rate of the last page in bit/s.
    pub speed_bps: Option<u32>,
    /// Dials made.
    pub attempts: u32,
    /// When the last attempt ended, in Unix seconds.
    pub last_attempt: Option<i64>,
    /// Each page on the last call (empty when unknown).
    #[serde(default)]
    pub page_results: Vec<PageResult>,
}

/// A small picture of the first page sent, shown in the report the way a fax machine's
/// transmission report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thumbnail<'a> {
    /// The PNG file.
    pub png: &'a [u8],
    /// Its width in pixels (the HTML gives it, so a client lays the report out before the
    /// picture is decoded).
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
}

/// Most page lines listed per recipient in the readable summary (ours; the pages past it are
/// counted in one line).
pub const MAX_PAGE_LINES: usize = 200;

/// One recipient's line in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientOutcome {
    /// The RCPT TO address (RFC 3464 §2.3.2 Final-Recipient, type rfc822).
    pub rcpt: String,
    /// The ORCPT parameter (`addr-type;address`, decoded from xtext), RFC 3461 §4.2.
    pub orcpt: Option<String>,
    /// The recipient's NOTIFY.
    pub notify: Notify,
    /// Delivered, failed or (not yet final) delayed.
    pub action: Action,
    /// Why.
    pub cause: Cause,
    /// Line figures.
    pub fax: FaxSummary,
}

/// Everything a report is made from.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// Our host name (Reporting-MTA, From, Message-ID).
    pub hostname: &'a str,
    /// A unique token for this report's Message-ID (e.g. the message job id plus a suffix).
    pub report_id: &'a str,
    /// Envelope MAIL FROM of the original (the report's recipient); empty for `<>`.
    pub mail_from: &'a str,
    /// ENVID (decoded from xtext by the SMTP session).
    pub envid: Option<&'a str>,
    /// RET.
    pub ret: Ret,
    /// When we accepted the message.
    pub arrival: DateTime<Utc>,
    /// Now (the report's Date).
    pub now: DateTime<Utc>,
    /// The original message as received.
    pub original: &'a [u8],
    /// The original's subject (for the summary), if any.
    pub subject: Option<&'a str>,
    /// Every recipient of the message with its outcome.
    pub recipients: &'a [RecipientOutcome],
    /// `offramp.notify_success_by_default`.
    pub success_by_default: bool,
    /// The first page sent (`offramp.report_thumbnail`); shown only when some listed
    /// recipient had a page confirmed.
    pub thumbnail: Option<Thumbnail<'a>>,
}

/// A report ready to go out as a `MailOut` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Envelope sender: always empty, the null sender `<>` (RFC 3461 §6.2, RFC 8098 §2.1).
    pub mail_from: String,
    /// Envelope recipient.
    pub rcpt_to: String,
    /// The RFC 5322 message.
    #[serde(with = "bytes_as_string")]
    pub message: Vec<u8>,
}

mod bytes_as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// Outside text on one line of a report: escaped by the one helper ([`Untrusted`]: no
/// controls, no bidi or invisible characters), at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    Untrusted::new(s).max(max).to_string()
}

/// The same for an RFC 3464 field, which is US-ASCII (§2.1.1: `message/delivery-status`
/// without RFC 6533's UTF-8 extension).
fn field(s: &str, max: usize) -> String {
    Untrusted::new(s).ascii().max(max).to_string()
}

/// RFC 2047 encoded word for a header value when it is not plain ASCII.
fn header_text(s: &str) -> String {
    let s = one_line(s, 200);
    if s.is_ascii() {
        return s;
    }
    use base64::Engine as _;
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    )
}

/// Quoted-printable (RFC 2045 §6.7) for the UTF-8 summary, lines under 76 characters.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut col = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let enc = match b {
                b'=' => true,
                b' ' | b'\t' => last,
                33..=126 => false,
                _ => true,
            };
            let piece = if enc {
                format!("={b:02X}")
            } else {
                (b as char).to_string()
            };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The header block of a message (up to the first empty line), bounded.
fn header_block(msg: &[u8]) -> &[u8] {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| msg.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(msg.len());
    &msg[..end.min(MAX_RETURNED_HEADERS)]
}

/// Bare CR and LF line ends as CRLF (a report is sent over SMTP; a returned original must
/// not carry a line end the relay reads differently).
fn crlf(data: &[u8]) -> Vec<u8> {
    crate::mail::crlf_line_ends(data).into_owned()
}

fn boundary(report_id: &str) -> String {
    // The boundary must not occur in the parts (RFC 2046 §5.1.1); the "=_" cannot appear in
    // quoted-printable or base64 text, and the returned original is checked below.
    format!(
        "=_faxgate-report-{}",
        one_line(report_id, 40).replace(' ', "")
    )
}

fn rfc5322_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// The readable first part.
fn summary(input: &ReportInput<'_>, listed: &[&RecipientOutcome]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "This is the fax gateway at {}.\n\n",
        one_line(input.hostname, 100)
    ));
    let subj = input
        .subject
        .map(|x| format!(" \"{}\"", one_line(x, 200)))
        .unwrap_or_default();
    s.push_str(&format!(
        "Your message{subj}, received {}, was to be faxed to {} recipient{}.\n",
        rfc5322_date(input.arrival),
        input.recipients.len(),
        if input.recipients.len() == 1 { "" } else { "s" }
    ));
    s.push_str("Here is what happened:\n");
    for r in listed {
        let state = match r.action {
            Action::Delivered => "SENT",
            Action::Failed => "FAILED",
            Action::Delayed => "NOT YET SENT (still trying)",
        };
        s.push_str(&format!("\n{}: {}\n", one_line(&r.rcpt, 300), state));
        if !r.fax.number.is_empty() {
            s.push_str(&format!(
                "  Number:       {}\n",
                one_line(&r.fax.number, 40)
            ));
        }
        s.push_str(&format!("  Result:       {}\n", r.cause.words()));
        if r.fax.pages_total > 0 {
            s.push_str(&format!(
                "  Pages sent:   {} of {}\n",
                r.fax.pages_sent, r.fax.pages_total
            ));
        }
        if let Some(d) = r.fax.duration {
            s.push_str(&format!("  Duration:     {}\n", human_duration(d)));
        }
        if let Some(id) = &r.fax.remote_id {
            s.push_str(&format!("  Remote ID:    {}\n", one_line(id, 40)));
        }
        if let Some(bps) = r.fax.speed_bps {
            s.push_str(&format!("  Speed:        {bps} bit/s\n"));
        }
        s.push_str(&format!("  Attempts:     {}\n", r.fax.attempts));
        if !r.fax.page_results.is_empty() {
            s.push_str("  Pages on the last call:\n");
            for (i, p) in r.fax.page_results.iter().enumerate().take(MAX_PAGE_LINES) {
                s.push_str(&format!("    page {:<4} {}\n", i + 1, page_words(*p)));
            }
            let more = r.fax.page_results.len().saturating_sub(MAX_PAGE_LINES);
            if more > 0 {
                s.push_str(&format!("    ... and {more} more pages\n"));
            }
        }
    }
    s
}

/// One page's result in the sender's words.
pub fn page_words(p: PageResult) -> &'static str {
    match p {
        PageResult::Confirmed => "sent, confirmed by the receiver",
        PageResult::Retransmitted => "sent again after the receiver refused it, then confirmed",
        PageResult::Refused => "FAILED: refused by the receiver",
        PageResult::Interrupted => "FAILED: the call ended while it was being sent",
        PageResult::NotSent => "not sent",
    }
}

/// One page's result as a keyword for the machine-readable report.
pub fn page_keyword(p: PageResult) -> &'static str {
    match p {
        PageResult::Confirmed => "confirmed",
        PageResult::Retransmitted => "retransmitted",
        PageResult::Refused => "refused",
        PageResult::Interrupted => "interrupted",
        PageResult::NotSent => "not-sent",
    }
}

/// Words joined by spaces, folded (RFC 5322 §2.2.3) so no line passes 78 characters.
fn fold(words: &[String]) -> String {
    let mut out = String::new();
    let mut col = 20;
    for w in words {
        if col + w.len() + 1 > 76 && !out.is_empty() {
            out.push_str("\r\n\t");
            col = 1;
        } else if !out.is_empty() {
            out.push(' ');
            col += 1;
        }
        out.push_str(w);
        col += w.len();
    }
    out
}

/// Base64 (RFC 2045 §6.8) in lines of 76 characters.
fn base64_lines(data: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(b.len() + b.len() / 38 + 2);
    for chunk in b.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// The readable first part with the picture: RFC 6522 §3 (RFC 3462 §2) lets the first part
/// be of any standards-track type and names `multipart/alternative` for several media; the
/// plain text comes first (the fallback), then a `multipart/related` (RFC 2387) HTML version
/// showing the picture as an inline `cid:` image (RFC 2392).
fn readable_with_picture(text: &str, pic: &Thumbnail<'_>, id: &str, host: &str) -> String {
    let alt = format!("=_faxgate-alt-{id}");
    let rel = format!("=_faxgate-rel-{id}");
    let cid = format!("page1.{id}@{host}");
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Fax report</title></head>\n\
         <body>\n<p>First page as sent:</p>\n\
         <p><img src=\"cid:{cid}\" width=\"{w}\" height=\"{h}\" alt=\"First page of the fax as sent\" \
         style=\"border:1px solid #888\"></p>\n<pre>{text}</pre>\n</body></html>\n",
        w = pic.width,
        h = pic.height,
        text = crate::mail::html_text(text),
    );
    let mut m = String::new();
    m.push_str(&format!(
        "Content-Type: multipart/alternative; boundary=\"{alt}\"\r\n"
    ));
    m.push_str("Content-Description: Notification\r\n\r\n");
    m.push_str(&format!("--{alt}\r\n"));
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    m.push_str(&quoted_printable(text));
    m.push_str(&format!("\r\n--{alt}\r\n"));
    m.push_str(&format!(
        "Content-Type: multipart/related; type=\"text/html\"; boundary=\"{rel}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{rel}\r\n"));
    m.push_str("Content-Type: text/html; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    m.push_str(&quoted_printable(&html));
    m.push_str(&format!("\r\n--{rel}\r\n"));
    m.push_str("Content-Type: image/png; name=\"page1.png\"\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n");
    m.push_str(&format!("Content-ID: <{cid}>\r\n"));
    m.push_str("Content-Disposition: inline; filename=\"page1.png\"\r\n\r\n");
    m.push_str(&base64_lines(pic.png));
    m.push_str(&format!("\r\n--{rel}--\r\n"));
    m.push_str(&format!("\r\n--{alt}--\r\n"));
    m
}

/// Build the DSN for the recipients whose NOTIFY asks for it, or `None` when nobody does (or
/// the original came from the null sender).
pub fn build(input: &ReportInput<'_>) -> Option<Report> {
    if input.mail_from.trim().is_empty() {
        return None;
    }
    let listed: Vec<&RecipientOutcome> = input
        .recipients
        .iter()
        .filter(|r| r.notify.wants(r.action, input.success_by_default))
        .collect();
    if listed.is_empty() {
        return None;
    }
    let host = one_line(input.hostname, 200);
    let b = boundary(input.report_id);
    let any_failed = listed.iter().any(|r| r.action == Action::Failed);
    let all_delivered = listed.iter().all(|r| r.action == Action::Delivered);
    let subject_word = if all_delivered {
        "Fax delivered"
    } else if any_failed && listed.iter().any(|r| r.action == Action::Delivered) {
        "Fax partly failed"
    } else if any_failed {
        "Fax failed"
    } else {
        "Fax delayed"
    };
    let orig_subject = input.subject.map(|s| format!(": {s}")).unwrap_or_default();

    let mut m = String::new();
    m.push_str(&format!("From: Fax Gateway <MAILER-DAEMON@{host}>\r\n"));
    m.push_str(&format!("To: <{}>\r\n", one_line(input.mail_from, 300)));
    m.push_str(&format!(
        "Subject: {}\r\n",
        header_text(&format!("{subject_word}{orig_subject}"))
    ));
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(input.now)));
    m.push_str(&format!(
        "Message-ID: <{}.dsn@{host}>\r\n",
        one_line(input.report_id, 80).replace(' ', "")
    ));
    // RFC 3834 §5: mark it automatic so that auto-responders stay quiet.
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{b}\"\r\n\r\n"
    ));
    m.push_str("This is a delivery status notification (RFC 3464) in MIME format.\r\n\r\n");

    // Part 1: readable summary, with the first page's picture when there is one and a page
    // went (a report of nothing sent shows no page).
    m.push_str(&format!("--{b}\r\n"));
    let text = summary(input, &listed);
    match input
        .thumbnail
        .filter(|_| listed.iter().any(|r| r.fax.pages_sent > 0))
    {
        Some(pic) => {
            let id: String = one_line(input.report_id, 40)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            let cid_host: String = host
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
                .collect();
            m.push_str(&readable_with_picture(&text, &pic, &id, &cid_host));
        }
        None => {
            m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
            m.push_str("Content-Transfer-Encoding: quoted-printable\r\n");
            m.push_str("Content-Description: Notification\r\n\r\n");
            m.push_str(&quoted_printable(&text));
        }
    }

    // Part 2: message/delivery-status (RFC 3464 §2.1): per-message fields, then one block
    // per recipient, blocks separated by an empty line.
    m.push_str(&format!("\r\n--{b}\r\n"));
    m.push_str("Content-Type: message/delivery-status\r\n");
    m.push_str("Content-Description: Delivery report\r\n\r\n");
    m.push_str(&format!("Reporting-MTA: dns; {host}\r\n"));
    if let Some(envid) = input.envid {
        m.push_str(&format!("Original-Envelope-Id: {}\r\n", field(envid, 200)));
    }
    m.push_str(&format!(
        "Arrival-Date: {}\r\n",
        rfc5322_date(input.arrival)
    ));
    for r in &listed {
        m.push_str("\r\n");
        if let Some(orcpt) = &r.orcpt {
            // ORCPT = addr-type ";" address (RFC 3461 §4.2).
            let (ty, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            m.push_str(&format!(
                "Original-Recipient: {}; {}\r\n",
                field(ty.trim(), 20),
                field(addr.trim(), 300)
            ));
        }
        m.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            field(&r.rcpt, 300)
        ));
        m.push_str(&format!("Action: {}\r\n", r.action.as_str()));
        m.push_str(&format!("Status: {}\r\n", r.cause.status(r.action)));
        m.push_str(&format!(
            "Diagnostic-Code: X-Fax; {}; {}\r\n",
            r.cause.keyword(),
            // The words escaped their outside parts already: made ASCII, not escaped twice.
            Untrusted::new(&r.cause.words())
                .ascii()
                .escaped_before()
                .max(400)
        ));
        if let Some(t) = r
            .fax
            .last_attempt
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        {
            m.push_str(&format!("Last-Attempt-Date: {}\r\n", rfc5322_date(t)));
        }
        if r.fax.pages_total > 0 {
            // RFC 3464 §2.4 permits extension fields; ours start with X-Fax-.
            m.push_str(&format!(
                "X-Fax-Pages: {}/{}\r\n",
                r.fax.pages_sent, r.fax.pages_total
            ));
        }
        if let Some(id) = &r.fax.remote_id {
            m.push_str(&format!("X-Fax-Remote-Id: {}\r\n", field(id, 40)));
        }
        if !r.fax.page_results.is_empty() {
            // Each page's result on the last call, `page=result` in page order (at most
            // MAX_PAGE_LINES: a header field stays a readable length).
            let list: Vec<String> = r
                .fax
                .page_results
                .iter()
                .take(MAX_PAGE_LINES)
                .enumerate()
                .map(|(i, p)| format!("{}={}", i + 1, page_keyword(*p)))
                .collect();
            m.push_str(&format!("X-Fax-Page-Results: {}\r\n", fold(&list)));
        }
        m.push_str(&format!("X-Fax-Attempts: {}\r\n", r.fax.attempts));
    }

    // Part 3: the original (RET).
    let full = input.ret == Ret::Full
        && any_failed
        && input.original.len() <= MAX_RETURNED_MESSAGE
        && !contains(input.original, b.as_bytes());
    m.push_str(&format!("\r\n--{b}\r\n"));
    let mut out = m.into_bytes();
    if full {
        out.extend_from_slice(b"Content-Type: message/rfc822\r\n");
        out.extend_from_slice(b"Content-Description: Your message\r\n\r\n");
        out.extend_from_slice(&crlf(input.original));
    } else {
        out.extend_from_slice(b"Content-Type: text/rfc822-headers\r\n");
        out.extend_from_slice(b"Content-Description: Headers of your message\r\n\r\n");
        let mut h = crlf(header_block(input.original));
        // A header block cut by the limit must not end in the middle of a line.
        if !h.ends_with(b"\r\n") {
            let keep = h
                .windows(2)
                .rposition(|w| w == b"\r\n")
                .map_or(0, |p| p + 2);
            h.truncate(keep);
        }
        // The boundary must not appear inside; a header holding it is dropped whole.
        if contains(&h, b.as_bytes()) {
            h.clear();
        }
        out.extend_from_slice(&h);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    Some(Report {
        mail_from: String::new(),
        rcpt_to: input.mail_from.to_string(),
        message: out,
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Everything an MDN is made from (RFC 8098).
#[derive(Debug, Clone)]
pub struct MdnInput<'a> {
    /// Our host name.
    pub hostname: &'a str,
    /// Unique token for the Message-ID.
    pub report_id: &'a str,
    /// Envelope MAIL FROM of the original.
    pub mail_from: &'a str,
    /// The `Disposition-Notification-To` address of the original.
    pub notification_to: &'a str,
    /// The original's Message-ID.
    pub original_message_id: Option<&'a str>,
    /// The recipient the fax was delivered to.
    pub final_recipient: &'a str,
    /// Now.
    pub now: DateTime<Utc>,
    /// `offramp.mdn`.
    pub enabled: bool,
}

/// Strip a `Name <addr>` form down to `addr`.
fn bare_address(s: &str) -> &str {
    let s = s.trim();
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s,
    }
}

/// An RFC 8098 MDN for a delivered fax, or `None` when MDNs are off, none was asked for, or
/// the request is not to be honoured automatically: RFC 8098 §2.1 — when the
/// `Disposition-Notification-To` address differs from the envelope sender, an automatic MDN
/// could be used to make the gateway mail a third party, so none is sent.
pub fn build_mdn(input: &MdnInput<'_>) -> Option<Report> {
    let to = bare_address(input.notification_to);
    if !input.enabled
        || to.is_empty()
        || input.mail_from.trim().is_empty()
        || !to.eq_ignore_ascii_case(input.mail_from.trim())
    {
        return None;
    }
    let host = one_line(input.hostname, 200);
    let b = boundary(input.report_id);
    let mut m = String::new();
    m.push_str(&format!("From: Fax Gateway <MAILER-DAEMON@{host}>\r\n"));
    m.push_str(&format!("To: <{}>\r\n", one_line(to, 300)));
    m.push_str("Subject: Fax processed\r\n");
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(input.now)));
    m.push_str(&format!(
        "Message-ID: <{}.mdn@{host}>\r\n",
        one_line(input.report_id, 80).replace(' ', "")
    ));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=disposition-notification;\r\n\tboundary=\"{b}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{b}\r\n"));
    m.push_str("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str(&format!(
        "Your message was faxed to {}.\r\n",
        one_line(input.final_recipient, 300)
    ));
    m.push_str(&format!("\r\n--{b}\r\n"));
    m.push_str("Content-Type: message/disposition-notification\r\n\r\n");
    m.push_str(&format!("Reporting-UA: {host}; faxgate\r\n"));
    m.push_str(&format!(
        "Final-Recipient: rfc822; {}\r\n",
        one_line(input.final_recipient, 300)
    ));
    if let Some(id) = input.original_message_id {
        m.push_str(&format!(
            "Original-Message-ID: <{}>\r\n",
            one_line(id.trim_matches(['<', '>']), 300)
        ));
    }
    // RFC 8098 §3.2.6: the gateway acted without a user: automatic-action, sent
    // automatically; "processed" because the message was consumed by a machine.
    m.push_str("Disposition: automatic-action/MDN-sent-automatically; processed\r\n");
    m.push_str(&format!("\r\n--{b}--\r\n"));
    Some(Report {
        mail_from: String::new(),
        rcpt_to: to.to_string(),
        message: m.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + s, 0).single().unwrap()
    }

    fn outcome(rcpt: &str, action: Action, cause: Cause, notify: Notify) -> RecipientOutcome {
        RecipientOutcome {
            rcpt: rcpt.into(),
            orcpt: None,
            notify,
            action,
            cause,
            fax: FaxSummary {
                number: "+12125550123".into(),
                pages_sent: 0,
                pages_total: 2,
                attempts: 1,
                ..FaxSummary::default()
            },
        }
    }

    fn input<'a>(recipients: &'a [RecipientOutcome], original: &'a [u8]) -> ReportInput<'a> {
        ReportInput {
            hostname: "fax.example.org",
            report_id: "0000abcd00112233aabb",
            mail_from: "alice@example.org",
            envid: Some("QQ+1"),
            ret: Ret::Hdrs,
            arrival: t(0),
            now: t(60),
            original,
            subject: Some("Invoice"),
            recipients,
            success_by_default: false,
            thumbnail: None,
        }
    }

    #[test]
    fn many_page_results_fold_and_a_picture_needs_a_page_sent() {
        let mut r = outcome(
            "FAX=+1@h",
            Action::Failed,
            Cause::LineFailed { page: 60, tries: 1 },
            Notify::UNSPECIFIED,
        );
        r.fax.page_results = vec![PageResult::Confirmed; 59];
        r.fax.page_results.push(PageResult::Interrupted);
        let png = [0x89, b'P', b'N', b'G'];
        let mut i = input(std::slice::from_ref(&r), b"Subject: x\r\n\r\nbody");
        i.thumbnail = Some(Thumbnail {
            png: &png,
            width: 1,
            height: 1,
        });
        // No page confirmed: no picture, plain text first part.
        let m = String::from_utf8(build(&i).unwrap().message).unwrap();
        assert!(!m.contains("image/png") && !m.contains("multipart/alternative"));
        assert!(
            m.lines()
                .filter(|l| l.starts_with("X-Fax-Page-Results") || l.starts_with('\t'))
                .all(|l| l.len() <= 78),
            "{m}"
        );
        let field = m
            .split("X-Fax-Page-Results: ")
            .nth(1)
            .unwrap()
            .split("\r\nX-Fax-Attempts")
            .next()
            .unwrap()
            .replace("\r\n\t", " ");
        assert!(field.starts_with("1=confirmed 2=confirmed "), "{field}");
        assert!(field.ends_with(" 59=confirmed 60=interrupted"), "{field}");
        assert!(m.contains("    page 60   FAILED: the call ended while it was being sent"));
        // With a page confirmed the picture is there, named by the HTML.
        r.fax.pages_sent = 59;
        let rs = [r];
        let mut i = input(&rs, b"Subject: x\r\n\r\nbody");
        i.thumbnail = Some(Thumbnail {
            png: &png,
            width: 1,
            height: 1,
        });
        let m = String::from_utf8(build(&i).unwrap().message).unwrap();
        assert!(m.contains("Content-ID: <page1.0000abcd00112233aabb@fax.example.org>"));
        assert!(m.contains("cid:page1.0000abcd00112233aabb@fax.example.org"));
    }

    #[test]
    fn notify_table() {
        let n = |s: &str| Notify::parse(s).unwrap();
        use Action::*;
        let cases: &[(Notify, Action, bool, bool)] = &[
            (Notify::UNSPECIFIED, Failed, false, true),
            (Notify::UNSPECIFIED, Delivered, false, false),
            (Notify::UNSPECIFIED, Delivered, true, true),
            (Notify::UNSPECIFIED, Delayed, true, false),
            (Notify::NEVER, Failed, true, false),
            (n("never"), Delivered, true, false),
            (n("SUCCESS"), Delivered, false, true),
            (n("SUCCESS"), Failed, false, false),
            (n("success,failure"), Failed, false, true),
            (n("FAILURE"), Delivered, true, false),
            (n("DELAY,FAILURE"), Delayed, false, true),
        ];
        for (no, a, def, want) in cases {
            assert_eq!(no.wants(*a, *def), *want, "{no:?} {a:?} {def}");
        }
        assert_eq!(Notify::parse("SOMETIMES"), None);
    }

    #[test]
    fn no_report_to_null_sender_or_when_nobody_asked() {
        let r = [outcome(
            "FAX=+1@h",
            Action::Failed,
            Cause::NotAFax,
            Notify::NEVER,
        )];
        assert!(build(&input(&r, b"Subject: x\r\n\r\nbody")).is_none());
        let r = [outcome(
            "FAX=+1@h",
            Action::Failed,
            Cause::NotAFax,
            Notify::UNSPECIFIED,
        )];
        let mut i = input(&r, b"Subject: x\r\n\r\nbody");
        assert!(build(&i).is_some());
        i.mail_from = "";
        assert!(build(&i).is_none());
    }

    #[test]
    fn report_fields_and_null_sender() {
        let mut r = vec![
            outcome(
                "FAX=+12125550123@fax.example.org",
                Action::Failed,
                Cause::Busy { tries: 3 },
                Notify::UNSPECIFIED,
            ),
            outcome(
                "FAX=+12125550199@fax.example.org",
                Action::Delivered,
                Cause::Delivered,
                Notify::parse("SUCCESS,FAILURE").unwrap(),
            ),
        ];
        r[1].orcpt = Some("rfc822;FAX=+12125550199@fax.example.org".into());
        r[1].fax.pages_sent = 2;
        r[1].fax.remote_id = Some("+1 212 555 0199".into());
        r[1].fax.speed_bps = Some(14400);
        r[1].fax.duration = Some(Duration::from_secs(75));
        let rep = build(&input(
            &r,
            b"Subject: Invoice\r\nFrom: alice@example.org\r\n\r\nhi",
        ))
        .unwrap();
        assert_eq!(rep.mail_from, "");
        assert_eq!(rep.rcpt_to, "alice@example.org");
        let text = String::from_utf8(rep.message).unwrap();
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Original-Envelope-Id: QQ+1\r\n"));
        assert!(text.contains("Original-Recipient: rfc822; FAX=+12125550199@fax.example.org\r\n"));
        assert!(text.contains("Status: 5.4.1\r\n"));
        assert!(text.contains("Status: 2.0.0\r\n"));
        assert!(text.contains("Diagnostic-Code: X-Fax; busy; "));
        assert!(text.contains("Pages sent:   2 of 2"));
        assert!(text.contains("Duration:     1 min 15 s"));
        assert!(text.contains("Content-Type: text/rfc822-headers"));
        assert!(!text.contains("\r\n\r\nhi"));
        assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
    }

    #[test]
    fn ret_full_returns_the_message_only_with_a_failure() {
        let orig = b"Subject: Invoice\nFrom: a@b\n\nbody line\n";
        let r = [outcome(
            "FAX=+1@h",
            Action::Failed,
            Cause::CodingRefused,
            Notify::UNSPECIFIED,
        )];
        let mut i = input(&r, orig);
        i.ret = Ret::Full;
        let text = String::from_utf8(build(&i).unwrap().message).unwrap();
        assert!(text.contains("Content-Type: message/rfc822"));
        assert!(text.contains("\r\nbody line\r\n"));
        let ok = [outcome(
            "FAX=+1@h",
            Action::Delivered,
            Cause::Delivered,
            Notify::parse("SUCCESS").unwrap(),
        )];
        let mut i = input(&ok, orig);
        i.ret = Ret::Full;
        let text = String::from_utf8(build(&i).unwrap().message).unwrap();
        assert!(text.contains("text/rfc822-headers"));
        assert!(!text.contains("body line"));
    }

    #[test]
    fn header_injection_is_neutralised() {
        let r = [outcome(
            "FAX=+1@h\r\nBcc: victim@x",
            Action::Failed,
            Cause::NotAFax,
            Notify::UNSPECIFIED,
        )];
        let mut i = input(&r, b"");
        i.subject = Some("x\r\nBcc: victim@x");
        i.envid = Some("e\r\nBcc: v@x");
        let text = String::from_utf8(build(&i).unwrap().message).unwrap();
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    #[test]
    fn mdn_only_when_enabled_requested_and_to_the_sender() {
        let base = MdnInput {
            hostname: "fax.example.org",
            report_id: "r1",
            mail_from: "alice@example.org",
            notification_to: "Alice <alice@example.org>",
            original_message_id: Some("<m1@example.org>"),
            final_recipient: "FAX=+1@fax.example.org",
            now: t(0),
            enabled: true,
        };
        let m = build_mdn(&base).unwrap();
        assert_eq!(m.mail_from, "");
        let s = String::from_utf8(m.message).unwrap();
        assert!(s.contains("report-type=disposition-notification"));
        assert!(s.contains("Original-Message-ID: <m1@example.org>"));
        assert!(
            build_mdn(&MdnInput {
                enabled: false,
                ..base.clone()
            })
            .is_none()
        );
        assert!(
            build_mdn(&MdnInput {
                notification_to: "other@example.net",
                ..base.clone()
            })
            .is_none()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_fields_build_without_panic(rcpt in "\\PC{0,80}", subj in "\\PC{0,80}", envid in "\\PC{0,40}", orig in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let r = [outcome(&rcpt, Action::Failed, Cause::NotAFax, Notify::UNSPECIFIED)];
            let mut i = input(&r, &orig);
            i.subject = Some(&subj);
            i.envid = Some(&envid);
            i.ret = Ret::Full;
            let rep = build(&i).unwrap();
            // No bare CR or LF in the output outside the returned original.
            let s = String::from_utf8_lossy(&rep.message).to_string();
            let head_end = s.find("message/delivery-status").unwrap();
            proptest::prop_assert!(!s[..head_end].replace("\r\n", "").contains(['\r', '\n']));
        }
    }
}
