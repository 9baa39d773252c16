//! MIME extraction: which parts of an accepted email are meant to be faxed, in order.
//!
//! PURE: the raw message bytes in, an [`Extracted`] list out. mail-parser 0.11 does the MIME
//! decoding (base64, quoted-printable, 7bit/8bit, charsets incl. UTF-8, ISO-8859-1/-15,
//! Windows-1252); this module owns the policy on top of it:
//!
//! - every part is visited in message order (RFC 2046 §5.1: the order of body parts is
//!   significant), so attachments are faxed in the order the sender attached them;
//! - `multipart/alternative` (RFC 2046 §5.1.4): the text comes from the `text/plain`
//!   alternative when there is one, else from the `text/html` one, while pictures and
//!   documents found in *any* alternative are kept (Apple Mail puts an inline photo only in the
//!   HTML branch, and the sender means it to be faxed);
//! - skipped by policy, because people do not mean to fax them: small inline images (signature
//!   logos, under `offramp.min_inline_image` octets), vCards, S/MIME and PGP signatures and
//!   keys, calendar invites;
//! - a forwarded message (`message/rfc822`, RFC 2046 §5.2.1, or `message/global` with UTF-8
//!   headers, RFC 6532 §3.7), attached or inline, nested too, is faxed in its place as the
//!   message it is: a block with its From, Date, To and Subject above its text, then its own
//!   attachments;
//! - `format=flowed` text (RFC 3676) is re-joined into the paragraphs it was, so that it
//!   wraps to the page instead of to the sender's 72 columns;
//! - HTML is read by an HTML5 parser ([`crate::image::render::html`]); a picture it shows by
//!   `cid:` (RFC 2392) from its `multipart/related` (RFC 2387) is faxed where it is shown;
//! - the declared type is not trusted: content is sniffed by its magic bytes, so a PDF sent as
//!   `application/octet-stream` is faxed as a PDF;
//! - RFC 3965 §3: a part that cannot be processed fails the whole message, naming the part.
//!   mail-parser silently shortens truncated or invalid base64 (CRATES.md), so every base64
//!   part is re-checked strictly against its encoded text here.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use thiserror::Error;

/// Limits on what one message may contain (ours; the SMTP listener already caps its size).
///
/// They are applied twice: by [`super::mime_guard::check`] on the raw octets before mail-parser
/// builds anything (so a message past them costs no more memory than its size), and by the walk
/// over the parsed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// MIME parts (leaves and containers, those of nested messages included) at most.
    pub max_parts: usize,
    /// Nesting depth (multipart and `message/rfc822` containers) at most.
    pub max_depth: usize,
    /// Header fields in all header sections together at most (each costs mail-parser ~130
    /// octets of memory for as little as 3 of input).
    pub max_header_fields: usize,
    /// Octets of all header sections together at most.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parts: 200,
            max_depth: 16,
            // A real top header section has well under 300 fields (long Received: chains,
            // DKIM, ARC) and a MIME part a handful.
            max_header_fields: 5_000,
            max_header_bytes: 256 * 1024,
        }
    }
}

/// Extraction policy (the shell builds it from `[offramp]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Inline images smaller than this (octets) are signature logos and skipped.
    pub min_inline_image: u64,
    /// Limits on the message structure.
    pub limits: Limits,
}

/// Raster formats the renderer takes (through the `image` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RasterFormat {
    /// PNG (magic `89 50 4E 47 0D 0A 1A 0A`).
    Png,
    /// JPEG/JFIF (magic `FF D8 FF`).
    Jpeg,
    /// GIF87a/GIF89a.
    Gif,
    /// Windows bitmap (`BM`).
    Bmp,
    /// WebP (`RIFF….WEBP`).
    Webp,
    /// Netpbm P1–P6.
    Pnm,
}

/// What a faxable part is, decided from its content (sniffed) and its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// TIFF (any profile; RFC 3965 §3 requires Profile S to be read).
    Tiff,
    /// PDF.
    Pdf,
    /// A raster image other than TIFF.
    Raster(RasterFormat),
    /// Plain text (already decoded from its charset).
    Text,
    /// An office document, faxed through the converter ([`super::office`]).
    Office(super::office::Format),
}

impl Kind {
    /// A short word for reports ("PDF", "TIFF", "JPEG image", "text").
    pub fn label(self) -> &'static str {
        match self {
            Kind::Tiff => "TIFF",
            Kind::Pdf => "PDF",
            Kind::Raster(RasterFormat::Png) => "PNG image",
            Kind::Raster(RasterFormat::Jpeg) => "JPEG image",
            Kind::Raster(RasterFormat::Gif) => "GIF image",
            Kind::Raster(RasterFormat::Bmp) => "BMP image",
            Kind::Raster(RasterFormat::Webp) => "WebP image",
            Kind::Raster(RasterFormat::Pnm) => "PNM image",
            Kind::Text => "text",
            Kind::Office(f) => f.label(),
        }
    }
}

/// The content of a faxable part.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// Decoded bytes of a binary part (TIFF, PDF, raster image).
    Bytes(Vec<u8>),
    /// Text of a text part, decoded from its charset (HTML already turned into text).
    Text(String),
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Bytes(b) => write!(f, "Bytes({} octets)", b.len()),
            Content::Text(t) => write!(f, "Text({} chars)", t.chars().count()),
        }
    }
}

/// Who a part is to the sender: part of the message body, or an attached file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Inline body text (subject to `offramp.body_text`).
    Body,
    /// An attachment, or an inline picture/document the sender put in the message, or a
    /// forwarded message and what it holds.
    Attachment,
    /// A picture the HTML body shows in its text (`cid:`), faxed where it is shown, between
    /// the body's text parts.
    Inline,
}

/// Where a part sits in the message, for naming it to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartName {
    /// 1-based position among the message's leaf parts, in message order.
    pub index: usize,
    /// File name (RFC 2231 / encoded words decoded), if the sender gave one.
    pub filename: Option<String>,
    /// The declared content type, lower case (`application/pdf`).
    pub declared: String,
}

impl fmt::Display for PartName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.filename {
            Some(n) => write!(f, "part {} \"{}\" ({})", self.index, n, self.declared),
            None => write!(f, "part {} ({})", self.index, self.declared),
        }
    }
}

/// One part to fax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Which part it is.
    pub name: PartName,
    /// What it is (sniffed).
    pub kind: Kind,
    /// Body text or attachment.
    pub role: Role,
    /// Its decoded content.
    pub content: Content,
}

