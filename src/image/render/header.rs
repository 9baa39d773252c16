//! The page header line ("tagline") printed at the top of every sent page, from a template,
//! and the template language shared with the cover page.
//!
//! PURE: the date and time come in as values. The US Telephone Consumer Protection Act
//! (47 U.S.C. § 227(d)(1)(B), 47 CFR § 64.1604) requires every faxed page to carry, in a margin
//! at the top or bottom, the date and time sent, the sender's identity and the sending number;
//! the default template prints all of them.

use chrono::NaiveDateTime;
use thiserror::Error;

use crate::image::Page;

use super::font::{Pen, pt_to_px};
use super::geometry::{Layout, SCAN_LINE};

/// Fields a header or cover template may name, `{like_this}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    /// When the fax is sent (local time of the gateway, passed in).
    pub when: Option<NaiveDateTime>,
    /// Our station ID (the TSI, `[modem] local_id`).
    pub station: String,
    /// Sender name (`[offramp] sender_name`, or the mail's From).
    pub sender: String,
    /// The number dialled.
    pub recipient: String,
    /// Cover page: who it is from (mail From).
    pub from: String,
    /// Cover page: who it is for.
    pub to: String,
    /// Cover page: subject.
    pub subject: String,
    /// Cover page: note (mail body when it goes on the cover).
    pub note: String,
}

/// A template that does not parse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    /// `{name}` is not a field this template may use.
    #[error("unknown field `{{{name}}}` in template (known: {known})")]
    UnknownField {
        /// The name as written.
        name: String,
        /// Fields allowed here.
        known: String,
    },
    /// A `{` without its `}`.
    #[error("unclosed `{{` at byte {at} in template")]
    Unclosed {
        /// Byte offset.
        at: usize,
    },
}

/// Names allowed in a header line.
pub const HEADER_FIELDS: &[&str] = &[
    "date",
    "time",
    "station",
    "sender",
    "page",
    "pages",
    "recipient",
];
/// Names allowed in a cover page.
pub const COVER_FIELDS: &[&str] = &[
    "date",
    "time",
    "station",
    "sender",
    "pages",
    "recipient",
    "from",
    "to",
    "subject",
    "note",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

/// A parsed template: literal text and `{field}`s; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses `src`, allowing only the names in `known`.
    pub fn parse(src: &str, known: &[&str]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut it = src.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            match c {
                '{' if it.peek().map(|p| p.1) == Some('{') => {
                    it.next();
                    text.push('{');
                }
                '}' if it.peek().map(|p| p.1) == Some('}') => {
                    it.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &src[i + 1..];
                    let end = rest.find('}').ok_or(TemplateError::Unclosed { at: i })?;
                    let name = &rest[..end];
                    if !known.contains(&name) {
                        return Err(TemplateError::UnknownField {
                            name: name.into(),
                            known: known.join(", "),
                        });
                    }
                    // Skip the name and the closing brace.
                    for _ in 0..=name.chars().count() {
                        it.next();
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(name.into()));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template(pieces))
    }

    /// The template filled in for page `page` of `pages`.
    pub fn expand(&self, f: &Fields, page: u32, pages: u32) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(name) => {
                    let v = match name.as_str() {
                        "date" => f
                            .when
                            .map(|w| w.format("%Y-%m-%d").to_string())
                            .unwrap_or_default(),
                        "time" => f
                            .when
                            .map(|w| w.format("%H:%M").to_string())
                            .unwrap_or_default(),
                        "station" => f.station.clone(),
                        "sender" => f.sender.clone(),
                        "recipient" => f.recipient.clone(),
                        "page" => page.to_string(),
                        "pages" => pages.to_string(),
                        "from" => f.from.clone(),
                        "to" => f.to.clone(),
                        "subject" => f.subject.clone(),
                        "note" => f.note.clone(),
                        _ => String::new(),
                    };
                    // Field values come from mail headers: no control characters reach the
                    // page (a newline would break the one-line header).
                    out.extend(v.chars().map(|c| if c.is_control() { ' ' } else { c }));
                }
            }
        }
        out
    }
}

