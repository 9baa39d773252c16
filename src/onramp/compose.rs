//! PURE: from one received fax to the emails that carry it.
//!
//! This module owns the decisions between a reception and its mail: which route applies
//! ([`super::route`]), who gets it (the route's recipients, plus `gateway.admin` as `Cc` when
//! the route asks for an admin copy of failed or partial receptions), in which form (Profile S
//! TIFF, Profile F MMR TIFF, G4 PDF, or a notice only), with which subject and body
//! ([`super::template`]), under which Message-ID and envelope.
//!
//! Everything that varies is an input — the pages, the original file, the time, the job id —
//! so that processing the same fax twice (after a crash) yields the same Message-ID and the
//! same child job numbers, and duplicates are caught by the spool.

use thiserror::Error;

use super::pdf::{self, G4Page, PdfError};
use super::route::RouteTable;
use super::{Completion, Reception};
use crate::config::{AttachFormat, Route};
use crate::delivery::mail_out::{MailOutData, Purpose};
use crate::delivery::message::{self, Attachment, FaxMail, HtmlBody, InlineImage, MessageError};
use crate::image::Page;
use crate::image::codec::{Coding, EncodeOptions, Encoder};
use crate::image::tiff::{Limits, Profile, Reader, TiffError, Writer};
use crate::job::MailEnvelope;
use crate::mail::template::{Target, Template, TemplateError};

/// The settings composing needs (from `[gateway]` and `[onramp]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `onramp.from`.
    pub from: String,
    /// `gateway.admin`.
    pub admin: String,
    /// `gateway.hostname` (Message-ID right-hand side).
    pub hostname: String,
    /// `onramp.subject`, parsed.
    pub subject: Template,
    /// `onramp.body`, parsed.
    pub body: Template,
    /// `onramp.html_previews`: pages shown as pictures in the HTML alternative; 0: none.
    pub html_previews: u32,
}

impl Settings {
    /// From a configuration; a template error names its key.
    pub fn from_config(c: &crate::config::Config) -> Result<Settings, ComposeError> {
        let t = |key: &'static str, src: &str| {
            Template::parse(src).map_err(|e| ComposeError::Template {
                key: key.into(),
                error: e,
            })
        };
        Ok(Settings {
            from: c.onramp.from.clone(),
            admin: c.gateway.admin.clone(),
            hostname: c.gateway.hostname.clone(),
            subject: t("onramp.subject", &c.onramp.subject)?,
            body: t("onramp.body", &c.onramp.body)?,
            html_previews: c.onramp.html_previews,
        })
    }
}

/// One email ready to be queued as a `MailOut` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The route that chose it.
    pub route: String,
    /// Envelope and purpose (the `MailOut` record data).
    pub data: MailOutData,
    /// The message.
    pub message: Vec<u8>,
}

