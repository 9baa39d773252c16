//! One way in for faxes sent from the console: the REST API's `POST /api/v1/faxes`, which the
//! web send page posts to as well.
//!
//! A submission becomes an ordinary email to `FAX=+<number>@<gateway.hostname>` recipients,
//! committed to the spool as a `Message` job the way the SMTP listener commits one
//! ([`crate::smtp::server::open_job`], [`crate::smtp::server::commit_message`]): rendering, the
//! split into fax jobs, sending, retries and the report (DSN) then run unchanged.
//!
//! Everything that can refuse a submission is checked before anything is queued:
//! - the size: at most `[smtp] max_message_size` octets of request body, counted while the
//!   multipart stream is read (nothing beyond it is read or kept) → `413`;
//! - the numbers: each through [`crate::smtp::session::Policy::fax_recipient`], the one RCPT
//!   check (number form, then the dial plan's toll-fraud policy) → `422 number-refused` with
//!   the dial plan's reason; then the user's scope ([`super::auth::Scope::number`]) → `403`;
//! - the documents: each sniffed ([`crate::offramp::mime::sniff`], or UTF-8 text), then the
//!   whole message rendered once as the split will render it
//!   ([`crate::offramp::document::prepare`]), so a file that would fail later fails now →
//!   `415` (or `422` for too many pages or a page too complex).
//!
//! Reports: with `notify`, the report goes there and covers success and failure (RFC 3461
//! `NOTIFY=SUCCESS,FAILURE`); without, the sender is `gateway.admin` and only failures are
//! reported (`NOTIFY=FAILURE`).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use thiserror::Error;

use super::auth::Who;
use crate::config::Config;
use crate::job::{ClientInfo, Envelope, Notify, Recipient, Resolution};
use crate::mail::address;
use crate::offramp::causes::Cause;
use crate::offramp::mime::{self, Kind};
use crate::smtp::session::{Policy, RecipientError};
use crate::spool::{JobId, Spool, SpoolError};

/// Files per submission at most (ours).
pub const MAX_FILES: usize = 50;
/// Longest cover text, octets (ours: a page of text is about 4 KB).
pub const MAX_COVER: usize = 32 * 1024;
/// Longest `to`, `resolution` or `notify` field, octets (ours).
pub const MAX_SHORT_FIELD: u64 = 4096;
/// The form fields a submission may have.
pub const FIELDS: [&str; 5] = ["to", "file", "cover", "resolution", "notify"];

