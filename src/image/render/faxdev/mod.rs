//! A fast bilevel-minded PDF page rasterizer: a [`hayro_interpret::Device`] that draws
//! straight into an 8-bit gray page, without anti-aliasing.
//!
//! PURE. hayro interprets the content stream (fonts, colour spaces, images, clipping paths)
//! and calls this device; this device does what a fax page needs and nothing more: solid
//! fills and strokes scan-converted without coverage arithmetic ([`scan`]), glyphs stamped
//! from a bitmap cache at whole-pixel origins ([`glyph`]), images point- or box-sampled
//! ([`image`]), clipping by rectangle or 1-bit mask ([`canvas`]).
//!
//! Work is metered ([`super::budget`]): before a page is interpreted its content stream's
//! operators are counted (through form XObjects, once per use: [`operator_count`]), and every
//! path, glyph and picture is charged before it is drawn, by what its drawing costs (edges and
//! the rows they cross, pixels). When the page's meter refuses, the device stops drawing and
//! the page ends with [`Outcome::Stopped`]: hayro's interpreter has no way to be interrupted,
//! so it reads the rest of the content stream without drawing, which the operator count
//! already paid for.
//!
//! Whatever it cannot draw exactly — soft masks, transparency groups with an opacity below 1
//! or a blend mode other than Normal, shading and tiling pattern paints, paths too complex to
//! scan within its work bounds — makes [`render_page`] answer [`Outcome::Unsupported`]; the
//! caller then renders the page with hayro's general renderer, so no page loses content.
//!
//! Rules that make the output match poppler's `pdftoppm -mono` (Splash without
//! anti-aliasing; the rules are written up in /work/notes/splash-mono.md): glyphs are
//! FreeType-style monochrome bitmaps (pixel centres inside the unhinted outline) placed at the
//! floored integer device origin; paths paint every pixel they touch (ISO 32000-1 §10.6.5);
//! axis-aligned rectangles are stroke-adjusted; thin strokes are drawn one pixel wide
//! (§8.4.3.2: a line width of 0 is "the thinnest line that can be rendered").

pub mod canvas;
pub mod glyph;
pub mod image;
pub mod scan;

use hayro::hayro_interpret::font::{Glyph, GlyphIdentifier, GlyphRun, OutlineGlyph};
use hayro::hayro_interpret::hayro_syntax::content::TypedIter;
use hayro::hayro_interpret::hayro_syntax::content::ops::TypedInstruction;
use hayro::hayro_interpret::hayro_syntax::object::dict::keys::{FORM, RESOURCES, SUBTYPE, TR, TR2};
use hayro::hayro_interpret::hayro_syntax::object::{Dict, Name, ObjectIdentifier, Stream};
use hayro::hayro_interpret::hayro_syntax::page::{Page, Resources};
use hayro::hayro_interpret::util::RectExt;
use hayro::hayro_interpret::{
    BlendMode, ClipPath, Context, Device, DrawMode, DrawProps, FillRule, Image, ImageData,
    ImageDrawProps, InterpreterCache, InterpreterSettings, Paint, SoftMask, StrokeProps,
    interpret_page,
};
use hayro::kurbo::{self, Affine, BezPath, PathEl, Point, Rect, Shape};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::ErrorKind;
use super::budget::{Meter, units};
use super::gray::Gray;
use canvas::{Canvas, Ink};
use glyph::GlyphCache;
use scan::{IRect, Sampling, Scanner, TooComplex};

/// How path fills and clips choose pixels (see the module documentation).
const PATH_SAMPLING: Sampling = Sampling::Touch;

/// Dash pieces one stroke may produce before the page goes to the general renderer.
const MAX_DASHES: f64 = 100_000.0;

/// What became of a page.
pub enum Outcome {
    /// Drawn completely: the page is in [`Reuse::canvas`].
    Drawn,
    /// Something on the page needs the general renderer.
    Unsupported {
        /// The first such feature.
        why: &'static str,
        /// The work the page's content would take the general renderer (in work units, see
        /// [`units::GENERAL_SEGMENT`]): what it should be charged before it is asked.
        work: u64,
    },
    /// The page's meter refused: drawing stopped (the page is incomplete).
    Stopped(ErrorKind),
}

/// Where a document's images are decoded and drawn, one at a time: the rendering threads of a
/// document share one slot, so that however many pages are drawn at once, at most one decoded
/// image is in memory (a full-page photo is megabytes; its page's other work — interpreting,
/// thresholding, dithering — stays parallel). It keeps the luma plane of the last JPEG
/// decoded by [`image::jpeg_luma`] for the next one.
#[derive(Default)]
pub struct ImageSlot(Mutex<Vec<u8>>);

impl ImageSlot {
    /// The slot's buffer; a panic while it was held (caught per page) leaves plain bytes.
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes held for decoded JPEG luma (width × height of the largest such image so far).
    pub fn luma_bytes(&self) -> usize {
        self.lock().capacity()
    }
}

