//! Raster inputs to fax pages: PNG, JPEG, GIF, BMP, WebP, PNM through the `image` crate, and
//! TIFF (every page) through the `tiff` crate.
//!
//! PURE: bytes in (read through `Cursor`), pages out. Sizes are checked against
//! [`Limits::max_source_pixels`] from the header before any pixel is decoded, and the decoders
//! get allocation limits too.
//!
//! Placement: a picture with no trustworthy physical size (PNG/JPEG/…) is fitted to the
//! printable width keeping its aspect (shrunk to the page height on fixed paper); a TIFF that
//! states its resolution is placed at true size like a PDF page (a 204×196 fax TIFF maps
//! pixel for pixel at fine). Landscape sources are turned a quarter turn counter-clockwise.

use std::io::Cursor;

use crate::image::Page;

use super::bilevel::{self, Bilevel};
use super::budget::{Meter, units};
use super::geometry::{Layout, SCAN_LINE, fit_physical, fit_pixels};
use super::gray::Gray;
use super::{Budget, ErrorKind, Limits};

/// A decoded source picture and, when it states one, its density in dots per inch (x, y).
pub struct Source {
    /// Luminance, composited over white.
    pub gray: Gray,
    /// Pixel density when the file states it.
    pub dpi: Option<(f64, f64)>,
}

/// Decodes a single-picture format (the first frame of an animated GIF/WebP).
pub fn decode_image(bytes: &[u8], limits: &Limits) -> Result<Source, ErrorKind> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ErrorKind::Invalid(e.to_string()))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| ErrorKind::Invalid(e.to_string()))?;
    limits.check_source(w, h)?;
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ErrorKind::Invalid(e.to_string()))?;
    let mut il = image::Limits::default();
    il.max_image_width = Some(w);
    il.max_image_height = Some(h);
    // RGBA8 output plus the decoder's own working set.
    il.max_alloc = Some(limits.max_source_pixels.saturating_mul(8));
    reader.limits(il);
    let img = reader
        .decode()
        .map_err(|e| ErrorKind::Invalid(e.to_string()))?;
    let rgba = img.into_rgba8();
    let px = rgba
        .pixels()
        .map(|p| over_white(luma(p.0[0], p.0[1], p.0[2]), p.0[3]))
        .collect();
    Ok(Source {
        gray: Gray {
            width: w,
            height: h,
            px,
        },
        dpi: None,
    })
}

/// Charges the work of a decoded picture: its pixels decoded, and as many again resampled and
/// made bilevel (at most a fax page's worth more, which [`Limits::max_page_rows`] bounds).
pub fn charge_source(meter: &mut Meter<'_>, gray: &Gray) -> Result<(), ErrorKind> {
    let px = u64::from(gray.width) * u64::from(gray.height);
    meter.charge(units::pixels(px.saturating_mul(2)))
}

/// ITU-R BT.601 luma.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 77 + u32::from(g) * 150 + u32::from(b) * 29) >> 8) as u8
}

/// Straight alpha over a white background.
fn over_white(v: u8, a: u8) -> u8 {
    ((u32::from(v) * u32::from(a) + 255 * (255 - u32::from(a)) + 127) / 255) as u8
}

/// A TIFF's pages: bilevel files (every fax coding: MH, MR, MMR, also uncompressed and
/// PackBits) through faxgate's own reader ([`crate::image::tiff`]), anything else (gray,
/// colour) through the `tiff` crate.
pub fn tiff_pages(
    bytes: &[u8],
    layout: &Layout,
    mode: Bilevel,
    limits: &Limits,
    budget: &mut dyn Budget,
) -> Result<Vec<Page>, ErrorKind> {
    use crate::image::tiff::{Reader, TiffError};
    let tl = crate::image::tiff::Limits {
        max_pages: limits.max_pages,
        max_pixels: limits.max_source_pixels.min(crate::image::page::MAX_PIXELS),
        ..crate::image::tiff::Limits::default()
    };
    let fax_err = |e: TiffError| match e {
        TiffError::Limit { what: "pages", .. } => ErrorKind::TooManyPages {
            limit: limits.max_pages,
        },
        TiffError::Limit {
            what, value, limit, ..
        } => ErrorKind::Invalid(format!("TIFF {what} {value} exceeds the limit {limit}")),
        TiffError::Unsupported { what, .. } => ErrorKind::Unsupported(format!("TIFF: {what}")),
        e => ErrorKind::Invalid(e.to_string()),
    };
    let mut reader = match Reader::new(Cursor::new(bytes), tl) {
        Ok(r) => r,
        Err(e) => return Err(fax_err(e)),
    };
    let mut out = Vec::new();
    let mut meter = Meter::new(&*budget, 1);
    loop {
        let no = out.len() as u32 + 1;
        meter.next_page(no)?;
        match reader.next_page() {
            Ok(Some(page)) => {
                if no > limits.max_pages {
                    return Err(ErrorKind::TooManyPages {
                        limit: limits.max_pages,
                    });
                }
                let px = u64::from(page.width()) * u64::from(page.height());
                meter.charge(units::pixels(px))?;
                out.push(place_bilevel(page, layout, limits)?);
            }
            Ok(None) => break,
            // Gray or colour: the general decoder takes the whole file.
            Err(TiffError::NotBilevel { .. }) => {
                drop(meter);
                return decode_tiff(bytes, limits, budget)?
                    .iter()
                    .map(|s| place(s, layout, mode, limits))
                    .collect();
            }
            Err(e) => return Err(fax_err(e)),
        }
    }
    Ok(out)
}

