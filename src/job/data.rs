//! The typed data of each kind of job, as the spool stores it in the job's record (`data`):
//! [`JobData`], one struct per [`JobKind`], and every type those structs hold. PURE data and
//! (de)serialisation: the modules that make and run jobs give these types their behaviour
//! (parsing, dial plans, rendering); the definitions live here so that the spool, the
//! dispatcher and every worker share one vocabulary without importing one another.
//!
//! Records written before the data was typed (record version 1) held each kind's fields as an
//! untyped JSON object of the same shape; [`JobData::from_v1`] reads them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{JobId, JobKind};

/// What a job carries, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobData {
    /// An email accepted by the SMTP listener, to be split into faxes.
    Message(MessageData),
    /// One recipient of a message: one fax to send.
    FaxOut(FaxOutData),
    /// A received fax (modem, inbox, `onramp submit`), to be routed and mailed.
    FaxIn(FaxInData),
    /// One piece of mail to deliver.
    MailOut(MailOutData),
}

/// Why version-1 data could not be read as its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} data: {detail}")]
pub struct BadData {
    /// The kind it was read as.
    pub kind: &'static str,
    /// serde's complaint.
    pub detail: String,
}

impl JobData {
    /// The kind of job this data belongs to.
    pub fn kind(&self) -> JobKind {
        match self {
            JobData::Message(_) => JobKind::Message,
            JobData::FaxOut(_) => JobKind::FaxOut,
            JobData::FaxIn(_) => JobKind::FaxIn,
            JobData::MailOut(_) => JobKind::MailOut,
        }
    }

    /// The message data, if this is a `Message` job's.
    pub fn as_message(&self) -> Option<&MessageData> {
        match self {
            JobData::Message(d) => Some(d),
            _ => None,
        }
    }

    /// The fax data, if this is a `FaxOut` job's.
    pub fn as_fax_out(&self) -> Option<&FaxOutData> {
        match self {
            JobData::FaxOut(d) => Some(d),
            _ => None,
        }
    }

    /// The reception data, if this is a `FaxIn` job's.
    pub fn as_fax_in(&self) -> Option<&FaxInData> {
        match self {
            JobData::FaxIn(d) => Some(d),
            _ => None,
        }
    }

    /// The mail data, if this is a `MailOut` job's.
    pub fn as_mail_out(&self) -> Option<&MailOutData> {
        match self {
            JobData::MailOut(d) => Some(d),
            _ => None,
        }
    }

    /// Reads the untyped data of a version-1 record of kind `kind`. Version 1 stored the same
    /// fields as today's structs, except that a `MailOut` job was written in two shapes: the
    /// offramp's reports (`report`, `message`, no `purpose`) and the onramp's mail
    /// (`purpose`, `subject`); a `MailOut` with neither was a report.
    pub fn from_v1(kind: JobKind, v: serde_json::Value) -> Result<JobData, BadData> {
        let bad = |e: serde_json::Error| BadData {
            kind: kind.name(),
            detail: e.to_string(),
        };
        Ok(match kind {
            JobKind::Message => JobData::Message(serde_json::from_value(v).map_err(bad)?),
            JobKind::FaxOut => JobData::FaxOut(serde_json::from_value(v).map_err(bad)?),
            JobKind::FaxIn => JobData::FaxIn(serde_json::from_value(v).map_err(bad)?),
            JobKind::MailOut => {
                #[derive(Deserialize)]
                struct V1 {
                    envelope: MailEnvelope,
                    #[serde(default)]
                    purpose: Option<V1Purpose>,
                    #[serde(default)]
                    report: Option<ReportKind>,
                    #[serde(default)]
                    message: Option<JobId>,
                    #[serde(default)]
                    subject: String,
                    #[serde(default)]
                    file: Option<String>,
                }
                #[derive(Deserialize)]
                #[serde(rename_all = "kebab-case", tag = "kind")]
                enum V1Purpose {
                    Fax {
                        #[serde(default)]
                        fax_job: Option<JobId>,
                    },
                    Report,
                    AdminNotice,
                }
                let o: V1 = serde_json::from_value(v).map_err(bad)?;
                let report = |kind: Option<ReportKind>| Purpose::Report {
                    report: kind.unwrap_or(ReportKind::Dsn),
                    message: o.message.clone(),
                };
                let purpose = match o.purpose {
                    Some(V1Purpose::Fax { fax_job }) => Purpose::Fax { fax_job },
                    Some(V1Purpose::AdminNotice) => Purpose::AdminNotice,
                    Some(V1Purpose::Report) | None => report(o.report),
                };
                // Version 1's reports were `mail.eml`; other mail defaulted to `message.eml`.
                let file = o.file.unwrap_or_else(|| "message.eml".into());
                JobData::MailOut(MailOutData {
                    envelope: o.envelope,
                    purpose,
                    subject: o.subject,
                    file,
                })
            }
        })
    }
}

