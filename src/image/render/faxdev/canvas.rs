//! The page being drawn: an 8-bit gray buffer (0 black, 255 white paper) and its clip stack.
//!
//! PURE. Every paint goes through [`Canvas::span`] or [`Canvas::runs`], which apply the
//! current clip: a pixel rectangle plus, for clips that are not rectangles, a 1-bit mask
//! (ISO 32000-1 §8.5.4: the clipping path only ever shrinks within a graphics state, so a
//! new level is the old one intersected with the new path, computed once at push time).

use std::rc::Rc;

use super::scan::IRect;
use crate::image::render::gray::Gray;

/// How a paint changes a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ink {
    /// Gray level of the paint (BT.601 luminance).
    pub gray: u8,
    /// Opacity, 255 = opaque (ISO 32000-1 §11.3.7.2 constant alpha over an opaque page
    /// reduces to `dst + (src − dst)·α`).
    pub alpha: u8,
}

impl Ink {
    /// Ink for RGBA components in 0..=1 (ITU-R BT.601 weights, as poppler's gray conversion).
    pub fn from_rgba(c: [f32; 4]) -> Ink {
        let f = |v: f32| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u32;
        let (r, g, b) = (f(c[0]), f(c[1]), f(c[2]));
        Ink {
            gray: ((r * 77 + g * 150 + b * 29) >> 8) as u8,
            alpha: f(c[3]) as u8,
        }
    }
}

/// Blends `src` with opacity `a` (0..=255) over `dst`.
#[inline]
pub fn blend(dst: u8, src: u8, a: u8) -> u8 {
    let (d, s, a) = (i32::from(dst), i32::from(src), i32::from(a));
    (d + ((s - d) * a + 127) / 255) as u8
}

/// One bit per pixel over `rect`.
struct Mask {
    rect: IRect,
    words: usize,
    bits: Vec<u64>,
}

impl Mask {
    fn new(rect: IRect) -> Mask {
        let words = ((rect.x1 - rect.x0) as usize).div_ceil(64);
        Mask {
            rect,
            words,
            bits: vec![0; words * (rect.y1 - rect.y0) as usize],
        }
    }

    fn set_run(&mut self, y: i32, x0: i32, x1: i32) {
        let row = (y - self.rect.y0) as usize * self.words;
        for x in x0..x1 {
            let dx = (x - self.rect.x0) as usize;
            self.bits[row + dx / 64] |= 1 << (dx % 64);
        }
    }

    /// Calls `f(a, b)` for each run of set bits within `x0..x1` on row `y` (inside `rect`),
    /// a word at a time.
    fn runs(&self, y: i32, x0: i32, x1: i32, mut f: impl FnMut(i32, i32)) {
        let row = &self.bits[(y - self.rect.y0) as usize * self.words..][..self.words];
        let mut x = x0;
        let mut start: Option<i32> = None;
        while x < x1 {
            let dx = (x - self.rect.x0) as usize;
            let bit = dx % 64;
            // The word's bits from x on; zeros shifted in at the top.
            let word = row[dx / 64] >> bit;
            let lim = ((64 - bit) as i32).min(x1 - x);
            match start {
                None => {
                    let zeros = word.trailing_zeros() as i32;
                    if zeros >= lim {
                        x += lim;
                    } else {
                        x += zeros;
                        start = Some(x);
                    }
                }
                Some(s) => {
                    let ones = (!word).trailing_zeros() as i32;
                    if ones >= lim {
                        x += lim;
                    } else {
                        x += ones;
                        f(s, x);
                        start = None;
                    }
                }
            }
        }
        if let Some(s) = start {
            f(s, x1);
        }
    }
}

struct Clip {
    rect: IRect,
    mask: Option<Rc<Mask>>,
}

/// A gray page with a clip stack, and per row the columns painted so far: a page is mostly
/// paper, so making it bilevel and wiping it for the next page only visit those.
pub struct Canvas {
    /// The pixels.
    pub gray: Gray,
    clips: Vec<Clip>,
    /// Per row, the painted columns `x0..x1` (`x0 >= x1`: untouched, all white).
    dirty: Vec<(u32, u32)>,
}

/// Mask bits a page may hold across its whole clip stack (a fine A4 page is 4 Mbit): more
/// nested path clips than this are refused (the page is drawn by the general renderer).
const MAX_MASK_BITS: usize = 64 << 20;