/// Why a part is not faxed although the message is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// An inline image under `offramp.min_inline_image` octets: a signature logo.
    SignatureLogo,
    /// A vCard (RFC 6350, `text/vcard`, `text/x-vcard`).
    VCard,
    /// An S/MIME (RFC 8551) or PGP (RFC 3156) signature, or a PGP key.
    Signature,
    /// A calendar invite (RFC 5545 `text/calendar`, `application/ics`).
    Calendar,
    /// A text alternative not chosen (RFC 2046 §5.1.4: the HTML twin of a plain text body).
    Alternative,
    /// A text part with nothing but white space.
    Empty,
}

impl SkipReason {
    /// Plain words for logs and summaries.
    pub fn words(self) -> &'static str {
        match self {
            SkipReason::SignatureLogo => "small inline image (signature logo)",
            SkipReason::VCard => "contact card (vCard)",
            SkipReason::Signature => "digital signature or key",
            SkipReason::Calendar => "calendar invitation",
            SkipReason::Alternative => "alternative form of the text",
            SkipReason::Empty => "empty text",
        }
    }
}

/// A part skipped by policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Which part.
    pub name: PartName,
    /// Why.
    pub reason: SkipReason,
}

/// The header fields of the message the offramp uses (report, header line, options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `Subject:` decoded.
    pub subject: Option<String>,
    /// `From:` as `Name <addr>` or the address.
    pub from: Option<String>,
    /// `Message-ID:` without angle brackets.
    pub message_id: Option<String>,
    /// `Disposition-Notification-To:` (RFC 8098 §2.1), the address an MDN is asked for.
    pub mdn_to: Option<String>,
    /// `X-Fax-Resolution:` (ours, see [`super::options`]).
    pub fax_resolution: Option<String>,
}

/// What the message holds for the fax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Header fields of interest.
    pub headers: Headers,
    /// Faxable parts in message order (body text and attachments interleaved as sent).
    pub parts: Vec<Part>,
    /// Parts left out by policy.
    pub skipped: Vec<Skipped>,
}

impl Extracted {
    /// True when some part other than body text is to be faxed.
    pub fn has_attachment(&self) -> bool {
        self.parts.iter().any(|p| p.role == Role::Attachment)
    }
}

/// Why a message cannot be faxed. The sender is at fault in every case (RFC 3463 class 5).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MimeError {
    /// Not an RFC 5322 message at all.
    #[error("the message could not be read as an email")]
    NotAMessage,
    /// Over [`Limits::max_parts`].
    #[error("the message has more than {0} MIME parts")]
    TooManyParts(usize),
    /// Over [`Limits::max_depth`].
    #[error("the message nests MIME parts deeper than {0} levels")]
    TooDeep(usize),
    /// Over [`Limits::max_header_fields`].
    #[error("the message has more than {0} header fields")]
    TooManyHeaderFields(usize),
    /// Over [`Limits::max_header_bytes`].
    #[error("the message's header sections are longer than {0} octets")]
    HeaderTooLong(usize),
    /// More than this many parts of a large message end without their boundary (each makes
    /// the parser search the rest of the message again).
    #[error("more than {0} MIME parts of the message lack their boundary")]
    BrokenBoundaries(usize),
    /// A type we cannot render (e.g. a Word document).
    #[error("{part}: this type of attachment cannot be faxed ({what})")]
    Unsupported {
        /// The part.
        part: PartName,
        /// What it appears to be, in words.
        what: String,
    },
    /// A part whose transfer encoding is broken (truncated or invalid base64).
    #[error("{part}: the attachment is damaged ({detail})")]
    BadEncoding {
        /// The part.
        part: PartName,
        /// What is wrong.
        detail: String,
    },
    /// An HTML text past the limits of [`crate::image::render::html::Limits`].
    #[error("{part}: the HTML cannot be laid out ({detail})")]
    HtmlTooComplex {
        /// The part.
        part: PartName,
        /// Which limit.
        detail: String,
    },
    /// Declared as a picture or document but its content is not one we recognise.
    #[error("{part}: the content is not a valid {declared_as}")]
    NotWhatItSays {
        /// The part.
        part: PartName,
        /// What it claimed to be.
        declared_as: String,
    },
}

impl MimeError {
    /// The part at fault, if one is.
    pub fn part(&self) -> Option<&PartName> {
        match self {
            MimeError::Unsupported { part, .. }
            | MimeError::BadEncoding { part, .. }
            | MimeError::HtmlTooComplex { part, .. }
            | MimeError::NotWhatItSays { part, .. } => Some(part),
            _ => None,
        }
    }
}

/// Sniff a binary's type from its first bytes.
pub fn sniff(data: &[u8]) -> Option<Kind> {
    let head = &data[..data.len().min(1024)];
    if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        return Some(Kind::Tiff);
    }
    // PDF 1.7 (ISO 32000-1) §7.5.2: `%PDF-` in the header; readers accept up to 1 KiB of junk
    // before it, and so do we.
    if find(head, b"%PDF-").is_some() {
        return Some(Kind::Pdf);
    }
    let raster = if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        RasterFormat::Png
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        RasterFormat::Jpeg
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        RasterFormat::Gif
    } else if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        RasterFormat::Webp
    } else if data.len() >= 14 && data.starts_with(b"BM") {
        RasterFormat::Bmp
    } else if data.len() >= 3
        && data[0] == b'P'
        && (b'1'..=b'6').contains(&data[1])
        && data[2].is_ascii_whitespace()
    {
        RasterFormat::Pnm
    } else {
        return None;
    };
    Some(Kind::Raster(raster))
}

/// A few known signatures of things we cannot fax, for a precise message.
fn describe_unknown(data: &[u8], declared: &str, filename: Option<&str>) -> String {
    let ext = filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("docx") => Some("a Word document (.docx)"),
        Some("doc") => Some("a Word document (.doc)"),
        Some("xlsx") | Some("xls") => Some("an Excel spreadsheet"),
        Some("pptx") | Some("ppt") => Some("a PowerPoint presentation"),
        Some("odt") | Some("ods") | Some("odp") => Some("an OpenDocument file"),
        Some("zip") => Some("a ZIP archive"),
        Some("rtf") => Some("an RTF document"),
        _ => None,
    };
    if let Some(w) = by_ext {
        return w.into();
    }
    if data.starts_with(b"PK\x03\x04") {
        return "a ZIP-based file (such as an Office document)".into();
    }
    if data.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return "an old Microsoft Office file".into();
    }
    if data.len() >= 12
        && &data[4..8] == b"ftyp"
        && matches!(&data[8..12], b"heic" | b"heix" | b"mif1" | b"msf1")
    {
        return "a HEIC/HEIF photo (set the phone to send JPEG)".into();
    }
    if let Some(sub) = declared.strip_prefix("image/") {
        return format!("an image in a format the gateway does not read ({sub})");
    }
    format!("of type {declared}")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Strictly check the encoded text of a base64 part (RFC 2045 §6.8): only the alphabet and
