//! Scan conversion without anti-aliasing: device-space paths to horizontal pixel spans.
//!
//! PURE. A path is flattened into line segments (kurbo), the segments become an edge list,
//! and one sweep down the rows finds, per row, which pixels the shape paints. Two rules:
//!
//! - [`Sampling::Centre`]: a pixel is painted when its centre is inside the shape, a centre
//!   on the boundary counting as inside — what FreeType's monochrome rasterizer does for
//!   glyphs (poppler's `-mono` text).
//! - [`Sampling::Touch`]: "any coverage", ISO 32000-1 §10.6.5 ("a shape shall be painted as
//!   any pixel whose square region intersects the shape, no matter how small"), in the form a
//!   non-anti-aliased Splash fill gives it: every pixel an edge passes through in a row
//!   (ends included, so a vertex exactly on a pixel corner paints the pixel right/below), plus
//!   the pixels between, where the winding number on the row's top line says "inside".
//!
//! "Inside" follows the path's fill rule, ISO 32000-1 §8.5.3.3.2 (non-zero winding number)
//! and §8.5.3.3.3 (even-odd). Open subpaths are closed implicitly, as filling requires
//! (§8.5.3.1).
//!
//! Work is bounded: coordinates are clamped to a window a little larger than any page, and
//! a path that flattens to more than [`MAX_EDGES`] segments is refused ([`TooComplex`]) so
//! that the caller can hand the page to the general renderer instead.

use hayro::hayro_interpret::FillRule;
use hayro::kurbo::{Affine, PathEl, Point};

/// Segments one path may flatten to before it is refused.
pub const MAX_EDGES: usize = 200_000;

/// Device coordinates are clamped to ±this: far outside any page (65535 rows at most), yet
/// small enough that flattening a clamped curve stays cheap and f64 arithmetic exact enough.
const CLAMP: f64 = 1_048_576.0;

/// Flattening tolerance in device pixels: a curve is never more than this from its polygon.
pub const TOLERANCE: f64 = 0.1;

/// Which pixels a shape paints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Pixel centre inside the shape (or on its boundary).
    Centre,
    /// Shape touches the pixel (Splash's any-coverage rule).
    Touch,
}

/// A path flattened to more segments than [`MAX_EDGES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooComplex;

/// An integer pixel rectangle, `x0..x1` × `y0..y1` (exclusive ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IRect {
    /// Left column.
    pub x0: i32,
    /// Top row.
    pub y0: i32,
    /// One past the right column.
    pub x1: i32,
    /// One past the bottom row.
    pub y1: i32,
}

impl IRect {
    /// The empty rectangle.
    pub const EMPTY: IRect = IRect {
        x0: 0,
        y0: 0,
        x1: 0,
        y1: 0,
    };

    /// Whether no pixel is inside.
    pub fn is_empty(&self) -> bool {
        self.x0 >= self.x1 || self.y0 >= self.y1
    }

    /// The common part of two rectangles (maybe empty).
    pub fn intersect(&self, o: &IRect) -> IRect {
        let r = IRect {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        };
        if r.is_empty() { IRect::EMPTY } else { r }
    }
}

/// A line segment with `y0 <= y1`; `dir` is +1 for a segment that went down, −1 up, 0 for a
/// horizontal one (which has no winding but can touch pixels).
#[derive(Debug, Clone, Copy)]
struct Edge {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    /// dx/dy (0 for horizontal edges).
    slope: f64,
    dir: i32,
}

impl Edge {
    #[inline]
    fn x_at(&self, y: f64) -> f64 {
        self.x0 + (y - self.y0) * self.slope
    }
}

/// Reusable scan converter (keeps its buffers between paths).
#[derive(Default)]
pub struct Scanner {
    edges: Vec<Edge>,
    active: Vec<usize>,
    crossings: Vec<(f64, i32)>,
    spans: Vec<(i32, i32)>,
    /// Bounding box of the edges added so far (device units).
    min: Point,
    max: Point,
}

fn clamp_point(p: Point) -> Option<Point> {
    if !(p.x.is_finite() && p.y.is_finite()) {
        return None;
    }
    Some(Point::new(
        p.x.clamp(-CLAMP, CLAMP),
        p.y.clamp(-CLAMP, CLAMP),
    ))
}

impl Scanner {
    /// A scanner with no edges.
    pub fn new() -> Scanner {
        Scanner::default()
    }

    fn clear(&mut self) {
        self.edges.clear();
        self.min = Point::new(f64::MAX, f64::MAX);
        self.max = Point::new(f64::MIN, f64::MIN);
    }