/// State a worker keeps from page to page: the glyph cache, the scanner's buffers, the
/// page buffer itself (allocated once, wiped where painted) and the (shared) image slot.
pub struct Reuse {
    glyphs: GlyphCache<GlyphIdentifier>,
    scanner: Scanner,
    canvas: Canvas,
    images: Arc<ImageSlot>,
}

impl Default for Reuse {
    fn default() -> Reuse {
        Reuse {
            glyphs: GlyphCache::new(),
            scanner: Scanner::new(),
            canvas: Canvas::new(Gray::white(0, 0)),
            images: Arc::default(),
        }
    }
}

impl Reuse {
    /// Fresh caches.
    pub fn new() -> Reuse {
        Reuse::default()
    }

    /// Fresh caches drawing images in `images`, which other workers of the document share.
    pub fn sharing(images: &Arc<ImageSlot>) -> Reuse {
        Reuse {
            images: images.clone(),
            ..Reuse::default()
        }
    }

    /// The last page drawn.
    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// The image slot this worker draws images in.
    pub fn images(&self) -> &ImageSlot {
        &self.images
    }
}

/// Renders `page` through `transform` (PDF user space of the page to device pixels) onto a
/// white `width × height` page in `reuse`'s canvas, charging `meter` for the work (the page's
/// operators first: a page whose operators alone pass its limit is not interpreted at all).
pub fn render_page<'a>(
    page: &Page<'a>,
    transform: Affine,
    (width, height): (u32, u32),
    cache: &InterpreterCache<'a>,
    settings: &InterpreterSettings,
    reuse: &mut Reuse,
    meter: &mut Meter<'_>,
) -> Outcome {
    // With no limit the count is not needed (and not bounded either).
    if meter.limit() != u64::MAX {
        let ops = operator_count(page, meter.limit().saturating_add(1));
        if let Err(e) = meter.charge(ops.saturating_mul(units::OPERATOR)) {
            return Outcome::Stopped(e);
        }
    }
    let target = Rect::new(0.0, 0.0, f64::from(width), f64::from(height));
    let mut ctx = Context::new(transform, target, cache, page.xref(), settings.clone());
    reuse.canvas.reset(width, height);
    let mut visits = 0;
    let mut dev = FaxDevice {
        reuse,
        meter,
        seen: 0,
        unsupported: None,
        clip_depth: 0,
        luma_jpeg: !sets_transfer(page.resources(), 0, &mut visits),
    };
    // The crop box clips the page (ISO 32000-1 §14.11.2); with the page transform it is a
    // rectangle on the device unless the page is rotated by an odd angle.
    let crop = transform * page.intersected_crop_box().to_kurbo().to_path(0.1);
    dev.push_clip_path(&ClipPath {
        path: crop,
        fill: FillRule::NonZero,
    });
    dev.clip_depth = 0;
    interpret_page(page, &mut ctx, &mut dev);
    if let Err(e) = dev.meter.stopped() {
        return Outcome::Stopped(e);
    }
    match dev.unsupported {
        Some(why) => Outcome::Unsupported {
            why,
            work: dev.seen,
        },
        None => Outcome::Drawn,
    }
}

/// Form XObjects nested deeper than this are not counted (hayro does not draw them either:
/// its `MAX_NESTED_INTERPRETATION_DEPTH`).
const MAX_COUNT_DEPTH: u32 = 50;

/// The operators hayro will interpret for `page`'s content stream: each operator once, and a
/// form XObject's operators (counted once per form, found through the resources in force) each
/// time it is painted — a small file that paints a form a thousand times is counted as the
/// thousand copies it is. Stops counting once `cap` is reached (and returns at least `cap`),
/// so the count itself costs at most `cap` operators parsed.
pub fn operator_count(page: &Page<'_>, cap: u64) -> u64 {
    let Some(data) = page.page_stream() else {
        return 0;
    };
    let mut memo = HashMap::new();
    let mut parsed = 0u64;
    count_ops(data, page.resources(), 0, &mut memo, &mut parsed, cap)
}