// ---- Message ----

/// `data` of a committed `Message` job: what the offramp jobs need besides `message.eml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageData {
    /// The SMTP envelope: sender, recipients with their dial strings, DSN parameters, client,
    /// AUTH identity, TLS.
    pub envelope: Envelope,
    /// Payload file holding the message (with our `Received:` first).
    pub file: String,
    /// Size of that file, octets.
    pub size: u64,
    /// When the message was accepted (RFC 3339, UTC).
    pub received: String,
}

/// The SMTP envelope of one message the listener accepted (RFC 5321 §2.3.1): stored with it
/// for the offramp jobs and the DSN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Reverse-path (never empty: the null sender is refused).
    pub mail_from: String,
    /// RFC 1870 `SIZE=` declared by the client.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// RFC 3461 `RET=`.
    pub ret: Option<Ret>,
    /// RFC 3461 `ENVID=` (xtext decoded).
    pub envid: Option<String>,
    /// RFC 4954 §5 `AUTH=` parameter of MAIL (xtext decoded), kept as given.
    pub mail_auth: Option<String>,
    /// Accepted fax recipients, in RCPT order.
    pub recipients: Vec<Recipient>,
    /// Accepted postmaster recipients (RFC 5321 §4.5.1: `<postmaster>` or
    /// `postmaster@<our domain>`), forward-paths as given, in RCPT order. They pass no dial
    /// plan; the offramp forwards the message to `gateway.admin` for them. Absent in envelopes
    /// written before this field existed.
    #[serde(default)]
    pub postmaster: Vec<String>,
    /// The client.
    pub client: ClientInfo,
    /// The authenticated user, if any.
    pub auth_user: Option<String>,
    /// TLS parameters, if the session was encrypted.
    pub tls: Option<TlsInfo>,
}

/// One accepted recipient with everything the offramp job needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The forward-path as given (without angle brackets).
    pub address: String,
    /// The number as written.
    pub number: Number,
    /// The local-part form used.
    pub form: AddressForm,
    /// RFC 3192 `/T33S=` subaddress.
    pub subaddress: Option<String>,
    /// E.164 and dial string from the dial plan.
    pub destination: Destination,
    /// RFC 3461 `NOTIFY=`; `None` when not given (the default: failure, maybe delay).
    pub notify: Option<Vec<Notify>>,
    /// RFC 3461 `ORCPT=`, `addr-type;address` with xtext decoded.
    pub orcpt: Option<String>,
}

/// A telephone number as the recipient wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "digits")]
pub enum Number {
    /// RFC 3192 global phone: the digits after `+` (country code first), separators removed.
    Global(String),
    /// A site form: digits in the site's own dialling format (may start with the international
    /// or national prefix), separators removed. Normalised by the dial plan.
    Site(String),
}

/// Which local-part form the recipient used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressForm {
    /// RFC 3192 `FAX=+…`.
    Rfc3192,
    /// Site form `fax=<digits>` (no `+`).
    SiteFax,
    /// Site form: plain digits, optionally with a leading `+`.
    PlainDigits,
    /// The number came from the Subject of mail to `[offramp] subject_address`
    /// ([`crate::mail::subject`]).
    Subject,
}

