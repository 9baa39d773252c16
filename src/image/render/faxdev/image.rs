//! Sampled images on the gray page: raster images (ISO 32000-1 §8.9) and stencil masks
//! (§8.9.6.2, painted with the current fill colour).
//!
//! PURE. Each device pixel whose centre falls inside the image is mapped back into image
//! space; when the image is shrunk by more than 2× the pixel takes the mean of the image
//! pixels under its footprint (a box filter: a dithered fax of a photo keeps its tone), else
//! the nearest image pixel. Soft-mask alpha (§11.6.5.3) and stencil coverage blend over what
//! is below, premultiplied.

use hayro::hayro_interpret::hayro_syntax::object::dict::keys::{
    BITS_PER_COMPONENT, COLOR_TRANSFORM, COLORSPACE, DCT_DECODE, DECODE, DECODE_PARMS, DEVICE_RGB,
    FILTER, MASK, SMASK, SMASK_IN_DATA,
};
use hayro::hayro_interpret::hayro_syntax::object::{Array, Dict, Name, Stream};
use hayro::kurbo::{Affine, Point};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::canvas::{Canvas, Ink};

/// An image's pixels as the decoder gave them.
#[derive(Clone, Copy)]
pub enum Pixels<'d> {
    /// A stencil: every pixel is the ink's gray.
    Ink,
    /// Gray levels, `width × height`.
    Gray(&'d [u8]),
    /// RGB triples, `width × height`, read as BT.601 luminance where sampled (no gray copy
    /// of a large photo is made).
    Rgb(&'d [u8]),
}

/// An image: gray (0 black) or RGB pixels and optional alpha (255 opaque).
pub struct Source<'d> {
    /// The pixels.
    pub gray: Pixels<'d>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Alpha levels and their own size (a soft mask may differ in size from its image).
    pub alpha: Option<(&'d [u8], u32, u32)>,
    /// Paint of a stencil / constant opacity.
    pub ink: Ink,
}

/// Shrink factor above which pixels are box-averaged rather than point-sampled.
const BOX_ABOVE: f64 = 2.0;

/// Image pixels one device pixel may average, at most (a 64 × 64 footprint).
const MAX_BOX: f64 = 64.0;

/// Draws `src`, whose pixel grid (`0..width` × `0..height`, y down) `t` maps to the device.
pub fn draw(canvas: &mut Canvas, src: &Source<'_>, t: Affine) {
    let (w, h) = (f64::from(src.width), f64::from(src.height));
    if src.width == 0 || src.height == 0 || !t.as_coeffs().iter().all(|c| c.is_finite()) {
        return;
    }
    let det = t.determinant();
    if det.abs() < 1e-12 || !det.is_finite() {
        return;
    }
    let inv = t.inverse();
    let [ia, ib, ic, id, _, _] = inv.as_coeffs();
    // Footprint of one device pixel in image pixels (the inverse map's column sums).
    let fu = (ia.abs() + ic.abs()).min(MAX_BOX);
    let fv = (ib.abs() + id.abs()).min(MAX_BOX);
    let boxed = fu > BOX_ABOVE || fv > BOX_ABOVE;

    let corners = [
        t * Point::new(0.0, 0.0),
        t * Point::new(w, 0.0),
        t * Point::new(0.0, h),
        t * Point::new(w, h),
    ];
    let clip = canvas.clip_rect();
    let y_min = corners.iter().map(|p| p.y).fold(f64::MAX, f64::min);
    let y_max = corners.iter().map(|p| p.y).fold(f64::MIN, f64::max);
    let x_min = corners.iter().map(|p| p.x).fold(f64::MAX, f64::min);
    let x_max = corners.iter().map(|p| p.x).fold(f64::MIN, f64::max);
    let y0 = (y_min.floor().max(f64::from(clip.y0))) as i32;
    let y1 = (y_max.ceil().min(f64::from(clip.y1))) as i32;
    let bx0 = (x_min.floor().max(f64::from(clip.x0))) as i32;
    let bx1 = (x_max.ceil().min(f64::from(clip.x1))) as i32;
    if y0 >= y1 || bx0 >= bx1 {
        return;
    }

    let mut runs: Vec<(i32, i32)> = Vec::new();
    for y in y0..y1 {
        // Along the row's centre line image coordinates are linear in x:
        // u(x) = u0 + ia·x, v(x) = v0 + ib·x with x the pixel centre.
        let p = inv * Point::new(0.0, f64::from(y) + 0.5);
        let (u0, v0) = (p.x, p.y);
        let (mut lo, mut hi) = (f64::from(bx0) + 0.5, f64::from(bx1) - 0.5);
        for (c0, d, lim) in [(u0, ia, w), (v0, ib, h)] {
            // 0 <= c0 + d·x < lim
            if d.abs() < 1e-12 {
                if !(0.0..lim).contains(&c0) {
                    hi = f64::MIN;
                }
            } else {
                let (a, b) = ((0.0 - c0) / d, (lim - c0) / d);
                lo = lo.max(a.min(b));
                hi = hi.min(a.max(b));
            }
        }
        if lo > hi {
            continue;
        }
        // Pixel x has centre x + 0.5 in [lo, hi].
        let xa = ((lo - 0.5).ceil() as i32).max(bx0);
        let xb = (((hi - 0.5).floor() as i32) + 1).min(bx1);
        if xa >= xb {
            continue;
        }
        runs.clear();
        canvas.runs(y, xa, xb, |a, b| runs.push((a, b)));
        // An opaque image point-sampled along a device row that stays on one image row (no
        // rotation or skew: the usual placed photo): the pixel is that row's sample at
        // `u`, with no blending (α = 255 leaves the sample as is) — what `point_sample`
        // and the blend below compute, without their per-pixel dispatch.
        let line = if !boxed && ib == 0.0 && src.alpha.is_none() && src.ink.alpha == 255 {
            let (iw, iy) = (src.width as usize, (v0.max(0.0) as u32).min(src.height - 1));
            match src.gray {
                Pixels::Gray(g) => g
                    .get(iy as usize * iw..(iy as usize + 1) * iw)
                    .map(Line::Gray),
                Pixels::Rgb(c) => c
                    .get(iy as usize * iw * 3..(iy as usize + 1) * iw * 3)
                    .map(Line::Rgb),
                Pixels::Ink => None,
            }
        } else {
            None
        };
        for &(a, b) in &runs {
            let row = canvas.row_mut(y, a, b);
            if let Some(line) = line {
                let last = src.width - 1;
                let col = |x: i32| ((u0 + ia * (f64::from(x) + 0.5)).max(0.0) as u32).min(last);
                match line {
                    Line::Gray(g) => {
                        for x in a..b {
                            row[x as usize] = g[col(x) as usize];
                        }
                    }
                    Line::Rgb(c) => {
                        for x in a..b {
                            let i = col(x) as usize * 3;
                            row[x as usize] = luma(c[i], c[i + 1], c[i + 2]);
                        }
                    }
                }
                continue;
            }
            for x in a..b {
                let xc = f64::from(x) + 0.5;
                let (u, v) = (u0 + ia * xc, v0 + ib * xc);
                let (g, al) = if boxed {
                    box_sample(src, u, v, fu, fv)
                } else {
                    point_sample(src, u, v)
                };
                let d = &mut row[x as usize];
                // Premultiplied: result = g·α + dst·(1 − α), g and α in 0..=255.
                *d = ((u32::from(g) * u32::from(al) + u32::from(*d) * (255 - u32::from(al)) + 127)
                    / 255) as u8;
            }
        }
    }
}

/// Decodes a plain colour JPEG image XObject straight to its luma plane: `width × height`
/// gray levels in `out`. Returns false (and the caller lets hayro decode the image) unless
/// the image is exactly the common case this is equivalent for: one `DCTDecode` filter
/// over a YCbCr JPEG (no `ColorTransform 0`), `DeviceRGB`, 8 bits, the default `Decode`, no
/// mask, and the JPEG the size its dictionary says.
///
/// Why: hayro hands a colour JPEG over as RGB (3 bytes a pixel; 6.5 MB for a 1240 × 1754
/// photo, per rendering thread), of which this device only reads the luminance. The JPEG's Y
/// channel *is* that luminance (JFIF's YCbCr uses the BT.601 weights the device applies to
/// RGB), so decoding Y alone needs a third of the memory and skips chroma upsampling and
/// colour conversion. `out` is reused from image to image.
pub fn jpeg_luma(stream: &Stream<'_>, (width, height): (u32, u32), out: &mut Vec<u8>) -> bool {
    let dict = stream.dict();
    let is = |v: Option<Name<'_>>, name: &[u8]| v.is_some_and(|n| &*n == name);
    let one_dct = is(dict.get::<Name<'_>>(FILTER), DCT_DECODE)
        || dict.get::<Array<'_>>(FILTER).is_some_and(|a| {
            let mut it = a.iter::<Name<'_>>();
            is(it.next(), DCT_DECODE) && it.next().is_none()
        });
    let params_ok = match dict.get::<Dict<'_>>(DECODE_PARMS) {
        Some(p) => p.get::<u8>(COLOR_TRANSFORM).is_none_or(|c| c == 1),
        None => !dict.contains_key(DECODE_PARMS),
    };
    let decode_default = match dict.get::<Array<'_>>(DECODE) {
        Some(a) => a.iter::<f32>().eq([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]),
        None => !dict.contains_key(DECODE),
    };
    let plain = one_dct
        && params_ok
        && decode_default
        && is(dict.get::<Name<'_>>(COLORSPACE), DEVICE_RGB)
        && dict.get::<u8>(BITS_PER_COMPONENT).is_none_or(|b| b == 8)
        && !dict.contains_key(SMASK)
        && !dict.contains_key(MASK)
        && dict.get::<u8>(SMASK_IN_DATA).is_none_or(|v| v == 0)
        // An external file (ISO 32000-1 §7.3.8.2): hayro refuses it; so does this.
        && !dict.contains_key(b"F");
    if !plain {
        return false;
    }
    let data = stream.raw_data();
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::Luma);
    let mut dec = JpegDecoder::new_with_options(ZCursor::new(&*data), options);
    if dec.decode_headers().is_err()
        || dec.input_colorspace() != Some(ColorSpace::YCbCr)
        || dec.info().is_none_or(|i| i.components != 3)
        || dec.dimensions() != Some((width as usize, height as usize))
    {
        return false;
    }
    let n = width as usize * height as usize;
    if dec.output_buffer_size() != Some(n) {
        return false;
    }
    out.clear();
    out.resize(n, 0);
    dec.decode_into(out).is_ok()
}