fn count_ops(
    data: &[u8],
    res: &Resources<'_>,
    depth: u32,
    memo: &mut HashMap<ObjectIdentifier, u64>,
    parsed: &mut u64,
    cap: u64,
) -> u64 {
    let mut n = 0u64;
    let mut ops = TypedIter::new(data);
    while let Some(op) = ops.next() {
        n = n.saturating_add(1);
        *parsed += 1;
        if let TypedInstruction::XObject(x) = op
            && depth + 1 < MAX_COUNT_DEPTH
            && let Some(s) = res.get_x_object(x.0)
            && s.dict()
                .get::<Name<'_>>(SUBTYPE)
                .is_some_and(|t| &*t == FORM)
        {
            let id = s.obj_id();
            let inner = match memo.get(&id) {
                Some(c) => *c,
                None => {
                    let own = s.dict().get::<Dict<'_>>(RESOURCES).map(Resources::new);
                    let c = match s.decoded_data() {
                        Ok(d) => count_ops(
                            &d,
                            own.as_ref().unwrap_or(res),
                            depth + 1,
                            memo,
                            parsed,
                            cap,
                        ),
                        Err(_) => 0,
                    };
                    // A form without resources of its own uses its painter's: its count may
                    // differ by painter, so it is not remembered.
                    if own.is_some() {
                        memo.insert(id, c);
                    }
                    c
                }
            };
            n = n.saturating_add(inner);
        }
        if n >= cap || *parsed >= cap {
            return n.max(cap);
        }
    }
    n
}

struct FaxDevice<'r, 'm> {
    reuse: &'r mut Reuse,
    /// The page's work meter; once it refuses, nothing more is drawn.
    meter: &'r mut Meter<'m>,
    /// Work the page's content would take the general renderer, counted whether drawn here or
    /// not (used only when the page goes there).
    seen: u64,
    /// Set by the first thing this device cannot draw; everything after it is skipped.
    unsupported: Option<&'static str>,
    /// Clips pushed and not yet popped (besides the crop box).
    clip_depth: usize,
    /// Plain colour JPEGs may be decoded to luma only ([`image::jpeg_luma`]): no transfer
    /// function is in sight, which hayro would apply to the decoded samples.
    luma_jpeg: bool,
}

/// Graphics-state dictionaries and form XObjects [`sets_transfer`] looks at, at most.
const MAX_RESOURCE_VISITS: usize = 512;

/// Form XObjects nested deeper than this count as "may set a transfer function".
const MAX_FORM_DEPTH: u32 = 8;

/// Whether a graphics state of `res`, or of a form XObject's resources under it, sets a
/// transfer function (`TR`/`TR2`, ISO 32000-1 §10.5), or the resources are too large or too
/// deep to tell cheaply. Transfer functions are rare (deprecated in PDF 2.0), so a page with
/// none keeps the luma-only JPEG decode; a page that may have one leaves its images to hayro.
fn sets_transfer(res: &Resources<'_>, depth: u32, visits: &mut usize) -> bool {
    if depth > MAX_FORM_DEPTH {
        return true;
    }
    for key in res.ext_g_states.keys() {
        *visits += 1;
        if *visits > MAX_RESOURCE_VISITS {
            return true;
        }
        if res
            .ext_g_states
            .get::<Dict<'_>>(&*key)
            .is_some_and(|gs| gs.contains_key(TR) || gs.contains_key(TR2))
        {
            return true;
        }
    }
    for key in res.x_objects.keys() {
        *visits += 1;
        if *visits > MAX_RESOURCE_VISITS {
            return true;
        }
        let Some(xo) = res.x_objects.get::<Stream<'_>>(&*key) else {
            continue;
        };
        let d = xo.dict();
        if d.get::<Name<'_>>(SUBTYPE).is_some_and(|n| &*n == FORM)
            && let Some(r) = d.get::<Dict<'_>>(RESOURCES)
            && sets_transfer(&Resources::new(r), depth + 1, visits)
        {
            return true;
        }
    }
    false
}

/// The largest stretch of the linear part of `t` (how long a unit vector can become).
fn max_scale(t: &Affine) -> f64 {
    let [a, b, c, d, _, _] = t.as_coeffs();
    (a.hypot(b)).max(c.hypot(d))
}

/// The axis-aligned rectangle `path` is, if it is one (four corners, closed).
fn as_rect(path: &BezPath) -> Option<Rect> {
    let els = path.elements();
    let pts: Vec<Point> = match els {
        [
            PathEl::MoveTo(a),
            PathEl::LineTo(b),
            PathEl::LineTo(c),
            PathEl::LineTo(d),
            rest @ ..,
        ] if matches!(
            rest,
            [PathEl::ClosePath] | [PathEl::LineTo(_), PathEl::ClosePath] | [] | [PathEl::LineTo(_)]
        ) =>
        {
            if let [PathEl::LineTo(e), ..] = rest
                && *e != *a
            {
                return None;
            }
            vec![*a, *b, *c, *d]
        }
        _ => return None,
    };
    let horizontal = |p: Point, q: Point| p.y == q.y;
    let vertical = |p: Point, q: Point| p.x == q.x;
    let ok = (horizontal(pts[0], pts[1])
        && vertical(pts[1], pts[2])
        && horizontal(pts[2], pts[3])
        && vertical(pts[3], pts[0]))
        || (vertical(pts[0], pts[1])
            && horizontal(pts[1], pts[2])
            && vertical(pts[2], pts[3])
            && horizontal(pts[3], pts[0]));
    if !ok || !pts.iter().all(|p| p.x.is_finite() && p.y.is_finite()) {
        return None;
    }
    Some(Rect::from_points(pts[0], pts[2]))
}