/// white space, padding only at the end, a whole number of 4-character groups. Returns the
/// strictly decoded length, which must equal what mail-parser produced.
fn check_base64(encoded: &[u8]) -> Result<usize, String> {
    let mut clean = Vec::with_capacity(encoded.len());
    for (i, &c) in encoded.iter().enumerate() {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => clean.push(c),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => return Err(format!("invalid base64 character at offset {i}")),
        }
    }
    if clean.len() % 4 != 0 {
        return Err(format!(
            "base64 text ends in the middle of a group ({} characters): truncated",
            clean.len()
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .map(|v| v.len())
        .map_err(|e| format!("invalid base64: {e}"))
}

struct Walker<'a> {
    policy: &'a Policy,
    out: Extracted,
    visited: usize,
    leaves: usize,
    /// Parts (by address) already taken: walked, or faxed in the place their HTML shows them.
    shown: std::collections::HashSet<usize>,
}

/// The header fields of interest of a raw message (empty when it does not parse), also when
/// its parts cannot be faxed: the report still quotes its subject.
pub fn headers(raw: &[u8]) -> Headers {
    // Only the first `max_header_bytes` octets: a header section of millions of fields would
    // cost hundreds of MB to parse (issue 21).
    super::mime_guard::top_headers(raw, &Limits::default())
        .map(|m| headers_of(&m))
        .unwrap_or_default()
}

fn headers_of(msg: &Message<'_>) -> Headers {
    Headers {
        subject: msg.subject().map(str::to_string),
        from: msg
            .from()
            .and_then(|a| a.first())
            .map(|a| match (a.name(), a.address()) {
                (Some(n), Some(ad)) => format!("{n} <{ad}>"),
                (None, Some(ad)) => ad.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            }),
        message_id: msg.message_id().map(str::to_string),
        mdn_to: msg
            .header_raw("Disposition-Notification-To")
            .map(|s| s.trim().to_string()),
        fax_resolution: msg
            .header_raw("X-Fax-Resolution")
            .map(|s| s.trim().to_string()),
    }
}

/// Take the faxable parts out of a raw RFC 5322 message.
pub fn extract(raw: &[u8], policy: &Policy) -> Result<Extracted, MimeError> {
    // Structure first, on the raw octets: mail-parser builds the whole tree before the walk
    // below can count, and a deep or wide enough tree exhausts the stack or the memory.
    super::mime_guard::check(raw, &policy.limits)?;
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(MimeError::NotAMessage)?;
    if msg.parts.is_empty() {
        return Err(MimeError::NotAMessage);
    }
    let headers = headers_of(&msg);
    let mut w = Walker {
        policy,
        out: Extracted {
            headers,
            ..Extracted::default()
        },
        visited: 0,
        leaves: 0,
        shown: Default::default(),
    };
    w.walk(&msg, 0, 0, TextChoice::All)?;
    Ok(w.out)
}

/// Which text leaves of a subtree carry the body (RFC 2046 §5.1.4 alternatives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextChoice {
    /// Every text leaf counts.
    All,
    /// Only `text/plain` leaves count; HTML ones are the skipped twin.
    PlainOnly,
    /// Only `text/html` leaves count (there is no plain alternative).
    HtmlOnly,
    /// No text leaf counts (another alternative gave the text).
    None,
}

fn content_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase(),
        ),
        None => ("text".into(), "plain".into()),
    }
}

/// Does the subtree under `id` contain a text leaf of this subtype (bounded by `depth`)?
fn has_text(msg: &Message<'_>, id: usize, sub: &str, depth: usize) -> bool {
    let Some(part) = msg.parts.get(id) else {
        return false;
    };
    match &part.body {
        PartType::Multipart(children) if depth > 0 => children
            .iter()
            .any(|&c| (c as usize) > id && has_text(msg, c as usize, sub, depth - 1)),
        PartType::Text(_) | PartType::Html(_) => {
            let (t, s) = content_type(part);
            t == "text" && s == sub && !is_attachment(part)
        }
        _ => false,
    }
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.is_attachment())
}