    fn line(&mut self, a: Point, b: Point) -> Result<(), TooComplex> {
        if self.edges.len() >= MAX_EDGES {
            return Err(TooComplex);
        }
        self.min.x = self.min.x.min(a.x).min(b.x);
        self.min.y = self.min.y.min(a.y).min(b.y);
        self.max.x = self.max.x.max(a.x).max(b.x);
        self.max.y = self.max.y.max(a.y).max(b.y);
        let e = if a.y < b.y {
            Edge {
                x0: a.x,
                y0: a.y,
                x1: b.x,
                y1: b.y,
                slope: (b.x - a.x) / (b.y - a.y),
                dir: 1,
            }
        } else if a.y > b.y {
            Edge {
                x0: b.x,
                y0: b.y,
                x1: a.x,
                y1: a.y,
                slope: (a.x - b.x) / (a.y - b.y),
                dir: -1,
            }
        } else {
            Edge {
                x0: a.x.min(b.x),
                y0: a.y,
                x1: a.x.max(b.x),
                y1: a.y,
                slope: 0.0,
                dir: 0,
            }
        };
        self.edges.push(e);
        Ok(())
    }

    /// Replaces the edge list with `path` mapped through `t`, flattened; subpaths are closed.
    /// A path with a non-finite coordinate is dropped whole (nothing is drawn).
    pub fn set_path(
        &mut self,
        path: impl IntoIterator<Item = PathEl>,
        t: Affine,
    ) -> Result<(), TooComplex> {
        self.clear();
        let mut bad = false;
        let mut start: Option<Point> = None;
        let mut last: Option<Point> = None;
        let mut res = Ok(());
        let mapped = path.into_iter().map(|el| t * el);
        // Clamp before flattening: flattening work grows with the curve's size.
        let clamped = mapped.map(|el| {
            let mut c = |p: Point| {
                clamp_point(p).unwrap_or_else(|| {
                    bad = true;
                    Point::ZERO
                })
            };
            match el {
                PathEl::MoveTo(p) => PathEl::MoveTo(c(p)),
                PathEl::LineTo(p) => PathEl::LineTo(c(p)),
                PathEl::QuadTo(p, q) => PathEl::QuadTo(c(p), c(q)),
                PathEl::CurveTo(p, q, r) => PathEl::CurveTo(c(p), c(q), c(r)),
                PathEl::ClosePath => PathEl::ClosePath,
            }
        });
        let mut segs: Vec<(Point, Point)> = Vec::new();
        hayro::kurbo::flatten(clamped, TOLERANCE, |el| {
            if segs.len() > MAX_EDGES {
                return;
            }
            match el {
                PathEl::MoveTo(p) => {
                    if let (Some(s), Some(l)) = (start, last)
                        && s != l
                    {
                        segs.push((l, s));
                    }
                    start = Some(p);
                    last = Some(p);
                }
                PathEl::LineTo(p) => {
                    if let Some(l) = last {
                        segs.push((l, p));
                    } else {
                        start = Some(p);
                    }
                    last = Some(p);
                }
                PathEl::ClosePath => {
                    if let (Some(s), Some(l)) = (start, last)
                        && s != l
                    {
                        segs.push((l, s));
                    }
                    last = start;
                }
                // flatten emits lines only.
                PathEl::QuadTo(..) | PathEl::CurveTo(..) => {}
            }
        });
        if let (Some(s), Some(l)) = (start, last)
            && s != l
        {
            segs.push((l, s));
        }
        if bad {
            self.clear();
            return Ok(());
        }
        for (a, b) in segs {
            if let Err(e) = self.line(a, b) {
                res = Err(e);
                break;
            }
        }
        if res.is_err() {
            self.clear();
        }
        res
    }

    /// Adds one segment (already in device space) without closing anything: for strokes
    /// drawn one pixel wide.
    pub fn add_segment(&mut self, a: Point, b: Point) -> Result<(), TooComplex> {
        match (clamp_point(a), clamp_point(b)) {
            (Some(a), Some(b)) => self.line(a, b),
            _ => Ok(()),
        }
    }

    /// Starts an empty edge list for [`Scanner::add_segment`].
    pub fn begin_segments(&mut self) {
        self.clear();
    }

    /// The pixel rectangle the edges can paint (for [`Sampling::Touch`], the largest).
    pub fn pixel_bounds(&self) -> IRect {
        if self.edges.is_empty() {
            return IRect::EMPTY;
        }
        IRect {
            x0: self.min.x.floor() as i32,
            y0: self.min.y.floor() as i32,
            x1: self.max.x.ceil() as i32 + 1,
            y1: self.max.y.ceil() as i32 + 1,
        }
    }

