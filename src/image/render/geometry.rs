//! Fax page geometry: the 1728-pixel scan line, page lengths for A4 and Letter at each
//! resolution, margins, and fitting a source of some physical or pixel size onto the page.
//!
//! PURE arithmetic.

use crate::image::Resolution;

/// T.4 §2.2: an A4/Letter scan line is 1728 picture elements (215 mm at 8 pels/mm).
pub const SCAN_LINE: u32 = 1728;

/// Paper the pages are laid out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paper {
    /// ISO A4, 210 × 297 mm (the default).
    #[default]
    A4,
    /// US Letter, 8.5 × 11 in.
    Letter,
    /// Width fixed, length whatever the content needs (long receipts, web captures), up to
    /// the pixel limit.
    Auto,
}

impl Paper {
    /// Paper length in inches; `None` for [`Paper::Auto`].
    pub fn length_in(self) -> Option<f64> {
        match self {
            Paper::A4 => Some(297.0 / 25.4),
            Paper::Letter => Some(11.0),
            Paper::Auto => None,
        }
    }
}

impl std::str::FromStr for Paper {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "a4" => Ok(Paper::A4),
            "letter" => Ok(Paper::Letter),
            "auto" => Ok(Paper::Auto),
            _ => Err(format!("`{s}` is not a paper size (a4, letter, auto)")),
        }
    }
}

/// Where content may go on a page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// Pixel density.
    pub res: Resolution,
    /// Paper.
    pub paper: Paper,
}

/// Side margins for content we lay out ourselves (text, images, cover page): 4 mm, which every
/// fax printer reproduces (T.4 §2.2 guarantees only 208 mm of the 215 mm line is printed).
pub const SIDE_MARGIN_MM: f64 = 4.0;
/// Bottom margin for content we lay out ourselves.
pub const BOTTOM_MARGIN_MM: f64 = 5.0;
/// Top band kept free of our own content for the header line (see `header`), plus a gap.
pub const TOP_MARGIN_MM: f64 = 9.0;

impl Layout {
    /// Page length in rows for fixed paper, `None` for auto length.
    pub fn page_rows(&self) -> Option<u32> {
        self.paper
            .length_in()
            .map(|l| (l * f64::from(self.res.y_dpi)).round() as u32)
    }

    /// Millimetres to columns.
    pub fn mm_x(&self, mm: f64) -> u32 {
        (mm / 25.4 * f64::from(self.res.x_dpi)).round() as u32
    }

    /// Millimetres to rows.
    pub fn mm_y(&self, mm: f64) -> u32 {
        (mm / 25.4 * f64::from(self.res.y_dpi)).round() as u32
    }

    /// Vertical over horizontal density: rows per column of the same length (0.48 standard,
    /// 0.96 fine, 1.92 superfine).
    pub fn aspect(&self) -> f64 {
        f64::from(self.res.y_dpi) / f64::from(self.res.x_dpi)
    }

    /// The box (x, y, width, height-or-None) our own content goes in.
    pub fn content_box(&self) -> (u32, u32, u32, Option<u32>) {
        let side = self.mm_x(SIDE_MARGIN_MM);
        let top = self.mm_y(TOP_MARGIN_MM);
        let bottom = self.mm_y(BOTTOM_MARGIN_MM);
        let h = self
            .page_rows()
            .map(|r| r.saturating_sub(top + bottom).max(1));
        (side, top, SCAN_LINE - 2 * side, h)
    }
}

/// Size (columns, rows) of a source `w_in × h_in` inches placed at true size on the page,
/// shrunk (never enlarged) to fit `max_w` columns and, when given, `max_h` rows. Returns the
/// size and the scale factor applied to true size.
pub fn fit_physical(
    layout: &Layout,
    w_in: f64,
    h_in: f64,
    max_w: u32,
    max_h: Option<u32>,
) -> (u32, u32, f64) {
    let w = w_in * f64::from(layout.res.x_dpi);
    let h = h_in * f64::from(layout.res.y_dpi);
    // Shrink only when the rounded size would not fit: an A4 page is 2292.1 rows at 196 lpi
    // against a 2292-row A4 page, which is not worth resampling the whole page for.
    let mut s = 1.0f64;
    if w.round() > f64::from(max_w) {
        s = f64::from(max_w) / w;
    }
    if let Some(mh) = max_h
        && (h * s).round() > f64::from(mh)
    {
        s = s.min(f64::from(mh) / h);
    }
    let cw = ((w * s).round() as u32).clamp(1, max_w);
    let ch = ((h * s).round() as u32).max(1);
    (cw, ch, s)
}

/// Size (columns, rows) of a `w × h` pixel image with square pixels fitted to `max_w` columns
/// keeping its aspect on the fax's non-square grid, shrunk further to fit `max_h` rows when
/// given.
pub fn fit_pixels(layout: &Layout, w: u32, h: u32, max_w: u32, max_h: Option<u32>) -> (u32, u32) {
    let aspect = layout.aspect();
    let mut cw = f64::from(max_w);
    let mut ch = f64::from(h) * cw / f64::from(w) * aspect;
    if let Some(mh) = max_h
        && ch > f64::from(mh)
    {
        cw *= f64::from(mh) / ch;
        ch = f64::from(mh);
    }
    (
        (cw.round() as u32).clamp(1, max_w),
        (ch.round() as u32).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_lengths() {
        let l = |res, paper| Layout { res, paper }.page_rows();
        assert_eq!(l(Resolution::FINE, Paper::A4), Some(2292));
        assert_eq!(l(Resolution::STANDARD, Paper::A4), Some(1146));
        assert_eq!(l(Resolution::FINE, Paper::Letter), Some(2156));
        assert_eq!(l(Resolution::FINE, Paper::Auto), None);
    }

    #[test]
    fn a4_pdf_fits_at_true_size_letter_shrinks() {
        let lay = Layout {
            res: Resolution::FINE,
            paper: Paper::A4,
        };
        let (w, h, s) = fit_physical(&lay, 595.0 / 72.0, 842.0 / 72.0, SCAN_LINE, lay.page_rows());
        assert_eq!((w, h, s), (1686, 2292, 1.0));
        let (w, _, s) = fit_physical(&lay, 8.5, 11.0, SCAN_LINE, lay.page_rows());
        assert_eq!(w, 1728);
        assert!(s < 1.0);
    }

    #[test]
    fn pixels_fit_width_and_aspect() {
        let lay = Layout {
            res: Resolution::STANDARD,
            paper: Paper::A4,
        };
        // A square image becomes half as many rows as columns at standard resolution.
        let (w, h) = fit_pixels(&lay, 100, 100, 1600, None);
        assert_eq!((w, h), (1600, 769));
        // A very long one is shrunk to fit the height.
        let (w, h) = fit_pixels(&lay, 100, 10_000, 1600, Some(1000));
        assert_eq!(h, 1000);
        assert!(w < 30);
    }
}
