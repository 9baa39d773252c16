//! PURE: the onramp email (RFC 3965 simple mode), built with mail-builder.
//!
//! This module owns the shape of a fax email: RFC 5322 headers (`Date`, `From`, `To`,
//! `Message-ID`, `Subject`, `MIME-Version`), a `multipart/mixed` body with the readable text
//! first and the fax as one attachment:
//!
//! - TIFF (RFC 3302): `image/tiff; application=faxbw` with a `.tif` file name. RFC 3302 §2:
//!   `application=faxbw` marks a Profile S/F (RFC 3949) black-and-white fax image and is a hint
//!   only. One document is one multi-page TIFF (RFC 3965 §4.1 / STANDARDS.md onramp 2).
//! - PDF: `application/pdf` with a `.pdf` file name (pages as CCITT G4, see
//!   [`crate::onramp::pdf`]).
//! - none: the notice alone (routes that keep the image off the mail system for privacy).
//!
//! The caller provides everything that varies (time, message id, rendered text), so the output
//! is a pure function of its inputs except for mail-builder's MIME boundary.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use thiserror::Error;

/// Largest attachment accepted for building (ours): far beyond any fax (100 fine pages of MH
/// are about 11 MB), well below what relays take after base64.
pub const MAX_ATTACHMENT_BYTES: usize = 64 * 1024 * 1024;

/// The fax file carried by the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// A TIFF-F file (Profile S, or F when the route asks), sent as `image/tiff;
    /// application=faxbw`.
    Tiff {
        /// File name; `.tif` is appended when missing.
        file_name: String,
        /// The file.
        bytes: Vec<u8>,
    },
    /// A PDF file, sent as `application/pdf`.
    Pdf {
        /// File name; `.pdf` is appended when missing.
        file_name: String,
        /// The file.
        bytes: Vec<u8>,
    },
}

/// Everything one fax email is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaxMail {
    /// `From:` as configured (`Name <addr>` or `addr`).
    pub from: String,
    /// `To:` recipients (`Name <addr>` or `addr`).
    pub to: Vec<String>,
    /// `Cc:` recipients (the admin copy on failures).
    pub cc: Vec<String>,
    /// Subject line (already one line: [`crate::mail::template::Target::Header`]).
    pub subject: String,
    /// Readable text.
    pub body: String,
    /// `Date:`, seconds since the Unix epoch.
    pub date: i64,
    /// `Message-ID:` without angle brackets, e.g. `<job>.<n>@<hostname>`.
    pub message_id: String,
    /// The fax, or `None` for a notice only.
    pub attachment: Option<Attachment>,
}

/// An HTML version of the readable text with pictures of the pages (inline `cid:` images,
/// RFC 2392), offered as an alternative to the text (RFC 2046 §5.1.4): clients that cannot show
/// a multi-page TIFF (webmail, phones) still show the fax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlBody {
    /// The HTML document (UTF-8); names each image as `cid:<its content_id>`.
    pub html: String,
    /// The images, in the order the HTML shows them.
    pub images: Vec<InlineImage>,
}

/// One inline picture of an [`HtmlBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// Content-ID without angle brackets (`left@right`).
    pub content_id: String,
    /// File name offered when saved (`page1.png`).
    pub file_name: String,
    /// The PNG file.
    pub png: Vec<u8>,
}

/// A message that cannot be built: every case is the caller's (configuration or code) fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// An address that is not `user@domain` or `Name <user@domain>`.
    #[error("`{0}` is not a mail address")]
    BadAddress(String),
    /// No recipient at all.
    #[error("a message needs at least one recipient")]
    NoRecipients,
    /// A Message-ID that is not `left@right` in printable ASCII.
    #[error("`{0}` is not a Message-ID (printable ASCII `left@right`)")]
    BadMessageId(String),
    /// The attachment is over [`MAX_ATTACHMENT_BYTES`].
    #[error("attachment of {0} bytes is over the {MAX_ATTACHMENT_BYTES}-byte limit")]
    TooLarge(usize),
    /// Writing into memory failed (mail-builder's `io::Result`).
    #[error("building the message: {0}")]
    Write(String),
}

/// Splits `Name <user@domain>` (or a bare address) into display name and address.
pub fn split_address(s: &str) -> Result<(Option<String>, String), MessageError> {
    let bad = || MessageError::BadAddress(s.chars().take(200).collect());
    if !crate::config::is_address(s) {
        return Err(bad());
    }
    let s = s.trim();
    match s.rfind('<') {
        Some(i) if s.ends_with('>') => {
            let name = s[..i].trim().trim_matches('"').trim();
            let addr = s[i + 1..s.len() - 1].trim().to_owned();
            Ok(((!name.is_empty()).then(|| name.to_owned()), addr))
        }
        _ => Ok((None, s.to_owned())),
    }
}

