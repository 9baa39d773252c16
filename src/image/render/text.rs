//! text/plain to fax pages: UTF-8 decoded leniently, tabs expanded, form feeds start a new
//! page, long lines wrapped, set in the bundled monospace font at up to 12 pt with 80 columns
//! across the printable width.
//!
//! PURE. The layout (which character goes in which cell of which line of which page) is a
//! separate, testable step from drawing.

use crate::image::Page;

use super::budget::{Meter, units};
use super::font::{Pen, pt_to_px};
use super::geometry::Layout;
use super::{ErrorKind, Limits};

/// Columns per line (the classic terminal/fax width; RFC 2646 mail is wrapped near 72–78).
pub const COLUMNS: u32 = 80;
/// Largest type size; smaller only if 80 columns do not fit the printable width.
pub const MAX_PT: f32 = 12.0;
/// Tab stops every 8 columns (the POSIX terminal default).
pub const TAB: u32 = 8;

/// One character placed in a text cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Column, from 0.
    pub col: u32,
    /// The character (combining marks share their base's column).
    pub ch: char,
}

/// Pages of lines of cells.
pub type TextPages = Vec<Vec<Vec<Cell>>>;

/// Where the grid of text cells lies on a page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Em size in columns.
    pub px: f32,
    /// Cell advance in columns.
    pub advance: f32,
    /// Column of the first cell's pen position.
    pub left: u32,
    /// Row of the first line's baseline.
    pub first_baseline: u32,
    /// Rows from one baseline to the next.
    pub line_rows: u32,
    /// Lines per page (for fixed paper; a large number for auto length).
    pub lines_per_page: u32,
    /// Cells per line.
    pub columns: u32,
}

impl Grid {
    /// The grid for `layout`: 80 columns, up to 12 pt, below the header band.
    pub fn new(layout: &Layout) -> Grid {
        let (left, top, width, height) = layout.content_box();
        let max_px = pt_to_px(MAX_PT, layout.res.x_dpi);
        let fit_px = width as f32 / COLUMNS as f32 / super::font::advance_ratio();
        let px = max_px.min(fit_px);
        let pen = Pen::new(px, layout.aspect());
        let (ascent, line_rows) = pen.line_rows();
        let lines_per_page = match height {
            Some(h) => (h / line_rows).max(1),
            None => u32::MAX,
        };
        Grid {
            px,
            advance: pen.advance(),
            left,
            first_baseline: top + ascent,
            line_rows,
            lines_per_page,
            columns: COLUMNS,
        }
    }

    /// Pen column of cell `col`.
    pub fn x(&self, col: u32) -> i64 {
        i64::from(self.left) + (f64::from(col) * f64::from(self.advance)).round() as i64
    }

    /// Baseline row of line `line` on its page.
    pub fn baseline(&self, line: u32) -> i64 {
        i64::from(self.first_baseline) + i64::from(line) * i64::from(self.line_rows)
    }
}

/// True for characters that draw on the previous cell (combining diacritics) rather than
/// taking one of their own.
fn is_combining(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Characters that take no space and draw nothing.
fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x2060..=0x2064 | 0xFEFF | 0xAD)
}