/// The pixels a clip rectangle keeps: every pixel it touches, `floor(min)..ceil(max)`
/// (Splash's rectangular clip).
fn clip_pixels(r: Rect) -> IRect {
    let c = |v: f64| v.clamp(-1e7, 1e7);
    IRect {
        x0: c(r.x0.min(r.x1)).floor() as i32,
        y0: c(r.y0.min(r.y1)).floor() as i32,
        x1: c(r.x0.max(r.x1)).ceil() as i32,
        y1: c(r.y0.max(r.y1)).ceil() as i32,
    }
}

/// Stroke adjustment of one pair of parallel edges at `a < b`: pixels `round(a)..round(b)`,
/// at least one. Splash always adjusts (as Acrobat does; ISO 32000-1 §10.6.5 describes the
/// automatic stroke adjustment this implements), so a rectangle's or rule's width varies by
/// at most a pixel with its position instead of by two.
fn snap(a: f64, b: f64) -> (i32, i32) {
    let c = |v: f64| v.clamp(-1e7, 1e7);
    let lo = (c(a.min(b)) + 0.5).floor() as i32;
    let hi = (c(a.max(b)) + 0.5).floor() as i32;
    (lo, hi.max(lo + 1))
}

/// Whether a stroke of `width` (user units) under `t` is drawn one pixel wide. Splash's
/// monochrome rule, kept literally to match `pdftoppm -mono` pixel for pixel: with
/// `d = ½·max(|T·(1,1)|², |T·(1,−1)|²)` the line is thin when `d·width ≤ 2`. Note this is not
/// scale-invariant (a 2 pt line written as `0.1 0 0 0.1 0 0 cm 20 w`, as Ghostscript's
/// pdfwrite does, is thin); it does include every line thinner than a pixel, and a width of
/// 0, "the thinnest line that can be rendered" (ISO 32000-1 §8.4.3.2).
fn is_thin(t: &Affine, width: f64) -> bool {
    let [a, b, c, d, _, _] = t.as_coeffs();
    let d1 = (a + c).powi(2) + (b + d).powi(2);
    let d2 = (a - c).powi(2) + (b - d).powi(2);
    0.5 * d1.max(d2) * width <= 2.0
}

impl FaxDevice<'_, '_> {
    /// Charges `units` of work about to be done: `false` (and nothing more is drawn on the
    /// page) when the meter refuses.
    fn charge(&mut self, units: u64) -> bool {
        self.meter.charge(units).is_ok()
    }

    /// Whether drawing goes on: nothing unsupported met and the meter not stopped.
    fn drawing(&self) -> bool {
        self.unsupported.is_none() && self.meter.stopped().is_ok()
    }

    /// Notes work the general renderer would do for a path of `els` elements, filled over
    /// `area` (device bounding box; `None` for a stroke or clip, whose cost follows the path,
    /// not its bounding box).
    fn see_path(&mut self, els: usize, area: Option<Rect>) {
        let page =
            f64::from(self.reuse.canvas.gray.width) * f64::from(self.reuse.canvas.gray.height);
        let px = match area {
            Some(a) if a.area().is_finite() => a.area().abs().min(page) as u64,
            _ => 0,
        };
        self.seen = self
            .seen
            .saturating_add(els as u64 * units::GENERAL_SEGMENT + units::pixels(px));
    }

    fn give_up(&mut self, why: &'static str) {
        if self.unsupported.is_none() {
            self.unsupported = Some(why);
        }
    }

    /// The ink of a paint, or `None` (and the page marked unsupported) for what this device
    /// does not draw.
    fn ink(
        &mut self,
        paint: &Paint<'_>,
        soft_mask: Option<&SoftMask<'_>>,
        blend: BlendMode,
    ) -> Option<Ink> {
        if !self.drawing() {
            return None;
        }
        if soft_mask.is_some() {
            self.give_up("soft mask");
            return None;
        }
        if blend != BlendMode::Normal {
            self.give_up("blend mode");
            return None;
        }
        match paint {
            Paint::Color(c) => Some(Ink::from_rgba(c.to_rgba().components())),
            Paint::Pattern(_) => {
                self.give_up("pattern paint");
                None
            }
        }
    }

