//! The fax document of an email: optional cover page, the body text (per
//! `offramp.body_text`; broken only by the pictures its HTML shows in place), then the
//! attachments in the order the sender attached them — a forwarded message among them as its
//! header block and text, then its own attachments — rendered by [`crate::image::render`]
//! with the page header line.
//!
//! PURE: the raw message, the [`Options`] (built by the shell from `[offramp]`), the sender's
//! options and (for the header line) the time of sending in; pages, or the cause to tell the sender, out. RFC 3965 §3: "if any
//! part cannot be processed the whole message fails", so a part that cannot be rendered fails
//! the document, with that part named.
//!
//! Rendering is the expensive step, so the gateway does it once per message, when it splits
//! the message into faxes ([`prepare_within`]): the body pages are kept in each fax job as a
//! lossless TIFF-F, and at each attempt [`finish`] only adds what depends on the recipient and
//! the moment — the cover page and the header line — before the line is used.

use chrono::NaiveDateTime;

use super::budget;
use super::causes::Cause;
use super::mime::{self, Content, Extracted, Kind, MimeError, PartName, Role};
use super::office;
use super::options::SenderOptions;
use crate::image::Page;
use crate::image::codec::Coding;
use crate::image::render::{self, Budget, ErrorKind, Fields, Template};
use crate::image::tiff::{self, Profile};

/// What to do with the body text of an email (`offramp.body_text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyText {
    /// Fax the body text as pages of its own.
    Include,
    /// Never fax the body text.
    Omit,
    /// Fax the body text only when there is no attachment.
    IfNoAttachment,
}

/// How a message becomes a fax: the site's `[offramp]` settings, as the shell converts them.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Rendering (site resolution, paper, page limits, PDF fonts); each sender's resolution
    /// replaces the site's ([`render_options`]).
    pub render: render::Options,
    /// Which parts are faxed.
    pub mime: mime::Policy,
    /// The body text.
    pub body_text: BodyText,
    /// Time and work budget per message.
    pub budget: budget::Limits,
    /// Our name on the header line (`{sender}`).
    pub sender_name: String,
    /// Header line template; blank: no header line.
    pub header: String,
    /// The office document converter (`offramp.office_converter`).
    pub office: office::Settings,
}

/// What the header line and cover page say besides the message itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stamp {
    /// When the fax is sent (gateway local time); `None` at split time (no header line then:
    /// only the page count matters, and the header does not change it).
    pub when: Option<NaiveDateTime>,
    /// Our station ID (TSI).
    pub station: String,
    /// The number dialled, as printed.
    pub recipient: String,
}

/// A rendered fax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Pages in sending order (cover first when there is one).
    pub pages: Vec<Page>,
    /// Visible degradations the renderer noted ("3 characters not in the font …").
    pub notes: Vec<String>,
    /// The parts faxed, in order.
    pub parts: Vec<PartName>,
    /// What the message held, including skipped parts.
    pub extracted: Extracted,
}

/// The message's failure as the sender is told it.
pub fn mime_cause(e: &MimeError) -> Cause {
    match e {
        MimeError::Unsupported { part, what } => Cause::UnsupportedAttachment {
            part: part.to_string(),
            what: what.clone(),
        },
        MimeError::BadEncoding { part, detail } => Cause::DamagedAttachment {
            part: part.to_string(),
            detail: format!("the attachment is damaged ({detail})"),
        },
        MimeError::HtmlTooComplex { part, detail } => Cause::DamagedAttachment {
            part: part.to_string(),
            detail: format!("the HTML cannot be laid out: {detail}"),
        },
        MimeError::NotWhatItSays { part, declared_as } => Cause::DamagedAttachment {
            part: part.to_string(),
            detail: format!("its content is not a valid {declared_as}"),
        },
        MimeError::NotAMessage
        | MimeError::TooManyParts(_)
        | MimeError::TooDeep(_)
        | MimeError::TooManyHeaderFields(_)
        | MimeError::HeaderTooLong(_)
        | MimeError::BrokenBoundaries(_) => Cause::DamagedAttachment {
            part: "the message".into(),
            detail: e.to_string(),
        },
    }
}

