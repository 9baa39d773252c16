//! PURE: an offramp email (`message.eml`) → the fax pages to send, with the page header line
//! and the optional cover page; or the reason, in the sender's terms, why it cannot be faxed.
//!
//! This is the glue between [`crate::offramp::mime`] (which parts are faxed, in order) and
//! [`crate::image::render`] (each part to pages, the cover, the header). It is used twice per
//! message, as the offramp design asks (`offramp::jobs`): once when the message is split, to
//! prove every part renders and to count pages (RFC 3965 §3: one part that cannot be
//! processed fails the whole message), and again by the fax worker at send time, because the
//! header line carries the time of sending and "page n of m".
//!
//! No clock is read: the header's date and time come in as [`Stamp::when`].

use chrono::NaiveDateTime;

use crate::config::{BodyText, Config, Resolution as CfgResolution};
use crate::image::Page;
use crate::image::render::{self, ErrorKind, Fields, Kind, Options, RenderError, Template};
use crate::offramp::causes::Cause;
use crate::offramp::mime::{self, Content, MimeError, Role};
use crate::offramp::options::SenderOptions;

/// What the header and cover page show besides the message's own fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stamp {
    /// Time of sending (gateway local time); `None` leaves `{date}`/`{time}` empty.
    pub when: Option<NaiveDateTime>,
    /// Our station ID (TSI).
    pub station: String,
    /// The number dialled (E.164).
    pub recipient: String,
}

/// The rendering options for a message: `[offramp]` with the sender's resolution.
pub fn options(cfg: &Config, sender: &SenderOptions) -> Options {
    let mut o = Options::from_config(&cfg.offramp);
    o.resolution = match sender.resolution {
        CfgResolution::Standard => crate::image::Resolution::STANDARD,
        CfgResolution::Fine => crate::image::Resolution::FINE,
        CfgResolution::Superfine => crate::image::Resolution::SUPERFINE,
    };
    o
}

fn mime_cause(e: &MimeError) -> Cause {
    match e {
        MimeError::Unsupported { part, what } => Cause::UnsupportedAttachment {
            part: part.to_string(),
            what: what.clone(),
        },
        MimeError::BadEncoding { part, detail } => Cause::DamagedAttachment {
            part: part.to_string(),
            detail: detail.clone(),
        },
        MimeError::NotWhatItSays { part, declared_as } => Cause::DamagedAttachment {
            part: part.to_string(),
            detail: format!("the content is not a valid {declared_as}"),
        },
        other => Cause::DamagedAttachment {
            part: "the message".into(),
            detail: other.to_string(),
        },
    }
}

fn render_cause(e: &RenderError, max_pages: u32) -> Cause {
    match &e.kind {
        ErrorKind::TooManyPages { limit } => Cause::TooManyPages {
            pages: limit.saturating_add(1),
            max: max_pages,
        },
        ErrorKind::PdfTooManyPages { pages, limit } => Cause::TooManyPages {
            pages: u32::try_from(*pages).unwrap_or(u32::MAX),
            max: *limit,
        },
        ErrorKind::RendererFault => Cause::GatewayError {
            detail: format!("{}: {}", e.part, e.kind),
        },
        kind => Cause::DamagedAttachment {
            part: e.part.clone(),
            detail: kind.to_string(),
        },
    }
}

fn render_kind(k: mime::Kind) -> Kind {
    match k {
        mime::Kind::Tiff => Kind::Tiff,
        mime::Kind::Pdf => Kind::Pdf,
        mime::Kind::Raster(_) => Kind::Image,
        mime::Kind::Text => Kind::Text,
    }
}