/// Why a submission was refused; each is one HTTP status and one stable code.
#[derive(Debug, Error)]
pub enum SubmitError {
    /// The body is not `multipart/form-data`.
    #[error("the request must be multipart/form-data")]
    NotMultipart,
    /// The multipart body is malformed, or has a field we do not know.
    #[error("bad form: {0}")]
    BadForm(String),
    /// Over `[smtp] max_message_size`.
    #[error("the upload is larger than the limit of {limit} octets (smtp.max_message_size)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// No `to` field.
    #[error("no recipient: give at least one `to` number")]
    NoRecipient,
    /// More numbers than one message may have.
    #[error("{given} recipients: at most {max} per fax")]
    TooManyRecipients {
        /// Numbers given.
        given: usize,
        /// The limit.
        max: usize,
    },
    /// Neither a file nor cover text.
    #[error("nothing to fax: give at least one `file` (or `cover` text)")]
    NoDocument,
    /// A `to` that is not a fax number.
    #[error("`{number}` is not a fax number: {reason}")]
    BadNumber {
        /// As given.
        number: String,
        /// Why.
        reason: String,
    },
    /// The dial plan refuses the number.
    #[error("{reason}")]
    NumberRefused {
        /// As given.
        number: String,
        /// The dial plan's reason.
        reason: String,
    },
    /// The number is outside the user's scope.
    #[error("{number} is not one of the numbers you may send to")]
    OutOfScope {
        /// E.164.
        number: String,
    },
    /// `resolution` is not one of the three words.
    #[error("resolution `{0}` is not standard, fine or superfine")]
    BadResolution(String),
    /// `notify` is not a mail address.
    #[error("notify `{0}` is not a mail address")]
    BadNotify(String),
    /// A file that is not a document we fax, or that would not render.
    #[error("{0}")]
    Unsupported(String),
    /// The document renders, but breaks a limit of the offramp (pages, work per page).
    #[error("{0}")]
    Unfaxable(String),
    /// The spool refused the job.
    #[error("the fax could not be queued: {0}")]
    Spool(#[from] SpoolError),
    /// Our own fault (a task died, the message could not be built).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SubmitError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            SubmitError::NotMultipart | SubmitError::Unsupported(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            SubmitError::BadForm(_)
            | SubmitError::NoRecipient
            | SubmitError::NoDocument
            | SubmitError::BadResolution(_) => StatusCode::BAD_REQUEST,
            SubmitError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            SubmitError::OutOfScope { .. } => StatusCode::FORBIDDEN,
            SubmitError::TooManyRecipients { .. }
            | SubmitError::BadNumber { .. }
            | SubmitError::NumberRefused { .. }
            | SubmitError::BadNotify(_)
            | SubmitError::Unfaxable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SubmitError::Spool(e) if e.is_temporary() => StatusCode::SERVICE_UNAVAILABLE,
            SubmitError::Spool(_) | SubmitError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code (documented in `openapi.json`).
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::NotMultipart => "not-multipart",
            SubmitError::BadForm(_) => "bad-form",
            SubmitError::TooLarge { .. } => "too-large",
            SubmitError::NoRecipient => "no-recipient",
            SubmitError::TooManyRecipients { .. } => "too-many-recipients",
            SubmitError::NoDocument => "no-document",
            SubmitError::BadNumber { .. } => "bad-number",
            SubmitError::NumberRefused { .. } => "number-refused",
            SubmitError::OutOfScope { .. } => "number-out-of-scope",
            SubmitError::BadResolution(_) => "bad-resolution",
            SubmitError::BadNotify(_) => "bad-notify",
            SubmitError::Unsupported(_) => "unsupported-type",
            SubmitError::Unfaxable(_) => "unfaxable",
            SubmitError::Spool(e) if e.is_temporary() => "spool-busy",
            SubmitError::Spool(_) => "spool-error",
            SubmitError::Internal(_) => "internal",
        }
    }

    /// The JSON error response.
    pub fn response(&self) -> Response {
        super::api_error(self.status(), self.code(), self.to_string())
    }
}

/// One uploaded document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The file name the client gave, if any.
    pub filename: Option<String>,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A submission as read from the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    /// Numbers as written (each `to` field; commas and line ends also separate).
    pub to: Vec<String>,
    /// Documents in the order given.
    pub files: Vec<Upload>,
    /// Text faxed first, as a cover letter.
    pub cover: Option<String>,
    /// `standard`, `fine` or `superfine`.
    pub resolution: Option<String>,
    /// Where the report goes.
    pub notify: Option<String>,
}

fn form_error(e: multer::Error, limit: u64) -> SubmitError {
    match e {
        multer::Error::StreamSizeExceeded { .. } => SubmitError::TooLarge { limit },
        multer::Error::FieldSizeExceeded { field_name, .. } => SubmitError::BadForm(format!(
            "field `{}` is too long",
            field_name.unwrap_or_default()
        )),
        multer::Error::UnknownField { field_name } => SubmitError::BadForm(format!(
            "unknown field `{}` (expected one of: {})",
            crate::logging::Untrusted::new(&field_name.unwrap_or_default()),
            FIELDS.join(", ")
        )),
        other => SubmitError::BadForm(other.to_string()),
    }
}