/// Why a fax could not be turned into mail.
#[derive(Debug, Error)]
pub enum ComposeError {
    /// A template in the configuration does not parse (the operator's fault; config check
    /// reports it at start-up).
    #[error("template `{key}`: {error}")]
    Template {
        /// The config key.
        key: String,
        /// What is wrong.
        error: TemplateError,
    },
    /// The message could not be built (a bad address in the configuration).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The pages could not be written as the route's format.
    #[error("writing the attachment: {0}")]
    Tiff(#[from] TiffError),
    /// The PDF could not be written.
    #[error(transparent)]
    Pdf(#[from] PdfError),
}

/// What the fax consists of: decoded pages, or, when decoding failed, the original file and
/// why (it is still delivered — a fax is never dropped — with the problem stated in the body).
#[derive(Debug, Clone, Copy)]
pub enum Pages<'a> {
    /// The decoded pages and the original TIFF.
    Decoded {
        /// Pages in order.
        pages: &'a [Page],
        /// The TIFF as stored; attached unchanged when it already is what the route asks for.
        original: &'a [u8],
        /// The original passed the route's profile check.
        original_is_profile_s: bool,
    },
    /// The TIFF as stored, already found to decode; its pages are decoded again one at a time
    /// when they must be re-coded, so a fax of any length is mailed in flat memory.
    Stored {
        /// The TIFF as stored.
        original: &'a [u8],
        /// The original passed the route's profile check.
        original_is_profile_s: bool,
    },
    /// The file could not be decoded; attached as it is.
    Undecodable {
        /// The file.
        original: &'a [u8],
        /// The decoder's complaint.
        error: &'a str,
    },
}

/// Calls `f` with each page in order: from memory, or decoded one at a time from the stored
/// TIFF (one page in memory however long the fax).
fn each_page(
    pages: &Pages<'_>,
    f: &mut dyn FnMut(&Page) -> Result<(), ComposeError>,
) -> Result<(), ComposeError> {
    match pages {
        Pages::Decoded { pages, .. } => pages.iter().try_for_each(f),
        Pages::Stored { original, .. } => {
            let mut r = Reader::new(std::io::Cursor::new(*original), Limits::default())?;
            while let Some(p) = r.next_page()? {
                f(&p)?;
            }
            Ok(())
        }
        Pages::Undecodable { .. } => Ok(()),
    }
}

/// Writes `pages` as a TIFF-F of `profile`. Pages Profile S cannot hold (superfine, other
/// widths) are resampled to fine; for widths other than 1728 the caller falls back to F.
pub fn write_tiff(pages: &[Page], profile: Profile) -> Result<Vec<u8>, TiffError> {
    let all = Pages::Decoded {
        pages,
        original: &[],
        original_is_profile_s: false,
    };
    tiff_of(&all, profile).map_err(|e| match e {
        ComposeError::Tiff(t) => t,
        other => TiffError::Profile(other.to_string()),
    })
}

/// [`write_tiff`] over pages from memory or decoded one at a time.
fn tiff_of(pages: &Pages<'_>, profile: Profile) -> Result<Vec<u8>, ComposeError> {
    let mut w = Writer::new(std::io::Cursor::new(Vec::new()), profile)?;
    each_page(pages, &mut |p| {
        let y = p.resolution().y_dpi;
        // RFC 3949 §3: Profile S takes 98/100/196/200 lpi only; superfine goes to fine.
        if profile == Profile::S && y > 250.0 {
            w.write_page(&crate::image::resample(p, 196.0))?;
        } else {
            w.write_page(p)?;
        }
        Ok(())
    })?;
    Ok(w.finish()?.into_inner())
}

/// Codes `pages` as T.6 and wraps them in a PDF.
pub fn write_g4_pdf(pages: &[Page]) -> Result<Vec<u8>, ComposeError> {
    g4_pdf_of(&Pages::Decoded {
        pages,
        original: &[],
        original_is_profile_s: false,
    })
}

/// A stored fax TIFF (a `FaxIn` job's pages) as the PDF the onramp would attach: each page
/// decoded one at a time and coded as T.6, so only the coded pages are held (the console's
/// download of a received fax).
pub fn pdf_of_stored(tiff: &[u8]) -> Result<Vec<u8>, ComposeError> {
    g4_pdf_of(&Pages::Stored {
        original: tiff,
        original_is_profile_s: false,
    })
}

/// [`write_g4_pdf`] over pages from memory or decoded one at a time (only the coded pages are
/// kept).
fn g4_pdf_of(pages: &Pages<'_>) -> Result<Vec<u8>, ComposeError> {
    let mut g4 = Vec::new();
    each_page(pages, &mut |p| {
        let mut opts = EncodeOptions::new(Coding::Mmr);
        opts.end_marker = true;
        let mut enc = Encoder::new(p.width(), opts).map_err(|e| {
            ComposeError::Tiff(TiffError::Profile(format!("cannot code page: {e}")))
        })?;
        let mut out = Vec::new();
        for row in p.rows() {
            enc.encode_row(row, &mut out).map_err(|e| {
                ComposeError::Tiff(TiffError::Profile(format!("cannot code page: {e}")))
            })?;
        }
        enc.finish(&mut out);
        let r = p.resolution();
        g4.push(G4Page {
            width: p.width(),
            height: p.height(),
            x_dpi: r.x_dpi,
            y_dpi: r.y_dpi,
            mmr: out,
        });
        Ok(())
    })?;
    Ok(pdf::write_pdf(&g4)?)
}

fn attachment(
    route: &Route,
    pages: &Pages<'_>,
    base_name: &str,
) -> Result<Option<Attachment>, ComposeError> {
    let tiff = |bytes| Attachment::Tiff {
        file_name: base_name.to_owned(),
        bytes,
    };
    let (original, is_s) = match pages {
        Pages::Decoded {
            original,
            original_is_profile_s,
            ..
        }
        | Pages::Stored {
            original,
            original_is_profile_s,
        } => (*original, *original_is_profile_s),
        Pages::Undecodable { original, .. } => (*original, false),
    };
    Ok(match (route.format, pages) {
        (AttachFormat::None, _) => None,
        // Undecodable: the original travels as it is, whatever the route asked for.
        (_, Pages::Undecodable { original, .. }) => Some(tiff(original.to_vec())),
        (AttachFormat::Tiff, _) if is_s => Some(tiff(original.to_vec())),
        (AttachFormat::Tiff, _) => match tiff_of(pages, Profile::S) {
            Ok(b) => Some(tiff(b)),
            // Not 1728 wide (B4/A3 fax): Profile S cannot carry it; F with MH is the closest
            // a T.37 recipient reads (RFC 3949 §4).
            Err(ComposeError::Tiff(TiffError::Profile(_))) => {
                Some(tiff(tiff_of(pages, Profile::F(Coding::Mh))?))
            }
            Err(e) => return Err(e),
        },
        (AttachFormat::TiffMmr, _) => Some(tiff(tiff_of(pages, Profile::F(Coding::Mmr))?)),
        (AttachFormat::Pdf, _) => Some(Attachment::Pdf {
            file_name: base_name.to_owned(),
            bytes: g4_pdf_of(pages)?,
        }),
    })
}

/// Width of a page preview in the HTML alternative, pixels: a phone screen's width in CSS
/// pixels at about 1.5× (the HTML shows it at most 100 % wide, so it never needs sideways
/// scrolling), a 1728-pel fax line scaled by about 1/2.9 — body text stays legible.
pub const PREVIEW_WIDTH: u32 = 600;

/// Most previews whatever `onramp.html_previews` says (the configuration refuses more).
pub const MAX_PREVIEWS: u32 = crate::config::MAX_HTML_PREVIEWS;

/// Grey levels a preview keeps: black, two greys (thin strokes averaged by the scaling),
/// white. Four values instead of 256 make the PNG's rows repeat, so it compresses to a few
/// tens of kB per page.
const PREVIEW_LEVELS: u8 = 4;

/// The first `n` pages as PNG pictures [`PREVIEW_WIDTH`] wide (page proportions kept), or
/// fewer when a page cannot be read (previews are an extra: the attachment carries the fax).
fn previews(pages: &Pages<'_>, n: u32) -> Vec<(Vec<u8>, u32, u32)> {
    let n = n.min(MAX_PREVIEWS) as usize;
    let mut out = Vec::new();
    let add = |p: &Page| {
        let mut g = crate::image::preview::scale_grey(p, PREVIEW_WIDTH);
        let step = 255 / u16::from(PREVIEW_LEVELS - 1);
        for v in &mut g.pixels {
            *v = (((u16::from(*v) + step / 2) / step) * step).min(255) as u8;
        }
        crate::image::preview::png(&g)
            .map(|png| (png, g.width, g.height))
            .ok()
    };
    match pages {
        Pages::Decoded { pages, .. } => {
            for p in pages.iter().take(n) {
                match add(p) {
                    Some(x) => out.push(x),
                    None => break,
                }
            }
        }
        Pages::Stored { original, .. } => {
            let Ok(mut r) = Reader::new(std::io::Cursor::new(*original), Limits::default()) else {
                return out;
            };
            while out.len() < n {
                let Ok(Some(p)) = r.next_page() else { break };
                match add(&p) {
                    Some(x) => out.push(x),
                    None => break,
                }
            }
        }
        Pages::Undecodable { .. } => {}
    }
    out
}

/// The HTML alternative: the pages as pictures, then the same facts as the text part.
fn html_body(
    subject: &str,
    body: &str,
    pics: Vec<(Vec<u8>, u32, u32)>,
    total: u32,
    job: &str,
    host: &str,
) -> HtmlBody {
    // Content-IDs are `left@right` in printable ASCII (RFC 2392, RFC 5322 msg-id).
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect()
    };
    let (job_id, host) = (clean(job), clean(host));
    let host = if host.is_empty() {
        "faxgate".into()
    } else {
        host
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title></head>\n<body style=\"font-family:sans-serif;margin:8px\">\n",
        crate::mail::html_text(subject)
    );
    let shown = pics.len() as u32;
    let mut images = Vec::with_capacity(pics.len());
    for (i, (png, w, h)) in pics.into_iter().enumerate() {
        let n = i + 1;
        let content_id = format!("page{n}.{job_id}@{host}");
        html.push_str(&format!(
            "<p style=\"margin:12px 0 4px\">Page {n} of {total}</p>\n\
             <img src=\"cid:{content_id}\" width=\"{w}\" height=\"{h}\" alt=\"Page {n} of the fax\" \
             style=\"max-width:100%;height:auto;border:1px solid #999\">\n"
        ));
        images.push(InlineImage {
            content_id,
            file_name: format!("page{n}.png"),
            png,
        });
    }
    if shown < total {
        html.push_str(&format!(
            "<p>Pages {} to {total} are in the attached file.</p>\n",
            shown + 1
        ));
    }
    html.push_str(&format!(
        "<pre style=\"white-space:pre-wrap\">{}</pre>\n</body></html>\n",
        crate::mail::html_text(body)
    ));
    HtmlBody { html, images }
}