/// Renders `raw` (the whole email) into the pages to fax: cover page (when the sender's
/// options ask for it), then the parts in message order (body text per
/// `offramp.body_text`), each page stamped with `offramp.header` (empty: no header line).
pub fn render(
    raw: &[u8],
    cfg: &Config,
    sender: &SenderOptions,
    stamp: &Stamp,
) -> Result<Vec<Page>, Cause> {
    let policy = mime::Policy::from_config(&cfg.offramp);
    let extracted = mime::extract(raw, &policy).map_err(|e| mime_cause(&e))?;
    let with_body = match cfg.offramp.body_text {
        BodyText::Include => true,
        BodyText::Omit => false,
        BodyText::IfNoAttachment => !extracted.has_attachment(),
    };
    let opts = options(cfg, sender);
    let mut rendered = Vec::new();
    let mut body_note = String::new();
    for part in &extracted.parts {
        if part.role == Role::Body && !with_body {
            continue;
        }
        let bytes: &[u8] = match &part.content {
            Content::Bytes(b) => b,
            Content::Text(t) => t.as_bytes(),
        };
        if part.role == Role::Body
            && let Content::Text(t) = &part.content
        {
            body_note.push_str(t);
        }
        let r = render::render_part(
            &part.name.to_string(),
            bytes,
            render_kind(part.kind),
            &opts,
            &mut render::Unlimited,
        )
        .map_err(|e| render_cause(&e, opts.limits.max_pages))?;
        rendered.push(r);
    }
    if rendered.is_empty() && !sender.cover_page {
        return Err(Cause::NothingToFax);
    }
    let headers = &extracted.headers;
    let fields = Fields {
        when: stamp.when,
        station: stamp.station.clone(),
        sender: if cfg.offramp.sender_name.is_empty() {
            headers.from.clone().unwrap_or_default()
        } else {
            cfg.offramp.sender_name.clone()
        },
        recipient: stamp.recipient.clone(),
        from: headers.from.clone().unwrap_or_default(),
        to: stamp.recipient.clone(),
        subject: sender.subject.clone(),
        note: if with_body { String::new() } else { body_note },
    };
    let gateway = |detail: String| Cause::GatewayError { detail };
    let cover_tpl = if sender.cover_page {
        Some(
            render::cover::template("")
                .map_err(|e| gateway(format!("cover page template: {e}")))?,
        )
    } else {
        None
    };
    let header_tpl: Option<Template> = if cfg.offramp.header.trim().is_empty() {
        None
    } else {
        Some(
            Template::parse(&cfg.offramp.header, render::header::HEADER_FIELDS)
                .map_err(|e| gateway(format!("offramp.header: {e}")))?,
        )
    };
    render::assemble(
        rendered,
        cover_tpl.as_ref().map(|t| (t, &fields)),
        header_tpl.as_ref().map(|t| (t, &fields)),
        &opts,
    )
    .map_err(|e| render_cause(&e, opts.limits.max_pages))
}

/// The page count of `raw` as it would be faxed: the check `offramp::jobs::split_message`
/// runs before any call is made.
pub fn check(raw: &[u8], cfg: &Config, sender: &SenderOptions) -> Result<u32, Cause> {
    let pages = render(raw, cfg, sender, &Stamp::default())?;
    Ok(u32::try_from(pages.len()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> SenderOptions {
        SenderOptions {
            resolution: CfgResolution::Fine,
            cover_page: false,
            subject: "hello".into(),
        }
    }

    fn mail(body: &str) -> Vec<u8> {
        format!(
            "From: Ann <ann@example.org>\r\nTo: FAX=+12125550123@localhost\r\nSubject: hello\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn plain_text_mail_becomes_a_page_with_a_header() {
        let cfg = Config::default();
        let pages = render(
            &mail("Please find the order below.\r\n\r\n12 boxes"),
            &cfg,
            &sender(),
            &Stamp {
                when: None,
                station: "+1 212 555 0100".into(),
                recipient: "+12125550123".into(),
            },
        )
        .unwrap();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].width(), 1728);
        // The header band holds ink (the header line), and so does the body below it.
        let band = render::header::band_rows(&render::Layout {
            res: pages[0].resolution(),
            paper: render::Paper::A4,
        });
        let inked =
            |from: u32, to: u32| (from..to).any(|y| pages[0].row(y).iter().any(|b| *b != 0));
        assert!(inked(0, band));
        assert!(inked(band, pages[0].height()));
    }

    #[test]
    fn empty_message_is_nothing_to_fax() {
        let cfg = Config::default();
        assert_eq!(
            check(&mail("   "), &cfg, &sender()),
            Err(Cause::NothingToFax)
        );
    }

    #[test]
    fn damaged_pdf_names_the_part() {
        let cfg = Config::default();
        let raw = b"From: a@b.c\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
            Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n--XX--\r\n";
        match check(raw, &cfg, &sender()) {
            Err(Cause::DamagedAttachment { part, .. }) => assert!(part.contains("a.pdf"), "{part}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cover_page_counts() {
        let cfg = Config::default();
        let mut s = sender();
        s.cover_page = true;
        assert_eq!(check(&mail("one page of text"), &cfg, &s), Ok(2));
    }
}