/// Reads a `multipart/form-data` body of at most `limit` octets (framing included): the
/// stream is cut at the limit, so no more than that is ever read or held.
pub async fn read_form(
    body: Body,
    content_type: Option<&str>,
    content_length: Option<u64>,
    limit: u64,
) -> Result<Form, SubmitError> {
    let boundary = content_type
        .and_then(|c| multer::parse_boundary(c).ok())
        .ok_or(SubmitError::NotMultipart)?;
    // A declared length over the limit is refused before a byte of the body is read.
    if content_length.is_some_and(|n| n > limit) {
        return Err(SubmitError::TooLarge { limit });
    }
    let sizes = multer::SizeLimit::new()
        .whole_stream(limit)
        .for_field("to", MAX_SHORT_FIELD)
        .for_field("resolution", MAX_SHORT_FIELD)
        .for_field("notify", MAX_SHORT_FIELD)
        .for_field("cover", MAX_COVER as u64);
    let constraints = multer::Constraints::new()
        .allowed_fields(FIELDS.to_vec())
        .size_limit(sizes);
    let mut mp =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut form = Form::default();
    while let Some(mut field) = mp.next_field().await.map_err(|e| form_error(e, limit))? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| form_error(e, limit))? {
            bytes.extend_from_slice(&chunk);
        }
        let text = || {
            String::from_utf8(bytes.clone())
                .map_err(|_| SubmitError::BadForm(format!("field `{name}` is not UTF-8 text")))
        };
        match name.as_str() {
            "to" => form.to.extend(
                text()?
                    .split([',', '\n', '\r'])
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            ),
            "file" => {
                if form.files.len() >= MAX_FILES {
                    return Err(SubmitError::BadForm(format!("more than {MAX_FILES} files")));
                }
                form.files.push(Upload { filename, bytes });
            }
            "cover" => form.cover = Some(text()?).filter(|t| !t.trim().is_empty()),
            "resolution" => form.resolution = Some(text()?.trim().to_owned()),
            "notify" => form.notify = Some(text()?.trim().to_owned()).filter(|n| !n.is_empty()),
            // multer refuses any other field (allowed_fields).
            _ => {}
        }
    }
    Ok(form)
}

/// The dial plan's word for a number given as the API's `to`: E.164 `+` digits (or a site
/// form, when `smtp.accept_plain_digits` allows) with optional spaces, `-`, `.` and
/// parentheses (E.123 written forms).
fn fax_mailbox(number: &str, hostname: &str) -> Result<(String, address::Mailbox), SubmitError> {
    let bad = |reason: &str| SubmitError::BadNumber {
        number: number.chars().take(64).collect(),
        reason: reason.into(),
    };
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '(' | ')'))
        .collect();
    if digits.is_empty()
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err(bad("digits only, `+` first for an international number"));
    }
    // Separators are for people; the address carries the digits alone.
    let digits: String = digits.chars().filter(|c| !matches!(c, '-' | '.')).collect();
    let path = format!("FAX={digits}@{hostname}");
    let mb = address::parse_forward_path(&path).map_err(|e| bad(&e.to_string()))?;
    Ok((path, mb))
}

/// Checks every number: its form, the dial plan and the user's scope, in that order, for the
/// first refused. `notify` is the NOTIFY every recipient gets.
pub fn recipients(
    policy: &Policy,
    who: &Who,
    numbers: &[String],
    notify: &[Notify],
) -> Result<Vec<Recipient>, SubmitError> {
    if numbers.is_empty() {
        return Err(SubmitError::NoRecipient);
    }
    let max = policy
        .max_recipients
        .min(crate::offramp::jobs::MAX_RECIPIENTS);
    if numbers.len() > max {
        return Err(SubmitError::TooManyRecipients {
            given: numbers.len(),
            max,
        });
    }
    let mut out = Vec::with_capacity(numbers.len());
    for n in numbers {
        let (path, mb) = fax_mailbox(n, &policy.hostname)?;
        let mut r = match policy.fax_recipient(&path, &mb) {
            Ok(r) => r,
            Err(RecipientError::Address(e)) => {
                return Err(SubmitError::BadNumber {
                    number: n.clone(),
                    reason: e.to_string(),
                });
            }
            Err(RecipientError::Dial(e)) => {
                return Err(SubmitError::NumberRefused {
                    number: n.clone(),
                    reason: e.to_string(),
                });
            }
        };
        if !who.user.scope.number(&r.destination.e164) {
            return Err(SubmitError::OutOfScope {
                number: r.destination.e164,
            });
        }
        // The address the job and its report carry is the RFC 3192 minimal form, whose
        // number is always global (`FAX=+…`, RFC 3192 §3 / RFC 2303): a national number as
        // the person typed it stays in `number`, the address gets the dial plan's E.164.
        r.address = format!("FAX={}@{}", r.destination.e164, policy.hostname);
        r.notify = Some(notify.to_vec());
        out.push(r);
    }
    Ok(out)
}