impl Canvas {
    /// A white `w × h` page with no clip but the page itself.
    pub fn new(gray: Gray) -> Canvas {
        let page = IRect {
            x0: 0,
            y0: 0,
            x1: gray.width as i32,
            y1: gray.height as i32,
        };
        let rows = gray.height as usize;
        // The caller may hand in a page that is not white: all of it counts as painted.
        let dirty = vec![(0, gray.width); rows];
        Canvas {
            gray,
            clips: vec![Clip {
                rect: page,
                mask: None,
            }],
            dirty,
        }
    }

    /// Makes this a white `width × height` page with no clip, reusing the buffer: only the
    /// painted parts of the previous page are wiped.
    pub fn reset(&mut self, width: u32, height: u32) {
        if self.gray.width != width || self.gray.height != height {
            *self = Canvas::new(Gray::white(width, height));
            self.dirty.fill((width, 0));
            return;
        }
        let w = width as usize;
        for (y, d) in self.dirty.iter_mut().enumerate() {
            if d.0 < d.1 {
                self.gray.px[y * w + d.0 as usize..y * w + d.1 as usize].fill(255);
            }
            *d = (width, 0);
        }
        self.clips.truncate(1);
    }

    /// The painted columns of row `y` (empty when the row is white).
    pub fn dirty(&self, y: u32) -> (u32, u32) {
        self.dirty[y as usize]
    }

    #[inline]
    fn mark(&mut self, y: i32, x0: i32, x1: i32) {
        let d = &mut self.dirty[y as usize];
        d.0 = d.0.min(x0 as u32);
        d.1 = d.1.max(x1 as u32);
    }

    /// The current clip's bounding rectangle (what a fill needs to scan).
    pub fn clip_rect(&self) -> IRect {
        self.top().rect
    }

    fn top(&self) -> &Clip {
        // The page level is never popped.
        &self.clips[self.clips.len() - 1]
    }

    /// Pushes a rectangular clip (in pixels).
    pub fn push_rect(&mut self, r: IRect) {
        let top = self.top();
        let clip = Clip {
            rect: top.rect.intersect(&r),
            mask: top.mask.clone(),
        };
        self.clips.push(clip);
    }

    /// Pushes a clip made of the pixel runs `spans` calls back with (within `bounds`, which
    /// the caller has intersected with [`Canvas::clip_rect`]). `false` when the masks would
    /// use too much memory (nothing is pushed).
    pub fn push_mask(
        &mut self,
        bounds: IRect,
        spans: impl FnOnce(&mut dyn FnMut(i32, i32, i32)),
    ) -> bool {
        let bounds = bounds.intersect(&self.top().rect);
        let used: usize = self
            .clips
            .iter()
            .filter_map(|c| c.mask.as_ref())
            .map(|m| m.bits.len() * 64)
            .sum();
        let want = ((bounds.x1 - bounds.x0).max(0) as usize).div_ceil(64)
            * 64
            * (bounds.y1 - bounds.y0).max(0) as usize;
        if used + want > MAX_MASK_BITS {
            return false;
        }
        if bounds.is_empty() {
            self.clips.push(Clip {
                rect: IRect::EMPTY,
                mask: None,
            });
            return true;
        }
        let mut mask = Mask::new(bounds);
        let parent = self.top().mask.clone();
        spans(&mut |y, a, b| {
            let (a, b) = (a.max(bounds.x0), b.min(bounds.x1));
            if y < bounds.y0 || y >= bounds.y1 || a >= b {
                return;
            }
            match &parent {
                None => mask.set_run(y, a, b),
                Some(p) => p.runs(y, a, b, |a, b| mask.set_run(y, a, b)),
            }
        });
        self.clips.push(Clip {
            rect: bounds,
            mask: Some(Rc::new(mask)),
        });
        true
    }

    /// Pops the innermost clip (the page itself stays).
    pub fn pop(&mut self) {
        if self.clips.len() > 1 {
            self.clips.pop();
        }
    }

    /// Calls `f(a, b)` for each run of pixels of `x0..x1` on row `y` that the clip lets
    /// through.
    pub fn runs(&self, y: i32, x0: i32, x1: i32, mut f: impl FnMut(i32, i32)) {
        let c = self.top();
        if y < c.rect.y0 || y >= c.rect.y1 {
            return;
        }
        let (x0, x1) = (x0.max(c.rect.x0), x1.min(c.rect.x1));
        if x0 >= x1 {
            return;
        }
        match &c.mask {
            None => f(x0, x1),
            Some(m) => m.runs(y, x0, x1, f),
        }
    }

