//! Glyph bitmaps: an outline glyph is scan-converted once per size and orientation and then
//! stamped at whole-pixel origins.
//!
//! PURE. This is how poppler's Splash draws text without anti-aliasing: FreeType renders the
//! glyph to a monochrome bitmap (a pixel is set when its centre is inside the outline) at
//! an integer pixel origin, and the bitmap is copied to the page. Stamping a cached bitmap at
//! a snapped origin is also what makes text cheap: a page of 11 pt text uses a few dozen
//! distinct glyphs thousands of times.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;

use hayro::hayro_interpret::FillRule;
use hayro::kurbo::{Affine, BezPath};

use super::scan::{IRect, Sampling, Scanner};

/// Glyphs larger than this (pixels, either side) are not cached but filled directly.
pub const MAX_CACHED: i32 = 256;

/// Spans all cached glyphs may hold (6 bytes each) before the cache is emptied.
const MAX_SPANS: usize = 1 << 20;

/// A glyph's painted pixels relative to its origin: (row, first column, end column).
pub type Spans = Rc<[(i16, i16, i16)]>;

/// The cache key: the font program's glyph identity and the glyph-to-device linear part,
/// quantised finely enough (2⁻²⁴ of a glyph unit per pixel) that keys differ only when the
/// bitmaps may.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key<G> {
    glyph: G,
    m: [i64; 4],
}

/// A multiply-and-rotate hasher for the glyph cache. A lookup happens for every glyph drawn,
/// and the standard SipHash of a key (an identity that is itself a 128-bit content hash, and
/// four integers) was a visible share of a text page's time. Flooding it with colliding keys
/// would need a PDF with many distinct glyph sizes, and the cache is emptied at
/// [`MAX_SPANS`] and every page has a time budget, so DoS resistance is not needed here.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        // An odd constant with well-spread bits (2⁶⁴ / golden ratio); the rotation lets high
        // bits of earlier words reach the low bits the table index is taken from.
        self.0 = (self.0.rotate_left(23) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low bits hashbrown indexes with.
        self.0 ^ (self.0 >> 29)
    }
}

/// Cached glyph bitmaps of one worker, shared by the pages it renders. `G` identifies a
/// glyph outline (hayro's `GlyphIdentifier`: its font program's content hash and glyph id,
/// compared without hashing it again for every glyph drawn).
pub struct GlyphCache<G> {
    map: HashMap<Key<G>, Option<Spans>, BuildHasherDefault<KeyHasher>>,
    spans: usize,
}

impl<G> Default for GlyphCache<G> {
    fn default() -> Self {
        GlyphCache {
            map: HashMap::default(),
            spans: 0,
        }
    }
}

fn quantise(v: f64) -> i64 {
    (v * 16_777_216.0).round().clamp(-9e18, 9e18) as i64
}

impl<G: Hash + Eq> GlyphCache<G> {
    /// An empty cache.
    pub fn new() -> GlyphCache<G> {
        GlyphCache::default()
    }

    /// The bitmap of glyph `id` under the linear map `m` (`[a, b, c, d]`, glyph units to
    /// device pixels), rasterized from `outline()` on first use. `None` when the glyph is too
    /// large to cache (the caller fills the outline itself).
    pub fn get(
        &mut self,
        scanner: &mut Scanner,
        id: G,
        m: [f64; 4],
        outline: impl FnOnce() -> BezPath,
    ) -> Option<Spans> {
        let key = Key {
            glyph: id,
            m: m.map(quantise),
        };
        if let Some(hit) = self.map.get(&key) {
            return hit.clone();
        }
        let spans = rasterize(scanner, &outline(), m);
        let n = spans.as_ref().map_or(0, |s| s.len());
        if self.spans + n > MAX_SPANS {
            self.map.clear();
            self.spans = 0;
        }
        self.spans += n;
        self.map.insert(key, spans.clone());
        spans
    }
}

fn rasterize(scanner: &mut Scanner, outline: &BezPath, m: [f64; 4]) -> Option<Spans> {
    let t = Affine::new([m[0], m[1], m[2], m[3], 0.0, 0.0]);
    if scanner.set_path(outline.iter(), t).is_err() {
        return None;
    }
    let b = scanner.pixel_bounds();
    if b.is_empty() {
        return Some(Rc::from(Vec::new()));
    }
    if b.x1 - b.x0 > MAX_CACHED || b.y1 - b.y0 > MAX_CACHED {
        return None;
    }
    let mut spans = Vec::new();
    // Non-zero winding: TrueType and Type 1/CFF outlines are drawn that way (FreeType, and
    // ISO 32000-1 §9.2.2 leaves glyph description to the font format).
    scanner.fill(
        FillRule::NonZero,
        Sampling::Centre,
        IRect {
            x0: b.x0,
            y0: b.y0,
            x1: b.x1,
            y1: b.y1,
        },
        |y, a, c| spans.push((y as i16, a as i16, c as i16)),
    );
    Some(Rc::from(spans))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hayro::kurbo::{Rect, Shape};

    #[test]
    fn cached_once_and_too_large_is_refused() {
        let mut c = GlyphCache::<u128>::new();
        let mut s = Scanner::new();
        let mut calls = 0;
        let square = || Rect::new(0.0, 0.0, 1000.0, 1000.0).to_path(0.1);
        let m = [0.01, 0.0, 0.0, -0.01];
        for _ in 0..3 {
            let g = c
                .get(&mut s, 7, m, || {
                    calls += 1;
                    square()
                })
                .unwrap();
            // 10 × 10 pixels above the origin (y flipped).
            assert_eq!(g.len(), 10);
            assert_eq!(g[0], (-10, 0, 10));
        }
        assert_eq!(calls, 1);
        assert!(c.get(&mut s, 8, [1.0, 0.0, 0.0, 1.0], square).is_none());
    }
}