fn render_cause(part: &str, kind: &ErrorKind, cfg: &Options) -> Cause {
    let max = cfg.render.limits.max_pages;
    match kind {
        ErrorKind::TooManyPages { limit } => Cause::TooManyPages {
            pages: limit.saturating_add(1),
            max,
        },
        ErrorKind::PdfTooManyPages { pages, limit } => Cause::TooManyPages {
            pages: u32::try_from(*pages).unwrap_or(u32::MAX),
            max: *limit,
        },
        ErrorKind::WorkBudget { page, limit } => Cause::TooComplex {
            part: part.to_string(),
            page: *page,
            limit: *limit,
        },
        ErrorKind::TimeBudget { page } => Cause::RenderTimeout {
            part: part.to_string(),
            page: *page,
            seconds: cfg.budget.time.as_secs(),
        },
        ErrorKind::Cancelled { .. } => Cause::Interrupted,
        other => Cause::DamagedAttachment {
            part: part.to_string(),
            detail: other.to_string(),
        },
    }
}

fn render_kind(k: Kind) -> render::Kind {
    match k {
        Kind::Tiff => render::Kind::Tiff,
        Kind::Pdf => render::Kind::Pdf,
        Kind::Raster(_) => render::Kind::Image,
        Kind::Text => render::Kind::Text,
        // Converted to PDF first (render_parts).
        Kind::Office(_) => render::Kind::Pdf,
    }
}

/// A TIFF part. Fax TIFFs (RFC 3949 Profile S/F: bilevel, MH/MR/MMR, 1728 pixels wide) are
/// already fax pages: they are read with our own T.4/T.6 reader and sent as they are, pixel for
/// pixel (RFC 3965 §3 requires Profile S to be read, with or without RTC). Anything else
/// (grey or colour, other widths) goes through the general renderer, which places and
/// thresholds it like any picture.
fn render_tiff(
    label: &str,
    bytes: &[u8],
    ropts: &render::Options,
    budget: &mut dyn Budget,
    cfg: &Options,
) -> Result<render::Rendered, Cause> {
    let max_pages = cfg.render.limits.max_pages;
    use crate::image::tiff::{self, TiffError};
    let limits = tiff::Limits {
        max_pages: ropts.limits.max_pages,
        ..tiff::Limits::default()
    };
    let fax_error = match tiff::read_bytes(bytes, limits) {
        Ok(pages) if !pages.is_empty() && pages.iter().all(|p| p.width() == render::SCAN_LINE) => {
            for n in 1..=pages.len() {
                budget
                    .before_page(u32::try_from(n).unwrap_or(u32::MAX))
                    .map_err(|k| render_cause(label, &k, cfg))?;
            }
            return Ok(render::Rendered {
                pages,
                notes: Vec::new(),
            });
        }
        Ok(_) => None,
        Err(TiffError::NotBilevel { .. }) => None,
        Err(TiffError::Limit { what: "pages", .. }) => {
            return Err(Cause::TooManyPages {
                pages: max_pages.saturating_add(1),
                max: max_pages,
            });
        }
        Err(e) => Some(e),
    };
    render::render_part(label, bytes, render::Kind::Tiff, ropts, budget).map_err(|e| {
        match fax_error {
            // Both readers failed: the fax reader's words are the more precise for a TIFF.
            Some(fe) => Cause::DamagedAttachment {
                part: label.to_string(),
                detail: format!("cannot be read: {fe}"),
            },
            None => render_cause(&e.part, &e.kind, cfg),
        }
    })
}

/// The site's render options with the sender's resolution.
pub fn render_options(cfg: &Options, opts: &SenderOptions) -> render::Options {
    render::Options {
        resolution: opts.resolution.into(),
        ..cfg.render.clone()
    }
}

/// Build the fax of a raw message. `budget` bounds the rendering work per page and the time
/// (the caller measures time: [`super::budget::for_message`]; [`render::Unlimited`] for none).
/// A page past the budget fails the message with [`Cause::TooComplex`] or
/// [`Cause::RenderTimeout`]; a cancelled budget gives [`Cause::Interrupted`] (not the sender's
/// fault: the caller keeps the message).
pub fn build(
    raw: &[u8],
    cfg: &Options,
    opts: &SenderOptions,
    stamp: &Stamp,
    budget: &mut dyn Budget,
) -> Result<Document, Cause> {
    let body = render_body(raw, cfg, opts, budget)?;
    let from = body.extracted.headers.from.clone().unwrap_or_default();
    let pages = finish(body.pages, &from, cfg, opts, stamp)?;
    Ok(Document { pages, ..body })
}