/// The email for reception `r` of fax job `job` (its id, used in file names, Message-IDs and
/// ENVIDs). `recipients`, when given (inbox sidecar, `submit --to`), replace the route's.
pub fn compose(
    settings: &Settings,
    routes: &RouteTable,
    r: &Reception,
    pages: &Pages<'_>,
    job: &str,
    recipients: Option<&[String]>,
) -> Result<Outgoing, ComposeError> {
    let route = routes.route(&r.route_keys());
    let parse = |key: String, src: &str, default: &Template| -> Result<Template, ComposeError> {
        if src.is_empty() {
            Ok(default.clone())
        } else {
            Template::parse(src).map_err(|error| ComposeError::Template { key, error })
        }
    };
    let subject = parse(
        format!("route `{}` subject", route.name),
        &route.subject,
        &settings.subject,
    )?
    .render(r, Target::Header);
    let mut body = parse(
        format!("route `{}` body", route.name),
        &route.body,
        &settings.body,
    )?
    .render(r, Target::Body);
    if let Pages::Undecodable { error, .. } = pages {
        body.push_str(&format!(
            "\nNote: the fax image could not be decoded ({error}); it is attached as received.\n"
        ));
    }

    let to: Vec<String> = match recipients {
        Some(list) if !list.is_empty() => list.to_vec(),
        _ => route.to.clone(),
    };
    let admin_copy = (route.admin_copy_on_failure && r.completion.is_failure())
        || matches!(pages, Pages::Undecodable { .. });
    let cc: Vec<String> = if admin_copy && !to.contains(&settings.admin) {
        vec![settings.admin.clone()]
    } else {
        Vec::new()
    };
    let mut env_to = Vec::new();
    for a in to.iter().chain(&cc) {
        env_to.push(message::bare_address(a)?);
    }
    let received = match r.completion {
        Completion::Complete => "",
        _ => "-partial",
    };
    let base_name = format!("fax-{job}{received}");
    let attachment = attachment(route, pages, &base_name)?;
    // Pictures only where the fax itself travels in the mail: a notice-only route keeps the
    // image off the mail system, and an undecodable file has no pages to show.
    let pics = if attachment.is_some() && settings.html_previews > 0 {
        previews(pages, settings.html_previews)
    } else {
        Vec::new()
    };
    let html = (!pics.is_empty())
        .then(|| html_body(&subject, &body, pics, r.pages, job, &settings.hostname));
    let mail = FaxMail {
        from: settings.from.clone(),
        to,
        cc,
        subject: subject.clone(),
        body,
        date: r.received,
        message_id: format!("{job}.1@{}", settings.hostname),
        attachment,
    };
    let bytes = message::build_with_html(&mail, html.as_ref())?;
    Ok(Outgoing {
        route: route.name.clone(),
        data: MailOutData {
            envelope: MailEnvelope {
                from: message::bare_address(&settings.from)?,
                to: env_to,
                envid: Some(job.to_owned()),
            },
            purpose: Purpose::Fax {
                fax_job: job.parse().ok(),
            },
            subject,
            file: crate::delivery::mail_out::MESSAGE_FILE.into(),
        },
        message: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::image::Resolution;
    use crate::onramp::Source;
    use mail_parser::MimeHeaders;

    fn setup(format: AttachFormat, admin_copy: bool) -> (Settings, RouteTable) {
        let mut c = Config::default();
        c.gateway.hostname = "gw.example.com".into();
        c.gateway.admin = "Postmaster <postmaster@example.com>".into();
        let mut r = Route::default_route();
        r.to = vec!["fax@example.com".into()];
        r.format = format;
        r.admin_copy_on_failure = admin_copy;
        r.body = "{pages} pages, {cause}".into();
        (
            Settings::from_config(&c).unwrap(),
            RouteTable::new(&[r]).unwrap(),
        )
    }

    fn reception(completion: Completion) -> Reception {
        Reception {
            source: Source::Modem,
            line: Some("line1".into()),
            did: None,
            caller: None,
            remote_id: Some("+1 212 555 0123".into()),
            subaddress: None,
            pages: 2,
            duration_secs: 61,
            speed: Some(9600),
            resolution: Some((204, 98)),
            bad_lines: 0,
            received: 1_796_000_000,
            completion,
        }
    }

    fn two_pages() -> Vec<Page> {
        (0..2)
            .map(|k| {
                let mut p = Page::new(1728, 50, Resolution::STANDARD).unwrap();
                for y in 0..50 {
                    for x in (k * 3..1728).step_by(7 + y as usize % 5) {
                        p.set(x as u32, y, true);
                    }
                }
                p
            })
            .collect()
    }

    fn parse(bytes: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(bytes).unwrap()
    }

    /// The fax file: the one attachment that is not an inline page preview.
    fn fax_file<'a>(m: &'a mail_parser::Message<'a>) -> &'a mail_parser::MessagePart<'a> {
        let files: Vec<_> = m
            .attachments()
            .filter(|a| a.content_type().is_none_or(|c| c.subtype() != Some("png")))
            .collect();
        assert_eq!(files.len(), 1);
        files[0]
    }

    /// The stored TIFF decoded one page at a time gives the same attachment, in every format,
    /// as the pages held in memory.
    #[test]
    fn stored_pages_read_one_at_a_time_make_the_same_attachment() {
        let pages = two_pages();
        let orig = write_tiff(&pages, Profile::F(Coding::Mmr)).unwrap();
        for format in [AttachFormat::Tiff, AttachFormat::TiffMmr, AttachFormat::Pdf] {
            let (_, t) = setup(format, false);
            let route = t.route(&reception(Completion::Complete).route_keys());
            let held = Pages::Decoded {
                pages: &pages,
                original: &orig,
                original_is_profile_s: false,
            };
            let stored = Pages::Stored {
                original: &orig,
                original_is_profile_s: false,
            };
            let a = attachment(route, &held, "fax").unwrap();
            let b = attachment(route, &stored, "fax").unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{format:?}");
            assert!(a.is_some());
        }
    }

    #[test]
    fn partial_reception_copies_admin_and_mmr_is_profile_f() {
        let (s, t) = setup(AttachFormat::TiffMmr, true);
        let pages = two_pages();
        let orig = write_tiff(&pages, Profile::S).unwrap();
        let r = reception(Completion::Partial {
            cause: "line failed on page 3".into(),
        });
        let p = Pages::Decoded {
            pages: &pages,
            original: &orig,
            original_is_profile_s: true,
        };
        let o = compose(&s, &t, &r, &p, "6b0b5a000000000000aa", None).unwrap();
        assert_eq!(
            o.data.envelope.to,
            vec!["fax@example.com", "postmaster@example.com"]
        );
        assert_eq!(o.data.envelope.from, "fax-gateway@localhost");
        assert_eq!(
            o.data.envelope.envid.as_deref(),
            Some("6b0b5a000000000000aa")
        );
        let m = parse(&o.message);
        assert_eq!(
            m.cc().unwrap().first().unwrap().address(),
            Some("postmaster@example.com")
        );
        assert_eq!(
            m.message_id(),
            Some("6b0b5a000000000000aa.1@gw.example.com")
        );
        assert_eq!(
            m.body_text(0).unwrap().trim_end(),
            "2 pages, partial reception: line failed on page 3"
        );
        let a = fax_file(&m);
        assert_eq!(
            a.attachment_name(),
            Some("fax-6b0b5a000000000000aa-partial.tif")
        );
        let tif = a.contents();
        assert!(crate::image::tiff::check(tif, Profile::F(Coding::Mmr)).is_empty());
        assert!(
            !crate::image::tiff::check(tif, Profile::S).is_empty(),
            "MMR is not S"
        );
        assert_eq!(
            crate::image::tiff::read_bytes(tif, crate::image::tiff::Limits::default()).unwrap(),
            pages
        );
    }

    #[test]
    fn complete_reception_no_admin_copy_explicit_recipients() {
        let (s, t) = setup(AttachFormat::Tiff, true);
        let pages = two_pages();
        let orig = write_tiff(&pages, Profile::S).unwrap();
        let p = Pages::Decoded {
            pages: &pages,
            original: &orig,
            original_is_profile_s: true,
        };
        let to = vec!["Boss <boss@example.com>".to_string()];
        let o = compose(&s, &t, &reception(Completion::Complete), &p, "j", Some(&to));
        // "j@…" is a fine Message-ID left part; the job id is the spool's in real use.
        let o = o.unwrap();
        assert_eq!(o.data.envelope.to, vec!["boss@example.com"]);
        let m = parse(&o.message);
        assert!(m.cc().is_none());
        // Already Profile S: attached byte for byte.
        assert_eq!(fax_file(&m).contents(), &orig[..]);
        // The HTML version shows both pages.
        let html = m.body_html(0).unwrap();
        assert!(html.contains("Page 2 of 2"), "{html}");
        let pngs = m
            .attachments()
            .filter(|a| a.content_type().is_some_and(|c| c.subtype() == Some("png")))
            .count();
        assert_eq!(pngs, 2);
    }

    #[test]
    fn undecodable_fax_is_still_mailed_with_admin_copy() {
        let (s, t) = setup(AttachFormat::Pdf, false);
        let junk = b"II*\0not really a tiff".to_vec();
        let p = Pages::Undecodable {
            original: &junk,
            error: "malformed TIFF",
        };
        let o = compose(&s, &t, &reception(Completion::Complete), &p, "j", None).unwrap();
        assert_eq!(
            o.data.envelope.to,
            vec!["fax@example.com", "postmaster@example.com"]
        );
        let m = parse(&o.message);
        assert!(
            m.body_text(0)
                .unwrap()
                .contains("could not be decoded (malformed TIFF)")
        );
        assert_eq!(m.attachment(0).unwrap().contents(), &junk[..]);
    }

    #[test]
    fn superfine_is_resampled_for_profile_s() {
        let mut p = Page::new(1728, 40, Resolution::SUPERFINE).unwrap();
        p.set(5, 5, true);
        let tif = write_tiff(&[p], Profile::S).unwrap();
        assert!(crate::image::tiff::check(&tif, Profile::S).is_empty());
        let back =
            crate::image::tiff::read_bytes(&tif, crate::image::tiff::Limits::default()).unwrap();
        assert_eq!(back[0].resolution().y_dpi, 196.0);
        assert_eq!(back[0].height(), 20);
    }
}