/// A bilevel page onto the fax page: kept bit for bit when it already has the fax's width and
/// density and fits the paper (a fax TIFF being re-sent), else resampled at true size.
fn place_bilevel(page: Page, layout: &Layout, limits: &Limits) -> Result<Page, ErrorKind> {
    let r = page.resolution();
    let same_res =
        (r.x_dpi - layout.res.x_dpi).abs() < 2.0 && (r.y_dpi - layout.res.y_dpi).abs() < 2.0;
    let fits = layout.page_rows().is_none_or(|rows| page.height() <= rows);
    if page.width() == SCAN_LINE && same_res && fits {
        limits.check_page(page.height())?;
        let mut p = page;
        p.resolution = layout.res.into();
        return Ok(p);
    }
    let mut gray = Gray::white(page.width(), page.height());
    for y in 0..page.height() {
        let row = page.row(y);
        let dst = &mut gray.px[(y * page.width()) as usize..((y + 1) * page.width()) as usize];
        for (x, d) in dst.iter_mut().enumerate() {
            if row[x / 8] & (0x80 >> (x % 8)) != 0 {
                *d = 0;
            }
        }
    }
    let src = Source {
        gray,
        dpi: Some((f64::from(r.x_dpi), f64::from(r.y_dpi))),
    };
    // A bilevel source is line art: thresholding keeps it bilevel.
    place(&src, layout, Bilevel::Threshold, limits)
}

/// Decodes every page of a TIFF (gray, bilevel, RGB, RGBA, palette-free, 8 or 1 bits; what the
/// `tiff` crate can decompress: none, LZW, Deflate, PackBits, JPEG, and CCITT Group 4).
pub fn decode_tiff(
    bytes: &[u8],
    limits: &Limits,
    budget: &mut dyn Budget,
) -> Result<Vec<Source>, ErrorKind> {
    use tiff::ColorType;
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;

    let bad = |e: tiff::TiffError| ErrorKind::Invalid(format!("TIFF: {e}"));
    let mut tl = tiff::decoder::Limits::default();
    tl.decoding_buffer_size =
        usize::try_from(limits.max_source_pixels.saturating_mul(4)).unwrap_or(usize::MAX);
    let mut dec = Decoder::new(Cursor::new(bytes))
        .map_err(bad)?
        .with_limits(tl);
    let mut out = Vec::new();
    let mut meter = Meter::new(&*budget, 1);
    loop {
        let no = out.len() as u32 + 1;
        if no > limits.max_pages {
            return Err(ErrorKind::TooManyPages {
                limit: limits.max_pages,
            });
        }
        meter.next_page(no)?;
        let (w, h) = dec.dimensions().map_err(bad)?;
        limits.check_source(w, h)?;
        // Charged before decoding: the size is known from the header.
        meter.charge(units::pixels(
            (u64::from(w) * u64::from(h)).saturating_mul(2),
        ))?;
        let color = dec.colortype().map_err(bad)?;
        // TIFF 6.0 §"PhotometricInterpretation": 0 = WhiteIsZero, 1 = BlackIsZero. The tiff
        // crate hands samples back as stored, so WhiteIsZero is inverted here.
        let white_is_zero = dec
            .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
            .ok()
            .flatten()
            == Some(0);
        let dpi = resolution(&mut dec);
        let data = dec.read_image().map_err(bad)?;
        let DecodingResult::U8(buf) = data else {
            return Err(ErrorKind::Unsupported(format!(
                "TIFF with {color:?} samples wider than 8 bits"
            )));
        };
        let (wu, hu) = (w as usize, h as usize);
        let mut px = match color {
            ColorType::Gray(8) => buf.get(..wu * hu).map(<[u8]>::to_vec),
            ColorType::Gray(1) => {
                let stride = wu.div_ceil(8);
                (buf.len() >= stride * hu).then(|| {
                    let mut v = Vec::with_capacity(wu * hu);
                    for y in 0..hu {
                        let row = &buf[y * stride..(y + 1) * stride];
                        v.extend((0..wu).map(|x| {
                            if row[x / 8] & (0x80 >> (x % 8)) != 0 {
                                255
                            } else {
                                0
                            }
                        }));
                    }
                    v
                })
            }
            ColorType::RGB(8) => (buf.len() >= wu * hu * 3).then(|| {
                buf.chunks_exact(3)
                    .take(wu * hu)
                    .map(|p| luma(p[0], p[1], p[2]))
                    .collect()
            }),
            ColorType::RGBA(8) => (buf.len() >= wu * hu * 4).then(|| {
                buf.chunks_exact(4)
                    .take(wu * hu)
                    .map(|p| over_white(luma(p[0], p[1], p[2]), p[3]))
                    .collect()
            }),
            ColorType::GrayA(8) => (buf.len() >= wu * hu * 2).then(|| {
                buf.chunks_exact(2)
                    .take(wu * hu)
                    .map(|p| over_white(p[0], p[1]))
                    .collect()
            }),
            other => {
                return Err(ErrorKind::Unsupported(format!(
                    "TIFF colour type {other:?}"
                )));
            }
        }
        .ok_or_else(|| ErrorKind::Invalid("TIFF image data shorter than its size".into()))?;
        if white_is_zero && matches!(color, ColorType::Gray(_)) {
            px.iter_mut().for_each(|p| *p = 255 - *p);
        }
        out.push(Source {
            gray: Gray {
                width: w,
                height: h,
                px,
            },
            dpi,
        });
        if !dec.more_images() {
            break;
        }
        dec.next_image().map_err(bad)?;
    }
    Ok(out)
}