    /// Fills `path` (user space) mapped by `t`.
    fn fill(&mut self, path: &BezPath, t: Affine, rule: FillRule, ink: Ink, sampling: Sampling) {
        let clip = self.reuse.canvas.clip_rect();
        if clip.is_empty() {
            return;
        }
        let [_, b, c, _, _, _] = t.as_coeffs();
        if sampling == PATH_SAMPLING
            && (b == 0.0 && c == 0.0 || t.as_coeffs()[0] == 0.0 && t.as_coeffs()[3] == 0.0)
            && let Some(r) = as_rect(path)
        {
            // A rectangle on the device axes (`re f`): stroke-adjusted edges.
            let d = t.transform_rect_bbox(r);
            let (x0, x1) = snap(d.x0, d.x1);
            let (y0, y1) = snap(d.y0, d.y1);
            let r = IRect { x0, y0, x1, y1 }.intersect(&clip);
            if r.is_empty() {
                return;
            }
            let (w, h) = ((r.x1 - r.x0) as u64, (r.y1 - r.y0) as u64);
            if !self.charge(h * units::EDGE_ROW + units::pixels(w * h)) {
                return;
            }
            for y in r.y0..r.y1 {
                self.reuse.canvas.span(y, r.x0, r.x1, ink);
            }
            return;
        }
        if !self.charge(path.elements().len() as u64 * units::SEGMENT) {
            return;
        }
        let sc = &mut self.reuse.scanner;
        if sc.set_path(path.iter(), t) == Err(TooComplex) {
            self.give_up("path too complex");
            return;
        }
        // Flattened curves have more edges than elements; the sweep's cost is known before
        // it starts.
        let cost = sc.edge_count() as u64 * units::SEGMENT + sc.sweep_cost(clip) * units::EDGE_ROW;
        if !self.charge(cost) {
            return;
        }
        let sc = &mut self.reuse.scanner;
        let canvas = &mut self.reuse.canvas;
        sc.fill(rule, sampling, clip, |y, a, b| canvas.span(y, a, b, ink));
    }

    /// Strokes `path` (user space) with `sp` under the transform `t` (ISO 32000-1 §8.5.3.2).
    fn stroke(&mut self, path: &BezPath, t: Affine, sp: &StrokeProps, ink: Ink) {
        let scale = max_scale(&t);
        if !scale.is_finite() || scale <= 0.0 || !sp.line_width.is_finite() {
            return;
        }
        let dashes: Vec<f64> = sp.dash_array.iter().map(|&d| f64::from(d)).collect();
        // §8.4.3.6: an empty array is a solid line; all-zero or negative entries are an
        // error we treat as solid.
        let dashed = !dashes.is_empty()
            && dashes.iter().all(|d| d.is_finite() && *d >= 0.0)
            && dashes.iter().sum::<f64>() > 0.0
            && f64::from(sp.dash_offset).is_finite();
        if dashed {
            let period: f64 =
                dashes.iter().sum::<f64>() * if dashes.len() % 2 == 1 { 2.0 } else { 1.0 };
            let length: f64 = path.segments().map(|s| polygon_length(&s)).sum();
            if length / period * dashes.len() as f64 > MAX_DASHES {
                self.give_up("dash pattern too fine");
                return;
            }
        }
        if is_thin(&t, f64::from(sp.line_width.abs())) {
            self.stroke_thin(
                path,
                t,
                dashed.then_some((&dashes[..], sp.dash_offset)),
                ink,
            );
            return;
        }
        // Outlining costs about as much per element as scanning; the outline is then filled
        // (and charged) like any path.
        if !self.charge(path.elements().len() as u64 * units::SEGMENT) {
            return;
        }
        let style = kurbo::Stroke {
            width: f64::from(sp.line_width.abs()),
            join: sp.line_join,
            miter_limit: f64::from(sp.miter_limit).max(1.0),
            start_cap: sp.line_cap,
            end_cap: sp.line_cap,
            dash_pattern: if dashed {
                dashes.into_iter().collect()
            } else {
                Default::default()
            },
            dash_offset: f64::from(sp.dash_offset),
        };
        let outline = kurbo::stroke(
            path.iter(),
            &style,
            &kurbo::StrokeOpts::default(),
            scan::TOLERANCE / scale,
        );
        self.fill(&outline, t, FillRule::NonZero, ink, PATH_SAMPLING);
    }