    /// Paints `x0..x1` on row `y` with `ink`, through the clip.
    pub fn span(&mut self, y: i32, x0: i32, x1: i32, ink: Ink) {
        let c = &self.clips[self.clips.len() - 1];
        if y < c.rect.y0 || y >= c.rect.y1 {
            return;
        }
        let (x0, x1) = (x0.max(c.rect.x0), x1.min(c.rect.x1));
        if x0 >= x1 {
            return;
        }
        let w = self.gray.width as usize;
        let d = &mut self.dirty[y as usize];
        d.0 = d.0.min(x0 as u32);
        d.1 = d.1.max(x1 as u32);
        let row = &mut self.gray.px[y as usize * w..(y as usize + 1) * w];
        let mut paint = |a: i32, b: i32| {
            let px = &mut row[a as usize..b as usize];
            if ink.alpha == 255 {
                px.fill(ink.gray);
            } else {
                for p in px {
                    *p = blend(*p, ink.gray, ink.alpha);
                }
            }
        };
        match &c.mask {
            None => paint(x0, x1),
            Some(m) => m.runs(y, x0, x1, paint),
        }
    }

    /// Paints a glyph bitmap — `spans` of `(row, first column, end column)` relative to the
    /// origin `(ox, oy)` — with `ink`, through the clip: what [`Canvas::span`] for each span
    /// would do.
    ///
    /// Text is thousands of glyphs of a few pixels per row, so the common case (opaque ink,
    /// rectangular clip) is kept to a clamp and a store or two per span instead of a call to
    /// `memset` for every 1–10 pixel run.
    pub fn stamp(&mut self, spans: &[(i16, i16, i16)], ox: i32, oy: i32, ink: Ink) {
        let c = &self.clips[self.clips.len() - 1];
        if c.mask.is_some() || ink.alpha != 255 {
            for &(y, x0, x1) in spans {
                self.span(
                    oy + i32::from(y),
                    ox + i32::from(x0),
                    ox + i32::from(x1),
                    ink,
                );
            }
            return;
        }
        let r = c.rect;
        let w = self.gray.width as usize;
        for &(y, x0, x1) in spans {
            let y = oy + i32::from(y);
            if y < r.y0 || y >= r.y1 {
                continue;
            }
            let (a, b) = (
                (ox + i32::from(x0)).max(r.x0),
                (ox + i32::from(x1)).min(r.x1),
            );
            if a >= b {
                continue;
            }
            let d = &mut self.dirty[y as usize];
            d.0 = d.0.min(a as u32);
            d.1 = d.1.max(b as u32);
            let at = y as usize * w;
            fill_short(
                &mut self.gray.px[at + a as usize..at + b as usize],
                ink.gray,
            );
        }
    }

    /// Row `y` of the page for writing columns `x0..x1` (from [`Canvas::runs`], so inside
    /// the page and the clip).
    pub fn row_mut(&mut self, y: i32, x0: i32, x1: i32) -> &mut [u8] {
        self.mark(y, x0, x1);
        let w = self.gray.width as usize;
        &mut self.gray.px[y as usize * w..(y as usize + 1) * w]
    }
}