/// Header type size: 9 pt, so that a full line of ~100 characters fits.
pub const HEADER_PT: f32 = 9.0;
/// Blank rows above the header text, in mm.
const HEADER_TOP_MM: f64 = 1.5;

/// Rows at the top of a page that the header occupies (it clears them before printing).
pub fn band_rows(layout: &Layout) -> u32 {
    let pen = Pen::new(pt_to_px(HEADER_PT, layout.res.x_dpi), layout.aspect());
    layout.mm_y(HEADER_TOP_MM) + pen.line_rows().1 + layout.mm_y(0.5)
}

/// The header's pen (9 pt at the page's density) and where its text starts: (column,
/// baseline row).
pub fn pen_and_origin(layout: &Layout) -> (Pen, i64, i64) {
    let pen = Pen::new(pt_to_px(HEADER_PT, layout.res.x_dpi), layout.aspect());
    let (ascent, _) = pen.line_rows();
    let x = i64::from(layout.mm_x(4.0));
    let y = i64::from(layout.mm_y(HEADER_TOP_MM) + ascent);
    (pen, x, y)
}

/// Where the header line goes relative to what is already on the page
/// (`[offramp] header_placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// The page's content is scaled down (aspect kept, centred) into the rows below the
    /// header band, so nothing of it is covered: a letterhead or a title that reaches the top
    /// edge stays whole. A page whose band is blank already (our own text, images and cover
    /// page keep [`super::geometry::TOP_MARGIN_MM`] free) is left exactly as it is.
    #[default]
    Shift,
    /// The band is cleared and the header printed over the page's top, as fax machines do.
    Overlay,
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "shift" => Ok(Placement::Shift),
            "overlay" => Ok(Placement::Overlay),
            _ => Err(format!("`{s}` is not a header placement (shift, overlay)")),
        }
    }
}

/// `page`'s content fitted into the rows from `band` down: scaled by `(height − band) /
/// height` both ways (so the pixel aspect, and with it the content's proportions, is kept),
/// centred horizontally, rows `0..band` white. Each output pixel is the OR of the page pixels
/// that land in it: shrinking by a few percent merges neighbouring rows and columns, and a
/// one-pixel line is never dropped (every black page pixel lands on a black output pixel).
/// A page with nothing in rows `0..band` comes back unchanged. PURE.
pub fn fit_below(page: &Page, band: u32) -> Page {
    let (w, h) = (page.width(), page.height());
    let band_blank = (0..band.min(h)).all(|y| page.row(y).iter().all(|&b| b == 0));
    if band_blank || band >= h {
        return page.clone();
    }
    let avail = h - band;
    let nw = ((u64::from(w) * u64::from(avail) / u64::from(h)) as u32).max(1);
    let left = (w - nw) / 2;
    let col: Vec<u32> = (0..w)
        .map(|x| left + (u64::from(x) * u64::from(nw) / u64::from(w)) as u32)
        .collect();
    let mut out = match Page::new(w, h, page.resolution()) {
        Ok(p) => p,
        // Same size as a page that exists: cannot fail; keep the page rather than panic.
        Err(_) => return page.clone(),
    };
    for y in 0..h {
        let ty = band + (u64::from(y) * u64::from(avail) / u64::from(h)) as u32;
        for (i, &byte) in page.row(y).iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0
                    && let Some(&tx) = col.get(i * 8 + bit)
                {
                    out.set(tx, ty, true);
                }
            }
        }
    }
    out
}

/// Prints the header line on every page: the band is cleared to white first (a fax page has
/// no transparency), after the content was moved below it ([`Placement::Shift`]) or over it
/// ([`Placement::Overlay`]: overprinting a PDF's own top margin is how fax machines do it);
/// the text is cut to the line width.
pub fn stamp(
    pages: &mut [Page],
    layout: &Layout,
    template: &Template,
    fields: &Fields,
    placement: Placement,
) {
    let total = pages.len() as u32;
    for (i, page) in pages.iter_mut().enumerate() {
        stamp_page(
            page,
            i as u32 + 1,
            total,
            layout,
            template,
            fields,
            placement,
        );
    }
}