/// A message's body pages as the split renders them, once for every recipient and attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Pages each fax of the message has, the cover page included.
    pub pages_total: u32,
    /// The body pages (every part, in order; no cover page, no header line) as a TIFF-F,
    /// Profile F with MMR coding (RFC 3949 §4): lossless, and compact on disk.
    pub body: Vec<u8>,
    /// The message's `From:`, which the cover page shows.
    pub from: String,
}

/// Renders the body of `raw` once ([`build`] without cover page and header line) and keeps it
/// as a TIFF-F, checking the page limit the finished fax will have.
pub fn prepare_within(
    raw: &[u8],
    cfg: &Options,
    opts: &SenderOptions,
    budget: &mut dyn Budget,
) -> Result<Prepared, Cause> {
    let keep = |e: tiff::TiffError| Cause::GatewayError {
        detail: format!("the rendered pages could not be kept: {e}"),
    };
    // Each page is coded (MMR) as soon as it is drawn and let go: a long document is held
    // compressed, never as bitmaps.
    let mut w = tiff::Writer::new(std::io::Cursor::new(Vec::new()), Profile::F(Coding::Mmr))
        .map_err(keep)?;
    let mut made = 0usize;
    let doc = render_parts(raw, cfg, opts, budget, &mut |p| {
        made += 1;
        w.write_page(&p).map_err(keep)
    })?;
    let total = made + usize::from(opts.cover_page);
    let limit = cfg.render.limits.max_pages;
    if total > limit as usize {
        return Err(render_cause(
            "the fax",
            &ErrorKind::TooManyPages { limit },
            cfg,
        ));
    }
    Ok(Prepared {
        pages_total: u32::try_from(total).unwrap_or(u32::MAX),
        body: w.finish().map_err(keep)?.into_inner(),
        from: doc.extracted.headers.from.clone().unwrap_or_default(),
    })
}

/// [`prepare_within`] within the `[offramp]` rendering limits, not cancellable.
pub fn prepare(raw: &[u8], cfg: &Options, opts: &SenderOptions) -> Result<Prepared, Cause> {
    let mut budget = budget::for_message(cfg.budget, &budget::Cancel::new());
    prepare_within(raw, cfg, opts, &mut budget)
}

/// The fax as sent: the cover page (when asked for) before the `body` pages rendered at split,
/// and the header line on every page (when `stamp.when` is set). `from` is the message's
/// `From:` for the cover page. All pages in memory; see [`Finisher`] for one at a time.
pub fn finish(
    body: Vec<Page>,
    from: &str,
    cfg: &Options,
    opts: &SenderOptions,
    stamp: &Stamp,
) -> Result<Vec<Page>, Cause> {
    let f = Finisher::new(body.len(), from, cfg, opts, stamp)?;
    let mut body: Vec<Option<Page>> = body.into_iter().map(Some).collect();
    (0..f.total())
        .map(|n| {
            f.page(n, &mut |i| {
                body.get_mut(i)
                    .and_then(Option::take)
                    .ok_or_else(|| Cause::GatewayError {
                        detail: format!("body page {} asked for twice", i + 1),
                    })
            })
        })
        .collect()
}

/// What is added to the body pages at send, one page at a time: the cover page before them
/// (drawn once, at [`Finisher::new`]) and the header line on each page ("page n of m" counts
/// the cover). With the body read page by page from disk, a fax of any length is sent in
/// flat memory.
pub struct Finisher {
    cover: Option<Page>,
    header: Option<(Template, Fields, render::Layout, render::header::Placement)>,
    total: u32,
}