/// Sets every byte of `px` to `v`. Spans up to 16 bytes take two (overlapping) fixed-size
/// stores, which the compiler emits inline; longer ones go to `fill`.
#[inline]
fn fill_short(px: &mut [u8], v: u8) {
    let n = px.len();
    match n {
        8..=16 => {
            px[..8].copy_from_slice(&[v; 8]);
            px[n - 8..].copy_from_slice(&[v; 8]);
        }
        4..=7 => {
            px[..4].copy_from_slice(&[v; 4]);
            px[n - 4..].copy_from_slice(&[v; 4]);
        }
        // 1, 2 or 3 bytes: first, middle and last cover them all.
        1..=3 => {
            px[0] = v;
            px[n / 2] = v;
            px[n - 1] = v;
        }
        _ => px.fill(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas() -> Canvas {
        Canvas::new(Gray::white(200, 10))
    }

    #[test]
    fn stamp_paints_like_spans() {
        // Spans of every short length and some long ones, partly outside the clip.
        let spans: Vec<(i16, i16, i16)> = (0..40)
            .map(|i: i16| (i - 5, -3 + i % 7, -3 + i % 7 + i))
            .collect();
        for clip in [
            None,
            Some(IRect {
                x0: 2,
                y0: 3,
                x1: 30,
                y1: 20,
            }),
        ] {
            for ink in [
                Ink {
                    gray: 0,
                    alpha: 255,
                },
                Ink {
                    gray: 40,
                    alpha: 128,
                },
            ] {
                let (mut a, mut b) = (canvas(), canvas());
                if let Some(r) = clip {
                    a.push_rect(r);
                    b.push_rect(r);
                }
                a.stamp(&spans, 4, 2, ink);
                for &(y, x0, x1) in &spans {
                    b.span(2 + i32::from(y), 4 + i32::from(x0), 4 + i32::from(x1), ink);
                }
                assert_eq!(a.gray.px, b.gray.px, "{clip:?} {ink:?}");
                assert_eq!(a.dirty, b.dirty, "{clip:?} {ink:?}");
            }
        }
    }

    #[test]
    fn fill_short_fills_every_length() {
        for n in 0..40 {
            let mut v = vec![1u8; n + 4];
            fill_short(&mut v[2..2 + n], 9);
            assert!(v[2..2 + n].iter().all(|&p| p == 9), "{n}");
            assert_eq!((v[0], v[1], v[n + 2], v[n + 3]), (1, 1, 1, 1), "{n}");
        }
    }

    #[test]
    fn reset_wipes_only_what_was_painted() {
        let mut c = canvas();
        c.reset(200, 10);
        assert_eq!(c.dirty(3), (200, 0));
        c.span(
            3,
            5,
            9,
            Ink {
                gray: 0,
                alpha: 255,
            },
        );
        assert_eq!(c.dirty(3), (5, 9));
        c.push_rect(IRect::EMPTY);
        c.reset(200, 10);
        assert!(c.gray.px.iter().all(|&v| v == 255));
        assert_eq!(c.clip_rect().x1, 200);
        c.reset(20, 4);
        assert_eq!(c.gray.px.len(), 80);
    }

    #[test]
    fn mask_runs_cross_words_and_respect_parent() {
        let mut c = canvas();
        let all = IRect {
            x0: 0,
            y0: 0,
            x1: 200,
            y1: 10,
        };
        assert!(c.push_mask(all, |f| {
            f(1, 3, 150);
            f(1, 160, 170);
        }));
        let mut got = Vec::new();
        c.runs(1, 0, 200, |a, b| got.push((a, b)));
        assert_eq!(got, vec![(3, 150), (160, 170)]);
        // A nested clip is the intersection.
        assert!(c.push_mask(all, |f| f(1, 100, 165)));
        got.clear();
        c.runs(1, 0, 200, |a, b| got.push((a, b)));
        assert_eq!(got, vec![(100, 150), (160, 165)]);
        c.span(
            1,
            0,
            200,
            Ink {
                gray: 0,
                alpha: 255,
            },
        );
        let black: Vec<usize> = (0..200).filter(|&x| c.gray.at(x as u32, 1) == 0).collect();
        assert_eq!(black.len(), 55);
        c.pop();
        c.pop();
        c.span(
            2,
            0,
            200,
            Ink {
                gray: 0,
                alpha: 255,
            },
        );
        assert!((0..200).all(|x| c.gray.at(x, 2) == 0));
    }

    #[test]
    fn rect_clip_and_blend() {
        let mut c = canvas();
        c.push_rect(IRect {
            x0: 10,
            y0: 0,
            x1: 20,
            y1: 10,
        });
        c.span(
            0,
            0,
            200,
            Ink {
                gray: 0,
                alpha: 128,
            },
        );
        assert_eq!(c.gray.at(9, 0), 255);
        assert_eq!(c.gray.at(10, 0), 128);
        assert_eq!(c.gray.at(20, 0), 255);
        c.pop();
        c.pop();
        c.span(
            0,
            0,
            1,
            Ink {
                gray: 0,
                alpha: 255,
            },
        );
        assert_eq!(c.gray.at(0, 0), 0);
    }

    #[test]
    fn ink_is_bt601() {
        assert_eq!(Ink::from_rgba([1.0, 0.0, 0.0, 1.0]).gray, 76);
        assert_eq!(Ink::from_rgba([1.0, 1.0, 1.0, 1.0]).gray, 255);
        assert_eq!(Ink::from_rgba([f32::NAN, 0.0, 0.0, 0.5]).alpha, 128);
    }
}
