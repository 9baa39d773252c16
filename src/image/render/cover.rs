//! The optional cover page: a large "FAX" title and a template filled with from, to, subject,
//! page count and a note.
//!
//! PURE. The cover is one page; a note too long for it is cut at the page's end with a marker
//! (the full text, if wanted, goes in as a text part of its own).

use crate::image::Page;

use super::font::{Pen, pt_to_px};
use super::geometry::Layout;
use super::header::{COVER_FIELDS, Fields, Template, TemplateError};
use super::text::{Grid, layout_text};
use super::{ErrorKind, Limits};

/// The built-in cover template (used when `[offramp] cover_template` is empty).
pub const DEFAULT_TEMPLATE: &str = "\
To:       {to}
Fax:      {recipient}
From:     {from}
Sender:   {sender}   {station}
Date:     {date} {time}
Subject:  {subject}
Pages:    {pages} including this cover page

{note}";

/// Title size.
const TITLE_PT: f32 = 40.0;

/// Parses a cover template (empty = [`DEFAULT_TEMPLATE`]).
pub fn template(src: &str) -> Result<Template, TemplateError> {
    let src = if src.trim().is_empty() {
        DEFAULT_TEMPLATE
    } else {
        src
    };
    Template::parse(src, COVER_FIELDS)
}

/// Renders the cover page for a fax of `pages` pages in all (the cover included).
pub fn render(
    tpl: &Template,
    fields: &Fields,
    pages: u32,
    layout: &Layout,
    limits: &Limits,
) -> Result<Page, ErrorKind> {
    let grid = Grid::new(layout);
    let rows = match layout.page_rows() {
        Some(r) => r,
        None => super::geometry::Layout {
            res: layout.res,
            paper: super::geometry::Paper::A4,
        }
        .page_rows()
        .unwrap_or(2292),
    };
    let mut page = limits.new_page(layout, rows)?;

    let mut title = Pen::new(pt_to_px(TITLE_PT, layout.res.x_dpi), layout.aspect());
    let (t_ascent, t_line) = title.line_rows();
    let title_base =
        i64::from(grid.first_baseline) - i64::from(grid.line_rows) + i64::from(t_ascent);
    title.draw_str(&mut page, "FAX", i64::from(grid.left), title_base);
    // A rule under the title, 0.5 mm thick.
    let rule_y = (title_base + i64::from(t_line - t_ascent)).max(0) as u32;
    for y in rule_y..(rule_y + layout.mm_y(0.5).max(1)).min(rows) {
        for x in grid.left..(grid.x(grid.columns) as u32).min(page.width()) {
            page.set(x, y, true);
        }
    }

    let body = tpl.expand(fields, 1, pages);
    let first_line = (rule_y + layout.mm_y(6.0)).saturating_sub(grid.first_baseline);
    let skip = first_line.div_ceil(grid.line_rows.max(1));
    let avail = grid.lines_per_page.saturating_sub(skip).max(1);
    let laid = layout_text(&body, grid.columns, avail, u32::MAX)?;
    let mut pen = Pen::new(grid.px, layout.aspect());
    if let Some(lines) = laid.first() {
        for (i, line) in lines.iter().enumerate() {
            let baseline = grid.baseline(skip + i as u32);
            for cell in line {
                if cell.ch != ' ' {
                    pen.draw(&mut page, cell.ch, grid.x(cell.col), baseline);
                }
            }
        }
        if laid.len() > 1 {
            let baseline = grid.baseline(skip + avail.saturating_sub(1));
            pen.draw_str(
                &mut page,
                "[... continued in the message]",
                grid.x(0),
                baseline,
            );
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Resolution;
    use crate::image::render::geometry::Paper;

    #[test]
    fn cover_renders_and_bad_template_is_refused() {
        let lay = Layout {
            res: Resolution::FINE,
            paper: Paper::A4,
        };
        let tpl = template("").unwrap();
        let f = Fields {
            to: "Bob".into(),
            note: "line\n".repeat(500),
            ..Default::default()
        };
        let p = render(&tpl, &f, 3, &lay, &Limits::default()).unwrap();
        assert_eq!((p.width(), p.height()), (1728, 2292));
        assert!(p.black_pixels() > 10_000);
        assert!(template("{bogus}").is_err());
    }
}