#[inline]
fn alpha_at(src: &Source<'_>, u: f64, v: f64) -> u32 {
    let base = u32::from(src.ink.alpha);
    match src.alpha {
        None => base,
        Some((a, aw, ah)) => {
            let x = ((u * f64::from(aw) / f64::from(src.width)) as u32).min(aw - 1);
            let y = ((v * f64::from(ah) / f64::from(src.height)) as u32).min(ah - 1);
            let i = y as usize * aw as usize + x as usize;
            u32::from(a.get(i).copied().unwrap_or(255)) * base / 255
        }
    }
}

/// One image row's samples (see the row loop in [`draw`]).
#[derive(Clone, Copy)]
enum Line<'d> {
    Gray(&'d [u8]),
    Rgb(&'d [u8]),
}

/// BT.601 luminance of an RGB triple, in 8-bit fixed point.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 77 + u32::from(g) * 150 + u32::from(b) * 29) >> 8) as u8
}

#[inline]
fn gray_at(src: &Source<'_>, x: u32, y: u32) -> u8 {
    let i = y as usize * src.width as usize + x as usize;
    match src.gray {
        Pixels::Ink => src.ink.gray,
        Pixels::Gray(g) => g.get(i).copied().unwrap_or(255),
        Pixels::Rgb(c) => match c.get(i * 3..i * 3 + 3) {
            Some(p) => luma(p[0], p[1], p[2]),
            None => 255,
        },
    }
}