/// The resolution word, if one was given.
pub fn resolution(word: Option<&str>) -> Result<Option<Resolution>, SubmitError> {
    match word.map(|w| w.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(None),
        Some("standard") => Ok(Some(Resolution::Standard)),
        Some("fine") => Ok(Some(Resolution::Fine)),
        Some("superfine") => Ok(Some(Resolution::Superfine)),
        Some(_) => Err(SubmitError::BadResolution(
            word.unwrap_or_default().chars().take(40).collect(),
        )),
    }
}

/// The report's address and what it covers: `notify` with success and failure, else
/// `gateway.admin` with failures only.
pub fn sender(cfg: &Config, notify: Option<&str>) -> Result<(String, Vec<Notify>), SubmitError> {
    match notify {
        Some(n) => {
            // A bare address: it becomes the envelope's reverse-path.
            if n.contains(['<', '>']) || !crate::config::is_address(n) {
                return Err(SubmitError::BadNotify(n.chars().take(200).collect()));
            }
            Ok((n.to_owned(), vec![Notify::Success, Notify::Failure]))
        }
        None => {
            let admin = crate::delivery::message::bare_address(&cfg.gateway.admin)
                .unwrap_or_else(|_| cfg.gateway.admin.clone());
            Ok((admin, vec![Notify::Failure]))
        }
    }
}

/// What a document is, by its bytes: a kind the offramp renders, or the refusal.
fn kind_of(i: usize, f: &Upload) -> Result<(Kind, &'static str), SubmitError> {
    let kind = match mime::sniff(&f.bytes) {
        Some(k) => k,
        None if std::str::from_utf8(&f.bytes).is_ok() && !f.bytes.contains(&0) => Kind::Text,
        None => {
            let name = f.filename.as_deref().unwrap_or("(no name)");
            return Err(SubmitError::Unsupported(format!(
                "file {} `{}` is not a PDF, TIFF, picture (PNG, JPEG, GIF, BMP, WebP, PNM) \
                 or plain text file",
                i + 1,
                crate::logging::Untrusted::new(name)
            )));
        }
    };
    let ct = match kind {
        Kind::Tiff => "image/tiff",
        Kind::Pdf => "application/pdf",
        Kind::Raster(mime::RasterFormat::Png) => "image/png",
        Kind::Raster(mime::RasterFormat::Jpeg) => "image/jpeg",
        Kind::Raster(mime::RasterFormat::Gif) => "image/gif",
        Kind::Raster(mime::RasterFormat::Bmp) => "image/bmp",
        Kind::Raster(mime::RasterFormat::Webp) => "image/webp",
        Kind::Raster(mime::RasterFormat::Pnm) => "image/x-portable-anymap",
        Kind::Text => "text/plain",
        Kind::Office(f) => f.content_type(),
    };
    Ok((kind, ct))
}

/// A file name safe in a header: printable, no path, at most 100 characters.
fn safe_name(name: Option<&str>, i: usize) -> String {
    let n: String = name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(100)
        .collect();
    if n.trim().is_empty() {
        format!("document-{}", i + 1)
    } else {
        n
    }
}

/// What the message says besides its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// The console user (shown as the sender's name).
    pub user: String,
    /// The envelope sender (`From:` address too).
    pub mail_from: String,
    /// `Date:`, seconds since the Unix epoch.
    pub date: i64,
    /// `Message-ID:` without angle brackets.
    pub message_id: String,
    /// `X-Fax-Resolution:`.
    pub resolution: Option<Resolution>,
}