impl Finisher {
    /// For a fax of `body_pages` body pages; `from` is the message's `From:` (cover page).
    pub fn new(
        body_pages: usize,
        from: &str,
        cfg: &Options,
        opts: &SenderOptions,
        stamp: &Stamp,
    ) -> Result<Finisher, Cause> {
        let ropts = render_options(cfg, opts);
        let layout = ropts.layout();
        let total = body_pages + usize::from(opts.cover_page);
        let limit = ropts.limits.max_pages;
        if total > limit as usize {
            return Err(render_cause(
                "the fax",
                &ErrorKind::TooManyPages { limit },
                cfg,
            ));
        }
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        let fields = Fields {
            when: stamp.when,
            station: stamp.station.clone(),
            sender: cfg.sender_name.clone(),
            recipient: stamp.recipient.clone(),
            from: from.to_owned(),
            to: stamp.recipient.clone(),
            subject: opts.subject.clone(),
            note: String::new(),
        };
        let cover = if opts.cover_page {
            let tpl = render::cover::template("").map_err(|e| Cause::GatewayError {
                detail: format!("cover page template: {e}"),
            })?;
            Some(
                render::cover::render(&tpl, &fields, total, &layout, &ropts.limits)
                    .map_err(|kind| render_cause("the cover page", &kind, cfg))?,
            )
        } else {
            None
        };
        let header = if stamp.when.is_some() && !cfg.header.trim().is_empty() {
            let tpl = Template::parse(&cfg.header, render::header::HEADER_FIELDS).map_err(|e| {
                Cause::GatewayError {
                    detail: format!("offramp.header: {e}"),
                }
            })?;
            Some((tpl, fields, layout, ropts.header_placement))
        } else {
            None
        };
        Ok(Finisher {
            cover,
            header,
            total,
        })
    }

    /// Pages of the fax, the cover page included.
    pub fn total(&self) -> usize {
        self.total as usize
    }

    /// Page `n` (0-based) of the fax: the cover page, or body page `n` less the cover, which
    /// `body` makes; with the header line.
    pub fn page(
        &self,
        n: usize,
        body: &mut dyn FnMut(usize) -> Result<Page, Cause>,
    ) -> Result<Page, Cause> {
        let mut page = match (&self.cover, n) {
            (Some(c), 0) => c.clone(),
            (Some(_), n) => body(n - 1)?,
            (None, n) => body(n)?,
        };
        if let Some((tpl, fields, layout, placement)) = &self.header {
            let n = u32::try_from(n + 1).unwrap_or(u32::MAX);
            render::header::stamp_page(&mut page, n, self.total, layout, tpl, fields, *placement);
        }
        Ok(page)
    }
}

/// Every part of `raw` rendered, in order: the body pages of its fax, with what was noted.
fn render_body(
    raw: &[u8],
    cfg: &Options,
    opts: &SenderOptions,
    budget: &mut dyn Budget,
) -> Result<Document, Cause> {
    let mut pages = Vec::new();
    let doc = render_parts(raw, cfg, opts, budget, &mut |p| {
        pages.push(p);
        Ok(())
    })?;
    Ok(Document { pages, ..doc })
}