/// The bare address of `Name <user@domain>` (for SMTP envelopes).
pub fn bare_address(s: &str) -> Result<String, MessageError> {
    split_address(s).map(|(_, a)| a)
}

fn address(s: &str) -> Result<Address<'static>, MessageError> {
    let (name, addr) = split_address(s)?;
    Ok(Address::new_address(name, addr))
}

fn with_ext(name: &str, ext: &str) -> String {
    // File names travel in a header: keep them to safe printable characters.
    let mut n: String = name
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '/' | '\\' | '"'))
        .take(100)
        .collect();
    if n.trim().is_empty() {
        n = "fax".into();
    }
    if !n.to_ascii_lowercase().ends_with(ext) {
        n.push_str(ext);
    }
    n
}

/// Builds the email as RFC 5322 bytes with CRLF line ends.
pub fn build(m: &FaxMail) -> Result<Vec<u8>, MessageError> {
    build_with_html(m, None)
}

/// [`build`], with an HTML alternative of the text when `html` is given: the readable part
/// becomes `multipart/alternative` [text/plain, `multipart/related; type="text/html"`
/// (RFC 2387 §3.1) [text/html, image/png…]], the fax file stays the `multipart/mixed`
/// attachment beside it, unchanged. RFC 3965 (simple mode) asks for a MIME message carrying the fax as
/// one multi-page TIFF; the alternative adds a rendering of the text part, and a simple-mode
/// receiver that shows only text picks the plain text alternative (RFC 2046 §5.1.4).
pub fn build_with_html(m: &FaxMail, html: Option<&HtmlBody>) -> Result<Vec<u8>, MessageError> {
    if m.to.is_empty() {
        return Err(MessageError::NoRecipients);
    }
    let id_ok = m
        .message_id
        .split_once('@')
        .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty() && !r.contains('@'))
        && m.message_id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    if !id_ok {
        return Err(MessageError::BadMessageId(
            m.message_id.chars().take(200).collect(),
        ));
    }
    let to: Vec<Address<'static>> = m.to.iter().map(|a| address(a)).collect::<Result<_, _>>()?;
    let cc: Vec<Address<'static>> = m.cc.iter().map(|a| address(a)).collect::<Result<_, _>>()?;
    let mut b = MessageBuilder::new()
        .from(address(&m.from)?)
        .to(Address::new_list(to))
        .subject(m.subject.clone())
        .date(m.date)
        .message_id(m.message_id.clone())
        // RFC 3834 §5: machine-generated, so auto-responders do not answer it.
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        );
    if !cc.is_empty() {
        b = b.cc(Address::new_list(cc));
    }
    let mut text = MimePart::new("text/plain", m.body.clone());
    if let Some(h) = html {
        for i in &h.images {
            if i.png.len() > MAX_ATTACHMENT_BYTES {
                return Err(MessageError::TooLarge(i.png.len()));
            }
        }
        let mut related = vec![MimePart::new("text/html", h.html.clone())];
        related.extend(h.images.iter().map(|i| {
            MimePart::new(
                ContentType::new("image/png").attribute("name", i.file_name.clone()),
                i.png.clone(),
            )
            .inline()
            .cid(i.content_id.clone())
        }));
        let related = MimePart::new(
            ContentType::new("multipart/related").attribute("type", "text/html"),
            related,
        );
        text = MimePart::new("multipart/alternative", vec![text, related]);
    }
    let body = match &m.attachment {
        None => text,
        Some(a) => {
            let (ct, name, bytes) = match a {
                Attachment::Tiff { file_name, bytes } => {
                    let name = with_ext(file_name, ".tif");
                    (
                        // RFC 3302 §2: application=faxbw for Profile S/F images.
                        ContentType::new("image/tiff")
                            .attribute("application", "faxbw")
                            .attribute("name", name.clone()),
                        name,
                        bytes,
                    )
                }
                Attachment::Pdf { file_name, bytes } => {
                    let name = with_ext(file_name, ".pdf");
                    (
                        ContentType::new("application/pdf").attribute("name", name.clone()),
                        name,
                        bytes,
                    )
                }
            };
            if bytes.len() > MAX_ATTACHMENT_BYTES {
                return Err(MessageError::TooLarge(bytes.len()));
            }
            let part = MimePart::new(ct, bytes.clone()).attachment(name);
            MimePart::new("multipart/mixed", vec![text, part])
        }
    };
    b = b.body(body);
    b.write_to_vec()
        .map_err(|e| MessageError::Write(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;

    fn mail(att: Option<Attachment>) -> FaxMail {
        FaxMail {
            from: "Fax Gateway <fax-gateway@example.com>".into(),
            to: vec!["Sales <sales@example.com>".into(), "ops@example.com".into()],
            cc: vec![],
            subject: "Fax from +1 212 555 0123 (2 pages)".into(),
            body: "A fax was received.\nPages: 2\n".into(),
            date: 1_796_000_000,
            message_id: "0000abcd.1@gw.example.com".into(),
            attachment: att,
        }
    }

    #[test]
    fn tiff_message_parses_back() {
        let tif = b"II*\0\x08\0\0\0fake-tiff-bytes\x00\xff\x80".to_vec();
        let raw = build(&mail(Some(Attachment::Tiff {
            file_name: "fax-0000abcd".into(),
            bytes: tif.clone(),
        })))
        .unwrap();
        let s = String::from_utf8_lossy(&raw);
        assert!(
            s.contains("Date: Mon, 30 Nov 2026 00:53:20 +0000\r\n"),
            "{s}"
        );
        assert!(
            s.contains("Message-ID: <0000abcd.1@gw.example.com>\r\n"),
            "{s}"
        );
        assert!(s.contains("MIME-Version: 1.0\r\n"));
        assert!(s.contains("Auto-Submitted: auto-generated\r\n"));
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("Fax from +1 212 555 0123 (2 pages)"));
        assert_eq!(
            m.from().unwrap().first().unwrap().address(),
            Some("fax-gateway@example.com")
        );
        let to: Vec<_> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
        assert_eq!(to, ["sales@example.com", "ops@example.com"]);
        assert_eq!(m.attachment_count(), 1);
        let a = m.attachment(0).unwrap();
        let ct = a.content_type().unwrap();
        assert_eq!(ct.ctype(), "image");
        assert_eq!(ct.subtype(), Some("tiff"));
        assert_eq!(ct.attribute("application"), Some("faxbw"));
        assert_eq!(a.attachment_name(), Some("fax-0000abcd.tif"));
        assert_eq!(a.contents(), &tif[..]);
        assert_eq!(
            m.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
            "A fax was received.\nPages: 2"
        );
        // SMTP needs CRLF line ends throughout (RFC 5321 §2.3.8).
        assert!(
            raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r') && raw[0] != b'\n',
            "bare LF in message"
        );
    }

    #[test]
    fn pdf_and_notice_only() {
        let raw = build(&mail(Some(Attachment::Pdf {
            file_name: "fax.PDF".into(),
            bytes: b"%PDF-1.4 x".to_vec(),
        })))
        .unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let a = m.attachment(0).unwrap();
        assert_eq!(a.content_type().unwrap().subtype(), Some("pdf"));
        assert_eq!(a.attachment_name(), Some("fax.PDF"));

        let mut n = mail(None);
        n.cc = vec!["postmaster@example.com".into()];
        let raw = build(&n).unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.attachment_count(), 0);
        assert_eq!(
            m.cc().unwrap().first().unwrap().address(),
            Some("postmaster@example.com")
        );
    }

    proptest::proptest! {
        /// Whatever text ends up in subject and body (values from the far end included), the
        /// message builds, parses back, and has no header the text did not ask for.
        #[test]
        fn any_text_builds_and_parses(subject in "\\PC{0,200}", body in "(\\PC|\n){0,400}") {
            let mut m = mail(None);
            m.subject = subject;
            m.body = body;
            let raw = build(&m).unwrap();
            let p = mail_parser::MessageParser::default().parse(&raw).unwrap();
            proptest::prop_assert!(p.header("Bcc").is_none());
            proptest::prop_assert_eq!(p.to().unwrap().iter().count(), 2);
        }
    }

    #[test]
    fn refuses_bad_inputs() {
        let mut m = mail(None);
        m.to.clear();
        assert_eq!(build(&m).unwrap_err(), MessageError::NoRecipients);
        let mut m = mail(None);
        m.to = vec!["not an address".into()];
        assert!(matches!(build(&m), Err(MessageError::BadAddress(_))));
        let mut m = mail(None);
        m.message_id = "x>\r\nBcc: a@b".into();
        assert!(matches!(build(&m), Err(MessageError::BadMessageId(_))));
        assert_eq!(
            split_address("\"Fax\" <f@x.example>").unwrap(),
            (Some("Fax".into()), "f@x.example".into())
        );
        assert_eq!(bare_address("f@x.example").unwrap(), "f@x.example");
    }
}