/// Builds the email (RFC 5322, CRLF) that carries the submission: `To:` the recipients'
/// addresses, the cover text as a first text attachment, then each file as an attachment
/// with the type its bytes show. PURE (but for mail-builder's MIME boundary).
pub fn build_message(
    h: &Heading,
    recipients: &[Recipient],
    files: &[Upload],
    cover: Option<&str>,
) -> Result<Vec<u8>, SubmitError> {
    let mut parts = Vec::with_capacity(files.len() + 1);
    if let Some(text) = cover {
        parts.push(
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                text.to_owned(),
            )
            .attachment("cover.txt"),
        );
    }
    for (i, f) in files.iter().enumerate() {
        let (kind, ct) = kind_of(i, f)?;
        let name = safe_name(f.filename.as_deref(), i);
        let part = if kind == Kind::Text {
            let text = String::from_utf8_lossy(&f.bytes).into_owned();
            MimePart::new(ContentType::new(ct).attribute("charset", "utf-8"), text)
        } else {
            MimePart::new(ct, f.bytes.clone())
        };
        parts.push(part.attachment(name));
    }
    if parts.is_empty() {
        return Err(SubmitError::NoDocument);
    }
    let to: Vec<Address<'static>> = recipients
        .iter()
        .map(|r| Address::new_address(None::<String>, r.address.clone()))
        .collect();
    let mut b = MessageBuilder::new()
        .from(Address::new_address(
            Some(format!("{} (faxgate console)", h.user)),
            h.mail_from.clone(),
        ))
        .to(Address::new_list(to))
        .subject(format!("Fax from {}", h.user))
        .date(h.date)
        .message_id(h.message_id.clone());
    if let Some(r) = h.resolution {
        let word = match r {
            Resolution::Standard => "standard",
            Resolution::Fine => "fine",
            Resolution::Superfine => "superfine",
        };
        b = b.header(
            "X-Fax-Resolution",
            mail_builder::headers::raw::Raw::new(word),
        );
    }
    b.body(MimePart::new("multipart/mixed", parts))
        .write_to_vec()
        .map_err(|e| SubmitError::Internal(format!("building the message: {e}")))
}

/// The render check the split will make, now: `Ok` when the message makes a fax.
pub fn check_document(cfg: &Config, raw: &[u8]) -> Result<u32, SubmitError> {
    let headers = mime::headers(raw);
    let opts = crate::offramp::options::parse(
        headers.subject.as_deref(),
        headers.fax_resolution.as_deref(),
        crate::offramp::options::Defaults::from(&cfg.offramp),
    );
    let doc = crate::offramp::document::Options::from(&cfg.offramp);
    match crate::offramp::document::prepare(raw, &doc, &opts) {
        Ok(p) => Ok(p.pages_total),
        Err(
            c @ (Cause::UnsupportedAttachment { .. }
            | Cause::DamagedAttachment { .. }
            | Cause::NothingToFax),
        ) => Err(SubmitError::Unsupported(c.words())),
        Err(c @ (Cause::TooManyPages { .. } | Cause::TooComplex { .. })) => {
            Err(SubmitError::Unfaxable(c.words()))
        }
        Err(c) => Err(SubmitError::Internal(c.words())),
    }
}

/// Everything checked, ready to spool.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The envelope.
    pub envelope: Envelope,
    /// The message.
    pub message: Vec<u8>,
}

/// Checks a form and builds its message and envelope (blocking: renders the document once).
/// `client` is the HTTP peer; nothing is queued.
pub fn check(
    cfg: &Config,
    who: &Who,
    client: std::net::SocketAddr,
    form: &Form,
    now_secs: i64,
) -> Result<Checked, SubmitError> {
    let policy = Policy::from_config(cfg, false);
    let (mail_from, notify) = sender(cfg, form.notify.as_deref())?;
    let recipients = recipients(&policy, who, &form.to, &notify)?;
    let resolution = resolution(form.resolution.as_deref())?;
    if form.files.is_empty() && form.cover.is_none() {
        return Err(SubmitError::NoDocument);
    }
    let heading = Heading {
        user: who.user.name.clone(),
        mail_from: mail_from.clone(),
        date: now_secs,
        message_id: format!("{}@{}", super::auth::random_hex(12), cfg.gateway.hostname),
        resolution,
    };
    let message = build_message(&heading, &recipients, &form.files, form.cover.as_deref())?;
    check_document(cfg, &message)?;
    let envelope = Envelope {
        mail_from,
        size: Some(message.len() as u64),
        body: None,
        ret: None,
        envid: None,
        mail_auth: None,
        recipients,
        postmaster: Vec::new(),
        client: ClientInfo {
            ip: client.ip(),
            port: client.port(),
            helo: "faxgate-console".into(),
            esmtp: true,
        },
        auth_user: Some(who.user.name.clone()),
        tls: None,
    };
    Ok(Checked { envelope, message })
}