impl Walker<'_> {
    fn walk(
        &mut self,
        msg: &Message<'_>,
        id: usize,
        depth: usize,
        choice: TextChoice,
    ) -> Result<(), MimeError> {
        self.visited += 1;
        if self.visited > self.policy.limits.max_parts {
            return Err(MimeError::TooManyParts(self.policy.limits.max_parts));
        }
        let Some(part) = msg.parts.get(id) else {
            return Ok(());
        };
        let (ctype, sub) = content_type(part);
        if let PartType::Multipart(children) = &part.body {
            if depth >= self.policy.limits.max_depth {
                return Err(MimeError::TooDeep(self.policy.limits.max_depth));
            }
            // mail-parser numbers children after their parent; anything else would be a loop.
            let children: Vec<usize> = children
                .iter()
                .map(|&c| c as usize)
                .filter(|&c| c > id)
                .collect();
            let limit = self.policy.limits.max_depth - depth;
            match sub.as_str() {
                "alternative" if choice != TextChoice::None => {
                    // RFC 2046 §5.1.4: alternatives in increasing faithfulness; for a fax the
                    // plain text is the faithful one (no layout to lose), HTML only when alone.
                    let want = if children.iter().any(|&c| has_text(msg, c, "plain", limit)) {
                        TextChoice::PlainOnly
                    } else {
                        TextChoice::HtmlOnly
                    };
                    let want = if choice == TextChoice::All {
                        want
                    } else {
                        choice
                    };
                    for c in children {
                        self.walk(msg, c, depth + 1, want)?;
                    }
                }
                "signed" => {
                    // RFC 1847 §2.1: the first part is the content, the second the signature.
                    for c in children {
                        self.walk(msg, c, depth + 1, choice)?;
                    }
                }
                "encrypted" => {
                    self.leaves += 1;
                    return Err(MimeError::Unsupported {
                        part: self.name(part, &ctype, &sub),
                        what: "an encrypted message, which the gateway cannot read".into(),
                    });
                }
                _ => {
                    for c in children {
                        self.walk(msg, c, depth + 1, choice)?;
                    }
                }
            }
            return Ok(());
        }
        self.leaves += 1;
        // Faxed already where the HTML shows it; else marked as taken, so that an HTML part
        // after it that shows it too does not fax it twice.
        if !self.shown.insert(std::ptr::from_ref(part) as usize) {
            return Ok(());
        }
        let name = self.name(part, &ctype, &sub);
        if let PartType::Message(inner) = &part.body {
            return self.forwarded(inner, name, depth);
        }
        self.leaf(msg, part, name, &ctype, &sub, choice)
    }

    /// A forwarded message (RFC 2046 §5.2.1 `message/rfc822`; RFC 6532 §3.7 `message/global`):
    /// its header block and text, then its attachments, in its place among the parts.
    fn forwarded(
        &mut self,
        inner: &Message<'_>,
        name: PartName,
        depth: usize,
    ) -> Result<(), MimeError> {
        // The nested message is one level deeper than the part holding it (the raw check in
        // `mime_guard` counts it the same way).
        if depth + 1 > self.policy.limits.max_depth {
            return Err(MimeError::TooDeep(self.policy.limits.max_depth));
        }
        let start = self.out.parts.len();
        if !inner.parts.is_empty() {
            self.walk(inner, 0, depth + 1, TextChoice::All)?;
        }
        let held = self.out.parts.split_off(start);
        let block = forward_block(inner);
        // Its text (the body parts, with pictures shown in them in their place) follows the
        // header block; each piece is faxed as a part of its own, in order.
        let mut text = block;
        let mut pending_text = true;
        for p in held {
            match (&p.role, &p.content) {
                (Role::Body, Content::Text(t)) => {
                    if !text.ends_with("\n\n") {
                        text.push('\n');
                    }
                    text.push_str(t.trim_end());
                    text.push('\n');
                    pending_text = true;
                }
                _ => {
                    if pending_text {
                        self.push_forward_text(&name, std::mem::take(&mut text));
                        pending_text = false;
                    }
                    self.out.parts.push(Part {
                        role: Role::Attachment,
                        ..p
                    });
                }
            }
        }
        if pending_text && !text.trim().is_empty() {
            self.push_forward_text(&name, text);
        }
        Ok(())
    }

    fn push_forward_text(&mut self, name: &PartName, text: String) {
        if text.trim().is_empty() {
            return;
        }
        self.out.parts.push(Part {
            name: name.clone(),
            kind: Kind::Text,
            role: Role::Attachment,
            content: Content::Text(text),
        });
    }

    fn name(&self, part: &MessagePart<'_>, ctype: &str, sub: &str) -> PartName {
        PartName {
            index: self.leaves,
            filename: part.attachment_name().map(|s| {
                // A file name is shown to people: keep it printable and bounded.
                s.chars().filter(|c| !c.is_control()).take(100).collect()
            }),
            declared: if sub.is_empty() {
                ctype.to_string()
            } else {
                format!("{ctype}/{sub}")
            },
        }
    }

    fn skip(&mut self, name: PartName, reason: SkipReason) -> Result<(), MimeError> {
        self.out.skipped.push(Skipped { name, reason });
        Ok(())
    }

    fn leaf(
        &mut self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        name: PartName,
        ctype: &str,
        sub: &str,
        choice: TextChoice,
    ) -> Result<(), MimeError> {
        // Skipped by type before anything is decoded: these are never meant to be faxed.
        let declared = name.declared.as_str();
        match declared {
            "text/vcard" | "text/x-vcard" | "text/directory" => {
                return self.skip(name, SkipReason::VCard);
            }
            "application/pkcs7-signature"
            | "application/x-pkcs7-signature"
            | "application/pgp-signature"
            | "application/pgp-keys" => return self.skip(name, SkipReason::Signature),
            "text/calendar" | "application/ics" => return self.skip(name, SkipReason::Calendar),
            _ => {}
        }
        if part.is_encoding_problem {
            return Err(MimeError::BadEncoding {
                part: name,
                detail: "the part could not be decoded".into(),
            });
        }
        let attached = is_attachment(part);
        match &part.body {
            PartType::Text(text) | PartType::Html(text) => {
                let is_html = ctype == "text" && sub == "html";
                if ctype == "text" && (sub == "plain" || sub == "html" || sub.is_empty()) {
                    let role = if attached || name.filename.is_some() {
                        Role::Attachment
                    } else {
                        Role::Body
                    };
                    if role == Role::Body {
                        let wanted = match choice {
                            TextChoice::All => true,
                            TextChoice::PlainOnly => !is_html,
                            TextChoice::HtmlOnly => is_html,
                            TextChoice::None => false,
                        };
                        if !wanted {
                            return self.skip(name, SkipReason::Alternative);
                        }
                    }
                    self.check_encoding(msg, part, &name, None)?;
                    if is_html {
                        return self.html(msg, part, name, role, text);
                    }
                    let text: Cow<'_, str> = match flowed(part) {
                        Some(delsp) => Cow::Owned(unflow(text, delsp)),
                        None => Cow::Borrowed(text.as_ref()),
                    };
                    if text.trim().is_empty() {
                        return self.skip(name, SkipReason::Empty);
                    }
                    self.out.parts.push(Part {
                        name,
                        kind: Kind::Text,
                        role,
                        content: Content::Text(text.into_owned()),
                    });
                    return Ok(());
                }
                // Some other text/* type (text/csv, text/rtf, …), or a binary part that
                // mail-parser took for text: treat its bytes like any binary.
                let bytes = text.as_bytes().to_vec();
                self.binary(msg, part, name, bytes, attached, Role::Attachment)
            }
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                self.binary(msg, part, name, b.to_vec(), attached, Role::Attachment)
            }
            // Forwarded messages are taken in `walk`; a multipart is not a leaf.
            PartType::Message(_) | PartType::Multipart(_) => Ok(()),
        }
    }

    /// For a base64 part, verify the encoded text strictly (CRATES.md: mail-parser shortens
    /// broken base64 silently).
    fn check_encoding(
        &self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        name: &PartName,
        decoded_len: Option<usize>,
    ) -> Result<(), MimeError> {
        let is_b64 = part
            .content_transfer_encoding()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
        if !is_b64 {
            return Ok(());
        }
        // The whole buffer the offsets count in (for a nested message too: mail-parser keeps
        // the outer octets, or the decoded ones of an encoded message, with its offsets).
        let raw: &[u8] = msg.raw_message.as_ref();
        let (start, end) = (part.offset_body as usize, part.offset_end as usize);
        let encoded = raw.get(start..end.min(raw.len())).unwrap_or_default();
        let strict = check_base64(encoded).map_err(|detail| MimeError::BadEncoding {
            part: name.clone(),
            detail,
        })?;
        // Text parts are re-encoded from their charset, so only binaries compare lengths.
        if let Some(decoded_len) = decoded_len
            && strict != decoded_len
        {
            return Err(MimeError::BadEncoding {
                part: name.clone(),
                detail: format!("decoded {decoded_len} octets, the encoding holds {strict}"),
            });
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(
        &mut self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        name: PartName,
        bytes: Vec<u8>,
        attached: bool,
        role: Role,
    ) -> Result<(), MimeError> {
        let is_text_type = name.declared.starts_with("text/");
        self.check_encoding(msg, part, &name, (!is_text_type).then_some(bytes.len()))?;
        let office = || super::office::detect(&name.declared, name.filename.as_deref(), &bytes);
        let Some(kind) = sniff(&bytes).or_else(|| office().map(Kind::Office)) else {
            let declared = name.declared.as_str();
            // Only a type we would render can "lie"; an image format we do not read (HEIC,
            // SVG, …) is unsupported, not damaged.
            let claims = match declared {
                "application/pdf" => Some("PDF document"),
                "image/tiff" | "image/tiff-fx" => Some("TIFF image"),
                "image/png"
                | "image/jpeg"
                | "image/jpg"
                | "image/pjpeg"
                | "image/gif"
                | "image/bmp"
                | "image/x-ms-bmp"
                | "image/webp"
                | "image/x-portable-bitmap"
                | "image/x-portable-graymap"
                | "image/x-portable-pixmap"
                | "image/x-portable-anymap" => Some("image"),
                _ => None,
            };
            if let Some(c) = claims {
                return Err(MimeError::NotWhatItSays {
                    part: name,
                    declared_as: c.into(),
                });
            }
            let what = describe_unknown(&bytes, declared, name.filename.as_deref());
            return Err(MimeError::Unsupported { part: name, what });
        };
        if matches!(kind, Kind::Raster(_))
            && !attached
            && (bytes.len() as u64) < self.policy.min_inline_image
        {
            return self.skip(name, SkipReason::SignatureLogo);
        }
        self.out.parts.push(Part {
            name,
            kind,
            role,
            content: Content::Bytes(bytes),
        });
        Ok(())
    }

    /// An HTML text part: its text, and the `cid:` pictures it shows in their place.
    fn html(
        &mut self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        name: PartName,
        role: Role,
        html: &str,
    ) -> Result<(), MimeError> {
        use crate::image::render::html::{self, Block};
        let blocks = html::to_blocks(html, &html::Limits::default()).map_err(|e| {
            MimeError::HtmlTooComplex {
                part: name.clone(),
                detail: e.to_string(),
            }
        })?;
        let here = msg
            .parts
            .iter()
            .position(|p| std::ptr::eq(p, part))
            .unwrap_or(0);
        let before = self.out.parts.len();
        for b in blocks {
            match b {
                Block::Text(t) => self.out.parts.push(Part {
                    name: name.clone(),
                    kind: Kind::Text,
                    role,
                    content: Content::Text(t),
                }),
                Block::Image { cid, alt } => {
                    let Some((id, img)) = find_cid(msg, &cid) else {
                        // A picture the message does not hold: its alt text, as a browser does.
                        if !alt.is_empty() {
                            self.out.parts.push(Part {
                                name: name.clone(),
                                kind: Kind::Text,
                                role,
                                content: Content::Text(format!("[{alt}]\n")),
                            });
                        }
                        continue;
                    };
                    let key = std::ptr::from_ref(img) as usize;
                    if self.shown.contains(&key) {
                        continue;
                    }
                    let bytes = match &img.body {
                        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
                        _ => continue,
                    };
                    // Its number among the leaves, as the walk will count it.
                    let ahead = msg
                        .parts
                        .iter()
                        .enumerate()
                        .filter(|(i, p)| {
                            *i > here && *i <= id && !matches!(p.body, PartType::Multipart(_))
                        })
                        .count();
                    let (ctype, sub) = content_type(img);
                    let mut img_name = self.name(img, &ctype, &sub);
                    img_name.index = self.leaves + ahead;
                    let role = if role == Role::Body {
                        Role::Inline
                    } else {
                        role
                    };
                    self.binary(msg, img, img_name, bytes, false, role)?;
                    self.shown.insert(key);
                }
            }
        }
        if self.out.parts.len() == before {
            return self.skip(name, SkipReason::Empty);
        }
        Ok(())
    }
}

/// The part of `msg` whose Content-ID (RFC 2045 §7, angle brackets dropped) is `cid`.
fn find_cid<'p, 'x>(msg: &'p Message<'x>, cid: &str) -> Option<(usize, &'p MessagePart<'x>)> {
    msg.parts.iter().enumerate().find(|(_, p)| {
        p.content_id()
            .is_some_and(|id| id.trim().trim_start_matches('<').trim_end_matches('>') == cid)
    })
}

/// The header block of a forwarded message, as mail clients write it above a forwarded text.
fn forward_block(m: &Message<'_>) -> String {
    let addrs = |a: Option<&mail_parser::Address<'_>>| {
        a.map(|a| {
            a.iter()
                .map(|a| match (a.name(), a.address()) {
                    (Some(n), Some(ad)) => format!("{n} <{ad}>"),
                    (None, Some(ad)) => ad.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
    };
    // The Date field as the sender wrote it (unfolded): a parsed and re-printed date could
    // differ from what the recipient's client showed.
    let date = m
        .header_raw("Date")
        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|d| !d.is_empty());
    let mut out = String::from("---------- Forwarded message ----------\n");
    let fields = [
        ("From:", addrs(m.from())),
        ("Date:", date),
        ("To:", addrs(m.to())),
        ("Subject:", m.subject().map(str::to_string)),
    ];
    for (label, value) in fields {
        if let Some(v) = value {
            // One line per field: control characters would break the block's layout.
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!("{label:<9}{v}\n"));
        }
    }
    out.push('\n');
    out
}

/// `Some(delsp)` for a `format=flowed` text part (RFC 3676 §4.1; `DelSp=yes`, §4.2).
fn flowed(part: &MessagePart<'_>) -> Option<bool> {
    let ct = part.content_type()?;
    let format = ct.attribute("format")?;
    if !format.trim().eq_ignore_ascii_case("flowed") {
        return None;
    }
    Some(
        ct.attribute("delsp")
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("yes")),
    )
}

/// Re-joins `format=flowed` text (RFC 3676 §4): a line ending in a space is continued by the
/// next line of the same quote depth (§4.2; with `DelSp=yes` that space is deleted, §4.2);
/// space-stuffing is undone (§4.4); quote marks are kept, one `>` per level and a space
/// (§4.5); the signature separator `-- ` is never flowed (§4.3).
pub fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The paragraph being joined and its quote depth.
    let mut para: Option<(usize, String)> = None;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let depth = line.chars().take_while(|&c| c == '>').count();
        let mut body = &line[depth..];
        // §4.4/§4.5: one space after the quote marks (or at the start) is stuffing.
        if let Some(b) = body.strip_prefix(' ') {
            body = b;
        }
        let is_sig = body == "-- ";
        let soft = !is_sig && body.ends_with(' ');
        let content = if soft && delsp {
            &body[..body.len() - 1]
        } else {
            body
        };
        match &mut para {
            Some((d, p)) if *d == depth => p.push_str(content),
            _ => {
                if let Some((d, p)) = para.take() {
                    // §4.2: a flowed line followed by one of another depth ends there.
                    push_line(&mut out, d, &p);
                }
                para = Some((depth, content.to_string()));
            }
        }
        if !soft && let Some((d, p)) = para.take() {
            push_line(&mut out, d, &p);
        }
    }
    if let Some((d, p)) = para.take() {
        push_line(&mut out, d, &p);
    }
    // The split gives one empty piece after a final line break: not a line of its own.
    let extra = if text.ends_with('\n') {
        out.ends_with("\n\n")
    } else {
        out.ends_with('\n')
    };
    if extra {
        out.pop();
    }
    out
}