    /// A stroke thinner than a pixel: every pixel the centre line passes through.
    fn stroke_thin(&mut self, path: &BezPath, t: Affine, dash: Option<(&[f64], f32)>, ink: Ink) {
        let clip = self.reuse.canvas.clip_rect();
        let mut segs: Vec<(Point, Point)> = Vec::new();
        let mut too_many = false;
        let mut collect = |el: PathEl, start: &mut Point, last: &mut Point| {
            if segs.len() >= scan::MAX_EDGES {
                too_many = true;
                return;
            }
            match el {
                PathEl::MoveTo(p) => {
                    *start = p;
                    *last = p;
                }
                PathEl::LineTo(p) => {
                    segs.push((*last, p));
                    *last = p;
                }
                PathEl::ClosePath => {
                    segs.push((*last, *start));
                    *last = *start;
                }
                _ => {}
            }
        };
        let (mut s, mut l) = (Point::ZERO, Point::ZERO);
        let dev = |el: PathEl| t * el;
        match dash {
            Some((d, off)) => kurbo::flatten(
                kurbo::dash(path.iter(), f64::from(off), d).map(dev),
                scan::TOLERANCE,
                |el| collect(el, &mut s, &mut l),
            ),
            None => kurbo::flatten(path.iter().map(dev), scan::TOLERANCE, |el| {
                collect(el, &mut s, &mut l)
            }),
        }
        if too_many {
            self.give_up("path too complex");
            return;
        }
        // One pass to price the drawing (rows each segment crosses inside the clip), then the
        // drawing itself.
        let rows: u64 = segs
            .iter()
            .map(|(a, b)| {
                let c = |v: f64| {
                    if v.is_finite() {
                        v.clamp(-1e7, 1e7)
                    } else {
                        0.0
                    }
                };
                let (y0, y1) = (c(a.y.min(b.y)), c(a.y.max(b.y)));
                let r0 = (y0.floor() as i32).max(clip.y0);
                let r1 = (y1.floor() as i32 + 1).min(clip.y1);
                (r1 - r0).max(0) as u64
            })
            .sum();
        if !self.charge(segs.len() as u64 * units::SEGMENT + rows * units::EDGE_ROW) {
            return;
        }
        for (a, b) in segs {
            if !(a.x.is_finite() && a.y.is_finite() && b.x.is_finite() && b.y.is_finite()) {
                continue;
            }
            let c = |v: f64| v.clamp(-1e7, 1e7);
            let (a, b) = (Point::new(c(a.x), c(a.y)), Point::new(c(b.x), c(b.y)));
            let (top, bot) = if a.y <= b.y { (a, b) } else { (b, a) };
            let r0 = (top.y.floor() as i32).max(clip.y0);
            let r1 = (bot.y.floor() as i32 + 1).min(clip.y1);
            let slope = if bot.y > top.y {
                (bot.x - top.x) / (bot.y - top.y)
            } else {
                0.0
            };
            for y in r0..r1 {
                // The part of the segment inside row y (closed: a line on a row boundary
                // still paints the row below it).
                let ya = top.y.max(f64::from(y));
                let yb = bot.y.min(f64::from(y + 1));
                let (xa, xb) = if bot.y > top.y {
                    (top.x + (ya - top.y) * slope, top.x + (yb - top.y) * slope)
                } else {
                    (top.x, bot.x)
                };
                let lo = xa.min(xb).floor() as i32;
                let hi = xa.max(xb).floor() as i32 + 1;
                self.reuse.canvas.span(y, lo, hi, ink);
            }
        }
    }

    fn fill_glyph(&mut self, g: &OutlineGlyph, m: Affine, ink: Ink) {
        let [a, b, c, d, e, f] = m.as_coeffs();
        if !m.as_coeffs().iter().all(|v| v.is_finite()) {
            return;
        }
        // Splash puts a non-anti-aliased glyph's origin on the pixel lattice point below and
        // left of it (floor, no sub-pixel positioning): one bitmap serves every position.
        let ox = e.floor().clamp(-1e7, 1e7) as i32;
        let oy = f.floor().clamp(-1e7, 1e7) as i32;
        let id = g.identifier();
        let Reuse {
            glyphs, scanner, ..
        } = &mut *self.reuse;
        // A glyph not in the cache is outlined and scanned first: charged by its outline
        // (after the fact; one glyph's outline is bounded by the scanner's edge limit).
        let mut outlined = 0u64;
        let got = glyphs.get(scanner, id, [a, b, c, d], || {
            let o = g.outline();
            outlined = o.elements().len() as u64;
            o
        });
        let spans_cost = got.as_ref().map_or(0, |s| s.len() as u64);
        if !self.charge(units::GLYPH + outlined * units::SEGMENT + spans_cost * units::EDGE_ROW) {
            return;
        }
        match got {
            Some(spans) => self.reuse.canvas.stamp(&spans, ox, oy, ink),
            None => {
                let t = Affine::new([a, b, c, d, f64::from(ox), f64::from(oy)]);
                self.fill(&g.outline(), t, FillRule::NonZero, ink, Sampling::Centre);
            }
        }
    }
}

/// Length of a segment's control polygon (an upper bound of its arc length).
fn polygon_length(s: &kurbo::PathSeg) -> f64 {
    match *s {
        kurbo::PathSeg::Line(l) => l.p0.distance(l.p1),
        kurbo::PathSeg::Quad(q) => q.p0.distance(q.p1) + q.p1.distance(q.p2),
        kurbo::PathSeg::Cubic(c) => c.p0.distance(c.p1) + c.p1.distance(c.p2) + c.p2.distance(c.p3),
    }
}