/// Spools a checked submission as a `Message` job, as the SMTP listener does (blocking).
pub fn commit(spool: &Spool, hostname: &str, c: Checked) -> Result<JobId, SpoolError> {
    let (inc, mut f) = crate::smtp::server::open_job(spool, &c.envelope, hostname)?;
    f.write_bytes(&c.message)?;
    let size = c.message.len() as u64;
    let rec = crate::smtp::server::commit_message(inc, f, c.envelope, size)?;
    Ok(rec.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::console::auth::{Role, Scope, User, Via};

    fn who(scope: Scope) -> Who {
        Who {
            user: User {
                name: "vic".into(),
                role: Role::Viewer,
                scope,
            },
            via: Via::Token,
        }
    }

    fn policy() -> Policy {
        Policy::from_config(&Config::default(), false)
    }

    #[test]
    fn numbers_pass_the_smtp_dial_plan_and_the_scope() {
        let p = policy();
        let all = who(Scope::default());
        let ok = recipients(&p, &all, &["+1 (212) 555-0123".into()], &[Notify::Failure]).unwrap();
        assert_eq!(ok[0].destination.e164, "+12125550123");
        assert_eq!(ok[0].address, "FAX=+12125550123@localhost");
        assert_eq!(ok[0].notify, Some(vec![Notify::Failure]));
        // The default plan: premium rate and international are refused, with the plan's words.
        for (n, want) in [
            ("+19005550123", "premium-rate"),
            ("+442079460000", "international"),
        ] {
            let e = recipients(&p, &all, &[n.into()], &[]).unwrap_err();
            assert_eq!(e.code(), "number-refused", "{n}");
            assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert!(e.to_string().contains(want), "{n}: {e}");
        }
        for n in ["12125550123@evil.example", "+1212x", "FAX=+1", "+"] {
            let e = recipients(&p, &all, &[n.into()], &[]).unwrap_err();
            assert_eq!(e.code(), "bad-number", "{n}: {e}");
        }
        let scoped = who(Scope {
            numbers: vec!["+12125550142".into()],
            routes: vec![],
        });
        assert!(recipients(&p, &scoped, &["+12125550142".into()], &[]).is_ok());
        let e = recipients(&p, &scoped, &["+12125550123".into()], &[]).unwrap_err();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::FORBIDDEN, "number-out-of-scope")
        );
        assert_eq!(
            recipients(&p, &all, &[], &[]).unwrap_err().code(),
            "no-recipient"
        );
        let many = vec!["+12125550123".to_string(); 101];
        assert_eq!(
            recipients(&p, &all, &many, &[]).unwrap_err().code(),
            "too-many-recipients"
        );
    }

    #[test]
    fn notify_chooses_sender_and_dsn_scope() {
        let cfg = Config::default();
        let (from, n) = sender(&cfg, Some("ann@example.org")).unwrap();
        assert_eq!(
            (from.as_str(), n),
            ("ann@example.org", vec![Notify::Success, Notify::Failure])
        );
        let (from, n) = sender(&cfg, None).unwrap();
        assert_eq!(
            (from.as_str(), n),
            ("postmaster@localhost", vec![Notify::Failure])
        );
        for bad in ["nobody", "A <a@b.example>", "a@b.example>\r\nBcc: x@y"] {
            assert_eq!(sender(&cfg, Some(bad)).unwrap_err().code(), "bad-notify");
        }
    }

    #[test]
    fn the_message_carries_cover_and_files_with_their_sniffed_types() {
        let p = policy();
        let r = recipients(&p, &who(Scope::default()), &["+12125550123".into()], &[]).unwrap();
        let h = Heading {
            user: "vic".into(),
            mail_from: "postmaster@localhost".into(),
            date: 1_796_000_000,
            message_id: "abc@localhost".into(),
            resolution: Some(Resolution::Superfine),
        };
        let files = vec![
            Upload {
                filename: Some("../../etc/a\"b.pdf".into()),
                bytes: b"%PDF-1.4\n%%EOF\n".to_vec(),
            },
            Upload {
                filename: None,
                bytes: "héllo\n".as_bytes().to_vec(),
            },
        ];
        let raw = build_message(&h, &r, &files, Some("Please call back")).unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let to: Vec<_> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
        assert_eq!(to, ["FAX=+12125550123@localhost"]);
        assert_eq!(
            m.header_raw("X-Fax-Resolution").map(str::trim),
            Some("superfine")
        );
        use mail_parser::MimeHeaders;
        let names: Vec<_> = m
            .attachments()
            .map(|a| {
                (
                    a.attachment_name().unwrap_or_default().to_owned(),
                    a.content_type()
                        .map(|c| c.ctype().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("cover.txt".to_string(), "text".to_string()),
                ("ab.pdf".into(), "application".into()),
                ("document-2".into(), "text".into()),
            ]
        );
        let bin = Upload {
            filename: Some("x.docx".into()),
            bytes: b"PK\x03\x04\x00\xff\xfe".to_vec(),
        };
        let e = build_message(&h, &r, &[bin], None).unwrap_err();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-type")
        );
        assert_eq!(
            build_message(&h, &r, &[], None).unwrap_err().code(),
            "no-document"
        );
    }

    #[test]
    fn a_document_that_would_not_render_is_refused_before_queueing() {
        let cfg = Config::default();
        let r = recipients(
            &policy(),
            &who(Scope::default()),
            &["+12125550123".into()],
            &[],
        )
        .unwrap();
        let h = Heading {
            user: "vic".into(),
            mail_from: "postmaster@localhost".into(),
            date: 1_796_000_000,
            message_id: "abc@localhost".into(),
            resolution: None,
        };
        // Sniffs as a PDF, but is not one.
        let broken = Upload {
            filename: Some("broken.pdf".into()),
            bytes: b"%PDF-1.4\nthis is not a PDF at all".to_vec(),
        };
        let raw = build_message(&h, &r, &[broken], None).unwrap();
        let e = check_document(&cfg, &raw).unwrap_err();
        assert_eq!(e.code(), "unsupported-type", "{e}");
        let text = Upload {
            filename: Some("note.txt".into()),
            bytes: b"one page of text\n".to_vec(),
        };
        let raw = build_message(&h, &r, &[text], Some("cover")).unwrap();
        assert_eq!(check_document(&cfg, &raw).unwrap(), 2);
    }

    fn multipart(fields: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, value) in fields {
            b.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"");
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(b"\"; filename=\"f\"\r\n\r\n");
            b.extend_from_slice(value);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    #[tokio::test]
    async fn the_form_is_read_within_the_limit_even_without_a_length() {
        let ct = Some("multipart/form-data; boundary=XyZ");
        let body = multipart(&[("to", b"+12125550123, +12125550142"), ("file", b"%PDF-1.4")]);
        let f = read_form(Body::from(body.clone()), ct, None, 10_000)
            .await
            .unwrap();
        assert_eq!(f.to, ["+12125550123", "+12125550142"]);
        assert_eq!(f.files[0].bytes, b"%PDF-1.4");
        // Chunked (no Content-Length): the stream is cut at the limit.
        let big = multipart(&[("file", &vec![b'x'; 50_000])]);
        let e = read_form(Body::from(big), ct, None, 10_000)
            .await
            .unwrap_err();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::PAYLOAD_TOO_LARGE, "too-large")
        );
        // A declared length over the limit: refused before reading.
        let e = read_form(Body::from(body.clone()), ct, Some(10_001), 10_000)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "too-large");
        let e = read_form(Body::from(body.clone()), Some("text/plain"), None, 10_000)
            .await
            .unwrap_err();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-multipart")
        );
        let odd = multipart(&[("bcc", b"x@example.org")]);
        let e = read_form(Body::from(odd), ct, None, 10_000)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "bad-form");
        assert!(e.to_string().contains("unknown field `bcc`"), "{e}");
    }

    #[test]
    fn resolution_words() {
        assert_eq!(resolution(None).unwrap(), None);
        assert_eq!(resolution(Some(" Fine ")).unwrap(), Some(Resolution::Fine));
        assert_eq!(
            resolution(Some("high")).unwrap_err().code(),
            "bad-resolution"
        );
    }
}