/// Every part of `raw` rendered, in order, each body page handed to `sink` as soon as it is
/// made; the [`Document`] returned has no pages.
fn render_parts(
    raw: &[u8],
    cfg: &Options,
    opts: &SenderOptions,
    budget: &mut dyn Budget,
    sink: &mut dyn FnMut(Page) -> Result<(), Cause>,
) -> Result<Document, Cause> {
    let extracted = mime::extract(raw, &cfg.mime).map_err(|e| mime_cause(&e))?;
    let with_body = match cfg.body_text {
        BodyText::Include => true,
        BodyText::Omit => false,
        BodyText::IfNoAttachment => !extracted.has_attachment(),
    };
    // The body goes first: its text parts as one text (Apple Mail splits it around
    // pictures), broken only by the pictures its HTML shows in place (`Role::Inline`); then
    // every attachment in message order.
    let mut chosen: Vec<(String, PartName, render::Kind, Vec<u8>)> = Vec::new();
    if with_body {
        let mut text: Option<(PartName, String)> = None;
        let flush =
            |text: &mut Option<(PartName, String)>,
             chosen: &mut Vec<(String, PartName, render::Kind, Vec<u8>)>| {
                if let Some((name, t)) = text.take() {
                    chosen.push((
                        "the message text".into(),
                        name,
                        render::Kind::Text,
                        t.into_bytes(),
                    ));
                }
            };
        for p in extracted
            .parts
            .iter()
            .filter(|p| matches!(p.role, Role::Body | Role::Inline))
        {
            match (&p.role, &p.content) {
                (Role::Body, Content::Text(t)) => match &mut text {
                    Some((_, so_far)) => {
                        so_far.push_str("\n\n");
                        so_far.push_str(t.trim_end());
                    }
                    None => text = Some((p.name.clone(), t.trim_end().to_string())),
                },
                (Role::Body, Content::Bytes(_)) => {}
                _ => {
                    flush(&mut text, &mut chosen);
                    chosen.push((
                        p.name.to_string(),
                        p.name.clone(),
                        render_kind(p.kind),
                        match &p.content {
                            Content::Bytes(b) => b.clone(),
                            Content::Text(t) => t.clone().into_bytes(),
                        },
                    ));
                }
            }
        }
        flush(&mut text, &mut chosen);
    }
    // Without the body text, the pictures it showed are still faxed, as attachments.
    for p in extracted
        .parts
        .iter()
        .filter(|p| p.role == Role::Attachment || (p.role == Role::Inline && !with_body))
    {
        let mut bytes = match &p.content {
            Content::Bytes(b) => b.clone(),
            Content::Text(t) => t.clone().into_bytes(),
        };
        if let Kind::Office(f) = p.kind {
            let label = p.name.to_string();
            bytes = office::to_pdf(&cfg.office, f, &bytes, budget).map_err(|e| match e {
                office::OfficeError::Stopped(k) => render_cause(&label, &k, cfg),
                e => e.cause(&label, f).unwrap_or(Cause::Interrupted),
            })?;
        }
        chosen.push((
            p.name.to_string(),
            p.name.clone(),
            render_kind(p.kind),
            bytes,
        ));
    }
    if chosen.is_empty() {
        return Err(Cause::NothingToFax);
    }
    let ropts = render_options(cfg, opts);
    let mut notes = Vec::new();
    let mut parts = Vec::with_capacity(chosen.len());
    // The sink's own failure (the page could not be kept) travels beside the renderer's error.
    let mut kept: Result<(), Cause> = Ok(());
    for (label, name, kind, bytes) in &chosen {
        let part_notes = match kind {
            render::Kind::Tiff => {
                let r = render_tiff(label, bytes, &ropts, budget, cfg)?;
                for p in r.pages {
                    sink(p)?;
                }
                r.notes
            }
            _ => {
                let mut each = |p: Page| {
                    sink(p).map_err(|c| {
                        kept = Err(c);
                        ErrorKind::RendererFault
                    })
                };
                match render::render_part_each(label, bytes, *kind, &ropts, budget, &mut each) {
                    Ok(n) => n,
                    Err(e) => {
                        std::mem::replace(&mut kept, Ok(()))?;
                        return Err(render_cause(&e.part, &e.kind, cfg));
                    }
                }
            }
        };
        notes.extend(part_notes.iter().map(|n| format!("{label}: {n}")));
        parts.push(name.clone());
    }
    Ok(Document {
        pages: Vec::new(),
        notes,
        parts,
        extracted,
    })
}

/// The page count of a message's fax, or the cause for the sender: the check
/// [`super::jobs::split_message`] runs before any fax job exists, within the `[offramp]`
/// rendering limits ([`super::budget::for_message`], not cancellable; see
/// [`page_count_within`]).
pub fn page_count(raw: &[u8], cfg: &Options, opts: &SenderOptions) -> Result<u32, Cause> {
    let mut budget = budget::for_message(cfg.budget, &budget::Cancel::new());
    page_count_within(raw, cfg, opts, &mut budget)
}

/// [`page_count`] within `budget`.
pub fn page_count_within(
    raw: &[u8],
    cfg: &Options,
    opts: &SenderOptions,
    budget: &mut dyn Budget,
) -> Result<u32, Cause> {
    build(raw, cfg, opts, &Stamp::default(), budget)
        .map(|d| u32::try_from(d.pages.len()).unwrap_or(u32::MAX))
}