    /// Edges in the list.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The work [`Scanner::fill`] will do inside `clip`, known before it starts: one step for
    /// every row of the area it sweeps and for every row each edge is active in.
    pub fn sweep_cost(&self, clip: IRect) -> u64 {
        let area = clip.intersect(&self.pixel_bounds());
        if area.is_empty() {
            return 0;
        }
        let (top, bottom) = (f64::from(area.y0), f64::from(area.y1));
        let crossings: f64 = self
            .edges
            .iter()
            .map(|e| (e.y1.min(bottom) - e.y0.max(top)).max(0.0) + 1.0)
            .sum();
        // Every value is finite (clamped coordinates); the cast saturates.
        (area.y1 - area.y0) as u64 + crossings as u64
    }

    /// Sweeps the edges row by row inside `clip` and calls `span(y, x0, x1)` for each run of
    /// painted pixels (`x0..x1`, non-empty, within `clip`, left to right, not overlapping).
    pub fn fill(
        &mut self,
        rule: FillRule,
        sampling: Sampling,
        clip: IRect,
        mut span: impl FnMut(i32, i32, i32),
    ) {
        let area = clip.intersect(&self.pixel_bounds());
        if area.is_empty() {
            return;
        }
        self.edges
            .sort_unstable_by(|a, b| a.y0.partial_cmp(&b.y0).unwrap_or(std::cmp::Ordering::Equal));
        self.active.clear();
        let mut next = 0usize;
        for y in area.y0..area.y1 {
            let (top, bottom, centre) = (f64::from(y), f64::from(y) + 1.0, f64::from(y) + 0.5);
            while next < self.edges.len() && self.edges[next].y0 < bottom {
                self.active.push(next);
                next += 1;
            }
            let edges = &self.edges;
            // An edge stays while it reaches this row's top line (an edge ending exactly on it
            // still touches the row).
            self.active.retain(|&i| edges[i].y1 >= top);
            if self.active.is_empty() {
                if next >= self.edges.len() {
                    break;
                }
                continue;
            }

            self.spans.clear();
            self.crossings.clear();
            // Centre: winding on the scanline through pixel centres; Touch: on the row's top
            // line (Splash counts an edge in a row iff ymin <= top < ymax).
            let line = match sampling {
                Sampling::Centre => centre,
                Sampling::Touch => top,
            };
            for &i in &self.active {
                let e = &edges[i];
                if e.dir != 0 && e.y0 <= line && line < e.y1 {
                    self.crossings.push((e.x_at(line), e.dir));
                }
            }
            self.crossings.sort_unstable_by(|a, b| {
                a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal)
            });
            let mut wind = 0i32;
            let mut enter = 0.0f64;
            for &(x, d) in &self.crossings {
                let was = inside(rule, wind);
                wind += d;
                let now = inside(rule, wind);
                if !was && now {
                    enter = x;
                } else if was && !now {
                    let (a, b) = match sampling {
                        // Centres i + 0.5 in [enter, x], both ends inclusive.
                        Sampling::Centre => ((enter - 0.5).ceil(), (x - 0.5).floor() + 1.0),
                        Sampling::Touch => (enter.floor(), x.floor() + 1.0),
                    };
                    push_span(&mut self.spans, a, b);
                }
            }
            if sampling == Sampling::Touch {
                for &i in &self.active {
                    let e = &edges[i];
                    let (lo, hi) = if e.dir == 0 {
                        if e.y0 < top || e.y0 >= bottom {
                            continue;
                        }
                        (e.x0, e.x1)
                    } else {
                        let ya = e.y0.max(top);
                        let yb = e.y1.min(bottom);
                        let (xa, xb) = (e.x_at(ya), e.x_at(yb));
                        (xa.min(xb), xa.max(xb))
                    };
                    // Every pixel the edge passes through in this row, both ends included.
                    push_span(&mut self.spans, lo.floor(), hi.floor() + 1.0);
                }
            }
            if self.spans.is_empty() {
                continue;
            }
            self.spans.sort_unstable();
            let (mut cur0, mut cur1) = self.spans[0];
            for &(a, b) in &self.spans[1..] {
                if a <= cur1 {
                    cur1 = cur1.max(b);
                } else {
                    emit(&mut span, y, cur0, cur1, &area);
                    (cur0, cur1) = (a, b);
                }
            }
            emit(&mut span, y, cur0, cur1, &area);
        }
    }
}

#[inline]
fn inside(rule: FillRule, wind: i32) -> bool {
    match rule {
        FillRule::NonZero => wind != 0,
        FillRule::EvenOdd => wind & 1 != 0,
    }
}

#[inline]
fn push_span(spans: &mut Vec<(i32, i32)>, a: f64, b: f64) {
    // Clamped coordinates keep these well inside i32.
    let (a, b) = (a as i32, b as i32);
    if a < b {
        spans.push((a, b));
    }
}