/// Lays `text` out in cells: tabs to the next multiple of [`TAB`], `\f` to a new page, lines
/// longer than `columns` wrapped at the last space in their final quarter (else hard), other
/// control characters dropped. Stops with an error past `max_pages`.
pub fn layout_text(
    text: &str,
    columns: u32,
    lines_per_page: u32,
    max_pages: u32,
) -> Result<TextPages, ErrorKind> {
    let columns = columns.max(1);
    let lines_per_page = lines_per_page.max(1);
    let mut pages: TextPages = vec![Vec::new()];
    let mut line: Vec<Cell> = Vec::new();
    let mut col = 0u32;

    // Moves the finished line to the current page, opening a new page when it is full.
    fn push_line(
        pages: &mut TextPages,
        line: Vec<Cell>,
        lines_per_page: u32,
        max_pages: u32,
    ) -> Result<(), ErrorKind> {
        if pages
            .last()
            .is_some_and(|p| p.len() as u32 >= lines_per_page)
        {
            new_page(pages, max_pages)?;
        }
        if let Some(p) = pages.last_mut() {
            p.push(line);
        }
        Ok(())
    }
    fn new_page(pages: &mut TextPages, max_pages: u32) -> Result<(), ErrorKind> {
        if pages.len() as u32 >= max_pages {
            return Err(ErrorKind::TooManyPages { limit: max_pages });
        }
        pages.push(Vec::new());
        Ok(())
    }

    let text = text.replace("\r\n", "\n");
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => {
                push_line(
                    &mut pages,
                    std::mem::take(&mut line),
                    lines_per_page,
                    max_pages,
                )?;
                col = 0;
            }
            '\u{c}' => {
                if !line.is_empty() {
                    push_line(
                        &mut pages,
                        std::mem::take(&mut line),
                        lines_per_page,
                        max_pages,
                    )?;
                }
                col = 0;
                new_page(&mut pages, max_pages)?;
            }
            '\t' => {
                let next = (col / TAB + 1) * TAB;
                if next >= columns {
                    push_line(
                        &mut pages,
                        std::mem::take(&mut line),
                        lines_per_page,
                        max_pages,
                    )?;
                    col = 0;
                } else {
                    col = next;
                }
            }
            c if is_combining(c) => {
                let at = line.last().map(|l| l.col).unwrap_or(0);
                line.push(Cell { col: at, ch: c });
            }
            c if c.is_control() || is_invisible(c) => {}
            c => {
                if col >= columns {
                    // Wrap: break after the last space in the final quarter of the line, so a
                    // word is carried over whole when it reasonably can be.
                    let min_col = columns - columns / 4;
                    let split = line
                        .iter()
                        .rposition(|cell| cell.ch == ' ' && cell.col >= min_col);
                    let carry: Vec<Cell> = match split {
                        Some(i) => line.split_off(i + 1),
                        None => Vec::new(),
                    };
                    // Trailing spaces are not drawn anyway; drop them from the line.
                    while line.last().is_some_and(|l| l.ch == ' ') {
                        line.pop();
                    }
                    push_line(
                        &mut pages,
                        std::mem::take(&mut line),
                        lines_per_page,
                        max_pages,
                    )?;
                    let shift = carry.first().map(|c| c.col).unwrap_or(0);
                    line = carry
                        .into_iter()
                        .map(|cell| Cell {
                            col: cell.col - shift,
                            ch: cell.ch,
                        })
                        .collect();
                    col = line.last().map(|l| l.col + 1).unwrap_or(0);
                }
                line.push(Cell { col, ch: c });
                col += 1;
            }
        }
    }
    if !line.is_empty() {
        push_line(&mut pages, line, lines_per_page, max_pages)?;
    }
    // A trailing form feed leaves an empty last page: not worth a sheet of paper.
    if pages.len() > 1 && pages.last().is_some_and(|p| p.is_empty()) {
        pages.pop();
    }
    Ok(pages)
}

/// Draws laid-out text pages, charging `meter` a unit per glyph (page 1 is the meter's current
/// page; it moves on at each page after).
pub fn draw_pages(
    pages: &TextPages,
    layout: &Layout,
    grid: &Grid,
    limits: &Limits,
    meter: &mut Meter<'_>,
) -> Result<(Vec<Page>, u64), ErrorKind> {
    let mut out = Vec::with_capacity(pages.len());
    let missing = draw_pages_each(pages, layout, grid, limits, meter, &mut |p| {
        out.push(p);
        Ok(())
    })?;
    Ok((out, missing))
}

/// [`draw_pages`], handing each page to `sink` as soon as it is drawn (one page in memory at
/// a time); returns how many characters the font lacked.
pub fn draw_pages_each(
    pages: &TextPages,
    layout: &Layout,
    grid: &Grid,
    limits: &Limits,
    meter: &mut Meter<'_>,
    sink: &mut dyn FnMut(Page) -> Result<(), ErrorKind>,
) -> Result<u64, ErrorKind> {
    let mut pen = Pen::new(grid.px, layout.aspect());
    for (n, lines) in pages.iter().enumerate() {
        if n > 0 {
            meter.next_page(n as u32 + 1)?;
        }
        let rows = match layout.page_rows() {
            Some(r) => r,
            None => {
                // Auto length: as long as the text plus the bottom margin.
                let (_, _, _, _) = layout.content_box();
                let last = grid.baseline(lines.len().max(1) as u32 - 1);
                (last as u32)
                    .saturating_add(grid.line_rows)
                    .saturating_add(layout.mm_y(super::geometry::BOTTOM_MARGIN_MM))
            }
        };
        let mut page = limits.new_page(layout, rows)?;
        for (i, line) in lines.iter().enumerate() {
            let baseline = grid.baseline(i as u32);
            for cell in line {
                if cell.ch != ' ' {
                    meter.charge(units::GLYPH)?;
                    pen.draw(&mut page, cell.ch, grid.x(cell.col), baseline);
                }
            }
        }
        sink(page)?;
    }
    Ok(pen.missing)
}

