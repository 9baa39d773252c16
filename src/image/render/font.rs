//! The bundled monospace font (DejaVu Sans Mono, Bitstream Vera licence in
//! `fonts/DejaVuSansMono.LICENSE`) and drawing its glyphs onto bilevel pages at the fax's
//! non-square pixel density.
//!
//! PURE: the font is compiled into the binary (`include_bytes!`), nothing is read at run time.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::image::Page;

use super::gray::Gray;

/// DejaVu Sans Mono 2.37 as shipped by Debian's fonts-dejavu-core.
static FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSansMono.ttf");

/// The parsed bundled font (parsed once; a few milliseconds).
pub fn font() -> &'static fontdue::Font {
    static FONT: OnceLock<fontdue::Font> = OnceLock::new();
    FONT.get_or_init(|| {
        // The bytes are ours and known good; a failure here is a build defect, caught by the
        // unit tests below on every run.
        fontdue::Font::from_bytes(FONT_BYTES, fontdue::FontSettings::default())
            .expect("bundled DejaVu Sans Mono parses")
    })
}

/// Character drawn in place of one the font lacks: visible, never a blank or a `.notdef` box.
pub const REPLACEMENT: char = '?';

/// Points to pixels at `dpi`.
pub fn pt_to_px(pt: f32, dpi: f32) -> f32 {
    pt * dpi / 72.0
}

/// Advance of one monospace cell, in pixels per pixel of em size (0.602 for DejaVu Sans Mono).
pub fn advance_ratio() -> f32 {
    font().metrics('M', 1000.0).advance_width / 1000.0
}

/// A rasterized glyph resampled to the page's vertical density: coverage already thresholded.
#[derive(Debug, Clone)]
struct Glyph {
    /// Offset of the bitmap's left edge from the pen position, columns.
    xmin: i32,
    /// Rows from the bitmap's top edge down to the baseline.
    top: i32,
    width: u32,
    height: u32,
    /// `width * height`, true = ink.
    ink: Vec<bool>,
}

/// Draws text with glyphs cached per (char, size), for one vertical aspect.
pub struct Pen {
    px: f32,
    aspect: f64,
    cache: HashMap<char, Glyph>,
    /// Characters that the font lacks and were drawn as [`REPLACEMENT`].
    pub missing: u64,
}

impl Pen {
    /// A pen for em size `px` (in columns) on a grid whose rows are `aspect` times as dense
    /// as its columns (y_dpi / x_dpi).
    pub fn new(px: f32, aspect: f64) -> Pen {
        Pen {
            px,
            aspect,
            cache: HashMap::new(),
            missing: 0,
        }
    }

    /// Em size in columns.
    pub fn px(&self) -> f32 {
        self.px
    }

    /// Cell advance in columns.
    pub fn advance(&self) -> f32 {
        font().metrics('M', self.px).advance_width
    }

    /// (ascent, line height) in rows.
    pub fn line_rows(&self) -> (u32, u32) {
        let m = font()
            .horizontal_line_metrics(self.px)
            .unwrap_or(fontdue::LineMetrics {
                ascent: self.px * 0.93,
                descent: -self.px * 0.24,
                line_gap: 0.0,
                new_line_size: self.px * 1.17,
            });
        (
            (f64::from(m.ascent) * self.aspect).ceil() as u32,
            (f64::from(m.new_line_size) * self.aspect).ceil() as u32,
        )
    }

    /// True when the font has a glyph for `c`.
    pub fn has_glyph(c: char) -> bool {
        font().has_glyph(c)
    }

    fn glyph(&mut self, c: char) -> &Glyph {
        let (px, aspect) = (self.px, self.aspect);
        self.cache.entry(c).or_insert_with(|| {
            let (m, cov) = font().rasterize(c, px);
            let rows = ((m.height as f64) * aspect).round().max(1.0) as u32;
            let top = ((f64::from(m.ymin) + m.height as f64) * aspect).round() as i32;
            let (w, h) = (m.width as u32, m.height as u32);
            let ink = if w == 0 || h == 0 {
                Vec::new()
            } else {
                let g = Gray {
                    width: w,
                    height: h,
                    px: cov,
                }
                .resize(w, rows);
                // Coverage ≥ 50 % is ink: what a printer would print at this density.
                g.px.iter().map(|&c| c >= 128).collect()
            };
            Glyph {
                xmin: m.xmin,
                top,
                width: if ink.is_empty() { 0 } else { w },
                height: if ink.is_empty() { 0 } else { rows },
                ink,
            }
        })
    }

    /// Draws `c` with its pen position at column `x` and baseline at row `baseline`; pixels off
    /// the page are clipped. Characters the font lacks are drawn as [`REPLACEMENT`] and counted.
    pub fn draw(&mut self, page: &mut Page, c: char, x: i64, baseline: i64) {
        let c = if font().has_glyph(c) {
            c
        } else {
            self.missing += 1;
            REPLACEMENT
        };
        let g = self.glyph(c).clone();
        let x0 = x + i64::from(g.xmin);
        let y0 = baseline - i64::from(g.top);
        for gy in 0..g.height {
            let y = y0 + i64::from(gy);
            if y < 0 || y >= i64::from(page.height()) {
                continue;
            }
            for gx in 0..g.width {
                if g.ink[(gy * g.width + gx) as usize] {
                    let px = x0 + i64::from(gx);
                    if px >= 0 && px < i64::from(page.width()) {
                        page.set(px as u32, y as u32, true);
                    }
                }
            }
        }
    }

    /// Draws a string from column `x` on `baseline`, one cell per character; returns the
    /// column after the last one.
    pub fn draw_str(&mut self, page: &mut Page, s: &str, x: i64, baseline: i64) -> i64 {
        let adv = f64::from(self.advance());
        let mut n = 0usize;
        for c in s.chars() {
            if !c.is_control() {
                self.draw(page, c, x + (n as f64 * adv).round() as i64, baseline);
                n += 1;
            }
        }
        x + (n as f64 * adv).round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Resolution;

    #[test]
    fn bundled_font_covers_the_scripts_we_promise() {
        for c in "AzÀéçñøßŁűΑΩαωЖжЯя─│┌┐└┘├┤┬┴┼═║╔╗╚╝€".chars()
        {
            assert!(Pen::has_glyph(c), "{c:?} missing");
        }
        let r = advance_ratio();
        assert!((r - 0.602).abs() < 0.01, "{r}");
    }

    #[test]
    fn draws_and_counts_missing() {
        let mut p = Page::new(200, 60, Resolution::FINE).unwrap();
        let mut pen = Pen::new(30.0, 0.96);
        let end = pen.draw_str(&mut p, "Ab\u{4e00}", 5, 40);
        assert!(end > 5 + 2 * 17);
        assert!(p.black_pixels() > 100);
        assert_eq!(pen.missing, 1, "CJK is not in DejaVu Sans Mono");
        // Off-page drawing is clipped, not a panic.
        pen.draw_str(&mut p, "xyz", -1000, -1000);
        pen.draw_str(&mut p, "xyz", 1_000_000, 1_000_000);
    }
}