/// [`stamp`] for one page, page `n` (1-based) of `total`: for pages made one at a time.
pub fn stamp_page(
    page: &mut Page,
    n: u32,
    total: u32,
    layout: &Layout,
    template: &Template,
    fields: &Fields,
    placement: Placement,
) {
    let (mut pen, left, baseline) = pen_and_origin(layout);
    let band = band_rows(layout);
    if placement == Placement::Shift {
        *page = fit_below(page, band);
    }
    let max_chars = ((SCAN_LINE as i64 - 2 * left) as f32 / pen.advance()) as usize;
    let text = template.expand(fields, n, total);
    let text: String = text.chars().take(max_chars).collect();
    for y in 0..band.min(page.height()) {
        page.row_mut(y).fill(0);
    }
    pen.draw_str(page, &text, left, baseline);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn parse_and_expand() {
        let t = Template::parse(
            "{date} {time} {{x}} FROM {sender} P.{page}/{pages}",
            HEADER_FIELDS,
        )
        .unwrap();
        let f = Fields {
            when: NaiveDate::from_ymd_opt(2026, 11, 28)
                .unwrap()
                .and_hms_opt(23, 5, 0),
            sender: "Ann\r\nBcc: x".into(),
            ..Default::default()
        };
        assert_eq!(
            t.expand(&f, 2, 7),
            "2026-11-28 23:05 {x} FROM Ann  Bcc: x P.2/7"
        );
        assert!(matches!(
            Template::parse("{nope}", HEADER_FIELDS),
            Err(TemplateError::UnknownField { .. })
        ));
        assert_eq!(
            Template::parse("ab {date", HEADER_FIELDS),
            Err(TemplateError::Unclosed { at: 3 })
        );
        assert!(Template::parse("{subject}", HEADER_FIELDS).is_err());
        assert!(Template::parse("{subject} {ü}x", COVER_FIELDS).is_err());
        assert!(Template::parse("{subject} ü", COVER_FIELDS).is_ok());
    }

    fn page_with_top_bar(h: u32) -> Page {
        let mut p = Page::new(SCAN_LINE, h, crate::image::Resolution::FINE).unwrap();
        for x in 100..1600 {
            p.set(x, 0, true);
            p.set(x, h - 1, true);
        }
        p
    }

    #[test]
    fn fit_below_keeps_every_black_pixel_below_the_band() {
        let p = page_with_top_bar(1000);
        let band = 40;
        let f = fit_below(&p, band);
        assert_eq!((f.width(), f.height()), (p.width(), p.height()));
        assert!((0..band).all(|y| f.row(y).iter().all(|&b| b == 0)));
        // The top bar lands on the first row below the band, the bottom one on the last row.
        assert!(f.row(band).iter().any(|&b| b != 0));
        assert!(f.row(999).iter().any(|&b| b != 0));
        // Scaled by 960/1000 both ways and centred: 1500 px become about 1440, centred.
        let black: u64 = f.row(band).iter().map(|b| u64::from(b.count_ones())).sum();
        assert!((1435..=1445).contains(&black), "{black}");
        let first = (0..SCAN_LINE).find(|&x| f.get(x, band)).unwrap();
        let last = (0..SCAN_LINE).rev().find(|&x| f.get(x, band)).unwrap();
        assert_eq!(first, (1728 - 1658) / 2 + 100 * 1658 / 1728);
        assert!(last > 1500 && last < 1600, "{last}");
        // A page whose band is blank is left alone.
        let mut q = p.clone();
        q.row_mut(0).fill(0);
        assert_eq!(fit_below(&q, band), q);
        assert_eq!("Overlay".parse::<Placement>(), Ok(Placement::Overlay));
        assert!("top".parse::<Placement>().is_err());
    }
}