/// text/plain bytes to pages: invalid UTF-8 becomes U+FFFD (drawn as `?` if need be).
pub fn render(
    bytes: &[u8],
    layout: &Layout,
    limits: &Limits,
    meter: &mut Meter<'_>,
) -> Result<Rendered, ErrorKind> {
    let text = String::from_utf8_lossy(bytes);
    render_str(&text, layout, limits, meter)
}

/// Text rendering result: pages plus how many characters the font lacked.
pub struct Rendered {
    /// The pages.
    pub pages: Vec<Page>,
    /// Characters drawn as `?` because the font has no glyph for them.
    pub missing_glyphs: u64,
}

/// A string to pages.
pub fn render_str(
    text: &str,
    layout: &Layout,
    limits: &Limits,
    meter: &mut Meter<'_>,
) -> Result<Rendered, ErrorKind> {
    let mut pages = Vec::new();
    let missing_glyphs = render_str_each(text, layout, limits, meter, &mut |p| {
        pages.push(p);
        Ok(())
    })?;
    Ok(Rendered {
        pages,
        missing_glyphs,
    })
}

/// [`render_str`], handing each page to `sink` as soon as it is drawn; returns how many
/// characters the font lacked.
pub fn render_str_each(
    text: &str,
    layout: &Layout,
    limits: &Limits,
    meter: &mut Meter<'_>,
    sink: &mut dyn FnMut(Page) -> Result<(), ErrorKind>,
) -> Result<u64, ErrorKind> {
    let grid = Grid::new(layout);
    let pages = layout_text(text, grid.columns, grid.lines_per_page, limits.max_pages)?;
    draw_pages_each(&pages, layout, &grid, limits, meter, sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Resolution;
    use crate::image::render::geometry::Paper;

    fn cols(line: &[Cell]) -> String {
        line.iter().map(|c| c.ch).collect()
    }

    #[test]
    fn tabs_formfeeds_wrap() {
        let p = layout_text("a\tb\u{c}c", 80, 60, 10).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0][0],
            vec![Cell { col: 0, ch: 'a' }, Cell { col: 8, ch: 'b' }]
        );
        assert_eq!(cols(&p[1][0]), "c");

        let long = "word ".repeat(30);
        let p = layout_text(&long, 20, 100, 10).unwrap();
        assert!(p[0].iter().all(|l| l.iter().all(|c| c.col < 20)));
        assert_eq!(cols(&p[0][0]), "word word word word");
        assert_eq!(cols(&p[0][1]), "word word word word");

        let hard = "x".repeat(45);
        let p = layout_text(&hard, 20, 100, 10).unwrap();
        assert_eq!(p[0].len(), 3);
        assert_eq!(p[0][2].len(), 5);
    }

    #[test]
    fn page_breaks_and_limit() {
        let t = "l\n".repeat(25);
        let p = layout_text(&t, 80, 10, 10).unwrap();
        assert_eq!(
            p.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        assert_eq!(
            layout_text(&t, 80, 10, 2).unwrap_err(),
            ErrorKind::TooManyPages { limit: 2 }
        );
        assert_eq!(
            layout_text(&"\u{c}".repeat(50), 80, 10, 3).unwrap_err(),
            ErrorKind::TooManyPages { limit: 3 }
        );
    }

    #[test]
    fn combining_marks_share_a_cell() {
        let p = layout_text("e\u{301}x\u{200b}y", 80, 10, 1).unwrap();
        assert_eq!(
            p[0][0],
            vec![
                Cell { col: 0, ch: 'e' },
                Cell {
                    col: 0,
                    ch: '\u{301}'
                },
                Cell { col: 1, ch: 'x' },
                Cell { col: 2, ch: 'y' }
            ]
        );
    }

    #[test]
    fn grid_is_80_columns_12pt_on_a4() {
        for res in [
            Resolution::STANDARD,
            Resolution::FINE,
            Resolution::SUPERFINE,
        ] {
            let lay = Layout {
                res,
                paper: Paper::A4,
            };
            let g = Grid::new(&lay);
            let pt = g.px * 72.0 / res.x_dpi;
            assert!((10.0..=12.0).contains(&pt), "{pt}");
            assert!(g.x(80) <= i64::from(1728 - g.left));
            assert!(
                (50..=66).contains(&g.lines_per_page),
                "{}",
                g.lines_per_page
            );
        }
    }
}