/// Where a fax goes: its E.164 form and what to dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// E.164 with a leading `+`, e.g. `+12125550142`.
    pub e164: String,
    /// Digits (and PBX characters) for `ATD`, e.g. `9,12125550142`.
    pub dial: String,
    /// True when outside our country code or in one of `international_areas`.
    pub international: bool,
}

/// RFC 6152 / RFC 1652 `BODY=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// `BODY=7BIT`.
    #[serde(rename = "7bit")]
    SevenBit,
    /// `BODY=8BITMIME`.
    #[serde(rename = "8bitmime")]
    EightBitMime,
}

/// RFC 3461 §4.3 `RET=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    /// Return the full message in a DSN.
    Full,
    /// Return only the headers.
    Hdrs,
}

/// RFC 3461 §4.1 `NOTIFY=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    /// No DSN at all (must stand alone).
    Never,
    /// DSN on successful delivery.
    Success,
    /// DSN on failure.
    Failure,
    /// DSN on delay.
    Delay,
}

/// The connecting client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Peer IP address.
    pub ip: IpAddr,
    /// Peer port.
    pub port: u16,
    /// HELO/EHLO argument.
    pub helo: String,
    /// True after EHLO (not HELO).
    pub esmtp: bool,
}

/// TLS parameters of the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// e.g. `TLSv1.3`.
    pub protocol: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

// ---- FaxOut ----

/// `data` of a `FaxOut` job: one recipient of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxOutData {
    /// The `Message` job it came from.
    pub message: JobId,
    /// 1-based recipient number (its child number).
    pub recipient: u16,
    /// The RCPT TO address.
    pub rcpt: String,
    /// E.164 destination.
    pub e164: String,
    /// What to dial (`ATD…`), from the dial plan at RCPT time.
    pub dial: String,
    /// RFC 3192 / T.33 subaddress.
    #[serde(default)]
    pub subaddress: Option<String>,
    /// Sender options (resolution, cover page, subject).
    pub options: SenderOptions,
    /// Pages of the document as rendered when the message was split (cover included).
    pub pages_total: u32,
    /// Payload file of this job holding those pages (TIFF-F, rendered once at split, header
    /// line not yet stamped), reused by every attempt. `None` in jobs split before pages were
    /// stored: the worker renders them from the message.
    #[serde(default)]
    pub pages: Option<String>,
    /// The message's `From:`, for the cover page drawn at send (with `pages`).
    #[serde(default)]
    pub from: String,
    /// Filled in by the fax worker.
    #[serde(default)]
    pub result: Option<FaxResult>,
}

/// Options asked for by the sender, over the `[offramp]` defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderOptions {
    /// Vertical resolution to render and send at.
    pub resolution: Resolution,
    /// Whether to send a cover page.
    pub cover_page: bool,
    /// The subject without option keywords (for the cover page and the report).
    pub subject: String,
}

/// Fax vertical resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// 3.85 lines/mm (98 lpi).
    Standard,
    /// 7.7 lines/mm (196 lpi).
    Fine,
    /// 15.4 lines/mm (391 lpi).
    Superfine,
}

/// What the fax worker measured on the last call, stored in the `FaxOut` job by the worker
/// before it finishes the job (all optional: the scheduler may give up without a call).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxResult {
    /// The T.30 completion cause number (`fax::t30::Cause`), if a call reached T.30.
    #[serde(default)]
    pub t30_cause: Option<u16>,
    /// Pages confirmed by the receiver.
    #[serde(default)]
    pub pages_sent: u32,
    /// The receiver's CSI.
    #[serde(default)]
    pub remote_id: Option<String>,
    /// Signalling rate of the last page, bit/s.
    #[serde(default)]
    pub speed_bps: Option<u32>,
    /// Call duration, milliseconds.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Each page of the document on the last call, in order (empty when no call reached
    /// T.30, and in records written before it was kept).
    #[serde(default)]
    pub page_results: Vec<PageResult>,
    /// Whether the last call used T.30 Annex A error correction (DCS bit 27); `None` when no
    /// DCS was sent (and in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecm: Option<bool>,
    /// The modulation of the last call's DCS, e.g. `V.29 9600`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulation: Option<String>,
}