fn point_sample(src: &Source<'_>, u: f64, v: f64) -> (u8, u8) {
    let x = (u.max(0.0) as u32).min(src.width - 1);
    let y = (v.max(0.0) as u32).min(src.height - 1);
    let a = alpha_at(src, f64::from(x) + 0.5, f64::from(y) + 0.5);
    (gray_at(src, x, y), a as u8)
}

fn box_sample(src: &Source<'_>, u: f64, v: f64, fu: f64, fv: f64) -> (u8, u8) {
    let x0 = ((u - fu / 2.0).floor().max(0.0) as u32).min(src.width - 1);
    let x1 = ((u + fu / 2.0).ceil().max(1.0) as u32)
        .min(src.width)
        .max(x0 + 1);
    let y0 = ((v - fv / 2.0).floor().max(0.0) as u32).min(src.height - 1);
    let y1 = ((v + fv / 2.0).ceil().max(1.0) as u32)
        .min(src.height)
        .max(y0 + 1);
    let (mut sg, mut sa, mut n) = (0u64, 0u64, 0u64);
    for y in y0..y1 {
        for x in x0..x1 {
            let a = u64::from(alpha_at(src, f64::from(x) + 0.5, f64::from(y) + 0.5));
            sg += u64::from(gray_at(src, x, y)) * a;
            sa += a;
            n += 1;
        }
    }
    if sa == 0 {
        return (255, 0);
    }
    // Un-premultiply the mean so the caller's premultiplied blend gets the mean back.
    ((sg / sa) as u8, (sa / n) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::render::gray::Gray;

    #[test]
    fn nearest_and_box_sampling() {
        // A 4×2 image: left half black, right half white, upscaled 10×.
        let px = [0u8, 0, 255, 255, 0, 0, 255, 255];
        let src = Source {
            gray: Pixels::Gray(&px),
            width: 4,
            height: 2,
            alpha: None,
            ink: Ink {
                gray: 0,
                alpha: 255,
            },
        };
        let mut c = Canvas::new(Gray::white(50, 30));
        draw(
            &mut c,
            &src,
            Affine::translate((5.0, 5.0)) * Affine::scale(10.0),
        );
        assert_eq!(c.gray.at(4, 10), 255);
        assert_eq!(c.gray.at(5, 10), 0);
        assert_eq!(c.gray.at(24, 24), 0);
        assert_eq!(c.gray.at(25, 24), 255);
        assert_eq!(c.gray.at(25, 25), 255);
        // Shrunk 4×: each device pixel averages 4 × 4 image pixels of alternating columns.
        let stripes: Vec<u8> = (0..64).map(|i| if i % 2 == 0 { 0 } else { 255 }).collect();
        let src = Source {
            gray: Pixels::Gray(&stripes),
            width: 8,
            height: 8,
            ..src
        };
        let mut c = Canvas::new(Gray::white(2, 2));
        draw(&mut c, &src, Affine::scale(0.25));
        for (x, y) in [(0, 0), (1, 1)] {
            let v = c.gray.at(x, y);
            assert!((100..=160).contains(&v), "{v}");
        }
    }

    #[test]
    fn stencil_paints_ink_where_alpha() {
        let mask = [255u8, 0, 0, 255];
        let src = Source {
            gray: Pixels::Ink,
            width: 2,
            height: 2,
            alpha: Some((&mask, 2, 2)),
            ink: Ink {
                gray: 10,
                alpha: 255,
            },
        };
        let mut c = Canvas::new(Gray::white(2, 2));
        draw(&mut c, &src, Affine::IDENTITY);
        assert_eq!(c.gray.px, vec![10, 255, 255, 10]);
    }

    #[test]
    fn row_fast_path_matches_the_general_sampler() {
        // An opaque image (the row fast path) against the same image with an all-opaque
        // mask (the per-pixel path): the same pixels, under scales up and down (point
        // sampling only), flips and fractional offsets, gray and RGB.
        let (w, h) = (37u32, 23u32);
        let gray: Vec<u8> = (0..w * h).map(|i| ((i * 97) % 251) as u8).collect();
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| ((i * 53) % 256) as u8).collect();
        let opaque = vec![255u8; (w * h) as usize];
        for px in [Pixels::Gray(&gray), Pixels::Rgb(&rgb)] {
            for t in [
                Affine::new([2.7, 0.0, 0.0, 3.1, 4.3, 2.6]),
                Affine::new([-1.3, 0.0, 0.0, 1.7, 70.2, 0.4]),
                Affine::new([0.6, 0.0, 0.0, -0.9, 1.5, 40.9]),
            ] {
                let draw_with = |alpha| {
                    let src = Source {
                        gray: px,
                        width: w,
                        height: h,
                        alpha,
                        ink: Ink {
                            gray: 0,
                            alpha: 255,
                        },
                    };
                    let mut c = Canvas::new(Gray::white(1, 1));
                    c.reset(120, 90);
                    draw(&mut c, &src, t);
                    c.gray.px
                };
                let fast = draw_with(None);
                assert_eq!(fast, draw_with(Some((&opaque[..], w, h))), "{t:?}");
                assert!(fast.iter().filter(|&&v| v != 255).count() > 200, "{t:?}");
            }
        }
    }

    #[test]
    fn rgb_is_read_as_luminance() {
        let rgb = [255u8, 0, 0, 0, 0, 255];
        let src = Source {
            gray: Pixels::Rgb(&rgb),
            width: 2,
            height: 1,
            alpha: None,
            ink: Ink {
                gray: 0,
                alpha: 255,
            },
        };
        let mut c = Canvas::new(Gray::white(2, 1));
        draw(&mut c, &src, Affine::IDENTITY);
        assert_eq!(c.gray.px, vec![76, 28]);
    }
}