impl<'a> Device<'a> for FaxDevice<'_, '_> {
    fn draw_path(&mut self, path: &BezPath, props: DrawProps<'a>, draw_mode: &DrawMode) {
        if self.meter.stopped().is_err() || matches!(draw_mode, DrawMode::Invisible) {
            return;
        }
        let area = match draw_mode {
            DrawMode::Stroke(_) => None,
            _ => Some(props.transform.transform_rect_bbox(path.bounding_box())),
        };
        self.see_path(path.elements().len(), area);
        let Some(ink) = self.ink(&props.paint, props.soft_mask.as_ref(), props.blend_mode) else {
            return;
        };
        let t = props.transform;
        match draw_mode {
            DrawMode::Fill(rule) => self.fill(path, t, *rule, ink, PATH_SAMPLING),
            DrawMode::Stroke(sp) => self.stroke(path, t, sp, ink),
            DrawMode::FillAndStroke(rule, sp) => {
                self.fill(path, t, *rule, ink, PATH_SAMPLING);
                self.stroke(path, t, sp, ink);
            }
            DrawMode::Invisible => {}
        }
    }

    fn push_clip_path(&mut self, clip_path: &ClipPath) {
        self.clip_depth += 1;
        if self.meter.stopped().is_ok() {
            let els = clip_path.path.elements().len();
            self.see_path(els, None);
        }
        if !self.drawing() {
            // Keep the stack balanced for the pops to come.
            self.reuse.canvas.push_rect(IRect::EMPTY);
            return;
        }
        if let Some(r) = as_rect(&clip_path.path) {
            self.reuse.canvas.push_rect(clip_pixels(r));
            return;
        }
        let clip = self.reuse.canvas.clip_rect();
        let sc = &mut self.reuse.scanner;
        if sc.set_path(clip_path.path.iter(), Affine::IDENTITY) == Err(TooComplex) {
            self.give_up("clip path too complex");
            self.reuse.canvas.push_rect(IRect::EMPTY);
            return;
        }
        let bounds = sc.pixel_bounds().intersect(&clip);
        let cost =
            sc.edge_count() as u64 * units::SEGMENT + sc.sweep_cost(bounds) * units::EDGE_ROW;
        if !self.charge(cost) {
            // Stopped: the page is abandoned; keep the stack balanced for the pops to come.
            self.reuse.canvas.push_rect(IRect::EMPTY);
            return;
        }
        let sc = &mut self.reuse.scanner;
        let fill = clip_path.fill;
        let pushed = self.reuse.canvas.push_mask(bounds, |f| {
            sc.fill(fill, PATH_SAMPLING, bounds, f);
        });
        if !pushed {
            self.give_up("too many clip masks");
            self.reuse.canvas.push_rect(IRect::EMPTY);
        }
    }

    fn push_clip_rect(&mut self, rect: &Rect) {
        self.clip_depth += 1;
        if !self.drawing() {
            self.reuse.canvas.push_rect(IRect::EMPTY);
            return;
        }
        self.reuse.canvas.push_rect(clip_pixels(*rect));
    }

    fn push_transparency_group(
        &mut self,
        opacity: f32,
        mask: Option<SoftMask<'a>>,
        blend_mode: BlendMode,
    ) {
        // A group with full opacity, no mask and Normal blending composites exactly like its
        // contents drawn directly (source-over is associative; ISO 32000-1 §11.4): only those
        // are drawn here.
        if opacity < 1.0 || mask.is_some() || blend_mode != BlendMode::Normal {
            self.give_up("transparency group");
        }
    }

    fn draw_glyph_run(
        &mut self,
        glyph_run: &GlyphRun<'_, 'a>,
        props: DrawProps<'a>,
        draw_mode: &DrawMode,
    ) {
        if matches!(draw_mode, DrawMode::Invisible) || self.meter.stopped().is_err() {
            return;
        }
        if self.unsupported.is_some() {
            // For the general renderer: a glyph is a small path fill there.
            let n = glyph_run.glyphs().len() as u64;
            self.seen = self.seen.saturating_add(n * units::GENERAL_GLYPH);
            return;
        }
        let Some(ink) = self.ink(&props.paint, props.soft_mask.as_ref(), props.blend_mode) else {
            return;
        };
        for pg in glyph_run.glyphs() {
            self.seen = self.seen.saturating_add(units::GENERAL_GLYPH);
            let gt = pg.transform();
            match &**pg {
                Glyph::Outline(g) => {
                    // Text rendering modes, ISO 32000-1 §9.3.6 (clip modes reach us as clip
                    // paths from the interpreter).
                    let (fill, stroke) = match draw_mode {
                        DrawMode::Fill(_) => (true, None),
                        DrawMode::Stroke(sp) => (false, Some(sp)),
                        DrawMode::FillAndStroke(_, sp) => (true, Some(sp)),
                        DrawMode::Invisible => (false, None),
                    };
                    if fill {
                        self.fill_glyph(g, props.transform * gt, ink);
                    }
                    if let Some(sp) = stroke {
                        let outline = gt * g.outline();
                        self.stroke(&outline, props.transform, sp, ink);
                    }
                }
                // A Type 3 glyph is a content stream (§9.6.5): run it through this device
                // (which charges what it draws).
                Glyph::Type3(t3) => {
                    if self.charge(units::GLYPH) {
                        t3.interpret(self, props.transform, gt, &props.paint);
                    }
                }
            }
            if !self.drawing() {
                return;
            }
        }
    }