/// The TIFF's stated density in dpi, when it has a plausible one (ResolutionUnit 2 = inch,
/// 3 = cm; 1 = none, which says nothing about size).
fn resolution<R: std::io::Read + std::io::Seek>(
    dec: &mut tiff::decoder::Decoder<R>,
) -> Option<(f64, f64)> {
    use tiff::tags::Tag;
    let unit = dec
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten()
        .unwrap_or(2);
    let factor = match unit {
        2 => 1.0,
        3 => 2.54,
        _ => return None,
    };
    let x = dec.get_tag_f64(Tag::XResolution).ok()?;
    let y = dec.get_tag_f64(Tag::YResolution).ok()?;
    let (x, y) = (x * factor, y * factor);
    ((20.0..=4800.0).contains(&x) && (20.0..=4800.0).contains(&y)).then_some((x, y))
}

/// Lays one source picture out on a fax page and makes it bilevel.
pub fn place(
    src: &Source,
    layout: &Layout,
    mode: Bilevel,
    limits: &Limits,
) -> Result<Page, ErrorKind> {
    let mut g = std::borrow::Cow::Borrowed(&src.gray);
    let mut dpi = src.dpi;
    if g.width > g.height {
        g = std::borrow::Cow::Owned(g.rotate_ccw());
        dpi = dpi.map(|(x, y)| (y, x));
    }
    let (cw, ch, x0, y0, rows) = match dpi {
        // Stated size: true size, like a PDF page, across the full scan line and from the top
        // (a fax TIFF is already laid out).
        Some((xd, yd)) => {
            let (cw, ch, _) = fit_physical(
                layout,
                f64::from(g.width) / xd,
                f64::from(g.height) / yd,
                SCAN_LINE,
                layout.page_rows(),
            );
            (cw, ch, (SCAN_LINE - cw) / 2, 0, layout.page_rows())
        }
        // No size: fit the printable box.
        None => {
            let (left, top, width, height) = layout.content_box();
            let (cw, ch) = fit_pixels(layout, g.width, g.height, width, height);
            (cw, ch, left + (width - cw) / 2, top, layout.page_rows())
        }
    };
    let rows = match rows {
        Some(r) => r,
        None => y0 + ch + layout.mm_y(super::geometry::BOTTOM_MARGIN_MM),
    };
    limits.check_page(rows)?;
    let scaled = g.resize(cw, ch);
    let mut canvas = Gray::white(SCAN_LINE, rows);
    canvas.blit(&scaled, x0, y0);
    let (page, _) = bilevel::to_page(&canvas, mode, layout.res)?;
    Ok(page)
}