#[inline]
fn emit(span: &mut impl FnMut(i32, i32, i32), y: i32, a: i32, b: i32, clip: &IRect) {
    let (a, b) = (a.max(clip.x0), b.min(clip.x1));
    if a < b {
        span(y, a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hayro::kurbo::{BezPath, Circle, Rect, Shape};

    const PAGE: IRect = IRect {
        x0: 0,
        y0: 0,
        x1: 100,
        y1: 100,
    };

    fn spans(path: &BezPath, rule: FillRule, s: Sampling) -> Vec<(i32, i32, i32)> {
        let mut sc = Scanner::new();
        sc.set_path(path.iter(), Affine::IDENTITY).unwrap();
        let mut out = Vec::new();
        sc.fill(rule, s, PAGE, |y, a, b| out.push((y, a, b)));
        out
    }

    #[test]
    fn aligned_rectangle_is_exact_under_both_rules() {
        let r = Rect::new(10.0, 20.0, 30.0, 25.0).to_path(0.1);
        let want: Vec<_> = (20..25).map(|y| (y, 10, 30)).collect();
        assert_eq!(spans(&r, FillRule::NonZero, Sampling::Centre), want);
        // Touch includes the pixels right of and below edges lying on pixel boundaries
        // (Splash: a 2-pixel box on integers covers 3 columns).
        let want: Vec<_> = (20..26).map(|y| (y, 10, 31)).collect();
        assert_eq!(spans(&r, FillRule::NonZero, Sampling::Touch), want);
    }

    #[test]
    fn fractional_rectangle_centre_versus_touch() {
        let r = Rect::new(10.2, 20.7, 12.6, 22.2).to_path(0.1);
        // Centres 10.5, 11.5, 12.5 inside x; 21.5 inside y.
        assert_eq!(
            spans(&r, FillRule::NonZero, Sampling::Centre),
            vec![(21, 10, 13)]
        );
        // Touch: columns 10..=12, rows 20..=22.
        assert_eq!(
            spans(&r, FillRule::NonZero, Sampling::Touch),
            vec![(20, 10, 13), (21, 10, 13), (22, 10, 13)]
        );
    }

    #[test]
    fn fill_rules_differ_on_a_doubled_square() {
        let mut p = Rect::new(0.0, 0.0, 10.0, 10.0).to_path(0.1);
        p.extend(Rect::new(2.0, 2.0, 8.0, 8.0).to_path(0.1));
        let nz = spans(&p, FillRule::NonZero, Sampling::Centre);
        let eo = spans(&p, FillRule::EvenOdd, Sampling::Centre);
        assert_eq!(nz.iter().filter(|s| s.0 == 5).count(), 1);
        assert_eq!(
            eo.iter().filter(|s| s.0 == 5).copied().collect::<Vec<_>>(),
            vec![(5, 0, 2), (5, 8, 10)]
        );
    }

    #[test]
    fn circle_area_is_close() {
        let c = Circle::new((50.0, 50.0), 20.0).to_path(0.1);
        let area: i32 = spans(&c, FillRule::NonZero, Sampling::Centre)
            .iter()
            .map(|s| s.2 - s.1)
            .sum();
        let want = std::f64::consts::PI * 400.0;
        assert!((f64::from(area) - want).abs() < 20.0, "{area}");
    }

    #[test]
    fn hostile_coordinates_are_safe() {
        let mut p = BezPath::new();
        p.move_to((f64::NAN, 1.0));
        p.line_to((5.0, 5.0));
        assert!(spans(&p, FillRule::NonZero, Sampling::Touch).is_empty());
        let mut p = BezPath::new();
        p.move_to((-1e300, -1e300));
        p.curve_to((1e300, 0.0), (0.0, 1e300), (1e300, 1e300));
        p.line_to((-1e300, 1e300));
        let _ = spans(&p, FillRule::EvenOdd, Sampling::Touch);
    }

    #[test]
    fn clip_limits_spans() {
        let r = Rect::new(-50.0, -50.0, 500.0, 500.0).to_path(0.1);
        let clip = IRect {
            x0: 3,
            y0: 4,
            x1: 7,
            y1: 6,
        };
        let mut sc = Scanner::new();
        sc.set_path(r.iter(), Affine::IDENTITY).unwrap();
        let mut out = Vec::new();
        sc.fill(FillRule::NonZero, Sampling::Touch, clip, |y, a, b| {
            out.push((y, a, b))
        });
        assert_eq!(out, vec![(4, 3, 7), (5, 3, 7)]);
        // A vertical edge exactly on a pixel boundary under centre sampling: centre on the
        // boundary counts as inside.
        let r = Rect::new(0.5, 0.0, 2.5, 1.0).to_path(0.1);
        assert_eq!(
            spans(&r, FillRule::NonZero, Sampling::Centre),
            vec![(0, 0, 3)]
        );
    }
}