    fn draw_image(&mut self, image: Image<'a, '_>, props: ImageDrawProps<'a>) {
        if self.meter.stopped().is_err() {
            return;
        }
        let t = props.transform;
        let local = Rect::new(
            0.0,
            0.0,
            f64::from(image.width()),
            f64::from(image.height()),
        );
        let bbox = t.transform_rect_bbox(local);
        // Decoding is paid by the source's pixels, drawing by the device pixels it covers
        // (the page at most), both before either starts.
        let src_px = u64::from(image.width()) * u64::from(image.height());
        let page =
            f64::from(self.reuse.canvas.gray.width) * f64::from(self.reuse.canvas.gray.height);
        let dev_px = if bbox.area().is_finite() {
            bbox.area().abs().min(page) as u64
        } else {
            0
        };
        let cost = units::pixels(src_px) + units::pixels(dev_px);
        self.seen = self.seen.saturating_add(cost);
        if !self.drawing() {
            return;
        }
        if props.soft_mask.is_some() || props.blend_mode != BlendMode::Normal {
            self.give_up("image soft mask or blend mode");
            return;
        }
        let clip = self.reuse.canvas.clip_rect();
        if clip.is_empty()
            || !(bbox.x1 > f64::from(clip.x0)
                && bbox.x0 < f64::from(clip.x1)
                && bbox.y1 > f64::from(clip.y0)
                && bbox.y0 < f64::from(clip.y1))
        {
            return;
        }
        if !self.charge(cost) {
            return;
        }
        // Ask the decoder for about the device size (a JPEG can then decode at 1/2, 1/4 …).
        let [a, b, c, d, _, _] = t.as_coeffs();
        let target = (
            (a.hypot(b) * local.width()).ceil().clamp(1.0, 65535.0) as u32,
            (c.hypot(d) * local.height()).ceil().clamp(1.0, 65535.0) as u32,
        );
        // Held until the image is drawn (and hayro's decoded copy dropped): see `ImageSlot`.
        let slot = self.reuse.images.clone();
        let mut luma = slot.lock();
        match image {
            Image::Stencil(s) => {
                let mut unsupported = None;
                s.with_stencil(
                    |luma, paint| {
                        let ink = match paint {
                            Paint::Color(c) => Ink::from_rgba(c.to_rgba().components()),
                            Paint::Pattern(_) => {
                                unsupported = Some("pattern-filled stencil mask");
                                return;
                            }
                        };
                        let (sx, sy) = luma.scale_factors;
                        let t = t * Affine::scale_non_uniform(f64::from(sx), f64::from(sy));
                        let src = image::Source {
                            gray: image::Pixels::Ink,
                            width: luma.width,
                            height: luma.height,
                            alpha: Some((&luma.data[..], luma.width, luma.height)),
                            ink,
                        };
                        image::draw(&mut self.reuse.canvas, &src, t);
                    },
                    Some(target),
                );
                if let Some(why) = unsupported {
                    self.give_up(why);
                }
            }
            Image::Raster(r) => {
                let size = (r.width(), r.height());
                if self.luma_jpeg && image::jpeg_luma(r.stream(), size, &mut luma) {
                    let src = image::Source {
                        gray: image::Pixels::Gray(&luma),
                        width: size.0,
                        height: size.1,
                        alpha: None,
                        ink: Ink {
                            gray: 0,
                            alpha: 255,
                        },
                    };
                    image::draw(&mut self.reuse.canvas, &src, t);
                    return;
                }
                r.with_rgba(
                    |data, alpha| {
                        let (sx, sy) = data.scale_factors();
                        let t = t * Affine::scale_non_uniform(f64::from(sx), f64::from(sy));
                        let (w, h) = (data.width(), data.height());
                        let px = match &data {
                            ImageData::Luma(l) => image::Pixels::Gray(&l.data),
                            ImageData::Rgb(rgb) => image::Pixels::Rgb(&rgb.data),
                        };
                        let src = image::Source {
                            gray: px,
                            width: w,
                            height: h,
                            alpha: alpha.as_ref().map(|a| (&a.data[..], a.width, a.height)),
                            ink: Ink {
                                gray: 0,
                                alpha: 255,
                            },
                        };
                        image::draw(&mut self.reuse.canvas, &src, t);
                    },
                    Some(target),
                );
            }
        }
    }

    fn pop_clip(&mut self) {
        if self.clip_depth > 0 {
            self.clip_depth -= 1;
            self.reuse.canvas.pop();
        }
    }

    fn pop_transparency_group(&mut self) {}
}