fn push_line(out: &mut String, depth: usize, text: &str) {
    if depth > 0 {
        out.push_str(&">".repeat(depth));
        out.push(' ');
    }
    // A flowed line cut short by a change of depth keeps no trailing space; the signature
    // separator keeps its own.
    if text == "-- " {
        out.push_str(text);
    } else {
        out.push_str(text.trim_end_matches(' '));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            min_inline_image: 1000,
            limits: Limits::default(),
        }
    }

    fn b64(data: &[u8]) -> String {
        let s = base64::engine::general_purpose::STANDARD.encode(data);
        s.as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    fn mixed(parts: &[(&str, &str, &str)]) -> Vec<u8> {
        let mut m = String::from(
            "From: a@example.org\r\nTo: FAX=+12125550123@localhost\r\nSubject: t\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n",
        );
        for (headers, cte, body) in parts {
            m.push_str(&format!(
                "--B\r\n{headers}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n"
            ));
        }
        m.push_str("--B--\r\n");
        m.into_bytes()
    }

    #[test]
    fn sniffing_table() {
        let cases: &[(&[u8], Option<Kind>)] = &[
            (b"II*\0\x08\0\0\0", Some(Kind::Tiff)),
            (b"MM\0*\0\0\0\x08", Some(Kind::Tiff)),
            (b"%PDF-1.4\n", Some(Kind::Pdf)),
            (b"\r\n\r\n%PDF-1.7", Some(Kind::Pdf)),
            (
                b"\x89PNG\r\n\x1a\n\0\0",
                Some(Kind::Raster(RasterFormat::Png)),
            ),
            (b"\xff\xd8\xff\xe0", Some(Kind::Raster(RasterFormat::Jpeg))),
            (b"GIF89a..", Some(Kind::Raster(RasterFormat::Gif))),
            (
                b"RIFF\0\0\0\0WEBPVP8 ",
                Some(Kind::Raster(RasterFormat::Webp)),
            ),
            (b"P4\n8 8\n", Some(Kind::Raster(RasterFormat::Pnm))),
            (b"PK\x03\x04", None),
            (b"", None),
            (b"P", None),
        ];
        for (data, want) in cases {
            assert_eq!(sniff(data), *want, "{data:?}");
        }
    }

    #[test]
    fn base64_strict_check() {
        assert_eq!(check_base64(b"QUJD\r\nREVG\r\n"), Ok(6));
        assert_eq!(check_base64(b"QUI="), Ok(2));
        assert!(check_base64(b"QUJDR").unwrap_err().contains("truncated"));
        assert!(check_base64(b"QU*D").unwrap_err().contains("invalid"));
        assert!(check_base64(b"QU=D").is_err());
    }

    #[test]
    fn octet_stream_pdf_is_sniffed() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";
        let m = mixed(&[(
            "Content-Type: application/octet-stream; name=\"scan.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"scan.pdf\"",
            "base64",
            &b64(pdf),
        )]);
        let x = extract(&m, &policy()).unwrap();
        assert_eq!(x.parts.len(), 1);
        assert_eq!(x.parts[0].kind, Kind::Pdf);
        assert_eq!(x.parts[0].content, Content::Bytes(pdf.to_vec()));
        assert_eq!(x.parts[0].name.filename.as_deref(), Some("scan.pdf"));
    }

    #[test]
    fn truncated_base64_names_the_part() {
        let pdf = vec![b'%'; 0]
            .into_iter()
            .chain(b"%PDF-1.4\n".iter().copied())
            .chain(std::iter::repeat_n(b'x', 300))
            .collect::<Vec<u8>>();
        let mut enc = b64(&pdf);
        enc.truncate(enc.len() - 3);
        let m = mixed(&[
            ("Content-Type: text/plain", "7bit", "hello"),
            (
                "Content-Type: application/pdf; name=\"a.pdf\"",
                "base64",
                &enc,
            ),
        ]);
        let e = extract(&m, &policy()).unwrap_err();
        assert!(matches!(e, MimeError::BadEncoding { .. }), "{e:?}");
        let p = e.part().unwrap();
        assert_eq!(p.index, 2);
        assert_eq!(p.filename.as_deref(), Some("a.pdf"));
        assert!(e.to_string().contains("a.pdf"), "{e}");
    }

    #[test]
    fn invalid_base64_character_fails() {
        let m = mixed(&[(
            "Content-Type: image/png; name=\"x.png\"",
            "base64",
            "iVBORw0KGgo!AAAA",
        )]);
        assert!(matches!(
            extract(&m, &policy()),
            Err(MimeError::BadEncoding { .. })
        ));
    }

    #[test]
    fn policy_skips_vcard_signature_calendar_and_small_logo() {
        let png_small = b64(b"\x89PNG\r\n\x1a\nsmall");
        let m = mixed(&[
            ("Content-Type: text/plain; charset=utf-8", "7bit", "Body"),
            (
                "Content-Type: text/vcard; name=\"me.vcf\"",
                "7bit",
                "BEGIN:VCARD\r\nEND:VCARD",
            ),
            (
                "Content-Type: text/calendar; method=REQUEST",
                "7bit",
                "BEGIN:VCALENDAR\r\nEND:VCALENDAR",
            ),
            (
                "Content-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <logo>",
                "base64",
                &png_small,
            ),
            (
                "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"",
                "base64",
                "AAAA",
            ),
        ]);
        let x = extract(&m, &policy()).unwrap();
        assert_eq!(x.parts.len(), 1);
        assert_eq!(x.parts[0].content, Content::Text("Body".into()));
        let reasons: Vec<_> = x.skipped.iter().map(|s| s.reason).collect();
        assert_eq!(
            reasons,
            [
                SkipReason::VCard,
                SkipReason::Calendar,
                SkipReason::SignatureLogo,
                SkipReason::Signature
            ]
        );
        assert!(!x.has_attachment());
    }

    #[test]
    fn small_image_attached_explicitly_is_kept() {
        let m = mixed(&[(
            "Content-Type: image/png; name=\"tiny.png\"\r\n\
             Content-Disposition: attachment; filename=\"tiny.png\"",
            "base64",
            &b64(b"\x89PNG\r\n\x1a\nsmall"),
        )]);
        let x = extract(&m, &policy()).unwrap();
        assert_eq!(x.parts.len(), 1);
        assert_eq!(x.parts[0].kind, Kind::Raster(RasterFormat::Png));
    }

    #[test]
    fn html_only_when_no_plain_alternative() {
        let alt = |plain: bool| {
            let mut s = String::from(
                "From: a@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/alternative; boundary=\"A\"\r\n\r\n",
            );
            if plain {
                s.push_str("--A\r\nContent-Type: text/plain\r\n\r\nPlain words\r\n");
            }
            s.push_str(
                "--A\r\nContent-Type: text/html\r\n\r\n<html><body><p>Html words</p></body></html>\r\n--A--\r\n",
            );
            s.into_bytes()
        };
        let x = extract(&alt(true), &policy()).unwrap();
        assert_eq!(x.parts.len(), 1);
        assert_eq!(x.parts[0].content, Content::Text("Plain words".into()));
        assert_eq!(x.skipped[0].reason, SkipReason::Alternative);
        let x = extract(&alt(false), &policy()).unwrap();
        assert_eq!(x.parts.len(), 1);
        let Content::Text(t) = &x.parts[0].content else {
            panic!("not text")
        };
        assert!(t.contains("Html words") && !t.contains('<'), "{t:?}");
    }

    #[test]
    fn unsupported_type_is_named() {
        let m = mixed(&[(
            "Content-Type: application/msword; name=\"letter.doc\"",
            "base64",
            // Not a whole OLE2 signature: not taken as an office document (office.rs).
            &b64(&[0xD0, 0xCF, 0x11, 0xE0]),
        )]);
        let e = extract(&m, &policy()).unwrap_err();
        assert!(matches!(e, MimeError::Unsupported { .. }));
        assert!(e.to_string().contains("letter.doc"), "{e}");
        assert!(e.to_string().contains("Word document"), "{e}");
    }

    #[test]
    fn heic_is_unsupported_not_damaged() {
        let mut heic = vec![0, 0, 0, 24];
        heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        let m = mixed(&[(
            "Content-Type: image/heic; name=\"IMG_1.HEIC\"",
            "base64",
            &b64(&heic),
        )]);
        let e = extract(&m, &policy()).unwrap_err();
        assert!(matches!(e, MimeError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("HEIC"), "{e}");
    }

    #[test]
    fn image_that_is_not_an_image_fails() {
        let m = mixed(&[(
            "Content-Type: image/tiff; name=\"fax.tif\"",
            "base64",
            &b64(b"this is not a tiff at all"),
        )]);
        assert!(matches!(
            extract(&m, &policy()),
            Err(MimeError::NotWhatItSays { .. })
        ));
    }

    #[test]
    fn part_limit_and_depth_limit() {
        let mut parts = Vec::new();
        for _ in 0..10 {
            parts.push(("Content-Type: text/plain", "7bit", "x"));
        }
        let m = mixed(&parts);
        let tight = Policy {
            min_inline_image: 0,
            limits: Limits {
                max_parts: 5,
                ..Limits::default()
            },
        };
        assert_eq!(extract(&m, &tight), Err(MimeError::TooManyParts(5)));
        // 30 nested multiparts.
        let mut s = String::from("From: a@b\r\nMIME-Version: 1.0\r\n");
        for i in 0..30 {
            s.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
        }
        s.push_str("Content-Type: text/plain\r\n\r\nx\r\n");
        for i in (0..30).rev() {
            s.push_str(&format!("--b{i}--\r\n"));
        }
        let r = extract(s.as_bytes(), &policy());
        assert!(matches!(r, Err(MimeError::TooDeep(_))), "{r:?}");
    }

    #[test]
    fn unflow_cases() {
        let cases = [
            // §4.2: a trailing space continues the line; the space stays (DelSp=no).
            ("one \r\ntwo\r\nthree\r\n", false, "one two\nthree\n"),
            // DelSp=yes: the space is deleted (a word broken for a language without spaces).
            ("Lang \r\nwort\r\n", true, "Langwort\n"),
            // §4.4: space-stuffing undone.
            (
                "  indented\r\n From here\r\n",
                false,
                " indented\nFrom here\n",
            ),
            // §4.5: quote depth kept; a change of depth ends the paragraph.
            ("> a \r\n> b\r\n>> c \r\nd\r\n", false, "> a b\n>> c\nd\n"),
            // §4.3: the signature separator is not flowed.
            ("text\r\n-- \r\nsig\r\n", false, "text\n-- \nsig\n"),
            ("no final break", false, "no final break"),
        ];
        for (input, delsp, want) in cases {
            assert_eq!(unflow(input, delsp), want, "{input:?}");
        }
    }

    fn forward(inner: &str, disposition: &str) -> String {
        format!(
            "From: a@example.org\r\nSubject: fw\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"F\"\r\n\r\n\
             --F\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
             --F\r\nContent-Type: message/rfc822\r\nContent-Disposition: {disposition}\r\n\r\n\
             {inner}\r\n--F--\r\n"
        )
    }

    #[test]
    fn forwarded_message_block_text_then_attachments() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";
        let inner = format!(
            "From: Bo <bo@example.net>\r\nTo: a@example.org, c@example.org\r\n\
             Date: Mon, 30 Nov 2026\r\n 16:40:11 +0000\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"I\"\r\n\r\n\
             --I\r\nContent-Type: text/plain\r\n\r\nthe text\r\n\
             --I\r\nContent-Type: application/pdf; name=\"x.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--I--",
            b64(pdf)
        );
        for disposition in ["attachment", "inline"] {
            let x = extract(forward(&inner, disposition).as_bytes(), &policy()).unwrap();
            assert_eq!(x.parts.len(), 3, "{x:?}");
            assert_eq!(x.parts[0].content, Content::Text("see below".into()));
            assert_eq!(x.parts[0].role, Role::Body);
            let Content::Text(t) = &x.parts[1].content else {
                panic!("{x:?}")
            };
            assert_eq!(
                t,
                "---------- Forwarded message ----------\n\
                 From:    Bo <bo@example.net>\n\
                 Date:    Mon, 30 Nov 2026 16:40:11 +0000\n\
                 To:      a@example.org, c@example.org\n\
                 Subject: Grüße\n\nthe text\n"
            );
            assert_eq!(x.parts[1].role, Role::Attachment);
            assert_eq!(x.parts[1].name.declared, "message/rfc822");
            assert_eq!(x.parts[2].kind, Kind::Pdf);
            assert_eq!(x.parts[2].content, Content::Bytes(pdf.to_vec()));
            assert!(x.has_attachment());
        }
    }

    #[test]
    fn base64_forwarded_message_checks_its_own_parts() {
        // mail-parser parses an encoded message from its decoded octets: the strict base64
        // check of a part inside must look there, not in the outer message.
        let pdf = b"%PDF-1.4\n%%EOF\n";
        let inner = format!(
            "Subject: inner\r\nContent-Type: multipart/mixed; boundary=I\r\n\r\n\
             --I\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {}\r\n--I--\r\n",
            b64(pdf)
        );
        let m = mixed(&[(
            "Content-Type: message/rfc822",
            "base64",
            &b64(inner.as_bytes()),
        )]);
        let x = extract(&m, &policy()).unwrap();
        assert_eq!(x.parts.len(), 2, "{x:?}");
        assert_eq!(x.parts[1].content, Content::Bytes(pdf.to_vec()));
    }

    #[test]
    fn forwarded_nesting_is_bounded() {
        let mut inner = String::from("Subject: last\r\n\r\ninnermost\r\n");
        for i in 0..20 {
            inner = format!("Subject: level {i}\r\nContent-Type: message/rfc822\r\n\r\n{inner}");
        }
        let r = extract(inner.as_bytes(), &policy());
        assert_eq!(r, Err(MimeError::TooDeep(16)));
        // Within the limit: every level a block of its own, innermost text last.
        let mut inner = String::from("Subject: last\r\n\r\ninnermost\r\n");
        for i in 0..5 {
            inner = format!("Subject: level {i}\r\nContent-Type: message/rfc822\r\n\r\n{inner}");
        }
        let x = extract(inner.as_bytes(), &policy()).unwrap();
        assert_eq!(x.parts.len(), 5, "{x:?}");
        let Content::Text(t) = &x.parts[4].content else {
            panic!()
        };
        assert!(
            t.contains("Subject: last") && t.ends_with("innermost\n"),
            "{t}"
        );
    }

    #[test]
    fn html_cid_picture_in_place_once() {
        let png = {
            let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
            p.resize(2000, 0);
            p
        };
        let m = format!(
            "From: a@example.org\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/related; boundary=\"R\"\r\n\r\n\
             --R\r\nContent-Type: text/html\r\n\r\n\
             <p>before</p><img src=\"cid:pic@x\" alt=\"P\"><p>after</p>\r\n\
             --R\r\nContent-Type: image/png\r\nContent-ID: <pic@x>\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--R--\r\n",
            b64(&png)
        );
        let x = extract(m.as_bytes(), &policy()).unwrap();
        let roles: Vec<_> = x.parts.iter().map(|p| p.role).collect();
        assert_eq!(roles, [Role::Body, Role::Inline, Role::Body], "{x:?}");
        assert_eq!(x.parts[1].name.index, 2);
        assert!(!x.has_attachment());
        // The picture before the HTML that shows it (and shown twice): faxed once.
        let m = format!(
            "From: a@example.org\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/related; boundary=\"R\"\r\n\r\n\
             --R\r\nContent-Type: image/png\r\nContent-ID: <pic@x>\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
             --R\r\nContent-Type: text/html\r\n\r\n\
             <p>text</p><img src=\"cid:pic@x\"><img src=\"cid:pic@x\">\r\n--R--\r\n",
            b64(&png)
        );
        let x = extract(m.as_bytes(), &policy()).unwrap();
        let kinds: Vec<_> = x.parts.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Raster(RasterFormat::Png), Kind::Text],
            "{x:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn unflow_never_panics(s in "[ >a-z\\r\\n-]{0,200}", delsp in proptest::bool::ANY) {
            let _ = unflow(&s, delsp);
        }

        #[test]
        fn never_panics_on_any_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let _ = extract(&data, &policy());
        }

        #[test]
        fn never_panics_on_mangled_mime(cut in 0usize..600, flip in 0usize..600, byte in proptest::num::u8::ANY) {
            let mut m = mixed(&[
                ("Content-Type: text/plain; charset=iso-8859-1", "quoted-printable", "caf=E9"),
                ("Content-Type: application/pdf; name=\"a.pdf\"", "base64", &b64(b"%PDF-1.4 xx")),
            ]);
            if flip < m.len() { m[flip] = byte; }
            m.truncate(cut.max(1).min(m.len()));
            let _ = extract(&m, &policy());
        }
    }
}