/// The T.30 options one outgoing fax attempt was sent with, as resolved from `[fax_options]`,
/// the destination's `[[fax_route]]`, the line and the attempt number, and why: kept in the
/// attempt so an operator sees why attempt 3 went without ECM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxAttemptOptions {
    /// The attempt's number as the per-retry thresholds counted it (1-based).
    pub attempt: u32,
    /// ECM offered.
    pub ecm: bool,
    /// Highest signalling rate offered, bit/s.
    pub max_bps: u32,
    /// V.17 offered.
    pub v17: bool,
    /// The `[[fax_route]]` that applied, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// In words, with the key that decided each option that is not the default.
    pub why: String,
}

/// What became of one page on a call, from the T.30 call report (post-message responses,
/// T.30 §5.3.6.1.6: MCF/RTP confirm a page, RTN refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageResult {
    /// Confirmed (MCF, or RTP) the first time it was sent.
    Confirmed,
    /// Confirmed after the receiver refused it (RTN) and it was sent again.
    Retransmitted,
    /// Refused (RTN) and never confirmed.
    Refused,
    /// Sending began but the call ended before the receiver's verdict.
    Interrupted,
    /// Not reached on the call.
    NotSent,
}

// ---- FaxIn ----

/// The record data of a `FaxIn` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxInData {
    /// The reception.
    pub reception: Reception,
    /// Recipients that replace the route's (inbox sidecar `to:`, `submit --to`).
    #[serde(default)]
    pub to: Vec<String>,
}

/// Everything known about one received fax besides its pages: routing keys and the figures the
/// templates show. Stored as the `FaxIn` job's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reception {
    /// Where it came from.
    pub source: Source,
    /// Modem (line) name.
    #[serde(default)]
    pub line: Option<String>,
    /// Dialled number (`NDID=`).
    #[serde(default)]
    pub did: Option<String>,
    /// Caller ID (`NMBR=`).
    #[serde(default)]
    pub caller: Option<String>,
    /// Remote station ID (TSI, T.30 §5.3.6.2.4).
    #[serde(default)]
    pub remote_id: Option<String>,
    /// T.33 subaddress (SUB).
    #[serde(default)]
    pub subaddress: Option<String>,
    /// Pages received.
    pub pages: u32,
    /// Call duration in seconds (0 for files).
    #[serde(default)]
    pub duration_secs: u64,
    /// Signalling rate in bit/s, when a modem call.
    #[serde(default)]
    pub speed: Option<u32>,
    /// Horizontal × vertical dpi of the pages (first page).
    #[serde(default)]
    pub resolution: Option<(u32, u32)>,
    /// Scan lines received with errors, over all pages.
    #[serde(default)]
    pub bad_lines: u32,
    /// Reception time, seconds since the Unix epoch.
    pub received: i64,
    /// How it ended.
    pub completion: Completion,
}

/// Where a fax came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Received on a fax modem (or the built-in loopback line).
    Modem,
    /// A file dropped into the inbox folder.
    Inbox,
    /// `faxgate onramp submit`.
    Submit,
}

/// How a reception ended (the cause text is the fax engine's, in words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Completion {
    /// Every page confirmed and the call released normally (T.30 phase E after EOP/MCF).
    Complete,
    /// Some pages arrived, then the call failed: the pages are delivered, marked partial.
    Partial {
        /// Why the call ended early.
        cause: String,
    },
    /// No usable page arrived.
    Failed {
        /// Why.
        cause: String,
    },
}

// ---- MailOut ----

/// `data` of a `MailOut` job: one piece of mail to deliver, whoever made it (a received fax,
/// a report, a forward to the operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailOutData {
    /// SMTP envelope.
    pub envelope: MailEnvelope,
    /// What the mail is.
    pub purpose: Purpose,
    /// The message's subject, for logs and `faxgate queue`.
    #[serde(default)]
    pub subject: String,
    /// Payload file holding the message.
    pub file: String,
}

/// The SMTP envelope of a piece of mail the gateway sends (RFC 5321 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEnvelope {
    /// `MAIL FROM`: a bare address, or empty for the null sender `<>` (reports, RFC 3464 §2).
    pub from: String,
    /// `RCPT TO`: bare addresses.
    pub to: Vec<String>,
    /// RFC 3461 `ENVID`, sent when `relay.request_dsn` is on and the relay offers DSN.
    #[serde(default)]
    pub envid: Option<String>,
}

/// Why a piece of mail exists: decides whether its failure is reported, and to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Purpose {
    /// A received fax; `fax_job` is the `FaxIn` job it came from, if any.
    Fax {
        /// The fax job's id.
        #[serde(default)]
        fax_job: Option<JobId>,
    },
    /// A report to an offramp sender about message `message` (RFC 3464 DSN, delay DSN,
    /// RFC 8098 MDN). A failed report is never itself reported (RFC 3461 §6.2).
    Report {
        /// Which report.
        report: ReportKind,
        /// The message it reports on, when one does.
        #[serde(default)]
        message: Option<JobId>,
    },
    /// A notice or forward to the operator (never itself reported).
    AdminNotice,
}

/// What kind of report a `MailOut` job carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// RFC 3464 DSN (final outcome of every recipient).
    Dsn,
    /// RFC 3464 DSN with `Action: delayed` for one recipient.
    Delay,
    /// RFC 8098 MDN.
    Mdn,
}

/// Minimal well-formed data of each kind, with `tag` in a text field (message file name, fax
/// recipient, reception line, mail subject) to tell jobs apart: for tests and benchmarks that
/// exercise the spool and the dispatcher without real messages.
pub fn sample(kind: JobKind, tag: &str) -> JobData {
    match kind {
        JobKind::Message => JobData::Message(MessageData {
            envelope: Envelope {
                mail_from: "a@example.org".into(),
                size: None,
                body: None,
                ret: None,
                envid: None,
                mail_auth: None,
                recipients: Vec::new(),
                postmaster: Vec::new(),
                client: ClientInfo {
                    ip: IpAddr::from([127, 0, 0, 1]),
                    port: 25,
                    helo: "test".into(),
                    esmtp: true,
                },
                auth_user: None,
                tls: None,
            },
            file: tag.into(),
            size: 0,
            received: "2027-01-15T08:00:00Z".into(),
        }),
        JobKind::FaxOut => JobData::FaxOut(FaxOutData {
            message: "6b0b5ae65504f019e0e3"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
            recipient: 1,
            rcpt: tag.into(),
            e164: "+12125550142".into(),
            dial: "12125550142".into(),
            subaddress: None,
            options: SenderOptions {
                resolution: Resolution::Fine,
                cover_page: false,
                subject: String::new(),
            },
            pages_total: 1,
            pages: None,
            from: String::new(),
            result: None,
        }),
        JobKind::FaxIn => JobData::FaxIn(FaxInData {
            reception: Reception {
                source: Source::Submit,
                line: Some(tag.into()),
                did: None,
                caller: None,
                remote_id: None,
                subaddress: None,
                pages: 1,
                duration_secs: 0,
                speed: None,
                resolution: None,
                bad_lines: 0,
                received: 0,
                completion: Completion::Complete,
            },
            to: Vec::new(),
        }),
        JobKind::MailOut => JobData::MailOut(MailOutData {
            envelope: MailEnvelope {
                from: String::new(),
                to: vec!["b@example.org".into()],
                envid: None,
            },
            purpose: Purpose::AdminNotice,
            subject: tag.into(),
            file: "message.eml".into(),
        }),
    }
}

impl From<MessageData> for JobData {
    fn from(d: MessageData) -> JobData {
        JobData::Message(d)
    }
}

impl From<FaxOutData> for JobData {
    fn from(d: FaxOutData) -> JobData {
        JobData::FaxOut(d)
    }
}

impl From<FaxInData> for JobData {
    fn from(d: FaxInData) -> JobData {
        JobData::FaxIn(d)
    }
}

impl From<MailOutData> for JobData {
    fn from(d: MailOutData) -> JobData {
        JobData::MailOut(d)
    }
}
